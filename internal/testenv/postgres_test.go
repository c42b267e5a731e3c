package testenv

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestPostgresRoundTripStopRestartClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tools := findTools(t, ToolPostgres)
	root := newRoot(t)

	started := time.Now()
	pg, err := StartPostgres(ctx, root, tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL started in %s on port %d", time.Since(started).Round(time.Millisecond), pg.Port)
	assertPostgresFields(t, pg)

	conn := connectPostgres(ctx, t, pg)
	if _, err := conn.Exec(ctx, `CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO things VALUES (1, 'kept')`); err != nil {
		t.Fatal(err)
	}
	assertThing(ctx, t, conn)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Error("connection still works after Stop")
	}
	if c, err := pgx.Connect(ctx, pg.URL); err == nil {
		c.Close(ctx)
		t.Fatal("new connection succeeded after Stop")
	}
	if err := pg.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	started = time.Now()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL restarted in %s", time.Since(started).Round(time.Millisecond))
	conn = connectPostgres(ctx, t, pg)
	assertThing(ctx, t, conn)
	conn.Close(ctx)

	if err := pg.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoProcessesMentioning(t, root.Dir, 5*time.Second)
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, root.Dir, 0)
}

func assertPostgresFields(t *testing.T, pg *Postgres) {
	t.Helper()
	u, err := url.Parse(pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()
	if u.Scheme != "postgres" || u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(pg.Port) ||
		u.User.Username() != pg.User || password != pg.Password || u.Path != "/"+pg.Database ||
		u.Query().Get("sslmode") != "disable" {
		t.Errorf("URL %s does not match the fields", u.Redacted())
	}
	if pg.Host != "127.0.0.1" || pg.Database != "backapp" || len(pg.Password) < 32 {
		t.Errorf("unexpected fields: host %q, database %q, password length %d", pg.Host, pg.Database, len(pg.Password))
	}
}

func connectPostgres(ctx context.Context, t *testing.T, pg *Postgres) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func assertThing(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	t.Helper()
	var name string
	if err := conn.QueryRow(ctx, `SELECT name FROM things WHERE id = 1`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if name != "kept" {
		t.Fatalf("name = %q, want %q", name, "kept")
	}
}

func TestPostgresTwoClustersAreIndependent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tools := findTools(t, ToolPostgres)
	root := newRoot(t)
	a, err := StartPostgres(ctx, root, tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	// A second cluster under the same root would collide on its directory;
	// a second root is how parallel tests get their own.
	b, err := StartPostgres(ctx, newRoot(t), tools)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if a.Port == b.Port || a.Password == b.Password || a.User == b.User {
		t.Errorf("clusters share port or credentials: %d/%d", a.Port, b.Port)
	}
}
