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
//! With `ROWS n PRECEDING` ([`Windowing::SlidingRows`]) a row's window is instead the row
//! and the `n` rows of its key before it in (time, arrival) order; rows with the same time
//! are ordered by arrival and do not see the ones after them. Such windows only come out
//! final: a row accepted behind emitted ones would shift every later window by one row.
//!
//! Expiring rows do not make it quadratic: each key keeps a two-stack sliding aggregate
//! ("SWAG"): rows are pushed in time order onto a back stack with a running aggregate; when
//! the oldest row must leave, the back stack is flipped onto a front stack that stores suffix
//! aggregates. Every row is merged O(1) times amortised, and only `merge` is needed, so any
//! mergeable accumulator (min, max, sketches) works without an inverse.

use super::batch::{route_late, Times};
use super::config::{BatchResult, EmitMode, OperatorConfig, Revise, Windowing, NO_SLOT};
use super::feed::apply;
use super::lifecycle::{core_field, Core, FloorColumn, Kernel};
use crate::codec::Blob;
use crate::error::{Error, Result};
use arrow_array::{Int64Array, RecordBatch};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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

#[derive(Clone, Default, Serialize, Deserialize)]
struct Swag {
    /// Oldest last; each with the merge of itself and everything newer in the front stack.
    front: Vec<(i64, u32, u32)>,
    back: Vec<(i64, u32)>,
    back_agg: Option<u32>,
}

#[derive(Clone, Default, Serialize, Deserialize)]
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

/// What a row's window reaches back over.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// Rows of the key in `(t - period, t]`.
    Period(i64),
    /// The row and this many rows of the key before it.
    Rows(u64),
}

/// The sliding window operator.
pub struct SlidingOperator {
    core: Core,
    frame: Frame,
    /// Per aggregate: it gives the row's own value (`current`), read from the row's slot
    /// rather than from its window's aggregate.
    own: Vec<bool>,
    state: SlidingState,
    scratch: Scratch,
}

/// What a sliding operator keeps between batches (a checkpoint holds it, and the
/// accumulators' states of its slots in use).
#[derive(Clone, Default, Serialize, Deserialize)]
struct SlidingState {
    /// Rows (and temporary aggregates) by slot; free slots are listed in `free`.
    rows: Vec<Row>,
    free: Vec<u32>,
    per_key: Vec<KeyState>,
    /// Rows not yet emitted, by (time, arrival, slot).
    pending: BTreeSet<(i64, u64, u32)>,
    /// Updating modes: emitted rows still open to revisions.
    open_emitted: BTreeSet<(i64, u64, u32)>,
    /// Rows a later row's window may still reach.
    retained: BTreeSet<(i64, u64, u32)>,
    /// Keys with rows accepted behind what they emitted, rebuilt at the next moment.
    rebuild: Vec<u32>,
    /// Rows accepted so far (their arrival numbers).
    seq: u64,
}

/// Per-batch working memory, empty between calls.
#[derive(Default)]
struct Scratch {
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    outs: Vec<Out>,
    out_keys: Vec<u32>,
    out_times: Vec<i64>,
    out_tags: Vec<u32>,
}

/// A checkpoint of a sliding operator: its state and the accumulators of its slots in use.
#[derive(Serialize, Deserialize)]
pub(crate) struct SlidingSnapshot {
    state: SlidingState,
    live: Vec<u32>,
    accs: Vec<Blob>,
}

/// A window of rows emits each row once: a row accepted behind emitted ones would shift
/// every later window of its key by a row.
pub(crate) fn rows_frame_emits_final(emit: EmitMode) -> Result<()> {
    if !emit.updates() {
        return Ok(());
    }
    let mode = if emit == EmitMode::Amend {
        "amend"
    } else {
        "changelog"
    };
    Err(Error::Config(format!(
        "a sliding window of rows (ROWS n PRECEDING) emits each row once, final: a row \
         arriving behind emitted ones would shift every later window by a row. Use \
         emit=\"final\" (with lateness= to wait for stragglers), or a sliding window over a \
         period for emit=\"{mode}\""
    )))
}

impl SlidingOperator {
    /// A sliding operator; `config.window` must be [`Windowing::Sliding`].
    pub fn new(config: OperatorConfig) -> Result<Self> {
        let frame = match config.window {
            Windowing::Sliding { period } => Frame::Period(period),
            Windowing::SlidingRows { preceding } => Frame::Rows(preceding),
            _ => {
                return Err(Error::Internal(
                    "SlidingOperator needs sliding windowing".into(),
                ))
            }
        };
        match frame {
            Frame::Period(p) if p <= 0 => {
                return Err(Error::Config(format!(
                    "a sliding window's period must be a positive duration, got {p}"
                )))
            }
            Frame::Rows(_) => rows_frame_emits_final(config.emit)?,
            Frame::Period(_) => {}
        }
        if config.early_ms.is_some() {
            return Err(Error::Config(
                "early= is for windows that stay open; a sliding window's row is emitted once \
                 its time has passed, so leave early unset"
                    .into(),
            ));
        }
        let own = config
            .aggs
            .iter()
            .map(|a| a.kind == crate::aggregate::AggKind::Current)
            .collect();
        Ok(SlidingOperator {
            core: Core::new(config),
            frame,
            own,
            state: SlidingState::default(),
            scratch: Scratch::default(),
        })
    }

    /// How far back in time a row's window reaches: the period, or 0 for a frame of rows
    /// (rows leave it by count; once emitted, only the count holds them).
    fn period(&self) -> i64 {
        match self.frame {
            Frame::Period(p) => p,
            Frame::Rows(_) => 0,
        }
    }

    /// The watermark at which a row at `t` is emitted: complete (updating modes) or closed.
    fn due_at(&self, t: i64) -> i64 {
        let complete = t.saturating_add(1);
        if self.core.config.emit.updates() {
            complete
        } else {
            complete.saturating_add(self.core.config.lateness)
        }
    }

    fn alloc(&mut self) -> u32 {
        match self.state.free.pop() {
            Some(s) => s,
            None => {
                self.state.rows.push(Row {
                    key: 0,
                    t: 0,
                    seq: 0,
                    emitted: false,
                    revision: 0,
                    shadow: NO_SLOT,
                    in_swag: false,
                    expired: false,
                });
                (self.state.rows.len() - 1) as u32
            }
        }
    }

    fn accept(&mut self, t: i64, key: u32) -> u32 {
        let slot = self.alloc();
        self.state.seq += 1;
        let seq = self.state.seq;
        self.state.rows[slot as usize] = Row {
            key,
            t,
            seq,
            emitted: false,
            revision: 0,
            shadow: NO_SLOT,
            in_swag: false,
            expired: false,
        };
        for acc in &mut self.core.accs {
            acc.reset(slot);
        }
        let k = key as usize;
        if k >= self.state.per_key.len() {
            self.state.per_key.resize_with(k + 1, KeyState::default);
        }
        self.state.per_key[k].history.insert((t, seq), slot);
        self.state.pending.insert((t, seq, slot));
        self.state.retained.insert((t, seq, slot));
        slot
    }

    fn update_accumulators(&mut self, batch: &RecordBatch) -> Result<()> {
        let times = &self.core.batch_times;
        apply(
            &mut self.core.accs,
            batch,
            &mut self.scratch.pair_rows,
            &mut self.scratch.pair_slots,
            times,
            self.core.batch_seq,
            true,
        )
    }

    // -- the two-stack sliding aggregate of one key -------------------------------------
    fn swag_push(&mut self, key: u32, t: i64, row: u32) {
        let back_agg = self.state.per_key[key as usize].swag.back_agg;
        match back_agg {
            None => {
                let agg = self.alloc_temp();
                for acc in &mut self.core.accs {
                    acc.copy(agg, row);
                }
                self.state.per_key[key as usize].swag.back_agg = Some(agg);
            }
            Some(agg) => {
                for acc in &mut self.core.accs {
                    acc.merge(agg, row);
                }
            }
        }
        self.state.per_key[key as usize].swag.back.push((t, row));
        self.state.rows[row as usize].in_swag = true;
    }

    /// Drops rows with time <= `cutoff` from the key's aggregate.
    fn swag_evict(&mut self, key: u32, cutoff: i64) {
        loop {
            let swag = &self.state.per_key[key as usize].swag;
            let oldest = match swag.front.last() {
                Some(&(t, _, _)) => Some(t),
                None => swag.back.first().map(|&(t, _)| t),
            };
            match oldest {
                Some(t) if t <= cutoff => self.swag_pop_oldest(key),
                _ => return,
            }
        }
    }

    /// Drops the oldest rows from the key's aggregate until it holds at most `keep`.
    fn swag_keep(&mut self, key: u32, keep: u64) {
        loop {
            let swag = &self.state.per_key[key as usize].swag;
            if (swag.front.len() + swag.back.len()) as u64 <= keep {
                return;
            }
            self.swag_pop_oldest(key);
        }
    }

    /// Drops the key's oldest row from its aggregate (there is one).
    fn swag_pop_oldest(&mut self, key: u32) {
        if self.state.per_key[key as usize].swag.front.is_empty() {
            self.swag_flip(key);
        }
        let (_, row, suffix) = self.state.per_key[key as usize]
            .swag
            .front
            .pop()
            .expect("flipped");
        self.free_temp(suffix);
        self.left_swag(row);
    }

    fn swag_flip(&mut self, key: u32) {
        let back = std::mem::take(&mut self.state.per_key[key as usize].swag.back);
        for &(t, row) in back.iter().rev() {
            let suffix = self.alloc_temp();
            let prev = self.state.per_key[key as usize]
                .swag
                .front
                .last()
                .map(|&(_, _, s)| s);
            for acc in &mut self.core.accs {
                acc.copy(suffix, row);
                if let Some(p) = prev {
                    acc.merge(suffix, p);
                }
            }
            self.state.per_key[key as usize]
                .swag
                .front
                .push((t, row, suffix));
        }
        if let Some(agg) = self.state.per_key[key as usize].swag.back_agg.take() {
            self.free_temp(agg);
        }
    }

    /// The key's current window aggregate, into a fresh slot.
    fn swag_query(&mut self, key: u32) -> u32 {
        let out = self.alloc_temp();
        let swag = &self.state.per_key[key as usize].swag;
        let front = swag.front.last().map(|&(_, _, s)| s);
        let back = swag.back_agg;
        for acc in &mut self.core.accs {
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
        let swag = std::mem::take(&mut self.state.per_key[key as usize].swag);
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
        let r = &mut self.state.rows[row as usize];
        r.in_swag = false;
        if r.expired {
            self.drop_row(row);
        }
    }

    fn alloc_temp(&mut self) -> u32 {
        let s = self.alloc();
        self.state.rows[s as usize].key = u32::MAX;
        for acc in &mut self.core.accs {
            acc.reset(s);
        }
        s
    }

    fn free_temp(&mut self, slot: u32) {
        self.state.free.push(slot);
    }

    fn drop_row(&mut self, row: u32) {
        let r = self.state.rows[row as usize];
        self.state.per_key[r.key as usize]
            .history
            .remove(&(r.t, r.seq));
        if r.shadow != NO_SLOT {
            self.state.free.push(r.shadow);
        }
        self.state.rows[row as usize].shadow = NO_SLOT;
        self.state.free.push(row);
    }

    // -- emission -----------------------------------------------------------------------

    /// Recomputes a key's outputs from its earliest row accepted behind the frontier.
    fn rebuild_key(&mut self, key: u32) {
        let Some((from, to)) = self.state.per_key[key as usize].behind.take() else {
            return;
        };
        let Some(frontier) = self.state.per_key[key as usize].frontier else {
            return;
        };
        self.swag_clear(key);
        let lo = from.saturating_sub(self.period());
        // Rows whose window can hold a new row: time in [from, to + period).
        let affected_until = to.saturating_add(self.period());
        let rows: Vec<((i64, u64), u32)> = self.state.per_key[key as usize]
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
            self.swag_evict(key, t.saturating_sub(self.period()));
            if t >= from && t < affected_until {
                let values = self.swag_query(key);
                for &(_, s) in &rows[i..j] {
                    // Rows behind the frontier that were never emitted leave the pending set.
                    let r = self.state.rows[s as usize];
                    self.state.pending.remove(&(r.t, r.seq, s));
                    self.emit_row(s, values);
                }
                self.free_temp(values);
            }
            i = j;
        }
        // Rows accepted behind but after the frontier's time stay pending in order.
        let last = rows.last().map(|r| r.0).unwrap_or(frontier);
        self.state.per_key[key as usize].frontier = Some(last.max(frontier));
    }

    fn emit_row(&mut self, slot: u32, values: u32) {
        let r = self.state.rows[slot as usize];
        let copy = self.alloc_temp();
        for (acc, &own) in self.core.accs.iter_mut().zip(&self.own) {
            acc.copy(copy, if own { slot } else { values });
        }
        let order = |seq: u32| (r.t, r.key, r.seq, seq);
        match self.core.config.emit {
            EmitMode::Final => self.scratch.outs.push(Out {
                order: order(0),
                key: r.key,
                t: r.t,
                values: copy,
                tag: 0,
            }),
            EmitMode::Amend => {
                let rev = if r.emitted { r.revision + 1 } else { 0 };
                self.state.rows[slot as usize].revision = rev;
                self.scratch.outs.push(Out {
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
                    for acc in &mut self.core.accs {
                        acc.copy(before, r.shadow);
                    }
                    self.scratch.outs.push(Out {
                        order: order(0),
                        key: r.key,
                        t: r.t,
                        values: before,
                        tag: 1,
                    });
                    self.scratch.outs.push(Out {
                        order: order(1),
                        key: r.key,
                        t: r.t,
                        values: copy,
                        tag: 2,
                    });
                } else {
                    self.scratch.outs.push(Out {
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
                        self.state.rows[slot as usize].shadow = sh;
                        sh
                    }
                    sh => sh,
                };
                for (acc, &own) in self.core.accs.iter_mut().zip(&self.own) {
                    acc.copy(shadow, if own { slot } else { values });
                }
            }
        }
        let row = &mut self.state.rows[slot as usize];
        if !row.emitted && self.core.config.emit.updates() {
            self.state.open_emitted.insert((r.t, r.seq, slot));
        }
        row.emitted = true;
    }

    fn finish_outputs(&mut self) {
        if self.scratch.outs.is_empty() {
            return;
        }
        let keys = self.core.keys.as_ref().expect("bound");
        self.scratch.outs.sort_by(|a, b| {
            a.order
                .0
                .cmp(&b.order.0)
                .then_with(|| keys.compare(a.order.1, b.order.1))
                .then_with(|| (a.order.2, a.order.3).cmp(&(b.order.2, b.order.3)))
        });
        let values: Vec<u32> = self.scratch.outs.iter().map(|o| o.values).collect();
        for acc in &mut self.core.accs {
            acc.snapshot(&values);
        }
        for o in std::mem::take(&mut self.scratch.outs) {
            self.scratch.out_keys.push(o.key);
            self.scratch.out_times.push(o.t);
            self.scratch.out_tags.push(o.tag);
            self.state.free.push(o.values);
        }
        self.core.metrics.rows_emitted += values.len() as u64;
    }
}

impl Kernel for SlidingOperator {
    const KIND: &'static str = "sliding";
    const COLUMNS: &'static [FloorColumn] = &[FloorColumn::RowTime];
    type State = SlidingSnapshot;

    core_field!();

    fn fresh(config: OperatorConfig) -> Result<Self> {
        SlidingOperator::new(config)
    }

    fn run(
        &mut self,
        batch: &RecordBatch,
        times: &Times<'_>,
        key_ids: &[u32],
        result: &mut BatchResult,
    ) -> Result<()> {
        let n = batch.num_rows();
        let updates = self.core.config.emit.updates();
        // Rows are judged one at a time; `i` indexes the batch, its times and its keys.
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let t = match times.value(i) {
                Ok(t) => t,
                Err(reason) => {
                    result.reject(&mut self.core.metrics, i, reason);
                    continue;
                }
            };
            let wm = self.core.watermark.current();
            if t.saturating_add(1)
                .saturating_add(self.core.config.lateness)
                <= wm
            {
                route_late(
                    &self.core.config,
                    &mut self.core.metrics,
                    result,
                    i,
                    t,
                    wm,
                    "is in a window that closed",
                )?;
                continue;
            }
            self.core.metrics.rows_accepted += 1;
            let key = key_ids[i];
            let slot = self.accept(t, key);
            self.scratch.pair_rows.push(i as u32);
            self.scratch.pair_slots.push(slot);
            let k = &mut self.state.per_key[key as usize];
            if updates && k.frontier.is_some_and(|f| t <= f.0) {
                k.behind = Some(k.behind.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
                self.state.rebuild.push(key);
            }
            self.core.watermark.observe(t);
            let revise_now =
                self.core.config.revise == Revise::Row && !self.state.rebuild.is_empty();
            let due =
                revise_now
                    || self.state.pending.first().is_some_and(|&(pt, _, _)| {
                        self.due_at(pt) <= self.core.watermark.current()
                    });
            if due {
                self.update_accumulators(batch)?;
                self.moment(false);
            }
        }
        self.update_accumulators(batch)
    }

    fn moment(&mut self, end_of_input: bool) {
        let wm = if end_of_input {
            i64::MAX
        } else {
            self.core.watermark.current()
        };
        // Keys with rows accepted behind what they already emitted: recompute from there.
        let mut rebuild = std::mem::take(&mut self.state.rebuild);
        rebuild.sort_unstable();
        rebuild.dedup();
        for key in rebuild {
            self.rebuild_key(key);
        }
        // Rows now due, in time order; equal times of one key are one group.
        let mut due: Vec<(i64, u64, u32)> = Vec::new();
        while let Some(&(t, seq, slot)) = self.state.pending.first() {
            if !end_of_input && self.due_at(t) > wm {
                break;
            }
            self.state.pending.pop_first();
            due.push((t, seq, slot));
        }
        // Group rows by (time, key): a key's rows are pushed in time order, and rows with
        // the same time all see each other.
        let mut due: Vec<(i64, u32, u64, u32)> = due
            .into_iter()
            .map(|(t, seq, s)| (t, self.state.rows[s as usize].key, seq, s))
            .collect();
        due.sort_unstable();
        let mut i = 0;
        while i < due.len() {
            let (t, key, _, _) = due[i];
            let mut j = i;
            while j < due.len() && due[j].0 == t && due[j].1 == key {
                self.swag_push(key, t, due[j].3);
                j += 1;
                if let Frame::Rows(_) = self.frame {
                    break;
                }
            }
            self.state.per_key[key as usize].frontier = Some((t, due[j - 1].2));
            match self.frame {
                Frame::Period(p) => self.swag_evict(key, t.saturating_sub(p)),
                Frame::Rows(n) => self.swag_keep(key, n.saturating_add(1)),
            }
            let values = self.swag_query(key);
            for &(_, _, _, s) in &due[i..j] {
                self.emit_row(s, values);
            }
            self.free_temp(values);
            i = j;
        }
        self.finish_outputs();
        // Close rows past their lateness: no more revisions, shadows freed; expire history.
        let close_before = wm.saturating_sub(self.core.config.lateness);
        while let Some(&(t, seq, slot)) = self.state.open_emitted.first() {
            if !end_of_input && t.saturating_add(1) > close_before {
                break;
            }
            self.state.open_emitted.pop_first();
            let _ = seq;
            let shadow = std::mem::replace(&mut self.state.rows[slot as usize].shadow, NO_SLOT);
            if shadow != NO_SLOT {
                self.state.free.push(shadow);
            }
        }
        let expire_before = wm
            .saturating_sub(self.core.config.lateness)
            .saturating_sub(self.period());
        while let Some(&(t, _, slot)) = self.state.retained.first() {
            if !end_of_input && t > expire_before {
                break;
            }
            if !self.state.rows[slot as usize].emitted {
                break;
            }
            self.state.retained.pop_first();
            if self.state.rows[slot as usize].in_swag {
                self.state.rows[slot as usize].expired = true;
            } else {
                self.drop_row(slot);
            }
        }
    }

    fn take_output(&mut self) -> Result<RecordBatch> {
        let times = Int64Array::from(std::mem::take(&mut self.scratch.out_times));
        let tags = std::mem::take(&mut self.scratch.out_tags);
        let out = self
            .core
            .output_batch(&self.scratch.out_keys, vec![times], tags);
        self.scratch.out_keys.clear();
        out
    }

    fn gauges(&self) -> (u64, u64, usize) {
        let s = &self.state;
        let bytes = s.rows.capacity() * std::mem::size_of::<Row>()
            + (s.pending.len() + s.retained.len() + s.open_emitted.len()) * 40;
        (s.pending.len() as u64, s.retained.len() as u64, bytes)
    }

    /// Rows still to come are rows waiting to be emitted, rows not yet late (time at least
    /// `watermark - lateness`), and in updating modes the revisions of rows at or after the
    /// earliest row accepted behind its key's emitted rows (waiting for the next moment
    /// with `revise="watermark"`).
    fn floor(&self, column: FloorColumn) -> Option<i64> {
        if column != FloorColumn::RowTime {
            return None;
        }
        let wm = self.core.watermark.current();
        let mut floor = wm.saturating_sub(self.core.config.lateness);
        if let Some(&(t, _, _)) = self.state.pending.first() {
            floor = floor.min(t);
        }
        for &key in &self.state.rebuild {
            if let Some((from, _)) = self.state.per_key[key as usize].behind {
                floor = floor.min(from);
            }
        }
        Some(floor)
    }

    fn save(&self) -> Result<SlidingSnapshot> {
        let mut free = vec![false; self.state.rows.len()];
        for &s in &self.state.free {
            free[s as usize] = true;
        }
        let live: Vec<u32> = (0..self.state.rows.len() as u32)
            .filter(|&s| !free[s as usize])
            .collect();
        Ok(SlidingSnapshot {
            state: self.state.clone(),
            accs: self.core.save_slots(&live)?,
            live,
        })
    }

    fn load(&mut self, snap: SlidingSnapshot) -> Result<()> {
        let slots = snap.state.rows.len();
        let keys = self.core.keys().len();
        let damaged = snap.live.iter().any(|&s| s as usize >= slots)
            || snap.state.free.iter().any(|&s| s as usize >= slots)
            || snap.state.per_key.len() > keys.max(1)
            || snap
                .state
                .pending
                .iter()
                .any(|&(_, _, s)| s as usize >= slots);
        if damaged {
            return Err(Error::Config(
                "the snapshot's rows point outside its state; it is damaged".into(),
            ));
        }
        self.state = snap.state;
        self.scratch = Scratch::default();
        self.core.load_slots(&snap.live, &snap.accs)
    }
}
