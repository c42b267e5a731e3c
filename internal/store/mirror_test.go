package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func agentRow(uid, name string, observed int) AgentRow {
	return AgentRow{
		UID: uid, Namespace: "team-a", Name: name, Owner: "user-1", DisplayName: "Ann's MacBook",
		Phase: "Online", LastSeen: ptr(at(observed)), Platform: "darwin", Arch: "arm64",
		Version: "v1.2.3", Hostname: "ann-mbp", CreatedAt: at(0), ObservedAt: at(observed),
		ResourceVersion: "100",
	}
}

func configRow(uid, name string, observed int) ConfigRow {
	return ConfigRow{
		UID: uid, Namespace: "team-a", Name: name, Owner: "user-1", ExecutionMode: "Agent",
		AgentName: "laptop", Spec: json.RawMessage(`{"executionMode": "Agent", "sources": [{"path": "/Users/ann"}]}`),
		Schedule: "0 3 * * *", TimeZone: "Europe/Berlin", DestinationBucket: "backups",
		DestinationEndpoint: "https://minio.example.com", CreatedAt: at(0), ObservedAt: at(observed),
		ResourceVersion: "200",
	}
}

func runRow(uid, name, phase string, observed int) RunRow {
	r := RunRow{
		UID: uid, Namespace: "team-a", Name: name, ConfigName: "nightly", Owner: "user-1",
		Trigger: "Schedule", Phase: phase, ScheduledTime: ptr(at(0)),
		CreatedAt: at(0), ObservedAt: at(observed), ResourceVersion: "300",
		FilesProcessed: int64(observed), BytesTransferred: int64(observed) * 1000,
	}
	if phase != "Pending" {
		r.StartTime = ptr(at(1))
	}
	if phase == "Succeeded" || phase == "Failed" || phase == "Cancelled" {
		r.EndTime = ptr(at(observed))
	}
	return r
}

// sameRow compares a row read back with the row written, ignoring the
// read-only fields and times' locations.
func sameRow(t *testing.T, got, want any) {
	t.Helper()
	norm := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"APIKeyPrefix", "DeletedAt", "Duration", "DeletedFromClusterAt", "ObjectDeletedAt"} {
			delete(m, k)
		}
		// Times as instants in UTC.
		for k, v := range m {
			if s, ok := v.(string); ok {
				if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
					m[k] = ts.UTC().Format(time.RFC3339Nano)
				}
			}
		}
		out, _ := json.Marshal(m)
		return string(out)
	}
	if g, w := norm(got), norm(want); g != w {
		t.Errorf("row read back differs\n got: %s\nwant: %s", g, w)
	}
}

func TestMirror(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()

	t.Run("upserting the same object twice keeps one row", func(t *testing.T) {
		s := c.migrated(t)
		agentUID, configUID, runUID := newUID(t), newUID(t), newUID(t)
		run := runRow(runUID, "nightly-1", "Succeeded", 5)
		run.ConfigUID, run.AgentUID = configUID, agentUID
		run.Bucket, run.ObjectKey, run.ObjectSize = "backups", "users/u/agents/a/configs/c/backup-1.tar.gz", 4096
		run.SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
		run.Errors = []RunError{{Path: "/Users/ann/locked", Message: "permission denied"}}
		run.ErrorCount = 7
		run.Message = "stored 4 KiB"
		config := configRow(configUID, "nightly", 5)
		config.AgentUID = agentUID

		tests := []struct {
			name   string
			table  string
			uid    string
			upsert func() error
			get    func() (any, error)
			want   any
		}{
			{
				name: "agent", table: "agents", uid: agentUID,
				upsert: func() error { return s.UpsertAgent(ctx, agentRow(agentUID, "laptop", 5)) },
				get:    func() (any, error) { return s.GetAgent(ctx, agentUID) },
				want:   agentRow(agentUID, "laptop", 5),
			},
			{
				name: "config", table: "backup_configs", uid: configUID,
				upsert: func() error { return s.UpsertConfig(ctx, config) },
				get:    func() (any, error) { return s.GetConfig(ctx, configUID) },
				want:   config,
			},
			{
				name: "run", table: "backup_runs", uid: runUID,
				upsert: func() error { return s.UpsertRun(ctx, run) },
				get:    func() (any, error) { return s.GetRun(ctx, runUID) },
				want:   run,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for range 2 {
					if err := tt.upsert(); err != nil {
						t.Fatal(err)
					}
				}
				if n := count(t, s, "SELECT count(*) FROM "+tt.table); n != 1 {
					t.Errorf("%s has %d rows after two upserts, want 1", tt.table, n)
				}
				got, err := tt.get()
				if err != nil {
					t.Fatal(err)
				}
				sameRow(t, got, tt.want)
			})
		}

		got, err := s.GetRun(ctx, runUID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Duration == nil || *got.Duration != 4*time.Minute {
			t.Errorf("Duration = %v, want 4m (end - start)", got.Duration)
		}
	})

	t.Run("defaults for empty enums", func(t *testing.T) {
		s := c.migrated(t)
		uid := newUID(t)
		r := runRow(uid, "manual-1", "", 1)
		r.Trigger = ""
		if err := s.UpsertRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRun(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if got.Phase != "Pending" || got.Trigger != "Manual" || got.Errors == nil || len(got.Errors) != 0 {
			t.Errorf("phase %q, trigger %q, errors %#v; want Pending, Manual, []", got.Phase, got.Trigger, got.Errors)
		}
	})

	t.Run("a run never moves backwards", func(t *testing.T) {
		type write struct {
			phase    string
			observed int
		}
		tests := []struct {
			name      string
			writes    []write
			wantPhase string
			wantFiles int64 // FilesProcessed is the observation's minute in runRow
			// wantUpdated is the stored updated_at, in minutes: the newest
			// observation applied, or the newer one it replaced.
			wantUpdated int
		}{
			{"forward in order", []write{{"Pending", 1}, {"Running", 2}, {"Succeeded", 3}}, "Succeeded", 3, 3},
			{"stale Running after Succeeded", []write{{"Running", 2}, {"Succeeded", 3}, {"Running", 9}}, "Succeeded", 3, 3},
			{"stale Pending after Failed", []write{{"Failed", 3}, {"Pending", 9}}, "Failed", 3, 3},
			{"a finished result never changes", []write{{"Succeeded", 3}, {"Failed", 4}, {"Cancelled", 5}}, "Succeeded", 3, 3},
			{"same finished phase, newer observation", []write{{"Failed", 3}, {"Failed", 4}}, "Failed", 4, 4},
			{"same finished phase, older observation", []write{{"Failed", 4}, {"Failed", 3}}, "Failed", 4, 4},
			{"older progress is ignored", []write{{"Running", 5}, {"Running", 4}}, "Running", 5, 5},
			{"newer progress applies", []write{{"Running", 4}, {"Running", 5}}, "Running", 5, 5},
			{"finishing wins over a skewed clock", []write{{"Running", 5}, {"Cancelled", 4}}, "Cancelled", 4, 5},
			{"starting wins over a skewed clock", []write{{"Pending", 5}, {"Running", 4}}, "Running", 4, 5},
		}
		s := c.migrated(t)
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				uid := newUID(t)
				for _, w := range tt.writes {
					if err := s.UpsertRun(ctx, runRow(uid, "run-"+string(rune('a'+i)), w.phase, w.observed)); err != nil {
						t.Fatal(err)
					}
				}
				got, err := s.GetRun(ctx, uid)
				if err != nil {
					t.Fatal(err)
				}
				if got.Phase != tt.wantPhase || got.FilesProcessed != tt.wantFiles {
					t.Errorf("phase %s with %d files, want %s with %d", got.Phase, got.FilesProcessed, tt.wantPhase, tt.wantFiles)
				}
				if !got.ObservedAt.Equal(at(tt.wantUpdated)) {
					t.Errorf("updated_at = %s, want %s", got.ObservedAt, at(tt.wantUpdated))
				}
			})
		}
	})

	t.Run("an older observation of an agent or config is ignored", func(t *testing.T) {
		s := c.migrated(t)
		agentUID, configUID := newUID(t), newUID(t)

		newer := agentRow(agentUID, "laptop", 5)
		older := agentRow(agentUID, "laptop", 3)
		older.Phase, older.Version = "Offline", "v1.0.0"
		for _, a := range []AgentRow{newer, older} {
			if err := s.UpsertAgent(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetAgent(ctx, agentUID)
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, got, newer)

		// A newer observation applies, but last_seen never goes backwards.
		newest := agentRow(agentUID, "laptop", 9)
		newest.Phase, newest.LastSeen = "Offline", ptr(at(1))
		if err := s.UpsertAgent(ctx, newest); err != nil {
			t.Fatal(err)
		}
		if got, err = s.GetAgent(ctx, agentUID); err != nil {
			t.Fatal(err)
		}
		if got.Phase != "Offline" || !got.LastSeen.Equal(at(5)) {
			t.Errorf("phase %s, last seen %s; want Offline, %s", got.Phase, got.LastSeen, at(5))
		}

		newerConfig := configRow(configUID, "nightly", 5)
		olderConfig := configRow(configUID, "nightly", 3)
		olderConfig.Suspended, olderConfig.Schedule = true, "@hourly"
		for _, c := range []ConfigRow{newerConfig, olderConfig} {
			if err := s.UpsertConfig(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		gotConfig, err := s.GetConfig(ctx, configUID)
		if err != nil {
			t.Fatal(err)
		}
		sameRow(t, gotConfig, newerConfig)
	})

	t.Run("soft delete keeps history and ignores later upserts", func(t *testing.T) {
		s := c.migrated(t)
		agentUID, configUID, runUID := newUID(t), newUID(t), newUID(t)
		if err := s.UpsertAgent(ctx, agentRow(agentUID, "laptop", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertConfig(ctx, configRow(configUID, "nightly", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertRun(ctx, runRow(runUID, "nightly-1", "Succeeded", 1)); err != nil {
			t.Fatal(err)
		}

		tests := []struct {
			name    string
			mark    func(ctx context.Context, uid string, at time.Time) error
			uid     string
			upsert  func() error // a late event for the deleted object
			deleted func() (*time.Time, string, error)
		}{
			{
				name: "agent", mark: s.MarkAgentDeleted, uid: agentUID,
				upsert: func() error { return s.UpsertAgent(ctx, agentRow(agentUID, "laptop", 20)) },
				deleted: func() (*time.Time, string, error) {
					a, err := s.GetAgent(ctx, agentUID)
					return a.DeletedAt, a.ObservedAt.String(), err
				},
			},
			{
				name: "config", mark: s.MarkConfigDeleted, uid: configUID,
				upsert: func() error { return s.UpsertConfig(ctx, configRow(configUID, "nightly", 20)) },
				deleted: func() (*time.Time, string, error) {
					c, err := s.GetConfig(ctx, configUID)
					return c.DeletedAt, c.ObservedAt.String(), err
				},
			},
			{
				name: "run", mark: s.MarkRunDeletedFromCluster, uid: runUID,
				upsert: func() error { return s.UpsertRun(ctx, runRow(runUID, "nightly-1", "Succeeded", 20)) },
				deleted: func() (*time.Time, string, error) {
					r, err := s.GetRun(ctx, runUID)
					return r.DeletedFromClusterAt, r.ObservedAt.String(), err
				},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, before, err := tt.deleted()
				if err != nil {
					t.Fatal(err)
				}
				if err := tt.mark(ctx, tt.uid, at(10)); err != nil {
					t.Fatal(err)
				}
				if err := tt.mark(ctx, tt.uid, at(11)); err != nil {
					t.Fatalf("marking twice: %v", err)
				}
				if err := tt.upsert(); err != nil {
					t.Fatal(err)
				}
				deletedAt, after, err := tt.deleted()
				if err != nil {
					t.Fatalf("the row is gone after a soft delete: %v", err)
				}
				if deletedAt == nil || !deletedAt.Equal(at(10)) {
					t.Errorf("deleted at %v, want the first mark %s", deletedAt, at(10))
				}
				if after != before {
					t.Errorf("a late upsert changed the deleted row: %q -> %q", before, after)
				}
				if err := tt.mark(ctx, newUID(t), at(10)); !errors.Is(err, ErrNotFound) {
					t.Errorf("marking an unknown object = %v, want ErrNotFound", err)
				}
			})
		}
		if n := count(t, s, "SELECT count(*) FROM backup_runs"); n != 1 {
			t.Errorf("%d runs after the run was deleted from the cluster, want 1 (history)", n)
		}
	})

	t.Run("the archive's deletion by retention is recorded", func(t *testing.T) {
		s := c.migrated(t)
		uid := newUID(t)
		if err := s.UpsertRun(ctx, runRow(uid, "nightly-1", "Succeeded", 1)); err != nil {
			t.Fatal(err)
		}
		for _, m := range []int{30, 31} {
			if err := s.MarkRunObjectDeleted(ctx, uid, at(m)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.GetRun(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if got.ObjectDeletedAt == nil || !got.ObjectDeletedAt.Equal(at(30)) || got.DeletedFromClusterAt != nil {
			t.Errorf("object deleted at %v, run deleted at %v; want %s and nil", got.ObjectDeletedAt, got.DeletedFromClusterAt, at(30))
		}
		if err := s.MarkRunObjectDeleted(ctx, newUID(t), at(30)); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown run = %v, want ErrNotFound", err)
		}
	})

	t.Run("a new object under an old name retires the old row", func(t *testing.T) {
		s := c.migrated(t)
		oldUID, newUIDv, staleUID := newUID(t), newUID(t), newUID(t)
		if err := s.UpsertAgent(ctx, agentRow(oldUID, "laptop", 1)); err != nil {
			t.Fatal(err)
		}
		// The old object's deletion was never reported.
		if err := s.UpsertAgent(ctx, agentRow(newUIDv, "laptop", 5)); err != nil {
			t.Fatal(err)
		}
		old, err := s.GetAgent(ctx, oldUID)
		if err != nil {
			t.Fatal(err)
		}
		if old.DeletedAt == nil || !old.DeletedAt.Equal(at(5)) {
			t.Errorf("old agent deleted at %v, want %s", old.DeletedAt, at(5))
		}
		// Late events of objects older than the live one change nothing.
		if err := s.UpsertAgent(ctx, agentRow(oldUID, "laptop", 3)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertAgent(ctx, agentRow(staleUID, "laptop", 3)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAgent(ctx, staleUID); !errors.Is(err, ErrNotFound) {
			t.Errorf("a stale object was mirrored over a newer one with its name: %v", err)
		}
		if n := count(t, s, "SELECT count(*) FROM agents WHERE name = 'laptop' AND deleted_at IS NULL"); n != 1 {
			t.Errorf("%d live agents named laptop, want 1", n)
		}
		live, err := s.GetAgent(ctx, newUIDv)
		if err != nil || live.DeletedAt != nil {
			t.Errorf("the new agent: %+v, %v; want it live", live, err)
		}

		// The same for runs, whose names repeat when a config is re-created.
		oldRun, newRun := newUID(t), newUID(t)
		if err := s.UpsertRun(ctx, runRow(oldRun, "nightly-1", "Succeeded", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertRun(ctx, runRow(newRun, "nightly-1", "Pending", 5)); err != nil {
			t.Fatal(err)
		}
		r, err := s.GetRun(ctx, oldRun)
		if err != nil {
			t.Fatal(err)
		}
		if r.DeletedFromClusterAt == nil || r.Phase != "Succeeded" {
			t.Errorf("old run: phase %s, deleted %v; want Succeeded and deleted", r.Phase, r.DeletedFromClusterAt)
		}
	})

	t.Run("agents are found by API key hash while live", func(t *testing.T) {
		s := c.migrated(t)
		uid, other := newUID(t), newUID(t)
		for _, a := range []AgentRow{agentRow(uid, "laptop", 1), agentRow(other, "desktop", 1)} {
			if err := s.UpsertAgent(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		key1 := sha256.Sum256([]byte("bak_first-key"))
		key2 := sha256.Sum256([]byte("bak_second-key"))
		unknown := sha256.Sum256([]byte("bak_never-issued"))

		if err := s.SetAgentAPIKey(ctx, uid, key1[:], "bak_firs"); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAgentByKeyHash(ctx, key1[:])
		if err != nil {
			t.Fatal(err)
		}
		if got.UID != uid || got.APIKeyPrefix != "bak_firs" {
			t.Errorf("found %s with prefix %q, want %s with bak_firs", got.UID, got.APIKeyPrefix, uid)
		}
		// The mirror does not know the key and must not drop it.
		if err := s.UpsertAgent(ctx, agentRow(uid, "laptop", 2)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAgentByKeyHash(ctx, key1[:]); err != nil {
			t.Errorf("key lost after a mirror upsert: %v", err)
		}

		if err := s.SetAgentAPIKey(ctx, uid, key2[:], "bak_seco"); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			name string
			hash []byte
			want string // "" for not found
		}{
			{"rotated away", key1[:], ""},
			{"current", key2[:], uid},
			{"never issued", unknown[:], ""},
			{"wrong size", []byte("short"), ""},
			{"empty", nil, ""},
		} {
			got, err := s.GetAgentByKeyHash(ctx, tt.hash)
			switch {
			case tt.want == "" && !errors.Is(err, ErrNotFound):
				t.Errorf("%s: got %s, %v; want ErrNotFound", tt.name, got.UID, err)
			case tt.want != "" && (err != nil || got.UID != tt.want):
				t.Errorf("%s: got %s, %v; want %s", tt.name, got.UID, err, tt.want)
			case err != nil && !reflect.DeepEqual(got, AgentRow{}):
				t.Errorf("%s: a row came back with the error: %+v", tt.name, got)
			}
		}

		if err := s.SetAgentAPIKey(ctx, uid, nil, "ignored"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAgentByKeyHash(ctx, key2[:]); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked key still found: %v", err)
		}
		if got, _ := s.GetAgent(ctx, uid); got.APIKeyPrefix != "" {
			t.Errorf("revoked key's prefix %q kept", got.APIKeyPrefix)
		}

		if err := s.SetAgentAPIKey(ctx, other, key1[:], "bak_firs"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkAgentDeleted(ctx, other, at(3)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAgentByKeyHash(ctx, key1[:]); !errors.Is(err, ErrNotFound) {
			t.Errorf("a deleted agent's key still works: %v", err)
		}
		var hashKept bool
		if err := s.Pool().QueryRow(ctx, "SELECT api_key_hash IS NOT NULL FROM agents WHERE uid = $1", other).Scan(&hashKept); err != nil || hashKept {
			t.Errorf("a deleted agent's key hash is kept (%v, %v)", hashKept, err)
		}
		if err := s.SetAgentAPIKey(ctx, other, key2[:], "bak_seco"); !errors.Is(err, ErrNotFound) {
			t.Errorf("setting a key on a deleted agent = %v, want ErrNotFound", err)
		}
		if err := s.SetAgentAPIKey(ctx, newUID(t), key2[:], "bak_seco"); !errors.Is(err, ErrNotFound) {
			t.Errorf("setting a key on an unknown agent = %v, want ErrNotFound", err)
		}
		if err := s.SetAgentAPIKey(ctx, uid, []byte("not a sha-256"), "x"); !errors.Is(err, ErrInvalid) {
			t.Errorf("a short hash = %v, want ErrInvalid", err)
		}
	})

	t.Run("getting an unknown object is ErrNotFound", func(t *testing.T) {
		s := c.migrated(t)
		uid := newUID(t)
		checks := map[string]func() (any, error){
			"GetRun":    func() (any, error) { return s.GetRun(ctx, uid) },
			"GetAgent":  func() (any, error) { return s.GetAgent(ctx, uid) },
			"GetConfig": func() (any, error) { return s.GetConfig(ctx, uid) },
		}
		for name, get := range checks {
			row, err := get()
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s = %v, want ErrNotFound", name, err)
			}
			if !reflect.ValueOf(row).IsZero() {
				t.Errorf("%s returned a row with the error: %+v", name, row)
			}
		}
	})

	t.Run("rows missing what the mirror needs are refused", func(t *testing.T) {
		s := c.migrated(t)
		noObserved := runRow(newUID(t), "r", "Running", 1)
		noObserved.ObservedAt = time.Time{}
		noName := agentRow(newUID(t), "", 1)
		noUID := configRow("", "nightly", 1)
		for name, err := range map[string]error{
			"run without ObservedAt": s.UpsertRun(ctx, noObserved),
			"agent without name":     s.UpsertAgent(ctx, noName),
			"config without UID":     s.UpsertConfig(ctx, noUID),
			"delete without time":    s.MarkRunDeletedFromCluster(ctx, newUID(t), time.Time{}),
		} {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%s = %v, want ErrInvalid", name, err)
			}
		}
		if n := count(t, s, "SELECT (SELECT count(*) FROM agents) + (SELECT count(*) FROM backup_configs) + (SELECT count(*) FROM backup_runs)"); n != 0 {
			t.Errorf("%d rows written from refused input", n)
		}
	})

	t.Run("config spec round-trips as JSON", func(t *testing.T) {
		s := c.migrated(t)
		uid := newUID(t)
		cfg := configRow(uid, "nightly", 1)
		cfg.Spec = nil
		if err := s.UpsertConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetConfig(ctx, uid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Spec, []byte("{}")) {
			t.Errorf("empty spec stored as %s, want {}", got.Spec)
		}
		var spec map[string]any
		cfg.Spec = json.RawMessage(`{"sources": [{"path": "/data", "exclude": ["*.tmp"]}], "suspend": false}`)
		cfg.ObservedAt = at(2)
		if err := s.UpsertConfig(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if got, err = s.GetConfig(ctx, uid); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Spec, &spec); err != nil {
			t.Fatal(err)
		}
		if spec["sources"].([]any)[0].(map[string]any)["path"] != "/data" {
			t.Errorf("spec = %s", got.Spec)
		}
	})
}
