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

use crate::error::{Error, Result};

/// A fixed-duration window layout: tumbling when `period == every`, hopping otherwise.
///
/// ```
/// use _core::window::WindowSpec;
/// let hop = WindowSpec::hopping(10, 5, 0).unwrap();
/// let (first, last) = hop.indices(7);
/// assert_eq!((hop.start(first), hop.end(first)), (0, 10));
/// assert_eq!((hop.start(last), hop.end(last)), (5, 15));
/// let tumble = WindowSpec::tumbling(10, 0).unwrap();
/// assert_eq!(tumble.start(tumble.indices(-1).1), -10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Length of each window.
    pub period: i64,
    /// Distance between the starts of consecutive windows.
    pub every: i64,
    /// Shift of the window grid from the epoch, normalised into `[0, every)`.
    pub offset: i64,
}

impl WindowSpec {
    /// Back-to-back windows of length `every`.
    pub fn tumbling(every: i64, offset: i64) -> Result<Self> {
        Self::hopping(every, every, offset)
    }

    /// Windows of length `period` starting every `every`.
    pub fn hopping(period: i64, every: i64, offset: i64) -> Result<Self> {
        if every <= 0 {
            return Err(Error::Config(format!(
                "window 'every' must be a positive duration, got {every}; e.g. '1m'"
            )));
        }
        if period <= 0 {
            return Err(Error::Config(format!(
                "window 'period' must be a positive duration, got {period}; e.g. '5m'"
            )));
        }
        Ok(WindowSpec { period, every, offset: offset.rem_euclid(every) })
    }

    /// Start of window `w`.
    #[inline]
    pub fn start(&self, w: i64) -> i64 {
        w.saturating_mul(self.every).saturating_add(self.offset)
    }

    /// End (exclusive) of window `w`.
    #[inline]
    pub fn end(&self, w: i64) -> i64 {
        self.start(w).saturating_add(self.period)
    }

    /// The first and last window index containing instant `t`. When `period < every`, `t`
    /// can fall between windows and then `first > last`.
    #[inline]
    pub fn indices(&self, t: i64) -> (i64, i64) {
        if let Some(rel) = t.checked_sub(self.offset) {
            let last = rel.div_euclid(self.every);
            if self.period == self.every {
                return (last, last);
            }
            if let Some(before) = rel.checked_sub(self.period) {
                return (before.div_euclid(self.every) + 1, last);
            }
        }
        let rel = t as i128 - self.offset as i128;
        let every = self.every as i128;
        let last = rel.div_euclid(every);
        let first = (rel - self.period as i128).div_euclid(every) + 1;
        (first as i64, last as i64)
    }

    /// The largest window index whose `end + extra <= instant`, i.e. the last window that
    /// the watermark `instant` has passed (completed with `extra = 0`, closed with
    /// `extra = lateness`).
    #[inline]
    pub fn passed_upto(&self, instant: i64, extra: i64) -> i64 {
        let x = instant as i128 - self.offset as i128 - self.period as i128 - extra as i128;
        let w = x.div_euclid(self.every as i128);
        w.clamp(i64::MIN as i128 / 2, i64::MAX as i128 / 2) as i64
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermark {
    delay: i64,
    current: i64,
    max_seen: Option<i64>,
}

impl Watermark {
    /// A watermark that trails the largest instant by `delay`.
    pub fn new(delay: i64) -> Self {
        Watermark { delay, current: i64::MIN, max_seen: None }
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
    fn boundary_event_belongs_to_next_window() {
        let w = WindowSpec::tumbling(10, 0).unwrap();
        let (f, l) = w.indices(10);
        assert_eq!((f, l), (1, 1));
        assert_eq!(w.start(l), 10);
    }

    #[test]
    fn negative_times_floor() {
        let w = WindowSpec::tumbling(10, 0).unwrap();
        assert_eq!(w.start(w.indices(-1).1), -10);
        assert_eq!(w.start(w.indices(-10).1), -10);
        assert_eq!(w.start(w.indices(-11).1), -20);
    }

    #[test]
    fn offsets_are_equivalent_modulo_every() {
        // Reference edge case 18: offsets -16, -6 and +4 minutes give the same windows.
        let t = 4; // minutes past midnight
        let starts: Vec<i64> = [-16, -6, 4]
            .iter()
            .map(|&o| {
                let w = WindowSpec::tumbling(10, o).unwrap();
                w.start(w.indices(t).1)
            })
            .collect();
        assert_eq!(starts, vec![4, 4, 4]);
    }

    #[test]
    fn hopping_gap_rows_have_no_window() {
        let w = WindowSpec::hopping(5, 10, 0).unwrap();
        let (f, l) = w.indices(7);
        assert!(f > l);
        let (f, l) = w.indices(3);
        assert_eq!((f, l), (0, 0));
    }

    #[test]
    fn passed_upto_matches_definition() {
        let w = WindowSpec::hopping(10, 5, 0).unwrap();
        for wm in -30..30 {
            for extra in [0, 3, 5] {
                let k = w.passed_upto(wm, extra);
                assert!(w.end(k) + extra <= wm);
                assert!(w.end(k + 1) + extra > wm);
            }
        }
        assert!(w.passed_upto(i64::MIN, 0) < -1_000_000);
    }
}
