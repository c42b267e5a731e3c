package apikey_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the package comment: only the standard library, so
// that the agent, the server and the store can all import this package.
func TestImports(t *testing.T) {
	const pkg = "github.com/backapp/backapp/internal/apikey"
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) != 1 || deps[0] != pkg {
		t.Fatalf("%s depends on packages outside the standard library: %v", pkg, deps)
	}
}
