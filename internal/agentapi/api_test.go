package agentapi_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
)

func TestEndpoints(t *testing.T) {
	paths := []string{
		agentapi.PathRegister, agentapi.PathHeartbeat, agentapi.PathConfigs, agentapi.PathRuns,
		agentapi.PathBackupStart, agentapi.PathBackupParts, agentapi.PathBackupProgress,
		agentapi.PathBackupComplete, agentapi.PathBackupAbort, agentapi.PathLog, agentapi.PathDownload,
	}
	endpoints := agentapi.Endpoints()
	byPath := map[string]agentapi.Endpoint{}
	for _, e := range endpoints {
		if _, dup := byPath[e.Path]; dup {
			t.Errorf("%s listed twice", e.Path)
		}
		byPath[e.Path] = e
	}
	if len(endpoints) != len(paths) {
		t.Errorf("Endpoints() lists %d endpoints, want %d", len(endpoints), len(paths))
	}
	for _, p := range paths {
		e, ok := byPath[p]
		if !ok {
			t.Errorf("%s missing from Endpoints()", p)
			continue
		}
		if !strings.HasPrefix(p, agentapi.BasePath+"/") {
			t.Errorf("%s is not under %s", p, agentapi.BasePath)
		}
		switch e.Method {
		case http.MethodGet:
			if e.MaxBodyBytes != 0 {
				t.Errorf("GET %s accepts a body of %d bytes", p, e.MaxBodyBytes)
			}
		case http.MethodPost:
			if e.MaxBodyBytes <= 0 {
				t.Errorf("POST %s has no body limit", p)
			}
		default:
			t.Errorf("%s has method %q", p, e.Method)
		}
		if e.Session != (p == agentapi.PathRegister) {
			t.Errorf("%s: Session = %v; only register uses a session", p, e.Session)
		}
		if got, want := e.Pattern(), e.Method+" "+p; got != want {
			t.Errorf("Pattern() = %q, want %q", got, want)
		}
	}
	// The patterns must be valid for net/http's ServeMux, without
	// conflicts.
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.HandleFunc(e.Pattern(), func(http.ResponseWriter, *http.Request) {})
	}
	// A returned slice is the caller's to change.
	endpoints[0].Path = "/changed"
	if agentapi.Endpoints()[0].Path == "/changed" {
		t.Error("Endpoints() shares its slice between callers")
	}
}

// TestImports enforces the package comment: the agent links this package
// and must stay free of Kubernetes, controller-runtime, pgx and the
// server's packages.
func TestImports(t *testing.T) {
	assertDeps(t, "github.com/backapp/backapp/internal/agentapi",
		"github.com/backapp/backapp/internal/agentapi",
		"github.com/backapp/backapp/internal/apikey",
		"github.com/backapp/backapp/internal/version")
}

// assertDeps fails when pkg depends, directly or not, on anything outside
// the standard library but the allowed packages.
func assertDeps(t *testing.T, pkg string, allowed ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list found no packages: the check would pass vacuously")
	}
	for _, dep := range deps {
		ok := false
		for _, a := range allowed {
			ok = ok || dep == a
		}
		if !ok {
			t.Errorf("%s depends on %s", pkg, dep)
		}
	}
}
