package schedule

import "time"

// Decision is what the controller should do at a given moment.
type Decision struct {
	// Run is the slot to start a run for now; zero if none is due.
	Run time.Time
	// Missed counts slots that were due but are not run: older unhandled
	// slots collapsed into the one catch-up run, plus the newest one when
	// it is past the starting deadline.
	Missed int
	// Latest is the newest due slot, whether it is Run or skipped; zero
	// when nothing is due. The caller records it as handled so the same
	// slots are neither run nor counted again on the next call.
	Latest time.Time
	// Next is the first slot strictly after now that a later call could
	// run (also after lastHandled and not before earliest), for
	// RequeueAfter and status.nextScheduleTime. Always set for a parsed
	// schedule.
	Next time.Time
}

// Due decides what to do at now, given the newest slot already handled
// (run or skipped; zero if none) and the earliest time slots count from
// (the config's creation time; zero for no bound).
//
// Only the newest due slot (<= now, > lastHandled, >= earliest) is a
// candidate, so however many slots were missed there is at most one
// catch-up run; the older unhandled slots are counted in Missed. With a
// startingDeadline, a candidate more than that late is skipped too (Run is
// zero, Missed includes it). When both lastHandled and earliest are zero
// there is nothing to count from, and Missed counts only a skipped
// candidate.
//
// Missed is exact however old lastHandled is; counting costs a few
// milliseconds per decade (see countCron), never one step per slot.
func (s *Schedule) Due(lastHandled, earliest, now time.Time, startingDeadline *time.Duration) Decision {
	// Slots are whole seconds: lower is the bound they must be after.
	// t > lastHandled  <=>  t > floor(lastHandled);
	// t >= earliest    <=>  t > ceil(earliest)-1.
	var lower int64
	bounded := false
	if !earliest.IsZero() {
		lower = earliest.Unix()
		if earliest.Nanosecond() == 0 {
			lower--
		}
		bounded = true
	}
	if !lastHandled.IsZero() && (!bounded || lastHandled.Unix() > lower) {
		lower, bounded = lastHandled.Unix(), true
	}

	var d Decision
	nowSec := now.Unix()
	from := nowSec
	if bounded && lower > from {
		from = lower
	}
	if next, ok := s.next(from); ok {
		d.Next = s.time(next)
	}

	candidate, ok := s.prev(nowSec)
	if !ok || (bounded && candidate <= lower) {
		return d
	}
	if bounded {
		d.Missed = int(s.count(lower, candidate))
	}
	d.Latest = s.time(candidate)
	if startingDeadline != nil && now.Sub(d.Latest) > *startingDeadline {
		d.Missed++
		return d
	}
	d.Run = d.Latest
	return d
}

// time converts a slot in Unix seconds to a time in the schedule's zone.
func (s *Schedule) time(t int64) time.Time {
	return time.Unix(t, 0).In(s.Location())
}
