//! Session windows: per key, rows no more than `gap` apart share a session, whose window is
//! `[first, last + gap)`. A row that bridges sessions merges them (accumulators merge, they are
//! not recomputed); a session is freed when it closes.
//!
//! ```text
//!  gap = 5      rows: 0   3        10 12            20
//!  sessions:        [0 ....... 8)  [10 ..... 17)    [20 .. 25)
//!  a late row at 6 bridges the first two:  [0 ..................... 17)
//! ```
//! Two rows exactly `gap` apart share a session (as Flink, Spark and Kafka Streams). A session
//! completes when the watermark reaches its end and closes `lateness` later. A row that joins
//! no open session and whose own window `[t, t + gap)` is already closed is late.

use crate::aggregate::GroupsAccumulator;
use crate::error::{Error, Result};
use crate::keys::KeyInterner;
use crate::operator::{
    as_window_type, batch_times, bind_schema, push_tags, read_batch, route_late, unsupported_time,
    BatchResult, Bound, EmitMode, Metrics, OperatorConfig, Revise, Windowing,
};
use crate::parallel::CHUNK;
use crate::window::Watermark;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use std::collections::{BTreeMap, BTreeSet};

const NO_SLOT: u32 = u32::MAX;
const INSERT: u32 = 0;
const UPDATE_BEFORE: u32 = 1;
const UPDATE_AFTER: u32 = 2;
const DELETE: u32 = 3;

#[derive(Debug, Clone, Copy)]
struct Session {
    key: u32,
    start: i64,
    last: i64,
    live: bool,
    emitted: bool,
    dirty: bool,
    /// In `amended`, waiting for the next moment: a session is listed once however many
    /// late rows change it. Cleared when it is emitted or merged away, which leaves its
    /// entry stale (skipped, as the slot may have been reused).
    queued: bool,
    revision: u32,
    /// Changelog: a slot with the state as last emitted, and the bounds it was emitted with.
    shadow: u32,
    shown_start: i64,
    shown_end: i64,
}

/// One output row waiting to be ordered: sorted by `order`, shown with `start`/`end`.
struct Pending {
    order: (i64, i64, u32, u32),
    key: u32,
    start: i64,
    end: i64,
    values: u32,
    tag: u32,
}

/// The session window operator.
pub struct SessionOperator {
    config: OperatorConfig,
    gap: i64,
    max_duration: Option<i64>,
    bound: Option<Bound>,
    keys: Option<KeyInterner>,
    accs: Vec<Box<dyn GroupsAccumulator>>,
    watermark: Watermark,
    sessions: Vec<Session>,
    free: Vec<u32>,
    by_key: Vec<BTreeMap<i64, u32>>,
    closing: BTreeSet<(i64, u32)>,
    incomplete: BTreeSet<(i64, u32)>,
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    amended: Vec<u32>,
    pending: Vec<Pending>,
    out_keys: Vec<u32>,
    out_starts: Vec<i64>,
    out_ends: Vec<i64>,
    out_tags: Vec<u32>,
    last_early_ms: Option<i64>,
    /// Sessions whose state must be copied to their shadow once the pending rows are out.
    copies_after_flush: Vec<u32>,
    /// Sessions merged away with a pending `-D`, freed once it is out.
    retired: Vec<u32>,
    batch_times: Vec<i64>,
    batch_seq: u64,
    metrics: Metrics,
    finished: bool,
}

impl SessionOperator {
    /// A session operator; `config.window` must be [`Windowing::Session`].
    pub fn new(config: OperatorConfig) -> Result<Self> {
        let Windowing::Session { gap, max_duration } = config.window else {
            return Err(Error::Internal(
                "SessionOperator needs session windowing".into(),
            ));
        };
        if gap <= 0 {
            return Err(Error::Config(format!(
                "a session gap must be a positive duration, got {gap}; e.g. session('30s')"
            )));
        }
        if let Some(m) = max_duration {
            if m < gap {
                return Err(Error::Config(format!(
                    "a session's max_duration ({m}) must be at least its gap ({gap})"
                )));
            }
        }
        Ok(SessionOperator {
            watermark: Watermark::new(config.delay),
            config,
            gap,
            max_duration,
            bound: None,
            keys: None,
            accs: Vec::new(),
            sessions: Vec::new(),
            free: Vec::new(),
            by_key: Vec::new(),
            closing: BTreeSet::new(),
            incomplete: BTreeSet::new(),
            pair_rows: Vec::new(),
            pair_slots: Vec::new(),
            amended: Vec::new(),
            pending: Vec::new(),
            out_keys: Vec::new(),
            out_starts: Vec::new(),
            out_ends: Vec::new(),
            out_tags: Vec::new(),
            last_early_ms: None,
            copies_after_flush: Vec::new(),
            retired: Vec::new(),
            batch_times: Vec::new(),
            batch_seq: 0,
            metrics: Metrics::default(),
            finished: false,
        })
    }

    fn end_of(&self, s: &Session) -> i64 {
        s.last.saturating_add(self.gap)
    }

    /// The schema of emitted batches (known after the first batch).
    pub fn output_schema(&self) -> Option<arrow_schema::SchemaRef> {
        self.bound.as_ref().map(|b| b.output_schema.clone())
    }

    /// Counters and gauges.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Processes one batch that arrived at wall-clock time `now_ms` (used by `early`).
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
            // A session must be able to end (`last + gap`) within 64-bit time.
            if t > i64::MAX - self.gap {
                let supported = (i64::MIN, i64::MAX - self.gap);
                result.rejected_rows.push(i as u32);
                result
                    .reasons
                    .push(unsupported_time(t, supported, self.config.time_unit));
                self.metrics.rows_rejected += 1;
                continue;
            }
            let key = key_ids[i];
            let wm = self.watermark.current();
            let Some(slot) = self.place(batch, t, key)? else {
                route_late(
                    &self.config,
                    &mut self.metrics,
                    &mut result,
                    i,
                    t,
                    wm,
                    "joins no open session and its own session closed",
                )?;
                continue;
            };
            self.metrics.rows_accepted += 1;
            self.pair_rows.push(i as u32);
            self.pair_slots.push(slot);
            let s = &mut self.sessions[slot as usize];
            s.dirty = true;
            if updates && s.emitted && !s.queued {
                s.queued = true;
                self.amended.push(slot);
                self.compact_amended();
            }
            self.watermark.observe(t);
            // A row can complete a session without moving the watermark (a late row that
            // starts a session already complete), so check what is due after every row.
            let revise_now = self.config.revise == Revise::Row
                && (!self.amended.is_empty() || !self.pending.is_empty());
            if revise_now || self.due() {
                self.update_accumulators(batch)?;
                self.moment(false);
            } else if self.pair_rows.len() >= CHUNK {
                // Updating modes may go long between moments: do not let the buffers grow
                // with the batch.
                self.update_accumulators(batch)?;
            }
        }
        self.update_accumulators(batch)?;
        if let Some(now) = now_ms {
            self.early(now);
        }
        result.output = self.take_output()?;
        self.refresh_gauges();
        Ok(result)
    }

    fn due(&self) -> bool {
        let wm = self.watermark.current();
        let closes = self
            .closing
            .first()
            .is_some_and(|&(end, _)| end.saturating_add(self.config.lateness) <= wm);
        let completes = self.config.emit.updates()
            && self.incomplete.first().is_some_and(|&(end, _)| end <= wm);
        closes || completes
    }

    /// Puts a row at `t` into its session (creating or merging sessions); None when late.
    fn place(&mut self, batch: &RecordBatch, t: i64, key: u32) -> Result<Option<u32>> {
        let k = key as usize;
        if k >= self.by_key.len() {
            self.by_key.resize_with(k + 1, BTreeMap::new);
        }
        let (lo, hi) = (t.saturating_sub(self.gap), t.saturating_add(self.gap));
        if let Some(slot) = self.extend_latest(k, t, lo, hi) {
            return Ok(Some(slot));
        }
        let touching: Vec<u32> = self.by_key[k]
            .range(..=hi)
            .rev()
            .map(|(_, &slot)| slot)
            .take_while(|&slot| self.sessions[slot as usize].last >= lo)
            .collect();
        let fits = |start: i64, last: i64| {
            self.max_duration
                .is_none_or(|m| last.saturating_add(self.gap) - start <= m)
        };
        // The sessions this row joins: all it touches, when the merged span fits.
        let mut join: Vec<u32> = Vec::new();
        if !touching.is_empty() {
            let start = touching
                .iter()
                .map(|&s| self.sessions[s as usize].start)
                .min()
                .expect("some");
            let last = touching
                .iter()
                .map(|&s| self.sessions[s as usize].last)
                .max()
                .expect("some");
            if fits(start.min(t), last.max(t)) {
                join = touching;
            } else if let Some(&one) = touching.iter().find(|&&s| {
                let x = &self.sessions[s as usize];
                fits(x.start.min(t), x.last.max(t))
            }) {
                join = vec![one];
            }
        }
        if join.is_empty() {
            let wm = self.watermark.current();
            if t.saturating_add(self.gap)
                .saturating_add(self.config.lateness)
                <= wm
            {
                return Ok(None);
            }
            let slot = self.alloc();
            self.sessions[slot as usize] = Session {
                key,
                start: t,
                last: t,
                live: true,
                emitted: false,
                dirty: false,
                queued: false,
                revision: 0,
                shadow: NO_SLOT,
                shown_start: t,
                shown_end: t,
            };
            for acc in &mut self.accs {
                acc.reset(slot);
            }
            self.by_key[k].insert(t, slot);
            self.index(slot);
            return Ok(Some(slot));
        }
        // Merge into the earliest session; flush buffered rows first so merges see them.
        join.sort_by_key(|&s| self.sessions[s as usize].start);
        let target = join[0];
        if join.len() > 1 {
            self.update_accumulators(batch)?;
        }
        self.unindex(target);
        for &other in &join[1..] {
            self.unindex(other);
            for acc in &mut self.accs {
                acc.merge(target, other);
            }
            let o = self.sessions[other as usize];
            let tg = &mut self.sessions[target as usize];
            tg.start = tg.start.min(o.start);
            tg.last = tg.last.max(o.last);
            self.by_key[k].remove(&o.start);
            self.retire(other);
        }
        let tg = &mut self.sessions[target as usize];
        let old_start = tg.start;
        tg.start = tg.start.min(t);
        tg.last = tg.last.max(t);
        if tg.start != old_start {
            self.by_key[k].remove(&old_start);
            self.by_key[k].insert(tg.start, target);
        }
        self.index(target);
        Ok(Some(target))
    }

    /// The common case of [`Self::place`], without allocating: the row touches exactly one
    /// session of its key, the one starting last at or before `t + gap`, and fits in it.
    /// Returns its slot, or None to take the general path.
    fn extend_latest(&mut self, k: usize, t: i64, lo: i64, hi: i64) -> Option<u32> {
        let mut near = self.by_key[k].range(..=hi).rev();
        let (_, &slot) = near.next()?;
        let s = self.sessions[slot as usize];
        if s.last < lo {
            return None; // touches nothing: a new session
        }
        if near
            .next()
            .is_some_and(|(_, &other)| self.sessions[other as usize].last >= lo)
        {
            return None; // touches two: a merge
        }
        let (start, last) = (s.start.min(t), s.last.max(t));
        if self
            .max_duration
            .is_some_and(|m| last.saturating_add(self.gap) - start > m)
        {
            return None;
        }
        if start == s.start && last == s.last {
            return Some(slot); // inside the session: its bounds and place stay
        }
        self.unindex(slot);
        let tg = &mut self.sessions[slot as usize];
        tg.start = start;
        tg.last = last;
        if start != s.start {
            self.by_key[k].remove(&s.start);
            self.by_key[k].insert(start, slot);
        }
        self.index(slot);
        Some(slot)
    }

    fn alloc(&mut self) -> u32 {
        match self.free.pop() {
            Some(s) => s,
            None => {
                self.sessions.push(Session {
                    key: 0,
                    start: 0,
                    last: 0,
                    live: false,
                    emitted: false,
                    dirty: false,
                    queued: false,
                    revision: 0,
                    shadow: NO_SLOT,
                    shown_start: 0,
                    shown_end: 0,
                });
                (self.sessions.len() - 1) as u32
            }
        }
    }

    fn index(&mut self, slot: u32) {
        let s = self.sessions[slot as usize];
        let end = self.end_of(&s);
        self.closing.insert((end, slot));
        // Only updating modes emit a session when it completes (final mode: when it closes).
        if self.config.emit.updates() && (end > self.watermark.current() || !s.emitted) {
            self.incomplete.insert((end, slot));
        }
    }

    fn unindex(&mut self, slot: u32) {
        let s = self.sessions[slot as usize];
        let end = self.end_of(&s);
        self.closing.remove(&(end, slot));
        if self.config.emit.updates() {
            self.incomplete.remove(&(end, slot));
        }
    }

    /// A session merged away: emits `-D` for it in changelog mode, then frees it.
    fn retire(&mut self, slot: u32) {
        let s = self.sessions[slot as usize];
        if self.config.emit == EmitMode::Changelog && s.emitted {
            self.pending.push(Pending {
                order: (s.shown_end, s.shown_start, s.key, 0),
                key: s.key,
                start: s.shown_start,
                end: s.shown_end,
                values: s.shadow,
                tag: DELETE,
            });
            // The slot and its shadow are freed after the pending rows are snapshotted.
            self.sessions[slot as usize].live = false;
            self.retired.push(slot);
            self.sessions[slot as usize].queued = false;
            return;
        }
        self.release(slot);
    }

    /// Drops stale entries from `amended` once they outnumber the slots, so the list stays
    /// within a small multiple of the live state at amortised constant cost per entry.
    fn compact_amended(&mut self) {
        if self.amended.len() <= 2 * self.sessions.len() + 64 {
            return;
        }
        let sessions = &self.sessions;
        self.amended
            .retain(|&a| sessions[a as usize].live && sessions[a as usize].queued);
        // A reused slot queued again is listed twice.
        self.amended.sort_unstable();
        self.amended.dedup();
    }

    fn release(&mut self, slot: u32) {
        let s = &mut self.sessions[slot as usize];
        s.live = false;
        s.queued = false;
        let shadow = std::mem::replace(&mut s.shadow, NO_SLOT);
        self.free.push(slot);
        if shadow != NO_SLOT {
            self.free.push(shadow);
        }
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

    fn moment(&mut self, end_of_input: bool) {
        let wm = if end_of_input {
            i64::MAX
        } else {
            self.watermark.current()
        };
        let updates = self.config.emit.updates();
        let mut emit: Vec<u32> = Vec::new();
        if updates {
            // Skip stale entries (see `Session::queued`), and sessions an early firing just
            // emitted as they are.
            for slot in std::mem::take(&mut self.amended) {
                let s = &mut self.sessions[slot as usize];
                if s.live && s.queued && (s.dirty || !s.emitted) {
                    emit.push(slot);
                }
                s.queued = false;
            }
            while let Some(&(end, slot)) = self.incomplete.first() {
                if end > wm {
                    break;
                }
                self.incomplete.pop_first();
                let s = &self.sessions[slot as usize];
                if s.dirty || !s.emitted {
                    emit.push(slot);
                }
            }
            emit.sort_unstable();
            emit.dedup();
        }
        let mut closed: Vec<u32> = Vec::new();
        while let Some(&(end, slot)) = self.closing.first() {
            if !end_of_input && end.saturating_add(self.config.lateness) > wm {
                break;
            }
            self.closing.pop_first();
            self.incomplete.remove(&(end, slot));
            if !updates {
                emit.push(slot);
            }
            closed.push(slot);
        }
        self.emit_sessions(emit);
        self.flush_pending();
        for slot in closed {
            let s = self.sessions[slot as usize];
            self.by_key[s.key as usize].remove(&s.start);
            self.release(slot);
        }
    }

    fn emit_sessions(&mut self, emit: Vec<u32>) {
        let mode = self.config.emit;
        let mut copies = Vec::new();
        for slot in emit {
            let s = self.sessions[slot as usize];
            let (start, end) = (s.start, self.end_of(&s));
            let order = |seq: u32| (end, start, s.key, seq);
            let row = |values: u32, tag: u32, seq: u32, start: i64, end: i64| Pending {
                order: order(seq),
                key: s.key,
                start,
                end,
                values,
                tag,
            };
            match mode {
                EmitMode::Final => self.pending.push(row(slot, 0, 0, start, end)),
                EmitMode::Amend => {
                    let rev = if s.emitted { s.revision + 1 } else { 0 };
                    self.sessions[slot as usize].revision = rev;
                    self.pending.push(row(slot, rev, 0, start, end));
                }
                EmitMode::Changelog => {
                    if s.emitted && (s.shown_start, s.shown_end) != (start, end) {
                        // The changelog is keyed by the bounds: a session that grew or merged
                        // is a new row, so the old bounds are deleted, not updated (an upsert
                        // consumer that ignores -U would keep them).
                        let gone = row(s.shadow, DELETE, 0, s.shown_start, s.shown_end);
                        self.pending.push(gone);
                        self.pending.push(row(slot, INSERT, 1, start, end));
                    } else if s.emitted {
                        let before = row(s.shadow, UPDATE_BEFORE, 0, s.shown_start, s.shown_end);
                        self.pending.push(before);
                        self.pending.push(row(slot, UPDATE_AFTER, 1, start, end));
                    } else {
                        self.pending.push(row(slot, INSERT, 0, start, end));
                    }
                    copies.push(slot);
                }
            }
            let s = &mut self.sessions[slot as usize];
            s.emitted = true;
            s.dirty = false;
            s.queued = false;
            s.shown_start = start;
            s.shown_end = end;
        }
        self.copies_after_flush = copies;
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let keys = self.keys.as_ref().expect("bound");
            self.pending.sort_by(|a, b| {
                (a.order.0, a.order.1)
                    .cmp(&(b.order.0, b.order.1))
                    .then_with(|| keys.compare(a.order.2, b.order.2))
                    .then_with(|| a.order.3.cmp(&b.order.3))
            });
            let values: Vec<u32> = self.pending.iter().map(|p| p.values).collect();
            for acc in &mut self.accs {
                acc.snapshot(&values);
            }
            for p in &self.pending {
                self.out_keys.push(p.key);
                self.out_starts.push(p.start);
                self.out_ends.push(p.end);
                self.out_tags.push(p.tag);
            }
            self.metrics.rows_emitted += self.pending.len() as u64;
            self.pending.clear();
        }
        for slot in std::mem::take(&mut self.retired) {
            self.release(slot);
        }
        for slot in std::mem::take(&mut self.copies_after_flush) {
            let shadow = match self.sessions[slot as usize].shadow {
                NO_SLOT => {
                    let sh = self.alloc();
                    self.sessions[slot as usize].shadow = sh;
                    sh
                }
                sh => sh,
            };
            for acc in &mut self.accs {
                acc.copy(shadow, slot);
            }
        }
    }

    fn early(&mut self, now_ms: i64) {
        let Some(every) = self.config.early_ms else {
            return;
        };
        if self.last_early_ms.is_some_and(|last| now_ms - last < every) {
            return;
        }
        self.last_early_ms = Some(now_ms);
        let emit: Vec<u32> = self
            .incomplete
            .iter()
            .map(|&(_, slot)| slot)
            .filter(|&slot| self.sessions[slot as usize].dirty)
            .collect();
        self.emit_sessions(emit);
        self.flush_pending();
    }

    /// A heartbeat with no rows: emits early revisions that are due at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Result<RecordBatch> {
        self.early(now_ms);
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// Moves the watermark to at least `instant`, emitting what that completes or closes.
    pub fn advance_watermark(&mut self, instant: i64) -> Result<RecordBatch> {
        if self.watermark.advance_to(instant) {
            self.moment(false);
        }
        let out = self.take_output()?;
        self.refresh_gauges();
        Ok(out)
    }

    /// End of input: every open session is emitted.
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
        let starts = Int64Array::from(std::mem::take(&mut self.out_starts));
        let ends = Int64Array::from(std::mem::take(&mut self.out_ends));
        columns.push(as_window_type(starts, &bound.window_type)?);
        columns.push(as_window_type(ends, &bound.window_type)?);
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
        m.open_windows = self.closing.len() as u64;
        m.open_panes = self.closing.len() as u64;
        m.keys = self.keys.as_ref().map_or(0, |k| k.len() as u64);
        let accs: usize = self.accs.iter().map(|a| a.size()).sum();
        m.state_bytes = (accs
            + self.sessions.capacity() * std::mem::size_of::<Session>()
            + self.closing.len() * 32
            + self.incomplete.len() * 32
            // Revisions waiting for the next moment.
            + self.amended.capacity() * std::mem::size_of::<u32>()
            + self.keys.as_ref().map_or(0, |k| k.size())) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::tests::{amend_watermark, times};

    #[test]
    fn revise_watermark_buffers_stay_bounded_within_a_large_batch_of_late_rows() {
        let mut op = SessionOperator::new(amend_watermark(Windowing::Session {
            gap: 10,
            max_duration: None,
        }))
        .unwrap();
        let first: Vec<i64> = (0..500).map(|k| k * 100).chain([60_000]).collect();
        op.process_at(&times(&first), None).unwrap();
        let fill: Vec<i64> = (0..50_000).step_by(5).cycle().take(100_000).collect();
        op.process_at(&times(&fill), None).unwrap();
        let held = op.pair_rows.capacity().max(op.pair_slots.capacity());
        assert!(held <= 2 * CHUNK, "{held} pairs buffered");
        // Every session merged into one: a single revision is queued.
        assert_eq!(op.amended.len(), 1);
    }
}
