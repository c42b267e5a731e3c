package webapp

import (
	"context"
	"errors"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/destination"
	"github.com/backapp/backapp/internal/objstore"
)

// storeFor opens the object store of a config's destination, turning the
// mistakes only a user can fix into a conflict the agent can show.
func (s *Server) storeFor(ctx context.Context, cfg *backappv1alpha1.BackupConfig) (*objstore.Store, error) {
	st, err := destination.Open(ctx, s.direct, cfg, s.cfg.DefaultS3)
	switch {
	case errors.Is(err, destination.ErrSecretNotFound):
		return nil, agentapi.NewError(agentapi.CodeConflict,
			"the destination credentials Secret of config %q does not exist", cfg.Name)
	case errors.Is(err, destination.ErrMisconfigured):
		// The detail goes to the server log; the agent learns only that the
		// destination is broken.
		s.cfg.Logger.ErrorContext(ctx, "destination not usable", "config", cfg.Name, "error", err)
		return nil, agentapi.NewError(agentapi.CodeConflict,
			"the destination of config %q is misconfigured; ask an administrator", cfg.Name)
	}
	return st, err
}
