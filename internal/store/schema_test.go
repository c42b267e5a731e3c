package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSchemaConstraints(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	s := c.migrated(t)

	// Fixtures the statements below refer to.
	var userID string
	if err := s.Pool().QueryRow(ctx, `INSERT INTO users (email, name, password_hash, role)
		VALUES ('Ann@Example.com', 'Ann', '$2a$10$hash', 'admin') RETURNING id::text`).Scan(&userID); err != nil {
		t.Fatal(err)
	}
	agentUID := newUID(t)
	if err := s.UpsertAgent(ctx, agentRow(agentUID, "laptop", 1)); err != nil {
		t.Fatal(err)
	}
	hash32 := strings.Repeat("ab", 32)

	badAgent := agentRow(newUID(t), "bad-phase", 1)
	badAgent.Phase = "Sleeping"
	badRunPhase := runRow(newUID(t), "bad-phase", "Done", 1)
	negative := runRow(newUID(t), "negative", "Running", 1)
	negative.FilesSkipped = -1
	badSHA := runRow(newUID(t), "bad-sha", "Succeeded", 1)
	badSHA.SHA256 = "not-hex"
	badMode := configRow(newUID(t), "bad-mode", 1)
	badMode.ExecutionMode = "Cloud"

	tests := []struct {
		name     string
		write    func() error
		wantCode string // "" when the write must succeed
	}{
		{"user with an unknown role", exec(s, `INSERT INTO users (email, name, password_hash, role) VALUES ('bob@example.com', 'Bob', 'h', 'root')`), checkViolation},
		{"user email differing only in case", exec(s, `INSERT INTO users (email, name, password_hash) VALUES ('ann@EXAMPLE.com', 'Ann 2', 'h')`), uniqueViolation},
		{"user with a role of user", exec(s, `INSERT INTO users (email, name, password_hash) VALUES ('carl@example.com', 'Carl', 'h')`), ""},
		{"session id stored in clear", exec(s, `INSERT INTO sessions (id_hash, user_id, csrf_token_hash, expires_at)
			VALUES ('session-id-in-clear', $1, decode($2, 'hex'), now() + interval '1 hour')`, userID, hash32), checkViolation},
		{"session already expired when created", exec(s, `INSERT INTO sessions (id_hash, user_id, csrf_token_hash, expires_at)
			VALUES (decode($2, 'hex'), $1, decode($2, 'hex'), now() - interval '1 hour')`, userID, hash32), checkViolation},
		{"session for an unknown user", exec(s, `INSERT INTO sessions (id_hash, user_id, csrf_token_hash, expires_at)
			VALUES (decode($2, 'hex'), $1, decode($2, 'hex'), now() + interval '1 hour')`, newUID(t), hash32), foreignKeyViolation},
		{"valid session", exec(s, `INSERT INTO sessions (id_hash, user_id, csrf_token_hash, expires_at, ip)
			VALUES (decode($2, 'hex'), $1, decode($2, 'hex'), now() + interval '1 hour', '192.0.2.1')`, userID, hash32), ""},
		{"agent with an unknown phase", func() error { return s.UpsertAgent(ctx, badAgent) }, checkViolation},
		{"run with an unknown phase", func() error { return s.UpsertRun(ctx, badRunPhase) }, checkViolation},
		{"run with a negative counter", func() error { return s.UpsertRun(ctx, negative) }, checkViolation},
		{"run with a malformed SHA-256", func() error { return s.UpsertRun(ctx, badSHA) }, checkViolation},
		{"config with an unknown execution mode", func() error { return s.UpsertConfig(ctx, badMode) }, checkViolation},
		{"agent log with an unknown level", exec(s, `INSERT INTO agent_logs (agent_uid, level, message) VALUES ($1, 'trace', 'x')`, agentUID), checkViolation},
		{"agent log longer than 8192 characters", exec(s, `INSERT INTO agent_logs (agent_uid, level, message) VALUES ($1, 'info', repeat('é', 8193))`, agentUID), checkViolation},
		{"agent log of 8192 characters", exec(s, `INSERT INTO agent_logs (agent_uid, level, message) VALUES ($1, 'info', repeat('é', 8192))`, agentUID), ""},
		{"alert of an unknown type", exec(s, `INSERT INTO alerts (owner, type, cause_key, message) VALUES ('u', 'disk_full', 'k', 'm')`), checkViolation},
		{"webhook channel with a non-URL target", exec(s, `INSERT INTO notification_channels (owner, kind, target) VALUES ('u', 'webhook', 'ann@example.com')`), checkViolation},
		{"channel of an unknown kind", exec(s, `INSERT INTO notification_channels (owner, kind, target) VALUES ('u', 'sms', '+100')`), checkViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if got := pgCode(err); got != tt.wantCode {
				t.Errorf("error = %v (SQLSTATE %q), want SQLSTATE %q", err, got, tt.wantCode)
			}
		})
	}
}

// exec is a write of one SQL statement, for table tests.
func exec(s *Store, sql string, args ...any) func() error {
	return func() error {
		_, err := s.Pool().Exec(context.Background(), sql, args...)
		return err
	}
}

func TestOneOpenAlertPerCause(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	s := c.migrated(t)
	openAlert := func(typ, cause string) (int64, error) {
		var id int64
		err := s.Pool().QueryRow(ctx, `INSERT INTO alerts (owner, type, cause_key, message)
			VALUES ('user-1', $1, $2, 'nightly failed') RETURNING id`, typ, cause).Scan(&id)
		return id, err
	}

	first, err := openAlert("run_failed", "config/nightly")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAlert("run_failed", "config/nightly"); pgCode(err) != uniqueViolation {
		t.Errorf("a second open alert for the same cause = %v, want a unique violation", err)
	}
	if _, err := openAlert("rpo_breached", "config/nightly"); err != nil {
		t.Errorf("an open alert of another type for the same cause: %v", err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE alerts SET resolved_at = $2 WHERE id = $1`, first, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := openAlert("run_failed", "config/nightly"); err != nil {
		t.Errorf("a new alert after the first was resolved: %v", err)
	}
	if n := count(t, s, "SELECT count(*) FROM alerts WHERE type = 'run_failed'"); n != 2 {
		t.Errorf("%d run_failed alerts, want 2 (one resolved, one open)", n)
	}
}
