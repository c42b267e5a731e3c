// Package index names the field indexes BackApp's caches keep, and
// registers them; the server and the manager share one definition.
package index

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// Field indexes, usable with client.MatchingFields on a cache that has
// them registered.
const (
	// ConfigAgent indexes BackupConfigs by spec.agentRef.name.
	ConfigAgent = "spec.agentRef.name"
	// RunConfig indexes BackupRuns by spec.configRef.name.
	RunConfig = "spec.configRef.name"
)

// Register adds the field indexes to a cache (cache.Cache and
// manager.GetFieldIndexer() both fit).
func Register(ctx context.Context, idx client.FieldIndexer) error {
	indexes := []struct {
		obj     client.Object
		field   string
		extract client.IndexerFunc
	}{
		{&backappv1alpha1.BackupConfig{}, ConfigAgent, func(o client.Object) []string {
			if ref := o.(*backappv1alpha1.BackupConfig).Spec.AgentRef; ref != nil {
				return []string{ref.Name}
			}
			return nil
		}},
		{&backappv1alpha1.BackupRun{}, RunConfig, func(o client.Object) []string {
			return []string{o.(*backappv1alpha1.BackupRun).Spec.ConfigRef.Name}
		}},
	}
	for _, i := range indexes {
		if err := idx.IndexField(ctx, i.obj, i.field, i.extract); err != nil {
			return fmt.Errorf("while indexing %T by %s: %w", i.obj, i.field, err)
		}
	}
	return nil
}
