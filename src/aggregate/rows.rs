//! Accumulators over typed columns with a per-pane state of any shape (sets, sketches,
//! heaps), driven like every [`GroupsAccumulator`] over whole batches.

use super::contract::{load_states, save_states, GroupsAccumulator, RowContext};
use crate::error::{Error, Result};
use crate::keys::ViewCoder;
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, RecordBatch, StructArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields};
use hashbrown::HashMap;
use serde::{de::DeserializeOwned, Serialize};
use std::sync::Arc;

/// An input column, typed once per batch.
pub enum Column<'a> {
    /// 64-bit integers (and anything the Python layer cast to them).
    I64(&'a Int64Array),
    /// 64-bit floats.
    F64(&'a Float64Array),
    /// Booleans.
    Bool(&'a BooleanArray),
    /// Strings (offsets).
    Str(&'a arrow_array::StringArray),
    /// Strings (64-bit offsets).
    LargeStr(&'a arrow_array::LargeStringArray),
    /// Strings (views, as polars exports them).
    StrView(&'a arrow_array::StringViewArray),
}

impl<'a> Column<'a> {
    /// Types a column, or says which types are accepted.
    pub fn of(array: &'a ArrayRef, what: &str) -> Result<Column<'a>> {
        Ok(match array.data_type() {
            DataType::Int64 => Column::I64(array.as_primitive()),
            DataType::Float64 => Column::F64(array.as_primitive()),
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Utf8 => Column::Str(array.as_string::<i32>()),
            DataType::LargeUtf8 => Column::LargeStr(array.as_string::<i64>()),
            DataType::Utf8View => Column::StrView(array.as_string_view()),
            other => {
                return Err(Error::Schema(format!(
                    "{what} takes integer, float, boolean or string values, got {other}"
                )))
            }
        })
    }

    /// True when row `i` holds a value.
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        match self {
            Column::I64(a) => a.is_valid(i),
            Column::F64(a) => a.is_valid(i),
            Column::Bool(a) => a.is_valid(i),
            Column::Str(a) => a.is_valid(i),
            Column::LargeStr(a) => a.is_valid(i),
            Column::StrView(a) => a.is_valid(i),
        }
    }

    #[inline]
    fn str_value(&self, i: usize) -> &'a str {
        match self {
            Column::Str(a) => a.value(i),
            Column::LargeStr(a) => a.value(i),
            Column::StrView(a) => a.value(i),
            _ => "",
        }
    }

    /// The value of row `i` as a float (integers converted; strings are not numbers).
    #[inline]
    pub fn f64(&self, i: usize) -> Option<f64> {
        match self {
            Column::F64(a) => a.is_valid(i).then(|| a.value(i)),
            Column::I64(a) => a.is_valid(i).then(|| a.value(i) as f64),
            Column::Bool(a) => a.is_valid(i).then(|| a.value(i) as u8 as f64),
            _ => None,
        }
    }

    /// The value of row `i` as a [`Scalar`].
    #[inline]
    pub fn scalar(&self, i: usize) -> Option<Scalar> {
        if !self.is_valid(i) {
            return None;
        }
        Some(match self {
            Column::I64(a) => Scalar::I64(a.value(i)),
            Column::F64(a) => Scalar::F64(a.value(i)),
            Column::Bool(a) => Scalar::Bool(a.value(i)),
            _ => Scalar::Str(self.str_value(i).into()),
        })
    }

    /// The bytes that identify row `i`'s value (for hashing and distinct sets), written into
    /// `buf`; None for null.
    #[inline]
    pub fn key<'b>(&'b self, i: usize, buf: &'b mut [u8; 8]) -> Option<&'b [u8]> {
        if !self.is_valid(i) {
            return None;
        }
        Some(match self {
            Column::I64(a) => {
                *buf = a.value(i).to_le_bytes();
                &buf[..]
            }
            Column::F64(a) => {
                *buf = canonical_f64(a.value(i)).to_le_bytes();
                &buf[..]
            }
            Column::Bool(a) => {
                buf[0] = a.value(i) as u8;
                &buf[..1]
            }
            _ => self.str_value(i).as_bytes(),
        })
    }

    /// The Arrow type values of this column are output as.
    pub fn data_type(&self) -> DataType {
        match self {
            Column::I64(_) => DataType::Int64,
            Column::F64(_) => DataType::Float64,
            Column::Bool(_) => DataType::Boolean,
            _ => DataType::Utf8,
        }
    }
}

/// Float bits with every NaN alike and -0.0 equal to 0.0, so equal values hash alike.
#[inline]
pub fn canonical_f64(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// One value of any supported input type, owned.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub enum Scalar {
    /// An integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// A string.
    Str(Box<str>),
}

impl Scalar {
    /// Total order used for tie-breaks: by value ascending (floats by total order).
    pub fn cmp_value(&self, other: &Scalar) -> std::cmp::Ordering {
        use Scalar::*;
        match (self, other) {
            (I64(a), I64(b)) => a.cmp(b),
            (F64(a), F64(b)) => a.total_cmp(b),
            (Bool(a), Bool(b)) => a.cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            _ => std::cmp::Ordering::Equal,
        }
    }
}

/// Output column builders.
pub enum OutBuilder {
    /// Int64 values.
    I64(Int64Builder),
    /// Float64 values.
    F64(Float64Builder),
    /// Boolean values.
    Bool(BooleanBuilder),
    /// String values.
    Str(StringBuilder),
    /// A list of structs per row: `{value, count | weight, [error]}`.
    TopK(Box<TopKBuilder>),
}

impl OutBuilder {
    /// A builder for scalar values of `t`.
    pub fn scalar(t: &DataType) -> OutBuilder {
        match t {
            DataType::Int64 => OutBuilder::I64(Int64Builder::new()),
            DataType::Boolean => OutBuilder::Bool(BooleanBuilder::new()),
            DataType::Utf8 => OutBuilder::Str(StringBuilder::new()),
            _ => OutBuilder::F64(Float64Builder::new()),
        }
    }

    /// Appends a scalar (or null); the scalar must match the builder's type.
    pub fn push_scalar(&mut self, v: Option<&Scalar>) {
        match (self, v) {
            (OutBuilder::I64(b), Some(Scalar::I64(x))) => b.append_value(*x),
            (OutBuilder::F64(b), Some(Scalar::F64(x))) => b.append_value(*x),
            (OutBuilder::Bool(b), Some(Scalar::Bool(x))) => b.append_value(*x),
            (OutBuilder::Str(b), Some(Scalar::Str(x))) => b.append_value(x),
            (b, _) => b.push_null(),
        }
    }

    /// Appends a null.
    pub fn push_null(&mut self) {
        match self {
            OutBuilder::I64(b) => b.append_null(),
            OutBuilder::F64(b) => b.append_null(),
            OutBuilder::Bool(b) => b.append_null(),
            OutBuilder::Str(b) => b.append_null(),
            OutBuilder::TopK(b) => b.push(&[]),
        }
    }

    /// Appends an integer.
    pub fn push_i64(&mut self, v: Option<i64>) {
        match (self, v) {
            (OutBuilder::I64(b), Some(x)) => b.append_value(x),
            (OutBuilder::F64(b), Some(x)) => b.append_value(x as f64),
            (b, _) => b.push_null(),
        }
    }

    /// Appends a float.
    pub fn push_f64(&mut self, v: Option<f64>) {
        match (self, v) {
            (OutBuilder::F64(b), Some(x)) => b.append_value(x),
            (b, _) => b.push_null(),
        }
    }

    /// The built column.
    pub fn finish(&mut self) -> ArrayRef {
        match self {
            OutBuilder::I64(b) => Arc::new(b.finish()),
            OutBuilder::F64(b) => Arc::new(b.finish()),
            OutBuilder::Bool(b) => Arc::new(b.finish()),
            OutBuilder::Str(b) => Arc::new(b.finish()),
            OutBuilder::TopK(b) => b.finish(),
        }
    }
}

/// Builds `list<struct<value, count|weight, [error]>>` columns.
pub struct TopKBuilder {
    value_type: DataType,
    weighted: bool,
    with_error: bool,
    offsets: Vec<i32>,
    values: Box<OutBuilder>,
    counts: Vec<f64>,
    errors: Vec<f64>,
}

/// One entry of a top-K list.
pub struct TopKEntry<'a> {
    /// The item.
    pub value: &'a Scalar,
    /// Its count (or summed weight).
    pub count: f64,
    /// The most the count can overstate (approximate top-K).
    pub error: f64,
}

impl TopKBuilder {
    /// A builder for items of `value_type`.
    pub fn new(value_type: DataType, weighted: bool, with_error: bool) -> Self {
        TopKBuilder {
            values: Box::new(OutBuilder::scalar(&value_type)),
            value_type,
            weighted,
            with_error,
            offsets: vec![0],
            counts: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn struct_fields(&self) -> Fields {
        let count = if self.weighted {
            Field::new("weight", DataType::Float64, false)
        } else {
            Field::new("count", DataType::Int64, false)
        };
        let mut f = vec![Field::new("value", self.value_type.clone(), true), count];
        if self.with_error {
            f.push(Field::new(
                "error",
                if self.weighted {
                    DataType::Float64
                } else {
                    DataType::Int64
                },
                false,
            ));
        }
        Fields::from(f)
    }

    /// The list type.
    pub fn data_type(&self) -> DataType {
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(self.struct_fields()),
            true,
        )))
    }

    /// Appends one row's list.
    pub fn push(&mut self, entries: &[TopKEntry<'_>]) {
        for e in entries {
            self.values.push_scalar(Some(e.value));
            self.counts.push(e.count);
            self.errors.push(e.error);
        }
        let last = *self.offsets.last().expect("offsets start at 0");
        self.offsets.push(last + entries.len() as i32);
    }

    fn finish(&mut self) -> ArrayRef {
        let numbers = |v: &[f64]| -> ArrayRef {
            if self.weighted {
                Arc::new(Float64Array::from(v.to_vec()))
            } else {
                Arc::new(Int64Array::from_iter_values(v.iter().map(|&x| x as i64)))
            }
        };
        let mut columns: Vec<ArrayRef> = vec![self.values.finish(), numbers(&self.counts)];
        if self.with_error {
            columns.push(numbers(&self.errors));
        }
        let fields = self.struct_fields();
        let items = StructArray::new(fields.clone(), columns, None);
        let offsets = OffsetBuffer::new(std::mem::replace(&mut self.offsets, vec![0]).into());
        self.counts.clear();
        self.errors.clear();
        let field = Arc::new(Field::new("item", DataType::Struct(fields), true));
        Arc::new(ListArray::new(field, offsets, Arc::new(items), None))
    }
}

/// The state of one aggregate over one pane, for accumulators that need more than a fixed
/// numeric input: sets, sketches, event-time order.
pub trait RowState: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// Settings shared by every pane (precision, k, ...).
    type Config: Send + Sync + 'static;
    /// An empty state.
    fn new(cfg: &Self::Config) -> Self;
    /// Adds row `row` (its value is not null); `aux` is the second input (top-K weights).
    fn update(
        &mut self,
        cfg: &Self::Config,
        col: &Column<'_>,
        aux: Option<&Column<'_>>,
        row: usize,
        ctx: &RowContext<'_>,
    );
    /// Whether the result depends only on how many rows hold each value (exact top-K), so
    /// that rows with equal values may be added at once with [`RowState::add_count`].
    fn counts_values(_cfg: &Self::Config) -> bool {
        false
    }
    /// Adds `count` rows holding the value of row `row` (states that count values only).
    fn add_count(&mut self, _cfg: &Self::Config, _col: &Column<'_>, _row: usize, _count: u32) {
        unreachable!("add_count on a state that does not count values")
    }
    /// Adds another pane's state.
    fn merge(&mut self, cfg: &Self::Config, other: &Self);
    /// Appends the result.
    fn evaluate(&self, cfg: &Self::Config, out: &mut OutBuilder);
    /// Approximate bytes held.
    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// A [`GroupsAccumulator`] of one [`RowState`] per slot.
pub struct RowSlots<S: RowState> {
    name: String,
    input: usize,
    aux: Option<usize>,
    filter: Option<usize>,
    cfg: S::Config,
    states: Vec<S>,
    out: OutBuilder,
    out_type: DataType,
}

impl<S: RowState> RowSlots<S> {
    /// Reads column `input` where `filter` is true; results go to `out` of type `out_type`.
    pub fn new(
        name: String,
        input: usize,
        aux: Option<usize>,
        filter: Option<usize>,
        cfg: S::Config,
        out: OutBuilder,
        out_type: DataType,
    ) -> Self {
        RowSlots {
            name,
            input,
            aux,
            filter,
            cfg,
            states: Vec::new(),
            out,
            out_type,
        }
    }
}

/// Pairs from which a state that counts values tallies them first.
const TALLY_MIN: usize = 256;

/// How many rows of each (slot, value code) a batch adds, slots numbered as they appear.
#[derive(Default)]
struct Tally {
    slots: Vec<u32>,
    last: Option<(u32, u32)>,
    index: HashMap<u32, u32>,
    pairs: Vec<(u32, u32)>,
}

impl Tally {
    #[inline]
    fn add(&mut self, slot: u32, code: u32) {
        let local = match self.last {
            Some((s, l)) if s == slot => l,
            _ => {
                let next = self.slots.len() as u32;
                let l = *self.index.entry(slot).or_insert(next);
                if l == next {
                    self.slots.push(slot);
                }
                self.last = Some((slot, l));
                l
            }
        };
        self.pairs.push((local, code));
    }

    /// `(slot, reps[code], rows)` for every pair seen, by slot (in order of appearance) then
    /// code: each (slot, value) with a row holding the value and how many rows it adds.
    fn counts(&self, reps: &[u32]) -> Vec<(u32, u32, u32)> {
        let codes = reps.len();
        let mut out = Vec::new();
        // A dense table when it is not much larger than the pairs, else a sort.
        if self.slots.len().saturating_mul(codes) <= (self.pairs.len() * 2).max(1 << 12) {
            let mut table = vec![0u32; self.slots.len() * codes];
            for &(l, c) in &self.pairs {
                table[l as usize * codes + c as usize] += 1;
            }
            for (at, &n) in table.iter().enumerate() {
                if n > 0 {
                    out.push((self.slots[at / codes], reps[at % codes], n));
                }
            }
        } else {
            let mut sorted = self.pairs.clone();
            sorted.sort_unstable();
            for run in sorted.chunk_by(|a, b| a == b) {
                let (local, code) = run[0];
                out.push((
                    self.slots[local as usize],
                    reps[code as usize],
                    run.len() as u32,
                ));
            }
        }
        out
    }
}

/// Where to split a large batch's slots so that two threads get about half the pairs each, or
/// None when it is small, the engine has one thread, or one slot holds most pairs.
fn split_point(slots: &[u32], len: usize) -> Option<usize> {
    if slots.len() < crate::parallel::MIN_ROWS || crate::parallel::threads() < 2 {
        return None;
    }
    let mut counts = vec![0u32; len];
    for &s in slots {
        counts[s as usize] += 1;
    }
    let half = slots.len() / 2;
    let mut seen = 0usize;
    for (i, &c) in counts.iter().enumerate() {
        seen += c as usize;
        if seen >= half {
            // Split after the slot that crosses the half, unless it leaves one side nearly empty.
            let mid = i + 1;
            let low = seen;
            let balanced = low.min(slots.len() - low) * 4 >= slots.len();
            return (balanced && mid < len).then_some(mid);
        }
    }
    None
}

impl<S: RowState> GroupsAccumulator for RowSlots<S> {
    fn reset(&mut self, slot: u32) {
        let s = slot as usize;
        let fresh = S::new(&self.cfg);
        if s >= self.states.len() {
            self.states.resize(s + 1, fresh);
        } else {
            self.states[s] = fresh;
        }
    }

    fn update(
        &mut self,
        batch: &RecordBatch,
        rows: &[u32],
        slots: &[u32],
        ctx: &RowContext<'_>,
    ) -> Result<()> {
        let col = Column::of(batch.column(self.input), &self.name)?;
        let aux = match self.aux {
            None => None,
            Some(i) => Some(Column::of(batch.column(i), &self.name)?),
        };
        let filter = self.filter.map(|i| batch.column(i).as_boolean());
        let cfg = &self.cfg;
        let aux = aux.as_ref();
        let keep = |r: usize| filter.is_none_or(|f| f.is_valid(r) && f.value(r)) && col.is_valid(r);
        // Strings counted per value: a batch's pairs are tallied by (slot, string code) first.
        if let (true, Column::StrView(strings)) = (S::counts_values(cfg), &col) {
            if rows.len() >= TALLY_MIN {
                // (slot, row holding the string, rows) for a range of the pairs.
                let tally_of = |rows: &[u32], slots: &[u32]| {
                    let mut coder = ViewCoder::new(strings);
                    let mut tally = Tally::default();
                    for (&r, &s) in rows.iter().zip(slots) {
                        if keep(r as usize) {
                            tally.add(s, coder.code(r as usize));
                        }
                    }
                    tally.counts(&coder.reps)
                };
                // Large batches are tallied in two halves side by side; counts add up the same.
                let tallies = if rows.len() >= crate::parallel::MIN_STRETCH
                    && ctx.parallel
                    && crate::parallel::threads() > 1
                {
                    let mid = rows.len() / 2;
                    let (a, b) = crate::parallel::pool().join(
                        || tally_of(&rows[..mid], &slots[..mid]),
                        || tally_of(&rows[mid..], &slots[mid..]),
                    );
                    vec![a, b]
                } else {
                    vec![tally_of(rows, slots)]
                };
                for (slot, row, count) in tallies.into_iter().flatten() {
                    self.states[slot as usize].add_count(cfg, &col, row as usize, count);
                }
                return Ok(());
            }
        }
        let split = if ctx.parallel {
            split_point(slots, self.states.len())
        } else {
            None
        };
        match split {
            // Two threads, each updating the slots on its side of `mid` (each slot still sees
            // its rows in row order, so the result is the one-thread result).
            Some(mid) => {
                let (low, high) = self.states.split_at_mut(mid);
                let add = |states: &mut [S], base: usize| {
                    for (&r, &s) in rows.iter().zip(slots) {
                        let (r, s) = (r as usize, s as usize);
                        if (base..base + states.len()).contains(&s) && keep(r) {
                            states[s - base].update(cfg, &col, aux, r, ctx);
                        }
                    }
                };
                crate::parallel::pool().join(|| add(low, 0), || add(high, mid));
            }
            None => {
                for (&r, &s) in rows.iter().zip(slots) {
                    let r = r as usize;
                    if keep(r) {
                        self.states[s as usize].update(cfg, &col, aux, r, ctx);
                    }
                }
            }
        }
        Ok(())
    }

    fn tallies(&self, batch: &RecordBatch) -> bool {
        S::counts_values(&self.cfg) && batch.column(self.input).data_type() == &DataType::Utf8View
    }

    fn merge(&mut self, dst: u32, src: u32) {
        let other = self.states[src as usize].clone();
        self.states[dst as usize].merge(&self.cfg, &other);
    }

    fn copy(&mut self, dst: u32, src: u32) {
        let state = self.states[src as usize].clone();
        let d = dst as usize;
        if d >= self.states.len() {
            self.states.resize(d + 1, S::new(&self.cfg));
        }
        self.states[d] = state;
    }

    fn snapshot(&mut self, slots: &[u32]) {
        for &s in slots {
            self.states[s as usize].evaluate(&self.cfg, &mut self.out);
        }
    }

    fn finish(&mut self) -> ArrayRef {
        self.out.finish()
    }

    fn field(&self) -> Field {
        Field::new(&self.name, self.out_type.clone(), true)
    }

    fn size(&self) -> usize {
        self.states.iter().map(|s| s.size()).sum()
    }

    fn save(&self, slots: &[u32]) -> Result<Vec<u8>> {
        save_states(&self.states, slots)
    }

    fn load(&mut self, slots: &[u32], bytes: &[u8]) -> Result<()> {
        let cfg = &self.cfg;
        load_states(&mut self.states, slots, bytes, || S::new(cfg))
    }
}
