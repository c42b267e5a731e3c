package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ExecutionMode says where a backup runs.
// +kubebuilder:validation:Enum=Server;Agent
type ExecutionMode string

const (
	// ExecutionModeServer runs the backup in the cluster as a Job that
	// mounts PersistentVolumeClaims.
	ExecutionModeServer ExecutionMode = "Server"
	// ExecutionModeAgent runs the backup on a registered backapp-agent,
	// reading paths on the agent's machine.
	ExecutionModeAgent ExecutionMode = "Agent"
)

// ConcurrencyPolicy says what happens when a run is due while an earlier run
// of the same config is still active.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	// ConcurrencyAllow starts the new run beside the active one.
	ConcurrencyAllow ConcurrencyPolicy = "Allow"
	// ConcurrencyForbid skips the new run while one is active.
	ConcurrencyForbid ConcurrencyPolicy = "Forbid"
	// ConcurrencyReplace cancels the active run and starts the new one.
	ConcurrencyReplace ConcurrencyPolicy = "Replace"
)

// BackupType says how much each run stores.
// +kubebuilder:validation:Enum=Full;Incremental
type BackupType string

const (
	// BackupTypeFull stores every selected file on every run.
	BackupTypeFull BackupType = "Full"
	// BackupTypeIncremental stores only the files changed since the last
	// successful run (a full backup when there is none).
	BackupTypeIncremental BackupType = "Incremental"
)

// CompressionAlgorithm names how archives are compressed.
// +kubebuilder:validation:Enum=gzip;zstd;none
type CompressionAlgorithm string

const (
	// CompressionGzip writes .tar.gz archives that plain `tar xzf` restores.
	CompressionGzip CompressionAlgorithm = "gzip"
	// CompressionZstd writes .tar.zst archives: faster and smaller than gzip.
	CompressionZstd CompressionAlgorithm = "zstd"
	// CompressionNone writes plain .tar archives.
	CompressionNone CompressionAlgorithm = "none"
)

// BackupConfigSpec is what to back up, where to and when.
//
// +kubebuilder:validation:XValidation:rule="self.executionMode != 'Agent' || has(self.agentRef)",message="agentRef is required when executionMode is Agent"
// +kubebuilder:validation:XValidation:rule="self.executionMode != 'Server' || !has(self.agentRef)",message="agentRef must not be set when executionMode is Server"
// +kubebuilder:validation:XValidation:rule="self.executionMode != 'Agent' || self.sources.all(s, has(s.path) && !has(s.persistentVolumeClaim))",message="in Agent mode every source must have a path on the agent's machine and no persistentVolumeClaim"
// +kubebuilder:validation:XValidation:rule="self.executionMode != 'Server' || self.sources.all(s, has(s.persistentVolumeClaim) && !has(s.path))",message="in Server mode every source must have a persistentVolumeClaim and no path (use persistentVolumeClaim.path for a folder inside the volume)"
// +kubebuilder:validation:XValidation:rule="self.executionMode == 'Server' || !has(self.job)",message="job options apply only when executionMode is Server"
type BackupConfigSpec struct {
	// executionMode is where the backup runs: Server (a Job in the cluster
	// that mounts PersistentVolumeClaims) or Agent (the backapp-agent named
	// by agentRef, reading paths on its machine). Default: Server.
	// +optional
	// +kubebuilder:default=Server
	ExecutionMode ExecutionMode `json:"executionMode,omitempty"`

	// agentRef names the Agent, in this namespace, that runs this config.
	// Required when executionMode is Agent; not allowed when it is Server.
	// +optional
	AgentRef *LocalObjectReference `json:"agentRef,omitempty"`

	// sources lists what to back up: 1 to 32 entries. In Agent mode each
	// has a path; in Server mode each has a persistentVolumeClaim.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Sources []BackupSource `json:"sources"`

	// destination is the S3 bucket (or S3-compatible store) the archives
	// are written to.
	// +required
	Destination Destination `json:"destination"`

	// schedule says when runs start. Without a schedule the config only
	// runs when triggered by hand (the backapp.io/run-now annotation or
	// the dashboard).
	// +optional
	Schedule *Schedule `json:"schedule,omitempty"`

	// options tune how each run archives, compresses, encrypts and keeps
	// its data. Default: a full gzip backup kept forever.
	// +optional
	// +kubebuilder:default={}
	Options BackupOptions `json:"options,omitempty"`

	// job tunes the Kubernetes Job of a Server-mode run: resources,
	// deadline and retries. Only for executionMode Server.
	// +optional
	Job *JobOptions `json:"job,omitempty"`

	// suspend, when true, stops new scheduled runs; runs already started
	// finish, and manual runs are still accepted. Default: false.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// successfulRunsHistoryLimit is how many finished successful
	// BackupRun objects to keep (their history stays in the reporting
	// database). It never deletes archives: when options.retention is set,
	// successful runs stay until retention deletes them with their
	// archives, and this limit applies only to runs whose archive is gone.
	// Default: 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	SuccessfulRunsHistoryLimit *int32 `json:"successfulRunsHistoryLimit,omitempty"`

	// failedRunsHistoryLimit is how many failed or cancelled BackupRun
	// objects to keep. Default: 3.
	// +optional
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	FailedRunsHistoryLimit *int32 `json:"failedRunsHistoryLimit,omitempty"`
}

// BackupSource is one tree to back up.
type BackupSource struct {
	// name is a short label for this source, used in archive paths and the
	// dashboard. Optional; defaults to the last element of the path or the
	// claim name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Name string `json:"name,omitempty"`

	// path is, in Agent mode, the absolute path of a file or folder on the
	// agent's machine: /home/ann/Documents, ~/Documents, C:\Users\ann or
	// \\server\share. Not allowed in Server mode. At most 4096 characters.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule=`self.startsWith('/') || self == '~' || self.startsWith('~/') || self.matches('^[A-Za-z]:[/\\\\]') || self.startsWith('\\\\')`,message="path must be absolute: /..., ~/..., C:\\... or \\\\server\\share"
	Path string `json:"path,omitempty"`

	// persistentVolumeClaim is, in Server mode, the volume to read. Not
	// allowed in Agent mode.
	// +optional
	PersistentVolumeClaim *PVCSource `json:"persistentVolumeClaim,omitempty"`

	// include lists glob patterns (with ** for any number of folders),
	// relative to the source root, of the files to back up. Empty: all
	// files. At most 64 patterns of at most 1024 characters.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	Include []string `json:"include,omitempty"`

	// exclude lists glob patterns (with **), relative to the source root,
	// of files and folders to skip; exclude wins over include. At most 64
	// patterns of at most 1024 characters.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=1024
	// +listType=atomic
	Exclude []string `json:"exclude,omitempty"`
}

// PVCSource is a PersistentVolumeClaim, in the config's namespace, mounted
// read-only by the run's Job.
type PVCSource struct {
	// claimName is the name of the PersistentVolumeClaim.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	ClaimName string `json:"claimName"`

	// path is the folder inside the volume to back up, relative to the
	// volume root, without ".." segments. Default: the whole volume.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule=`!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')`,message="persistentVolumeClaim.path must be relative to the volume root and must not contain '..'"
	Path string `json:"path,omitempty"`
}

// Destination is where archives are stored.
type Destination struct {
	// bucket is the S3 bucket name (3 to 63 lowercase letters, digits,
	// dots and hyphens).
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	Bucket string `json:"bucket"`

	// region is the bucket's region, for example eu-west-1. Default: the
	// server's default region (us-east-1 unless configured).
	// +optional
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[a-z0-9-]+$`
	Region string `json:"region,omitempty"`

	// endpoint is the base URL of an S3-compatible store (MinIO, Ceph,
	// Wasabi ...), for example https://minio.example.com:9000. Default: AWS
	// S3.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getEscapedPath() in ['', '/']",message="endpoint must be an http or https URL without a path, e.g. https://minio.example.com:9000"
	Endpoint string `json:"endpoint,omitempty"`

	// forcePathStyle addresses the bucket as endpoint/bucket instead of
	// bucket.endpoint; most S3-compatible stores need it. Default: false.
	// +optional
	ForcePathStyle bool `json:"forcePathStyle,omitempty"`

	// prefix is prepended to every object key (for example "team-a/"),
	// relative, without ".." segments, at most 512 characters. Default: none.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule=`!self.startsWith('/') && !self.matches('(^|/)[.][.](/|$)')`,message="prefix must be relative and must not contain '..' segments"
	Prefix string `json:"prefix,omitempty"`

	// credentialsSecretRef names a Secret in this namespace with the keys
	// accessKeyID and secretAccessKey (and optionally sessionToken). Only
	// the BackApp server reads it; agents never see these credentials.
	// Default: the server's own S3 credentials.
	// +optional
	CredentialsSecretRef *LocalObjectReference `json:"credentialsSecretRef,omitempty"`
}

// Schedule says when runs start.
type Schedule struct {
	// cron is a five-field cron expression (minute hour day-of-month month
	// day-of-week), or one of @yearly, @monthly, @weekly, @daily, @hourly,
	// or @every <duration> (for example @every 6h). At most 128 characters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.startsWith('@') ? self.matches('^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every ([0-9]+(ms|s|m|h))+)$') : self.matches('^[^ ]+( +[^ ]+){4}$')",message="cron must be five space-separated fields (minute hour day-of-month month day-of-week) or one of @yearly, @monthly, @weekly, @daily, @hourly, @every <duration>"
	Cron string `json:"cron"`

	// timeZone is the IANA time zone the cron expression is read in, for
	// example Europe/Berlin. Default: UTC.
	// +optional
	// +kubebuilder:default=UTC
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z][-A-Za-z0-9_+/]*$`
	TimeZone string `json:"timeZone,omitempty"`

	// startingDeadlineSeconds is how late, in seconds, a run may still
	// start after its scheduled time; a slot missed by more is skipped and
	// counted in status.missedRuns. Unset: no deadline (at most one
	// catch-up run is started for slots missed while the manager was down).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// concurrencyPolicy is what happens when a run is due while another
	// run of this config is active: Allow, Forbid (skip the new one) or
	// Replace (cancel the active one). Default: Forbid.
	// +optional
	// +kubebuilder:default=Forbid
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`
}

// BackupOptions tune what each run does with the data.
type BackupOptions struct {
	// type is Full (store everything every run) or Incremental (store the
	// files changed since the last successful run). Default: Full.
	// +optional
	// +kubebuilder:default=Full
	Type BackupType `json:"type,omitempty"`

	// compression is the archive compression. Default: gzip at level 6.
	// +optional
	// +kubebuilder:default={}
	Compression Compression `json:"compression,omitempty"`

	// encryption, when set, encrypts archives on the client to the given
	// age recipients before upload; the server never sees the plaintext.
	// Default: not encrypted (S3 server-side encryption still applies).
	// +optional
	Encryption *Encryption `json:"encryption,omitempty"`

	// retention says when stored archives and their runs are deleted.
	// Default: keep forever.
	// +optional
	Retention *Retention `json:"retention,omitempty"`

	// bandwidthLimitKiBps caps the upload rate in KiB per second. Unset
	// or 0: unlimited.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BandwidthLimitKiBps *int64 `json:"bandwidthLimitKiBps,omitempty"`

	// progressDeadlineSeconds is how long, in seconds, a running backup
	// may go without reporting progress before it is marked Failed
	// ("agent stopped reporting"). Default: 600.
	// +optional
	// +kubebuilder:default=600
	// +kubebuilder:validation:Minimum=30
	// +kubebuilder:validation:Maximum=86400
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`

	// preHook runs before the archive is read (for example a database
	// dump); if it fails, the run fails. Default: none.
	// +optional
	PreHook *Hook `json:"preHook,omitempty"`

	// postHook runs after the upload, whatever its result; its failure is
	// reported but does not fail a run that stored its archive. Default:
	// none.
	// +optional
	PostHook *Hook `json:"postHook,omitempty"`
}

// Compression is an archive compression algorithm and level.
//
// +kubebuilder:validation:XValidation:rule="!has(self.level) || self.algorithm != 'none'",message="compression.level must not be set when algorithm is none"
// +kubebuilder:validation:XValidation:rule="!has(self.level) || self.algorithm != 'gzip' || (self.level >= 1 && self.level <= 9)",message="gzip compression.level must be between 1 and 9"
// +kubebuilder:validation:XValidation:rule="!has(self.level) || self.algorithm != 'zstd' || (self.level >= 1 && self.level <= 22)",message="zstd compression.level must be between 1 and 22"
type Compression struct {
	// algorithm is gzip, zstd or none. Default: gzip.
	// +optional
	// +kubebuilder:default=gzip
	Algorithm CompressionAlgorithm `json:"algorithm,omitempty"`

	// level is the compression level: 1-9 for gzip, 1-22 for zstd, not
	// set for none. Default: 6 for gzip, 3 for zstd.
	// +optional
	Level *int32 `json:"level,omitempty"`
}

// Encryption is client-side encryption with age (https://age-encryption.org).
type Encryption struct {
	// recipients are the age public keys (age1...) that can decrypt the
	// archives: 1 to 16 of them. Keep the matching identities safe: without
	// one, the backups cannot be restored.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^age1[02-9ac-hj-np-z]{58}$`
	// +listType=set
	Recipients []string `json:"recipients"`
}

// Retention says which stored archives are deleted. A run is deleted, with
// its archive, when it is older than days, unless it is among the keepLast
// newest successful runs; the newest successful run is never deleted.
//
// +kubebuilder:validation:XValidation:rule="has(self.days) || has(self.keepLast)",message="retention needs days, keepLast or both"
type Retention struct {
	// days is the age, in days, after which runs and their archives are
	// deleted. Unset: no age limit.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=36500
	Days *int32 `json:"days,omitempty"`

	// keepLast is how many of the newest successful runs are kept whatever
	// their age. Unset: 1 (the newest successful run is always kept).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	KeepLast *int32 `json:"keepLast,omitempty"`
}

// Hook is a command run by the agent (or the run's Job) around a backup.
type Hook struct {
	// command is the program and its arguments, run without a shell: 1 to
	// 64 elements of at most 4096 characters.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	// +listType=atomic
	Command []string `json:"command"`

	// timeoutSeconds is how long, in seconds, the command may run before
	// it is killed and counted as failed. Default: 300.
	// +optional
	// +kubebuilder:default=300
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
}

// JobOptions tune the Job of a Server-mode run.
type JobOptions struct {
	// resources are the compute requests and limits of the backup
	// container. Default: requests of 100m CPU and 128Mi memory, a 1Gi
	// memory limit.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// activeDeadlineSeconds bounds, in seconds, how long the Job may run
	// before Kubernetes stops it and the run fails. Default: 86400 (a day).
	// +optional
	// +kubebuilder:validation:Minimum=60
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// backoffLimit is how many times a failed backup Pod is retried.
	// Default: 2.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// serviceAccountName is the ServiceAccount of the backup Pod. Default:
	// the namespace's default ServiceAccount.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// RunReference points at a BackupRun and what it last reported.
type RunReference struct {
	// name is the BackupRun's name.
	// +required
	Name string `json:"name"`

	// phase is the run's phase when this reference was recorded.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`

	// startTime is when the run started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the run finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// BackupConfigStatus is what the manager observed of a BackupConfig,
// rebuilt from its BackupRuns on every reconcile.
type BackupConfigStatus struct {
	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Ready and InvalidSpec (see the Condition* constants).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// lastScheduleTime is the scheduled time of the newest run started by
	// the schedule.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`

	// nextScheduleTime is when the next scheduled run is due; unset when
	// there is no schedule or the config is suspended.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`

	// lastRun is the newest run, whatever its result.
	// +optional
	LastRun *RunReference `json:"lastRun,omitempty"`

	// lastSuccessfulRun is the newest run that Succeeded.
	// +optional
	LastSuccessfulRun *RunReference `json:"lastSuccessfulRun,omitempty"`

	// active are the runs that are Pending or Running.
	// +optional
	// +listType=atomic
	Active []LocalObjectReference `json:"active,omitempty"`

	// missedRuns counts scheduled slots skipped because they were missed by
	// more than startingDeadlineSeconds or forbidden by concurrencyPolicy.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MissedRuns int64 `json:"missedRuns,omitempty"`

	// lastRunNowRequest is the value of the backapp.io/run-now annotation
	// that was last acted on, so a request is handled exactly once.
	// +optional
	LastRunNowRequest string `json:"lastRunNowRequest,omitempty"`
}

// BackupConfig is what to back up, where to and when: a set of sources on
// an agent's machine or in PersistentVolumeClaims, an S3 destination, a
// schedule and options.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bc;bcfg,categories=backapp
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.executionMode`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule.cron`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agentRef.name`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="Last Run",type=string,JSONPath=`.status.lastRun.phase`
// +kubebuilder:printcolumn:name="Last Success",type=date,JSONPath=`.status.lastSuccessfulRun.completionTime`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextScheduleTime`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired backup.
	// +required
	Spec BackupConfigSpec `json:"spec"`

	// status is what the manager observed.
	// +optional
	Status BackupConfigStatus `json:"status,omitempty"`
}

// BackupConfigList is a list of BackupConfigs.
//
// +kubebuilder:object:root=true
type BackupConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfig `json:"items"`
}
