package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The mirror of Kubernetes objects.
//
// Ordering: resourceVersions are opaque strings and must not be compared,
// so each upsert carries ObservedAt, when the caller read the object. A row
// is only overwritten by a state observed at the same time or later (last
// writer wins, by observation time), and a run's phase only moves forward
// (Pending -> Running -> finished) whatever the times say, so a stale
// event can never un-finish a run.
//
// Names: Kubernetes names are unique among live objects, so when an upsert
// brings a new UID for a namespace/name whose row is still live, the old
// object is gone even if its deletion was never reported (a delete and a
// re-create can reach a controller as one event). The old row is then
// marked deleted. If instead the live row was observed later than the
// incoming one, the incoming one is the stale one and is ignored.
//
// Once a row is marked deleted, upserts for its UID are ignored: a UID is
// never reused, so anything arriving later is stale.

// AgentRow mirrors an Agent object.
type AgentRow struct {
	UID         string // metadata.uid, the key
	Namespace   string
	Name        string
	Owner       string // spec.owner, the owning user's id
	DisplayName string
	// Phase is Pending, Online, Offline, Disabled or Error; "" is stored as
	// Pending (the status before the controller's first write).
	Phase    string
	LastSeen *time.Time
	Platform string
	Arch     string
	Version  string
	Hostname string
	Disabled bool
	// CreatedAt is metadata.creationTimestamp.
	CreatedAt time.Time
	// ObservedAt is when the caller read the object; stored as updated_at
	// and used to order writes. Required.
	ObservedAt      time.Time
	ResourceVersion string

	// Read only: filled by the Get functions, ignored by UpsertAgent.
	APIKeyPrefix string     // set with SetAgentAPIKey
	DeletedAt    *time.Time // set with MarkAgentDeleted
}

// ConfigRow mirrors a BackupConfig object.
type ConfigRow struct {
	UID       string // metadata.uid, the key
	Namespace string
	Name      string
	Owner     string // the owning user's id, "" if none
	// ExecutionMode is Server or Agent; "" is stored as Server (the CRD
	// default).
	ExecutionMode string
	AgentName     string // spec.agentRef.name, "" in Server mode
	AgentUID      string // that agent's uid, "" if unknown
	// Spec is the whole spec as JSON; empty is stored as {}.
	Spec                json.RawMessage
	Schedule            string // spec.schedule.cron, "" without a schedule
	TimeZone            string
	Suspended           bool
	DestinationBucket   string
	DestinationEndpoint string
	CreatedAt           time.Time // metadata.creationTimestamp
	// ObservedAt is when the caller read the object; stored as updated_at
	// and used to order writes. Required.
	ObservedAt      time.Time
	ResourceVersion string

	// Read only: filled by the Get functions, ignored by UpsertConfig.
	DeletedAt *time.Time // set with MarkConfigDeleted
}

// RunError is one problem met during a run (status.errors).
type RunError struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// RunRow mirrors a BackupRun object.
type RunRow struct {
	UID        string // metadata.uid, the key
	Namespace  string
	Name       string
	ConfigName string // spec.configRef.name
	ConfigUID  string // that config's uid, "" if unknown
	Owner      string // the owning user's id, "" if none
	AgentUID   string // the agent that ran it, "" for Server mode or unknown
	// Trigger is Schedule, Manual or Agent; "" is stored as Manual (the CRD
	// default).
	Trigger string
	// Phase is Pending, Running, Succeeded, Failed or Cancelled; "" is
	// stored as Pending.
	Phase            string
	ScheduledTime    *time.Time
	StartTime        *time.Time
	EndTime          *time.Time // status.completionTime
	FilesProcessed   int64
	FilesSkipped     int64
	TotalBytes       int64
	BytesTransferred int64
	Bucket           string // status.object.bucket
	ObjectKey        string // status.object.key (column s3_path)
	ObjectSize       int64
	SHA256           string // lower-case hex, or ""
	Errors           []RunError
	ErrorCount       int64
	Message          string
	CreatedAt        time.Time // metadata.creationTimestamp
	// ObservedAt is when the caller read the object; stored as updated_at
	// and used to order writes. Required.
	ObservedAt      time.Time
	ResourceVersion string

	// Read only: filled by the Get functions, ignored by UpsertRun.
	Duration             *time.Duration // EndTime - StartTime, when both are set
	DeletedFromClusterAt *time.Time     // set with MarkRunDeletedFromCluster
	ObjectDeletedAt      *time.Time     // set with MarkRunObjectDeleted
}

// validateObject checks what every mirrored row needs.
func validateObject(uid, namespace, name string, createdAt, observedAt time.Time) error {
	switch {
	case uid == "":
		return fmt.Errorf("%w: UID is empty", ErrInvalid)
	case namespace == "" || name == "":
		return fmt.Errorf("%w: namespace and name are required", ErrInvalid)
	case createdAt.IsZero():
		return fmt.Errorf("%w: CreatedAt is not set", ErrInvalid)
	case observedAt.IsZero():
		return fmt.Errorf("%w: ObservedAt is not set", ErrInvalid)
	}
	return nil
}

// mirrorTable names what differs between the mirrored tables for the
// shared steps (table and column names are constants, never input).
type mirrorTable struct {
	table     string
	deletedAt string // the soft-delete column
	// onDelete is extra SET clauses for a soft delete.
	onDelete string
}

func agentsTable() mirrorTable {
	// A deleted agent's key must stop working at once.
	return mirrorTable{table: "agents", deletedAt: "deleted_at", onDelete: ", api_key_hash = NULL"}
}

func configsTable() mirrorTable {
	return mirrorTable{table: "backup_configs", deletedAt: "deleted_at"}
}

func runsTable() mirrorTable {
	return mirrorTable{table: "backup_runs", deletedAt: "deleted_from_k8s_at"}
}

// upsertMirrored runs upsert in a transaction after settling who owns
// namespace/name (see the comment at the top of this file). It does
// nothing when the incoming object is the stale one.
func upsertMirrored(ctx context.Context, tx pgx.Tx, t mirrorTable, uid, namespace, name string, observedAt time.Time, upsert func() error) error {
	// The old object is gone: mark it deleted as of when its successor was
	// observed, the latest moment we know it had been deleted by.
	if _, err := tx.Exec(ctx, `UPDATE `+t.table+` SET `+t.deletedAt+` = $4`+t.onDelete+`
		WHERE namespace = $1 AND name = $2 AND uid <> $3 AND `+t.deletedAt+` IS NULL AND updated_at <= $4`,
		namespace, name, uid, observedAt); err != nil {
		return fmt.Errorf("while retiring older objects named %s/%s: %w", namespace, name, err)
	}
	var newerExists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.table+`
		WHERE namespace = $1 AND name = $2 AND uid <> $3 AND `+t.deletedAt+` IS NULL)`,
		namespace, name, uid).Scan(&newerExists); err != nil {
		return fmt.Errorf("while looking for newer objects named %s/%s: %w", namespace, name, err)
	}
	if newerExists {
		return nil
	}
	return upsert()
}

// UpsertAgent inserts or updates the mirror of an Agent. Replaying the same
// row is harmless; a row observed before the stored one is ignored, as is
// any row for a deleted agent. LastSeen never moves backwards. The API key
// is not touched (see SetAgentAPIKey).
func (s *Store) UpsertAgent(ctx context.Context, a AgentRow) error {
	if err := validateObject(a.UID, a.Namespace, a.Name, a.CreatedAt, a.ObservedAt); err != nil {
		return fmt.Errorf("while upserting agent %s/%s: %w", a.Namespace, a.Name, err)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return upsertMirrored(ctx, tx, agentsTable(), a.UID, a.Namespace, a.Name, a.ObservedAt, func() error {
			_, err := tx.Exec(ctx, `
INSERT INTO agents AS a (uid, namespace, name, owner, display_name, phase, last_seen,
	platform, arch, version, hostname, disabled, created_at, updated_at, resource_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (uid) DO UPDATE SET
	namespace = EXCLUDED.namespace,
	name = EXCLUDED.name,
	owner = EXCLUDED.owner,
	display_name = EXCLUDED.display_name,
	phase = EXCLUDED.phase,
	last_seen = GREATEST(a.last_seen, EXCLUDED.last_seen),
	platform = EXCLUDED.platform,
	arch = EXCLUDED.arch,
	version = EXCLUDED.version,
	hostname = EXCLUDED.hostname,
	disabled = EXCLUDED.disabled,
	created_at = EXCLUDED.created_at,
	updated_at = EXCLUDED.updated_at,
	resource_version = EXCLUDED.resource_version
WHERE a.deleted_at IS NULL AND a.updated_at <= EXCLUDED.updated_at`,
				a.UID, a.Namespace, a.Name, a.Owner, a.DisplayName, orDefault(a.Phase, "Pending"), a.LastSeen,
				a.Platform, a.Arch, a.Version, a.Hostname, a.Disabled, a.CreatedAt, a.ObservedAt, a.ResourceVersion)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("while upserting agent %s/%s (%s): %w", a.Namespace, a.Name, a.UID, err)
	}
	return nil
}

// UpsertConfig inserts or updates the mirror of a BackupConfig, with the
// same ordering rules as UpsertAgent.
func (s *Store) UpsertConfig(ctx context.Context, c ConfigRow) error {
	if err := validateObject(c.UID, c.Namespace, c.Name, c.CreatedAt, c.ObservedAt); err != nil {
		return fmt.Errorf("while upserting backup config %s/%s: %w", c.Namespace, c.Name, err)
	}
	spec := c.Spec
	if len(spec) == 0 {
		spec = json.RawMessage(`{}`)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return upsertMirrored(ctx, tx, configsTable(), c.UID, c.Namespace, c.Name, c.ObservedAt, func() error {
			_, err := tx.Exec(ctx, `
INSERT INTO backup_configs AS c (uid, namespace, name, owner, execution_mode, agent_name, agent_uid,
	spec, schedule, time_zone, suspended, destination_bucket, destination_endpoint,
	created_at, updated_at, resource_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (uid) DO UPDATE SET
	namespace = EXCLUDED.namespace,
	name = EXCLUDED.name,
	owner = EXCLUDED.owner,
	execution_mode = EXCLUDED.execution_mode,
	agent_name = EXCLUDED.agent_name,
	agent_uid = EXCLUDED.agent_uid,
	spec = EXCLUDED.spec,
	schedule = EXCLUDED.schedule,
	time_zone = EXCLUDED.time_zone,
	suspended = EXCLUDED.suspended,
	destination_bucket = EXCLUDED.destination_bucket,
	destination_endpoint = EXCLUDED.destination_endpoint,
	created_at = EXCLUDED.created_at,
	updated_at = EXCLUDED.updated_at,
	resource_version = EXCLUDED.resource_version
WHERE c.deleted_at IS NULL AND c.updated_at <= EXCLUDED.updated_at`,
				c.UID, c.Namespace, c.Name, c.Owner, orDefault(c.ExecutionMode, "Server"), c.AgentName, nullIfEmpty(c.AgentUID),
				spec, c.Schedule, c.TimeZone, c.Suspended, c.DestinationBucket, c.DestinationEndpoint,
				c.CreatedAt, c.ObservedAt, c.ResourceVersion)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("while upserting backup config %s/%s (%s): %w", c.Namespace, c.Name, c.UID, err)
	}
	return nil
}

// runPhaseRank orders run phases; a run only moves to a higher rank. The
// finished phases share the top rank and never change into one another.
const runPhaseRank = `CASE %s WHEN 'Pending' THEN 0 WHEN 'Running' THEN 1 ELSE 2 END`

// UpsertRun inserts or updates the mirror of a BackupRun. A row replaces
// the stored one when its phase is further along (Pending -> Running ->
// Succeeded/Failed/Cancelled), whenever it was observed, or when it has the
// same phase and was observed at the same time or later. So a finished run
// never goes back to Running or Pending and never changes its result, and
// counters of an active run only come from newer observations. Rows for
// runs already marked deleted from the cluster are ignored.
func (s *Store) UpsertRun(ctx context.Context, r RunRow) error {
	if err := validateObject(r.UID, r.Namespace, r.Name, r.CreatedAt, r.ObservedAt); err != nil {
		return fmt.Errorf("while upserting backup run %s/%s: %w", r.Namespace, r.Name, err)
	}
	runErrors := r.Errors
	if runErrors == nil {
		runErrors = []RunError{} // the column holds an array, never JSON null
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return upsertMirrored(ctx, tx, runsTable(), r.UID, r.Namespace, r.Name, r.ObservedAt, func() error {
			_, err := tx.Exec(ctx, `
INSERT INTO backup_runs AS r (uid, namespace, name, config_name, config_uid, owner, agent_uid,
	trigger, phase, scheduled_time, start_time, end_time,
	files_processed, files_skipped, total_bytes, bytes_transferred,
	bucket, s3_path, object_size, sha256, errors, error_count, message,
	created_at, updated_at, resource_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
	$17, $18, $19, $20, $21, $22, $23, $24, $25, $26)
ON CONFLICT (uid) DO UPDATE SET
	namespace = EXCLUDED.namespace,
	name = EXCLUDED.name,
	config_name = EXCLUDED.config_name,
	config_uid = EXCLUDED.config_uid,
	owner = EXCLUDED.owner,
	agent_uid = EXCLUDED.agent_uid,
	trigger = EXCLUDED.trigger,
	phase = EXCLUDED.phase,
	scheduled_time = EXCLUDED.scheduled_time,
	start_time = EXCLUDED.start_time,
	end_time = EXCLUDED.end_time,
	files_processed = EXCLUDED.files_processed,
	files_skipped = EXCLUDED.files_skipped,
	total_bytes = EXCLUDED.total_bytes,
	bytes_transferred = EXCLUDED.bytes_transferred,
	bucket = EXCLUDED.bucket,
	s3_path = EXCLUDED.s3_path,
	object_size = EXCLUDED.object_size,
	sha256 = EXCLUDED.sha256,
	errors = EXCLUDED.errors,
	error_count = EXCLUDED.error_count,
	message = EXCLUDED.message,
	created_at = EXCLUDED.created_at,
	-- A forward phase change may come from an earlier observation (clocks
	-- of two writers differ); updated_at still never goes backwards.
	updated_at = GREATEST(r.updated_at, EXCLUDED.updated_at),
	resource_version = EXCLUDED.resource_version
WHERE r.deleted_from_k8s_at IS NULL AND (
	`+fmt.Sprintf(runPhaseRank, "EXCLUDED.phase")+` > `+fmt.Sprintf(runPhaseRank, "r.phase")+`
	OR (EXCLUDED.phase = r.phase AND r.updated_at <= EXCLUDED.updated_at)
)`,
				r.UID, r.Namespace, r.Name, r.ConfigName, nullIfEmpty(r.ConfigUID), r.Owner, nullIfEmpty(r.AgentUID),
				orDefault(r.Trigger, "Manual"), orDefault(r.Phase, "Pending"), r.ScheduledTime, r.StartTime, r.EndTime,
				r.FilesProcessed, r.FilesSkipped, r.TotalBytes, r.BytesTransferred,
				r.Bucket, r.ObjectKey, r.ObjectSize, r.SHA256, runErrors, r.ErrorCount, r.Message,
				r.CreatedAt, r.ObservedAt, r.ResourceVersion)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("while upserting backup run %s/%s (%s): %w", r.Namespace, r.Name, r.UID, err)
	}
	return nil
}

// MarkAgentDeleted records that the Agent object was deleted at at. The row
// stays for history; its API key hash is dropped, so the key stops working
// at once. Marking twice keeps the first time. ErrNotFound if the agent was
// never mirrored.
func (s *Store) MarkAgentDeleted(ctx context.Context, uid string, at time.Time) error {
	return s.markDeleted(ctx, agentsTable(), "agent", uid, at)
}

// MarkConfigDeleted records that the BackupConfig object was deleted at at;
// the row and its runs stay for history. Marking twice keeps the first
// time. ErrNotFound if the config was never mirrored.
func (s *Store) MarkConfigDeleted(ctx context.Context, uid string, at time.Time) error {
	return s.markDeleted(ctx, configsTable(), "backup config", uid, at)
}

// MarkRunDeletedFromCluster records that the BackupRun object was deleted
// (typically pruned by the history limits) at at; the row stays as the
// run's history. Marking twice keeps the first time. ErrNotFound if the run
// was never mirrored.
func (s *Store) MarkRunDeletedFromCluster(ctx context.Context, uid string, at time.Time) error {
	return s.markDeleted(ctx, runsTable(), "backup run", uid, at)
}

func (s *Store) markDeleted(ctx context.Context, t mirrorTable, kind, uid string, at time.Time) error {
	if uid == "" || at.IsZero() {
		return fmt.Errorf("while marking %s %q deleted: %w: uid and time are required", kind, uid, ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE `+t.table+` SET `+t.deletedAt+` = COALESCE(`+t.deletedAt+`, $2)`+t.onDelete+`
		WHERE uid = $1`, uid, at)
	if err != nil {
		return fmt.Errorf("while marking %s %s deleted: %w", kind, uid, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("while marking %s %s deleted: %w", kind, uid, ErrNotFound)
	}
	return nil
}

// MarkRunObjectDeleted records that retention deleted the run's archive
// from object storage at at. Marking twice keeps the first time.
// ErrNotFound if the run is unknown.
func (s *Store) MarkRunObjectDeleted(ctx context.Context, uid string, at time.Time) error {
	if uid == "" || at.IsZero() {
		return fmt.Errorf("while marking the archive of backup run %q deleted: %w: uid and time are required", uid, ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE backup_runs SET object_deleted_at = COALESCE(object_deleted_at, $2) WHERE uid = $1`, uid, at)
	if err != nil {
		return fmt.Errorf("while marking the archive of backup run %s deleted: %w", uid, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("while marking the archive of backup run %s deleted: %w", uid, ErrNotFound)
	}
	return nil
}

// APIKeyHashSize is the size of an agent API key hash (SHA-256).
const APIKeyHashSize = 32

// SetAgentAPIKey stores the SHA-256 hash of a live agent's API key and the
// key's display prefix, replacing any earlier key: rotation takes effect
// on the next lookup. A nil hash revokes the key. ErrNotFound if the agent
// is not mirrored or is deleted.
func (s *Store) SetAgentAPIKey(ctx context.Context, uid string, hash []byte, prefix string) error {
	if hash != nil && len(hash) != APIKeyHashSize {
		return fmt.Errorf("while setting the API key of agent %s: %w: hash is %d bytes, want %d", uid, ErrInvalid, len(hash), APIKeyHashSize)
	}
	if hash == nil {
		prefix = ""
	}
	tag, err := s.pool.Exec(ctx, `UPDATE agents SET api_key_hash = $2, api_key_prefix = $3
		WHERE uid = $1 AND deleted_at IS NULL`, uid, hash, prefix)
	if err != nil {
		return fmt.Errorf("while setting the API key of agent %s: %w", uid, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("while setting the API key of agent %s: %w", uid, ErrNotFound)
	}
	return nil
}

const agentColumns = `uid::text, namespace, name, owner, display_name, phase, last_seen,
	platform, arch, version, hostname, disabled, created_at, updated_at, resource_version,
	api_key_prefix, deleted_at`

func scanAgent(row pgx.Row) (AgentRow, error) {
	var a AgentRow
	err := row.Scan(&a.UID, &a.Namespace, &a.Name, &a.Owner, &a.DisplayName, &a.Phase, &a.LastSeen,
		&a.Platform, &a.Arch, &a.Version, &a.Hostname, &a.Disabled, &a.CreatedAt, &a.ObservedAt, &a.ResourceVersion,
		&a.APIKeyPrefix, &a.DeletedAt)
	return a, notFound(err)
}

// GetAgent returns the mirrored agent with this UID, deleted or not.
func (s *Store) GetAgent(ctx context.Context, uid string) (AgentRow, error) {
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentColumns+` FROM agents WHERE uid = $1`, uid))
	if err != nil {
		return AgentRow{}, fmt.Errorf("while getting agent %s: %w", uid, err)
	}
	return a, nil
}

// GetAgentByKeyHash returns the live (not deleted) agent whose API key
// hashes to hash, or ErrNotFound. A disabled agent is returned with
// Disabled set: refusing it, with a message saying why, is the caller's
// job.
func (s *Store) GetAgentByKeyHash(ctx context.Context, hash []byte) (AgentRow, error) {
	if len(hash) != APIKeyHashSize {
		// No stored hash has another size; skip the round trip.
		return AgentRow{}, fmt.Errorf("while looking up an agent by API key: %w", ErrNotFound)
	}
	a, err := scanAgent(s.pool.QueryRow(ctx, `SELECT `+agentColumns+` FROM agents
		WHERE api_key_hash = $1 AND deleted_at IS NULL`, hash))
	if err != nil {
		return AgentRow{}, fmt.Errorf("while looking up an agent by API key: %w", err)
	}
	return a, nil
}

// GetConfig returns the mirrored backup config with this UID, deleted or
// not.
func (s *Store) GetConfig(ctx context.Context, uid string) (ConfigRow, error) {
	var (
		c    ConfigRow
		spec []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT uid::text, namespace, name, owner, execution_mode, agent_name,
		coalesce(agent_uid::text, ''), spec, schedule, time_zone, suspended, destination_bucket,
		destination_endpoint, created_at, updated_at, resource_version, deleted_at
		FROM backup_configs WHERE uid = $1`, uid).Scan(
		&c.UID, &c.Namespace, &c.Name, &c.Owner, &c.ExecutionMode, &c.AgentName,
		&c.AgentUID, &spec, &c.Schedule, &c.TimeZone, &c.Suspended, &c.DestinationBucket,
		&c.DestinationEndpoint, &c.CreatedAt, &c.ObservedAt, &c.ResourceVersion, &c.DeletedAt)
	if err != nil {
		return ConfigRow{}, fmt.Errorf("while getting backup config %s: %w", uid, notFound(err))
	}
	c.Spec = spec
	return c, nil
}

// GetRun returns the mirrored backup run with this UID, also after it was
// deleted from the cluster.
func (s *Store) GetRun(ctx context.Context, uid string) (RunRow, error) {
	var (
		r          RunRow
		durationMS *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT uid::text, namespace, name, config_name,
		coalesce(config_uid::text, ''), owner, coalesce(agent_uid::text, ''), trigger, phase,
		scheduled_time, start_time, end_time, files_processed, files_skipped, total_bytes,
		bytes_transferred, bucket, s3_path, object_size, sha256, errors, error_count, message,
		created_at, updated_at, resource_version, duration_ms, deleted_from_k8s_at, object_deleted_at
		FROM backup_runs WHERE uid = $1`, uid).Scan(
		&r.UID, &r.Namespace, &r.Name, &r.ConfigName,
		&r.ConfigUID, &r.Owner, &r.AgentUID, &r.Trigger, &r.Phase,
		&r.ScheduledTime, &r.StartTime, &r.EndTime, &r.FilesProcessed, &r.FilesSkipped, &r.TotalBytes,
		&r.BytesTransferred, &r.Bucket, &r.ObjectKey, &r.ObjectSize, &r.SHA256, &r.Errors, &r.ErrorCount, &r.Message,
		&r.CreatedAt, &r.ObservedAt, &r.ResourceVersion, &durationMS, &r.DeletedFromClusterAt, &r.ObjectDeletedAt)
	if err != nil {
		return RunRow{}, fmt.Errorf("while getting backup run %s: %w", uid, notFound(err))
	}
	if durationMS != nil {
		d := time.Duration(*durationMS) * time.Millisecond
		r.Duration = &d
	}
	return r, nil
}

// notFound turns pgx's "no rows" into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// orDefault is s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// nullIfEmpty maps "" to SQL NULL, for optional uuid columns.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
