package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFS holds the schema migrations, NNNN_name.sql, numbered from
// 0001 without gaps. A migration, once released, is never edited: a change
// is a new file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLockKey is the session advisory lock that serialises Migrate
// across replicas: "backapp" in ASCII plus a 1, so it cannot collide with
// a lock some other program on the same database picked at random.
const migrateLockKey int64 = 0x6261636b61707001

// unlockTimeout bounds releasing the migration lock when the caller's
// context is already done.
const unlockTimeout = 10 * time.Second

// ErrSchemaTooNew is matched (errors.Is) by the error Migrate returns when
// the database was migrated by a newer BackApp; see SchemaTooNewError.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")

// SchemaTooNewError says the database holds a migration newer than any this
// binary knows. Running an old binary against it could corrupt data the
// newer schema relies on, so Migrate refuses.
type SchemaTooNewError struct {
	Database int // the newest version applied to the database
	Binary   int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this binary (%d); upgrade BackApp", e.Database, e.Binary)
}

// Is makes errors.Is(err, ErrSchemaTooNew) true.
func (e *SchemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// migration is one NNNN_name.sql file.
type migration struct {
	version int
	name    string // file name without ".sql", e.g. "0001_initial"
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the *.sql files at the root of fsys, in version
// order. Versions must run 1, 2, 3 ... without gaps or duplicates, so a
// mistake in naming a file fails every test instead of skipping a
// migration in production.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("while listing migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		version, _ := strconv.Atoi(m[1]) // four digits: cannot fail
		body, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("while reading migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: version, name: e.Name()[:len(e.Name())-len(".sql")], sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations found")
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %04d (versions run from 0001 without gaps or duplicates)", m.name, i+1)
		}
	}
	return ms, nil
}

// embeddedMigrations are the migrations compiled into this binary.
func embeddedMigrations() ([]migration, error) {
	sub, err := fs.Sub(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("while opening the embedded migrations: %w", err)
	}
	return loadMigrations(sub)
}

// Migrate brings the database schema up to date with this binary and
// returns the names of the migrations it applied (none when it was
// already current). On error, applied lists those that were committed
// before the failure.
//
// Each migration runs in its own transaction together with its row in
// schema_migrations, so a failed migration leaves no trace and the next
// start retries it. The whole run holds a session advisory lock: replicas
// starting together queue up, and all but the first find nothing to do.
// A database migrated by a newer binary is refused with a
// *SchemaTooNewError.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (applied []string, err error) {
	ms, err := embeddedMigrations()
	if err != nil {
		return nil, err
	}
	return migrate(ctx, pool, ms)
}

func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) (applied []string, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("while acquiring a connection to migrate: %w", err)
	}
	defer conn.Release()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return nil, fmt.Errorf("while waiting for the migration lock: %w", err)
	}
	defer func() {
		if unlockErr := unlockMigrations(ctx, conn); unlockErr != nil {
			err = errors.Join(err, unlockErr)
		}
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY CHECK (version > 0),
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("while creating schema_migrations: %w", err)
	}
	done, err := appliedMigrations(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if err := checkApplied(done, ms); err != nil {
		return nil, err
	}

	applied = []string{}
	for _, m := range ms {
		if _, ok := done[m.version]; ok {
			continue
		}
		if err := applyMigration(ctx, conn.Conn(), m); err != nil {
			return applied, err
		}
		applied = append(applied, m.name)
	}
	return applied, nil
}

// unlockMigrations releases the advisory lock. If that fails the
// connection is closed, which releases it too, rather than returned to the
// pool still holding it and blocking every later Migrate.
func unlockMigrations(ctx context.Context, conn *pgxpool.Conn) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	var released bool
	err := conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1)", migrateLockKey).Scan(&released)
	if err == nil && released {
		return nil
	}
	_ = conn.Conn().Close(ctx)
	if err != nil {
		return fmt.Errorf("while releasing the migration lock: %w", err)
	}
	return errors.New("while releasing the migration lock: it was not held")
}

// appliedMigrations maps the versions in schema_migrations to their names.
func appliedMigrations(ctx context.Context, conn *pgx.Conn) (map[int]string, error) {
	rows, err := conn.Query(ctx, "SELECT version, name FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("while reading schema_migrations: %w", err)
	}
	done := map[int]string{}
	var (
		version int
		name    string
	)
	if _, err := pgx.ForEachRow(rows, []any{&version, &name}, func() error {
		done[version] = name
		return nil
	}); err != nil {
		return nil, fmt.Errorf("while reading schema_migrations: %w", err)
	}
	return done, nil
}

// checkApplied refuses a database that is ahead of this binary, or whose
// history disagrees with it (a migration renamed after it was released).
func checkApplied(done map[int]string, ms []migration) error {
	newest := ms[len(ms)-1].version
	dbNewest := 0
	for v := range done {
		dbNewest = max(dbNewest, v)
	}
	if dbNewest > newest {
		return &SchemaTooNewError{Database: dbNewest, Binary: newest}
	}
	for _, m := range ms {
		if name, ok := done[m.version]; ok && name != m.name {
			return fmt.Errorf("migration %04d is %q in the database but %q in this binary; released migrations must not be renamed", m.version, name, m.name)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, m migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// Without arguments pgx sends the file with the simple protocol,
		// which runs several statements in one round trip.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
		return err
	})
	if err != nil {
		return fmt.Errorf("while applying migration %s: %w", m.name, err)
	}
	return nil
}
