// Package agenttest runs a real BackApp agent API server (webapp) for the
// tests of the server and of the agent's client and uploader, on an
// internal/testenv environment with Kube and MinIO. Test code only.
package agenttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// BootstrapToken authorises registration on an AgentServer.
const BootstrapToken = "testenv-bootstrap-token-0123456789"

// S3SecretName is the credentials Secret (MinIO's) every AgentServer
// namespace holds.
const S3SecretName = "s3"

// LockedBuffer collects log output written from several goroutines.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// AgentServer is a real BackApp agent API server (webapp) on loopback,
// serving its own fresh namespace of an Env with Kube and MinIO, whose
// S3SecretName Secret holds MinIO's credentials.
type AgentServer struct {
	Server    *webapp.Server
	Namespace string
	URL       string
	Logs      *LockedBuffer // the server's JSON log
	env       *testenv.Env
}

var agentServerCount atomic.Int64

// Start starts an AgentServer for the test; tune may change the
// server's configuration. It stops with the test.
func Start(t testing.TB, env *testenv.Env, tune func(*webapp.Config)) *AgentServer {
	t.Helper()
	ctx := t.Context()
	ns := fmt.Sprintf("agentapi-%d", agentServerCount.Add(1))
	k8s := env.Kube.Client
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: S3SecretName},
		StringData: map[string]string{
			destination.SecretKeyAccessKeyID:     env.MinIO.AccessKey,
			destination.SecretKeySecretAccessKey: env.MinIO.SecretKey,
		},
	}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	logs := &LockedBuffer{}
	cfg := webapp.Config{
		Namespace:      ns,
		BootstrapToken: BootstrapToken,
		DefaultS3:      objstore.Config{Region: env.MinIO.Region},
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if tune != nil {
		tune(&cfg)
	}
	srv, err := webapp.Start(ctx, env.Kube.Config, env.Kube.Scheme, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &AgentServer{Server: srv, Namespace: ns, URL: hs.URL, Logs: logs, env: env}
}

// Register registers an agent with the bootstrap token, as the dashboard
// would, and returns its name and key.
func (s *AgentServer) Register(t testing.TB, name string) (string, apikey.Key) {
	t.Helper()
	data, _ := json.Marshal(agentapi.RegisterRequest{Name: name, Platform: "linux"})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+agentapi.PathRegister, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+BootstrapToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	var out agentapi.RegisterResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Agent.ID, out.Agent.APIKey
}

// CreateAgentConfig creates an Agent-mode config of agent whose archives
// go to MinIO's bucket at endpoint (MinIO itself, or a proxy in front of
// it) with the namespace's S3 Secret. The server's cache sees it a moment
// later.
func (s *AgentServer) CreateAgentConfig(t testing.TB, name, agent, endpoint string) *backappv1alpha1.BackupConfig {
	t.Helper()
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/" + agent}},
			Destination: backappv1alpha1.Destination{
				Bucket: s.env.MinIO.Bucket, Endpoint: endpoint, ForcePathStyle: true,
				Region: s.env.MinIO.Region, CredentialsSecretRef: &backappv1alpha1.LocalObjectReference{Name: S3SecretName},
			},
		},
	}
	if err := s.env.Kube.Client.Create(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}
