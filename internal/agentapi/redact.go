package agentapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/backapp/backapp/internal/apikey"
)

// PresignedURL is a pre-signed object-storage URL: whoever holds it may
// read or write that object until it expires, so it is a secret. fmt and
// slog print only its scheme, host and path; encoding/json writes it in
// clear, because the wire needs it. Use string(u) only to make the request.
type PresignedURL string

// String is the URL without its query (where the signature and the
// credential scope are) or "" for an empty URL.
func (u PresignedURL) String() string {
	if u == "" {
		return ""
	}
	parsed, err := url.Parse(string(u))
	if err != nil || parsed.Host == "" {
		return "[redacted URL]"
	}
	shown := url.URL{Scheme: parsed.Scheme, Host: parsed.Host, Path: parsed.Path}
	s := shown.String()
	if parsed.RawQuery != "" || parsed.Fragment != "" || parsed.User != nil {
		s += "?[redacted]"
	}
	return s
}

// Format makes every fmt verb print the redacted form (see apikey.Key).
func (u PresignedURL) Format(f fmt.State, verb rune) {
	if verb != 'q' {
		verb = 's'
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), u.String())
}

// LogValue makes slog print the redacted form.
func (u PresignedURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// The responses that carry secrets describe themselves to slog without
// them: slog's JSON handler would otherwise marshal them with
// encoding/json, which writes the secrets in clear.

// LogValue leaves out the API key's secret part.
func (r RegisterResponse) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("agent", r.Agent))
}

// LogValue leaves out the API key's secret part.
func (a RegisteredAgent) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.ID),
		slog.String("name", a.Name),
		slog.String("apiKey", a.APIKey.String()),
		slog.String("status", string(a.Status)),
	)
}

// LogValue leaves out the URLs.
func (r StartResponse) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("runId", r.RunID),
		slog.String("key", r.Key),
		slog.String("mode", string(r.Mode)),
		slog.Int64("partSize", r.PartSize),
		slog.Int("parts", len(r.Parts)),
		slog.Time("expiresAt", r.ExpiresAt),
	)
}

// LogValue leaves out the URLs.
func (r PartsResponse) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("runId", r.RunID),
		slog.Int("parts", len(r.Parts)),
		slog.Time("expiresAt", r.ExpiresAt),
	)
}

// LogValue redacts the URL.
func (p PartURL) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("partNumber", p.PartNumber), slog.String("url", p.URL.String()))
}

// LogValue leaves out the URL.
func (r DownloadResponse) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("runId", r.RunID),
		slog.String("key", r.Key),
		slog.Int64("size", r.Size),
		slog.String("sha256", r.SHA256),
		slog.Time("expiresAt", r.ExpiresAt),
	)
}

// registeredAgentJSON is RegisteredAgent with the key as a plain string:
// apikey.Key redacts itself in encoding/json, and this is the one place it
// must not.
type registeredAgentJSON struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	APIKey string      `json:"apiKey"`
	Status AgentStatus `json:"status"`
}

// MarshalJSON writes the API key in clear: the registration response is
// the one time it is shown.
func (a RegisteredAgent) MarshalJSON() ([]byte, error) {
	return json.Marshal(registeredAgentJSON{ID: a.ID, Name: a.Name, APIKey: string(a.APIKey), Status: a.Status})
}

// UnmarshalJSON reads the key and checks that it is well formed.
func (a *RegisteredAgent) UnmarshalJSON(data []byte) error {
	var raw registeredAgentJSON
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	key, err := apikey.Parse(raw.APIKey)
	if err != nil {
		return fmt.Errorf("while reading the registered agent's apiKey: %w", err)
	}
	*a = RegisteredAgent{ID: raw.ID, Name: raw.Name, APIKey: key, Status: raw.Status}
	return nil
}

var (
	_ fmt.Stringer     = PresignedURL("")
	_ fmt.Formatter    = PresignedURL("")
	_ slog.LogValuer   = PresignedURL("")
	_ slog.LogValuer   = RegisterResponse{}
	_ slog.LogValuer   = RegisteredAgent{}
	_ slog.LogValuer   = StartResponse{}
	_ slog.LogValuer   = PartsResponse{}
	_ slog.LogValuer   = PartURL{}
	_ slog.LogValuer   = DownloadResponse{}
	_ json.Marshaler   = RegisteredAgent{}
	_ json.Unmarshaler = (*RegisteredAgent)(nil)
)
