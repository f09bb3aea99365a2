//! count, sum, mean, min and max.

use super::contract::{Accumulator, Input, Output};
use super::sum::CompensatedSum;
use serde::{Deserialize, Serialize};

/// Rows, or non-null values of a column. Never null: an empty pane counts 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Count(pub i64);

impl Accumulator for Count {
    type In = ();
    type Out = i64;
    #[inline]
    fn update(&mut self, _: ()) {
        self.0 += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.0 += other.0;
    }
    fn evaluate(&self) -> Option<i64> {
        Some(self.0)
    }
}

/// How a sum adds values of one type.
pub trait Summand:
    Copy + Default + Send + Sync + Serialize + for<'de> Deserialize<'de> + 'static
{
    /// The input value.
    type In: Input;
    /// The result.
    type Out: Output;
    /// Adds one value.
    fn add(&mut self, v: Self::In);
    /// Adds another partial sum.
    fn merge(&mut self, other: &Self);
    /// The sum.
    fn value(&self) -> Self::Out;
}

impl Summand for i64 {
    type In = i64;
    type Out = i64;
    #[inline]
    fn add(&mut self, v: i64) {
        *self = self.wrapping_add(v);
    }
    fn merge(&mut self, other: &Self) {
        *self = self.wrapping_add(*other);
    }
    fn value(&self) -> i64 {
        *self
    }
}

impl Summand for CompensatedSum {
    type In = f64;
    type Out = f64;
    #[inline]
    fn add(&mut self, v: f64) {
        CompensatedSum::add(self, v)
    }
    fn merge(&mut self, other: &Self) {
        CompensatedSum::merge(self, other)
    }
    fn value(&self) -> f64 {
        CompensatedSum::value(self)
    }
}

/// Sum of non-null values; null when there are none. Integers wrap like polars; floats are
/// compensated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Sum<S: Summand> {
    sum: S,
    n: u64,
}

impl<S: Summand> Accumulator for Sum<S> {
    type In = S::In;
    type Out = S::Out;
    #[inline]
    fn update(&mut self, v: S::In) {
        self.sum.add(v);
        self.n += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.sum.merge(&other.sum);
        self.n += other.n;
    }
    fn evaluate(&self) -> Option<S::Out> {
        (self.n > 0).then(|| self.sum.value())
    }
}

/// Mean of non-null values, from a compensated sum; null when there are none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Mean {
    sum: CompensatedSum,
    n: u64,
}

impl Accumulator for Mean {
    type In = f64;
    type Out = f64;
    #[inline]
    fn update(&mut self, v: f64) {
        self.sum.add(v);
        self.n += 1;
    }
    fn merge(&mut self, other: &Self) {
        self.sum.merge(&other.sum);
        self.n += other.n;
    }
    fn evaluate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum.value() / self.n as f64)
    }
}

/// Ordering used by min and max: NaN is skipped unless every value is NaN (as polars).
pub trait Extremum: Copy + Send + Sync + Serialize + for<'de> Deserialize<'de> + 'static {
    /// True when `self` should replace `current` as the minimum.
    fn less(self, current: Self) -> bool;
    /// True when `self` should replace `current` as the maximum.
    fn greater(self, current: Self) -> bool;
}

impl Extremum for i64 {
    #[inline]
    fn less(self, current: Self) -> bool {
        self < current
    }
    #[inline]
    fn greater(self, current: Self) -> bool {
        self > current
    }
}

impl Extremum for f64 {
    #[inline]
    fn less(self, current: Self) -> bool {
        self < current || (current.is_nan() && !self.is_nan())
    }
    #[inline]
    fn greater(self, current: Self) -> bool {
        self > current || (current.is_nan() && !self.is_nan())
    }
}

macro_rules! extremum {
    ($name:ident, $doc:literal, $better:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
        #[serde(bound = "")]
        pub struct $name<T: Extremum>(Option<T>);

        impl<T: Extremum> Default for $name<T> {
            fn default() -> Self {
                $name(None)
            }
        }

        impl<T: Extremum + Input + Output> Accumulator for $name<T> {
            type In = T;
            type Out = T;
            #[inline]
            fn update(&mut self, v: T) {
                let better: fn(T, T) -> bool = $better;
                match self.0 {
                    None => self.0 = Some(v),
                    Some(cur) if better(v, cur) => self.0 = Some(v),
                    _ => {}
                }
            }
            fn merge(&mut self, other: &Self) {
                if let Some(v) = other.0 {
                    self.update(v);
                }
            }
            fn evaluate(&self) -> Option<T> {
                self.0
            }
        }
    };
}

extremum!(
    Min,
    "Smallest non-null value; NaN only when every value is NaN.",
    |v, cur| v.less(cur)
);
extremum!(
    Max,
    "Largest non-null value; NaN only when every value is NaN.",
    |v, cur| v.greater(cur)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_skip_nan_unless_all_nan() {
        let mut mx = Max::<f64>::default();
        for v in [f64::NAN, 1.0, 3.0, f64::NAN, 2.0] {
            mx.update(v);
        }
        assert_eq!(mx.evaluate(), Some(3.0));
        let mut mn = Min::<f64>::default();
        for v in [f64::NAN, 1.0, -3.0] {
            mn.update(v);
        }
        assert_eq!(mn.evaluate(), Some(-3.0));
        let mut all_nan = Max::<f64>::default();
        all_nan.update(f64::NAN);
        assert!(all_nan.evaluate().unwrap().is_nan());
        assert_eq!(Min::<i64>::default().evaluate(), None);
    }

    #[test]
    fn sums_are_compensated_and_mergeable() {
        let mut a = Sum::<CompensatedSum>::default();
        let mut b = Sum::<CompensatedSum>::default();
        for v in [1e16, 1.0] {
            a.update(v);
        }
        for v in [1.0, -1e16] {
            b.update(v);
        }
        a.merge(&b);
        assert_eq!(a.evaluate(), Some(2.0));
        assert_eq!(Sum::<i64>::default().evaluate(), None);
        let mut inf = Sum::<CompensatedSum>::default();
        inf.update(f64::INFINITY);
        inf.update(1.0);
        assert_eq!(inf.evaluate(), Some(f64::INFINITY));
        inf.update(f64::NEG_INFINITY);
        assert!(inf.evaluate().unwrap().is_nan());
    }

    #[test]
    fn mean_of_nothing_is_null() {
        let mut m = Mean::default();
        assert_eq!(m.evaluate(), None);
        m.update(1.0);
        m.update(2.0);
        assert_eq!(m.evaluate(), Some(1.5));
    }
}
