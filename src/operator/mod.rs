//! The operators of a query: aligned windows ([`WindowOperator`]), sessions
//! ([`SessionOperator`]) and per-row sliding windows ([`SlidingOperator`]), each behind the
//! [`Operator`] contract.
//!
//! ```text
//!   mod.rs        re-exports, and build(): the operator a configuration needs
//!   window.rs  session.rs  sliding.rs       the three kernels (per-row pass, emission, state)
//!      |
//!   lifecycle.rs  the contract (Operator), the lifecycle written once, checkpoints
//!   feed.rs       handing (row, slot) pairs to the accumulators, on one thread or two
//!   batch.rs      reading a batch: binding the schema, event times, keys, late rows, tags
//!   format.rs     instants and spans in messages
//!   config.rs     the configuration, results and metrics
//! ```
//!
//! Imports go down this list only. A kernel (`lifecycle::Kernel`) holds what is particular
//! to its windows: its durable state (kept apart from per-batch scratch, so a checkpoint
//! carries the first only) and the per-row pass. Everything around it is written once.
//! Dispatch is dynamic once per call (a batch, a tick); the per-row paths inside a kernel are
//! static.

mod batch;
mod config;
mod feed;
mod format;
mod lifecycle;
pub mod rows;
pub mod session;
pub mod sliding;
pub mod window;

pub use batch::text_times;
pub use config::{
    validate, BatchResult, EmitMode, LateMode, Metrics, OperatorConfig, Revise, Windowing,
    ROW_KINDS,
};
pub use format::{fmt_instant, fmt_span};
pub use lifecycle::{FloorColumn, Operator, SNAPSHOT_FORMAT};
pub use session::SessionOperator;
pub use sliding::SlidingOperator;
pub use window::WindowOperator;

/// For the plan: the output schema a configuration gives an input schema.
#[allow(unused_imports)] // used by the plan (src/plan.rs)
pub(crate) use batch::bind_schema;
/// Batches in snapshots (the joins keep their rows as Arrow IPC).
pub(crate) use batch::{from_ipc, ipc};

use crate::error::Result;

/// Builds the operator a configuration needs, after validating it.
pub fn build(config: OperatorConfig) -> Result<Box<dyn Operator>> {
    validate(&config)?;
    Ok(match config.window {
        Windowing::Aligned(_) => Box::new(WindowOperator::new(config)),
        Windowing::Session { .. } | Windowing::Stagger { .. } => {
            Box::new(SessionOperator::new(config)?)
        }
        Windowing::Sliding { .. } | Windowing::SlidingRows { .. } => {
            Box::new(SlidingOperator::new(config)?)
        }
        Windowing::Rows { .. } => Box::new(rows::RowsOperator::new(config)?),
    })
}
