//! Window assigners and the watermark.
//!
//! Windows are half-open `[start, end)` and aligned to the epoch plus an offset, with floor
//! division so that negative instants land in the window below them (Flink semantics):
//!
//! ```text
//!  every = 10, period = 10 (tumbling)         every = 5, period = 10 (hopping)
//!  ... [-10, 0) [0, 10) [10, 20) ...          [-5, 5)
//!        -1 ^     ^ 0     ^ 10                    [0, 10)
//!                                                    [5, 15)      t = 7 is in [0,10) and [5,15)
//! ```
//! A window is identified by its index `w`: `start = w * every + offset`, `end = start + period`.

mod calendar;
mod cumulative;
mod fixed;
mod limits;

pub use calendar::{Calendar, CalendarLength};
pub use cumulative::Cumulative;
pub use fixed::FixedWindows;
pub use limits::MAX_WINDOWS_PER_ROW;

use crate::error::Result;

/// Every aligned window layout. Each one numbers its windows with an index `w` such that
/// window ends (and starts) never decrease with `w`, and a row's windows form one contiguous
/// range of indices, which is all the window operator relies on.
///
/// ```
/// use _core::window::WindowSpec;
/// let hop = WindowSpec::hopping(10, 5, 0).unwrap();
/// let (first, last) = hop.indices(7);
/// assert_eq!((hop.start(first), hop.end(first)), (0, 10));
/// assert_eq!((hop.start(last), hop.end(last)), (5, 15));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum WindowSpec {
    /// Tumbling and hopping windows of fixed duration, aligned to the epoch.
    Fixed(FixedWindows),
    /// Flink CUMULATE: `[start, start + k * step)` for k = 1..period/step.
    Cumulative(Cumulative),
    /// Windows aligned in a time zone's wall clock: days, weeks, months, quarters, years.
    Calendar(Calendar),
}

impl WindowSpec {
    /// Back-to-back fixed windows of length `every`.
    pub fn tumbling(every: i64, offset: i64) -> Result<Self> {
        Ok(WindowSpec::Fixed(FixedWindows::tumbling(every, offset)?))
    }

    /// Fixed windows of length `period` starting every `every`.
    pub fn hopping(period: i64, every: i64, offset: i64) -> Result<Self> {
        Ok(WindowSpec::Fixed(FixedWindows::hopping(
            period, every, offset,
        )?))
    }

    /// The first and last window index containing `t` (`first > last`: in a gap).
    #[inline]
    pub fn indices(&self, t: i64) -> (i64, i64) {
        match self {
            WindowSpec::Fixed(f) => f.indices(t),
            WindowSpec::Cumulative(c) => c.indices(t),
            WindowSpec::Calendar(c) => c.indices(t),
        }
    }

    /// Start of window `w`.
    #[inline]
    pub fn start(&self, w: i64) -> i64 {
        match self {
            WindowSpec::Fixed(f) => f.start(w),
            WindowSpec::Cumulative(c) => c.start(w),
            WindowSpec::Calendar(c) => c.start(w),
        }
    }

    /// End (exclusive) of window `w`.
    #[inline]
    pub fn end(&self, w: i64) -> i64 {
        match self {
            WindowSpec::Fixed(f) => f.end(w),
            WindowSpec::Cumulative(c) => c.end(w),
            WindowSpec::Calendar(c) => c.end(w),
        }
    }

    /// The largest index whose `end + extra <= instant`.
    #[inline]
    pub fn passed_upto(&self, instant: i64, extra: i64) -> i64 {
        match self {
            WindowSpec::Fixed(f) => f.passed_upto(instant, extra),
            WindowSpec::Cumulative(c) => c.passed_upto(instant, extra),
            WindowSpec::Calendar(c) => c.passed_upto(instant, extra),
        }
    }

    /// The instants (inclusive) a row may have: every window containing one of them starts
    /// and ends within 64-bit time (and, for calendar windows, within the calendar's years).
    /// A row outside is rejected rather than put in a window whose bounds cannot be written.
    pub fn supported(&self) -> (i64, i64) {
        match self {
            WindowSpec::Fixed(f) => f.supported(),
            WindowSpec::Cumulative(c) => c.supported(),
            WindowSpec::Calendar(c) => c.supported(),
        }
    }

    /// True when no two windows overlap, so a row's window can be reused for later rows in
    /// the same `[start, end)`.
    pub fn disjoint(&self) -> bool {
        match self {
            WindowSpec::Fixed(f) => f.period <= f.every,
            WindowSpec::Cumulative(c) => c.period == c.step,
            WindowSpec::Calendar(c) => c.disjoint(),
        }
    }

    /// True when some instants belong to no window (hopping with `period < every`).
    pub fn has_gaps(&self) -> bool {
        match self {
            WindowSpec::Fixed(f) => f.period < f.every,
            WindowSpec::Cumulative(_) => false,
            WindowSpec::Calendar(c) => c.has_gaps(),
        }
    }
}

/// Bounded out-of-orderness watermark: the largest instant seen minus a delay. Never goes back.
///
/// ```
/// use _core::window::Watermark;
/// let mut wm = Watermark::new(5);
/// assert_eq!(wm.current(), i64::MIN);
/// wm.observe(20);
/// wm.observe(3);
/// assert_eq!(wm.current(), 15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    delay: i64,
    current: i64,
    max_seen: Option<i64>,
}

impl Watermark {
    /// A watermark that trails the largest instant by `delay`.
    pub fn new(delay: i64) -> Self {
        Watermark {
            delay,
            current: i64::MIN,
            max_seen: None,
        }
    }

    /// Advances the watermark for a row at `t`; returns true when it moved.
    #[inline]
    pub fn observe(&mut self, t: i64) -> bool {
        self.max_seen = Some(self.max_seen.map_or(t, |m| m.max(t)));
        let candidate = t.saturating_sub(self.delay);
        if candidate > self.current {
            self.current = candidate;
            true
        } else {
            false
        }
    }

    /// The current watermark (`i64::MIN` before any row).
    #[inline]
    pub fn current(&self) -> i64 {
        self.current
    }

    /// The largest instant seen so far.
    pub fn max_seen(&self) -> Option<i64> {
        self.max_seen
    }

    /// Moves the watermark to at least `instant` (used by idle timeouts). Never goes back.
    pub fn advance_to(&mut self, instant: i64) -> bool {
        if instant > self.current {
            self.current = instant;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_never_goes_back() {
        let mut wm = Watermark::new(2);
        assert!(wm.observe(10));
        assert!(!wm.observe(4));
        assert_eq!(wm.current(), 8);
        assert!(!wm.advance_to(5));
        assert!(wm.advance_to(9));
        assert_eq!(wm.current(), 9);
    }
}
