package webapp

import (
	"context"
	"fmt"
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/client"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
)

type agentKey struct{}

// agentFrom returns the Agent that authenticated the request.
func agentFrom(ctx context.Context) *backappv1alpha1.Agent {
	return ctx.Value(agentKey{}).(*backappv1alpha1.Agent)
}

// withAgentAuth admits requests that carry the API key of an enabled Agent
// and then applies the per-agent rate limit. The key is parsed (format and
// checksum) before any lookup, hashed with SHA-256 and looked up in the
// keyIndex, so a check costs about a microsecond and no apiserver call;
// revoking or rotating a key changes spec.apiKeyHash, and the next request
// after the watch delivers that change is refused.
func (s *Server) withAgentAuth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get(agentapi.HeaderAPIKey)
		if raw == "" {
			writeAPIError(w, apiErr(agentapi.CodeUnauthorized, "missing "+agentapi.HeaderAPIKey+" header"))
			return
		}
		key, err := apikey.Parse(raw)
		if err != nil {
			writeAPIError(w, apiErr(agentapi.CodeUnauthorized, "malformed API key"))
			return
		}
		agent, ok := s.keys.lookup(key.Hash().String())
		if !ok {
			// Not in this replica's index: maybe registered a moment ago
			// (here or on another replica) and not yet delivered by the
			// watch. One label-selected GET settles it.
			var err error
			if agent, err = s.lookupKeyDirect(r.Context(), key.Hash().String()); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		if agent.DeletionTimestamp != nil {
			writeAPIError(w, apiErr(agentapi.CodeUnauthorized, "unknown or revoked API key"))
			return
		}
		if agent.Spec.Disabled {
			writeAPIError(w, apiErr(agentapi.CodeForbidden, "this agent is disabled"))
			return
		}
		if ok, wait := s.keyLimiter.allow(string(agent.UID)); !ok {
			writeAPIError(w, rateLimited(wait))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, agent)))
	}
}

// LabelKeyID on an Agent holds the first 32 hex digits (128 bits) of its key
// hash: label values are limited to 63 characters, and a label lets the
// apiserver find a new agent by its key without listing every Agent.
const LabelKeyID = "backapp.io/key-id"

func keyID(hash string) string { return hash[:32] }

// lookupKeyDirect finds the Agent holding hash on the apiserver.
func (s *Server) lookupKeyDirect(ctx context.Context, hash string) (*backappv1alpha1.Agent, error) {
	var agents backappv1alpha1.AgentList
	if err := s.direct.List(ctx, &agents, client.InNamespace(s.cfg.Namespace),
		client.MatchingLabels{LabelKeyID: keyID(hash)}); err != nil {
		return nil, fmt.Errorf("while looking up an agent by key: %w", err)
	}
	for i := range agents.Items {
		if a := &agents.Items[i]; a.Spec.APIKeyHash == hash {
			s.keys.put(a)
			return a, nil
		}
	}
	return nil, apiErr(agentapi.CodeUnauthorized, "unknown or revoked API key")
}
