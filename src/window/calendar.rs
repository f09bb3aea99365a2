//! Windows aligned on a time zone's wall clock: days of 23 or 25 hours across DST changes,
//! weeks starting on Monday, months, quarters and years.
//!
//! Window starts are computed on the wall clock (a naive local timeline) and mapped back to
//! instants. A wall-clock time that does not exist (skipped by a DST change) maps to the first
//! instant after the gap; one that exists twice maps to the earlier instant.
//!
//! ```text
//!  Europe/Paris, "1d":   [Mar 30 00:00 CET, Mar 31 00:00 CEST)  is 23 hours long
//!                        [Oct 26 00:00 CEST, Oct 27 00:00 CET)  is 25 hours long
//! ```

use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// A window length on the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarLength {
    /// Whole calendar months (`mo`; a quarter is 3, a year 12).
    Months(i64),
    /// A fixed span of wall-clock time (days, weeks and below), in the instant unit.
    Wall(i64),
}

/// Tumbling or hopping windows aligned in a time zone.
///
/// ```
/// use _core::window::{Calendar, CalendarLength};
/// // Days in Paris, instants in seconds. 2025-03-30 has 23 hours (DST starts).
/// let day = Calendar::new("Europe/Paris", 1, CalendarLength::Wall(86_400), CalendarLength::Wall(86_400), 0).unwrap();
/// let t = 1_743_296_400; // 2025-03-30T01:00:00Z, 03:00 CEST
/// let (_, w) = day.indices(t);
/// assert_eq!(day.end(w) - day.start(w), 23 * 3600);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Calendar {
    tz: Tz,
    per_second: i64,
    every: CalendarLength,
    period: CalendarLength,
    offset: i64,
    /// The instants whose windows can all be computed (see [`Calendar::supported`]).
    lo: i64,
    hi: i64,
}

const MIN_INDEX: i64 = i64::MIN / 2;
const MAX_INDEX: i64 = i64::MAX / 2;

impl Calendar {
    /// Windows of `period` every `every` in time zone `tz`; instants count `per_second` units
    /// per second; `offset` (wall-clock units) shifts every start.
    pub fn new(
        tz: &str,
        per_second: i64,
        every: CalendarLength,
        period: CalendarLength,
        offset: i64,
    ) -> Result<Self> {
        let tz: Tz = tz.parse().map_err(|_| {
            Error::Config(format!(
                "unknown time zone '{tz}'; use an IANA name such as 'Europe/Paris', \
                 'America/New_York' or 'UTC'"
            ))
        })?;
        let positive = |l: CalendarLength| match l {
            CalendarLength::Months(m) => m > 0,
            CalendarLength::Wall(w) => w > 0,
        };
        if !positive(every) || !positive(period) {
            return Err(Error::Config(
                "calendar windows need positive durations".into(),
            ));
        }
        if std::mem::discriminant(&every) != std::mem::discriminant(&period) {
            return Err(Error::Config(
                "a window's period and every must both be calendar months (mo, q, y) or both \
                 fixed spans (d, w, h, ...); mixing them is not supported"
                    .into(),
            ));
        }
        if per_second <= 0 || 1_000_000_000 % per_second != 0 {
            return Err(Error::Internal(format!(
                "bad time unit: {per_second} per second"
            )));
        }
        let per_row = match (period, every) {
            (CalendarLength::Months(p), CalendarLength::Months(e))
            | (CalendarLength::Wall(p), CalendarLength::Wall(e)) => p / e + i64::from(p % e != 0),
            _ => 1,
        };
        if per_row > super::limits::MAX_WINDOWS_PER_ROW {
            return Err(super::limits::too_many_windows(
                "hopping",
                per_row,
                "period / every",
            ));
        }
        let mut c = Calendar {
            tz,
            per_second,
            every,
            period,
            offset,
            lo: 0,
            hi: 0,
        };
        if c.indices_checked(0).is_none() {
            return Err(Error::Config(
                "these calendar windows are too long for the time column's unit: not even the \
                 window of 1970-01-01 fits in 64-bit time; use shorter windows or a coarser \
                 Datetime unit ('us' or 'ms')"
                    .into(),
            ));
        }
        // Whether a row's windows can be computed only changes once on each side of the
        // epoch: find both edges by bisection.
        let placed = |t: i64| c.indices_checked(t).is_some();
        let (lo, hi) = (c.edge(false, placed), c.edge(true, placed));
        c.lo = lo;
        c.hi = hi;
        Ok(c)
    }

    /// The last instant on one side of the epoch (`up`: after it) for which `ok` holds,
    /// given that it holds at 0 and changes once on that side.
    fn edge(&self, up: bool, ok: impl Fn(i64) -> bool) -> i64 {
        let end = if up { i64::MAX } else { i64::MIN };
        if ok(end) {
            return end;
        }
        // `good` passes, `bad` fails; the edge lies between them.
        let (mut good, mut bad) = (0i64, end);
        while good.abs_diff(bad) > 1 {
            let mid = good + ((bad as i128 - good as i128) / 2) as i64;
            if ok(mid) {
                good = mid;
            } else {
                bad = mid;
            }
        }
        good
    }

    /// The instants (inclusive) whose windows can all be computed: within the calendar's
    /// years (-262143 to 262142) and with every bound within 64-bit time.
    pub fn supported(&self) -> (i64, i64) {
        (self.lo, self.hi)
    }

    /// True when the windows are back to back (period == every).
    fn tumbling(&self) -> bool {
        self.every == self.period
    }

    /// True when no two windows overlap.
    pub fn disjoint(&self) -> bool {
        self.tumbling() || self.has_gaps()
    }

    /// True when some instants belong to no window.
    pub fn has_gaps(&self) -> bool {
        match (self.period, self.every) {
            (CalendarLength::Months(p), CalendarLength::Months(e)) => p < e,
            (CalendarLength::Wall(p), CalendarLength::Wall(e)) => p < e,
            _ => false,
        }
    }

    /// Wall-clock time of instant `t`, in the same units.
    fn wall(&self, t: i64) -> Option<i64> {
        let secs = t.div_euclid(self.per_second);
        let utc = DateTime::from_timestamp(secs, 0)?.naive_utc();
        let off = self
            .tz
            .offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc() as i64;
        t.checked_add(off * self.per_second)
    }

    /// The earliest instant whose wall-clock time is `wall` (or the first after a gap).
    fn instant(&self, wall: i64) -> Option<i64> {
        let secs = wall.div_euclid(self.per_second);
        let naive = DateTime::from_timestamp(secs, 0)?.naive_utc();
        let at = |n: &NaiveDateTime| match self.tz.offset_from_local_datetime(n) {
            LocalResult::Single(o) => Some(o.fix().local_minus_utc() as i64),
            LocalResult::Ambiguous(a, b) => {
                Some((a.fix().local_minus_utc() as i64).max(b.fix().local_minus_utc() as i64))
            }
            LocalResult::None => None,
        };
        if let Some(off) = at(&naive) {
            return wall.checked_sub(off * self.per_second);
        }
        // In a gap: the earliest instant whose wall-clock time is at or after `wall` is the
        // transition itself. Read with the offset in force before the gap, `wall` names an
        // instant just after the transition; the transition lies at most one gap earlier.
        let offset_at = |secs: i64| -> Option<i64> {
            let utc = DateTime::from_timestamp(secs, 0)?.naive_utc();
            Some(
                self.tz
                    .offset_from_utc_datetime(&utc)
                    .fix()
                    .local_minus_utc() as i64,
            )
        };
        let guess = naive.and_utc().timestamp();
        let before = offset_at(guess - 2 * 86_400)?;
        let after = offset_at(guess + 2 * 86_400)?;
        let candidate = guess - before;
        let (mut lo, mut hi) = (candidate - (after - before).abs() - 1, candidate);
        // Invariant: offset(lo) != offset(candidate), offset(hi) == offset(candidate).
        let target = offset_at(candidate)?;
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if offset_at(mid)? == target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi.checked_mul(self.per_second)
    }

    fn month_number(&self, wall: i64) -> Option<i64> {
        let d = DateTime::from_timestamp(wall.div_euclid(self.per_second), 0)?.naive_utc();
        Some((d.year() as i64 - 1970) * 12 + d.month0() as i64)
    }

    fn month_start_wall(&self, month: i64) -> Option<i64> {
        let year = 1970 + month.div_euclid(12);
        let m = month.rem_euclid(12) as u32 + 1;
        let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, m, 1)?;
        let secs = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
        secs.checked_mul(self.per_second)
    }

    fn index_of_wall(&self, wall: i64) -> Option<i64> {
        let rel = wall.checked_sub(self.offset)?;
        Some(match self.every {
            CalendarLength::Wall(e) => rel.div_euclid(e),
            CalendarLength::Months(m) => self.month_number(rel)?.div_euclid(m),
        })
    }

    fn start_wall(&self, w: i64) -> Option<i64> {
        let base = match self.every {
            CalendarLength::Wall(e) => w.checked_mul(e)?,
            CalendarLength::Months(m) => self.month_start_wall(w.checked_mul(m)?)?,
        };
        base.checked_add(self.offset)
    }

    fn end_wall(&self, w: i64) -> Option<i64> {
        match (self.every, self.period) {
            (_, CalendarLength::Wall(p)) => self.start_wall(w)?.checked_add(p),
            (CalendarLength::Months(e), CalendarLength::Months(p)) => self
                .month_start_wall(w.checked_mul(e)?.checked_add(p)?)?
                .checked_add(self.offset),
            _ => None,
        }
    }

    fn start_opt(&self, w: i64) -> Option<i64> {
        self.start_wall(w).and_then(|x| self.instant(x))
    }

    fn end_opt(&self, w: i64) -> Option<i64> {
        self.end_wall(w).and_then(|x| self.instant(x))
    }

    /// Start of window `w` (saturating for indices far outside the calendar).
    pub fn start(&self, w: i64) -> i64 {
        self.start_opt(w)
            .unwrap_or(if w < 0 { i64::MIN } else { i64::MAX })
    }

    /// End of window `w` (saturating for indices far outside the calendar).
    pub fn end(&self, w: i64) -> i64 {
        self.end_opt(w)
            .unwrap_or(if w < 0 { i64::MIN } else { i64::MAX })
    }

    /// First and last window containing `t` (`first > last`: in a gap, or outside
    /// [`Calendar::supported`]).
    pub fn indices(&self, t: i64) -> (i64, i64) {
        self.indices_checked(t).unwrap_or((1, 0))
    }

    /// First and last window containing `t`; None when a bound of a window that may contain
    /// it cannot be computed (beyond the calendar or 64-bit time). Every loop stops there, so
    /// an instant at the edge of time never walks the window indices one by one.
    fn indices_checked(&self, t: i64) -> Option<(i64, i64)> {
        let mut last = self.wall(t).and_then(|w| self.index_of_wall(w))?;
        // The wall clock repeats an hour when clocks go back, so the wall-clock index is only
        // a first guess: the last window is the one with the latest start at or before t.
        while last < MAX_INDEX {
            match self.start_opt(last + 1) {
                Some(s) if s <= t => last += 1,
                // A start that cannot be computed lies past the end of time, after t.
                _ => break,
            }
        }
        while self.start_opt(last)? > t {
            if last <= MIN_INDEX {
                return None;
            }
            last -= 1;
        }
        if self.end_opt(last)? <= t {
            return Some((last + 1, last));
        }
        if self.tumbling() {
            return Some((last, last));
        }
        // The first window is the lowest whose end is after t. Window ends never decrease
        // with the index, so find it by galloping back from `last` and then bisecting, rather
        // than one window at a time (up to the limit of windows per row): Calendar::new
        // probes this about 128 times. An end that cannot be computed lies before time
        // begins, so before t.
        let after = |w: i64| {
            #[cfg(test)]
            tests::PROBED.with(|n| n.set(n.get() + 1));
            self.end_opt(w).is_some_and(|e| e > t)
        };
        let mut first = last;
        let mut step = 1i64;
        let mut before = loop {
            let w = last.saturating_sub(step).max(MIN_INDEX);
            if !after(w) {
                break w;
            }
            if w == MIN_INDEX {
                return None;
            }
            first = w;
            step = step.saturating_mul(2);
        };
        while first - before > 1 {
            let mid = before + (first - before) / 2;
            if after(mid) {
                first = mid;
            } else {
                before = mid;
            }
        }
        // As a walk back would: the window before the first must be computable too.
        self.end_opt(first - 1)?;
        if first <= MIN_INDEX {
            return None;
        }
        self.start_opt(first)?;
        Some((first, last))
    }

    /// The largest window whose `end + extra <= instant`.
    pub fn passed_upto(&self, instant: i64, extra: i64) -> i64 {
        let x = instant as i128 - extra as i128;
        if x <= i64::MIN as i128 {
            return MIN_INDEX;
        }
        if x >= i64::MAX as i128 {
            return MAX_INDEX;
        }
        let x = x as i64;
        let Some(mut w) = self.wall(x).and_then(|wall| self.index_of_wall(wall)) else {
            return if x < 0 { MIN_INDEX } else { MAX_INDEX };
        };
        while w > MIN_INDEX && self.end(w) > x {
            w -= 1;
        }
        while w < MAX_INDEX && self.end(w + 1) <= x {
            w += 1;
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 86_400;

    thread_local! {
        /// Window ends computed to find a row's first window (see `indices_checked`).
        pub(super) static PROBED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn long_hopping_calendar_windows_are_built_without_walking_their_windows_per_probe() {
        // hopping("9000d", "1d"): 9000 windows on each row. Finding the supported range must
        // not walk them back at each of the ~128 bisection steps (over a million windows).
        PROBED.with(|n| n.set(0));
        let c = Calendar::new(
            "Europe/Paris",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(9000 * D),
            0,
        )
        .unwrap();
        let probed = PROBED.with(|n| n.get());
        assert!(probed < 100_000, "{probed} window ends computed");
        // The range found holds: its ends are placed, just outside them is refused.
        let (lo, hi) = c.supported();
        for t in [lo, hi, 0] {
            let (first, last) = c.indices_checked(t).expect("supported");
            assert_eq!(last - first + 1, 9000, "{t}");
            assert!(c.start(first) <= t && t < c.end(first) && c.start(last) <= t);
        }
        assert!(lo > i64::MIN && hi < i64::MAX);
    }

    fn utc(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    fn window_of(c: &Calendar, t: &str) -> (i64, i64) {
        let (_, w) = c.indices(utc(t));
        (c.start(w), c.end(w))
    }

    #[test]
    fn dst_days_in_both_hemispheres() {
        let paris = Calendar::new(
            "Europe/Paris",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(D),
            0,
        )
        .unwrap();
        let (s, e) = window_of(&paris, "2025-03-30T12:00:00+02:00");
        assert_eq!((s, e - s), (utc("2025-03-30T00:00:00+01:00"), 23 * H));
        let (s, e) = window_of(&paris, "2025-10-26T12:00:00+01:00");
        assert_eq!((s, e - s), (utc("2025-10-26T00:00:00+02:00"), 25 * H));
        // Sydney: DST ends on the first Sunday of April, starts on the first Sunday of October.
        let sydney = Calendar::new(
            "Australia/Sydney",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(D),
            0,
        )
        .unwrap();
        let (s, e) = window_of(&sydney, "2025-04-06T12:00:00+10:00");
        assert_eq!((s, e - s), (utc("2025-04-06T00:00:00+11:00"), 25 * H));
        let (s, e) = window_of(&sydney, "2025-10-05T12:00:00+11:00");
        assert_eq!((s, e - s), (utc("2025-10-05T00:00:00+10:00"), 23 * H));
    }

    #[test]
    fn months_quarters_and_leap_february() {
        let month = Calendar::new(
            "UTC",
            1,
            CalendarLength::Months(1),
            CalendarLength::Months(1),
            0,
        )
        .unwrap();
        let (s, e) = window_of(&month, "2024-02-29T23:59:59Z");
        assert_eq!(
            (s, e),
            (utc("2024-02-01T00:00:00Z"), utc("2024-03-01T00:00:00Z"))
        );
        assert_eq!(e - s, 29 * D);
        let quarter = Calendar::new(
            "America/New_York",
            1,
            CalendarLength::Months(3),
            CalendarLength::Months(3),
            0,
        )
        .unwrap();
        let (s, e) = window_of(&quarter, "2025-05-15T12:00:00Z");
        assert_eq!(
            (s, e),
            (
                utc("2025-04-01T00:00:00-04:00"),
                utc("2025-07-01T00:00:00-04:00")
            )
        );
        let year = Calendar::new(
            "UTC",
            1,
            CalendarLength::Months(12),
            CalendarLength::Months(12),
            0,
        )
        .unwrap();
        assert_eq!(
            window_of(&year, "1969-07-20T20:17:00Z"),
            (utc("1969-01-01T00:00:00Z"), utc("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_midnight_that_does_not_exist_starts_the_day_after_the_gap() {
        // America/Havana skips 00:00-01:00 when DST starts (2025-03-09).
        let day = Calendar::new(
            "America/Havana",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(D),
            0,
        )
        .unwrap();
        let (s, e) = window_of(&day, "2025-03-09T12:00:00-04:00");
        assert_eq!(s, utc("2025-03-09T01:00:00-04:00"));
        assert_eq!(e - s, 23 * H);
    }

    #[test]
    fn hopping_calendar_windows_and_passed_upto() {
        let c = Calendar::new(
            "Europe/Paris",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(3 * D),
            0,
        )
        .unwrap();
        let t = utc("2025-03-30T12:00:00+02:00");
        let (f, l) = c.indices(t);
        assert_eq!(l - f, 2);
        for w in f..=l {
            assert!(c.start(w) <= t && t < c.end(w));
        }
        assert!(c.end(f - 1) <= t);
        for x in [t - 5 * D, t, t + 3 * H, t + 7 * D] {
            let k = c.passed_upto(x, H);
            assert!(c.end(k) + H <= x && c.end(k + 1) + H > x);
        }
        assert_eq!(c.passed_upto(i64::MIN, 0), MIN_INDEX);
        assert_eq!(c.start(MIN_INDEX + 1), i64::MIN);
    }

    #[test]
    fn a_boundary_inside_a_gap_maps_to_the_transition() {
        // Paris skips 02:00-03:00 on 2025-03-30; an hourly grid offset by 10 minutes has a
        // boundary at 02:10, which maps to the transition 01:00Z.
        let hour = Calendar::new(
            "Europe/Paris",
            1,
            CalendarLength::Wall(H),
            CalendarLength::Wall(H),
            600,
        )
        .unwrap();
        let (s, e) = window_of(&hour, "2025-03-30T01:05:00Z");
        assert_eq!(
            (s, e),
            (utc("2025-03-30T01:00:00Z"), utc("2025-03-30T01:10:00Z"))
        );
        let (s, e) = window_of(&hour, "2025-03-30T00:50:00Z");
        assert_eq!(
            (s, e),
            (utc("2025-03-30T00:10:00Z"), utc("2025-03-30T01:00:00Z"))
        );
    }

    #[test]
    fn rows_in_a_repeated_hour_land_in_a_window_that_contains_them() {
        // Paris repeats 02:00-03:00 on 2025-10-26 (00:00Z-01:00Z then 01:00Z-02:00Z).
        let half = Calendar::new(
            "Europe/Paris",
            1,
            CalendarLength::Wall(1800),
            CalendarLength::Wall(1800),
            0,
        )
        .unwrap();
        for minute in (0..120).step_by(10) {
            let t = utc("2025-10-26T00:00:00Z") + minute * 60;
            let (f, l) = half.indices(t);
            assert_eq!(f, l);
            assert!(half.start(l) <= t && t < half.end(l), "t = {t}");
        }
    }

    #[test]
    fn unknown_zone_is_a_config_error() {
        let e = Calendar::new(
            "Mars/Olympus",
            1,
            CalendarLength::Wall(D),
            CalendarLength::Wall(D),
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("IANA"));
    }
}
