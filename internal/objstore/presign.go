package objstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MaxPresignTTL is the longest a pre-signed URL may stay valid. A leaked
// URL is a bearer token for one object; an hour bounds the damage and is
// plenty for one part or one restore download.
const MaxPresignTTL = time.Hour

// PresignedURL is one pre-signed request: whoever holds it may send Method to
// URL with Headers until Expires, without credentials. It is a secret until
// it expires; String, GoString and LogValue print it with the query (which
// carries the signature and credential scope) redacted, so that logging one
// by mistake leaks nothing. Send URL itself only to the agent that needs it.
type PresignedURL struct {
	// URL is the full URL including the signature.
	URL string
	// Method is the one HTTP method the signature allows.
	Method string
	// Expires is when S3 starts refusing the URL.
	Expires time.Time
	// Headers must be sent with the request exactly as given (they are
	// signed). Usually empty: no Host (the HTTP client sets it) and no
	// Content-Length or checksum, so that a plain PUT of any body works.
	Headers http.Header
}

var (
	_ fmt.Stringer   = PresignedURL{}
	_ fmt.GoStringer = PresignedURL{}
	_ slog.LogValuer = PresignedURL{}
)

// String is "METHOD scheme://host/path?[redacted] (expires RFC3339)".
func (p PresignedURL) String() string {
	return fmt.Sprintf("%s %s (expires %s)", p.Method, RedactURL(p.URL), p.Expires.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from printing the signed URL.
func (p PresignedURL) GoString() string {
	return fmt.Sprintf("objstore.PresignedURL{Method:%q, URL:%q, Expires:%q}", p.Method, RedactURL(p.URL), p.Expires.UTC().Format(time.RFC3339))
}

// LogValue implements slog.LogValuer with the query redacted.
func (p PresignedURL) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("method", p.Method),
		slog.String("url", RedactURL(p.URL)),
		slog.Time("expires", p.Expires),
	)
}

// redactedQuery replaces a URL's query when printing it.
const redactedQuery = "[redacted]"

// RedactURL returns rawURL without its query, fragment and user information,
// for logs and error messages: a pre-signed URL's query is its signature.
// The path (bucket and key) is kept; it names the object and is no secret.
// Use it on errors from net/http too, whose messages include the full URL.
func RedactURL(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// A URL that does not parse cannot be split safely; print nothing
		// of it rather than guess where the secret starts.
		return "[unparseable URL redacted]"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?" + redactedQuery
	}
	return s
}

// checkTTL enforces 1s <= ttl <= MaxPresignTTL and truncates ttl to whole
// seconds, the unit of X-Amz-Expires. A TTL below a second would truncate to
// 0, which the SDK silently turns into its 15-minute default.
func checkTTL(ttl time.Duration) (time.Duration, error) {
	if ttl < time.Second {
		return 0, fmt.Errorf("%w: pre-signed URL lifetime %s is shorter than one second", ErrInvalidArgument, ttl)
	}
	if ttl > MaxPresignTTL {
		return 0, fmt.Errorf("%w: pre-signed URL lifetime %s is longer than the maximum %s", ErrInvalidArgument, ttl, MaxPresignTTL)
	}
	return ttl.Truncate(time.Second), nil
}

// PresignPart returns a URL for one HTTP PUT of part n (1..10000) of the
// multipart upload uploadID of key, valid for ttl (1s..MaxPresignTTL). The
// payload is UNSIGNED-PAYLOAD, so a plain PUT of any body works; S3 then
// returns the part's ETag in the ETag response header, which the agent
// reports for Complete. PUTting the same part again replaces it, which is
// how an agent retries a failed part.
func (s *Store) PresignPart(ctx context.Context, key, uploadID string, part int32, ttl time.Duration) (PresignedURL, error) {
	if err := checkUpload(key, uploadID); err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing a part upload: %w", err)
	}
	if part < 1 || part > MaxParts {
		return PresignedURL{}, fmt.Errorf("while pre-signing a part upload: %w: part number %d is not within 1..%d", ErrInvalidArgument, part, MaxParts)
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing part %d of %q: %w", part, key, err)
	}
	req, err := s.presign.PresignUploadPart(ctx, &s3.UploadPartInput{
		Bucket:     aws.String(s.bucket),
		Key:        aws.String(key),
		UploadId:   aws.String(uploadID),
		PartNumber: aws.Int32(part),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing part %d of %q: %w", part, key, err)
	}
	return newPresignedURL(req, ttl)
}

// PresignPut returns a URL for one HTTP PUT of the whole object key, valid
// for ttl (1s..MaxPresignTTL), for archives small enough not to need a
// multipart upload (at most MaxPartSize). The payload is UNSIGNED-PAYLOAD.
// Nothing limits what size is PUT: check it afterwards with VerifySize.
func (s *Store) PresignPut(ctx context.Context, key string, ttl time.Duration) (PresignedURL, error) {
	if err := checkKey(key); err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing an upload: %w", err)
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing an upload of %q: %w", key, err)
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing an upload of %q: %w", key, err)
	}
	return newPresignedURL(req, ttl)
}

// PresignGet returns a URL for HTTP GETs of the object key, for restore
// downloads, valid for ttl (1s..MaxPresignTTL). Range requests work with it.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (PresignedURL, error) {
	if err := checkKey(key); err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing a download: %w", err)
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing a download of %q: %w", key, err)
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while pre-signing a download of %q: %w", key, err)
	}
	return newPresignedURL(req, ttl)
}

// newPresignedURL converts the SDK's result. Expires comes from the signed
// X-Amz-Date and X-Amz-Expires, so it is exactly when S3 stops accepting the
// URL rather than a guess made before signing.
func newPresignedURL(req *v4.PresignedHTTPRequest, ttl time.Duration) (PresignedURL, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		// Do not wrap err: its message would contain the signed URL.
		return PresignedURL{}, fmt.Errorf("while reading a pre-signed URL: the SDK returned an unparseable URL")
	}
	q := u.Query()
	signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	if err != nil {
		return PresignedURL{}, fmt.Errorf("while reading a pre-signed URL: no valid X-Amz-Date")
	}
	secs, err := strconv.ParseInt(q.Get("X-Amz-Expires"), 10, 64)
	if err != nil || time.Duration(secs)*time.Second != ttl {
		return PresignedURL{}, fmt.Errorf("while reading a pre-signed URL: X-Amz-Expires is not the requested %s", ttl)
	}
	headers := http.Header{}
	for name, values := range req.SignedHeader {
		// net/http sets Host from the URL; setting it as a header does nothing.
		if strings.EqualFold(name, "Host") {
			continue
		}
		for _, v := range values {
			headers.Add(name, v)
		}
	}
	return PresignedURL{
		URL:     req.URL,
		Method:  req.Method,
		Expires: signed.Add(ttl),
		Headers: headers,
	}, nil
}
