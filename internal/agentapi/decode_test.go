package agentapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
)

// apiError asserts that err is an *APIError with code want and returns it.
func apiError(t *testing.T, err error, want agentapi.Code) *agentapi.APIError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	var apiErr *agentapi.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not an *APIError", err, err)
	}
	if apiErr.Code != want {
		t.Fatalf("code %s (%q), want %s", apiErr.Code, apiErr.Message, want)
	}
	if apiErr.Message == "" {
		t.Fatal("APIError without a message")
	}
	return apiErr
}

func completeJSON(t *testing.T) string {
	t.Helper()
	b, err := json.Marshal(validComplete())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDecodeAcceptsValidRequest(t *testing.T) {
	body := completeJSON(t)
	for name, in := range map[string]string{
		"compact":             body,
		"surrounded by space": " \n\t" + body + "\n\n ",
	} {
		var got agentapi.CompleteRequest
		if err := agentapi.Decode(strings.NewReader(in), agentapi.MaxBackupCompleteBodyBytes, &got); err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		if got.RunID != "daily-29457424" || len(got.Parts) != 2 || got.Parts[1].ETag != `"92eb5ffee6ae2fec3ad71c777531578f"` || got.Errors[0].Path != "/Users/ann/locked.db" {
			t.Fatalf("%s: decoded %+v", name, got)
		}
	}
}

// TestDecodeRejects covers what a strict decoder must refuse, with the code
// and a message naming the field.
func TestDecodeRejects(t *testing.T) {
	valid := completeJSON(t)
	withField := func(field string) string { return strings.Replace(valid, `{"runId"`, `{`+field+`,"runId"`, 1) }
	tests := []struct {
		name    string
		body    string
		wantMsg string
	}{
		{"empty body", "", "request body is empty"},
		{"only whitespace", " \n ", "request body is empty"},
		{"null", "null", "request body must be an object, not null"},
		{"array instead of object", "[]", "request body must be an object, not an array"},
		{"string instead of object", `"x"`, "request body must be an object, not a string"},
		{"unknown field", withField(`"bogus":1`), `request body has an unknown field "bogus"`},
		{"field in another case", withField(`"RunID":"x"`), `unknown field "RunID" (field names are case-sensitive)`},
		{"field in upper case", withField(`"SIZE":1`), `unknown field "SIZE"`},
		{"repeated field", withField(`"runId":"other"`), `has the field "runId" twice`},
		{"repeated unknown field", `{"x":1,"x":1}`, `unknown field "x"`},
		{"unknown nested field", strings.Replace(valid, `{"partNumber":1,`, `{"partNumber":1,"size":5,`, 1), `parts[0] has an unknown field "size"`},
		{"repeated nested field", strings.Replace(valid, `{"partNumber":2,`, `{"partNumber":2,"partNumber":3,`, 1), `parts[1] has the field "partNumber" twice`},
		{"second value", valid + `{}`, "unexpected data after the JSON value"},
		{"second copy", valid + " " + valid, "unexpected data after the JSON value"},
		{"trailing garbage", valid + "x", "unexpected data after the JSON value"},
		{"trailing brace", valid + "}", "unexpected data after the JSON value"},
		{"truncated", valid[:len(valid)-1], "truncated JSON"},
		{"syntax error", `{"runId" "r"}`, "malformed JSON at byte offset"},
		{"string for a string field given a number", strings.Replace(valid, `"runId":"daily-29457424"`, `"runId":5`, 1), "runId must be a string, not a number"},
		{"number given as string", strings.Replace(valid, `"size":73400320`, `"size":"73400320"`, 1), "size must be a whole number, not a string"},
		{"fraction for an integer", strings.Replace(valid, `"partNumber":1`, `"partNumber":1.5`, 1), "parts[0].partNumber must be a whole number"},
		{"exponent for an integer", strings.Replace(valid, `"durationMs":45000`, `"durationMs":4.5e4`, 1), "durationMs must be a whole number"},
		{"integer overflow", strings.Replace(valid, `"size":73400320`, `"size":9223372036854775808`, 1), "size is out of range"},
		{"bool for a string", strings.Replace(valid, `"status":"completed"`, `"status":true`, 1), "status must be a string, not true or false"},
		{"object for an array", strings.Replace(valid, `"errors":[`, `"errors":{"a":1},"x":[`, 1), "errors must be an array, not an object"},
		{"array for an object", strings.Replace(valid, `{"partNumber":1,"etag":"\"0cc175b9c0f1b6a831c399e269772661\""}`, `[1]`, 1), "parts[0] must be an object, not an array"},
		// Decode validates: a well-formed body with a bad value fails too.
		{"fails validation", strings.Replace(valid, `"sha256":"`+sum+`"`, `"sha256":"XYZ"`, 1), "sha256 must be 64 lower-case hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v agentapi.CompleteRequest
			err := agentapi.Decode(strings.NewReader(tt.body), agentapi.MaxBackupCompleteBodyBytes, &v)
			apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
			if !strings.Contains(apiErr.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", apiErr.Message, tt.wantMsg)
			}
		})
	}
}

func TestDecodeRejectsBadTime(t *testing.T) {
	var v agentapi.LogRequest
	err := agentapi.Decode(strings.NewReader(`{"level":"info","message":"m","time":"yesterday at noon"}`), agentapi.MaxLogBodyBytes, &v)
	apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
	if apiErr.Message != "time must be an RFC 3339 time" {
		t.Errorf("message %q", apiErr.Message)
	}
}

func TestDecodeSizeLimit(t *testing.T) {
	body := `{"runId":"r","reason":"` + strings.Repeat("x", 100) + `"}`
	limit := int64(len(body))
	tests := []struct {
		name   string
		reader io.Reader
		limit  int64
		want   agentapi.Code // "" for success
	}{
		{"exactly at the limit", strings.NewReader(body), limit, ""},
		{"one byte over", strings.NewReader(body), limit - 1, agentapi.CodePayloadTooLarge},
		{"far over", strings.NewReader(body + strings.Repeat(" ", 1<<20)), limit, agentapi.CodePayloadTooLarge},
		{"trailing space over the limit", strings.NewReader(body + " "), limit, agentapi.CodePayloadTooLarge},
		{"zero limit", strings.NewReader(body), 0, agentapi.CodePayloadTooLarge},
		{
			"http.MaxBytesReader below our limit",
			http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(body)), limit-10),
			limit, agentapi.CodePayloadTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v agentapi.AbortRequest
			err := agentapi.Decode(tt.reader, tt.limit, &v)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			apiErr := apiError(t, err, tt.want)
			if apiErr.HTTPStatus() != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d", apiErr.HTTPStatus())
			}
		})
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestDecodeReadError(t *testing.T) {
	cause := errors.New("connection reset by peer")
	var v agentapi.AbortRequest
	err := agentapi.Decode(io.MultiReader(strings.NewReader(`{"runId":`), failingReader{cause}), 1024, &v)
	if apiErr := apiError(t, err, agentapi.CodeInvalidRequest); apiErr.HTTPStatus() != http.StatusBadRequest {
		t.Errorf("status %d, want 400", apiErr.HTTPStatus())
	}
	if !errors.Is(err, cause) {
		t.Errorf("the read error is not kept for the server's log: %v", err)
	}
}

// TestDecodeNeverEchoesSecrets sends an API key in every place a careless
// decoder would quote it back.
func TestDecodeNeverEchoesSecrets(t *testing.T) {
	secret := testKey
	bodies := map[string]string{
		"as an unknown field":     `{"runId":"r","` + secret + `":1}`,
		"as a repeated field":     `{"` + secret + `":1,"` + secret + `":1}`,
		"as a map key":            `{"level":"info","message":"m","metadata":{"` + secret + `":{"x":1}}}`,
		"as a bare word":          `{"runId":` + secret + `}`,
		"as a wrong-type value":   `{"runId":["` + secret + `"]}`,
		"as an invalid time":      `{"level":"info","message":"m","time":"` + secret + `"}`,
		"as an invalid level":     `{"level":"` + secret + `","message":"m"}`,
		"as an invalid id":        `{"level":"info","message":"m","runId":"` + secret + `/x"}`,
		"after the value":         `{"level":"info","message":"m"}` + secret,
		"in an overlong message":  `{"level":"info","message":"` + strings.Repeat(secret, 100) + `"}`,
		"as a number-like string": `{"level":"info","message":"m","metadata":{"n":` + "1" + strings.Repeat("0", 100) + `}}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			var v agentapi.LogRequest
			err := agentapi.Decode(strings.NewReader(body), agentapi.MaxLogBodyBytes, &v)
			apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
			if strings.Contains(apiErr.Message, secret[4:20]) || strings.Contains(err.Error(), secret[4:20]) {
				t.Fatalf("error repeats the secret: %q", apiErr.Message)
			}
		})
	}
}

func TestDecodeIntoMapsAndResponses(t *testing.T) {
	// Responses have no Validate: Decode is only strict about shape.
	var resp agentapi.PartsResponse
	if err := agentapi.Decode(strings.NewReader(`{"runId":"r","parts":[{"partNumber":1,"url":"https://x/y?sig"}],"expiresAt":"2026-01-02T03:04:05Z"}`), 1024, &resp); err != nil {
		t.Fatalf("Decode(PartsResponse): %v", err)
	}
	if resp.Parts[0].URL != "https://x/y?sig" || !resp.ExpiresAt.Equal(t0) {
		t.Fatalf("decoded %+v", resp)
	}
	var m map[string]int
	err := agentapi.Decode(strings.NewReader(`{"a":1,"a":2}`), 1024, &m)
	apiErr := apiError(t, err, agentapi.CodeInvalidRequest)
	if !strings.Contains(apiErr.Message, "twice") {
		t.Errorf("repeated map key: %q", apiErr.Message)
	}
	err = agentapi.Decode(strings.NewReader(`{"a":"x"}`), 1024, &m)
	apiErr = apiError(t, err, agentapi.CodeInvalidRequest)
	if apiErr.Message != "[…] must be a whole number, not a string" {
		t.Errorf("map value of the wrong type: %q", apiErr.Message)
	}
}

// TestLimitsFitLargestValidRequest builds, for each endpoint, the largest
// request Validate accepts, every string made of '<' (which encoding/json
// writes as the six bytes \u003c), and checks it fits the endpoint's body
// limit and decodes: no valid request may be refused as too large.
func TestLimitsFitLargestValidRequest(t *testing.T) {
	worst := func(n int) string { return strings.Repeat("<", n) }
	id := strings.Repeat("a", agentapi.MaxIDLength)
	metadata := map[string]any{}
	for i := range agentapi.MaxLogMetadataKeys {
		key := fmt.Sprintf("%02d", i) + strings.Repeat("k", agentapi.MaxLogMetadataKeyLength-2)
		metadata[key] = worst(agentapi.MaxLogMetadataValueBytes)
	}
	complete := agentapi.CompleteRequest{
		RunID: id, Status: agentapi.CompleteCompleted, Message: worst(agentapi.MaxErrorMessageBytes),
		Size: math.MaxInt64, SHA256: sum, FilesProcessed: math.MaxInt64, FilesSkipped: math.MaxInt64,
		BytesTransferred: math.MaxInt64, DurationMs: math.MaxInt64, ErrorCount: math.MaxInt64,
	}
	for i := range agentapi.MaxPartNumber {
		complete.Parts = append(complete.Parts, agentapi.CompletedPart{PartNumber: i + 1, ETag: strings.Repeat(`"`, agentapi.MaxETagLength)})
	}
	for range agentapi.MaxErrorsPerComplete {
		complete.Errors = append(complete.Errors, agentapi.RunError{Path: worst(agentapi.MaxPathBytes), Message: worst(agentapi.MaxErrorMessageBytes)})
	}
	var parts []int
	for i := range agentapi.MaxPartsPerRequest {
		parts = append(parts, agentapi.MaxPartNumber-agentapi.MaxPartsPerRequest+1+i)
	}
	latest := t0.Add(1e9 - 1)
	tests := []struct {
		path   string
		limit  int64
		req    agentapi.Validator
		decode func([]byte) error
	}{
		{agentapi.PathRegister, agentapi.MaxRegisterBodyBytes,
			agentapi.RegisterRequest{Name: worst(agentapi.MaxNameLength), Platform: strings.Repeat("a", agentapi.MaxPlatformLength)},
			decodeAs[agentapi.RegisterRequest](agentapi.MaxRegisterBodyBytes)},
		{agentapi.PathHeartbeat, agentapi.MaxHeartbeatBodyBytes,
			agentapi.HeartbeatRequest{Version: worst(agentapi.MaxVersionLength), Platform: strings.Repeat("a", agentapi.MaxPlatformLength),
				Arch: strings.Repeat("a", agentapi.MaxPlatformLength), Hostname: worst(agentapi.MaxHostnameLength)},
			decodeAs[agentapi.HeartbeatRequest](agentapi.MaxHeartbeatBodyBytes)},
		{agentapi.PathBackupStart, agentapi.MaxBackupStartBodyBytes,
			agentapi.StartRequest{ConfigID: id, SizeHint: math.MaxInt64},
			decodeAs[agentapi.StartRequest](agentapi.MaxBackupStartBodyBytes)},
		{agentapi.PathBackupParts, agentapi.MaxBackupPartsBodyBytes,
			agentapi.PartsRequest{RunID: id, PartNumbers: parts},
			decodeAs[agentapi.PartsRequest](agentapi.MaxBackupPartsBodyBytes)},
		{agentapi.PathBackupProgress, agentapi.MaxBackupProgressBodyBytes,
			agentapi.ProgressRequest{RunID: id, FilesProcessed: math.MaxInt64, FilesSkipped: math.MaxInt64,
				BytesTotal: math.MaxInt64, BytesTransferred: math.MaxInt64, Progress: 100},
			decodeAs[agentapi.ProgressRequest](agentapi.MaxBackupProgressBodyBytes)},
		{agentapi.PathBackupComplete, agentapi.MaxBackupCompleteBodyBytes, complete,
			decodeAs[agentapi.CompleteRequest](agentapi.MaxBackupCompleteBodyBytes)},
		{agentapi.PathBackupAbort, agentapi.MaxBackupAbortBodyBytes,
			agentapi.AbortRequest{RunID: id, Reason: worst(agentapi.MaxErrorMessageBytes)},
			decodeAs[agentapi.AbortRequest](agentapi.MaxBackupAbortBodyBytes)},
		{agentapi.PathLog, agentapi.MaxLogBodyBytes,
			agentapi.LogRequest{Level: agentapi.LogWarning, Message: worst(agentapi.MaxLogMessageBytes), Metadata: metadata, RunID: id, Time: latest},
			decodeAs[agentapi.LogRequest](agentapi.MaxLogBodyBytes)},
	}
	limits := map[string]int64{}
	for _, e := range agentapi.Endpoints() {
		limits[e.Path] = e.MaxBodyBytes
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if err := tt.req.Validate(); err != nil {
				t.Fatalf("the largest request is not valid: %v", err)
			}
			body, err := json.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(body)) > tt.limit {
				t.Fatalf("largest valid request is %d bytes, limit %d", len(body), tt.limit)
			}
			if limits[tt.path] != tt.limit {
				t.Fatalf("Endpoints() gives %s a limit of %d, want %d", tt.path, limits[tt.path], tt.limit)
			}
			if err := tt.decode(body); err != nil {
				t.Fatalf("Decode of the largest valid request: %v", err)
			}
			t.Logf("largest valid request: %d bytes of %d (%.0f%%)", len(body), tt.limit, 100*float64(len(body))/float64(tt.limit))
		})
	}
}

func decodeAs[T any](limit int64) func([]byte) error {
	return func(b []byte) error {
		var v T
		return agentapi.Decode(strings.NewReader(string(b)), limit, &v)
	}
}

// BenchmarkDecodeComplete decodes the largest complete request the server
// takes: 10,000 parts and 50 errors.
func BenchmarkDecodeComplete(b *testing.B) {
	req := validComplete()
	req.Parts = nil
	for i := range agentapi.MaxPartNumber {
		req.Parts = append(req.Parts, agentapi.CompletedPart{PartNumber: i + 1, ETag: strconv.Quote(fmt.Sprintf("%032x", i))})
	}
	for range agentapi.MaxErrorsPerComplete - len(req.Errors) {
		req.Errors = append(req.Errors, agentapi.RunError{Path: "/Users/ann/" + strings.Repeat("x", 100), Message: "permission denied"})
	}
	req.ErrorCount = int64(len(req.Errors))
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v agentapi.CompleteRequest
		if err := agentapi.Decode(strings.NewReader(string(body)), agentapi.MaxBackupCompleteBodyBytes, &v); err != nil {
			b.Fatal(err)
		}
	}
}
