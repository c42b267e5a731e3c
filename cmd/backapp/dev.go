package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// devState is what `backapp dev --state-file` writes once everything is up,
// for scripts and tests that drive the local stack.
type devState struct {
	ServerURL      string `json:"serverURL"`
	BootstrapToken string `json:"bootstrapToken"`
	Kubeconfig     string `json:"kubeconfig"`
	PostgresURL    string `json:"postgresURL"`
	S3Endpoint     string `json:"s3Endpoint"`
	S3Bucket       string `json:"s3Bucket"`
	S3AccessKey    string `json:"s3AccessKey"`
	S3SecretKey    string `json:"s3SecretKey"`
	Dir            string `json:"dir"`
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

	serverURL, token, err := startDevServer(ctx, env, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "backapp dev: %v\n", err)
		return 1
	}
	state := devState{
		ServerURL:      serverURL,
		BootstrapToken: token,
		Kubeconfig:     env.Kube.Kubeconfig,
		PostgresURL:    env.Postgres.URL,
		S3Endpoint:     env.MinIO.Endpoint,
		S3Bucket:       env.MinIO.Bucket,
		S3AccessKey:    env.MinIO.AccessKey,
		S3SecretKey:    env.MinIO.SecretKey,
		Dir:            env.Root.Dir,
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

  Agent API:   %s
               register an agent:
               curl -s -X POST -H 'Authorization: Bearer %s' \
                 -d '{"name":"my laptop"}' %s/api/agent/register
  Kubernetes:  export KUBECONFIG=%s
               kubectl get crds | grep backapp.io
               kubectl apply -k config/samples
  PostgreSQL:  %s
  S3 (MinIO):  endpoint %s  bucket %s
               access key %s  secret key %s

Press Ctrl-C to stop.
`, s.Dir, s.ServerURL, s.BootstrapToken, s.ServerURL, s.Kubeconfig, s.PostgresURL, s.S3Endpoint, s.S3Bucket, s.S3AccessKey, s.S3SecretKey)
}

// devNamespace holds the local stack's Agents, configs and runs.
const devNamespace = "backapp"

// startDevServer runs the agent API in this process against the local
// stack, on a free loopback port, with a fresh bootstrap token and MinIO as
// the default destination.
func startDevServer(ctx context.Context, env *testenv.Env, stderr io.Writer) (string, string, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: devNamespace}}
	if err := env.Kube.Client.Create(ctx, ns); err != nil {
		return "", "", fmt.Errorf("while creating namespace %s: %w", devNamespace, err)
	}
	token := make([]byte, 24)
	if _, err := rand.Read(token); err != nil {
		return "", "", fmt.Errorf("while making a bootstrap token: %w", err)
	}
	cfg := webapp.Config{
		Namespace:      devNamespace,
		BootstrapToken: hex.EncodeToString(token),
		DefaultS3: objstore.Config{
			Endpoint: env.MinIO.Endpoint, Region: env.MinIO.Region, ForcePathStyle: true,
			AccessKeyID: env.MinIO.AccessKey, SecretAccessKey: env.MinIO.SecretKey,
		},
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	srv, err := webapp.Start(ctx, env.Kube.Config, env.Kube.Scheme, cfg)
	if err != nil {
		return "", "", err
	}
	addr := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- srv.ListenAndServe(ctx, "127.0.0.1:0", func(a net.Addr) { addr <- a.String() })
	}()
	select {
	case a := <-addr:
		return "http://" + a, cfg.BootstrapToken, nil
	case err := <-errc:
		return "", "", err
	}
}
