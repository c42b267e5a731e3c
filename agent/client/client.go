package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/version"
)

// Defaults of the options.
const (
	// DefaultRequestTimeout bounds one attempt of a call, from dialling to
	// the end of the answer's body.
	DefaultRequestTimeout = 60 * time.Second
	// DefaultCompleteTimeout bounds one attempt of Complete: the server
	// completes the multipart upload and checks the stored object before
	// it answers, which takes a while for an archive of thousands of parts.
	DefaultCompleteTimeout = 15 * time.Minute
	// DefaultMaxAttempts is how many times a retryable call is tried.
	DefaultMaxAttempts = 5
	// DefaultRetryBaseDelay is the backoff before the second attempt; it
	// doubles with each further attempt.
	DefaultRetryBaseDelay = 500 * time.Millisecond
	// DefaultRetryMaxDelay caps the exponential backoff.
	DefaultRetryMaxDelay = 30 * time.Second
	// MaxRetryAfter is the longest Retry-After the client waits out; a
	// server asking for longer gets its 429 returned to the caller, whose
	// own schedule (the daemon's poll interval) is then the better judge.
	MaxRetryAfter = 5 * time.Minute
	// MaxResponseBytes bounds an answer's body. The largest real one is a
	// list of configs or of 100 part URLs, far below it.
	MaxResponseBytes = 16 << 20
)

// Sentinel errors.
var (
	// ErrInvalidServerURL: New was given something that is not an
	// absolute http or https URL without credentials, query or fragment.
	ErrInvalidServerURL = errors.New("invalid server URL")
	// ErrInsecureServerURL: New was given a plain http URL for a host
	// other than loopback, which would send the API key in clear, without
	// AllowInsecureHTTP.
	ErrInsecureServerURL = errors.New("plain http would send the API key unencrypted")
	// ErrUnreachable: the request got no HTTP answer (the server is down
	// or unreachable, the connection broke, the attempt timed out).
	ErrUnreachable = errors.New("no answer from the server")
	// ErrBadResponse: a 2xx answer whose body is not the expected JSON.
	ErrBadResponse = errors.New("malformed answer from the server")
)

// Client calls the agent API of one server with one API key. It is safe
// for concurrent use.
type Client struct {
	base       *url.URL
	key        apikey.Key
	http       *http.Client
	userAgent  string
	timeout    time.Duration
	insecureOK bool
	retry      retryPolicy
	onRetry    func(RetryEvent)
}

// RetryEvent describes a failed attempt the client is about to retry, for
// logging ("server busy, retrying in 4s").
type RetryEvent struct {
	// Path is the endpoint, e.g. agentapi.PathHeartbeat.
	Path string
	// Attempt is the attempt that failed, from 1.
	Attempt int
	// Wait is how long the client waits before the next attempt: at least
	// the server's Retry-After for a 429.
	Wait time.Duration
	// Err is why the attempt failed; it contains no secret.
	Err error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (for a
// custom CA, a proxy ...). Its CheckRedirect is replaced by one that
// refuses redirects (see the package comment) on a copy; hc itself is not
// changed.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			cp := *hc
			c.http = &cp
		}
	}
}

// WithRequestTimeout bounds each attempt of a call (Complete gets at least
// DefaultCompleteTimeout). Zero or negative keeps the default.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithRetry sets how often a retryable call is tried (1 disables retries)
// and the backoff between attempts. Zero values keep the defaults.
func WithRetry(maxAttempts int, baseDelay, maxDelay time.Duration) Option {
	return func(c *Client) {
		if maxAttempts > 0 {
			c.retry.maxAttempts = maxAttempts
		}
		if baseDelay > 0 {
			c.retry.baseDelay = baseDelay
		}
		if maxDelay > 0 {
			c.retry.maxDelay = maxDelay
		}
	}
}

// WithRetryObserver calls f before every retry, from the calling
// goroutine.
func WithRetryObserver(f func(RetryEvent)) Option {
	return func(c *Client) { c.onRetry = f }
}

// AllowInsecureHTTP accepts a plain http server URL for a host other than
// loopback. Use it only where the network itself is trusted, such as a
// server-mode Job talking to the in-cluster Service: the API key travels
// in clear.
func AllowInsecureHTTP() Option {
	return func(c *Client) { c.insecureOK = true }
}

// New makes a client for the server at serverURL (for example
// https://backapp.example.com, or with a path prefix if the server is
// served under one) authenticating with key. Plain http is accepted for
// loopback hosts only, unless AllowInsecureHTTP is given.
func New(serverURL string, key apikey.Key, opts ...Option) (*Client, error) {
	c := &Client{
		key:       key,
		userAgent: "backapp-agent/" + version.Version,
		timeout:   DefaultRequestTimeout,
		retry: retryPolicy{
			maxAttempts: DefaultMaxAttempts,
			baseDelay:   DefaultRetryBaseDelay,
			maxDelay:    DefaultRetryMaxDelay,
		},
		onRetry: func(RetryEvent) {},
	}
	for _, o := range opts {
		o(c)
	}
	if c.onRetry == nil {
		c.onRetry = func(RetryEvent) {}
	}
	base, err := parseServerURL(serverURL, c.insecureOK)
	if err != nil {
		return nil, err
	}
	c.base = base
	if c.http == nil {
		c.http = &http.Client{Transport: newTransport()}
	}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if _, err := apikey.Parse(string(key)); err != nil {
		return nil, fmt.Errorf("while making an agent API client: %w", err)
	}
	return c, nil
}

// parseServerURL checks the server URL. Messages never repeat the URL: a
// user may have pasted the API key into the wrong flag.
func parseServerURL(raw string, insecureOK bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: it does not parse", ErrInvalidServerURL)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%w: the scheme must be http or https", ErrInvalidServerURL)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("%w: it has no host", ErrInvalidServerURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: it must not contain a user name or password", ErrInvalidServerURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%w: it must not have a query or fragment", ErrInvalidServerURL)
	case u.Scheme == "http" && !insecureOK && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("%w: use https, or allow plain http explicitly on a trusted network", ErrInsecureServerURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newTransport is net/http's default transport with explicit timeouts for
// the phases that have no natural end: a dial or TLS handshake to a host
// that never answers.
func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// ThisMachine is the heartbeat of this agent build on this machine: the
// version, operating system, architecture and host name (left out when
// the OS cannot tell it).
func ThisMachine() agentapi.HeartbeatRequest {
	req := agentapi.HeartbeatRequest{Version: version.Version, Platform: runtime.GOOS, Arch: runtime.GOARCH}
	if h, err := os.Hostname(); err == nil && len(h) <= agentapi.MaxHostnameLength {
		req.Hostname = h
	}
	return req
}

// endpoint is how one call is sent.
type endpoint struct {
	// what completes "while ..." in errors.
	what   string
	method string
	path   string
	// idempotent: repeating the request after a lost or failed answer
	// does no harm, so it may be retried on 5xx and network errors.
	idempotent bool
	timeout    time.Duration
}

// Heartbeat reports that the agent is alive (see ThisMachine). Idempotent.
func (c *Client) Heartbeat(ctx context.Context, req agentapi.HeartbeatRequest) (agentapi.HeartbeatResponse, error) {
	var out agentapi.HeartbeatResponse
	err := c.call(ctx, endpoint{what: "sending a heartbeat", method: http.MethodPost, path: agentapi.PathHeartbeat, idempotent: true}, nil, req, &out)
	return out, err
}

// Configs lists the configs assigned to the agent. Idempotent.
func (c *Client) Configs(ctx context.Context) ([]agentapi.AgentConfig, error) {
	var out agentapi.ConfigsResponse
	err := c.call(ctx, endpoint{what: "listing configs", method: http.MethodGet, path: agentapi.PathConfigs, idempotent: true}, nil, nil, &out)
	return out.Configs, err
}

// DueRuns lists the runs due on the agent now, oldest first. Idempotent.
func (c *Client) DueRuns(ctx context.Context) ([]agentapi.DueRun, error) {
	var out agentapi.RunsResponse
	err := c.call(ctx, endpoint{what: "listing due runs", method: http.MethodGet, path: agentapi.PathRuns, idempotent: true}, nil, nil, &out)
	return out.Runs, err
}

// Start starts a run: a due run (req.RunID) or a new run of a config
// (req.ConfigID). Starting a due run is idempotent (the server returns the
// run again if this agent already claimed it); starting a config is not,
// since every such request creates a run, so it is retried only when the
// server certainly did not act on it (429, no connection).
func (c *Client) Start(ctx context.Context, req agentapi.StartRequest) (agentapi.StartResponse, error) {
	var out agentapi.StartResponse
	ep := endpoint{what: "starting a backup", method: http.MethodPost, path: agentapi.PathBackupStart, idempotent: req.RunID != ""}
	err := c.call(ctx, ep, nil, req, &out)
	return out, err
}

// Parts asks for pre-signed URLs for the given parts of a Running run
// (1 to agentapi.MaxPartsPerRequest numbers, ascending): more parts, or
// fresh URLs for parts whose URLs expired. Idempotent.
func (c *Client) Parts(ctx context.Context, runID string, numbers []int) (agentapi.PartsResponse, error) {
	var out agentapi.PartsResponse
	req := agentapi.PartsRequest{RunID: runID, PartNumbers: numbers}
	err := c.call(ctx, endpoint{what: "asking for part URLs", method: http.MethodPost, path: agentapi.PathBackupParts, idempotent: true}, nil, req, &out)
	return out, err
}

// Progress reports a run's totals so far; the answer says whether the run
// was cancelled. Idempotent (totals, not deltas).
func (c *Client) Progress(ctx context.Context, req agentapi.ProgressRequest) (agentapi.ProgressResponse, error) {
	var out agentapi.ProgressResponse
	err := c.call(ctx, endpoint{what: "reporting progress", method: http.MethodPost, path: agentapi.PathBackupProgress, idempotent: true}, nil, req, &out)
	return out, err
}

// Complete ends the agent's side of a run; with status completed the
// server completes and verifies the upload. Treated as idempotent: the
// server answers a repeated successful complete with the same answer. (A
// repeat of a complete whose first attempt failed the run gets a
// conflict, which is reported as is.) upload_failed and
// verification_failed are final and never retried.
func (c *Client) Complete(ctx context.Context, req agentapi.CompleteRequest) (agentapi.CompleteResponse, error) {
	var out agentapi.CompleteResponse
	ep := endpoint{what: "completing the backup", method: http.MethodPost, path: agentapi.PathBackupComplete,
		idempotent: true, timeout: max(c.timeout, DefaultCompleteTimeout)}
	err := c.call(ctx, ep, nil, req, &out)
	return out, err
}

// Abort stops a run before it has a result (cancelled, shutting down, a
// source vanished); the server aborts the upload. Retried like an
// idempotent call; if the first attempt's answer was lost, the retry gets
// a conflict (the run already ended), which is reported as is.
func (c *Client) Abort(ctx context.Context, req agentapi.AbortRequest) (agentapi.AbortResponse, error) {
	var out agentapi.AbortResponse
	err := c.call(ctx, endpoint{what: "aborting the backup", method: http.MethodPost, path: agentapi.PathBackupAbort, idempotent: true}, nil, req, &out)
	return out, err
}

// Log sends one log line for the dashboard. Retried like an idempotent
// call: a line shown twice beats a line lost.
func (c *Client) Log(ctx context.Context, req agentapi.LogRequest) error {
	return c.call(ctx, endpoint{what: "sending a log line", method: http.MethodPost, path: agentapi.PathLog, idempotent: true}, nil, req, nil)
}

// Download asks for a pre-signed GET URL of a Succeeded run's archive,
// with its size and SHA-256 to verify it. Idempotent.
func (c *Client) Download(ctx context.Context, runID string) (agentapi.DownloadResponse, error) {
	var out agentapi.DownloadResponse
	req := agentapi.DownloadRequest{RunID: runID}
	if err := req.Validate(); err != nil {
		return out, fmt.Errorf("while asking for the download of run %s: %w", runID, err)
	}
	err := c.call(ctx, endpoint{what: "asking for the download of run " + runID, method: http.MethodGet, path: agentapi.PathDownload, idempotent: true}, req.Query(), nil, &out)
	return out, err
}

// call sends one API request, retrying as the package comment says, and
// decodes a 2xx answer into out (if not nil).
func (c *Client) call(ctx context.Context, ep endpoint, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		if v, ok := in.(agentapi.Validator); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("while %s: %w", ep.what, err)
			}
		}
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("while %s: encoding the request: %w", ep.what, err)
		}
	}
	if ep.timeout == 0 {
		ep.timeout = c.timeout
	}
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, ep, query, body, out)
		if err == nil {
			return nil
		}
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("while %s: %w (%w)", ep.what, err, cause)
		}
		wait, retry := c.retry.next(err, attempt, ep.idempotent)
		if !retry {
			return fmt.Errorf("while %s: %w", ep.what, err)
		}
		c.onRetry(RetryEvent{Path: ep.path, Attempt: attempt, Wait: wait, Err: err})
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("while %s: %w (gave up waiting to retry: %w)", ep.what, err, serr)
		}
	}
}

// once makes one attempt.
func (c *Client) once(ctx context.Context, ep endpoint, query url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, ep.timeout)
	defer cancel()
	u := *c.base
	u.Path += ep.path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, ep.method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: building the request: %w", ep.method, ep.path, err)
	}
	req.Header.Set(agentapi.HeaderAPIKey, string(c.key))
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Accept", agentapi.ContentTypeJSON)
	if body != nil {
		req.Header.Set("Content-Type", agentapi.ContentTypeJSON)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{method: ep.method, path: ep.path, err: unwrapURLError(err), notSent: notSent(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return &transportError{method: ep.method, path: ep.path, err: fmt.Errorf("reading the answer: %w", unwrapURLError(err))}
	}
	if len(data) > MaxResponseBytes {
		return fmt.Errorf("%s %s: %w: the answer exceeds %d bytes", ep.method, ep.path, ErrBadResponse, MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp, data)
	}
	if out == nil {
		return nil
	}
	// Lenient on purpose (no DisallowUnknownFields): a newer server may
	// add fields. The error of encoding/json may quote a value; none of
	// our answers' values is a secret but the URLs, and a URL that fails
	// to decode as a string is not a URL, so quoting is harmless.
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: %w: %w", ep.method, ep.path, ErrBadResponse, err)
	}
	return nil
}

// transportError is an attempt that got no HTTP answer.
type transportError struct {
	method, path string
	err          error
	// notSent: the connection was never established, so the server cannot
	// have acted on the request; even a non-idempotent one may be retried.
	notSent bool
}

func (e *transportError) Error() string {
	return fmt.Sprintf("%s %s: %v: %v", e.method, e.path, ErrUnreachable, e.err)
}

func (e *transportError) Unwrap() []error { return []error{ErrUnreachable, e.err} }

// unwrapURLError drops net/http's *url.Error, whose message quotes the
// whole URL (harmless for our API URLs, but the habit keeps pre-signed
// URLs out of errors elsewhere), keeping what it wraps.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// notSent reports whether err happened while dialling, before any byte of
// the request could reach the server.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// statusError is a non-2xx answer: the APIError the caller sees, with the
// HTTP status and Retry-After that decide whether to retry.
type statusError struct {
	apiErr     *agentapi.APIError
	status     int
	retryAfter time.Duration
}

func (e *statusError) Error() string { return e.apiErr.Error() }
func (e *statusError) Unwrap() error { return e.apiErr }

// responseError turns a non-2xx answer into an error: the server's JSON
// error if the body is one, otherwise an APIError made up from the status.
func responseError(resp *http.Response, data []byte) error {
	e := &statusError{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var body agentapi.ErrorBody
	if err := json.Unmarshal(data, &body); err == nil && body.Error.Code != "" {
		apiErr := body.Error
		e.apiErr = &apiErr
	} else {
		e.apiErr = &agentapi.APIError{
			Code: codeForStatus(resp.StatusCode),
			Message: fmt.Sprintf("the server answered %d %s without an agent API error (is something else listening, or a proxy in between?)",
				resp.StatusCode, http.StatusText(resp.StatusCode)),
		}
	}
	if e.retryAfter == 0 && e.apiErr.RetryAfterSeconds > 0 {
		e.retryAfter = time.Duration(e.apiErr.RetryAfterSeconds) * time.Second
	}
	if e.apiErr.RetryAfterSeconds == 0 && e.retryAfter > 0 {
		e.apiErr.RetryAfterSeconds = int((e.retryAfter + time.Second - 1) / time.Second)
	}
	return e
}

// codeForStatus is the code an answer without an error body gets: the one
// whose status it is, so CodeOf tells the caller what kind of failure it
// was.
func codeForStatus(status int) agentapi.Code {
	for _, code := range agentapi.Codes() {
		// upload_failed (502) and verification_failed (422) are claims
		// about the upload only our server can make; a bare 502 is a
		// proxy that could not reach it.
		if code == agentapi.CodeUploadFailed || code == agentapi.CodeVerificationFailed {
			continue
		}
		if code.HTTPStatus() == status {
			return code
		}
	}
	if status >= 500 {
		return agentapi.CodeInternal
	}
	return agentapi.CodeInvalidRequest
}
