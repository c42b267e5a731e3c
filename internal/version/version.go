// Package version reports which BackApp build is running. The values are
// set at link time (-ldflags "-X ...") by `make dist` and the image builds;
// a plain `go build` reports "dev". It imports nothing, so the agent can
// use it too.
package version

// Set with -ldflags "-X github.com/backapp/backapp/internal/version.Version=v1.2.3".
var (
	Version = "dev"
	Commit  = "unknown"
)

// String is "Version (Commit)".
func String() string { return Version + " (" + Commit + ")" }
