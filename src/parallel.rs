//! The engine's worker threads: one rayon pool shared by every operator, sized by
//! [`set_threads`] (default: `RILLET_THREADS`, else the machine's cores).
//!
//! Work is split only where the result cannot depend on it: a batch's key tuples are
//! dictionary-encoded in row ranges whose dictionaries are merged in row order (the same codes
//! as one pass); a final-mode window operator judges the rows of a stretch between two
//! moments in two halves, reading its panes without changing them (`assign_split` in
//! `operator.rs`); the accumulators of a query are updated side by side (each owns its
//! state), an accumulator's slots are split at a point that balances their rows, and exact
//! top-K tallies two halves of the pairs; and a feeder (`operator/feed.rs`) hands the accumulator updates of a
//! large batch of a query without keys to a second thread, in row order, while the calling
//! thread assigns the next rows to panes. Small batches stay on the calling thread.
//!
//! With more than one thread, an operator processes a large batch on one of the pool's threads
//! (`engine::Operator::process_at`), so these steps share the work with the other thread
//! rather than each waking two threads from outside.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, OnceLock, RwLock};

/// Below this many rows, a batch is not worth handing to other threads.
pub const MIN_ROWS: usize = 1 << 15;

/// Below this many rows, a stretch of a large batch (the rows between two moments) is not
/// worth splitting between threads.
pub const MIN_STRETCH: usize = 1 << 13;

static POOL: OnceLock<RwLock<Arc<ThreadPool>>> = OnceLock::new();

fn default_threads() -> usize {
    std::env::var("RILLET_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(threads: usize) -> Result<Arc<ThreadPool>> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("rillet-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Internal(format!("cannot start {threads} worker threads: {e}")))
}

fn cell() -> &'static RwLock<Arc<ThreadPool>> {
    POOL.get_or_init(|| {
        let pool = build(default_threads()).unwrap_or_else(|_| build(1).expect("one thread"));
        RwLock::new(pool)
    })
}

/// The pool operators run their parallel steps on.
pub fn pool() -> Arc<ThreadPool> {
    cell()
        .read()
        .map(|p| p.clone())
        .unwrap_or_else(|e| e.into_inner().clone())
}

/// How many threads the engine uses.
pub fn threads() -> usize {
    pool().current_num_threads()
}

/// Uses `n` threads from now on (1: everything on the calling thread).
pub fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Config(
            "threads must be at least 1 (1 runs everything on the calling thread)".into(),
        ));
    }
    let pool = build(n)?;
    match cell().write() {
        Ok(mut p) => *p = pool,
        Err(e) => *e.into_inner() = pool,
    }
    Ok(())
}

/// Row ranges `(start, len)` for splitting `n` rows among the threads, or one range when
/// the batch is small or there is one thread.
pub fn ranges(n: usize) -> Vec<(usize, usize)> {
    let parts = threads().min(n / MIN_ROWS).max(1);
    let size = n.div_ceil(parts);
    (0..parts)
        .map(|p| (p * size, size.min(n - p * size)))
        .filter(|&(_, len)| len > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_rows_once() {
        for n in [0, 1, MIN_ROWS - 1, MIN_ROWS * 2 + 7, 1_000_003] {
            let r = ranges(n);
            assert_eq!(r.iter().map(|&(_, l)| l).sum::<usize>(), n, "{n}");
            for w in r.windows(2) {
                assert_eq!(w[0].0 + w[0].1, w[1].0);
            }
        }
        assert!(set_threads(0).is_err());
    }
}
