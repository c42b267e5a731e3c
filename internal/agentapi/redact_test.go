package agentapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
)

// secrets are the parts of the fixtures that must never be printed: the
// URL signatures and upload id, and the API key's secret part.
var secrets = []string{"sig1", "sig2", "sig3", "uploadId=UP", testKey[apikey.DisplayPrefixLength:]}

func assertNoSecrets(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("%s printed a secret (%q): %s", what, s, out)
		}
	}
}

func TestPresignedURLString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{partURL1, "https://s3.example.com/bucket/users/u1/agents/a1/configs/daily/backup-20260102T030405Z.tar.gz?[redacted]"},
		{"http://minio:9000/b/k", "http://minio:9000/b/k"},
		{"https://user:pass@host/k", "https://host/k?[redacted]"},
		{"https://host/k#frag", "https://host/k?[redacted]"},
		{"", ""},
		{"not a url sig1", "[redacted URL]"},
		{"://bad sig1", "[redacted URL]"},
	}
	for _, tt := range tests {
		u := agentapi.PresignedURL(tt.in)
		if got := u.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		for _, verb := range []string{"%v", "%s", "%q", "%+v", "%#v", "%x"} {
			assertNoSecrets(t, "Sprintf("+verb+")", fmt.Sprintf(verb, u))
		}
	}
}

func responses() map[string]any {
	return map[string]any{
		"RegisterResponse": agentapi.RegisterResponse{Agent: agentapi.RegisteredAgent{ID: "a", Name: "n", APIKey: apikey.Key(testKey), Status: agentapi.AgentStatusPending}},
		"RegisteredAgent":  agentapi.RegisteredAgent{ID: "a", Name: "n", APIKey: apikey.Key(testKey), Status: agentapi.AgentStatusPending},
		"StartResponse": agentapi.StartResponse{RunID: "r", Key: "k", Mode: agentapi.UploadMultipart, PartSize: 5 << 20,
			Parts: []agentapi.PartURL{{PartNumber: 1, URL: partURL1}, {PartNumber: 2, URL: partURL2}}, PutURL: getURL, ExpiresAt: t1},
		"PartsResponse":    agentapi.PartsResponse{RunID: "r", Parts: []agentapi.PartURL{{PartNumber: 1, URL: partURL1}}, ExpiresAt: t1},
		"PartURL":          agentapi.PartURL{PartNumber: 2, URL: partURL2},
		"DownloadResponse": agentapi.DownloadResponse{RunID: "r", URL: getURL, ExpiresAt: t1, Key: "k", Size: 1, SHA256: sum},
	}
}

// TestResponsesRedactedInFmt: the agent or server printing a response
// with fmt shows no secret.
func TestResponsesRedactedInFmt(t *testing.T) {
	for name, v := range responses() {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			assertNoSecrets(t, name+" "+verb, fmt.Sprintf(verb, v))
		}
	}
}

// TestResponsesRedactedInSlog: the same with slog, whose JSON handler
// would otherwise marshal the value with encoding/json, secrets in clear.
func TestResponsesRedactedInSlog(t *testing.T) {
	handlers := map[string]func(*bytes.Buffer) slog.Handler{
		"json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
		"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
	}
	for hname, newHandler := range handlers {
		for name, v := range responses() {
			var buf bytes.Buffer
			slog.New(newHandler(&buf)).Info("response", "resp", v)
			out := buf.String()
			assertNoSecrets(t, hname+" "+name, out)
			if !strings.Contains(out, "resp") || strings.Contains(out, "!BADKEY") {
				t.Errorf("%s %s: unexpected log line %s", hname, name, out)
			}
		}
		var buf bytes.Buffer
		slog.New(newHandler(&buf)).Info("url", "url", agentapi.PresignedURL(partURL1))
		assertNoSecrets(t, hname+" PresignedURL", buf.String())
		if !strings.Contains(buf.String(), "s3.example.com") {
			t.Errorf("%s: the redacted URL lost its host: %s", hname, buf.String())
		}
	}
}

// TestResponsesInClearOnTheWire: redaction must not reach the wire, where
// the agent needs the secrets.
func TestResponsesInClearOnTheWire(t *testing.T) {
	for name, v := range responses() {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range secrets {
			found = found || bytes.Contains(b, []byte(s))
		}
		if !found {
			t.Errorf("%s: json.Marshal wrote no secret, the wire would carry redacted values: %s", name, b)
		}
	}
}
