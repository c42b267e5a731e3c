package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RunTrigger says what started a run.
// +kubebuilder:validation:Enum=Schedule;Manual;Agent
type RunTrigger string

const (
	// TriggerSchedule: the manager started the run at a scheduled time.
	TriggerSchedule RunTrigger = "Schedule"
	// TriggerManual: a person asked for it (annotation, dashboard, kubectl).
	TriggerManual RunTrigger = "Manual"
	// TriggerAgent: the agent started it (`backapp-agent backup`).
	TriggerAgent RunTrigger = "Agent"
)

// RunPhase is where a run is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Cancelled
type RunPhase string

const (
	// RunPending: created, not yet claimed by an agent or started as a Job.
	RunPending RunPhase = "Pending"
	// RunRunning: an agent or Job is archiving and uploading.
	RunRunning RunPhase = "Running"
	// RunSucceeded: the archive is stored and the server verified it.
	RunSucceeded RunPhase = "Succeeded"
	// RunFailed: the run ended without a verified archive.
	RunFailed RunPhase = "Failed"
	// RunCancelled: the run was cancelled; its upload was aborted.
	RunCancelled RunPhase = "Cancelled"
)

// IsFinished reports whether the phase is final: a finished run never
// changes phase again.
func (p RunPhase) IsFinished() bool {
	return p == RunSucceeded || p == RunFailed || p == RunCancelled
}

// BackupRunSpec asks for one execution of a BackupConfig. Everything but
// cancel is fixed at creation.
//
// +kubebuilder:validation:XValidation:rule="self.trigger != 'Schedule' || has(self.scheduledTime)",message="scheduledTime is required when trigger is Schedule"
// +kubebuilder:validation:XValidation:rule="self.trigger == oldSelf.trigger",message="trigger is immutable"
// +kubebuilder:validation:XValidation:rule="has(self.scheduledTime) == has(oldSelf.scheduledTime) && (!has(self.scheduledTime) || self.scheduledTime == oldSelf.scheduledTime)",message="scheduledTime is immutable"
// +kubebuilder:validation:XValidation:rule="!(has(oldSelf.cancel) && oldSelf.cancel) || (has(self.cancel) && self.cancel)",message="cancel cannot be undone"
type BackupRunSpec struct {
	// configRef names the BackupConfig, in this namespace, to run.
	// Immutable.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="configRef is immutable"
	ConfigRef LocalObjectReference `json:"configRef"`

	// trigger is what started the run: Schedule, Manual or Agent.
	// Immutable. Default: Manual.
	// +optional
	// +kubebuilder:default=Manual
	Trigger RunTrigger `json:"trigger,omitempty"`

	// scheduledTime is the schedule slot this run is for; required when
	// trigger is Schedule. Immutable.
	// +optional
	ScheduledTime *metav1.Time `json:"scheduledTime,omitempty"`

	// cancel, when set to true, stops the run: the upload is aborted, a
	// Job is deleted and the phase becomes Cancelled. It cannot be undone.
	// Default: false.
	// +optional
	Cancel bool `json:"cancel,omitempty"`
}

// StoredObject is an archive in object storage.
type StoredObject struct {
	// bucket is the S3 bucket holding the archive.
	// +required
	Bucket string `json:"bucket"`

	// key is the object key, for example
	// users/{user}/agents/{agent}/configs/{config}/backup-20260102T030405Z.tar.gz.
	// +required
	Key string `json:"key"`

	// size is the archive's size in bytes as verified by the server.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Size int64 `json:"size,omitempty"`

	// sha256 is the hex SHA-256 of the archive's bytes as stored.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{64}$`
	SHA256 string `json:"sha256,omitempty"`
}

// RunError is one problem met during a run, for example a file that could
// not be read.
type RunError struct {
	// path is the file the error is about, if any.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Path string `json:"path,omitempty"`

	// message says what went wrong.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message"`
}

// BackupRunStatus is the progress and result of a run.
type BackupRunStatus struct {
	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending, Running, Succeeded, Failed or Cancelled.
	// +optional
	Phase RunPhase `json:"phase,omitempty"`

	// conditions are Verified (the stored archive's size and checksum
	// matched) and Ready.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// message is a one-line, human summary of the outcome, for example
	// "agent offline since 2026-01-02T03:04:05Z".
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// claimedBy is the name of the Agent that runs this backup (Agent
	// mode).
	// +optional
	ClaimedBy string `json:"claimedBy,omitempty"`

	// startTime is when an agent or Job started the run.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the run finished, whatever its result.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// lastProgressTime is when progress was last reported; a Running run
	// that stays silent for longer than the config's
	// progressDeadlineSeconds is failed.
	// +optional
	LastProgressTime *metav1.Time `json:"lastProgressTime,omitempty"`

	// filesProcessed is how many files were archived so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FilesProcessed int64 `json:"filesProcessed,omitempty"`

	// filesSkipped is how many files were skipped (unreadable, vanished,
	// devices); errors lists the first of them.
	// +optional
	// +kubebuilder:validation:Minimum=0
	FilesSkipped int64 `json:"filesSkipped,omitempty"`

	// bytesTotal is the size in bytes of the selected files, once known.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesTotal int64 `json:"bytesTotal,omitempty"`

	// bytesTransferred is how many archive bytes were uploaded so far.
	// +optional
	// +kubebuilder:validation:Minimum=0
	BytesTransferred int64 `json:"bytesTransferred,omitempty"`

	// progress is the estimated share done, in percent (0-100).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Progress int32 `json:"progress,omitempty"`

	// object is the stored archive; set when the upload starts, final once
	// the run Succeeded.
	// +optional
	Object *StoredObject `json:"object,omitempty"`

	// uploadID is the S3 multipart upload id while the upload is open; it
	// is cleared once the upload is completed or aborted.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	UploadID string `json:"uploadID,omitempty"`

	// errors are the first problems met (at most 50); errorCount counts
	// all of them.
	// +optional
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	Errors []RunError `json:"errors,omitempty"`

	// errorCount is how many problems were met in all.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ErrorCount int64 `json:"errorCount,omitempty"`

	// jobRef names the Job of a Server-mode run.
	// +optional
	JobRef *LocalObjectReference `json:"jobRef,omitempty"`
}

// BackupRun is one execution of a BackupConfig. The manager creates one per
// scheduled slot with a name derived from the config and the slot, so a
// retried reconcile never creates a second run for the same slot.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=br,categories=backapp
// +kubebuilder:printcolumn:name="Config",type=string,JSONPath=`.spec.configRef.name`
// +kubebuilder:printcolumn:name="Trigger",type=string,JSONPath=`.spec.trigger`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Files",type=integer,JSONPath=`.status.filesProcessed`
// +kubebuilder:printcolumn:name="Bytes",type=integer,JSONPath=`.status.bytesTransferred`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startTime`
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupRun struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the requested run.
	// +required
	Spec BackupRunSpec `json:"spec"`

	// status is its progress and result.
	// +optional
	Status BackupRunStatus `json:"status,omitempty"`
}

// BackupRunList is a list of BackupRuns.
//
// +kubebuilder:object:root=true
type BackupRunList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupRun `json:"items"`
}
