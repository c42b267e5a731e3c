package webapp_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
)

// upload runs backup/start for config and PUTs data in parts of the size
// the server chose, like an agent. It returns the run id and the parts.
func upload(t *testing.T, h *harness, key, config string, data []byte) (string, []agentapi.CompletedPart, agentapi.StartResponse) {
	t.Helper()
	var start agentapi.StartResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupStart, key, agentapi.StartRequest{ConfigID: config, SizeHint: int64(len(data))}, &start); code != http.StatusOK {
		t.Fatalf("start: %d %+v", code, e)
	}
	if start.Mode != agentapi.UploadMultipart || start.PartSize < 5<<20 || len(start.Parts) == 0 {
		t.Fatalf("unexpected start response: mode %s part size %d, %d URLs", start.Mode, start.PartSize, len(start.Parts))
	}
	var parts []agentapi.CompletedPart
	for i := 0; int64(i)*start.PartSize < int64(len(data)); i++ {
		chunk := data[int64(i)*start.PartSize : min(int64(len(data)), int64(i+1)*start.PartSize)]
		url := start.Parts[i].URL
		code, etag := put(t, http.MethodPut, url, chunk)
		if code != http.StatusOK || etag == "" {
			t.Fatalf("PUT part %d: %d", i+1, code)
		}
		parts = append(parts, agentapi.CompletedPart{PartNumber: i + 1, ETag: etag})
	}
	return start.RunID, parts, start
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// TestSeedFlow is the seeds' agent flow end to end on the real apiserver
// and MinIO: register, heartbeat, configs, start, parts PUT with plain
// HTTP, progress, complete, and a download that returns identical bytes.
func TestSeedFlow(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	agentName, key := h.register("Ann's laptop")

	var hb agentapi.HeartbeatResponse
	if code, e := h.do(http.MethodPost, agentapi.PathHeartbeat, key,
		agentapi.HeartbeatRequest{Version: "1.2.3", Platform: "linux", Arch: "amd64", Hostname: "ann-laptop"}, &hb); code != http.StatusOK {
		t.Fatalf("heartbeat: %d %+v", code, e)
	}
	if hb.Status != agentapi.AgentStatusOnline || hb.PollIntervalSeconds != 60 {
		t.Errorf("heartbeat answer %+v", hb)
	}
	var agent backappv1alpha1.Agent
	if err := h.k8s.Get(ctx, types.NamespacedName{Namespace: h.ns, Name: agentName}, &agent); err != nil {
		t.Fatal(err)
	}
	if agent.Status.Phase != backappv1alpha1.AgentOnline || agent.Status.Hostname != "ann-laptop" || agent.Status.LastSeen == nil {
		t.Errorf("agent status after a heartbeat: %+v", agent.Status)
	}
	if agent.Spec.APIKeyHash == "" || strings.Contains(agent.Spec.APIKeyHash, key) {
		t.Errorf("the agent must store a hash of its key, not the key")
	}

	h.agentConfig("docs", agentName, key)
	var configs agentapi.ConfigsResponse
	h.do(http.MethodGet, agentapi.PathConfigs, key, nil, &configs)
	if len(configs.Configs) != 1 || configs.Configs[0].Sources[0].Path != "/home/"+agentName ||
		configs.Configs[0].Options.Compression.Algorithm != agentapi.CompressionGzip {
		t.Fatalf("configs: %+v", configs)
	}

	data := randomBytes(17<<20 + 12345) // two parts of 16 MiB and a short last one
	runID, parts, start := upload(t, h, key, "docs", data)
	if len(parts) != 2 {
		t.Fatalf("want 2 parts, got %d", len(parts))
	}
	if run := h.run(runID); run.Status.Phase != backappv1alpha1.RunRunning || run.Status.ClaimedBy != agentName {
		t.Fatalf("after start the run is %s, claimed by %q", run.Status.Phase, run.Status.ClaimedBy)
	}

	var prog agentapi.ProgressResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupProgress, key, agentapi.ProgressRequest{
		RunID: runID, FilesProcessed: 3, BytesTransferred: int64(len(data)), Progress: 90,
	}, &prog); code != http.StatusOK || prog.Cancel {
		t.Fatalf("progress: %d %+v cancel=%v", code, e, prog.Cancel)
	}
	if run := h.run(runID); run.Status.FilesProcessed != 3 || run.Status.Progress != 90 {
		t.Errorf("progress not recorded: %+v", run.Status)
	}

	var done agentapi.CompleteResponse
	if code, e := h.do(http.MethodPost, agentapi.PathBackupComplete, key, agentapi.CompleteRequest{
		RunID: runID, Status: agentapi.CompleteCompleted, Parts: parts, Size: int64(len(data)), SHA256: sha(data),
		FilesProcessed: 4, FilesSkipped: 1, BytesTransferred: int64(len(data)), DurationMs: 1500,
		Errors: []agentapi.RunError{{Path: "/home/x/locked", Message: "permission denied"}}, ErrorCount: 1,
	}, &done); code != http.StatusOK || done.Phase != agentapi.RunSucceeded {
		t.Fatalf("complete: %d %+v %+v", code, e, done)
	}
	run := h.run(runID)
	if run.Status.Phase != backappv1alpha1.RunSucceeded || run.Status.Object == nil ||
		run.Status.Object.Size != int64(len(data)) || run.Status.Object.SHA256 != sha(data) ||
		!strings.Contains(run.Status.Object.Key, "/agents/"+string(agent.UID)+"/configs/") ||
		!strings.HasSuffix(run.Status.Object.Key, ".tar.gz") || run.Status.UploadID != "" {
		t.Fatalf("run after complete: %+v", run.Status)
	}
	if !meta.IsStatusConditionTrue(run.Status.Conditions, backappv1alpha1.ConditionVerified) {
		t.Error("a Succeeded run must carry Verified=True")
	}
	if run.Status.FilesSkipped != 1 || len(run.Status.Errors) != 1 || run.Status.CompletionTime == nil {
		t.Errorf("counts not recorded: %+v", run.Status)
	}

	var dl agentapi.DownloadResponse
	if code, e := h.do(http.MethodGet, agentapi.PathDownload+"?runId="+runID, key, nil, &dl); code != http.StatusOK {
		t.Fatalf("download: %d %+v", code, e)
	}
	if dl.SHA256 != sha(data) || dl.Size != int64(len(data)) || time.Until(dl.ExpiresAt) > time.Hour+time.Minute {
		t.Errorf("download answer: size %d sha %s expires %s", dl.Size, dl.SHA256, dl.ExpiresAt)
	}
	resp, err := http.Get(string(dl.URL))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (status %d), not the %d uploaded", len(got), resp.StatusCode, len(data))
	}

	// Nothing can change the stored object through the run's URLs.
	again := agentapi.PartsRequest{RunID: runID, PartNumbers: []int{1}}
	if code, _ := h.do(http.MethodPost, agentapi.PathBackupParts, key, again, nil); code != http.StatusConflict {
		t.Errorf("part URLs for a finished run: status %d, want 409", code)
	}
	// Reusing a part URL after completion cannot change the object.
	if code, _ := put(t, http.MethodPut, start.Parts[0].URL, randomBytes(1024)); code == http.StatusOK {
		t.Error("a part URL still accepted data after the upload was completed")
	}
	h.assertObjectUnchanged(t, run, data)

	assertNoSecretsLogged(t, h, key)
}

// assertObjectUnchanged checks the run's object still holds data.
func (h *harness) assertObjectUnchanged(t *testing.T, run *backappv1alpha1.BackupRun, data []byte) {
	t.Helper()
	out, err := env.MinIO.Client().GetObject(t.Context(), &s3.GetObjectInput{
		Bucket: aws.String(run.Status.Object.Bucket), Key: aws.String(run.Status.Object.Key)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("the stored object changed")
	}
}

func assertNoSecretsLogged(t *testing.T, h *harness, keys ...string) {
	t.Helper()
	logs := h.logs.String()
	if logs == "" {
		t.Fatal("the server logged nothing; the check would be vacuous")
	}
	for _, k := range keys {
		if strings.Contains(logs, k) {
			t.Error("an API key appears in the server log")
		}
	}
	for _, s := range []string{"X-Amz-Signature", "X-Amz-Credential", env.MinIO.SecretKey, bootstrapToken} {
		if strings.Contains(logs, s) {
			t.Errorf("%q appears in the server log", s[:min(len(s), 16)])
		}
	}
}
