package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/backapp/backapp/controllers"
	"github.com/backapp/backapp/internal/index"
	"github.com/backapp/backapp/internal/mirror"
	"github.com/backapp/backapp/internal/objstore"
	"github.com/backapp/backapp/internal/store"
	"github.com/backapp/backapp/internal/testenv"
)

// managerFlags are `backapp manager`'s settings.
type managerFlags struct {
	kubeconfig, metricsAddr, probeAddr string
	leaderElect                        bool
	leaderElectionNamespace            string
	serverURL, agentImage              string
	s3Endpoint, s3Region               string
	s3PathStyle                        bool
	databaseURLFile                    string
}

// runManager runs the reconcilers (scheduling, run lifecycle, agent
// liveness, retention) and, with a database, the PostgreSQL mirror, under
// leader election so that only one manager schedules.
func runManager(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backapp manager", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f managerFlags
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default: in-cluster, then $KUBECONFIG, then ~/.kube/config")
	fs.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443", "metrics address; 0 disables")
	fs.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "health and readiness probes address; 0 disables")
	fs.BoolVar(&f.leaderElect, "leader-elect", true, "elect one active manager (keep on with more than one replica)")
	fs.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease; default: the manager's own")
	fs.StringVar(&f.serverURL, "server-url", "", "agent API URL as seen from server-mode Job pods, e.g. http://backapp.backapp-system.svc:8080 (required)")
	fs.StringVar(&f.agentImage, "agent-image", controllers.DefaultAgentImage, "backapp-agent image of server-mode Jobs")
	fs.StringVar(&f.s3Endpoint, "s3-endpoint", "", "default S3-compatible endpoint for destinations without one; default AWS")
	fs.StringVar(&f.s3Region, "s3-region", objstore.DefaultRegion, "default S3 region")
	fs.BoolVar(&f.s3PathStyle, "s3-path-style", false, "address buckets by path on the default endpoint")
	fs.StringVar(&f.databaseURLFile, "database-url-file", "", "file holding the PostgreSQL URL (or env BACKAPP_DATABASE_URL); none: no mirror")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "backapp manager: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if f.serverURL == "" {
		fmt.Fprintln(stderr, "backapp manager: --server-url is required (server-mode Jobs report to it)")
		return 2
	}
	if err := manage(ctx, f, stdout); err != nil {
		fmt.Fprintf(stderr, "backapp manager: %v\n", err)
		return 1
	}
	return 0
}

func manage(ctx context.Context, f managerFlags, stdout io.Writer) error {
	ctrl.SetLogger(logr.FromSlogHandler(jsonHandler(stdout)))
	restConfig, err := kubeConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	scheme, err := testenv.NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.metricsAddr != "0"},
		HealthProbeBindAddress:  f.probeAddr,
		LeaderElection:          f.leaderElect,
		LeaderElectionID:        "backapp-manager.backapp.io",
		LeaderElectionNamespace: f.leaderElectionNamespace,
		// Stepping down on Ctrl-C lets a standby take over at once.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("while creating the manager: %w", err)
	}
	if err := index.Register(ctx, mgr.GetFieldIndexer()); err != nil {
		return err
	}
	clk := clock.RealClock{}
	recorder := mgr.GetEventRecorder("backapp-manager")
	defaults := objstore.Config{Endpoint: f.s3Endpoint, Region: f.s3Region, ForcePathStyle: f.s3PathStyle,
		AccessKeyID: os.Getenv("BACKAPP_S3_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("BACKAPP_S3_SECRET_ACCESS_KEY")}
	setups := []interface{ SetupWithManager(ctrl.Manager) error }{
		&controllers.BackupConfigReconciler{Client: mgr.GetClient(), Scheme: scheme, Clock: clk, Recorder: recorder, APIReader: mgr.GetAPIReader()},
		&controllers.BackupRunReconciler{Client: mgr.GetClient(), Scheme: scheme, Clock: clk, Recorder: recorder, APIReader: mgr.GetAPIReader(),
			DefaultS3: defaults, ServerURL: f.serverURL, AgentImage: f.agentImage},
		&controllers.AgentReconciler{Client: mgr.GetClient(), Scheme: scheme, Clock: clk, Recorder: recorder},
		&controllers.RetentionReconciler{Client: mgr.GetClient(), Clock: clk, Recorder: recorder},
	}
	for _, s := range setups {
		if err := s.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("while setting up %T: %w", s, err)
		}
	}
	if url, err := databaseURL(f.databaseURLFile); err == nil {
		st, err := store.Open(ctx, url)
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := store.Migrate(ctx, st.Pool()); err != nil {
			return err
		}
		if err := mirror.Setup(mgr, st, clk); err != nil {
			return fmt.Errorf("while setting up the PostgreSQL mirror: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("while adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("while adding the readiness check: %w", err)
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("while running the manager: %w", err)
	}
	return nil
}
