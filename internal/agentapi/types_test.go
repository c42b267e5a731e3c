package agentapi_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
)

// testKey is a well-formed API key (32 bytes 0x00..0x1f).
const testKey = "bak_aaaqeayeaudaocajbifqydiob4ibceqtcqkrmfyydenbwha5dypzcjt6ri"

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = time.Date(2026, 1, 2, 4, 4, 5, 0, time.UTC)
)

const (
	partURL1 = "https://s3.example.com/bucket/users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz?partNumber=1&uploadId=UP&X-Amz-Signature=sig1"
	partURL2 = "https://s3.example.com/bucket/users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz?partNumber=2&uploadId=UP&X-Amz-Signature=sig2"
	getURL   = "https://s3.example.com/bucket/users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz?X-Amz-Signature=sig3"
	sum      = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

func validComplete() agentapi.CompleteRequest {
	return agentapi.CompleteRequest{
		RunID:            "daily-29457424",
		Status:           agentapi.CompleteCompleted,
		Parts:            []agentapi.CompletedPart{{PartNumber: 1, ETag: `"0cc175b9c0f1b6a831c399e269772661"`}, {PartNumber: 2, ETag: `"92eb5ffee6ae2fec3ad71c777531578f"`}},
		Size:             73400320,
		SHA256:           sum,
		FilesProcessed:   150,
		FilesSkipped:     2,
		BytesTransferred: 73400320,
		DurationMs:       45000,
		Errors:           []agentapi.RunError{{Path: "/Users/ann/locked.db", Message: "permission denied"}, {Message: "a file vanished while reading"}},
		ErrorCount:       2,
	}
}

// goldenCase is a value of a wire type and its JSON, with the field names
// pinned: renaming a field breaks agents in the field.
type goldenCase struct {
	name string
	run  func(t *testing.T)
}

func golden[T any](name string, v T, want string) goldenCase {
	return goldenCase{name: name, run: func(t *testing.T) {
		got, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(want)); err != nil {
			t.Fatalf("bad golden JSON: %v", err)
		}
		if string(got) != compact.String() {
			t.Fatalf("Marshal =\n%s\nwant\n%s", got, compact.String())
		}
		// Back through the strict decoder: every field name is known, and
		// the value survives unchanged.
		var back T
		if err := agentapi.Decode(bytes.NewReader(got), int64(len(got)), &back); err != nil {
			t.Fatalf("Decode of the marshalled value: %v", err)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("round trip changed the value:\n got %#v\nwant %#v", back, v)
		}
	}}
}

func TestGoldenJSON(t *testing.T) {
	cases := []goldenCase{
		golden("RegisterRequest", agentapi.RegisterRequest{Name: "Ann's MacBook", Platform: "darwin"},
			`{"name":"Ann's MacBook","platform":"darwin"}`),
		golden("RegisterRequest minimal", agentapi.RegisterRequest{Name: "x"}, `{"name":"x"}`),
		golden("RegisterResponse", agentapi.RegisterResponse{Agent: agentapi.RegisteredAgent{
			ID: "anns-macbook", Name: "Ann's MacBook", APIKey: apikey.Key(testKey), Status: agentapi.AgentStatusPending,
		}}, `{"agent":{"id":"anns-macbook","name":"Ann's MacBook","apiKey":"`+testKey+`","status":"pending"}}`),
		golden("HeartbeatRequest", agentapi.HeartbeatRequest{Version: "v0.1.0", Platform: "darwin", Arch: "arm64", Hostname: "anns-mbp.local"},
			`{"version":"v0.1.0","platform":"darwin","arch":"arm64","hostname":"anns-mbp.local"}`),
		golden("HeartbeatResponse", agentapi.HeartbeatResponse{Status: agentapi.AgentStatusOnline, PollIntervalSeconds: 60, ServerTime: t0},
			`{"status":"online","pollIntervalSeconds":60,"serverTime":"2026-01-02T03:04:05Z"}`),
		golden("ConfigsResponse", agentapi.ConfigsResponse{Configs: []agentapi.AgentConfig{{
			ID:   "daily",
			Name: "Daily Backup",
			Sources: []agentapi.Source{{
				Name: "docs", Path: "/Users/ann/Documents", Include: []string{"**/*.md"}, Exclude: []string{"**/node_modules"},
			}},
			Options: agentapi.Options{
				Type:                    agentapi.BackupTypeFull,
				Compression:             agentapi.Compression{Algorithm: agentapi.CompressionZstd, Level: 3},
				Encryption:              &agentapi.Encryption{Recipients: []string{"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"}},
				BandwidthLimitKiBps:     1024,
				ProgressDeadlineSeconds: 600,
				PreHook:                 &agentapi.Hook{Command: []string{"pg_dump", "-f", "/tmp/db.sql"}, TimeoutSeconds: 300},
				PostHook:                &agentapi.Hook{Command: []string{"rm", "/tmp/db.sql"}, TimeoutSeconds: 60},
			},
			Schedule:  &agentapi.ScheduleSummary{Cron: "0 3 * * *", TimeZone: "Europe/Berlin", NextRunTime: t1, LastRunTime: t0},
			Suspended: true,
		}, {
			ID: "minimal", Name: "minimal", Sources: []agentapi.Source{{Path: "~"}},
			Options: agentapi.Options{Type: agentapi.BackupTypeIncremental, Compression: agentapi.Compression{Algorithm: agentapi.CompressionNone}},
		}}}, `{"configs":[{
			"id":"daily","name":"Daily Backup",
			"sources":[{"name":"docs","path":"/Users/ann/Documents","include":["**/*.md"],"exclude":["**/node_modules"]}],
			"options":{"type":"full","compression":{"algorithm":"zstd","level":3},
				"encryption":{"recipients":["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]},
				"bandwidthLimitKiBps":1024,"progressDeadlineSeconds":600,
				"preHook":{"command":["pg_dump","-f","/tmp/db.sql"],"timeoutSeconds":300},
				"postHook":{"command":["rm","/tmp/db.sql"],"timeoutSeconds":60}},
			"schedule":{"cron":"0 3 * * *","timeZone":"Europe/Berlin","nextRunTime":"2026-01-02T04:04:05Z","lastRunTime":"2026-01-02T03:04:05Z"},
			"suspended":true
		},{
			"id":"minimal","name":"minimal","sources":[{"path":"~"}],
			"options":{"type":"incremental","compression":{"algorithm":"none"}}
		}]}`),
		golden("RunsResponse", agentapi.RunsResponse{Runs: []agentapi.DueRun{
			{RunID: "daily-29457424", ConfigID: "daily", Trigger: agentapi.TriggerSchedule, ScheduledTime: t0},
			{RunID: "daily-manual-0a1b2c3d4e", ConfigID: "daily", Trigger: agentapi.TriggerManual},
		}}, `{"runs":[
			{"runId":"daily-29457424","configId":"daily","trigger":"schedule","scheduledTime":"2026-01-02T03:04:05Z"},
			{"runId":"daily-manual-0a1b2c3d4e","configId":"daily","trigger":"manual"}]}`),
		golden("RunsResponse empty", agentapi.RunsResponse{Runs: []agentapi.DueRun{}}, `{"runs":[]}`),
		golden("StartRequest by config", agentapi.StartRequest{ConfigID: "daily", SizeHint: 1 << 30},
			`{"configId":"daily","sizeHint":1073741824}`),
		golden("StartRequest by run", agentapi.StartRequest{RunID: "daily-29457424"}, `{"runId":"daily-29457424"}`),
		golden("StartResponse multipart", agentapi.StartResponse{
			RunID: "daily-29457424", Key: "users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz",
			Mode: agentapi.UploadMultipart, PartSize: 16 << 20,
			Parts:     []agentapi.PartURL{{PartNumber: 1, URL: partURL1}, {PartNumber: 2, URL: partURL2}},
			ExpiresAt: t1,
		}, `{"runId":"daily-29457424","key":"users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz",
			"mode":"multipart","partSize":16777216,
			"parts":[{"partNumber":1,"url":"`+jsonEscaped(partURL1)+`"},{"partNumber":2,"url":"`+jsonEscaped(partURL2)+`"}],
			"expiresAt":"2026-01-02T04:04:05Z"}`),
		golden("StartResponse single", agentapi.StartResponse{
			RunID: "r", Key: "k.tar", Mode: agentapi.UploadSingle, PartSize: 5 << 20, PutURL: getURL, ExpiresAt: t1,
		}, `{"runId":"r","key":"k.tar","mode":"single","partSize":5242880,"putUrl":"`+jsonEscaped(getURL)+`","expiresAt":"2026-01-02T04:04:05Z"}`),
		golden("PartsRequest", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{3, 4, 5}},
			`{"runId":"r","partNumbers":[3,4,5]}`),
		golden("PartsResponse", agentapi.PartsResponse{RunID: "r", Parts: []agentapi.PartURL{{PartNumber: 2, URL: partURL2}}, ExpiresAt: t1},
			`{"runId":"r","parts":[{"partNumber":2,"url":"`+jsonEscaped(partURL2)+`"}],"expiresAt":"2026-01-02T04:04:05Z"}`),
		golden("ProgressRequest", agentapi.ProgressRequest{RunID: "r", FilesProcessed: 10, FilesSkipped: 1, BytesTotal: 1000, BytesTransferred: 400, Progress: 40},
			`{"runId":"r","filesProcessed":10,"filesSkipped":1,"bytesTotal":1000,"bytesTransferred":400,"progress":40}`),
		golden("ProgressResponse", agentapi.ProgressResponse{Cancel: true}, `{"cancel":true}`),
		golden("CompleteRequest", validComplete(), `{"runId":"daily-29457424","status":"completed",
			"parts":[{"partNumber":1,"etag":"\"0cc175b9c0f1b6a831c399e269772661\""},{"partNumber":2,"etag":"\"92eb5ffee6ae2fec3ad71c777531578f\""}],
			"size":73400320,"sha256":"`+sum+`","filesProcessed":150,"filesSkipped":2,"bytesTransferred":73400320,"durationMs":45000,
			"errors":[{"path":"/Users/ann/locked.db","message":"permission denied"},{"message":"a file vanished while reading"}],
			"errorCount":2}`),
		golden("CompleteRequest failed", agentapi.CompleteRequest{RunID: "r", Status: agentapi.CompleteFailed, Message: "disk vanished", DurationMs: 10},
			`{"runId":"r","status":"failed","message":"disk vanished","size":0,"filesProcessed":0,"filesSkipped":0,"bytesTransferred":0,"durationMs":10}`),
		golden("CompleteResponse", agentapi.CompleteResponse{RunID: "r", Phase: agentapi.RunSucceeded, Message: "stored 70 MiB"},
			`{"runId":"r","phase":"succeeded","message":"stored 70 MiB"}`),
		golden("AbortRequest", agentapi.AbortRequest{RunID: "r", Reason: "cancelled"}, `{"runId":"r","reason":"cancelled"}`),
		golden("AbortResponse", agentapi.AbortResponse{RunID: "r", Phase: agentapi.RunCancelled}, `{"runId":"r","phase":"cancelled"}`),
		golden("LogRequest", agentapi.LogRequest{
			Level: agentapi.LogInfo, Message: "Scanning directory /Users/ann/backup",
			Metadata: map[string]any{"filesFound": json.Number("150"), "dir": "/Users/ann", "partial": false, "note": nil},
			RunID:    "r", Time: t0,
		}, `{"level":"info","message":"Scanning directory /Users/ann/backup",
			"metadata":{"dir":"/Users/ann","filesFound":150,"note":null,"partial":false},
			"runId":"r","time":"2026-01-02T03:04:05Z"}`),
		golden("LogRequest minimal", agentapi.LogRequest{Level: agentapi.LogError, Message: "boom"}, `{"level":"error","message":"boom"}`),
		golden("DownloadRequest", agentapi.DownloadRequest{RunID: "r"}, `{"runId":"r"}`),
		golden("DownloadResponse", agentapi.DownloadResponse{
			RunID: "r", URL: getURL, ExpiresAt: t1, Key: "k.tar.zst.age", Size: 42, SHA256: sum,
			Compression: agentapi.CompressionZstd, Encrypted: true,
		}, `{"runId":"r","url":"`+jsonEscaped(getURL)+`","expiresAt":"2026-01-02T04:04:05Z","key":"k.tar.zst.age",
			"size":42,"sha256":"`+sum+`","compression":"zstd","encrypted":true}`),
		golden("ErrorBody", agentapi.ErrorBody{Error: agentapi.APIError{Code: agentapi.CodeRateLimited, Message: "slow down", RetryAfterSeconds: 30}},
			`{"error":{"code":"rate_limited","message":"slow down","retryAfterSeconds":30}}`),
		golden("ErrorBody without retry", agentapi.ErrorBody{Error: agentapi.APIError{Code: agentapi.CodeNotFound, Message: "no such run"}},
			`{"error":{"code":"not_found","message":"no such run"}}`),
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// jsonEscaped is s as encoding/json writes it inside a string (it escapes
// & as \u0026).
func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// TestRegisteredAgentRejectsMalformedKey: the agent reading its
// registration refuses a key that is not one, rather than saving it.
func TestRegisteredAgentRejectsMalformedKey(t *testing.T) {
	var a agentapi.RegisteredAgent
	err := json.Unmarshal([]byte(`{"id":"a","name":"n","apiKey":"bak_not-a-key","status":"pending"}`), &a)
	if err == nil {
		t.Fatal("a malformed apiKey was accepted")
	}
	if strings.Contains(err.Error(), "not-a-key") {
		t.Errorf("error repeats the key: %v", err)
	}
}
