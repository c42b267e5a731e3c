package controllers

import (
	"cmp"
	"slices"
	"time"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// retentionPlan is what a config's retention policy does at one instant.
type retentionPlan struct {
	// expired are the runs to delete now (with their archives).
	expired []*backappv1alpha1.BackupRun
	// next is when the next run not yet expired will expire; zero when
	// none will by time alone (a newer successful run arriving can still
	// unprotect one, and wakes the reconciler through its watch).
	next time.Time
}

// planRetention applies ret to the runs of one config at now. It is a pure
// function of its arguments.
//
//   - Only finished runs with a completionTime that are not already being
//     deleted take part.
//   - The newest max(keepLast, 1) Succeeded runs (by completionTime) are
//     protected: keepLast defaults to 1, and the newest successful run is
//     never deleted.
//   - With days set, every other run whose completionTime is at least days
//     old is expired, whatever its phase (failed runs have no archive).
//   - Without days, the Succeeded runs beyond the protected ones are
//     expired; failed and cancelled runs are left to the config's
//     failedRunsHistoryLimit.
func planRetention(runs []backappv1alpha1.BackupRun, ret backappv1alpha1.Retention, now time.Time) retentionPlan {
	keep := 1
	if ret.KeepLast != nil && *ret.KeepLast > 1 {
		keep = int(*ret.KeepLast)
	}
	var finished, succeeded []*backappv1alpha1.BackupRun
	for i := range runs {
		run := &runs[i]
		if !run.Status.Phase.IsFinished() || run.Status.CompletionTime == nil || run.DeletionTimestamp != nil {
			continue
		}
		finished = append(finished, run)
		if run.Status.Phase == backappv1alpha1.RunSucceeded {
			succeeded = append(succeeded, run)
		}
	}
	// Newest first; the name breaks ties so the plan never depends on the
	// order of the list.
	slices.SortFunc(succeeded, func(a, b *backappv1alpha1.BackupRun) int {
		if c := b.Status.CompletionTime.Compare(a.Status.CompletionTime.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	})
	protected := make(map[*backappv1alpha1.BackupRun]bool, keep)
	for _, run := range succeeded[:min(keep, len(succeeded))] {
		protected[run] = true
	}

	var plan retentionPlan
	for _, run := range finished {
		if protected[run] {
			continue
		}
		if ret.Days == nil {
			if run.Status.Phase == backappv1alpha1.RunSucceeded {
				plan.expired = append(plan.expired, run)
			}
			continue
		}
		expiry := run.Status.CompletionTime.Add(time.Duration(*ret.Days) * 24 * time.Hour)
		if !now.Before(expiry) {
			plan.expired = append(plan.expired, run)
		} else if plan.next.IsZero() || expiry.Before(plan.next) {
			plan.next = expiry
		}
	}
	slices.SortFunc(plan.expired, func(a, b *backappv1alpha1.BackupRun) int { return cmp.Compare(a.Name, b.Name) })
	return plan
}
