package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/backapp/backapp/internal/testenv"
)

// devState is what `backapp dev --state-file` writes once everything is up,
// for scripts and tests that drive the local stack.
type devState struct {
	Kubeconfig  string `json:"kubeconfig"`
	PostgresURL string `json:"postgresURL"`
	S3Endpoint  string `json:"s3Endpoint"`
	S3Bucket    string `json:"s3Bucket"`
	S3AccessKey string `json:"s3AccessKey"`
	S3SecretKey string `json:"s3SecretKey"`
	Dir         string `json:"dir"`
}

// runDev starts the local stack, prints how to reach it and waits for ctx
// (Ctrl-C); then everything it started is stopped and removed.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backapp dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stateFile := fs.String("state-file", "", "write the endpoints and credentials as JSON (mode 0600) to this file once ready")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backapp dev: unexpected argument %q\n", fs.Arg(0))
		return 2
	}

	fmt.Fprintln(stdout, "Starting kube-apiserver+etcd, PostgreSQL and MinIO ...")
	env, err := testenv.Start(ctx, testenv.All)
	if err != nil {
		fmt.Fprintf(stderr, "backapp dev: %v\n", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(stderr, "backapp dev: while stopping: %v\n", err)
		}
	}()

	state := devState{
		Kubeconfig:  env.Kube.Kubeconfig,
		PostgresURL: env.Postgres.URL,
		S3Endpoint:  env.MinIO.Endpoint,
		S3Bucket:    env.MinIO.Bucket,
		S3AccessKey: env.MinIO.AccessKey,
		S3SecretKey: env.MinIO.SecretKey,
		Dir:         env.Root.Dir,
	}
	if *stateFile != "" {
		if err := writeState(*stateFile, state); err != nil {
			fmt.Fprintf(stderr, "backapp dev: %v\n", err)
			return 1
		}
		defer os.Remove(*stateFile)
	}
	printDevBanner(stdout, state)

	<-ctx.Done()
	fmt.Fprintln(stdout, "\nStopping and removing everything ...")
	return 0
}

func writeState(path string, s devState) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("while encoding the state file: %w", err)
	}
	// Write then rename, so a reader never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("while writing the state file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("while writing the state file: %w", err)
	}
	return nil
}

// printDevBanner shows a developer how to use the local stack. These are
// throwaway local credentials, printed on purpose; nothing here is logged.
func printDevBanner(w io.Writer, s devState) {
	fmt.Fprintf(w, `
BackApp local stack is up (everything lives in %s and is removed on Ctrl-C).

  Kubernetes:  export KUBECONFIG=%s
               kubectl get crds | grep backapp.io
               kubectl apply -k config/samples
  PostgreSQL:  %s
  S3 (MinIO):  endpoint %s  bucket %s
               access key %s  secret key %s

Press Ctrl-C to stop.
`, s.Dir, s.Kubeconfig, s.PostgresURL, s.S3Endpoint, s.S3Bucket, s.S3AccessKey, s.S3SecretKey)
}
