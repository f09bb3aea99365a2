//! Variance and standard deviation (Welford, merged with Chan's formula), and the first and
//! last value by event time.

use super::contract::RowContext;
use super::rows::{Column, OutBuilder, RowState, Scalar};
use serde::{Deserialize, Serialize};

/// Settings of [`Variance`].
pub struct VarianceConfig {
    /// Delta degrees of freedom: the divisor is `n - ddof`.
    pub ddof: u32,
    /// Output the square root (standard deviation).
    pub std: bool,
}

/// Running count, mean and sum of squared deviations (Welford), numerically stable for large
/// magnitudes with small differences. Null under `ddof + 1` values.
///
/// ```
/// use _core::aggregate::Variance;
/// let mut v = Variance::default();
/// for x in [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0] { v.add(x); }
/// assert_eq!(v.variance(1), Some(30.0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Variance {
    n: u64,
    /// The first value: deviations are accumulated from it, so large magnitudes with small
    /// differences lose no precision (the shifted-data algorithm).
    shift: f64,
    mean: f64,
    m2: f64,
}

impl Variance {
    /// Adds one value.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if self.n == 0 {
            self.shift = x;
        }
        let d = x - self.shift;
        self.n += 1;
        let delta = d - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (d - self.mean);
    }

    /// Adds another running variance (Chan et al.).
    pub fn merge(&mut self, o: &Variance) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let delta = (o.shift - self.shift) + (o.mean - self.mean);
        self.mean += delta * o.n as f64 / n as f64;
        self.m2 += o.m2 + delta * delta * self.n as f64 * o.n as f64 / n as f64;
        self.n = n;
    }

    /// The variance with `ddof` delta degrees of freedom; None under `ddof + 1` values.
    pub fn variance(&self, ddof: u32) -> Option<f64> {
        // Rounding can leave m2 a hair below zero; NaN (from NaN or inf inputs) stays NaN.
        (self.n > ddof as u64).then(|| {
            let v = self.m2 / (self.n - ddof as u64) as f64;
            if v < 0.0 {
                0.0
            } else {
                v
            }
        })
    }
}

impl RowState for Variance {
    type Config = VarianceConfig;
    fn new(_: &VarianceConfig) -> Self {
        Variance::default()
    }
    #[inline]
    fn update(
        &mut self,
        _: &VarianceConfig,
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        if let Some(x) = col.f64(row) {
            self.add(x);
        }
    }
    fn merge(&mut self, _: &VarianceConfig, other: &Self) {
        Variance::merge(self, other)
    }
    fn evaluate(&self, cfg: &VarianceConfig, out: &mut OutBuilder) {
        let v = self.variance(cfg.ddof);
        out.push_f64(if cfg.std { v.map(f64::sqrt) } else { v });
    }
}

/// Settings of [`FirstLast`].
pub struct FirstLastConfig {
    /// Keep the last value (by event time, ties by arrival) instead of the first.
    pub last: bool,
}

/// The first or last value by event time; ties are broken by arrival order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirstLast(Option<(i64, u64, Scalar)>);

impl RowState for FirstLast {
    type Config = FirstLastConfig;
    fn new(_: &FirstLastConfig) -> Self {
        FirstLast(None)
    }
    #[inline]
    fn update(
        &mut self,
        cfg: &FirstLastConfig,
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        ctx: &RowContext<'_>,
    ) {
        let at = (ctx.times[row], ctx.seq_base + row as u64);
        let better = match &self.0 {
            None => true,
            Some((t, seq, _)) => {
                if cfg.last {
                    at >= (*t, *seq)
                } else {
                    at < (*t, *seq)
                }
            }
        };
        if better {
            if let Some(v) = col.scalar(row) {
                self.0 = Some((at.0, at.1, v));
            }
        }
    }
    fn merge(&mut self, cfg: &FirstLastConfig, other: &Self) {
        if let Some((t, seq, v)) = &other.0 {
            let better = match &self.0 {
                None => true,
                Some((mt, ms, _)) => {
                    if cfg.last {
                        (*t, *seq) >= (*mt, *ms)
                    } else {
                        (*t, *seq) < (*mt, *ms)
                    }
                }
            };
            if better {
                self.0 = Some((*t, *seq, v.clone()));
            }
        }
    }
    fn evaluate(&self, _: &FirstLastConfig, out: &mut OutBuilder) {
        out.push_scalar(self.0.as_ref().map(|(_, _, v)| v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variance_is_stable_and_mergeable() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e12 + (i % 7) as f64).collect();
        let mut all = Variance::default();
        let (mut a, mut b) = (Variance::default(), Variance::default());
        for (i, &x) in xs.iter().enumerate() {
            all.add(x);
            if i % 3 == 0 {
                a.add(x)
            } else {
                b.add(x)
            }
        }
        a.merge(&b);
        // Variance is shift-invariant: compute it exactly on the small offsets.
        let small: Vec<f64> = (0..1000).map(|i| (i % 7) as f64).collect();
        let mean = small.iter().sum::<f64>() / 1000.0;
        let exact = small.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 999.0;
        assert!((all.variance(1).unwrap() - exact).abs() < 1e-6);
        assert!((a.variance(1).unwrap() - exact).abs() < 1e-6);
        let mut one = Variance::default();
        one.add(3.0);
        assert_eq!(one.variance(1), None);
        assert_eq!(one.variance(0), Some(0.0));
    }
}
