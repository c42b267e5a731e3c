package webapp_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/webapp"
)

// TestPartURLsAreScoped: a pre-signed part URL works for its key, its
// method and its lifetime only.
func TestPartURLsAreScoped(t *testing.T) {
	h := newHarness(t, func(c *webapp.Config) { c.PartURLTTL = 2 * time.Second })
	agentName, key := h.register("laptop")
	h.agentConfig("docs", agentName, key)
	var start agentapi.StartResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{ConfigID: "docs"}, &start); code != http.StatusOK {
		t.Fatalf("start: %d %+v", code, e)
	}
	partURL := start.Parts[0].URL
	u, err := url.Parse(string(partURL))
	if err != nil {
		t.Fatal(err)
	}
	other := *u
	other.Path = strings.Replace(u.Path, "/backup-", "/other-", 1)
	if code, _ := put(t, http.MethodPut, agentapi.PresignedURL(other.String()), []byte("x")); code != http.StatusForbidden {
		t.Errorf("PUT to another key with the part URL's signature: status %d, want 403", code)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete, http.MethodPost} {
		if code, _ := put(t, method, partURL, nil); code < 400 {
			t.Errorf("%s with a part URL: status %d, want a refusal", method, code)
		}
	}
	time.Sleep(3 * time.Second) // let the 2-second URL expire
	if code, _ := put(t, http.MethodPut, partURL, []byte("late")); code != http.StatusForbidden {
		t.Errorf("PUT with an expired part URL: status %d, want 403", code)
	}
	// A fresh URL for the same part works again.
	var parts agentapi.PartsResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupParts, key, agentapi.PartsRequest{RunID: start.RunID, PartNumbers: []int{1, 2}}, &parts); code != http.StatusOK || len(parts.Parts) != 2 {
		t.Fatalf("parts: %d %+v", code, e)
	}
	if code, _ := put(t, http.MethodPut, parts.Parts[0].URL, []byte("fresh")); code != http.StatusOK {
		t.Errorf("PUT with a fresh part URL: status %d", code)
	}
	assertNoSecretsLogged(t, h, key)
}

// TestCompleteRefusesWhatWasNotStored: a wrong size or ETag list fails the
// run with a clear reason; it never becomes Succeeded.
func TestCompleteRefusesWhatWasNotStored(t *testing.T) {
	h := newHarness(t, nil)
	agentName, key := h.register("laptop")
	h.agentConfig("docs", agentName, key)
	data := randomBytes(1 << 20)

	t.Run("wrong size", func(t *testing.T) {
		runID, parts, _ := upload(t, h, key, "docs", data)
		code, e := h.do(http.MethodPost, agentapi.PathBackupComplete, key, agentapi.CompleteRequest{
			RunID: runID, Status: agentapi.CompleteCompleted, Parts: parts, Size: int64(len(data)) + 1, SHA256: sha(data),
		}, nil)
		if code != http.StatusUnprocessableEntity || e.Code != agentapi.CodeVerificationFailed {
			t.Fatalf("complete with a wrong size: %d %+v", code, e)
		}
		run := h.run(runID)
		if run.Status.Phase != backappv1alpha1.RunFailed || !strings.Contains(run.Status.Message, "bytes") {
			t.Fatalf("run after a size mismatch: %s %q", run.Status.Phase, run.Status.Message)
		}
	})
	t.Run("wrong ETag", func(t *testing.T) {
		runID, parts, _ := upload(t, h, key, "docs", data)
		parts[0].ETag = `"0123456789abcdef0123456789abcdef"`
		code, e := h.do(http.MethodPost, agentapi.PathBackupComplete, key, agentapi.CompleteRequest{
			RunID: runID, Status: agentapi.CompleteCompleted, Parts: parts, Size: int64(len(data)), SHA256: sha(data),
		}, nil)
		if code != http.StatusBadGateway || e.Code != agentapi.CodeUploadFailed {
			t.Fatalf("complete with a wrong ETag: %d %+v", code, e)
		}
		run := h.run(runID)
		if run.Status.Phase != backappv1alpha1.RunFailed || !strings.Contains(run.Status.Message, "ETag") {
			t.Fatalf("run after an ETag mismatch: %s %q", run.Status.Phase, run.Status.Message)
		}
		// A failed run stays failed: completing it again is a conflict.
		code, _ = h.do(http.MethodPost, agentapi.PathBackupComplete, key, agentapi.CompleteRequest{
			RunID: runID, Status: agentapi.CompleteCompleted, Parts: parts, Size: int64(len(data)), SHA256: sha(data),
		}, nil)
		if code != http.StatusConflict || h.run(runID).Status.Phase != backappv1alpha1.RunFailed {
			t.Fatalf("a second complete of a failed run: %d, phase %s", code, h.run(runID).Status.Phase)
		}
	})
	t.Run("agent-reported failure", func(t *testing.T) {
		runID, _, _ := upload(t, h, key, "docs", data)
		var out agentapi.CompleteResponse
		code, _ := h.do(http.MethodPost, agentapi.PathBackupComplete, key, agentapi.CompleteRequest{
			RunID: runID, Status: agentapi.CompleteFailed, Message: "source path /home/x does not exist",
		}, &out)
		if code != http.StatusOK || out.Phase != agentapi.RunFailed {
			t.Fatalf("failed complete: %d %+v", code, out)
		}
		if run := h.run(runID); run.Status.Phase != backappv1alpha1.RunFailed || !strings.Contains(run.Status.Message, "does not exist") {
			t.Fatalf("run: %s %q", run.Status.Phase, run.Status.Message)
		}
	})
}

// TestAgentsAreIsolated: agent A can never read, list, start, download or
// log for agent B's configs or runs, on any endpoint.
func TestAgentsAreIsolated(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	nameA, keyA := h.register("A")
	nameB, keyB := h.register("B")
	h.agentConfig("a-docs", nameA, keyA)
	h.agentConfig("b-docs", nameB, keyB)
	data := randomBytes(4096)
	runB, partsB, _ := upload(t, h, keyB, "b-docs", data)
	if code, e := h.do(http.MethodPost, agentapi.PathBackupComplete, keyB, agentapi.CompleteRequest{
		RunID: runB, Status: agentapi.CompleteCompleted, Parts: partsB, Size: int64(len(data)), SHA256: sha(data),
	}, nil); code != http.StatusOK {
		t.Fatalf("complete B: %d %+v", code, e)
	}
	// A pending run of B's config, as the manager would create it.
	pendingB := &backappv1alpha1.BackupRun{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "b-docs-manual-1"},
		Spec:       backappv1alpha1.BackupRunSpec{ConfigRef: backappv1alpha1.LocalObjectReference{Name: "b-docs"}},
	}
	if err := h.k8s.Create(ctx, pendingB); err != nil {
		t.Fatal(err)
	}
	runningB, _, _ := upload(t, h, keyB, "b-docs", data)

	var configs agentapi.ConfigsResponse
	h.do(http.MethodGet, agentapi.PathConfigs, keyA, nil, &configs)
	if len(configs.Configs) != 1 || configs.Configs[0].ID != "a-docs" {
		t.Errorf("A sees configs %+v", configs.Configs)
	}
	h.eventually(func() bool { // B sees its pending run once the cache has it
		var runs agentapi.RunsResponse
		h.do(http.MethodGet, agentapi.PathRuns, keyB, nil, &runs)
		return len(runs.Runs) == 1
	})
	var runs agentapi.RunsResponse
	h.do(http.MethodGet, agentapi.PathRuns, keyA, nil, &runs)
	if len(runs.Runs) != 0 {
		t.Errorf("A sees B's due runs: %+v", runs.Runs)
	}

	tests := []struct {
		name, method, path string
		body               any
	}{
		{"start B's config", http.MethodPost, agentapi.PathBackupStart, agentapi.StartRequest{ConfigID: "b-docs"}},
		{"claim B's due run", http.MethodPost, agentapi.PathBackupStart, agentapi.StartRequest{RunID: pendingB.Name}},
		{"take over B's running run", http.MethodPost, agentapi.PathBackupStart, agentapi.StartRequest{RunID: runningB}},
		{"parts of B's run", http.MethodPost, agentapi.PathBackupParts, agentapi.PartsRequest{RunID: runningB, PartNumbers: []int{1}}},
		{"progress of B's run", http.MethodPost, agentapi.PathBackupProgress, agentapi.ProgressRequest{RunID: runningB}},
		{"complete B's run", http.MethodPost, agentapi.PathBackupComplete, agentapi.CompleteRequest{RunID: runningB, Status: agentapi.CompleteFailed, Message: "x"}},
		{"abort B's run", http.MethodPost, agentapi.PathBackupAbort, agentapi.AbortRequest{RunID: runningB, Reason: "x"}},
		{"download B's backup", http.MethodGet, agentapi.PathDownload + "?runId=" + runB, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, e := h.do(tt.method, tt.path, keyA, tt.body, nil)
			if code != http.StatusNotFound || e.Code != agentapi.CodeNotFound {
				t.Errorf("status %d code %q, want 404 not_found (indistinguishable from a missing object)", code, e.Code)
			}
		})
	}
	// B's runs are untouched by all of that.
	if p := h.run(runningB).Status.Phase; p != backappv1alpha1.RunRunning {
		t.Errorf("B's running run is now %s", p)
	}
	if p := h.run(pendingB.Name).Status.ClaimedBy; p != "" {
		t.Errorf("B's pending run was claimed by %q", p)
	}
	assertNoSecretsLogged(t, h, keyA, keyB)
}

// TestKeysAndBadInput: revoked, rotated, malformed keys; oversized bodies,
// unknown fields, path tricks: each a 4xx with a code.
func TestKeysAndBadInput(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	agentName, key := h.register("laptop")
	hb := agentapi.HeartbeatRequest{Version: "1.0.0", Platform: "linux"}
	expect := func(t *testing.T, key string, body any, path string, wantStatus int, wantCode agentapi.Code) {
		t.Helper()
		code, e := h.do(http.MethodPost, path, key, body, nil)
		if code != wantStatus || (wantCode != "" && e.Code != wantCode) {
			t.Errorf("status %d code %q (%s), want %d %q", code, e.Code, e.Message, wantStatus, wantCode)
		}
	}

	t.Run("malformed keys", func(t *testing.T) {
		for _, bad := range []string{"", "nope", "bak_", strings.Repeat("a", 5000), key[:len(key)-1] + "x", key + "0"} {
			expect(t, bad, hb, agentapi.PathHeartbeat, http.StatusUnauthorized, agentapi.CodeUnauthorized)
		}
	})
	t.Run("bad bodies", func(t *testing.T) {
		expect(t, key, strings.Repeat(" ", agentapi.MaxHeartbeatBodyBytes+1), agentapi.PathHeartbeat, http.StatusRequestEntityTooLarge, agentapi.CodePayloadTooLarge)
		expect(t, key, `{"version":"1","platform":"linux","isAdmin":true}`, agentapi.PathHeartbeat, http.StatusBadRequest, agentapi.CodeInvalidRequest)
		expect(t, key, `{"version":"1","platform":"linux"} {}`, agentapi.PathHeartbeat, http.StatusBadRequest, agentapi.CodeInvalidRequest)
		expect(t, key, `not json`, agentapi.PathHeartbeat, http.StatusBadRequest, agentapi.CodeInvalidRequest)
	})
	t.Run("path tricks in ids", func(t *testing.T) {
		for _, id := range []string{"../other", "%2e%2e%2fother", "a/b", "docs\x00", "..", ""} {
			code, e := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{ConfigID: id}, nil)
			if code < 400 || code >= 500 || e.Code == "" {
				t.Errorf("configId %q: status %d code %q", id, code, e.Code)
			}
			code, e = h.do(http.MethodGet, agentapi.PathDownload+"?runId="+url.QueryEscape(id), key, nil, nil)
			if code < 400 || code >= 500 || e.Code == "" {
				t.Errorf("download runId %q: status %d code %q", id, code, e.Code)
			}
		}
	})
	t.Run("routing", func(t *testing.T) {
		if code, e := h.do(http.MethodGet, agentapi.PathHeartbeat, key, nil, nil); code != http.StatusMethodNotAllowed || e.Code != agentapi.CodeMethodNotAllowed {
			t.Errorf("GET heartbeat: %d %q", code, e.Code)
		}
		if code, e := h.do(http.MethodGet, agentapi.BasePath+"/nope", key, nil, nil); code != http.StatusNotFound || e.Code != agentapi.CodeNotFound {
			t.Errorf("unknown endpoint: %d %q", code, e.Code)
		}
		if code, e := h.do(http.MethodPost, agentapi.PathRegister, "", agentapi.RegisterRequest{Name: "x"}, nil); code != http.StatusUnauthorized || e.Code != agentapi.CodeUnauthorized {
			t.Errorf("register without the bootstrap token: %d %q", code, e.Code)
		}
	})

	agentKey := types.NamespacedName{Namespace: h.ns, Name: agentName}
	update := func(change func(*backappv1alpha1.Agent)) {
		t.Helper()
		var a backappv1alpha1.Agent
		if err := h.k8s.Get(ctx, agentKey, &a); err != nil {
			t.Fatal(err)
		}
		orig := a.DeepCopy()
		change(&a)
		if err := h.k8s.Patch(ctx, &a, client.MergeFrom(orig)); err != nil {
			t.Fatal(err)
		}
	}
	status := func(key string) int {
		code, _ := h.do(http.MethodPost, agentapi.PathHeartbeat, key, hb, nil)
		return code
	}
	t.Run("disabled agent", func(t *testing.T) {
		update(func(a *backappv1alpha1.Agent) { a.Spec.Disabled = true })
		h.eventually(func() bool { return status(key) == http.StatusForbidden })
		update(func(a *backappv1alpha1.Agent) { a.Spec.Disabled = false })
		h.eventually(func() bool { return status(key) == http.StatusOK })
	})
	t.Run("rotated then revoked key", func(t *testing.T) {
		_, other := h.register("donor") // a well-formed key to rotate to
		var donor backappv1alpha1.AgentList
		if err := h.k8s.List(ctx, &donor, client.InNamespace(h.ns)); err != nil {
			t.Fatal(err)
		}
		var newHash string
		for _, a := range donor.Items {
			if a.Spec.DisplayName == "donor" {
				newHash = a.Spec.APIKeyHash
				if err := h.k8s.Delete(ctx, &a); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.eventually(func() bool { return status(other) == http.StatusUnauthorized })
		update(func(a *backappv1alpha1.Agent) { a.Spec.APIKeyHash = newHash })
		// The watch delivers the change in milliseconds; the old key is
		// refused from then on and the new one accepted.
		h.eventually(func() bool { return status(key) == http.StatusUnauthorized })
		if code := status(other); code != http.StatusOK {
			t.Fatalf("the rotated key: %d", code)
		}
		update(func(a *backappv1alpha1.Agent) { a.Spec.APIKeyHash = "" })
		h.eventually(func() bool { return status(other) == http.StatusUnauthorized })
	})
	assertNoSecretsLogged(t, h, key)
}

// TestRateLimits: past its budget a key gets 429 with Retry-After, and
// other agents keep being served.
func TestRateLimits(t *testing.T) {
	h := newHarness(t, func(c *webapp.Config) { c.PerKeyRate, c.PerKeyBurst = 1, 5 })
	_, noisy := h.register("noisy")
	_, quiet := h.register("quiet")
	hb := agentapi.HeartbeatRequest{Version: "1.0.0", Platform: "linux"}
	limited := 0
	for range 20 {
		if code, e := h.do(http.MethodPost, agentapi.PathHeartbeat, noisy, hb, nil); code == http.StatusTooManyRequests {
			limited++
			if e.Code != agentapi.CodeRateLimited || e.RetryAfterSeconds < 1 {
				t.Fatalf("429 without code or retryAfterSeconds: %+v", e)
			}
		}
	}
	if limited < 10 {
		t.Errorf("only %d of 20 rapid requests were limited with a burst of 5", limited)
	}
	if code, _ := h.do(http.MethodPost, agentapi.PathHeartbeat, quiet, hb, nil); code != http.StatusOK {
		t.Errorf("another agent was refused (%d) while one was limited", code)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+agentapi.PathHeartbeat, strings.NewReader(`{"version":"1","platform":"linux"}`))
	req.Header.Set(agentapi.HeaderAPIKey, noisy)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}
