//! Where an operator's `(row, slot)` pairs go: straight into the accumulators, or to a
//! second thread that applies them in row order (see [`Feeder`]).

use crate::aggregate::{GroupsAccumulator, RowContext};
use crate::error::{Error, Result};
use crate::parallel::{pool, threads, MIN_ROWS, MIN_STRETCH};
use arrow_array::RecordBatch;
use std::sync::mpsc;
use std::thread::{Scope, ScopedJoinHandle};

/// The accumulators of an operator.
pub(crate) type Accumulators = Vec<Box<dyn GroupsAccumulator>>;

/// Pairs handed to the second thread at a time: large enough that handing over costs
/// nothing measurable, small enough that both threads start working early in a batch.
pub(crate) const CHUNK: usize = 1 << 14;

/// A chunk of work: `(rows, slots)` pairs, after resetting the slots first used in it.
type Chunk = (Vec<u32>, Vec<u32>, Vec<u32>);

/// The second thread, holding the accumulators while it applies chunks in order.
struct Worker<'s> {
    tx: mpsc::Sender<Chunk>,
    done: ScopedJoinHandle<'s, (Accumulators, Result<()>)>,
}

/// Where an operator's `(row, slot)` pairs go while it reads a batch: straight into the
/// accumulators, or (pipelined) in chunks to a second thread that applies them in row order
/// while this thread assigns the next rows to panes.
///
/// While the accumulators are with the second thread, the operator's `accs` is empty and it
/// records the slots it starts using in `fresh` instead of resetting them; the worker resets
/// them before applying the chunk they came with. Slots are freed only at a moment, after a
/// [`Feeder::push`] with `sync`, so a fresh slot is never one the worker still updates.
pub(crate) struct Feeder<'s, 'e> {
    scope: Option<&'s Scope<'s, 'e>>,
    worker: Option<Worker<'s>>,
    batch: &'e RecordBatch,
    times: &'e [i64],
    seq: u64,
}

impl<'s, 'e> Feeder<'s, 'e> {
    /// A feeder for one batch; `scope` set pipelines the updates.
    pub fn new(
        scope: Option<&'s Scope<'s, 'e>>,
        batch: &'e RecordBatch,
        times: &'e [i64],
        seq: u64,
    ) -> Self {
        Feeder {
            scope,
            worker: None,
            batch,
            times,
            seq,
        }
    }

    /// Whether the updates go to a second thread.
    pub fn pipelined(&self) -> bool {
        self.scope.is_some()
    }

    /// Whether a batch of `rows` rows is worth pipelining.
    pub fn worth_it(rows: usize) -> bool {
        rows >= MIN_ROWS && threads() > 1
    }

    /// Applies (or hands over) the buffered pairs and clears them. With `sync`, waits until
    /// every pair so far is applied and the accumulators are back in `accs` (before a moment
    /// reads them, and at the end of a batch).
    pub fn push(
        &mut self,
        accs: &mut Accumulators,
        rows: &mut Vec<u32>,
        slots: &mut Vec<u32>,
        fresh: &mut Vec<u32>,
        sync: bool,
    ) -> Result<()> {
        let Some(scope) = self.scope else {
            reset(accs, fresh);
            return apply(accs, self.batch, rows, slots, self.times, self.seq, true);
        };
        if rows.len() >= CHUNK || (sync && self.worker.is_some() && !rows.is_empty()) {
            if self.worker.is_none() {
                reset(accs, fresh);
                self.worker = Some(self.spawn(scope, std::mem::take(accs)));
            }
            let chunk = (
                std::mem::replace(rows, Vec::with_capacity(CHUNK)),
                std::mem::replace(slots, Vec::with_capacity(CHUNK)),
                std::mem::take(fresh),
            );
            let worker = self.worker.as_ref().expect("spawned");
            // A worker that stopped early has its error waiting in `done`.
            let _ = worker.tx.send(chunk);
        }
        if sync {
            if let Some(worker) = self.worker.take() {
                drop(worker.tx);
                let (back, outcome) = worker
                    .done
                    .join()
                    .map_err(|_| Error::Internal("an accumulator thread panicked".into()))?;
                *accs = back;
                outcome?;
            }
            reset(accs, fresh);
            apply(accs, self.batch, rows, slots, self.times, self.seq, true)?;
        }
        Ok(())
    }

    fn spawn(&self, scope: &'s Scope<'s, 'e>, mut accs: Accumulators) -> Worker<'s> {
        let (tx, rx) = mpsc::channel::<Chunk>();
        let (batch, times, seq) = (self.batch, self.times, self.seq);
        let done = scope.spawn(move || {
            while let Some((mut rows, mut slots, mut fresh)) = receive(&rx) {
                reset(&mut accs, &mut fresh);
                if let Err(e) = apply(&mut accs, batch, &mut rows, &mut slots, times, seq, false) {
                    return (accs, Err(e));
                }
            }
            (accs, Ok(()))
        });
        Worker { tx, done }
    }
}

/// Receives the next message, spinning briefly before sleeping: the other thread of a batch
/// hands work over every fraction of a millisecond, and waking a sleeping thread can take
/// longer than that on a virtual machine.
fn receive<T>(rx: &mpsc::Receiver<T>) -> Option<T> {
    let started = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) => {
                if started.elapsed() > std::time::Duration::from_micros(200) {
                    return rx.recv().ok();
                }
                std::hint::spin_loop();
            }
        }
    }
}

fn reset(accs: &mut Accumulators, fresh: &mut Vec<u32>) {
    for &s in fresh.iter() {
        for acc in accs.iter_mut() {
            acc.reset(s);
        }
    }
    fresh.clear();
}

/// Adds the buffered `(row, slot)` pairs of a batch to every accumulator, then clears them;
/// with `parallel`, large ones update side by side.
pub(crate) fn apply(
    accs: &mut [Box<dyn GroupsAccumulator>],
    batch: &RecordBatch,
    rows: &mut Vec<u32>,
    slots: &mut Vec<u32>,
    times: &[i64],
    seq_base: u64,
    parallel: bool,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ctx = RowContext {
        times,
        seq_base,
        parallel,
    };
    if parallel && accs.len() > 1 && rows.len() >= MIN_STRETCH && threads() > 1 {
        // Each accumulator owns its state: they are updated side by side.
        use rayon::prelude::*;
        let (r, s) = (&rows[..], &slots[..]);
        pool().install(|| {
            accs.par_iter_mut()
                .try_for_each(|acc| acc.update(batch, r, s, &ctx))
        })?;
    } else {
        for acc in accs.iter_mut() {
            acc.update(batch, rows, slots, &ctx)?;
        }
    }
    rows.clear();
    slots.clear();
    Ok(())
}
