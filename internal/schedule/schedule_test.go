package schedule

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones tested must not depend on the machine's tzdata
)

// at is a UTC instant; expectations are written in UTC with the local time
// in a comment, so they do not depend on the code under test.
func at(y int, mo time.Month, d, h, mi int) time.Time {
	return time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
}

func mustParse(t testing.TB, expr, tz string) *Schedule {
	t.Helper()
	s, err := Parse(expr, tz)
	if err != nil {
		t.Fatalf("Parse(%q, %q): %v", expr, tz, err)
	}
	return s
}

func mustLoad(t testing.TB, tz string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func sameInstants(got, want []time.Time) bool {
	return slices.EqualFunc(got, want, time.Time.Equal)
}

func formatInstants(ts []time.Time) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.UTC().Format("2006-01-02 15:04:05Z")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr, tz  string
		want      error
		field     string // for cron errors
		wantExact string // the whole message, when given
		wantPart  string // a part of the message
	}{
		{expr: "61 * * * *", want: ErrInvalidCron, field: "minute", wantExact: `cron "61 * * * *": minute 61 is out of range 0-59`},
		{expr: "0 0 * * *", tz: "Mars/Base", want: ErrUnknownTimeZone, wantExact: `unknown time zone "Mars/Base"`},
		{expr: "0 0 * * *", tz: "Local", want: ErrUnknownTimeZone, wantPart: `unknown time zone "Local"`},
		{expr: "0 0 * * *", tz: "../etc/passwd", want: ErrUnknownTimeZone, wantPart: `unknown time zone "../etc/passwd"`},
		{expr: "", want: ErrInvalidCron, wantExact: `cron "": the expression is empty; want five fields (minute hour day-of-month month day-of-week) or a macro such as @daily`},
		{expr: "   ", want: ErrInvalidCron, wantPart: "the expression is empty"},
		{expr: "* * *", want: ErrInvalidCron, wantExact: `cron "* * *": want 5 fields (minute hour day-of-month month day-of-week), got 3`},
		{expr: "0 0 * * * *", want: ErrInvalidCron, wantPart: "want 5 fields (minute hour day-of-month month day-of-week), got 6"},
		{expr: "0 24 * * *", want: ErrInvalidCron, field: "hour", wantPart: "hour 24 is out of range 0-23"},
		{expr: "0 0 0 * *", want: ErrInvalidCron, field: "day-of-month", wantPart: "day-of-month 0 is out of range 1-31"},
		{expr: "0 0 32 * *", want: ErrInvalidCron, field: "day-of-month", wantPart: "day-of-month 32 is out of range 1-31"},
		{expr: "0 0 * 13 *", want: ErrInvalidCron, field: "month", wantPart: "month 13 is out of range 1-12"},
		{expr: "0 0 * 0 *", want: ErrInvalidCron, field: "month", wantPart: "month 0 is out of range 1-12"},
		{expr: "0 0 * * 8", want: ErrInvalidCron, field: "day-of-week", wantPart: "day-of-week 8 is out of range 0-7"},
		{expr: "99999999999999999999 * * * *", want: ErrInvalidCron, field: "minute", wantPart: "minute 99999999999999999999 is out of range 0-59"},
		{expr: "x * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "x" is not a number`},
		{expr: "-1 * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "-1" is not a valid range`},
		{expr: "0 MON * * *", want: ErrInvalidCron, field: "hour", wantPart: `hour "MON" is not a number`},
		{expr: "0 0 * FOO *", want: ErrInvalidCron, field: "month", wantPart: `month "FOO" is not a number or a month name (JAN-DEC)`},
		{expr: "0 0 * * FUNDAY", want: ErrInvalidCron, field: "day-of-week", wantPart: `day-of-week "FUNDAY" is not a number or a day name (SUN-SAT)`},
		{expr: "0 0 * * MON#2", want: ErrInvalidCron, field: "day-of-week", wantPart: `day-of-week "MON#2" is not a number or a day name`},
		{expr: "0 0 L * *", want: ErrInvalidCron, field: "day-of-month", wantPart: `day-of-month "L" is not a number`},
		{expr: "30-10 * * * *", want: ErrInvalidCron, field: "minute", wantPart: "minute range 30-10 is backwards: the start must not be after the end"},
		{expr: "0 0 * DEC-JAN *", want: ErrInvalidCron, field: "month", wantPart: "month range DEC-JAN is backwards"},
		{expr: "1-2-3 * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "1-2-3" is not a valid range; write it as start-end`},
		{expr: "1- * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "1-" is not a valid range`},
		{expr: "*/0 * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute step 0 in "*/0" is out of range 1-59`},
		{expr: "*/60 * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute step 60 in "*/60" is out of range 1-59`},
		{expr: "0 */x * * *", want: ErrInvalidCron, field: "hour", wantPart: `hour step "x" in "*/x" is not a number`},
		{expr: "0 */ * * *", want: ErrInvalidCron, field: "hour", wantPart: `hour step "" in "*/" is not a number`},
		{expr: "1,,2 * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "1,,2" has an empty list item`},
		{expr: "1, * * * *", want: ErrInvalidCron, field: "minute", wantPart: `minute "1," has an empty list item`},
		{expr: "? * * * *", want: ErrInvalidCron, field: "minute", wantPart: "? is only allowed in day-of-month and day-of-week"},
		{expr: "0 0 30 2 *", want: ErrInvalidCron, field: "day-of-month", wantExact: `cron "0 0 30 2 *": day-of-month 30 never occurs in month 2, so the schedule would never run`},
		{expr: "0 0 31 4,6,9,11 *", want: ErrInvalidCron, field: "day-of-month", wantPart: "day-of-month 31 never occurs in month 4,6,9,11"},
		{expr: "TZ=Europe/Berlin 0 0 * * *", want: ErrInvalidCron, wantPart: "a time zone prefix is not allowed in the expression; set the time zone separately"},
		{expr: "CRON_TZ=UTC 0 0 * * *", want: ErrInvalidCron, wantPart: "a time zone prefix is not allowed"},
		{expr: "@fortnightly", want: ErrInvalidCron, wantExact: `cron "@fortnightly": unknown macro @fortnightly; want @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>`},
		{expr: "@daily 0", want: ErrInvalidCron, wantPart: "macro @daily takes nothing after it"},
		{expr: "@every", want: ErrInvalidCron, field: "@every", wantPart: "@every needs exactly one duration, for example @every 6h"},
		{expr: "@every 1h 2h", want: ErrInvalidCron, field: "@every", wantPart: "@every needs exactly one duration"},
		{expr: "@every 5x", want: ErrInvalidCron, field: "@every", wantPart: `@every duration "5x" is not a duration such as 90m or 6h`},
		{expr: "@every 30s", want: ErrInvalidCron, field: "@every", wantExact: `cron "@every 30s": @every duration 30s is shorter than the minimum 1m`},
		{expr: "@every -6h", want: ErrInvalidCron, field: "@every", wantPart: "@every duration -6h is shorter than the minimum 1m"},
		{expr: "@every 1m30.5s", want: ErrInvalidCron, field: "@every", wantPart: "@every duration 1m30.5s is not a whole number of seconds"},
		// The expression is checked first: both wrong reports the cron.
		{expr: "61 * * * *", tz: "Mars/Base", want: ErrInvalidCron, field: "minute", wantPart: "minute 61"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+"|"+tt.tz, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.tz)
			if err == nil {
				t.Fatalf("Parse = %v, want an error", s)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.want)
			}
			other := ErrUnknownTimeZone
			if tt.want == ErrUnknownTimeZone {
				other = ErrInvalidCron
			}
			if errors.Is(err, other) {
				t.Errorf("errors.Is(%v, %v) = true; the two kinds must be told apart", err, other)
			}
			if tt.wantExact != "" && err.Error() != tt.wantExact {
				t.Errorf("error = %q, want %q", err, tt.wantExact)
			}
			if tt.wantPart != "" && !strings.Contains(err.Error(), tt.wantPart) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantPart)
			}
			var ce *CronError
			if errors.As(err, &ce) != (tt.want == ErrInvalidCron) {
				t.Fatalf("errors.As(*CronError) = %v for %v", tt.want != ErrInvalidCron, err)
			}
			if ce != nil && ce.Field != tt.field {
				t.Errorf("Field = %q, want %q", ce.Field, tt.field)
			}
		})
	}
}

func TestTimeZoneErrorUnwrapsCause(t *testing.T) {
	_, err := Parse("@daily", "Mars/Base")
	var tze *TimeZoneError
	if !errors.As(err, &tze) || tze.Name != "Mars/Base" || tze.Err == nil {
		t.Fatalf("err = %#v, want a *TimeZoneError naming Mars/Base with the LoadLocation cause", err)
	}
	if errors.Unwrap(err) != tze.Err {
		t.Errorf("Unwrap = %v, want the LoadLocation error", errors.Unwrap(err))
	}
}

func TestParseNormalizes(t *testing.T) {
	tests := []struct {
		expr, want string
	}{
		{"0 0 * * *", "0 0 * * *"},
		{"  0\t0  *  *  *  ", "0 0 * * *"},
		{"*/15 * * * *", "*/15 * * * *"},
		{"0,15,30,45 * * * *", "*/15 * * * *"},
		{"*/1 */1 */1 */1 */1", "* * * * *"},
		{"0-59 0-23 * 1-12 *", "* * * * *"},
		{"1-30/5 * * * *", "1-26/5 * * * *"},
		{"5/15 * * * *", "5-50/15 * * * *"},          // N/step is N-max/step
		{"0 0 1/10 * *", "0 0 */10 * *"},             // 1,11,21,31
		{"1,2,3,5,7,8 * * * *", "1-3,5,7,8 * * * *"}, // runs of three become ranges
		{"30 4 1,15 * 5", "30 4 1,15 * 5"},
		{"0 9 * * mon-fri", "0 9 * * 1-5"},
		{"0 9 * * MON,wed,Fri", "0 9 * * 1-5/2"},
		{"0 0 1 jan,APR,jul,Oct *", "0 0 1 */3 *"},
		{"0 0 1 feb,may,aug *", "0 0 1 2-8/3 *"},
		{"0 0 * * 7", "0 0 * * 0"},           // 7 is Sunday
		{"0 0 * * SUN", "0 0 * * 0"},         // names are case-insensitive
		{"0 0 * * 0,7", "0 0 * * 0"},         // and Sunday is counted once
		{"0 0 * * FRI-SUN", "0 0 * * 0,5,6"}, // a range may end on Sunday
		{"0 0 * * 5-7", "0 0 * * 0,5,6"},
		{"0 0 ? * 1", "0 0 * * 1"},   // ? is * in the day fields
		{"0 0 1 * 0-6", "0 0 * * *"}, // a day field listing every day matches every day
		{"0 0 1-31 * 1", "0 0 * * *"},
		{"0 0 */2 * 1", "0 0 */2 * 1"}, // */2 is a restriction (OR with Monday)
		{"@yearly", "@yearly"},
		{"@annually", "@yearly"},
		{"@Monthly", "@monthly"},
		{"@weekly", "@weekly"},
		{"@midnight", "@daily"},
		{"@hourly", "@hourly"},
		{"@every 6h", "@every 6h"},
		{"@every 90m", "@every 1h30m"},
		{"@every 1.5h", "@every 1h30m"},
		{"@every 150s", "@every 2m30s"},
		{"@every 1m", "@every 1m"},
		{"@every 36h0m1s", "@every 36h1s"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s := mustParse(t, tt.expr, "Europe/Berlin")
			if got := s.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			// The normalized form is the same schedule.
			again := mustParse(t, s.String(), "Europe/Berlin")
			from := at(2026, time.March, 1, 0, 0)
			if a, b := s.NextN(from, 50), again.NextN(from, 50); !sameInstants(a, b) {
				t.Errorf("%q and its normal form %q differ:\n%s\n%s", tt.expr, s.String(), formatInstants(a), formatInstants(b))
			}
		})
	}
}

func TestParseZones(t *testing.T) {
	for tz, want := range map[string]string{"": "UTC", "UTC": "UTC", "Europe/Berlin": "Europe/Berlin", "Asia/Kolkata": "Asia/Kolkata"} {
		if got := mustParse(t, "@daily", tz).Location().String(); got != want {
			t.Errorf("Parse(@daily, %q).Location() = %q, want %q", tz, got, want)
		}
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name, expr, tz string
		after          time.Time
		want           []time.Time
	}{
		{
			name: "every 15 minutes", expr: "*/15 * * * *", tz: "UTC",
			after: at(2026, time.January, 1, 0, 7),
			want:  []time.Time{at(2026, 1, 1, 0, 15), at(2026, 1, 1, 0, 30), at(2026, 1, 1, 0, 45), at(2026, 1, 1, 1, 0)},
		},
		{
			name: "strictly after a slot", expr: "*/15 * * * *", tz: "UTC",
			after: at(2026, time.January, 1, 0, 15),
			want:  []time.Time{at(2026, 1, 1, 0, 30)},
		},
		{
			name: "seconds and nanoseconds of after", expr: "*/15 * * * *", tz: "UTC",
			after: time.Date(2026, 1, 1, 0, 14, 59, 999999999, time.UTC),
			want:  []time.Time{at(2026, 1, 1, 0, 15), at(2026, 1, 1, 0, 30)},
		},
		{
			name: "across a year end", expr: "30 23 31 12 *", tz: "UTC",
			after: at(2026, time.December, 31, 23, 30),
			want:  []time.Time{at(2027, 12, 31, 23, 30)},
		},
		{
			name: "day 31 skips short months", expr: "0 0 31 * *", tz: "UTC",
			after: at(2026, time.January, 31, 0, 0),
			want:  []time.Time{at(2026, 3, 31, 0, 0), at(2026, 5, 31, 0, 0), at(2026, 7, 31, 0, 0), at(2026, 8, 31, 0, 0)},
		},
		{
			name: "day 30 skips February", expr: "0 0 30 * *", tz: "UTC",
			after: at(2028, time.January, 30, 0, 0),
			want:  []time.Time{at(2028, 3, 30, 0, 0)},
		},
		{
			name: "February 29 in leap years", expr: "0 0 29 2 *", tz: "UTC",
			after: at(2025, time.January, 1, 0, 0),
			want:  []time.Time{at(2028, 2, 29, 0, 0), at(2032, 2, 29, 0, 0)},
		},
		{
			name: "February 29 across 2100, which is not a leap year", expr: "0 0 29 2 *", tz: "UTC",
			after: at(2096, time.March, 1, 0, 0),
			want:  []time.Time{at(2104, 2, 29, 0, 0)},
		},
		{
			name: "yearly macro", expr: "@yearly", tz: "UTC",
			after: at(2026, time.January, 1, 0, 0),
			want:  []time.Time{at(2027, 1, 1, 0, 0), at(2028, 1, 1, 0, 0)},
		},
		{
			name: "monthly macro", expr: "@monthly", tz: "UTC",
			after: at(2026, time.January, 15, 0, 0),
			want:  []time.Time{at(2026, 2, 1, 0, 0), at(2026, 3, 1, 0, 0)},
		},
		{
			// 2026-02-01 is a Sunday.
			name: "weekly macro runs on Sundays", expr: "@weekly", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 8, 0, 0), at(2026, 2, 15, 0, 0)},
		},
		{
			name: "hourly macro", expr: "@hourly", tz: "UTC",
			after: at(2026, time.February, 1, 0, 30),
			want:  []time.Time{at(2026, 2, 1, 1, 0), at(2026, 2, 1, 2, 0)},
		},
		{
			name: "Sunday as 0", expr: "0 0 * * 0", tz: "UTC",
			after: at(2026, time.February, 2, 0, 0),
			want:  []time.Time{at(2026, 2, 8, 0, 0), at(2026, 2, 15, 0, 0)},
		},
		{
			name: "Sunday as 7", expr: "0 0 * * 7", tz: "UTC",
			after: at(2026, time.February, 2, 0, 0),
			want:  []time.Time{at(2026, 2, 8, 0, 0), at(2026, 2, 15, 0, 0)},
		},
		{
			name: "weekend as FRI-SUN", expr: "0 0 * * FRI-SUN", tz: "UTC",
			after: at(2026, time.February, 2, 0, 0),
			want:  []time.Time{at(2026, 2, 6, 0, 0), at(2026, 2, 7, 0, 0), at(2026, 2, 8, 0, 0), at(2026, 2, 13, 0, 0)},
		},
		{
			// Both day fields restricted: the 1st OR a Monday. March 1 2026
			// is a Sunday.
			name: "day-of-month OR day-of-week", expr: "0 0 1 * MON", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 2, 0, 0), at(2026, 2, 9, 0, 0), at(2026, 2, 16, 0, 0), at(2026, 2, 23, 0, 0), at(2026, 3, 1, 0, 0), at(2026, 3, 2, 0, 0)},
		},
		{
			name: "*/10 in day-of-month is a restriction, so OR applies", expr: "0 0 */10 * 1", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 2, 0, 0), at(2026, 2, 9, 0, 0), at(2026, 2, 11, 0, 0), at(2026, 2, 16, 0, 0), at(2026, 2, 21, 0, 0), at(2026, 2, 23, 0, 0), at(2026, 3, 1, 0, 0)},
		},
		{
			name: "day-of-month with * day-of-week: AND", expr: "0 0 13 * *", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 13, 0, 0), at(2026, 3, 13, 0, 0)},
		},
		{
			name: "day-of-week with ? day-of-month: AND", expr: "0 0 ? * FRI", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 6, 0, 0), at(2026, 2, 13, 0, 0)},
		},
		{
			name: "Friday the 13th needs both: not expressible, OR gives the union", expr: "0 0 13 * 5", tz: "UTC",
			after: at(2026, time.February, 1, 0, 0),
			want:  []time.Time{at(2026, 2, 6, 0, 0), at(2026, 2, 13, 0, 0), at(2026, 2, 20, 0, 0)},
		},
		{
			name: "months by name", expr: "0 0 1 MAR,sep *", tz: "UTC",
			after: at(2026, time.March, 1, 0, 0),
			want:  []time.Time{at(2026, 9, 1, 0, 0), at(2027, 3, 1, 0, 0)},
		},
		{
			// IST is +05:30: 09:00 local is 03:30 UTC.
			name: "Asia/Kolkata half-hour offset", expr: "0 9 * * *", tz: "Asia/Kolkata",
			after: at(2026, time.June, 1, 0, 0),
			want:  []time.Time{at(2026, 6, 1, 3, 30), at(2026, 6, 2, 3, 30)},
		},
		{
			// 00:00 IST on January 1 is 18:30 UTC on December 31.
			name: "Asia/Kolkata year boundary", expr: "@yearly", tz: "Asia/Kolkata",
			after: at(2026, time.June, 1, 0, 0),
			want:  []time.Time{at(2026, 12, 31, 18, 30)},
		},
		{
			// Friday 2026-03-06; DST starts Sunday 2026-03-08 (EST -5 -> EDT -4).
			name: "America/New_York weekdays across spring forward", expr: "0 9 * * MON-FRI", tz: "America/New_York",
			after: at(2026, time.March, 6, 15, 0),
			want:  []time.Time{at(2026, 3, 9, 13, 0), at(2026, 3, 10, 13, 0)},
		},
		{
			// 02:30 does not exist on 2026-03-08: it runs at 03:00 EDT.
			name: "America/New_York 02:30 in the gap", expr: "30 2 * * *", tz: "America/New_York",
			after: at(2026, time.March, 7, 12, 0),
			want:  []time.Time{at(2026, 3, 8, 7, 0), at(2026, 3, 9, 6, 30)},
		},
		{
			// 01:30 occurs twice on 2026-11-01: the first (EDT) counts.
			name: "America/New_York 01:30 in the overlap", expr: "30 1 * * *", tz: "America/New_York",
			after: at(2026, time.October, 31, 12, 0),
			want:  []time.Time{at(2026, 11, 1, 5, 30), at(2026, 11, 2, 6, 30)},
		},
		{
			// 02:30 does not exist on 2026-03-29: once, at 03:00 CEST.
			name: "Europe/Berlin daily 02:30 spring forward", expr: "30 2 * * *", tz: "Europe/Berlin",
			after: at(2026, time.March, 28, 11, 0),
			want:  []time.Time{at(2026, 3, 29, 1, 0), at(2026, 3, 30, 0, 30)},
		},
		{
			name: "Europe/Berlin daily 02:30 not twice after firing at the gap's end", expr: "30 2 * * *", tz: "Europe/Berlin",
			after: at(2026, time.March, 29, 1, 0),
			want:  []time.Time{at(2026, 3, 30, 0, 30)},
		},
		{
			// 02:30 occurs twice on 2026-10-25: once, at 02:30 CEST.
			name: "Europe/Berlin daily 02:30 fall back", expr: "30 2 * * *", tz: "Europe/Berlin",
			after: at(2026, time.October, 24, 12, 0),
			want:  []time.Time{at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)},
		},
		{
			// After is 02:10 CET, in the repeated hour: 02:30 CET is the
			// second occurrence and does not fire.
			name: "Europe/Berlin daily 02:30 from inside the repeated hour", expr: "30 2 * * *", tz: "Europe/Berlin",
			after: at(2026, time.October, 25, 1, 10),
			want:  []time.Time{at(2026, 10, 26, 1, 30)},
		},
		{
			// 01:00 CET, then 02:00 (gap) and 03:00 CEST are one instant.
			name: "Europe/Berlin hourly spring forward", expr: "0 * * * *", tz: "Europe/Berlin",
			after: at(2026, time.March, 28, 23, 30),
			want:  []time.Time{at(2026, 3, 29, 0, 0), at(2026, 3, 29, 1, 0), at(2026, 3, 29, 2, 0)},
		},
		{
			// 01:00 CEST, 02:00 CEST, then 03:00 CET: the repeated 02:00
			// CET does not fire.
			name: "Europe/Berlin hourly fall back", expr: "0 * * * *", tz: "Europe/Berlin",
			after: at(2026, time.October, 24, 22, 30),
			want:  []time.Time{at(2026, 10, 24, 23, 0), at(2026, 10, 25, 0, 0), at(2026, 10, 25, 2, 0), at(2026, 10, 25, 3, 0)},
		},
		{
			// 01:45 CET, then 02:00-02:45 (gap) all at 03:00 CEST, once.
			name: "Europe/Berlin */15 spring forward", expr: "*/15 * * * *", tz: "Europe/Berlin",
			after: at(2026, time.March, 29, 0, 40),
			want:  []time.Time{at(2026, 3, 29, 0, 45), at(2026, 3, 29, 1, 0), at(2026, 3, 29, 1, 15)},
		},
		{
			// 02:45 CEST, then 03:00 CET: no run in the repeated hour.
			name: "Europe/Berlin */15 fall back", expr: "*/15 * * * *", tz: "Europe/Berlin",
			after: at(2026, time.October, 25, 0, 40),
			want:  []time.Time{at(2026, 10, 25, 0, 45), at(2026, 10, 25, 2, 0), at(2026, 10, 25, 2, 15)},
		},
		{
			// 02:10 CET is inside the repeated hour.
			name: "Europe/Berlin */15 from inside the repeated hour", expr: "*/15 * * * *", tz: "Europe/Berlin",
			after: at(2026, time.October, 25, 1, 10),
			want:  []time.Time{at(2026, 10, 25, 2, 0)},
		},
		{
			// Lord Howe moves 30 minutes: 02:00 LHST (+10:30) -> 02:30 LHDT
			// (+11) on 2026-10-04, at 15:30 UTC. 02:15 runs at 02:30.
			name: "Australia/Lord_Howe daily 02:15 in the 30-minute gap", expr: "15 2 * * *", tz: "Australia/Lord_Howe",
			after: at(2026, time.October, 3, 0, 0),
			want:  []time.Time{at(2026, 10, 3, 15, 30), at(2026, 10, 4, 15, 15)},
		},
		{
			// 02:00 and 02:15 (gap) and 02:30 are one instant, 15:30 UTC.
			name: "Australia/Lord_Howe */15 spring forward", expr: "*/15 * * * *", tz: "Australia/Lord_Howe",
			after: at(2026, time.October, 3, 15, 10),
			want:  []time.Time{at(2026, 10, 3, 15, 15), at(2026, 10, 3, 15, 30), at(2026, 10, 3, 15, 45)},
		},
		{
			// 02:00 LHDT -> 01:30 LHST on 2026-04-05 at 15:00 UTC; 01:45
			// occurs twice and runs at the first (+11).
			name: "Australia/Lord_Howe daily 01:45 in the 30-minute overlap", expr: "45 1 * * *", tz: "Australia/Lord_Howe",
			after: at(2026, time.April, 4, 0, 0),
			want:  []time.Time{at(2026, 4, 4, 14, 45), at(2026, 4, 5, 15, 15)},
		},
		{
			name: "Australia/Lord_Howe */15 fall back", expr: "*/15 * * * *", tz: "Australia/Lord_Howe",
			after: at(2026, time.April, 4, 14, 40),
			want:  []time.Time{at(2026, 4, 4, 14, 45), at(2026, 4, 4, 15, 30), at(2026, 4, 4, 15, 45)},
		},
		{
			// Samoa skipped 2011-12-30 entirely (-10 -> +14 at midnight):
			// its midnight runs when the 31st begins, once.
			name: "Pacific/Apia skipped day", expr: "0 0 * * *", tz: "Pacific/Apia",
			after: at(2011, time.December, 28, 12, 0),
			want:  []time.Time{at(2011, 12, 29, 10, 0), at(2011, 12, 30, 10, 0), at(2011, 12, 31, 10, 0)},
		},
		{
			// Santiago falls back at midnight (00:00 -03 -> 23:00 -04 on
			// 2026-04-04): 23:30 runs once at its first occurrence, and
			// midnight of the 5th is reached only after the repeated hour.
			name: "America/Santiago fall back at midnight", expr: "30 23,0 * * *", tz: "America/Santiago",
			after: at(2026, time.April, 4, 12, 0),
			want:  []time.Time{at(2026, 4, 5, 2, 30), at(2026, 4, 5, 4, 30), at(2026, 4, 6, 3, 30)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			got := s.NextN(tt.after, len(tt.want))
			if !sameInstants(got, tt.want) {
				t.Fatalf("NextN(%s, %d) =\n  %s\nwant\n  %s", tt.after.UTC().Format(time.RFC3339), len(tt.want), formatInstants(got), formatInstants(tt.want))
			}
			if next := s.Next(tt.after); !next.Equal(tt.want[0]) {
				t.Errorf("Next = %s, want %s", next.UTC(), tt.want[0])
			}
			if loc := got[0].Location().String(); loc != s.Location().String() {
				t.Errorf("result is in %s, want the schedule's zone %s", loc, s.Location())
			}
		})
	}
}

// oracle lists a schedule's slots in (from, to) straight from the rule in
// the package comment, by brute force: the wall clock of every minute of
// the window is read with package time, and each wall-clock time c that
// match accepts fires at the first minute whose clock reads c or later.
// It shares no code with the package. The window must not start inside a
// repeated hour.
func oracle(loc *time.Location, from, to time.Time, match func(w time.Time) bool) []time.Time {
	var instants []time.Time
	var runningMax []int64 // the latest wall-clock reading so far, as civil Unix seconds
	for t := from.Truncate(time.Minute); !t.After(to); t = t.Add(time.Minute) {
		l := t.In(loc)
		w := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC).Unix()
		if n := len(runningMax); n > 0 && runningMax[n-1] > w {
			w = runningMax[n-1]
		}
		instants = append(instants, t)
		runningMax = append(runningMax, w)
	}
	var out []time.Time
	for c := runningMax[0]; c <= runningMax[len(runningMax)-1]; c += 60 {
		if !match(time.Unix(c, 0).UTC()) {
			continue
		}
		i := sort.Search(len(runningMax), func(i int) bool { return runningMax[i] >= c })
		t := instants[i]
		if t.After(from) && t.Before(to) && (len(out) == 0 || !out[len(out)-1].Equal(t)) {
			out = append(out, t)
		}
	}
	return out
}

// TestNextMatchesOracle compares Next and Due with the brute-force oracle
// over the daylight-saving transitions of several zones.
func TestNextMatchesOracle(t *testing.T) {
	schedules := []struct {
		expr  string
		match func(w time.Time) bool // w: wall-clock time written as UTC
	}{
		{"* * * * *", func(time.Time) bool { return true }},
		{"*/15 * * * *", func(w time.Time) bool { return w.Minute()%15 == 0 }},
		{"0 * * * *", func(w time.Time) bool { return w.Minute() == 0 }},
		{"30 * * * *", func(w time.Time) bool { return w.Minute() == 30 }},
		{"30 2 * * *", func(w time.Time) bool { return w.Hour() == 2 && w.Minute() == 30 }},
		{"15 2 * * *", func(w time.Time) bool { return w.Hour() == 2 && w.Minute() == 15 }},
		{"45 1 * * *", func(w time.Time) bool { return w.Hour() == 1 && w.Minute() == 45 }},
		{"0 0 * * *", func(w time.Time) bool { return w.Hour() == 0 && w.Minute() == 0 }},
		{"59 23 * * *", func(w time.Time) bool { return w.Hour() == 23 && w.Minute() == 59 }},
		{"*/7 1-3 * * *", func(w time.Time) bool { return w.Hour() >= 1 && w.Hour() <= 3 && w.Minute()%7 == 0 }},
		{"10 2 * * SUN", func(w time.Time) bool { return w.Weekday() == time.Sunday && w.Hour() == 2 && w.Minute() == 10 }},
	}
	transitions := []struct {
		tz     string
		before time.Time // the first zone change after this is tested
	}{
		{"Europe/Berlin", at(2026, time.March, 1, 0, 0)},
		{"Europe/Berlin", at(2026, time.October, 1, 0, 0)},
		{"America/New_York", at(2026, time.March, 1, 0, 0)},
		{"America/New_York", at(2026, time.October, 1, 0, 0)},
		{"Australia/Lord_Howe", at(2026, time.March, 1, 0, 0)},
		{"Australia/Lord_Howe", at(2026, time.September, 1, 0, 0)},
		{"America/Santiago", at(2026, time.March, 1, 0, 0)},
		{"America/Santiago", at(2026, time.August, 1, 0, 0)},
		{"America/Havana", at(2026, time.February, 1, 0, 0)},
		{"America/Havana", at(2026, time.October, 1, 0, 0)},
		{"Pacific/Apia", at(2011, time.December, 1, 0, 0)},
		{"Asia/Kolkata", at(1945, time.January, 1, 0, 0)},
		{"UTC", at(2026, time.March, 1, 0, 0)},
	}
	for _, tr := range transitions {
		loc := mustLoad(t, tr.tz)
		_, change := tr.before.In(loc).ZoneBounds()
		if change.IsZero() {
			change = tr.before // no change in this zone: any window will do
		}
		from, to := change.Add(-36*time.Hour), change.Add(36*time.Hour)
		for _, sc := range schedules {
			t.Run(fmt.Sprintf("%s %s %s", tr.tz, change.UTC().Format("2006-01-02T15:04Z"), sc.expr), func(t *testing.T) {
				s := mustParse(t, sc.expr, tr.tz)
				want := oracle(loc, from, to, sc.match)
				var got []time.Time
				for n := s.Next(from); n.Before(to); n = s.Next(n) {
					got = append(got, n)
				}
				if !sameInstants(got, want) {
					t.Fatalf("slots differ from the oracle:\n got %s\nwant %s", formatInstants(got), formatInstants(want))
				}
				if len(want) < 2 {
					return
				}
				// Due from just before the first slot to the last: one
				// run, everything in between missed.
				d := s.Due(from, time.Time{}, want[len(want)-1].Add(30*time.Second), nil)
				if !d.Run.Equal(want[len(want)-1]) || d.Missed != len(want)-1 {
					t.Errorf("Due: Run %s Missed %d, want Run %s Missed %d", d.Run.UTC(), d.Missed, want[len(want)-1], len(want)-1)
				}
			})
		}
	}
}

func TestEvery(t *testing.T) {
	created := time.Date(2026, time.March, 28, 22, 17, 42, 500_000_000, time.UTC)
	tests := []struct {
		name   string
		expr   string
		tz     string
		anchor time.Time
		after  time.Time
		want   []time.Time
	}{
		{
			// Slots are the anchor (whole seconds) plus whole intervals,
			// the first one interval after it.
			name: "anchored at creation", expr: "@every 6h", tz: "UTC",
			anchor: created, after: created,
			want: []time.Time{
				time.Date(2026, 3, 29, 4, 17, 42, 0, time.UTC),
				time.Date(2026, 3, 29, 10, 17, 42, 0, time.UTC),
				time.Date(2026, 3, 29, 16, 17, 42, 0, time.UTC),
			},
		},
		{
			// A late reconcile does not shift later slots.
			name: "does not drift", expr: "@every 6h", tz: "UTC",
			anchor: created, after: time.Date(2026, 3, 29, 9, 59, 0, 0, time.UTC),
			want: []time.Time{time.Date(2026, 3, 29, 10, 17, 42, 0, time.UTC)},
		},
		{
			name: "before the anchor: the first slot", expr: "@every 6h", tz: "UTC",
			anchor: created, after: created.Add(-100 * time.Hour),
			want: []time.Time{time.Date(2026, 3, 29, 4, 17, 42, 0, time.UTC)},
		},
		{
			name: "strictly after a slot", expr: "@every 90m", tz: "UTC",
			anchor: created, after: time.Date(2026, 3, 28, 23, 47, 42, 0, time.UTC),
			want: []time.Time{time.Date(2026, 3, 29, 1, 17, 42, 0, time.UTC)},
		},
		{
			// Berlin springs forward at 01:00 UTC on 2026-03-29: slots stay
			// exactly an hour apart in absolute time.
			name: "unaffected by daylight saving time", expr: "@every 1h", tz: "Europe/Berlin",
			anchor: created, after: time.Date(2026, 3, 28, 23, 30, 0, 0, time.UTC),
			want: []time.Time{
				time.Date(2026, 3, 29, 0, 17, 42, 0, time.UTC),
				time.Date(2026, 3, 29, 1, 17, 42, 0, time.UTC),
				time.Date(2026, 3, 29, 2, 17, 42, 0, time.UTC),
			},
		},
		{
			name: "default anchor is the Unix epoch", expr: "@every 6h", tz: "UTC",
			after: time.Date(2026, 3, 28, 22, 17, 0, 0, time.UTC),
			want:  []time.Time{at(2026, 3, 29, 0, 0), at(2026, 3, 29, 6, 0)},
		},
		{
			name: "cron ignores the anchor", expr: "0 0 * * *", tz: "UTC",
			anchor: created, after: created,
			want: []time.Time{at(2026, 3, 29, 0, 0)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			if !tt.anchor.IsZero() {
				s = s.WithAnchor(tt.anchor)
			}
			if got := s.NextN(tt.after, len(tt.want)); !sameInstants(got, tt.want) {
				t.Fatalf("NextN = %s, want %s", formatInstants(got), formatInstants(tt.want))
			}
		})
	}

	// WithAnchor returns a copy; the original keeps the epoch anchor.
	base := mustParse(t, "@every 6h", "UTC")
	_ = base.WithAnchor(created)
	if got, want := base.Next(created), at(2026, 3, 29, 0, 0); !got.Equal(want) {
		t.Errorf("WithAnchor changed the original: Next = %s, want %s", got, want)
	}
	if base.Interval() != 6*time.Hour || mustParse(t, "@daily", "UTC").Interval() != 0 {
		t.Errorf("Interval() = %s, want 6h (and 0 for cron)", base.Interval())
	}
}

func TestDue(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	deadline := func(d time.Duration) *time.Duration { return &d }
	created := at(2026, time.January, 10, 8, 0)
	tests := []struct {
		name                  string
		expr, tz              string
		anchor                time.Time
		lastHandled, earliest time.Time
		now                   time.Time
		deadline              *time.Duration
		wantRun, wantNext     time.Time
		wantLatest            time.Time // defaults to wantRun
		wantMissed            int
	}{
		{
			name: "nothing due yet", expr: "0 2 * * *", tz: "UTC",
			earliest: created, now: at(2026, 1, 10, 9, 0),
			wantNext: at(2026, 1, 11, 2, 0),
		},
		{
			name: "the creation time is not a slot to catch up on", expr: "0 * * * *", tz: "UTC",
			earliest: created.Add(time.Second), now: created.Add(30 * time.Minute),
			wantNext: at(2026, 1, 10, 9, 0),
		},
		{
			name: "a slot exactly at creation counts", expr: "0 * * * *", tz: "UTC",
			earliest: created, now: created.Add(30 * time.Minute),
			wantRun: created, wantNext: at(2026, 1, 10, 9, 0),
		},
		{
			name: "one due", expr: "0 2 * * *", tz: "UTC",
			earliest: created, now: at(2026, 1, 11, 2, 0),
			wantRun: at(2026, 1, 11, 2, 0), wantNext: at(2026, 1, 12, 2, 0),
		},
		{
			name: "one due, seen a little late", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 11, 2, 0), now: at(2026, 1, 12, 2, 3),
			wantRun: at(2026, 1, 12, 2, 0), wantNext: at(2026, 1, 13, 2, 0),
		},
		{
			name: "already handled", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 12, 2, 0), now: at(2026, 1, 12, 2, 3),
			wantNext: at(2026, 1, 13, 2, 0),
		},
		{
			name: "several missed: one catch-up run and a count", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 11, 2, 0), now: at(2026, 1, 15, 12, 0),
			wantRun: at(2026, 1, 15, 2, 0), wantMissed: 3, wantNext: at(2026, 1, 16, 2, 0),
		},
		{
			name: "missed since creation, nothing handled yet", expr: "0 2 * * *", tz: "UTC",
			earliest: created, now: at(2026, 1, 15, 12, 0),
			wantRun: at(2026, 1, 15, 2, 0), wantMissed: 4, wantNext: at(2026, 1, 16, 2, 0),
		},
		{
			name: "within the starting deadline", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 11, 2, 0), now: at(2026, 1, 12, 2, 5),
			deadline: deadline(5 * time.Minute),
			wantRun:  at(2026, 1, 12, 2, 0), wantNext: at(2026, 1, 13, 2, 0),
		},
		{
			name: "starting deadline exceeded: skipped", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 11, 2, 0), now: time.Date(2026, 1, 12, 2, 5, 1, 0, time.UTC),
			deadline:   deadline(5 * time.Minute),
			wantLatest: at(2026, 1, 12, 2, 0), wantMissed: 1, wantNext: at(2026, 1, 13, 2, 0),
		},
		{
			name: "starting deadline exceeded after several missed", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 11, 2, 0), now: at(2026, 1, 15, 12, 0),
			deadline:   deadline(time.Hour),
			wantLatest: at(2026, 1, 15, 2, 0), wantMissed: 4, wantNext: at(2026, 1, 16, 2, 0),
		},
		{
			name: "zero starting deadline runs only on time", expr: "0 2 * * *", tz: "UTC",
			earliest: created, now: at(2026, 1, 11, 2, 0), deadline: deadline(0),
			wantRun: at(2026, 1, 11, 2, 0), wantNext: at(2026, 1, 12, 2, 0),
		},
		{
			name: "clock behind the last handled slot", expr: "0 2 * * *", tz: "UTC",
			earliest: created, lastHandled: at(2026, 1, 12, 2, 0), now: at(2026, 1, 11, 12, 0),
			wantNext: at(2026, 1, 13, 2, 0),
		},
		{
			name: "clock behind the creation time", expr: "0 2 * * *", tz: "UTC",
			earliest: created, now: at(2026, 1, 1, 0, 0),
			wantNext: at(2026, 1, 11, 2, 0),
		},
		{
			name: "no bounds at all: the latest slot, nothing counted", expr: "0 2 * * *", tz: "UTC",
			now:     at(2026, 1, 15, 12, 0),
			wantRun: at(2026, 1, 15, 2, 0), wantNext: at(2026, 1, 16, 2, 0),
		},
		{
			// Down over the spring-forward night: 02:30 ran at 03:00 CEST.
			name: "catch-up over spring forward", expr: "30 2 * * *", tz: "Europe/Berlin",
			earliest: created, lastHandled: time.Date(2026, 3, 27, 2, 30, 0, 0, berlin), now: time.Date(2026, 3, 29, 3, 10, 0, 0, berlin),
			wantRun: at(2026, 3, 29, 1, 0), wantMissed: 1, wantNext: at(2026, 3, 30, 0, 30),
		},
		{
			name: "hourly over fall back", expr: "0 * * * *", tz: "Europe/Berlin",
			earliest: created, lastHandled: at(2026, 10, 24, 23, 0), now: at(2026, 10, 25, 2, 30),
			// 02:00 CEST missed; 03:00 CET (02:00 UTC) runs.
			wantRun: at(2026, 10, 25, 2, 0), wantMissed: 1, wantNext: at(2026, 10, 25, 3, 0),
		},
		{
			name: "@every since creation", expr: "@every 6h", tz: "UTC", anchor: created,
			earliest: created, now: created.Add(25 * time.Hour),
			wantRun: created.Add(24 * time.Hour), wantMissed: 3, wantNext: created.Add(30 * time.Hour),
		},
		{
			name: "@every nothing before the first interval", expr: "@every 6h", tz: "UTC", anchor: created,
			earliest: created, now: created.Add(5 * time.Hour),
			wantNext: created.Add(6 * time.Hour),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, tt.expr, tt.tz)
			if !tt.anchor.IsZero() {
				s = s.WithAnchor(tt.anchor)
			}
			got := s.Due(tt.lastHandled, tt.earliest, tt.now, tt.deadline)
			wantLatest := tt.wantLatest
			if wantLatest.IsZero() {
				wantLatest = tt.wantRun
			}
			if !got.Run.Equal(tt.wantRun) || got.Missed != tt.wantMissed || !got.Latest.Equal(wantLatest) || !got.Next.Equal(tt.wantNext) {
				t.Fatalf("Due =\n  Run %s Missed %d Latest %s Next %s\nwant\n  Run %s Missed %d Latest %s Next %s",
					got.Run.UTC(), got.Missed, got.Latest.UTC(), got.Next.UTC(),
					tt.wantRun.UTC(), tt.wantMissed, wantLatest.UTC(), tt.wantNext.UTC())
			}
		})
	}
}

// TestDueYearsOld checks that counting missed slots over years is exact,
// against counts derived from the calendar.
func TestDueYearsOld(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	t.Run("every minute for 30 years in UTC", func(t *testing.T) {
		s := mustParse(t, "* * * * *", "UTC")
		last, now := at(1996, 1, 1, 0, 0), time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)
		d := s.Due(last, last, now, nil)
		// Every minute strictly between the two whole minutes.
		want := int(now.Truncate(time.Minute).Sub(last)/time.Minute) - 1
		if !d.Run.Equal(at(2026, 1, 1, 0, 0)) || d.Missed != want {
			t.Fatalf("Due = Run %s Missed %d, want Run 2026-01-01T00:00Z Missed %d", d.Run.UTC(), d.Missed, want)
		}
	})
	t.Run("every minute for 10 years in Europe/Berlin", func(t *testing.T) {
		// Every real minute is a slot except those of the ten repeated
		// hours, whose wall-clock times have already fired.
		s := mustParse(t, "* * * * *", "Europe/Berlin")
		last, now := at(2016, 1, 1, 0, 0), at(2026, 1, 1, 0, 0)
		d := s.Due(last, time.Time{}, now, nil)
		want := int(now.Sub(last)/time.Minute) - 1 - 10*60
		if !d.Run.Equal(now) || d.Missed != want {
			t.Fatalf("Due = Run %s Missed %d, want Run %s Missed %d", d.Run.UTC(), d.Missed, now, want)
		}
	})
	t.Run("hourly through 2026 in Europe/Berlin", func(t *testing.T) {
		// 365*24 wall-clock hours from 01:00 on January 1 to 23:00 on
		// December 31 is 8759 slots; on March 29 02:00 and 03:00 are one
		// instant, so 8758 distinct slots.
		s := mustParse(t, "0 * * * *", "Europe/Berlin")
		last, now := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin), time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
		d := s.Due(last, time.Time{}, now, nil)
		if !d.Run.Equal(now) || d.Missed != 8758 {
			t.Fatalf("Due = Run %s Missed %d, want Run %s Missed 8758", d.Run, d.Missed, now)
		}
	})
	t.Run("@every over a century", func(t *testing.T) {
		s := mustParse(t, "@every 1h", "UTC").WithAnchor(at(1926, 1, 1, 0, 0))
		now := at(2026, 1, 1, 0, 30)
		d := s.Due(time.Time{}, at(1926, 1, 1, 0, 0), now, nil)
		want := int(at(2026, 1, 1, 0, 0).Sub(at(1926, 1, 1, 0, 0))/time.Hour) - 1
		if !d.Run.Equal(at(2026, 1, 1, 0, 0)) || d.Missed != want {
			t.Fatalf("Due = Run %s Missed %d, want Missed %d", d.Run.UTC(), d.Missed, want)
		}
	})
}

// TestDueCountMatchesStepping compares Due's day-by-day count with a count
// by stepping through every slot with Next, over a year with two zone
// changes, for schedules that hit the changed hours.
func TestDueCountMatchesStepping(t *testing.T) {
	exprs := []string{"*/15 * * * *", "0 * * * *", "30 2 * * *", "* 1-3 * * 0", "0 0 1 * MON", "7 0,12 */3 * *"}
	zones := []string{"Europe/Berlin", "Australia/Lord_Howe", "America/Santiago", "America/Havana", "Asia/Kolkata"}
	last := time.Date(2025, 12, 30, 17, 23, 11, 0, time.UTC)
	now := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tz := range zones {
		for _, expr := range exprs {
			t.Run(tz+" "+expr, func(t *testing.T) {
				s := mustParse(t, expr, tz)
				var slots []time.Time
				for n := s.Next(last); !n.After(now); n = s.Next(n) {
					slots = append(slots, n)
				}
				d := s.Due(last, time.Time{}, now, nil)
				if !d.Run.Equal(slots[len(slots)-1]) || d.Missed != len(slots)-1 {
					t.Fatalf("Due = Run %s Missed %d, want Run %s Missed %d", d.Run, d.Missed, slots[len(slots)-1], len(slots)-1)
				}
			})
		}
	}
}

func TestNextN(t *testing.T) {
	s := mustParse(t, "0 9 * * MON-FRI", "Europe/Berlin")
	if got := s.NextN(at(2026, 1, 1, 0, 0), 0); got != nil {
		t.Errorf("NextN(0) = %v, want nil", got)
	}
	// Thursday 2026-01-01: Thu, Fri, Mon, Tue, Wed at 09:00 CET.
	want := []time.Time{at(2026, 1, 1, 8, 0), at(2026, 1, 2, 8, 0), at(2026, 1, 5, 8, 0), at(2026, 1, 6, 8, 0), at(2026, 1, 7, 8, 0)}
	if got := s.NextN(at(2026, 1, 1, 0, 0), 5); !sameInstants(got, want) {
		t.Errorf("NextN(5) = %s, want %s", formatInstants(got), formatInstants(want))
	}
}

func TestCivilCalendar(t *testing.T) {
	// Every day from 1600 to 2500 against package time.
	for day := time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC); day.Year() < 2500; day = day.AddDate(0, 0, 1) {
		z := floorDiv(day.Unix(), secondsPerDay)
		y, m, d := civilFromDays(z)
		if y != int64(day.Year()) || m != int(day.Month()) || d != day.Day() || weekday(z) != int(day.Weekday()) {
			t.Fatalf("day %d: civilFromDays = %d-%d-%d weekday %d, want %s", z, y, m, d, weekday(z), day.Format("2006-01-02 Monday"))
		}
		if got := daysFromCivil(y, m, d); got != z {
			t.Fatalf("daysFromCivil(%d-%d-%d) = %d, want %d", y, m, d, got, z)
		}
	}
}

// FuzzParse checks that Parse never panics, that its errors are of the two
// documented kinds, and that a parsed schedule's slots are strictly
// increasing and survive a round trip through String.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"0 0 * * *", "*/15 * * * *", "61 * * * *", "0 0 29 2 *", "0 0 30 2 *", "1-30/5 1,2 1-31/2 JAN-mar SUN-7",
		"@every 90m", "@every 0s", "@yearly", "@bogus", "", "5/15 * ? * FRI-SUN", "0 0 */2 * 1", "* * * * * *",
		"1-2-3 * * * *", "*/0 * * * *", "0 0 31 4 *", "0 0 1 * 0-6", "TZ=UTC 0 0 * * *",
	} {
		f.Add(seed, uint8(0), int64(1_780_000_000))
	}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago", "Pacific/Apia"}
	// Instants from year 1 to year 9000.
	const minUnix, maxUnix = -62135596800, 221845392000
	f.Fuzz(func(t *testing.T, expr string, zone uint8, after int64) {
		tz := zones[int(zone)%len(zones)]
		if after < minUnix || after > maxUnix {
			after = minUnix + int64(uint64(after)%uint64(maxUnix-minUnix))
		}
		from := time.Unix(after, 0)
		s, err := Parse(expr, tz)
		if err != nil {
			var ce *CronError
			if !errors.Is(err, ErrInvalidCron) || !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "cron ") {
				t.Fatalf("Parse(%q) error %q is not a *CronError", expr, err)
			}
			return
		}
		slots := s.NextN(from, 3)
		if len(slots) != 3 {
			t.Fatalf("%q in %s: NextN(%s, 3) = %s, want 3 slots", expr, tz, from.UTC(), formatInstants(slots))
		}
		increasing := func(slots []time.Time) bool {
			prev := from
			for _, n := range slots {
				if !n.After(prev) {
					return false
				}
				prev = n
			}
			return true
		}
		if !increasing(slots) {
			t.Fatalf("%q in %s: slots after %s are %s, not strictly increasing", expr, tz, from.UTC(), formatInstants(slots))
		}
		if anchored := s.WithAnchor(time.Unix(after/3, 0)).NextN(from, 3); len(anchored) != 3 || !increasing(anchored) {
			t.Fatalf("%q in %s anchored at %s: slots after %s are %s", expr, tz, time.Unix(after/3, 0).UTC(), from.UTC(), formatInstants(anchored))
		}
		again, err := Parse(s.String(), tz)
		if err != nil {
			t.Fatalf("%q normalizes to %q, which does not parse: %v", expr, s.String(), err)
		}
		if got := again.NextN(from, 3); !sameInstants(got, slots) {
			t.Fatalf("%q normalizes to %q, which has other slots: %s vs %s", expr, s.String(), formatInstants(got), formatInstants(slots))
		}
		d := s.Due(time.Time{}, from.Add(-48*time.Hour), from, nil)
		if !d.Next.Equal(slots[0]) || (!d.Run.IsZero() && (d.Run.After(from) || d.Run.Before(from.Add(-48*time.Hour)))) {
			t.Fatalf("%q in %s: Due at %s = %+v", expr, tz, from.UTC(), d)
		}
	})
}

func BenchmarkNext(b *testing.B) {
	after := at(2026, time.March, 28, 12, 0)
	for _, bc := range []struct{ expr, tz string }{
		{"*/15 * * * *", "UTC"},
		{"*/15 * * * *", "Europe/Berlin"},
		{"30 2 * * *", "Europe/Berlin"},
		{"0 9 * * MON-FRI", "America/New_York"},
		{"0 0 29 2 *", "Australia/Lord_Howe"},
		{"@every 6h", "UTC"},
	} {
		b.Run(bc.expr+" "+bc.tz, func(b *testing.B) {
			s := mustParse(b, bc.expr, bc.tz)
			for b.Loop() {
				s.Next(after)
			}
		})
	}
}

func BenchmarkDue(b *testing.B) {
	now := at(2026, time.March, 28, 12, 0)
	for _, bc := range []struct {
		name, expr, tz string
		last           time.Time
	}{
		{"daily, handled yesterday", "30 2 * * *", "Europe/Berlin", now.Add(-24 * time.Hour)},
		{"every minute, handled 10 years ago", "* * * * *", "Europe/Berlin", now.AddDate(-10, 0, 0)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := mustParse(b, bc.expr, bc.tz)
			for b.Loop() {
				s.Due(bc.last, time.Time{}, now, nil)
			}
		})
	}
}
