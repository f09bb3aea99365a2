//! Where a file reader is, so that a new process can go on from there (checkpoints): the file
//! being read, and in it the line count and the byte offset (JSON Lines, CSV) or the batches
//! and rows read (Parquet, Arrow IPC); with, for every file up to that one, its size and
//! modification time, so that a file that changed under the position is refused rather than
//! read from the wrong place.
//!
//! A position is CBOR (see [`crate::codec`]): a versioned header (kind, paths) and the place.
//! Seeking is a true offset: a plain file is seeked to the byte, a `.gz` one decompressed and
//! skipped up to it without parsing rows, a Parquet file's row groups before it are skipped
//! from its metadata, an Arrow IPC file's batches by their index.

use crate::codec;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read};
use std::path::Path;

/// The version of the position format.
pub const POSITION_FORMAT: u32 = 1;

const MAGIC: &str = "rillet-file-position";

/// What identifies a file's content as it was read: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Bytes (compressed bytes for `.gz`).
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
}

impl Stamp {
    /// The file's stamp now.
    pub fn of(path: &Path) -> Result<Stamp> {
        let meta = std::fs::metadata(path).map_err(|e| {
            Error::Source(format!(
                "cannot read the size of {}: {e}; check the path and permissions",
                path.display()
            ))
        })?;
        let mtime_ns = match meta.modified() {
            Ok(t) => match t.duration_since(std::time::UNIX_EPOCH) {
                Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
            },
            Err(_) => 0,
        };
        Ok(Stamp {
            size: meta.len(),
            mtime_ns,
        })
    }

    /// The stamp, or None when the file cannot be looked at (it was skipped as unreadable).
    pub fn maybe(path: &Path) -> Option<Stamp> {
        Stamp::of(path).ok()
    }
}

/// Where a reader is inside the file it is reading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inside {
    /// The file's stamp when the position was taken.
    pub stamp: Option<Stamp>,
    /// JSON Lines: lines read; CSV: csv-core's line counter.
    pub line: u64,
    /// JSON Lines and CSV: bytes read (decompressed bytes for `.gz`).
    pub offset: u64,
    /// JSON Lines and CSV: a hash of the (up to) [`TAIL`] bytes before `offset`, to tell a
    /// file replaced by another from one that grew (None: not known).
    pub tail: Option<u64>,
    /// CSV: what is added to csv-core's line numbers (CRLF files).
    pub line_fix: u64,
    /// Arrow IPC: batches taken from the file.
    pub batches: u64,
    /// Parquet and Arrow IPC: rows handed on from the file.
    pub rows: u64,
    /// Arrow IPC: rows of the last batch taken already handed on, when part of it is left.
    pub rest: Option<u64>,
}

/// A reader's position (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    magic: String,
    format: u32,
    /// "jsonl", "csv", "parquet" or "ipc".
    pub kind: String,
    /// The reader's files, in order.
    pub paths: Vec<String>,
    /// The file being read (`paths.len()`: all were read).
    pub file: u64,
    /// Each file before it, as it was when read to its end (None: it could not be read and
    /// was skipped).
    pub before: Vec<Option<Stamp>>,
    /// The place inside the file being read, when it was opened.
    pub inside: Option<Inside>,
}

impl Position {
    /// A position of a reader of `kind` over `paths`.
    pub fn new(
        kind: &str,
        paths: &[std::path::PathBuf],
        file: usize,
        before: Vec<Option<Stamp>>,
        inside: Option<Inside>,
    ) -> Position {
        Position {
            magic: MAGIC.into(),
            format: POSITION_FORMAT,
            kind: kind.into(),
            paths: paths.iter().map(|p| p.display().to_string()).collect(),
            file: file as u64,
            before,
            inside,
        }
    }

    /// The position as bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// Reads a position taken by a reader of `kind` over `paths`, checking that it is one
    /// and that the files before it did not change.
    pub fn decode(bytes: &[u8], kind: &str, paths: &[std::path::PathBuf]) -> Result<Position> {
        let p: Position = ciborium::from_reader(bytes).map_err(|e| {
            Error::Config(format!(
                "cannot read this reader position: {e}; the bytes are damaged or were not \
                 written by FileReader.position()"
            ))
        })?;
        if p.magic != MAGIC {
            return Err(Error::Config(format!(
                "these bytes are not a file reader position (they start with {:?})",
                p.magic
            )));
        }
        if p.format != POSITION_FORMAT {
            return Err(Error::Config(format!(
                "the reader position has format version {}, this rillet reads version \
                 {POSITION_FORMAT}; resume with the version of rillet that wrote it",
                p.format
            )));
        }
        if p.kind != kind {
            return Err(Error::Config(format!(
                "the position is of a {} reader, not a {kind} reader; seek a reader of the same \
                 kind over the same files",
                p.kind
            )));
        }
        let mine: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        if p.paths != mine {
            let first = p
                .paths
                .iter()
                .zip(&mine)
                .position(|(a, b)| a != b)
                .unwrap_or(p.paths.len().min(mine.len()));
            let then = p
                .paths
                .get(first)
                .map_or("no file".into(), |s| format!("{s:?}"));
            let now = mine
                .get(first)
                .map_or("no file".into(), |s| format!("{s:?}"));
            return Err(Error::Config(format!(
                "the position is of a reader over other files ({} then, {} now; file {} was {then}, \
                 is {now}); seek a reader over the same files in the same order",
                p.paths.len(),
                mine.len(),
                first + 1
            )));
        }
        if p.file > mine.len() as u64 || p.before.len() as u64 != p.file {
            return Err(Error::Config(
                "the reader position is damaged: its file index does not fit its file list".into(),
            ));
        }
        if p.file == mine.len() as u64 && p.inside.is_some() {
            return Err(Error::Config(
                "the reader position is damaged: it is inside a file after the last".into(),
            ));
        }
        for (path, then) in paths.iter().zip(&p.before) {
            let Some(then) = then else { continue };
            let now = Stamp::of(path).map_err(|e| {
                Error::Source(format!(
                    "{} was read to its end before this position, but now: {e}",
                    path.display()
                ))
            })?;
            if now.size != then.size {
                return Err(Error::Source(format!(
                    "{} changed size since the position was taken: it had {} bytes when it was \
                     read to its end, it has {} now; a file read before the position must stay \
                     as it was (its rows were processed already)",
                    path.display(),
                    then.size,
                    now.size
                )));
            }
            if now.mtime_ns != then.mtime_ns {
                return Err(Error::Source(format!(
                    "{} was modified since the position was taken (its modification time was \
                     {} ns, is {} ns; same size); a file read before the position must stay as \
                     it was (its rows were processed already)",
                    path.display(),
                    then.mtime_ns,
                    now.mtime_ns
                )));
            }
        }
        Ok(p)
    }
}

/// Bytes before an offset whose hash a position keeps.
pub const TAIL: usize = 64;

/// A hash (FNV-1a, 64 bits) of the bytes before an offset.
pub fn tail_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A buffered reader that counts the bytes consumed from it and keeps the last ones (to hash
/// the bytes before an offset).
pub struct Counted<R> {
    inner: R,
    consumed: u64,
    /// The last bytes consumed (up to `2 * TAIL`; at least the last `TAIL` of them).
    last: Vec<u8>,
}

impl<R: BufRead> Counted<R> {
    /// Counts from `start` (the offset `inner` is at).
    pub fn new(inner: R, start: u64) -> Self {
        Counted {
            inner,
            consumed: start,
            last: Vec::with_capacity(2 * TAIL),
        }
    }

    /// The offset: bytes consumed (with the start).
    pub fn offset(&self) -> u64 {
        self.consumed
    }

    /// The hash of the bytes before offset `at` (at most `2 * TAIL` before the current
    /// offset), or None when they are no longer known.
    pub fn hash_at(&self, at: u64) -> Option<u64> {
        let back = usize::try_from(self.consumed.checked_sub(at)?).ok()?;
        let want = usize::try_from(at).map_or(TAIL, |a| a.min(TAIL));
        let end = self.last.len().checked_sub(back)?;
        let start = end.checked_sub(want)?;
        Some(tail_hash(&self.last[start..end]))
    }

    /// Reads and drops bytes up to offset `to`; false when the input ends first.
    pub fn skip_to(&mut self, to: u64) -> std::io::Result<bool> {
        while self.consumed < to {
            let available = self.fill_buf()?.len();
            if available == 0 {
                return Ok(false);
            }
            let n = available.min(usize::try_from(to - self.consumed).unwrap_or(usize::MAX));
            self.consume(n);
        }
        Ok(true)
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        if amt == 0 {
            return;
        }
        // The bytes consumed are at the front of the buffer (no I/O: they were filled).
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = &buf[..amt.min(buf.len())];
            let n = taken.len();
            if n >= TAIL {
                self.last.clear();
                self.last.extend_from_slice(&taken[n - TAIL..]);
            } else {
                if self.last.len() + n > 2 * TAIL {
                    // Down to TAIL bytes with the new ones.
                    self.last.drain(..self.last.len() + n - TAIL);
                }
                self.last.extend_from_slice(taken);
            }
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// A line file (plain or `.gz`) opened at `offset`, for a reader that resumes there: a plain
/// file is seeked, a `.gz` one decompressed up to it; the bytes before the offset must hash
/// to `tail` when given. Errors name the file and what changed.
pub fn open_at(
    path: &Path,
    offset: u64,
    tail: Option<u64>,
) -> Result<Counted<Box<dyn BufRead + Send>>> {
    use std::io::{BufReader, Seek, SeekFrom};
    let gz = path.extension().is_some_and(|e| e == "gz");
    let cannot = |e: std::io::Error| {
        Error::Source(format!(
            "cannot resume reading {} at byte {offset}: {e}",
            path.display()
        ))
    };
    let mut reader = if gz {
        Counted::new(super::open(path)?, 0)
    } else {
        let size = Stamp::of(path)?.size;
        if size < offset {
            return Err(Error::Source(format!(
                "{} is shorter than the position: it has {size} bytes, the position is at byte \
                 {offset}; it was truncated or replaced since (a file being read may only grow)",
                path.display()
            )));
        }
        let mut file = std::fs::File::open(path).map_err(|e| {
            Error::Source(format!(
                "cannot open {}: {e}; check the path and permissions",
                path.display()
            ))
        })?;
        let start = offset.saturating_sub(TAIL as u64);
        file.seek(SeekFrom::Start(start)).map_err(cannot)?;
        let inner: Box<dyn BufRead + Send> = Box::new(BufReader::with_capacity(1 << 20, file));
        Counted::new(inner, start)
    };
    if !reader.skip_to(offset).map_err(cannot)? {
        return Err(Error::Source(format!(
            "{} is shorter than the position: it ends at byte {} (decompressed), the position \
             is at byte {offset}; it was truncated or replaced since (a file being read may only \
             grow)",
            path.display(),
            reader.offset()
        )));
    }
    if let (Some(want), Some(got)) = (tail, reader.hash_at(offset)) {
        if want != got {
            return Err(Error::Source(format!(
                "{} is not the file the position was taken in: the bytes before byte {offset} \
                 differ; it was replaced or rewritten since (a file being read may only grow)",
                path.display()
            )));
        }
    }
    Ok(reader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_reader_counts_and_hashes_the_bytes_before_an_offset() {
        let text: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let mut r = Counted::new(std::io::Cursor::new(text.clone()), 0);
        let mut line = Vec::new();
        // Consumed in pieces of several sizes.
        for n in [1usize, 5, 200, 3, 64, 65, 100] {
            line.resize(n, 0);
            r.read_exact(&mut line).unwrap();
            let at = r.offset() as usize;
            let from = at.saturating_sub(TAIL);
            assert_eq!(r.hash_at(at as u64), Some(tail_hash(&text[from..at])));
        }
        let at = r.offset();
        assert!(r.skip_to(at + 10).unwrap());
        assert!(!r.skip_to(5000).unwrap());
        assert_eq!(r.offset(), 1000);
    }

    use crate::source::{
        Columnar, ColumnarSource, CsvSource, JsonlSource, OnError, ReadOptions, SourceBatch,
    };
    use std::path::PathBuf;

    /// A source's cursor API, for one test over all of them.
    trait Resumable {
        type C;
        fn start(&self) -> Self::C;
        fn next(&self, c: &mut Self::C) -> Result<Option<SourceBatch>>;
        fn pos(&self, c: &Self::C) -> Result<Vec<u8>>;
        fn at(&self, p: &[u8]) -> Result<Self::C>;
    }

    macro_rules! resumable {
        ($($t:ty => $c:ty),*) => {$(
            impl Resumable for $t {
                type C = $c;
                fn start(&self) -> $c { self.cursor() }
                fn next(&self, c: &mut $c) -> Result<Option<SourceBatch>> { self.next_batch(c) }
                fn pos(&self, c: &$c) -> Result<Vec<u8>> { self.position(c) }
                fn at(&self, p: &[u8]) -> Result<$c> { self.seek(p) }
            }
        )*};
    }
    resumable!(
        JsonlSource => crate::source::Cursor,
        CsvSource => crate::source::CsvCursor,
        ColumnarSource => crate::source::ColumnarCursor
    );

    type Chunk = (arrow_array::RecordBatch, Vec<crate::source::BadRow>, String);

    /// Every chunk, with the position after each (the first: the start's), and the
    /// position once the end was seen.
    fn read_all<S: Resumable>(s: &S) -> (Vec<Chunk>, Vec<Vec<u8>>, Vec<u8>) {
        let mut c = s.start();
        let mut chunks = Vec::new();
        let mut positions = vec![s.pos(&c).unwrap()];
        while let Some(b) = s.next(&mut c).unwrap() {
            chunks.push((b.batch, b.bad, b.file));
            positions.push(s.pos(&c).unwrap());
        }
        let end = s.pos(&c).unwrap();
        (chunks, positions, end)
    }

    /// A fresh source seeked to each position reads exactly the chunks after it.
    fn every_position_resumes<S: Resumable>(make: impl Fn() -> S) -> usize {
        let (chunks, positions, end) = read_all(&make());
        for (k, p) in positions.iter().chain([&end]).enumerate() {
            let k = k.min(chunks.len());
            let s = make();
            let mut c = s.at(p).unwrap();
            let mut rest = Vec::new();
            while let Some(b) = s.next(&mut c).unwrap() {
                rest.push((b.batch, b.bad, b.file));
            }
            assert_eq!(rest, chunks[k..], "after chunk {k}");
            // And its position at the end is the original's.
            assert_eq!(s.pos(&c).unwrap(), end, "end after {k}");
        }
        chunks.len()
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rillet-position-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn gz(path: &Path, text: &[u8]) {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(path).unwrap(),
            flate2::Compression::default(),
        );
        e.write_all(text).unwrap();
        e.finish().unwrap();
    }

    fn opts(batch_rows: usize) -> ReadOptions {
        ReadOptions {
            batch_rows,
            on_error: OnError::Skip,
            max_line_bytes: 40,
            ..ReadOptions::default()
        }
    }

    #[test]
    fn a_jsonl_reader_resumes_at_every_chunk_with_its_bad_rows_and_line_numbers() {
        let d = dir("jsonl");
        let mut text = String::new();
        for i in 0..23 {
            match i % 7 {
                3 => text.push_str("{not json\n"),
                5 => text.push_str(&format!("{{\"a\": {i}, \"s\": \"{}\"}}\n", "x".repeat(50))),
                6 => text.push('\n'),
                _ => text.push_str(&format!("{{\"a\": {i}, \"s\": \"r{i}\"}}\n")),
            }
        }
        let a = d.join("a.jsonl");
        std::fs::write(&a, &text).unwrap();
        let b = d.join("b.jsonl.gz");
        gz(&b, text.replace("\n", "\r\n").as_bytes());
        let missing = d.join("missing.jsonl");
        let c = d.join("c.jsonl");
        std::fs::write(&c, "{\"a\": 100, \"s\": \"last\"}").unwrap();
        let files = vec![a, b, missing, c];
        for size in [1, 2, 7, 1000] {
            let n = every_position_resumes(|| {
                JsonlSource::new(files.clone(), None, &opts(size)).unwrap()
            });
            assert!(n >= 3, "{n} chunks");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_csv_reader_resumes_at_every_chunk_with_quoted_newlines_and_bad_rows() {
        let d = dir("csv");
        let mut text = String::from("a,s\n");
        for i in 0..23 {
            match i % 6 {
                2 => text.push_str(&format!("{i},\"two\nlines\"\n")),
                3 => text.push_str("oops,1,2\n"),
                4 => text.push_str(&format!("{i},{}\n", "y".repeat(50))),
                5 => text.push_str("notanumber,z\n"),
                _ => text.push_str(&format!("{i},r{i}\n")),
            }
        }
        let a = d.join("a.csv");
        std::fs::write(&a, &text).unwrap();
        let b = d.join("b.csv.gz");
        gz(
            &b,
            format!("\u{feff}{}", text.replace('\n', "\r\n")).as_bytes(),
        );
        let c = d.join("c.csv");
        std::fs::write(&c, "a,s\n1,x").unwrap();
        let files = vec![a, b, c];
        for size in [1, 2, 7, 1000] {
            every_position_resumes(|| CsvSource::new(files.clone(), None, &opts(size)).unwrap());
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn parquet_and_ipc_readers_resume_at_every_chunk() {
        use arrow_array::{ArrayRef, Int64Array, RecordBatch};
        use std::sync::Arc;
        let d = dir("columnar");
        let batch = |from: i64, n: i64| {
            RecordBatch::try_from_iter(vec![(
                "id",
                Arc::new(Int64Array::from_iter_values(from..from + n)) as ArrayRef,
            )])
            .unwrap()
        };
        let pq = |name: &str, from: i64| {
            let path = d.join(name);
            let props = parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(10))
                .build();
            let b = batch(from, 35);
            let mut w = parquet::arrow::ArrowWriter::try_new(
                std::fs::File::create(&path).unwrap(),
                b.schema(),
                Some(props),
            )
            .unwrap();
            w.write(&b).unwrap();
            w.close().unwrap();
            path
        };
        let pfiles = vec![pq("a.parquet", 0), pq("b.parquet", 100)];
        let ipc_file = d.join("a.arrow");
        let mut w = arrow_ipc::writer::FileWriter::try_new(
            std::fs::File::create(&ipc_file).unwrap(),
            &batch(0, 1).schema(),
        )
        .unwrap();
        for (from, n) in [(0, 9), (9, 0), (9, 20), (29, 3)] {
            w.write(&batch(from, n)).unwrap();
        }
        w.finish().unwrap();
        let ipc_stream = d.join("b.arrows");
        let mut w = arrow_ipc::writer::StreamWriter::try_new(
            std::fs::File::create(&ipc_stream).unwrap(),
            &batch(0, 1).schema(),
        )
        .unwrap();
        for (from, n) in [(100, 15), (115, 4)] {
            w.write(&batch(from, n)).unwrap();
        }
        w.finish().unwrap();
        let ifiles = vec![ipc_file, ipc_stream];
        for size in [1, 3, 7, 1000] {
            every_position_resumes(|| {
                ColumnarSource::new(Columnar::Parquet, pfiles.clone(), None, &opts(size)).unwrap()
            });
            every_position_resumes(|| {
                ColumnarSource::new(Columnar::Ipc, ifiles.clone(), None, &opts(size)).unwrap()
            });
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_position_is_refused_when_a_file_changed_or_it_is_of_another_reader() {
        let d = dir("refused");
        let a = d.join("a.jsonl");
        let b = d.join("b.jsonl");
        let rows = |from: i32| {
            (from..from + 10)
                .map(|i| format!("{{\"a\": {i}}}\n"))
                .collect::<String>()
        };
        std::fs::write(&a, rows(0)).unwrap();
        std::fs::write(&b, rows(10)).unwrap();
        let files = vec![a.clone(), b.clone()];
        let make = || JsonlSource::new(files.clone(), None, &opts(4)).unwrap();
        let s = make();
        let mut c = s.cursor();
        for _ in 0..4 {
            s.next_batch(&mut c).unwrap(); // 4 + 4 + 2 rows of a, then 4 of b
        }
        let p = s.position(&c).unwrap();
        // b grew: fine, and the new row is read.
        std::fs::write(&b, rows(10) + "{\"a\": 99}\n").unwrap();
        let s2 = make();
        let mut c2 = s2.seek(&p).unwrap();
        let mut n = 0;
        while let Some(x) = s2.next_batch(&mut c2).unwrap() {
            n += x.batch.num_rows();
        }
        assert_eq!(n, 7);
        // b shrank below the offset.
        std::fs::write(&b, "{\"a\": 1}\n").unwrap();
        let e = make().seek(&p).err().unwrap();
        assert!(
            matches!(&e, Error::Source(m) if m.contains("b.jsonl") && m.contains("shorter")),
            "{e}"
        );
        // b replaced by another file as long.
        std::fs::write(&b, rows(20)).unwrap();
        let e = make().seek(&p).err().unwrap();
        assert!(
            matches!(&e, Error::Source(m) if m.contains("b.jsonl") && m.contains("replaced")),
            "{e}"
        );
        std::fs::write(&b, rows(10)).unwrap();
        assert!(make().seek(&p).is_ok());
        // a, read before the position, changed size.
        std::fs::write(&a, rows(0) + "{\"a\": 5}\n").unwrap();
        let e = make().seek(&p).err().unwrap();
        assert!(
            matches!(&e, Error::Source(m) if m.contains("a.jsonl") && m.contains("changed size")),
            "{e}"
        );
        std::fs::write(&a, rows(0)).unwrap();
        // Another file list, another kind, damaged bytes.
        let other = JsonlSource::new(vec![b.clone(), a.clone()], None, &opts(4)).unwrap();
        let e = other.seek(&p).err().unwrap();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("other files")),
            "{e}"
        );
        let csv = d.join("x.csv");
        std::fs::write(&csv, "a\n1\n").unwrap();
        let e = CsvSource::new(vec![a.clone(), b.clone()], None, &opts(4))
            .map(|s| s.seek(&p))
            .unwrap_or_else(Err)
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::Config(_) | Error::Schema(_) | Error::Source(_)),
            "{e}"
        );
        let e = CsvSource::new(vec![csv], None, &opts(4))
            .unwrap()
            .seek(&p)
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("jsonl reader")),
            "{e}"
        );
        let e = make().seek(&p[..p.len() / 2]).err().unwrap();
        assert!(
            matches!(&e, Error::Config(m) if m.contains("damaged")),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
