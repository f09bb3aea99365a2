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

use super::batch::{route_late, unsupported_time, Times};
use super::config::{
    BatchResult, EmitMode, OperatorConfig, Revise, Windowing, DELETE, INSERT, NO_SLOT,
    UPDATE_AFTER, UPDATE_BEFORE,
};
use super::feed::{apply, CHUNK};
use super::lifecycle::{core_field, Core, FloorColumn, Kernel};
use crate::codec::Blob;
use crate::error::{Error, Result};
use arrow_array::{Int64Array, RecordBatch};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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
    core: Core,
    gap: i64,
    max_duration: Option<i64>,
    /// Stagger windows: `[start, start + gap)`, fixed from the first row.
    stagger: bool,
    state: SessionState,
    scratch: Scratch,
}

/// What a session operator keeps between batches (a checkpoint holds it, and the
/// accumulators' states of its live slots).
#[derive(Clone, Default, Serialize, Deserialize)]
struct SessionState {
    /// Sessions by slot; free slots are listed in `free`.
    sessions: Vec<Session>,
    free: Vec<u32>,
    /// Each key's open sessions by start.
    by_key: Vec<BTreeMap<i64, u32>>,
    /// Open sessions by end (they close `lateness` after it).
    closing: BTreeSet<(i64, u32)>,
    /// Updating modes: sessions not yet complete (or not yet emitted), by end.
    incomplete: BTreeSet<(i64, u32)>,
    /// Sessions changed after they were emitted, waiting for the next moment.
    amended: Vec<u32>,
}

/// Per-batch working memory, empty between calls.
#[derive(Default)]
struct Scratch {
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    pending: Vec<Pending>,
    out_keys: Vec<u32>,
    out_starts: Vec<i64>,
    out_ends: Vec<i64>,
    out_tags: Vec<u32>,
    /// Sessions whose state must be copied to their shadow once the pending rows are out.
    copies_after_flush: Vec<u32>,
    /// Sessions merged away with a pending `-D`, freed once it is out.
    retired: Vec<u32>,
}

/// A checkpoint of a session operator: its state and the accumulators of its live slots.
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionSnapshot {
    state: SessionState,
    live: Vec<u32>,
    accs: Vec<Blob>,
}

impl SessionOperator {
    /// A session operator; `config.window` must be [`Windowing::Session`].
    pub fn new(config: OperatorConfig) -> Result<Self> {
        let (gap, max_duration, stagger) = match config.window {
            Windowing::Session { gap, max_duration } => (gap, max_duration, false),
            Windowing::Stagger { range } => (range, Some(range), true),
            _ => {
                return Err(Error::Internal(
                    "SessionOperator needs session or stagger windowing".into(),
                ))
            }
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
            core: Core::new(config),
            gap,
            max_duration,
            stagger,
            state: SessionState::default(),
            scratch: Scratch::default(),
        })
    }

    fn end_of(&self, s: &Session) -> i64 {
        if self.stagger {
            s.start.saturating_add(self.gap)
        } else {
            s.last.saturating_add(self.gap)
        }
    }

    fn due(&self) -> bool {
        let wm = self.core.watermark.current();
        let closes = self
            .state
            .closing
            .first()
            .is_some_and(|&(end, _)| end.saturating_add(self.core.config.lateness) <= wm);
        let completes = self.core.config.emit.updates()
            && self
                .state
                .incomplete
                .first()
                .is_some_and(|&(end, _)| end <= wm);
        closes || completes
    }

    /// Puts a row at `t` into its session (creating or merging sessions); None when late.
    fn place(&mut self, batch: &RecordBatch, t: i64, key: u32) -> Result<Option<u32>> {
        let k = key as usize;
        if k >= self.state.by_key.len() {
            self.state.by_key.resize_with(k + 1, BTreeMap::new);
        }
        if self.stagger {
            // The key's window holding t, if any: the one starting last at or before t (all
            // last `gap`, so an earlier one ends earlier). Its bounds never move.
            if let Some((_, &slot)) = self.state.by_key[k].range(..=t).next_back() {
                if self.state.sessions[slot as usize]
                    .start
                    .saturating_add(self.gap)
                    > t
                {
                    return Ok(Some(slot));
                }
            }
            return Ok(self.open(key, t));
        }
        let (lo, hi) = (t.saturating_sub(self.gap), t.saturating_add(self.gap));
        if let Some(slot) = self.extend_latest(k, t, lo, hi) {
            return Ok(Some(slot));
        }
        let touching: Vec<u32> = self.state.by_key[k]
            .range(..=hi)
            .rev()
            .map(|(_, &slot)| slot)
            .take_while(|&slot| self.state.sessions[slot as usize].last >= lo)
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
                .map(|&s| self.state.sessions[s as usize].start)
                .min()
                .expect("some");
            let last = touching
                .iter()
                .map(|&s| self.state.sessions[s as usize].last)
                .max()
                .expect("some");
            if fits(start.min(t), last.max(t)) {
                join = touching;
            } else if let Some(&one) = touching.iter().find(|&&s| {
                let x = &self.state.sessions[s as usize];
                fits(x.start.min(t), x.last.max(t))
            }) {
                join = vec![one];
            }
        }
        if join.is_empty() {
            return Ok(self.open(key, t));
        }
        // Merge into the earliest session; flush buffered rows first so merges see them.
        join.sort_by_key(|&s| self.state.sessions[s as usize].start);
        self.merge_into(batch, k, t, join)
    }

    /// A new window for a row at `t` of `key`, or None when it would already be closed (the
    /// row is late).
    fn open(&mut self, key: u32, t: i64) -> Option<u32> {
        let k = key as usize;
        let wm = self.core.watermark.current();
        if t.saturating_add(self.gap)
            .saturating_add(self.core.config.lateness)
            <= wm
        {
            return None;
        }
        let slot = self.alloc();
        self.state.sessions[slot as usize] = Session {
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
        for acc in &mut self.core.accs {
            acc.reset(slot);
        }
        self.state.by_key[k].insert(t, slot);
        self.index(slot);
        Some(slot)
    }

    /// Merges the sessions `join` (earliest first) and the row at `t` into the first.
    fn merge_into(
        &mut self,
        batch: &RecordBatch,
        k: usize,
        t: i64,
        join: Vec<u32>,
    ) -> Result<Option<u32>> {
        let target = join[0];
        if join.len() > 1 {
            self.update_accumulators(batch)?;
        }
        self.unindex(target);
        for &other in &join[1..] {
            self.unindex(other);
            for acc in &mut self.core.accs {
                acc.merge(target, other);
            }
            let o = self.state.sessions[other as usize];
            let tg = &mut self.state.sessions[target as usize];
            tg.start = tg.start.min(o.start);
            tg.last = tg.last.max(o.last);
            self.state.by_key[k].remove(&o.start);
            self.retire(other);
        }
        let tg = &mut self.state.sessions[target as usize];
        let old_start = tg.start;
        tg.start = tg.start.min(t);
        tg.last = tg.last.max(t);
        if tg.start != old_start {
            self.state.by_key[k].remove(&old_start);
            self.state.by_key[k].insert(tg.start, target);
        }
        self.index(target);
        Ok(Some(target))
    }

    /// The common case of [`Self::place`], without allocating: the row touches exactly one
    /// session of its key, the one starting last at or before `t + gap`, and fits in it.
    /// Returns its slot, or None to take the general path.
    fn extend_latest(&mut self, k: usize, t: i64, lo: i64, hi: i64) -> Option<u32> {
        let mut near = self.state.by_key[k].range(..=hi).rev();
        let (_, &slot) = near.next()?;
        let s = self.state.sessions[slot as usize];
        if s.last < lo {
            return None; // touches nothing: a new session
        }
        if near
            .next()
            .is_some_and(|(_, &other)| self.state.sessions[other as usize].last >= lo)
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
        let tg = &mut self.state.sessions[slot as usize];
        tg.start = start;
        tg.last = last;
        if start != s.start {
            self.state.by_key[k].remove(&s.start);
            self.state.by_key[k].insert(start, slot);
        }
        self.index(slot);
        Some(slot)
    }

    fn alloc(&mut self) -> u32 {
        match self.state.free.pop() {
            Some(s) => s,
            None => {
                self.state.sessions.push(Session {
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
                (self.state.sessions.len() - 1) as u32
            }
        }
    }

    fn index(&mut self, slot: u32) {
        let s = self.state.sessions[slot as usize];
        let end = self.end_of(&s);
        self.state.closing.insert((end, slot));
        // Only updating modes emit a session when it completes (final mode: when it closes).
        if self.core.config.emit.updates() && (end > self.core.watermark.current() || !s.emitted) {
            self.state.incomplete.insert((end, slot));
        }
    }

    fn unindex(&mut self, slot: u32) {
        let s = self.state.sessions[slot as usize];
        let end = self.end_of(&s);
        self.state.closing.remove(&(end, slot));
        if self.core.config.emit.updates() {
            self.state.incomplete.remove(&(end, slot));
        }
    }

    /// A session merged away: emits `-D` for it in changelog mode, then frees it.
    fn retire(&mut self, slot: u32) {
        let s = self.state.sessions[slot as usize];
        if self.core.config.emit == EmitMode::Changelog && s.emitted {
            self.scratch.pending.push(Pending {
                order: (s.shown_end, s.shown_start, s.key, 0),
                key: s.key,
                start: s.shown_start,
                end: s.shown_end,
                values: s.shadow,
                tag: DELETE,
            });
            // The slot and its shadow are freed after the pending rows are snapshotted.
            self.state.sessions[slot as usize].live = false;
            self.scratch.retired.push(slot);
            self.state.sessions[slot as usize].queued = false;
            return;
        }
        self.release(slot);
    }

    /// Drops stale entries from `amended` once they outnumber the slots, so the list stays
    /// within a small multiple of the live state at amortised constant cost per entry.
    fn compact_amended(&mut self) {
        if self.state.amended.len() <= 2 * self.state.sessions.len() + 64 {
            return;
        }
        let sessions = &self.state.sessions;
        self.state
            .amended
            .retain(|&a| sessions[a as usize].live && sessions[a as usize].queued);
        // A reused slot queued again is listed twice.
        self.state.amended.sort_unstable();
        self.state.amended.dedup();
    }

    fn release(&mut self, slot: u32) {
        let s = &mut self.state.sessions[slot as usize];
        s.live = false;
        s.queued = false;
        let shadow = std::mem::replace(&mut s.shadow, NO_SLOT);
        self.state.free.push(slot);
        if shadow != NO_SLOT {
            self.state.free.push(shadow);
        }
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

    fn emit_sessions(&mut self, emit: Vec<u32>) {
        let mode = self.core.config.emit;
        let mut copies = Vec::new();
        for slot in emit {
            let s = self.state.sessions[slot as usize];
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
                EmitMode::Final => self.scratch.pending.push(row(slot, 0, 0, start, end)),
                EmitMode::Amend => {
                    let rev = if s.emitted { s.revision + 1 } else { 0 };
                    self.state.sessions[slot as usize].revision = rev;
                    self.scratch.pending.push(row(slot, rev, 0, start, end));
                }
                EmitMode::Changelog => {
                    if s.emitted && (s.shown_start, s.shown_end) != (start, end) {
                        // The changelog is keyed by the bounds: a session that grew or merged
                        // is a new row, so the old bounds are deleted, not updated (an upsert
                        // consumer that ignores -U would keep them).
                        let gone = row(s.shadow, DELETE, 0, s.shown_start, s.shown_end);
                        self.scratch.pending.push(gone);
                        self.scratch.pending.push(row(slot, INSERT, 1, start, end));
                    } else if s.emitted {
                        let before = row(s.shadow, UPDATE_BEFORE, 0, s.shown_start, s.shown_end);
                        self.scratch.pending.push(before);
                        self.scratch
                            .pending
                            .push(row(slot, UPDATE_AFTER, 1, start, end));
                    } else {
                        self.scratch.pending.push(row(slot, INSERT, 0, start, end));
                    }
                    copies.push(slot);
                }
            }
            let s = &mut self.state.sessions[slot as usize];
            s.emitted = true;
            s.dirty = false;
            s.queued = false;
            s.shown_start = start;
            s.shown_end = end;
        }
        self.scratch.copies_after_flush = copies;
    }

    fn flush_pending(&mut self) {
        if !self.scratch.pending.is_empty() {
            let keys = self.core.keys.as_ref().expect("bound");
            self.scratch.pending.sort_by(|a, b| {
                (a.order.0, a.order.1)
                    .cmp(&(b.order.0, b.order.1))
                    .then_with(|| keys.compare(a.order.2, b.order.2))
                    .then_with(|| a.order.3.cmp(&b.order.3))
            });
            let values: Vec<u32> = self.scratch.pending.iter().map(|p| p.values).collect();
            for acc in &mut self.core.accs {
                acc.snapshot(&values);
            }
            for p in &self.scratch.pending {
                self.scratch.out_keys.push(p.key);
                self.scratch.out_starts.push(p.start);
                self.scratch.out_ends.push(p.end);
                self.scratch.out_tags.push(p.tag);
            }
            self.core.metrics.rows_emitted += self.scratch.pending.len() as u64;
            self.scratch.pending.clear();
        }
        for slot in std::mem::take(&mut self.scratch.retired) {
            self.release(slot);
        }
        for slot in std::mem::take(&mut self.scratch.copies_after_flush) {
            let shadow = match self.state.sessions[slot as usize].shadow {
                NO_SLOT => {
                    let sh = self.alloc();
                    self.state.sessions[slot as usize].shadow = sh;
                    sh
                }
                sh => sh,
            };
            for acc in &mut self.core.accs {
                acc.copy(shadow, slot);
            }
        }
    }
}

impl Kernel for SessionOperator {
    const KIND: &'static str = "session";
    const COLUMNS: &'static [FloorColumn] = &[FloorColumn::WindowStart, FloorColumn::WindowEnd];
    type State = SessionSnapshot;

    core_field!();

    fn fresh(config: OperatorConfig) -> Result<Self> {
        SessionOperator::new(config)
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
            // A session must be able to end (`last + gap`) within 64-bit time.
            if t > i64::MAX - self.gap {
                let supported = (i64::MIN, i64::MAX - self.gap);
                let why = unsupported_time(t, supported, self.core.config.time_unit);
                result.reject(&mut self.core.metrics, i, why);
                continue;
            }
            let key = key_ids[i];
            let wm = self.core.watermark.current();
            let Some(slot) = self.place(batch, t, key)? else {
                route_late(
                    &self.core.config,
                    &mut self.core.metrics,
                    result,
                    i,
                    t,
                    wm,
                    "joins no open session and its own session closed",
                )?;
                continue;
            };
            self.core.metrics.rows_accepted += 1;
            self.scratch.pair_rows.push(i as u32);
            self.scratch.pair_slots.push(slot);
            let s = &mut self.state.sessions[slot as usize];
            s.dirty = true;
            if updates && s.emitted && !s.queued {
                s.queued = true;
                self.state.amended.push(slot);
                self.compact_amended();
            }
            self.core.watermark.observe(t);
            // A row can complete a session without moving the watermark (a late row that
            // starts a session already complete), so check what is due after every row.
            let revise_now = self.core.config.revise == Revise::Row
                && (!self.state.amended.is_empty() || !self.scratch.pending.is_empty());
            if revise_now || self.due() {
                self.update_accumulators(batch)?;
                self.moment(false);
            } else if self.scratch.pair_rows.len() >= CHUNK {
                // Updating modes may go long between moments: do not let the buffers grow
                // with the batch.
                self.update_accumulators(batch)?;
            }
        }
        self.update_accumulators(batch)
    }

    fn early(&mut self, now_ms: i64) {
        if !self.core.early_due(now_ms) {
            return;
        }
        let emit: Vec<u32> = self
            .state
            .incomplete
            .iter()
            .map(|&(_, slot)| slot)
            .filter(|&slot| self.state.sessions[slot as usize].dirty)
            .collect();
        self.emit_sessions(emit);
        self.flush_pending();
    }

    fn moment(&mut self, end_of_input: bool) {
        let wm = if end_of_input {
            i64::MAX
        } else {
            self.core.watermark.current()
        };
        let updates = self.core.config.emit.updates();
        let mut emit: Vec<u32> = Vec::new();
        if updates {
            // Skip stale entries (see `Session::queued`), and sessions an early firing just
            // emitted as they are.
            for slot in std::mem::take(&mut self.state.amended) {
                let s = &mut self.state.sessions[slot as usize];
                if s.live && s.queued && (s.dirty || !s.emitted) {
                    emit.push(slot);
                }
                s.queued = false;
            }
            while let Some(&(end, slot)) = self.state.incomplete.first() {
                if end > wm {
                    break;
                }
                self.state.incomplete.pop_first();
                let s = &self.state.sessions[slot as usize];
                if s.dirty || !s.emitted {
                    emit.push(slot);
                }
            }
            emit.sort_unstable();
            emit.dedup();
        }
        let mut closed: Vec<u32> = Vec::new();
        while let Some(&(end, slot)) = self.state.closing.first() {
            if !end_of_input && end.saturating_add(self.core.config.lateness) > wm {
                break;
            }
            self.state.closing.pop_first();
            self.state.incomplete.remove(&(end, slot));
            if !updates {
                emit.push(slot);
            }
            closed.push(slot);
        }
        self.emit_sessions(emit);
        self.flush_pending();
        for slot in closed {
            let s = self.state.sessions[slot as usize];
            self.state.by_key[s.key as usize].remove(&s.start);
            self.release(slot);
        }
    }

    fn take_output(&mut self) -> Result<RecordBatch> {
        let starts = Int64Array::from(std::mem::take(&mut self.scratch.out_starts));
        let ends = Int64Array::from(std::mem::take(&mut self.scratch.out_ends));
        let tags = std::mem::take(&mut self.scratch.out_tags);
        let out = self
            .core
            .output_batch(&self.scratch.out_keys, vec![starts, ends], tags);
        self.scratch.out_keys.clear();
        out
    }

    fn gauges(&self) -> (u64, u64, usize) {
        let open = self.state.closing.len() as u64;
        let bytes = self.state.sessions.capacity() * std::mem::size_of::<Session>()
            + (self.state.closing.len() + self.state.incomplete.len()) * 32
            // Revisions waiting for the next moment.
            + self.state.amended.capacity() * std::mem::size_of::<u32>();
        (open, open, bytes)
    }

    /// Rows still to come belong to an open session (whose end only grows; a changelog's
    /// `-U`/`-D` rows show the bounds it was last emitted with) or to a session a row not
    /// yet late opens: its end is past `watermark - lateness`. A session's start can move
    /// back by a gap with every row that joins it, so it is bounded only by `max_duration`
    /// (a session spans at most that much before its end).
    fn floor(&self, column: FloorColumn) -> Option<i64> {
        let wm = self.core.watermark.current();
        let lateness = self.core.config.lateness;
        let new_end = wm.saturating_sub(lateness).saturating_add(1);
        let open_end = self.state.closing.first().map_or(i64::MAX, |&(end, _)| end);
        let (mut shown_start, mut shown_end) = (i64::MAX, i64::MAX);
        if self.core.config.emit == EmitMode::Changelog {
            for &(_, slot) in &self.state.closing {
                let s = &self.state.sessions[slot as usize];
                if s.emitted {
                    shown_start = shown_start.min(s.shown_start);
                    shown_end = shown_end.min(s.shown_end);
                }
            }
        }
        let end = new_end.min(open_end).min(shown_end);
        match column {
            FloorColumn::WindowEnd => Some(end),
            FloorColumn::WindowStart => self
                .max_duration
                .map(|m| end.saturating_sub(m).min(shown_start)),
            FloorColumn::RowTime => None,
        }
    }

    fn save(&self) -> Result<SessionSnapshot> {
        let mut live: Vec<u32> = Vec::new();
        for (slot, s) in self.state.sessions.iter().enumerate() {
            if s.live {
                live.push(slot as u32);
                if s.shadow != NO_SLOT {
                    live.push(s.shadow);
                }
            }
        }
        live.sort_unstable();
        Ok(SessionSnapshot {
            state: self.state.clone(),
            accs: self.core.save_slots(&live)?,
            live,
        })
    }

    fn load(&mut self, snap: SessionSnapshot) -> Result<()> {
        let slots = snap.state.sessions.len();
        let keys = self.core.keys().len();
        let damaged = snap.live.iter().any(|&s| s as usize >= slots)
            || snap.state.by_key.len() > keys.max(1)
            || snap.state.closing.iter().any(|&(_, s)| s as usize >= slots);
        if damaged {
            return Err(Error::Config(
                "the snapshot's sessions point outside its state; it is damaged".into(),
            ));
        }
        self.state = snap.state;
        self.scratch = Scratch::default();
        self.core.load_slots(&snap.live, &snap.accs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::window::tests::{amend_watermark, times};
    use crate::operator::Operator;

    #[test]
    fn revise_watermark_buffers_stay_bounded_within_a_large_batch_of_late_rows() {
        let mut op = SessionOperator::new(amend_watermark(Windowing::Session {
            gap: 10,
            max_duration: None,
        }))
        .unwrap();
        let first: Vec<i64> = (0..500).map(|k| k * 100).chain([60_000]).collect();
        op.process(&times(&first), None).unwrap();
        let fill: Vec<i64> = (0..50_000).step_by(5).cycle().take(100_000).collect();
        op.process(&times(&fill), None).unwrap();
        let held = op
            .scratch
            .pair_rows
            .capacity()
            .max(op.scratch.pair_slots.capacity());
        assert!(held <= 2 * CHUNK, "{held} pairs buffered");
        // Every session merged into one: a single revision is queued.
        assert_eq!(op.state.amended.len(), 1);
    }
}
