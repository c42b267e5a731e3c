// Package agent will hold backapp-agent: the walk -> tar -> compress ->
// (encrypt) -> multipart upload pipeline, restore with safe extraction, the
// daemon that heartbeats and runs due backups, and the one-shot `job` mode
// that server-mode Jobs run. cmd/backapp-agent is its main.
//
// It runs on laptops (macOS, Linux, Windows) and must stay small: it must
// not import Kubernetes, controller-runtime or pgx packages, only
// internal/agentapi for the wire types it shares with the server.
package agent
