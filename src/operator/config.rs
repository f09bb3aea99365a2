//! What a query asks of its operator (windows, emission, lateness, aggregates), validated
//! before any data arrives, and what an operator reports back (results, metrics). The lowest
//! module of `operator`: every other one depends on it, it depends on none of them.

use crate::aggregate::AggSpec;
use crate::error::{Error, Result};
use crate::time::TimeUnit;
use crate::window::WindowSpec;
use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

/// When results are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// One row per window and key, when the window closes.
    Final,
    /// A row when the window completes (revision 0), then one per later change while open.
    Amend,
    /// Flink row kinds: `+I` when the window completes, then `-U`/`+U` pairs per change.
    Changelog,
}

impl EmitMode {
    /// True for the modes that emit at completion and again on every change.
    pub fn updates(self) -> bool {
        matches!(self, EmitMode::Amend | EmitMode::Changelog)
    }
}

/// When updating modes (amend, changelog) emit the changes late rows make to windows that
/// were already emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Revise {
    /// A revision after every row that changes an emitted window.
    #[default]
    Row,
    /// Changes are gathered and emitted as one revision per window and key at the next
    /// moment the watermark completes or closes a window (or the input ends): as many
    /// revisions as the watermark makes such moments, whatever the number of late rows and
    /// however the input is cut into batches.
    Watermark,
}

/// Changelog row kinds, as Flink names them.
pub const ROW_KINDS: [&str; 4] = ["+I", "-U", "+U", "-D"];
pub(crate) const INSERT: u32 = 0;
pub(crate) const UPDATE_BEFORE: u32 = 1;
pub(crate) const UPDATE_AFTER: u32 = 2;
pub(crate) const DELETE: u32 = 3;
/// No slot (an accumulator slot not allocated yet).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// What happens to a row whose windows have all closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateMode {
    /// Keep it in the late table.
    Collect,
    /// Count it only.
    Drop,
    /// Fail the query with [`Error::LateData`].
    Raise,
}

/// A validated query configuration. Durations are already in the time column's unit.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// The event-time column.
    pub time_column: String,
    /// The unit the durations were converted to.
    pub time_unit: TimeUnit,
    /// Key columns.
    pub by: Vec<String>,
    /// Window layout.
    pub window: Windowing,
    /// Watermark delay (bounded out-of-orderness).
    pub delay: i64,
    /// Allowed lateness after a window completes.
    pub lateness: i64,
    /// Emission mode.
    pub emit: EmitMode,
    /// With amend or changelog: when changes to emitted windows are emitted.
    pub revise: Revise,
    /// Late-row handling.
    pub late: LateMode,
    /// With amend or changelog: also emit changed open windows at most once per this many
    /// milliseconds of wall-clock time.
    pub early_ms: Option<i64>,
    /// Aggregates, in output order.
    pub aggs: Vec<AggSpec>,
}

/// How rows are grouped into windows.
#[derive(Debug, Clone, Copy)]
pub enum Windowing {
    /// Windows aligned to a grid (tumbling, hopping, cumulative, calendar).
    Aligned(WindowSpec),
    /// Per-key sessions: rows at most `gap` apart share a window `[first, last + gap)`.
    Session {
        /// The largest distance between two rows of one session (inclusive).
        gap: i64,
        /// The longest a session may span, if bounded.
        max_duration: Option<i64>,
    },
    /// Per-key stagger windows (Kinesis' `WINDOWED BY STAGGER`): a key's window opens at the
    /// first row no open window of the key holds, and spans `[first, first + range)`.
    Stagger {
        /// How long each window lasts from its first row.
        range: i64,
    },
    /// No aggregates: rows pass through as they arrive, or (with `windows`) each window's
    /// rows come out together when it closes, with its bounds.
    Rows {
        /// The windows rows are listed by (tumbling, hopping, cumulative), if any.
        windows: Option<WindowSpec>,
    },
    /// One window per row: the same key's rows in `(t - period, t]`.
    Sliding {
        /// How far back each row's window reaches.
        period: i64,
    },
    /// One window per row: the row and the `preceding` rows of its key before it, in
    /// (time, arrival) order (SQL's `ROWS n PRECEDING`).
    SlidingRows {
        /// How many earlier rows each window holds.
        preceding: u64,
    },
}

impl Windowing {
    /// One output row per input row (a sliding window over a period or over rows).
    pub fn per_row(&self) -> bool {
        matches!(
            self,
            Windowing::Sliding { .. } | Windowing::SlidingRows { .. }
        )
    }
}

impl From<WindowSpec> for Windowing {
    fn from(spec: WindowSpec) -> Self {
        Windowing::Aligned(spec)
    }
}

/// What one input batch produced.
#[derive(Debug)]
pub struct BatchResult {
    /// Rows emitted while processing the batch, in emission order.
    pub output: RecordBatch,
    /// Indices (in the batch) of late rows, when they are collected.
    pub late_rows: Vec<u32>,
    /// For each late row, the watermark at its arrival minus its time.
    pub late_by: Vec<i64>,
    /// Indices of rejected rows.
    pub rejected_rows: Vec<u32>,
    /// For each rejected row, why.
    pub reasons: Vec<String>,
}

/// Counters and gauges of a running operator.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Rows seen by the operator.
    pub rows_in: u64,
    /// Rows added to at least one window (or to none, between hopping windows).
    pub rows_accepted: u64,
    /// Rows whose windows had all closed.
    pub rows_late: u64,
    /// Rows with a null or unparseable time, or a time outside what the windows can place.
    pub rows_rejected: u64,
    /// Rows emitted.
    pub rows_emitted: u64,
    /// Current watermark (None before the first row).
    pub watermark: Option<i64>,
    /// Largest event time seen.
    pub max_event_time: Option<i64>,
    /// Distinct open windows.
    pub open_windows: u64,
    /// Open (window, key) panes.
    pub open_panes: u64,
    /// Distinct keys seen.
    pub keys: u64,
    /// Approximate bytes of state.
    pub state_bytes: u64,
}

/// Validates a config before any data arrives.
pub fn validate(config: &OperatorConfig) -> Result<()> {
    if config.delay < 0 {
        return Err(Error::Config(format!(
            "watermark delay must not be negative, got {}; use 0 for in-order streams",
            config.delay
        )));
    }
    if config.lateness < 0 {
        return Err(Error::Config(format!(
            "lateness must not be negative, got {}; use 0 to close windows as soon as \
             the watermark passes their end",
            config.lateness
        )));
    }
    let mut names: Vec<&str> = config.by.iter().map(String::as_str).collect();
    if config.window.per_row() {
        names.push(&config.time_column);
    } else {
        names.extend(["window_start", "window_end"]);
    }
    match config.emit {
        EmitMode::Amend => names.push("revision"),
        EmitMode::Changelog => names.push("op"),
        EmitMode::Final => {}
    }
    if config.early_ms.is_some() && !config.emit.updates() {
        return Err(Error::Config(
            "early= emits speculative revisions, so it needs emit=\"amend\" or \
             emit=\"changelog\""
                .into(),
        ));
    }
    if config.revise != Revise::Row && !config.emit.updates() {
        return Err(Error::Config(
            "revise= says when changes to emitted windows are emitted, so it needs \
             emit=\"amend\" or emit=\"changelog\" (final mode emits each window once)"
                .into(),
        ));
    }
    if config.early_ms.is_some_and(|e| e <= 0) {
        return Err(Error::Config(
            "early= must be a positive duration, e.g. '10s'".into(),
        ));
    }
    for a in &config.aggs {
        if names.contains(&a.name.as_str()) {
            return Err(Error::Config(format!(
                "output column '{}' appears twice; give one of the aggregates another \
                 name with .alias(...)",
                a.name
            )));
        }
        names.push(&a.name);
    }
    Ok(())
}
