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

use super::batch::{route_late, unsupported_time, Times};
use super::config::{
    BatchResult, EmitMode, OperatorConfig, Revise, Windowing, INSERT, NO_SLOT, UPDATE_AFTER,
    UPDATE_BEFORE,
};
use super::feed::{Feeder, CHUNK};
use super::format::fmt_instant;
use super::lifecycle::{core_field, Core, CoreState, FloorColumn, Kernel};
use crate::codec::Blob;
use crate::error::{Error, Result};
use crate::parallel;
use crate::time::TimeUnit;
use crate::window::WindowSpec;
use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::DataType;
use hashbrown::HashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
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

    #[inline(always)] // per row; inlined into assign_rows as before the operator split
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
/// [`Operator::flush`](super::lifecycle::Operator::flush).
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch, StringArray};
/// use arrow_schema::{DataType, Field, Schema};
/// use _core::aggregate::{AggKind, AggSpec};
/// use _core::operator::{EmitMode, LateMode, Operator, OperatorConfig, WindowOperator};
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
/// let r = op.process(&batch, None).unwrap();
/// assert_eq!(r.output.num_rows(), 1);      // [0, 10) for "a" closed when t = 12 arrived
/// assert_eq!(r.late_rows, vec![3]);        // t = 4 came after [0, 10) closed
/// let rest = op.flush().unwrap();
/// assert_eq!(rest.num_rows(), 1);          // [10, 20) for "a", flushed at end of input
/// ```
pub struct WindowOperator {
    core: Core,
    spec: WindowSpec,
    /// Final-mode hopping and cumulative windows keep one pane per slice instead of one per
    /// window: a row updates one slice, and a window is the merge of its slices when it
    /// closes, instead of updating `period / every` windows per row.
    slicer: Option<Slicer>,
    /// The instants a row may have (see [`WindowSpec::supported`]); others are rejected.
    supported: (i64, i64),
    // Thresholds derived from done_complete / done_closed, so the per-row path compares
    // instead of dividing: a row with t < late_before has its last window closed; the
    // watermark reaching next_complete_at / next_close_at is a moment.
    late_before: i64,
    next_complete_at: i64,
    next_close_at: i64,
    state: WindowState,
    scratch: Scratch,
}

/// What a window operator must keep between batches (a checkpoint holds it, and the
/// accumulators' states of its live slots).
#[derive(Clone, Default, Serialize, Deserialize)]
struct WindowState {
    /// Panes by slot; free slots are listed in `free`.
    panes: Vec<Pane>,
    free: Vec<u32>,
    pane_index: HashMap<(i64, u32), u32>,
    /// Slots of the open panes by window (or slice).
    windows: BTreeMap<i64, Vec<u32>>,
    /// Panes changed after they were emitted, waiting for the next moment (updating modes).
    amended: Vec<u32>,
    /// Windows up to this index have completed / closed.
    done_complete: i64,
    done_closed: i64,
}

/// Per-batch working memory, empty between calls (the pane cache aside, which only
/// speeds up lookups).
#[derive(Default)]
struct Scratch {
    pair_rows: Vec<u32>,
    pair_slots: Vec<u32>,
    /// Slots first used while the accumulators are with the second thread, not yet reset.
    fresh: Vec<u32>,
    out_windows: Vec<i64>,
    out_keys: Vec<u32>,
    out_revisions: Vec<u32>,
    /// Each key's last (window, slot): most rows go where their key's previous row went.
    last_pane: Vec<(i64, u32)>,
}

/// A checkpoint of a window operator: its state and the accumulators of its live slots.
#[derive(Serialize, Deserialize)]
pub(crate) struct WindowSnapshot {
    state: WindowState,
    live: Vec<u32>,
    accs: Vec<Blob>,
}

impl WindowOperator {
    /// A new operator; the input schema is bound on the first batch.
    ///
    /// Panics when `config.window` is not [`Windowing::Aligned`]; `operator::build` picks the
    /// operator for any windowing.
    pub fn new(config: OperatorConfig) -> Self {
        let Windowing::Aligned(spec) = config.window else {
            panic!("WindowOperator needs aligned windows; use operator::build for sessions");
        };
        let slicer = Slicer::for_spec(&spec, &config);
        let mut op = WindowOperator {
            spec,
            slicer,
            supported: spec.supported(),
            late_before: i64::MIN,
            next_complete_at: i64::MIN,
            next_close_at: i64::MIN,
            state: WindowState {
                done_complete: spec.passed_upto(i64::MIN, 0),
                done_closed: spec.passed_upto(i64::MIN, config.lateness),
                ..WindowState::default()
            },
            scratch: Scratch::default(),
            core: Core::new(config),
        };
        op.refresh_thresholds();
        op
    }

    fn refresh_thresholds(&mut self) {
        let spec = self.spec;
        self.late_before = spec.start(self.state.done_closed.saturating_add(1));
        self.next_complete_at = spec.end(self.state.done_complete.saturating_add(1));
        self.next_close_at = spec
            .end(self.state.done_closed.saturating_add(1))
            .saturating_add(self.core.config.lateness);
    }

    /// The configuration.
    pub fn config(&self) -> &OperatorConfig {
        &self.core.config
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
        let amend = self.core.config.emit.updates();
        let gappy = spec.has_gaps();
        let mut windows = WindowCache::new(&spec);
        // Rows are judged one at a time; `i` indexes the batch and its times.
        for (i, &key) in key_ids.iter().enumerate() {
            let t = match times.value(i) {
                Ok(t) => t,
                Err(reason) => {
                    result.reject(&mut self.core.metrics, i, reason);
                    continue;
                }
            };
            if t < self.supported.0 || t > self.supported.1 {
                let why = unsupported_time(t, self.supported, self.core.config.time_unit);
                result.reject(&mut self.core.metrics, i, why);
                continue;
            }
            if t < self.late_before
                && (!gappy || {
                    let (first, last) = spec.indices(t);
                    first <= last
                })
            {
                let wm = self.core.watermark.current();
                route_late(
                    &self.core.config,
                    &mut self.core.metrics,
                    result,
                    i,
                    t,
                    wm,
                    "is in windows that all closed",
                )?;
                continue;
            }
            self.core.metrics.rows_accepted += 1;
            let (first, last) = windows.indices(&spec, t);
            if let Some(sl) = self.slicer {
                let slot = self.pane(sl.slice_of(first, last), key);
                self.scratch.pair_rows.push(i as u32);
                self.scratch.pair_slots.push(slot);
            } else {
                for w in first.max(self.state.done_closed + 1)..=last {
                    let slot = self.pane(w, key);
                    self.scratch.pair_rows.push(i as u32);
                    self.scratch.pair_slots.push(slot);
                    let p = &mut self.state.panes[slot as usize];
                    p.dirty = true;
                    if amend && w <= self.state.done_complete && !p.queued {
                        p.queued = true;
                        self.state.amended.push(slot);
                    }
                }
            }
            let moved = self.core.watermark.observe(t);
            let wm = self.core.watermark.current();
            let revise_now =
                self.core.config.revise == Revise::Row && !self.state.amended.is_empty();
            let due = revise_now
                || (moved && (wm >= self.next_close_at || (amend && wm >= self.next_complete_at)));
            if due {
                self.feed(feed, true)?;
                self.moment(false);
            } else if self.scratch.pair_rows.len() >= CHUNK {
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
        self.core.config.emit == EmitMode::Final
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
        let delay = self.core.config.delay;
        let mut start = 0;
        while start < n {
            let next_close_at = self.next_close_at;
            let end = match times {
                Times::Values(v, nulls) => first_due(&v[..n], start, delay, next_close_at, *nulls),
                Times::Text(..) => (start..n).find(|&i| {
                    times
                        .value(i)
                        .is_ok_and(|t| t.saturating_sub(delay) >= next_close_at)
                }),
            };
            let (end, due) = end.map_or((n, false), |i| (i + 1, true));
            let view = PaneView {
                spec: self.spec,
                supported: self.supported,
                unit: self.core.config.time_unit,
                slicer: self.slicer,
                late_before: self.late_before,
                index: &self.state.pane_index,
                last_pane: &self.scratch.last_pane,
                panes: &self.state.panes,
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
            let current = self.core.watermark.current();
            let mut before = i64::MIN;
            for part in parts {
                for (r, reason) in part.rejected {
                    result.reject(&mut self.core.metrics, r as usize, reason);
                }
                for (r, t, max) in part.late {
                    let wm = current.max(before.max(max).saturating_sub(delay));
                    let why = "is in windows that all closed";
                    route_late(
                        &self.core.config,
                        &mut self.core.metrics,
                        result,
                        r as usize,
                        t,
                        wm,
                        why,
                    )?;
                }
                if let Some(max) = part.max {
                    before = before.max(max);
                    self.core.watermark.observe(max);
                }
                let offset = self.scratch.pair_rows.len();
                self.core.metrics.rows_accepted += part.rows.len() as u64;
                self.scratch.pair_rows.extend_from_slice(&part.rows);
                self.scratch.pair_slots.extend_from_slice(&part.slots);
                for (j, w) in part.misses {
                    let r = part.rows[j as usize] as usize;
                    self.scratch.pair_slots[offset + j as usize] = self.pane(w, key_ids[r]);
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
            &mut self.core.accs,
            &mut self.scratch.pair_rows,
            &mut self.scratch.pair_slots,
            &mut self.scratch.fresh,
            sync,
        )
    }

    /// The type of the window bound columns (known after the first batch).
    pub fn window_type(&self) -> Option<DataType> {
        self.core.bound.as_ref().map(|b| b.window_type.clone())
    }

    fn pane(&mut self, w: i64, key: u32) -> u32 {
        let k = key as usize;
        if let Some(&(cw, cs)) = self.scratch.last_pane.get(k) {
            let p = &self.state.panes[cs as usize];
            if cw == w && p.live && p.window == w && p.key == key {
                return cs;
            }
        }
        let slot = match self.state.pane_index.get(&(w, key)) {
            Some(&s) => s,
            None => {
                let s = match self.state.free.pop() {
                    Some(s) => s,
                    None => {
                        self.state.panes.push(Pane::new(0, 0, false));
                        (self.state.panes.len() - 1) as u32
                    }
                };
                self.state.panes[s as usize] = Pane::new(w, key, true);
                if self.core.accs.is_empty() {
                    // The accumulators are with the second thread (see `Feeder`).
                    self.scratch.fresh.push(s);
                } else {
                    for acc in &mut self.core.accs {
                        acc.reset(s);
                    }
                }
                self.state.pane_index.insert((w, key), s);
                self.state.windows.entry(w).or_default().push(s);
                s
            }
        };
        if k >= self.scratch.last_pane.len() {
            self.scratch.last_pane.resize(k + 1, (i64::MIN, 0));
        }
        self.scratch.last_pane[k] = (w, slot);
        slot
    }

    /// Emits the windows in `(after, upto]` that hold data, each the merge of its slices.
    fn emit_sliced(&mut self, sl: Slicer, after: i64, upto: i64) {
        let last_slice = sl.slices(upto).1;
        let mut wins: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        for (&slice, _) in self.state.windows.range(..=last_slice) {
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
            for (_, slots) in self.state.windows.range(lo..=hi) {
                let seq = by_key.len() as u32;
                by_key.extend(
                    slots
                        .iter()
                        .map(|&s| (self.state.panes[s as usize].key, seq, s)),
                );
            }
            by_key.sort_unstable();
            let mut i = 0;
            while i < by_key.len() {
                let key = by_key[i].0;
                let temp = self.temp_slot();
                while i < by_key.len() && by_key[i].0 == key {
                    for acc in &mut self.core.accs {
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
        let keys = self.core.keys.as_ref().expect("bound");
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| keys.compare(a.1, b.1)));
        let temps: Vec<u32> = entries.iter().map(|e| e.2).collect();
        for acc in &mut self.core.accs {
            acc.snapshot(&temps);
        }
        for (w, key, temp) in entries {
            self.scratch.out_windows.push(w);
            self.scratch.out_keys.push(key);
            self.scratch.out_revisions.push(0);
            self.state.free.push(temp);
        }
        self.core.metrics.rows_emitted += temps.len() as u64;
    }

    fn temp_slot(&mut self) -> u32 {
        let s = match self.state.free.pop() {
            Some(s) => s,
            None => {
                self.state.panes.push(Pane::new(0, 0, false));
                (self.state.panes.len() - 1) as u32
            }
        };
        for acc in &mut self.core.accs {
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
        let keys = self.core.keys.as_ref().expect("bound");
        let panes = &self.state.panes;
        emit.sort_unstable_by(|&a, &b| {
            let (pa, pb) = (&panes[a as usize], &panes[b as usize]);
            pa.window
                .cmp(&pb.window)
                .then_with(|| keys.compare(pa.key, pb.key))
        });
        let mode = self.core.config.emit;
        let mut values: Vec<u32> = Vec::with_capacity(emit.len());
        let mut copies: Vec<u32> = Vec::new();
        for &s in &emit {
            let p = self.state.panes[s as usize];
            let mut push = |op: &mut Self, values_from: u32, tag: u32| {
                values.push(values_from);
                op.scratch.out_windows.push(p.window);
                op.scratch.out_keys.push(p.key);
                op.scratch.out_revisions.push(tag);
            };
            match mode {
                EmitMode::Final => push(self, s, 0),
                EmitMode::Amend => {
                    let rev = if p.emitted { p.revision + 1 } else { 0 };
                    self.state.panes[s as usize].revision = rev;
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
            let p = &mut self.state.panes[s as usize];
            p.emitted = true;
            p.dirty = false;
            p.queued = false;
        }
        for acc in &mut self.core.accs {
            acc.snapshot(&values);
        }
        // Changelog: remember what was emitted, for the next -U.
        for s in copies {
            let shadow = match self.state.panes[s as usize].shadow {
                NO_SLOT => {
                    let sh = match self.state.free.pop() {
                        Some(sh) => sh,
                        None => {
                            self.state.panes.push(Pane::new(0, 0, false));
                            (self.state.panes.len() - 1) as u32
                        }
                    };
                    self.state.panes[s as usize].shadow = sh;
                    sh
                }
                sh => sh,
            };
            for acc in &mut self.core.accs {
                acc.copy(shadow, s);
            }
        }
        self.core.metrics.rows_emitted += values.len() as u64;
    }
}

impl Kernel for WindowOperator {
    const KIND: &'static str = "window";
    const COLUMNS: &'static [FloorColumn] = &[FloorColumn::WindowStart, FloorColumn::WindowEnd];
    type State = WindowSnapshot;

    core_field!();

    fn fresh(config: OperatorConfig) -> Result<Self> {
        Ok(WindowOperator::new(config))
    }

    fn run(
        &mut self,
        batch: &RecordBatch,
        times: &Times<'_>,
        key_ids: &[u32],
        result: &mut BatchResult,
    ) -> Result<()> {
        let n = batch.num_rows();
        let amend = self.core.config.emit.updates();
        let keyless = self
            .core
            .bound
            .as_ref()
            .is_none_or(|b| b.key_indices.is_empty());
        // Large batches of final-mode queries without key columns (whose accumulators are the
        // bulk of the work, in one slot per window) hand the accumulator updates to a second
        // thread, in row order, while this one assigns rows to panes; the updates are synced
        // before every moment, so what is emitted is the same either way. With key columns
        // the two threads are better spent encoding the keys and then updating accumulators
        // side by side, or the slots of one accumulator (as measured on the benchmark
        // workload); updating modes have a moment at each amended row, too often to hand over.
        let times_buf = std::mem::take(&mut self.core.batch_times);
        let seq = self.core.batch_seq;
        // Accumulators that tally a batch per value on the worker threads themselves are
        // better served by judging rows on two threads as well (see `assign_split`).
        let tallied = !self.core.accs.is_empty() && self.core.accs.iter().all(|a| a.tallies(batch));
        let outcome = if !amend && keyless && !tallied && Feeder::worth_it(n) {
            std::thread::scope(|scope| {
                let mut feed = Feeder::new(Some(scope), batch, &times_buf, seq);
                let assigned = self.assign_rows(times, key_ids, result, &mut feed);
                let synced = self.feed(&mut feed, true);
                assigned.and(synced)
            })
        } else {
            let mut feed = Feeder::new(None, batch, &times_buf, seq);
            self.assign_rows(times, key_ids, result, &mut feed)
                .and_then(|()| self.feed(&mut feed, true))
        };
        self.core.batch_times = times_buf;
        outcome
    }

    /// Emits the changed, not yet complete panes when the early interval has passed.
    fn early(&mut self, now_ms: i64) {
        if !self.core.early_due(now_ms) {
            return;
        }
        let lo = self.state.done_complete.saturating_add(1);
        let mut emit: Vec<u32> = Vec::new();
        for (_, slots) in self.state.windows.range(lo..) {
            emit.extend(
                slots
                    .iter()
                    .copied()
                    .filter(|&s| self.state.panes[s as usize].dirty),
            );
        }
        self.emit_panes(emit);
    }

    /// Emits what is due after the watermark moved (or at end of input), then frees closed panes.
    fn moment(&mut self, end_of_input: bool) {
        let spec = self.spec;
        let amend = self.core.config.emit.updates();
        let wm = self.core.watermark.current();
        let mut emit: Vec<u32> = Vec::new();
        if amend {
            // Each pane is listed once (see `Pane::queued`).
            emit.append(&mut self.state.amended);
        }
        let complete = if end_of_input {
            i64::MAX
        } else {
            spec.passed_upto(wm, 0)
        };
        if complete > self.state.done_complete {
            if amend {
                for (_, slots) in self
                    .state
                    .windows
                    .range(self.state.done_complete.saturating_add(1)..=complete)
                {
                    // With early firing a pane may already show its current value.
                    emit.extend(slots.iter().copied().filter(|&s| {
                        let p = &self.state.panes[s as usize];
                        p.dirty || !p.emitted
                    }));
                }
            }
            self.state.done_complete = complete;
        }
        let closed = if end_of_input {
            i64::MAX
        } else {
            spec.passed_upto(wm, self.core.config.lateness)
        };
        let mut freed: Vec<u32> = Vec::new();
        if let Some(sl) = self.slicer {
            if closed > self.state.done_closed {
                self.emit_sliced(sl, self.state.done_closed, closed);
                while let Some((&slice, _)) = self.state.windows.first_key_value() {
                    if sl.windows_of(slice).1 > closed {
                        break;
                    }
                    let (_, slots) = self.state.windows.pop_first().expect("present");
                    freed.extend(slots);
                }
                self.state.done_closed = closed;
            }
        } else if closed > self.state.done_closed {
            let rest = if closed == i64::MAX {
                BTreeMap::new()
            } else {
                self.state.windows.split_off(&(closed + 1))
            };
            let closing = std::mem::replace(&mut self.state.windows, rest);
            for (_, slots) in closing {
                if !amend {
                    emit.extend_from_slice(&slots);
                }
                freed.extend(slots);
            }
            self.state.done_closed = closed;
        }
        self.emit_panes(emit);
        for s in freed {
            let p = &mut self.state.panes[s as usize];
            p.live = false;
            let shadow = std::mem::replace(&mut p.shadow, NO_SLOT);
            self.state.pane_index.remove(&(p.window, p.key));
            self.state.free.push(s);
            if shadow != NO_SLOT {
                self.state.free.push(shadow);
            }
        }
        self.refresh_thresholds();
    }

    fn take_output(&mut self) -> Result<RecordBatch> {
        let spec = self.spec;
        let windows = &self.scratch.out_windows;
        let starts = Int64Array::from_iter_values(windows.iter().map(|&w| spec.start(w)));
        let ends = Int64Array::from_iter_values(windows.iter().map(|&w| spec.end(w)));
        let tags = std::mem::take(&mut self.scratch.out_revisions);
        let out = self
            .core
            .output_batch(&self.scratch.out_keys, vec![starts, ends], tags);
        self.scratch.out_windows.clear();
        self.scratch.out_keys.clear();
        out
    }

    fn gauges(&self) -> (u64, u64, usize) {
        let (mut open_windows, mut open_panes) = (
            self.state.windows.len() as u64,
            self.state.pane_index.len() as u64,
        );
        if let Some(sl) = self.slicer {
            // State is kept per slice; report open windows and (window, key) panes.
            let mut panes: hashbrown::HashSet<(i64, u32)> = hashbrown::HashSet::new();
            let mut windows: hashbrown::HashSet<i64> = hashbrown::HashSet::new();
            for (&slice, slots) in &self.state.windows {
                let (lo, hi) = sl.windows_of(slice);
                for w in lo.max(self.state.done_closed.saturating_add(1))..=hi {
                    windows.insert(w);
                    panes.extend(slots.iter().map(|&s| (w, self.state.panes[s as usize].key)));
                }
            }
            open_windows = windows.len() as u64;
            open_panes = panes.len() as u64;
        }
        let index =
            self.state.pane_index.capacity() * (std::mem::size_of::<((i64, u32), u32)>() + 1);
        let panes = self.state.panes.capacity() * std::mem::size_of::<Pane>();
        // Revisions waiting for the next moment.
        let queued = self.state.amended.capacity() * std::mem::size_of::<u32>();
        (open_windows, open_panes, index + panes + queued)
    }

    /// Every mode emits a window at the latest when it closes and never after, and no row
    /// enters a closed window: what is emitted from now on is in the first window not yet
    /// closed or a later one, and window bounds grow with the index.
    fn floor(&self, column: FloorColumn) -> Option<i64> {
        let next = self.state.done_closed.saturating_add(1);
        match column {
            FloorColumn::WindowStart => Some(self.spec.start(next)),
            FloorColumn::WindowEnd => Some(self.spec.end(next)),
            FloorColumn::RowTime => None,
        }
    }

    fn save(&self) -> Result<WindowSnapshot> {
        let mut live: Vec<u32> = Vec::with_capacity(self.state.pane_index.len());
        for &s in self.state.pane_index.values() {
            live.push(s);
            let shadow = self.state.panes[s as usize].shadow;
            if shadow != NO_SLOT {
                live.push(shadow);
            }
        }
        live.sort_unstable();
        Ok(WindowSnapshot {
            state: self.state.clone(),
            accs: self.core.save_slots(&live)?,
            live,
        })
    }

    fn load(&mut self, snap: WindowSnapshot) -> Result<()> {
        let slots = snap.state.panes.len();
        let keys = self.core.keys().len();
        let damaged = snap.live.iter().any(|&s| s as usize >= slots)
            || snap.state.pane_index.iter().any(|(&(_, key), &s)| {
                s as usize >= slots || (key as usize >= keys && !self.core.config.by.is_empty())
            });
        if damaged {
            return Err(Error::Config(
                "the snapshot's panes point outside its state; it is damaged".into(),
            ));
        }
        self.state = snap.state;
        self.scratch = Scratch::default();
        self.core.load_slots(&snap.live, &snap.accs)?;
        self.refresh_thresholds();
        Ok(())
    }

    fn mergeable(&self) -> Result<()> {
        if self.core.config.emit == EmitMode::Final {
            return Ok(());
        }
        Err(Error::Config(
            "a window operator's state is mergeable in final mode only: amend and changelog \
             emit revisions as rows arrive, which instances fed different rows cannot agree \
             on; use emit=\"final\", or run one operator per key range (repartition the \
             input by key)"
                .into(),
        ))
    }

    /// Adds the other instance's open panes to this one's, pane by pane (the same window or
    /// slice and key), through the accumulators' `merge`.
    fn merge_state(&mut self, other: WindowSnapshot, other_core: &CoreState) -> Result<()> {
        let key_map: Vec<u32> = match other_core.key_columns()? {
            Some(keys) => {
                let interner = self.core.keys.as_mut().expect("bound before merging");
                interner.batch_ids(keys.columns(), keys.num_rows())?
            }
            None => vec![0],
        };
        let mut panes: Vec<((i64, u32), u32)> = other
            .state
            .pane_index
            .iter()
            .map(|(&k, &s)| (k, s))
            .collect();
        panes.sort_unstable();
        if let Some(&((w, _), _)) = panes.first() {
            let last = self.slicer.map_or(w, |sl| sl.windows_of(w).1);
            if last <= self.state.done_closed {
                return Err(Error::Config(format!(
                    "the partial state holds rows of a window this operator already closed \
                     ([{}, {})); merge partial states taken at the same watermark (advance \
                     every instance to the same instants)",
                    fmt_instant(self.spec.start(last), self.core.config.time_unit),
                    fmt_instant(self.spec.end(last), self.core.config.time_unit),
                )));
            }
        }
        let temps: Vec<u32> = other.live.iter().map(|_| self.temp_slot()).collect();
        self.core.load_slots(&temps, &other.accs)?;
        for ((w, key), s) in panes {
            let at = other.live.binary_search(&s).map_err(|_| {
                Error::Config("the partial state's panes point outside it; it is damaged".into())
            })?;
            let our_key = *key_map.get(key as usize).ok_or_else(|| {
                Error::Config("the partial state's keys are incomplete; it is damaged".into())
            })?;
            let slot = self.pane(w, our_key);
            for acc in &mut self.core.accs {
                acc.merge(slot, temps[at]);
            }
            self.state.panes[slot as usize].dirty = true;
        }
        self.state.free.extend(temps);
        let wm = other_core.watermark();
        let mut moved = false;
        if let Some(max) = wm.max_seen() {
            moved |= self.core.watermark.observe(max);
        }
        moved |= self.core.watermark.advance_to(wm.current());
        if moved {
            // Rows this closes come out with the next call's output.
            self.moment(false);
        }
        Ok(())
    }
}

/// The first row from `start` on whose valid time `t` has `t - delay` (saturating) at or past
/// `at`: the row that makes a moment due. Scanned 64 rows at a time, with one comparison per
/// row against `at + delay` that the compiler can vectorise.
fn first_due(
    v: &[i64],
    start: usize,
    delay: i64,
    at: i64,
    nulls: Option<&arrow_buffer::NullBuffer>,
) -> Option<usize> {
    let due = |i: usize| v[i].saturating_sub(delay) >= at && nulls.is_none_or(|b| b.is_valid(i));
    // `t - delay >= at` is `t >= at + delay` (the delay is not negative) unless the
    // subtraction saturates, which makes it true only for `at == i64::MIN`.
    debug_assert!(delay >= 0, "watermark delays are not negative");
    if at == i64::MIN {
        return (start..v.len()).find(|&i| due(i));
    }
    let Some(threshold) = at.checked_add(delay) else {
        return None; // past every time
    };
    let mut from = start;
    for chunk in v[start..].chunks(64) {
        if chunk.iter().fold(false, |any, &t| any | (t >= threshold)) {
            if let Some(i) = (from..from + chunk.len()).find(|&i| due(i)) {
                return Some(i);
            }
        }
        from += chunk.len();
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::aggregate::{self, AggSpec};
    use crate::operator::{LateMode, Operator};
    use std::sync::Arc;

    #[test]
    fn the_due_row_is_found_as_a_row_by_row_scan_finds_it() {
        let mut rng = crate::rng::Rng::new(11);
        let extremes = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for round in 0..400 {
            let n = rng.below(300) as usize;
            let pick = |rng: &mut crate::rng::Rng| {
                if rng.below(8) == 0 {
                    extremes[rng.below(extremes.len() as u64) as usize]
                } else {
                    rng.below(1000) as i64 - 500
                }
            };
            let v: Vec<i64> = (0..n).map(|_| pick(&mut rng)).collect();
            let valid: Vec<bool> = (0..n).map(|_| rng.below(5) != 0).collect();
            let nulls = arrow_buffer::NullBuffer::from(valid);
            let nulls = (round % 2 == 0).then_some(&nulls);
            let delay = [0, 3, 100, i64::MAX][rng.below(4) as usize];
            let at = pick(&mut rng);
            let start = if n == 0 {
                0
            } else {
                rng.below(n as u64) as usize
            };
            let want = (start..n)
                .find(|&i| v[i].saturating_sub(delay) >= at && nulls.is_none_or(|b| b.is_valid(i)));
            assert_eq!(
                first_due(&v, start, delay, at, nulls),
                want,
                "{v:?} {start} {delay} {at}"
            );
        }
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
        op.process(&times(&(0..1000).collect::<Vec<_>>()), None)
            .unwrap();
        op.process(&times(&vec![500; 20_000]), None).unwrap();
        let held = op
            .scratch
            .pair_rows
            .capacity()
            .max(op.scratch.pair_slots.capacity());
        assert!(held <= 2 * CHUNK, "{held} pairs buffered");
        assert!(
            op.state.amended.len() <= 50,
            "{} panes queued",
            op.state.amended.len()
        );
    }
}
