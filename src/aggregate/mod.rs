//! Accumulators: per-window state that is updated, merged, evaluated and serialised.
//!
//! The contract follows DataFusion's `GroupsAccumulator`: an accumulator holds the state of
//! every open (window, key) pane in one vector indexed by a *slot*, and is driven over whole
//! Arrow arrays with a list of `(row, slot)` pairs, so there is no per-row dynamic dispatch.
//! Each pane's state is a small serde-serialisable value with `update`, `merge` and
//! `evaluate`: sessions, hopping panes and distributed partials all reuse `merge`.

mod basic;
mod contract;
mod distinct;
mod quantile;
pub mod rows;
mod stats;
mod sum;
mod topk;

pub use basic::{Count, Max, Mean, Min, Sum};
pub use contract::{Accumulator, GroupsAccumulator, Input, Output, RowContext, Values};
pub use distinct::{hash64, ExactDistinct, HllConfig, HyperLogLog};
pub use quantile::{DDSketch, ExactQuantile, Interpolation, QuantileConfig, SketchConfig};
pub use rows::{RowSlots, RowState};
pub use stats::{FirstLast, FirstLastConfig, Variance, VarianceConfig};
pub use sum::CompensatedSum;
pub use topk::{ExactTopK, SpaceSaving, TopKConfig};

use crate::error::{Error, Result};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field};
use contract::{load_states, save_states};

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
    /// Variance (Welford), with `ddof`.
    Var,
    /// Standard deviation, with `ddof`.
    Std,
    /// First value by event time, ties by arrival.
    First,
    /// Last value by event time, ties by arrival.
    Last,
    /// A sliding window's own row's value (a column carried to its output row, as a SQL
    /// select list names a column that is neither a key nor an aggregate).
    Current,
    /// Exact quantile by nearest rank (also the median).
    Quantile,
    /// Exact distinct count.
    CountDistinct,
    /// HyperLogLog distinct count.
    ApproxCountDistinct,
    /// DDSketch quantile.
    ApproxQuantile,
    /// Most frequent items (exact, or Space-Saving when approximate).
    TopK,
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
            "var" => AggKind::Var,
            "std" => AggKind::Std,
            "first" => AggKind::First,
            "last" => AggKind::Last,
            "current" => AggKind::Current,
            "quantile" => AggKind::Quantile,
            "count_distinct" => AggKind::CountDistinct,
            "approx_count_distinct" => AggKind::ApproxCountDistinct,
            "approx_quantile" => AggKind::ApproxQuantile,
            "top_k" => AggKind::TopK,
            other => {
                return Err(Error::Config(format!(
                    "unknown aggregate '{other}'; expected one of count, sum, mean, min, max, \
                     var, std, first, last, quantile, count_distinct, approx_count_distinct, \
                     approx_quantile, top_k"
                )))
            }
        })
    }
}

/// Parameters of the aggregates that take any.
#[derive(Debug, Clone, PartialEq)]
pub struct AggOptions {
    /// var/std: delta degrees of freedom.
    pub ddof: u32,
    /// quantile/approx_quantile: the quantile in [0, 1].
    pub q: f64,
    /// top_k: how many items.
    pub k: usize,
    /// top_k(approx=True): Space-Saving counters.
    pub capacity: usize,
    /// top_k: approximate (Space-Saving) instead of exact.
    pub approx: bool,
    /// top_k: a weight column to sum instead of counting rows.
    pub weight: Option<String>,
    /// approx_count_distinct: HyperLogLog precision (4..=18).
    pub precision: u8,
    /// approx_quantile: relative accuracy.
    pub relative_error: f64,
    /// quantile: which value between the ranks around q.
    pub interpolation: Interpolation,
}

impl Default for AggOptions {
    fn default() -> Self {
        AggOptions {
            ddof: 1,
            q: 0.5,
            k: 10,
            capacity: 0,
            approx: false,
            weight: None,
            precision: 14,
            relative_error: 0.01,
            interpolation: Interpolation::Nearest,
        }
    }
}

/// One aggregate of a query: what to compute, over which column, under which filter.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    /// The function.
    pub kind: AggKind,
    /// Input column (None: `count()` of rows).
    pub column: Option<String>,
    /// Boolean column; rows where it is false or null are skipped.
    pub filter: Option<String>,
    /// Output column name.
    pub name: String,
    /// Parameters (ddof, q, k, ...).
    pub options: AggOptions,
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
        Slots {
            name,
            input,
            filter,
            states: Vec::new(),
            pending: Vec::new(),
        }
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

    fn update(
        &mut self,
        batch: &RecordBatch,
        rows: &[u32],
        slots: &[u32],
        _: &RowContext<'_>,
    ) -> Result<()> {
        let values = values_of(batch, self.input);
        let filter = match self.filter {
            None => None,
            Some(i) => Some(
                batch
                    .column(i)
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .ok_or_else(|| {
                        Error::Internal(format!("filter column of '{}' is not boolean", self.name))
                    })?,
            ),
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
        self.pending
            .extend(slots.iter().map(|&s| self.states[s as usize].evaluate()));
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

    fn save(&self, slots: &[u32]) -> Result<Vec<u8>> {
        save_states(&self.states, slots)
    }

    fn load(&mut self, slots: &[u32], bytes: &[u8]) -> Result<()> {
        load_states(&mut self.states, slots, bytes, A::default)
    }
}

/// Builds the accumulator for `spec` given the type of its input column, the index of its
/// weight column (top_k) and of its filter.
pub fn build(
    spec: &AggSpec,
    input: Option<(usize, &DataType)>,
    weight: Option<usize>,
    filter: Option<usize>,
) -> Result<Box<dyn GroupsAccumulator>> {
    if let Some(acc) = build_rows(spec, input, weight, filter)? {
        return Ok(acc);
    }
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
        _ => {
            return Err(Error::Internal(format!(
                "aggregate {:?} is built elsewhere",
                spec.kind
            )))
        }
    })
}

fn value_type(spec: &AggSpec, input: Option<(usize, &DataType)>) -> Result<(usize, DataType)> {
    let (i, t) = input.ok_or_else(|| Error::Config(format!("{}() needs a column", spec.name)))?;
    let out = match t {
        DataType::Int64 => DataType::Int64,
        DataType::Float64 => DataType::Float64,
        DataType::Boolean => DataType::Boolean,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        other => {
            return Err(Error::Schema(format!(
                "'{}' takes integer, float, boolean or string values, got {other}",
                spec.name
            )))
        }
    };
    Ok((i, out))
}

fn numeric_input(spec: &AggSpec, input: Option<(usize, &DataType)>) -> Result<usize> {
    let (i, t) = value_type(spec, input)?;
    if t == DataType::Utf8 {
        return Err(Error::Schema(format!(
            "'{}' needs a numeric column, got strings; cast it to a number first",
            spec.name
        )));
    }
    Ok(i)
}

/// The accumulators with per-pane state of any shape (sets, sketches, event-time order).
fn build_rows(
    spec: &AggSpec,
    input: Option<(usize, &DataType)>,
    weight: Option<usize>,
    filter: Option<usize>,
) -> Result<Option<Box<dyn GroupsAccumulator>>> {
    use rows::OutBuilder;
    let o = &spec.options;
    let name = spec.name.clone();
    let f64_out = || (OutBuilder::scalar(&DataType::Float64), DataType::Float64);
    let i64_out = || (OutBuilder::scalar(&DataType::Int64), DataType::Int64);
    let q_ok = |q: f64| {
        if (0.0..=1.0).contains(&q) {
            Ok(q)
        } else {
            Err(Error::Config(format!(
                "'{name}': the quantile must be in [0, 1], got {q}"
            )))
        }
    };
    Ok(Some(match spec.kind {
        AggKind::Var | AggKind::Std => {
            let i = numeric_input(spec, input)?;
            let (b, t) = f64_out();
            let cfg = VarianceConfig {
                ddof: o.ddof,
                std: spec.kind == AggKind::Std,
            };
            Box::new(RowSlots::<Variance>::new(name, i, None, filter, cfg, b, t))
        }
        AggKind::First | AggKind::Last | AggKind::Current => {
            let (i, t) = value_type(spec, input)?;
            // A row's own slot holds only that row: its last value is the row's.
            let cfg = FirstLastConfig {
                last: spec.kind != AggKind::First,
            };
            Box::new(TimeAware(RowSlots::<FirstLast>::new(
                name,
                i,
                None,
                filter,
                cfg,
                OutBuilder::scalar(&t),
                t,
            )))
        }
        AggKind::Quantile => {
            let i = numeric_input(spec, input)?;
            let (b, t) = f64_out();
            let cfg = QuantileConfig {
                q: q_ok(o.q)?,
                interpolation: o.interpolation,
            };
            Box::new(RowSlots::<ExactQuantile>::new(
                name, i, None, filter, cfg, b, t,
            ))
        }
        AggKind::ApproxQuantile => {
            let i = numeric_input(spec, input)?;
            if !(o.relative_error >= 1e-12 && o.relative_error < 1.0) {
                return Err(Error::Config(format!(
                    "'{name}': relative_error must be at least 1e-12 (finer than floats can \
                     hold) and below 1, e.g. 0.01; got {}",
                    o.relative_error
                )));
            }
            let (b, t) = f64_out();
            let cfg = SketchConfig::new(q_ok(o.q)?, o.relative_error);
            Box::new(RowSlots::<DDSketch>::new(name, i, None, filter, cfg, b, t))
        }
        AggKind::CountDistinct => {
            let (i, _) = value_type(spec, input)?;
            let (b, t) = i64_out();
            Box::new(RowSlots::<ExactDistinct>::new(
                name,
                i,
                None,
                filter,
                (),
                b,
                t,
            ))
        }
        AggKind::ApproxCountDistinct => {
            let (i, _) = value_type(spec, input)?;
            if !(4..=18).contains(&o.precision) {
                return Err(Error::Config(format!(
                    "'{name}': precision must be between 4 and 18 (14 gives about 0.8% error), \
                     got {}",
                    o.precision
                )));
            }
            let (b, t) = i64_out();
            let cfg = HllConfig {
                precision: o.precision,
            };
            Box::new(RowSlots::<HyperLogLog>::new(
                name, i, None, filter, cfg, b, t,
            ))
        }
        AggKind::TopK => {
            let (i, vt) = value_type(spec, input)?;
            if o.k == 0 {
                return Err(Error::Config(format!("'{name}': k must be at least 1")));
            }
            let weighted = weight.is_some();
            let capacity = if o.capacity > 0 {
                o.capacity
            } else {
                (o.k * 10).max(1000)
            };
            let cfg = TopKConfig {
                k: o.k,
                capacity,
                weighted,
            };
            let tb = rows::TopKBuilder::new(vt, weighted, o.approx);
            let t = tb.data_type();
            let b = OutBuilder::TopK(Box::new(tb));
            if o.approx {
                Box::new(RowSlots::<SpaceSaving>::new(
                    name, i, weight, filter, cfg, b, t,
                ))
            } else {
                Box::new(RowSlots::<ExactTopK>::new(
                    name, i, weight, filter, cfg, b, t,
                ))
            }
        }
        _ => return Ok(None),
    }))
}

/// Marks an accumulator as reading event times (first/last).
struct TimeAware<G: GroupsAccumulator>(G);

impl<G: GroupsAccumulator> GroupsAccumulator for TimeAware<G> {
    fn reset(&mut self, slot: u32) {
        self.0.reset(slot)
    }
    fn update(
        &mut self,
        batch: &RecordBatch,
        rows: &[u32],
        slots: &[u32],
        ctx: &RowContext<'_>,
    ) -> Result<()> {
        self.0.update(batch, rows, slots, ctx)
    }
    fn needs_time(&self) -> bool {
        true
    }
    fn merge(&mut self, dst: u32, src: u32) {
        self.0.merge(dst, src)
    }
    fn copy(&mut self, dst: u32, src: u32) {
        self.0.copy(dst, src)
    }
    fn snapshot(&mut self, slots: &[u32]) {
        self.0.snapshot(slots)
    }
    fn finish(&mut self) -> ArrayRef {
        self.0.finish()
    }
    fn field(&self) -> Field {
        self.0.field()
    }
    fn size(&self) -> usize {
        self.0.size()
    }
    fn save(&self, slots: &[u32]) -> Result<Vec<u8>> {
        self.0.save(slots)
    }
    fn load(&mut self, slots: &[u32], bytes: &[u8]) -> Result<()> {
        self.0.load(slots, bytes)
    }
}
