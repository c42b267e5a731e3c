package client_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backapp/backapp/agent/client"
	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/agenttest"
	"github.com/backapp/backapp/internal/apikey"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// env is one apiserver and MinIO for the package; each test runs its own
// BackApp server in its own namespace.
var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{Kube: true, MinIO: true}, &env) }

// harness is one real BackApp server (webapp) on loopback, in front of the
// package's apiserver and MinIO.
type harness struct {
	t    testing.TB
	srv  *webapp.Server
	ns   string
	url  string
	k8s  ctrlclient.Client
	logs *agenttest.LockedBuffer
	as   *agenttest.AgentServer
}

func newHarness(t testing.TB, tune func(*webapp.Config)) *harness {
	t.Helper()
	as := agenttest.Start(t, env, tune)
	return &harness{t: t, srv: as.Server, ns: as.Namespace, url: as.URL, k8s: env.Kube.Client, logs: as.Logs, as: as}
}

// register registers an agent with the bootstrap token, as the dashboard
// would, and returns its name and key.
func (h *harness) register(name string) (string, apikey.Key) {
	h.t.Helper()
	return h.as.Register(h.t, name)
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
	cfg := h.as.CreateAgentConfig(h.t, name, agent, env.MinIO.Endpoint)
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

// eventually polls cond (see testenv.Eventually).
func (h *harness) eventually(cond func() bool) {
	h.t.Helper()
	testenv.Eventually(h.t, cond)
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
