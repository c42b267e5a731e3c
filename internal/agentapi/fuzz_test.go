package agentapi_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
)

// FuzzDecodeComplete feeds arbitrary bodies to the strictest decoder path
// (the largest request type). Properties:
//   - it never panics;
//   - an accepted request is valid, and re-encoding and decoding it again
//     gives the same JSON (nothing depended on how it was spelled);
//   - a refused one gets an *APIError with a client-error code, a short
//     message, and no long identifier-like run of the input repeated in
//     it (that is what a leaked key would look like).
func FuzzDecodeComplete(f *testing.F) {
	valid, err := json.Marshal(validComplete())
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		string(valid),
		`{"runId":"r","status":"failed","message":"m","size":0,"filesProcessed":0,"filesSkipped":0,"bytesTransferred":0,"durationMs":0}`,
		`{"runId":"r","status":"completed","sha256":"` + sum + `","parts":[{"partNumber":1,"etag":"\"e\""}]}`,
		`{"runId":"r","RunId":"s"}`,
		`{"run\u0049d":"r"}`,
		`{"runId":"r","runId":"r"}`,
		`{"runId":"r"} {}`,
		`{"` + testKey + `":1}`,
		`{"runId":` + testKey + `}`,
		`{"parts":[{"partNumber":1e400}]}`,
		`{"errors":[{"path":"\u0000"}]}`,
		`null`, ``, `[]`, `{`, `"\ud800"`, `{"size":-0}`, `{"size":1.0}`,
	} {
		f.Add([]byte(seed))
	}
	identifier := regexp.MustCompile(`[A-Za-z0-9_]{33,}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		var req agentapi.CompleteRequest
		err := agentapi.Decode(bytes.NewReader(body), agentapi.MaxBackupCompleteBodyBytes, &req)
		if err == nil {
			if verr := req.Validate(); verr != nil {
				t.Fatalf("Decode accepted an invalid request: %v", verr)
			}
			again, merr := json.Marshal(req)
			if merr != nil {
				t.Fatalf("an accepted request does not marshal: %v", merr)
			}
			var back agentapi.CompleteRequest
			if derr := agentapi.Decode(bytes.NewReader(again), agentapi.MaxBackupCompleteBodyBytes, &back); derr != nil {
				t.Fatalf("an accepted request, re-encoded, is refused: %v\n%s", derr, again)
			}
			// Compared as JSON: "parts":[] and no parts are the same request.
			twice, _ := json.Marshal(back)
			if !bytes.Equal(twice, again) {
				t.Fatalf("re-encoding changed the request:\n%s\n%s", again, twice)
			}
			return
		}
		var apiErr *agentapi.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("error %v is not an *APIError", err)
		}
		if apiErr.Code != agentapi.CodeInvalidRequest && apiErr.Code != agentapi.CodePayloadTooLarge {
			t.Fatalf("code %s for a bad body", apiErr.Code)
		}
		if apiErr.Message == "" || len(apiErr.Message) > 256 {
			t.Fatalf("message of %d bytes: %q", len(apiErr.Message), apiErr.Message)
		}
		for _, run := range identifier.FindAllString(string(body), -1) {
			if strings.Contains(apiErr.Message, run) {
				t.Fatalf("message %q repeats %q from the body", apiErr.Message, run)
			}
		}
	})
}
