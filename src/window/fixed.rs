//! Epoch-aligned windows of fixed duration: tumbling and hopping.

use crate::error::{Error, Result};

/// A fixed-duration window layout: tumbling when `period == every`, hopping otherwise.
///
/// ```
/// use _core::window::FixedWindows;
/// let hop = FixedWindows::hopping(10, 5, 0).unwrap();
/// let (first, last) = hop.indices(7);
/// assert_eq!((hop.start(first), hop.end(first)), (0, 10));
/// assert_eq!((hop.start(last), hop.end(last)), (5, 15));
/// let tumble = FixedWindows::tumbling(10, 0).unwrap();
/// assert_eq!(tumble.start(tumble.indices(-1).1), -10);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedWindows {
    /// Length of each window.
    pub period: i64,
    /// Distance between the starts of consecutive windows.
    pub every: i64,
    /// Shift of the window grid from the epoch, normalised into `[0, every)`.
    pub offset: i64,
}

impl FixedWindows {
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
        let per_row = period / every + i64::from(period % every != 0);
        if per_row > super::limits::MAX_WINDOWS_PER_ROW {
            return Err(super::limits::too_many_windows(
                "hopping",
                per_row,
                "period / every",
            ));
        }
        Ok(FixedWindows {
            period,
            every,
            offset: offset.rem_euclid(every),
        })
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

    /// The instants (inclusive) whose windows all start and end within 64-bit time: a row
    /// outside them would land in a window whose bounds cannot be written down.
    pub fn supported(&self) -> (i64, i64) {
        let (min, max) = (i64::MIN as i128, i64::MAX as i128);
        let (p, e, o) = (self.period as i128, self.every as i128, self.offset as i128);
        // The first window starting at or after the smallest instant; a row is in no window
        // before it once it reaches the end of the window before that one.
        // Window indices stay within half the 64-bit range (see `passed_upto`).
        let w_min = (-(o - min).div_euclid(e)).max(min / 2 + 1);
        let lo = ((w_min - 1) * e + o + p).clamp(min, max);
        // The last window ending at or before the largest instant; a row is in none after it
        // until the next window starts.
        let w_max = (max - o - p).div_euclid(e).min(max / 2 - 1);
        let hi = ((w_max + 1) * e + o - 1).clamp(min, max);
        (lo as i64, hi as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_event_belongs_to_next_window() {
        let w = FixedWindows::tumbling(10, 0).unwrap();
        let (f, l) = w.indices(10);
        assert_eq!((f, l), (1, 1));
        assert_eq!(w.start(l), 10);
    }

    #[test]
    fn negative_times_floor() {
        let w = FixedWindows::tumbling(10, 0).unwrap();
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
                let w = FixedWindows::tumbling(10, o).unwrap();
                w.start(w.indices(t).1)
            })
            .collect();
        assert_eq!(starts, vec![4, 4, 4]);
    }

    #[test]
    fn hopping_gap_rows_have_no_window() {
        let w = FixedWindows::hopping(5, 10, 0).unwrap();
        let (f, l) = w.indices(7);
        assert!(f > l);
        let (f, l) = w.indices(3);
        assert_eq!((f, l), (0, 0));
    }

    #[test]
    fn passed_upto_matches_definition() {
        let w = FixedWindows::hopping(10, 5, 0).unwrap();
        for wm in -30..30 {
            for extra in [0, 3, 5] {
                let k = w.passed_upto(wm, extra);
                assert!(w.end(k) + extra <= wm);
                assert!(w.end(k + 1) + extra > wm);
            }
        }
        assert!(w.passed_upto(i64::MIN, 0) < -1_000_000);
    }

    #[test]
    fn supported_instants_are_those_whose_windows_fit_in_64_bits() {
        for (period, every, offset) in [(10, 10, 0), (10, 5, 3), (5, 10, 7), (1 << 20, 1 << 20, 0)]
        {
            let w = FixedWindows::hopping(period, every, offset).unwrap();
            let (lo, hi) = w.supported();
            let fits = |t: i64| {
                let rel = t as i128 - w.offset as i128;
                let first = (rel - w.period as i128).div_euclid(w.every as i128) + 1;
                let last = rel.div_euclid(w.every as i128);
                first * w.every as i128 + w.offset as i128 >= i64::MIN as i128
                    && last * w.every as i128 + w.offset as i128 + w.period as i128
                        <= i64::MAX as i128
            };
            for t in [lo, lo.saturating_add(1), hi, hi - 1, 0] {
                assert!(fits(t), "{t} in ({lo}, {hi})");
            }
            if lo > i64::MIN {
                assert!(!fits(lo - 1));
            }
            if hi < i64::MAX {
                assert!(!fits(hi + 1));
            }
        }
    }
}
