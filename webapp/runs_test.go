package webapp_test

import (
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
)

// TestDueRunsAreClaimedOnceAndCanBeCancelled: a run the manager created
// (scheduled or "run now") is listed as due, claimed by start, no longer
// due afterwards; cancelling it tells the agent to stop, and its abort
// ends it Cancelled.
func TestDueRunsAreClaimedOnceAndCanBeCancelled(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	agentName, key := h.register("laptop")
	cfg := h.agentConfig("docs", agentName, key)
	slot := metav1.NewTime(metav1.Now().Rfc3339Copy().Add(-60e9))
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
	var runs agentapi.RunsResponse
	h.eventually(func() bool {
		h.do(http.MethodGet, agentapi.PathRuns, key, nil, &runs)
		return len(runs.Runs) == 1
	})
	if r := runs.Runs[0]; r.RunID != due.Name || r.ConfigID != "docs" || r.Trigger != agentapi.TriggerSchedule || !r.ScheduledTime.Equal(slot.Time) {
		t.Fatalf("due run %+v", r)
	}

	var start agentapi.StartResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{RunID: due.Name}, &start); code != http.StatusOK {
		t.Fatalf("claim: %d %+v", code, e)
	}
	// Starting it again (a lost answer) returns the same run and key.
	var again agentapi.StartResponse
	if code, _ := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{RunID: due.Name}, &again); code != http.StatusOK || again.Key != start.Key {
		t.Fatalf("restart of a claimed run: %d key %q vs %q", code, again.Key, start.Key)
	}
	h.eventually(func() bool {
		h.do(http.MethodGet, agentapi.PathRuns, key, nil, &runs)
		return len(runs.Runs) == 0
	})

	run := h.run(due.Name)
	orig := run.DeepCopy()
	run.Spec.Cancel = true
	if err := h.k8s.Patch(ctx, run, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	var prog agentapi.ProgressResponse
	if code, _ := h.do(http.MethodPost, agentapi.PathBackupProgress, key, agentapi.ProgressRequest{RunID: due.Name}, &prog); code != http.StatusOK || !prog.Cancel {
		t.Fatalf("progress after cancel: %d cancel=%v", code, prog.Cancel)
	}
	if code, _ := h.do(http.MethodPost, agentapi.PathBackupParts, key, agentapi.PartsRequest{RunID: due.Name, PartNumbers: []int{2}}, nil); code != http.StatusConflict {
		t.Errorf("parts for a cancelled run: %d, want 409", code)
	}
	var ab agentapi.AbortResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupAbort, key, agentapi.AbortRequest{RunID: due.Name, Reason: "cancelled"}, &ab); code != http.StatusOK || ab.Phase != agentapi.RunCancelled {
		t.Fatalf("abort: %d %+v %+v", code, e, ab)
	}
	if p := h.run(due.Name).Status.Phase; p != backappv1alpha1.RunCancelled {
		t.Errorf("run after abort: %s", p)
	}
	if code, _ := put(t, http.MethodPut, start.Parts[0].URL, []byte("after abort")); code == http.StatusOK {
		t.Error("the aborted upload still accepts parts")
	}
}

// TestLogIsBounded: log lines are accepted, and a line over the limit is
// refused with a code rather than stored.
func TestLogIsBounded(t *testing.T) {
	h := newHarness(t, nil)
	agentName, key := h.register("laptop")
	if code, e := h.do(http.MethodPost, agentapi.PathLog, key, agentapi.LogRequest{
		Level: agentapi.LogWarning, Message: "skipped /home/x/locked: permission denied",
		Metadata: map[string]any{"path": "/home/x/locked", "errno": 13},
	}, nil); code != http.StatusNoContent {
		t.Fatalf("log: %d %+v", code, e)
	}
	var agent backappv1alpha1.Agent
	if err := h.k8s.Get(t.Context(), client.ObjectKey{Namespace: h.ns, Name: agentName}, &agent); err != nil {
		t.Fatal(err)
	}
	got := h.srv.RecentAgentLogs(agent.UID, 10)
	if len(got) != 1 || got[0].Level != "warning" || got[0].Metadata["errno"] != "13" {
		t.Fatalf("stored log entries: %+v", got)
	}
	if code, e := h.do(http.MethodPost, agentapi.PathLog, key, agentapi.LogRequest{
		Level: agentapi.LogInfo, Message: strings.Repeat("x", agentapi.MaxLogMessageBytes+1),
	}, nil); code != http.StatusBadRequest || e.Code != agentapi.CodeInvalidRequest {
		t.Errorf("oversized log line: %d %q", code, e.Code)
	}
	if code, _ := h.do(http.MethodPost, agentapi.PathLog, key, agentapi.LogRequest{Level: "panic", Message: "x"}, nil); code != http.StatusBadRequest {
		t.Errorf("unknown level: %d", code)
	}
}

// TestBrokenDestinationIsAConflictTheAgentCanShow: a config whose
// credentials Secret is missing cannot start, with a message naming the
// problem, and no run is left behind.
func TestBrokenDestinationIsAConflictTheAgentCanShow(t *testing.T) {
	h := newHarness(t, nil)
	agentName, key := h.register("laptop")
	h.agentConfig("docs", agentName, key)
	// A second config of the agent whose credentials Secret is missing from
	// the start (so no cache can still show a working one).
	broken := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "broken"},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agentName},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/x"}},
			Destination: backappv1alpha1.Destination{Bucket: env.MinIO.Bucket, Endpoint: env.MinIO.Endpoint,
				CredentialsSecretRef: &backappv1alpha1.LocalObjectReference{Name: "missing"}},
		},
	}
	if err := h.k8s.Create(t.Context(), broken); err != nil {
		t.Fatal(err)
	}
	h.eventually(func() bool {
		var list agentapi.ConfigsResponse
		h.do(http.MethodGet, agentapi.PathConfigs, key, nil, &list)
		return len(list.Configs) == 2
	})
	code, e := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{ConfigID: "broken"}, nil)
	if code != http.StatusConflict || e.Code != agentapi.CodeConflict || !strings.Contains(e.Message, "credentials Secret") {
		t.Errorf("start with a missing Secret: %d %+v", code, e)
	}
	var runs backappv1alpha1.BackupRunList
	if err := h.k8s.List(t.Context(), &runs, client.InNamespace(h.ns)); err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 0 {
		t.Errorf("%d run(s) left behind by a start that could not begin", len(runs.Items))
	}
}
