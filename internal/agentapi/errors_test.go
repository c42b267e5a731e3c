package agentapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/backapp/backapp/internal/agentapi"
)

func TestCodeHTTPStatus(t *testing.T) {
	want := map[agentapi.Code]int{
		"unauthorized":        http.StatusUnauthorized,
		"forbidden":           http.StatusForbidden,
		"not_found":           http.StatusNotFound,
		"invalid_request":     http.StatusBadRequest,
		"method_not_allowed":  http.StatusMethodNotAllowed,
		"conflict":            http.StatusConflict,
		"payload_too_large":   http.StatusRequestEntityTooLarge,
		"rate_limited":        http.StatusTooManyRequests,
		"upload_failed":       http.StatusBadGateway,
		"verification_failed": http.StatusUnprocessableEntity,
		"internal":            http.StatusInternalServerError,
	}
	codes := agentapi.Codes()
	if len(codes) != len(want) {
		t.Fatalf("Codes() has %d codes, the table here %d: a code was added or dropped", len(codes), len(want))
	}
	for _, c := range codes {
		status, ok := want[c]
		if !ok {
			t.Errorf("code %q is not in the expected table", c)
			continue
		}
		if got := c.HTTPStatus(); got != status {
			t.Errorf("%s.HTTPStatus() = %d, want %d", c, got, status)
		}
		if !c.Valid() {
			t.Errorf("%s.Valid() = false", c)
		}
		if e := agentapi.NewError(c, "m"); e.HTTPStatus() != status {
			t.Errorf("APIError{%s}.HTTPStatus() = %d, want %d", c, e.HTTPStatus(), status)
		}
	}
	for _, unknown := range []agentapi.Code{"", "Not_Found", "teapot"} {
		if unknown.Valid() {
			t.Errorf("%q.Valid() = true", unknown)
		}
		if got := unknown.HTTPStatus(); got != http.StatusInternalServerError {
			t.Errorf("%q.HTTPStatus() = %d, want 500", unknown, got)
		}
	}
}

func TestAPIError(t *testing.T) {
	e := agentapi.NewError(agentapi.CodeNotFound, "run %s not found", "daily-1")
	if e.Error() != "not_found: run daily-1 not found" {
		t.Errorf("Error() = %q", e.Error())
	}
	if body := e.Body(); body.Error != *e {
		t.Errorf("Body() = %+v", body)
	}

	wrapped := fmt.Errorf("while completing the upload: %w", agentapi.NewError(agentapi.CodeUploadFailed, "part 3 missing"))
	tests := []struct {
		name string
		err  error
		want agentapi.Code
	}{
		{"nil", nil, ""},
		{"APIError", e, agentapi.CodeNotFound},
		{"wrapped APIError", wrapped, agentapi.CodeUploadFailed},
		{"plain error", errors.New("database is down"), agentapi.CodeInternal},
	}
	for _, tt := range tests {
		if got := agentapi.CodeOf(tt.err); got != tt.want {
			t.Errorf("%s: CodeOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}
