package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadMigrations(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name      string
		files     fstest.MapFS
		wantNames []string
		wantErr   string
	}{
		{
			name:      "sorted by version",
			files:     fstest.MapFS{"0002_second.sql": file("B"), "0001_first.sql": file("A"), "0003_third.sql": file("C")},
			wantNames: []string{"0001_first", "0002_second", "0003_third"},
		},
		{
			name:    "gap",
			files:   fstest.MapFS{"0001_first.sql": file("A"), "0003_third.sql": file("C")},
			wantErr: "expected version 0002",
		},
		{
			name:    "duplicate version",
			files:   fstest.MapFS{"0001_first.sql": file("A"), "0001_again.sql": file("B")},
			wantErr: "expected version 0002",
		},
		{
			name:    "not starting at 1",
			files:   fstest.MapFS{"0002_second.sql": file("B")},
			wantErr: "expected version 0001",
		},
		{
			name:    "badly named file",
			files:   fstest.MapFS{"0001_first.sql": file("A"), "2_Second.sql": file("B")},
			wantErr: `"2_Second.sql" is not named NNNN_name.sql`,
		},
		{
			name:    "empty",
			files:   fstest.MapFS{},
			wantErr: "no migrations found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.files)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.name)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names = %v, want %v", names, tt.wantNames)
			}
		})
	}
}

func TestEmbeddedMigrationsAreValid(t *testing.T) {
	ms, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].name != "0001_initial" || !strings.Contains(ms[0].sql, "CREATE TABLE backup_runs") {
		t.Errorf("first migration is %s, want 0001_initial with the initial schema", ms[0].name)
	}
}

func TestMigrate(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	known, err := embeddedMigrations()
	if err != nil {
		t.Fatal(err)
	}
	var knownNames []string
	for _, m := range known {
		knownNames = append(knownNames, m.name)
	}

	t.Run("applies all on an empty database, then none", func(t *testing.T) {
		s := open(t, c.freshDB(t))
		applied, err := Migrate(ctx, s.Pool())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(applied, knownNames) {
			t.Errorf("first Migrate applied %v, want %v", applied, knownNames)
		}
		for _, table := range []string{"users", "sessions", "password_resets", "agents", "agent_logs",
			"backup_configs", "backup_runs", "alerts", "notification_channels", "notification_deliveries"} {
			if count(t, s, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = $1", table) != 1 {
				t.Errorf("table %s is missing", table)
			}
		}
		applied, err = Migrate(ctx, s.Pool())
		if err != nil {
			t.Fatal(err)
		}
		if len(applied) != 0 {
			t.Errorf("second Migrate applied %v, want none", applied)
		}
		if n := count(t, s, "SELECT count(*) FROM schema_migrations"); n != len(known) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(known))
		}
	})

	t.Run("replicas migrating at once apply each migration once", func(t *testing.T) {
		// A few rounds, each on a fresh database, make an overlap of the
		// two runs all but certain.
		for range 3 {
			dbURL := c.freshDB(t)
			stores := []*Store{open(t, dbURL), open(t, dbURL)}
			results := make([][]string, len(stores))
			errs := make([]error, len(stores))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					<-start
					results[i], errs[i] = Migrate(ctx, s.Pool())
				})
			}
			close(start)
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("concurrent Migrate: %v", err)
			}
			all := slices.Concat(results...)
			slices.Sort(all)
			if !slices.Equal(all, knownNames) {
				t.Errorf("the replicas applied %v together, want each of %v exactly once", results, knownNames)
			}
			if n := count(t, stores[0], "SELECT count(*) FROM schema_migrations"); n != len(known) {
				t.Errorf("schema_migrations has %d rows, want %d", n, len(known))
			}
		}
	})

	t.Run("waits for the replica holding the lock", func(t *testing.T) {
		dbURL := c.freshDB(t)
		holder := open(t, dbURL)
		conn, err := holder.Pool().Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
			t.Fatal(err)
		}

		waiter := open(t, dbURL)
		type result struct {
			applied []string
			err     error
		}
		done := make(chan result, 1)
		go func() {
			applied, err := Migrate(ctx, waiter.Pool())
			done <- result{applied, err}
		}()

		// Wait until the waiter is queued on the lock, then check it has
		// not touched the schema.
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for count(t, holder, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) == 0 {
			select {
			case r := <-done:
				t.Fatalf("Migrate finished (%v, %v) while another session held the lock", r.applied, r.err)
			case <-waitCtx.Done():
				t.Fatal("Migrate never queued on the migration lock")
			case <-time.After(10 * time.Millisecond):
			}
		}
		if count(t, holder, "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'") != 0 {
			t.Error("schema_migrations was created before the lock was granted")
		}

		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		if !slices.Equal(r.applied, knownNames) {
			t.Errorf("applied %v after the lock was released, want %v", r.applied, knownNames)
		}
	})

	t.Run("refuses a database migrated by a newer binary", func(t *testing.T) {
		s := c.migrated(t)
		if _, err := s.Pool().Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future')"); err != nil {
			t.Fatal(err)
		}
		applied, err := Migrate(ctx, s.Pool())
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Migrate = %v, %v; want ErrSchemaTooNew", applied, err)
		}
		want := fmt.Sprintf("database schema version 9999 is newer than this binary (%d); upgrade BackApp", len(known))
		if err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
		var tooNew *SchemaTooNewError
		if !errors.As(err, &tooNew) || tooNew.Database != 9999 || tooNew.Binary != len(known) {
			t.Errorf("error = %#v, want a SchemaTooNewError{9999, %d}", err, len(known))
		}
		// The lock was released despite the error: a second call gets the
		// same answer instead of blocking.
		if _, err := Migrate(ctx, s.Pool()); !errors.Is(err, ErrSchemaTooNew) {
			t.Errorf("second Migrate = %v, want ErrSchemaTooNew", err)
		}
	})

	t.Run("refuses a renamed migration", func(t *testing.T) {
		s := c.migrated(t)
		if _, err := s.Pool().Exec(ctx, "UPDATE schema_migrations SET name = '0001_renamed' WHERE version = 1"); err != nil {
			t.Fatal(err)
		}
		if _, err := Migrate(ctx, s.Pool()); err == nil || !strings.Contains(err.Error(), "must not be renamed") {
			t.Errorf("Migrate = %v, want a renamed-migration error", err)
		}
	})

	t.Run("a failing migration leaves no trace and is retried", func(t *testing.T) {
		s := open(t, c.freshDB(t))
		bad := append(slices.Clone(known), migration{
			version: len(known) + 1, name: "0099_probe",
			sql: "CREATE TABLE probe (id int); INSERT INTO probe VALUES (1); SELECT 1/0;",
		})
		applied, err := migrate(ctx, s.Pool(), bad)
		if err == nil || !strings.Contains(err.Error(), "0099_probe") {
			t.Fatalf("migrate = %v, want an error naming 0099_probe", err)
		}
		if !slices.Equal(applied, knownNames) {
			t.Errorf("applied %v before the failure, want %v", applied, knownNames)
		}
		if count(t, s, "SELECT count(*) FROM pg_tables WHERE tablename = 'probe'") != 0 {
			t.Error("the failed migration's table exists: it did not run in a transaction")
		}
		if n := count(t, s, "SELECT count(*) FROM schema_migrations"); n != len(known) {
			t.Errorf("schema_migrations has %d rows, want %d", n, len(known))
		}

		fixed := append(slices.Clone(known), migration{
			version: len(known) + 1, name: "0099_probe",
			sql: "CREATE TABLE probe (id int); INSERT INTO probe VALUES (1);",
		})
		applied, err = migrate(ctx, s.Pool(), fixed)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(applied, []string{"0099_probe"}) {
			t.Errorf("applied %v, want [0099_probe]", applied)
		}
		if count(t, s, "SELECT count(*) FROM probe") != 1 {
			t.Error("the fixed migration did not run")
		}
	})
}
