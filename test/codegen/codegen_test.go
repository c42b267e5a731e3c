// Package codegen checks that the generated files committed to the
// repository (deepcopy functions, CRD manifests, RBAC) are what
// `make generate manifests` would write from the current sources.
package codegen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backapp/backapp/internal/testenv"
)

// controllerGen finds the pinned controller-gen through hack/tools.sh, the
// one place that knows its version.
func controllerGen(t *testing.T, repo string) string {
	t.Helper()
	path := os.Getenv("BACKAPP_CONTROLLER_GEN")
	if path == "" {
		out, err := exec.Command(filepath.Join(repo, "hack", "tools.sh"), "env").Output()
		if err != nil {
			t.Fatalf("running hack/tools.sh env: %v", err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "BACKAPP_CONTROLLER_GEN="); ok {
				path = v
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("controller-gen is not built (%v): run `make tools`", err)
	}
	return path
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestGeneratedFilesAreFresh(t *testing.T) {
	repo, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gen := controllerGen(t, repo)
	out := t.TempDir()

	deepcopy := run(t, repo, gen, "object:headerFile=hack/boilerplate.go.txt", "paths=./api/...", "output:object:stdout")
	run(t, repo, gen, "crd", "rbac:roleName=backapp-manager", "paths=./api/...", "paths=./controllers/...",
		"output:crd:artifacts:config="+filepath.Join(out, "crd"),
		"output:rbac:artifacts:config="+filepath.Join(out, "rbac"))

	stale := func(committed string, fresh []byte) {
		t.Helper()
		have, err := os.ReadFile(filepath.Join(repo, committed))
		if err != nil {
			t.Errorf("%s: %v (run `make generate manifests`)", committed, err)
			return
		}
		if !bytes.Equal(have, fresh) {
			t.Errorf("%s is stale: run `make generate manifests` and commit the result", committed)
		}
	}
	stale("api/v1alpha1/zz_generated.deepcopy.go", deepcopy)

	for _, sub := range []string{"crd", "rbac"} {
		files, err := filepath.Glob(filepath.Join(out, sub, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("controller-gen wrote no %s manifests (%v)", sub, err)
		}
		for _, f := range files {
			fresh, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			committed := filepath.Join("config", sub, filepath.Base(f))
			if sub == "crd" {
				committed = filepath.Join("config", "crd", "bases", filepath.Base(f))
			}
			stale(committed, fresh)
		}
	}

	// A committed CRD whose type was removed is stale too.
	committedCRDs, _ := filepath.Glob(filepath.Join(repo, "config", "crd", "bases", "*.yaml"))
	for _, f := range committedCRDs {
		if _, err := os.Stat(filepath.Join(out, "crd", filepath.Base(f))); err != nil {
			t.Errorf("config/crd/bases/%s has no type generating it any more: delete it", filepath.Base(f))
		}
	}
}
