package webapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backapp/backapp/internal/objstore"
)

// Config is everything the server needs besides its Kubernetes clients.
type Config struct {
	// Namespace holds the Agents, BackupConfigs and BackupRuns the server
	// manages.
	Namespace string
	// BootstrapToken authorises `POST /api/agent/register` until user
	// sessions exist (the dashboard issue). Empty disables registration.
	BootstrapToken string
	// DefaultS3 are the credentials (and region) used for destinations that
	// name no credentials Secret. Bucket and endpoint come from the config.
	DefaultS3 objstore.Config

	// PartURLTTL is how long a pre-signed part URL stays valid.
	PartURLTTL time.Duration
	// DownloadURLTTL is how long a restore download URL stays valid (at most
	// one hour).
	DownloadURLTTL time.Duration
	// FirstPartBatch is how many part URLs backup/start hands out.
	FirstPartBatch int
	// StatusWriteInterval bounds how often a heartbeat writes Agent status
	// when nothing but lastSeen changed.
	StatusWriteInterval time.Duration
	// ProgressWriteInterval bounds how often progress reports are written
	// to BackupRun status.
	ProgressWriteInterval time.Duration

	// PerKeyRate and PerKeyBurst limit requests per agent; PerClientRate and
	// PerClientBurst per client address.
	PerKeyRate, PerClientRate   float64
	PerKeyBurst, PerClientBurst int

	Logger *slog.Logger
	Clock  clock.PassiveClock
}

// withDefaults fills what the caller left out.
func (c Config) withDefaults() Config {
	if c.PartURLTTL == 0 {
		c.PartURLTTL = 15 * time.Minute
	}
	if c.DownloadURLTTL == 0 || c.DownloadURLTTL > time.Hour {
		c.DownloadURLTTL = time.Hour
	}
	if c.FirstPartBatch == 0 {
		c.FirstPartBatch = 8
	}
	if c.StatusWriteInterval == 0 {
		c.StatusWriteInterval = time.Minute
	}
	if c.ProgressWriteInterval == 0 {
		c.ProgressWriteInterval = 10 * time.Second
	}
	if c.PerKeyRate == 0 {
		c.PerKeyRate, c.PerKeyBurst = 20, 60
	}
	if c.PerClientRate == 0 {
		c.PerClientRate, c.PerClientBurst = 50, 200
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	return c
}

// Server serves the agent API (and, later, the dashboard).
type Server struct {
	cfg Config
	// cached reads Agents and BackupConfigs from an informer cache with the
	// field indexes of IndexFields; direct reads runs and Secrets from the
	// apiserver, so a run is never stale right after a write; writer writes.
	cached client.Reader
	direct client.Reader
	writer client.Client

	keys          *keyIndex
	keyLimiter    *rateLimiter
	clientLimiter *rateLimiter
	liveness      *liveness
	progress      *progressThrottle
	logs          *agentLogs
}

// newServer builds a Server. cached must be backed by a cache with the
// indexes of package index, and the caller feeds s.keys from the Agent
// informer (see Start).
func newServer(cfg Config, cached, direct client.Reader, writer client.Client) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.Namespace == "" {
		return nil, errors.New("webapp: a namespace is required")
	}
	now := cfg.Clock.Now
	return &Server{
		cfg:           cfg,
		cached:        cached,
		direct:        direct,
		writer:        writer,
		keys:          newKeyIndex(),
		keyLimiter:    newRateLimiter(cfg.PerKeyRate, cfg.PerKeyBurst, 100_000, now),
		clientLimiter: newRateLimiter(cfg.PerClientRate, cfg.PerClientBurst, 100_000, now),
		liveness:      newLiveness(),
		progress:      newProgressThrottle(),
		logs:          newAgentLogs(1000),
	}, nil
}

// Handler is the whole HTTP surface with its middleware.
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.routes()
	h = withClientRateLimit(s.clientLimiter, h)
	h = withRecover(s.cfg.Logger, h)
	h = withAccessLog(s.cfg.Logger, h)
	return h
}

// ListenAndServe serves on addr until ctx ends, with timeouts that keep slow
// clients from holding connections, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("while listening on %s: %w", addr, err)
	}
	srv := NewHTTPServer(s.Handler())
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("while serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("while shutting down: %w", err)
	}
	return nil
}

// NewHTTPServer wraps h in an http.Server with BackApp's timeouts and
// header limits.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
}
