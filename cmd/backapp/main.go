// Command backapp is BackApp's control-plane binary: `manager` (the
// controllers and the PostgreSQL mirror), `server` (the agent API; the
// dashboard joins it), `migrate` (the PostgreSQL schema), `dev` (the local
// stack the tests use) and `version`.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/backapp/backapp/internal/version"
)

const usage = `backapp runs BackApp's control plane.

Usage:
  backapp dev [flags]   run a local kube-apiserver+etcd, PostgreSQL and MinIO
                        with the BackApp CRDs installed, until Ctrl-C
  backapp server [flags]
                        serve the agent API (the dashboard joins it later)
  backapp manager [flags]
                        run the controllers (scheduling, runs, agent
                        liveness, retention) and the PostgreSQL mirror
  backapp migrate       apply the PostgreSQL schema migrations
                        (BACKAPP_DATABASE_URL or --database-url-file)
  backapp version       print the version
  backapp help          show this help

Run "backapp COMMAND -h" for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "server":
		return runServer(ctx, args[1:], stdout, stderr)
	case "manager":
		return runManager(ctx, args[1:], stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "backapp %s\n", version.String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "backapp: unknown command %q. Run \"backapp help\" for the list of commands.\n", args[0])
		return 2
	}
}
