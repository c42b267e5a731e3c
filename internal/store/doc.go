// Package store is BackApp's PostgreSQL layer: the reporting store and the
// dashboard's own store. It owns the schema (versioned SQL migrations
// embedded in the binary, applied by Migrate) and the queries on it.
//
// Kubernetes is the source of truth for agents, backup configs and backup
// runs; this package keeps a mirror of them keyed by the object's UID, so
// history outlives pruned BackupRun objects and the dashboard can aggregate
// without listing the API server. The mirror writes are idempotent upserts
// that never move a row backwards (see UpsertRun), and deletions are soft:
// the row stays with a deletion time.
//
// Agent API keys are not in the Agent object; their SHA-256 hashes live only
// here. Registration therefore creates the Agent object, mirrors it with
// UpsertAgent and then stores the key hash with SetAgentAPIKey.
//
// The package talks to PostgreSQL through pgx and takes plain structs. It
// must not import Kubernetes packages (nor BackApp's API types, which pull
// them in): the code that turns CRD objects into rows lives with the
// controllers and calls this package.
package store
