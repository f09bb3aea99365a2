//! How many windows a row may belong to, below the window layouts that check it.

use crate::error::Error;

/// The most windows one row may belong to. Each is a pane to update and, per key, an output
/// row, so a layout with more (`cumulative('365d', '1s')`: 31,536,000) turns a handful of rows
/// into gigabytes. 10,000 covers a day of 10-second hops (8,640) and an hour of 1-second ones
/// (3,600) with room to spare; a window spec beyond it is refused before any row.
pub const MAX_WINDOWS_PER_ROW: i64 = 10_000;

/// The error for a window layout that puts `count` windows on a row (`ratio` says how:
/// "period / every").
pub(crate) fn too_many_windows(kind: &str, count: i64, ratio: &str) -> Error {
    Error::Config(format!(
        "{kind} windows of this period and {what} would put {count} windows on every row \
         ({ratio}), more than the limit of {MAX_WINDOWS_PER_ROW}: each is a pane to update and \
         an output row per key; use a longer {what} (at least period / {MAX_WINDOWS_PER_ROW}) \
         or a shorter period",
        what = if kind == "cumulative" {
            "step"
        } else {
            "every"
        },
    ))
}
