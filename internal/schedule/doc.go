// Package schedule is the schedule math of the BackupConfig controller:
// it parses cron expressions in an IANA time zone, says when the next slot
// is, and decides which slot is due at a given moment (Due), including the
// catch-up and starting-deadline rules for slots missed while the manager
// was down.
//
// Everything here is a pure function of its arguments. Nothing reads the
// clock (every function takes now or after), nothing keeps state between
// calls, and a *Schedule is immutable, so it is safe for concurrent use.
// The package imports only the standard library; it must not import
// Kubernetes, controller-runtime or anything that reads a clock.
//
// # Expressions
//
// Parse accepts five fields, minute hour day-of-month month day-of-week,
// with lists (1,15), ranges (1-5), steps (*/15, 1-30/5, and 5/15 meaning
// 5-59/15 as Kubernetes CronJobs read it), names JAN-DEC and SUN-SAT in any
// case, 0 or 7 for Sunday, and ? as a synonym of * in the two day fields.
// A day-of-week range ending in Sunday may be written FRI-SUN (read 5-7).
// When both day fields are restricted a day matches if either matches
// (Vixie cron); a day field counts as unrestricted when it is * or ?
// (optionally with step 1), so "0 0 */2 * 1" means odd days or Mondays, as
// in Kubernetes CronJobs. Macros: @yearly (@annually), @monthly, @weekly,
// @daily (@midnight), @hourly and @every <Go duration>.
//
// An expression that can never fire (0 0 30 2 *) is rejected by Parse, so a
// parsed schedule always has a next slot.
//
// # Wall-clock slots and daylight saving time
//
// A cron slot is a wall-clock time (a date, hour and minute) in the
// schedule's zone. It fires at the first instant at which the zone's clock
// reads that time or later. That one rule gives:
//
//   - Spring forward: a slot inside the gap (02:30 on 2026-03-29 in
//     Europe/Berlin) fires once, at the first instant after the gap (03:00
//     CEST). It is never skipped. Several slots inside the gap, and a slot
//     at the gap's end, all fire at that same instant, which is one slot
//     and one run, never a duplicate. So an hourly schedule runs at 01:00
//     CET, 03:00 CEST, 04:00 CEST.
//   - Fall back: a slot whose wall-clock time occurs twice (02:30 on
//     2026-10-25 in Europe/Berlin) fires once, at its first occurrence
//     (02:30 CEST). This holds for every schedule, including */15: it runs
//     02:00, 02:15, 02:30 and 02:45 CEST and next at 03:00 CET, not again
//     during the repeated hour. Each wall-clock slot fires once; the
//     repeated hour does not add runs.
//
// Slots come out strictly increasing and, in any zone's data since local
// mean time was abandoned (odd-second offsets, nineteenth century), at
// least a minute apart, so run names built from a slot's Unix minute are
// unique.
//
// # @every
//
// "@every d" fires at anchor + k*d for k = 1, 2, ...: absolute durations, so
// daylight saving time does not affect it, and anchored, so a late
// reconcile does not make the schedule drift. The anchor is the Unix epoch
// unless set with WithAnchor; the BackupConfig controller uses the config's
// creation time, so the first run is one interval after creation. d must be
// a whole number of seconds and at least one minute.
//
// # Due
//
// Due decides what to do at now: only the newest slot that is due (at or
// before now, after the last handled slot, not before the config existed)
// may run; older unhandled slots are counted as missed, so a manager that
// was down for a week starts one catch-up run, not hundreds. A starting
// deadline skips that one too when it is too late. Decision.Latest names
// the slot to record as handled either way, so a skipped slot is neither
// run nor counted twice by the next call. Missed slots are counted
// exactly, however old the last handled slot is, in time proportional to
// the number of days in between (not the number of slots).
package schedule
