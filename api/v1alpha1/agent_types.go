package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentPhase is where an Agent is in its life.
// +kubebuilder:validation:Enum=Pending;Online;Offline;Disabled;Error
type AgentPhase string

const (
	// AgentPending: registered, never seen (no heartbeat yet).
	AgentPending AgentPhase = "Pending"
	// AgentOnline: a heartbeat arrived within the offline threshold.
	AgentOnline AgentPhase = "Online"
	// AgentOffline: no heartbeat for the offline threshold (5 minutes).
	AgentOffline AgentPhase = "Offline"
	// AgentDisabled: spec.disabled is set; its key is refused.
	AgentDisabled AgentPhase = "Disabled"
	// AgentError: the agent reported a problem that stops it working.
	AgentError AgentPhase = "Error"
)

// AgentOfflineAfter is how long an agent may go without a heartbeat before
// it is Offline.
const AgentOfflineAfter = 5 * 60 // seconds

// AgentSpec is a registered backapp-agent: a laptop, workstation or server
// that runs backups of its own files.
type AgentSpec struct {
	// displayName is the name people see in the dashboard, for example
	// "Ann's MacBook". 1 to 128 characters.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	DisplayName string `json:"displayName"`

	// owner is the id of the BackApp user who owns the agent; only that
	// user and admins see it and its configs and runs. Immutable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][-A-Za-z0-9_.@]*$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="owner is immutable"
	Owner string `json:"owner"`

	// disabled, when true, refuses the agent's API key and stops new runs
	// for its configs, without deleting anything. Default: false.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// apiKeyHash is the lowercase hex SHA-256 of the agent's API key. The
	// key itself is shown once, at registration or rotation, and stored
	// nowhere; a 256-bit random key cannot be recovered from its hash.
	// Empty: no key is accepted (revoked). Written by the BackApp server.
	// +optional
	// +kubebuilder:validation:Pattern=`^[a-f0-9]{64}$`
	APIKeyHash string `json:"apiKeyHash,omitempty"`

	// pollIntervalSeconds is how often, in seconds, the agent sends a
	// heartbeat and asks for due runs. Default: 60.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=3600
	PollIntervalSeconds int32 `json:"pollIntervalSeconds,omitempty"`
}

// AgentStatus is what the server and manager know of an agent.
type AgentStatus struct {
	// observedGeneration is the metadata.generation this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// phase is Pending (never seen), Online, Offline (no heartbeat for 5
	// minutes), Disabled or Error.
	// +optional
	Phase AgentPhase `json:"phase,omitempty"`

	// lastSeen is when the last heartbeat arrived. The server writes it at
	// most once a minute or on a phase change, so it may lag by a minute.
	// +optional
	LastSeen *metav1.Time `json:"lastSeen,omitempty"`

	// platform is the agent's operating system: darwin, linux or windows.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Platform string `json:"platform,omitempty"`

	// arch is the agent's CPU architecture, for example amd64 or arm64.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	Arch string `json:"arch,omitempty"`

	// version is the backapp-agent version.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	Version string `json:"version,omitempty"`

	// hostname is the agent machine's host name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Hostname string `json:"hostname,omitempty"`

	// conditions are Ready (the agent is online and enabled) and Online.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Agent is a registered backapp-agent. Its API key is shown once at
// registration; only the key's SHA-256 is kept (spec.apiKeyHash).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=backapp
// +kubebuilder:printcolumn:name="Display Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.spec.owner`,priority=1
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.lastSeen`
// +kubebuilder:printcolumn:name="Platform",type=string,JSONPath=`.status.platform`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.status.version`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the registered agent.
	// +required
	Spec AgentSpec `json:"spec"`

	// status is what was observed of it.
	// +optional
	Status AgentStatus `json:"status,omitempty"`
}

// AgentList is a list of Agents.
//
// +kubebuilder:object:root=true
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}
