package upload_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/backapp/backapp/agent/upload"
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/webapp"
)

const mib = 1 << 20

// sha is the hex SHA-256 of the first size bytes of stream(seed).
func sha(seed uint64, size int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, io.LimitReader(stream(seed), size))
	return hex.EncodeToString(h.Sum(nil))
}

// retryLog records OnRetry calls.
type retryLog struct {
	mu      sync.Mutex
	retries []retry
}

type retry struct {
	part, attempt int
	err           error
}

func (r retry) String() string {
	return fmt.Sprintf("part %d attempt %d: %v", r.part, r.attempt, r.err)
}

func (l *retryLog) record(part, attempt int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retries = append(l.retries, retry{part, attempt, err})
}

func (l *retryLog) of(part int) []retry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []retry
	for _, r := range l.retries {
		if r.part == part {
			out = append(out, r)
		}
	}
	return out
}

func (l *retryLog) all() []retry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]retry(nil), l.retries...)
}

// TestLargeStreamIsStoredIdentically streams 50 MiB and a bit through a
// real run in 5 MiB parts, 4 at a time: the run Succeeds, the object in
// MinIO is the stream byte for byte, the parts are complete and ascending,
// progress rises to the size, and no more than Concurrency+1 part buffers
// ever existed for 11 parts.
func TestLargeStreamIsStoredIdentically(t *testing.T) {
	h := newHarness(t, nil)
	h.config("docs", env.MinIO.Endpoint)
	start := h.start("docs")
	const size, seed = 50*mib + 12345, 1
	var (
		last       int64
		backwards  bool
		progressMu sync.Mutex
	)
	opts := upload.Options{PartSize: 5 * mib, Concurrency: 4, OnProgress: func(n int64) {
		progressMu.Lock()
		defer progressMu.Unlock()
		backwards = backwards || n < last
		last = n
	}}
	u := upload.New(t.Context(), upload.NewRunParts(h.c, start), opts)
	if err := write(u, seed, size); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if u.Size() != size || u.SHA256() != sha(seed, size) {
		t.Fatalf("size %d sha %s, want %d %s", u.Size(), u.SHA256(), size, sha(seed, size))
	}
	parts := u.Parts()
	if len(parts) != 11 {
		t.Fatalf("%d parts, want 11", len(parts))
	}
	for i, p := range parts {
		if p.PartNumber != i+1 || p.ETag == "" {
			t.Fatalf("parts[%d] = %+v", i, p)
		}
	}
	if n := upload.BuffersAllocated(u); n > opts.Concurrency+1 {
		t.Errorf("%d part buffers allocated, want at most %d", n, opts.Concurrency+1)
	}
	progressMu.Lock()
	if last != size || backwards || u.Uploaded() != size {
		t.Errorf("progress ended at %d (uploaded %d, went backwards: %v), want %d", last, u.Uploaded(), backwards, size)
	}
	progressMu.Unlock()
	if u.Transferred() < size {
		t.Errorf("transferred %d < size %d", u.Transferred(), size)
	}
	h.complete(agentapi.CompleteRequest{RunID: start.RunID, Status: agentapi.CompleteCompleted, Parts: parts,
		Size: u.Size(), SHA256: u.SHA256(), BytesTransferred: u.Transferred()}, seed, size)
}

// TestRunStoresSmallAndEdgeSizes: Run with the part size the server chose
// for a 17 MiB hint (16 MiB), and edge sizes with 5 MiB parts: an empty archive (one empty
// part, which MinIO completes to a 0-byte object), one byte, exactly one
// full part (no empty part after it), one part and a byte, and through
// the bandwidth limiter.
func TestRunStoresSmallAndEdgeSizes(t *testing.T) {
	h := newHarness(t, nil)
	h.config("docs", env.MinIO.Endpoint)
	tests := []struct {
		name      string
		size      int64
		partSize  int64
		wantParts int
	}{
		{"empty", 0, 5 * mib, 1},
		{"one byte", 1, 5 * mib, 1},
		{"exactly one part", 5 * mib, 5 * mib, 1},
		{"one part and a byte", 5*mib + 1, 5 * mib, 2},
		{"server's part size", 17 * mib, 0, 2},
		{"bandwidth-limited", 6 * mib, 5 * mib, 2},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := uint64(100 + i)
			var limit int64
			if strings.HasPrefix(tt.name, "bandwidth") {
				limit = 64 * mib // paced through the limiter, in 6 ticks
			}
			start := h.startWithHint("docs", tt.size)
			req, err := upload.Run(t.Context(), h.c, start, func(w io.Writer) error { return write(w, seed, tt.size) },
				upload.Options{PartSize: tt.partSize, BandwidthLimit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if req.RunID != start.RunID || req.Status != agentapi.CompleteCompleted || req.Size != tt.size ||
				req.SHA256 != sha(seed, tt.size) || len(req.Parts) != tt.wantParts {
				t.Fatalf("complete request: run %s status %s size %d sha %s, %d parts", req.RunID, req.Status, req.Size, req.SHA256, len(req.Parts))
			}
			h.complete(req, seed, tt.size)
		})
	}
}

// TestFaultsAreRetried: a proxy in front of MinIO resets the connection
// in the middle of part 2 once and answers 503 SlowDown to part 3 twice.
// The upload retries both from their first byte and the stored object is
// still the stream byte for byte.
func TestFaultsAreRetried(t *testing.T) {
	h := newHarness(t, nil)
	proxy := newFaultProxy(t)
	proxy.fault = func(part, attempt int, w http.ResponseWriter, r *http.Request) bool {
		switch {
		case part == 2 && attempt == 1:
			_, _ = io.CopyN(io.Discard, r.Body, 2*mib) // mid-part
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return false
			}
			_ = conn.(*net.TCPConn).SetLinger(0) // close with a reset
			conn.Close()
			return true
		case part == 3 && attempt <= 2:
			_, _ = io.Copy(io.Discard, r.Body)
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return true
		}
		return false
	}
	h.config("docs", proxy.URL)
	start := h.start("docs")
	const size, seed = 23*mib + 99, 2
	var log retryLog
	req, err := upload.Run(t.Context(), h.c, start, func(w io.Writer) error { return write(w, seed, size) },
		upload.Options{PartSize: 5 * mib, Concurrency: 4, RetryDelay: 10 * time.Millisecond, OnRetry: log.record})
	if err != nil {
		t.Fatal(err)
	}
	if got := proxy.attemptsOf(2); got != 2 {
		t.Errorf("part 2 was sent %d times, want 2 (reset once)", got)
	}
	if got := proxy.attemptsOf(3); got != 3 {
		t.Errorf("part 3 was sent %d times, want 3 (503 twice)", got)
	}
	if r := log.of(2); len(r) != 1 {
		t.Errorf("retries of part 2: %+v", r)
	} else if _, ok := errors.AsType[*upload.StorageError](r[0].err); ok {
		t.Errorf("the reset was reported as an answer: %v", r[0].err)
	}
	for _, r := range log.of(3) {
		if se, ok := errors.AsType[*upload.StorageError](r.err); !ok || se.Status != http.StatusServiceUnavailable || se.Code != "SlowDown" {
			t.Errorf("retry of part 3 after %v, want 503 SlowDown", r.err)
		}
	}
	for _, r := range log.all() {
		noSecrets(t, r.err.Error())
	}
	if req.BytesTransferred <= size {
		t.Errorf("bytes transferred %d do not count the retries (size %d)", req.BytesTransferred, size)
	}
	h.complete(req, seed, size)
}

// TestPersistentFailureFailsTheRun: a store that always answers 500 makes
// the upload fail after its retries with an error that names the part,
// the attempts and the answer, and the run ends Failed, never Succeeded.
func TestPersistentFailureFailsTheRun(t *testing.T) {
	h := newHarness(t, nil)
	proxy := newFaultProxy(t)
	proxy.fault = func(_, _ int, w http.ResponseWriter, r *http.Request) bool {
		_, _ = io.Copy(io.Discard, r.Body)
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
		return true
	}
	h.config("docs", proxy.URL)
	start := h.start("docs")
	_, err := upload.Run(t.Context(), h.c, start, func(w io.Writer) error { return write(w, 3, 12*mib) },
		upload.Options{PartSize: 5 * mib, MaxRetries: 3, RetryDelay: time.Millisecond})
	pe, ok := errors.AsType[*upload.PartError](err)
	if !ok || pe.Attempts != 4 {
		t.Fatalf("got %v, want a PartError after 4 attempts", err)
	}
	se, ok := errors.AsType[*upload.StorageError](err)
	if !ok || se.Status != http.StatusInternalServerError || se.Code != "InternalError" {
		t.Fatalf("got %v, want the 500 InternalError", err)
	}
	msg := err.Error()
	for _, want := range []string{start.RunID, fmt.Sprintf("part %d", pe.Part), "4 attempts", "500", "InternalError"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error %q does not say %q", msg, want)
		}
	}
	noSecrets(t, msg)

	done, err := h.c.Complete(t.Context(), agentapi.CompleteRequest{RunID: start.RunID, Status: agentapi.CompleteFailed, Message: msg})
	if err != nil || done.Phase != agentapi.RunFailed {
		t.Fatalf("complete failed: %v %+v", err, done)
	}
	if run := h.run(start.RunID); run.Status.Phase != backappv1alpha1.RunFailed || !strings.Contains(run.Status.Message, "500") {
		t.Fatalf("run: %s %q", run.Status.Phase, run.Status.Message)
	}
	if _, err := env.MinIO.Client().HeadObject(t.Context(), &s3.HeadObjectInput{
		Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(start.Key)}); err == nil {
		t.Error("an object was stored for the failed run")
	}
}

// TestRefusalIsFinal: parts for an upload the server already aborted get
// 404 NoSuchUpload, which no retry can fix: the upload fails at the first
// attempt.
func TestRefusalIsFinal(t *testing.T) {
	h := newHarness(t, nil)
	h.config("docs", env.MinIO.Endpoint)
	start := h.start("docs")
	if _, err := h.c.Abort(t.Context(), agentapi.AbortRequest{RunID: start.RunID, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	var log retryLog
	_, err := upload.Run(t.Context(), h.c, start, func(w io.Writer) error { return write(w, 4, 6*mib) },
		upload.Options{PartSize: 5 * mib, RetryDelay: time.Millisecond, OnRetry: log.record})
	pe, ok := errors.AsType[*upload.PartError](err)
	se, isStorage := errors.AsType[*upload.StorageError](err)
	if !ok || pe.Attempts != 1 || !isStorage || se.Status != http.StatusNotFound || se.Code != "NoSuchUpload" {
		t.Fatalf("got %v, want a PartError after 1 attempt with 404 NoSuchUpload", err)
	}
	if r := log.all(); len(r) != 0 {
		t.Errorf("a final refusal was retried: %+v", r)
	}
}

// staleFirst hands out a given (expired) URL the first time part is asked
// for, then the real source's.
type staleFirst struct {
	upload.PartSource
	part  int
	stale agentapi.PresignedURL
	calls atomic.Int32
}

func (s *staleFirst) PartURL(ctx context.Context, part int) (agentapi.PresignedURL, error) {
	if part == s.part && s.calls.Add(1) == 1 {
		return s.stale, nil
	}
	return s.PartSource.PartURL(ctx, part)
}

// TestExpiredURLIsRefreshed: a part URL that expired before its PUT gets a
// 403 from MinIO; the uploader asks its source again, gets a freshly
// signed URL and the upload succeeds.
func TestExpiredURLIsRefreshed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webapp.Config) { c.PartURLTTL = 2 * time.Second })
	h.config("docs", env.MinIO.Endpoint)
	start := h.start("docs")
	time.Sleep(time.Until(start.ExpiresAt) + time.Second) // let the URLs expire
	src := &staleFirst{PartSource: upload.NewRunParts(h.c, start), part: 2, stale: start.Parts[1].URL}
	var log retryLog
	const size, seed = 12 * mib, 5
	u := upload.New(t.Context(), src, upload.Options{PartSize: 5 * mib, OnRetry: log.record})
	if err := write(u, seed, size); err != nil {
		t.Fatal(err)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("part 2's URL was asked for %d times, want 2", n)
	}
	r := log.of(2)
	if len(r) != 1 {
		t.Fatalf("retries of part 2: %+v", r)
	}
	se, ok := errors.AsType[*upload.StorageError](r[0].err)
	if !ok || se.Status != http.StatusForbidden || !strings.Contains(strings.ToLower(se.Message), "expired") {
		t.Fatalf("part 2 was retried after %v, want a 403 for an expired request", r[0].err)
	}
	noSecrets(t, r[0].err.Error())
	h.complete(agentapi.CompleteRequest{RunID: start.RunID, Status: agentapi.CompleteCompleted, Parts: u.Parts(),
		Size: u.Size(), SHA256: u.SHA256()}, seed, size)
}

// countingParts counts backup/parts calls.
type countingParts struct {
	upload.PartsClient
	calls atomic.Int32
}

func (c *countingParts) Parts(ctx context.Context, runID string, numbers []int) (agentapi.PartsResponse, error) {
	c.calls.Add(1)
	return c.PartsClient.Parts(ctx, runID, numbers)
}

// TestSlowWriterGetsFreshURLs: with part URLs valid for 3 seconds and an
// archiver that pauses longer after the first part, RunParts notices that
// the URLs from backup/start went stale and fetches fresh ones before the
// PUTs, so object storage never refuses one.
func TestSlowWriterGetsFreshURLs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *webapp.Config) { c.PartURLTTL = 3 * time.Second })
	h.config("docs", env.MinIO.Endpoint)
	start := h.start("docs")
	parts := &countingParts{PartsClient: h.c}
	var log retryLog
	const size, seed = 14 * mib, 6
	req, err := upload.Run(t.Context(), parts, start, func(w io.Writer) error {
		src := io.LimitReader(stream(seed), size)
		if _, err := io.CopyN(w, src, 5*mib+1); err != nil {
			return err
		}
		time.Sleep(time.Until(start.ExpiresAt) + time.Second) // the archiver reads a slow disk
		_, err := io.Copy(w, src)
		return err
	}, upload.Options{PartSize: 5 * mib, OnRetry: log.record})
	if err != nil {
		t.Fatal(err)
	}
	if parts.calls.Load() == 0 {
		t.Error("no fresh URLs were fetched for the parts after the pause")
	}
	if r := log.all(); len(r) != 0 {
		t.Errorf("stale URLs reached object storage: %+v", r)
	}
	h.complete(req, seed, size)
}

// countingWriter counts what its Uploader accepted.
type countingWriter struct {
	u *upload.Uploader
	n *atomic.Int64
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.u.Write(p)
	w.n.Add(int64(n))
	return n, err
}

// TestMemoryIsBoundedAndAbortStops: while object storage holds every PUT,
// exactly Concurrency parts are in flight and the writer is held back once
// Concurrency+1 buffers are full (it never gets more accepted); Abort then
// unblocks it with ErrAborted and Close reports the same.
func TestMemoryIsBoundedAndAbortStops(t *testing.T) {
	h := newHarness(t, nil)
	proxy := newFaultProxy(t)
	release := make(chan struct{})
	held := make(chan int, 100)
	proxy.fault = func(part, _ int, w http.ResponseWriter, r *http.Request) bool {
		held <- part
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	}
	defer close(release)
	h.config("docs", proxy.URL)
	start := h.start("docs")
	const concurrency, partSize = 3, 5 * mib
	u := upload.New(t.Context(), upload.NewRunParts(h.c, start), upload.Options{PartSize: partSize, Concurrency: concurrency})
	var accepted atomic.Int64
	done := make(chan error, 1)
	go func() { done <- write(countingWriter{u, &accepted}, 7, 200*mib) }()

	for range concurrency {
		select {
		case <-held:
		case err := <-done:
			t.Fatalf("the writer finished (%v) while every PUT was held", err)
		}
	}
	// The writer fills one more buffer and then must wait; once it has
	// (nearly) filled it, give it the chance to overrun before aborting.
	bound := int64((concurrency + 1) * partSize)
	deadline := time.Now().Add(10 * time.Second)
	for accepted.Load() < bound-2*(300<<10+7) {
		if time.Now().After(deadline) {
			t.Fatalf("the writer got only %d bytes accepted, want about %d", accepted.Load(), bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	u.Abort()
	if err := <-done; !errors.Is(err, upload.ErrAborted) {
		t.Fatalf("the blocked writer got %v, want ErrAborted", err)
	}
	if got := accepted.Load(); got > bound {
		t.Errorf("%d bytes accepted while no part was stored, more than %d buffers hold", got, concurrency+1)
	}
	if n := upload.BuffersAllocated(u); n > concurrency+1 {
		t.Errorf("%d buffers allocated, want at most %d", n, concurrency+1)
	}
	if err := u.Close(); !errors.Is(err, upload.ErrAborted) {
		t.Errorf("Close after Abort: %v", err)
	}
	proxy.mu.Lock()
	if proxy.maxInFlight != concurrency {
		t.Errorf("%d PUTs in flight at most, want %d", proxy.maxInFlight, concurrency)
	}
	proxy.mu.Unlock()
	if _, err := u.Write([]byte("x")); !errors.Is(err, upload.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// TestCancelledContextStopsRun: cancelling Run's context (SIGTERM) stops
// the upload mid-stream with an error wrapping ErrAborted, and the run can
// then be aborted on the server.
func TestCancelledContextStopsRun(t *testing.T) {
	h := newHarness(t, nil)
	h.config("docs", env.MinIO.Endpoint)
	start := h.start("docs")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := upload.Run(ctx, h.c, start, func(w io.Writer) error { return write(w, 8, 1<<40) }, // "endless"
		upload.Options{PartSize: 5 * mib, OnProgress: func(n int64) {
			if n >= 12*mib {
				cancel()
			}
		}})
	if !errors.Is(err, upload.ErrAborted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrAborted and context.Canceled", err)
	}
	if ab, err := h.c.Abort(t.Context(), agentapi.AbortRequest{RunID: start.RunID, Reason: "agent stopped"}); err != nil || ab.Phase != agentapi.RunFailed {
		t.Fatalf("abort: %v %+v", err, ab)
	}
}

// TestInvalidOptions are reported by Write.
func TestInvalidOptions(t *testing.T) {
	for _, opts := range []upload.Options{{PartSize: -1}, {PartSize: 6 << 30}, {Concurrency: -1}, {BandwidthLimit: -5}} {
		u := upload.New(t.Context(), nil, opts)
		if _, err := u.Write([]byte("x")); !errors.Is(err, upload.ErrInvalidOptions) {
			t.Errorf("%+v: Write gave %v", opts, err)
		}
		if err := u.Close(); !errors.Is(err, upload.ErrInvalidOptions) {
			t.Errorf("%+v: Close gave %v", opts, err)
		}
	}
}

// BenchmarkUpload measures the upload's throughput to local MinIO through
// a real run (start, parts, complete), from memory, so that only the
// uploader, the loopback and MinIO count.
func BenchmarkUpload(b *testing.B) {
	h := newHarness(b, nil)
	h.config("docs", env.MinIO.Endpoint)
	const size = 256 * mib
	data, err := io.ReadAll(io.LimitReader(stream(9), size))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		partSize    int64
		concurrency int
	}{{16 * mib, 1}, {16 * mib, 4}, {16 * mib, 8}, {5 * mib, 8}} {
		b.Run(fmt.Sprintf("part=%dMiB/concurrency=%d", bc.partSize/mib, bc.concurrency), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				start := h.start("docs")
				req, err := upload.Run(b.Context(), h.c, start, func(w io.Writer) error {
					_, err := w.Write(data)
					return err
				}, upload.Options{PartSize: bc.partSize, Concurrency: bc.concurrency})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := h.c.Complete(b.Context(), req); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := env.MinIO.Client().DeleteObject(b.Context(), &s3.DeleteObjectInput{
					Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(start.Key)}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
	// The baseline: the same bytes in one plain PUT of a single part,
	// what MinIO on this machine takes at best from one connection.
	b.Run("baseline=one-PUT", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			start := h.start("docs")
			req, err := http.NewRequestWithContext(b.Context(), http.MethodPut, string(start.Parts[0].URL), bytes.NewReader(data))
			if err != nil {
				b.Fatal("malformed part URL")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("PUT: %d", resp.StatusCode)
			}
			sum := sha256.Sum256(data) // the agent must hash too
			if _, err := h.c.Complete(b.Context(), agentapi.CompleteRequest{RunID: start.RunID, Status: agentapi.CompleteCompleted,
				Size: size, SHA256: hex.EncodeToString(sum[:]),
				Parts: []agentapi.CompletedPart{{PartNumber: 1, ETag: resp.Header.Get("ETag")}}}); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if _, err := env.MinIO.Client().DeleteObject(b.Context(), &s3.DeleteObjectInput{
				Bucket: aws.String(env.MinIO.Bucket), Key: aws.String(start.Key)}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
}
