//! rillet's engine: event-time windows over Arrow batches, with a watermark, allowed lateness
//! and late rows routed rather than lost.
//!
//! The engine is pure Rust; the Python bindings live in `python/` behind the `python` feature.
//!
//! ```
//! use _core::window::WindowSpec;
//! let minute = WindowSpec::tumbling(60, 0).unwrap();
//! let (_, w) = minute.indices(125);
//! assert_eq!((minute.start(w), minute.end(w)), (120, 180));
//! ```
#![warn(missing_docs)]

pub mod aggregate;
pub mod anomaly;
pub mod codec;
pub mod engine;
pub mod error;
pub mod join;
pub mod keys;
pub mod operator;
pub mod parallel;
pub mod plan;
pub mod rng;
pub mod source;
pub mod sql;
pub mod time;
pub mod window;

#[cfg(feature = "python")]
mod python;

pub use error::{Error, Result};
