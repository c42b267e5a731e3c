// Package client is backapp-agent's side of the agent API (/api/agent): one
// method per endpoint, each sending the agent's API key, validating its
// request before it leaves (agentapi's Validate, so a bug costs no round
// trip), retrying what is safe to retry and decoding the answer leniently
// (a newer server may add fields).
//
// Errors. A non-2xx answer is an *agentapi.APIError, wrapped with what was
// being done: decoded from the server's JSON error body, or, when the body
// is not one (a proxy's HTML page, an empty 502), made up from the HTTP
// status so that agentapi.CodeOf and errors.As always work. A request that
// got no HTTP answer at all wraps ErrUnreachable. Neither ever contains the
// API key or a pre-signed URL: the key travels only in the
// X-Agent-API-Key header and net/http's *url.Error (which quotes the full
// URL) is unwrapped before it is reported.
//
// Retries. Every call is retried with exponential backoff and full jitter
// when the server rate-limits it (429, honouring Retry-After: the request
// was refused before any work) or when the connection could not even be
// opened. Calls that are idempotent on the server are also retried when no
// answer arrived or the server failed (500, 502, 503, 504 without a
// permanent code such as upload_failed). 4xx answers other than 429 are
// never retried: the same request cannot succeed. Which calls are
// idempotent is documented on each method.
//
// Redirects are not followed: net/http would forward the X-Agent-API-Key
// header to wherever a redirect points (it strips only the headers it
// knows to be credentials), so a 3xx is reported as an error instead.
//
// It runs inside backapp-agent on laptops, so it must not import
// Kubernetes, controller-runtime or pgx packages: only the standard
// library, internal/agentapi, internal/apikey and internal/version. A
// test enforces it.
package client
