//! The Python binding: the only code that touches pyo3.

use crate::engine::Operator;
use crate::error::Error;
use crate::time::{Duration, TimeUnit};
use arrow_array::{Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::input::AnyRecordBatch;
use pyo3_arrow::{PyRecordBatch, PyTable};
use std::sync::Arc;

create_exception!(
    rillet,
    RilletError,
    PyException,
    "Base class of every rillet error."
);
create_exception!(
    rillet,
    SchemaError,
    RilletError,
    "A column is missing or has the wrong type."
);
create_exception!(
    rillet,
    ConfigError,
    RilletError,
    "An option is malformed or out of range."
);
create_exception!(
    rillet,
    SourceError,
    RilletError,
    "An input could not be read."
);
create_exception!(
    rillet,
    SinkError,
    RilletError,
    "An output could not be written."
);
create_exception!(
    rillet,
    LateDataError,
    RilletError,
    "A row arrived after its windows closed."
);

create_exception!(
    rillet,
    SqlError,
    ConfigError,
    "A SQL text that cannot be read or planned; .line and .column locate it."
);

fn to_py(e: Error) -> PyErr {
    match e {
        Error::Sql {
            message,
            line,
            column,
        } => {
            let err = SqlError::new_err(message);
            Python::attach(|py| {
                let value = err.value(py);
                // Plain attributes on a fresh exception instance cannot fail.
                let _ = value.setattr("line", line);
                let _ = value.setattr("column", column);
            });
            err
        }
        Error::Schema(m) => SchemaError::new_err(m),
        Error::Config(m) => ConfigError::new_err(m),
        Error::Source(m) => SourceError::new_err(m),
        Error::Sink(m) => SinkError::new_err(m),
        Error::LateData(m) => LateDataError::new_err(m),
        e @ Error::Internal(_) => RilletError::new_err(e.to_string()),
    }
}

fn parse_unit(unit: &str) -> PyResult<TimeUnit> {
    Ok(match unit {
        "ns" => TimeUnit::Nanosecond,
        "us" => TimeUnit::Microsecond,
        "ms" => TimeUnit::Millisecond,
        "s" => TimeUnit::Second,
        "i" | "int" | "integer" => TimeUnit::Integer,
        other => {
            return Err(ConfigError::new_err(format!(
                "unknown time unit '{other}'; expected ns, us, ms, s or integer"
            )))
        }
    })
}

/// Converts a polars duration string into a count of `unit`s.
#[pyfunction]
fn parse_duration(text: &str, unit: &str, what: &str) -> PyResult<i64> {
    let u = parse_unit(unit)?;
    let d = Duration::parse(text).map_err(|e| match e {
        Error::Config(m) => ConfigError::new_err(format!("{what}: {m}")),
        other => to_py(other),
    })?;
    d.to_fixed(u, what).map_err(to_py)
}

/// The parts of a duration string: (months, weeks, days, nanoseconds, index, negative).
#[pyfunction]
fn duration_parts(text: &str, what: &str) -> PyResult<(i64, i64, i64, i64, i64, bool)> {
    let d = Duration::parse(text).map_err(|e| match e {
        Error::Config(m) => ConfigError::new_err(format!("{what}: {m}")),
        other => to_py(other),
    })?;
    Ok((d.months, d.weeks, d.days, d.nanos, d.index, d.negative))
}

/// A query plan, checked: built from the JSON the query builder writes (`rillet._plan`).
#[pyclass(module = "rillet._core", name = "Plan", frozen)]
struct PyPlan {
    plan: crate::plan::Plan,
}

/// A plan typed against its input (see `Plan.bind`).
#[pyclass(module = "rillet._core", name = "BoundPlan", frozen)]
struct PyBoundPlan {
    bound: crate::plan::BoundPlan,
    input: arrow_schema::SchemaRef,
}

fn empty(fields: &[Field]) -> PyRecordBatch {
    RecordBatch::new_empty(Arc::new(Schema::new(fields.to_vec()))).into()
}

fn schema_of(data: AnyRecordBatch) -> PyResult<arrow_schema::SchemaRef> {
    Ok(data.into_reader()?.schema())
}

#[pymethods]
impl PyPlan {
    /// Reads and checks a plan written as JSON.
    #[new]
    fn new(json: &str) -> PyResult<Self> {
        Ok(PyPlan {
            plan: crate::plan::Plan::from_json(json).map_err(to_py)?,
        })
    }

    /// The plan as JSON.
    fn to_json(&self) -> String {
        self.plan.to_json()
    }

    /// Types the plan against the columns the runtime prepared (an empty batch or table with
    /// them: the time column, the keys and the aggregates' `__rl_*` inputs).
    fn bind(&self, input: AnyRecordBatch) -> PyResult<PyBoundPlan> {
        let input = schema_of(input)?;
        let bound = self.plan.bind(&input).map_err(to_py)?;
        Ok(PyBoundPlan { bound, input })
    }

    /// The plan as text; `input` (the prepared columns, as for `bind`) adds the output schema.
    #[pyo3(signature = (input=None))]
    fn explain(&self, input: Option<AnyRecordBatch>) -> PyResult<String> {
        let output = match input {
            None => None,
            Some(i) => {
                let input = schema_of(i)?;
                let bound = self.plan.bind(&input).map_err(to_py)?;
                Some(bound.output_schema(&input).map_err(to_py)?)
            }
        };
        Ok(self.plan.explain(output.as_ref()))
    }
}

#[pymethods]
impl PyBoundPlan {
    /// The time unit: "ns", "us", "ms", "s" or "integer".
    #[getter]
    fn unit(&self) -> &'static str {
        self.bound.unit.name()
    }

    /// The declared watermark delay, in the time unit.
    #[getter]
    fn delay(&self) -> i64 {
        self.bound.delay
    }

    /// The input columns to cast before the operator, as an empty batch of their engine types.
    #[getter]
    fn input_casts(&self) -> PyRecordBatch {
        empty(&self.bound.input_casts)
    }

    /// The output columns to give back in another type, as an empty batch of those types.
    #[getter]
    fn output_casts(&self) -> PyRecordBatch {
        empty(&self.bound.output_casts)
    }

    /// The schema of the emitted rows (after the output casts), as an empty batch.
    fn output_schema(&self) -> PyResult<PyRecordBatch> {
        let schema = self.bound.output_schema(&self.input).map_err(to_py)?;
        Ok(RecordBatch::new_empty(schema).into())
    }

    /// A new operator running this plan.
    fn operator(&self) -> PyResult<WindowOperator> {
        Ok(WindowOperator {
            inner: Operator::new(self.bound.config.clone()).map_err(to_py)?,
            rows_seen: 0,
        })
    }
}

/// One SELECT planned over named inputs (`{"name": {"columns": [...], "time": ...}}`), as
/// JSON (see `crate::sql::QueryPlan`).
#[pyfunction]
fn sql_query(text: &str, inputs: &str) -> PyResult<String> {
    let inputs = crate::sql::Inputs::from_json(inputs).map_err(to_py)?;
    let plan = crate::sql::plan_query(text, &inputs).map_err(to_py)?;
    serde_json::to_string(&plan).map_err(|e| to_py(Error::Internal(e.to_string())))
}

/// A Kinesis Data Analytics application planned over named inputs, as JSON (see
/// `crate::sql::Program`).
#[pyfunction]
fn sql_application(text: &str, inputs: &str) -> PyResult<String> {
    let inputs = crate::sql::Inputs::from_json(inputs).map_err(to_py)?;
    let program = crate::sql::plan_application(text, &inputs).map_err(to_py)?;
    serde_json::to_string(&program).map_err(|e| to_py(Error::Internal(e.to_string())))
}

/// A window layout in a time unit, as a dict (kind "fixed", "cumulative", "calendar",
/// "session" or "sliding"; period, every, offset, period_months, every_months, tz), for
/// drawing a query's windows.
#[pyfunction]
fn window_layout<'py>(
    py: Python<'py>,
    window: &str,
    unit: &str,
    tz: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    use crate::plan::Layout;
    let plan: crate::plan::WindowPlan = serde_json::from_str(window)
        .map_err(|e| ConfigError::new_err(format!("not a valid window plan: {e}")))?;
    let layout = plan.layout(parse_unit(unit)?, tz).map_err(to_py)?;
    let d = PyDict::new(py);
    let (kind, period, every, offset, period_months, every_months, zone) = match layout {
        Layout::Fixed {
            period,
            every,
            offset,
        } => ("fixed", period, every, offset, 0, 0, None),
        Layout::Cumulative {
            period,
            step,
            offset,
        } => ("cumulative", period, step, offset, 0, 0, None),
        Layout::Calendar {
            tz,
            period_months,
            period,
            every_months,
            every,
            offset,
        } => (
            "calendar",
            period,
            every,
            offset,
            period_months,
            every_months,
            Some(tz),
        ),
        Layout::Session { gap, max_duration } => {
            ("session", gap, max_duration.unwrap_or(0), 0, 0, 0, None)
        }
        Layout::Sliding { period } => ("sliding", period, 0, 0, 0, 0, None),
        Layout::SlidingRows { preceding } => ("sliding_rows", preceding as i64, 0, 0, 0, 0, None),
        Layout::Stagger { range } => ("stagger", range, range, 0, 0, 0, None),
        Layout::Rows(_) => ("rows", 0, 0, 0, 0, 0, None),
    };
    d.set_item("kind", kind)?;
    d.set_item("period", period)?;
    d.set_item("every", every)?;
    d.set_item("offset", offset)?;
    d.set_item("period_months", period_months)?;
    d.set_item("every_months", every_months)?;
    d.set_item("tz", zone)?;
    Ok(d)
}

/// The keyed event-time window operator.
#[pyclass(module = "rillet._core")]
struct WindowOperator {
    inner: Operator,
    rows_seen: u64,
}

#[pymethods]
impl WindowOperator {
    /// Processes a batch (or stream of batches). Returns (output, late, rejected), where late
    /// has columns (row, late_by) and rejected (row, reason); `row` counts from the first row
    /// of this call.
    #[pyo3(signature = (data, now_ms=None))]
    fn process(
        &mut self,
        py: Python<'_>,
        data: AnyRecordBatch,
        now_ms: Option<i64>,
    ) -> PyResult<(PyRecordBatch, PyRecordBatch, PyRecordBatch)> {
        let reader = data.into_reader()?;
        let batches = reader
            .collect::<Result<Vec<RecordBatch>, _>>()
            .map_err(|e| SchemaError::new_err(format!("could not read the input batch: {e}")))?;
        let inner = &mut self.inner;
        let (out, late, rejected) = py
            .detach(
                move || -> Result<(RecordBatch, RecordBatch, RecordBatch), Error> {
                    let mut outputs = Vec::new();
                    let (mut late_rows, mut late_by) = (Vec::new(), Vec::new());
                    let (mut rej_rows, mut reasons) = (Vec::new(), Vec::new());
                    let mut offset = 0u64;
                    for b in &batches {
                        let r = inner.process_at(b, now_ms)?;
                        outputs.push(r.output);
                        late_rows.extend(r.late_rows.iter().map(|&i| offset + i as u64));
                        late_by.extend(r.late_by);
                        rej_rows.extend(r.rejected_rows.iter().map(|&i| offset + i as u64));
                        reasons.extend(r.reasons);
                        offset += b.num_rows() as u64;
                    }
                    let out = match inner.output_schema() {
                        Some(schema) => arrow_select::concat::concat_batches(&schema, &outputs)?,
                        None => RecordBatch::new_empty(Arc::new(Schema::empty())),
                    };
                    let late = RecordBatch::try_new(
                        Arc::new(Schema::new(vec![
                            Field::new("row", DataType::UInt64, false),
                            Field::new("late_by", DataType::Int64, false),
                        ])),
                        vec![
                            Arc::new(UInt64Array::from(late_rows)),
                            Arc::new(Int64Array::from(late_by)),
                        ],
                    )?;
                    let rejected = RecordBatch::try_new(
                        Arc::new(Schema::new(vec![
                            Field::new("row", DataType::UInt64, false),
                            Field::new("reason", DataType::Utf8, false),
                        ])),
                        vec![
                            Arc::new(UInt64Array::from(rej_rows)),
                            Arc::new(StringArray::from(reasons)),
                        ],
                    )?;
                    Ok((out, late, rejected))
                },
            )
            .map_err(to_py)?;
        self.rows_seen += late.num_rows() as u64;
        Ok((out.into(), late.into(), rejected.into()))
    }

    /// End of input: emits every open window.
    fn finish(&mut self, py: Python<'_>) -> PyResult<PyRecordBatch> {
        let inner = &mut self.inner;
        let out = py.detach(move || inner.finish()).map_err(to_py)?;
        Ok(out.into())
    }

    /// A heartbeat without rows at wall-clock `now_ms`: emits early revisions that are due.
    fn tick(&mut self, py: Python<'_>, now_ms: i64) -> PyResult<PyRecordBatch> {
        let inner = &mut self.inner;
        Ok(py.detach(move || inner.tick(now_ms)).map_err(to_py)?.into())
    }

    /// Moves the watermark to at least `instant`, emitting what that completes or closes.
    fn advance_watermark(&mut self, py: Python<'_>, instant: i64) -> PyResult<PyRecordBatch> {
        let inner = &mut self.inner;
        Ok(py
            .detach(move || inner.advance_watermark(instant))
            .map_err(to_py)?
            .into())
    }

    /// The smallest value of an output column ("window_start", "window_end" or "row_time":
    /// a sliding window's own time) that any row emitted from now on can carry, or None when
    /// not known (before the first batch, or a column this operator does not emit).
    fn emitted_floor(&self, column: &str) -> PyResult<Option<i64>> {
        use crate::operator::FloorColumn;
        let column = match column {
            "window_start" => FloorColumn::WindowStart,
            "window_end" => FloorColumn::WindowEnd,
            "row_time" => FloorColumn::RowTime,
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown output column '{other}' for a watermark; expected 'window_start', \
                     'window_end' or 'row_time'"
                )))
            }
        };
        Ok(self.inner.emitted_floor(column))
    }

    /// True once the first batch fixed the schema.
    fn is_bound(&self) -> bool {
        self.inner.output_schema().is_some()
    }

    /// The operator's durable state (windows, keys, accumulators, watermark), versioned.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let bytes = self.inner.snapshot().map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Continues from `snapshot()` bytes of an operator of the same kind and configuration.
    fn restore(&mut self, data: &[u8]) -> PyResult<()> {
        self.inner.restore(data).map_err(to_py)
    }

    /// The state to merge into another instance of the same query that read another part of
    /// the input (aligned windows in final mode; a ConfigError for the others).
    fn partial(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let bytes = self.inner.partial().map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Merges another instance's `partial()` state into this one, before either is finished.
    fn merge(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(move || inner.merge(data)).map_err(to_py)
    }

    /// Counters and gauges as a dict of ints (None when unknown).
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let d = PyDict::new(py);
        d.set_item("rows_in", m.rows_in)?;
        d.set_item("rows_accepted", m.rows_accepted)?;
        d.set_item("rows_late", m.rows_late)?;
        d.set_item("rows_rejected", m.rows_rejected)?;
        d.set_item("rows_emitted", m.rows_emitted)?;
        d.set_item("watermark", m.watermark)?;
        d.set_item("max_event_time", m.max_event_time)?;
        d.set_item("open_windows", m.open_windows)?;
        d.set_item("open_panes", m.open_panes)?;
        d.set_item("keys", m.keys)?;
        d.set_item("state_bytes", m.state_bytes)?;
        Ok(d)
    }
}

enum Files {
    Jsonl(crate::source::JsonlSource, crate::source::Cursor),
    Csv(crate::source::CsvSource, crate::source::CsvCursor),
    Columnar(crate::source::ColumnarSource, crate::source::ColumnarCursor),
}

/// Each source paired with a cursor at its start.
macro_rules! files_from {
    ($($source:ty => $variant:ident),*) => {$(
        impl From<$source> for Files {
            fn from(s: $source) -> Files {
                let c = s.cursor();
                Files::$variant(s, c)
            }
        }
    )*};
}

files_from!(
    crate::source::JsonlSource => Jsonl,
    crate::source::CsvSource => Csv,
    crate::source::ColumnarSource => Columnar
);

impl Files {
    /// One reader per file, each with this one's schema and settings.
    fn split(&self) -> Vec<Files> {
        match self {
            Files::Jsonl(s, _) => s.split().into_iter().map(Files::from).collect(),
            Files::Csv(s, _) => s.split().into_iter().map(Files::from).collect(),
            Files::Columnar(s, _) => s.split().into_iter().map(Files::from).collect(),
        }
    }
}

/// A file source's options, checked.
fn read_options(
    batch_rows: usize,
    infer_rows: usize,
    delimiter: &str,
    max_line_bytes: Option<usize>,
    on_error: &str,
    null_values: Option<Vec<String>>,
) -> PyResult<crate::source::ReadOptions> {
    let delimiter = match delimiter.as_bytes() {
        [b] => *b,
        _ => {
            return Err(ConfigError::new_err(format!(
                "the CSV separator must be one character, got {delimiter:?}"
            )))
        }
    };
    Ok(crate::source::ReadOptions {
        batch_rows,
        infer_rows,
        max_line_bytes: max_line_bytes.unwrap_or(crate::source::DEFAULT_MAX_LINE_BYTES),
        on_error: crate::source::OnError::parse(on_error).map_err(to_py)?,
        delimiter,
        null_values: null_values.unwrap_or_default(),
        columns: None,
    })
}

/// Bad rows as a batch with columns file, line, reason, text.
fn bad_rows(bad: &[crate::source::BadRow]) -> PyResult<RecordBatch> {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("file", DataType::Utf8, false),
            Field::new("line", DataType::UInt64, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("text", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(
                bad.iter().map(|r| r.file.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(bad.iter().map(|r| r.line))),
            Arc::new(StringArray::from_iter_values(
                bad.iter().map(|r| r.reason.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                bad.iter().map(|r| r.text.as_str()),
            )),
        ],
    )
    .map_err(|e| to_py(e.into()))
}

/// Reads files in order, in chunks: (rows, bad rows) per chunk.
#[pyclass(module = "rillet._core")]
struct FileReader {
    // A reader is used from one thread at a time; the lock makes the class shareable.
    files: std::sync::Mutex<Files>,
}

#[pymethods]
impl FileReader {
    #[new]
    #[pyo3(signature = (kind, paths, batch_rows=65536, infer_rows=1000, delimiter=",", schema=None, max_line_bytes=None, on_error="raise", null_values=None, columns=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        kind: &str,
        paths: Vec<String>,
        batch_rows: usize,
        infer_rows: usize,
        delimiter: &str,
        schema: Option<PyTable>,
        max_line_bytes: Option<usize>,
        on_error: &str,
        null_values: Option<Vec<String>>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let files = crate::source::paths(&paths);
        // The schema comes as an empty table (a polars DataFrame with that schema).
        let schema = schema.map(|t| crate::source::normalize_schema(&t.into_inner().1));
        let options = crate::source::ReadOptions {
            columns,
            ..read_options(
                batch_rows,
                infer_rows,
                delimiter,
                max_line_bytes,
                on_error,
                null_values,
            )?
        };
        let files = match kind {
            "parquet" | "ipc" => {
                let format = if kind == "parquet" {
                    crate::source::Columnar::Parquet
                } else {
                    crate::source::Columnar::Ipc
                };
                Files::from(
                    crate::source::ColumnarSource::new(format, files, schema, &options)
                        .map_err(to_py)?,
                )
            }
            "jsonl" => Files::from(
                crate::source::JsonlSource::new(files, schema, &options).map_err(to_py)?,
            ),
            "csv" => {
                Files::from(crate::source::CsvSource::new(files, schema, &options).map_err(to_py)?)
            }
            other => return Err(ConfigError::new_err(format!("unknown file kind '{other}'"))),
        };
        Ok(FileReader {
            files: std::sync::Mutex::new(files),
        })
    }

    /// The columns a `schema=` would give to read more files alike, as an empty batch: for
    /// CSV every column of the header (a CSV schema names them all), else the rows' columns.
    fn header_schema(&self) -> PyResult<PyRecordBatch> {
        let f = self
            .files
            .lock()
            .map_err(|_| to_py(Error::Internal("reader lock poisoned".into())))?;
        let schema = match &*f {
            Files::Jsonl(s, _) => s.schema(),
            Files::Csv(s, _) => s.header_schema(),
            Files::Columnar(s, _) => s.schema(),
        };
        Ok(RecordBatch::new_empty(schema).into())
    }

    /// One reader per file, each with this reader's schema and settings (for merging files).
    /// A merge of them is not resumed from positions: each has a `position()` of its own
    /// one file, but the order in which a merge took their rows is not recorded.
    fn split(&self) -> PyResult<Vec<FileReader>> {
        let f = self
            .files
            .lock()
            .map_err(|_| to_py(Error::Internal("reader lock poisoned".into())))?;
        Ok(f.split()
            .into_iter()
            .map(|files| FileReader {
                files: std::sync::Mutex::new(files),
            })
            .collect())
    }

    /// The next chunk as (rows, bad rows), or None at the end. Bad rows have columns
    /// file, line, reason, text.
    fn next_chunk(&self, py: Python<'_>) -> PyResult<Option<(PyRecordBatch, PyRecordBatch)>> {
        let files = &self.files;
        let next = py
            .detach(move || {
                let mut f = files
                    .lock()
                    .map_err(|_| Error::Internal("reader lock poisoned".into()))?;
                match &mut *f {
                    Files::Jsonl(s, c) => s.next_batch(c),
                    Files::Csv(s, c) => s.next_batch(c),
                    Files::Columnar(s, c) => s.next_batch(c),
                }
            })
            .map_err(to_py)?;
        let Some(b) = next else { return Ok(None) };
        let bad = bad_rows(&b.bad)?;
        Ok(Some((b.batch.into(), bad.into())))
    }

    /// Where the reader is after the last chunk it returned, as opaque bytes (versioned CBOR):
    /// the file, and in it the lines and bytes read (JSON Lines, CSV) or the batches and rows
    /// read (Parquet, Arrow IPC), with the size and modification time of every file up to it.
    fn position(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let f = self
            .files
            .lock()
            .map_err(|_| to_py(Error::Internal("reader lock poisoned".into())))?;
        let bytes = match &*f {
            Files::Jsonl(s, c) => s.position(c),
            Files::Csv(s, c) => s.position(c),
            Files::Columnar(s, c) => s.position(c),
        }
        .map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Moves the reader to a `position()` taken by a reader over the same files (same kind,
    /// paths and options): its next chunks are those that reader returned after it (rows, bad
    /// rows, line numbers), read from that offset (files before it are not read again, and
    /// files skipped as unreadable are not reported again). ConfigError for a position of
    /// another kind, file list or format version; SourceError, naming the file, when a file
    /// before the position changed (size or modification time) or the file it is in is
    /// shorter than the position or was replaced (one that only grew is read on).
    fn seek(&self, py: Python<'_>, position: &[u8]) -> PyResult<()> {
        let files = &self.files;
        py.detach(move || -> Result<(), Error> {
            let mut f = files
                .lock()
                .map_err(|_| Error::Internal("reader lock poisoned".into()))?;
            match &mut *f {
                Files::Jsonl(s, c) => *c = s.seek(position)?,
                Files::Csv(s, c) => *c = s.seek(position)?,
                Files::Columnar(s, c) => *c = s.seek(position)?,
            }
            Ok(())
        })
        .map_err(to_py)
    }
}

/// Decodes CSV records that arrive as lines (a file being followed), with the same rules as
/// the file reader: rows, and bad rows (file, line, reason, text) for records that do not parse.
#[pyclass(module = "rillet._core")]
struct CsvRecords {
    source: crate::source::CsvSource,
    name: String,
}

#[pymethods]
impl CsvRecords {
    /// `head` is the header line and the first records (the schema is inferred from them
    /// unless given).
    #[new]
    #[pyo3(signature = (name, head, delimiter=",", infer_rows=1000, schema=None, null_values=None))]
    fn new(
        name: String,
        head: &[u8],
        delimiter: &str,
        infer_rows: usize,
        schema: Option<PyTable>,
        null_values: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let options = read_options(1, infer_rows, delimiter, None, "raise", null_values)?;
        let schema = schema.map(|t| crate::source::normalize_schema(&t.into_inner().1));
        let source =
            crate::source::CsvSource::for_records(&name, head, schema, &options).map_err(to_py)?;
        Ok(CsvRecords { source, name })
    }

    /// (rows, bad rows) for records given as (line number, bytes with the newline).
    fn decode(
        &self,
        py: Python<'_>,
        records: Vec<(u64, Vec<u8>)>,
    ) -> PyResult<(PyRecordBatch, PyRecordBatch)> {
        let b = py
            .detach(|| self.source.decode_records(&self.name, records))
            .map_err(to_py)?;
        Ok((b.batch.into(), bad_rows(&b.bad)?.into()))
    }
}

/// Microseconds since the epoch (UTC) of ISO 8601 / RFC 3339 texts (an Arrow string array or
/// stream, such as a polars Series), read as a text `time=` column is; null where a query
/// would reject the row.
#[pyfunction]
fn text_times(
    py: Python<'_>,
    values: pyo3_arrow::input::AnyArray,
) -> PyResult<pyo3_arrow::PyChunkedArray> {
    let chunks = values
        .into_reader()?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SchemaError::new_err(format!("could not read the times: {e}")))?;
    let out = py
        .detach(move || -> Result<Vec<arrow_array::ArrayRef>, Error> {
            let mut out: Vec<arrow_array::ArrayRef> = Vec::with_capacity(chunks.len().max(1));
            for c in &chunks {
                out.push(Arc::new(crate::operator::text_times(c)?));
            }
            if out.is_empty() {
                out.push(Arc::new(Int64Array::from(Vec::<i64>::new())));
            }
            Ok(out)
        })
        .map_err(to_py)?;
    Ok(pyo3_arrow::PyChunkedArray::from_array_refs(out)?)
}

/// An instant of a time column in `unit` as RFC 3339 text in UTC, for any instant (years
/// before 1 or after 9999, which Python's datetime cannot hold, included).
#[pyfunction]
fn format_instant(value: i64, unit: &str) -> PyResult<String> {
    Ok(crate::operator::fmt_instant(value, parse_unit(unit)?))
}

/// The Nexmark events of `kind` ("people", "auctions" or "bids") among the event numbers
/// `[start, end)`, as one batch (see `source::nexmark`).
#[pyfunction]
fn nexmark_events(
    py: Python<'_>,
    kind: &str,
    start: u64,
    end: u64,
    seed: u64,
    base_time_ms: i64,
    rate: u64,
) -> PyResult<PyRecordBatch> {
    use crate::source::nexmark;
    let kind = nexmark::Kind::parse(kind).map_err(to_py)?;
    let config = nexmark::Config::new(seed, base_time_ms, rate).map_err(to_py)?;
    let batch = py
        .detach(|| nexmark::generate(&config, kind, start, end))
        .map_err(to_py)?;
    Ok(batch.into())
}

/// The records of one CloudTrail log file (its decompressed bytes) flattened into rows, or
/// None when the Python path must read the file (see `source::cloudtrail`).
#[pyfunction]
fn cloudtrail_rows(py: Python<'_>, data: &[u8]) -> PyResult<Option<PyRecordBatch>> {
    let rows = py
        .detach(|| crate::source::cloudtrail::rows(data))
        .map_err(to_py)?;
    Ok(rows.map(Into::into))
}

/// Sets how many threads the engine uses (1: everything on the calling thread).
#[pyfunction]
fn set_threads(n: usize) -> PyResult<()> {
    crate::parallel::set_threads(n).map_err(to_py)
}

/// A per-row detector (random cut forest or hotspots) over a stream's batches.
#[pyclass(module = "rillet._core", name = "Detector")]
struct PyDetector {
    inner: crate::anomaly::Detector,
}

#[pymethods]
impl PyDetector {
    /// A detector for the JSON `spec`, one model per distinct value of the `by` columns.
    #[new]
    fn new(spec: &str, by: Vec<String>) -> PyResult<Self> {
        Ok(PyDetector {
            inner: crate::anomaly::Detector::from_json(spec, by).map_err(to_py)?,
        })
    }

    /// The detector's columns for every row of `data` (a batch or a stream of batches).
    fn process(&mut self, py: Python<'_>, data: AnyRecordBatch) -> PyResult<PyRecordBatch> {
        let inner = &mut self.inner;
        map_batches(py, data, |b| inner.process(b))
    }

    /// The detector's state (every model) as bytes.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let bytes = self.inner.snapshot().map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Continues from `snapshot()` bytes of a detector with the same spec.
    fn restore(&mut self, data: &[u8]) -> PyResult<()> {
        self.inner.restore(data).map_err(to_py)
    }

    /// Per tree of the first key's forest, the depth of every point it holds.
    fn leaf_depths(&self) -> Vec<Vec<usize>> {
        self.inner.leaf_depths()
    }

    /// Models kept (one per key).
    fn models(&self) -> usize {
        self.inner.models()
    }

    /// Bytes of memory the models hold.
    fn memory_bytes(&self) -> usize {
        self.inner.bytes()
    }
}

/// A stream joined with a table, row by row (an equi-join, or as of each row's time).
#[pyclass(module = "rillet._core", name = "TableJoin")]
struct PyTableJoin {
    inner: crate::join::TableJoin,
}

/// `f` over every batch of `data` (a batch or a stream of batches), without the GIL: the
/// outputs as one batch.
fn map_batches(
    py: Python<'_>,
    data: AnyRecordBatch,
    mut f: impl FnMut(&RecordBatch) -> Result<RecordBatch, Error> + Send,
) -> PyResult<PyRecordBatch> {
    let batches = read_batches(data, "the input batch")?;
    let out = py
        .detach(move || -> Result<RecordBatch, Error> {
            let parts = batches.iter().map(&mut f).collect::<Result<Vec<_>, _>>()?;
            match parts.first() {
                None => Err(Error::Schema("process() needs at least one batch".into())),
                Some(first) if parts.len() == 1 => Ok(first.clone()),
                Some(first) => Ok(arrow_select::concat::concat_batches(
                    &first.schema(),
                    &parts,
                )?),
            }
        })
        .map_err(to_py)?;
    Ok(out.into())
}

/// Every batch of `data` (a batch or a stream of batches).
fn read_batches(data: AnyRecordBatch, what: &str) -> PyResult<Vec<RecordBatch>> {
    data.into_reader()?
        .collect::<Result<Vec<RecordBatch>, _>>()
        .map_err(|e| SchemaError::new_err(format!("could not read {what}: {e}")))
}

#[pymethods]
impl PyTableJoin {
    /// A join described by the JSON `spec` with `table` (a batch or a stream of batches).
    #[new]
    fn new(spec: &str, table: AnyRecordBatch) -> PyResult<Self> {
        let spec: crate::join::TableJoinSpec = serde_json::from_str(spec)
            .map_err(|e| ConfigError::new_err(format!("malformed join spec: {e}")))?;
        let table = read_batches(table, "the table")?;
        Ok(PyTableJoin {
            inner: crate::join::TableJoin::new(spec, &table).map_err(to_py)?,
        })
    }

    /// Replaces the table; the next batch sees only the new one.
    fn set_table(&mut self, table: AnyRecordBatch) -> PyResult<()> {
        let table = read_batches(table, "the table")?;
        self.inner.set_table(&table).map_err(to_py)
    }

    /// The stream's rows of `data` joined with the table.
    fn process(&mut self, py: Python<'_>, data: AnyRecordBatch) -> PyResult<PyRecordBatch> {
        let inner = &mut self.inner;
        map_batches(py, data, |b| inner.process(b))
    }

    /// As `process`, but when the join keeps every row of `data` once and in order, only
    /// the table's columns for them: `(batch, whole)`, `whole` false in that case.
    fn process_parts(
        &mut self,
        py: Python<'_>,
        data: AnyRecordBatch,
    ) -> PyResult<(PyRecordBatch, bool)> {
        let batches = read_batches(data, "the input batch")?;
        let inner = &mut self.inner;
        let (out, whole) = py
            .detach(move || -> Result<(RecordBatch, bool), Error> {
                match batches.as_slice() {
                    [one] => inner.process_parts(one),
                    _ => {
                        let parts = batches
                            .iter()
                            .map(|b| inner.process(b))
                            .collect::<Result<Vec<_>, _>>()?;
                        let Some(first) = parts.first() else {
                            return Err(Error::Schema("process() needs at least one batch".into()));
                        };
                        Ok((
                            arrow_select::concat::concat_batches(&first.schema(), &parts)?,
                            true,
                        ))
                    }
                }
            })
            .map_err(to_py)?;
        Ok((PyRecordBatch::new(out), whole))
    }

    /// Rows the join added so far (a stream row's matches beyond its first).
    fn rows_added(&self) -> u64 {
        self.inner.rows_added()
    }

    /// Rows in the table.
    fn table_rows(&self) -> usize {
        self.inner.table_rows()
    }

    /// What carries from batch to batch (the counters), versioned; not the table, which the
    /// join that restores it is given again.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let bytes = self.inner.snapshot().map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Continues from `snapshot()` bytes of a join with the same spec (ConfigError naming
    /// the difference otherwise).
    fn restore(&mut self, data: &[u8]) -> PyResult<()> {
        self.inner.restore(data).map_err(to_py)
    }

    /// Bytes of memory the table and its index hold.
    fn memory_bytes(&self) -> usize {
        self.inner.memory_bytes()
    }
}

/// Two streams joined on keys and event time (an interval join, or as of each left row).
#[pyclass(module = "rillet._core", name = "StreamJoin")]
struct PyStreamJoin {
    inner: crate::join::StreamJoin,
}

fn side_of(side: &str) -> PyResult<crate::join::Side> {
    match side {
        "left" => Ok(crate::join::Side::Left),
        "right" => Ok(crate::join::Side::Right),
        other => Err(ConfigError::new_err(format!(
            "a join's side is 'left' or 'right', got {other:?}"
        ))),
    }
}

/// The non-empty batches of `parts` as one (an empty batch without columns if none).
fn concat_outputs(parts: Vec<RecordBatch>) -> Result<RecordBatch, Error> {
    let full: Vec<RecordBatch> = parts.into_iter().filter(|b| b.num_columns() > 0).collect();
    match full.first() {
        None => Ok(RecordBatch::new_empty(Arc::new(Schema::empty()))),
        Some(first) if full.len() == 1 => Ok(first.clone()),
        Some(first) => Ok(arrow_select::concat::concat_batches(
            &first.schema(),
            &full,
        )?),
    }
}

#[pymethods]
impl PyStreamJoin {
    /// A join described by the JSON `spec`.
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        let spec: crate::join::StreamJoinSpec = serde_json::from_str(spec)
            .map_err(|e| ConfigError::new_err(format!("malformed join spec: {e}")))?;
        Ok(PyStreamJoin {
            inner: crate::join::StreamJoin::new(spec).map_err(to_py)?,
        })
    }

    /// A batch of one side ("left" or "right"): (joined rows, late rows as (row, late_by)).
    fn process(
        &mut self,
        py: Python<'_>,
        side: &str,
        data: AnyRecordBatch,
    ) -> PyResult<(PyRecordBatch, PyRecordBatch)> {
        let side = side_of(side)?;
        let batches = read_batches(data, "the input batch")?;
        let inner = &mut self.inner;
        let (out, late) = py
            .detach(move || -> Result<(RecordBatch, RecordBatch), Error> {
                let mut outputs = Vec::new();
                let (mut rows, mut late_by) = (Vec::new(), Vec::new());
                let mut offset = 0u64;
                for b in &batches {
                    let step = inner.process(side, b)?;
                    outputs.push(step.rows);
                    for l in step.late {
                        rows.push(offset + u64::from(l.row));
                        late_by.push(l.late_by);
                    }
                    offset += b.num_rows() as u64;
                }
                let late = RecordBatch::try_new(
                    Arc::new(Schema::new(vec![
                        Field::new("row", DataType::UInt64, false),
                        Field::new("late_by", DataType::Int64, false),
                    ])),
                    vec![
                        Arc::new(UInt64Array::from(rows)),
                        Arc::new(Int64Array::from(late_by)),
                    ],
                )?;
                Ok((concat_outputs(outputs)?, late))
            })
            .map_err(to_py)?;
        Ok((out.into(), late.into()))
    }

    /// A side's watermark moved by itself (an idle input), in that side's time unit.
    fn advance_watermark(&mut self, side: &str, instant: i64) -> PyResult<PyRecordBatch> {
        let side = side_of(side)?;
        Ok(self
            .inner
            .advance_watermark(side, instant)
            .map_err(to_py)?
            .into())
    }

    /// A side's input ended.
    fn end(&mut self, side: &str) -> PyResult<PyRecordBatch> {
        let side = side_of(side)?;
        Ok(self.inner.end(side).map_err(to_py)?.into())
    }

    /// Both inputs ended: everything still waiting comes out.
    fn flush(&mut self) -> PyResult<PyRecordBatch> {
        Ok(self.inner.flush().map_err(to_py)?.into())
    }

    /// The smallest left time a later output row can have (the left column's unit).
    fn emitted_floor(&self) -> Option<i64> {
        self.inner.emitted_floor()
    }

    /// Everything that carries from batch to batch (kept rows per side as Arrow IPC, waiting
    /// as-of rows, watermarks, largest times, end flags, counters, key groups), versioned.
    fn snapshot(&self, py: Python<'_>) -> PyResult<Py<pyo3::types::PyBytes>> {
        let inner = &self.inner;
        let bytes = py.detach(move || inner.snapshot()).map_err(to_py)?;
        Ok(pyo3::types::PyBytes::new(py, &bytes).unbind())
    }

    /// Continues from `snapshot()` bytes of a join with the same spec: what it emits from
    /// then on is what that join would have emitted (ConfigError naming the difference for
    /// another spec, or damaged bytes).
    fn restore(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(move || inner.restore(data)).map_err(to_py)
    }

    /// Counters: rows in, late and kept per side, state bytes, rows emitted.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let d = PyDict::new(py);
        for (name, side) in [("left", &m.left), ("right", &m.right)] {
            d.set_item(format!("rows_in_{name}"), side.rows_in)?;
            d.set_item(format!("rows_late_{name}"), side.rows_late)?;
            d.set_item(format!("rows_kept_{name}"), side.rows_kept)?;
        }
        d.set_item("state_bytes", m.state_bytes)?;
        d.set_item("rows_emitted", m.rows_emitted)?;
        Ok(d)
    }
}

/// How many threads the engine uses.
#[pyfunction]
fn threads() -> usize {
    crate::parallel::threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RilletError", py.get_type::<RilletError>())?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("SourceError", py.get_type::<SourceError>())?;
    m.add("SinkError", py.get_type::<SinkError>())?;
    m.add("LateDataError", py.get_type::<LateDataError>())?;
    m.add("SqlError", py.get_type::<SqlError>())?;
    m.add_function(wrap_pyfunction!(sql_query, m)?)?;
    m.add_function(wrap_pyfunction!(sql_application, m)?)?;
    m.add_class::<WindowOperator>()?;
    m.add_class::<PyDetector>()?;
    m.add_class::<PyTableJoin>()?;
    m.add_class::<PyStreamJoin>()?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyBoundPlan>()?;
    m.add_function(wrap_pyfunction!(window_layout, m)?)?;
    m.add_class::<FileReader>()?;
    m.add_class::<CsvRecords>()?;
    m.add_function(wrap_pyfunction!(parse_duration, m)?)?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add_function(wrap_pyfunction!(threads, m)?)?;
    m.add_function(wrap_pyfunction!(duration_parts, m)?)?;
    m.add_function(wrap_pyfunction!(text_times, m)?)?;
    m.add_function(wrap_pyfunction!(format_instant, m)?)?;
    m.add_function(wrap_pyfunction!(nexmark_events, m)?)?;
    m.add_function(wrap_pyfunction!(cloudtrail_rows, m)?)?;
    m.add("MAX_WINDOWS_PER_ROW", crate::window::MAX_WINDOWS_PER_ROW)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
