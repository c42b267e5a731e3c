package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound is returned when the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrInvalid is returned, wrapped with the reason, when a caller passes
	// a row the store refuses before it reaches the database (a missing UID,
	// an unknown log level ...). Callers map it to "bad request".
	ErrInvalid = errors.New("store: invalid input")
	// ErrInvalidURL is returned, wrapped with pgx's reason, by Open for a
	// connection string it cannot parse. pgx masks the password in its
	// message; the tests hold it to that.
	ErrInvalidURL = errors.New("store: invalid PostgreSQL connection string")
)

const (
	// defaultMaxConns applies when the URL has no pool_max_conns. The web
	// server, the mirror and the agent API share one pool; ten connections
	// serve them without crowding a small PostgreSQL (max_connections 100)
	// when a few replicas run.
	defaultMaxConns = 10
	// defaultConnectTimeout bounds dialing when the URL has no
	// connect_timeout, so an unreachable database fails fast instead of
	// hanging a request.
	defaultConnectTimeout = 10 * time.Second
	// pingTimeout bounds Open's first round trip.
	pingTimeout = 10 * time.Second
	// applicationName shows up in pg_stat_activity, so a DBA can tell
	// BackApp's connections apart.
	applicationName = "backapp"
)

// Store is BackApp's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// keyword/value string, as pgx accepts) with a connection pool and checks
// that the database answers. It does not migrate; call Migrate.
//
// Pool settings given in the URL (pool_max_conns, ...) win over the
// defaults here.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("while parsing the PostgreSQL URL: %w: %w", ErrInvalidURL, err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = defaultMaxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("while creating the PostgreSQL pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("while connecting to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection of the pool, waiting for those in use.
func (s *Store) Close() {
	s.pool.Close()
}

// Pool is the underlying pool, for Migrate and for packages that run their
// own queries on BackApp's tables.
func (s *Store) Pool() *pgxpool.Pool {
	return s.pool
}
