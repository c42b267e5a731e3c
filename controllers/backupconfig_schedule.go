package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// reconcileSchedule starts the run of the slot that is due, if any.
//
// What was handled is derived, never remembered in memory: the newest of
// AnnotationLastHandledSlot (slots skipped without a run),
// status.lastScheduleTime and the newest scheduled run the config has. From
// that, schedule.Due says which slot is due now and how many were missed.
//
// Exactly-once rests on two things. A run's name derives from its slot, so
// however often a slot is decided (a retry, a restart, a second manager)
// only one Create succeeds. And a count is added only by the one writer
// that wins: the Create of a catch-up run, or the optimistic-lock write of
// the annotation for a skipped slot. A manager that dies between that
// write and the status patch loses the count, never doubles it.
func (r *BackupConfigReconciler) reconcileSchedule(ctx context.Context, s *configState) error {
	sched := s.spec.schedule
	if sched == nil || !s.spec.valid() || s.paused() {
		return nil
	}
	spec := s.cfg.Spec.Schedule
	var deadline *time.Duration
	if spec.StartingDeadlineSeconds != nil {
		d := time.Duration(*spec.StartingDeadlineSeconds) * time.Second
		deadline = &d
	}
	d := sched.Due(s.lastHandled(), s.cfg.CreationTimestamp.Time, s.now, deadline)
	next := d.Next.UTC()
	s.next = &next
	if d.Latest.IsZero() {
		return nil
	}
	log := logf.FromContext(ctx)

	if s.resuming() {
		// The slots that passed while the config was suspended (or its
		// agent disabled) were not missed: not running them was the point.
		// Record them as handled so none starts late or counts as missed.
		log.Info("Skipping the slots that passed while suspended", "latest", d.Latest)
		return r.recordHandledSlot(ctx, s, d.Latest)
	}

	if d.Run.IsZero() {
		if err := r.recordHandledSlot(ctx, s, d.Latest); err != nil {
			return err
		}
		s.missed += int64(d.Missed)
		r.event(s.cfg, nil, corev1.EventTypeWarning, EventMissedSchedule, "Skip",
			"missed %d scheduled run(s): the newest, due at %s, is more than startingDeadlineSeconds (%ds) late",
			d.Missed, d.Latest.UTC().Format(time.RFC3339), *spec.StartingDeadlineSeconds)
		return nil
	}

	name := s.cfg.ScheduledRunName(d.Run)
	active := s.activeRuns()
	switch spec.ConcurrencyPolicy {
	case backappv1alpha1.ConcurrencyAllow:
	case backappv1alpha1.ConcurrencyReplace:
		if err := r.cancelForReplace(ctx, s, active, name); err != nil {
			return err
		}
	default: // Forbid, also when unset.
		if len(active) > 0 {
			if err := r.recordHandledSlot(ctx, s, d.Latest); err != nil {
				return err
			}
			s.missed += int64(d.Missed) + 1
			r.event(s.cfg, nil, corev1.EventTypeWarning, EventSkippedConcurrent, "Skip",
				"skipped the run due at %s: run %s is still active (concurrencyPolicy Forbid)",
				d.Run.UTC().Format(time.RFC3339), active[0].Name)
			return nil
		}
	}

	created, err := r.createRun(ctx, s, name, backappv1alpha1.TriggerSchedule, d.Run)
	if err != nil {
		return err
	}
	s.scheduled = later(s.scheduled, d.Run)
	if created && d.Missed > 0 {
		s.missed += int64(d.Missed)
		r.event(s.cfg, nil, corev1.EventTypeWarning, EventMissedSchedule, "Skip",
			"missed %d scheduled run(s) before %s (the manager was down or the config could not run); started one catch-up run",
			d.Missed, d.Run.UTC().Format(time.RFC3339))
	}
	return nil
}

// paused reports whether scheduled runs are stopped on purpose: the config
// is suspended or its agent disabled.
func (s *configState) paused() bool {
	return s.cfg.Spec.Suspend || s.spec.disabledAgent != ""
}

// resuming reports whether the previous reconcile saw the config paused
// (its Ready reason says so) and this one does not.
func (s *configState) resuming() bool {
	c := meta.FindStatusCondition(s.prev.Conditions, backappv1alpha1.ConditionReady)
	return c != nil && !s.paused() &&
		(c.Reason == backappv1alpha1.ReasonSuspended || c.Reason == backappv1alpha1.ReasonAgentDisabled)
}

// lastHandled is the newest slot handled so far, run or skipped.
func (s *configState) lastHandled() time.Time {
	var t time.Time
	if v := s.cfg.Annotations[AnnotationLastHandledSlot]; v != "" {
		// An unreadable value (edited by hand) counts as absent: the runs
		// and status still say what was run.
		if p, err := time.Parse(time.RFC3339, v); err == nil {
			t = p
		}
	}
	if lst := s.cfg.Status.LastScheduleTime; lst != nil {
		t = later(t, lst.Time)
	}
	return later(t, s.newestScheduledRun())
}

// newestScheduledRun is the newest slot among the config's scheduled
// runs. Only runs named for their slot count: a run made by hand with
// trigger Schedule and a far-future scheduledTime must not stall the
// schedule.
func (s *configState) newestScheduledRun() time.Time {
	t := s.scheduled
	for i := range s.runs {
		run := &s.runs[i]
		st := run.Spec.ScheduledTime
		if run.Spec.Trigger != backappv1alpha1.TriggerSchedule || st == nil ||
			run.Name != s.cfg.ScheduledRunName(st.Time) {
			continue
		}
		t = later(t, st.Time)
	}
	return t
}

// activeRuns are the runs of the config that are Pending (or not yet
// given a phase) or Running and not being deleted, oldest first.
func (s *configState) activeRuns() []*backappv1alpha1.BackupRun {
	var active []*backappv1alpha1.BackupRun
	for i := range s.runs {
		run := &s.runs[i]
		if run.DeletionTimestamp.IsZero() && !run.Status.Phase.IsFinished() {
			active = append(active, run)
		}
	}
	sortRuns(active, false)
	return active
}

// recordHandledSlot writes AnnotationLastHandledSlot with an optimistic
// lock. A conflict means another writer got there first (or our cache was
// stale): the caller returns it, counts nothing, and the reconcile runs
// again on the newer version.
func (r *BackupConfigReconciler) recordHandledSlot(ctx context.Context, s *configState, slot time.Time) error {
	orig := s.cfg.DeepCopy()
	if s.cfg.Annotations == nil {
		s.cfg.Annotations = map[string]string{}
	}
	s.cfg.Annotations[AnnotationLastHandledSlot] = slot.UTC().Format(time.RFC3339)
	if err := r.Patch(ctx, s.cfg, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return err
		}
		return fmt.Errorf("while recording slot %s of BackupConfig %s as handled: %w",
			slot.UTC().Format(time.RFC3339), s.cfg.Name, err)
	}
	return nil
}

// cancelForReplace asks every active run but the replacement to cancel
// (spec.cancel; the BackupRun controller and the server abort the upload
// and finish it as Cancelled). Setting cancel is idempotent and cannot be
// undone, so racing managers need no lock here.
func (r *BackupConfigReconciler) cancelForReplace(ctx context.Context, s *configState,
	active []*backappv1alpha1.BackupRun, replacement string) error {
	for _, run := range active {
		if run.Name == replacement || run.Spec.Cancel || run.Annotations[backappv1alpha1.AnnotationCancel] != "" {
			continue
		}
		orig := run.DeepCopy()
		run.Spec.Cancel = true
		if err := r.Patch(ctx, run, client.MergeFrom(orig)); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("while cancelling run %s to replace it: %w", run.Name, err)
		}
		logf.FromContext(ctx).Info("Cancelled BackupRun to replace it", "run", run.Name, "replacement", replacement)
		r.event(s.cfg, run, corev1.EventTypeNormal, EventReplacedRun, "Cancel",
			"cancelled run %s to start %s (concurrencyPolicy Replace)", run.Name, replacement)
	}
	return nil
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
