package client_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backapp/backapp/agent/client"
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/version"
	"github.com/backapp/backapp/webapp"
)

// TestEveryCall drives every method against the real server, apiserver and
// MinIO in the order an agent uses them: heartbeat, configs, due runs,
// start (twice: idempotent), parts, a plain PUT, progress, complete, log,
// download (and the downloaded bytes), and abort of a second run.
func TestEveryCall(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	agentName, key := h.register("laptop")
	c := h.client(key)

	hb, err := c.Heartbeat(ctx, client.ThisMachine())
	if err != nil {
		t.Fatal(err)
	}
	if hb.Status != agentapi.AgentStatusOnline || hb.PollIntervalSeconds <= 0 || hb.ServerTime.IsZero() {
		t.Errorf("heartbeat answer %+v", hb)
	}
	if st := h.agent(agentName).Status; st.Phase != backappv1alpha1.AgentOnline || st.Version != version.Version || st.Platform == "" {
		t.Errorf("agent status after the heartbeat: phase %s version %q platform %q", st.Phase, st.Version, st.Platform)
	}

	cfg := h.agentConfig("docs", agentName, c)
	configs, err := c.Configs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(configs) != 1 || configs[0].ID != "docs" || configs[0].Sources[0].Path != "/home/"+agentName {
		t.Fatalf("configs: %+v", configs)
	}

	slot := metav1.NewTime(time.Now().UTC().Truncate(time.Second).Add(-time.Minute))
	due := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: cfg.ScheduledRunName(slot.Time)},
		Spec: backappv1alpha1.BackupRunSpec{
			ConfigRef: backappv1alpha1.LocalObjectReference{Name: cfg.Name},
			Trigger:   backappv1alpha1.TriggerSchedule, ScheduledTime: &slot,
		},
	}
	if err := h.k8s.Create(ctx, due); err != nil {
		t.Fatal(err)
	}
	var runs []agentapi.DueRun
	h.eventually(func() bool {
		if runs, err = c.DueRuns(ctx); err != nil {
			t.Fatal(err)
		}
		return len(runs) == 1
	})
	if runs[0].RunID != due.Name || runs[0].ConfigID != "docs" || runs[0].Trigger != agentapi.TriggerSchedule || !runs[0].ScheduledTime.Equal(slot.Time) {
		t.Fatalf("due run %+v", runs[0])
	}

	start, err := c.Start(ctx, agentapi.StartRequest{RunID: due.Name})
	if err != nil {
		t.Fatal(err)
	}
	if start.RunID != due.Name || start.Mode != agentapi.UploadMultipart || len(start.Parts) == 0 || start.PartSize < 5<<20 {
		t.Fatalf("start answer: run %s mode %s part size %d, %d URLs", start.RunID, start.Mode, start.PartSize, len(start.Parts))
	}
	again, err := c.Start(ctx, agentapi.StartRequest{RunID: due.Name})
	if err != nil || again.Key != start.Key {
		t.Fatalf("starting the claimed run again: %v, key %q vs %q", err, again.Key, start.Key)
	}

	parts, err := c.Parts(ctx, start.RunID, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(parts.Parts) != 2 || parts.Parts[0].PartNumber != 1 || parts.Parts[1].PartNumber != 2 || parts.ExpiresAt.IsZero() {
		t.Fatalf("parts answer: %v", parts)
	}
	data := make([]byte, 1<<20+17)
	_, _ = rand.Read(data)
	code, etag := put(t, parts.Parts[0].URL, data)
	if code != http.StatusOK || etag == "" {
		t.Fatalf("PUT part 1: %d", code)
	}

	prog, err := c.Progress(ctx, agentapi.ProgressRequest{RunID: start.RunID, FilesProcessed: 7, BytesTransferred: int64(len(data)), Progress: 50})
	if err != nil || prog.Cancel {
		t.Fatalf("progress: %v cancel=%v", err, prog.Cancel)
	}
	if st := h.run(start.RunID).Status; st.FilesProcessed != 7 || st.Progress != 50 {
		t.Errorf("progress not recorded: files %d progress %d", st.FilesProcessed, st.Progress)
	}

	sum := sha256.Sum256(data)
	done, err := c.Complete(ctx, agentapi.CompleteRequest{
		RunID: start.RunID, Status: agentapi.CompleteCompleted, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
		Parts: []agentapi.CompletedPart{{PartNumber: 1, ETag: etag}}, FilesProcessed: 7, BytesTransferred: int64(len(data)),
	})
	if err != nil || done.Phase != agentapi.RunSucceeded {
		t.Fatalf("complete: %v %+v", err, done)
	}
	if st := h.run(start.RunID).Status; st.Phase != backappv1alpha1.RunSucceeded || st.Object.Size != int64(len(data)) {
		t.Fatalf("run after complete: %s size %d", st.Phase, st.Object.Size)
	}

	if err := c.Log(ctx, agentapi.LogRequest{Level: agentapi.LogWarning, Message: "skipped /home/x: permission denied", RunID: start.RunID,
		Metadata: map[string]any{"path": "/home/x"}}); err != nil {
		t.Fatal(err)
	}
	if logs := h.srv.RecentAgentLogs(h.agent(agentName).UID, 10); len(logs) != 1 || logs[0].Level != "warning" || logs[0].Metadata["runId"] != start.RunID {
		t.Errorf("stored log lines: %+v", logs)
	}

	dl, err := c.Download(ctx, start.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if dl.Size != int64(len(data)) || dl.SHA256 != hex.EncodeToString(sum[:]) || dl.Key != start.Key {
		t.Errorf("download answer: size %d sha %s key %s", dl.Size, dl.SHA256, dl.Key)
	}
	resp, err := http.Get(string(dl.URL))
	if err != nil {
		t.Fatal("GET of the download URL failed")
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes with status %d, not the %d uploaded", len(got), resp.StatusCode, len(data))
	}

	second, err := c.Start(ctx, agentapi.StartRequest{ConfigID: "docs"})
	if err != nil {
		t.Fatal(err)
	}
	ab, err := c.Abort(ctx, agentapi.AbortRequest{RunID: second.RunID, Reason: "shutting down"})
	if err != nil || ab.Phase != agentapi.RunFailed {
		t.Fatalf("abort: %v %+v", err, ab)
	}
	if st := h.run(second.RunID).Status; st.Phase != backappv1alpha1.RunFailed || !strings.Contains(st.Message, "shutting down") {
		t.Errorf("run after abort: %s %q", st.Phase, st.Message)
	}
	if logs := h.logs.String(); strings.Contains(logs, string(key)) || strings.Contains(logs, "X-Amz-Signature") {
		t.Error("the server logged a secret the client sent")
	}
}

// TestErrorsAreDecoded: the server's errors come back as *APIError with
// their code, are not retried (they cannot change), and carry no secret.
func TestErrorsAreDecoded(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	agentName, key := h.register("laptop")
	var retries []client.RetryEvent
	var mu sync.Mutex
	c := h.client(key, client.WithRetryObserver(func(e client.RetryEvent) {
		mu.Lock()
		retries = append(retries, e)
		mu.Unlock()
	}))
	h.agentConfig("docs", agentName, c)

	tests := []struct {
		name string
		call func() error
		want agentapi.Code
	}{
		{"download of an unknown run", func() error { _, err := c.Download(ctx, "no-such-run"); return err }, agentapi.CodeNotFound},
		{"parts of an unknown run", func() error { _, err := c.Parts(ctx, "no-such-run", []int{1}); return err }, agentapi.CodeNotFound},
		{"start of an unknown config", func() error { _, err := c.Start(ctx, agentapi.StartRequest{ConfigID: "nope"}); return err }, agentapi.CodeNotFound},
		{"complete of a run that is not running", func() error {
			_, err := c.Complete(ctx, agentapi.CompleteRequest{RunID: "no-such-run", Status: agentapi.CompleteFailed, Message: "x"})
			return err
		}, agentapi.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var apiErr *agentapi.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.want || apiErr.Message == "" {
				t.Fatalf("got %v, want an APIError with code %s", err, tt.want)
			}
			if client.Retryable(err) {
				t.Errorf("%s reported as retryable", tt.want)
			}
			assertNoSecrets(t, err, key)
		})
	}

	t.Run("verification failure is final", func(t *testing.T) {
		start, err := c.Start(ctx, agentapi.StartRequest{ConfigID: "docs"})
		if err != nil {
			t.Fatal(err)
		}
		code, etag := put(t, start.Parts[0].URL, []byte("four"))
		if code != http.StatusOK {
			t.Fatalf("PUT: %d", code)
		}
		_, err = c.Complete(ctx, agentapi.CompleteRequest{RunID: start.RunID, Status: agentapi.CompleteCompleted,
			Size: 5, SHA256: strings.Repeat("0", 64), Parts: []agentapi.CompletedPart{{PartNumber: 1, ETag: etag}}})
		if agentapi.CodeOf(err) != agentapi.CodeVerificationFailed || client.Retryable(err) {
			t.Fatalf("complete with a wrong size: %v", err)
		}
		if p := h.run(start.RunID).Status.Phase; p != backappv1alpha1.RunFailed {
			t.Errorf("run is %s", p)
		}
	})

	t.Run("invalid requests are refused before sending", func(t *testing.T) {
		// A client for a port nobody listens on: a request that left
		// would fail with ErrUnreachable instead.
		dead, err := client.New(deadURL(t), key, client.WithRetry(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = dead.Parts(ctx, "run", nil)
		if agentapi.CodeOf(err) != agentapi.CodeInvalidRequest || errors.Is(err, client.ErrUnreachable) {
			t.Errorf("parts without numbers: %v", err)
		}
		if _, err := dead.Download(ctx, "../etc"); agentapi.CodeOf(err) != agentapi.CodeInvalidRequest {
			t.Errorf("download of a malformed run id: %v", err)
		}
	})

	mu.Lock()
	if len(retries) != 0 {
		t.Errorf("final errors were retried: %+v", retries)
	}
	mu.Unlock()

	t.Run("revoked key", func(t *testing.T) {
		var a backappv1alpha1.Agent
		if err := h.k8s.Get(ctx, ctrlclient.ObjectKey{Namespace: h.ns, Name: agentName}, &a); err != nil {
			t.Fatal(err)
		}
		orig := a.DeepCopy()
		a.Spec.APIKeyHash = ""
		if err := h.k8s.Patch(ctx, &a, ctrlclient.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
		var err error
		h.eventually(func() bool {
			_, err = c.Heartbeat(ctx, client.ThisMachine())
			return err != nil
		})
		var apiErr *agentapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeUnauthorized || client.Retryable(err) {
			t.Fatalf("heartbeat with a revoked key: %v", err)
		}
		assertNoSecrets(t, err, key)
	})
}

// TestRateLimitedCallsWaitForRetryAfter: with a tiny per-key budget the
// server answers 429 with Retry-After; the client waits at least that long
// and succeeds, also for a non-idempotent start (refused, so never done
// twice). Without retries the 429 reaches the caller as rate_limited.
func TestRateLimitedCallsWaitForRetryAfter(t *testing.T) {
	h := newHarness(t, func(c *webapp.Config) { c.PerKeyRate, c.PerKeyBurst = 0.5, 1 })
	ctx := t.Context()
	agentName, key := h.register("laptop")
	var events []client.RetryEvent
	c := h.client(key, client.WithRetryObserver(func(e client.RetryEvent) { events = append(events, e) }))

	if _, err := c.Heartbeat(ctx, client.ThisMachine()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, client.ThisMachine()); err != nil {
		t.Fatalf("the rate-limited heartbeat was not retried to success: %v", err)
	}
	if len(events) == 0 {
		t.Fatal("the second heartbeat within the budget's second was not rate-limited; the test proves nothing")
	}
	for _, e := range events {
		var apiErr *agentapi.APIError
		if !errors.As(e.Err, &apiErr) || apiErr.Code != agentapi.CodeRateLimited || apiErr.RetryAfterSeconds < 1 {
			t.Fatalf("retry after %v, want rate_limited with retryAfterSeconds", e.Err)
		}
		if e.Wait < time.Duration(apiErr.RetryAfterSeconds)*time.Second {
			t.Errorf("waited %s before retrying, less than Retry-After %ds", e.Wait, apiErr.RetryAfterSeconds)
		}
		if e.Path != agentapi.PathHeartbeat {
			t.Errorf("retry event for %s", e.Path)
		}
	}

	// The config is created directly: listing it would spend the budget.
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "docs"},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agentName},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/x"}},
			Destination: backappv1alpha1.Destination{Bucket: env.MinIO.Bucket, Endpoint: env.MinIO.Endpoint, ForcePathStyle: true,
				Region: env.MinIO.Region, CredentialsSecretRef: &backappv1alpha1.LocalObjectReference{Name: "s3"}},
		},
	}
	if err := h.k8s.Create(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	events = nil
	var start agentapi.StartResponse
	h.eventually(func() bool { // until the server's cache has the config
		var err error
		start, err = c.Start(ctx, agentapi.StartRequest{ConfigID: "docs"})
		if err != nil && agentapi.CodeOf(err) != agentapi.CodeNotFound {
			t.Fatal(err)
		}
		return err == nil
	})
	var list backappv1alpha1.BackupRunList
	if err := h.k8s.List(ctx, &list, ctrlclient.InNamespace(h.ns)); err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != start.RunID {
		t.Errorf("a retried start created %d runs", len(list.Items))
	}
	rateLimited := 0
	for _, e := range events {
		if agentapi.CodeOf(e.Err) == agentapi.CodeRateLimited {
			rateLimited++
		}
	}
	if rateLimited == 0 {
		t.Error("start was never rate-limited; the non-idempotent retry went untested")
	}

	once := h.client(key, client.WithRetry(1, 0, 0))
	_, err := once.Heartbeat(ctx, client.ThisMachine())
	var apiErr *agentapi.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeRateLimited || apiErr.RetryAfterSeconds < 1 || !client.Retryable(err) {
		t.Fatalf("without retries: %v", err)
	}
}

// TestNoAnswer: a server that is down, and a proxy in front of one that
// is down (an empty 502, not our JSON), give errors the caller can act on;
// idempotent calls are retried, a start of a config only when the request
// certainly never arrived.
func TestNoAnswer(t *testing.T) {
	_, key := newHarness(t, nil).register("laptop")
	ctx := t.Context()
	count := func() (*int, client.Option) {
		n := new(int)
		return n, client.WithRetryObserver(func(client.RetryEvent) { *n++ })
	}

	t.Run("nothing listening", func(t *testing.T) {
		n, observe := count()
		c, err := client.New(deadURL(t), key, client.WithRetry(3, time.Millisecond, 5*time.Millisecond), observe)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Heartbeat(ctx, client.ThisMachine())
		if !errors.Is(err, client.ErrUnreachable) || !client.Retryable(err) || *n != 2 {
			t.Fatalf("heartbeat: %v after %d retries", err, *n)
		}
		assertNoSecrets(t, err, key)
		*n = 0
		_, err = c.Start(ctx, agentapi.StartRequest{ConfigID: "docs"})
		if !errors.Is(err, client.ErrUnreachable) || *n != 2 {
			t.Fatalf("start: %v after %d retries (a refused connection is safe to retry)", err, *n)
		}
	})

	t.Run("proxy without a backend", func(t *testing.T) {
		target, _ := url.Parse(deadURL(t))
		proxy := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		defer proxy.Close()
		n, observe := count()
		c, err := client.New(proxy.URL, key, client.WithRetry(3, time.Millisecond, 5*time.Millisecond), observe)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Heartbeat(ctx, client.ThisMachine())
		var apiErr *agentapi.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeInternal || !strings.Contains(apiErr.Message, "502") || *n != 2 {
			t.Fatalf("heartbeat through a broken proxy: %v after %d retries", err, *n)
		}
		*n = 0
		_, err = c.Start(ctx, agentapi.StartRequest{ConfigID: "docs"})
		if agentapi.CodeOf(err) != agentapi.CodeInternal || *n != 0 {
			t.Fatalf("start through a broken proxy: %v after %d retries; the server may have acted, so no retry", err, *n)
		}
	})

	t.Run("redirects are not followed", func(t *testing.T) {
		var leaked []string
		var mu sync.Mutex
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			leaked = append(leaked, r.Header.Get(agentapi.HeaderAPIKey))
			mu.Unlock()
		}))
		defer elsewhere.Close()
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
		}))
		defer redirector.Close()
		c, err := client.New(redirector.URL, key, client.WithRetry(1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Heartbeat(ctx, client.ThisMachine())
		if err == nil || !strings.Contains(err.Error(), "307") {
			t.Errorf("heartbeat answered by a redirect: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(leaked) != 0 {
			t.Error("the client followed a redirect with its API key")
		}
	})
}

// deadURL is the URL of a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestNewChecksTheServerURL: only absolute http(s) URLs without
// credentials or query; plain http only to loopback unless allowed.
func TestNewChecksTheServerURL(t *testing.T) {
	key, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url      string
		insecure bool
		want     error
	}{
		{"https://backapp.example.com", false, nil},
		{"https://backapp.example.com/prefix/", false, nil},
		{"http://127.0.0.1:8080", false, nil},
		{"http://[::1]:8080", false, nil},
		{"http://localhost:8080", false, nil},
		{"http://backapp.backapp.svc:8080", false, client.ErrInsecureServerURL},
		{"http://backapp.backapp.svc:8080", true, nil},
		{"", false, client.ErrInvalidServerURL},
		{"backapp.example.com", false, client.ErrInvalidServerURL},
		{"ftp://backapp.example.com", false, client.ErrInvalidServerURL},
		{"https://user:" + string(key) + "@backapp.example.com", false, client.ErrInvalidServerURL},
		{"https://backapp.example.com/?key=" + string(key), false, client.ErrInvalidServerURL},
		{"https://backapp.example.com/#x", false, client.ErrInvalidServerURL},
		{"https://:443", false, client.ErrInvalidServerURL},
		{"https://backapp.example.com/\x00", false, client.ErrInvalidServerURL},
	}
	for _, tt := range tests {
		var opts []client.Option
		if tt.insecure {
			opts = append(opts, client.AllowInsecureHTTP())
		}
		_, err := client.New(tt.url, key, opts...)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("New(%q, insecure=%v): %v, want %v", strings.ReplaceAll(tt.url, string(key), "KEY"), tt.insecure, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), string(key)) {
			t.Errorf("the error for a URL repeats the key pasted into it")
		}
	}
	if _, err := client.New("https://backapp.example.com", "bak_nope"); !errors.Is(err, apikey.ErrMalformed) {
		t.Errorf("a malformed key: %v", err)
	}
}
