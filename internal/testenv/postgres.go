package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	postgresDatabase     = "backapp"
	postgresReadyTimeout = 30 * time.Second
	postgresStopTimeout  = 30 * time.Second
	// startAttempts is how often a server is started on a fresh random port
	// when the previous one turned out to be taken.
	startAttempts = 3
)

// Postgres is a throwaway PostgreSQL cluster listening on 127.0.0.1.
type Postgres struct {
	URL      string // postgres://user:password@127.0.0.1:port/dbname?sslmode=disable
	Host     string
	Port     int
	User     string
	Password string
	Database string

	bindir  string
	dir     string // <root>/postgres, owned by the server's OS user
	dataDir string
	sockDir string
	logPath string
	cred    *syscall.Credential // nil unless we are root and must drop privileges

	mu   sync.Mutex
	proc *Process // nil while stopped
}

// StartPostgres creates a new cluster under root with a random superuser and
// password, starts it on a random loopback port and creates the database
// p.Database.
//
// initdb and postgres refuse to run as root, so when the tests run as root
// (as in CI) the server runs as the "postgres" OS user (or "nobody").
func StartPostgres(ctx context.Context, root *Root, tools Tools) (*Postgres, error) {
	p, err := startPostgres(ctx, root, tools)
	if err != nil {
		return nil, fmt.Errorf("while starting PostgreSQL: %w", err)
	}
	return p, nil
}

func startPostgres(ctx context.Context, root *Root, tools Tools) (*Postgres, error) {
	if err := tools.Require(ToolPostgres); err != nil {
		return nil, err
	}
	p, err := newPostgres(root, tools.PostgresBinDir)
	if err != nil {
		return nil, err
	}
	if err := p.prepareDirs(); err != nil {
		return nil, err
	}
	if err := p.initdb(ctx); err != nil {
		return nil, err
	}
	if err := p.startOnFreePort(ctx); err != nil {
		return nil, err
	}
	if err := p.createDatabase(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}

func newPostgres(root *Root, bindir string) (*Postgres, error) {
	suffix, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	password, err := randomHex(20)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir := root.Path("postgres")
	return &Postgres{
		Host:     "127.0.0.1",
		User:     "backapp_" + suffix,
		Password: password,
		Database: postgresDatabase,
		bindir:   bindir,
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		sockDir:  filepath.Join(dir, "sock"),
		logPath:  filepath.Join(dir, "postgres.log"),
		cred:     cred,
	}, nil
}

// serverCredential is the OS user to run initdb and postgres as: nobody
// different from us unless we are root, which they refuse.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		if u, err = user.Lookup("nobody"); err != nil {
			return nil, fmt.Errorf("running as root, but neither a postgres nor a nobody user exists to run PostgreSQL as: %w", err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("while parsing uid of user %s: %w", u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("while parsing gid of user %s: %w", u.Username, err)
	}
	// An empty Groups drops root's supplementary groups.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// prepareDirs creates the cluster's directory and socket directory, owned by
// the server's OS user. initdb creates the data directory itself.
func (p *Postgres) prepareDirs() error {
	for _, dir := range []string{p.dir, p.sockDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("while creating %s: %w", dir, err)
		}
		if err := p.chown(dir); err != nil {
			return err
		}
	}
	return nil
}

func (p *Postgres) chown(path string) error {
	if p.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		return fmt.Errorf("while handing %s to uid %d: %w", path, p.cred.Uid, err)
	}
	return nil
}

// command builds an exec.Cmd for one of the PostgreSQL binaries, running as
// the server's user with a minimal environment, so nothing from the caller's
// environment (PGDATA, a locale that does not exist, ...) leaks in.
func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(p.bindir, name), args...)
	cmd.Dir = p.dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + p.dir,
		"LC_ALL=C",
		"TZ=UTC",
	}
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *Postgres) initdb(ctx context.Context) error {
	pwfile := filepath.Join(p.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("while writing the password file: %w", err)
	}
	// The password must not linger on disk longer than initdb needs it.
	defer os.Remove(pwfile)
	if err := p.chown(pwfile); err != nil {
		return err
	}
	cmd := p.command("initdb",
		"-D", p.dataDir,
		"-U", p.User,
		"--pwfile="+pwfile,
		"--auth-local=trust",
		"--auth-host=scram-sha-256",
		"-E", "UTF8",
		"--no-locale",
		"--no-sync",
	)
	proc, err := StartProcess("initdb", cmd, filepath.Join(p.dir, "initdb.log"))
	if err != nil {
		return err
	}
	select {
	case <-proc.Exited():
	case <-ctx.Done():
		_ = proc.Stop(5 * time.Second)
		return fmt.Errorf("while running initdb: %w", ctx.Err())
	}
	if err := proc.ExitErr(); err != nil {
		return fmt.Errorf("initdb failed: %s", describeFailure(proc))
	}
	return nil
}

// startOnFreePort starts the server on a random port, trying another port if
// someone else grabbed the first between FreePort and the server's bind.
func (p *Postgres) startOnFreePort(ctx context.Context) error {
	var err error
	for range startAttempts {
		var port int
		if port, err = FreePort(); err != nil {
			return err
		}
		p.setPort(port)
		var proc *Process
		proc, err = p.startServer(ctx)
		if err == nil {
			return nil
		}
		if proc == nil || !portClash(proc) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d port clashes: %w", startAttempts, err)
}

func (p *Postgres) setPort(port int) {
	p.Port = port
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(p.User, p.Password),
		Host:     net.JoinHostPort(p.Host, strconv.Itoa(port)),
		Path:     "/" + p.Database,
		RawQuery: "sslmode=disable",
	}
	p.URL = u.String()
}

// startServer runs postgres directly (not pg_ctl, which daemonizes and would
// escape Pdeathsig) and waits until it accepts connections. On failure it
// returns the (stopped) process, if one was started, so the caller can look
// at its log.
func (p *Postgres) startServer(ctx context.Context) (*Process, error) {
	cmd := p.command("postgres",
		"-D", p.dataDir,
		"-p", strconv.Itoa(p.Port),
		"-k", p.sockDir,
		"-c", "listen_addresses="+p.Host,
		// Durability is pointless for a throwaway cluster and costs seconds.
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "synchronous_commit=off",
	)
	proc, err := StartProcess("postgres", cmd, p.logPath)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, proc); err != nil {
		_ = proc.StopWith(syscall.SIGINT, postgresStopTimeout)
		return proc, fmt.Errorf("%w\n%s", err, describeFailure(proc))
	}
	p.mu.Lock()
	p.proc = proc
	p.mu.Unlock()
	return proc, nil
}

// waitReady polls until a password login over TCP succeeds, which proves the
// server is up, listening where we expect and has our credentials (not some
// other server that got the port).
func (p *Postgres) waitReady(ctx context.Context, proc *Process) error {
	ctx, cancel := context.WithTimeout(ctx, postgresReadyTimeout)
	defer cancel()
	var lastErr error
	for {
		conn, err := p.connect(ctx, "postgres")
		if err == nil {
			return conn.Close(ctx)
		}
		lastErr = err
		select {
		case <-proc.Exited():
			return errors.New("postgres exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready after %s: %w (last error: %w)", postgresReadyTimeout, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connect opens a connection to database dbname, with the settings pinned
// so that PG* variables in the environment cannot redirect it.
func (p *Postgres) connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(p.URL)
	if err != nil {
		return nil, fmt.Errorf("while parsing the PostgreSQL URL: %w", err)
	}
	cfg.Host, cfg.Port, cfg.Database = p.Host, uint16(p.Port), dbname
	cfg.User, cfg.Password = p.User, p.Password
	cfg.TLSConfig, cfg.Fallbacks = nil, nil
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

func (p *Postgres) createDatabase(ctx context.Context) error {
	conn, err := p.connect(ctx, "postgres")
	if err != nil {
		return fmt.Errorf("while connecting to create database %s: %w", p.Database, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{p.Database}.Sanitize()); err != nil {
		return fmt.Errorf("while creating database %s: %w", p.Database, err)
	}
	return nil
}

// Stop shuts the server down (fast shutdown: open connections are ended) and
// keeps its data, so that Restart can bring it back — for outage tests.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	proc := p.proc
	p.proc = nil
	p.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.StopWith(syscall.SIGINT, postgresStopTimeout); err != nil {
		return fmt.Errorf("while stopping PostgreSQL: %w", err)
	}
	return nil
}

// Restart starts the server again on the same port with the same data,
// stopping it first if it is running.
func (p *Postgres) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	if _, err := p.startServer(ctx); err != nil {
		return fmt.Errorf("while restarting PostgreSQL on port %d: %w", p.Port, err)
	}
	return nil
}

// Close stops the server for good; its data directory goes with the Root.
func (p *Postgres) Close() error {
	return p.Stop()
}

// portClash reports whether a server's log says it could not bind its port.
func portClash(proc *Process) bool {
	return strings.Contains(strings.ToLower(proc.LogTail(50)), "already in use")
}

// randomHex returns n random bytes, hex-encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("while generating random credentials: %w", err)
	}
	return hex.EncodeToString(b), nil
}
