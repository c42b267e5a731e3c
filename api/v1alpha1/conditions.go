package v1alpha1

// Condition types. Every kind uses metav1.Condition with one of these.
const (
	// ConditionReady: the object can do its job (a config can run, an agent
	// is online and enabled, a run finished successfully).
	ConditionReady = "Ready"
	// ConditionInvalidSpec: the spec has a mistake only the user can fix;
	// the message says which. The manager does not retry until it changes.
	ConditionInvalidSpec = "InvalidSpec"
	// ConditionOnline (Agent): a heartbeat arrived within the threshold.
	ConditionOnline = "Online"
	// ConditionVerified (BackupRun): the stored object's size and checksum
	// were checked by the server.
	ConditionVerified = "Verified"
)

// Condition reasons, CamelCase as metav1.Condition requires.
const (
	// Ready / InvalidSpec on BackupConfig.
	ReasonValid           = "Valid"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonUnknownTimeZone = "UnknownTimeZone"
	ReasonAgentNotFound   = "AgentNotFound"
	ReasonPVCNotFound     = "PVCNotFound"
	ReasonSecretNotFound  = "SecretNotFound"
	ReasonSuspended       = "Suspended"

	// Online / Ready on Agent.
	ReasonNeverSeen         = "NeverSeen"
	ReasonHeartbeatReceived = "HeartbeatReceived"
	ReasonHeartbeatMissed   = "HeartbeatMissed"
	ReasonAgentDisabled     = "AgentDisabled"

	// Verified / Ready on BackupRun.
	ReasonObjectVerified        = "ObjectVerified"
	ReasonSizeMismatch          = "SizeMismatch"
	ReasonChecksumMismatch      = "ChecksumMismatch"
	ReasonUploadFailed          = "UploadFailed"
	ReasonAgentOffline          = "AgentOffline"
	ReasonAgentStoppedReporting = "AgentStoppedReporting"
	ReasonJobFailed             = "JobFailed"
	ReasonCancelled             = "Cancelled"
	ReasonDeadlineExceeded      = "DeadlineExceeded"
	ReasonInProgress            = "InProgress"
)

// Annotations the manager acts on.
const (
	// AnnotationRunNow on a BackupConfig asks for one manual run; set it to
	// a new value (a timestamp, a UUID) for each request. The value handled
	// last is kept in status.lastRunNowRequest.
	AnnotationRunNow = "backapp.io/run-now"
	// AnnotationCancel on a BackupRun is the same as spec.cancel: true.
	AnnotationCancel = "backapp.io/cancel"
)
