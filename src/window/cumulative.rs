//! Cumulative windows (Flink CUMULATE): within each `period`-long block, windows that all start
//! at the block's start and end after 1, 2, ... `period / step` steps.
//!
//! ```text
//!  step = 2, period = 6       block [0, 6)                 block [6, 12)
//!                             [0, 2)                       [6, 8)
//!                             [0,    4)                    [6,    10)
//!                             [0,       6)                 [6,        12)
//! ```
//! Window `c` is step `c mod K` of block `c div K` (K = period / step), so its end is
//! `offset + (c + 1) * step`: ends increase with `c`, one per step.

use crate::error::{Error, Result};

/// Cumulative windows of fixed `step` within blocks of `period`.
///
/// ```
/// use _core::window::Cumulative;
/// let c = Cumulative::new(10, 2, 0).unwrap();
/// let (first, last) = c.indices(5);        // t = 5 is in [0, 6), [0, 8) and [0, 10)
/// assert_eq!((c.start(first), c.end(first)), (0, 6));
/// assert_eq!((c.start(last), c.end(last)), (0, 10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cumulative {
    /// Length of a block (the longest window).
    pub period: i64,
    /// Growth of the window per step.
    pub step: i64,
    /// Shift of the block grid from the epoch, in `[0, period)`.
    pub offset: i64,
    steps: i64,
}

impl Cumulative {
    /// Blocks of `period` growing by `step`; `period` must be a multiple of `step`.
    pub fn new(period: i64, step: i64, offset: i64) -> Result<Self> {
        if step <= 0 || period <= 0 {
            return Err(Error::Config(format!(
                "cumulative windows need a positive period and step, got period {period} and \
                 step {step}"
            )));
        }
        if period / step > super::limits::MAX_WINDOWS_PER_ROW {
            return Err(super::limits::too_many_windows(
                "cumulative",
                period / step,
                "period / step",
            ));
        }
        if period % step != 0 {
            return Err(Error::Config(format!(
                "a cumulative window's period ({period}) must be a whole multiple of its step \
                 ({step}), e.g. cumulative('1h', '10m')"
            )));
        }
        Ok(Cumulative {
            period,
            step,
            offset: offset.rem_euclid(period),
            steps: period / step,
        })
    }

    /// First and last window containing `t`.
    #[inline]
    pub fn indices(&self, t: i64) -> (i64, i64) {
        let rel = t as i128 - self.offset as i128;
        let block = rel.div_euclid(self.period as i128);
        let within = (rel - block * self.period as i128).div_euclid(self.step as i128);
        let k = self.steps as i128;
        let first = block * k + within;
        let last = block * k + k - 1;
        (clamp(first), clamp(last))
    }

    /// Start of window `c` (its block's start).
    #[inline]
    pub fn start(&self, c: i64) -> i64 {
        c.div_euclid(self.steps)
            .saturating_mul(self.period)
            .saturating_add(self.offset)
    }

    /// End of window `c`.
    #[inline]
    pub fn end(&self, c: i64) -> i64 {
        c.saturating_add(1)
            .saturating_mul(self.step)
            .saturating_add(self.offset)
    }

    /// The instants (inclusive) whose block starts and ends within 64-bit time.
    pub fn supported(&self) -> (i64, i64) {
        let (min, max) = (i64::MIN as i128, i64::MAX as i128);
        let (p, o) = (self.period as i128, self.offset as i128);
        // Window indices (block * steps + step) stay within half the 64-bit range.
        let k = self.steps as i128;
        let b_min = (-(o - min).div_euclid(p)).max((min / 2).div_euclid(k) + 1);
        let b_max = (max - o - p).div_euclid(p).min((max / 2).div_euclid(k) - 1);
        let lo = (b_min * p + o).clamp(min, max);
        let hi = ((b_max + 1) * p + o - 1).clamp(min, max);
        (lo as i64, hi as i64)
    }

    /// The largest window whose `end + extra <= instant`.
    #[inline]
    pub fn passed_upto(&self, instant: i64, extra: i64) -> i64 {
        let x = instant as i128 - extra as i128 - self.offset as i128;
        clamp(x.div_euclid(self.step as i128) - 1)
    }
}

fn clamp(v: i128) -> i64 {
    v.clamp(i64::MIN as i128 / 2, i64::MAX as i128 / 2) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_cumulate_example() {
        // Reference edge case 19: step 2, size 10; events at 5, 7 and 9 (minutes past 08:00).
        let c = Cumulative::new(10, 2, 0).unwrap();
        let windows = |t| {
            let (f, l) = c.indices(t);
            (f..=l).map(|w| (c.start(w), c.end(w))).collect::<Vec<_>>()
        };
        assert_eq!(windows(5), vec![(0, 6), (0, 8), (0, 10)]);
        assert_eq!(windows(7), vec![(0, 8), (0, 10)]);
        assert_eq!(windows(9), vec![(0, 10)]);
        assert_eq!(
            windows(10),
            vec![(10, 12), (10, 14), (10, 16), (10, 18), (10, 20)]
        );
        assert_eq!(windows(-1), vec![(-10, 0)]);
    }

    #[test]
    fn passed_upto_matches_definition() {
        let c = Cumulative::new(12, 3, 5).unwrap();
        for wm in -40..40 {
            for extra in [0, 2, 7] {
                let k = c.passed_upto(wm, extra);
                assert!(c.end(k) + extra <= wm);
                assert!(c.end(k + 1) + extra > wm);
            }
        }
    }

    #[test]
    fn supported_instants_are_whole_blocks_within_64_bits() {
        let c = Cumulative::new(100, 10, 7).unwrap();
        let (lo, hi) = c.supported();
        assert_eq!(c.start(c.indices(lo).0), lo);
        assert!(lo - (i64::MIN) < 100 && i64::MAX - hi < 200);
        let (_, last) = c.indices(hi);
        assert!(c.end(last) as i128 <= i64::MAX as i128 && c.end(last) > hi);
        assert_eq!(c.end(last), hi + 1);
    }

    #[test]
    fn too_many_windows_per_row_is_a_config_error() {
        let e = Cumulative::new(365 * 86_400, 1, 0).unwrap_err();
        assert!(e.to_string().contains("31536000 windows"), "{e}");
        assert!(Cumulative::new(10_000, 1, 0).is_ok());
    }

    #[test]
    fn rejects_a_period_that_is_not_a_multiple_of_the_step() {
        assert!(Cumulative::new(10, 3, 0)
            .unwrap_err()
            .to_string()
            .contains("multiple"));
    }
}
