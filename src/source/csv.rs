//! CSV files (plain or `.gz`) with a header row, decoded with arrow-csv. The schema is
//! inferred from the first rows of the first file; a record that does not parse (wrong field
//! count, a value of the wrong type) becomes a [`BadRow`] while the rest of its chunk is kept.

use super::{decode_all, excerpt, open, BadRow, SourceBatch};
use crate::error::{Error, Result};
use arrow_csv::reader::{Format, ReaderBuilder};
use arrow_schema::SchemaRef;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a [`CsvSource`] is in its files.
pub struct CsvCursor {
    file: usize,
    reader: Option<csv::Reader<Box<dyn BufRead + Send>>>,
    /// The csv crate counts lines one short in files with CRLF line ends.
    line_fix: u64,
    done: bool,
}

/// CSV files, read in order.
#[derive(Clone)]
pub struct CsvSource {
    files: Vec<PathBuf>,
    schema: SchemaRef,
    delimiter: u8,
    batch_rows: usize,
}

impl CsvSource {
    /// Files read in this order; the schema is inferred from up to `infer_rows` records
    /// unless given (columns by position, as the header's).
    pub fn new(
        files: Vec<PathBuf>,
        schema: Option<SchemaRef>,
        delimiter: u8,
        batch_rows: usize,
        infer_rows: usize,
    ) -> Result<Self> {
        let first = files
            .first()
            .ok_or_else(|| Error::Source("no files to read; check the path or glob".into()))?;
        if let Some(schema) = schema {
            check_header(
                open(first)?,
                &schema,
                delimiter,
                &first.display().to_string(),
            )?;
            return Ok(CsvSource {
                files,
                schema,
                delimiter,
                batch_rows: batch_rows.max(1),
            });
        }
        let schema = infer(
            open(first)?,
            delimiter,
            infer_rows,
            &first.display().to_string(),
        )?;
        Ok(CsvSource {
            files,
            schema,
            delimiter,
            batch_rows: batch_rows.max(1),
        })
    }

    /// Records that come as lines rather than files (a file being followed): the schema is
    /// inferred from `head`, the header line and the first records, unless given.
    pub fn for_records(
        name: &str,
        head: &[u8],
        schema: Option<SchemaRef>,
        delimiter: u8,
        infer_rows: usize,
    ) -> Result<Self> {
        let schema = match schema {
            Some(s) => {
                check_header(head, &s, delimiter, name)?;
                s
            }
            None => infer(head, delimiter, infer_rows, name)?,
        };
        Ok(CsvSource {
            files: Vec::new(),
            schema,
            delimiter,
            batch_rows: usize::MAX,
        })
    }

    /// Decodes records (each with its line number and its bytes, newline included) into rows,
    /// and bad rows for those that do not parse.
    pub fn decode_records(&self, file: &str, records: Vec<(u64, Vec<u8>)>) -> Result<SourceBatch> {
        if records.is_empty() {
            return Ok(SourceBatch {
                batch: arrow_array::RecordBatch::new_empty(self.schema.clone()),
                bad: Vec::new(),
                file: file.to_string(),
            });
        }
        self.decode(file, records)
    }

    /// The schema rows are read with.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// One source per file, each read with this one's schema and settings.
    pub fn split(&self) -> Vec<Self> {
        self.files
            .iter()
            .map(|f| Self {
                files: vec![f.clone()],
                ..self.clone()
            })
            .collect()
    }

    /// A position at the start of the first file.
    pub fn cursor(&self) -> CsvCursor {
        CsvCursor {
            file: 0,
            reader: None,
            line_fix: 0,
            done: false,
        }
    }

    /// The next chunk after `cursor`, or None after the last file.
    pub fn next_batch(&self, cursor: &mut CsvCursor) -> Result<Option<SourceBatch>> {
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut record = csv::ByteRecord::new();
        while !cursor.done {
            if cursor.file >= self.files.len() {
                cursor.done = true;
                break;
            }
            let path = &self.files[cursor.file];
            if cursor.reader.is_none() {
                cursor.line_fix = u64::from(ends_with_crlf(path)?);
                cursor.reader = Some(
                    csv::ReaderBuilder::new()
                        .delimiter(self.delimiter)
                        .has_headers(true)
                        .flexible(true)
                        .from_reader(open(path)?),
                );
            }
            let reader = cursor.reader.as_mut().expect("open");
            let more = reader.read_byte_record(&mut record).map_err(|e| {
                Error::Source(format!(
                    "cannot read {}: {e} (a truncated or corrupt file?); the rows before it \
                     were processed",
                    path.display()
                ))
            })?;
            if more {
                let line = record.position().map_or(0, |p| p.line()) + cursor.line_fix;
                records.push((line, self.encode(&record)?));
            } else {
                cursor.reader = None;
                cursor.file += 1;
            }
            if records.len() >= self.batch_rows || (!more && !records.is_empty()) {
                return Ok(Some(self.decode(&path.display().to_string(), records)?));
            }
        }
        Ok(None)
    }

    fn encode(&self, record: &csv::ByteRecord) -> Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .flexible(true)
            .from_writer(Vec::new());
        w.write_byte_record(record)
            .map_err(|e| Error::Internal(format!("csv re-encode: {e}")))?;
        w.into_inner()
            .map_err(|e| Error::Internal(format!("csv re-encode: {e}")))
    }

    fn decoder(&self, rows: usize) -> arrow_csv::reader::Decoder {
        ReaderBuilder::new(self.schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(rows + 1)
            .build_decoder()
    }

    fn decode(&self, file: &str, records: Vec<(u64, Vec<u8>)>) -> Result<SourceBatch> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        self.decode_part(file, &records, &mut good, &mut bad);
        let batch = match good.len() {
            0 => arrow_array::RecordBatch::new_empty(self.schema.clone()),
            1 => good.pop().expect("one"),
            _ => arrow_select::concat::concat_batches(&self.schema, &good)?,
        };
        Ok(SourceBatch {
            batch,
            bad,
            file: file.to_string(),
        })
    }

    /// Decodes records in one go; when that fails, each half on its own, down to the single
    /// records that are bad. A chunk with a few bad records costs about two decodes of it
    /// instead of one decoder per record. Good rows are appended to `good` in record order.
    fn decode_part(
        &self,
        file: &str,
        records: &[(u64, Vec<u8>)],
        good: &mut Vec<arrow_array::RecordBatch>,
        bad: &mut Vec<BadRow>,
    ) {
        if records.is_empty() {
            return;
        }
        let joined: Vec<u8> = records
            .iter()
            .flat_map(|(_, r)| r.iter().copied())
            .collect();
        let outcome = decode_all(&mut self.decoder(records.len()), &joined);
        match outcome {
            Ok(b) if b.num_rows() == records.len() => good.push(b),
            _ if records.len() > 1 => {
                let (head, tail) = records.split_at(records.len() / 2);
                self.decode_part(file, head, good, bad);
                self.decode_part(file, tail, good, bad);
            }
            Ok(_) => bad.push(bad_row(
                file,
                records[0].0,
                "empty record".into(),
                &records[0].1,
            )),
            Err(e) => bad.push(bad_row(file, records[0].0, e, &records[0].1)),
        }
    }
}

/// Checks that a given schema names the header's columns, in order (CSV columns are matched
/// by position).
fn check_header(
    text: impl std::io::Read,
    schema: &SchemaRef,
    delimiter: u8,
    what: &str,
) -> Result<()> {
    let header = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text)
        .headers()
        .map(|h| h.iter().map(str::to_string).collect::<Vec<_>>())
        .map_err(|e| Error::Source(format!("cannot read the header of {what}: {e}")))?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if header != names {
        return Err(Error::Config(format!(
            "schema= names the columns {names:?} but {what} has the header {header:?}; give \
             every column of the header, in its order"
        )));
    }
    Ok(())
}

/// The schema of CSV text with a header row, from up to `infer_rows` records. Records with
/// another number of fields than the header are left out of the sample (they are rejected
/// when read), so one ragged record does not stop the stream.
fn infer(
    text: impl std::io::Read,
    delimiter: u8,
    infer_rows: usize,
    what: &str,
) -> Result<SchemaRef> {
    let unreadable =
        |e: csv::Error| Error::Source(format!("cannot infer a schema from {what}: {e}"));
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut sample = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::new());
    let mut record = csv::ByteRecord::new();
    let mut width = None;
    let mut kept = 0;
    while kept <= infer_rows && reader.read_byte_record(&mut record).map_err(unreadable)? {
        if *width.get_or_insert(record.len()) == record.len() {
            sample.write_byte_record(&record).map_err(unreadable)?;
            kept += 1;
        }
    }
    let sample = sample
        .into_inner()
        .map_err(|e| Error::Internal(format!("csv sample: {e}")))?;
    let format = Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    let (schema, _) = format
        .infer_schema(sample.as_slice(), Some(infer_rows))
        .map_err(|e| Error::Source(format!("cannot infer a schema from {what}: {e}")))?;
    if schema.fields().is_empty() {
        return Err(Error::Source(format!(
            "{what} has no header row; CSV sources need one"
        )));
    }
    // A column empty in every sampled record is read as text: a Null column would turn its
    // later values into nulls.
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            arrow_schema::DataType::Null => {
                arrow_schema::Field::new(f.name(), arrow_schema::DataType::Utf8, true)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    Ok(Arc::new(arrow_schema::Schema::new(fields)))
}

/// True when the file's first line ends with CRLF.
fn ends_with_crlf(path: &std::path::Path) -> Result<bool> {
    let mut r = open(path)?;
    let mut first = Vec::new();
    r.read_until(b'\n', &mut first)
        .map_err(|e| Error::Source(format!("cannot read {}: {e}", path.display())))?;
    Ok(first.ends_with(b"\r\n"))
}

fn bad_row(file: &str, line: u64, reason: String, raw: &[u8]) -> BadRow {
    // arrow-csv counts lines within the chunk it was given ("at line 0"): the row's own line
    // number is in `line`.
    let reason = match reason.find(" at line ") {
        Some(i) => format!("{}{}", &reason[..i], trailing_after_line(&reason[i + 9..])),
        None => reason,
    };
    let text = excerpt(raw.strip_suffix(b"\n").unwrap_or(raw));
    BadRow {
        file: file.to_string(),
        line,
        reason: format!("unreadable CSV record: {reason}"),
        text,
    }
}

/// What follows "at line N" in an arrow-csv message, without the number.
fn trailing_after_line(rest: &str) -> &str {
    rest.trim_start_matches(|c: char| c.is_ascii_digit())
}
