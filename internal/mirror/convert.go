package mirror

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
	"github.com/backapp/backapp/internal/store"
)

const (
	// OwnerKey is the annotation (or label) that names the owner of a
	// Server-mode BackupConfig and its runs. The annotation wins over the
	// label.
	OwnerKey = "backapp.io/owner"
	// DefaultOwner owns Server-mode configs that name no owner: the
	// bootstrap owner, who is an admin.
	DefaultOwner = "admin"
)

// refs are the parts of a row that come from other objects.
type refs struct {
	owner     string // the owning user's id
	agentUID  string // the Agent's UID
	configUID string // the BackupConfig's UID (runs only)
}

// agentRow is the mirror row of a.
func agentRow(a *backappv1alpha1.Agent, observedAt time.Time) store.AgentRow {
	return store.AgentRow{
		UID:             string(a.UID),
		Namespace:       a.Namespace,
		Name:            a.Name,
		Owner:           a.Spec.Owner,
		DisplayName:     a.Spec.DisplayName,
		Phase:           string(a.Status.Phase),
		LastSeen:        timePtr(a.Status.LastSeen),
		Platform:        a.Status.Platform,
		Arch:            a.Status.Arch,
		Version:         a.Status.Version,
		Hostname:        a.Status.Hostname,
		Disabled:        a.Spec.Disabled,
		CreatedAt:       a.CreationTimestamp.Time,
		ObservedAt:      observedAt,
		ResourceVersion: a.ResourceVersion,
	}
}

// configRow is the mirror row of c, with its owner and agent already
// resolved.
func configRow(c *backappv1alpha1.BackupConfig, r refs, observedAt time.Time) (store.ConfigRow, error) {
	spec, err := json.Marshal(c.Spec)
	if err != nil {
		return store.ConfigRow{}, fmt.Errorf("while encoding the spec of backup config %s/%s: %w", c.Namespace, c.Name, err)
	}
	row := store.ConfigRow{
		UID:                 string(c.UID),
		Namespace:           c.Namespace,
		Name:                c.Name,
		Owner:               r.owner,
		ExecutionMode:       string(c.Spec.ExecutionMode),
		AgentUID:            r.agentUID,
		Spec:                spec,
		Suspended:           c.Spec.Suspend,
		DestinationBucket:   c.Spec.Destination.Bucket,
		DestinationEndpoint: c.Spec.Destination.Endpoint,
		CreatedAt:           c.CreationTimestamp.Time,
		ObservedAt:          observedAt,
		ResourceVersion:     c.ResourceVersion,
	}
	if isAgentMode(c) && c.Spec.AgentRef != nil {
		row.AgentName = c.Spec.AgentRef.Name
	}
	if s := c.Spec.Schedule; s != nil {
		row.Schedule, row.TimeZone = s.Cron, s.TimeZone
	}
	return row, nil
}

// runRow is the mirror row of r, with its config, owner and agent already
// resolved.
func runRow(r *backappv1alpha1.BackupRun, rf refs, observedAt time.Time) store.RunRow {
	st := r.Status
	row := store.RunRow{
		UID:              string(r.UID),
		Namespace:        r.Namespace,
		Name:             r.Name,
		ConfigName:       r.Spec.ConfigRef.Name,
		ConfigUID:        rf.configUID,
		Owner:            rf.owner,
		AgentUID:         rf.agentUID,
		Trigger:          string(r.Spec.Trigger),
		Phase:            string(st.Phase),
		ScheduledTime:    timePtr(r.Spec.ScheduledTime),
		StartTime:        timePtr(st.StartTime),
		EndTime:          timePtr(st.CompletionTime),
		FilesProcessed:   st.FilesProcessed,
		FilesSkipped:     st.FilesSkipped,
		TotalBytes:       st.BytesTotal,
		BytesTransferred: st.BytesTransferred,
		// errorCount counts every problem, errors keeps the first ones; a
		// writer that filled only the list still has that many.
		ErrorCount:      max(st.ErrorCount, int64(len(st.Errors))),
		Message:         st.Message,
		CreatedAt:       r.CreationTimestamp.Time,
		ObservedAt:      observedAt,
		ResourceVersion: r.ResourceVersion,
	}
	if o := st.Object; o != nil {
		row.Bucket, row.ObjectKey, row.ObjectSize, row.SHA256 = o.Bucket, o.Key, o.Size, o.SHA256
	}
	for _, e := range st.Errors {
		row.Errors = append(row.Errors, store.RunError{Path: e.Path, Message: e.Message})
	}
	return row
}

// isAgentMode reports whether c runs on an agent; "" is the CRD default,
// Server.
func isAgentMode(c *backappv1alpha1.BackupConfig) bool {
	return c.Spec.ExecutionMode == backappv1alpha1.ExecutionModeAgent
}

// serverOwner is the owner of a Server-mode config (see OwnerKey).
func serverOwner(c *backappv1alpha1.BackupConfig) string {
	if v := c.Annotations[OwnerKey]; v != "" {
		return v
	}
	if v := c.Labels[OwnerKey]; v != "" {
		return v
	}
	return DefaultOwner
}

// configUIDOf is the UID of the BackupConfig that controls r, "" if none
// does. It names the config r was made for even after a config of the same
// name replaced it.
func configUIDOf(r *backappv1alpha1.BackupRun) string {
	ref := metav1.GetControllerOfNoCopy(r)
	if ref == nil || ref.Kind != "BackupConfig" {
		return ""
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != backappv1alpha1.GroupVersion.Group {
		return ""
	}
	return string(ref.UID)
}

func timePtr(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}
