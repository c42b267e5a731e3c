package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backapp/backapp/internal/testenv"
)

// syncBuffer is a bytes.Buffer safe to read while runDev writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevStartsTheStackAndCleansUp runs the `make dev` entrypoint: it must
// bring up a cluster with the CRDs that kubectl can reach through the
// printed kubeconfig, and remove everything when interrupted.
func TestDevStartsTheStackAndCleansUp(t *testing.T) {
	stateFile := filepath.Join(t.TempDir(), "dev.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- runDev(ctx, []string{"--state-file", stateFile}, &stdout, &stderr) }()

	var state devState
	deadline := time.Now().Add(testenv.StartTimeout)
	for {
		data, err := os.ReadFile(stateFile)
		if err == nil && json.Unmarshal(data, &state) == nil {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("backapp dev exited with %d before it was ready:\n%s", code, stderr.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("backapp dev was not ready after %s", testenv.StartTimeout)
		}
	}

	if !strings.Contains(stdout.String(), "export KUBECONFIG="+state.Kubeconfig) {
		t.Errorf("the banner does not say how to point kubectl at the cluster:\n%s", stdout.String())
	}
	tools, err := testenv.FindTools()
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(tools.KubebuilderAssets, "kubectl")
	out, err := exec.Command(kubectl, "--kubeconfig", state.Kubeconfig, "get", "crds", "-o", "name").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get crds: %v\n%s", err, out)
	}
	for _, crd := range []string{"backupconfigs.backapp.io", "agents.backapp.io", "backupruns.backapp.io"} {
		if !strings.Contains(string(out), crd) {
			t.Errorf("CRD %s is not installed; kubectl said:\n%s", crd, out)
		}
	}

	// The agent API answers and registers an agent with the printed token.
	req, _ := http.NewRequest(http.MethodPost, state.ServerURL+"/api/agent/register", strings.NewReader(`{"name":"dev laptop"}`))
	req.Header.Set("Authorization", "Bearer "+state.BootstrapToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("registering an agent on the dev server: status %d", resp.StatusCode)
	}
	if !strings.Contains(stdout.String(), state.ServerURL+"/api/agent/register") {
		t.Errorf("the banner does not show how to register an agent:\n%s", stdout.String())
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("backapp dev exited with %d after Ctrl-C:\n%s", code, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("backapp dev did not stop within 2 minutes of Ctrl-C")
	}
	if _, err := os.Stat(state.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after backapp dev stopped (%v)", state.Dir, err)
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("the state file was left behind")
	}
}

func TestUnknownCommandFailsWithASentence(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"frobnicate"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "frobnicate"`) {
		t.Errorf("stderr = %q", stderr.String())
	}
}
