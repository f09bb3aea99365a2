//! Sources: files replayed in order as Arrow batches, with rows that do not parse kept (file,
//! line, reason) rather than dropped, and read errors that name the file.

mod columnar;
mod csv;
mod jsonl;

pub use self::csv::{CsvCursor, CsvSource};
pub use columnar::{normalize_schema, Columnar, ColumnarCursor, ColumnarSource};
pub use jsonl::{Cursor, JsonlSource};

use crate::error::{Error, Result};
use arrow_array::RecordBatch;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

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

/// Reads one line (without its newline) into `buf`; false at end of file.
pub fn read_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    path: &Path,
    line: u64,
) -> Result<bool> {
    buf.clear();
    let n = reader.read_until(b'\n', buf).map_err(|e| {
        Error::Source(format!(
            "cannot read {} after line {line}: {e} (a truncated or corrupt file?); the rows \
             before it were processed",
            path.display()
        ))
    })?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    Ok(true)
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

/// Reads a whole (small) file, for sniffing.
pub fn read_prefix(path: &Path, max_lines: usize) -> Result<Vec<Vec<u8>>> {
    let mut r = open(path)?;
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0;
    while lines.len() < max_lines && read_line(r.as_mut(), &mut buf, path, n)? {
        n += 1;
        if !buf.iter().all(u8::is_ascii_whitespace) {
            lines.push(buf.clone());
        }
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
