package agentapi

import "net/http"

// Paths of the agent API. Every endpoint but PathRegister authenticates with
// HeaderAPIKey; PathRegister needs a user session (the dashboard calls it).
const (
	// BasePath is the prefix of every agent endpoint.
	BasePath = "/api/agent"

	// PathRegister: POST RegisterRequest -> RegisterResponse.
	PathRegister = BasePath + "/register"
	// PathHeartbeat: POST HeartbeatRequest -> HeartbeatResponse.
	PathHeartbeat = BasePath + "/heartbeat"
	// PathConfigs: GET -> ConfigsResponse, the configs assigned to the agent.
	PathConfigs = BasePath + "/configs"
	// PathRuns: GET -> RunsResponse, the runs due on the agent now.
	PathRuns = BasePath + "/runs"
	// PathBackupStart: POST StartRequest -> StartResponse.
	PathBackupStart = BasePath + "/backup/start"
	// PathBackupParts: POST PartsRequest -> PartsResponse, more part URLs.
	PathBackupParts = BasePath + "/backup/parts"
	// PathBackupProgress: POST ProgressRequest -> ProgressResponse.
	PathBackupProgress = BasePath + "/backup/progress"
	// PathBackupComplete: POST CompleteRequest -> CompleteResponse.
	PathBackupComplete = BasePath + "/backup/complete"
	// PathBackupAbort: POST AbortRequest -> AbortResponse.
	PathBackupAbort = BasePath + "/backup/abort"
	// PathLog: POST LogRequest -> 204 No Content.
	PathLog = BasePath + "/log"
	// PathDownload: GET ?runId=... (DownloadRequest.Query) -> DownloadResponse.
	PathDownload = BasePath + "/download"
)

const (
	// HeaderAPIKey carries the agent's API key (apikey.Key) on every
	// request but register.
	HeaderAPIKey = "X-Agent-API-Key"

	// ContentTypeJSON is the media type of every request and response body.
	ContentTypeJSON = "application/json"

	// QueryRunID is the query parameter of PathDownload.
	QueryRunID = "runId"
)

// Request body limits in bytes, per endpoint. Each is at least the size of
// the largest request Validate accepts, with every string made of the
// characters encoding/json escapes to six bytes (a test checks this), so
// no valid request is ever refused as too large.
const (
	MaxRegisterBodyBytes       = 4 << 10
	MaxHeartbeatBodyBytes      = 8 << 10
	MaxBackupStartBodyBytes    = 4 << 10
	MaxBackupPartsBodyBytes    = 4 << 10
	MaxBackupProgressBodyBytes = 4 << 10
	MaxBackupCompleteBodyBytes = 6 << 20
	MaxBackupAbortBodyBytes    = 16 << 10
	MaxLogBodyBytes            = 256 << 10
)

// Field limits enforced by Validate. Lengths are in bytes of UTF-8.
const (
	// MaxIDLength bounds configId and runId: Kubernetes object names and
	// UIDs both fit.
	MaxIDLength = 253
	// MaxNameLength bounds an agent's display name (Agent.spec.displayName).
	MaxNameLength = 128
	// MaxVersionLength bounds the agent version (Agent.status.version).
	MaxVersionLength = 64
	// MaxPlatformLength bounds platform and arch (Agent.status.platform).
	MaxPlatformLength = 32
	// MaxHostnameLength bounds the host name (a DNS name).
	MaxHostnameLength = 253

	// MaxLogMessageBytes bounds a log message.
	MaxLogMessageBytes = 4096
	// MaxLogMetadataKeys bounds how many metadata entries a log line has.
	MaxLogMetadataKeys = 32
	// MaxLogMetadataKeyLength bounds a metadata key.
	MaxLogMetadataKeyLength = 64
	// MaxLogMetadataValueBytes bounds a string metadata value.
	MaxLogMetadataValueBytes = 1024

	// MaxErrorsPerComplete bounds the errors listed in a CompleteRequest,
	// as BackupRun.status.errors does; errorCount counts the rest.
	MaxErrorsPerComplete = 50
	// MaxErrorMessageBytes bounds a RunError message and other free-text
	// reasons (BackupRun.status.errors[].message).
	MaxErrorMessageBytes = 1024
	// MaxPathBytes bounds a file path in a RunError.
	MaxPathBytes = 4096

	// MaxPartsPerRequest bounds the part URLs asked for (and handed out)
	// in one PartsRequest or StartResponse.
	MaxPartsPerRequest = 100
	// MaxPartNumber is the highest S3 multipart part number, so also the
	// most parts a CompleteRequest lists.
	MaxPartNumber = 10000
	// MaxETagLength bounds a part's ETag (S3 sends a quoted MD5: 34 bytes).
	MaxETagLength = 128
)

// Endpoint describes one route of the agent API, for the server's router
// and the client: the method, path, body limit and how it authenticates.
type Endpoint struct {
	// Method is the HTTP method.
	Method string
	// Path is the URL path.
	Path string
	// MaxBodyBytes is the request body limit; 0 for a request without a
	// body (GET).
	MaxBodyBytes int64
	// Session is true for the one endpoint that needs a user session
	// instead of an API key (register).
	Session bool
}

// Pattern is the endpoint as a net/http ServeMux pattern, "POST /api/agent/log".
func (e Endpoint) Pattern() string { return e.Method + " " + e.Path }

// Endpoints lists every agent endpoint. It returns a new slice on every
// call, so callers may keep or change it.
func Endpoints() []Endpoint {
	return []Endpoint{
		{Method: http.MethodPost, Path: PathRegister, MaxBodyBytes: MaxRegisterBodyBytes, Session: true},
		{Method: http.MethodPost, Path: PathHeartbeat, MaxBodyBytes: MaxHeartbeatBodyBytes},
		{Method: http.MethodGet, Path: PathConfigs},
		{Method: http.MethodGet, Path: PathRuns},
		{Method: http.MethodPost, Path: PathBackupStart, MaxBodyBytes: MaxBackupStartBodyBytes},
		{Method: http.MethodPost, Path: PathBackupParts, MaxBodyBytes: MaxBackupPartsBodyBytes},
		{Method: http.MethodPost, Path: PathBackupProgress, MaxBodyBytes: MaxBackupProgressBodyBytes},
		{Method: http.MethodPost, Path: PathBackupComplete, MaxBodyBytes: MaxBackupCompleteBodyBytes},
		{Method: http.MethodPost, Path: PathBackupAbort, MaxBodyBytes: MaxBackupAbortBodyBytes},
		{Method: http.MethodPost, Path: PathLog, MaxBodyBytes: MaxLogBodyBytes},
		{Method: http.MethodGet, Path: PathDownload},
	}
}
