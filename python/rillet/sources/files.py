"""File sources: replay files in order, streaming, with unreadable rows kept as rejected rows
(file, line, reason) rather than dropped."""
from __future__ import annotations

import glob as _glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SchemaError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.rows import schema_from_text, schema_text
from rillet.sources.source import ChunkSource

PathLike = str | os.PathLike | Sequence[str | os.PathLike]


#: The longest line (CSV: record) the line-based sources read unless told otherwise: 64 MiB.
MAX_LINE_BYTES = 64 * 1024 * 1024

ON_ERROR = ("raise", "skip")


def check_max_line_bytes(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**62:
        raise ConfigError(
            f"{what}(max_line_bytes=...) takes a positive number of bytes (default "
            f"{MAX_LINE_BYTES:,}, 64 MiB), got {value!r}"
        )
    return value


def check_on_error(value: Any, what: str) -> str:
    if value not in ON_ERROR:
        raise ConfigError(
            f"{what}(on_error={value!r}): expected 'raise' (stop at a file that cannot be read, "
            "with the run so far in the error's .run) or 'skip' (record the file in "
            "run.rejected and go on with the next one)"
        )
    return value


def check_null_values(value: Any, what: str) -> list[str] | None:
    """``null_values=`` as polars takes it (a string or a list of strings) as a list."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(
        f"{what}(null_values=...) takes a string or a list of strings read as null in every "
        f"column (besides the empty field), such as null_values=['NA', 'nil']; got {value!r}"
    )


def _infer_rows(value: Any, what: str) -> int:
    if value is None:
        return 2**63 - 1  # the whole first file
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**62:
        raise ConfigError(
            f"{what}(infer_schema_length=...) takes a positive number of rows, or None to read "
            f"the whole first file; got {value!r}"
        )
    return value


def expand(path: PathLike, what: str) -> list[str]:
    """A path, a glob or a list of them, as a sorted (name order) list of files."""
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not items:
        raise ConfigError(f"{what}: no paths given")
    files: list[str] = []
    for item in items:
        p = os.fspath(item)
        if any(c in p for c in "*?["):
            matched = sorted(_glob.glob(p, recursive=True))
            if not matched:
                raise SourceError(f"{what}: the glob {p!r} matches no file")
            files.extend(matched)
        elif Path(p).is_dir():
            raise SourceError(f"{what}: {p!r} is a directory; give a glob such as '{p}/*.jsonl'")
        elif not Path(p).exists():
            raise SourceError(f"{what}: {p!r} does not exist")
        else:
            files.append(p)
    if isinstance(path, (str, os.PathLike)):
        files = sorted(files)
    return files


class FileSource(ChunkSource):
    """Files read in order by the Rust core in bounded memory: JSON Lines and CSV (plain or
    .gz), Parquet and Arrow IPC.

    Use as a source: ``rl.stream(rl.read_jsonl("logs/*.jsonl.gz"), time="ts")``.
    """

    def __init__(self, kind: str, path: PathLike, order_by: str | None = None,
                 schema: Any = None, batch_rows: int = 65_536, separator: str = ",",
                 max_line_bytes: int = MAX_LINE_BYTES, on_error: str = "raise",
                 null_values: str | Sequence[str] | None = None,
                 infer_schema_length: int | None = 1000, columns: Sequence[str] | None = None) -> None:
        self.kind = kind
        self.columns = _columns(columns, f"read_{kind}")
        self.max_line_bytes = check_max_line_bytes(max_line_bytes, f"read_{kind}")
        self.on_error = check_on_error(on_error, f"read_{kind}")
        self.null_values = check_null_values(null_values, f"read_{kind}")
        self.infer_rows = _infer_rows(infer_schema_length, f"read_{kind}")
        self.files = expand(path, f"read_{kind}")
        if order_by is not None and not isinstance(order_by, str):
            raise ConfigError(f"read_{kind}(order_by=...) takes a column name, got {order_by!r}")
        self.order_by = order_by
        if order_by is not None and self.columns is not None and order_by not in self.columns:
            raise ConfigError(f"read_{kind}(order_by={order_by!r}) merges files by a column that "
                              f"columns={self.columns!r} leaves out: add it to columns=")
        self.schema = _schema_frame(schema, kind)
        if (isinstance(batch_rows, bool) or not isinstance(batch_rows, int)
                or not 1 <= batch_rows <= 2**31 - 1):
            raise ConfigError(
                f"batch_rows must be an integer from 1 to 2,147,483,647 (2**31 - 1), got {batch_rows!r}"
            )
        self.batch_rows = batch_rows
        self.separator = separator

    def _reader(self, files: list[str], schema: pl.DataFrame | None) -> Any:
        return _core.FileReader(self.kind, files, self.batch_rows, self.infer_rows, self.separator,
                                schema, self.max_line_bytes, self.on_error, self.null_values, self.columns)

    def chunks(self) -> Iterator[Chunk]:
        if self.order_by is not None and len(self.files) > 1:
            yield from self._merged(self.order_by)
            return
        yield from _read(self._reader(self.files, self.schema))

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        """The chunks, each with where the reader is after it: the files it reads and those
        read before it, the file and the offset in it (the Rust reader's position) and the
        columns. From ``start``, reading goes on from that offset; files the path matches now
        that the checkpoint's reader did not read (files that came since) are read after
        them, with the same columns. Files merged by ``order_by=`` are merged again from the
        checkpoint's files, the chunks before the position passed over. Refused, naming the
        file: a file read before the position that changed or is gone, and a file the
        checkpoint's reader had still to read that the path no longer names. Without
        ``durable`` (a run without checkpoints) the positions are None: not worked out."""
        from rillet._codec import decode_position, encode_position

        merged = self.order_by is not None and len(self.files) > 1
        done: list[str] = [] if start is None else list(start["done"])
        files = list(self.files) if start is None else list(start["files"])
        if start is not None:
            self._check_still_named(files, start)
        schema = self.schema
        if schema is None and start is not None and start["schema"] is not None:
            schema = pl.DataFrame(schema=schema_from_text(start["schema"]))
        at = None if start is None else decode_position(start["reader"])
        columns = None if start is None else start["schema"]
        # CSV read with columns=: a CSV schema= names every header column, so files that came
        # since are read with the header's columns and types, not only those read.
        by_header = self.kind == "csv" and self.columns is not None
        header = None
        if by_header and start is not None and start.get("header") is not None:
            header = pl.DataFrame(schema=schema_from_text(start["header"]))
        while files:
            # The checkpoint's own files infer their columns again, as they did; files that
            # came since are read with those columns.
            given = schema if done else self.schema
            if by_header:
                given = header if done else self.schema
            if merged:
                items = self._counted_merge(files, given, at)
            else:
                reader = _resumed(lambda f=files, g=given: self._reader(f, g), at, self.kind)
                if by_header and header is None:
                    header = pl.DataFrame(reader.header_schema())
                items = ((chunk, lambda r=reader: encode_position(r.position())) for chunk in _read(reader))
            at = None
            for chunk, where in items:
                if chunk.frame.width and schema is None:
                    schema = chunk.frame.clear()
                if not durable:
                    yield chunk, None
                    continue
                if chunk.frame.width:
                    columns = schema_text(dict(chunk.frame.schema))
                where_now = {"files": files, "done": done, "reader": where(), "schema": columns}
                if header is not None:
                    where_now["header"] = schema_text(dict(header.schema))
                yield chunk, where_now
            done = [*done, *files]
            # Files that match the path now and were not read: those that came since (the
            # same file spelled another way is the same file).
            seen = {os.path.realpath(f) for f in done}
            files = [f for f in self.files if os.path.realpath(f) not in seen]

    def _counted_merge(self, files: list[str], schema: pl.DataFrame | None, at: Any) -> Iterator[tuple[Chunk, Any]]:
        """A merge by ``order_by`` of ``files``, each chunk with how many it is; the first
        ``at`` chunks passed over (a merge is resumed by reading it again)."""
        merge = FileSource.__new__(FileSource)
        merge.__dict__.update(self.__dict__)
        merge.files, merge.schema = files, schema
        skip = int(at or 0)
        assert self.order_by is not None
        for n, chunk in enumerate(merge._merged(self.order_by), start=1):
            if n > skip:
                yield chunk, lambda n=n: n

    def _check_still_named(self, files: list[str], start: Any) -> None:
        """A resumed reader's files the checkpoint had still to read must be named by the path."""
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise SourceError(
                f"read_{self.kind}: {missing[0]!r} is gone, and the checkpoint this run resumes was "
                "taken while reading it (and the files with it): put it back as it was, or give a new "
                "checkpoint path to start over")
        named = {os.path.realpath(f) for f in self.files}
        gone = [f for f in files if os.path.realpath(f) not in named]
        if gone:
            raise ConfigError(
                f"read_{self.kind}: the checkpoint was taken while reading {gone[0]!r}"
                + (f" (and {len(gone) - 1} more)" if len(gone) > 1 else "")
                + ", which the path given now does not name; give the path the checkpointed run was given, "
                "or a new checkpoint path to start over")

    def _merged(self, col: str) -> Iterator[Chunk]:
        """The files' rows merged by column ``col``: each step hands on, sorted, every
        buffered row up to the smallest latest value among the files still being read, so
        files that are each sorted by ``col`` make one stream sorted by it, ties in file
        order, as a stable sort of the files' rows would (a null is handed on when read).
        Memory: one batch per file."""
        # One reader per file, all with the schema the whole list would be read with.
        readers = self._reader(self.files, self.schema).split()
        heads = [_read(r) for r in readers]
        buffers: dict[int, pl.DataFrame] = {}
        live = list(range(len(heads)))
        while True:
            for i in list(live):
                while i not in buffers:
                    nxt = next(heads[i], None)
                    if nxt is None:
                        live.remove(i)
                        break
                    if nxt.bad.height:
                        yield Chunk(nxt.frame.head(0), nxt.bad)
                    if nxt.frame.height:
                        if col not in nxt.frame.columns:
                            raise SchemaError(
                                f"read_{self.kind}(order_by={col!r}): no such column; the files "
                                f"have {nxt.frame.columns}"
                            )
                        buffers[i] = nxt.frame
            if not buffers:
                return
            # Rows up to the smallest latest value of the files that may still send smaller
            # ones; a file whose buffer is all null sends its rows at once.
            latest: list[Any] = [b[col].max() for b in buffers.values() if b[col].null_count() < b.height]
            frontier = min(latest) if latest else None
            out = []
            blocked = False  # an earlier file may still send rows equal to the frontier
            for i, b in sorted(buffers.items()):
                c = b[col]
                if frontier is None:
                    take = c.is_null()
                else:
                    take = c.is_null() | (c < frontier) | ((c == frontier) & (not blocked))
                    blocked = blocked or c.max() == frontier
                out.append(b.filter(take))
                rest = b.filter(~take)
                if rest.height:
                    buffers[i] = rest
                else:
                    del buffers[i]
            yield Chunk(pl.concat(out).sort(col, nulls_last=False, maintain_order=True), _NO_BAD)

    def __repr__(self) -> str:
        return f"rl.read_{self.kind}({self.files[0]!r}{'...' if len(self.files) > 1 else ''})"


_NO_BAD = pl.DataFrame(schema={"file": pl.String, "line": pl.UInt64, "reason": pl.String, "text": pl.String})


def _resumed(make: Any, position: Any, kind: str) -> Any:
    """A new reader, moved to a checkpoint's position if there is one; an error in doing so
    says it comes from resuming."""
    if position is None:
        return make()
    try:
        reader = make()
        reader.seek(position)
        return reader
    except SourceError as e:
        raise SourceError(
            f"read_{kind} cannot resume from the checkpoint: {e}. Put the files back as they were "
            "when it was taken, or give a new checkpoint path to start over") from e


def _read(reader: Any) -> Iterator[Chunk]:
    while True:
        nxt = reader.next_chunk()
        if nxt is None:
            return
        rows, bad = nxt
        yield Chunk(pl.DataFrame(rows), pl.DataFrame(bad))


def _columns(columns: Any, what: str) -> list[str] | None:
    """``columns=``: the names of the columns to read, in order."""
    if columns is None:
        return None
    if isinstance(columns, str):
        columns = [columns]
    if (not isinstance(columns, Sequence) or not columns
            or not all(isinstance(c, str) and c for c in columns)):
        raise ConfigError(f"{what}(columns=...) takes a list of column names, such as "
                          f"['ts', 'user', 'bytes']; got {columns!r}")
    return list(columns)


def _schema_frame(schema: Any, kind: str) -> pl.DataFrame | None:
    """A user's ``schema=`` (a dict or polars Schema of column -> dtype) as an empty frame."""
    if schema is None:
        return None
    if not isinstance(schema, (dict, pl.Schema)) or not schema:
        raise ConfigError(
            f"read_{kind}(schema=...) takes a dict of column name -> polars dtype, such as "
            f"{{'ts': pl.Datetime('us', 'UTC'), 'ip': pl.String}}; got {schema!r}"
        )
    try:
        return pl.DataFrame(schema=schema)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
        raise ConfigError(f"read_{kind}(schema=...): {e}; give polars dtypes such as pl.Int64") from e


def read_parquet(path: PathLike, order_by: str | None = None, schema: dict | None = None,
                 batch_rows: int = 65_536, on_error: str = "raise",
                 columns: Sequence[str] | None = None) -> FileSource:
    """Replays Parquet files (a path, a glob or a list, name order) as a stream, row group by
    row group in Rust, in bounded memory. The schema is the first file's (or ``schema=``); a
    later file lacking a column gets nulls, a column it adds is ignored, and a column of
    another type is cast or refused with a :class:`SourceError` naming the file.
    ``order_by=`` merges the files by a column (see :func:`read_jsonl`). Every codec polars
    writes is read (snappy, zstd, lz4, gzip, brotli). ``on_error="skip"`` goes on past a file
    that cannot be read (see :func:`read_jsonl`). ``columns=`` reads only those columns (see
    :func:`read_jsonl`); the others' pages are not even read from disk."""
    return FileSource("parquet", path, order_by, schema, batch_rows, on_error=on_error, columns=columns)


def read_ipc(path: PathLike, order_by: str | None = None, schema: dict | None = None,
             batch_rows: int = 65_536, on_error: str = "raise",
             columns: Sequence[str] | None = None) -> FileSource:
    """Replays Arrow IPC files (the file format, also called Feather v2, or the stream
    format) batch by batch, as :func:`read_parquet` does Parquet."""
    return FileSource("ipc", path, order_by, schema, batch_rows, on_error=on_error, columns=columns)


def read_jsonl(path: PathLike, order_by: str | None = None, schema: dict | None = None,
               batch_rows: int = 65_536, on_error: str = "raise",
               max_line_bytes: int = MAX_LINE_BYTES,
               infer_schema_length: int | None = 1000, columns: Sequence[str] | None = None) -> FileSource:
    """Replays JSON Lines files (plain or ``.gz``; a path, a glob or a list, name order) as a
    stream. The schema is inferred from the first ``infer_schema_length`` rows (None: the
    whole first file), or given as ``schema=`` (a dict of column -> polars dtype; fields not in
    it are ignored); a later row with a missing field gets null, an unknown field is ignored,
    and a row that does not parse goes to ``run.rejected`` with its file, line and reason.

    A line longer than ``max_line_bytes`` (default 64 MiB) is rejected the same way without
    being read into memory. A file that cannot be read (a truncated ``.gz``) raises
    :class:`SourceError` naming the file, after the rows before it were processed; the
    error's ``.run`` holds the run up to it. ``on_error="skip"`` instead records the file in
    ``run.rejected`` (file, the line reading stopped at, reason) and goes on with the next
    one.

    ``order_by="ts"`` merges several files by that column instead of reading them one after
    another: with files each sorted by it (as log files are), the stream is sorted by it.

    ``columns=["ts", "user", "bytes"]`` reads only those columns, in that order, as polars'
    ``columns=`` does: the others are not decoded, which saves time when a query needs a few
    of many. A value of the wrong type in a column left out then rejects nothing, and the
    rows a run keeps whole (late rows, rows rejected for their time) hold those columns only."""
    return FileSource("jsonl", path, order_by, schema, batch_rows, on_error=on_error,
                      max_line_bytes=max_line_bytes, infer_schema_length=infer_schema_length,
                      columns=columns)


def read_csv(path: PathLike, order_by: str | None = None, schema: dict | None = None,
             separator: str = ",", batch_rows: int = 65_536, on_error: str = "raise",
             max_line_bytes: int = MAX_LINE_BYTES, null_values: str | Sequence[str] | None = None,
             infer_schema_length: int | None = 1000, columns: Sequence[str] | None = None) -> FileSource:
    """Replays CSV files with a header row (plain or ``.gz``; a path, a glob or a list, name
    order) as a stream, parsed in Rust. The schema is inferred from the first
    ``infer_schema_length`` records of the first file (None: all of it), or given as
    ``schema=`` (every header column, in order, with its polars dtype); later files must have
    the same columns in the same order. A record that does not parse (wrong number of fields,
    a value of the wrong type, invalid UTF-8) goes to ``run.rejected`` with its file, line and
    a reason naming the column, the value and the fix; the rest is read.

    ``null_values="NA"`` (or a list) reads those texts as null in every column, besides the
    empty field, as polars does: a sensor writing ``nil`` for a missing reading gives null
    rather than a rejected row. A record longer than ``max_line_bytes`` (default 64 MiB) is
    rejected without being read into memory. A header naming a column twice, or holding a NUL,
    raises :class:`SchemaError`. ``on_error=`` is as for :func:`read_jsonl`; ``order_by=``
    merges files by a column, and ``columns=`` reads only some (see :func:`read_jsonl`)."""
    if not isinstance(separator, str) or len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    return FileSource("csv", path, order_by, schema, batch_rows, separator=separator,
                      on_error=on_error, max_line_bytes=max_line_bytes, null_values=null_values,
                      infer_schema_length=infer_schema_length, columns=columns)
