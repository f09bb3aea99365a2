//! Sources: files replayed in order as Arrow batches, with rows that do not parse kept (file,
//! line, reason) rather than dropped, and read errors that name the file.

pub mod cloudtrail;
mod columnar;
mod csv;
mod jsonl;
pub mod nexmark;
mod position;

pub use self::csv::{CsvCursor, CsvSource};
pub use columnar::{normalize_schema, Columnar, ColumnarCursor, ColumnarSource};
pub use jsonl::{Cursor, JsonlSource};
pub use position::{Position, Stamp, POSITION_FORMAT};

use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// How a file source reads: chunk size, schema sampling, limits and what to do with a file
/// that cannot be read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Rows per chunk.
    pub batch_rows: usize,
    /// Rows sampled to infer a schema.
    pub infer_rows: usize,
    /// The longest line (CSV: record) read; a longer one is a [`BadRow`].
    pub max_line_bytes: usize,
    /// What a file that cannot be read does.
    pub on_error: OnError,
    /// CSV only: the field delimiter.
    pub delimiter: u8,
    /// CSV only: texts read as null (besides the empty field).
    pub null_values: Vec<String>,
    /// The columns to read, in this order (None: all). Columns left out are not decoded (a
    /// Parquet file's are not even read), so a value there that does not parse rejects nothing.
    pub columns: Option<Vec<String>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            batch_rows: 65_536,
            infer_rows: 1000,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            on_error: OnError::Raise,
            delimiter: b',',
            null_values: Vec::new(),
            columns: None,
        }
    }
}

/// `schema` narrowed to `columns`, in their order (all of it when None); a name the schema
/// does not have, or one named twice, is refused naming the columns there are.
pub(crate) fn project(
    schema: &SchemaRef,
    columns: Option<&[String]>,
    what: &str,
) -> Result<SchemaRef> {
    let Some(columns) = columns else {
        return Ok(schema.clone());
    };
    let mut fields = Vec::with_capacity(columns.len());
    for (i, name) in columns.iter().enumerate() {
        if columns[..i].contains(name) {
            return Err(Error::Config(format!(
                "columns= names {name:?} twice; name each column once"
            )));
        }
        match schema.field_with_name(name) {
            Ok(f) => fields.push(f.clone()),
            Err(_) => {
                let have: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
                return Err(Error::Schema(format!(
                    "columns= names {name:?}, which {what} does not have; its columns are {have:?}"
                )));
            }
        }
    }
    if fields.is_empty() {
        return Err(Error::Config(
            "columns= is empty; name at least one column (the time column, for a stream)".into(),
        ));
    }
    Ok(std::sync::Arc::new(arrow_schema::Schema::new(fields)))
}

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The file it came from.
    pub file: String,
    /// Its line number (1-based).
    pub line: u64,
    /// Why it could not be read.
    pub reason: String,
    /// Its text (cut to 1,000 characters).
    pub text: String,
}

/// One chunk of a source: the rows that parsed, and those that did not.
#[derive(Debug)]
pub struct SourceBatch {
    /// Parsed rows.
    pub batch: RecordBatch,
    /// Rows that did not parse, in file order.
    pub bad: Vec<BadRow>,
    /// The file the chunk came from.
    pub file: String,
}

impl SourceBatch {
    /// The chunk that stands for a file given up on (`on_error="skip"`): no rows, one bad row.
    pub fn skipped(schema: arrow_schema::SchemaRef, bad: BadRow, file: String) -> Self {
        SourceBatch {
            batch: RecordBatch::new_empty(schema),
            bad: vec![bad],
            file,
        }
    }

    /// Adds the rows a line reader turned down before decoding (too long, not UTF-8, ...)
    /// to those the decoder rejected, keeping them in file order.
    pub fn with_bad(mut self, extra: Vec<BadRow>) -> Self {
        if !extra.is_empty() {
            self.bad.extend(extra);
            self.bad.sort_by_key(|b| b.line);
        }
        self
    }
}

/// Opens a file for reading, decompressing `.gz` on the fly.
pub fn open(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| {
        Error::Source(format!(
            "cannot open {}: {e}; check the path and permissions",
            path.display()
        ))
    })?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

/// The longest line (or CSV record) a line-based source reads by default: 64 MiB. A longer
/// one is rejected (a [`BadRow`] naming the limit) without being held in memory whole.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 20;

/// A chunk of a line-based source is handed on once its lines hold this many bytes, even
/// with fewer than `batch_rows` rows: long lines do not make chunks of gigabytes.
pub const CHUNK_BYTES: usize = 64 << 20;

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// End of file: nothing was read.
    End,
    /// A line, in the buffer without its newline.
    Read,
    /// A line longer than the limit, of this many bytes (without its newline): it was read
    /// past, and the buffer holds only its start.
    TooLong(u64),
}

/// Reads one line (without its newline) into `buf`, holding at most `max` bytes of it: a
/// longer line is read past in bounded memory and reported as [`Line::TooLong`].
pub fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
    line: u64,
    max: usize,
) -> Result<Line> {
    let failed = |e: std::io::Error| {
        Error::Source(format!(
            "cannot read {} after line {line}: {e} (a truncated or corrupt file?); the rows \
             before it were processed",
            path.display()
        ))
    };
    buf.clear();
    // Room for the line, its "\r\n", and one byte more to see that it is too long.
    let room = (max as u64).saturating_add(3);
    let n = (&mut *reader)
        .take(room)
        .read_until(b'\n', buf)
        .map_err(failed)?;
    if n == 0 {
        return Ok(Line::End);
    }
    let ended = buf.last() == Some(&b'\n');
    if ended {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 == room {
        // Cut off by the limit: read past the rest of the line without keeping it.
        let rest = reader.skip_until(b'\n').map_err(failed)? as u64;
        let mut total = n as u64 + rest;
        if rest > 0 {
            total -= 1; // its newline
        }
        buf.truncate(EXCERPT_BYTES);
        return Ok(Line::TooLong(total));
    }
    if buf.len() > max {
        let total = buf.len() as u64;
        buf.truncate(EXCERPT_BYTES);
        return Ok(Line::TooLong(total));
    }
    Ok(Line::Read)
}

/// How much of a rejected line is kept to show it.
pub(crate) const EXCERPT_BYTES: usize = 4096;

/// The bad row for a line or record longer than `max` bytes.
pub fn too_long(file: &str, line: u64, bytes: u64, max: usize, start: &[u8], what: &str) -> BadRow {
    BadRow {
        file: file.to_string(),
        line,
        reason: format!(
            "{what} of {bytes} bytes is longer than max_line_bytes={max}; it was skipped \
             without being read into memory (raise max_line_bytes= to read it)"
        ),
        text: excerpt(start),
    }
}

/// Refuses column names polars cannot take: one holding a NUL character, or one given twice.
pub fn check_names(schema: &arrow_schema::Schema, what: &str) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for f in schema.fields() {
        if f.name().contains('\0') {
            return Err(Error::Schema(format!(
                "{what} has a column named {:?}, with a NUL character, which polars and Arrow \
                 refuse; give schema= with the columns to read (others are ignored), or fix \
                 the file",
                f.name()
            )));
        }
        if !seen.insert(f.name().as_str()) {
            return Err(Error::Schema(format!(
                "{what} has two columns named {:?}; column names must be unique: rename one",
                f.name()
            )));
        }
    }
    Ok(())
}

/// What a file source does when a file cannot be read (truncated, corrupt, unsupported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Raise an error naming the file (the rows before it were processed).
    #[default]
    Raise,
    /// Record the file in the bad rows, with the reason, and go on with the next file.
    Skip,
}

impl OnError {
    /// Parses `"raise"` or `"skip"`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "raise" => Ok(OnError::Raise),
            "skip" => Ok(OnError::Skip),
            other => Err(Error::Config(format!(
                "on_error={other:?} is not an option; expected 'raise' (stop at a file that \
                 cannot be read) or 'skip' (record it in run.rejected and go on)"
            ))),
        }
    }
}

/// With [`OnError::Skip`], the bad row recording a file given up on at `line` (0 when the
/// format has no lines); with [`OnError::Raise`], or for an error that is not about the
/// file, the error itself.
pub fn skipped_file(on_error: OnError, path: &Path, line: u64, e: Error) -> Result<BadRow> {
    match (on_error, e) {
        (OnError::Skip, Error::Source(message)) => Ok(BadRow {
            file: path.display().to_string(),
            line,
            reason: format!("file skipped (on_error='skip'): {message}"),
            text: String::new(),
        }),
        (_, e) => Err(e),
    }
}

/// Runs a third-party decoder on input from `path`, turning a panic in it (arrow-rs and
/// parquet assert on some hostile input) into a [`Error::Source`] naming the file, and keeping
/// the panic's message off stderr.
pub fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match caught(f) {
        Ok(result) => result,
        Err(why) => Err(Error::Source(format!(
            "cannot read {}: its decoder gave up on malformed data ({why}); the file is \
             corrupt or not what its name says",
            path.display()
        ))),
    }
}

/// `f()`, or the message of a panic in it (kept off stderr).
pub(crate) fn caught<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    install_quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into())
    })
}

thread_local! {
    /// True while [`guarded`] runs a decoder on this thread: its panics are errors, not news.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
}

/// A short, printable excerpt of a raw line for error reports.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 1000 {
        format!("{}...", text.chars().take(1000).collect::<String>())
    } else {
        text.into_owned()
    }
}

/// The first `max_lines` non-blank lines of a file, for sniffing (lines longer than `max`
/// bytes are left out).
pub fn read_prefix(path: &Path, max_lines: usize, max: usize) -> Result<Vec<Vec<u8>>> {
    let mut r = open(path)?;
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0;
    while lines.len() < max_lines {
        match read_line(r.as_mut(), &mut buf, path, n, max)? {
            Line::End => break,
            Line::TooLong(_) => {}
            Line::Read => {
                if !buf.iter().all(u8::is_ascii_whitespace) {
                    lines.push(buf.clone());
                }
            }
        }
        n += 1;
    }
    Ok(lines)
}

/// Lists paths as given (files are read in the order given).
pub fn paths(list: &[String]) -> Vec<PathBuf> {
    list.iter().map(PathBuf::from).collect()
}

/// arrow's push decoders (JSON and CSV), fed whole chunks of rows.
pub(crate) trait PushDecoder {
    fn push(&mut self, bytes: &[u8]) -> std::result::Result<usize, arrow_schema::ArrowError>;
    fn take(&mut self) -> std::result::Result<Option<RecordBatch>, arrow_schema::ArrowError>;
}

impl PushDecoder for arrow_json::reader::Decoder {
    fn push(&mut self, bytes: &[u8]) -> std::result::Result<usize, arrow_schema::ArrowError> {
        self.decode(bytes)
    }
    fn take(&mut self) -> std::result::Result<Option<RecordBatch>, arrow_schema::ArrowError> {
        self.flush()
    }
}

impl PushDecoder for arrow_csv::reader::Decoder {
    fn push(&mut self, bytes: &[u8]) -> std::result::Result<usize, arrow_schema::ArrowError> {
        self.decode(bytes)
    }
    fn take(&mut self) -> std::result::Result<Option<RecordBatch>, arrow_schema::ArrowError> {
        self.flush()
    }
}

/// Decodes all of `bytes` into one batch; an error is returned as its message, without
/// arrow's "Json error: " / "Csv error: " prefix.
pub(crate) fn decode_all(
    d: &mut impl PushDecoder,
    bytes: &[u8],
) -> std::result::Result<RecordBatch, String> {
    match caught(|| decode_all_unguarded(d, bytes)) {
        Ok(outcome) => outcome,
        Err(why) => Err(format!("the decoder gave up on it ({why})")),
    }
}

fn decode_all_unguarded(
    d: &mut impl PushDecoder,
    bytes: &[u8],
) -> std::result::Result<RecordBatch, String> {
    let clean = |e: arrow_schema::ArrowError| {
        let text = e.to_string();
        text.trim_start_matches("Json error: ")
            .trim_start_matches("Csv error: ")
            .to_string()
    };
    let mut offset = 0;
    while offset < bytes.len() {
        let n = d.push(&bytes[offset..]).map_err(clean)?;
        if n == 0 {
            break;
        }
        offset += n;
    }
    match d.take().map_err(clean)? {
        Some(b) => Ok(b),
        None => Err("no rows".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_longer_than_the_limit_is_read_past_and_measured() {
        let text = format!("short\r\n{}\nafter\nlast", "x".repeat(50));
        let mut r = std::io::Cursor::new(text.into_bytes());
        let mut buf = Vec::new();
        let path = Path::new("t.jsonl");
        let mut got = Vec::new();
        loop {
            match read_line(&mut r, &mut buf, path, 0, 10).unwrap() {
                Line::End => break,
                Line::Read => got.push(String::from_utf8(buf.clone()).unwrap()),
                Line::TooLong(n) => got.push(format!("too long: {n}")),
            }
        }
        assert_eq!(got, ["short", "too long: 50", "after", "last"]);
    }

    #[test]
    fn a_panic_in_a_decoder_is_a_source_error_naming_the_file() {
        let e = guarded(Path::new("f.arrow"), || -> Result<()> {
            panic!("bad flatbuffer")
        });
        let text = e.unwrap_err().to_string();
        assert!(
            text.contains("f.arrow") && text.contains("bad flatbuffer"),
            "{text}"
        );
    }
}
