package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/backapp/backapp/internal/testenv"
)

// cluster is one throwaway PostgreSQL shared by the subtests of a test;
// each subtest gets a database of its own, so they cannot see each other's
// rows and Migrate always starts from an empty database.
type cluster struct {
	env *testenv.Env
}

func newCluster(tb testing.TB) *cluster {
	tb.Helper()
	return &cluster{env: testenv.New(tb, testenv.Options{Postgres: true})}
}

// freshDB creates an empty database and returns its URL; it is dropped when
// the test ends.
func (c *cluster) freshDB(tb testing.TB) string {
	tb.Helper()
	ctx := context.Background()
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "t_" + hex.EncodeToString(suffix)

	admin, err := pgx.Connect(ctx, c.env.Postgres.URL)
	if err != nil {
		tb.Fatalf("connecting to create a database: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("creating database %s: %v", name, err)
	}
	tb.Cleanup(func() {
		conn, err := pgx.Connect(ctx, c.env.Postgres.URL)
		if err != nil {
			tb.Errorf("connecting to drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("dropping database %s: %v", name, err)
		}
	})

	u, err := url.Parse(c.env.Postgres.URL)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// open opens a Store on dbURL, closed when the test ends.
func open(tb testing.TB, dbURL string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

// migrated is a Store on a fresh, migrated database.
func (c *cluster) migrated(tb testing.TB) *Store {
	tb.Helper()
	s := open(tb, c.freshDB(tb))
	if _, err := Migrate(context.Background(), s.Pool()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return s
}

// pgCode is the SQLSTATE of err, or "" if it is not a PostgreSQL error.
func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// SQLSTATEs the tests expect.
const (
	checkViolation      = "23514"
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// newUID returns a random UUID like the Kubernetes UIDs the mirror stores.
func newUID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// at is a fixed instant plus minutes, at the database's microsecond
// precision so values compare equal after a round trip.
func at(minutes int) time.Time {
	return time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC).Add(time.Duration(minutes) * time.Minute)
}

func ptr[T any](v T) *T { return &v }

// count runs a SELECT count(*) ... query.
func count(tb testing.TB, s *Store, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}
