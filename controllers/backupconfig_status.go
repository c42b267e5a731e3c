package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// configStatus is the status one reconcile computed, applied to whatever
// version of the config the patch goes to (see patchStatus).
type configStatus struct {
	generation int64
	ready      metav1.Condition
	invalid    metav1.Condition
	// lastSchedule is the newest slot with a run; zero if none is listed.
	lastSchedule time.Time
	next         *time.Time
	lastRun      *backappv1alpha1.RunReference
	lastSuccess  *backappv1alpha1.RunReference
	active       []backappv1alpha1.LocalObjectReference
	// present names the runs listed, to tell a pruned run from a live one.
	present map[string]bool
	// missed is added to status.missedRuns; runNow, when set, replaces
	// status.lastRunNowRequest.
	missed int64
	runNow string
}

// buildStatus rebuilds the status from the runs and the decisions of this
// reconcile. Active runs, the last run and the last successful run come
// from the runs, never from the previous status, except that a last
// (successful) run already pruned stays recorded until a newer one exists:
// with a history limit of 0 there is no run left to show it.
func (s *configState) buildStatus() configStatus {
	st := configStatus{
		generation:   s.cfg.Generation,
		lastSchedule: s.newestScheduledRun(),
		next:         s.next,
		present:      make(map[string]bool, len(s.runs)),
		missed:       s.missed,
		runNow:       s.runNow,
	}
	st.ready, st.invalid = s.conditions()

	runs := make([]*backappv1alpha1.BackupRun, 0, len(s.runs))
	for i := range s.runs {
		runs = append(runs, &s.runs[i])
		st.present[s.runs[i].Name] = true
	}
	sortRuns(runs, true)
	for _, run := range runs {
		if st.lastRun == nil {
			st.lastRun = runReference(run)
		}
		if st.lastSuccess == nil && run.Status.Phase == backappv1alpha1.RunSucceeded {
			st.lastSuccess = runReference(run)
		}
	}
	for _, run := range s.activeRuns() {
		st.active = append(st.active, backappv1alpha1.LocalObjectReference{Name: run.Name})
	}
	return st
}

// conditions are the Ready and InvalidSpec conditions. A suspended config
// is Ready (True, reason Suspended): its spec is valid and run-now still
// starts runs; Suspend is its own printer column. A config whose agent is
// disabled is not Ready: no run of it can start.
func (s *configState) conditions() (ready, invalid metav1.Condition) {
	now := metav1.NewTime(s.now.UTC().Truncate(time.Second))
	gen := s.cfg.Generation
	ready = metav1.Condition{Type: backappv1alpha1.ConditionReady, ObservedGeneration: gen, LastTransitionTime: now}
	invalid = metav1.Condition{Type: backappv1alpha1.ConditionInvalidSpec, ObservedGeneration: gen, LastTransitionTime: now,
		Status: metav1.ConditionFalse, Reason: backappv1alpha1.ReasonValid, Message: "the spec is valid"}
	switch {
	case !s.spec.valid():
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, s.spec.reason(), s.spec.message()
		invalid.Status, invalid.Reason, invalid.Message = metav1.ConditionTrue, s.spec.reason(), s.spec.message()
	case s.spec.disabledAgent != "":
		ready.Status, ready.Reason = metav1.ConditionFalse, backappv1alpha1.ReasonAgentDisabled
		ready.Message = fmt.Sprintf("Agent %q is disabled: no run starts until it is enabled", s.spec.disabledAgent)
	case s.cfg.Spec.Suspend:
		ready.Status, ready.Reason = metav1.ConditionTrue, backappv1alpha1.ReasonSuspended
		ready.Message = "suspended: no scheduled run starts; run-now requests still do"
	case s.cfg.Spec.Schedule == nil:
		ready.Status, ready.Reason = metav1.ConditionTrue, backappv1alpha1.ReasonValid
		ready.Message = "no schedule: runs start only on request (backapp.io/run-now or the dashboard)"
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, backappv1alpha1.ReasonValid
		ready.Message = fmt.Sprintf("runs on schedule %q in %s", s.cfg.Spec.Schedule.Cron, s.spec.schedule.Location())
	}
	return ready, invalid
}

// applyTo returns base with this status applied. Counters and the run-now
// marker build on base's values, so applying to a fresher version after a
// conflict neither loses nor doubles what another writer recorded.
func (st *configStatus) applyTo(base *backappv1alpha1.BackupConfig) *backappv1alpha1.BackupConfig {
	out := base.DeepCopy()
	s := &out.Status
	s.ObservedGeneration = st.generation
	meta.SetStatusCondition(&s.Conditions, st.ready)
	meta.SetStatusCondition(&s.Conditions, st.invalid)
	if !st.lastSchedule.IsZero() && (s.LastScheduleTime == nil || st.lastSchedule.After(s.LastScheduleTime.Time)) {
		s.LastScheduleTime = &metav1.Time{Time: st.lastSchedule.UTC()}
	}
	s.NextScheduleTime = nil
	if st.next != nil {
		s.NextScheduleTime = &metav1.Time{Time: st.next.UTC()}
	}
	if st.lastRun != nil {
		s.LastRun = st.lastRun
	}
	switch prev := s.LastSuccessfulRun; {
	case st.lastSuccess != nil && (prev == nil || st.present[prev.Name] ||
		!referenceTime(prev).After(referenceTime(st.lastSuccess))):
		s.LastSuccessfulRun = st.lastSuccess
	case st.lastSuccess == nil && prev != nil && st.present[prev.Name]:
		// The run is there and did not succeed: the reference was wrong.
		s.LastSuccessfulRun = nil
	}
	s.Active = st.active
	s.MissedRuns += st.missed
	if st.runNow != "" {
		s.LastRunNowRequest = st.runNow
	}
	return out
}

// patchStatus writes the status in one merge patch, skipped when nothing
// changed. The patch carries an optimistic lock because missedRuns and
// lastRunNowRequest are not derived from the runs: on a conflict the
// status is applied again to a fresh read and patched again.
func (r *BackupConfigReconciler) patchStatus(ctx context.Context, s *configState, st configStatus) error {
	base := s.cfg
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		desired := st.applyTo(base)
		if equality.Semantic.DeepEqual(base.Status, desired.Status) {
			return nil
		}
		err := r.Status().Patch(ctx, desired, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if !apierrors.IsConflict(err) {
			return err
		}
		fresh := &backappv1alpha1.BackupConfig{}
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s.cfg), fresh); gerr != nil {
			return fmt.Errorf("while re-reading BackupConfig %s after a conflict: %w", s.cfg.Name, gerr)
		}
		if fresh.UID != s.cfg.UID {
			// Deleted and created again: nothing of ours to record.
			return nil
		}
		base = fresh
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("while updating the status of BackupConfig %s: %w", s.cfg.Name, err)
	}
	return nil
}

// pruneHistory deletes finished runs beyond the history limits, oldest
// first. Under retention, a successful run whose archive is still stored
// is retention's to delete, with its archive; the successful limit counts
// only runs whose archive is gone. Deleting a run never deletes an archive
// here.
func (r *BackupConfigReconciler) pruneHistory(ctx context.Context, s *configState) error {
	retention := s.cfg.Spec.Options.Retention != nil
	var succeeded, failed []*backappv1alpha1.BackupRun
	for i := range s.runs {
		run := &s.runs[i]
		if !run.DeletionTimestamp.IsZero() {
			continue
		}
		switch run.Status.Phase {
		case backappv1alpha1.RunSucceeded:
			if retention && archiveStored(run) {
				continue
			}
			succeeded = append(succeeded, run)
		case backappv1alpha1.RunFailed, backappv1alpha1.RunCancelled:
			failed = append(failed, run)
		}
	}
	prune := append(excessRuns(succeeded, s.cfg.Spec.SuccessfulRunsHistoryLimit),
		excessRuns(failed, s.cfg.Spec.FailedRunsHistoryLimit)...)
	for _, run := range prune {
		err := r.Delete(ctx, run, client.Preconditions{UID: &run.UID},
			client.PropagationPolicy(metav1.DeletePropagationBackground))
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			// Gone already, or a new run of the same name: not ours to delete.
			continue
		}
		if err != nil {
			return fmt.Errorf("while deleting old BackupRun %s: %w", run.Name, err)
		}
		logf.FromContext(ctx).Info("Deleted old BackupRun", "run", run.Name, "phase", run.Status.Phase)
	}
	return nil
}

// excessRuns returns the runs beyond the newest limit (default 3).
func excessRuns(runs []*backappv1alpha1.BackupRun, limit *int32) []*backappv1alpha1.BackupRun {
	keep := defaultRunsHistoryLimit
	if limit != nil {
		keep = int(max(*limit, 0))
	}
	if len(runs) <= keep {
		return nil
	}
	sortRuns(runs, true)
	return runs[keep:]
}

// archiveStored reports whether a run's archive is, as far as the run
// says, still in object storage: it has one, and retention has not marked
// it for deletion (AnnotationDeleteArchive, set just before retention
// deletes the run and, through the archive finalizer, the archive).
func archiveStored(run *backappv1alpha1.BackupRun) bool {
	return run.Status.Object != nil && run.Annotations[AnnotationDeleteArchive] != "true"
}

// sortRuns orders runs by creation, then slot, then name; newest first if
// asked.
func sortRuns(runs []*backappv1alpha1.BackupRun, newestFirst bool) {
	slices.SortStableFunc(runs, func(a, b *backappv1alpha1.BackupRun) int {
		c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
		if c == 0 {
			c = scheduledTime(a).Compare(scheduledTime(b))
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		if newestFirst {
			return -c
		}
		return c
	})
}

func scheduledTime(run *backappv1alpha1.BackupRun) time.Time {
	if run.Spec.ScheduledTime == nil {
		return time.Time{}
	}
	return run.Spec.ScheduledTime.Time
}

// runReference records a run in the config's status.
func runReference(run *backappv1alpha1.BackupRun) *backappv1alpha1.RunReference {
	return &backappv1alpha1.RunReference{
		Name:           run.Name,
		Phase:          run.Status.Phase,
		StartTime:      run.Status.StartTime.DeepCopy(),
		CompletionTime: run.Status.CompletionTime.DeepCopy(),
	}
}

// referenceTime is when a referenced run finished, or started.
func referenceTime(ref *backappv1alpha1.RunReference) time.Time {
	switch {
	case ref.CompletionTime != nil:
		return ref.CompletionTime.Time
	case ref.StartTime != nil:
		return ref.StartTime.Time
	}
	return time.Time{}
}
