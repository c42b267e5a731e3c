-- 0001_initial: BackApp's reporting store and the dashboard's own store.
--
-- Two kinds of tables live here:
--
--   * The dashboard's own data, for which PostgreSQL is the source of truth:
--     users, sessions, password_resets, alerts, notification_channels,
--     notification_deliveries.
--   * A mirror of Kubernetes objects (agents, backup_configs, backup_runs),
--     keyed by the object's metadata.uid. Kubernetes is the source of truth
--     for them; rows are soft-deleted when the object goes, so history
--     outlives pruned BackupRun objects.
--
-- Mirrored tables deliberately have no foreign keys between each other
-- (a run may be mirrored before its config, and the mirror must never fail
-- on data Kubernetes accepted), and their CHECK constraints repeat exactly
-- what the CRDs validate, no more.
--
-- Every migration runs in its own transaction (see migrate.go).

-- users: people who sign in to the dashboard. Email is unique regardless of
-- case; the application keeps the address as typed.
CREATE TABLE users (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text        NOT NULL CHECK (email LIKE '_%@_%' AND length(email) <= 320),
    name          text        NOT NULL CHECK (length(name) <= 255),
    password_hash text        NOT NULL CHECK (password_hash <> ''),
    role          text        NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    disabled      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

-- sessions: server-side dashboard sessions. Only a SHA-256 of the session
-- id (and of the CSRF token) is kept, so a leaked table cannot be replayed.
CREATE TABLE sessions (
    id_hash         bytea       PRIMARY KEY CHECK (length(id_hash) = 32),
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token_hash bytea       NOT NULL CHECK (length(csrf_token_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    user_agent      text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    ip              inet,
    CHECK (expires_at > created_at)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
-- Expired sessions are swept by expires_at.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

-- password_resets: one-time reset tokens, stored as SHA-256 hashes.
CREATE TABLE password_resets (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

-- agents: mirror of Agent objects, plus the API key hash, which is never in
-- the object. owner is the owning user's id as written in spec.owner (text,
-- not a foreign key: Kubernetes accepts any owner string).
CREATE TABLE agents (
    uid              uuid        PRIMARY KEY,
    namespace        text        NOT NULL CHECK (namespace <> ''),
    name             text        NOT NULL CHECK (name <> ''),
    owner            text        NOT NULL,
    display_name     text        NOT NULL DEFAULT '',
    -- SHA-256 of the API key; NULL once revoked or the agent is deleted.
    api_key_hash     bytea       UNIQUE CHECK (length(api_key_hash) = 32),
    -- The key's first characters, shown so people can tell keys apart.
    api_key_prefix   text        NOT NULL DEFAULT '' CHECK (length(api_key_prefix) <= 32),
    phase            text        NOT NULL DEFAULT 'Pending'
                                 CHECK (phase IN ('Pending', 'Online', 'Offline', 'Disabled', 'Error')),
    last_seen        timestamptz,
    platform         text        NOT NULL DEFAULT '',
    arch             text        NOT NULL DEFAULT '',
    version          text        NOT NULL DEFAULT '',
    hostname         text        NOT NULL DEFAULT '',
    disabled         boolean     NOT NULL DEFAULT false,
    -- created_at is the object's creationTimestamp; updated_at is when the
    -- mirror observed the state stored in this row.
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    deleted_at       timestamptz,
    resource_version text        NOT NULL DEFAULT ''
);
-- A name is unique among live objects only: a deleted agent's row stays
-- for history while a new one takes its name.
CREATE UNIQUE INDEX agents_namespace_name_live_key ON agents (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX agents_owner_idx ON agents (owner);
CREATE INDEX agents_phase_idx ON agents (phase);

-- agent_logs: log lines agents send. Written in batches with COPY.
CREATE TABLE agent_logs (
    id        bigserial   PRIMARY KEY,
    agent_uid uuid        NOT NULL REFERENCES agents (uid) ON DELETE CASCADE,
    -- The run the line is about, if any (no foreign key: see the header).
    run_uid   uuid,
    level     text        NOT NULL CHECK (level IN ('debug', 'info', 'warning', 'error')),
    message   text        NOT NULL CHECK (length(message) <= 8192),
    metadata  jsonb,
    ts        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_logs_agent_uid_ts_idx ON agent_logs (agent_uid, ts DESC);
CREATE INDEX agent_logs_run_uid_idx ON agent_logs (run_uid) WHERE run_uid IS NOT NULL;

-- backup_configs: mirror of BackupConfig objects. spec is the whole spec as
-- JSON; the columns beside it are the parts the dashboard filters and sorts
-- on.
CREATE TABLE backup_configs (
    uid                  uuid        PRIMARY KEY,
    namespace            text        NOT NULL CHECK (namespace <> ''),
    name                 text        NOT NULL CHECK (name <> ''),
    owner                text        NOT NULL DEFAULT '',
    execution_mode       text        NOT NULL CHECK (execution_mode IN ('Server', 'Agent')),
    -- agent_name is spec.agentRef.name; agent_uid is that agent's uid when
    -- the mirror knew it.
    agent_name           text        NOT NULL DEFAULT '',
    agent_uid            uuid,
    spec                 jsonb       NOT NULL,
    -- schedule is the cron expression, '' for configs run only by hand.
    schedule             text        NOT NULL DEFAULT '',
    time_zone            text        NOT NULL DEFAULT '',
    suspended            boolean     NOT NULL DEFAULT false,
    destination_bucket   text        NOT NULL DEFAULT '',
    destination_endpoint text        NOT NULL DEFAULT '',
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    deleted_at           timestamptz,
    resource_version     text        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX backup_configs_namespace_name_live_key ON backup_configs (namespace, name) WHERE deleted_at IS NULL;
CREATE INDEX backup_configs_owner_idx ON backup_configs (owner);
CREATE INDEX backup_configs_agent_uid_idx ON backup_configs (agent_uid) WHERE agent_uid IS NOT NULL;

-- backup_runs: mirror of BackupRun objects (the seeds' backup_logs). Rows
-- stay after the object is pruned from the cluster (deleted_from_k8s_at)
-- and record when retention deleted the archive (object_deleted_at).
CREATE TABLE backup_runs (
    uid                 uuid        PRIMARY KEY,
    namespace           text        NOT NULL CHECK (namespace <> ''),
    name                text        NOT NULL CHECK (name <> ''),
    -- config_name is spec.configRef.name; config_uid that config's uid when
    -- the mirror knew it.
    config_name         text        NOT NULL DEFAULT '',
    config_uid          uuid,
    owner               text        NOT NULL DEFAULT '',
    agent_uid           uuid,
    trigger             text        NOT NULL DEFAULT 'Manual' CHECK (trigger IN ('Schedule', 'Manual', 'Agent')),
    phase               text        NOT NULL DEFAULT 'Pending'
                                    CHECK (phase IN ('Pending', 'Running', 'Succeeded', 'Failed', 'Cancelled')),
    scheduled_time      timestamptz,
    start_time          timestamptz,
    end_time            timestamptz,
    files_processed     bigint      NOT NULL DEFAULT 0 CHECK (files_processed >= 0),
    files_skipped       bigint      NOT NULL DEFAULT 0 CHECK (files_skipped >= 0),
    total_bytes         bigint      NOT NULL DEFAULT 0 CHECK (total_bytes >= 0),
    bytes_transferred   bigint      NOT NULL DEFAULT 0 CHECK (bytes_transferred >= 0),
    -- The stored archive: bucket, s3_path (the object key), size, SHA-256.
    bucket              text        NOT NULL DEFAULT '',
    s3_path             text        NOT NULL DEFAULT '',
    object_size         bigint      NOT NULL DEFAULT 0 CHECK (object_size >= 0),
    sha256              text        NOT NULL DEFAULT '' CHECK (sha256 = '' OR sha256 ~ '^[a-f0-9]{64}$'),
    -- errors is the bounded list from status.errors; error_count counts all.
    errors              jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(errors) = 'array'),
    error_count         bigint      NOT NULL DEFAULT 0 CHECK (error_count >= 0),
    message             text        NOT NULL DEFAULT '',
    duration_ms         bigint      GENERATED ALWAYS AS (
                                        (extract(epoch FROM (end_time - start_time)) * 1000)::bigint
                                    ) STORED,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted_from_k8s_at timestamptz,
    object_deleted_at   timestamptz,
    resource_version    text        NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX backup_runs_namespace_name_live_key ON backup_runs (namespace, name) WHERE deleted_from_k8s_at IS NULL;
CREATE INDEX backup_runs_config_uid_idx ON backup_runs (config_uid);
CREATE INDEX backup_runs_owner_idx ON backup_runs (owner);
CREATE INDEX backup_runs_start_time_idx ON backup_runs (start_time DESC);
CREATE INDEX backup_runs_phase_idx ON backup_runs (phase);

-- alerts: problems a user should know about. cause_key identifies what the
-- alert is about (a config, an agent, a run), so a condition that persists
-- keeps one open alert instead of opening a new one on every check.
CREATE TABLE alerts (
    id              bigserial   PRIMARY KEY,
    owner           text        NOT NULL,
    config_uid      uuid,
    agent_uid       uuid,
    type            text        NOT NULL CHECK (type IN ('run_failed', 'missed_schedule', 'agent_offline', 'rpo_breached')),
    cause_key       text        NOT NULL CHECK (cause_key <> ''),
    message         text        NOT NULL,
    opened_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    resolved_at     timestamptz,
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);
-- One open alert per cause.
CREATE UNIQUE INDEX alerts_one_open_per_cause_key ON alerts (type, cause_key) WHERE resolved_at IS NULL;
CREATE INDEX alerts_owner_opened_at_idx ON alerts (owner, opened_at DESC);

-- notification_channels: where a user's alerts are sent. secret is the
-- webhook's HMAC signing key; it has to be usable, so it cannot be hashed.
CREATE TABLE notification_channels (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner      text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('email', 'webhook')),
    target     text        NOT NULL CHECK (
                               (kind = 'email' AND target LIKE '_%@_%')
                               OR (kind = 'webhook' AND target ~ '^https?://')
                           ),
    secret     text        NOT NULL DEFAULT '',
    enabled    boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_channels_owner_idx ON notification_channels (owner);

-- notification_deliveries: each attempt to send an alert to a channel.
CREATE TABLE notification_deliveries (
    id         bigserial   PRIMARY KEY,
    alert_id   bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    channel_id uuid        NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    attempt    integer     NOT NULL CHECK (attempt >= 1),
    status     text        NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    error      text        NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, channel_id, attempt)
);
CREATE INDEX notification_deliveries_channel_id_idx ON notification_deliveries (channel_id);
