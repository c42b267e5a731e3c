package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/backapp/backapp/agent/client"
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// env is one apiserver and MinIO for the package; each test runs its own
// BackApp server in its own namespace.
var env *testenv.Env

func TestMain(m *testing.M) {
	// The server's informers log through controller-runtime, which
	// complains with a stack trace after 30 s if no logger was set.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	var err error
	env, err = testenv.Start(ctx, testenv.Options{Kube: true, MinIO: true})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

const bootstrapToken = "client-test-bootstrap-token-0123"

// harness is one real BackApp server (webapp) on loopback, in front of the
// package's apiserver and MinIO.
type harness struct {
	t    testing.TB
	srv  *webapp.Server
	ns   string
	url  string
	k8s  ctrlclient.Client
	logs *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var nsCounter atomic.Int64

func newHarness(t testing.TB, tune func(*webapp.Config)) *harness {
	t.Helper()
	ctx := t.Context()
	ns := fmt.Sprintf("client-%d", nsCounter.Add(1))
	k8s := env.Kube.Client
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	cfg := webapp.Config{
		Namespace:      ns,
		BootstrapToken: bootstrapToken,
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
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"},
		StringData: map[string]string{
			destination.SecretKeyAccessKeyID:     env.MinIO.AccessKey,
			destination.SecretKeySecretAccessKey: env.MinIO.SecretKey,
		},
	}
	if err := k8s.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, srv: srv, ns: ns, url: hs.URL, k8s: k8s, logs: logs}
}

// register registers an agent with the bootstrap token, as the dashboard
// would, and returns its name and key.
func (h *harness) register(name string) (string, apikey.Key) {
	h.t.Helper()
	data, _ := json.Marshal(agentapi.RegisterRequest{Name: name, Platform: "linux"})
	req, _ := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.url+agentapi.PathRegister, bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		h.t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	var out agentapi.RegisterResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		h.t.Fatal(err)
	}
	return out.Agent.ID, out.Agent.APIKey
}

// client is an agent API client for key with fast retries.
func (h *harness) client(key apikey.Key, opts ...client.Option) *client.Client {
	h.t.Helper()
	opts = append([]client.Option{client.WithRetry(3, 10*time.Millisecond, 50*time.Millisecond)}, opts...)
	c, err := client.New(h.url, key, opts...)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// agentConfig creates an Agent-mode config for agent stored in MinIO and
// waits until the server serves it to c.
func (h *harness) agentConfig(name, agent string, c *client.Client) *backappv1alpha1.BackupConfig {
	h.t.Helper()
	cfg := &backappv1alpha1.BackupConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
		Spec: backappv1alpha1.BackupConfigSpec{
			ExecutionMode: backappv1alpha1.ExecutionModeAgent,
			AgentRef:      &backappv1alpha1.LocalObjectReference{Name: agent},
			Sources:       []backappv1alpha1.BackupSource{{Path: "/home/" + agent}},
			Destination: backappv1alpha1.Destination{
				Bucket: env.MinIO.Bucket, Endpoint: env.MinIO.Endpoint, ForcePathStyle: true,
				Region: env.MinIO.Region, CredentialsSecretRef: &backappv1alpha1.LocalObjectReference{Name: "s3"},
			},
		},
	}
	if err := h.k8s.Create(h.t.Context(), cfg); err != nil {
		h.t.Fatal(err)
	}
	h.eventually(func() bool {
		configs, err := c.Configs(h.t.Context())
		if err != nil {
			h.t.Fatal(err)
		}
		for _, c := range configs {
			if c.ID == name {
				return true
			}
		}
		return false
	})
	return cfg
}

// eventually polls cond for up to 10 seconds: the server's caches are
// eventually consistent. Not a timing assertion.
func (h *harness) eventually(cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) run(name string) *backappv1alpha1.BackupRun {
	h.t.Helper()
	var run backappv1alpha1.BackupRun
	if err := h.k8s.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, &run); err != nil {
		h.t.Fatal(err)
	}
	return &run
}

func (h *harness) agent(name string) *backappv1alpha1.Agent {
	h.t.Helper()
	var a backappv1alpha1.Agent
	if err := h.k8s.Get(h.t.Context(), types.NamespacedName{Namespace: h.ns, Name: name}, &a); err != nil {
		h.t.Fatal(err)
	}
	return &a
}

// put uploads body to a pre-signed URL with a plain PUT and returns the
// status and ETag.
func put(t *testing.T, u agentapi.PresignedURL, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, string(u), bytes.NewReader(body))
	if err != nil {
		t.Fatal("malformed pre-signed URL")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag")
}

// assertNoSecrets fails if err's text holds the key or a URL signature.
func assertNoSecrets(t *testing.T, err error, key apikey.Key) {
	t.Helper()
	if err == nil {
		return
	}
	s := err.Error()
	if strings.Contains(s, string(key)) || strings.Contains(s, "X-Amz-Signature") || strings.Contains(s, "X-Amz-Credential") {
		t.Errorf("an error carries a secret: %s", s)
	}
}
