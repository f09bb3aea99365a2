//! The contract every aggregate keeps, below everything else in `aggregate`: the per-pane
//! [`Accumulator`], the batch-driven [`GroupsAccumulator`] and what they read and write.
//! The accumulators (`basic`, `rows`, `distinct`, ...) depend on this module and
//! `aggregate/mod.rs` builds them; nothing here depends on them.

use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;

/// What an update may need besides the value: the row's event time and arrival order.
pub struct RowContext<'a> {
    /// Event time of every row of the batch (0 for rows without a valid time).
    pub times: &'a [i64],
    /// Arrival number of the batch's first row; row `r` arrived as `seq_base + r`.
    pub seq_base: u64,
    /// Whether the update may hand work to the engine's threads. False on a feeder's own
    /// thread (`operator/feed.rs`): an engine thread may be waiting for that thread, so it
    /// must never wait for the engine's threads in turn.
    pub parallel: bool,
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
pub trait Accumulator:
    Clone + Default + Send + Sync + Serialize + DeserializeOwned + 'static
{
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
    fn update(
        &mut self,
        batch: &RecordBatch,
        rows: &[u32],
        slots: &[u32],
        ctx: &RowContext<'_>,
    ) -> Result<()>;
    /// True when updates read the rows' event times (`RowContext::times`).
    fn needs_time(&self) -> bool {
        false
    }
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
    /// True when updates from this batch are tallied per value on the worker threads
    /// (exact top-K of strings), rather than applied row by row.
    fn tallies(&self, _batch: &RecordBatch) -> bool {
        false
    }
    /// Serialises the states of these slots, in order (a checkpoint or a partial state;
    /// see [`crate::codec`]).
    fn save(&self, slots: &[u32]) -> Result<Vec<u8>>;
    /// Makes these slots hold the states [`GroupsAccumulator::save`] wrote, in order.
    fn load(&mut self, slots: &[u32], bytes: &[u8]) -> Result<()>;
}

/// The states of `slots`, encoded (for [`GroupsAccumulator::save`]).
pub(crate) fn save_states<S: Serialize>(states: &[S], slots: &[u32]) -> Result<Vec<u8>> {
    let picked: Vec<&S> = slots.iter().map(|&s| &states[s as usize]).collect();
    crate::codec::encode(&picked)
}

/// Decodes states written by [`save_states`] into `slots` of `states`, growing it with
/// `fresh` states as needed (for [`GroupsAccumulator::load`]).
pub(crate) fn load_states<S: DeserializeOwned + Clone>(
    states: &mut Vec<S>,
    slots: &[u32],
    bytes: &[u8],
    fresh: impl Fn() -> S,
) -> Result<()> {
    let loaded: Vec<S> = crate::codec::decode(bytes, "an aggregate's state")?;
    if loaded.len() != slots.len() {
        return Err(Error::Config(format!(
            "an aggregate's state holds {} slots where {} were expected; it is damaged",
            loaded.len(),
            slots.len()
        )));
    }
    if let Some(&max) = slots.iter().max() {
        if max as usize >= states.len() {
            states.resize(max as usize + 1, fresh());
        }
    }
    for (&slot, state) in slots.iter().zip(loaded) {
        states[slot as usize] = state;
    }
    Ok(())
}
