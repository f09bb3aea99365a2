//! A query without aggregates: its rows pass through.
//!
//! Without windows (a Kinesis pump that filters or reshapes rows, `SELECT STREAM a, b FROM s
//! WHERE ...`), every row with a readable time is emitted at once, in arrival order, and is
//! never late: a stateless step has no window to be late for, as in Flink.
//!
//! With windows (Flink's window table functions read without `GROUP BY`: `SELECT *, ... FROM
//! TABLE(TUMBLE(...))`, the input of a window Top-N), each row is held in every window that
//! holds its time until the window closes, then the window's rows come out together, with
//! `window_start` and `window_end`, in arrival order; windows in order of end, then start. A
//! row whose windows have all closed is late, as for any window.
//!
//! Rows with a null or unparseable time are rejected, as a window would reject them. The
//! watermark is kept either way, so a query reading these rows can take it as its own
//! ([`Operator::emitted_floor`]).

use super::batch::{
    as_window_type, bind_schema, no_columns, read_times, route_late, unsupported_time, Bound,
};
use super::config::{BatchResult, Metrics, OperatorConfig, Windowing};
use super::lifecycle::{FloorColumn, Header, Operator};
use crate::codec;
use crate::error::{Error, Result};
use crate::window::{Watermark, WindowSpec};
use arrow_array::{Array, Int64Array, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_schema::{Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The pass-through operator.
pub struct RowsOperator {
    config: OperatorConfig,
    windows: Option<WindowSpec>,
    bound: Option<Bound>,
    watermark: Watermark,
    metrics: Metrics,
    finished: bool,
    held: Held,
}

/// A window by (end, start), and its rows as (batch id, row) in arrival order.
type WindowRows = ((i64, i64), Vec<(u32, u32)>);

/// Rows waiting for their windows to close.
#[derive(Default)]
struct Held {
    /// The batches rows are held from, by id (None once no row of it is held).
    batches: Vec<Option<RecordBatch>>,
    /// Rows still held from each batch (one per window holding it).
    refs: Vec<usize>,
    /// Open windows by (end, start): their rows, as (batch id, row), in arrival order.
    open: BTreeMap<(i64, i64), Vec<(u32, u32)>>,
}

/// What a checkpoint of a rows operator holds: the held batches as Arrow IPC streams.
#[derive(Serialize, Deserialize)]
struct Saved {
    watermark: Watermark,
    metrics: Metrics,
    finished: bool,
    batches: Vec<Option<Vec<u8>>>,
    open: Vec<WindowRows>,
}

impl RowsOperator {
    /// A pass-through operator; `config.window` must be [`Windowing::Rows`].
    pub fn new(config: OperatorConfig) -> Result<Self> {
        let Windowing::Rows { windows } = config.window else {
            return Err(Error::Internal("RowsOperator needs rows windowing".into()));
        };
        Ok(RowsOperator {
            watermark: Watermark::new(config.delay),
            windows,
            config,
            bound: None,
            metrics: Metrics::default(),
            finished: false,
            held: Held::default(),
        })
    }

    fn empty(&self) -> Result<RecordBatch> {
        match &self.bound {
            Some(b) => Ok(RecordBatch::new_empty(b.output_schema.clone())),
            None => no_columns(),
        }
    }

    fn gauges(&mut self) {
        let m = &mut self.metrics;
        m.max_event_time = self.watermark.max_seen();
        m.watermark = (self.watermark.current() > i64::MIN).then(|| self.watermark.current());
        m.open_windows = self.held.open.len() as u64;
        m.open_panes = m.open_windows;
        m.state_bytes = (std::mem::size_of::<Self>()
            + self
                .held
                .batches
                .iter()
                .flatten()
                .map(|b| b.get_array_memory_size())
                .sum::<usize>()
            + self
                .held
                .open
                .values()
                .map(|v| v.len() * 8 + 48)
                .sum::<usize>()) as u64;
    }

    fn bind(&mut self, schema: &SchemaRef) -> Result<()> {
        if let Some(b) = &self.bound {
            return b.check(schema);
        }
        let (mut b, _, _) = bind_schema(&self.config, schema)?;
        b.output_schema = match self.windows {
            None => schema.clone(),
            Some(_) => {
                for name in ["window_start", "window_end"] {
                    if schema.index_of(name).is_ok() {
                        return Err(Error::Schema(format!(
                            "the input already has a column '{name}', which the window adds; \
                             rename it first"
                        )));
                    }
                }
                let mut fields: Vec<Field> =
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect();
                fields.push(Field::new("window_start", b.window_type.clone(), false));
                fields.push(Field::new("window_end", b.window_type.clone(), false));
                Arc::new(Schema::new(fields))
            }
        };
        self.bound = Some(b);
        Ok(())
    }

    /// Emits the windows whose end plus lateness the watermark has passed (all of them at
    /// the end of the input).
    fn close(&mut self, all: bool) -> Result<RecordBatch> {
        let wm = self.watermark.current();
        let lateness = self.config.lateness;
        let mut done: Vec<WindowRows> = Vec::new();
        while let Some(entry) = self.held.open.first_entry() {
            let (end, _) = *entry.key();
            if !all && end.saturating_add(lateness) > wm {
                break;
            }
            done.push(entry.remove_entry());
        }
        if done.is_empty() || self.bound.is_none() {
            return self.empty();
        }
        let bound = self.bound.as_ref().expect("checked");
        // Every held batch, indexed densely for interleave.
        let ids: Vec<usize> = (0..self.held.batches.len())
            .filter(|&i| self.held.batches[i].is_some())
            .collect();
        let mut dense = vec![usize::MAX; self.held.batches.len()];
        for (d, &i) in ids.iter().enumerate() {
            dense[i] = d;
        }
        let batches: Vec<&RecordBatch> = ids
            .iter()
            .map(|&i| self.held.batches[i].as_ref().expect("live"))
            .collect();
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let (mut starts, mut ends) = (Vec::new(), Vec::new());
        for ((end, start), rows) in &done {
            for &(b, r) in rows {
                picks.push((dense[b as usize], r as usize));
                starts.push(*start);
                ends.push(*end);
            }
        }
        let mut columns = Vec::with_capacity(bound.output_schema.fields().len());
        for c in 0..bound.schema.fields().len() {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            columns.push(arrow_select::interleave::interleave(&arrays, &picks)?);
        }
        columns.push(as_window_type(
            Int64Array::from(starts),
            &bound.window_type,
        )?);
        columns.push(as_window_type(Int64Array::from(ends), &bound.window_type)?);
        let out = RecordBatch::try_new_with_options(
            bound.output_schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(picks.len())),
        )?;
        for (_, rows) in done {
            for (b, _) in rows {
                let b = b as usize;
                self.held.refs[b] -= 1;
                if self.held.refs[b] == 0 {
                    self.held.batches[b] = None;
                }
            }
        }
        self.metrics.rows_emitted += out.num_rows() as u64;
        self.gauges();
        Ok(out)
    }

    /// Holds row `i` of batch `id` (time `t`) in its open windows; false when every window
    /// holding `t` has closed (the row is late).
    fn hold(&mut self, spec: &WindowSpec, id: u32, i: usize, t: i64) -> bool {
        let wm = self.watermark.current();
        let (lo, hi) = spec.indices(t);
        let mut held = false;
        for w in lo..=hi {
            let (start, end) = (spec.start(w), spec.end(w));
            if t < start || t >= end || end.saturating_add(self.config.lateness) <= wm {
                continue;
            }
            self.held
                .open
                .entry((end, start))
                .or_default()
                .push((id, i as u32));
            self.held.refs[id as usize] += 1;
            held = true;
        }
        held
    }
}

impl Operator for RowsOperator {
    fn process(&mut self, batch: &RecordBatch, _now_ms: Option<i64>) -> Result<BatchResult> {
        if self.finished {
            return Err(Error::Internal("process() after flush()".into()));
        }
        let schema = batch.schema();
        self.bind(&schema)?;
        let bound = self.bound.as_ref().expect("bound above");
        let n = batch.num_rows();
        let times = read_times(batch.column(bound.time_index), bound.time_kind)?;
        let mut result = BatchResult::empty(bound);
        self.metrics.rows_in += n as u64;
        let Some(spec) = self.windows else {
            let mut keep: Vec<u32> = Vec::with_capacity(n);
            for i in 0..n {
                match times.value(i) {
                    Ok(t) => {
                        self.watermark.observe(t);
                        keep.push(i as u32);
                    }
                    Err(reason) => result.reject(&mut self.metrics, i, reason),
                }
            }
            self.metrics.rows_accepted += keep.len() as u64;
            self.metrics.rows_emitted += keep.len() as u64;
            result.output = if keep.len() == n {
                batch.clone()
            } else {
                let indices = UInt32Array::from(keep);
                let columns = batch
                    .columns()
                    .iter()
                    .map(|c| arrow_select::take::take(c, &indices, None))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                RecordBatch::try_new_with_options(
                    schema,
                    columns,
                    &RecordBatchOptions::new().with_row_count(Some(indices.len())),
                )?
            };
            self.gauges();
            return Ok(result);
        };
        let id = self.held.batches.len() as u32;
        self.held.batches.push(Some(batch.clone()));
        self.held.refs.push(0);
        let supported = spec.supported();
        let mut parts = Vec::new();
        for i in 0..n {
            let t = match times.value(i) {
                Ok(t) => t,
                Err(reason) => {
                    result.reject(&mut self.metrics, i, reason);
                    continue;
                }
            };
            if t < supported.0 || t > supported.1 {
                let why = unsupported_time(t, supported, self.config.time_unit);
                result.reject(&mut self.metrics, i, why);
                continue;
            }
            if self.hold(&spec, id, i, t) {
                self.metrics.rows_accepted += 1;
            } else {
                let wm = self.watermark.current();
                route_late(
                    &self.config,
                    &mut self.metrics,
                    &mut result,
                    i,
                    t,
                    wm,
                    "is in windows that closed",
                )?;
            }
            if self.watermark.observe(t) {
                // Windows the watermark closes now come out before later rows are judged.
                let out = self.close(false)?;
                if out.num_rows() > 0 {
                    parts.push(out);
                }
            }
        }
        if self.held.refs[id as usize] == 0 {
            self.held.batches[id as usize] = None;
        }
        let bound = self.bound.as_ref().expect("bound above");
        result.output = match parts.len() {
            0 => RecordBatch::new_empty(bound.output_schema.clone()),
            1 => parts.pop().expect("one"),
            _ => arrow_select::concat::concat_batches(&bound.output_schema, &parts)?,
        };
        self.gauges();
        Ok(result)
    }

    fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        self.watermark.advance_to(instant);
        let out = self.close(false)?;
        self.gauges();
        Ok(out)
    }

    fn tick(&mut self, _now_ms: i64) -> Result<RecordBatch> {
        self.empty()
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        self.finished = true;
        let out = self.close(true)?;
        self.gauges();
        Ok(out)
    }

    fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    fn output_schema(&self) -> Option<SchemaRef> {
        self.bound.as_ref().map(|b| b.output_schema.clone())
    }

    fn kind(&self) -> &'static str {
        "rows"
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = codec::encode(&Header::of("rows", &self.config))?;
        let mut batches = Vec::with_capacity(self.held.batches.len());
        for b in &self.held.batches {
            batches.push(match b {
                None => None,
                Some(batch) => {
                    let mut bytes = Vec::new();
                    let mut w =
                        arrow_ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema())?;
                    w.write(batch)?;
                    w.finish()?;
                    drop(w);
                    Some(bytes)
                }
            });
        }
        let saved = Saved {
            watermark: self.watermark,
            metrics: self.metrics.clone(),
            finished: self.finished,
            batches,
            open: self
                .held
                .open
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
        };
        out.extend(codec::encode(&saved)?);
        Ok(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (header, rest): (Header, _) = codec::decode_prefix(bytes, "snapshot")?;
        header.check("rows", &self.config, "snapshot")?;
        let saved: Saved = codec::decode(rest, "snapshot")?;
        let mut batches = Vec::with_capacity(saved.batches.len());
        for b in saved.batches {
            batches.push(match b {
                None => None,
                Some(bytes) => {
                    let mut reader = arrow_ipc::reader::StreamReader::try_new(
                        std::io::Cursor::new(bytes),
                        None,
                    )?;
                    let batch = reader.next().transpose()?.ok_or_else(|| {
                        Error::Config("a rows snapshot holds an empty batch".into())
                    })?;
                    if self.bound.is_none() {
                        self.bind(&batch.schema())?;
                    }
                    Some(batch)
                }
            });
        }
        let mut refs = vec![0; batches.len()];
        for (_, rows) in &saved.open {
            for &(b, _) in rows {
                match refs.get_mut(b as usize) {
                    Some(r) => *r += 1,
                    None => return Err(Error::Config("a rows snapshot is damaged".into())),
                }
            }
        }
        self.watermark = saved.watermark;
        self.metrics = saved.metrics;
        self.finished = saved.finished;
        self.held = Held {
            batches,
            refs,
            open: saved.open.into_iter().collect(),
        };
        Ok(())
    }

    fn emitted_floor(&self, column: FloorColumn) -> Option<i64> {
        if self.finished {
            return Some(i64::MAX);
        }
        self.bound.as_ref()?;
        let wm = self.watermark.current();
        match (column, self.windows) {
            (FloorColumn::RowTime, None) => Some(wm),
            (FloorColumn::WindowEnd, Some(_)) => {
                // An open window, or one a row not yet late opens: its end is past
                // `watermark - lateness`.
                let new = wm.saturating_sub(self.config.lateness).saturating_add(1);
                Some(
                    self.held
                        .open
                        .first_key_value()
                        .map_or(new, |(&(end, _), _)| end.min(new)),
                )
            }
            (FloorColumn::WindowStart, Some(spec)) => {
                // A row not yet late is in a window ending after `watermark - lateness`: the
                // first of those starts no earlier than the first window holding that instant.
                let x = wm.saturating_sub(self.config.lateness);
                let new = spec.start(spec.indices(x).0);
                let open = self.held.open.keys().map(|&(_, start)| start).min();
                Some(open.map_or(new, |o| o.min(new)))
            }
            _ => None,
        }
    }
}
