package webapp_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/agenttest"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

const bootstrapToken = agenttest.BootstrapToken

// harness is one server in its own namespace, on loopback.
type harness struct {
	t    testing.TB
	srv  *webapp.Server
	ns   string
	url  string
	logs *agenttest.LockedBuffer
	k8s  client.Client
	as   *agenttest.AgentServer
}

func newHarness(t testing.TB, tune func(*webapp.Config)) *harness {
	t.Helper()
	as := agenttest.Start(t, env, tune)
	return &harness{t: t, srv: as.Server, ns: as.Namespace, url: as.URL, logs: as.Logs, k8s: env.Kube.Client, as: as}
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
	agent, key := h.as.Register(h.t, name)
	return agent, string(key)
}

// agentConfig creates an Agent-mode config for agent (whose key is key),
// stored in MinIO, and waits until the server's cache serves it.
func (h *harness) agentConfig(name, agent, key string) *backappv1alpha1.BackupConfig {
	h.t.Helper()
	cfg := h.as.CreateAgentConfig(h.t, name, agent, env.MinIO.Endpoint)
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
