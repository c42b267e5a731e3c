package upload_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the package comment: the agent stays small, so
// nothing but the standard library, the packages the agent shares with the
// server, and the agent's client.
func TestImports(t *testing.T) {
	const pkg = "github.com/backapp/backapp/agent/upload"
	allowed := map[string]bool{
		pkg: true,
		"github.com/backapp/backapp/agent/client":      true,
		"github.com/backapp/backapp/internal/agentapi": true,
		"github.com/backapp/backapp/internal/apikey":   true,
		"github.com/backapp/backapp/internal/version":  true,
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 2 {
		t.Fatalf("go list found no dependencies of %s; the check would be vacuous: %q", pkg, out)
	}
	for _, d := range deps {
		if !allowed[d] {
			t.Errorf("%s depends on %s, outside the standard library and the agent's own packages", pkg, d)
		}
	}
}
