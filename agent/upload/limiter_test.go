package upload

import (
	"testing"
	"time"
)

// TestLimiterPacesToTheRate: reservations on a fake clock wait exactly as
// long as the rate needs, an idle limiter grants one burst and no more,
// and parts sharing it share the rate.
func TestLimiterPacesToTheRate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at    time.Duration // since t0
		bytes int
		wait  time.Duration
	}
	tests := []struct {
		name  string
		rate  int64
		steps []step
	}{
		{"the first burst is free", 1 << 20, []step{
			{0, 100 << 10, 0}, // 100 KiB at 1 MiB/s is under 100 ms of burst
		}},
		{"a steady stream waits for the rate", 1 << 20, []step{
			{0, 1 << 20, 900 * time.Millisecond}, // 1 s of bytes minus the burst
			{0, 1 << 20, 1900 * time.Millisecond},
			{1900 * time.Millisecond, 1 << 20, time.Second},
		}},
		{"idling saves at most one burst", 1 << 20, []step{
			{0, 1 << 20, 900 * time.Millisecond},
			{time.Hour, 1 << 20, 900 * time.Millisecond},
		}},
		{"two parts share the rate", 10 << 20, []step{
			{0, 1 << 20, 0},
			{0, 1 << 20, 100 * time.Millisecond},
			{0, 1 << 20, 200 * time.Millisecond},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			l := newLimiter(tt.rate, func() time.Time { return now })
			for i, s := range tt.steps {
				now = t0.Add(s.at)
				if got := l.reserve(s.bytes); got.Round(time.Millisecond) != s.wait {
					t.Errorf("step %d: wait %s, want %s", i, got, s.wait)
				}
			}
		})
	}
}

// TestLimiterChunk: about a tenth of a second of bytes, between 1 KiB and
// 64 KiB.
func TestLimiterChunk(t *testing.T) {
	for _, tt := range []struct {
		rate int64
		want int
	}{{100, 1 << 10}, {100 << 10, 10 << 10}, {1 << 30, maxChunk}} {
		if got := newLimiter(tt.rate, time.Now).chunk(); got != tt.want {
			t.Errorf("rate %d: chunk %d, want %d", tt.rate, got, tt.want)
		}
	}
}
