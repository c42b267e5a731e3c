package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// kubeStartTimeout is generous: on a busy 2-core machine with several test
// packages starting apiservers at once, 20 s (envtest's default) is not.
const kubeStartTimeout = 3 * time.Minute

// Kube is a real kube-apiserver and etcd (envtest) with BackApp's CRDs
// installed.
type Kube struct {
	// Config reaches the apiserver as a cluster admin.
	Config *rest.Config
	// Client is a controller-runtime client for Config with Scheme.
	Client client.Client
	// Scheme knows the built-in kinds and BackApp's.
	Scheme *runtime.Scheme
	// Kubeconfig is the path of a kubeconfig file for Config, for kubectl.
	Kubeconfig string

	env *envtest.Environment
}

// NewScheme returns a scheme with the Kubernetes built-in kinds and
// BackApp's kinds registered.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("while registering built-in kinds: %w", err)
	}
	if err := backappv1alpha1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("while registering BackApp kinds: %w", err)
	}
	return s, nil
}

// StartKube starts etcd and kube-apiserver with their state under root (so
// the reaper finds them) and installs the CRDs from config/crd/bases.
func StartKube(ctx context.Context, root *Root, tools Tools) (*Kube, error) {
	if err := tools.Require(ToolKubebuilderAssets); err != nil {
		return nil, err
	}
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	etcdDir, certDir := root.Path("etcd"), root.Path("kube-apiserver")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("while creating %s: %w", d, err)
		}
	}
	env := &envtest.Environment{
		Scheme:                   scheme,
		CRDDirectoryPaths:        []string{filepath.Join(repo, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    tools.KubebuilderAssets,
		ControlPlaneStartTimeout: kubeStartTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: etcdDir}
	env.ControlPlane.GetAPIServer().CertDir = certDir

	cfg, err := startEnvtest(ctx, env)
	if err != nil {
		return nil, err
	}
	k := &Kube{Config: cfg, Scheme: scheme, env: env}
	if err := k.finishSetup(root); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return k, nil
}

// startEnvtest runs env.Start, which takes no context, and gives up when
// ctx ends (the reaper then kills whatever half-started).
func startEnvtest(ctx context.Context, env *envtest.Environment) (*rest.Config, error) {
	type result struct {
		cfg *rest.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := env.Start()
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("while starting kube-apiserver and etcd: %w", r.err)
		}
		return r.cfg, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("while starting kube-apiserver and etcd: %w", ctx.Err())
	}
}

func (k *Kube) finishSetup(root *Root) error {
	c, err := client.New(k.Config, client.Options{Scheme: k.Scheme})
	if err != nil {
		return fmt.Errorf("while creating a Kubernetes client: %w", err)
	}
	k.Client = c

	admin, err := k.env.AddUser(envtest.User{Name: "backapp-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("while adding an admin user: %w", err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("while writing the admin kubeconfig: %w", err)
	}
	k.Kubeconfig = root.Path("kubeconfig")
	if err := os.WriteFile(k.Kubeconfig, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("while writing %s: %w", k.Kubeconfig, err)
	}
	return nil
}

// Close stops the apiserver and etcd. Idempotent.
func (k *Kube) Close() error {
	if k == nil || k.env == nil {
		return nil
	}
	env := k.env
	k.env = nil
	if err := env.Stop(); err != nil {
		return fmt.Errorf("while stopping kube-apiserver and etcd: %w", err)
	}
	return nil
}
