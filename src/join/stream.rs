//! Two streams joined on keys and event time, with state freed by the watermarks.
//!
//! Each side has its own watermark: the largest event time it has delivered less its delay,
//! taken row by row, so which rows are late depends only on that side's own order. A row
//! earlier than its side's watermark is late: it is handed back (to `run.late`, with its
//! side) and joins nothing. What the join emits then depends neither on batch sizes nor on
//! how the two inputs interleave (only the order of its rows does):
//!
//! - **interval** (`other.time - self.time` in `[lower, upper]`, Flink's interval join): a row
//!   is matched with the stored rows of the other side as it arrives, and stored. A left row
//!   can be freed once the right watermark passes `time + upper` (no right row on time can
//!   match it any more; a left outer join emits it then, with nulls, if nothing matched), a
//!   right row once the left watermark passes `time - lower`.
//! - **as of** (Flink's event-time temporal join): a left row waits until the right watermark
//!   passes its time, then takes the latest right row of its key at or before its time. Right
//!   rows are kept per key as versions; a version is freed once a newer one is at or before
//!   every time still to be looked up.
//!
//! The output's event time is the left row's, and [`StreamJoin::emitted_floor`] is the
//! smallest left time any later output row can have, which a downstream window takes as its
//! watermark. Instants are compared in nanoseconds (datetimes of any unit) or as plain
//! integers (integer time columns, on both sides).

use super::How;
use crate::codec::{self, Blob};
use crate::error::{Error, Result};
use crate::plan::{type_name, Span};
use crate::time::TimeUnit;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{new_null_array, Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// One of a join's two inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The stream the join is called on: its rows and event time go on.
    Left,
    /// The other stream.
    Right,
}

impl Side {
    fn index(self) -> usize {
        match self {
            Side::Left => 0,
            Side::Right => 1,
        }
    }

    /// The side's name as `run.late` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

/// What a stream-stream join matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StreamJoinKind {
    /// Right rows whose time less the left row's is within `[lower, upper]`.
    Interval {
        /// The smallest `right.time - left.time` that matches.
        lower: Span,
        /// The largest.
        upper: Span,
    },
    /// The latest right row at or before the left row's time (within `tolerance`).
    Asof {
        /// No match when the latest right row is older than this.
        #[serde(default)]
        tolerance: Option<Span>,
    },
}

/// A stream-stream join as the query builder writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamJoinSpec {
    /// Interval or as of.
    pub kind: StreamJoinKind,
    /// The left stream's key columns.
    pub left_on: Vec<String>,
    /// The right stream's, in the same order.
    pub right_on: Vec<String>,
    /// Inner or left outer (an as-of join is always left).
    pub how: How,
    /// Appended to a right column whose name the left stream has.
    pub suffix: String,
    /// The left stream's event-time column.
    pub left_time: String,
    /// The right stream's.
    pub right_time: String,
    /// Each side's watermark delay: the largest time it delivered less this.
    pub left_delay: Span,
    /// The right side's.
    pub right_delay: Span,
    /// Whether each side's watermark is carried from the query or join it reads (its rows
    /// may come in any order above it) rather than taken from its rows.
    #[serde(default)]
    pub carried: [bool; 2],
}

/// A row kept in a side's state: which stored batch, which row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RowRef {
    batch: u32,
    row: u32,
}

/// A stored row of a side: its time and arrival, where it is, and whether it matched (left
/// outer joins).
#[derive(Debug, Clone, Copy)]
struct Kept {
    time: i64,
    seq: u64,
    at: RowRef,
    matched: bool,
}

/// The instants' class: nanoseconds since the epoch, or plain integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    Nanos,
    Integer,
}

/// One input's schema-dependent reading: its key and time columns and unit.
struct Reading {
    schema: SchemaRef,
    keys: Vec<usize>,
    time: usize,
    /// Multiplies the column's instants into nanoseconds (1 for integers).
    scale: i64,
}

/// One input's state.
struct SideState {
    reading: Option<Reading>,
    delay: Option<i64>,
    /// Stored batches (None once none of their rows is kept).
    batches: Vec<Option<RecordBatch>>,
    live: Vec<u32>,
    live_rows: usize,
    stored_rows: usize,
    /// Per key group: the kept rows in (time, arrival) order (rows come nearly in order, so
    /// an insert lands at or near the back, and the watermark frees from the front).
    groups: Vec<VecDeque<Kept>>,
    /// Every kept row by time, with its group: what the watermark frees first.
    by_time: Expiry,
    seq: u64,
    max_time: Option<i64>,
    watermark: Option<i64>,
    ended: bool,
    /// The watermark comes from upstream ([`StreamJoin::advance_watermark`]), not the rows.
    carried: bool,
    rows_in: u64,
    rows_late: u64,
}

impl SideState {
    fn new() -> SideState {
        SideState {
            reading: None,
            delay: None,
            batches: Vec::new(),
            live: Vec::new(),
            live_rows: 0,
            stored_rows: 0,
            groups: Vec::new(),
            by_time: Expiry::default(),
            seq: 0,
            max_time: None,
            watermark: None,
            ended: false,
            carried: false,
            rows_in: 0,
            rows_late: 0,
        }
    }

    fn batch(&self, at: RowRef) -> &RecordBatch {
        self.batches[at.batch as usize]
            .as_ref()
            .expect("a kept row's batch is kept")
    }

    /// Keeps a row in its group; `indexed`: also in `by_time`, to be freed by the watermark.
    fn keep(&mut self, group: u32, time: i64, at: RowRef, matched: bool, indexed: bool) {
        let g = group as usize;
        if self.groups.len() <= g {
            self.groups.resize_with(g + 1, VecDeque::new);
        }
        let seq = self.seq;
        self.seq += 1;
        let rows = &mut self.groups[g];
        let kept = Kept {
            time,
            seq,
            at,
            matched,
        };
        if rows.back().is_none_or(|k| k.time <= time) {
            rows.push_back(kept);
        } else {
            let i = rows.partition_point(|k| k.time <= time);
            rows.insert(i, kept);
        }
        if indexed {
            self.by_time.push(time, seq, group);
        }
        self.live[at.batch as usize] += 1;
        self.live_rows += 1;
    }

    fn release(&mut self, at: RowRef) {
        let b = at.batch as usize;
        self.live[b] -= 1;
        self.live_rows -= 1;
        if self.live[b] == 0 {
            if let Some(batch) = self.batches[b].take() {
                self.stored_rows -= batch.num_rows();
            }
        }
    }

    /// The row's time for watermark purposes moves the side's watermark (row by row).
    /// (A side whose watermark is carried from the query or join it reads moves only by
    /// that; a watermark never goes back, also after it followed the wall clock.)
    fn observe(&mut self, time: i64) {
        if self.max_time.is_none_or(|m| time > m) {
            self.max_time = Some(time);
            if !self.carried {
                let w = time.saturating_sub(self.delay.unwrap_or(0));
                if self.watermark.is_none_or(|old| w > old) {
                    self.watermark = Some(w);
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        let batches: usize = self
            .batches
            .iter()
            .flatten()
            .map(RecordBatch::get_array_memory_size)
            .sum();
        let entry = std::mem::size_of::<Kept>() + std::mem::size_of::<(i64, u64, u32)>();
        batches + self.live_rows * entry + self.live.len() * 4
    }
}

/// Kept rows by time, in buckets of `width` instants: rows come nearly in time order, so a
/// bucket fills at its back and the watermark empties whole buckets from the front; only
/// the bucket the watermark is inside is sorted (once) and read from a cursor.
#[derive(Default)]
struct Expiry {
    width: i64,
    buckets: BTreeMap<i64, Bucket>,
}

#[derive(Default)]
struct Bucket {
    /// (time, arrival, group).
    entries: Vec<(i64, u64, u32)>,
    /// Once sorted: the first entry not freed yet.
    cursor: Option<usize>,
}

impl Expiry {
    fn push(&mut self, time: i64, seq: u64, group: u32) {
        let bucket = self
            .buckets
            .entry(time.div_euclid(self.width.max(1)))
            .or_default();
        match bucket.cursor {
            None => bucket.entries.push((time, seq, group)),
            Some(c) => {
                let at = c + bucket.entries[c..].partition_point(|e| (e.0, e.1) <= (time, seq));
                bucket.entries.insert(at, (time, seq, group));
            }
        }
    }

    /// Calls `f` with every entry whose time is below `bound`, and forgets them.
    fn pop_below(&mut self, bound: i64, mut f: impl FnMut(i64, u64, u32)) {
        let width = self.width.max(1);
        while let Some(mut first) = self.buckets.first_entry() {
            let b = *first.key();
            if b.saturating_add(1).saturating_mul(width) <= bound {
                let bucket = first.remove();
                for &(t, seq, g) in &bucket.entries[bucket.cursor.unwrap_or(0)..] {
                    f(t, seq, g);
                }
                continue;
            }
            if b.saturating_mul(width) >= bound {
                break;
            }
            let bucket = first.get_mut();
            let mut i = match bucket.cursor {
                Some(c) => c,
                None => {
                    bucket.entries.sort_unstable();
                    0
                }
            };
            while let Some(&(t, seq, g)) = bucket.entries.get(i).filter(|e| e.0 < bound) {
                f(t, seq, g);
                i += 1;
            }
            bucket.cursor = Some(i);
            if i == bucket.entries.len() {
                first.remove();
            }
            break;
        }
    }
}

/// A row handed back as late: its index in the batch and by how much (in its column's unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    /// Row index in the batch given to [`StreamJoin::process`].
    pub row: u32,
    /// How far its time was behind its side's watermark, in its time column's unit.
    pub late_by: i64,
}

/// What a batch into a join gives back.
pub struct JoinStep {
    /// Joined rows (and left outer rows).
    pub rows: RecordBatch,
    /// The batch's late rows.
    pub late: Vec<Late>,
}

/// A pair to emit: a left row and its right match (None: a left outer row).
type Pair = (RowRef, Option<RowRef>);

/// Two streams joined (see the module's documentation).
pub struct StreamJoin {
    spec: StreamJoinSpec,
    sides: [SideState; 2],
    /// Key tuples of both sides (canonical types) to group ids.
    key_types: Option<Vec<DataType>>,
    converter: Option<RowConverter>,
    groups: HashMap<Box<[u8]>, u32>,
    /// Each group's key tuple, and the ids of groups no row holds any more (reused), so a
    /// stream of ever new keys keeps state flat.
    group_keys: Vec<Box<[u8]>>,
    free_ids: Vec<u32>,
    clock: Option<Clock>,
    lower: i64,
    upper: i64,
    tolerance: Option<i64>,
    /// As of: left rows waiting for the right watermark, by (time, arrival), with their group
    /// (`NONE`: a null key).
    pending: BTreeMap<(i64, u64), (RowRef, u32)>,
    output: Option<SchemaRef>,
    /// Rows freed by the watermarks, released once what they emit is built.
    deferred: Vec<(usize, RowRef)>,
    /// Left rows emitted before the right stream's columns were known (a null key, or a
    /// right input with no batch yet): padded with null right columns once they are.
    held: Vec<RecordBatch>,
    rows_emitted: u64,
}

const NONE: u32 = u32::MAX;

impl StreamJoin {
    /// A join of two streams; the spec is checked now, the columns at each side's first batch.
    pub fn new(spec: StreamJoinSpec) -> Result<StreamJoin> {
        if spec.left_on.len() != spec.right_on.len() {
            return Err(Error::Config(format!(
                "the left stream has {} key column(s) and the right {}; give one per side",
                spec.left_on.len(),
                spec.right_on.len()
            )));
        }
        if matches!(spec.kind, StreamJoinKind::Interval { .. }) && spec.left_on.is_empty() {
            return Err(Error::Config(
                "an interval join needs at least one key column, e.g. on='user'".into(),
            ));
        }
        if spec.suffix.is_empty() {
            return Err(Error::Config("suffix= must not be empty".into()));
        }
        let mut sides = [SideState::new(), SideState::new()];
        sides[0].carried = spec.carried[0];
        sides[1].carried = spec.carried[1];
        Ok(StreamJoin {
            spec,
            sides,
            key_types: None,
            converter: None,
            groups: HashMap::new(),
            group_keys: Vec::new(),
            free_ids: Vec::new(),
            clock: None,
            lower: 0,
            upper: 0,
            tolerance: None,
            pending: BTreeMap::new(),
            output: None,
            deferred: Vec::new(),
            held: Vec::new(),
            rows_emitted: 0,
        })
    }

    /// Binds a side to its first batch's schema: key and time columns, units, spans.
    fn read(&mut self, side: Side, schema: &SchemaRef) -> Result<()> {
        let s = &self.sides[side.index()];
        if s.reading.as_ref().is_some_and(|r| &r.schema == schema) {
            return Ok(());
        }
        if s.reading.is_some() {
            return Err(Error::Schema(format!(
                "the {} stream's columns changed mid-stream: every batch of a side must have the \
                 same columns and types",
                side.name()
            )));
        }
        let (names, time) = match side {
            Side::Left => (&self.spec.left_on, &self.spec.left_time),
            Side::Right => (&self.spec.right_on, &self.spec.right_time),
        };
        let column =
            |name: &str, what: &str| -> Result<usize> {
                schema.index_of(name).map_err(|_| {
                    Error::Schema(format!(
                    "the join's {what} {name:?} is not a column of the {} stream; it has columns \
                     {:?}",
                    side.name(),
                    schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>()
                ))
                })
            };
        let keys: Vec<usize> = names
            .iter()
            .map(|n| column(n, "key"))
            .collect::<Result<_>>()?;
        let time_at = column(time, "time column")?;
        let (clock, scale) = clock_of(schema.field(time_at).data_type(), time, side)?;
        match self.clock {
            None => {
                self.clock = Some(clock);
                let unit = if clock == Clock::Integer {
                    TimeUnit::Integer
                } else {
                    TimeUnit::Nanosecond
                };
                if let StreamJoinKind::Interval { lower, upper } = &self.spec.kind {
                    self.lower = lower.to_units(unit, "lower")?;
                    self.upper = upper.to_units(unit, "upper")?;
                    if self.lower > self.upper {
                        return Err(Error::Config(format!(
                            "lower ({}) is after upper ({}): the interval other.time - \
                             self.time in [lower, upper] would be empty",
                            super::span_text(lower),
                            super::span_text(upper)
                        )));
                    }
                }
                if let StreamJoinKind::Asof { tolerance: Some(t) } = &self.spec.kind {
                    let units = t.to_units(unit, "tolerance")?;
                    if units < 0 {
                        return Err(Error::Config(format!(
                            "tolerance must not be negative, got {}",
                            super::span_text(t)
                        )));
                    }
                    let t = units;
                    self.tolerance = Some(t);
                }
            }
            Some(c) if c != clock => {
                return Err(Error::Schema(format!(
                    "the join compares the two streams' times, so both must be datetimes or both \
                     integers; the {} stream's {time:?} is {}",
                    side.name(),
                    type_name(schema.field(time_at).data_type())
                )))
            }
            _ => {}
        }
        let unit = if clock == Clock::Integer {
            TimeUnit::Integer
        } else {
            TimeUnit::Nanosecond
        };
        let delay = match side {
            Side::Left => &self.spec.left_delay,
            Side::Right => &self.spec.right_delay,
        };
        let delay = delay.to_units(unit, "watermark")?;
        self.sides[side.index()].delay = Some(delay);
        // Rows stay about the interval plus the delay: a few dozen buckets of that.
        let floor = if clock == Clock::Integer {
            1
        } else {
            1_000_000
        };
        let span = (self.upper - self.lower)
            .max(0)
            .saturating_add(delay.max(0));
        self.sides[side.index()].by_time.width = (span / 64).max(floor);
        let types: Vec<DataType> = keys
            .iter()
            .map(|&k| canonical(schema.field(k).data_type()))
            .collect();
        match &self.key_types {
            None => {
                let fields: Vec<SortField> = types.iter().cloned().map(SortField::new).collect();
                if !RowConverter::supports_fields(&fields) {
                    return Err(Error::Schema(format!(
                        "cannot join on columns of types {}; use string, integer, boolean, \
                         date or datetime keys",
                        names_of(&types)
                    )));
                }
                self.converter = Some(RowConverter::new(fields)?);
                self.key_types = Some(types);
            }
            Some(known) if known != &types => {
                let (l, r) = match side {
                    Side::Left => (&types, known),
                    Side::Right => (known, &types),
                };
                return Err(Error::Schema(format!(
                    "the join's keys {:?} are {} in the left stream but {:?} are {} in the \
                     right; keys must both be strings, both integers, or the same type",
                    self.spec.left_on,
                    names_of(l),
                    self.spec.right_on,
                    names_of(r)
                )));
            }
            _ => {}
        }
        self.sides[side.index()].reading = Some(Reading {
            schema: schema.clone(),
            keys,
            time: time_at,
            scale,
        });
        Ok(())
    }

    /// The output schema, once both sides' schemas are known.
    fn output_schema(&mut self) -> Result<Option<SchemaRef>> {
        if self.output.is_some() {
            return Ok(self.output.clone());
        }
        let (Some(l), Some(r)) = (&self.sides[0].reading, &self.sides[1].reading) else {
            return Ok(None);
        };
        let mut fields: Vec<Arc<Field>> = l.schema.fields().iter().cloned().collect();
        for (i, f) in r.schema.fields().iter().enumerate() {
            if r.keys.contains(&i) {
                continue;
            }
            let mut name = f.name().clone();
            if l.schema.field_with_name(&name).is_ok() {
                name = format!("{name}{}", self.spec.suffix);
                if l.schema.field_with_name(&name).is_ok()
                    || r.schema.field_with_name(&name).is_ok()
                {
                    return Err(Error::Schema(format!(
                        "the right stream's column {:?} is also in the left, and with the suffix \
                         it would be {name:?}, which is taken too; give another suffix=",
                        f.name()
                    )));
                }
            }
            let nullable = f.is_nullable() || self.spec.how == How::Left;
            fields.push(Arc::new(Field::new(name, f.data_type().clone(), nullable)));
        }
        self.output = Some(Arc::new(Schema::new(fields)));
        Ok(self.output.clone())
    }

    /// A batch of one side: its late rows back, what it joins out.
    pub fn process(&mut self, side: Side, batch: &RecordBatch) -> Result<JoinStep> {
        self.read(side, &batch.schema())?;
        let n = batch.num_rows();
        let s = side.index();
        let reading = self.sides[s].reading.as_ref().expect("read above");
        let scale = reading.scale;
        let times = arrow_cast::cast(batch.column(reading.time), &DataType::Int64)?;
        let times = times.as_primitive::<Int64Type>().clone();
        let key_columns: Vec<ArrayRef> = reading
            .keys
            .iter()
            .map(|&k| cast_canonical(batch.column(k)))
            .collect::<Result<_>>()?;
        let groups = self.groups_of(&key_columns, n)?;
        let id = self.sides[s].batches.len() as u32;
        self.sides[s].batches.push(Some(batch.clone()));
        self.sides[s].live.push(0);
        self.sides[s].stored_rows += n;
        self.sides[s].rows_in += n as u64;
        let mut late = Vec::new();
        let mut pairs: Vec<Pair> = Vec::new();
        let other = 1 - s;
        for (i, &g) in groups.iter().enumerate() {
            if times.is_null(i) {
                continue; // no time: matches nothing (a query's rows operator rejects these)
            }
            let Some(t) = times.value(i).checked_mul(scale) else {
                return Err(Error::Schema(format!(
                    "the {} stream's time {} is outside what a join of two streams compares: \
                     datetimes from 1677-09-21 to 2262-04-11 (nanoseconds in 64 bits)",
                    side.name(),
                    times.value(i)
                )));
            };
            let st = &mut self.sides[s];
            if let Some(w) = st.watermark.filter(|&w| t < w) {
                st.rows_late += 1;
                late.push(Late {
                    row: i as u32,
                    late_by: (w - t) / scale.max(1),
                });
                continue;
            }
            st.observe(t);
            let at = RowRef {
                batch: id,
                row: i as u32,
            };
            match (&self.spec.kind, side) {
                (StreamJoinKind::Interval { .. }, _) => {
                    let mut matched = false;
                    if g != NONE {
                        let (lo, hi) = match side {
                            Side::Left => {
                                (t.saturating_add(self.lower), t.saturating_add(self.upper))
                            }
                            Side::Right => {
                                (t.saturating_sub(self.upper), t.saturating_sub(self.lower))
                            }
                        };
                        if let Some(found) = self.sides[other].groups.get_mut(g as usize) {
                            let start = found.partition_point(|k| k.time < lo);
                            for e in found.range_mut(start..).take_while(|k| k.time <= hi) {
                                matched = true;
                                match side {
                                    Side::Left => pairs.push((at, Some(e.at))),
                                    Side::Right => {
                                        e.matched = true;
                                        pairs.push((e.at, Some(at)));
                                    }
                                }
                            }
                        }
                        self.sides[s].keep(g, t, at, matched, true);
                    } else if side == Side::Left && self.spec.how == How::Left {
                        pairs.push((at, None)); // a null key matches nothing, ever
                    }
                }
                (StreamJoinKind::Asof { .. }, Side::Left) => {
                    let seq = self.sides[s].seq;
                    self.sides[s].seq += 1;
                    self.sides[s].live[id as usize] += 1;
                    self.sides[s].live_rows += 1;
                    self.pending.insert((t, seq), (at, g));
                }
                (StreamJoinKind::Asof { .. }, Side::Right) => {
                    if g != NONE {
                        self.sides[s].keep(g, t, at, false, false);
                    }
                }
            }
        }
        pairs.extend(self.expire()?);
        let rows = self.emit(&pairs)?;
        let st = &mut self.sides[s];
        if st.live[id as usize] == 0 && st.batches[id as usize].take().is_some() {
            st.stored_rows -= n;
        }
        self.compact();
        Ok(JoinStep { rows, late })
    }

    /// A side's watermark moved by itself (an idle input following the wall clock), in that
    /// side's time unit: what it frees comes out.
    pub fn advance_watermark(&mut self, side: Side, instant: i64) -> Result<RecordBatch> {
        let Some(reading) = &self.sides[side.index()].reading else {
            return self.emit(&[]);
        };
        let t = instant.saturating_mul(reading.scale);
        let st = &mut self.sides[side.index()];
        if st.watermark.is_none_or(|w| t > w) {
            st.watermark = Some(t);
        }
        let pairs = self.expire()?;
        self.emit(&pairs)
    }

    /// A side's input ended: its watermark goes past every time, so what waited for it
    /// comes out (left outer rows, as-of rows).
    pub fn end(&mut self, side: Side) -> Result<RecordBatch> {
        let st = &mut self.sides[side.index()];
        st.ended = true;
        st.watermark = Some(i64::MAX);
        let pairs = self.expire()?;
        self.emit(&pairs)
    }

    /// Frees what the watermarks pass; the pairs that come out of it.
    fn expire(&mut self) -> Result<Vec<Pair>> {
        let mut out = Vec::new();
        let (wl, wr) = (self.sides[0].watermark, self.sides[1].watermark);
        match self.spec.kind {
            StreamJoinKind::Interval { .. } => {
                // Left rows with time + upper < right watermark; right rows with
                // time - lower < left watermark.
                if let Some(wr) = wr {
                    let bound = wr.saturating_sub(self.upper);
                    for (at, matched) in self.free(0, bound) {
                        if !matched && self.spec.how == How::Left {
                            out.push((at, None));
                        }
                    }
                }
                if let Some(wl) = wl {
                    let bound = wl.saturating_add(self.lower);
                    self.free(1, bound);
                }
            }
            StreamJoinKind::Asof { .. } => {
                let Some(wr) = wr else { return Ok(out) };
                let right_ended = self.sides[1].ended;
                while let Some(entry) = self.pending.first_entry() {
                    let (t, _) = *entry.key();
                    if t >= wr && !right_ended {
                        break;
                    }
                    let (at, g) = entry.remove();
                    out.push((at, self.latest(g, t)));
                }
                // Versions no lookup can reach any more: all but the newest at or before the
                // smallest time still to come.
                let next = self.pending.first_key_value().map(|(&(t, _), _)| t);
                let bound = match (wl, next) {
                    (Some(w), Some(p)) => Some(w.min(p)),
                    (Some(w), None) => Some(w),
                    (None, p) => p,
                };
                if let Some(bound) = bound {
                    self.trim_versions(bound);
                }
            }
        }
        Ok(out)
    }

    /// Frees the kept rows of side `s` with time below `bound`: (row, matched) for each.
    fn free(&mut self, s: usize, bound: i64) -> Vec<(RowRef, bool)> {
        let st = &mut self.sides[s];
        let mut freed = Vec::new();
        let mut emptied = Vec::new();
        let groups = &mut st.groups;
        st.by_time.pop_below(bound, |_, seq, g| {
            let rows = &mut groups[g as usize];
            // Mostly freed in time order: a group's oldest row is at its front.
            let i = if rows.front().is_some_and(|k| k.seq == seq) {
                Some(0)
            } else {
                rows.iter().position(|k| k.seq == seq)
            };
            if let Some(e) = i.and_then(|i| rows.remove(i)) {
                freed.push((e.at, e.matched));
            }
            if rows.is_empty() {
                if rows.capacity() > 64 {
                    *rows = VecDeque::new(); // a key that was busy gives its memory back
                }
                emptied.push(g);
            }
        });
        self.deferred.extend(freed.iter().map(|&(at, _)| (s, at)));
        // A key no row of either side holds is forgotten (an interval join's only state).
        for g in emptied {
            let other = self.sides[1 - s].groups.get(g as usize);
            if other.is_none_or(VecDeque::is_empty) && self.sides[s].groups[g as usize].is_empty() {
                let key = std::mem::take(&mut self.group_keys[g as usize]);
                if self.groups.remove(&key).is_some() {
                    self.free_ids.push(g);
                }
            }
        }
        freed
    }

    /// The newest right version of group `g` at or before `t`, within the tolerance.
    fn latest(&self, g: u32, t: i64) -> Option<RowRef> {
        if g == NONE {
            return None;
        }
        let versions = self.sides[1].groups.get(g as usize)?;
        let at = versions.partition_point(|k| k.time <= t);
        let e = versions.get(at.checked_sub(1)?)?;
        if self
            .tolerance
            .is_some_and(|tol| t.saturating_sub(e.time) > tol)
        {
            return None;
        }
        Some(e.at)
    }

    /// Frees right versions older than the newest one at or before `bound` in their group.
    fn trim_versions(&mut self, bound: i64) {
        let st = &mut self.sides[1];
        // Only worth a pass when there is something to free: at most once per doubling.
        if st.live_rows < 2 * st.groups.len().max(512) {
            return;
        }
        let mut freed = Vec::new();
        for versions in &mut st.groups {
            let newest = versions.partition_point(|k| k.time <= bound);
            if newest >= 2 {
                freed.extend(versions.drain(..newest - 1).map(|k| k.at));
            }
        }
        self.deferred.extend(freed.into_iter().map(|at| (1, at)));
    }

    /// Frees everything, emitting left outer and waiting as-of rows (both inputs ended).
    pub fn flush(&mut self) -> Result<RecordBatch> {
        let mut all = self.end(Side::Left)?;
        let right = self.end(Side::Right)?;
        if right.num_rows() > 0 {
            all = arrow_select::concat::concat_batches(&all.schema(), [&all, &right])?;
        }
        Ok(all)
    }

    /// The smallest left time a later output row can have, in the left time column's unit.
    pub fn emitted_floor(&self) -> Option<i64> {
        let scale = self.sides[0].reading.as_ref()?.scale;
        let wl = self.sides[0].watermark?;
        let floor = match self.spec.kind {
            StreamJoinKind::Interval { .. } => {
                let wr = self.sides[1].watermark?;
                wl.min(wr.saturating_sub(self.upper))
            }
            StreamJoinKind::Asof { .. } => match self.pending.first_key_value() {
                Some((&(t, _), _)) => wl.min(t),
                None => wl,
            },
        };
        Some(if floor == i64::MAX {
            i64::MAX
        } else {
            floor.div_euclid(scale)
        })
    }

    /// Output rows for these pairs: left columns, then right columns but the keys. The rows
    /// the watermarks freed are released afterwards.
    fn emit(&mut self, pairs: &[Pair]) -> Result<RecordBatch> {
        let out = self.build(pairs);
        if matches!(self.spec.kind, StreamJoinKind::Asof { .. }) {
            // As-of left rows leave the state when they are emitted.
            self.deferred.extend(pairs.iter().map(|p| (0, p.0)));
        }
        for (s, at) in std::mem::take(&mut self.deferred) {
            self.sides[s].release(at);
        }
        let out = out?;
        self.rows_emitted += pairs.len() as u64;
        Ok(out)
    }

    fn build(&mut self, pairs: &[Pair]) -> Result<RecordBatch> {
        let Some(schema) = self.output_schema()? else {
            if !pairs.is_empty() {
                // Left rows before the right stream's columns are known: kept as they are
                // until then.
                let l = self.sides[0].reading.as_ref().expect("a left row was read");
                let schema = l.schema.clone();
                let columns = self.side_columns(0, pairs.iter().map(|p| Some(p.0)))?;
                self.held.push(RecordBatch::try_new(schema, columns)?);
            }
            if self.sides[1].ended && !self.held.is_empty() {
                // The right input ended without a batch: its columns never come.
                let held = std::mem::take(&mut self.held);
                return Ok(arrow_select::concat::concat_batches(
                    &held[0].schema(),
                    &held,
                )?);
            }
            return Ok(RecordBatch::new_empty(Arc::new(Schema::empty())));
        };
        let mut parts = Vec::new();
        for batch in std::mem::take(&mut self.held) {
            // Padded with null right columns.
            let mut columns = batch.columns().to_vec();
            for f in schema.fields().iter().skip(columns.len()) {
                columns.push(new_null_array(f.data_type(), batch.num_rows()));
            }
            parts.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        if !pairs.is_empty() {
            let mut columns = self.side_columns(0, pairs.iter().map(|p| Some(p.0)))?;
            let r = self.sides[1].reading.as_ref().expect("output schema known");
            let right_cols: Vec<usize> = (0..r.schema.fields().len())
                .filter(|i| !r.keys.contains(i))
                .collect();
            let right = self.side_columns(1, pairs.iter().map(|p| p.1))?;
            for i in right_cols {
                columns.push(right[i].clone());
            }
            parts.push(RecordBatch::try_new(schema.clone(), columns)?);
        }
        match parts.len() {
            0 => Ok(RecordBatch::new_empty(schema)),
            1 => Ok(parts.pop().expect("one")),
            _ => Ok(arrow_select::concat::concat_batches(&schema, &parts)?),
        }
    }

    /// The columns of side `s` for these rows (None: a null row).
    fn side_columns(
        &self,
        s: usize,
        rows: impl Iterator<Item = Option<RowRef>>,
    ) -> Result<Vec<ArrayRef>> {
        let st = &self.sides[s];
        let schema = &st.reading.as_ref().expect("read").schema;
        // Sources: the referenced batches, then one null row.
        let mut slot: HashMap<u32, usize> = HashMap::new();
        let mut sources: Vec<&RecordBatch> = Vec::new();
        let mut indices: Vec<(usize, usize)> = Vec::new();
        let mut nulls = false;
        let rows: Vec<Option<RowRef>> = rows.collect();
        for r in &rows {
            match r {
                Some(at) => {
                    let k = *slot.entry(at.batch).or_insert_with(|| {
                        sources.push(st.batch(*at));
                        sources.len() - 1
                    });
                    indices.push((k, at.row as usize));
                }
                None => {
                    nulls = true;
                    indices.push((usize::MAX, 0));
                }
            }
        }
        let null_batch;
        if nulls {
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .map(|f| new_null_array(f.data_type(), 1))
                .collect();
            let nullable = Arc::new(Schema::new(
                schema
                    .fields()
                    .iter()
                    .map(|f| f.as_ref().clone().with_nullable(true))
                    .collect::<Vec<_>>(),
            ));
            null_batch = RecordBatch::try_new(nullable, columns)?;
            sources.push(&null_batch);
            let k = sources.len() - 1;
            for ix in &mut indices {
                if ix.0 == usize::MAX {
                    ix.0 = k;
                }
            }
        }
        (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    sources.iter().map(|b| b.column(c).as_ref()).collect();
                Ok(arrow_select::interleave::interleave(&arrays, &indices)?)
            })
            .collect()
    }

    /// Rewrites a side's kept rows into one batch when most stored rows are no longer kept,
    /// so a long run's state stays proportional to what the watermarks keep.
    fn compact(&mut self) {
        for s in 0..2 {
            let st = &self.sides[s];
            if st.stored_rows < 4096 || st.stored_rows < 2 * st.live_rows {
                continue;
            }
            if let Err(e) = self.compact_side(s) {
                // Compaction only saves memory; a failure leaves the state as it was.
                debug_assert!(false, "compaction failed: {e}");
            }
        }
    }

    fn compact_side(&mut self, s: usize) -> Result<()> {
        // Every kept row, in one new batch, in (time, arrival) order.
        let mut kept: Vec<RowRef> = Vec::with_capacity(self.sides[s].live_rows);
        {
            let st = &self.sides[s];
            for g in &st.groups {
                kept.extend(g.iter().map(|e| e.at));
            }
        }
        if s == 0 {
            kept.extend(self.pending.values().map(|(at, _)| *at));
        }
        if kept.is_empty() {
            return Ok(());
        }
        let columns = self.side_columns(s, kept.iter().map(|&a| Some(a)))?;
        let schema = self.sides[s].reading.as_ref().expect("read").schema.clone();
        let batch = RecordBatch::try_new(schema, columns)?;
        let mut remap: HashMap<(u32, u32), u32> = HashMap::with_capacity(kept.len());
        for (i, at) in kept.iter().enumerate() {
            remap.insert((at.batch, at.row), i as u32);
        }
        let st = &mut self.sides[s];
        let id = st.batches.len() as u32;
        let new_at = |at: RowRef| RowRef {
            batch: id,
            row: remap[&(at.batch, at.row)],
        };
        for g in &mut st.groups {
            for e in g.iter_mut() {
                e.at = new_at(e.at);
            }
        }
        if s == 0 {
            for (at, _) in self.pending.values_mut() {
                *at = new_at(*at);
            }
        }
        let st = &mut self.sides[s];
        st.batches.iter_mut().for_each(|b| *b = None);
        st.live.iter_mut().for_each(|l| *l = 0);
        st.batches.push(Some(batch));
        st.live.push(kept.len() as u32);
        st.stored_rows = kept.len();
        Ok(())
    }

    /// The group of each row's key tuple (`NONE` where a key is null).
    fn groups_of(&mut self, keys: &[ArrayRef], n: usize) -> Result<Vec<u32>> {
        let Some(converter) = &self.converter else {
            return Ok(vec![NONE; n]);
        };
        if keys.is_empty() {
            return Ok(vec![0; n]);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let (codes, encoded, null) = crate::keys::distinct_keys(keys, converter)?;
        let ids: Vec<u32> = (0..null.len())
            .map(|i| {
                if null[i] {
                    return NONE;
                }
                let row = encoded.row(i);
                match self.groups.get(row.as_ref()) {
                    Some(&g) => g,
                    None => {
                        let key: Box<[u8]> = row.as_ref().into();
                        let g = match self.free_ids.pop() {
                            Some(g) => {
                                self.group_keys[g as usize] = key.clone();
                                g
                            }
                            None => {
                                self.group_keys.push(key.clone());
                                (self.group_keys.len() - 1) as u32
                            }
                        };
                        self.groups.insert(key, g);
                        g
                    }
                }
            })
            .collect();
        Ok(codes.into_iter().map(|c| ids[c as usize]).collect())
    }

    /// Counters and gauges: per side rows in, late and kept; bytes held; rows emitted.
    pub fn metrics(&self) -> JoinMetrics {
        let side = |s: &SideState| SideMetrics {
            rows_in: s.rows_in,
            rows_late: s.rows_late,
            rows_kept: s.live_rows as u64,
            watermark: s.watermark,
        };
        JoinMetrics {
            left: side(&self.sides[0]),
            right: side(&self.sides[1]),
            state_bytes: self.sides.iter().map(SideState::bytes).sum::<usize>()
                + self.groups.capacity() * (std::mem::size_of::<(Box<[u8]>, u32)>() + 16),
            rows_emitted: self.rows_emitted,
        }
    }

    /// The left stream's time column unit factor: nanoseconds per unit (1 for integers).
    pub fn left_scale(&self) -> Option<i64> {
        self.sides[0].reading.as_ref().map(|r| r.scale)
    }

    /// Everything that carries from batch to batch, as bytes (see [`StreamJoin::restore`]):
    /// per side the rows kept (as Arrow IPC, one batch), their order by key and by time, the
    /// watermark, largest time, end flag and counters; the as-of rows waiting; the key
    /// groups; the left rows held until the right stream's columns are known.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = codec::encode(&super::SnapshotHeader::of("stream_join", &self.spec)?)?;
        let mut sides = Vec::with_capacity(2);
        let mut pending = Vec::with_capacity(self.pending.len());
        for s in 0..2 {
            let st = &self.sides[s];
            // The kept rows, numbered in the order they are listed: by group, then waiting.
            let mut refs: Vec<RowRef> = Vec::with_capacity(st.live_rows);
            let mut index: HashMap<(u32, u32), u32> = HashMap::with_capacity(st.live_rows);
            let mut number = |at: RowRef, refs: &mut Vec<RowRef>| -> u32 {
                *index.entry((at.batch, at.row)).or_insert_with(|| {
                    refs.push(at);
                    (refs.len() - 1) as u32
                })
            };
            let groups: Vec<Vec<(i64, u64, u32, bool)>> = st
                .groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|k| (k.time, k.seq, number(k.at, &mut refs), k.matched))
                        .collect()
                })
                .collect();
            if s == 0 {
                for (&(t, seq), &(at, g)) in &self.pending {
                    pending.push((t, seq, number(at, &mut refs), g));
                }
            }
            let rows = match &st.reading {
                None => None,
                Some(r) => {
                    let batch = if refs.is_empty() {
                        RecordBatch::new_empty(r.schema.clone())
                    } else {
                        let columns = self.side_columns(s, refs.iter().map(|&a| Some(a)))?;
                        RecordBatch::try_new(r.schema.clone(), columns)?
                    };
                    Some(Blob(crate::operator::ipc(&batch)?))
                }
            };
            let buckets = st
                .by_time
                .buckets
                .iter()
                .map(|(&b, bucket)| (b, bucket.entries.clone(), bucket.cursor.map(|c| c as u64)))
                .collect();
            sides.push(SavedSide {
                rows,
                groups,
                width: st.by_time.width,
                buckets,
                seq: st.seq,
                max_time: st.max_time,
                watermark: st.watermark,
                ended: st.ended,
                rows_in: st.rows_in,
                rows_late: st.rows_late,
            });
        }
        let mut groups: Vec<(Blob, u32)> = self
            .groups
            .iter()
            .map(|(k, &g)| (Blob(k.to_vec()), g))
            .collect();
        groups.sort_by_key(|g| g.1);
        let saved = SavedJoin {
            sides,
            groups,
            group_keys: self.group_keys.iter().map(|k| Blob(k.to_vec())).collect(),
            free_ids: self.free_ids.clone(),
            pending,
            held: self
                .held
                .iter()
                .map(|b| crate::operator::ipc(b).map(Blob))
                .collect::<Result<_>>()?,
            rows_emitted: self.rows_emitted,
        };
        out.extend(codec::encode(&saved)?);
        Ok(out)
    }

    /// Continues from a [`StreamJoin::snapshot`] of a join with the same spec: what it emits
    /// from now on is what the join the snapshot was taken of would have emitted (rows, late
    /// rows, counters; only the bytes held differ, the kept rows being in one batch now).
    pub fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let rest = super::SnapshotHeader::read(bytes, "stream_join", &self.spec)?;
        let saved: SavedJoin = codec::decode(rest, "stream join snapshot")?;
        let damaged =
            |why: &str| Error::Config(format!("the stream join snapshot is damaged: {why}"));
        if saved.sides.len() != 2 {
            return Err(damaged("it does not hold two sides"));
        }
        // Into a fresh join, which replaces this one only once all of it is read.
        let mut fresh = StreamJoin::new(self.spec.clone())?;
        let mut batches: Vec<Option<RecordBatch>> = Vec::with_capacity(2);
        for (s, side) in [Side::Left, Side::Right].into_iter().enumerate() {
            let batch = match &saved.sides[s].rows {
                Some(blob) => {
                    let batch = crate::operator::from_ipc(&blob.0)?;
                    fresh.read(side, &batch.schema())?;
                    Some(batch)
                }
                None => None,
            };
            batches.push(batch);
        }
        let interval = matches!(self.spec.kind, StreamJoinKind::Interval { .. });
        for (s, (saved_side, batch)) in saved.sides.into_iter().zip(batches).enumerate() {
            let rows = batch.as_ref().map_or(0, RecordBatch::num_rows);
            let check = |row: u32| {
                if (row as usize) < rows {
                    Ok(())
                } else {
                    Err(damaged("a kept row is outside its rows"))
                }
            };
            let st = &mut fresh.sides[s];
            let mut live = 0u32;
            for group in &saved_side.groups {
                let mut rows = VecDeque::with_capacity(group.len());
                for &(time, seq, row, matched) in group {
                    check(row)?;
                    rows.push_back(Kept {
                        time,
                        seq,
                        at: RowRef { batch: 0, row },
                        matched,
                    });
                    live += 1;
                }
                st.groups.push(rows);
            }
            if interval && st.groups.len() > saved.group_keys.len() {
                return Err(damaged("a side has more key groups than keys"));
            }
            for (_, entries, _) in &saved_side.buckets {
                if entries.iter().any(|e| e.2 as usize >= st.groups.len()) {
                    return Err(damaged("a row by time names no key group"));
                }
            }
            st.by_time.width = saved_side.width.max(1);
            st.by_time.buckets = saved_side
                .buckets
                .into_iter()
                .map(|(b, entries, cursor)| {
                    let cursor = cursor.map(|c| (c as usize).min(entries.len()));
                    (b, Bucket { entries, cursor })
                })
                .collect();
            if s == 0 {
                for &(t, seq, row, g) in &saved.pending {
                    check(row)?;
                    fresh
                        .pending
                        .insert((t, seq), (RowRef { batch: 0, row }, g));
                    live += 1;
                }
                if fresh.pending.len() != saved.pending.len() {
                    return Err(damaged("two waiting rows have the same time and arrival"));
                }
            }
            let st = &mut fresh.sides[s];
            if live > 0 {
                st.batches.push(batch);
                st.live.push(live);
                st.live_rows = live as usize;
                st.stored_rows = rows;
            }
            st.seq = saved_side.seq;
            st.max_time = saved_side.max_time;
            st.watermark = saved_side.watermark;
            st.ended = saved_side.ended;
            st.rows_in = saved_side.rows_in;
            st.rows_late = saved_side.rows_late;
        }
        if saved
            .groups
            .iter()
            .any(|(_, g)| *g as usize >= saved.group_keys.len())
            || saved
                .free_ids
                .iter()
                .any(|&g| g as usize >= saved.group_keys.len())
        {
            return Err(damaged("a key group id is outside its keys"));
        }
        fresh.groups = saved
            .groups
            .into_iter()
            .map(|(k, g)| (k.0.into_boxed_slice(), g))
            .collect();
        fresh.group_keys = saved
            .group_keys
            .into_iter()
            .map(|k| k.0.into_boxed_slice())
            .collect();
        fresh.free_ids = saved.free_ids;
        fresh.held = saved
            .held
            .iter()
            .map(|b| crate::operator::from_ipc(&b.0))
            .collect::<Result<_>>()?;
        if !fresh.held.is_empty() && fresh.sides[0].reading.is_none() {
            return Err(damaged("it holds left rows but no left columns"));
        }
        fresh.rows_emitted = saved.rows_emitted;
        *self = fresh;
        Ok(())
    }
}

/// A bucket of rows by time in a snapshot: its number, its (time, arrival, group) entries
/// and its cursor.
type SavedBucket = (i64, Vec<(i64, u64, u32)>, Option<u64>);

/// One side of a [`StreamJoin`] snapshot.
#[derive(Serialize, Deserialize)]
struct SavedSide {
    /// The kept rows as Arrow IPC (with the side's schema); None before its first batch.
    rows: Option<Blob>,
    /// Per key group: (time, arrival, row in `rows`, matched).
    groups: Vec<Vec<(i64, u64, u32, bool)>>,
    /// The rows by time: bucket width, and (bucket, entries, cursor).
    width: i64,
    buckets: Vec<SavedBucket>,
    seq: u64,
    max_time: Option<i64>,
    watermark: Option<i64>,
    ended: bool,
    rows_in: u64,
    rows_late: u64,
}

/// A [`StreamJoin`] snapshot after its header.
#[derive(Serialize, Deserialize)]
struct SavedJoin {
    sides: Vec<SavedSide>,
    /// Key tuples (arrow-row bytes) and their group ids.
    groups: Vec<(Blob, u32)>,
    group_keys: Vec<Blob>,
    free_ids: Vec<u32>,
    /// As of: the left rows waiting, (time, arrival, row in the left rows, group).
    pending: Vec<(i64, u64, u32, u32)>,
    /// Left rows held until the right stream's columns are known, as Arrow IPC.
    held: Vec<Blob>,
    rows_emitted: u64,
}

/// One side's counters.
#[derive(Debug, Clone, Default)]
pub struct SideMetrics {
    /// Rows given to the join.
    pub rows_in: u64,
    /// Rows late for its side's watermark.
    pub rows_late: u64,
    /// Rows kept in state now.
    pub rows_kept: u64,
    /// The side's watermark (nanoseconds or integers).
    pub watermark: Option<i64>,
}

/// A join's counters.
#[derive(Debug, Clone, Default)]
pub struct JoinMetrics {
    /// The left side's.
    pub left: SideMetrics,
    /// The right side's.
    pub right: SideMetrics,
    /// Bytes the state holds.
    pub state_bytes: usize,
    /// Rows emitted.
    pub rows_emitted: u64,
}

/// The key type both sides are read as: strings as views, integers as Int64.
fn canonical(t: &DataType) -> DataType {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8View,
        DataType::Dictionary(_, v)
            if matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            ) =>
        {
            DataType::Utf8View
        }
        t if t.is_integer() => DataType::Int64,
        t => t.clone(),
    }
}

fn cast_canonical(column: &ArrayRef) -> Result<ArrayRef> {
    let target = canonical(column.data_type());
    if column.data_type() == &target {
        return Ok(super::normalize_key(column.clone()));
    }
    Ok(arrow_cast::cast(column, &target)?)
}

/// The clock of a time column and the factor into nanoseconds.
fn clock_of(t: &DataType, name: &str, side: Side) -> Result<(Clock, i64)> {
    use arrow_schema::TimeUnit as A;
    Ok(match t {
        DataType::Timestamp(A::Nanosecond, _) => (Clock::Nanos, 1),
        DataType::Timestamp(A::Microsecond, _) => (Clock::Nanos, 1_000),
        DataType::Timestamp(A::Millisecond, _) | DataType::Date64 => (Clock::Nanos, 1_000_000),
        DataType::Timestamp(A::Second, _) => (Clock::Nanos, 1_000_000_000),
        DataType::Date32 => (Clock::Nanos, 86_400_000_000_000),
        t if t.is_integer() => (Clock::Integer, 1),
        other => {
            return Err(Error::Schema(format!(
                "the {} stream's time column {name:?} is {}; a join needs datetimes, dates \
                 or integers",
                side.name(),
                type_name(other)
            )))
        }
    })
}

fn names_of(types: &[DataType]) -> String {
    types.iter().map(type_name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use arrow_array::{Int64Array, StringArray};

    fn spec(kind: StreamJoinKind, how: How, delay: i64) -> StreamJoinSpec {
        StreamJoinSpec {
            kind,
            left_on: vec!["k".into()],
            right_on: vec!["k".into()],
            how,
            suffix: "_right".into(),
            left_time: "t".into(),
            right_time: "t".into(),
            left_delay: Span::Count(delay),
            right_delay: Span::Count(delay),
            carried: [false, false],
        }
    }

    /// Rows (time, key, id) in arrival order: roughly increasing, with some disorder.
    type Row = (i64, String, i64);

    fn rows(rng: &mut Rng, n: usize, keys: u64, base: i64) -> Vec<Row> {
        (0..n)
            .map(|i| {
                let t = i as i64 * 3 + (rng.next_u64() % 20) as i64;
                (t, format!("k{}", rng.next_u64() % keys), base + i as i64)
            })
            .collect()
    }

    fn batch(rows: &[(i64, String, i64)]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            (
                "t",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            ),
            (
                "k",
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.1.clone()),
                )) as ArrayRef,
            ),
            (
                "id",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    /// Rows on time for a side: each not below (largest time before it - delay).
    fn on_time(rows: &[(i64, String, i64)], delay: i64) -> Vec<(i64, String, i64)> {
        let mut max = i64::MIN;
        let mut out = Vec::new();
        for r in rows {
            if max != i64::MIN && r.0 < max - delay {
                continue;
            }
            max = max.max(r.0);
            out.push(r.clone());
        }
        out
    }

    /// Runs the join with the two sides cut into batches of `size` and fed in `order`
    /// (true: left), then flushed: (left id, right id or None) pairs, sorted.
    fn run(
        spec: StreamJoinSpec,
        left: &[(i64, String, i64)],
        right: &[(i64, String, i64)],
        size: usize,
        left_first: bool,
    ) -> (Vec<(i64, Option<i64>)>, usize) {
        let mut j = StreamJoin::new(spec).unwrap();
        let mut out = Vec::new();
        let mut max_kept = 0;
        let collect = |b: RecordBatch, out: &mut Vec<(i64, Option<i64>)>| {
            if b.num_columns() < 3 {
                return;
            }
            let l = b.column(2).as_primitive::<Int64Type>();
            let r = b.column(4).as_primitive::<Int64Type>();
            for i in 0..b.num_rows() {
                out.push((l.value(i), r.is_valid(i).then(|| r.value(i))));
            }
        };
        let lb: Vec<_> = left.chunks(size).collect();
        let rb: Vec<_> = right.chunks(size).collect();
        let steps: Vec<(Side, &[Row])> = if left_first {
            lb.iter()
                .map(|c| (Side::Left, *c))
                .chain(rb.iter().map(|c| (Side::Right, *c)))
                .collect()
        } else {
            let mut v = Vec::new();
            for i in 0..lb.len().max(rb.len()) {
                if let Some(c) = rb.get(i) {
                    v.push((Side::Right, *c));
                }
                if let Some(c) = lb.get(i) {
                    v.push((Side::Left, *c));
                }
            }
            v
        };
        for (side, chunk) in steps {
            let step = j.process(side, &batch(chunk)).unwrap();
            collect(step.rows, &mut out);
            let m = j.metrics();
            max_kept = max_kept.max((m.left.rows_kept + m.right.rows_kept) as usize);
        }
        collect(j.flush().unwrap(), &mut out);
        out.sort();
        (out, max_kept)
    }

    /// A step fed to a join.
    #[derive(Clone)]
    enum Step {
        Batch(Side, RecordBatch),
        Advance(Side, i64),
        End(Side),
        Flush,
    }

    /// What a step gave: rows (as text, for comparing), late rows, counters, the floor.
    type Seen = (RecordBatch, Vec<Late>, Vec<Option<i64>>, Option<i64>);

    fn apply(j: &mut StreamJoin, step: &Step) -> Seen {
        let (rows, late) = match step {
            Step::Batch(side, b) => {
                let s = j.process(*side, b).unwrap();
                (s.rows, s.late)
            }
            Step::Advance(side, t) => (j.advance_watermark(*side, *t).unwrap(), Vec::new()),
            Step::End(side) => (j.end(*side).unwrap(), Vec::new()),
            Step::Flush => (j.flush().unwrap(), Vec::new()),
        };
        let m = j.metrics();
        let counters = [m.left, m.right]
            .iter()
            .flat_map(|s| {
                [
                    Some(s.rows_in as i64),
                    Some(s.rows_late as i64),
                    Some(s.rows_kept as i64),
                    s.watermark,
                ]
            })
            .chain([Some(m.rows_emitted as i64)])
            .collect();
        (rows, late, counters, j.emitted_floor())
    }

    /// Rows (time, key or null, id) as a batch.
    fn keyed(rows: &[(i64, Option<&str>, i64)]) -> RecordBatch {
        RecordBatch::try_from_iter_with_nullable(vec![
            (
                "t",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
                false,
            ),
            (
                "k",
                Arc::new(StringArray::from_iter(rows.iter().map(|r| r.1))) as ArrayRef,
                true,
            ),
            (
                "id",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))) as ArrayRef,
                false,
            ),
        ])
        .unwrap()
    }

    /// Steps over two sides with late rows, null keys, left rows before any right batch, an
    /// idle side's watermark, and the ends.
    fn steps(seed: u64, size: usize) -> Vec<Step> {
        let mut rng = Rng::new(seed);
        let mut rows_of = |n: usize, base: i64| -> Vec<(i64, Option<&'static str>, i64)> {
            (0..n)
                .map(|i| {
                    let t = i as i64 * 3 + (rng.next_u64() % 25) as i64;
                    let k = ["a", "b", "c"][(rng.next_u64() % 3) as usize];
                    let k = (!rng.next_u64().is_multiple_of(9)).then_some(k);
                    (t, k, base + i as i64)
                })
                .collect()
        };
        let left = rows_of(40, 0);
        let right = rows_of(40, 1000);
        let mut out = Vec::new();
        // The first left rows before any right batch.
        for c in left[..6].chunks(size) {
            out.push(Step::Batch(Side::Left, keyed(c)));
        }
        let (l, r): (Vec<_>, Vec<_>) = (
            left[6..].chunks(size).collect(),
            right.chunks(size).collect(),
        );
        for i in 0..l.len().max(r.len()) {
            if let Some(c) = r.get(i) {
                out.push(Step::Batch(Side::Right, keyed(c)));
            }
            if i == 3 {
                out.push(Step::Advance(Side::Right, 40));
            }
            if let Some(c) = l.get(i) {
                out.push(Step::Batch(Side::Left, keyed(c)));
            }
        }
        out.push(Step::End(Side::Left));
        out.push(Step::Batch(Side::Right, keyed(&[(200, Some("a"), 5000)])));
        out.push(Step::Flush);
        out
    }

    #[test]
    fn a_restored_stream_join_goes_on_as_the_original_at_every_split_point() {
        let kinds = [
            (
                StreamJoinKind::Interval {
                    lower: Span::Count(-6),
                    upper: Span::Count(10),
                },
                How::Inner,
            ),
            (
                StreamJoinKind::Interval {
                    lower: Span::Count(-6),
                    upper: Span::Count(10),
                },
                How::Left,
            ),
            (
                StreamJoinKind::Asof {
                    tolerance: Some(Span::Count(12)),
                },
                How::Left,
            ),
            (StreamJoinKind::Asof { tolerance: None }, How::Left),
        ];
        for (kind, how) in kinds {
            for (seed, size) in [(1, 1), (2, 3), (3, 7)] {
                let spec = spec(kind.clone(), how, 8);
                let steps = steps(seed, size);
                let mut whole = StreamJoin::new(spec.clone()).unwrap();
                let expected: Vec<Seen> = steps.iter().map(|s| apply(&mut whole, s)).collect();
                assert!(
                    expected.iter().any(|e| !e.1.is_empty()),
                    "some rows are late"
                );
                assert!(
                    expected.iter().any(|e| e.0.num_rows() > 0),
                    "some rows are joined"
                );
                for k in 0..=steps.len() {
                    let mut a = StreamJoin::new(spec.clone()).unwrap();
                    for s in &steps[..k] {
                        apply(&mut a, s);
                    }
                    let bytes = a.snapshot().unwrap();
                    let mut b = StreamJoin::new(spec.clone()).unwrap();
                    b.restore(&bytes).unwrap();
                    // A snapshot of the restored join restores alike.
                    let mut c = StreamJoin::new(spec.clone()).unwrap();
                    c.restore(&b.snapshot().unwrap()).unwrap();
                    for (i, s) in steps[k..].iter().enumerate() {
                        let want = &expected[k + i];
                        assert_eq!(
                            &apply(&mut b, s),
                            want,
                            "{kind:?} {how:?} size {size}, split {k}, step {}",
                            k + i
                        );
                        assert_eq!(&apply(&mut c, s), want, "twice restored, split {k}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_stream_join_snapshot_of_another_spec_or_damaged_is_refused() {
        let interval = StreamJoinKind::Interval {
            lower: Span::Count(0),
            upper: Span::Count(5),
        };
        let mut a = StreamJoin::new(spec(interval.clone(), How::Inner, 8)).unwrap();
        a.process(Side::Left, &keyed(&[(1, Some("a"), 1)])).unwrap();
        let bytes = a.snapshot().unwrap();
        let mut other = StreamJoin::new(spec(interval, How::Left, 8)).unwrap();
        let e = other.restore(&bytes).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("how was \"inner\", is \"left\"")),
            "{e}"
        );
        let asof = StreamJoinKind::Asof { tolerance: None };
        let e = StreamJoin::new(spec(asof, How::Left, 8))
            .unwrap()
            .restore(&bytes)
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("kind was")),
            "{e}"
        );
        let mut same = StreamJoin::new(a.spec.clone()).unwrap();
        let e = same.restore(&bytes[..bytes.len() - 9]).unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("damaged")),
            "{e}"
        );
        let e = same.restore(b"not a snapshot").unwrap_err();
        assert!(matches!(&e, Error::Config(_)), "{e}");
        // Nothing of a refused snapshot was taken in.
        assert_eq!(same.metrics().left.rows_in, 0);
    }

    #[test]
    fn interval_join_equals_brute_force_whatever_the_batches_and_interleaving() {
        let mut rng = Rng::new(7);
        let left = rows(&mut rng, 300, 5, 0);
        let right = rows(&mut rng, 300, 5, 10_000);
        for how in [How::Inner, How::Left] {
            let (lo, hi) = (-6, 10);
            let (l, r) = (on_time(&left, 8), on_time(&right, 8));
            let mut expected = Vec::new();
            for a in &l {
                let mut any = false;
                for b in &r {
                    if a.1 == b.1 && b.0 - a.0 >= lo && b.0 - a.0 <= hi {
                        expected.push((a.2, Some(b.2)));
                        any = true;
                    }
                }
                if !any && how == How::Left {
                    expected.push((a.2, None));
                }
            }
            expected.sort();
            let kind = StreamJoinKind::Interval {
                lower: Span::Count(lo),
                upper: Span::Count(hi),
            };
            for size in [1, 7, 300] {
                for left_first in [false, true] {
                    let (got, _) = run(spec(kind.clone(), how, 8), &left, &right, size, left_first);
                    assert_eq!(
                        got, expected,
                        "{how:?}, size {size}, left first {left_first}"
                    );
                }
            }
        }
    }

    #[test]
    fn asof_join_equals_brute_force_and_interval_state_stays_bounded() {
        let mut rng = Rng::new(11);
        let left = rows(&mut rng, 400, 4, 0);
        let right = rows(&mut rng, 400, 4, 10_000);
        let (l, r) = (on_time(&left, 8), on_time(&right, 8));
        let mut expected: Vec<(i64, Option<i64>)> = l
            .iter()
            .map(|a| {
                // The latest right row of the key at or before, the last to arrive among ties.
                let best = r.iter().filter(|b| b.1 == a.1 && b.0 <= a.0).fold(
                    None::<&(i64, String, i64)>,
                    |best, b| match best {
                        Some(x) if x.0 > b.0 => Some(x),
                        _ => Some(b),
                    },
                );
                (a.2, best.map(|b| b.2))
            })
            .collect();
        expected.sort();
        for size in [1, 7, 400] {
            for left_first in [false, true] {
                let kind = StreamJoinKind::Asof { tolerance: None };
                let (got, _) = run(spec(kind, How::Left, 8), &left, &right, size, left_first);
                assert_eq!(got, expected, "size {size}, left first {left_first}");
            }
        }
        // A long interleaved interval join keeps about the rows within the interval and delay.
        let mut rng = Rng::new(3);
        let long_l = rows(&mut rng, 20_000, 50, 0);
        let long_r = rows(&mut rng, 20_000, 50, 100_000);
        let kind = StreamJoinKind::Interval {
            lower: Span::Count(0),
            upper: Span::Count(10),
        };
        let (_, kept) = run(spec(kind, How::Inner, 8), &long_l, &long_r, 7, false);
        assert!(kept < 200, "kept {kept} rows at most");
    }
}
