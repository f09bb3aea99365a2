//! Reading a batch against the schema the first batch bound: event times, key ids, late and
//! rejected rows, the emission tags of updating modes; and Arrow IPC for checkpoints.

use super::config::{BatchResult, EmitMode, LateMode, Metrics, OperatorConfig, ROW_KINDS};
use super::format::{fmt_instant, fmt_span, truncate};
use crate::aggregate::{self, GroupsAccumulator};
use crate::error::{Error, Result};
use crate::keys::KeyInterner;
use crate::time::{read_timestamp, TimeUnit, TimestampError};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit as ArrowUnit};
use std::sync::Arc;

#[derive(Debug, Clone, Copy)]
pub(crate) enum TimeKind {
    Timestamp(ArrowUnit),
    Integer,
    Text,
}

pub(crate) struct Bound {
    pub(crate) schema: SchemaRef,
    pub(crate) time_index: usize,
    pub(crate) time_kind: TimeKind,
    pub(crate) key_indices: Vec<usize>,
    pub(crate) output_schema: SchemaRef,
    pub(crate) window_type: DataType,
}

impl Bound {
    /// Fails when a later batch's schema differs from the first one's.
    pub(crate) fn check(&self, schema: &SchemaRef) -> Result<()> {
        if self.schema.fields() == schema.fields() {
            return Ok(());
        }
        Err(Error::Schema(format!(
            "a batch's schema changed mid-stream: expected {:?}, got {:?}; every batch of a \
             stream must have the same columns and types",
            field_list(&self.schema),
            field_list(schema)
        )))
    }
}

impl BatchResult {
    /// Records row `i` of the batch as rejected, for `reason`.
    #[inline]
    pub(crate) fn reject(&mut self, metrics: &mut Metrics, i: usize, reason: String) {
        self.rejected_rows.push(i as u32);
        self.reasons.push(reason);
        metrics.rows_rejected += 1;
    }

    /// No output, no late or rejected rows yet.
    pub(crate) fn empty(bound: &Bound) -> BatchResult {
        BatchResult {
            output: RecordBatch::new_empty(bound.output_schema.clone()),
            late_rows: Vec::new(),
            late_by: Vec::new(),
            rejected_rows: Vec::new(),
            reasons: Vec::new(),
        }
    }
}

/// Reads a batch against the bound schema: its event times, its key ids, and an empty result.
pub(crate) fn read_batch<'a>(
    bound: &Bound,
    keys: &mut KeyInterner,
    batch: &'a RecordBatch,
) -> Result<(Times<'a>, Vec<u32>, BatchResult)> {
    let n = batch.num_rows();
    let times = read_times(batch.column(bound.time_index), bound.time_kind)?;
    let key_cols: Vec<ArrayRef> = bound
        .key_indices
        .iter()
        .map(|&i| batch.column(i).clone())
        .collect();
    let key_ids = keys.batch_ids(&key_cols, n)?;
    Ok((times, key_ids, BatchResult::empty(bound)))
}

/// Routes late row `i` (time `t`, met by watermark `wm`) as the query asks; `why` says what
/// had closed, for the error of `late="raise"`.
pub(crate) fn route_late(
    config: &OperatorConfig,
    metrics: &mut Metrics,
    result: &mut BatchResult,
    i: usize,
    t: i64,
    wm: i64,
    why: &str,
) -> Result<()> {
    metrics.rows_late += 1;
    match config.late {
        LateMode::Collect => {
            result.late_rows.push(i as u32);
            result.late_by.push(wm.saturating_sub(t));
        }
        LateMode::Drop => {}
        LateMode::Raise => {
            return Err(Error::LateData(format!(
                "row {i} of the batch is late: its time {} {why} by watermark {} (late by {}); \
                 allow more lateness with lateness=..., or keep late rows with \
                 late=\"collect\" and read them from run.late",
                fmt_instant(t, config.time_unit),
                fmt_instant(wm, config.time_unit),
                fmt_span(wm.saturating_sub(t), config.time_unit)
            )));
        }
    }
    Ok(())
}

/// Appends the emission column of updating modes: `revision` (amend) or `op` (changelog).
pub(crate) fn push_tags(columns: &mut Vec<ArrayRef>, emit: EmitMode, tags: Vec<u32>) {
    match emit {
        EmitMode::Amend => columns.push(Arc::new(UInt32Array::from(tags))),
        EmitMode::Changelog => columns.push(Arc::new(StringArray::from_iter_values(
            tags.iter().map(|&k| ROW_KINDS[k as usize]),
        ))),
        EmitMode::Final => {}
    }
}

/// Fills `out` with the batch's event times when an accumulator reads them (first/last).
pub(crate) fn batch_times(
    accs: &[Box<dyn GroupsAccumulator>],
    times: &Times<'_>,
    n: usize,
    out: &mut Vec<i64>,
) {
    out.clear();
    if accs.iter().any(|a| a.needs_time()) {
        out.extend((0..n).map(|i| times.value(i).unwrap_or(0)));
    }
}

/// What binding a schema yields: the resolved columns, the key dictionary, the accumulators.
pub(crate) type Binding = (Bound, KeyInterner, Vec<Box<dyn GroupsAccumulator>>);

/// Resolves a query's columns against the first batch's schema: the time column's kind, the
/// key columns, the accumulators and the output schema.
pub(crate) fn bind_schema(c: &OperatorConfig, schema: &SchemaRef) -> Result<Binding> {
    let find = |name: &str, what: &str| -> Result<usize> {
        schema.index_of(name).map_err(|_| {
            Error::Schema(format!(
                "{what} column '{name}' not found; the stream has columns {:?}",
                schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
            ))
        })
    };
    let time_index = find(&c.time_column, "time")?;
    let time_type = schema.field(time_index).data_type().clone();
    let (time_kind, window_type) = match (&time_type, c.time_unit) {
        (DataType::Timestamp(u, tz), unit) if unit_matches(*u, unit) => {
            (TimeKind::Timestamp(*u), DataType::Timestamp(*u, tz.clone()))
        }
        (DataType::Int64, TimeUnit::Integer) => (TimeKind::Integer, DataType::Int64),
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, TimeUnit::Microsecond) => (
            TimeKind::Text,
            DataType::Timestamp(ArrowUnit::Microsecond, Some("UTC".into())),
        ),
        (other, unit) => {
            return Err(Error::Schema(format!(
                "time column '{}' has type {other}, which does not match the time unit \
                 {} the query was built for; use a Datetime, an integer or an ISO 8601 \
                 string column",
                c.time_column,
                unit.name()
            )))
        }
    };
    let key_indices: Vec<usize> = c.by.iter().map(|k| find(k, "key")).collect::<Result<_>>()?;
    let key_types: Vec<DataType> = key_indices
        .iter()
        .map(|&i| schema.field(i).data_type().clone())
        .collect();
    let keys = KeyInterner::new(&key_types)?;
    let mut accs = Vec::with_capacity(c.aggs.len());
    for a in &c.aggs {
        let input = match &a.column {
            None => None,
            Some(col) => {
                let i = find(col, "aggregate input")?;
                Some((i, schema.field(i).data_type()))
            }
        };
        let filter = match &a.filter {
            None => None,
            Some(col) => {
                let i = find(col, "filter")?;
                if schema.field(i).data_type() != &DataType::Boolean {
                    return Err(Error::Schema(format!(
                        "the where= condition of '{}' must be boolean, got {}",
                        a.name,
                        schema.field(i).data_type()
                    )));
                }
                Some(i)
            }
        };
        let weight = match &a.options.weight {
            None => None,
            Some(col) => Some(find(col, "weight")?),
        };
        accs.push(aggregate::build(a, input, weight, filter)?);
    }
    let mut fields: Vec<Field> = key_indices
        .iter()
        .map(|&i| {
            let f = schema.field(i);
            Field::new(f.name(), f.data_type().clone(), true)
        })
        .collect();
    if c.window.per_row() {
        // One output row per input row: its time instead of window bounds.
        fields.push(Field::new(&c.time_column, window_type.clone(), false));
    } else {
        fields.push(Field::new("window_start", window_type.clone(), false));
        fields.push(Field::new("window_end", window_type.clone(), false));
    }
    match c.emit {
        EmitMode::Amend => fields.push(Field::new("revision", DataType::UInt32, false)),
        EmitMode::Changelog => fields.push(Field::new("op", DataType::Utf8, false)),
        EmitMode::Final => {}
    }
    fields.extend(accs.iter().map(|a| a.field()));
    let bound = Bound {
        schema: schema.clone(),
        time_index,
        time_kind,
        key_indices,
        output_schema: Arc::new(Schema::new(fields)),
        window_type,
    };
    Ok((bound, keys, accs))
}

fn field_list(schema: &Schema) -> Vec<String> {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect()
}

fn unit_matches(arrow: ArrowUnit, unit: TimeUnit) -> bool {
    matches!(
        (arrow, unit),
        (ArrowUnit::Nanosecond, TimeUnit::Nanosecond)
            | (ArrowUnit::Microsecond, TimeUnit::Microsecond)
            | (ArrowUnit::Millisecond, TimeUnit::Millisecond)
            | (ArrowUnit::Second, TimeUnit::Second)
    )
}

pub(crate) fn as_window_type(values: Int64Array, t: &DataType) -> Result<ArrayRef> {
    let data = values
        .into_data()
        .into_builder()
        .data_type(t.clone())
        .build()?;
    Ok(arrow_array::make_array(data))
}

/// An empty batch without columns: what an operator emits before the first batch bound
/// its schema.
pub(crate) fn no_columns() -> Result<RecordBatch> {
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(0));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &options,
    )?)
}

/// Why a row at `t` outside the instants a window layout supports is rejected.
pub(crate) fn unsupported_time(t: i64, supported: (i64, i64), unit: TimeUnit) -> String {
    let (lo, hi) = supported;
    let side = if t < lo { "start before" } else { "end after" };
    let what = match unit {
        TimeUnit::Integer => "64-bit integers",
        TimeUnit::Second => "64-bit seconds since 1970",
        TimeUnit::Millisecond => "64-bit milliseconds since 1970",
        TimeUnit::Microsecond => "64-bit microseconds since 1970",
        TimeUnit::Nanosecond => "64-bit nanoseconds since 1970",
    };
    format!(
        "time {} is outside the times this window layout supports ({} to {}): its window \
         would {side} what {what} (or the calendar's years) can hold",
        fmt_instant(t, unit),
        fmt_instant(lo, unit),
        fmt_instant(hi, unit),
    )
}

pub(crate) enum Times<'a> {
    /// An integer or timestamp column's values (any unit) and validity, read in place.
    Values(&'a [i64], Option<&'a arrow_buffer::NullBuffer>),
    /// Instants read from text, and the reasons of the rows that could not be read (by row,
    /// in row order; few), whose instants are 0.
    Text(Vec<i64>, Vec<(usize, String)>),
}

impl Times<'_> {
    #[inline]
    pub(crate) fn value(&self, i: usize) -> std::result::Result<i64, String> {
        match self {
            Times::Values(v, nulls) => {
                if nulls.is_none_or(|n| n.is_valid(i)) {
                    Ok(v[i])
                } else {
                    Err("null time".into())
                }
            }
            Times::Text(v, bad) => {
                if bad.is_empty() {
                    return Ok(v[i]);
                }
                match bad.binary_search_by_key(&i, |(row, _)| *row) {
                    Ok(at) => Err(bad[at].1.clone()),
                    Err(_) => Ok(v[i]),
                }
            }
        }
    }
}

pub(crate) fn read_times(col: &ArrayRef, kind: TimeKind) -> Result<Times<'_>> {
    Ok(match kind {
        TimeKind::Integer => Times::Values(
            col.as_primitive::<arrow_array::types::Int64Type>().values(),
            col.nulls(),
        ),
        TimeKind::Timestamp(u) => {
            let values: &[i64] = match u {
                ArrowUnit::Second => col.as_primitive::<TimestampSecondType>().values(),
                ArrowUnit::Millisecond => col.as_primitive::<TimestampMillisecondType>().values(),
                ArrowUnit::Microsecond => col.as_primitive::<TimestampMicrosecondType>().values(),
                ArrowUnit::Nanosecond => col.as_primitive::<TimestampNanosecondType>().values(),
            };
            Times::Values(values, col.nulls())
        }
        TimeKind::Text => {
            let parse = |s: Option<&str>| match s {
                None => Err("null time".to_string()),
                Some(s) => read_timestamp(s, TimeUnit::Microsecond).map_err(|e| match e {
                    TimestampError::Unparseable => format!(
                        "unparseable time {:?}: expected an ISO 8601 / RFC 3339 timestamp such \
                         as 2024-05-01T12:00:00Z",
                        truncate(s, 80)
                    ),
                    TimestampError::OutOfRange => format!(
                        "time {:?} is beyond what microseconds since 1970 can hold (about \
                         294,000 years either side)",
                        truncate(s, 80)
                    ),
                }),
            };
            let mut values = Vec::with_capacity(col.len());
            let mut bad = Vec::new();
            let mut read = |i: usize, s: Option<&str>| match parse(s) {
                Ok(t) => values.push(t),
                Err(why) => {
                    values.push(0);
                    bad.push((i, why));
                }
            };
            match col.data_type() {
                DataType::Utf8 => col
                    .as_string::<i32>()
                    .iter()
                    .enumerate()
                    .for_each(|(i, s)| read(i, s)),
                DataType::LargeUtf8 => col
                    .as_string::<i64>()
                    .iter()
                    .enumerate()
                    .for_each(|(i, s)| read(i, s)),
                DataType::Utf8View => col
                    .as_string_view()
                    .iter()
                    .enumerate()
                    .for_each(|(i, s)| read(i, s)),
                other => return Err(Error::Internal(format!("text time of type {other}"))),
            }
            Times::Text(values, bad)
        }
    })
}

/// The instants (microseconds since the epoch, UTC) that ISO 8601 / RFC 3339 texts hold, read
/// as a text time column is; null where the stream would reject the row. For text columns
/// read outside a query (pacing a replay by them).
pub fn text_times(col: &ArrayRef) -> Result<Int64Array> {
    let times = read_times(col, TimeKind::Text)?;
    Ok((0..col.len()).map(|i| times.value(i).ok()).collect())
}

/// A batch of the key columns (as the bound schema names them) for checkpoints.
pub(crate) fn key_batch(bound: &Bound, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let fields: Vec<Field> = bound
        .key_indices
        .iter()
        .zip(&columns)
        .map(|(&i, c)| Field::new(bound.schema.field(i).name(), c.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// One batch (and its schema) as an Arrow IPC stream.
pub(crate) fn ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())?;
    w.write(batch)?;
    w.finish()?;
    Ok(w.into_inner()?)
}

/// Reads what [`ipc`] wrote.
pub(crate) fn from_ipc(bytes: &[u8]) -> Result<RecordBatch> {
    let damaged = |e: arrow_schema::ArrowError| {
        Error::Config(format!("a snapshot's Arrow data is damaged: {e}"))
    };
    let mut r = arrow_ipc::reader::StreamReader::try_new(bytes, None).map_err(damaged)?;
    let schema = r.schema();
    match r.next() {
        Some(b) => b.map_err(damaged),
        None => Ok(RecordBatch::new_empty(schema)),
    }
}
