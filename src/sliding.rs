//! Per-row sliding windows (Kinesis Analytics' `RANGE INTERVAL ... PRECEDING`, polars
//! `rolling`): one output row per accepted input row, aggregating the same key's rows with
//! time in `(t - period, t]`, emitted in event-time order once the watermark has passed `t`.
//!
//! ```text
//!  period = 10          rows of one key:  2    5        11   14
//!  row 11's window (1, 11]:               [2    5        11]
//!  row 14's window (4, 14]:                    [5        11   14]
//! ```
//! Rows with the same time all see each other (the window is closed on the right), as in
//! polars. A row's window *completes* when the watermark passes its time and *closes*
//! `lateness` later; a row whose own window has closed when it arrives is late.
//!
//! Expiring rows do not make it quadratic: each key keeps a two-stack sliding aggregate
//! ("SWAG"): rows are pushed in time order onto a back stack with a running aggregate; when
//! the oldest row must leave, the back stack is flipped onto a front stack that stores suffix
//! aggregates. Every row is merged O(1) times amortised, and only `merge` is needed, so any
//! mergeable accumulator (min, max, sketches) works without an inverse.

use crate::aggregate::GroupsAccumulator;
use crate::error::{Error, Result};
use crate::keys::KeyInterner;
use crate::operator::{
    as_window_type, batch_times, bind_schema, push_tags, read_batch, route_late, BatchResult,
    Bound, EmitMode, Metrics, OperatorConfig, Revise, Windowing,
};
use crate::window::Watermark;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use std::collections::{BTreeMap, BTreeSet};

const NO_SLOT: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Row {
    key: u32,
    t: i64,
    seq: u64,
    emitted: bool,
    revision: u32,
    shadow: u32,
    in_swag: bool,
    expired: bool,
}

#[derive(Default)]
struct Swag {
    /// Oldest last; each with the merge of itself and everything newer in the front stack.
    front: Vec<(i64, u32, u32)>,
    back: Vec<(i64, u32)>,
    back_agg: Option<u32>,
}

#[derive(Default)]
struct KeyState {
    /// Retained rows of this key by (time, arrival).
    history: BTreeMap<(i64, u64), u32>,
    swag: Swag,
    /// The last (time, arrival) pushed into the SWAG.
    frontier: Option<(i64, u64)>,
    /// Earliest and latest time of rows accepted behind the frontier since the last moment
    /// (amend/changelog).
    behind: Option<(i64, i64)>,
}

struct Out {
    order: (i64, u32, u64, u32),
    key: u32,
    t: i64,
    values: u32,
    tag: u32,
}

/// The sliding window operator.
pub struct SlidingOperator {
    config: OperatorConfig,
    period: i64,
    bound: Option<Bound>,
    keys: Option<KeyInterner>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    watermark: Watermark,
    rows: Vec<Row>,
    free: Vec<u32>,
    per_key: Vec<KeyState>,
    pending: BTreeSet<(i64, u64, u32)>,
    open_emitted: BTreeSet<(i64, u64, u32)>,
    retained: BTreeSet<(i64, u64, u32)>,
    rebuild: Vec<u32>,
    seq: u64,
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    outs: Vec<Out>,
    out_keys: Vec<u32>,
    out_times: Vec<i64>,
    out_tags: Vec<u32>,
    last_early_ms: Option<i64>,
    batch_times: Vec<i64>,
    batch_seq: u64,
    metrics: Metrics,
    finished: bool,
}

impl SlidingOperator {
    /// A sliding operator; `config.window` must be [`Windowing::Sliding`].
    pub fn new(config: OperatorConfig) -> Result<Self> {
        let Windowing::Sliding { period } = config.window else {
            return Err(Error::Internal(
                "SlidingOperator needs sliding windowing".into(),
            ));
        };
        if period <= 0 {
            return Err(Error::Config(format!(
                "a sliding window's period must be a positive duration, got {period}"
            )));
        }
        if config.early_ms.is_some() {
            return Err(Error::Config(
                "early= is for windows that stay open; a sliding window's row is emitted once \
                 its time has passed, so leave early unset"
                    .into(),
            ));
        }
        Ok(SlidingOperator {
            watermark: Watermark::new(config.delay),
            config,
            period,
            bound: None,
            keys: None,
            accs: Vec::new(),
            rows: Vec::new(),
            free: Vec::new(),
            per_key: Vec::new(),
            pending: BTreeSet::new(),
            open_emitted: BTreeSet::new(),
            retained: BTreeSet::new(),
            rebuild: Vec::new(),
            seq: 0,
            pair_rows: Vec::new(),
            pair_slots: Vec::new(),
            outs: Vec::new(),
            out_keys: Vec::new(),
            out_times: Vec::new(),
            out_tags: Vec::new(),
            last_early_ms: None,
            batch_times: Vec::new(),
            batch_seq: 0,
            metrics: Metrics::default(),
            finished: false,
        })
    }

    /// The schema of emitted batches (known after the first batch).
    pub fn output_schema(&self) -> Option<arrow_schema::SchemaRef> {
        self.bound.as_ref().map(|b| b.output_schema.clone())
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The watermark at which a row at `t` is emitted: complete (updating modes) or closed.
    fn due_at(&self, t: i64) -> i64 {
        let complete = t.saturating_add(1);
        if self.config.emit.updates() {
            complete
        } else {
            complete.saturating_add(self.config.lateness)
        }
    }

    /// Processes one batch in arrival order.
    pub fn process_at(&mut self, batch: &RecordBatch, now_ms: Option<i64>) -> Result<BatchResult> {
        if self.finished {
            return Err(Error::Internal("process() after finish()".into()));
        }
        match &self.bound {
            Some(b) => b.check(&batch.schema())?,
            None => {
                let (bound, keys, accs) = bind_schema(&self.config, &batch.schema())?;
                self.bound = Some(bound);
                self.keys = Some(keys);
                self.accs = accs;
            }
        }
        let _ = now_ms;
        let bound = self.bound.as_ref().expect("bound");
        let n = batch.num_rows();
        let (times, key_ids, mut result) =
            read_batch(bound, self.keys.as_mut().expect("bound"), batch)?;
        self.batch_seq = self.metrics.rows_in;
        batch_times(&self.accs, &times, n, &mut self.batch_times);
        self.metrics.rows_in += n as u64;
        let updates = self.config.emit.updates();
        // Rows are judged one at a time; `i` indexes the batch, its times and its keys.
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let t = match times.value(i) {
                Ok(t) => t,
                Err(reason) => {
                    result.rejected_rows.push(i as u32);
                    result.reasons.push(reason);
                    self.metrics.rows_rejected += 1;
                    continue;
                }
            };
            let wm = self.watermark.current();
            if t.saturating_add(1).saturating_add(self.config.lateness) <= wm {
                route_late(
                    &self.config,
                    &mut self.metrics,
                    &mut result,
                    i,
                    t,
                    wm,
                    "is in a window that closed",
                )?;
                continue;
            }
            self.metrics.rows_accepted += 1;
            let key = key_ids[i];
            let slot = self.accept(t, key);
            self.pair_rows.push(i as u32);
            self.pair_slots.push(slot);
            let k = &mut self.per_key[key as usize];
            if updates && k.frontier.is_some_and(|f| t <= f.0) {
                k.behind = Some(k.behind.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
                self.rebuild.push(key);
            }
            self.watermark.observe(t);
            let revise_now = self.config.revise == Revise::Row && !self.rebuild.is_empty();
            let due = revise_now
                || self
                    .pending
                    .first()
                    .is_some_and(|&(pt, _, _)| self.due_at(pt) <= self.watermark.current());
            if due {
                self.update_accumulators(batch)?;
                self.moment(false);
            }
        }
        self.update_accumulators(batch)?;
        result.output = self.take_output()?;
        self.refresh_gauges();
        Ok(result)
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.rows.push(Row {
                    key: 0,
                    t: 0,
                    seq: 0,
                    emitted: false,
                    revision: 0,
                    shadow: NO_SLOT,
                    in_swag: false,
                    expired: false,
                });
                (self.rows.len() - 1) as u32
            }
        }
    }

    fn accept(&mut self, t: i64, key: u32) -> u32 {
        let slot = self.alloc();
        self.seq += 1;
        let seq = self.seq;
        self.rows[slot as usize] = Row {
            key,
            t,
            seq,
            emitted: false,
            revision: 0,
            shadow: NO_SLOT,
            in_swag: false,
            expired: false,
        };
        for acc in &mut self.accs {
            acc.reset(slot);
        }
        let k = key as usize;
        if k >= self.per_key.len() {
            self.per_key.resize_with(k + 1, KeyState::default);
        }
        self.per_key[k].history.insert((t, seq), slot);
        self.pending.insert((t, seq, slot));
        self.retained.insert((t, seq, slot));
        slot
    }

    fn update_accumulators(&mut self, batch: &RecordBatch) -> Result<()> {
        let times = &self.batch_times;
        crate::parallel::apply(
            &mut self.accs,
            batch,
            &mut self.pair_rows,
            &mut self.pair_slots,
            times,
            self.batch_seq,
            true,
        )
    }

    // -- the two-stack sliding aggregate of one key -------------------------------------
    fn swag_push(&mut self, key: u32, t: i64, row: u32) {
        let back_agg = self.per_key[key as usize].swag.back_agg;
        match back_agg {
            None => {
                let agg = self.alloc_temp();
                for acc in &mut self.accs {
                    acc.copy(agg, row);
                }
                self.per_key[key as usize].swag.back_agg = Some(agg);
            }
            Some(agg) => {
                for acc in &mut self.accs {
                    acc.merge(agg, row);
                }
            }
        }
        self.per_key[key as usize].swag.back.push((t, row));
        self.rows[row as usize].in_swag = true;
    }

    /// Drops rows with time <= `cutoff` from the key's aggregate.
    fn swag_evict(&mut self, key: u32, cutoff: i64) {
        loop {
            let swag = &self.per_key[key as usize].swag;
            let oldest = match swag.front.last() {
                Some(&(t, _, _)) => Some(t),
                None => swag.back.first().map(|&(t, _)| t),
            };
            match oldest {
                Some(t) if t <= cutoff => {}
                _ => return,
            }
            if self.per_key[key as usize].swag.front.is_empty() {
                self.swag_flip(key);
            }
            let (_, row, suffix) = self.per_key[key as usize]
                .swag
                .front
                .pop()
                .expect("flipped");
            self.free_temp(suffix);
            self.left_swag(row);
        }
    }

    fn swag_flip(&mut self, key: u32) {
        let back = std::mem::take(&mut self.per_key[key as usize].swag.back);
        for &(t, row) in back.iter().rev() {
            let suffix = self.alloc_temp();
            let prev = self.per_key[key as usize]
                .swag
                .front
                .last()
                .map(|&(_, _, s)| s);
            for acc in &mut self.accs {
                acc.copy(suffix, row);
                if let Some(p) = prev {
                    acc.merge(suffix, p);
                }
            }
            self.per_key[key as usize].swag.front.push((t, row, suffix));
        }
        if let Some(agg) = self.per_key[key as usize].swag.back_agg.take() {
            self.free_temp(agg);
        }
    }

    /// The key's current window aggregate, into a fresh slot.
    fn swag_query(&mut self, key: u32) -> u32 {
        let out = self.alloc_temp();
        let swag = &self.per_key[key as usize].swag;
        let front = swag.front.last().map(|&(_, _, s)| s);
        let back = swag.back_agg;
        for acc in &mut self.accs {
            acc.reset(out);
            if let Some(f) = front {
                acc.merge(out, f);
            }
            if let Some(b) = back {
                acc.merge(out, b);
            }
        }
        out
    }

    fn swag_clear(&mut self, key: u32) {
        let swag = std::mem::take(&mut self.per_key[key as usize].swag);
        for (_, row, suffix) in swag.front {
            self.free_temp(suffix);
            self.left_swag(row);
        }
        for (_, row) in swag.back {
            self.left_swag(row);
        }
        if let Some(agg) = swag.back_agg {
            self.free_temp(agg);
        }
    }

    fn left_swag(&mut self, row: u32) {
        let r = &mut self.rows[row as usize];
        r.in_swag = false;
        if r.expired {
            self.drop_row(row);
        }
    }

    fn alloc_temp(&mut self) -> u32 {
        let s = self.alloc();
        self.rows[s as usize].key = u32::MAX;
        for acc in &mut self.accs {
            acc.reset(s);
        }
        s
    }

    fn free_temp(&mut self, slot: u32) {
        self.free.push(slot);
    }

    fn drop_row(&mut self, row: u32) {
        let r = self.rows[row as usize];
        self.per_key[r.key as usize].history.remove(&(r.t, r.seq));
        if r.shadow != NO_SLOT {
            self.free.push(r.shadow);
        }
        self.rows[row as usize].shadow = NO_SLOT;
        self.free.push(row);
    }

    // -- emission -----------------------------------------------------------------------
    fn moment(&mut self, end_of_input: bool) {
        let wm = if end_of_input {
            i64::MAX
        } else {
            self.watermark.current()
        };
        // Keys with rows accepted behind what they already emitted: recompute from there.
        let mut rebuild = std::mem::take(&mut self.rebuild);
        rebuild.sort_unstable();
        rebuild.dedup();
        for key in rebuild {
            self.rebuild_key(key);
        }
        // Rows now due, in time order; equal times of one key are one group.
        let mut due: Vec<(i64, u64, u32)> = Vec::new();
        while let Some(&(t, seq, slot)) = self.pending.first() {
            if !end_of_input && self.due_at(t) > wm {
                break;
            }
            self.pending.pop_first();
            due.push((t, seq, slot));
        }
        // Group rows by (time, key): a key's rows are pushed in time order, and rows with
        // the same time all see each other.
        let mut due: Vec<(i64, u32, u64, u32)> = due
            .into_iter()
            .map(|(t, seq, s)| (t, self.rows[s as usize].key, seq, s))
            .collect();
        due.sort_unstable();
        let mut i = 0;
        while i < due.len() {
            let (t, key, _, _) = due[i];
            let mut j = i;
            while j < due.len() && due[j].0 == t && due[j].1 == key {
                self.swag_push(key, t, due[j].3);
                j += 1;
            }
            self.per_key[key as usize].frontier = Some((t, due[j - 1].2));
            self.swag_evict(key, t.saturating_sub(self.period));
            let values = self.swag_query(key);
            for &(_, _, _, s) in &due[i..j] {
                self.emit_row(s, values);
            }
            self.free_temp(values);
            i = j;
        }
        self.finish_outputs();
        // Close rows past their lateness: no more revisions, shadows freed; expire history.
        let close_before = wm.saturating_sub(self.config.lateness);
        while let Some(&(t, seq, slot)) = self.open_emitted.first() {
            if !end_of_input && t.saturating_add(1) > close_before {
                break;
            }
            self.open_emitted.pop_first();
            let _ = seq;
            let shadow = std::mem::replace(&mut self.rows[slot as usize].shadow, NO_SLOT);
            if shadow != NO_SLOT {
                self.free.push(shadow);
            }
        }
        let expire_before = wm
            .saturating_sub(self.config.lateness)
            .saturating_sub(self.period);
        while let Some(&(t, _, slot)) = self.retained.first() {
            if !end_of_input && t > expire_before {
                break;
            }
            if !self.rows[slot as usize].emitted {
                break;
            }
            self.retained.pop_first();
            if self.rows[slot as usize].in_swag {
                self.rows[slot as usize].expired = true;
            } else {
                self.drop_row(slot);
            }
        }
    }

    /// Recomputes a key's outputs from its earliest row accepted behind the frontier.
    fn rebuild_key(&mut self, key: u32) {
        let Some((from, to)) = self.per_key[key as usize].behind.take() else {
            return;
        };
        let Some(frontier) = self.per_key[key as usize].frontier else {
            return;
        };
        self.swag_clear(key);
        let lo = from.saturating_sub(self.period);
        // Rows whose window can hold a new row: time in [from, to + period).
        let affected_until = to.saturating_add(self.period);
        let rows: Vec<((i64, u64), u32)> = self.per_key[key as usize]
            .history
            .range((lo, u64::MAX)..=(frontier.0, u64::MAX))
            .map(|(&k, &v)| (k, v))
            .collect();
        let mut i = 0;
        while i < rows.len() {
            let t = rows[i].0 .0;
            let mut j = i;
            while j < rows.len() && rows[j].0 .0 == t {
                j += 1;
            }
            for &(_, s) in &rows[i..j] {
                self.swag_push(key, t, s);
            }
            self.swag_evict(key, t.saturating_sub(self.period));
            if t >= from && t < affected_until {
                let values = self.swag_query(key);
                for &(_, s) in &rows[i..j] {
                    // Rows behind the frontier that were never emitted leave the pending set.
                    let r = self.rows[s as usize];
                    self.pending.remove(&(r.t, r.seq, s));
                    self.emit_row(s, values);
                }
                self.free_temp(values);
            }
            i = j;
        }
        // Rows accepted behind but after the frontier's time stay pending in order.
        let last = rows.last().map(|r| r.0).unwrap_or(frontier);
        self.per_key[key as usize].frontier = Some(last.max(frontier));
    }

    fn emit_row(&mut self, slot: u32, values: u32) {
        let r = self.rows[slot as usize];
        let copy = self.alloc_temp();
        for acc in &mut self.accs {
            acc.copy(copy, values);
        }
        let order = |seq: u32| (r.t, r.key, r.seq, seq);
        match self.config.emit {
            EmitMode::Final => self.outs.push(Out {
                order: order(0),
                key: r.key,
                t: r.t,
                values: copy,
                tag: 0,
            }),
            EmitMode::Amend => {
                let rev = if r.emitted { r.revision + 1 } else { 0 };
                self.rows[slot as usize].revision = rev;
                self.outs.push(Out {
                    order: order(0),
                    key: r.key,
                    t: r.t,
                    values: copy,
                    tag: rev,
                });
            }
            EmitMode::Changelog => {
                if r.emitted {
                    let before = self.alloc_temp();
                    for acc in &mut self.accs {
                        acc.copy(before, r.shadow);
                    }
                    self.outs.push(Out {
                        order: order(0),
                        key: r.key,
                        t: r.t,
                        values: before,
                        tag: 1,
                    });
                    self.outs.push(Out {
                        order: order(1),
                        key: r.key,
                        t: r.t,
                        values: copy,
                        tag: 2,
                    });
                } else {
                    self.outs.push(Out {
                        order: order(0),
                        key: r.key,
                        t: r.t,
                        values: copy,
                        tag: 0,
                    });
                }
                let shadow = match r.shadow {
                    NO_SLOT => {
                        let sh = self.alloc_temp();
                        self.rows[slot as usize].shadow = sh;
                        sh
                    }
                    sh => sh,
                };
                for acc in &mut self.accs {
                    acc.copy(shadow, values);
                }
            }
        }
        let row = &mut self.rows[slot as usize];
        if !row.emitted && self.config.emit.updates() {
            self.open_emitted.insert((r.t, r.seq, slot));
        }
        row.emitted = true;
    }

    fn finish_outputs(&mut self) {
        if self.outs.is_empty() {
            return;
        }
        let keys = self.keys.as_ref().expect("bound");
        self.outs.sort_by(|a, b| {
            a.order
                .0
                .cmp(&b.order.0)
                .then_with(|| keys.compare(a.order.1, b.order.1))
                .then_with(|| (a.order.2, a.order.3).cmp(&(b.order.2, b.order.3)))
        });
        let values: Vec<u32> = self.outs.iter().map(|o| o.values).collect();
        for acc in &mut self.accs {
            acc.snapshot(&values);
        }
        for o in std::mem::take(&mut self.outs) {
            self.out_keys.push(o.key);
            self.out_times.push(o.t);
            self.out_tags.push(o.tag);
            self.free.push(o.values);
        }
        self.metrics.rows_emitted += values.len() as u64;
    }

    /// A heartbeat: sliding windows have no early firing.
    pub fn tick(&mut self, _now_ms: i64) -> Result<RecordBatch> {
        let _ = self.last_early_ms;
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// Moves the watermark to at least `instant`, emitting the rows that completes.
    pub fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        if self.watermark.advance_to(instant) {
            self.moment(false);
        }
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// End of input: every row still waiting is emitted.
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

    fn take_output(&mut self) -> Result<RecordBatch> {
        let bound = self.bound.as_ref().expect("bound");
        let mut columns: Vec<ArrayRef> = self
            .keys
            .as_ref()
            .expect("bound")
            .to_arrays(&self.out_keys)?;
        let times = Int64Array::from(std::mem::take(&mut self.out_times));
        columns.push(as_window_type(times, &bound.window_type)?);
        let tags = std::mem::take(&mut self.out_tags);
        push_tags(&mut columns, self.config.emit, tags);
        for acc in &mut self.accs {
            columns.push(acc.finish());
        }
        self.out_keys.clear();
        Ok(RecordBatch::try_new(bound.output_schema.clone(), columns)?)
    }

    fn refresh_gauges(&mut self) {
        let m = &mut self.metrics;
        m.watermark = self.watermark.max_seen().map(|_| self.watermark.current());
        m.max_event_time = self.watermark.max_seen();
        m.open_windows = self.pending.len() as u64;
        m.open_panes = self.retained.len() as u64;
        m.keys = self.keys.as_ref().map_or(0, |k| k.len() as u64);
        let accs: usize = self.accs.iter().map(|a| a.size()).sum();
        m.state_bytes = (accs
            + self.rows.capacity() * std::mem::size_of::<Row>()
            + (self.pending.len() + self.retained.len() + self.open_emitted.len()) * 40
            + self.keys.as_ref().map_or(0, |k| k.size())) as u64;
    }
}
