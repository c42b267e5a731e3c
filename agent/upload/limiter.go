package upload

import (
	"context"
	"sync"
	"time"
)

// limiter paces bytes to a rate shared by every part in flight. It keeps a
// virtual clock, the time at which everything reserved so far will have
// been sent at the rate: a reservation moves it forward by n/rate and waits
// until now catches up with it. An idle limiter's clock falls behind now,
// but by at most burst, so idleness buys one burst, not an unbounded
// flood.
type limiter struct {
	rate  float64 // bytes per second
	burst time.Duration
	now   func() time.Time

	mu   sync.Mutex
	next time.Time
}

// limiterBurst is how much sending time an idle limiter lets through at
// once.
const limiterBurst = 100 * time.Millisecond

func newLimiter(bytesPerSecond int64, now func() time.Time) *limiter {
	return &limiter{rate: float64(bytesPerSecond), burst: limiterBurst, now: now}
}

// chunk is how many bytes to reserve at a time: about a tenth of a second's
// worth, so a slow limit still sends (and shows progress) smoothly.
func (l *limiter) chunk() int {
	return int(min(max(l.rate/10, 1<<10), maxChunk))
}

// reserve books n bytes and returns how long to wait before sending them.
func (l *limiter) reserve(n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if floor := now.Add(-l.burst); l.next.Before(floor) {
		l.next = floor
	}
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return max(l.next.Sub(now), 0)
}

// wait books n bytes and waits until they may be sent, or ctx ends.
func (l *limiter) wait(ctx context.Context, n int) error {
	d := l.reserve(n)
	if d <= 0 {
		return nil
	}
	return sleep(ctx, d)
}
