package upload

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/backapp/backapp/internal/agentapi"
)

// PartError is a part that could not be stored: a permanent refusal, or
// the last of its attempts.
type PartError struct {
	// Part is the part number.
	Part int
	// Attempts is how many PUTs were made.
	Attempts int
	// Err is the last attempt's failure: a *StorageError for an HTTP
	// answer, a network error otherwise. It contains no URL query.
	Err error
}

func (e *PartError) Error() string {
	if e.Attempts <= 1 {
		return fmt.Sprintf("part %d could not be uploaded: %v", e.Part, e.Err)
	}
	return fmt.Sprintf("part %d could not be uploaded after %d attempts: %v", e.Part, e.Attempts, e.Err)
}

func (e *PartError) Unwrap() error { return e.Err }

var (
	_ error = (*PartError)(nil)
	_ error = (*StorageError)(nil)
)

// StorageError is an error answer of object storage to a PUT.
type StorageError struct {
	// Status is the HTTP status.
	Status int
	// Code and Message are from S3's XML error body, if it had one
	// ("AccessDenied", "Request has expired").
	Code, Message string
}

func (e *StorageError) Error() string {
	s := fmt.Sprintf("object storage answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// retryable: the same bytes may be accepted later. S3 reports a
// connection too slow to read as 400 RequestTimeout.
func (e *StorageError) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests ||
		e.Code == "RequestTimeout" || e.Code == "SlowDown"
}

// expired: the URL was refused; a freshly signed one may work.
func (e *StorageError) expired() bool { return e.Status == http.StatusForbidden }

// uploadPart stores p, retrying as the package comment says, and returns
// its ETag.
func (u *Uploader) uploadPart(p *part) (string, error) {
	partURL, err := u.src.PartURL(u.ctx, p.number)
	if err != nil {
		return "", u.stopped(fmt.Errorf("while getting the URL of part %d: %w", p.number, err))
	}
	maxAttempts := 1 + u.opts.MaxRetries
	refreshed := 0
	for attempt := 1; ; attempt++ {
		etag, retryAfter, err := u.put(p, partURL)
		if err == nil {
			return etag, nil
		}
		if u.ctx.Err() != nil {
			return "", u.failure()
		}
		var se *StorageError
		isStorage := errors.As(err, &se)
		final := isStorage && !se.retryable() && !se.expired() || errors.Is(err, errNoETag) || errors.Is(err, errMalformedURL)
		if final || attempt >= maxAttempts {
			return "", &PartError{Part: p.number, Attempts: attempt, Err: err}
		}
		u.notifyRetry(p.number, attempt, err)
		if isStorage && se.expired() {
			refreshed++
			if partURL, err = u.src.PartURL(u.ctx, p.number); err != nil {
				return "", u.stopped(fmt.Errorf("while refreshing the URL of part %d: %w", p.number, err))
			}
			if refreshed == 1 {
				continue // a fresh URL deserves an immediate try
			}
		}
		wait := max(backoff(attempt, u.opts.RetryDelay), min(retryAfter, maxRetryDelay))
		if err := sleep(u.ctx, wait); err != nil {
			return "", u.failure()
		}
	}
}

// stopped returns the upload's failure if it already stopped (the error
// at hand is then just a consequence), else err.
func (u *Uploader) stopped(err error) error {
	if f := u.failure(); f != nil {
		return f
	}
	return err
}

// errNoETag: object storage accepted a part without an ETag (a proxy that
// strips headers?). Completing needs it, so it is final.
var errNoETag = errors.New("object storage answered without an ETag header")

// errMalformedURL: the PartSource handed out something that is not a URL.
// Its text is not repeated: it is a secret if it is nearly a URL.
var errMalformedURL = errors.New("malformed pre-signed URL")

// put makes one attempt to PUT p to u. It returns the ETag, or the error
// and any Retry-After the answer carried.
func (u *Uploader) put(p *part, partURL agentapi.PresignedURL) (string, time.Duration, error) {
	ctx, cancel := context.WithCancelCause(u.ctx)
	defer cancel(nil)
	stall := time.AfterFunc(u.opts.StallTimeout, func() { cancel(ErrStalled) })
	defer stall.Stop()

	newBody := func() *partBody {
		return &partBody{u: u, p: p, ctx: ctx, stall: stall, timeout: u.opts.StallTimeout}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, string(partURL), newBody())
	if err != nil {
		// url.Parse's error quotes the URL: say only that it is broken.
		return "", 0, fmt.Errorf("%w for part %d", errMalformedURL, p.number)
	}
	req.ContentLength = int64(len(p.data))
	if len(p.data) == 0 {
		req.Body = http.NoBody
	}
	// Lets net/http resend the body itself when a reused keep-alive
	// connection turns out dead before anything was sent.
	req.GetBody = func() (io.ReadCloser, error) {
		if len(p.data) == 0 {
			return http.NoBody, nil
		}
		return newBody(), nil
	}
	resp, err := u.opts.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrStalled) {
			err = ErrStalled
		}
		return "", 0, fmt.Errorf("PUT %s: %w", partURL, redact(err, string(partURL)))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		etag := resp.Header.Get("ETag")
		if etag == "" {
			return "", 0, errNoETag
		}
		return etag, 0, nil
	}
	return "", parseRetryAfter(resp.Header.Get("Retry-After")), storageError(resp)
}

// storageError reads S3's XML error body, keeping only Code and Message:
// a SignatureDoesNotMatch body also echoes the signature and the string
// it signed.
func storageError(resp *http.Response) *StorageError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	_ = xml.NewDecoder(bytes.NewReader(data)).Decode(&body)
	return &StorageError{Status: resp.StatusCode, Code: clean(body.Code, 64), Message: clean(body.Message, 256)}
}

// clean keeps a short single line of printable text.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(s))
	if len(s) > n {
		s = s[:n]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return s
}

// redact drops net/http's *url.Error, which quotes the whole pre-signed
// URL, and, should the URL's query still appear in what it wrapped, cuts
// it out.
func redact(err error, rawURL string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	parsed, perr := url.Parse(rawURL)
	if perr != nil || parsed.RawQuery == "" || !strings.Contains(err.Error(), parsed.RawQuery) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), parsed.RawQuery, "[redacted]"))
}

// parseRetryAfter reads Retry-After in seconds (S3 sends no dates).
func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(min(secs, 3600)) * time.Second
}

// partBody is one attempt's request body: p's bytes, paced by the
// bandwidth limit, counted for progress, and keeping the stall timer
// from firing while bytes flow.
type partBody struct {
	u       *Uploader
	p       *part
	ctx     context.Context
	stall   *time.Timer
	timeout time.Duration
	off     int
}

func (b *partBody) Read(buf []byte) (int, error) {
	if b.off >= len(b.p.data) {
		return 0, io.EOF
	}
	n := min(len(buf), len(b.p.data)-b.off, maxChunk)
	if b.u.limit != nil {
		n = min(n, b.u.limit.chunk())
		if err := b.u.limit.wait(b.ctx, n); err != nil {
			return 0, err
		}
	}
	copy(buf, b.p.data[b.off:b.off+n])
	b.off += n
	b.stall.Reset(b.timeout)
	b.u.progress(b.p, int64(n), int64(b.off))
	return n, nil
}

func (b *partBody) Close() error { return nil }

// backoff is the wait before retry attempt+1: base doubled per attempt up
// to maxRetryDelay, half of it random so that parts failing together (one
// outage) do not retry together.
func backoff(attempt int, base time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, maxRetryDelay)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
