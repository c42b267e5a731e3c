package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the package comment: the agent stays small, so
// nothing but the standard library and the packages the agent shares with
// the server.
func TestImports(t *testing.T) {
	assertImports(t, "github.com/backapp/backapp/agent/client",
		"github.com/backapp/backapp/internal/agentapi",
		"github.com/backapp/backapp/internal/apikey",
		"github.com/backapp/backapp/internal/version",
	)
}

func assertImports(t *testing.T, pkg string, allowed ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	ok := map[string]bool{pkg: true}
	for _, a := range allowed {
		ok[a] = true
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list found no dependencies of %s; the check would be vacuous: %q", pkg, out)
	}
	for _, d := range deps {
		if !ok[d] {
			t.Errorf("%s depends on %s, outside the standard library and %v", pkg, d, allowed)
		}
	}
}
