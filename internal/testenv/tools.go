package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath identifies BackApp's own go.mod when walking up the tree, so a
// nested module (or a checkout inside another module) is not mistaken for it.
const modulePath = "github.com/backapp/backapp"

// RepoRoot walks up from the working directory to the directory holding
// BackApp's go.mod.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("while finding the repository root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if isModuleRoot(dir) {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod for %s in %s or any parent directory", modulePath, wd)
		}
	}
}

func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == modulePath
		}
	}
	return false
}

// Tool names one of the binaries in Tools, for Tools.Require.
type Tool string

// The tools testenv knows about; the values are the Tools field names.
const (
	ToolKubebuilderAssets Tool = "KubebuilderAssets"
	ToolMinIO             Tool = "MinIO"
	ToolPostgres          Tool = "PostgresBinDir"
	ToolChromium          Tool = "Chromium"
)

// allTools lists every Tool, in the order they are reported.
func allTools() []Tool {
	return []Tool{ToolKubebuilderAssets, ToolMinIO, ToolPostgres, ToolChromium}
}

// EnvVar is the environment variable (and hack/tools.sh env key) that names
// the tool.
func (t Tool) EnvVar() string {
	switch t {
	case ToolKubebuilderAssets:
		return "KUBEBUILDER_ASSETS"
	case ToolMinIO:
		return "BACKAPP_MINIO"
	case ToolPostgres:
		return "BACKAPP_PG_BINDIR"
	case ToolChromium:
		return "BACKAPP_CHROMIUM"
	default:
		return ""
	}
}

// Tools are the paths of the binaries the test environment runs.
type Tools struct {
	KubebuilderAssets string // directory holding kube-apiserver and etcd
	MinIO             string // the minio binary
	PostgresBinDir    string // directory holding initdb and postgres
	Chromium          string // a Chromium binary; may be empty
}

// FindTools reads KUBEBUILDER_ASSETS, BACKAPP_MINIO, BACKAPP_PG_BINDIR and
// BACKAPP_CHROMIUM from the environment and fills any that is empty from the
// output of `<repo>/hack/tools.sh env`.
//
// It does not check that the tools exist: not every test needs every tool,
// so each Start function calls Require for the ones it uses, and that error
// says how to build them. FindTools fails only if hack/tools.sh was needed
// and could not be run.
func FindTools() (Tools, error) {
	values := map[Tool]string{}
	missing := false
	for _, tool := range allTools() {
		values[tool] = os.Getenv(tool.EnvVar())
		missing = missing || values[tool] == ""
	}
	if missing {
		fromScript, err := toolsScriptEnv()
		if err != nil {
			return Tools{}, err
		}
		for tool, v := range values {
			if v == "" {
				values[tool] = fromScript[tool.EnvVar()]
			}
		}
	}
	return Tools{
		KubebuilderAssets: values[ToolKubebuilderAssets],
		MinIO:             values[ToolMinIO],
		PostgresBinDir:    values[ToolPostgres],
		Chromium:          resolveCommand(values[ToolChromium]),
	}, nil
}

// toolsScriptEnv runs `hack/tools.sh env` and parses its KEY=VALUE lines.
func toolsScriptEnv() (map[string]string, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, fmt.Errorf("while locating hack/tools.sh (set %s instead): %w", envNames(), err)
	}
	script := filepath.Join(repo, "hack", "tools.sh")
	var stderr bytes.Buffer
	cmd := exec.Command(script, "env")
	cmd.Dir = repo
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("while running %s env: %w: %s", script, err, strings.TrimSpace(stderr.String()))
	}
	values := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			values[key] = value
		}
	}
	return values, nil
}

// resolveCommand turns a bare command name into its path in PATH, so that
// Require can check it; a name that is not found is left as is.
func resolveCommand(name string) string {
	if name == "" || strings.ContainsRune(name, filepath.Separator) {
		return name
	}
	if path, err := exec.LookPath(name); err == nil {
		return path
	}
	return name
}

func envNames() string {
	var names []string
	for _, tool := range allTools() {
		names = append(names, tool.EnvVar())
	}
	return strings.Join(names, ", ")
}

// Require checks that the named tools are present, and otherwise returns an
// error that says how to get them.
func (t Tools) Require(tools ...Tool) error {
	var errs []error
	for _, tool := range tools {
		if err := t.check(tool); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w\n(run `make tools` or `hack/tools.sh all` to build the test tools, or set %s)",
		errors.Join(errs...), envNames())
}

func (t Tools) check(tool Tool) error {
	switch tool {
	case ToolKubebuilderAssets:
		return requireFiles(tool, t.KubebuilderAssets, "kube-apiserver", "etcd")
	case ToolMinIO:
		return requireFiles(tool, t.MinIO)
	case ToolPostgres:
		return requireFiles(tool, t.PostgresBinDir, "initdb", "postgres")
	case ToolChromium:
		return requireFiles(tool, t.Chromium)
	default:
		return fmt.Errorf("unknown tool %q", tool)
	}
}

// requireFiles checks that path (joined with each name, if any) is an
// executable file.
func requireFiles(tool Tool, path string, names ...string) error {
	if path == "" {
		return fmt.Errorf("%s is not set (%s is empty and hack/tools.sh env found nothing)", tool, tool.EnvVar())
	}
	if len(names) == 0 {
		return requireExecutable(tool, path)
	}
	for _, name := range names {
		if err := requireExecutable(tool, filepath.Join(path, name)); err != nil {
			return err
		}
	}
	return nil
}

func requireExecutable(tool Tool, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", tool, err)
	}
	if st.IsDir() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: %s is not an executable file", tool, path)
	}
	return nil
}
