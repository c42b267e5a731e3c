package webapp

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/agentapi"
	"github.com/backapp/backapp/internal/apikey"
)

// bootstrapOwner owns agents registered with the bootstrap token, until
// user sessions let the signed-in user own them.
const bootstrapOwner = "admin"

// handleRegister creates an Agent with a fresh API key and returns the key,
// this once. Until the dashboard's sessions exist it is authorised by the
// server's bootstrap token (Authorization: Bearer ...), compared in
// constant time.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	if !s.bootstrapAuthorized(r) {
		writeAPIError(w, apiErr(agentapi.CodeUnauthorized, "registering an agent needs a signed-in user or the bootstrap token"))
		return
	}
	var req agentapi.RegisterRequest
	if err := decode(r, agentapi.MaxRegisterBodyBytes, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	key, err := apikey.New()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("while making an API key: %w", err))
		return
	}
	agent := &backappv1alpha1.Agent{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.cfg.Namespace, GenerateName: "agent-",
			Labels: map[string]string{LabelKeyID: keyID(key.Hash().String())},
		},
		Spec: backappv1alpha1.AgentSpec{
			DisplayName: req.Name,
			Owner:       bootstrapOwner,
			APIKeyHash:  key.Hash().String(),
		},
	}
	if err := s.writer.Create(r.Context(), agent); err != nil {
		s.writeError(w, r, fmt.Errorf("while creating the agent: %w", err))
		return
	}
	s.keys.put(agent)
	s.cfg.Logger.InfoContext(r.Context(), "registered agent", "agent", agent.Name, "keyPrefix", key.Prefix())
	writeJSON(w, http.StatusCreated, agentapi.RegisterResponse{Agent: agentapi.RegisteredAgent{
		ID: agent.Name, Name: req.Name, APIKey: key, Status: agentapi.AgentStatusPending,
	}})
}

func (s *Server) bootstrapAuthorized(r *http.Request) bool {
	if s.cfg.BootstrapToken == "" {
		return false
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.BootstrapToken)) == 1
}
