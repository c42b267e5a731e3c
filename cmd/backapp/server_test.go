package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/testenv"
)

func TestServerRefusesBadSettingsWithASentence(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", ""}, "--namespace must not be empty"},
		{[]string{"--bootstrap-token-file", missing}, "cannot read the bootstrap token file"},
		{[]string{"--bootstrap-token-file", short}, "at least 20 characters"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), append([]string{"server"}, tt.args...), &stdout, &stderr)
		if code == 0 || !strings.Contains(stderr.String(), tt.want) {
			t.Errorf("server %v: exit %d, stderr %q, want %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}

// TestServerServesTheAgentAPI runs `backapp server` against a real
// apiserver: it answers on its port, registers an agent with the bootstrap
// token, and stops cleanly on Ctrl-C without logging the token or the key.
func TestServerServesTheAgentAPI(t *testing.T) {
	env := testenv.New(t, testenv.Options{Kube: true})
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "backapp"}}
	if err := env.Kube.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	token := "bootstrap-" + strings.Repeat("x", 24)
	t.Setenv("BACKAPP_BOOTSTRAP_TOKEN", token)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"server", "--kubeconfig", env.Kube.Kubeconfig, "--namespace", "backapp",
			"--listen", fmt.Sprintf("127.0.0.1:%d", port)}, &stdout, &stderr)
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case code := <-done:
			t.Fatalf("server exited with %d: %s", code, stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not answering after a minute: %s", stderr.String())
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+agentapi.PathRegister, strings.NewReader(`{"name":"laptop"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(body.String(), `"apiKey":"bak_`) {
		t.Fatalf("register: %d %s", resp.StatusCode, body.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("server exited with %d after Ctrl-C: %s", code, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("server did not stop within a minute of Ctrl-C")
	}
	logs := stdout.String() + stderr.String()
	if !strings.Contains(logs, "serving the agent API") {
		t.Errorf("no startup line in the log: %s", logs)
	}
	var reg agentapi.RegisterResponse
	if err := json.Unmarshal(body.Bytes(), &reg); err != nil || reg.Agent.APIKey == "" {
		t.Fatalf("register answer %s: %v", body.String(), err)
	}
	if strings.Contains(logs, token) {
		t.Error("the bootstrap token appears in the server log")
	}
	if strings.Contains(logs, string(reg.Agent.APIKey)) {
		t.Error("the new API key appears in the server log")
	}
}
