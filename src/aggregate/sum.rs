//! Compensated floating-point summation (Neumaier), with infinities and NaN counted apart so
//! that `inf - inf` and NaN propagate exactly as an uncompensated sum would.

use serde::{Deserialize, Serialize};

/// A running sum of `f64` values with Neumaier compensation.
///
/// ```
/// use _core::aggregate::CompensatedSum;
/// let mut s = CompensatedSum::default();
/// for v in [1e16, 1.0, -1e16] { s.add(v); }
/// assert_eq!(s.value(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CompensatedSum {
    sum: f64,
    compensation: f64,
    pos_inf: u64,
    neg_inf: u64,
    nan: u64,
}

impl CompensatedSum {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, v: f64) {
        if v.is_finite() {
            let t = self.sum + v;
            if self.sum.abs() >= v.abs() {
                self.compensation += (self.sum - t) + v;
            } else {
                self.compensation += (v - t) + self.sum;
            }
            self.sum = t;
        } else if v.is_nan() {
            self.nan += 1;
        } else if v > 0.0 {
            self.pos_inf += 1;
        } else {
            self.neg_inf += 1;
        }
    }

    /// Adds another running sum.
    pub fn merge(&mut self, other: &CompensatedSum) {
        self.add(other.sum);
        self.compensation += other.compensation;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
        self.nan += other.nan;
    }

    /// The sum.
    pub fn value(&self) -> f64 {
        if self.nan > 0 || (self.pos_inf > 0 && self.neg_inf > 0) {
            f64::NAN
        } else if self.pos_inf > 0 {
            f64::INFINITY
        } else if self.neg_inf > 0 {
            f64::NEG_INFINITY
        } else {
            self.sum + self.compensation
        }
    }
}
