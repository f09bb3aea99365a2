//! A stream joined with a table, row by row: each row's matches in the table (an equi-join on
//! key columns), or the table row of its key that is the latest at or before its event time
//! (an as-of join, polars' `join_asof(strategy="backward")`).
//!
//! The table is indexed once per table (and again only when the stream's key types change):
//! its key tuples in arrow-row's byte encoding map to a group, and each group's rows sit
//! together (sorted by time for an as-of join). A batch is then looked up with one hash per
//! row: its key tuples are coded within the batch (`keys::tuple_codes`) and only the distinct
//! tuples are encoded and looked up. A row's output does not depend on the other rows of its
//! batch, so the result is the same whatever the batch sizes.

use super::{cast_key, normalize_key, span_text, How};
use crate::error::{Error, Result};
use crate::keys::distinct_keys;
use crate::plan::type_name;
use crate::plan::Span;
use crate::time::TimeUnit;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a table join does, as the query builder writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableJoinSpec {
    /// The stream's key columns.
    pub left_on: Vec<String>,
    /// The table's key columns, in the same order.
    pub right_on: Vec<String>,
    /// Inner or left (an as-of join is always left).
    pub how: How,
    /// Appended to a table column whose name the stream already has.
    pub suffix: String,
    /// For an as-of join: the time columns and the tolerance.
    #[serde(default)]
    pub asof: Option<AsofSpec>,
}

/// The time side of an as-of join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsofSpec {
    /// The stream's event-time column.
    pub left_time: String,
    /// The table's time column: a table row holds from this time on.
    pub right_time: String,
    /// No match when the latest table row is older than this.
    #[serde(default)]
    pub tolerance: Option<Span>,
}

/// A stream-table join: the table, and its index for the stream's key types.
pub struct TableJoin {
    spec: TableJoinSpec,
    table: RecordBatch,
    bound: Option<Bound>,
    /// Rows the join added: a stream row with several matches gives a row for each.
    added: u64,
}

/// A [`TableJoin`] snapshot after its header.
#[derive(Serialize, Deserialize)]
struct SavedTableJoin {
    added: u64,
}

/// The table indexed for one stream schema.
struct Bound {
    input: SchemaRef,
    output: SchemaRef,
    converter: RowConverter,
    /// Key tuple (arrow-row bytes) to group.
    groups: HashMap<Box<[u8]>, u32>,
    /// Group `g`'s table rows are `rows[starts[g]..starts[g + 1]]` (by time for as-of).
    starts: Vec<u32>,
    rows: Vec<u32>,
    /// Every group has exactly one row (the common lookup table): no row expands.
    unique: bool,
    /// The table columns in the output, in order.
    payload: Vec<ArrayRef>,
    asof: Option<BoundAsof>,
}

struct BoundAsof {
    /// The time of each entry of `rows`, in the finer of the two columns' units (wide, so
    /// instants outside the finer unit's 64-bit range still compare exactly).
    times: Vec<i128>,
    /// Multiplies a stream instant into that unit.
    left_scale: i64,
    tolerance: Option<i64>,
}

const NONE: u32 = u32::MAX;

impl TableJoin {
    /// A join with `table` (its batches), checked against the spec now: key and time
    /// columns must be in the table.
    pub fn new(spec: TableJoinSpec, table: &[RecordBatch]) -> Result<TableJoin> {
        if spec.left_on.is_empty() && spec.asof.is_none() {
            return Err(Error::Config(
                "a join needs at least one key column, e.g. on='user'".into(),
            ));
        }
        if spec.left_on.len() != spec.right_on.len() {
            return Err(Error::Config(format!(
                "left_on names {} column(s) and right_on {}; give one table key per stream key",
                spec.left_on.len(),
                spec.right_on.len()
            )));
        }
        if spec.suffix.is_empty() {
            return Err(Error::Config(
                "suffix= must not be empty: it tells a table column from a stream column of the \
                 same name"
                    .into(),
            ));
        }
        let mut join = TableJoin {
            spec,
            table: RecordBatch::new_empty(Arc::new(Schema::empty())),
            bound: None,
            added: 0,
        };
        join.set_table(table)?;
        Ok(join)
    }

    /// Replaces the table (a reloaded reference file); the next batch sees only the new one.
    pub fn set_table(&mut self, table: &[RecordBatch]) -> Result<()> {
        let table = match table {
            [] => {
                return Err(Error::Schema(
                    "the table has no columns; a join needs a table with its key columns".into(),
                ))
            }
            [one] => one.clone(),
            more => arrow_select::concat::concat_batches(&more[0].schema(), more)?,
        };
        let schema = table.schema();
        let mut needed: Vec<&String> = self.spec.right_on.iter().collect();
        if let Some(a) = &self.spec.asof {
            needed.push(&a.right_time);
        }
        for name in needed {
            if schema.index_of(name).is_err() {
                let what = match &self.spec.asof {
                    Some(a) if &a.right_time == name => "time column",
                    _ => "key",
                };
                return Err(Error::Schema(format!(
                    "the join's {what} {name:?} is not a column of the table; it has columns {:?}",
                    names(&schema)
                )));
            }
        }
        self.table = table;
        self.bound = None;
        Ok(())
    }

    /// Rows the join added so far: beyond the first match of each stream row, one per
    /// further match (the rows an inner join drops are not counted here).
    pub fn rows_added(&self) -> u64 {
        self.added
    }

    /// What carries from batch to batch, as bytes: the counters (the table is not in it:
    /// the join that restores it is given the table again).
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = crate::codec::encode(&super::SnapshotHeader::of("table_join", &self.spec)?)?;
        out.extend(crate::codec::encode(&SavedTableJoin { added: self.added })?);
        Ok(out)
    }

    /// Continues from a [`TableJoin::snapshot`] of a join with the same spec.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let rest = super::SnapshotHeader::read(bytes, "table_join", &self.spec)?;
        let saved: SavedTableJoin = crate::codec::decode(rest, "table join snapshot")?;
        self.added = saved.added;
        Ok(())
    }

    /// Rows in the table.
    pub fn table_rows(&self) -> usize {
        self.table.num_rows()
    }

    /// Approximate bytes held: the table and its index.
    pub fn memory_bytes(&self) -> usize {
        let index = self.bound.as_ref().map_or(0, |b| {
            b.rows.len() * 4
                + b.starts.len() * 4
                + b.groups.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 16)
                + b.asof.as_ref().map_or(0, |a| a.times.len() * 8)
        });
        self.table.get_array_memory_size() + index
    }

    /// The output schema for a stream of this schema.
    pub fn output_schema(&mut self, input: &SchemaRef) -> Result<SchemaRef> {
        Ok(self.bind(input)?.output.clone())
    }

    /// The stream's rows joined with the table.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<RecordBatch> {
        Ok(self.joined(batch, false)?.0)
    }

    /// The stream's rows joined with the table, or, when the join keeps every stream row
    /// once and in order (a left join on unique table keys, an as-of join), only the
    /// table's columns for them (`true` when the batch is the whole output): the caller
    /// adds them to the rows it has, which then need not be copied.
    pub fn process_parts(&mut self, batch: &RecordBatch) -> Result<(RecordBatch, bool)> {
        self.joined(batch, true)
    }

    fn joined(&mut self, batch: &RecordBatch, parts: bool) -> Result<(RecordBatch, bool)> {
        let schema = batch.schema();
        let left_on = self.spec.left_on.clone();
        let asof_time = self.spec.asof.as_ref().map(|a| a.left_time.clone());
        let how = self.spec.how;
        let bound = self.bind(&schema)?;
        let n = batch.num_rows();
        let keys: Vec<ArrayRef> = left_on
            .iter()
            .map(|k| normalize_key(batch.column(schema.index_of(k).expect("bound")).clone()))
            .collect();
        let unique_left = bound.unique && how == How::Left && bound.asof.is_none();
        let (codes, found) = bound.coded_groups(&keys, n)?;
        let group = match (&codes, unique_left) {
            (_, true) => Vec::new(), // not needed: rows come from `found` by code below
            (None, false) => found.clone(),
            (Some(codes), false) => codes.iter().map(|&c| found[c as usize]).collect(),
        };
        let (left, right): (Option<Vec<u32>>, UInt32Array) = match (&bound.asof, asof_time) {
            (Some(asof), Some(time)) => {
                let col = batch.column(schema.index_of(&time).expect("bound"));
                let (_, instants) = instants(col, &time, "stream")?;
                let instants = instants.as_primitive::<Int64Type>();
                let right: UInt32Array = (0..n)
                    .map(|i| {
                        let g = group[i];
                        if g == NONE || instants.is_null(i) {
                            return None;
                        }
                        bound.latest(asof, g, instants.value(i))
                    })
                    .collect();
                (None, right)
            }
            _ if unique_left => {
                // One table row per key: the row of each code, nulls only where needed.
                let row_of: Vec<u32> = found
                    .iter()
                    .map(|&g| {
                        if g == NONE {
                            NONE
                        } else {
                            bound.rows[g as usize]
                        }
                    })
                    .collect();
                let mut values: Vec<u32> = match &codes {
                    Some(codes) => codes.iter().map(|&c| row_of[c as usize]).collect(),
                    None => row_of,
                };
                let nulls = values.contains(&NONE).then(|| {
                    arrow_buffer::NullBuffer::from_iter(values.iter().map(|&r| r != NONE))
                });
                if nulls.is_some() {
                    for v in &mut values {
                        if *v == NONE {
                            *v = 0;
                        }
                    }
                }
                (None, UInt32Array::new(values.into(), nulls))
            }
            _ => {
                let mut left = Vec::with_capacity(n);
                let mut right = Vec::with_capacity(n);
                for (i, &g) in group.iter().enumerate() {
                    if g == NONE {
                        if how == How::Left {
                            left.push(i as u32);
                            right.push(None);
                        }
                        continue;
                    }
                    let (lo, hi) = (bound.starts[g as usize], bound.starts[g as usize + 1]);
                    for &r in &bound.rows[lo as usize..hi as usize] {
                        left.push(i as u32);
                        right.push(Some(r));
                    }
                }
                (Some(left), UInt32Array::from(right))
            }
        };
        if parts && left.is_none() {
            let columns = bound
                .payload
                .iter()
                .map(|col| arrow_select::take::take(col.as_ref(), &right, None))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let fields: Vec<_> = bound.output.fields()[batch.num_columns()..].to_vec();
            let out = RecordBatch::try_new_with_options(
                Arc::new(Schema::new(fields)),
                columns,
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(n)),
            )?;
            return Ok((out, false));
        }
        let mut columns: Vec<ArrayRef> = match &left {
            None => batch.columns().to_vec(),
            Some(rows) => {
                let take = UInt32Array::from(rows.clone());
                batch
                    .columns()
                    .iter()
                    .map(|c| arrow_select::take::take(c.as_ref(), &take, None))
                    .collect::<std::result::Result<_, _>>()?
            }
        };
        for col in &bound.payload {
            columns.push(arrow_select::take::take(col.as_ref(), &right, None)?);
        }
        let rows = left.as_ref().map_or(n, Vec::len);
        // Each stream row's first output row is itself; the others were added.
        let added = left.as_ref().map_or(0, |left| {
            rows - left.windows(2).filter(|w| w[0] != w[1]).count() - usize::from(!left.is_empty())
        });
        let out = RecordBatch::try_new_with_options(
            bound.output.clone(),
            columns,
            &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        self.added += added as u64;
        Ok((out, true))
    }

    /// The index for a stream of this schema (built on the first batch, and again when the
    /// stream's schema changes or the table is replaced).
    fn bind(&mut self, input: &SchemaRef) -> Result<&Bound> {
        if self.bound.as_ref().is_none_or(|b| &b.input != input) {
            self.bound = Some(Bound::new(&self.spec, &self.table, input)?);
        }
        Ok(self.bound.as_ref().expect("bound above"))
    }
}

impl Bound {
    fn new(spec: &TableJoinSpec, table: &RecordBatch, input: &SchemaRef) -> Result<Bound> {
        let tschema = table.schema();
        let mut left_types = Vec::with_capacity(spec.left_on.len());
        let mut right_keys = Vec::with_capacity(spec.left_on.len());
        for (l, r) in spec.left_on.iter().zip(&spec.right_on) {
            let Ok(field) = input.field_with_name(l) else {
                return Err(Error::Schema(format!(
                    "the join's key {l:?} is not a column of the stream; it has columns {:?}",
                    names(input)
                )));
            };
            let col = table.column(tschema.index_of(r)?);
            right_keys.push(normalize_key(cast_key(
                col,
                field.data_type(),
                r,
                l,
                "table",
            )?));
            left_types.push(field.data_type().clone());
        }
        let fields: Vec<SortField> = left_types.iter().cloned().map(SortField::new).collect();
        if !RowConverter::supports_fields(&fields) {
            return Err(Error::Schema(format!(
                "cannot join on columns of types {}; use string, integer, boolean, date or \
                 datetime keys",
                left_types
                    .iter()
                    .map(type_name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let converter = RowConverter::new(fields)?;
        let n = table.num_rows();
        // Which table rows can match: no null key (and, as of a time, no null time).
        let mut valid: Vec<bool> = (0..n)
            .map(|i| right_keys.iter().all(|c| c.is_valid(i)))
            .collect();
        let mut asof = None;
        let mut row_times: Vec<i128> = Vec::new();
        if let Some(a) = &spec.asof {
            let Ok(field) = input.field_with_name(&a.left_time) else {
                return Err(Error::Schema(format!(
                    "the stream has no time column {:?}; it has columns {:?}",
                    a.left_time,
                    names(input)
                )));
            };
            let lunit = unit_of(field.data_type(), &a.left_time, "stream")?;
            let (runit, times) = instants(
                table.column(tschema.index_of(&a.right_time)?),
                &a.right_time,
                "table",
            )?;
            if (lunit == TimeUnit::Integer) != (runit == TimeUnit::Integer) {
                return Err(Error::Schema(format!(
                    "the stream's time {:?} is {} but the table's {:?} is {}; an as-of join \
                     compares them, so both must be datetimes or both integers",
                    a.left_time,
                    type_name(field.data_type()),
                    a.right_time,
                    type_name(table.column(tschema.index_of(&a.right_time)?).data_type())
                )));
            }
            let (unit, left_scale, right_scale) = common_unit(lunit, runit);
            let times = times.as_primitive::<Int64Type>();
            row_times = (0..n)
                .map(|i| i128::from(times.value(i)) * i128::from(right_scale))
                .collect();
            for (i, v) in valid.iter_mut().enumerate() {
                *v &= times.is_valid(i);
            }
            let tolerance = match &a.tolerance {
                None => None,
                Some(span) => {
                    let t = span.to_units(unit, "tolerance")?;
                    if t < 0 {
                        return Err(Error::Config(format!(
                            "tolerance must not be negative, got {}",
                            span_text(span)
                        )));
                    }
                    Some(t)
                }
            };
            asof = Some(BoundAsof {
                times: Vec::new(),
                left_scale,
                tolerance,
            });
        }
        // Group the table's rows by key, in table order.
        let encoded = if right_keys.is_empty() {
            None
        } else {
            Some(converter.convert_columns(&right_keys)?)
        };
        let mut groups: HashMap<Box<[u8]>, u32> = HashMap::new();
        let mut group_of = vec![NONE; n];
        let mut counts: Vec<u32> = Vec::new();
        for i in (0..n).filter(|&i| valid[i]) {
            let g = match &encoded {
                None => 0,
                Some(rows) => {
                    let bytes = rows.row(i);
                    match groups.get(bytes.as_ref()) {
                        Some(&g) => g,
                        None => {
                            let next = groups.len() as u32;
                            groups.insert(bytes.as_ref().into(), next);
                            next
                        }
                    }
                }
            };
            if g as usize == counts.len() {
                counts.push(0);
            }
            counts[g as usize] += 1;
            group_of[i] = g;
        }
        let mut starts = Vec::with_capacity(counts.len() + 1);
        starts.push(0u32);
        for c in &counts {
            starts.push(starts.last().expect("pushed") + c);
        }
        let mut fill: Vec<u32> = starts[..counts.len()].to_vec();
        let mut rows = vec![0u32; *starts.last().expect("pushed") as usize];
        for (i, &g) in group_of.iter().enumerate() {
            if g != NONE {
                rows[fill[g as usize] as usize] = i as u32;
                fill[g as usize] += 1;
            }
        }
        if let Some(a) = asof.as_mut() {
            for g in 0..counts.len() {
                let part = &mut rows[starts[g] as usize..starts[g + 1] as usize];
                part.sort_by_key(|&r| row_times[r as usize]); // stable: table order within a time
            }
            a.times = rows.iter().map(|&r| row_times[r as usize]).collect();
        }
        let unique = counts.iter().all(|&c| c == 1);
        // The output: the stream's columns, then the table's but its keys (and, as of a time,
        // its time column when the stream's time has the same name, as polars coalesces `on`).
        let mut dropped: Vec<&str> = spec.right_on.iter().map(String::as_str).collect();
        if let Some(a) = &spec.asof {
            if a.left_time == a.right_time {
                dropped.push(&a.right_time);
            }
        }
        let mut fields: Vec<Arc<Field>> = input.fields().iter().cloned().collect();
        let mut payload = Vec::new();
        for (f, col) in tschema.fields().iter().zip(table.columns()) {
            if dropped.contains(&f.name().as_str()) {
                continue;
            }
            let mut name = f.name().clone();
            if input.field_with_name(&name).is_ok() {
                name = format!("{name}{}", spec.suffix);
                if input.field_with_name(&name).is_ok() || tschema.field_with_name(&name).is_ok() {
                    return Err(Error::Schema(format!(
                        "the table's column {:?} is also in the stream, and with the suffix it \
                         would be {name:?}, which is taken too; give another suffix=",
                        f.name()
                    )));
                }
            }
            let nullable = f.is_nullable() || spec.how == How::Left || spec.asof.is_some();
            fields.push(Arc::new(
                Field::new(name, f.data_type().clone(), nullable)
                    .with_metadata(f.metadata().clone()),
            ));
            payload.push(col.clone());
        }
        let output = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        Ok(Bound {
            input: input.clone(),
            output,
            converter,
            groups,
            starts,
            rows,
            unique,
            payload,
            asof,
        })
    }

    /// The group of every row of a batch whose key columns are `keys` (`NONE`: no table row
    /// has its key, or a key is null).
    /// Each row's key as a code, and the table group of each code (`NONE`: no match); no
    /// codes when there are no keys (`found` is then per row).
    fn coded_groups(&self, keys: &[ArrayRef], n: usize) -> Result<(Option<Vec<u32>>, Vec<u32>)> {
        if keys.is_empty() {
            let g = if self.starts.len() > 1 { 0 } else { NONE };
            return Ok((None, vec![g; n]));
        }
        if n == 0 {
            return Ok((None, Vec::new()));
        }
        let (codes, encoded, null) = distinct_keys(keys, &self.converter)?;
        let found: Vec<u32> = null
            .iter()
            .enumerate()
            .map(|(i, &null)| {
                if null {
                    return NONE;
                }
                self.groups
                    .get(encoded.row(i).as_ref())
                    .copied()
                    .unwrap_or(NONE)
            })
            .collect();
        Ok((Some(codes), found))
    }

    /// The table row of group `g` that is the latest at or before `instant` (a stream
    /// instant), within the tolerance.
    fn latest(&self, asof: &BoundAsof, g: u32, instant: i64) -> Option<u32> {
        let t = i128::from(instant) * i128::from(asof.left_scale);
        let (lo, hi) = (
            self.starts[g as usize] as usize,
            self.starts[g as usize + 1] as usize,
        );
        let times = &asof.times[lo..hi];
        let at = times.partition_point(|&x| x <= t);
        if at == 0 {
            return None;
        }
        if let Some(tol) = asof.tolerance {
            if t - times[at - 1] > i128::from(tol) {
                return None;
            }
        }
        Some(self.rows[lo + at - 1])
    }
}

fn names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

/// The unit of a time column's instants (an integer column counts plain integers; ISO 8601
/// text is read in microseconds, as the engine reads a text time column).
fn unit_of(t: &DataType, name: &str, side: &str) -> Result<TimeUnit> {
    use arrow_schema::TimeUnit as A;
    Ok(match t {
        DataType::Timestamp(A::Nanosecond, _) => TimeUnit::Nanosecond,
        DataType::Timestamp(A::Microsecond, _) => TimeUnit::Microsecond,
        DataType::Timestamp(A::Millisecond, _) | DataType::Date64 => TimeUnit::Millisecond,
        DataType::Timestamp(A::Second, _) => TimeUnit::Second,
        DataType::Date32 => TimeUnit::Second,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => TimeUnit::Microsecond,
        t if t.is_integer() => TimeUnit::Integer,
        other => {
            return Err(Error::Schema(format!(
                "the {side}'s time column {name:?} is {}; an as-of join needs datetimes, \
                 dates, ISO 8601 text or integers",
                type_name(other)
            )))
        }
    })
}

/// A time column's instants as Int64 in its unit (dates as seconds, text parsed as the
/// engine parses a text time column: null where it cannot be read), with its nulls.
fn instants(col: &ArrayRef, name: &str, side: &str) -> Result<(TimeUnit, ArrayRef)> {
    let unit = unit_of(col.data_type(), name, side)?;
    let values = match col.data_type() {
        DataType::Date32 => {
            let days = arrow_cast::cast(col, &DataType::Int64)?;
            Arc::new(arrow_array::Int64Array::from_unary(
                days.as_primitive::<Int64Type>(),
                |d| d.saturating_mul(86_400),
            )) as ArrayRef
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let text = arrow_cast::cast(col, &DataType::Utf8)?;
            let parsed: arrow_array::Int64Array = text
                .as_string::<i32>()
                .iter()
                .map(|v| v.and_then(|t| crate::time::parse_timestamp(t, TimeUnit::Microsecond)))
                .collect();
            Arc::new(parsed) as ArrayRef
        }
        _ => arrow_cast::cast(col, &DataType::Int64)?,
    };
    Ok((unit, values))
}

/// The finer of two units and the factors that bring each side's instants into it.
fn common_unit(left: TimeUnit, right: TimeUnit) -> (TimeUnit, i64, i64) {
    match (left.nanos_per_unit(), right.nanos_per_unit()) {
        (Some(l), Some(r)) if l <= r => (left, 1, r / l),
        (Some(l), Some(r)) => (right, l / r, 1),
        _ => (TimeUnit::Integer, 1, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Int64Array, StringArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    };

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(cols).unwrap()
    }

    fn spec(how: How) -> TableJoinSpec {
        TableJoinSpec {
            left_on: vec!["k".into()],
            right_on: vec!["k".into()],
            how,
            suffix: "_right".into(),
            asof: None,
        }
    }

    #[test]
    fn left_join_keeps_rows_and_expands_duplicates() {
        let table = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    None,
                ])) as ArrayRef,
            ),
            (
                "v",
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef,
            ),
        ]);
        let mut j = TableJoin::new(spec(How::Left), &[table]).unwrap();
        let s = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("c"),
                    Some("b"),
                ])) as ArrayRef,
            ),
            (
                "v",
                Arc::new(Int64Array::from(vec![10, 20, 30, 40])) as ArrayRef,
            ),
        ]);
        let out = j.process(&s).unwrap();
        let names: Vec<_> = out
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["k", "v", "v_right"]);
        let left = out.column(1).as_primitive::<Int64Type>();
        let right = out.column(2).as_primitive::<Int64Type>();
        let got: Vec<_> = (0..out.num_rows())
            .map(|i| (left.value(i), right.is_valid(i).then(|| right.value(i))))
            .collect();
        assert_eq!(
            got,
            [
                (10, Some(1)),
                (10, Some(3)),
                (20, None),
                (30, None),
                (40, Some(2))
            ]
        );
        let mut inner = TableJoin::new(spec(How::Inner), std::slice::from_ref(&s)).unwrap();
        assert_eq!(inner.process(&s).unwrap().num_rows(), 3);
    }

    #[test]
    fn rows_added_survive_a_restore_and_another_spec_is_refused() {
        let table = || {
            batch(vec![
                (
                    "k",
                    Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
                ),
                ("w", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
            ])
        };
        let stream =
            |keys: Vec<&str>| batch(vec![("k", Arc::new(StringArray::from(keys)) as ArrayRef)]);
        let batches = [
            stream(vec!["a", "b"]),
            stream(vec!["a", "a", "c"]),
            stream(vec!["a"]),
        ];
        let mut whole = TableJoin::new(spec(How::Left), &[table()]).unwrap();
        let counts: Vec<u64> = batches
            .iter()
            .map(|b| {
                whole.process(b).unwrap();
                whole.rows_added()
            })
            .collect();
        assert_eq!(counts, [1, 3, 4]); // each "a" has two matches
        for k in 0..=batches.len() {
            let mut a = TableJoin::new(spec(How::Left), &[table()]).unwrap();
            for b in &batches[..k] {
                a.process(b).unwrap();
            }
            let mut b = TableJoin::new(spec(How::Left), &[table()]).unwrap();
            b.restore(&a.snapshot().unwrap()).unwrap();
            for (i, batch) in batches[k..].iter().enumerate() {
                b.process(batch).unwrap();
                assert_eq!(b.rows_added(), counts[k + i]);
            }
        }
        let bytes = whole.snapshot().unwrap();
        let e = TableJoin::new(spec(How::Inner), &[table()])
            .unwrap()
            .restore(&bytes)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("how was")),
            "{e}"
        );
        let e = TableJoin::new(spec(How::Left), &[table()])
            .unwrap()
            .restore(&bytes[..3])
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("damaged")),
            "{e}"
        );
    }

    #[test]
    fn asof_picks_the_latest_row_at_or_before_in_the_finer_unit() {
        let table = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec!["a", "a", "a"])) as ArrayRef,
            ),
            (
                "t",
                Arc::new(TimestampMillisecondArray::from(vec![5, 1, 5])) as ArrayRef,
            ),
            ("v", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef),
        ]);
        let mut s = spec(How::Left);
        s.asof = Some(AsofSpec {
            left_time: "t".into(),
            right_time: "t".into(),
            tolerance: Some(Span::Text("2ms".into())),
        });
        let mut j = TableJoin::new(s, &[table]).unwrap();
        let input = batch(vec![
            (
                "k",
                Arc::new(StringArray::from(vec!["a", "a", "a", "a"])) as ArrayRef,
            ),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    500, 1_000, 5_999, 8_000,
                ])) as ArrayRef,
            ),
        ]);
        let out = j.process(&input).unwrap();
        assert_eq!(
            out.num_columns(),
            3,
            "the table's time is coalesced into the stream's"
        );
        let v = out.column(2).as_primitive::<Int64Type>();
        let got: Vec<_> = (0..4).map(|i| v.is_valid(i).then(|| v.value(i))).collect();
        // 0.5 ms: before every row; 1 ms: the row at 1; 5.999 ms: the last of the two at 5;
        // 8 ms: 3 ms after it, beyond the 2 ms tolerance.
        assert_eq!(got, [None, Some(2), Some(3), None]);
    }

    #[test]
    fn mismatched_key_types_name_both() {
        let table = batch(vec![("k", Arc::new(Int64Array::from(vec![1])) as ArrayRef)]);
        let mut j = TableJoin::new(spec(How::Left), &[table]).unwrap();
        let s = batch(vec![(
            "k",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )]);
        let e = j.process(&s).unwrap_err().to_string();
        assert!(e.contains("String") && e.contains("Int64"), "{e}");
    }
}
