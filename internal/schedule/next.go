package schedule

import (
	"math"
	"math/bits"
	"time"
)

// Internally instants are Unix seconds (slots are always whole seconds)
// and wall-clock times are "civil seconds": the wall-clock reading written
// as if it were UTC, so that day z of the calendar starts at z*secondsPerDay.

const (
	secondsPerDay = 24 * 60 * 60
	// maxScanYears bounds the search for the next slot. The longest gap
	// between slots of a schedule Parse accepts is 8 years (February 29
	// across a century year that is not a leap year, such as 2100).
	maxScanYears = 10
	// maxLookback bounds the search for the latest slot before a moment,
	// for the same reason.
	maxLookback = 12 * 366 * secondsPerDay
	// resolveWindow is more than the largest UTC offset any zone has had
	// (about 16 hours), so the instants whose wall clock can read a given
	// time lie within resolveWindow of it.
	resolveWindow = 26 * 60 * 60
)

// Next returns the first slot strictly after after, in the schedule's
// zone. It returns the zero Time only when no slot exists within ten years,
// which for a parsed schedule happens only near the end of representable
// time.
func (s *Schedule) Next(after time.Time) time.Time {
	t, ok := s.next(after.Unix())
	if !ok {
		return time.Time{}
	}
	return s.time(t)
}

// NextN returns the first n slots strictly after after, in order (fewer
// only if Next runs out). The dashboard shows the next five runs with it.
func (s *Schedule) NextN(after time.Time, n int) []time.Time {
	if n <= 0 {
		return nil
	}
	out := make([]time.Time, 0, n)
	t := after.Unix()
	for range n {
		var ok bool
		if t, ok = s.next(t); !ok {
			break
		}
		out = append(out, s.time(t))
	}
	return out
}

// next is Next in Unix seconds: the first slot > after. A slot is a whole
// second, so being after a time is the same as being after its whole second.
func (s *Schedule) next(after int64) (int64, bool) {
	if s.every > 0 {
		return s.nextEvery(after)
	}
	return s.nextCron(after)
}

// prev returns the latest slot <= at.
func (s *Schedule) prev(at int64) (int64, bool) {
	if s.every > 0 {
		return s.prevEvery(at)
	}
	return s.prevCron(at)
}

// count returns how many slots t satisfy lo < t < hi.
func (s *Schedule) count(lo, hi int64) int64 {
	if hi-lo < 2 {
		return 0
	}
	if s.every > 0 {
		return s.countEvery(lo, hi)
	}
	return s.countCron(lo, hi)
}

// --- @every ---------------------------------------------------------------

// nextEvery returns the first slot anchor + k*interval > after, k >= 1,
// and whether it is representable.
func (s *Schedule) nextEvery(after int64) (int64, bool) {
	iv := int64(s.every / time.Second)
	k := int64(1)
	if after >= s.anchor {
		diff := after - s.anchor
		if diff < 0 { // overflow: only for times billions of years apart
			return 0, false
		}
		k = diff/iv + 1
	}
	if k > (math.MaxInt64-max(s.anchor, 0))/iv { // anchor + k*iv would overflow
		return 0, false
	}
	return s.anchor + k*iv, true
}

func (s *Schedule) prevEvery(at int64) (int64, bool) {
	iv := int64(s.every / time.Second)
	diff := at - s.anchor
	if at < s.anchor || diff < 0 || diff < iv { // diff < 0: overflow
		return 0, false
	}
	return s.anchor + diff/iv*iv, true
}

func (s *Schedule) countEvery(lo, hi int64) int64 {
	first, ok := s.nextEvery(lo)
	if !ok || first >= hi {
		return 0
	}
	last, _ := s.prevEvery(hi - 1)
	return (last-first)/int64(s.every/time.Second) + 1
}

// --- cron -----------------------------------------------------------------

// nextCron walks the wall-clock slots from the wall-clock time at after
// onwards and returns the first whose instant is after it. Slot instants
// never decrease as wall-clock slots increase (see resolve), so the first
// one found is the earliest; no slot before the wall-clock time at after
// can be after it, because by then the clock has already passed it.
func (s *Schedule) nextCron(after int64) (int64, bool) {
	r := resolver{loc: s.Location()}
	return s.nextCronWith(&r, after)
}

// nextCronWith is nextCron with a resolver whose cache the caller keeps
// across calls.
func (s *Schedule) nextCronWith(r *resolver, after int64) (int64, bool) {
	w := r.wall(after)
	z := floorDiv(w, secondsPerDay)
	sod := int(w - z*secondsPerDay)
	h0, m0 := sod/3600, sod%3600/60
	y, mo, d := civilFromDays(z)
	for limit := y + maxScanYears; y <= limit; {
		if s.month&(1<<mo) == 0 {
			// Skip the month: the usual reason a schedule has no slot
			// for a long time.
			y, mo = nextMonth(y, mo)
			z, d, h0, m0 = daysFromCivil(y, mo, 1), 1, 0, 0
			continue
		}
		if s.dayMatches(z, d) {
			for h := nextBit(s.hour, h0); h >= 0; h = nextBit(s.hour, h+1) {
				from := 0
				if h == h0 {
					from = m0
				}
				for m := nextBit(s.minute, from); m >= 0; m = nextBit(s.minute, m+1) {
					if t := r.resolve(z*secondsPerDay + int64(h*3600+m*60)); t > after {
						return t, true
					}
				}
			}
		}
		z++
		y, mo, d = civilFromDays(z)
		h0, m0 = 0, 0
	}
	return 0, false
}

// prevCron finds the latest slot <= at by searching for the largest x with
// next(x) <= at: first backwards in doubling steps, then by bisection. It
// costs about 50 calls of nextCron, whatever the schedule.
func (s *Schedule) prevCron(at int64) (int64, bool) {
	step := int64(60)
	lo := at - step
	for {
		if t, ok := s.nextCron(lo); ok && t <= at {
			break
		}
		if step > maxLookback {
			return 0, false
		}
		step *= 2
		lo = at - step
	}
	hi := at // next(at) > at by definition
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if t, ok := s.nextCron(mid); ok && t <= at {
			lo = mid
		} else {
			hi = mid
		}
	}
	t, _ := s.nextCron(lo)
	return t, true
}

// countCron counts slots in (lo, hi) day by day. Every instant belongs to
// exactly one calendar day D, the instants from the resolved midnight of D
// up to the resolved midnight of D+1. A day that lies wholly inside (lo, hi)
// and inside one zone offset is "regular": its slots are exactly its
// wall-clock slots, one each, so it contributes (hours × minutes) if the
// date matches. Other days (the two at the ends, and days with an offset
// change) are counted by stepping with nextCron. The cost is a few integer
// operations per day plus a few hundred nanoseconds per zone change, so
// decades take milliseconds, whatever the number of slots.
func (s *Schedule) countCron(lo, hi int64) int64 {
	r := resolver{loc: s.Location()}
	perDay := int64(bits.OnesCount64(s.hour) * bits.OnesCount64(s.minute))
	z := floorDiv(r.wall(lo), secondsPerDay)
	m0 := r.resolve(z * secondsPerDay)
	var n int64
	for m0 < hi {
		// m0 strictly inside its zone period: no gap ends at this
		// midnight, so no slot of an earlier day lands on it, and the
		// wall clock reads exactly midnight at m0.
		if p := r.period(m0); p.start < m0 {
			for {
				m1 := (z+1)*secondsPerDay - p.off
				if m1 >= p.end {
					break // the next midnight is not inside this period
				}
				if m0 > lo && m1 <= hi {
					if s.dateMatches(z) {
						n += perDay
					}
				} else {
					n += s.countByStepping(&r, max(lo, m0-1), min(hi, m1))
				}
				z, m0 = z+1, m1
				if m0 >= hi {
					return n
				}
			}
		}
		m1 := r.resolve((z + 1) * secondsPerDay)
		n += s.countByStepping(&r, max(lo, m0-1), min(hi, m1))
		z, m0 = z+1, m1
	}
	return n
}

// countByStepping counts slots in (lo, hi) one by one.
func (s *Schedule) countByStepping(r *resolver, lo, hi int64) int64 {
	var n int64
	for t := lo; ; n++ {
		var ok bool
		if t, ok = s.nextCronWith(r, t); !ok || t >= hi {
			return n
		}
	}
}

// dateMatches applies the month and both day fields to day z.
func (s *Schedule) dateMatches(z int64) bool {
	_, mo, d := civilFromDays(z)
	return s.month&(1<<mo) != 0 && s.dayMatches(z, d)
}

// dayMatches applies the day-of-month and day-of-week fields to day z
// (days since 1970-01-01), whose day of month is d. When either field is
// unrestricted both must match (one of them always does); when both are
// restricted either may (Vixie cron).
func (s *Schedule) dayMatches(z int64, d int) bool {
	domOK := s.dom&(1<<d) != 0
	dowOK := s.dow&(1<<weekday(z)) != 0
	if s.domStar || s.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// --- time zones -----------------------------------------------------------

// resolver maps wall-clock times to instants in one zone. It remembers
// the zone periods it walked through last, because consecutive slots
// usually need the same ones; it is a local value of one call, never shared.
type resolver struct {
	loc *time.Location
	// periods[:n] are consecutive zone periods (each ends where the next
	// starts) from the last lookup.
	periods [4]period
	n       int
}

// period is a stretch of time with one UTC offset: instants [start, end),
// unbounded ends as math.MinInt64 and math.MaxInt64.
type period struct{ start, end, off int64 }

// lookup asks package time for the zone period containing instant t.
func (r *resolver) lookup(t int64) period {
	tt := time.Unix(t, 0).In(r.loc)
	_, off := tt.Zone()
	start, end := tt.ZoneBounds()
	p := period{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
	if !start.IsZero() {
		p.start = start.Unix()
	}
	if !end.IsZero() {
		p.end = end.Unix()
	}
	return p
}

// cached returns the index of the remembered period containing t, or -1.
func (r *resolver) cached(t int64) int {
	for i := range r.n {
		if r.periods[i].start <= t && t < r.periods[i].end {
			return i
		}
	}
	return -1
}

// period returns the zone period containing instant t.
func (r *resolver) period(t int64) period {
	if i := r.cached(t); i >= 0 {
		return r.periods[i]
	}
	p := r.lookup(t)
	r.periods[0], r.n = p, 1
	return p
}

// wall returns the wall-clock time at instant t in civil seconds.
func (r *resolver) wall(t int64) int64 {
	return t + r.period(t).off
}

// resolve returns the first instant at which the wall clock reads c (civil
// seconds) or later. For a time that occurs once that is the time itself;
// inside a spring-forward gap it is the end of the gap; for a time that
// occurs twice it is the first occurrence. It never decreases as c
// increases, which nextCron and countCron rely on.
//
// It walks the zone periods from resolveWindow before c (until then the
// wall clock read earlier than c). In a period [start, end) with offset
// off the wall clock increases from start+off, so the first instant there
// reading c or later is max(pos, c-off), if that is before end.
func (r *resolver) resolve(c int64) int64 {
	pos := c - resolveWindow
	if i := r.cached(pos); i >= 0 {
		for ; i < r.n; i++ {
			p := r.periods[i]
			if t := max(c-p.off, pos); t < p.end {
				return t
			}
			pos = p.end
		}
	}
	pos, r.n = c-resolveWindow, 0
	for range 64 { // real zones change offset at most a few times a day
		p := r.lookup(pos)
		if r.n < len(r.periods) {
			r.periods[r.n] = p
			r.n++
		}
		if t := max(c-p.off, pos); t < p.end {
			return t
		}
		pos = p.end
	}
	return pos
}

// --- civil calendar -------------------------------------------------------

// daysFromCivil returns the day number (days since 1970-01-01) of the
// proleptic Gregorian date y-m-d (Howard Hinnant's algorithm). The schedule
// walks calendar days with it instead of time.Date, which would normalise
// away exactly the wall-clock times that daylight saving time skips.
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = yoe + era*400
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekday of day z, 0 = Sunday (1970-01-01 was a Thursday).
func weekday(z int64) int {
	return int(floorMod(z+4, 7))
}

func nextMonth(y int64, m int) (int64, int) {
	if m == 12 {
		return y + 1, 1
	}
	return y, m + 1
}

// nextBit returns the lowest set bit of set at position >= from, or -1.
func nextBit(set uint64, from int) int {
	if from > 63 {
		return -1
	}
	rest := set >> from << from
	if rest == 0 {
		return -1
	}
	return bits.TrailingZeros64(rest)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	return a - floorDiv(a, b)*b
}
