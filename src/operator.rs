//! The keyed event-time window operator: rows in arrival order in, panes out, late rows routed.
//!
//! Semantics are per row, as if rows arrived one at a time: row `i` is judged against the
//! watermark left by rows `0..i`. The implementation still works over whole Arrow batches:
//! the batch is cut only at *moments*, rows after which something is emitted (the watermark
//! passes a window end, or an amendment is due), and the rows between two moments update the
//! accumulators in one vectorised pass per aggregate.
//!
//! ```text
//!   rows:   r0 r1 r2 r3 | r4 r5 r6 ... | ...        '|' = a moment: emit, then free closed panes
//!   wm:     ---------->   window [0,60) complete (emit in amend mode)
//!                          ... wm >= 60 + lateness: closed (emit in final mode, state freed)
//! ```

use crate::aggregate::{self, AggSpec, GroupsAccumulator};
use crate::error::{Error, Result};
use crate::keys::KeyInterner;
use crate::parallel::{self, Feeder, CHUNK};
use crate::time::{read_timestamp, TimeUnit, TimestampError};
use crate::window::{Watermark, WindowSpec};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit as ArrowUnit};
use hashbrown::HashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// One row per window and key, when the window closes.
    Final,
    /// A row when the window completes (revision 0), then one per later change while open.
    Amend,
    /// Flink row kinds: `+I` when the window completes, then `-U`/`+U` pairs per change.
    Changelog,
}

impl EmitMode {
    /// True for the modes that emit at completion and again on every change.
    pub fn updates(self) -> bool {
        matches!(self, EmitMode::Amend | EmitMode::Changelog)
    }
}

/// When updating modes (amend, changelog) emit the changes late rows make to windows that
/// were already emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Revise {
    /// A revision after every row that changes an emitted window.
    #[default]
    Row,
    /// Changes are gathered and emitted as one revision per window and key at the next
    /// moment the watermark completes or closes a window (or the input ends): as many
    /// revisions as the watermark makes such moments, whatever the number of late rows and
    /// however the input is cut into batches.
    Watermark,
}

/// Changelog row kinds, as Flink names them.
pub const ROW_KINDS: [&str; 4] = ["+I", "-U", "+U", "-D"];
const INSERT: u32 = 0;
const UPDATE_BEFORE: u32 = 1;
const UPDATE_AFTER: u32 = 2;
const NO_SLOT: u32 = u32::MAX;

/// What happens to a row whose windows have all closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateMode {
    /// Keep it in the late table.
    Collect,
    /// Count it only.
    Drop,
    /// Fail the query with [`Error::LateData`].
    Raise,
}

/// A validated query configuration. Durations are already in the time column's unit.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// The event-time column.
    pub time_column: String,
    /// The unit the durations were converted to.
    pub time_unit: TimeUnit,
    /// Key columns.
    pub by: Vec<String>,
    /// Window layout.
    pub window: Windowing,
    /// Watermark delay (bounded out-of-orderness).
    pub delay: i64,
    /// Allowed lateness after a window completes.
    pub lateness: i64,
    /// Emission mode.
    pub emit: EmitMode,
    /// With amend or changelog: when changes to emitted windows are emitted.
    pub revise: Revise,
    /// Late-row handling.
    pub late: LateMode,
    /// With amend or changelog: also emit changed open windows at most once per this many
    /// milliseconds of wall-clock time.
    pub early_ms: Option<i64>,
    /// Aggregates, in output order.
    pub aggs: Vec<AggSpec>,
}

/// How rows are grouped into windows.
#[derive(Debug, Clone, Copy)]
pub enum Windowing {
    /// Windows aligned to a grid (tumbling, hopping, cumulative, calendar).
    Aligned(WindowSpec),
    /// Per-key sessions: rows at most `gap` apart share a window `[first, last + gap)`.
    Session {
        /// The largest distance between two rows of one session (inclusive).
        gap: i64,
        /// The longest a session may span, if bounded.
        max_duration: Option<i64>,
    },
    /// One window per row: the same key's rows in `(t - period, t]`.
    Sliding {
        /// How far back each row's window reaches.
        period: i64,
    },
}

impl From<WindowSpec> for Windowing {
    fn from(spec: WindowSpec) -> Self {
        Windowing::Aligned(spec)
    }
}

/// How final-mode windows are built from slices: hopping windows of `n` slices of `every`,
/// or cumulative windows of 1..k slices of `step` within a block.
#[derive(Debug, Clone, Copy)]
enum Slicer {
    Hop { n: i64 },
    Cumulative { k: i64 },
}

impl Slicer {
    fn for_spec(spec: &WindowSpec, config: &OperatorConfig) -> Option<Slicer> {
        if config.emit != EmitMode::Final || config.early_ms.is_some() {
            return None;
        }
        match spec {
            WindowSpec::Fixed(f) if f.period > f.every && f.period % f.every == 0 => {
                Some(Slicer::Hop {
                    n: f.period / f.every,
                })
            }
            WindowSpec::Cumulative(c) if c.period > c.step => Some(Slicer::Cumulative {
                k: c.period / c.step,
            }),
            _ => None,
        }
    }

    /// The slice a row belongs to, from its first and last window.
    fn slice_of(self, first: i64, last: i64) -> i64 {
        match self {
            Slicer::Hop { .. } => last,
            Slicer::Cumulative { .. } => first,
        }
    }

    /// The slices window `w` covers.
    fn slices(self, w: i64) -> (i64, i64) {
        match self {
            Slicer::Hop { n } => (w, w.saturating_add(n - 1)),
            Slicer::Cumulative { k } => (w.div_euclid(k).saturating_mul(k), w),
        }
    }

    /// The windows slice `s` is part of.
    fn windows_of(self, s: i64) -> (i64, i64) {
        match self {
            Slicer::Hop { n } => (s.saturating_sub(n - 1), s),
            Slicer::Cumulative { k } => {
                (s, s.div_euclid(k).saturating_mul(k).saturating_add(k - 1))
            }
        }
    }
}

/// What one input batch produced.
#[derive(Debug)]
pub struct BatchResult {
    /// Rows emitted while processing the batch, in emission order.
    pub output: RecordBatch,
    /// Indices (in the batch) of late rows, when they are collected.
    pub late_rows: Vec<u32>,
    /// For each late row, the watermark at its arrival minus its time.
    pub late_by: Vec<i64>,
    /// Indices of rejected rows.
    pub rejected_rows: Vec<u32>,
    /// For each rejected row, why.
    pub reasons: Vec<String>,
}

/// Counters and gauges of a running operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Rows seen by the operator.
    pub rows_in: u64,
    /// Rows added to at least one window (or to none, between hopping windows).
    pub rows_accepted: u64,
    /// Rows whose windows had all closed.
    pub rows_late: u64,
    /// Rows with a null or unparseable time, or a time outside what the windows can place.
    pub rows_rejected: u64,
    /// Rows emitted.
    pub rows_emitted: u64,
    /// Current watermark (None before the first row).
    pub watermark: Option<i64>,
    /// Largest event time seen.
    pub max_event_time: Option<i64>,
    /// Distinct open windows.
    pub open_windows: u64,
    /// Open (window, key) panes.
    pub open_panes: u64,
    /// Distinct keys seen.
    pub keys: u64,
    /// Approximate bytes of state.
    pub state_bytes: u64,
}

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

#[derive(Debug, Clone, Copy)]
struct Pane {
    window: i64,
    key: u32,
    revision: u32,
    emitted: bool,
    live: bool,
    /// Changed since it was last emitted.
    dirty: bool,
    /// In `amended`, waiting for the next moment (so it is listed once, however many late
    /// rows change it).
    queued: bool,
    /// Changelog mode: a slot holding the state as last emitted, for `-U` rows.
    shadow: u32,
}

impl Pane {
    fn new(window: i64, key: u32, live: bool) -> Pane {
        Pane {
            window,
            key,
            revision: 0,
            emitted: false,
            live,
            dirty: false,
            queued: false,
            shadow: NO_SLOT,
        }
    }
}

/// A row's first and last window, remembering the last row's window when windows do not
/// overlap: most rows share it, and a calendar window costs a time-zone lookup to find.
struct WindowCache {
    disjoint: bool,
    /// `[start, end)` and index of the window last found.
    last: (i64, i64, i64),
}

impl WindowCache {
    fn new(spec: &WindowSpec) -> Self {
        WindowCache {
            disjoint: spec.disjoint(),
            last: (i64::MAX, i64::MIN, 0),
        }
    }

    #[inline]
    fn indices(&mut self, spec: &WindowSpec, t: i64) -> (i64, i64) {
        let (start, end, w) = self.last;
        if t >= start && t < end {
            return (w, w);
        }
        let (f, l) = spec.indices(t);
        if self.disjoint && f == l {
            self.last = (spec.start(f), spec.end(f), f);
        }
        (f, l)
    }
}

/// What one thread found in a range of rows (see [`WindowOperator::assign_split`]).
#[derive(Default)]
struct Judged {
    /// Rows without a valid time, and why.
    rejected: Vec<(u32, String)>,
    /// Late rows: row, time, and the largest time of the accepted rows before it in the range.
    late: Vec<(u32, i64, i64)>,
    /// Accepted rows and their panes' slots (`NO_SLOT` where the pane does not exist yet).
    rows: Vec<u32>,
    slots: Vec<u32>,
    /// Positions in `rows` whose slot is `NO_SLOT`, with the window (or slice) of their pane.
    misses: Vec<(u32, i64)>,
    /// The largest time accepted.
    max: Option<i64>,
}

/// What judging a row needs of its operator, read (not changed) by two threads at once.
struct PaneView<'a> {
    spec: WindowSpec,
    /// The instants a row may have (see [`WindowSpec::supported`]), and their unit.
    supported: (i64, i64),
    unit: TimeUnit,
    slicer: Option<Slicer>,
    late_before: i64,
    index: &'a HashMap<(i64, u32), u32>,
    last_pane: &'a [(i64, u32)],
    panes: &'a [Pane],
}

impl PaneView<'_> {
    /// Judges rows `lo..hi` and looks up the accepted rows' panes.
    fn judge(&self, times: &Times<'_>, key_ids: &[u32], lo: usize, hi: usize) -> Judged {
        match times {
            Times::Values(v, None) => self.judge_with(|i| Ok(v[i]), key_ids, lo, hi),
            _ => self.judge_with(|i| times.value(i), key_ids, lo, hi),
        }
    }

    #[inline]
    fn judge_with(
        &self,
        time: impl Fn(usize) -> std::result::Result<i64, String>,
        key_ids: &[u32],
        lo: usize,
        hi: usize,
    ) -> Judged {
        let mut out = Judged {
            rows: Vec::with_capacity(hi - lo),
            slots: Vec::with_capacity(hi - lo),
            ..Judged::default()
        };
        let mut max = i64::MIN;
        let mut windows = WindowCache::new(&self.spec);
        for (i, &key) in key_ids.iter().enumerate().take(hi).skip(lo) {
            let t = match time(i) {
                Ok(t) => t,
                Err(reason) => {
                    out.rejected.push((i as u32, reason));
                    continue;
                }
            };
            if t < self.supported.0 || t > self.supported.1 {
                out.rejected
                    .push((i as u32, unsupported_time(t, self.supported, self.unit)));
                continue;
            }
            if t < self.late_before {
                out.late.push((i as u32, t, max));
                continue;
            }
            max = max.max(t);
            // The pane's window: the row's one window, or its slice.
            let (first, last) = windows.indices(&self.spec, t);
            let w = self.slicer.map_or(first, |sl| sl.slice_of(first, last));
            let slot = match self.last_pane.get(key as usize) {
                Some(&(cw, cs))
                    if cw == w && {
                        let p = &self.panes[cs as usize];
                        p.live && p.window == w && p.key == key
                    } =>
                {
                    cs
                }
                _ => self.index.get(&(w, key)).copied().unwrap_or(NO_SLOT),
            };
            if slot == NO_SLOT {
                out.misses.push((out.rows.len() as u32, w));
            }
            out.rows.push(i as u32);
            out.slots.push(slot);
        }
        out.max = (!out.rows.is_empty()).then_some(max);
        out
    }
}

/// The keyed window operator. Feed it batches in arrival order, then call
/// [`WindowOperator::finish`].
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use _core::aggregate::{AggKind, AggSpec};
/// use _core::operator::{EmitMode, LateMode, OperatorConfig, WindowOperator};
/// use _core::time::TimeUnit;
/// use _core::window::WindowSpec;
///
/// let config = OperatorConfig {
///     time_column: "t".into(), time_unit: TimeUnit::Integer, by: vec!["k".into()],
///     window: WindowSpec::tumbling(10, 0).unwrap().into(), delay: 0, lateness: 0,
///     emit: EmitMode::Final, revise: Default::default(), late: LateMode::Collect, early_ms: None,
///     aggs: vec![AggSpec { kind: AggKind::Count, column: None, filter: None, name: "count".into(),
///                          options: Default::default() }],
/// };
/// let mut op = WindowOperator::new(config);
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("t", DataType::Int64, true), Field::new("k", DataType::Utf8, true)]));
/// let batch = RecordBatch::try_new(schema, vec![
///     Arc::new(Int64Array::from(vec![1, 3, 12, 4])),
///     Arc::new(StringArray::from(vec!["a", "a", "a", "b"])),
/// ]).unwrap();
/// let r = op.process(&batch).unwrap();
/// assert_eq!(r.output.num_rows(), 1);      // [0, 10) for "a" closed when t = 12 arrived
/// assert_eq!(r.late_rows, vec![3]);        // t = 4 came after [0, 10) closed
/// let rest = op.finish().unwrap();
/// assert_eq!(rest.num_rows(), 1);          // [10, 20) for "a", flushed at end of input
/// ```
pub struct WindowOperator {
    config: OperatorConfig,
    spec: WindowSpec,
    /// Final-mode hopping and cumulative windows keep one pane per slice instead of one per
    /// window: a row updates one slice, and a window is the merge of its slices when it
    /// closes, instead of updating `period / every` windows per row.
    slicer: Option<Slicer>,
    /// The instants a row may have (see [`WindowSpec::supported`]); others are rejected.
    supported: (i64, i64),
    bound: Option<Bound>,
    keys: Option<KeyInterner>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    watermark: Watermark,
    done_complete: i64,
    done_closed: i64,
    // Thresholds derived from done_complete / done_closed, so the per-row path compares
    // instead of dividing: a row with t < late_before has its last window closed; the
    // watermark reaching next_complete_at / next_close_at is a moment.
    late_before: i64,
    next_complete_at: i64,
    next_close_at: i64,
    panes: Vec<Pane>,
    free: Vec<u32>,
    pane_index: HashMap<(i64, u32), u32>,
    last_pane: Vec<(i64, u32)>,
    windows: BTreeMap<i64, Vec<u32>>,
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    /// Slots first used while the accumulators are with the second thread, not yet reset.
    fresh: Vec<u32>,
    amended: Vec<u32>,
    out_windows: Vec<i64>,
    out_keys: Vec<u32>,
    out_revisions: Vec<u32>,
    last_early_ms: Option<i64>,
    batch_times: Vec<i64>,
    batch_seq: u64,
    metrics: Metrics,
    finished: bool,
}

impl WindowOperator {
    /// A new operator; the input schema is bound on the first batch.
    ///
    /// Panics when `config.window` is not [`Windowing::Aligned`]; [`crate::Operator::new`]
    /// picks the operator for any windowing.
    pub fn new(config: OperatorConfig) -> Self {
        let Windowing::Aligned(spec) = config.window else {
            panic!("WindowOperator needs aligned windows; use Operator::new for sessions");
        };
        let slicer = Slicer::for_spec(&spec, &config);
        let mut op = WindowOperator {
            spec,
            slicer,
            supported: spec.supported(),
            done_complete: spec.passed_upto(i64::MIN, 0),
            done_closed: spec.passed_upto(i64::MIN, config.lateness),
            late_before: i64::MIN,
            next_complete_at: i64::MIN,
            next_close_at: i64::MIN,
            watermark: Watermark::new(config.delay),
            config,
            bound: None,
            keys: None,
            accs: Vec::new(),
            panes: Vec::new(),
            free: Vec::new(),
            pane_index: HashMap::new(),
            last_pane: Vec::new(),
            windows: BTreeMap::new(),
            pair_rows: Vec::new(),
            pair_slots: Vec::new(),
            fresh: Vec::new(),
            amended: Vec::new(),
            out_windows: Vec::new(),
            out_keys: Vec::new(),
            out_revisions: Vec::new(),
            last_early_ms: None,
            batch_times: Vec::new(),
            batch_seq: 0,
            metrics: Metrics::default(),
            finished: false,
        };
        op.refresh_thresholds();
        op
    }

    fn refresh_thresholds(&mut self) {
        let spec = self.spec;
        self.late_before = spec.start(self.done_closed.saturating_add(1));
        self.next_complete_at = spec.end(self.done_complete.saturating_add(1));
        self.next_close_at = spec
            .end(self.done_closed.saturating_add(1))
            .saturating_add(self.config.lateness);
    }

    /// The configuration.
    pub fn config(&self) -> &OperatorConfig {
        &self.config
    }

    /// Validates a config before any data arrives.
    pub fn validate(config: &OperatorConfig) -> Result<()> {
        if config.delay < 0 {
            return Err(Error::Config(format!(
                "watermark delay must not be negative, got {}; use 0 for in-order streams",
                config.delay
            )));
        }
        if config.lateness < 0 {
            return Err(Error::Config(format!(
                "lateness must not be negative, got {}; use 0 to close windows as soon as \
                 the watermark passes their end",
                config.lateness
            )));
        }
        let mut names: Vec<&str> = config.by.iter().map(String::as_str).collect();
        if let Windowing::Sliding { .. } = config.window {
            names.push(&config.time_column);
        } else {
            names.extend(["window_start", "window_end"]);
        }
        match config.emit {
            EmitMode::Amend => names.push("revision"),
            EmitMode::Changelog => names.push("op"),
            EmitMode::Final => {}
        }
        if config.early_ms.is_some() && !config.emit.updates() {
            return Err(Error::Config(
                "early= emits speculative revisions, so it needs emit=\"amend\" or \
                 emit=\"changelog\""
                    .into(),
            ));
        }
        if config.revise != Revise::Row && !config.emit.updates() {
            return Err(Error::Config(
                "revise= says when changes to emitted windows are emitted, so it needs \
                 emit=\"amend\" or emit=\"changelog\" (final mode emits each window once)"
                    .into(),
            ));
        }
        if config.early_ms.is_some_and(|e| e <= 0) {
            return Err(Error::Config(
                "early= must be a positive duration, e.g. '10s'".into(),
            ));
        }
        for a in &config.aggs {
            if names.contains(&a.name.as_str()) {
                return Err(Error::Config(format!(
                    "output column '{}' appears twice; give one of the aggregates another \
                     name with .alias(...)",
                    a.name
                )));
            }
            names.push(&a.name);
        }
        Ok(())
    }

    fn bind(&mut self, schema: &SchemaRef) -> Result<()> {
        if let Some(b) = &self.bound {
            return b.check(schema);
        }
        let (bound, keys, accs) = bind_schema(&self.config, schema)?;
        self.bound = Some(bound);
        self.keys = Some(keys);
        self.accs = accs;
        Ok(())
    }

    /// The schema of emitted batches (known after the first batch).
    pub fn output_schema(&self) -> Option<SchemaRef> {
        self.bound.as_ref().map(|b| b.output_schema.clone())
    }

    /// Processes one batch of rows in arrival order.
    pub fn process(&mut self, batch: &RecordBatch) -> Result<BatchResult> {
        self.process_at(batch, None)
    }

    /// Processes one batch that arrived at wall-clock time `now_ms` (used by `early`).
    pub fn process_at(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        if self.finished {
            return Err(Error::Internal("process() after finish()".into()));
        }
        self.bind(&batch.schema())?;
        let bound = self.bound.as_ref().expect("bound");
        let n = batch.num_rows();
        let (times, key_ids, mut result) =
            read_batch(bound, self.keys.as_mut().expect("bound"), batch)?;
        let amend = self.config.emit.updates();
        self.batch_seq = self.metrics.rows_in;
        batch_times(&self.accs, &times, n, &mut self.batch_times);
        self.metrics.rows_in += n as u64;
        // Large batches of final-mode queries without key columns (whose accumulators are the
        // bulk of the work, in one slot per window) hand the accumulator updates to a second
        // thread, in row order, while this one assigns rows to panes; the updates are synced
        // before every moment, so what is emitted is the same either way. With key columns
        // the two threads are better spent encoding the keys and then updating accumulators
        // side by side, or the slots of one accumulator (as measured on the benchmark
        // workload); updating modes have a moment at each amended row, too often to hand over.
        let times_buf = std::mem::take(&mut self.batch_times);
        let seq = self.batch_seq;
        // Accumulators that tally a batch per value on the worker threads themselves are
        // better served by judging rows on two threads as well (see `assign_split`).
        let tallied = !self.accs.is_empty() && self.accs.iter().all(|a| a.tallies(batch));
        let outcome = if !amend && bound.key_indices.is_empty() && !tallied && Feeder::worth_it(n) {
            std::thread::scope(|scope| {
                let mut feed = Feeder::new(Some(scope), batch, &times_buf, seq);
                let assigned = self.assign_rows(&times, &key_ids, &mut result, &mut feed);
                let synced = self.feed(&mut feed, true);
                assigned.and(synced)
            })
        } else {
            let mut feed = Feeder::new(None, batch, &times_buf, seq);
            self.assign_rows(&times, &key_ids, &mut result, &mut feed)
                .and_then(|()| self.feed(&mut feed, true))
        };
        self.batch_times = times_buf;
        outcome?;
        if let Some(now) = now_ms {
            self.early(now);
        }
        result.output = self.take_output()?;
        self.refresh_gauges();
        Ok(result)
    }

    /// The per-row pass: judges each row late or not, assigns it to its panes and moves the
    /// watermark, emitting at each moment it reaches.
    fn assign_rows(
        &mut self,
        times: &Times<'_>,
        key_ids: &[u32],
        result: &mut BatchResult,
        feed: &mut Feeder<'_, '_>,
    ) -> Result<()> {
        if self.splits_rows(key_ids.len(), feed) {
            return self.assign_split(times, key_ids, result, feed);
        }
        let spec = self.spec;
        let amend = self.config.emit.updates();
        let gappy = spec.has_gaps();
        let mut windows = WindowCache::new(&spec);
        // Rows are judged one at a time; `i` indexes the batch and its times.
        for (i, &key) in key_ids.iter().enumerate() {
            let t = match times.value(i) {
                Ok(t) => t,
                Err(reason) => {
                    result.rejected_rows.push(i as u32);
                    result.reasons.push(reason);
                    self.metrics.rows_rejected += 1;
                    continue;
                }
            };
            if t < self.supported.0 || t > self.supported.1 {
                result.rejected_rows.push(i as u32);
                result
                    .reasons
                    .push(unsupported_time(t, self.supported, self.config.time_unit));
                self.metrics.rows_rejected += 1;
                continue;
            }
            if t < self.late_before
                && (!gappy || {
                    let (first, last) = spec.indices(t);
                    first <= last
                })
            {
                let wm = self.watermark.current();
                route_late(
                    &self.config,
                    &mut self.metrics,
                    result,
                    i,
                    t,
                    wm,
                    "is in windows that all closed",
                )?;
                continue;
            }
            self.metrics.rows_accepted += 1;
            let (first, last) = windows.indices(&spec, t);
            if let Some(sl) = self.slicer {
                let slot = self.pane(sl.slice_of(first, last), key);
                self.pair_rows.push(i as u32);
                self.pair_slots.push(slot);
            } else {
                for w in first.max(self.done_closed + 1)..=last {
                    let slot = self.pane(w, key);
                    self.pair_rows.push(i as u32);
                    self.pair_slots.push(slot);
                    let p = &mut self.panes[slot as usize];
                    p.dirty = true;
                    if amend && w <= self.done_complete && !p.queued {
                        p.queued = true;
                        self.amended.push(slot);
                    }
                }
            }
            let moved = self.watermark.observe(t);
            let wm = self.watermark.current();
            let revise_now = self.config.revise == Revise::Row && !self.amended.is_empty();
            let due = revise_now
                || (moved && (wm >= self.next_close_at || (amend && wm >= self.next_complete_at)));
            if due {
                self.feed(feed, true)?;
                self.moment(false);
            } else if self.pair_rows.len() >= CHUNK {
                // Hand a chunk over (or apply it here) rather than let the buffers grow
                // with the batch: updating modes may go long between moments.
                self.feed(feed, false)?;
            }
        }
        Ok(())
    }

    /// Whether a batch of `n` rows looks its panes up on two threads ([`Self::assign_split`]):
    /// large batches of final-mode queries whose rows each fall in exactly one pane (disjoint
    /// windows without gaps, or the slices of hopping and cumulative ones), when the
    /// accumulators stay on this thread.
    fn splits_rows(&self, n: usize, feed: &Feeder<'_, '_>) -> bool {
        let spec = self.spec;
        self.config.emit == EmitMode::Final
            && !feed.pipelined()
            && !spec.has_gaps()
            && (self.slicer.is_some() || spec.disjoint())
            && Feeder::worth_it(n)
    }

    /// The per-row pass of [`Self::assign_rows`] on two threads, with the same outcome row
    /// for row. The batch is taken a stretch at a time, each ending after the row that makes
    /// a moment due (the first whose time puts the watermark at the next window to close):
    ///
    /// 1. within a stretch no pane closes, so every row is judged against the same closed
    ///    windows; two threads each judge half the stretch (rejected, late or accepted) and
    ///    look up the accepted rows' panes, reading the pane index without changing it;
    /// 2. this thread merges their work in row order: a late row's watermark is the one left
    ///    by the accepted rows before it, rows whose pane does not exist yet get it here, in
    ///    the order the one-thread pass would create them; then the accumulators take the
    ///    stretch, the watermark moves to its largest time and the moment runs.
    fn assign_split(
        &mut self,
        times: &Times<'_>,
        key_ids: &[u32],
        result: &mut BatchResult,
        feed: &mut Feeder<'_, '_>,
    ) -> Result<()> {
        let n = key_ids.len();
        let delay = self.config.delay;
        let mut start = 0;
        while start < n {
            let next_close_at = self.next_close_at;
            let end = match times {
                Times::Values(v, nulls) => (start..n).find(|&i| {
                    v[i].saturating_sub(delay) >= next_close_at
                        && nulls.is_none_or(|b| b.is_valid(i))
                }),
                Times::Text(v) => (start..n).find(|&i| {
                    v[i].as_ref()
                        .is_ok_and(|&t| t.saturating_sub(delay) >= next_close_at)
                }),
            };
            let (end, due) = end.map_or((n, false), |i| (i + 1, true));
            let view = PaneView {
                spec: self.spec,
                supported: self.supported,
                unit: self.config.time_unit,
                slicer: self.slicer,
                late_before: self.late_before,
                index: &self.pane_index,
                last_pane: &self.last_pane,
                panes: &self.panes,
            };
            let parts = if end - start >= parallel::MIN_STRETCH {
                let mid = start + (end - start) / 2;
                let (lo, hi) = parallel::pool().join(
                    || view.judge(times, key_ids, start, mid),
                    || view.judge(times, key_ids, mid, end),
                );
                vec![lo, hi]
            } else {
                vec![view.judge(times, key_ids, start, end)]
            };
            let current = self.watermark.current();
            let mut before = i64::MIN;
            for part in parts {
                for (r, reason) in part.rejected {
                    result.rejected_rows.push(r);
                    result.reasons.push(reason);
                    self.metrics.rows_rejected += 1;
                }
                for (r, t, max) in part.late {
                    let wm = current.max(before.max(max).saturating_sub(delay));
                    let why = "is in windows that all closed";
                    route_late(
                        &self.config,
                        &mut self.metrics,
                        result,
                        r as usize,
                        t,
                        wm,
                        why,
                    )?;
                }
                if let Some(max) = part.max {
                    before = before.max(max);
                    self.watermark.observe(max);
                }
                let offset = self.pair_rows.len();
                self.metrics.rows_accepted += part.rows.len() as u64;
                self.pair_rows.extend_from_slice(&part.rows);
                self.pair_slots.extend_from_slice(&part.slots);
                for (j, w) in part.misses {
                    let r = part.rows[j as usize] as usize;
                    self.pair_slots[offset + j as usize] = self.pane(w, key_ids[r]);
                }
            }
            self.feed(feed, true)?;
            if due {
                self.moment(false);
            }
            start = end;
        }
        Ok(())
    }

    /// Hands the buffered pairs to the accumulators (see [`Feeder::push`]).
    fn feed(&mut self, feed: &mut Feeder<'_, '_>, sync: bool) -> Result<()> {
        feed.push(
            &mut self.accs,
            &mut self.pair_rows,
            &mut self.pair_slots,
            &mut self.fresh,
            sync,
        )
    }

    /// A heartbeat with no rows: emits early revisions that are due at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Result<RecordBatch> {
        if self.bound.is_none() {
            return Err(Error::Internal("tick() before any batch".into()));
        }
        self.early(now_ms);
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// Moves the watermark to at least `instant` (an idle source's wall clock), emitting
    /// whatever that completes or closes.
    pub fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        if self.bound.is_none() {
            return Err(Error::Internal(
                "advance_watermark() before any batch".into(),
            ));
        }
        if self.watermark.advance_to(instant) {
            self.moment(false);
        }
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// Emits the changed, not yet complete panes when the early interval has passed.
    fn early(&mut self, now_ms: i64) {
        let Some(every) = self.config.early_ms else {
            return;
        };
        let due = self.last_early_ms.is_none_or(|last| now_ms - last >= every);
        if !due {
            return;
        }
        self.last_early_ms = Some(now_ms);
        let lo = self.done_complete.saturating_add(1);
        let mut emit: Vec<u32> = Vec::new();
        for (_, slots) in self.windows.range(lo..) {
            emit.extend(
                slots
                    .iter()
                    .copied()
                    .filter(|&s| self.panes[s as usize].dirty),
            );
        }
        self.emit_panes(emit);
    }

    /// End of input: the watermark jumps to +infinity and every open window is emitted.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        self.finished = true;
        if self.bound.is_none() {
            return Err(Error::Internal("finish() before any batch".into()));
        }
        self.moment(true);
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The type of the window bound columns (known after the first batch).
    pub fn window_type(&self) -> Option<DataType> {
        self.bound.as_ref().map(|b| b.window_type.clone())
    }

    fn pane(&mut self, w: i64, key: u32) -> u32 {
        let k = key as usize;
        if let Some(&(cw, cs)) = self.last_pane.get(k) {
            let p = &self.panes[cs as usize];
            if cw == w && p.live && p.window == w && p.key == key {
                return cs;
            }
        }
        let slot = match self.pane_index.get(&(w, key)) {
            Some(&s) => s,
            None => {
                let s = match self.free.pop() {
                    Some(s) => s,
                    None => {
                        self.panes.push(Pane::new(0, 0, false));
                        (self.panes.len() - 1) as u32
                    }
                };
                self.panes[s as usize] = Pane::new(w, key, true);
                if self.accs.is_empty() {
                    // The accumulators are with the second thread (see `Feeder`).
                    self.fresh.push(s);
                } else {
                    for acc in &mut self.accs {
                        acc.reset(s);
                    }
                }
                self.pane_index.insert((w, key), s);
                self.windows.entry(w).or_default().push(s);
                s
            }
        };
        if k >= self.last_pane.len() {
            self.last_pane.resize(k + 1, (i64::MIN, 0));
        }
        self.last_pane[k] = (w, slot);
        slot
    }

    /// Emits what is due after the watermark moved (or at end of input), then frees closed panes.
    fn moment(&mut self, end_of_input: bool) {
        let spec = self.spec;
        let amend = self.config.emit.updates();
        let wm = self.watermark.current();
        let mut emit: Vec<u32> = Vec::new();
        if amend {
            // Each pane is listed once (see `Pane::queued`).
            emit.append(&mut self.amended);
        }
        let complete = if end_of_input {
            i64::MAX
        } else {
            spec.passed_upto(wm, 0)
        };
        if complete > self.done_complete {
            if amend {
                for (_, slots) in self
                    .windows
                    .range(self.done_complete.saturating_add(1)..=complete)
                {
                    // With early firing a pane may already show its current value.
                    emit.extend(slots.iter().copied().filter(|&s| {
                        let p = &self.panes[s as usize];
                        p.dirty || !p.emitted
                    }));
                }
            }
            self.done_complete = complete;
        }
        let closed = if end_of_input {
            i64::MAX
        } else {
            spec.passed_upto(wm, self.config.lateness)
        };
        let mut freed: Vec<u32> = Vec::new();
        if let Some(sl) = self.slicer {
            if closed > self.done_closed {
                self.emit_sliced(sl, self.done_closed, closed);
                while let Some((&slice, _)) = self.windows.first_key_value() {
                    if sl.windows_of(slice).1 > closed {
                        break;
                    }
                    let (_, slots) = self.windows.pop_first().expect("present");
                    freed.extend(slots);
                }
                self.done_closed = closed;
            }
        } else if closed > self.done_closed {
            let rest = if closed == i64::MAX {
                BTreeMap::new()
            } else {
                self.windows.split_off(&(closed + 1))
            };
            let closing = std::mem::replace(&mut self.windows, rest);
            for (_, slots) in closing {
                if !amend {
                    emit.extend_from_slice(&slots);
                }
                freed.extend(slots);
            }
            self.done_closed = closed;
        }
        self.emit_panes(emit);
        for s in freed {
            let p = &mut self.panes[s as usize];
            p.live = false;
            let shadow = std::mem::replace(&mut p.shadow, NO_SLOT);
            self.pane_index.remove(&(p.window, p.key));
            self.free.push(s);
            if shadow != NO_SLOT {
                self.free.push(shadow);
            }
        }
        self.refresh_thresholds();
    }

    /// Emits the windows in `(after, upto]` that hold data, each the merge of its slices.
    fn emit_sliced(&mut self, sl: Slicer, after: i64, upto: i64) {
        let last_slice = sl.slices(upto).1;
        let mut wins: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        for (&slice, _) in self.windows.range(..=last_slice) {
            let (lo, hi) = sl.windows_of(slice);
            let mut w = lo.max(after.saturating_add(1));
            while w <= hi.min(upto) {
                wins.insert(w);
                w += 1;
            }
        }
        let mut entries: Vec<(i64, u32, u32)> = Vec::new();
        // (key, slice order, slot): by key, each key's slices in time order, as a window's rows
        // would come; float sums do not depend on the order (see `CompensatedSum`).
        let mut by_key: Vec<(u32, u32, u32)> = Vec::new();
        for w in wins {
            let (lo, hi) = sl.slices(w);
            by_key.clear();
            for (_, slots) in self.windows.range(lo..=hi) {
                let seq = by_key.len() as u32;
                by_key.extend(slots.iter().map(|&s| (self.panes[s as usize].key, seq, s)));
            }
            by_key.sort_unstable();
            let mut i = 0;
            while i < by_key.len() {
                let key = by_key[i].0;
                let temp = self.temp_slot();
                while i < by_key.len() && by_key[i].0 == key {
                    for acc in &mut self.accs {
                        acc.merge(temp, by_key[i].2);
                    }
                    i += 1;
                }
                entries.push((w, key, temp));
            }
        }
        if entries.is_empty() {
            return;
        }
        let keys = self.keys.as_ref().expect("bound");
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| keys.compare(a.1, b.1)));
        let temps: Vec<u32> = entries.iter().map(|e| e.2).collect();
        for acc in &mut self.accs {
            acc.snapshot(&temps);
        }
        for (w, key, temp) in entries {
            self.out_windows.push(w);
            self.out_keys.push(key);
            self.out_revisions.push(0);
            self.free.push(temp);
        }
        self.metrics.rows_emitted += temps.len() as u64;
    }

    fn temp_slot(&mut self) -> u32 {
        let s = match self.free.pop() {
            Some(s) => s,
            None => {
                self.panes.push(Pane::new(0, 0, false));
                (self.panes.len() - 1) as u32
            }
        };
        for acc in &mut self.accs {
            acc.reset(s);
        }
        s
    }

    /// Appends rows for these panes to the pending output, ordered by window end, window
    /// start and key, with revisions (amend) or row kinds (changelog).
    fn emit_panes(&mut self, mut emit: Vec<u32>) {
        if emit.is_empty() {
            return;
        }
        let keys = self.keys.as_ref().expect("bound");
        let panes = &self.panes;
        emit.sort_unstable_by(|&a, &b| {
            let (pa, pb) = (&panes[a as usize], &panes[b as usize]);
            pa.window
                .cmp(&pb.window)
                .then_with(|| keys.compare(pa.key, pb.key))
        });
        let mode = self.config.emit;
        let mut values: Vec<u32> = Vec::with_capacity(emit.len());
        let mut copies: Vec<u32> = Vec::new();
        for &s in &emit {
            let p = self.panes[s as usize];
            let mut push = |op: &mut Self, values_from: u32, tag: u32| {
                values.push(values_from);
                op.out_windows.push(p.window);
                op.out_keys.push(p.key);
                op.out_revisions.push(tag);
            };
            match mode {
                EmitMode::Final => push(self, s, 0),
                EmitMode::Amend => {
                    let rev = if p.emitted { p.revision + 1 } else { 0 };
                    self.panes[s as usize].revision = rev;
                    push(self, s, rev);
                }
                EmitMode::Changelog => {
                    if p.emitted {
                        push(self, p.shadow, UPDATE_BEFORE);
                        push(self, s, UPDATE_AFTER);
                    } else {
                        push(self, s, INSERT);
                    }
                    copies.push(s);
                }
            }
            let p = &mut self.panes[s as usize];
            p.emitted = true;
            p.dirty = false;
            p.queued = false;
        }
        for acc in &mut self.accs {
            acc.snapshot(&values);
        }
        // Changelog: remember what was emitted, for the next -U.
        for s in copies {
            let shadow = match self.panes[s as usize].shadow {
                NO_SLOT => {
                    let sh = match self.free.pop() {
                        Some(sh) => sh,
                        None => {
                            self.panes.push(Pane::new(0, 0, false));
                            (self.panes.len() - 1) as u32
                        }
                    };
                    self.panes[s as usize].shadow = sh;
                    sh
                }
                sh => sh,
            };
            for acc in &mut self.accs {
                acc.copy(shadow, s);
            }
        }
        self.metrics.rows_emitted += values.len() as u64;
    }

    fn take_output(&mut self) -> Result<RecordBatch> {
        let bound = self.bound.as_ref().expect("bound");
        let spec = self.spec;
        let mut columns: Vec<ArrayRef> = self
            .keys
            .as_ref()
            .expect("bound")
            .to_arrays(&self.out_keys)?;
        let starts = Int64Array::from_iter_values(self.out_windows.iter().map(|&w| spec.start(w)));
        let ends = Int64Array::from_iter_values(self.out_windows.iter().map(|&w| spec.end(w)));
        columns.push(as_window_type(starts, &bound.window_type)?);
        columns.push(as_window_type(ends, &bound.window_type)?);
        push_tags(
            &mut columns,
            self.config.emit,
            std::mem::take(&mut self.out_revisions),
        );
        for acc in &mut self.accs {
            columns.push(acc.finish());
        }
        self.out_windows.clear();
        self.out_keys.clear();
        self.out_revisions.clear();
        Ok(RecordBatch::try_new(bound.output_schema.clone(), columns)?)
    }

    fn refresh_gauges(&mut self) {
        let m = &mut self.metrics;
        m.watermark = self.watermark.max_seen().map(|_| self.watermark.current());
        m.max_event_time = self.watermark.max_seen();
        m.open_windows = self.windows.len() as u64;
        m.open_panes = self.pane_index.len() as u64;
        if let Some(sl) = self.slicer {
            // State is kept per slice; report open windows and (window, key) panes.
            let mut panes: hashbrown::HashSet<(i64, u32)> = hashbrown::HashSet::new();
            let mut windows: hashbrown::HashSet<i64> = hashbrown::HashSet::new();
            for (&slice, slots) in &self.windows {
                let (lo, hi) = sl.windows_of(slice);
                for w in lo.max(self.done_closed.saturating_add(1))..=hi {
                    windows.insert(w);
                    panes.extend(slots.iter().map(|&s| (w, self.panes[s as usize].key)));
                }
            }
            m.open_windows = windows.len() as u64;
            m.open_panes = panes.len() as u64;
        }
        let keys = self.keys.as_ref();
        m.keys = keys.map_or(0, |k| k.len() as u64);
        let accs: usize = self.accs.iter().map(|a| a.size()).sum();
        let index = self.pane_index.capacity() * (std::mem::size_of::<((i64, u32), u32)>() + 1);
        let panes = self.panes.capacity() * std::mem::size_of::<Pane>();
        // Revisions waiting for the next moment.
        let queued = self.amended.capacity() * std::mem::size_of::<u32>();
        m.state_bytes = (accs + index + panes + queued + keys.map_or(0, |k| k.size())) as u64;
    }
}

impl BatchResult {
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
    if let Windowing::Sliding { .. } = c.window {
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

/// Renders an instant for messages (RFC 3339 in UTC; years past 9999 get a sign, as
/// `+10000-01-01T00:00:00+00:00`), for any instant of any unit.
pub fn fmt_instant(t: i64, unit: TimeUnit) -> String {
    let per_second: i64 = match unit {
        TimeUnit::Integer => return t.to_string(),
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let secs = t.div_euclid(per_second);
    let nanos = t.rem_euclid(per_second) * (1_000_000_000 / per_second);
    match u32::try_from(nanos)
        .ok()
        .and_then(|n| chrono::DateTime::from_timestamp(secs, n))
    {
        Some(d) => d.to_rfc3339(),
        // Beyond the calendar's years (-262143 to 262142): the count itself.
        None => format!("{t} {} since 1970", unit.name()),
    }
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

/// Renders a span of time for messages, e.g. `2m5s` or `1.5s`.
pub fn fmt_span(span: i64, unit: TimeUnit) -> String {
    let per_second: i64 = match unit {
        TimeUnit::Integer => return span.to_string(),
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let (secs, frac) = (span.div_euclid(per_second), span.rem_euclid(per_second));
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac > 0 {
        let digits = format!("{:0width$}", frac, width = per_second.ilog10() as usize);
        out.push_str(&format!("{s}.{}s", digits.trim_end_matches('0')));
    } else if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

pub(crate) enum Times<'a> {
    /// An integer or timestamp column's values (any unit) and validity, read in place.
    Values(&'a [i64], Option<&'a arrow_buffer::NullBuffer>),
    Text(Vec<std::result::Result<i64, String>>),
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
            Times::Text(v) => v[i].clone(),
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
            Times::Text(match col.data_type() {
                DataType::Utf8 => col.as_string::<i32>().iter().map(parse).collect(),
                DataType::LargeUtf8 => col.as_string::<i64>().iter().map(parse).collect(),
                DataType::Utf8View => col.as_string_view().iter().map(parse).collect(),
                other => return Err(Error::Internal(format!("text time of type {other}"))),
            })
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

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn spans_read_like_durations() {
        assert_eq!(fmt_span(8_000_000, TimeUnit::Microsecond), "8s");
        assert_eq!(fmt_span(125_500, TimeUnit::Millisecond), "2m5.5s");
        assert_eq!(
            fmt_span(3_600_000_000_001, TimeUnit::Nanosecond),
            "1h0.000000001s"
        );
        assert_eq!(fmt_span(0, TimeUnit::Second), "0s");
        assert_eq!(fmt_span(42, TimeUnit::Integer), "42");
    }

    /// A batch of rows with integer times `t`.
    pub(crate) fn times(t: &[i64]) -> RecordBatch {
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "t",
            DataType::Int64,
            false,
        )]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(t.to_vec()))]).unwrap()
    }

    /// A count per window of integer time `t`, emitted as amend with revise="watermark".
    pub(crate) fn amend_watermark(window: Windowing) -> OperatorConfig {
        OperatorConfig {
            time_column: "t".into(),
            time_unit: TimeUnit::Integer,
            by: vec![],
            window,
            delay: 0,
            lateness: 1_000_000,
            emit: EmitMode::Amend,
            revise: Revise::Watermark,
            late: LateMode::Collect,
            early_ms: None,
            aggs: vec![AggSpec {
                kind: aggregate::AggKind::Count,
                column: None,
                filter: None,
                name: "count".into(),
                options: Default::default(),
            }],
        }
    }

    #[test]
    fn revise_watermark_buffers_stay_bounded_within_a_large_batch_of_late_rows() {
        // hopping(50, 1): each late row updates 50 windows; with the watermark standing still
        // there is no moment in the batch, and the row/pane pairs must not pile up until its end.
        let spec = WindowSpec::hopping(50, 1, 0).unwrap();
        let mut op = WindowOperator::new(amend_watermark(spec.into()));
        op.process(&times(&(0..1000).collect::<Vec<_>>())).unwrap();
        op.process(&times(&vec![500; 20_000])).unwrap();
        let held = op.pair_rows.capacity().max(op.pair_slots.capacity());
        assert!(held <= 2 * CHUNK, "{held} pairs buffered");
        assert!(op.amended.len() <= 50, "{} panes queued", op.amended.len());
    }
}
