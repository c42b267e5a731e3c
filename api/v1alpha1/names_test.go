package v1alpha1

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func TestScheduledRunName(t *testing.T) {
	slot := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
	long := strings.Repeat("a", 60) + ".b-c" + strings.Repeat("d", 100)
	tests := []struct {
		name   string
		config string
		at     time.Time
		want   string
	}{
		{"short name keeps config and slot minutes", "nightly", slot, "nightly-29579130"},
		{"same slot in another zone gives the same name", "nightly", slot.In(time.FixedZone("X", 7200)), "nightly-29579130"},
		{"seconds within the minute do not matter", "nightly", slot.Add(59 * time.Second), "nightly-29579130"},
		{"the next minute is another run", "nightly", slot.Add(time.Minute), "nightly-29579131"},
		{"a long name is shortened with a hash", long, slot, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-82391ecc-29579130"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &BackupConfig{ObjectMeta: metav1.ObjectMeta{Name: tt.config}}
			got := c.ScheduledRunName(tt.at)
			if got != tt.want {
				t.Errorf("ScheduledRunName() = %q, want %q", got, tt.want)
			}
			if len(got) > 63 {
				t.Errorf("%q is %d characters, more than a Job name may have", got, len(got))
			}
			if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
				t.Errorf("%q is not usable as a Job name: %v", got, errs)
			}
		})
	}
}

func TestRunNamesOfLongConfigsStayDistinct(t *testing.T) {
	prefix := strings.Repeat("x", 70)
	a := (&BackupConfig{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-a"}}).ScheduledRunName(time.Unix(0, 0))
	b := (&BackupConfig{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-b"}}).ScheduledRunName(time.Unix(0, 0))
	if a == b {
		t.Fatalf("two configs share the run name %q", a)
	}
}

func TestManualRunName(t *testing.T) {
	c := &BackupConfig{ObjectMeta: metav1.ObjectMeta{Name: "docs"}}
	first := c.ManualRunName("2026-11-22T10:00:00Z")
	if first != c.ManualRunName("2026-11-22T10:00:00Z") {
		t.Error("the same request must give the same run name")
	}
	if first == c.ManualRunName("2026-11-22T10:05:00Z") {
		t.Error("a new request must give a new run name")
	}
	if !strings.HasPrefix(first, "docs-manual-") || len(first) != len("docs-manual-")+10 {
		t.Errorf("unexpected manual run name %q", first)
	}
}

func TestRunPhaseIsFinished(t *testing.T) {
	for phase, want := range map[RunPhase]bool{
		RunPending: false, RunRunning: false, "": false,
		RunSucceeded: true, RunFailed: true, RunCancelled: true,
	} {
		if got := phase.IsFinished(); got != want {
			t.Errorf("%q.IsFinished() = %v, want %v", phase, got, want)
		}
	}
}
