package webapp

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
)

func apiErr(code agentapi.Code, msg string) *agentapi.APIError {
	return &agentapi.APIError{Code: code, Message: msg}
}

func internalError() *agentapi.APIError {
	return apiErr(agentapi.CodeInternal, "the server failed; retry later")
}

func rateLimited(wait time.Duration) *agentapi.APIError {
	secs := int(wait / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &agentapi.APIError{Code: agentapi.CodeRateLimited, Message: "too many requests; retry later", RetryAfterSeconds: secs}
}

// writeAPIError sends e as {"error":{...}} with the status its code maps to.
func writeAPIError(w http.ResponseWriter, e *agentapi.APIError) {
	if e.Code == agentapi.CodeRateLimited {
		retryAfterHeader(w, time.Duration(e.RetryAfterSeconds)*time.Second)
	}
	writeJSON(w, e.HTTPStatus(), e.Body())
}

// writeError sends err: an *agentapi.APIError as it is, anything else as an
// internal error (logged by the caller, never shown to the client).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *agentapi.APIError
	if errors.As(err, &e) {
		writeAPIError(w, e)
		return
	}
	s.cfg.Logger.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "error", err)
	writeAPIError(w, internalError())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", agentapi.ContentTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
