package webapp

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// rateLimiter keeps one token bucket per key (an API key hash, a client
// address). Buckets idle for longer than it takes to refill are dropped, so
// a flood of distinct keys cannot grow memory without bound.
type rateLimiter struct {
	limit   rate.Limit
	burst   int
	now     func() time.Time
	maxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
	sweeps  int
}

type bucket struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

// newRateLimiter allows perSecond requests per key on average with bursts
// of burst. maxKeys bounds the table; past it the oldest idle buckets go.
func newRateLimiter(perSecond float64, burst, maxKeys int, now func() time.Time) *rateLimiter {
	return &rateLimiter{
		limit:   rate.Limit(perSecond),
		burst:   burst,
		now:     now,
		maxKeys: maxKeys,
		buckets: make(map[string]*bucket),
	}
}

// allow takes one token for key. When none is left it returns false and how
// long the caller should wait (for Retry-After), rounded up to a second.
func (r *rateLimiter) allow(key string) (bool, time.Duration) {
	if r == nil || r.limit == rate.Inf {
		return true, 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[key]
	if !ok {
		r.sweep(now)
		b = &bucket{lim: rate.NewLimiter(r.limit, r.burst)}
		r.buckets[key] = b
	}
	b.lastSeen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return false, time.Duration(math.Ceil(delay.Seconds())) * time.Second
	}
	return true, 0
}

// sweep drops buckets that have been idle long enough to be full again
// (forgetting them changes nothing), and, if the table is still over its
// bound, the rest of the idle ones. Called with mu held.
func (r *rateLimiter) sweep(now time.Time) {
	r.sweeps++
	if len(r.buckets) < r.maxKeys && r.sweeps%1024 != 0 {
		return
	}
	refill := time.Duration(float64(r.burst)/float64(r.limit)*float64(time.Second)) + time.Second
	for k, b := range r.buckets {
		if now.Sub(b.lastSeen) > refill {
			delete(r.buckets, k)
		}
	}
	for k := range r.buckets {
		if len(r.buckets) < r.maxKeys {
			break
		}
		delete(r.buckets, k)
	}
}
