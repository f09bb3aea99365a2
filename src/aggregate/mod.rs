//! Accumulators: per-window state that is updated, merged, evaluated and serialised.
//!
//! The contract follows DataFusion's `GroupsAccumulator`: an accumulator holds the state of
//! every open (window, key) pane in one vector indexed by a *slot*, and is driven over whole
//! Arrow arrays with a list of `(row, slot)` pairs, so there is no per-row dynamic dispatch.
//! Each pane's state is a small serde-serialisable value with `update`, `merge` and
//! `evaluate`: sessions, hopping panes and distributed partials all reuse `merge`.

mod basic;
mod sum;

pub use basic::{Count, Max, Mean, Min, Sum};
pub use sum::CompensatedSum;

use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;

/// What an aggregate computes, as the Python layer describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggKind {
    /// Rows (no column) or non-null values (with a column).
    Count,
    /// Compensated sum.
    Sum,
    /// Arithmetic mean.
    Mean,
    /// Smallest value (NaN only if every value is NaN).
    Min,
    /// Largest value (NaN only if every value is NaN).
    Max,
}

impl AggKind {
    /// Parses the name used by the Python layer.
    pub fn parse(name: &str) -> Result<AggKind> {
        Ok(match name {
            "count" => AggKind::Count,
            "sum" => AggKind::Sum,
            "mean" => AggKind::Mean,
            "min" => AggKind::Min,
            "max" => AggKind::Max,
            other => {
                return Err(Error::Config(format!(
                    "unknown aggregate '{other}'; expected one of count, sum, mean, min, max"
                )))
            }
        })
    }
}

/// One aggregate of a query: what to compute, over which column, under which filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggSpec {
    /// The function.
    pub kind: AggKind,
    /// Input column (None: `count()` of rows).
    pub column: Option<String>,
    /// Boolean column; rows where it is false or null are skipped.
    pub filter: Option<String>,
    /// Output column name.
    pub name: String,
}

/// A value read from an input array at one row; `None` for null.
pub trait Input: Copy {
    /// Reads row `row` of `values`.
    fn read(values: &Values<'_>, row: usize) -> Option<Self>;
}

/// The input column of an aggregate, typed once per batch.
pub enum Values<'a> {
    /// No column: every row counts.
    Rows,
    /// 64-bit integers.
    I64(&'a Int64Array),
    /// 64-bit floats.
    F64(&'a Float64Array),
    /// Any other type: only validity is read.
    Any(&'a dyn Array),
}

/// Presence of a row or non-null value.
impl Input for () {
    #[inline]
    fn read(values: &Values<'_>, row: usize) -> Option<()> {
        let valid = match values {
            Values::Rows => true,
            Values::I64(a) => a.is_valid(row),
            Values::F64(a) => a.is_valid(row),
            Values::Any(a) => a.is_valid(row),
        };
        valid.then_some(())
    }
}

impl Input for i64 {
    #[inline]
    fn read(values: &Values<'_>, row: usize) -> Option<i64> {
        match values {
            Values::I64(a) => a.is_valid(row).then(|| a.value(row)),
            _ => None,
        }
    }
}

impl Input for f64 {
    #[inline]
    fn read(values: &Values<'_>, row: usize) -> Option<f64> {
        match values {
            Values::F64(a) => a.is_valid(row).then(|| a.value(row)),
            Values::I64(a) => a.is_valid(row).then(|| a.value(row) as f64),
            _ => None,
        }
    }
}

/// An output value type and how a column of it is built.
pub trait Output: Copy + Send + Sync + 'static {
    /// The Arrow type of the output column.
    fn data_type() -> DataType;
    /// Builds the column.
    fn build(values: Vec<Option<Self>>) -> ArrayRef;
}

impl Output for i64 {
    fn data_type() -> DataType {
        DataType::Int64
    }
    fn build(values: Vec<Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from(values))
    }
}

impl Output for f64 {
    fn data_type() -> DataType {
        DataType::Float64
    }
    fn build(values: Vec<Option<f64>>) -> ArrayRef {
        Arc::new(Float64Array::from(values))
    }
}

/// The state of one aggregate over one pane.
pub trait Accumulator: Clone + Default + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// The value read from each input row.
    type In: Input;
    /// The evaluated result.
    type Out: Output;
    /// Adds one non-null value.
    fn update(&mut self, value: Self::In);
    /// Adds everything another pane's state has seen.
    fn merge(&mut self, other: &Self);
    /// The aggregate over everything seen (`None` is null).
    fn evaluate(&self) -> Option<Self::Out>;
}

/// The state of one aggregate over every open pane, driven over whole batches.
pub trait GroupsAccumulator: Send + Sync {
    /// Makes slot `slot` exist and hold an empty state.
    fn reset(&mut self, slot: u32);
    /// Adds row `rows[k]` of `batch` to slot `slots[k]` for every k.
    fn update(&mut self, batch: &RecordBatch, rows: &[u32], slots: &[u32]) -> Result<()>;
    /// Merges slot `src` into slot `dst`.
    fn merge(&mut self, dst: u32, src: u32);
    /// Makes slot `dst` hold a copy of slot `src`'s state.
    fn copy(&mut self, dst: u32, src: u32);
    /// Appends the current value of each slot to the pending output column.
    fn snapshot(&mut self, slots: &[u32]);
    /// Takes the pending output column.
    fn finish(&mut self) -> ArrayRef;
    /// The output field.
    fn field(&self) -> Field;
    /// Approximate bytes of state held.
    fn size(&self) -> usize;
}

/// A [`GroupsAccumulator`] made of one [`Accumulator`] per slot.
pub struct Slots<A: Accumulator> {
    name: String,
    input: Option<usize>,
    filter: Option<usize>,
    states: Vec<A>,
    pending: Vec<Option<A::Out>>,
}

impl<A: Accumulator> Slots<A> {
    /// Reads `input` (a column index, or rows when None) where `filter` is true.
    pub fn new(name: String, input: Option<usize>, filter: Option<usize>) -> Self {
        Slots { name, input, filter, states: Vec::new(), pending: Vec::new() }
    }

    /// The state of one slot (for checkpoints and tests).
    pub fn state(&self, slot: u32) -> &A {
        &self.states[slot as usize]
    }
}

fn values_of(batch: &RecordBatch, input: Option<usize>) -> Values<'_> {
    match input {
        None => Values::Rows,
        Some(i) => {
            let col = batch.column(i);
            if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                Values::I64(a)
            } else if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
                Values::F64(a)
            } else {
                Values::Any(col.as_ref())
            }
        }
    }
}

impl<A: Accumulator> GroupsAccumulator for Slots<A> {
    fn reset(&mut self, slot: u32) {
        let s = slot as usize;
        if s >= self.states.len() {
            self.states.resize(s + 1, A::default());
        } else {
            self.states[s] = A::default();
        }
    }

    fn update(&mut self, batch: &RecordBatch, rows: &[u32], slots: &[u32]) -> Result<()> {
        let values = values_of(batch, self.input);
        let filter = match self.filter {
            None => None,
            Some(i) => Some(batch.column(i).as_any().downcast_ref::<BooleanArray>().ok_or_else(
                || Error::Internal(format!("filter column of '{}' is not boolean", self.name)),
            )?),
        };
        for (&r, &s) in rows.iter().zip(slots) {
            let r = r as usize;
            if let Some(f) = filter {
                if !(f.is_valid(r) && f.value(r)) {
                    continue;
                }
            }
            if let Some(v) = A::In::read(&values, r) {
                self.states[s as usize].update(v);
            }
        }
        Ok(())
    }

    fn merge(&mut self, dst: u32, src: u32) {
        let other = self.states[src as usize].clone();
        self.states[dst as usize].merge(&other);
    }

    fn copy(&mut self, dst: u32, src: u32) {
        let state = self.states[src as usize].clone();
        let d = dst as usize;
        if d >= self.states.len() {
            self.states.resize(d + 1, A::default());
        }
        self.states[d] = state;
    }

    fn snapshot(&mut self, slots: &[u32]) {
        self.pending.extend(slots.iter().map(|&s| self.states[s as usize].evaluate()));
    }

    fn finish(&mut self) -> ArrayRef {
        A::Out::build(std::mem::take(&mut self.pending))
    }

    fn field(&self) -> Field {
        Field::new(&self.name, A::Out::data_type(), true)
    }

    fn size(&self) -> usize {
        self.states.capacity() * std::mem::size_of::<A>()
    }
}

/// Builds the accumulator for `spec` given the type of its input column.
pub fn build(
    spec: &AggSpec,
    input: Option<(usize, &DataType)>,
    filter: Option<usize>,
) -> Result<Box<dyn GroupsAccumulator>> {
    let name = spec.name.clone();
    let col = input.map(|(i, _)| i);
    let numeric = |what: &str| -> Result<bool> {
        match input.map(|(_, t)| t) {
            Some(DataType::Int64) => Ok(true),
            Some(DataType::Float64) => Ok(false),
            Some(other) => Err(Error::Schema(format!(
                "{what}({}) needs a numeric column, but it is {other}; cast it to an integer \
                 or float first",
                spec.column.as_deref().unwrap_or("?")
            ))),
            None => Err(Error::Config(format!("{what}() needs a column name"))),
        }
    };
    Ok(match spec.kind {
        AggKind::Count => Box::new(Slots::<Count>::new(name, col, filter)),
        AggKind::Sum => {
            if numeric("sum")? {
                Box::new(Slots::<Sum<i64>>::new(name, col, filter))
            } else {
                Box::new(Slots::<Sum<CompensatedSum>>::new(name, col, filter))
            }
        }
        AggKind::Mean => {
            numeric("mean")?;
            Box::new(Slots::<Mean>::new(name, col, filter))
        }
        AggKind::Min => {
            if numeric("min")? {
                Box::new(Slots::<Min<i64>>::new(name, col, filter))
            } else {
                Box::new(Slots::<Min<f64>>::new(name, col, filter))
            }
        }
        AggKind::Max => {
            if numeric("max")? {
                Box::new(Slots::<Max<i64>>::new(name, col, filter))
            } else {
                Box::new(Slots::<Max<f64>>::new(name, col, filter))
            }
        }
    })
}
