package webapp

import (
	"net/http"

	"github.com/backapp/backapp/internal/agentapi"
)

// routes is every route of the server in one place.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	handlers := map[string]http.HandlerFunc{
		agentapi.PathRegister:       s.handleRegister,
		agentapi.PathHeartbeat:      s.withAgentAuth(s.handleHeartbeat),
		agentapi.PathConfigs:        s.withAgentAuth(s.handleConfigs),
		agentapi.PathRuns:           s.withAgentAuth(s.handleRuns),
		agentapi.PathBackupStart:    s.withAgentAuth(s.handleStart),
		agentapi.PathBackupParts:    s.withAgentAuth(s.handleParts),
		agentapi.PathBackupProgress: s.withAgentAuth(s.handleProgress),
		agentapi.PathBackupComplete: s.withAgentAuth(s.handleComplete),
		agentapi.PathBackupAbort:    s.withAgentAuth(s.handleAbort),
		agentapi.PathLog:            s.withAgentAuth(s.handleLog),
		agentapi.PathDownload:       s.withAgentAuth(s.handleDownload),
	}
	for _, ep := range agentapi.Endpoints() {
		h, ok := handlers[ep.Path]
		if !ok {
			panic("webapp: no handler for " + ep.Pattern())
		}
		mux.Handle(ep.Pattern(), h)
		// The same path with another method: a JSON 405, not net/http's text.
		allow := ep.Method
		mux.HandleFunc(ep.Path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeAPIError(w, agentapi.NewError(agentapi.CodeMethodNotAllowed,
				"%s is not allowed here; use %s", r.Method, allow))
		})
	}
	mux.HandleFunc(agentapi.BasePath+"/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, apiErr(agentapi.CodeNotFound, "no such endpoint"))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return mux
}
