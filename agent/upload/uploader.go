package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
)

// Defaults of Options.
const (
	// DefaultPartSize is used when Options.PartSize is 0; Run uses the
	// part size the server chose instead.
	DefaultPartSize = 16 << 20
	// MaxPartSize is S3's largest part.
	MaxPartSize = 5 << 30
	// DefaultConcurrency is how many parts are uploaded at once.
	DefaultConcurrency = 4
	// DefaultMaxRetries is how often one part is retried after its first
	// attempt.
	DefaultMaxRetries = 5
	// DefaultRetryDelay is the backoff before a part's first retry; it
	// doubles with each further retry, up to maxRetryDelay.
	DefaultRetryDelay = 500 * time.Millisecond
	// DefaultStallTimeout is how long an attempt may go without sending a
	// byte or, after the last byte, without an answer, before it is
	// abandoned and retried. A dead connection otherwise blocks forever:
	// TCP keepalives do not cover a peer that acknowledges nothing.
	DefaultStallTimeout = 2 * time.Minute

	maxRetryDelay = 30 * time.Second
	// maxChunk is the most a request body hands net/http per Read; it is
	// also the granularity of progress and of the bandwidth limit.
	maxChunk = 64 << 10
)

// Sentinel errors.
var (
	// ErrAborted: Abort was called.
	ErrAborted = errors.New("upload aborted")
	// ErrClosed: Write after Close.
	ErrClosed = errors.New("write to a closed upload")
	// ErrTooManyParts: the stream needs more than agentapi.MaxPartNumber
	// parts of the chosen size (start again with a larger size hint).
	ErrTooManyParts = errors.New("archive too large for the part size")
	// ErrInvalidOptions: Options that cannot work (a part size above 5 GiB,
	// a negative concurrency).
	ErrInvalidOptions = errors.New("invalid upload options")
	// ErrStalled: an attempt sent nothing and got no answer for
	// Options.StallTimeout. Retried like a connection reset.
	ErrStalled = errors.New("upload stalled")
)

// Options tune an Uploader. The zero value works with a PartSource that
// hands out URLs for DefaultPartSize parts.
type Options struct {
	// PartSize is the size in bytes of every part but the last (which may
	// be smaller, or empty for an empty stream). S3 needs at least 5 MiB
	// for all parts but the last. 0 means DefaultPartSize; Run uses the
	// size the server chose.
	PartSize int64
	// Concurrency is how many parts are uploaded at once; the memory used
	// for parts is at most PartSize × (Concurrency+1). 0 means 4.
	Concurrency int
	// MaxRetries is how often a failed part is tried again, including
	// retries with a refreshed URL after a 403. 0 means 5.
	MaxRetries int
	// RetryDelay is the backoff before the first retry of a part; it
	// doubles per retry up to 30 s, with jitter. 0 means 500 ms.
	RetryDelay time.Duration
	// StallTimeout abandons (and retries) an attempt that sends nothing
	// and gets no answer for this long. 0 means 2 minutes.
	StallTimeout time.Duration
	// BandwidthLimit caps the bytes per second sent, all parts together;
	// 0 means unlimited.
	BandwidthLimit int64
	// OnProgress, if set, is called as the upload advances with how many
	// bytes of the stream object storage has received (a part's bytes
	// count once, however often it is retried), so it rises monotonically
	// to Size. It is called from upload goroutines, one call at a time,
	// and must return quickly.
	OnProgress func(uploadedBytes int64)
	// OnRetry, if set, is called before a failed part is retried, with
	// the attempt that failed (from 1) and why (no secrets in it); for
	// logging. Same calling rules as OnProgress.
	OnRetry func(part, attempt int, err error)
	// HTTPClient sends the PUTs. nil means a client with dial, TLS and
	// idle timeouts and a connection per concurrent part.
	HTTPClient *http.Client
}

// withDefaults fills zero options and checks the rest.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.PartSize < 0 || o.PartSize > MaxPartSize:
		return o, fmt.Errorf("%w: part size %d is not within 1 byte to 5 GiB", ErrInvalidOptions, o.PartSize)
	case o.Concurrency < 0 || o.MaxRetries < 0 || o.RetryDelay < 0 || o.StallTimeout < 0 || o.BandwidthLimit < 0:
		return o, fmt.Errorf("%w: negative concurrency, retries, delay, timeout or bandwidth", ErrInvalidOptions)
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = newHTTPClient(o.Concurrency)
	}
	return o, nil
}

// newHTTPClient is a client for PUTs to object storage. No overall
// timeout: a part takes as long as the link needs; stalls are caught per
// attempt instead (Options.StallTimeout).
func newHTTPClient(concurrency int) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          concurrency,
		MaxIdleConnsPerHost:   concurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Larger than the 4 KiB default: fewer write syscalls per part.
		WriteBufferSize: maxChunk,
	}}
}

// Uploader uploads one stream; see the package comment. Write and Close
// must be called from one goroutine (the archiver's); Abort may be called
// from any, at any time.
type Uploader struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	src    PartSource
	opts   Options
	limit  *limiter

	// Writer side, touched by Write and Close only.
	hash       hash.Hash
	size       int64
	cur        *part
	dispatched int
	allocated  int
	closed     bool
	closeErr   error

	free    chan []byte
	work    chan *part
	workers sync.WaitGroup

	mu    sync.Mutex
	parts []agentapi.CompletedPart

	uploaded    atomic.Int64
	transferred atomic.Int64
	// notifyMu serialises the callbacks, so OnProgress never sees its
	// value go backwards.
	notifyMu sync.Mutex
}

// part is one part's bytes and its upload state.
type part struct {
	number int
	data   []byte
	pooled bool
	// sent is the most bytes of this part any attempt has sent, so a
	// retry does not count towards progress twice.
	sent atomic.Int64
}

var _ io.WriteCloser = (*Uploader)(nil)

// New starts an Uploader for src with opts. Invalid options are reported
// by the first Write or Close. Always finish with Close (after Abort too)
// so its goroutines end.
func New(ctx context.Context, src PartSource, opts Options) *Uploader {
	opts, optErr := opts.withDefaults()
	ctx, cancel := context.WithCancelCause(ctx)
	u := &Uploader{
		ctx:    ctx,
		cancel: cancel,
		src:    src,
		opts:   opts,
		hash:   sha256.New(),
		free:   make(chan []byte, opts.Concurrency+1),
		work:   make(chan *part),
	}
	if optErr != nil {
		cancel(optErr)
		return u
	}
	if opts.BandwidthLimit > 0 {
		u.limit = newLimiter(opts.BandwidthLimit, time.Now)
	}
	for range opts.Concurrency {
		u.workers.Go(u.worker)
	}
	return u
}

// Write adds p to the stream. It blocks while every part buffer is being
// uploaded, and returns the upload's first failure once there is one.
func (u *Uploader) Write(p []byte) (int, error) {
	if u.closed {
		return 0, ErrClosed
	}
	if err := u.failure(); err != nil {
		return 0, err
	}
	n := 0
	for len(p) > 0 {
		if u.cur == nil {
			if u.dispatched >= agentapi.MaxPartNumber {
				err := fmt.Errorf("%w: more than %d parts of %d bytes", ErrTooManyParts, agentapi.MaxPartNumber, u.opts.PartSize)
				u.cancel(err)
				return n, err
			}
			buf, err := u.acquire()
			if err != nil {
				return n, err
			}
			u.cur = &part{number: u.dispatched + 1, data: buf[:0], pooled: true}
		}
		k := min(len(p), cap(u.cur.data)-len(u.cur.data))
		u.cur.data = append(u.cur.data, p[:k]...)
		u.hash.Write(p[:k])
		u.size += int64(k)
		n += k
		p = p[k:]
		if len(u.cur.data) == cap(u.cur.data) {
			if err := u.dispatch(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// acquire takes a free buffer, allocating one while fewer than
// Concurrency+1 exist, else waiting for an upload to give one back.
func (u *Uploader) acquire() ([]byte, error) {
	select {
	case buf := <-u.free:
		return buf, nil
	default:
	}
	if u.allocated < u.opts.Concurrency+1 {
		u.allocated++
		return make([]byte, u.opts.PartSize), nil
	}
	select {
	case buf := <-u.free:
		return buf, nil
	case <-u.ctx.Done():
		return nil, u.failure()
	}
}

// dispatch hands the current part to a worker, waiting for one to be free.
func (u *Uploader) dispatch() error {
	p := u.cur
	u.cur = nil
	select {
	case u.work <- p:
		u.dispatched++
		return nil
	case <-u.ctx.Done():
		return u.failure()
	}
}

// Close uploads the last part (an empty one for an empty stream), waits
// for every part and returns the first failure. After a nil Close, Parts,
// Size and SHA256 describe the stored stream. Calling it again returns the
// same result.
func (u *Uploader) Close() error {
	if u.closed {
		return u.closeErr
	}
	u.closed = true
	if u.failure() == nil {
		if u.cur == nil && u.dispatched == 0 {
			u.cur = &part{number: 1}
		}
		if u.cur != nil {
			_ = u.dispatch() // a failure is picked up below
		}
	}
	close(u.work)
	u.workers.Wait()
	err := u.failure()
	if err == nil {
		u.mu.Lock()
		got := len(u.parts)
		u.mu.Unlock()
		if got != u.dispatched {
			err = fmt.Errorf("while uploading: %d parts sent but %d stored", u.dispatched, got)
		}
	}
	u.closeErr = err
	u.cancel(ErrClosed) // releases the context; failure() is not consulted again
	return err
}

// Abort stops the upload: in-flight PUTs are cancelled, a blocked Write
// returns ErrAborted, and Close returns it. The parts already stored stay
// until the server aborts the multipart upload (backup/abort).
func (u *Uploader) Abort() { u.cancel(ErrAborted) }

// failure is why the upload stopped, or nil while it runs.
func (u *Uploader) failure() error {
	if u.ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(u.ctx)
	if errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded) {
		// The caller's context ended: say so rather than a bare
		// "context canceled".
		return fmt.Errorf("%w: %w", ErrAborted, cause)
	}
	return cause
}

// Parts lists the stored parts in ascending order with the ETags object
// storage returned, for agentapi.CompleteRequest.Parts. Complete only
// after a nil Close.
func (u *Uploader) Parts() []agentapi.CompletedPart {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := slices.Clone(u.parts)
	slices.SortFunc(out, func(a, b agentapi.CompletedPart) int { return a.PartNumber - b.PartNumber })
	return out
}

// Size is how many bytes were written.
func (u *Uploader) Size() int64 { return u.size }

// SHA256 is the lower-case hex SHA-256 of the bytes written; final after
// Close.
func (u *Uploader) SHA256() string { return hex.EncodeToString(u.hash.Sum(nil)) }

// Uploaded is how many bytes of the stream object storage has received so
// far (what OnProgress reports). Safe to call from any goroutine.
func (u *Uploader) Uploaded() int64 { return u.uploaded.Load() }

// Transferred is how many bytes were sent, retries included
// (agentapi.CompleteRequest.BytesTransferred). Safe from any goroutine.
func (u *Uploader) Transferred() int64 { return u.transferred.Load() }

// worker uploads parts until the work channel closes or the upload stops.
func (u *Uploader) worker() {
	for {
		select {
		case p, ok := <-u.work:
			if !ok {
				return
			}
			etag, err := u.uploadPart(p)
			if err != nil {
				u.cancel(err)
			} else {
				u.mu.Lock()
				u.parts = append(u.parts, agentapi.CompletedPart{PartNumber: p.number, ETag: etag})
				u.mu.Unlock()
			}
			if p.pooled {
				u.free <- p.data[:0] // never blocks: the channel holds every buffer
			}
		case <-u.ctx.Done():
			return
		}
	}
}

// progress records that an attempt of p has sent its first sent bytes.
func (u *Uploader) progress(p *part, delta, sent int64) {
	u.transferred.Add(delta)
	for {
		best := p.sent.Load()
		if sent <= best {
			return
		}
		if p.sent.CompareAndSwap(best, sent) {
			u.uploaded.Add(sent - best)
			break
		}
	}
	if u.opts.OnProgress != nil {
		u.notifyMu.Lock()
		u.opts.OnProgress(u.uploaded.Load())
		u.notifyMu.Unlock()
	}
}

func (u *Uploader) notifyRetry(part, attempt int, err error) {
	if u.opts.OnRetry != nil {
		u.notifyMu.Lock()
		u.opts.OnRetry(part, attempt, err)
		u.notifyMu.Unlock()
	}
}
