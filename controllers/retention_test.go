package controllers

import (
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	backappv1alpha1 "github.com/backapp/backapp/api/v1alpha1"
)

// TestPlanRetention covers the retention policy over fixed times; the
// envtest specs in backuprun_test.go show it deleting runs and objects.
func TestPlanRetention(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	type run struct {
		name     string
		phase    backappv1alpha1.RunPhase
		age      time.Duration // since completion; 0 with an unfinished phase means no completionTime
		deleting bool
	}
	ok, failed := backappv1alpha1.RunSucceeded, backappv1alpha1.RunFailed
	tests := []struct {
		name     string
		runs     []run
		days     *int32
		keepLast *int32
		expired  []string
		next     time.Time
	}{
		{
			name: "days 7, keepLast 2: the two newest successes stay, even one older than 7 days",
			runs: []run{
				{"a", ok, 2 * day, false}, {"b", ok, 8 * day, false}, {"c", ok, 9 * day, false},
				{"d", ok, 12 * day, false}, {"e", ok, 30 * day, false},
			},
			days: ptr.To[int32](7), keepLast: ptr.To[int32](2),
			expired: []string{"c", "d", "e"},
		},
		{
			name: "keepLast defaults to 1",
			runs: []run{{"a", ok, 10 * day, false}, {"b", ok, 9 * day, false}, {"c", ok, 8 * day, false}},
			days: ptr.To[int32](7),
			// c is the newest success.
			expired: []string{"a", "b"},
		},
		{
			name:     "keepLast 0 still keeps the newest successful run",
			runs:     []run{{"a", ok, 10 * day, false}, {"b", ok, 9 * day, false}},
			days:     ptr.To[int32](1),
			keepLast: ptr.To[int32](0),
			expired:  []string{"a"},
		},
		{
			name: "failed runs expire by age too and never protect anything",
			runs: []run{
				{"new-fail", failed, 1 * day, false}, {"old-fail", failed, 10 * day, false},
				{"old-ok", ok, 20 * day, false}, {"cancelled", backappv1alpha1.RunCancelled, 8 * day, false},
			},
			days:    ptr.To[int32](7),
			expired: []string{"cancelled", "old-fail"},
			// new-fail expires 6 days from now.
			next: now.Add(6 * day),
		},
		{
			name:    "a run exactly days old expires; a second younger is next",
			runs:    []run{{"newest", ok, time.Hour, false}, {"edge", ok, 7 * day, false}, {"young", ok, 7*day - time.Second, false}},
			days:    ptr.To[int32](7),
			expired: []string{"edge"},
			next:    now.Add(time.Second),
		},
		{
			name: "without days, successes beyond keepLast go whatever their age; failures stay",
			runs: []run{
				{"a", ok, time.Hour, false}, {"b", ok, 2 * time.Hour, false}, {"c", ok, 3 * time.Hour, false},
				{"f", failed, 100 * day, false},
			},
			keepLast: ptr.To[int32](2),
			expired:  []string{"c"},
		},
		{
			name: "unfinished runs and runs already being deleted take no part",
			runs: []run{
				{"running", backappv1alpha1.RunRunning, 0, false}, {"pending", backappv1alpha1.RunPending, 0, false},
				// A newest success someone is deleting does not protect
				// itself, so the next one is kept instead.
				{"going", ok, 8 * day, true}, {"kept", ok, 9 * day, false}, {"old", ok, 10 * day, false},
			},
			days:    ptr.To[int32](7),
			expired: []string{"old"},
		},
		{
			name: "equal completion times: the name decides, whatever the list order",
			runs: []run{{"x", ok, 10 * day, false}, {"z", ok, 10 * day, false}, {"y", ok, 10 * day, false}},
			days: ptr.To[int32](7),
			// z sorts newest.
			expired: []string{"x", "y"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var runs []backappv1alpha1.BackupRun
			for _, r := range tt.runs {
				br := backappv1alpha1.BackupRun{ObjectMeta: metav1.ObjectMeta{Name: r.name}}
				br.Status.Phase = r.phase
				if r.phase.IsFinished() {
					br.Status.CompletionTime = ptr.To(metav1.NewTime(now.Add(-r.age)))
				}
				if r.deleting {
					br.DeletionTimestamp = ptr.To(metav1.NewTime(now))
				}
				runs = append(runs, br)
			}
			plan := planRetention(runs, backappv1alpha1.Retention{Days: tt.days, KeepLast: tt.keepLast}, now)
			var got []string
			for _, r := range plan.expired {
				got = append(got, r.Name)
			}
			if !slices.Equal(got, tt.expired) {
				t.Errorf("expired = %v, want %v", got, tt.expired)
			}
			if !plan.next.Equal(tt.next) {
				t.Errorf("next = %v, want %v", plan.next, tt.next)
			}
			// The same runs in reverse order give the same plan.
			slices.Reverse(runs)
			again := planRetention(runs, backappv1alpha1.Retention{Days: tt.days, KeepLast: tt.keepLast}, now)
			var gotAgain []string
			for _, r := range again.expired {
				gotAgain = append(gotAgain, r.Name)
			}
			if !slices.Equal(gotAgain, tt.expired) {
				t.Errorf("reversed: expired = %v, want %v", gotAgain, tt.expired)
			}
		})
	}
}
