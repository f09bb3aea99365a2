//! The operator contract ([`Operator`]) and the lifecycle every kernel shares, written once
//! in `impl<K: Kernel> Operator for K`: binding the schema on the first batch, what happens
//! before it, the finished flag, refreshing metrics, and checkpoints (a header with the
//! format version, the kind and the configuration, then the core and the kernel's state).

use super::batch::{
    self, as_window_type, batch_times, bind_schema, push_tags, read_batch, Bound, Times,
};
use super::config::{BatchResult, Metrics, OperatorConfig};
use crate::aggregate::GroupsAccumulator;
use crate::codec::{self, Blob};
use crate::error::{Error, Result};
use crate::keys::KeyInterner;
use crate::window::Watermark;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An output column whose smallest future value [`Operator::emitted_floor`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorColumn {
    /// `window_start` (aligned windows and sessions).
    WindowStart,
    /// `window_end` (aligned windows and sessions).
    WindowEnd,
    /// A sliding operator's own time column (one output row per input row).
    RowTime,
}

/// The contract every operator of a query keeps, whatever its windows.
///
/// Rows go in arrival order through [`Operator::process`]; results come out of every call
/// (a batch of output rows, possibly empty). Before the first batch the output schema is
/// unknown: [`Operator::tick`], [`Operator::advance_watermark`] and [`Operator::flush`] then
/// return an empty batch without columns (and `advance_watermark` still moves the
/// watermark, so rows that arrive later below it are late).
///
/// State: [`Operator::snapshot`] writes the durable state (never per-batch scratch) with a
/// header (format version, operator kind, configuration); [`Operator::restore`] reads it
/// into an operator built from the same configuration. Mergeable operators (aligned windows
/// in final mode) also take another instance's [`Operator::partial`] state with
/// [`Operator::merge`], as DataFusion's accumulators take `state` through `merge_batch`.
pub trait Operator: Send + Sync {
    /// Processes one batch that arrived at wall-clock `now_ms` (used by early firing): the
    /// rows emitted, the late rows and the rejected rows.
    fn process(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult>;
    /// Moves the watermark to at least `instant` (an idle source's wall clock, or the floor
    /// of an upstream query), emitting what that completes or closes.
    fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch>;
    /// A heartbeat without rows: emits the early revisions due at `now_ms`.
    fn tick(&mut self, now_ms: i64) -> Result<RecordBatch>;
    /// End of input: the watermark jumps to +infinity and everything open is emitted.
    fn flush(&mut self) -> Result<RecordBatch>;
    /// Counters and gauges.
    fn metrics(&self) -> Metrics;
    /// The schema of emitted batches, once the first batch arrived.
    fn output_schema(&self) -> Option<SchemaRef>;
    /// The kind of operator: `"window"`, `"session"` or `"sliding"`.
    fn kind(&self) -> &'static str;
    /// The durable state, versioned: restore it with [`Operator::restore`].
    fn snapshot(&self) -> Result<Vec<u8>>;
    /// Replaces this operator's state with a snapshot taken of an operator of the same kind
    /// and configuration (an [`Error::Config`] names what differs otherwise).
    fn restore(&mut self, bytes: &[u8]) -> Result<()>;
    /// The state to merge into another instance of the same query (over another part of
    /// the input); an error for operators that cannot merge.
    fn partial(&self) -> Result<Vec<u8>> {
        Err(not_mergeable(self.kind()))
    }
    /// Merges another instance's [`Operator::partial`] state into this one.
    fn merge(&mut self, _partial: &[u8]) -> Result<()> {
        Err(not_mergeable(self.kind()))
    }
    /// The smallest value of `column` that any row this operator emits from now on can carry
    /// (`i64::MAX` once nothing more will be emitted); None before the first batch, for a
    /// column the operator does not emit, or when no bound is known. A query reading this
    /// operator's output can take it as its watermark.
    fn emitted_floor(&self, column: FloorColumn) -> Option<i64>;
}

pub(crate) fn not_mergeable(kind: &str) -> Error {
    Error::Config(format!(
        "the {kind} operator's state is not mergeable: its windows depend on the order of \
         each key's rows, so run one operator per key range (repartition the input by key) \
         instead of merging partial states"
    ))
}

/// What every kernel keeps besides its own state: the configuration, what the first batch
/// bound, the accumulators, the watermark and the counters.
pub(crate) struct Core {
    pub(crate) config: OperatorConfig,
    pub(crate) bound: Option<Bound>,
    pub(crate) keys: Option<KeyInterner>,
    pub(crate) accs: Vec<Box<dyn GroupsAccumulator>>,
    pub(crate) watermark: Watermark,
    pub(crate) metrics: Metrics,
    pub(crate) finished: bool,
    pub(crate) last_early_ms: Option<i64>,
    /// Scratch of the batch being processed: its event times (when an accumulator reads
    /// them) and the arrival number of its first row.
    pub(crate) batch_times: Vec<i64>,
    pub(crate) batch_seq: u64,
}

impl Core {
    pub(crate) fn new(config: OperatorConfig) -> Core {
        Core {
            watermark: Watermark::new(config.delay),
            config,
            bound: None,
            keys: None,
            accs: Vec::new(),
            metrics: Metrics::default(),
            finished: false,
            last_early_ms: None,
            batch_times: Vec::new(),
            batch_seq: 0,
        }
    }

    /// Binds the first batch's schema; checks later ones against it.
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

    /// The key interner (bound with the first batch).
    pub(crate) fn keys(&self) -> &KeyInterner {
        self.keys.as_ref().expect("bound before any key id exists")
    }

    /// An output batch: the key columns of `keys`, then `times` (window bounds or row times)
    /// in the time column's type, the tags of updating modes, the aggregates.
    pub(crate) fn output_batch(
        &mut self,
        keys: &[u32],
        times: Vec<Int64Array>,
        tags: Vec<u32>,
    ) -> Result<RecordBatch> {
        let mut columns = self.keys().to_arrays(keys)?;
        let bound = self.bound.as_ref().expect("bound before any output");
        for t in times {
            columns.push(as_window_type(t, &bound.window_type)?);
        }
        push_tags(&mut columns, self.config.emit, tags);
        for acc in &mut self.accs {
            columns.push(acc.finish());
        }
        Ok(RecordBatch::try_new(bound.output_schema.clone(), columns)?)
    }

    /// True when the early interval has passed at `now_ms` (and restarts it).
    pub(crate) fn early_due(&mut self, now_ms: i64) -> bool {
        let Some(every) = self.config.early_ms else {
            return false;
        };
        if self.last_early_ms.is_some_and(|last| now_ms - last < every) {
            return false;
        }
        self.last_early_ms = Some(now_ms);
        true
    }

    /// The states of these accumulator slots, one blob per accumulator.
    pub(crate) fn save_slots(&self, slots: &[u32]) -> Result<Vec<Blob>> {
        self.accs.iter().map(|a| a.save(slots).map(Blob)).collect()
    }

    /// Loads blobs written by [`Core::save_slots`] into these slots.
    pub(crate) fn load_slots(&mut self, slots: &[u32], blobs: &[Blob]) -> Result<()> {
        if blobs.len() != self.accs.len() {
            return Err(Error::Config(format!(
                "the snapshot holds {} aggregates, this query has {}",
                blobs.len(),
                self.accs.len()
            )));
        }
        for (acc, blob) in self.accs.iter_mut().zip(blobs) {
            acc.load(slots, &blob.0)?;
        }
        Ok(())
    }
}

/// The accessors of a kernel's [`Core`], held in its field `core`.
macro_rules! core_field {
    () => {
        fn core(&self) -> &Core {
            &self.core
        }

        fn core_mut(&mut self) -> &mut Core {
            &mut self.core
        }
    };
}
pub(crate) use core_field;

/// What is particular to one kind of operator. The lifecycle around it is written once, in
/// `impl<K: Kernel> Operator for K`.
pub(crate) trait Kernel: Send + Sync + 'static {
    /// The operator kind, as checkpoints name it.
    const KIND: &'static str;
    /// The output columns [`Operator::emitted_floor`] can bound.
    const COLUMNS: &'static [FloorColumn];
    /// The durable state, as a checkpoint stores it.
    type State: Serialize + DeserializeOwned;
    /// A new operator of this kind (as `new`), for restoring a checkpoint into.
    fn fresh(config: OperatorConfig) -> Result<Self>
    where
        Self: Sized;
    /// The shared part.
    fn core(&self) -> &Core;
    /// The shared part.
    fn core_mut(&mut self) -> &mut Core;
    /// The per-row pass over a batch whose schema is bound: judges, places and aggregates
    /// the rows, emitting at each moment the watermark reaches.
    fn run(
        &mut self,
        batch: &RecordBatch,
        times: &Times<'_>,
        key_ids: &[u32],
        result: &mut BatchResult,
    ) -> Result<()>;
    /// Early firing at wall-clock `now_ms`, when the query asks for it.
    fn early(&mut self, _now_ms: i64) {}
    /// Emits what the watermark completed or closed (everything at end of input).
    fn moment(&mut self, end_of_input: bool);
    /// Takes the rows emitted since the last call (the schema is bound), through
    /// [`Core::output_batch`].
    fn take_output(&mut self) -> Result<RecordBatch>;
    /// The kernel's gauges: open windows, open panes, and the bytes its own state holds
    /// (the accumulators and keys aside).
    fn gauges(&self) -> (u64, u64, usize);
    /// See [`Operator::emitted_floor`] (called once the schema is bound).
    fn floor(&self, column: FloorColumn) -> Option<i64>;
    /// The durable state (the accumulators' slots included).
    fn save(&self) -> Result<Self::State>;
    /// Replaces the state with a saved one (the schema is bound, the accumulators built).
    fn load(&mut self, state: Self::State) -> Result<()>;
    /// Merges another instance's state (same configuration) into this one.
    fn merge_state(&mut self, _other: Self::State, _other_core: &CoreState) -> Result<()> {
        Err(not_mergeable(Self::KIND))
    }
    /// Whether [`Kernel::merge_state`] is supported for this configuration (the error
    /// says why not).
    fn mergeable(&self) -> Result<()> {
        Err(not_mergeable(Self::KIND))
    }
}

impl<K: Kernel> Operator for K {
    fn process(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        let core = self.core_mut();
        if core.finished {
            return Err(Error::Internal("process() after flush()".into()));
        }
        core.bind(&batch.schema())?;
        let n = batch.num_rows();
        let bound = core.bound.as_ref().expect("bound above");
        let keys = core.keys.as_mut().expect("bound above");
        let (times, key_ids, mut result) = read_batch(bound, keys, batch)?;
        core.batch_seq = core.metrics.rows_in;
        batch_times(&core.accs, &times, n, &mut core.batch_times);
        core.metrics.rows_in += n as u64;
        self.run(batch, &times, &key_ids, &mut result)?;
        if let Some(now) = now_ms {
            self.early(now);
        }
        result.output = self.take_output()?;
        self.refresh_gauges();
        Ok(result)
    }

    fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        if self.core_mut().watermark.advance_to(instant) {
            self.moment(false);
        }
        self.output()
    }

    fn tick(&mut self, now_ms: i64) -> Result<RecordBatch> {
        if self.core().bound.is_some() {
            self.early(now_ms);
        }
        self.output()
    }

    fn flush(&mut self) -> Result<RecordBatch> {
        self.core_mut().finished = true;
        self.moment(true);
        self.output()
    }

    fn metrics(&self) -> Metrics {
        self.core().metrics.clone()
    }

    fn output_schema(&self) -> Option<SchemaRef> {
        self.core().bound.as_ref().map(|b| b.output_schema.clone())
    }

    fn kind(&self) -> &'static str {
        K::KIND
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut out = codec::encode(&Header::of(K::KIND, &self.core().config))?;
        let core = CoreState::save(self.core())?;
        let state = match self.core().bound {
            Some(_) => Some(self.save()?),
            None => None,
        };
        out.extend(codec::encode(&(core, state))?);
        Ok(out)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<()> {
        let (core, state) = read_snapshot::<K>(bytes, &self.core().config, "snapshot")?;
        // Into a fresh operator, which replaces this one only once all of it is read.
        let mut fresh = K::fresh(self.core().config.clone())?;
        core.load(fresh.core_mut())?;
        if let Some(state) = state {
            fresh.load(state)?;
        }
        fresh.refresh_gauges();
        *self = fresh;
        Ok(())
    }

    fn partial(&self) -> Result<Vec<u8>> {
        self.mergeable()?;
        self.snapshot()
    }

    fn merge(&mut self, partial: &[u8]) -> Result<()> {
        self.mergeable()?;
        let (other, state) = read_snapshot::<K>(partial, &self.core().config, "partial state")?;
        let Some(state) = state else {
            return Ok(()); // the other instance saw no batch
        };
        if self.core().bound.is_none() {
            let schema = other.schema()?.ok_or_else(|| {
                Error::Internal("a partial state with accumulators but no schema".into())
            })?;
            self.core_mut().bind(&schema)?;
        } else if let Some(schema) = other.schema()? {
            self.core().bound.as_ref().expect("bound").check(&schema)?;
        }
        if self.core().finished || other.finished {
            return Err(Error::Config(
                "cannot merge partial states after flush(): merge them before the end of \
                 input, then flush the merged operator"
                    .into(),
            ));
        }
        self.merge_state(state, &other)?;
        let core = self.core_mut();
        let (m, o) = (&mut core.metrics, &other.metrics);
        m.rows_in += o.rows_in;
        m.rows_accepted += o.rows_accepted;
        m.rows_late += o.rows_late;
        m.rows_rejected += o.rows_rejected;
        m.rows_emitted += o.rows_emitted;
        self.refresh_gauges();
        Ok(())
    }

    fn emitted_floor(&self, column: FloorColumn) -> Option<i64> {
        let core = self.core();
        if !K::COLUMNS.contains(&column) {
            return None;
        }
        if core.finished {
            return Some(i64::MAX);
        }
        core.bound.as_ref()?;
        self.floor(column)
    }
}

/// The rows emitted since the last call, and fresh gauges (an empty batch without columns
/// before the first batch bound the schema).
trait Output {
    fn output(&mut self) -> Result<RecordBatch>;
    /// Refreshes every gauge of [`Metrics`].
    fn refresh_gauges(&mut self);
}

impl<K: Kernel> Output for K {
    fn output(&mut self) -> Result<RecordBatch> {
        if self.core().bound.is_none() {
            self.refresh_gauges();
            return batch::no_columns();
        }
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    fn refresh_gauges(&mut self) {
        let (open_windows, open_panes, bytes) = self.gauges();
        let core = self.core_mut();
        let (wm, keys) = (core.watermark, core.keys.as_ref());
        let shared =
            core.accs.iter().map(|a| a.size()).sum::<usize>() + keys.map_or(0, |k| k.size());
        let m = &mut core.metrics;
        m.watermark = wm.max_seen().map(|_| wm.current());
        m.max_event_time = wm.max_seen();
        m.keys = keys.map_or(0, |k| k.len() as u64);
        m.open_windows = open_windows;
        m.open_panes = open_panes;
        m.state_bytes = (shared + bytes) as u64;
    }
}

/// The version of the checkpoint format; bumped when a kernel's state changes shape.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// The first item of a checkpoint: enough to refuse one that does not fit.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    magic: String,
    format: u32,
    kind: String,
    /// The configuration, field by field, as the operator that wrote it had it.
    config: Vec<(String, String)>,
}

impl Header {
    pub(crate) fn of(kind: &str, config: &OperatorConfig) -> Header {
        Header {
            magic: "rillet-operator".into(),
            format: SNAPSHOT_FORMAT,
            kind: kind.into(),
            config: describe(config),
        }
    }

    /// Fails, naming the difference, when this header does not fit `kind` and `config`.
    pub(crate) fn check(&self, kind: &str, config: &OperatorConfig, what: &str) -> Result<()> {
        if self.magic != "rillet-operator" {
            return Err(Error::Config(format!(
                "these bytes are not an operator {what} (they start with {:?})",
                self.magic
            )));
        }
        if self.format != SNAPSHOT_FORMAT {
            return Err(Error::Config(format!(
                "the {what} has format version {}, this engine reads version {SNAPSHOT_FORMAT}; \
                 restore it with the version of rillet that wrote it",
                self.format
            )));
        }
        if self.kind != kind {
            return Err(Error::Config(format!(
                "the {what} is of a {} operator, not a {kind} operator; restore it into an \
                 operator built from the same query",
                self.kind
            )));
        }
        let mine = describe(config);
        let differences: Vec<String> = mine
            .iter()
            .zip(&self.config)
            .filter(|(a, b)| a != b)
            .map(|((name, now), (_, then))| format!("{name} was {then}, is {now}"))
            .collect();
        if !differences.is_empty() || mine.len() != self.config.len() {
            return Err(Error::Config(format!(
                "the {what} was taken with another configuration ({}); restore it into an \
                 operator built from the same query",
                differences.join("; ")
            )));
        }
        Ok(())
    }
}

/// The configuration, field by field (a checkpoint's fingerprint of it).
fn describe(c: &OperatorConfig) -> Vec<(String, String)> {
    let f = |name: &str, value: String| (name.to_string(), value);
    vec![
        f("time_column", format!("{:?}", c.time_column)),
        f("time_unit", format!("{:?}", c.time_unit)),
        f("by", format!("{:?}", c.by)),
        f("window", format!("{:?}", c.window)),
        f("delay", c.delay.to_string()),
        f("lateness", c.lateness.to_string()),
        f("emit", format!("{:?}", c.emit)),
        f("revise", format!("{:?}", c.revise)),
        f("late", format!("{:?}", c.late)),
        f("early_ms", format!("{:?}", c.early_ms)),
        f("aggs", format!("{:?}", c.aggs)),
    ]
}

fn read_snapshot<K: Kernel>(
    bytes: &[u8],
    config: &OperatorConfig,
    what: &str,
) -> Result<(CoreState, Option<K::State>)> {
    let (header, rest): (Header, _) = codec::decode_prefix(bytes, what)?;
    header.check(K::KIND, config, what)?;
    codec::decode(rest, what)
}

/// The durable part of [`Core`]: the input schema and the keys seen (as Arrow IPC), the
/// watermark, the counters and the early-firing clock.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CoreState {
    schema: Option<Blob>,
    keys: Option<Blob>,
    watermark: Watermark,
    pub(crate) metrics: Metrics,
    finished: bool,
    last_early_ms: Option<i64>,
}

impl CoreState {
    fn save(core: &Core) -> Result<CoreState> {
        let (schema, keys) = match (&core.bound, &core.keys) {
            (Some(b), Some(k)) => {
                let schema = batch::ipc(&RecordBatch::new_empty(b.schema.clone()))?;
                let ids: Vec<u32> = (0..k.len() as u32).collect();
                let columns = k.to_arrays(&ids)?;
                let keys = match columns.is_empty() {
                    true => None,
                    false => Some(batch::ipc(&batch::key_batch(b, columns)?)?),
                };
                (Some(Blob(schema)), keys.map(Blob))
            }
            _ => (None, None),
        };
        Ok(CoreState {
            schema,
            keys,
            watermark: core.watermark,
            metrics: core.metrics.clone(),
            finished: core.finished,
            last_early_ms: core.last_early_ms,
        })
    }

    /// The watermark the state was taken at.
    pub(crate) fn watermark(&self) -> Watermark {
        self.watermark
    }

    /// The input schema the state was bound to.
    pub(crate) fn schema(&self) -> Result<Option<SchemaRef>> {
        self.schema
            .as_ref()
            .map(|b| Ok(batch::from_ipc(&b.0)?.schema()))
            .transpose()
    }

    /// The keys in id order.
    pub(crate) fn key_columns(&self) -> Result<Option<RecordBatch>> {
        self.keys
            .as_ref()
            .map(|b| batch::from_ipc(&b.0))
            .transpose()
    }

    fn load(self, core: &mut Core) -> Result<()> {
        if let Some(schema) = self.schema()? {
            core.bind(&schema)?;
            if let Some(keys) = self.key_columns()? {
                let ids = core
                    .keys
                    .as_mut()
                    .expect("bound above")
                    .batch_ids(keys.columns(), keys.num_rows())?;
                if ids.iter().enumerate().any(|(i, &id)| id as usize != i) {
                    return Err(Error::Config(
                        "the snapshot's keys are not distinct; it is damaged".into(),
                    ));
                }
            }
        }
        core.watermark = self.watermark;
        core.metrics = self.metrics;
        core.finished = self.finished;
        core.last_early_ms = self.last_early_ms;
        Ok(())
    }
}
