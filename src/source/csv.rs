//! CSV files (plain or `.gz`) with a header row, decoded with arrow-csv. The schema is
//! inferred from the first rows of the first file; a record that does not parse (wrong field
//! count, a value of the wrong type, invalid UTF-8) becomes a [`BadRow`] while the rest of its
//! chunk is kept. Records are split with csv-core, holding at most `max_line_bytes` of one: a
//! longer record is read past and rejected.

use super::position::{open_at, Counted, Inside, Position, Stamp};
use super::{
    decode_all, excerpt, open, skipped_file, too_long, BadRow, OnError, ReadOptions, SourceBatch,
    CHUNK_BYTES, EXCERPT_BYTES,
};
use crate::error::{Error, Result};
use arrow_csv::reader::{Format, ReaderBuilder};
use arrow_schema::SchemaRef;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a [`CsvSource`] is in its files.
pub struct CsvCursor {
    file: usize,
    /// Boxed: csv-core's reader state is large.
    reader: Option<Box<FileRecords>>,
    /// csv-core counts lines one short in files with CRLF line ends.
    line_fix: u64,
    /// A read error, raised once the rows before it were handed on.
    failed: Option<Error>,
    /// Where the record that failed to read starts: its offset, the hash before it and
    /// csv-core's line there (the position stays there, so a resumed reader meets the error
    /// again).
    failed_at: Option<(u64, Option<u64>, u64)>,
    done: bool,
    /// The files before `file`, as they were when read to their end.
    before: Vec<Option<Stamp>>,
}

/// CSV files, read in order.
#[derive(Clone)]
pub struct CsvSource {
    files: Vec<PathBuf>,
    /// Every column of the header, in order.
    schema: SchemaRef,
    /// The columns read (`columns=`), as indices of `schema`, and their schema: the rows'.
    projection: Option<Vec<usize>>,
    out: SchemaRef,
    delimiter: u8,
    batch_rows: usize,
    max_line_bytes: usize,
    on_error: OnError,
    /// Texts read as null, as a regex for arrow-csv (None: only the empty field).
    nulls: Option<regex::Regex>,
    /// The rows the schema was inferred from, when it was (a bad value's reason says so).
    inferred: Option<usize>,
}

/// One record read by [`Records`].
enum Record {
    /// A record, whose fields [`Records::fields`] gives, starting on this line.
    Fields(u64),
    /// A record longer than the limit, starting on this line: its size and its first bytes.
    TooLong(u64, u64, Vec<u8>),
    /// The end of the file.
    End,
}

/// CSV records split by csv-core exactly as the csv crate splits them (quoted fields may span
/// lines), holding at most `max` bytes of one record.
struct Records<R: BufRead> {
    core: csv_core::Reader,
    input: R,
    fields: Vec<u8>,
    ends: Vec<usize>,
    len: usize,
    /// The bytes of the record last read, as they are in the file (its terminator included).
    raw: Vec<u8>,
    max: usize,
    delimiter: u8,
    ended: bool,
}

impl<R: BufRead> Records<R> {
    fn new(input: R, delimiter: u8, max: usize) -> Self {
        Records {
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            input,
            fields: vec![0; 1024],
            ends: vec![0; 32],
            len: 0,
            raw: Vec::new(),
            max,
            delimiter,
            ended: false,
        }
    }

    /// The first bytes of the record being read (`outlen` bytes of fields, `endlen` of them
    /// complete), its fields joined by the delimiter.
    fn start_of(&self, outlen: usize, endlen: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut from = 0;
        for &end in &self.ends[..endlen] {
            if out.len() >= EXCERPT_BYTES {
                break;
            }
            out.extend_from_slice(&self.fields[from..end]);
            out.push(self.delimiter);
            from = end;
        }
        if out.len() < EXCERPT_BYTES {
            out.extend_from_slice(&self.fields[from.min(outlen)..outlen]);
        }
        out.truncate(EXCERPT_BYTES);
        out
    }

    /// The fields of the record last read.
    fn fields(&self) -> impl Iterator<Item = &[u8]> {
        let mut start = 0;
        self.ends[..self.len].iter().map(move |&end| {
            let field = &self.fields[start..end];
            start = end;
            field
        })
    }

    fn next(&mut self, path: &Path) -> Result<Record> {
        use csv_core::ReadRecordResult as R;
        if self.ended {
            return Ok(Record::End);
        }
        let line = self.core.line();
        let (mut outlen, mut endlen) = (0usize, 0usize);
        let mut raw = 0u64;
        // Past the limit: the record's first bytes, to show it (kept off the common path).
        let mut start: Option<Vec<u8>> = None;
        self.raw.clear();
        loop {
            let input = self.input.fill_buf().map_err(|e| {
                Error::Source(format!(
                    "cannot read {} at line {line}: {e} (a truncated or corrupt file?); the \
                     rows before it were processed",
                    path.display()
                ))
            })?;
            let (res, nin, nout, nend) =
                self.core
                    .read_record(input, &mut self.fields[outlen..], &mut self.ends[endlen..]);
            if start.is_none() {
                self.raw.extend_from_slice(&input[..nin]);
            }
            self.input.consume(nin);
            raw += nin as u64;
            outlen += nout;
            endlen += nend;
            if raw > self.max as u64 && start.is_none() {
                start = Some(self.start_of(outlen, endlen));
                self.raw = Vec::new();
            }
            let over = start.is_some();
            match res {
                R::InputEmpty => {}
                // Past the limit the record's fields are dropped as they come.
                R::OutputFull if over => outlen = 0,
                R::OutputEndsFull if over => endlen = 0,
                R::OutputFull => {
                    let grown = (self.fields.len() * 2)
                        .min(self.max.saturating_add(2))
                        .max(outlen + 1);
                    self.fields.resize(grown, 0);
                }
                R::OutputEndsFull => {
                    let grown = self.ends.len() * 2;
                    self.ends.resize(grown, 0);
                }
                R::Record if over => {
                    return Ok(Record::TooLong(line, raw, start.unwrap_or_default()));
                }
                R::Record => {
                    self.len = endlen;
                    return Ok(Record::Fields(line));
                }
                R::End => {
                    self.ended = true;
                    return Ok(Record::End);
                }
            }
        }
    }
}

type FileRecords = Records<Counted<Box<dyn BufRead + Send>>>;

/// Opens a CSV file for records, past its header; with the line-number fix for CRLF files.
fn open_records(path: &Path, delimiter: u8, max: usize) -> Result<(FileRecords, u64)> {
    let line_fix = u64::from(ends_with_crlf(path)?);
    let mut records = Records::new(Counted::new(open(path)?, 0), delimiter, max);
    // The header (checked when the source was made).
    records.next(path)?;
    Ok((records, line_fix))
}

/// Opens a CSV file for records at a position inside it (between two records).
fn open_records_at(path: &Path, delimiter: u8, max: usize, at: &Inside) -> Result<FileRecords> {
    let mut records = Records::new(open_at(path, at.offset, at.tail)?, delimiter, max);
    // A reader past the first bytes of a file: a UTF-8 BOM is no longer stripped. A newline
    // between records is passed over alike by a reader that just ended a record.
    let (mut fields, mut ends) = ([0u8; 1], [0usize; 1]);
    records.core.read_record(b"\n", &mut fields, &mut ends);
    records.core.set_line(at.line);
    Ok(records)
}

/// The columns read (`columns=`) as the header's indices (None: all, unprojected), and the
/// rows' schema.
fn projection(
    schema: &SchemaRef,
    options: &ReadOptions,
    what: &str,
) -> Result<(Option<Vec<usize>>, SchemaRef)> {
    let out = super::project(schema, options.columns.as_deref(), what)?;
    let indices = options.columns.as_ref().map(|_| {
        out.fields()
            .iter()
            .map(|f| schema.index_of(f.name()).expect("projected from it"))
            .collect()
    });
    Ok((indices, out))
}

/// A regex matching the empty field and each of `values` (whole field), for arrow-csv.
fn null_regex(values: &[String]) -> Result<Option<regex::Regex>> {
    if values.is_empty() {
        return Ok(None);
    }
    let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
    regex::Regex::new(&format!("^(?:|{})$", alternatives.join("|")))
        .map(Some)
        .map_err(|e| Error::Config(format!("null_values={values:?}: {e}")))
}

impl CsvSource {
    /// Files read in this order; the schema is inferred from up to `infer_rows` records of the
    /// first file (with [`OnError::Skip`], the first readable one) unless given (columns by
    /// position, as the header's).
    pub fn new(
        files: Vec<PathBuf>,
        schema: Option<SchemaRef>,
        options: &ReadOptions,
    ) -> Result<Self> {
        if files.is_empty() {
            return Err(Error::Source(
                "no files to read; check the path or glob".into(),
            ));
        }
        let nulls = null_regex(&options.null_values)?;
        let max = options.max_line_bytes.max(1);
        let mut last = None;
        // A file with a header and no records tells no types: the next one is sampled.
        let mut headers_only = None;
        let mut chosen = None;
        for (i, f) in files.iter().enumerate() {
            let what = f.display().to_string();
            let found = open(f).and_then(|r| match &schema {
                Some(s) => {
                    check_header(r, s, options.delimiter, max, &what).map(|()| (s.clone(), 1))
                }
                None => infer(
                    r,
                    options.delimiter,
                    options.infer_rows,
                    max,
                    nulls.as_ref(),
                    &what,
                ),
            });
            let found = match found {
                Ok((found, 0)) if i + 1 < files.len() => {
                    headers_only.get_or_insert(found);
                    continue;
                }
                Ok((found, _)) => Ok(found),
                Err(e) => match headers_only.take() {
                    Some(found) if options.on_error == OnError::Skip => Ok(found),
                    _ => Err(e),
                },
            };
            match found {
                Ok(found) => {
                    chosen = Some(found);
                    break;
                }
                // A header that does not fit is the query's problem, not one file's.
                Err(e @ (Error::Config(_) | Error::Schema(_))) => return Err(e),
                Err(e) if options.on_error == OnError::Skip => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match chosen.or(headers_only) {
            Some(found) => {
                let (projection, out) =
                    projection(&found, options, &files[0].display().to_string())?;
                Ok(CsvSource {
                    inferred: schema.is_none().then_some(options.infer_rows),
                    projection,
                    out,
                    files,
                    schema: found,
                    delimiter: options.delimiter,
                    batch_rows: options.batch_rows.max(1),
                    max_line_bytes: max,
                    on_error: options.on_error,
                    nulls,
                })
            }
            None => Err(last.unwrap_or_else(|| Error::Source("no files to read".into()))),
        }
    }

    /// Records that come as lines rather than files (a file being followed): the schema is
    /// inferred from `head`, the header line and the first records, unless given.
    pub fn for_records(
        name: &str,
        head: &[u8],
        schema: Option<SchemaRef>,
        options: &ReadOptions,
    ) -> Result<Self> {
        let nulls = null_regex(&options.null_values)?;
        let max = options.max_line_bytes.max(1);
        let inferred = schema.is_none().then_some(options.infer_rows);
        let schema = match schema {
            Some(s) => {
                check_header(head, &s, options.delimiter, max, name)?;
                s
            }
            None => {
                infer(
                    head,
                    options.delimiter,
                    options.infer_rows,
                    max,
                    nulls.as_ref(),
                    name,
                )?
                .0
            }
        };
        let (projection, out) = projection(&schema, options, name)?;
        Ok(CsvSource {
            files: Vec::new(),
            projection,
            out,
            schema,
            delimiter: options.delimiter,
            batch_rows: usize::MAX,
            max_line_bytes: max,
            on_error: options.on_error,
            nulls,
            inferred,
        })
    }

    /// Decodes records (each with its line number and its bytes, newline included) into rows,
    /// and bad rows for those that do not parse.
    pub fn decode_records(&self, file: &str, records: Vec<(u64, Vec<u8>)>) -> Result<SourceBatch> {
        if records.is_empty() {
            return Ok(SourceBatch {
                batch: arrow_array::RecordBatch::new_empty(self.out.clone()),
                bad: Vec::new(),
                file: file.to_string(),
            });
        }
        self.decode(file, records)
    }

    /// The schema rows are read with.
    pub fn schema(&self) -> SchemaRef {
        self.out.clone()
    }

    /// Every column of the header with its type (the rows' schema when `columns=` reads
    /// them all): what `schema=` gives a reader of more files to read them alike.
    pub fn header_schema(&self) -> SchemaRef {
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
            failed: None,
            failed_at: None,
            done: false,
            before: Vec::new(),
        }
    }

    /// Where `cursor` is, as bytes for [`CsvSource::seek`]: the file, and in it the bytes
    /// read and csv-core's line count (see [`Position`]).
    pub fn position(&self, cursor: &CsvCursor) -> Result<Vec<u8>> {
        let inside = match (&cursor.failed_at, &cursor.reader) {
            (&Some(at), _) => Some(at),
            (None, Some(r)) => {
                let offset = r.input.offset();
                Some((offset, r.input.hash_at(offset), r.core.line()))
            }
            (None, None) => None,
        }
        .map(|(offset, tail, line)| Inside {
            stamp: self.files.get(cursor.file).and_then(|p| Stamp::maybe(p)),
            line,
            offset,
            tail,
            line_fix: cursor.line_fix,
            ..Inside::default()
        });
        Position::new(
            "csv",
            &self.files,
            cursor.file,
            cursor.before.clone(),
            inside,
        )
        .encode()
    }

    /// A cursor at a position [`CsvSource::position`] gave for a source over the same files:
    /// the chunks after it are those the reader that took it would have read next. Refused
    /// when a file before it changed, or the file it is in is shorter or another one.
    pub fn seek(&self, position: &[u8]) -> Result<CsvCursor> {
        let p = Position::decode(position, "csv", &self.files)?;
        let mut cursor = self.cursor();
        cursor.file = p.file as usize;
        cursor.before = p.before;
        if let Some(inside) = p.inside {
            let path = &self.files[cursor.file];
            let records = open_records_at(path, self.delimiter, self.max_line_bytes, &inside)?;
            cursor.reader = Some(Box::new(records));
            cursor.line_fix = inside.line_fix;
        }
        Ok(cursor)
    }

    /// The next chunk after `cursor`, or None after the last file.
    pub fn next_batch(&self, cursor: &mut CsvCursor) -> Result<Option<SourceBatch>> {
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut extra: Vec<BadRow> = Vec::new();
        let mut bytes = 0usize;
        while !cursor.done {
            if let Some(e) = cursor.failed.take() {
                cursor.done = true;
                return Err(e);
            }
            if cursor.file >= self.files.len() {
                cursor.done = true;
                break;
            }
            let path = &self.files[cursor.file];
            // The file's name, made when a chunk or a bad row needs it.
            let name = || path.display().to_string();
            if cursor.reader.is_none() {
                // Chunks do not span files: nothing is pending when the next one opens.
                match open_records(path, self.delimiter, self.max_line_bytes) {
                    Ok((r, fix)) => {
                        cursor.reader = Some(Box::new(r));
                        cursor.line_fix = fix;
                    }
                    Err(e) => {
                        let bad = skipped_file(self.on_error, path, 1, e)?;
                        cursor.before.push(None);
                        cursor.file += 1;
                        return Ok(Some(SourceBatch::skipped(self.out.clone(), bad, name())));
                    }
                }
            }
            let reader = cursor.reader.as_mut().expect("opened above");
            let start = (reader.input.offset(), reader.core.line());
            let more = match reader.next(path) {
                Ok(Record::Fields(line)) => {
                    let line = line + cursor.line_fix;
                    // The record as written is what arrow-csv decodes (the same csv-core
                    // reads it), ended by a newline.
                    let mut record = std::mem::take(&mut reader.raw);
                    if !record.ends_with(b"\n") && !record.ends_with(b"\r") {
                        record.push(b'\n');
                    }
                    bytes += record.len();
                    records.push((line, record));
                    true
                }
                Ok(Record::TooLong(line, bytes, start)) => {
                    let line = line + cursor.line_fix;
                    extra.push(too_long(
                        &name(),
                        line,
                        bytes,
                        self.max_line_bytes,
                        &start,
                        "CSV record",
                    ));
                    true
                }
                Ok(Record::End) => false,
                Err(e) if self.on_error == OnError::Skip => {
                    let line = reader.core.line() + cursor.line_fix;
                    extra.push(skipped_file(self.on_error, path, line, e)?);
                    false
                }
                Err(e) => {
                    // The rows read before it are handed on first; the error comes next.
                    cursor.failed = Some(e);
                    let tail = reader.input.hash_at(start.0);
                    cursor.failed_at = Some((start.0, tail, start.1));
                    false
                }
            };
            if !more && cursor.failed.is_none() {
                cursor.reader = None;
                cursor.before.push(Stamp::maybe(path));
                cursor.file += 1;
            }
            let full = records.len() + extra.len() >= self.batch_rows || bytes >= CHUNK_BYTES;
            if full || (!more && (!records.is_empty() || !extra.is_empty())) {
                return Ok(Some(self.decode(&name(), records)?.with_bad(extra)));
            }
        }
        Ok(None)
    }

    fn decoder(&self, rows: usize) -> arrow_csv::reader::Decoder {
        let builder = ReaderBuilder::new(self.schema.clone())
            .with_header(false)
            .with_delimiter(self.delimiter)
            .with_batch_size(rows + 1);
        let builder = match &self.projection {
            Some(p) => builder.with_projection(p.clone()),
            None => builder,
        };
        match &self.nulls {
            Some(r) => builder.with_null_regex(r.clone()),
            None => builder,
        }
        .build_decoder()
    }

    fn decode(&self, file: &str, records: Vec<(u64, Vec<u8>)>) -> Result<SourceBatch> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        self.decode_part(file, &records, &mut good, &mut bad);
        let batch = match good.len() {
            0 => arrow_array::RecordBatch::new_empty(self.out.clone()),
            1 => good.pop().expect("one"),
            _ => arrow_select::concat::concat_batches(&self.out, &good)?,
        };
        Ok(SourceBatch {
            batch,
            bad,
            file: file.to_string(),
        })
    }

    /// arrow-csv's reason for a value of the wrong type, with the column's name and the fix.
    fn explain(&self, reason: &str) -> String {
        let Some(parsed) = wrong_type(reason) else {
            return reason.to_string();
        };
        let (value, data_type, column) = parsed;
        let Some(field) = self.schema.fields().get(column) else {
            return reason.to_string();
        };
        let origin = match self.inferred {
            Some(n) => format!(
                "the type inferred from the first {n} records; if {value:?} marks a missing \
                 value pass null_values=[{value:?}], else give the column's type in schema= \
                 or sample more rows with infer_schema_length="
            ),
            None => "the type schema= gives it".to_string(),
        };
        format!(
            "column '{}' holds {value:?}, which is not a {data_type} ({origin})",
            field.name()
        )
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
            Err(e) => {
                let reason = self.explain(&e);
                bad.push(bad_row(file, records[0].0, reason, &records[0].1))
            }
        }
    }
}

/// (value, type, column index) from arrow-csv's "Error while parsing value 'v' as type 't'
/// for column i at line n".
fn wrong_type(reason: &str) -> Option<(String, String, usize)> {
    let rest = reason.split("Error while parsing value '").nth(1)?;
    let (value, rest) = rest.split_once("' as type '")?;
    let (data_type, rest) = rest.split_once("' for column ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((
        value.to_string(),
        data_type.to_string(),
        digits.parse().ok()?,
    ))
}

/// The header's column names, refused when a name is not UTF-8, holds a NUL or repeats.
fn header_names<R: BufRead>(records: &mut Records<R>, what: &str) -> Result<Vec<String>> {
    let header = match records.next(Path::new(what))? {
        Record::Fields(_) => records.fields().map(<[u8]>::to_vec).collect::<Vec<_>>(),
        Record::TooLong(..) => {
            return Err(Error::Source(format!(
                "the header of {what} is longer than max_line_bytes={}; is it a CSV file?",
                records.max
            )))
        }
        Record::End => {
            return Err(Error::Source(format!(
                "{what} is empty; CSV sources need a header row"
            )))
        }
    };
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw).map_err(|_| {
            Error::Schema(format!(
                "column {} of the header of {what} is not UTF-8 text ({:?}); save the file as \
                 UTF-8",
                i + 1,
                String::from_utf8_lossy(raw)
            ))
        })?;
        if name.contains('\0') {
            return Err(Error::Schema(format!(
                "column {} of the header of {what} holds a NUL character ({name:?}); is the file \
                 UTF-16 or binary? Save it as UTF-8 text, or fix that header name",
                i + 1
            )));
        }
        if let Some(first) = names.iter().position(|n| n == name) {
            return Err(Error::Schema(format!(
                "the header of {what} names the column {name:?} twice (columns {} and {}); \
                 column names must be unique: rename one of them in the header",
                first + 1,
                i + 1
            )));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Checks that a given schema names the header's columns, in order (CSV columns are matched
/// by position).
fn check_header(
    text: impl BufRead,
    schema: &SchemaRef,
    delimiter: u8,
    max: usize,
    what: &str,
) -> Result<()> {
    let header = header_names(&mut Records::new(text, delimiter, max), what)?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    if header != names {
        return Err(Error::Config(format!(
            "schema= names the columns {names:?} but {what} has the header {header:?}; give \
             every column of the header, in its order"
        )));
    }
    Ok(())
}

/// The schema of CSV text with a header row, from up to `infer_rows` records (0: all of
/// them), and how many records it was inferred from. Records with another number of fields than the header, longer than `max` bytes or
/// not UTF-8 are left out of the sample (they are rejected when read), so one bad record does
/// not stop the stream.
fn infer(
    text: impl BufRead,
    delimiter: u8,
    infer_rows: usize,
    max: usize,
    nulls: Option<&regex::Regex>,
    what: &str,
) -> Result<(SchemaRef, usize)> {
    let path = Path::new(what);
    let mut records = Records::new(text, delimiter, max);
    let names = header_names(&mut records, what)?;
    let mut sample = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(Vec::new());
    sample
        .write_record(&names)
        .map_err(|e| Error::Internal(format!("csv sample: {e}")))?;
    let limit = if infer_rows == 0 {
        usize::MAX
    } else {
        infer_rows
    };
    let mut kept = 0;
    while kept < limit {
        match records.next(path)? {
            Record::End => break,
            Record::TooLong(..) => {}
            Record::Fields(_) => {
                let fits = records.len == names.len()
                    && records.fields().all(|f| std::str::from_utf8(f).is_ok());
                if fits {
                    sample
                        .write_record(records.fields())
                        .map_err(|e| Error::Internal(format!("csv sample: {e}")))?;
                    kept += 1;
                }
            }
        }
    }
    let sample = sample
        .into_inner()
        .map_err(|e| Error::Internal(format!("csv sample: {e}")))?;
    let mut format = Format::default()
        .with_header(true)
        .with_delimiter(delimiter);
    if let Some(r) = nulls {
        format = format.with_null_regex(r.clone());
    }
    let (schema, _) = format
        .infer_schema(sample.as_slice(), None)
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
    Ok((Arc::new(arrow_schema::Schema::new(fields)), kept))
}

/// True when the file's first line ends with CRLF.
fn ends_with_crlf(path: &Path) -> Result<bool> {
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
    let first = raw
        .iter()
        .position(|b| !b"\r\n".contains(b))
        .unwrap_or(raw.len());
    let last = raw
        .iter()
        .rposition(|b| !b"\r\n".contains(b))
        .map_or(first, |i| i + 1);
    let text = excerpt(&raw[first..last.max(first)]);
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
