//! Newline-delimited JSON (plain or `.gz`), decoded with arrow-json. A schema is inferred from
//! the first rows (or given); a later row with a missing field gets null, a field not in the
//! schema is ignored, and a row that does not parse, or has a value of the wrong type, becomes
//! a [`BadRow`] while the rest of its chunk is kept.

use super::position::{open_at, Counted, Inside, Position, Stamp};
use super::{
    check_names, decode_all, excerpt, open, read_line, read_prefix, skipped_file, too_long, BadRow,
    Line, OnError, ReadOptions, SourceBatch, CHUNK_BYTES,
};
use crate::error::{Error, Result};
use arrow_json::reader::{infer_json_schema_from_iterator, ReaderBuilder};
use arrow_schema::SchemaRef;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a [`JsonlSource`] is in its files.
pub struct Cursor {
    file: usize,
    reader: Option<Counted<Box<dyn BufRead + Send>>>,
    line: u64,
    /// A read error, raised once the rows before it were handed on.
    failed: Option<Error>,
    /// Where the line that failed to read starts: its offset and the hash before it (the
    /// position stays there, so a resumed reader meets the error again).
    failed_at: Option<(u64, Option<u64>)>,
    done: bool,
    /// The files before `file`, as they were when read to their end.
    before: Vec<Option<Stamp>>,
}

/// JSON Lines files, read in order.
#[derive(Clone)]
pub struct JsonlSource {
    files: Vec<PathBuf>,
    schema: SchemaRef,
    batch_rows: usize,
    max_line_bytes: usize,
    on_error: OnError,
    /// Fields whose values have conflicting JSON types across rows (an object here, an array
    /// there): read as their JSON text, so nothing is lost.
    text_fields: Vec<String>,
}

impl JsonlSource {
    /// Files read in this order; the schema is inferred from up to `infer_rows` rows of the
    /// first non-empty file unless given (with [`OnError::Skip`], files that cannot be read are
    /// passed over).
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
        let mut source = JsonlSource {
            files,
            schema: Arc::new(arrow_schema::Schema::empty()),
            batch_rows: options.batch_rows.max(1),
            max_line_bytes: options.max_line_bytes.max(1),
            on_error: options.on_error,
            text_fields: Vec::new(),
        };
        let what = source.files[0].display().to_string();
        if let Some(s) = schema {
            source.schema = super::project(&s, options.columns.as_deref(), "the schema= given")?;
            return Ok(source);
        }
        let mut values = Vec::new();
        for f in &source.files {
            let prefix = match read_prefix(f, options.infer_rows, source.max_line_bytes) {
                Ok(lines) => lines,
                Err(e) => {
                    skipped_file(source.on_error, f, 0, e)?;
                    continue;
                }
            };
            for line in prefix {
                // serde_json refuses nesting deeper than 128 levels rather than recursing on.
                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) {
                    if v.is_object() {
                        values.push(v);
                    }
                }
            }
            if !values.is_empty() {
                break;
            }
        }
        if values.is_empty() {
            return Err(Error::Source(format!(
                "found no JSON object to infer a schema from in {}; give schema= or check \
                 that the files hold one JSON object per line",
                source.files[0].display()
            )));
        }
        let (schema, text_fields) = infer_schema(values)?;
        check_names(
            &schema,
            &format!("{} (its first rows)", source.files[0].display()),
        )?;
        // Fields left out of the schema are passed over by the decoder.
        source.schema = super::project(&schema, options.columns.as_deref(), &what)?;
        source.text_fields = text_fields
            .into_iter()
            .filter(|f| source.schema.field_with_name(f).is_ok())
            .collect();
        Ok(source)
    }

    /// Fields read as JSON text because their type differs between rows.
    pub fn text_fields(&self) -> &[String] {
        &self.text_fields
    }

    fn rewrite(&self, line: &[u8]) -> Vec<u8> {
        if self.text_fields.is_empty() {
            return line.to_vec();
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(mut map)) => {
                for f in &self.text_fields {
                    if let Some(v) = map.get_mut(f) {
                        if !v.is_string() && !v.is_null() {
                            *v = serde_json::Value::String(v.to_string());
                        }
                    }
                }
                serde_json::to_vec(&serde_json::Value::Object(map))
                    .unwrap_or_else(|_| line.to_vec())
            }
            _ => line.to_vec(),
        }
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

    /// Reads every file in order, calling `f` with each chunk; stops at the first error.
    pub fn for_each(&self, mut f: impl FnMut(SourceBatch) -> Result<()>) -> Result<()> {
        let mut cursor = self.cursor();
        while let Some(b) = self.next_batch(&mut cursor)? {
            f(b)?;
        }
        Ok(())
    }

    /// A position at the start of the first file.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            file: 0,
            reader: None,
            line: 0,
            failed: None,
            failed_at: None,
            done: false,
            before: Vec::new(),
        }
    }

    /// Where `cursor` is, as bytes for [`JsonlSource::seek`]: the file, and in it the lines
    /// and bytes read (see [`Position`]).
    pub fn position(&self, cursor: &Cursor) -> Result<Vec<u8>> {
        let inside = match (&cursor.failed_at, &cursor.reader) {
            (&Some((offset, tail)), _) => Some((offset, tail)),
            (None, Some(r)) => Some((r.offset(), r.hash_at(r.offset()))),
            (None, None) => None,
        }
        .map(|(offset, tail)| Inside {
            stamp: self.files.get(cursor.file).and_then(|p| Stamp::maybe(p)),
            line: cursor.line,
            offset,
            tail,
            ..Inside::default()
        });
        Position::new(
            "jsonl",
            &self.files,
            cursor.file,
            cursor.before.clone(),
            inside,
        )
        .encode()
    }

    /// A cursor at a position [`JsonlSource::position`] gave for a source over the same files:
    /// the chunks after it are those the reader that took it would have read next. Refused
    /// when a file before it changed, or the file it is in is shorter or another one.
    pub fn seek(&self, position: &[u8]) -> Result<Cursor> {
        let p = Position::decode(position, "jsonl", &self.files)?;
        let mut cursor = self.cursor();
        cursor.file = p.file as usize;
        cursor.before = p.before;
        if let Some(inside) = p.inside {
            let path = &self.files[cursor.file];
            cursor.reader = Some(open_at(path, inside.offset, inside.tail)?);
            cursor.line = inside.line;
        }
        Ok(cursor)
    }

    /// The next chunk after `cursor`, or None at the end of the last file.
    pub fn next_batch(&self, cursor: &mut Cursor) -> Result<Option<SourceBatch>> {
        let mut buf = Vec::new();
        let mut chunk: Vec<(u64, Vec<u8>)> = Vec::with_capacity(self.batch_rows.min(1 << 16));
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
                match open(path) {
                    Ok(r) => {
                        cursor.reader = Some(Counted::new(r, 0));
                        cursor.line = 0;
                    }
                    Err(e) => {
                        let bad = skipped_file(self.on_error, path, 0, e)?;
                        cursor.before.push(None);
                        cursor.file += 1;
                        return Ok(Some(SourceBatch::skipped(self.schema.clone(), bad, name())));
                    }
                }
            }
            let reader = cursor.reader.as_mut().expect("opened above");
            let start = reader.offset();
            let step = read_line(reader, &mut buf, path, cursor.line, self.max_line_bytes);
            let more = match step {
                Ok(Line::Read) => {
                    cursor.line += 1;
                    if too_deep(&buf) {
                        extra.push(BadRow {
                            file: name(),
                            line: cursor.line,
                            reason: format!(
                                "unreadable JSON row: nested more than {MAX_DEPTH} levels deep \
                                 (arrays and objects inside one another); such a row cannot \
                                 be a table row"
                            ),
                            text: excerpt(&buf),
                        });
                    } else if !buf.iter().all(u8::is_ascii_whitespace) {
                        bytes += buf.len();
                        chunk.push((cursor.line, std::mem::take(&mut buf)));
                    }
                    true
                }
                Ok(Line::TooLong(bytes)) => {
                    cursor.line += 1;
                    extra.push(too_long(
                        &name(),
                        cursor.line,
                        bytes,
                        self.max_line_bytes,
                        &buf,
                        "line",
                    ));
                    true
                }
                Ok(Line::End) => false,
                Err(e) if self.on_error == OnError::Skip => {
                    extra.push(skipped_file(self.on_error, path, cursor.line + 1, e)?);
                    false
                }
                Err(e) => {
                    // The rows read before it are handed on first; the error comes next.
                    cursor.failed = Some(e);
                    cursor.failed_at = Some((start, reader.hash_at(start)));
                    false
                }
            };
            if !more && cursor.failed.is_none() {
                cursor.reader = None;
                cursor.before.push(Stamp::maybe(path));
                cursor.file += 1;
            }
            let full = chunk.len() + extra.len() >= self.batch_rows || bytes >= CHUNK_BYTES;
            if full || (!more && (!chunk.is_empty() || !extra.is_empty())) {
                return Ok(Some(self.decode(&name(), chunk)?.with_bad(extra)));
            }
        }
        Ok(None)
    }

    fn decoder(&self) -> Result<arrow_json::reader::Decoder> {
        // A number or boolean where the schema has text is read as its JSON text.
        Ok(ReaderBuilder::new(self.schema.clone())
            .with_coerce_primitive(true)
            .with_batch_size(self.batch_rows.max(1) + 1)
            .build_decoder()?)
    }

    /// Decodes a chunk; when that fails, each half on its own, down to the single lines that
    /// are bad (about two decodes of a chunk with a few bad lines), keeping the rest in order.
    fn decode(&self, file: &str, chunk: Vec<(u64, Vec<u8>)>) -> Result<SourceBatch> {
        // Rows with text fields are rewritten for decoding; bad rows report the original.
        type Lines = Vec<(u64, Vec<u8>)>;
        let (chunk, originals): (Lines, Option<Vec<Vec<u8>>>) = if self.text_fields.is_empty() {
            (chunk, None)
        } else {
            let rewritten = chunk.iter().map(|(n, l)| (*n, self.rewrite(l))).collect();
            (rewritten, Some(chunk.into_iter().map(|(_, l)| l).collect()))
        };
        let mut good = Vec::new();
        let mut bad = Vec::new();
        self.decode_part(file, &chunk, originals.as_deref(), &mut good, &mut bad)?;
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

    fn decode_part(
        &self,
        file: &str,
        lines: &[(u64, Vec<u8>)],
        originals: Option<&[Vec<u8>]>,
        good: &mut Vec<arrow_array::RecordBatch>,
        bad: &mut Vec<BadRow>,
    ) -> Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut joined = Vec::with_capacity(lines.iter().map(|(_, l)| l.len() + 1).sum());
        for (_, l) in lines {
            joined.extend_from_slice(l);
            joined.push(b'\n');
        }
        let reason = match decode_all(&mut self.decoder()?, &joined) {
            Ok(b) if b.num_rows() == lines.len() => {
                good.push(b);
                return Ok(());
            }
            _ if lines.len() > 1 => {
                let mid = lines.len() / 2;
                let (oa, ob) = match originals {
                    Some(o) => (Some(&o[..mid]), Some(&o[mid..])),
                    None => (None, None),
                };
                self.decode_part(file, &lines[..mid], oa, good, bad)?;
                return self.decode_part(file, &lines[mid..], ob, good, bad);
            }
            Ok(_) => "not a JSON object".to_string(),
            Err(e) => e,
        };
        let original = originals.map_or(&lines[0].1, |o| &o[0]);
        bad.push(BadRow {
            file: file.to_string(),
            line: lines[0].0,
            reason: format!("unreadable JSON row: {reason}"),
            text: excerpt(original),
        });
        Ok(())
    }
}

/// Rows nested deeper than this are rejected before decoding: arrow-json describes a value
/// of the wrong type recursively, and serde_json stops at the same depth.
pub const MAX_DEPTH: usize = 128;

/// True when the JSON text nests arrays and objects more than [`MAX_DEPTH`] levels deep
/// (brackets inside strings do not count). Lines with few brackets are passed at a glance.
fn too_deep(line: &[u8]) -> bool {
    if memchr::memchr2_iter(b'[', b'{', line)
        .nth(MAX_DEPTH)
        .is_none()
    {
        return false;
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in line {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Infers a schema; fields whose values disagree in type across rows become text fields.
fn infer_schema(values: Vec<serde_json::Value>) -> Result<(SchemaRef, Vec<String>)> {
    let (schema, text) = infer_fields(values)?;
    // A field null in every sampled row (or an empty list, or an object with such a field)
    // has the Null type somewhere and would refuse every later value: read it as its JSON
    // text instead.
    let mut text = text;
    let fields: Vec<arrow_schema::Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if has_null(f.data_type()) {
                text.push(f.name().clone());
                arrow_schema::Field::new(f.name(), arrow_schema::DataType::Utf8, true)
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Ok((Arc::new(arrow_schema::Schema::new(fields)), text))
}

/// True when the type is Null or holds a Null inside (lists, structs, maps).
fn has_null(t: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType as T;
    match t {
        T::Null => true,
        T::List(f) | T::LargeList(f) | T::FixedSizeList(f, _) | T::Map(f, _) => {
            has_null(f.data_type())
        }
        T::Struct(fs) => fs.iter().any(|f| has_null(f.data_type())),
        _ => false,
    }
}

fn infer_fields(values: Vec<serde_json::Value>) -> Result<(SchemaRef, Vec<String>)> {
    if let Ok(s) = infer_json_schema_from_iterator(values.iter().cloned().map(Ok)) {
        return Ok((Arc::new(s), Vec::new()));
    }
    let mut names: Vec<String> = Vec::new();
    for v in &values {
        if let serde_json::Value::Object(m) = v {
            for k in m.keys() {
                if !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
    }
    let mut fields = Vec::new();
    let mut text = Vec::new();
    for name in names {
        let column = values.iter().filter_map(|v| v.get(&name)).map(|x| {
            let mut m = serde_json::Map::new();
            m.insert(name.clone(), x.clone());
            Ok(serde_json::Value::Object(m))
        });
        match infer_json_schema_from_iterator(column) {
            Ok(s) => fields.push(s.field(0).clone()),
            Err(_) => {
                fields.push(arrow_schema::Field::new(
                    &name,
                    arrow_schema::DataType::Utf8,
                    true,
                ));
                text.push(name);
            }
        }
    }
    Ok((Arc::new(arrow_schema::Schema::new(fields)), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings() {
        let deep = |n: usize| format!("{{\"a\": {}{}}}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(deep(MAX_DEPTH - 1).as_bytes()));
        assert!(too_deep(deep(MAX_DEPTH + 1).as_bytes()));
        let quoted = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(!too_deep(quoted.as_bytes()));
    }
}
