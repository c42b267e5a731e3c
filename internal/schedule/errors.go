package schedule

import (
	"errors"
	"fmt"
)

// The two kinds of mistake Parse reports. Both can only be fixed by the
// user, so the controller turns them into a condition rather than retrying;
// it tells them apart with errors.Is.
var (
	// ErrInvalidCron marks an expression that is not a valid schedule.
	ErrInvalidCron = errors.New("invalid cron expression")
	// ErrUnknownTimeZone marks a time zone that is not a known IANA name.
	ErrUnknownTimeZone = errors.New("unknown time zone")
)

// CronError says what is wrong with a cron expression. It matches
// ErrInvalidCron with errors.Is.
type CronError struct {
	// Expr is the expression as given.
	Expr string
	// Field is the field at fault (minute, hour, day-of-month, month,
	// day-of-week, @every), or empty when the expression as a whole is.
	Field string
	// Reason is the problem in words, for example "minute 61 is out of
	// range 0-59".
	Reason string
}

// Error reads like `cron "61 * * * *": minute 61 is out of range 0-59`.
func (e *CronError) Error() string {
	return fmt.Sprintf("cron %q: %s", e.Expr, e.Reason)
}

// Is reports whether target is ErrInvalidCron.
func (e *CronError) Is(target error) bool { return target == ErrInvalidCron }

// TimeZoneError says that a time zone could not be loaded. It matches
// ErrUnknownTimeZone with errors.Is.
type TimeZoneError struct {
	// Name is the zone as given.
	Name string
	// Err is the cause from time.LoadLocation, if any.
	Err error
}

// Error reads like `unknown time zone "Mars/Base"`.
func (e *TimeZoneError) Error() string {
	if e.Name == "Local" {
		// "Local" loads, but it is the manager's own zone, which a user
		// can neither see nor rely on.
		return `unknown time zone "Local": name an IANA zone such as Europe/Berlin`
	}
	return fmt.Sprintf("unknown time zone %q", e.Name)
}

// Is reports whether target is ErrUnknownTimeZone.
func (e *TimeZoneError) Is(target error) bool { return target == ErrUnknownTimeZone }

// Unwrap returns the cause from time.LoadLocation.
func (e *TimeZoneError) Unwrap() error { return e.Err }
