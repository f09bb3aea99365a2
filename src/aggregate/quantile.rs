//! Quantiles: exact (all values kept, nearest rank as polars' "nearest") and approximate
//! (DDSketch: logarithmic buckets with a relative-error guarantee that survives merging).

use super::contract::RowContext;
use super::rows::{Column, OutBuilder, RowState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which value an exact quantile takes between the ranks around `q`, as polars'
/// `interpolation=` names them. With `n` sorted values and `p = (n - 1) * q`: `nearest` takes
/// index `round(p)`, `lower` `floor(p)`, `higher` `ceil(p)`, `midpoint` the mean of those two,
/// `linear` interpolates between them (SQL's `PERCENTILE_CONT`, and the median of an even
/// count); `equiprobable` takes index `ceil(q * n) - 1` (SQL's `PERCENTILE_DISC`, the
/// smallest value whose cumulative share reaches `q`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interpolation {
    /// `round((n - 1) q)`.
    #[default]
    Nearest,
    /// `floor((n - 1) q)`.
    Lower,
    /// `ceil((n - 1) q)`.
    Higher,
    /// The mean of `lower` and `higher`.
    Midpoint,
    /// Linear between `lower` and `higher`.
    Linear,
    /// `ceil(q n) - 1`.
    Equiprobable,
}

impl Interpolation {
    /// Reads polars' name of a method.
    pub fn parse(name: &str) -> crate::Result<Interpolation> {
        Ok(match name {
            "nearest" => Interpolation::Nearest,
            "lower" => Interpolation::Lower,
            "higher" => Interpolation::Higher,
            "midpoint" => Interpolation::Midpoint,
            "linear" => Interpolation::Linear,
            "equiprobable" => Interpolation::Equiprobable,
            other => {
                return Err(crate::Error::Config(format!(
                    "unknown quantile interpolation '{other}'; use 'nearest', 'lower', \
                     'higher', 'midpoint', 'linear' or 'equiprobable'"
                )))
            }
        })
    }
}

/// Settings of a quantile.
pub struct QuantileConfig {
    /// The quantile, in [0, 1].
    pub q: f64,
    /// Between which ranks, and how.
    pub interpolation: Interpolation,
}

/// Every value of the pane; the quantile by nearest rank: the value at index
/// `round((n - 1) * q)` of the sorted values (polars' `interpolation="nearest"`). NaN sorts
/// last, as in polars.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactQuantile(Vec<f64>);

impl ExactQuantile {
    /// The quantile of the values seen (nearest rank); None when there are none.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.quantile_by(q, Interpolation::Nearest)
    }

    /// The quantile of the values seen by `method`; None when there are none.
    pub fn quantile_by(&self, q: f64, method: Interpolation) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let n = self.0.len();
        let mut v = self.0.clone();
        let mut at = |idx: usize| -> f64 {
            let idx = idx.min(n - 1);
            let (_, x, _) = v.select_nth_unstable_by(idx, |a, b| {
                let key = |x: &f64| if x.is_nan() { f64::INFINITY } else { *x };
                key(a)
                    .partial_cmp(&key(b))
                    .expect("no NaN keys")
                    .then(a.is_nan().cmp(&b.is_nan()))
            });
            *x
        };
        let p = ((n - 1) as f64) * q;
        let (lo, hi) = (p.floor() as usize, p.ceil() as usize);
        Some(match method {
            Interpolation::Nearest => at(p.round() as usize),
            Interpolation::Lower => at(lo),
            Interpolation::Higher => at(hi),
            Interpolation::Midpoint => {
                let a = at(lo);
                (a + at(hi)) / 2.0
            }
            Interpolation::Linear => {
                let a = at(lo);
                let b = at(hi);
                if lo == hi {
                    a
                } else {
                    a + (b - a) * (p - lo as f64)
                }
            }
            Interpolation::Equiprobable => at(((q * n as f64).ceil() as usize).saturating_sub(1)),
        })
    }
}

impl RowState for ExactQuantile {
    type Config = QuantileConfig;
    fn new(_: &QuantileConfig) -> Self {
        ExactQuantile::default()
    }
    #[inline]
    fn update(
        &mut self,
        _: &QuantileConfig,
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        if let Some(x) = col.f64(row) {
            self.0.push(x);
        }
    }
    fn merge(&mut self, _: &QuantileConfig, other: &Self) {
        self.0.extend_from_slice(&other.0);
    }
    fn evaluate(&self, cfg: &QuantileConfig, out: &mut OutBuilder) {
        out.push_f64(self.quantile_by(cfg.q, cfg.interpolation));
    }
    fn size(&self) -> usize {
        self.0.capacity() * 8 + 24
    }
}

/// Settings of [`DDSketch`].
pub struct SketchConfig {
    /// The quantile, in [0, 1].
    pub q: f64,
    /// Relative accuracy: a returned quantile is within this fraction of a true value of
    /// that rank.
    pub relative_error: f64,
    ln_gamma: f64,
    gamma: f64,
}

impl SketchConfig {
    /// Buckets for `relative_error`.
    pub fn new(q: f64, relative_error: f64) -> Self {
        let gamma = (1.0 + relative_error) / (1.0 - relative_error);
        SketchConfig {
            q,
            relative_error,
            ln_gamma: gamma.ln(),
            gamma,
        }
    }

    #[inline]
    fn index(&self, x: f64) -> i64 {
        (x.ln() / self.ln_gamma).ceil() as i64
    }

    /// The bucket's representative, within the relative error of every value in it; kept
    /// finite and non-zero at the ends of the float range.
    fn value(&self, index: i64) -> f64 {
        let v = (index as f64 * self.ln_gamma + (2.0 / (self.gamma + 1.0)).ln()).exp();
        v.clamp(f64::from_bits(1), f64::MAX)
    }
}

/// DDSketch (Masson, Rim, Lee 2019): value `x > 0` goes to bucket `ceil(log_gamma(x))`;
/// negative values mirror it; zeros and infinities are counted apart; NaN is skipped.
/// Merging adds bucket counts, so the relative-error guarantee holds after any merges.
///
/// ```
/// use _core::aggregate::{DDSketch, SketchConfig};
/// let cfg = SketchConfig::new(0.99, 0.01);
/// let mut s = DDSketch::default();
/// for i in 1..=1000 { s.add(&cfg, i as f64); }
/// let q = s.quantile(&cfg, 0.99).unwrap();
/// assert!((q - 990.0).abs() <= 0.01 * 990.0 + 1e-9);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DDSketch {
    positive: BTreeMap<i64, u64>,
    negative: BTreeMap<i64, u64>,
    zeros: u64,
    pos_inf: u64,
    neg_inf: u64,
    count: u64,
}

impl DDSketch {
    /// Adds a value.
    #[inline]
    pub fn add(&mut self, cfg: &SketchConfig, x: f64) {
        if x.is_nan() {
            return;
        }
        self.count += 1;
        if x == f64::INFINITY {
            self.pos_inf += 1;
        } else if x == f64::NEG_INFINITY {
            self.neg_inf += 1;
        } else if x == 0.0 {
            self.zeros += 1;
        } else if x > 0.0 {
            *self.positive.entry(cfg.index(x)).or_insert(0) += 1;
        } else {
            *self.negative.entry(cfg.index(-x)).or_insert(0) += 1;
        }
    }

    /// Adds another sketch (of the same accuracy).
    pub fn merge(&mut self, other: &DDSketch) {
        for (&i, &c) in &other.positive {
            *self.positive.entry(i).or_insert(0) += c;
        }
        for (&i, &c) in &other.negative {
            *self.negative.entry(i).or_insert(0) += c;
        }
        self.zeros += other.zeros;
        self.pos_inf += other.pos_inf;
        self.neg_inf += other.neg_inf;
        self.count += other.count;
    }

    /// The `q` quantile at rank `round(q * (n - 1))`, the exact quantile's nearest rank;
    /// None when empty.
    pub fn quantile(&self, cfg: &SketchConfig, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count - 1) as f64 * q).round() as u64;
        let mut seen = self.neg_inf;
        if rank < seen {
            return Some(f64::NEG_INFINITY);
        }
        for (&i, &c) in self.negative.iter().rev() {
            seen += c;
            if rank < seen {
                return Some(-cfg.value(i));
            }
        }
        seen += self.zeros;
        if rank < seen {
            return Some(0.0);
        }
        for (&i, &c) in &self.positive {
            seen += c;
            if rank < seen {
                return Some(cfg.value(i));
            }
        }
        Some(f64::INFINITY)
    }
}

impl RowState for DDSketch {
    type Config = SketchConfig;
    fn new(_: &SketchConfig) -> Self {
        DDSketch::default()
    }
    #[inline]
    fn update(
        &mut self,
        cfg: &SketchConfig,
        col: &Column<'_>,
        _: Option<&Column<'_>>,
        row: usize,
        _: &RowContext<'_>,
    ) {
        if let Some(x) = col.f64(row) {
            self.add(cfg, x);
        }
    }
    fn merge(&mut self, _: &SketchConfig, other: &Self) {
        DDSketch::merge(self, other)
    }
    fn evaluate(&self, cfg: &SketchConfig, out: &mut OutBuilder) {
        out.push_f64(self.quantile(cfg, cfg.q));
    }
    fn size(&self) -> usize {
        (self.positive.len() + self.negative.len()) * 24 + 96
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interpolation_like_polars() {
        // polars: pl.Series(range(1, 11)).quantile(q, method), for each method.
        let e = ExactQuantile((1..=10).rev().map(f64::from).collect());
        let cases = [
            (0.15, Interpolation::Nearest, 2.0),
            (0.15, Interpolation::Lower, 2.0),
            (0.15, Interpolation::Higher, 3.0),
            (0.15, Interpolation::Midpoint, 2.5),
            (0.15, Interpolation::Linear, 2.35),
            (0.15, Interpolation::Equiprobable, 2.0),
            (0.1, Interpolation::Equiprobable, 1.0),
            (0.55, Interpolation::Equiprobable, 6.0),
            (0.5, Interpolation::Linear, 5.5),
            (0.0, Interpolation::Equiprobable, 1.0),
            (1.0, Interpolation::Equiprobable, 10.0),
            (0.95, Interpolation::Linear, 9.55),
        ];
        for (q, m, want) in cases {
            let got = e.quantile_by(q, m).unwrap();
            assert!(
                (got - want).abs() < 1e-9,
                "{m:?} at {q}: {got}, want {want}"
            );
        }
        assert_eq!(
            Interpolation::parse("linear").unwrap(),
            Interpolation::Linear
        );
        assert!(Interpolation::parse("cubic").is_err());
    }

    #[test]
    fn nearest_rank_like_polars() {
        let mut e = ExactQuantile::default();
        for x in [5.0, 1.0, 3.0, 2.0, 4.0] {
            e.0.push(x);
        }
        assert_eq!(e.quantile(0.5), Some(3.0));
        assert_eq!(e.quantile(0.0), Some(1.0));
        assert_eq!(e.quantile(1.0), Some(5.0));
        assert_eq!(e.quantile(0.6), Some(3.0)); // round(4 * 0.6 = 2.4) = 2
        assert_eq!(e.quantile(0.7), Some(4.0)); // round(2.8) = 3
        e.0.push(f64::NAN);
        assert!(e.quantile(1.0).unwrap().is_nan());
    }

    #[test]
    fn sketch_error_bound_holds_after_merging() {
        let cfg = SketchConfig::new(0.5, 0.01);
        let (mut a, mut b, mut all) = (DDSketch::default(), DDSketch::default(), Vec::new());
        for i in 0..20_000 {
            let x = ((i * 7919) % 20_000) as f64 * 0.37 - 1000.0;
            if i % 2 == 0 {
                a.add(&cfg, x)
            } else {
                b.add(&cfg, x)
            }
            all.push(x);
        }
        a.merge(&b);
        all.sort_by(|x, y| x.partial_cmp(y).unwrap());
        for q in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let rank = ((all.len() - 1) as f64 * q).round() as usize;
            let truth = all[rank];
            let got = a.quantile(&cfg, q).unwrap();
            assert!(
                (got - truth).abs() <= 0.01 * truth.abs() + 1e-9,
                "q {q}: {got} vs {truth}"
            );
        }
    }
}
