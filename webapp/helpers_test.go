package webapp_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/webapp"
)

const bootstrapToken = "test-bootstrap-token-0123456789"

// lockedBuffer collects the server's log output for the no-secrets check.
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

// harness is one server in its own namespace, on loopback.
type harness struct {
	t    testing.TB
	srv  *webapp.Server
	ns   string
	url  string
	logs *lockedBuffer
	k8s  client.Client
}

var nsCounter atomic.Int64

func newHarness(t testing.TB, tune func(*webapp.Config)) *harness {
	t.Helper()
	ctx := t.Context()
	ns := fmt.Sprintf("webapp-%d", nsCounter.Add(1))
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
	h := &harness{t: t, srv: srv, ns: ns, url: hs.URL, logs: logs, k8s: k8s}
	// Destination credentials come from a Secret, as in production.
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
	return h
}

// do sends a request and decodes a JSON answer into out (if not nil).
func (h *harness) do(method, path, key string, body any, out any) (int, agentapi.APIError) {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(h.t.Context(), method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set(agentapi.HeaderAPIKey, key)
	}
	req.Header.Set("Content-Type", agentapi.ContentTypeJSON)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var apiErr agentapi.ErrorBody
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &apiErr); err != nil || apiErr.Error.Code == "" {
			h.t.Fatalf("%s %s: status %d without a JSON error body: %q", method, path, resp.StatusCode, data)
		}
		if !apiErr.Error.Code.Valid() || apiErr.Error.Code.HTTPStatus() != resp.StatusCode {
			h.t.Errorf("%s %s: code %q does not match status %d", method, path, apiErr.Error.Code, resp.StatusCode)
		}
		return resp.StatusCode, apiErr.Error
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			h.t.Fatalf("%s %s: %v in %q", method, path, err, data)
		}
	}
	return resp.StatusCode, agentapi.APIError{}
}

// register registers an agent with the bootstrap token and returns its
// name and key.
func (h *harness) register(name string) (string, string) {
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
	return out.Agent.ID, string(out.Agent.APIKey)
}

// agentConfig creates an Agent-mode config for agent (whose key is key),
// stored in MinIO, and waits until the server's cache serves it.
func (h *harness) agentConfig(name, agent, key string) *backappv1alpha1.BackupConfig {
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
	// Wait until the server's cache has it.
	h.eventually(func() bool {
		var list agentapi.ConfigsResponse
		h.do(http.MethodGet, agentapi.PathConfigs, key, nil, &list)
		for _, c := range list.Configs {
			if c.ID == name {
				return true
			}
		}
		return false
	})
	return cfg
}

// eventually polls cond for up to 10 seconds (caches are eventually
// consistent; this is not a timing assertion).
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

// put uploads body to a pre-signed URL the way an agent does: a plain
// HTTP PUT, nothing else. It returns the status and the ETag.
func put(t *testing.T, method string, u agentapi.PresignedURL, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, string(u), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("ETag")
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
