package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/backapp/backapp/internal/agentapi"
)

// retryPolicy decides whether and when a failed attempt is tried again.
type retryPolicy struct {
	maxAttempts         int
	baseDelay, maxDelay time.Duration
}

// next returns how long to wait before attempt+1, or false to give up.
func (p retryPolicy) next(err error, attempt int, idempotent bool) (time.Duration, bool) {
	if attempt >= p.maxAttempts {
		return 0, false
	}
	var se *statusError
	if errors.As(err, &se) {
		if se.status == http.StatusTooManyRequests || se.apiErr.Code == agentapi.CodeRateLimited {
			if se.retryAfter > MaxRetryAfter {
				return 0, false
			}
			// Never earlier than asked; a little jitter on top so that
			// agents limited together do not return together.
			return max(se.retryAfter+jitter(se.retryAfter/10), Backoff(attempt, p.baseDelay, p.maxDelay)), true
		}
		return Backoff(attempt, p.baseDelay, p.maxDelay), idempotent && transientStatus(se)
	}
	var te *transportError
	if errors.As(err, &te) {
		return Backoff(attempt, p.baseDelay, p.maxDelay), idempotent || te.notSent
	}
	return 0, false
}

// transientStatus: a server failure that may pass (500, 502, 503, 504)
// and is not one of the final verdicts the server reports as 5xx.
func transientStatus(se *statusError) bool {
	switch se.apiErr.Code {
	case agentapi.CodeUploadFailed, agentapi.CodeVerificationFailed:
		return false
	}
	switch se.status {
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// Retryable reports whether a call that failed with err may succeed if
// repeated later (with the same key and request): the server was
// unreachable, rate-limited or failed transiently. The daemon uses it to
// tell "try again next poll" from "this needs a person" (a revoked key,
// a forbidden config, a run that no longer exists).
func Retryable(err error) bool {
	if errors.Is(err, ErrUnreachable) {
		return true
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.status == http.StatusTooManyRequests || transientStatus(se)
	}
	return false
}

// Backoff is the wait before attempt+1 (attempt from 1): base doubled per
// attempt, capped at maxDelay, with full jitter (a uniform random wait up
// to that) so that many agents retrying after one outage spread out.
// Exported for the agent's other retry loops (the daemon's reconnects).
func Backoff(attempt int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	// Half fixed, half random: full jitter could pick ~0 and hammer a
	// server that just asked for patience.
	return d/2 + jitter(d/2)
}

// jitter is a uniform random duration in [0, d].
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP
// date. Anything else (or a date in the past) is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second)*2 {
			secs = int64(MaxRetryAfter/time.Second) * 2 // beyond what anyone waits; avoid overflow
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// sleep waits d or until ctx ends, returning ctx's cause then.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
