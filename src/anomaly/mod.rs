//! Anomaly detection in the core: robust random cut forests (Kinesis Data Analytics'
//! `RANDOM_CUT_FOREST`, with its explanation) and hotspots (`HOTSPOTS`), as per-row
//! detectors over Arrow batches whose state carries across batches and snapshots.
//!
//! ```text
//!   detect.rs    Detector: Arrow batches in, detector columns out, a model per key
//!   forest.rs    Forest: trees over a shared point store, time-decayed sampling, shingles
//!   tree.rs      Tree: a random cut tree (insert, delete, score, attribution)
//!   hotspots.rs  Hotspots: dense regions of the last rows
//! ```

pub mod detect;
pub mod forest;
pub mod hotspots;
pub mod tree;

pub use detect::{Detector, DetectorSpec};
