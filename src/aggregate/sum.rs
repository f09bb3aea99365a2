//! Compensated floating-point summation (Neumaier), with the positive and the negative values
//! summed apart so that an overflow does not depend on the order of the values.

use serde::{Deserialize, Serialize};

/// A running sum of `f64` values with Neumaier compensation.
///
/// The values of each sign are summed apart (zeros and NaN go with the negative ones) and
/// added at the end. A half that overflows is infinite from then on, so the result does not
/// depend on the order the values come in, or on how partial sums are merged:
/// one sign overflowing gives `inf` or `-inf` (`sum([1e308, 1e308, -1e308])` is `inf`), both
/// signs overflowing give NaN, as `inf - inf` does, and so does a NaN value.
///
/// ```
/// use _core::aggregate::CompensatedSum;
/// let mut s = CompensatedSum::default();
/// for v in [1e16, 1.0, -1e16] { s.add(v); }
/// assert_eq!(s.value(), 1.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CompensatedSum {
    /// The positive values, then the others (zeros, negative values, NaN).
    halves: [Half; 2],
}

/// The compensated sum of the values of one sign; once infinite (or NaN) it stays so.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Half {
    sum: f64,
    compensation: f64,
}

impl Half {
    #[inline]
    fn add(&mut self, v: f64) {
        let t = self.sum + v;
        if t.is_finite() {
            if self.sum.abs() >= v.abs() {
                self.compensation += (self.sum - t) + v;
            } else {
                self.compensation += (v - t) + self.sum;
            }
        }
        self.sum = t;
    }

    fn merge(&mut self, other: &Half) {
        self.add(other.sum);
        if self.sum.is_finite() {
            self.compensation += other.compensation;
        }
    }
}

impl CompensatedSum {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, v: f64) {
        // Indexed rather than branched on: the sign of data is rarely predictable.
        self.halves[1 - usize::from(v > 0.0)].add(v);
    }

    /// Adds another running sum.
    pub fn merge(&mut self, other: &CompensatedSum) {
        self.halves[0].merge(&other.halves[0]);
        self.halves[1].merge(&other.halves[1]);
    }

    /// The sum: `inf` or `-inf` once the values of one sign overflow (or include an
    /// infinity), NaN when both signs do or with a NaN.
    pub fn value(&self) -> f64 {
        let [pos, neg] = &self.halves;
        let (p, n) = (pos.sum, neg.sum);
        if p.is_finite() && n.is_finite() {
            // Both halves lie within the finite range, so their sum does too.
            (p + n) + (pos.compensation + neg.compensation)
        } else {
            p + n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(values: &[f64]) -> f64 {
        let mut s = CompensatedSum::default();
        values.iter().for_each(|&v| s.add(v));
        s.value()
    }

    #[test]
    fn float_sum_that_overflows_is_inf_not_nan() {
        assert_eq!(sum(&[1e308, 1e308]), f64::INFINITY);
        assert_eq!(sum(&[-1e308, -1e308, 5.0]), f64::NEG_INFINITY);
        assert_eq!(sum(&[1e308, 1e308, -1e308]), f64::INFINITY);
        assert!(sum(&[1e308, 1e308, f64::NEG_INFINITY]).is_nan());
        assert_eq!(sum(&[f64::MAX, 1.0]), f64::MAX);
        assert_eq!(sum(&[f64::MAX, -f64::MAX, 2.0]), 2.0);
        assert!(sum(&[1.0, f64::NAN, 2.0]).is_nan());
        // Merged halves overflow as one sum does.
        let (mut a, mut b) = (CompensatedSum::default(), CompensatedSum::default());
        a.add(1e308);
        b.add(1e308);
        a.merge(&b);
        assert_eq!(a.value(), f64::INFINITY);
    }

    #[test]
    fn a_sum_that_overflows_both_ways_is_nan_in_any_order_or_merge() {
        let values = [1e308, 1e308, -1e308, -1e308, 1.0];
        let orders: [[usize; 5]; 4] = [
            [0, 1, 2, 3, 4],
            [2, 3, 0, 1, 4],
            [4, 2, 0, 3, 1],
            [0, 2, 1, 3, 4],
        ];
        for order in orders {
            let in_order: Vec<f64> = order.iter().map(|&i| values[i]).collect();
            assert!(sum(&in_order).is_nan(), "{in_order:?}");
            // Cut in two at every point and merged either way round.
            for cut in 0..=in_order.len() {
                let (mut a, mut b) = (CompensatedSum::default(), CompensatedSum::default());
                in_order[..cut].iter().for_each(|&v| a.add(v));
                in_order[cut..].iter().for_each(|&v| b.add(v));
                let mut ab = a;
                ab.merge(&b);
                b.merge(&a);
                assert!(
                    ab.value().is_nan() && b.value().is_nan(),
                    "{in_order:?} cut {cut}"
                );
            }
        }
        // One sign overflowing is infinite whatever the order.
        assert_eq!(sum(&[-1e308, 1e308, 1e308]), f64::INFINITY);
        assert_eq!(sum(&[1e308, -1e308, 1e308]), f64::INFINITY);
    }
}
