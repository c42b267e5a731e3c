package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed cron expression in a time zone. It is immutable and
// safe for concurrent use; create it with Parse.
type Schedule struct {
	// The allowed values of each field as bit sets: bit v set means v is
	// allowed. Day-of-week uses bits 0-6 (7 is folded into 0).
	minute, hour, dom, month, dow uint64
	// domStar and dowStar record that a day field was unrestricted, which
	// decides between AND and OR when matching days (see dayMatches).
	domStar, dowStar bool
	// macro is the canonical macro the expression was written as, for
	// String; empty for five-field expressions.
	macro string

	// every is the interval of an @every schedule; zero for cron.
	every time.Duration
	// anchor is the Unix second @every slots count from.
	anchor int64

	loc *time.Location
}

// MinEvery is the shortest @every interval. Slots closer together would
// give two runs the same name, which is built from the slot's Unix minute.
const MinEvery = time.Minute

// Parse parses a cron expression (see the package comment for the syntax)
// read in the IANA time zone tz; "" means UTC. A mistake in the expression
// is a *CronError matching ErrInvalidCron; an unknown zone is a
// *TimeZoneError matching ErrUnknownTimeZone. When both are wrong the
// expression is reported.
func Parse(expr, tz string) (*Schedule, error) {
	s, err := parseExpr(expr)
	if err != nil {
		return nil, err
	}
	loc, err := loadLocation(tz)
	if err != nil {
		return nil, err
	}
	s.loc = loc
	return s, nil
}

// loadLocation loads an IANA zone, refusing "Local": the manager's own
// zone is invisible to users and differs between installations.
func loadLocation(tz string) (*time.Location, error) {
	switch tz {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, &TimeZoneError{Name: tz}
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, &TimeZoneError{Name: tz, Err: err}
	}
	return loc, nil
}

// WithAnchor returns a copy of s whose @every slots are anchor + k*interval
// for k >= 1, anchor truncated to whole seconds. A zero anchor means the
// Unix epoch, which is also the default. Cron schedules ignore the anchor.
func (s *Schedule) WithAnchor(anchor time.Time) *Schedule {
	c := *s
	c.anchor = 0
	if !anchor.IsZero() {
		c.anchor = anchor.Unix()
	}
	return &c
}

// Location is the time zone the schedule is read in.
func (s *Schedule) Location() *time.Location {
	if s.loc == nil {
		return time.UTC
	}
	return s.loc
}

// Interval is the interval of an @every schedule, zero for cron schedules.
func (s *Schedule) Interval() time.Duration { return s.every }

// String returns the expression in a normalized form that Parse reads back
// as the same schedule: macros by their canonical name (@yearly, @daily),
// @every with a compact duration (@every 1h30m), fields as numbers with
// names, 7 and redundant forms resolved (MON-FRI -> 1-5, */1 -> *,
// 0,15,30,45 -> */15). The time zone is not part of it; see Location.
func (s *Schedule) String() string {
	if s.every > 0 {
		return "@every " + formatDuration(s.every)
	}
	if s.macro != "" {
		return s.macro
	}
	dom, dow := "*", "*"
	if !s.domStar {
		dom = formatSet(s.dom, 1, 31)
	}
	if !s.dowStar {
		dow = formatSet(s.dow, 0, 6)
	}
	return strings.Join([]string{formatSet(s.minute, 0, 59), formatSet(s.hour, 0, 23), dom, formatSet(s.month, 1, 12), dow}, " ")
}

// field describes one of the five cron fields.
type field struct {
	name     string
	min, max int
	// names are the three-letter names of values min, min+1, ... run
	// together (JANFEB...), or empty when the field has none.
	names string
	// optional fields accept ? as a synonym of *.
	optional bool
}

// Indexes of the five fields in an expression.
const (
	iMinute = iota
	iHour
	iDOM
	iMonth
	iDOW
)

// fields describes the five fields in order. A function rather than a
// package variable so that nothing can change the table.
func fields() [5]field {
	return [5]field{
		iMinute: {name: "minute", min: 0, max: 59},
		iHour:   {name: "hour", min: 0, max: 23},
		iDOM:    {name: "day-of-month", min: 1, max: 31, optional: true},
		iMonth:  {name: "month", min: 1, max: 12, names: "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC"},
		iDOW:    {name: "day-of-week", min: 0, max: 7, names: "SUNMONTUEWEDTHUFRISAT", optional: true},
	}
}

// macro returns the canonical name of an accepted macro and the five
// fields it stands for.
func macro(name string) (canonical, fields string, ok bool) {
	switch name {
	case "@yearly", "@annually":
		return "@yearly", "0 0 1 1 *", true
	case "@monthly":
		return "@monthly", "0 0 1 * *", true
	case "@weekly":
		return "@weekly", "0 0 * * 0", true
	case "@daily", "@midnight":
		return "@daily", "0 0 * * *", true
	case "@hourly":
		return "@hourly", "0 * * * *", true
	}
	return "", "", false
}

const fieldsHelp = "minute hour day-of-month month day-of-week"

func parseExpr(expr string) (*Schedule, error) {
	fail := func(fieldName, format string, args ...any) error {
		return &CronError{Expr: expr, Field: fieldName, Reason: fmt.Sprintf(format, args...)}
	}
	parts := strings.Fields(expr)
	if len(parts) == 0 {
		return nil, fail("", "the expression is empty; want five fields (%s) or a macro such as @daily", fieldsHelp)
	}
	first := strings.ToUpper(parts[0])
	if strings.HasPrefix(first, "TZ=") || strings.HasPrefix(first, "CRON_TZ=") {
		return nil, fail("", "a time zone prefix is not allowed in the expression; set the time zone separately")
	}
	if strings.HasPrefix(parts[0], "@") {
		name := strings.ToLower(parts[0])
		if name == "@every" {
			return parseEvery(expr, parts[1:])
		}
		canonical, equivalent, ok := macro(name)
		if !ok {
			return nil, fail("", "unknown macro %s; want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>", parts[0])
		}
		if len(parts) > 1 {
			return nil, fail("", "macro %s takes nothing after it", canonical)
		}
		s, err := parseExpr(equivalent)
		if err != nil {
			panic("schedule: macro " + canonical + " is invalid: " + err.Error()) // a bug in macro()
		}
		s.macro = canonical
		return s, nil
	}
	if len(parts) != 5 {
		return nil, fail("", "want 5 fields (%s), got %d", fieldsHelp, len(parts))
	}

	s := &Schedule{loc: time.UTC}
	sets := [5]*uint64{iMinute: &s.minute, iHour: &s.hour, iDOM: &s.dom, iMonth: &s.month, iDOW: &s.dow}
	for i, f := range fields() {
		set, star, reason := parseField(parts[i], f)
		if reason != "" {
			return nil, fail(f.name, "%s", reason)
		}
		*sets[i] = set
		switch i {
		case iDOM:
			s.domStar = star
		case iDOW:
			s.dowStar = star
		}
	}
	// Sunday is both 0 and 7; keep it in bit 0 only.
	if s.dow&(1<<7) != 0 {
		s.dow = s.dow&^(1<<7) | 1
	}

	// A day field listing every value matches every day, whatever the
	// other day field says (OR: it always matches; AND: the other is *).
	// Normalizing it to * keeps String short and the matching simple.
	fullDOM, fullDOW := span(1, 31), span(0, 6)
	if (!s.domStar && s.dom == fullDOM) || (!s.dowStar && s.dow == fullDOW) {
		s.dom, s.dow, s.domStar, s.dowStar = fullDOM, fullDOW, true, true
	}

	if !s.domStar && s.dowStar && !domPossible(s.dom, s.month) {
		return nil, fail(fields()[iDOM].name, "day-of-month %s never occurs in month %s, so the schedule would never run", parts[2], parts[3])
	}
	return s, nil
}

// domPossible reports whether some allowed day of month exists in some
// allowed month (in some year: February 29 counts).
func domPossible(dom, months uint64) bool {
	for m := 1; m <= 12; m++ {
		if months&(1<<m) != 0 && dom&span(1, maxDaysIn(m)) != 0 {
			return true
		}
	}
	return false
}

// maxDaysIn is the most days month m can have.
func maxDaysIn(m int) int {
	switch m {
	case 2:
		return 29
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func parseEvery(expr string, args []string) (*Schedule, error) {
	fail := func(format string, a ...any) error {
		return &CronError{Expr: expr, Field: "@every", Reason: fmt.Sprintf(format, a...)}
	}
	if len(args) != 1 {
		return nil, fail("@every needs exactly one duration, for example @every 6h")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return nil, fail("@every duration %q is not a duration such as 90m or 6h", args[0])
	}
	if d < MinEvery {
		return nil, fail("@every duration %s is shorter than the minimum %s", args[0], formatDuration(MinEvery))
	}
	if d%time.Second != 0 {
		return nil, fail("@every duration %s is not a whole number of seconds", args[0])
	}
	return &Schedule{every: d, loc: time.UTC}, nil
}

// parseField parses one field into a bit set. star reports an unrestricted
// field (* or ?, with no step or step 1). reason is empty on success and a
// sentence fragment naming the field otherwise.
func parseField(text string, f field) (set uint64, star bool, reason string) {
	if text == "?" && !f.optional {
		return 0, false, fmt.Sprintf("%s %q: ? is only allowed in day-of-month and day-of-week", f.name, text)
	}
	items := strings.Split(text, ",")
	for _, item := range items {
		if item == "" {
			return 0, false, fmt.Sprintf("%s %q has an empty list item", f.name, text)
		}
		rangePart, stepPart, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, ok := parseNumber(stepPart)
			if !ok {
				return 0, false, fmt.Sprintf("%s step %q in %q is not a number", f.name, stepPart, item)
			}
			if n < 1 || n > f.max {
				return 0, false, fmt.Sprintf("%s step %s in %q is out of range 1-%d", f.name, stepPart, item, f.max)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rangePart == "*" || (rangePart == "?" && f.optional):
			lo, hi = f.min, f.max
			if f.max == 7 { // day-of-week: * is 0-6, 7 would repeat Sunday
				hi = 6
			}
			if len(items) == 1 && step == 1 {
				star = true
			}
		case strings.Contains(rangePart, "-"):
			from, to, _ := strings.Cut(rangePart, "-")
			if strings.Contains(to, "-") || from == "" || to == "" {
				return 0, false, fmt.Sprintf("%s %q is not a valid range; write it as start-end, for example 1-5", f.name, item)
			}
			var r string
			if lo, r = parseValue(from, f); r != "" {
				return 0, false, r
			}
			if hi, r = parseValue(to, f); r != "" {
				return 0, false, r
			}
			if f.names != "" && f.max == 7 && hi == 0 && lo > 0 {
				hi = 7 // FRI-SUN: Sunday at the end of a range is 7
			}
			if lo > hi {
				return 0, false, fmt.Sprintf("%s range %s is backwards: the start must not be after the end", f.name, rangePart)
			}
		default:
			var r string
			if lo, r = parseValue(rangePart, f); r != "" {
				return 0, false, r
			}
			hi = lo
			if hasStep {
				hi = f.max // N/step means N-max/step, as in Kubernetes CronJobs
			}
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
	}
	return set, star, ""
}

// parseValue parses a number or a name of field f.
func parseValue(text string, f field) (int, string) {
	if n, ok := parseNumber(text); ok {
		if n < f.min || n > f.max {
			return 0, fmt.Sprintf("%s %s is out of range %d-%d", f.name, text, f.min, f.max)
		}
		return n, ""
	}
	if f.names != "" {
		for i := 0; i+3 <= len(f.names); i += 3 {
			if strings.EqualFold(f.names[i:i+3], text) {
				return f.min + i/3, ""
			}
		}
		kind := "month name (JAN-DEC)"
		if f.max == 7 {
			kind = "day name (SUN-SAT)"
		}
		return 0, fmt.Sprintf("%s %q is not a number or a %s", f.name, text, kind)
	}
	return 0, fmt.Sprintf("%s %q is not a number", f.name, text)
}

// parseNumber parses plain decimal digits. Numbers too long to be in any
// range become a large value, so the caller reports them as out of range.
func parseNumber(text string) (int, bool) {
	if text == "" {
		return 0, false
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	if len(text) > 6 {
		return 1 << 30, true
	}
	n, err := strconv.Atoi(text)
	return n, err == nil
}

// span is the bit set of lo..hi.
func span(lo, hi int) uint64 {
	return (uint64(1)<<(hi+1) - 1) &^ (uint64(1)<<lo - 1)
}

// formatSet writes a bit set over min..max as a field Parse reads back.
func formatSet(set uint64, min, max int) string {
	if set == span(min, max) {
		return "*"
	}
	values := make([]int, 0, bits.OnesCount64(set))
	for v := min; v <= max; v++ {
		if set&(1<<v) != 0 {
			values = append(values, v)
		}
	}
	if n := len(values); n >= 2 {
		step := values[1] - values[0]
		regular := step > 1
		for i := 2; i < n && regular; i++ {
			regular = values[i]-values[i-1] == step
		}
		switch {
		case regular && values[0] == min && values[n-1]+step > max:
			return "*/" + strconv.Itoa(step)
		case regular && n >= 3:
			return fmt.Sprintf("%d-%d/%d", values[0], values[n-1], step)
		}
	}
	var parts []string
	for i := 0; i < len(values); {
		j := i
		for j+1 < len(values) && values[j+1] == values[j]+1 {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, fmt.Sprintf("%d-%d", values[i], values[j]))
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, strconv.Itoa(values[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// formatDuration writes d (whole seconds) without zero units: 1h30m, 90s
// -> 1m30s, 6h.
func formatDuration(d time.Duration) string {
	var b strings.Builder
	h, m, s := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
