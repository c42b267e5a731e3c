package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

const (
	minioRegion       = "us-east-1"
	minioReadyTimeout = 60 * time.Second
	minioStopTimeout  = 30 * time.Second
)

// MinIO is a throwaway single-drive MinIO server listening on 127.0.0.1.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Region    string // "us-east-1"
	Bucket    string // created at start

	binary      string
	dir         string // <root>/minio
	dataDir     string
	logPath     string
	port        int
	consolePort int

	mu   sync.Mutex
	proc *Process // nil while stopped
}

// StartMinIO starts a MinIO server under root with random credentials on a
// random loopback port and creates the bucket m.Bucket.
func StartMinIO(ctx context.Context, root *Root, tools Tools) (*MinIO, error) {
	m, err := startMinIO(ctx, root, tools)
	if err != nil {
		return nil, fmt.Errorf("while starting MinIO: %w", err)
	}
	return m, nil
}

func startMinIO(ctx context.Context, root *Root, tools Tools) (*MinIO, error) {
	if err := tools.Require(ToolMinIO); err != nil {
		return nil, err
	}
	m, err := newMinIO(root, tools.MinIO)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(m.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("while creating %s: %w", m.dataDir, err)
	}
	if err := m.startOnFreePorts(ctx); err != nil {
		return nil, err
	}
	if err := m.createBucket(ctx); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

func newMinIO(root *Root, binary string) (*MinIO, error) {
	accessSuffix, err := randomHex(6)
	if err != nil {
		return nil, err
	}
	secret, err := randomHex(20)
	if err != nil {
		return nil, err
	}
	bucketSuffix, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	dir := root.Path("minio")
	return &MinIO{
		AccessKey: "backapp" + accessSuffix,
		SecretKey: secret,
		Region:    minioRegion,
		Bucket:    "backapp-test-" + bucketSuffix,
		binary:    binary,
		dir:       dir,
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "minio.log"),
	}, nil
}

// startOnFreePorts starts the server on random ports, trying others if
// someone else grabbed them between FreePort and the server's bind.
func (m *MinIO) startOnFreePorts(ctx context.Context) error {
	var err error
	for range startAttempts {
		if m.port, err = FreePort(); err != nil {
			return err
		}
		if m.consolePort, err = FreePort(); err != nil {
			return err
		}
		m.Endpoint = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port))
		var proc *Process
		proc, err = m.startServer(ctx)
		if err == nil {
			return nil
		}
		if proc == nil || !portClash(proc) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d port clashes: %w", startAttempts, err)
}

// command builds the server's exec.Cmd with a minimal environment: the
// caller's AWS_* and MINIO_* variables must not change how it behaves, and
// HOME points into the root so no ~/.minio (certificates!) is picked up.
func (m *MinIO) command() *exec.Cmd {
	cmd := exec.Command(m.binary, "server",
		"--address", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port)),
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.consolePort)),
		"--certs-dir", filepath.Join(m.dir, "certs"),
		// Keeps credentials out of the log.
		"--anonymous",
		m.dataDir,
	)
	cmd.Dir = m.dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + m.dir,
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_REGION=" + m.Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		// Skips checks meant for production deployments (e.g. refusing or
		// warning about a drive on the root filesystem).
		"MINIO_CI_CD=on",
	}
	return cmd
}

// startServer starts MinIO and waits until it is ready. On failure it returns
// the (stopped) process, if one was started, so the caller can look at its log.
func (m *MinIO) startServer(ctx context.Context) (*Process, error) {
	proc, err := StartProcess("minio", m.command(), m.logPath)
	if err != nil {
		return nil, err
	}
	if err := m.waitReady(ctx, proc); err != nil {
		_ = proc.Stop(minioStopTimeout)
		return proc, fmt.Errorf("%w\n%s", err, describeFailure(proc, m.SecretKey))
	}
	m.mu.Lock()
	m.proc = proc
	m.mu.Unlock()
	return proc, nil
}

// waitReady polls MinIO's liveness and then readiness endpoints.
func (m *MinIO) waitReady(ctx context.Context, proc *Process) error {
	ctx, cancel := context.WithTimeout(ctx, minioReadyTimeout)
	defer cancel()
	client := plainHTTPClient()
	for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
		if err := pollOK(ctx, client, proc, m.Endpoint+path); err != nil {
			return err
		}
	}
	return nil
}

// pollOK GETs url until it answers 200 OK, the process exits or ctx ends.
func pollOK(ctx context.Context, client *http.Client, proc *Process, url string) error {
	var lastErr error
	for {
		lastErr = getOK(ctx, client, url)
		if lastErr == nil {
			return nil
		}
		select {
		case <-proc.Exited():
			return fmt.Errorf("%s exited during startup", proc.Name())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last error: %w)", url, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// plainHTTPClient talks to the loopback server directly: a fresh transport
// with no proxy from HTTP_PROXY and friends, and the system TLS defaults
// (not AWS_CA_BUNDLE) should TLS ever be involved.
func plainHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		Timeout:   30 * time.Second,
	}
}

func (m *MinIO) createBucket(ctx context.Context) error {
	_, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(m.Bucket)})
	if err != nil {
		return fmt.Errorf("while creating bucket %s: %w", m.Bucket, err)
	}
	return nil
}

// Client returns an S3 client for the server. It is built explicitly rather
// than with config.LoadDefaultConfig, which would let AWS_* variables and
// ~/.aws files in the caller's environment (a CA bundle, a profile, another
// endpoint) leak into the tests.
func (m *MinIO) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       m.Region,
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		HTTPClient:   plainHTTPClient(),
	})
}

// Stop shuts the server down and keeps its data, so that Restart can bring it
// back — for outage tests.
func (m *MinIO) Stop() error {
	m.mu.Lock()
	proc := m.proc
	m.proc = nil
	m.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Stop(minioStopTimeout); err != nil {
		return fmt.Errorf("while stopping MinIO: %w", err)
	}
	return nil
}

// Restart starts the server again on the same port with the same data,
// stopping it first if it is running.
func (m *MinIO) Restart(ctx context.Context) error {
	if err := m.Stop(); err != nil {
		return err
	}
	if _, err := m.startServer(ctx); err != nil {
		return fmt.Errorf("while restarting MinIO on port %d: %w", m.port, err)
	}
	return nil
}

// Close stops the server for good; its data directory goes with the Root.
func (m *MinIO) Close() error {
	return m.Stop()
}
