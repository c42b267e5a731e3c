// Package mirror keeps PostgreSQL's copy of BackApp's Kubernetes objects
// (Agents, BackupConfigs, BackupRuns) in step with the cluster, so history
// outlives pruned BackupRuns and the dashboard can aggregate without listing
// the API server. Kubernetes stays the source of truth; the rows are written
// only through the store's idempotent upserts keyed by object UID.
//
// # How it converges
//
//   - One reconciler per kind (controllers "mirror_agent",
//     "mirror_backupconfig", "mirror_backuprun") reads the object from the
//     manager's cache and upserts it, with ObservedAt = when it was read.
//     A failed write returns the error, so the object is retried with
//     per-object backoff (retryBaseDelay to retryMaxDelay).
//   - Deletions are soft and never blocked: no finalizers. The delete event
//     carries the object's last state, kept in memory (a tombstone) until
//     that state and the deletion are written, so an object that came and
//     went while PostgreSQL was down still leaves its row. Tombstones live
//     in memory only: if the manager stops before they are written, a
//     deletion is still found by the resync below (as are objects deleted
//     while no mirror ran), but an object that was never mirrored leaves
//     no row.
//   - A resync pass runs when the manager starts and again after every
//     PostgreSQL outage (a failed write followed by a failed ping; the
//     mirror pings with backoff until the database answers): every live row
//     whose object the cluster no longer has is marked deleted (checked
//     against the API server itself, not the cache, so a row written by
//     someone else for an object the cache has not seen yet is safe), and
//     every cached object is queued for an upsert again, skipping the
//     backoff its failed retries built up.
//
// # Owners
//
// A config's owner is the owner of its Agent (spec.owner) in Agent mode. In
// Server mode there is no agent; the owner is the config's backapp.io/owner
// annotation, else its backapp.io/owner label, else "admin" (the
// bootstrap owner). Anyone allowed to edit BackupConfigs can therefore
// choose whose dashboard a Server-mode config appears in; Kubernetes RBAC is
// the boundary there. A run's owner is its config's owner, its agent the
// Agent that claimed it (status.claimedBy), else its config's agent, and its
// config the BackupConfig named by its controller owner reference (else by
// spec.configRef). When the cluster no longer has the object such a value
// comes from (or does not have it yet), the value already stored for the
// row is kept (for a run, failing that, its config's row; failing all, it
// is empty), so deleting an agent or config does not orphan history. An
// Agent appearing, and a config's spec or owner changing, re-mirror the
// rows that copy from them.
//
// # Scope
//
// The mirror mirrors what the manager's cache sees. The deletion check
// reads the API server in every namespace that has live rows (skipping a
// namespace it may not list), so one database must mirror one cluster.
//
// The package must not import webapp, controllers or agent; it needs only
// the API types, the store and controller-runtime.
package mirror

// The mirror only reads the three kinds. controllers/doc.go already grants
// these verbs (and more) to the manager, and `make manifests` reads only
// ./api and ./controllers; the markers here say what this package needs.
//
// +kubebuilder:rbac:groups=backapp.io,resources=backupconfigs;agents;backupruns,verbs=get;list;watch
