package webapp

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/cluster"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/index"
)

// Start connects to the apiserver at restConfig: an informer cache of the
// server's namespace (Agents, BackupConfigs, BackupRuns, with the field
// indexes of package index; never Secrets, which are read one by one), a
// direct reader and a writer. It waits for the cache to sync and keeps it
// running until ctx ends.
func Start(ctx context.Context, restConfig *rest.Config, scheme *runtime.Scheme, cfg Config) (*Server, error) {
	if cfg.Namespace == "" {
		return nil, errors.New("webapp: a namespace is required")
	}
	cl, err := cluster.New(restConfig, func(o *cluster.Options) {
		o.Scheme = scheme
		o.Cache.DefaultNamespaces = map[string]cache.Config{cfg.Namespace: {}}
	})
	if err != nil {
		return nil, fmt.Errorf("while connecting to the apiserver: %w", err)
	}
	if err := index.Register(ctx, cl.GetFieldIndexer()); err != nil {
		return nil, err
	}
	s, err := newServer(cfg, cl.GetCache(), cl.GetAPIReader(), cl.GetClient())
	if err != nil {
		return nil, err
	}
	agents, err := cl.GetCache().GetInformer(ctx, &backappv1alpha1.Agent{})
	if err != nil {
		return nil, fmt.Errorf("while watching Agents: %w", err)
	}
	if _, err := agents.AddEventHandler(s.keys.handler()); err != nil {
		return nil, fmt.Errorf("while indexing agent keys: %w", err)
	}
	go func() {
		if err := cl.Start(ctx); err != nil {
			cfg.withDefaults().Logger.Error("the Kubernetes cache stopped", "error", err)
		}
	}()
	if !cl.GetCache().WaitForCacheSync(ctx) {
		return nil, errors.New("webapp: the Kubernetes cache did not sync")
	}
	return s, nil
}
