package agentapi_test

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
)

type validateCase struct {
	name string
	req  agentapi.Validator
	// wantMsg is the start of the error message; "" means valid.
	wantMsg string
}

func runValidate(t *testing.T, tests []validateCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.req.Validate()
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
			if !strings.HasPrefix(apiErr.Message, tt.wantMsg) {
				t.Fatalf("message %q, want it to start with %q", apiErr.Message, tt.wantMsg)
			}
		})
	}
}

// TestValidateIDs runs every id rule through AbortRequest.runId; all
// requests share checkID, and the other tests check each uses it.
func TestValidateIDs(t *testing.T) {
	const msg = "runId must be 1 to 253 characters"
	tests := []struct {
		id    string
		valid bool
	}{
		{"a", true},
		{"daily-29457424", true},
		{"daily-manual-0a1b2c3d4e", true},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{"A.b_c-D9", true},
		{"v1.2", true},
		{strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false},
		{"", false},
		{"..", false},
		{".", false},
		{"../x", false},
		{"x/../y", false},
		{"a..b", false},
		{"a/b", false},
		{`a\b`, false},
		{"/abs", false},
		{"%2e%2e", false},
		{"%2e%2e%2fx", false},
		{"a%2fb", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a b", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"é", false},
		{"ｆｕｌｌwidth", false},
		{"a:b", false},
		{"a?b", false},
		{"a#b", false},
		{"a*", false},
	}
	var cases []validateCase
	for _, tt := range tests {
		want := msg
		if tt.id == "" {
			want = "runId must be"
		}
		if tt.valid {
			want = ""
		}
		cases = append(cases, validateCase{name: strings.ToValidUTF8(tt.id, "?"), req: agentapi.AbortRequest{RunID: tt.id}, wantMsg: want})
	}
	runValidate(t, cases)
}

func TestValidateRegisterAndHeartbeat(t *testing.T) {
	hb := agentapi.HeartbeatRequest{Version: "v0.1.0", Platform: "darwin", Arch: "arm64", Hostname: "anns-mbp.local"}
	with := func(f func(*agentapi.HeartbeatRequest)) agentapi.HeartbeatRequest { r := hb; f(&r); return r }
	runValidate(t, []validateCase{
		{"register", agentapi.RegisterRequest{Name: "Ann's MacBook", Platform: "darwin"}, ""},
		{"register without platform", agentapi.RegisterRequest{Name: "Ann's MacBook"}, ""},
		{"register unicode name", agentapi.RegisterRequest{Name: "Änn’s 💻"}, ""},
		{"register without name", agentapi.RegisterRequest{}, "name is required"},
		{"register long name", agentapi.RegisterRequest{Name: strings.Repeat("a", agentapi.MaxNameLength+1)}, "name must be at most 128 bytes"},
		{"register name with newline", agentapi.RegisterRequest{Name: "a\nb"}, "name must be one line"},
		{"register name with NUL", agentapi.RegisterRequest{Name: "a\x00b"}, "name must not contain NUL"},
		{"register name not UTF-8", agentapi.RegisterRequest{Name: "a\xffb"}, "name must be valid UTF-8"},
		{"register platform upper case", agentapi.RegisterRequest{Name: "a", Platform: "Darwin"}, "platform must be"},
		{"heartbeat", hb, ""},
		{"heartbeat minimal", agentapi.HeartbeatRequest{Version: "dev", Platform: "linux"}, ""},
		{"heartbeat prerelease version", with(func(r *agentapi.HeartbeatRequest) { r.Version = "v1.2.3-rc.1+abc" }), ""},
		{"heartbeat without version", with(func(r *agentapi.HeartbeatRequest) { r.Version = "" }), "version must be"},
		{"heartbeat version with space", with(func(r *agentapi.HeartbeatRequest) { r.Version = "1.0 beta" }), "version must be"},
		{"heartbeat long version", with(func(r *agentapi.HeartbeatRequest) { r.Version = strings.Repeat("1", 65) }), "version must be"},
		{"heartbeat without platform", with(func(r *agentapi.HeartbeatRequest) { r.Platform = "" }), "platform is required"},
		{"heartbeat platform with slash", with(func(r *agentapi.HeartbeatRequest) { r.Platform = "linux/amd64" }), "platform must be"},
		{"heartbeat long arch", with(func(r *agentapi.HeartbeatRequest) { r.Arch = strings.Repeat("a", 33) }), "arch must be"},
		{"heartbeat hostname with control", with(func(r *agentapi.HeartbeatRequest) { r.Hostname = "a\x1bb" }), "hostname must be one line"},
		{"heartbeat long hostname", with(func(r *agentapi.HeartbeatRequest) { r.Hostname = strings.Repeat("h", 254) }), "hostname must be at most 253 bytes"},
	})
}

func TestValidateStartPartsProgress(t *testing.T) {
	hundred := make([]int, agentapi.MaxPartsPerRequest)
	for i := range hundred {
		hundred[i] = i + 1
	}
	runValidate(t, []validateCase{
		{"start by config", agentapi.StartRequest{ConfigID: "daily"}, ""},
		{"start by run", agentapi.StartRequest{RunID: "daily-1", SizeHint: 10}, ""},
		{"start with neither", agentapi.StartRequest{}, "exactly one of configId and runId is required"},
		{"start with both", agentapi.StartRequest{ConfigID: "daily", RunID: "daily-1"}, "exactly one of configId and runId is required"},
		{"start bad config id", agentapi.StartRequest{ConfigID: "../etc"}, "configId must be"},
		{"start bad run id", agentapi.StartRequest{RunID: "a/b"}, "runId must be"},
		{"start negative size", agentapi.StartRequest{ConfigID: "daily", SizeHint: -1}, "sizeHint must not be negative"},

		{"parts", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{1, 2, 7}}, ""},
		{"parts last possible", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{agentapi.MaxPartNumber}}, ""},
		{"parts full batch", agentapi.PartsRequest{RunID: "r", PartNumbers: hundred}, ""},
		{"parts too many", agentapi.PartsRequest{RunID: "r", PartNumbers: append(hundred, 101)}, "partNumbers must list 1 to 100"},
		{"parts none", agentapi.PartsRequest{RunID: "r"}, "partNumbers must list 1 to 100"},
		{"parts zero", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{0}}, "partNumbers[0] must be a part number from 1 to 10000"},
		{"parts negative", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{1, -2}}, "partNumbers[1] must be a part number"},
		{"parts above S3's maximum", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{10001}}, "partNumbers[0] must be a part number"},
		{"parts repeated", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{1, 2, 2}}, "partNumbers must be in ascending order without repeats"},
		{"parts descending", agentapi.PartsRequest{RunID: "r", PartNumbers: []int{2, 1}}, "partNumbers must be in ascending order"},
		{"parts without run", agentapi.PartsRequest{PartNumbers: []int{1}}, "runId must be"},

		{"progress", agentapi.ProgressRequest{RunID: "r", FilesProcessed: 1, Progress: 100}, ""},
		{"progress over 100", agentapi.ProgressRequest{RunID: "r", Progress: 101}, "progress must be a percentage"},
		{"progress negative", agentapi.ProgressRequest{RunID: "r", Progress: -1}, "progress must be a percentage"},
		{"progress negative files", agentapi.ProgressRequest{RunID: "r", FilesSkipped: -1}, "filesSkipped must not be negative"},
		{"progress negative bytes", agentapi.ProgressRequest{RunID: "r", BytesTransferred: math.MinInt64}, "bytesTransferred must not be negative"},
		{"progress path trick", agentapi.ProgressRequest{RunID: "%2e%2e"}, "runId must be"},
	})
}

func TestValidateComplete(t *testing.T) {
	with := func(f func(*agentapi.CompleteRequest)) agentapi.CompleteRequest {
		r := validComplete()
		f(&r)
		return r
	}
	manyErrors := make([]agentapi.RunError, agentapi.MaxErrorsPerComplete+1)
	for i := range manyErrors {
		manyErrors[i] = agentapi.RunError{Message: "x"}
	}
	runValidate(t, []validateCase{
		{"completed", validComplete(), ""},
		{"completed single PUT", with(func(r *agentapi.CompleteRequest) { r.Parts = nil }), ""},
		{"failed", agentapi.CompleteRequest{RunID: "r", Status: agentapi.CompleteFailed, Message: "disk gone"}, ""},
		{"failed with partial stats", with(func(r *agentapi.CompleteRequest) { r.Status = agentapi.CompleteFailed; r.Message = "x"; r.SHA256 = "" }), ""},
		{"no status", with(func(r *agentapi.CompleteRequest) { r.Status = "" }), "status must be completed or failed"},
		{"seed's status word", with(func(r *agentapi.CompleteRequest) { r.Status = "succeeded" }), "status must be completed or failed"},
		{"failed without message", agentapi.CompleteRequest{RunID: "r", Status: agentapi.CompleteFailed}, "message is required when status is failed"},
		{"completed without sha256", with(func(r *agentapi.CompleteRequest) { r.SHA256 = "" }), "sha256 is required when status is completed"},
		{"sha256 upper case", with(func(r *agentapi.CompleteRequest) { r.SHA256 = strings.ToUpper(sum) }), "sha256 must be 64 lower-case hex digits"},
		{"sha256 short", with(func(r *agentapi.CompleteRequest) { r.SHA256 = sum[:63] }), "sha256 must be 64"},
		{"sha256 long", with(func(r *agentapi.CompleteRequest) { r.SHA256 = sum + "0" }), "sha256 must be 64"},
		{"sha256 not hex", with(func(r *agentapi.CompleteRequest) { r.SHA256 = strings.Repeat("g", 64) }), "sha256 must be 64"},
		{"bad run id", with(func(r *agentapi.CompleteRequest) { r.RunID = "../../x" }), "runId must be"},
		{"negative size", with(func(r *agentapi.CompleteRequest) { r.Size = -1 }), "size must not be negative"},
		{"negative files", with(func(r *agentapi.CompleteRequest) { r.FilesProcessed = -1 }), "filesProcessed must not be negative"},
		{"negative duration", with(func(r *agentapi.CompleteRequest) { r.DurationMs = -1 }), "durationMs must not be negative"},
		{"parts out of order", with(func(r *agentapi.CompleteRequest) { r.Parts[0].PartNumber, r.Parts[1].PartNumber = 2, 1 }), "parts must be in ascending order"},
		{"parts repeated", with(func(r *agentapi.CompleteRequest) { r.Parts[1].PartNumber = 1 }), "parts must be in ascending order without repeats"},
		{"part zero", with(func(r *agentapi.CompleteRequest) { r.Parts[0].PartNumber = 0 }), "parts[0] must be a part number"},
		{"part above maximum", with(func(r *agentapi.CompleteRequest) { r.Parts[1].PartNumber = 10001 }), "parts[1] must be a part number"},
		{"empty etag", with(func(r *agentapi.CompleteRequest) { r.Parts[1].ETag = "" }), "parts[1].etag must be"},
		{"etag with space", with(func(r *agentapi.CompleteRequest) { r.Parts[0].ETag = `"a b"` }), "parts[0].etag must be"},
		{"etag with markup", with(func(r *agentapi.CompleteRequest) { r.Parts[0].ETag = `<x>` }), "parts[0].etag must be"},
		{"etag too long", with(func(r *agentapi.CompleteRequest) { r.Parts[0].ETag = strings.Repeat("a", 129) }), "parts[0].etag must be"},
		{"too many errors", with(func(r *agentapi.CompleteRequest) { r.Errors = manyErrors; r.ErrorCount = 100 }), "errors must list at most 50 errors"},
		{"error count below list", with(func(r *agentapi.CompleteRequest) { r.ErrorCount = 1 }), "errorCount must be at least the number of errors listed"},
		{"error without message", with(func(r *agentapi.CompleteRequest) { r.Errors[1].Message = "" }), "errors[1].message is required"},
		{"error message too long", with(func(r *agentapi.CompleteRequest) { r.Errors[0].Message = strings.Repeat("m", 1025) }), "errors[0].message must be at most 1024 bytes"},
		{"error path too long", with(func(r *agentapi.CompleteRequest) { r.Errors[0].Path = "/" + strings.Repeat("p", 4096) }), "errors[0].path must be at most 4096 bytes"},
		{"error path with NUL", with(func(r *agentapi.CompleteRequest) { r.Errors[0].Path = "/a\x00b" }), "errors[0].path must not contain NUL"},
		{"error path with newline", with(func(r *agentapi.CompleteRequest) { r.Errors[0].Path = "/odd\nname" }), ""},
		{"message too long", with(func(r *agentapi.CompleteRequest) { r.Message = strings.Repeat("m", 1025) }), "message must be at most 1024 bytes"},
	})
}

func TestValidateAbortLogDownload(t *testing.T) {
	log := func(f func(*agentapi.LogRequest)) agentapi.LogRequest {
		r := agentapi.LogRequest{Level: agentapi.LogInfo, Message: "Scanning", Metadata: map[string]any{"filesFound": 150}}
		f(&r)
		return r
	}
	tooManyKeys := map[string]any{}
	for i := range agentapi.MaxLogMetadataKeys + 1 {
		tooManyKeys[strings.Repeat("k", i+1)] = i
	}
	runValidate(t, []validateCase{
		{"abort", agentapi.AbortRequest{RunID: "r", Reason: "cancelled by the user"}, ""},
		{"abort long reason", agentapi.AbortRequest{RunID: "r", Reason: strings.Repeat("r", 1025)}, "reason must be at most 1024 bytes"},
		{"abort NUL reason", agentapi.AbortRequest{RunID: "r", Reason: "\x00"}, "reason must not contain NUL"},

		{"log", log(func(*agentapi.LogRequest) {}), ""},
		{"log warning with run", log(func(r *agentapi.LogRequest) { r.Level = agentapi.LogWarning; r.RunID = "daily-1" }), ""},
		{"log multi-line", log(func(r *agentapi.LogRequest) { r.Message = "line 1\nline 2\ttab" }), ""},
		{"log every scalar", log(func(r *agentapi.LogRequest) {
			r.Metadata = map[string]any{"s": "x", "n": json.Number("-1.5e3"), "f": 1.5, "i": int64(-3), "u": uint8(3), "b": true, "z": nil}
		}), ""},
		{"log level debug", log(func(r *agentapi.LogRequest) { r.Level = "debug" }), "level must be info, warning or error"},
		{"log level upper case", log(func(r *agentapi.LogRequest) { r.Level = "INFO" }), "level must be info, warning or error"},
		{"log no level", log(func(r *agentapi.LogRequest) { r.Level = "" }), "level must be"},
		{"log no message", log(func(r *agentapi.LogRequest) { r.Message = "" }), "message is required"},
		{"log long message", log(func(r *agentapi.LogRequest) { r.Message = strings.Repeat("m", 4097) }), "message must be at most 4096 bytes"},
		{"log NUL message", log(func(r *agentapi.LogRequest) { r.Message = "a\x00" }), "message must not contain NUL"},
		{"log bad run", log(func(r *agentapi.LogRequest) { r.RunID = "a/b" }), "runId must be"},
		{"log too many keys", log(func(r *agentapi.LogRequest) { r.Metadata = tooManyKeys }), "metadata must have at most 32 keys"},
		{"log key with space", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"a b": 1} }), "metadata keys must be"},
		{"log empty key", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"": 1} }), "metadata keys must be"},
		{"log long key", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{strings.Repeat("k", 65): 1} }), "metadata keys must be"},
		{"log nested object", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"o": map[string]any{"x": 1}} }), "metadata.o must be a string, number, boolean or null"},
		{"log array", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"a": []any{1}} }), "metadata.a must be a string"},
		{"log long value", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"v": strings.Repeat("v", 1025)} }), "metadata.v must be at most 1024 bytes"},
		{"log NaN", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"f": math.NaN()} }), "metadata.f must be a finite number"},
		{"log infinity", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"f": float32(math.Inf(1))} }), "metadata.f must be a finite number"},
		{"log huge number", log(func(r *agentapi.LogRequest) {
			r.Metadata = map[string]any{"n": json.Number("1" + strings.Repeat("0", 64))}
		}), "metadata.n must be a JSON number of at most 64"},
		{"log fake number", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{"n": json.Number("NaN")} }), "metadata.n must be a JSON number"},
		{"log value under a secret-looking key", log(func(r *agentapi.LogRequest) { r.Metadata = map[string]any{testKey: []any{}} }), "metadata[…] must be"},

		{"download", agentapi.DownloadRequest{RunID: "daily-1"}, ""},
		{"download without run", agentapi.DownloadRequest{}, "runId must be"},
		{"download dot dot", agentapi.DownloadRequest{RunID: ".."}, "runId must be"},
	})
}

func TestParseDownloadQuery(t *testing.T) {
	tests := []struct {
		query   string
		wantRun string
		wantMsg string
	}{
		{"runId=daily-1", "daily-1", ""},
		{agentapi.DownloadRequest{RunID: "daily-1"}.Query().Encode(), "daily-1", ""},
		{"", "", "runId must be"},
		{"runId=", "", "runId must be"},
		{"runId=%2e%2e", "", "runId must be"},
		{"runId=..%2Fx", "", "runId must be"},
		{"runId=a%00b", "", "runId must be"},
		{"runId=a&runId=b", "", "runId must be given once"},
		{"runId=a&extra=1", "", `unknown query parameter "extra"`},
		{"runId=a&" + testKey + "=1", "", "unknown query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := agentapi.ParseDownloadQuery(q)
			if tt.wantMsg == "" {
				if err != nil || got.RunID != tt.wantRun {
					t.Fatalf("ParseDownloadQuery = %+v, %v; want runId %q", got, err, tt.wantRun)
				}
				return
			}
			apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
			if !strings.HasPrefix(apiErr.Message, tt.wantMsg) || strings.Contains(apiErr.Message, testKey) {
				t.Fatalf("message %q, want it to start with %q", apiErr.Message, tt.wantMsg)
			}
		})
	}
}
