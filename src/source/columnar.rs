//! Columnar files: Parquet (row group by row group, with the parquet crate) and Arrow IPC
//! (file or stream format, batch by batch). Rows are typed already, so nothing is rejected row
//! by row; every batch is conformed to one schema (the first file's, or the one given): a
//! column a later file lacks is null, a column it adds is ignored, a column of another type is
//! cast (or the file is refused, by name). A file that cannot be read raises an error naming
//! it, after the rows before it were handed on.

use super::position::{Inside, Position, Stamp};
use super::{check_names, guarded, skipped_file, OnError, ReadOptions, SourceBatch};
use crate::error::{Error, Result};
use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The two columnar formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columnar {
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC, file (Feather v2) or stream format.
    Ipc,
}

type Batches = Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>> + Send>;

/// Where a [`ColumnarSource`] is in its files.
pub struct ColumnarCursor {
    file: usize,
    batches: Option<Batches>,
    /// The rest of a batch longer than `batch_rows`.
    rest: Option<RecordBatch>,
    done: bool,
    /// Batches taken from the file being read.
    taken: u64,
    /// Rows handed on from it.
    rows: u64,
    /// Rows of the last batch taken handed on (while `rest` holds the others).
    rest_from: u64,
    /// The files before `file`, as they were when read to their end.
    before: Vec<Option<Stamp>>,
}

impl ColumnarCursor {
    /// On to the next file; `path`, the one read to its end (or skipped), is stamped.
    fn next_file(&mut self, path: &Path) {
        self.batches = None;
        self.rest = None;
        self.before.push(Stamp::maybe(path));
        self.file += 1;
        self.taken = 0;
        self.rows = 0;
        self.rest_from = 0;
    }
}

/// Parquet or Arrow IPC files, read in order.
#[derive(Clone)]
pub struct ColumnarSource {
    format: Columnar,
    files: Vec<PathBuf>,
    schema: SchemaRef,
    batch_rows: usize,
    on_error: OnError,
}

impl ColumnarSource {
    /// Files read in this order, with `schema` or else the first file's (with
    /// [`OnError::Skip`], the first readable file's).
    pub fn new(
        format: Columnar,
        files: Vec<PathBuf>,
        schema: Option<SchemaRef>,
        options: &ReadOptions,
    ) -> Result<Self> {
        if files.is_empty() {
            return Err(Error::Source(
                "no files to read; check the path or glob".into(),
            ));
        }
        let mut opened = None;
        for f in &files {
            match open_batches(format, f, 1) {
                Ok((own, _)) => {
                    opened = Some((f, own));
                    break;
                }
                Err(e) if options.on_error == OnError::Skip => {
                    if f == files.last().expect("not empty") {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let (first, own) = opened.ok_or_else(|| Error::Source("no readable file".into()))?;
        let given = schema.is_some();
        let schema = match schema {
            Some(s) => {
                let missing: Vec<&String> = s
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .filter(|n| own.field_with_name(n).is_err())
                    .collect();
                if !missing.is_empty() {
                    let have: Vec<&String> = own.fields().iter().map(|f| f.name()).collect();
                    return Err(Error::Schema(format!(
                        "schema= names {missing:?}, which {} does not have; its columns are \
                         {have:?}",
                        first.display()
                    )));
                }
                normalize_schema(&s)
            }
            None => normalize_schema(&own),
        };
        let what = if given {
            "the schema= given".to_string()
        } else {
            first.display().to_string()
        };
        let schema = super::project(&schema, options.columns.as_deref(), &what)?;
        check_names(&schema, &first.display().to_string())?;
        Ok(ColumnarSource {
            format,
            files,
            schema,
            batch_rows: options.batch_rows.max(1),
            on_error: options.on_error,
        })
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
    pub fn cursor(&self) -> ColumnarCursor {
        ColumnarCursor {
            file: 0,
            batches: None,
            rest: None,
            done: false,
            taken: 0,
            rows: 0,
            rest_from: 0,
            before: Vec::new(),
        }
    }

    fn kind(&self) -> &'static str {
        match self.format {
            Columnar::Parquet => "parquet",
            Columnar::Ipc => "ipc",
        }
    }

    /// Where `cursor` is, as bytes for [`ColumnarSource::seek`]: the file, and in it the
    /// batches taken and rows handed on (see [`Position`]).
    pub fn position(&self, cursor: &ColumnarCursor) -> Result<Vec<u8>> {
        let inside = cursor.batches.as_ref().map(|_| Inside {
            stamp: self.files.get(cursor.file).and_then(|p| Stamp::maybe(p)),
            batches: cursor.taken,
            rows: cursor.rows,
            rest: cursor.rest.as_ref().map(|_| cursor.rest_from),
            ..Inside::default()
        });
        Position::new(
            self.kind(),
            &self.files,
            cursor.file,
            cursor.before.clone(),
            inside,
        )
        .encode()
    }

    /// A cursor at a position [`ColumnarSource::position`] gave for a source over the same
    /// files: the chunks after it are those the reader that took it would have read next.
    /// Parquet skips the row groups before it from the file's metadata, then the rows inside
    /// the next; Arrow IPC skips the batches before it. Refused when a file up to it changed.
    pub fn seek(&self, position: &[u8]) -> Result<ColumnarCursor> {
        let p = Position::decode(position, self.kind(), &self.files)?;
        let mut cursor = self.cursor();
        cursor.file = p.file as usize;
        cursor.before = p.before;
        let Some(inside) = p.inside else {
            return Ok(cursor);
        };
        let path = &self.files[cursor.file];
        if let Some(then) = inside.stamp {
            let now = Stamp::of(path)?;
            if now != then {
                return Err(Error::Source(format!(
                    "{} changed since the position was taken inside it (it had {} bytes and                      modification time {} ns, it has {} bytes and {} ns now); a {} file cannot                      be resumed after it was rewritten",
                    path.display(),
                    then.size,
                    then.mtime_ns,
                    now.size,
                    now.mtime_ns,
                    self.kind()
                )));
            }
        }
        let resume = Resume {
            batches: inside.batches - u64::from(inside.rest.is_some()),
            rows: inside.rows,
        };
        let (_, batches) = guarded(path, || {
            open_batches_unguarded(
                self.format,
                path,
                self.batch_rows,
                Some(resume),
                Some(&self.schema),
            )
        })?;
        cursor.batches = Some(batches);
        cursor.taken = inside.batches;
        cursor.rows = inside.rows;
        if let Some(from) = inside.rest {
            // The batch part of which was handed on: the rest of it comes next.
            let batches = cursor.batches.as_mut().expect("set above");
            let batch = match guarded(path, || Ok(batches.next()))? {
                Some(Ok(b)) => guarded(path, || conform(b, &self.schema, path))?,
                Some(Err(e)) => return Err(read_error(path, &e.to_string())),
                None => {
                    return Err(Error::Source(format!(
                        "{} has fewer batches than the position ({}); it was rewritten since",
                        path.display(),
                        inside.batches
                    )))
                }
            };
            let from = usize::try_from(from).unwrap_or(usize::MAX);
            if from >= batch.num_rows() {
                return Err(Error::Source(format!(
                    "{} has a shorter batch than the position; it was rewritten since",
                    path.display()
                )));
            }
            cursor.rest = Some(batch.slice(from, batch.num_rows() - from));
            cursor.rest_from = from as u64;
        }
        Ok(cursor)
    }

    /// The next chunk after `cursor` (at most `batch_rows` rows), or None after the last file.
    pub fn next_batch(&self, cursor: &mut ColumnarCursor) -> Result<Option<SourceBatch>> {
        loop {
            if cursor.done {
                return Ok(None);
            }
            if cursor.file >= self.files.len() {
                cursor.done = true;
                return Ok(None);
            }
            let path = &self.files[cursor.file];
            let batch = match cursor.rest.take() {
                Some(b) => b,
                None => match self.next_of_file(cursor, path) {
                    Ok(Some(b)) => {
                        cursor.taken += 1;
                        cursor.rest_from = 0;
                        b
                    }
                    Ok(None) => {
                        cursor.next_file(path);
                        continue;
                    }
                    Err(e) => {
                        // With on_error="raise" the reader stops here (its position too).
                        let bad = skipped_file(self.on_error, path, 0, e).inspect_err(|_| {
                            cursor.done = true;
                        })?;
                        cursor.next_file(path);
                        let file = path.display().to_string();
                        return Ok(Some(SourceBatch::skipped(self.schema.clone(), bad, file)));
                    }
                },
            };
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = if batch.num_rows() > self.batch_rows {
                cursor.rest =
                    Some(batch.slice(self.batch_rows, batch.num_rows() - self.batch_rows));
                batch.slice(0, self.batch_rows)
            } else {
                batch
            };
            cursor.rows += batch.num_rows() as u64;
            cursor.rest_from += batch.num_rows() as u64;
            return Ok(Some(SourceBatch {
                batch,
                bad: Vec::new(),
                file: path.display().to_string(),
            }));
        }
    }
}

impl ColumnarSource {
    /// The next batch of the file at the cursor, conformed to the schema; None at its end.
    fn next_of_file(
        &self,
        cursor: &mut ColumnarCursor,
        path: &Path,
    ) -> Result<Option<RecordBatch>> {
        if cursor.batches.is_none() {
            cursor.batches = Some(
                guarded(path, || {
                    open_batches_unguarded(
                        self.format,
                        path,
                        self.batch_rows,
                        None,
                        Some(&self.schema),
                    )
                })?
                .1,
            );
            cursor.taken = 0;
            cursor.rows = 0;
        }
        let batches = cursor.batches.as_mut().expect("opened above");
        match guarded(path, || Ok(batches.next()))? {
            Some(Ok(b)) => guarded(path, || conform(b, &self.schema, path)).map(Some),
            Some(Err(e)) => Err(read_error(path, &e.to_string())),
            None => Ok(None),
        }
    }
}

fn read_error(path: &Path, e: &str) -> Error {
    if let Some(codec) = unsupported_codec(e) {
        return Error::Source(format!(
            "cannot read {}: it is compressed with {codec}, which this build of rillet does not \
             read; rewrite it with zstd, snappy, lz4, gzip or brotli (polars: \
             df.write_parquet(path, compression='zstd'))",
            path.display()
        ));
    }
    Error::Source(format!(
        "cannot read {}: {e} (a truncated or corrupt file?); the rows before it were processed",
        path.display()
    ))
}

/// The codec named by a parquet error about a codec it was built without or does not know.
fn unsupported_codec(e: &str) -> Option<String> {
    let name = if let Some(rest) = e.split("Disabled feature at compile time: ").nth(1) {
        rest
    } else {
        e.split("The codec type ")
            .nth(1)?
            .split(" is not supported")
            .next()?
    };
    let name: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then(|| name.to_uppercase())
}

/// The file's schema and an iterator over its batches (a panic in a decoder is an error).
fn open_batches(format: Columnar, path: &Path, batch_rows: usize) -> Result<(SchemaRef, Batches)> {
    guarded(path, || {
        open_batches_unguarded(format, path, batch_rows, None, None)
    })
}

/// Where a file is resumed: after this many batches (Arrow IPC) or rows (Parquet).
#[derive(Clone, Copy)]
struct Resume {
    batches: u64,
    rows: u64,
}

/// The file's schema and an iterator over its batches, from `resume` if given; with `wanted`,
/// a Parquet file's columns that it does not name are not read.
fn open_batches_unguarded(
    format: Columnar,
    path: &Path,
    batch_rows: usize,
    resume: Option<Resume>,
    wanted: Option<&SchemaRef>,
) -> Result<(SchemaRef, Batches)> {
    let rewritten = |what: String| {
        Error::Source(format!(
            "{} has {what}; it was rewritten since the position was taken",
            path.display()
        ))
    };
    let file = File::open(path).map_err(|e| {
        Error::Source(format!(
            "cannot open {}: {e}; check the path and permissions",
            path.display()
        ))
    })?;
    match format {
        Columnar::Parquet => {
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| {
                        Error::Source(format!(
                            "{} is not a readable Parquet file: {e}",
                            path.display()
                        ))
                    })?;
            let schema = builder.schema().clone();
            // Only the columns read: the others' pages are neither fetched nor decoded.
            let roots: Vec<usize> = match wanted {
                Some(w) => (0..schema.fields().len())
                    .filter(|&i| w.field_with_name(schema.field(i).name()).is_ok())
                    .collect(),
                None => Vec::new(),
            };
            let builder = if wanted.is_some() && roots.len() < schema.fields().len() {
                let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
                builder.with_projection(mask)
            } else {
                builder
            };
            let builder = match resume {
                None => builder,
                Some(at) => {
                    // Whole row groups before the position are skipped from the metadata,
                    // then the rows before it inside the next.
                    use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
                    let (mut start, mut skip) = (0u64, 0u64);
                    let mut groups = Vec::new();
                    for (i, g) in builder.metadata().row_groups().iter().enumerate() {
                        let n = u64::try_from(g.num_rows()).unwrap_or(0);
                        if groups.is_empty() && start + n <= at.rows {
                            start += n;
                            continue;
                        }
                        if groups.is_empty() {
                            skip = at.rows - start;
                        }
                        groups.push(i);
                        start += n;
                    }
                    if groups.is_empty() && start < at.rows {
                        return Err(rewritten(format!(
                            "{start} rows, fewer than the {} read before the position",
                            at.rows
                        )));
                    }
                    let selected = start - (at.rows - skip);
                    let builder = builder.with_row_groups(groups);
                    if skip > 0 {
                        let to_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
                        builder.with_row_selection(RowSelection::from(vec![
                            RowSelector::skip(to_usize(skip)),
                            RowSelector::select(to_usize(selected - skip)),
                        ]))
                    } else {
                        builder
                    }
                }
            };
            let reader = builder
                .with_batch_size(batch_rows)
                .build()
                .map_err(|e| read_error(path, &e.to_string()))?;
            Ok((schema, Box::new(reader)))
        }
        Columnar::Ipc => {
            let mut magic = [0u8; 6];
            let is_file = (&file).read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
            let file = File::open(path).map_err(|e| read_error(path, &e.to_string()))?;
            let not_ipc = |e: ArrowError| {
                Error::Source(format!(
                    "{} is not a readable Arrow IPC file or stream: {e}",
                    path.display()
                ))
            };
            // arrow-ipc allocates the lengths a file states before reading them, and a failed
            // allocation aborts the process: lengths past the end of the file are refused first.
            let checked = if is_file {
                check_ipc_file(&file)
            } else {
                check_ipc_stream(&file)
            };
            checked.map_err(|why| {
                Error::Source(format!(
                    "{} is not a readable Arrow IPC file or stream: {why} (a truncated or \
                     corrupt file?)",
                    path.display()
                ))
            })?;
            std::io::Seek::seek(&mut &file, std::io::SeekFrom::Start(0))
                .map_err(|e| read_error(path, &e.to_string()))?;
            let skip = resume.map_or(0, |r| r.batches);
            let fewer = |n: u64| {
                rewritten(format!(
                    "{n} batches, fewer than the {skip} read before the position"
                ))
            };
            if is_file {
                let mut reader = arrow_ipc::reader::FileReader::try_new(BufReader::new(file), None)
                    .map_err(not_ipc)?;
                if skip > 0 {
                    // The batches before the position are skipped by their index.
                    let n = reader.num_batches() as u64;
                    let index = usize::try_from(skip)
                        .ok()
                        .filter(|&i| i <= reader.num_batches())
                        .ok_or_else(|| fewer(n))?;
                    if index < reader.num_batches() {
                        reader.set_index(index).map_err(not_ipc)?;
                    } else {
                        return Ok((reader.schema(), Box::new(std::iter::empty())));
                    }
                }
                Ok((reader.schema(), Box::new(reader)))
            } else {
                let mut reader = arrow_ipc::reader::StreamReader::try_new(
                    BufReader::with_capacity(1 << 20, file),
                    None,
                )
                .map_err(not_ipc)?;
                // A stream has no index: the batches before the position are read past (its
                // dictionaries come in order with them).
                for i in 0..skip {
                    match reader.next() {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(read_error(path, &e.to_string())),
                        None => return Err(fewer(i)),
                    }
                }
                Ok((reader.schema(), Box::new(reader)))
            }
        }
    }
}

/// Checks that the record batch and dictionary blocks an IPC file's footer lists lie inside
/// the file.
fn check_ipc_file(file: &File) -> std::result::Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let io = |e: std::io::Error| e.to_string();
    let len = file.metadata().map_err(io)?.len();
    if len < 18 {
        return Err("it is shorter than an IPC file's header and footer".into());
    }
    let mut f = file;
    let mut tail = [0u8; 10];
    f.seek(SeekFrom::Start(len - 10)).map_err(io)?;
    f.read_exact(&mut tail).map_err(io)?;
    if &tail[4..] != b"ARROW1" {
        return Err("it does not end with the IPC file magic ARROW1".into());
    }
    let footer_len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let footer_len = u64::try_from(footer_len).map_err(|_| "a negative footer length")?;
    if footer_len > len - 18 {
        return Err(format!(
            "its footer length {footer_len} exceeds the file ({len} bytes)"
        ));
    }
    let mut footer = vec![0u8; footer_len as usize];
    f.seek(SeekFrom::Start(len - 10 - footer_len)).map_err(io)?;
    f.read_exact(&mut footer).map_err(io)?;
    let footer = arrow_ipc::root_as_footer(&footer).map_err(|e| format!("its footer: {e}"))?;
    let blocks = footer
        .recordBatches()
        .into_iter()
        .flatten()
        .chain(footer.dictionaries().into_iter().flatten());
    for block in blocks {
        let (offset, meta, body) = (block.offset(), block.metaDataLength(), block.bodyLength());
        let end = u64::try_from(offset)
            .ok()
            .zip(u64::try_from(meta).ok())
            .zip(u64::try_from(body).ok())
            .and_then(|((o, m), b)| o.checked_add(m)?.checked_add(b));
        if end.is_none_or(|end| end > len) {
            return Err(format!(
                "a block at offset {offset} of {meta} + {body} bytes lies outside the file \
                 ({len} bytes)"
            ));
        }
    }
    Ok(())
}

/// Walks an IPC stream's messages (reading their metadata, seeking over their bodies) and
/// checks that every length it states stays inside the file.
fn check_ipc_stream(file: &File) -> std::result::Result<(), String> {
    use std::io::{Seek, SeekFrom};
    let io = |e: std::io::Error| e.to_string();
    let len = file.metadata().map_err(io)?.len();
    let mut f = BufReader::new(file);
    let mut pos = 0u64;
    let mut meta = Vec::new();
    loop {
        let mut word = [0u8; 4];
        if len - pos < 4 {
            return Ok(()); // the end, with or without the end-of-stream marker
        }
        f.read_exact(&mut word).map_err(io)?;
        pos += 4;
        if word == [0xFF; 4] {
            if len - pos < 4 {
                return Ok(());
            }
            f.read_exact(&mut word).map_err(io)?;
            pos += 4;
        }
        let meta_len = i32::from_le_bytes(word);
        if meta_len == 0 {
            return Ok(());
        }
        let meta_len = u64::try_from(meta_len)
            .map_err(|_| format!("a negative message length at byte {}", pos - 4))?;
        if meta_len > len - pos {
            return Err(format!(
                "a message of {meta_len} bytes at byte {pos} runs past the end ({len} bytes)"
            ));
        }
        meta.resize(meta_len as usize, 0);
        f.read_exact(&mut meta).map_err(io)?;
        pos += meta_len;
        let message = arrow_ipc::root_as_message(&meta)
            .map_err(|e| format!("a message at byte {pos}: {e}"))?;
        let body = u64::try_from(message.bodyLength())
            .map_err(|_| format!("a negative body length at byte {pos}"))?;
        if body > len - pos {
            return Err(format!(
                "a message body of {body} bytes at byte {pos} runs past the end ({len} bytes)"
            ));
        }
        f.seek(SeekFrom::Current(body as i64)).map_err(io)?;
        pos += body;
    }
}

/// The engine's plain types for a schema: view and large strings and binaries become `Utf8`
/// and `Binary`, and every field is nullable (a later file may lack it).
pub fn normalize_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), plain_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

fn plain_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Dictionary(_, v) => plain_type(v),
        other => other.clone(),
    }
}

/// Casts that fail on a value that does not fit rather than make it null.
const STRICT: arrow_cast::CastOptions<'static> = arrow_cast::CastOptions {
    safe: false,
    format_options: arrow_cast::display::FormatOptions::new(),
};

/// `batch` with exactly `schema`'s columns: found by name and cast when the type differs,
/// null when absent.
fn conform(batch: RecordBatch, schema: &SchemaRef, path: &Path) -> Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch);
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> Result<ArrayRef> {
            match batch.column_by_name(f.name()) {
                None => Ok(new_null_array(f.data_type(), batch.num_rows())),
                Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
                Some(c) => arrow_cast::cast_with_options(c, f.data_type(), &STRICT).map_err(|e| {
                    Error::Source(format!(
                        "column '{}' of {} is {} where the schema has {}: {e}; give schema= \
                         with a type every file can be read as",
                        f.name(),
                        path.display(),
                        c.data_type(),
                        f.data_type()
                    ))
                }),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    fn batch(ids: &[i64], names: &[&str]) -> RecordBatch {
        RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
            (
                "name",
                Arc::new(StringArray::from(names.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn opts(batch_rows: usize) -> ReadOptions {
        ReadOptions {
            batch_rows,
            ..ReadOptions::default()
        }
    }

    fn read_all(src: &ColumnarSource) -> Result<Vec<RecordBatch>> {
        let mut c = src.cursor();
        let mut out = Vec::new();
        while let Some(b) = src.next_batch(&mut c)? {
            out.push(b.batch);
        }
        Ok(out)
    }

    #[test]
    fn an_unsupported_codec_is_named() {
        let e = read_error(
            Path::new("f.parquet"),
            "Parquet error: Disabled feature at compile time: lzo",
        );
        assert!(e.to_string().contains("compressed with LZO"), "{e}");
        let e = read_error(
            Path::new("f.parquet"),
            "NYI: The codec type LZ4_RAW is not supported yet",
        );
        assert!(e.to_string().contains("compressed with LZ4_RAW"), "{e}");
    }

    #[test]
    fn parquet_row_groups_are_cut_to_batch_rows_and_conformed() {
        let dir = std::env::temp_dir().join(format!("rillet-columnar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(3))
            .build();
        let mut w = ArrowWriter::try_new(
            File::create(&a).unwrap(),
            batch(&[1], &["x"]).schema(),
            Some(props),
        )
        .unwrap();
        w.write(&batch(&[1, 2, 3, 4, 5], &["a", "b", "c", "d", "e"]))
            .unwrap();
        w.close().unwrap();
        // A second file without the "name" column and with an extra one.
        let b = dir.join("b.parquet");
        let only = RecordBatch::try_from_iter(vec![
            ("extra", Arc::new(Int64Array::from(vec![9])) as ArrayRef),
            ("id", Arc::new(Int64Array::from(vec![6])) as ArrayRef),
        ])
        .unwrap();
        let mut w = ArrowWriter::try_new(File::create(&b).unwrap(), only.schema(), None).unwrap();
        w.write(&only).unwrap();
        w.close().unwrap();

        let src =
            ColumnarSource::new(Columnar::Parquet, vec![a, b.clone()], None, &opts(2)).unwrap();
        let got = read_all(&src).unwrap();
        assert!(got.iter().all(|b| b.num_rows() <= 2));
        let ids: Vec<i64> = got
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5, 6]);
        let last = got.last().unwrap();
        assert_eq!(last.num_columns(), 2);
        assert!(last.column(1).is_null(0));

        // A truncated file names itself.
        let bytes = std::fs::read(&b).unwrap();
        std::fs::write(&b, &bytes[..bytes.len() / 2]).unwrap();
        let err = ColumnarSource::new(Columnar::Parquet, vec![b], None, &opts(2))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("b.parquet") && err.contains("Parquet"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
