// Package apikey makes, parses and hashes agent API keys.
//
// A key is "bak_" followed by 58 lowercase base32 characters that encode 32
// random bytes (256 bits from crypto/rand) and a CRC-32 of them. The prefix
// makes a leaked key easy to recognise (and to scan for in repositories);
// the checksum lets Parse reject a mistyped or truncated key before any
// database lookup, as GitHub's tokens do.
//
// Only Key.Hash (SHA-256) is ever stored. SHA-256 and not bcrypt because
// the key has 256 bits of entropy: it cannot be guessed, so a slow hash
// buys nothing and would cost tens of milliseconds of CPU on every agent
// request (see DESIGN.md, "Decisions").
//
// A Key redacts itself wherever it is printed or logged by accident: fmt
// (every verb), slog (LogValue) and encoding/json or other text encoders
// (MarshalText) all see "bak_xxxx…" at most. The one way to the secret is
// the explicit conversion string(k), for the X-Agent-API-Key header and
// the one-time display at registration.
//
// It imports only the standard library, so the agent, the server and the
// store can all use it.
package apikey
