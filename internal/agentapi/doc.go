// Package agentapi is the wire contract of the agent API under /api/agent:
// the request and response bodies, the paths, the API-key header, the size
// limits, the JSON error envelope with its closed set of codes and their
// HTTP statuses, strict request decoding (Decode) and request validation.
// The server (webapp) and backapp-agent both build on it, so the two
// cannot drift apart.
//
// The agent runs on laptops and must stay small, so this package must not
// import Kubernetes, controller-runtime, pgx or any BackApp package other
// than internal/apikey and internal/version; a test enforces it. Field
// names are camelCase as in the product seeds (configId, runId,
// filesProcessed ...), pinned by golden tests.
//
// Secrets on the wire are typed so they cannot be logged by accident:
// the API key at registration is an apikey.Key and pre-signed URLs are a
// PresignedURL; both print redacted through fmt and slog, and the
// responses that carry them implement slog.LogValuer. They are written in
// clear only by encoding/json, because the wire needs them.
package agentapi
