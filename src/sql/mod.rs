//! The SQL front end: Kinesis Data Analytics applications and Flink window queries, read with
//! `sqlparser` and planned into what the Python API builds (a stream with its row-wise
//! steps, a window, keys and aggregates, and the steps applied to what it emits).
//!
//! ```text
//!   lex.rs      tokens, statements, and the pre-pass (SELECT STREAM, STEP BY, PUMP, STAGGER, ...)
//!   dialect.rs  the sqlparser dialect the rewritten tokens are read in
//!   planner.rs  statements -> Program: in-application streams, pumps, queries
//! ```
//!
//! Scalar expressions (`WHERE`, computed keys and aggregate inputs, the select list over
//! what a window emits) are not evaluated here: they are written back as SQL text with every
//! name resolved to a quoted column, for polars' SQL (`pl.sql_expr`) to run per micro-batch,
//! where the Python API's `filter` and `with_columns` run. The windows, keys, aggregates,
//! watermarks and late rows are the Rust core's, as for a query built in Python.
//!
//! ```
//! use _core::sql::{plan_query, Inputs};
//! let inputs = Inputs::from_json(r#"{"bids": {"columns": ["ts", "item", "price"]}}"#).unwrap();
//! let q = plan_query(
//!     "SELECT window_start, window_end, item, SUM(price) AS total \
//!      FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' MINUTES)) \
//!      GROUP BY window_start, window_end, item",
//!     &inputs,
//! ).unwrap();
//! assert_eq!(q.columns, ["window_start", "window_end", "item", "total"]);
//! ```

mod dialect;
mod lex;
mod planner;

use crate::error::Error;
use serde::{Deserialize, Serialize};
use sqlparser::tokenizer::Span;
use std::collections::BTreeMap;

pub use planner::{plan_application, plan_query};

/// A SQL text that cannot be read or planned, at a line and column (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// What is wrong, and what would be right.
    pub message: String,
    /// Line of the offending text (0 when unknown).
    pub line: u64,
    /// Column of the offending text (0 when unknown).
    pub column: u64,
}

impl SqlError {
    pub(crate) fn at(message: impl Into<String>, line: u64, column: u64) -> SqlError {
        SqlError {
            message: message.into(),
            line,
            column,
        }
    }

    pub(crate) fn span(message: impl Into<String>, span: Span) -> SqlError {
        SqlError::at(message, span.start.line, span.start.column)
    }

    /// The engine error, its message showing the line of `sql` with a caret under the column.
    pub fn into_error(self, sql: &str) -> Error {
        let mut message = if self.line > 0 {
            format!(
                "line {}, column {}: {}",
                self.line, self.column, self.message
            )
        } else {
            self.message.clone()
        };
        if self.line > 0 {
            if let Some(text) = sql.lines().nth(self.line as usize - 1) {
                let shown: String = text
                    .chars()
                    .map(|c| if c == '\t' { ' ' } else { c })
                    .collect();
                let pad = " ".repeat(self.column.saturating_sub(1) as usize);
                message.push_str(&format!("\n  {shown}\n  {pad}^"));
            }
        }
        Error::Sql {
            message,
            line: self.line,
            column: self.column,
        }
    }
}

/// What the caller knows of each input a query may name: its columns (when known before
/// the run, for case-insensitive matching and early errors) and its event-time column (a
/// `Stream`'s `time=`, or a query's output column that carries its time).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InputInfo {
    /// The input's columns; `None` when they are only known once it is read.
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// The event-time column the caller declared; `None` for a raw source (its time comes
    /// from the query: a window's column, or `ROWTIME`, the arrival time).
    #[serde(default)]
    pub time: Option<String>,
    /// A query input's column that is Flink's `window_time` (its window's end less a
    /// millisecond), if it has one.
    #[serde(default)]
    pub window_time: Option<String>,
    /// What the input is in a join: `"frame"` (a DataFrame or Arrow table given as it is: a
    /// table to enrich a stream with, or a stream when the join bounds its time),
    /// `"reference"` (a reference file: always a table); `None` for a stream.
    #[serde(default)]
    pub kind: Option<String>,
}

/// The inputs a query or application may read, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inputs(pub BTreeMap<String, InputInfo>);

impl Inputs {
    /// Reads `{"name": {"columns": [...] | null, "time": "col" | null}, ...}`.
    pub fn from_json(text: &str) -> crate::Result<Inputs> {
        serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("not a valid description of SQL inputs: {e}")))
    }
}

/// A value a step computes: SQL text for polars, a column, a truncated time, or every
/// column.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scalar {
    /// An expression in polars' SQL, every name a quoted column; `line`/`column` locate it
    /// in the query for errors.
    Sql {
        /// The expression.
        text: String,
        /// Its line in the query text.
        line: u64,
        /// Its column in the query text.
        column: u64,
    },
    /// A column as it is.
    Col(String),
    /// A time column truncated to a multiple of a duration (STEP, FLOOR ... TO).
    Truncate {
        /// The time column.
        column: String,
        /// A polars duration (`"10s"`, `"1m"`) or an integer count.
        every: Duration,
    },
    /// Every column of the input (`SELECT *` over an input whose columns are not known yet),
    /// except those listed.
    All(Vec<String>),
    /// A typed null (a target column a pump does not fill).
    Null,
}

/// A duration: polars text (`"90s"`) or an integer count (integer time columns).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Duration {
    /// A polars duration string.
    Text(String),
    /// Units of an integer time column.
    Count(i64),
}

/// A row-wise step over a micro-batch (before the window) or over what the window emits.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Keep the rows where the value is true.
    Filter(Scalar),
    /// Add or replace columns.
    WithColumns(Vec<(String, Scalar)>),
    /// Exactly these columns, in order.
    Select(Vec<(String, Scalar)>),
    /// Sort the emitted rows of each moment (stable).
    Sort {
        /// Columns to sort by.
        by: Vec<String>,
        /// Descending, per column.
        descending: Vec<bool>,
        /// Nulls last, per column.
        nulls_last: Vec<bool>,
    },
    /// A top-K list column as one row per item: `value` and `count` fields into columns.
    Explode {
        /// The list column.
        column: String,
        /// The column the item's value goes to.
        value: String,
        /// The column the item's count goes to.
        count: String,
    },
    /// Cast columns to SQL types (`BIGINT`, `VARCHAR`, `TIMESTAMP`, ...), as a pump inserts
    /// into a declared stream.
    Cast(Vec<(String, String)>),
    /// A detector's columns added to every row (`RANDOM_CUT_FOREST`, `HOTSPOTS`): the
    /// detector spec of `rl.random_cut_forest` / `rl.hotspots` (its numeric columns chosen
    /// at the first batch), with Kinesis' output columns.
    Detect(serde_json::Value),
    /// Join another input: a table (enrichment), or a stream within a time bound (an
    /// interval join) or as of each row's time (a temporal join).
    Join(Box<JoinPlan>),
}

/// A join, in the Python API's terms (`Stream.join`, `join_interval`, `join_asof`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JoinPlan {
    /// The other side: its input, time and row-wise steps (no window).
    pub right: QueryPlan,
    /// `table` (the other side is a table), `interval` or `asof` (two streams).
    pub kind: String,
    /// `inner` or `left`.
    pub how: String,
    /// The keys on this side (columns of the rows so far).
    pub left_on: Vec<String>,
    /// The keys on the other side (its columns).
    pub right_on: Vec<String>,
    /// Appended to the other side's columns whose names this side has.
    pub suffix: String,
    /// An interval join's bounds on `other.time - self.time`.
    pub lower: Option<Duration>,
    /// See `lower`.
    pub upper: Option<Duration>,
    /// Where the join is written (line), for errors found when it is built.
    pub line: u64,
    /// Where the join is written (column).
    pub column: u64,
}

/// The window a query groups by, in the Python API's terms (`rl.tumbling(every=...)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// `tumbling`, `hopping`, `cumulative`, `session`, `sliding`, `stagger`.
    pub kind: String,
    /// The constructor's arguments: `every`, `period`, `offset`, `step`, `gap`.
    pub args: BTreeMap<String, Duration>,
}

/// One aggregate, in the Python API's terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// The aggregate (`count`, `sum`, `mean`, `quantile`, `top_k`, ...).
    pub kind: String,
    /// Its input (none for `COUNT(*)`).
    pub column: Option<Scalar>,
    /// `FILTER (WHERE ...)`.
    #[serde(rename = "where")]
    pub filter: Option<Scalar>,
    /// The output column.
    pub name: String,
    /// Options (`q`, `k`, `ddof`, ...).
    pub options: BTreeMap<String, serde_json::Value>,
}

/// Where a query's rows come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// An input given by the caller, by its name there.
    Name(String),
    /// An in-application stream of the same application.
    Stream(String),
    /// Another query's output.
    Query(Box<QueryPlan>),
}

/// How the input's event time is set.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Time {
    /// As the caller declared it (a `Stream`'s `time=`, a query's time column).
    Declared(String),
    /// This column of a raw source (a window's `DESCRIPTOR` or `STEP` column).
    Column(String),
    /// Arrival time, stamped into a column named `ROWTIME`.
    Rowtime,
}

/// A query planned from SQL: what the Python API builds for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryPlan {
    /// The rows it reads.
    pub input: Input,
    /// The input's event time.
    pub time: Time,
    /// The watermark delay a `CREATE TABLE ... WATERMARK FOR` declared.
    pub watermark: Option<Duration>,
    /// Row-wise steps before the window.
    pub steps: Vec<Step>,
    /// The window (none: the query passes rows through its steps).
    pub window: Option<Window>,
    /// The keys.
    pub by: Vec<String>,
    /// The aggregates.
    pub aggs: Vec<Aggregate>,
    /// Steps over each emitted batch (the select list, `HAVING`, `ORDER BY`, Top-N).
    pub post: Vec<Step>,
    /// The output columns, in order.
    pub columns: Vec<String>,
    /// The output column carrying each row's time (its window's end), if any: a query
    /// reading this one takes it as its event time.
    pub rowtime: Option<String>,
    /// The output column that is the window's start, if kept.
    pub window_start: Option<String>,
    /// The output column that is Flink's `window_time` (the window's end less a
    /// millisecond), if kept: a window function over this query's rows may take it as time.
    pub window_time: Option<String>,
    /// Without aggregates: the windows whose rows come out together when each closes (a
    /// window table function read row by row).
    pub rows_window: Option<Window>,
    /// The statement as written.
    pub text: String,
}

/// A `CREATE STREAM`: an in-application stream and its columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamDecl {
    /// Its name.
    pub name: String,
    /// The names (the stream's and its columns') declared unquoted: a quoted reference in
    /// upper case finds them too, as Kinesis folded unquoted names to upper case.
    pub unquoted: Vec<String>,
    /// Columns and their SQL types.
    pub columns: Vec<(String, String)>,
}

/// A `CREATE TABLE ... (WATERMARK FOR ...)`: an input's event time and delay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableDecl {
    /// Its name (an input of the application).
    pub name: String,
    /// The event-time column.
    pub time: Option<String>,
    /// The watermark delay.
    pub watermark: Option<Duration>,
}

/// A pump: a query inserting into an in-application stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pump {
    /// The pump's name.
    pub name: String,
    /// The stream it inserts into.
    pub into: String,
    /// Its query (its output has the stream's columns).
    pub query: QueryPlan,
}

/// A Kinesis Data Analytics application: its streams, tables and pumps.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Program {
    /// In-application streams.
    pub streams: Vec<StreamDecl>,
    /// Declared input tables.
    pub tables: Vec<TableDecl>,
    /// Pumps, in the order written.
    pub pumps: Vec<Pump>,
}
