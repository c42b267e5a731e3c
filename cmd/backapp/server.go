package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/testenv"
	"github.com/backapp/backapp/webapp"
)

// serverFlags are `backapp server`'s settings. Secrets come from files or
// the environment, never from flags (which show in process listings).
type serverFlags struct {
	listen, namespace, kubeconfig string
	bootstrapTokenFile            string
	s3Endpoint, s3Region          string
	s3PathStyle                   bool
}

func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backapp server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serverFlags
	fs.StringVar(&f.listen, "listen", ":8080", "address to serve the agent API on")
	fs.StringVar(&f.namespace, "namespace", envOr("BACKAPP_NAMESPACE", "backapp"), "namespace of the Agents, BackupConfigs and BackupRuns (env BACKAPP_NAMESPACE)")
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster, then $KUBECONFIG, then ~/.kube/config")
	fs.StringVar(&f.bootstrapTokenFile, "bootstrap-token-file", "", "file holding the admin bootstrap token that authorises agent registration (or env BACKAPP_BOOTSTRAP_TOKEN); none: registration is off")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "default S3-compatible endpoint for destinations without one; default AWS")
	fs.StringVar(&f.s3Region, "s3-region", objstore.DefaultRegion, "default S3 region")
	fs.BoolVar(&f.s3PathStyle, "s3-path-style", false, "address buckets by path on the default endpoint")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backapp server: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, restConfig, err := f.load()
	if err != nil {
		fmt.Fprintf(stderr, "backapp server: %v\n", err)
		return 2
	}
	logger := slog.New(jsonHandler(stdout))
	cfg.Logger = logger
	scheme, err := testenv.NewScheme()
	if err != nil {
		fmt.Fprintf(stderr, "backapp server: %v\n", err)
		return 1
	}
	srv, err := webapp.Start(ctx, restConfig, scheme, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "backapp server: %v\n", err)
		return 1
	}
	err = srv.ListenAndServe(ctx, f.listen, func(a net.Addr) {
		logger.Info("serving the agent API", "address", a.String(), "namespace", cfg.Namespace,
			"registration", cfg.BootstrapToken != "")
	})
	if err != nil {
		fmt.Fprintf(stderr, "backapp server: %v\n", err)
		return 1
	}
	return 0
}

// load turns the flags and environment into the server's configuration.
func (f serverFlags) load() (webapp.Config, *rest.Config, error) {
	cfg := webapp.Config{Namespace: f.namespace}
	if f.namespace == "" {
		return cfg, nil, errors.New("--namespace must not be empty")
	}
	token := os.Getenv("BACKAPP_BOOTSTRAP_TOKEN")
	if f.bootstrapTokenFile != "" {
		data, err := os.ReadFile(f.bootstrapTokenFile)
		if err != nil {
			return cfg, nil, fmt.Errorf("cannot read the bootstrap token file: %w", err)
		}
		token = strings.TrimSpace(string(data))
	}
	if token != "" && len(token) < 20 {
		return cfg, nil, errors.New("the bootstrap token must be at least 20 characters long")
	}
	cfg.BootstrapToken = token
	cfg.DefaultS3 = objstore.Config{
		Endpoint:        f.s3Endpoint,
		Region:          f.s3Region,
		ForcePathStyle:  f.s3PathStyle,
		AccessKeyID:     os.Getenv("BACKAPP_S3_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("BACKAPP_S3_SECRET_ACCESS_KEY"),
	}
	rc, err := kubeConfig(f.kubeconfig)
	return cfg, rc, err
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// kubeConfig finds the apiserver: the given kubeconfig file, else
// in-cluster, $KUBECONFIG or ~/.kube/config.
func kubeConfig(path string) (*rest.Config, error) {
	var (
		rc  *rest.Config
		err error
	)
	if path != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", path)
	} else {
		rc, err = ctrlconfig.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("cannot find the Kubernetes API: %w", err)
	}
	return rc, nil
}

// jsonHandler is the log handler of the long-running commands.
func jsonHandler(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }
