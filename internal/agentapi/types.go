package agentapi

import (
	"time"

	"github.com/backapp/backapp/internal/apikey"
)

// Enumerations on the wire. Values are lower case, as in the seeds; the
// server maps them to and from the CRDs' values.

// AgentStatus is an agent's state as the server sees it.
type AgentStatus string

const (
	// AgentStatusPending: registered, no heartbeat yet.
	AgentStatusPending AgentStatus = "pending"
	// AgentStatusOnline: heartbeats arrive.
	AgentStatusOnline AgentStatus = "online"
	// AgentStatusOffline: no heartbeat for 5 minutes.
	AgentStatusOffline AgentStatus = "offline"
	// AgentStatusDisabled: the agent's owner disabled it; its key is refused.
	AgentStatusDisabled AgentStatus = "disabled"
	// AgentStatusError: the agent reported a problem that stops it working.
	AgentStatusError AgentStatus = "error"
)

// BackupType says how much a run stores.
type BackupType string

const (
	// BackupTypeFull stores every selected file.
	BackupTypeFull BackupType = "full"
	// BackupTypeIncremental stores the files changed since the last
	// successful run.
	BackupTypeIncremental BackupType = "incremental"
)

// CompressionAlgorithm is how the archive is compressed.
type CompressionAlgorithm string

const (
	// CompressionGzip writes .tar.gz.
	CompressionGzip CompressionAlgorithm = "gzip"
	// CompressionZstd writes .tar.zst.
	CompressionZstd CompressionAlgorithm = "zstd"
	// CompressionNone writes .tar.
	CompressionNone CompressionAlgorithm = "none"
)

// RunTrigger is what started a run.
type RunTrigger string

const (
	// TriggerSchedule: the config's schedule.
	TriggerSchedule RunTrigger = "schedule"
	// TriggerManual: a user, from the dashboard or kubectl.
	TriggerManual RunTrigger = "manual"
	// TriggerAgent: the agent itself (`backapp-agent backup`).
	TriggerAgent RunTrigger = "agent"
)

// RunPhase is where a run is in its life.
type RunPhase string

const (
	// RunPending: created, not yet started by an agent.
	RunPending RunPhase = "pending"
	// RunRunning: an agent is archiving and uploading.
	RunRunning RunPhase = "running"
	// RunSucceeded: the archive is stored and the server verified it.
	RunSucceeded RunPhase = "succeeded"
	// RunFailed: the run ended without a verified archive.
	RunFailed RunPhase = "failed"
	// RunCancelled: the run was cancelled and its upload aborted.
	RunCancelled RunPhase = "cancelled"
)

// UploadMode is how the archive goes to object storage.
type UploadMode string

const (
	// UploadMultipart: parts of StartResponse.PartSize bytes (the last may
	// be smaller) to pre-signed UploadPart URLs, then backup/complete with
	// their ETags.
	UploadMultipart UploadMode = "multipart"
	// UploadSingle: the whole archive, at most StartResponse.PartSize
	// bytes, in one PUT to StartResponse.PutURL, then backup/complete
	// without parts.
	UploadSingle UploadMode = "single"
)

// CompleteStatus is how the agent's side of a run ended. The agent can only
// say it finished uploading ("completed"); the server decides whether the
// run Succeeded, after verifying the stored object.
type CompleteStatus string

const (
	// CompleteCompleted: every byte was uploaded; complete and verify.
	CompleteCompleted CompleteStatus = "completed"
	// CompleteFailed: the agent could not finish; abort the upload and
	// fail the run with Message.
	CompleteFailed CompleteStatus = "failed"
)

// LogLevel is the severity of an agent log line, as in the seeds.
type LogLevel string

const (
	// LogInfo is normal operation.
	LogInfo LogLevel = "info"
	// LogWarning is a problem that did not stop the work (a skipped file).
	LogWarning LogLevel = "warning"
	// LogError is a problem that stopped the work.
	LogError LogLevel = "error"
)

// --- register ---------------------------------------------------------

// RegisterRequest registers a new agent for the signed-in user.
type RegisterRequest struct {
	// name is the display name, for example "Ann's MacBook": 1 to
	// MaxNameLength bytes on one line.
	Name string `json:"name"`
	// platform is the agent's operating system as Go names it (darwin,
	// linux, windows), if known: up to MaxPlatformLength of a-z, 0-9, _.
	Platform string `json:"platform,omitempty"`
}

// RegisterResponse is the new agent and its API key, shown this once.
type RegisterResponse struct {
	// agent is the registered agent.
	Agent RegisteredAgent `json:"agent"`
}

// RegisteredAgent is a newly registered agent. Its APIKey is written in
// clear by encoding/json (that is its purpose) and redacted everywhere
// else: fmt through apikey.Key and slog through LogValue.
type RegisteredAgent struct {
	// id is the agent's id.
	ID string `json:"id"`
	// name is its display name.
	Name string `json:"name"`
	// apiKey is the agent's key. The server keeps only its hash: it can
	// never be shown again.
	APIKey apikey.Key `json:"apiKey"`
	// status is pending until the first heartbeat.
	Status AgentStatus `json:"status"`
}

// --- heartbeat --------------------------------------------------------

// HeartbeatRequest says the agent is alive and what it runs on.
type HeartbeatRequest struct {
	// version is the backapp-agent version (internal/version.Version):
	// 1 to MaxVersionLength printable ASCII characters.
	Version string `json:"version"`
	// platform is the operating system as Go names it (runtime.GOOS): 1 to
	// MaxPlatformLength of a-z, 0-9, _.
	Platform string `json:"platform"`
	// arch is the CPU architecture (runtime.GOARCH), same rules; optional.
	Arch string `json:"arch,omitempty"`
	// hostname is the machine's host name, up to MaxHostnameLength bytes
	// on one line; optional.
	Hostname string `json:"hostname,omitempty"`
}

// HeartbeatResponse tells the agent how the server sees it.
type HeartbeatResponse struct {
	// status is the agent's status after this heartbeat (online, or
	// disabled when its owner disabled it).
	Status AgentStatus `json:"status"`
	// pollIntervalSeconds is how long to wait, in seconds, before the next
	// heartbeat and due-runs poll (Agent.spec.pollIntervalSeconds).
	PollIntervalSeconds int32 `json:"pollIntervalSeconds"`
	// serverTime is the server's clock, so the agent can warn about skew
	// (pre-signed URLs fail when clocks differ by minutes).
	ServerTime time.Time `json:"serverTime"`
}

// --- configs ----------------------------------------------------------

// ConfigsResponse lists the configs assigned to the agent.
type ConfigsResponse struct {
	// configs are the agent's configs, suspended ones included.
	Configs []AgentConfig `json:"configs"`
}

// AgentConfig is the agent's view of a BackupConfig: what to read and how
// to archive it. Where the archive goes is the server's business (it hands
// out pre-signed URLs), so there is no destination.
type AgentConfig struct {
	// id identifies the config in StartRequest.configId.
	ID string `json:"id"`
	// name is the config's name for logs and the agent's CLI.
	Name string `json:"name"`
	// sources are the trees to back up.
	Sources []Source `json:"sources"`
	// options say how to archive.
	Options Options `json:"options"`
	// schedule summarises when runs are due; absent for configs that only
	// run by hand. The server decides when runs are due (PathRuns); this
	// is for display.
	Schedule *ScheduleSummary `json:"schedule,omitempty"`
	// suspended is true when scheduled runs are stopped.
	Suspended bool `json:"suspended,omitempty"`
}

// Source is one tree on the agent's machine.
type Source struct {
	// name labels the source inside the archive.
	Name string `json:"name,omitempty"`
	// path is the absolute path of a file or folder (~ for the home folder).
	Path string `json:"path"`
	// include are glob patterns (** for any depth), relative to path, of
	// the files to back up; empty means all.
	Include []string `json:"include,omitempty"`
	// exclude are glob patterns of files and folders to skip; exclude wins
	// over include.
	Exclude []string `json:"exclude,omitempty"`
}

// Options say how a run archives.
type Options struct {
	// type is full or incremental.
	Type BackupType `json:"type"`
	// compression is the algorithm and level.
	Compression Compression `json:"compression"`
	// encryption, when present, encrypts the archive to age recipients on
	// the agent.
	Encryption *Encryption `json:"encryption,omitempty"`
	// bandwidthLimitKiBps caps the upload rate in KiB per second; 0 means
	// unlimited.
	BandwidthLimitKiBps int64 `json:"bandwidthLimitKiBps,omitempty"`
	// progressDeadlineSeconds is how long, in seconds, the run may go
	// without a progress report before the server fails it; report well
	// within it (every third of it, say).
	ProgressDeadlineSeconds int32 `json:"progressDeadlineSeconds,omitempty"`
	// preHook runs before reading; its failure fails the run.
	PreHook *Hook `json:"preHook,omitempty"`
	// postHook runs after the upload, whatever its result.
	PostHook *Hook `json:"postHook,omitempty"`
}

// Compression is an algorithm and level.
type Compression struct {
	// algorithm is gzip, zstd or none.
	Algorithm CompressionAlgorithm `json:"algorithm"`
	// level is 1-9 for gzip, 1-22 for zstd; 0 means the algorithm's
	// default.
	Level int32 `json:"level,omitempty"`
}

// Encryption lists the age recipients an archive is encrypted to.
type Encryption struct {
	// recipients are age public keys (age1...).
	Recipients []string `json:"recipients"`
}

// Hook is a command run without a shell.
type Hook struct {
	// command is the program and its arguments.
	Command []string `json:"command"`
	// timeoutSeconds is how long, in seconds, it may run before it is
	// killed and counted as failed.
	TimeoutSeconds int32 `json:"timeoutSeconds"`
}

// ScheduleSummary is a config's schedule, for display.
type ScheduleSummary struct {
	// cron is the cron expression.
	Cron string `json:"cron"`
	// timeZone is the IANA zone the expression is read in.
	TimeZone string `json:"timeZone"`
	// nextRunTime is when the next scheduled run is due, if known.
	NextRunTime time.Time `json:"nextRunTime,omitzero"`
	// lastRunTime is when the last scheduled run was due, if any.
	LastRunTime time.Time `json:"lastRunTime,omitzero"`
}

// --- runs -------------------------------------------------------------

// RunsResponse lists the runs due on the agent now.
type RunsResponse struct {
	// runs are due runs, oldest first.
	Runs []DueRun `json:"runs"`
}

// DueRun is a pending run the agent should start with StartRequest.runId.
type DueRun struct {
	// runId identifies the run.
	RunID string `json:"runId"`
	// configId is the config it runs (see ConfigsResponse).
	ConfigID string `json:"configId"`
	// trigger is schedule or manual.
	Trigger RunTrigger `json:"trigger"`
	// scheduledTime is the schedule slot, for trigger schedule.
	ScheduledTime time.Time `json:"scheduledTime,omitzero"`
}

// --- backup/start -----------------------------------------------------

// StartRequest starts a run: a due run by runId, or a new one of configId
// (trigger agent). Exactly one of the two is set. Starting the same run
// again while it is Running returns it again (the agent may have lost the
// first response).
type StartRequest struct {
	// configId starts a new run of this config.
	ConfigID string `json:"configId,omitempty"`
	// runId starts this due run.
	RunID string `json:"runId,omitempty"`
	// sizeHint is the expected archive size in bytes, if the agent can
	// tell; it lets the server choose a single PUT for small archives and
	// a part size that keeps large ones under MaxPartNumber parts. 0 means
	// unknown.
	SizeHint int64 `json:"sizeHint,omitempty"`
}

// StartResponse is where to upload the run's archive. There is no upload
// id: the server keeps it, so the agent cannot touch other uploads.
type StartResponse struct {
	// runId is the run now Running.
	RunID string `json:"runId"`
	// key is the object key the archive is stored under.
	Key string `json:"key"`
	// mode is multipart or single.
	Mode UploadMode `json:"mode"`
	// partSize is, for multipart, the size in bytes of every part but the
	// last; for single, the largest archive the PUT URL may carry (a
	// larger archive aborts and starts again with a sizeHint).
	PartSize int64 `json:"partSize"`
	// parts are, for multipart, the first part URLs (at most
	// MaxPartsPerRequest); ask PathBackupParts for more.
	Parts []PartURL `json:"parts,omitempty"`
	// putUrl is, for single, the pre-signed PUT URL.
	PutURL PresignedURL `json:"putUrl,omitempty"`
	// expiresAt is when the URLs in this response stop working.
	ExpiresAt time.Time `json:"expiresAt"`
}

// PartURL is a pre-signed UploadPart URL for one part.
type PartURL struct {
	// partNumber is the part's number, 1 to MaxPartNumber.
	PartNumber int `json:"partNumber"`
	// url is the pre-signed PUT URL for that part.
	URL PresignedURL `json:"url"`
}

// --- backup/parts -----------------------------------------------------

// PartsRequest asks for pre-signed URLs for more parts, or again for parts
// whose URLs expired before a retry.
type PartsRequest struct {
	// runId is the Running run.
	RunID string `json:"runId"`
	// partNumbers are the parts wanted: 1 to MaxPartsPerRequest numbers in
	// 1..MaxPartNumber, ascending, without repeats.
	PartNumbers []int `json:"partNumbers"`
}

// PartsResponse hands out the URLs asked for.
type PartsResponse struct {
	// runId is the run.
	RunID string `json:"runId"`
	// parts are the URLs, in the order asked for.
	Parts []PartURL `json:"parts"`
	// expiresAt is when these URLs stop working.
	ExpiresAt time.Time `json:"expiresAt"`
}

// --- backup/progress --------------------------------------------------

// ProgressRequest reports how far a run got; totals so far, not deltas, so
// a lost or repeated report does no harm.
type ProgressRequest struct {
	// runId is the Running run.
	RunID string `json:"runId"`
	// filesProcessed is how many files were archived so far.
	FilesProcessed int64 `json:"filesProcessed"`
	// filesSkipped is how many files were skipped so far.
	FilesSkipped int64 `json:"filesSkipped"`
	// bytesTotal is the size in bytes of the selected files, 0 while
	// unknown.
	BytesTotal int64 `json:"bytesTotal,omitempty"`
	// bytesTransferred is how many archive bytes were uploaded so far.
	BytesTransferred int64 `json:"bytesTransferred"`
	// progress is the estimated share done, in percent (0-100).
	Progress int32 `json:"progress"`
}

// ProgressResponse tells the agent whether to go on.
type ProgressResponse struct {
	// cancel is true when the run was cancelled: stop and send
	// backup/abort.
	Cancel bool `json:"cancel"`
}

// --- backup/complete --------------------------------------------------

// CompleteRequest ends the agent's side of a run. With status completed the
// server completes the multipart upload, checks the stored object's size
// (and checksum where the store offers one) against size and sha256, and
// only then marks the run Succeeded. With status failed it aborts the
// upload and marks the run Failed with message.
type CompleteRequest struct {
	// runId is the Running run.
	RunID string `json:"runId"`
	// status is completed or failed.
	Status CompleteStatus `json:"status"`
	// message says why the run failed (required with status failed) or
	// adds a note; up to MaxErrorMessageBytes.
	Message string `json:"message,omitempty"`
	// parts are, for a multipart upload with status completed, every part
	// uploaded: ascending, without repeats or gaps.
	Parts []CompletedPart `json:"parts,omitempty"`
	// size is the archive's size in bytes as uploaded.
	Size int64 `json:"size"`
	// sha256 is the lower-case hex SHA-256 of the archive's bytes as
	// uploaded (after compression and encryption); required with status
	// completed.
	SHA256 string `json:"sha256,omitempty"`
	// filesProcessed is how many files were archived.
	FilesProcessed int64 `json:"filesProcessed"`
	// filesSkipped is how many files were skipped.
	FilesSkipped int64 `json:"filesSkipped"`
	// bytesTransferred is how many bytes were sent to object storage,
	// retries included.
	BytesTransferred int64 `json:"bytesTransferred"`
	// durationMs is how long the run took on the agent, in milliseconds.
	DurationMs int64 `json:"durationMs"`
	// errors are the first problems met, at most MaxErrorsPerComplete.
	Errors []RunError `json:"errors,omitempty"`
	// errorCount is how many problems were met in all (at least
	// len(errors)).
	ErrorCount int64 `json:"errorCount,omitempty"`
}

// CompletedPart is an uploaded part.
type CompletedPart struct {
	// partNumber is the part's number.
	PartNumber int `json:"partNumber"`
	// etag is the ETag header object storage returned for the part, quotes
	// included.
	ETag string `json:"etag"`
}

// RunError is one problem met during a run.
type RunError struct {
	// path is the file the problem is about, if any (MaxPathBytes).
	Path string `json:"path,omitempty"`
	// message says what went wrong (MaxErrorMessageBytes).
	Message string `json:"message"`
}

// CompleteResponse is the run's outcome.
type CompleteResponse struct {
	// runId is the run.
	RunID string `json:"runId"`
	// phase is succeeded, or failed when the agent reported a failure.
	// (Verification failures are errors: upload_failed or
	// verification_failed.)
	Phase RunPhase `json:"phase"`
	// message summarises the outcome.
	Message string `json:"message,omitempty"`
}

// --- backup/abort -----------------------------------------------------

// AbortRequest stops a run before it has a result: the run was cancelled
// (ProgressResponse.cancel), the agent is shutting down, or a source
// vanished. The server aborts the upload and marks the run Cancelled (if
// it was cancelled) or Failed with reason.
type AbortRequest struct {
	// runId is the run.
	RunID string `json:"runId"`
	// reason says why, up to MaxErrorMessageBytes.
	Reason string `json:"reason,omitempty"`
}

// AbortResponse is the run's final phase.
type AbortResponse struct {
	// runId is the run.
	RunID string `json:"runId"`
	// phase is failed or cancelled.
	Phase RunPhase `json:"phase"`
}

// --- log --------------------------------------------------------------

// LogRequest is one log line from the agent, kept by the server for the
// dashboard.
type LogRequest struct {
	// level is info, warning or error.
	Level LogLevel `json:"level"`
	// message is the line, 1 to MaxLogMessageBytes bytes.
	Message string `json:"message"`
	// metadata is extra context: at most MaxLogMetadataKeys keys of
	// a-z, A-Z, 0-9, _, ., - (up to MaxLogMetadataKeyLength), each with a
	// string (up to MaxLogMetadataValueBytes), number, boolean or null.
	// Decode reads numbers as json.Number, so large integers survive.
	Metadata map[string]any `json:"metadata,omitempty"`
	// runId is the run the line is about, if any.
	RunID string `json:"runId,omitempty"`
	// time is when the agent logged the line; the server's receive time
	// when absent.
	Time time.Time `json:"time,omitzero"`
}

// --- download ---------------------------------------------------------

// DownloadRequest asks for a run's archive, for a restore. It travels in
// the query string (Query, ParseDownloadQuery), not a body.
type DownloadRequest struct {
	// runId is a Succeeded run of one of the agent's configs.
	RunID string `json:"runId"`
}

// DownloadResponse is where to fetch the archive and how to check it.
type DownloadResponse struct {
	// runId is the run.
	RunID string `json:"runId"`
	// url is a pre-signed GET URL for the archive, valid at most an hour.
	URL PresignedURL `json:"url"`
	// expiresAt is when url stops working.
	ExpiresAt time.Time `json:"expiresAt"`
	// key is the object key.
	Key string `json:"key"`
	// size is the archive's size in bytes.
	Size int64 `json:"size"`
	// sha256 is the archive's lower-case hex SHA-256, to verify the
	// download.
	SHA256 string `json:"sha256"`
	// compression is how the archive is compressed.
	Compression CompressionAlgorithm `json:"compression"`
	// encrypted is true when the archive is age-encrypted.
	Encrypted bool `json:"encrypted,omitempty"`
}
