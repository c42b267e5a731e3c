package agentapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is the stable, machine-readable kind of an agent API error. The set
// is closed: clients switch on it, so a new kind needs a new constant here
// and a row in HTTPStatus.
type Code string

const (
	// CodeUnauthorized: the API key (or, for register, the session) is
	// missing, malformed, unknown or revoked. Retrying with the same key
	// cannot help.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden: the key is valid but may not do this: the agent is
	// disabled, or the config or run belongs to another agent.
	CodeForbidden Code = "forbidden"
	// CodeNotFound: the config or run does not exist (for this agent).
	CodeNotFound Code = "not_found"
	// CodeInvalidRequest: the body or query is not valid JSON of the
	// expected shape or fails validation; the message names the field.
	CodeInvalidRequest Code = "invalid_request"
	// CodeMethodNotAllowed: the endpoint exists but not with this HTTP
	// method (the Allow header names the right one).
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeConflict: the run is not in a state that allows the request,
	// for example it already finished, was cancelled or is claimed by
	// another agent.
	CodeConflict Code = "conflict"
	// CodePayloadTooLarge: the body exceeds the endpoint's limit.
	CodePayloadTooLarge Code = "payload_too_large"
	// CodeRateLimited: too many requests; retry after RetryAfterSeconds.
	CodeRateLimited Code = "rate_limited"
	// CodeUploadFailed: object storage refused to complete the upload
	// (a part missing or with the wrong ETag, the upload expired, a storage
	// error). The run is marked Failed.
	CodeUploadFailed Code = "upload_failed"
	// CodeVerificationFailed: the stored object does not match the size or
	// checksum the agent reported. The run is marked Failed.
	CodeVerificationFailed Code = "verification_failed"
	// CodeInternal: the server failed; retry later with backoff.
	CodeInternal Code = "internal"
)

// Codes lists every code, in a new slice on every call.
func Codes() []Code {
	return []Code{
		CodeUnauthorized, CodeForbidden, CodeNotFound, CodeInvalidRequest, CodeMethodNotAllowed, CodeConflict,
		CodePayloadTooLarge, CodeRateLimited, CodeUploadFailed, CodeVerificationFailed, CodeInternal,
	}
}

// HTTPStatus is the HTTP status a response with this code carries: the one
// table mapping codes to statuses. An unknown code is a server bug, hence
// 500.
func (c Code) HTTPStatus() int {
	switch c {
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeInvalidRequest:
		return http.StatusBadRequest
	case CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case CodeConflict:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeUploadFailed:
		// The server acted as a gateway to object storage, which failed.
		return http.StatusBadGateway
	case CodeVerificationFailed:
		// The request was well formed; what it describes did not match
		// what was stored.
		return http.StatusUnprocessableEntity
	default:
		return http.StatusInternalServerError
	}
}

// Valid reports whether c is one of Codes.
func (c Code) Valid() bool {
	for _, known := range Codes() {
		if c == known {
			return true
		}
	}
	return false
}

// ErrorBody is the JSON body of every error response:
// {"error":{"code":"not_found","message":"..."}}.
type ErrorBody struct {
	// error is the error.
	Error APIError `json:"error"`
}

// APIError is an agent API error: what the server sends and what the
// agent's client returns. Its message is for people and never contains a
// secret or an echo of request values.
type APIError struct {
	// code is the stable kind of error.
	Code Code `json:"code"`
	// message says, in one line, what went wrong.
	Message string `json:"message"`
	// retryAfterSeconds, with rate_limited, is how long to wait before
	// retrying, in seconds (also sent as the Retry-After header).
	RetryAfterSeconds int `json:"retryAfterSeconds,omitempty"`
}

// NewError makes an APIError with a formatted message. Format only values
// that are safe to show: never keys, URLs or raw request input.
func NewError(code Code, format string, args ...any) *APIError {
	return &APIError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error is "code: message".
func (e *APIError) Error() string {
	return string(e.Code) + ": " + e.Message
}

// HTTPStatus is the status of the error's code.
func (e *APIError) HTTPStatus() int { return e.Code.HTTPStatus() }

// Body wraps the error in the response envelope.
func (e *APIError) Body() ErrorBody { return ErrorBody{Error: *e} }

// CodeOf is the code of the first APIError in err's chain, CodeInternal
// when there is none (an unexpected error is the server's fault), and ""
// for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code
	}
	return CodeInternal
}

var _ error = (*APIError)(nil)
