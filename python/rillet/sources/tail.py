"""Live sources: follow a growing file like ``tail -F`` (partial last lines wait; rotation and
truncation are handled) or a folder as files land. They yield empty batches while quiet, so
``idle_timeout`` can close windows, and run until ``max_idle`` passes without new data (or
forever when it is None)."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.files import MAX_LINE_BYTES, check_max_line_bytes, check_null_values
from rillet.sources.rows import BAD_SCHEMA, JsonDecoder, excerpt, heartbeat, schema_from_text, schema_text, seconds
from rillet.sources.source import ChunkSource

#: How much a followed file is read at a time: a large file is read in steps, not at once.
READ_BLOCK = 8 * 1024 * 1024


class _Lines:
    """Bytes of a followed file -> numbered complete lines, holding at most ``max_bytes`` of a
    line: a longer one is read past and kept as a bad row (``too_long``) naming the limit."""

    def __init__(self, name: str, max_bytes: int) -> None:
        self.name = name
        self.max = max_bytes
        self.pending = b""  # a partial last line
        self.number = 0  # lines passed
        self.offset = 0  # bytes of the lines passed (where the partial last line starts)
        self.skipping: list | None = None  # [line, bytes so far, start] of a line too long
        self.too_long: list[dict] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        if self.skipping is not None:
            nl = data.find(b"\n")
            if nl < 0:
                self.skipping[1] += len(data)
                return []
            self.skipping[1] += nl
            self.number += 1
            self.offset += self.skipping[1] + 1
            self._reject(*self.skipping)
            self.skipping = None
            data = data[nl + 1:]
        data = self.pending + data
        cut = data.rfind(b"\n")
        complete, self.pending = data[: cut + 1], data[cut + 1:]
        self.offset += len(complete)
        lines = []
        for raw in complete.split(b"\n")[:-1]:
            self.number += 1
            raw = raw.rstrip(b"\r")
            if len(raw) > self.max:
                self._reject(self.number, len(raw), raw[:1000])
            else:
                lines.append((self.number, raw))
        if len(self.pending) > self.max:
            self.skipping = [self.number + 1, len(self.pending), self.pending[:1000]]
            self.pending = b""
        return lines

    def cut_off(self) -> bytes:
        """The partial last line of a file that ended (rotated): b"" if none; a line too long
        becomes a bad row."""
        if self.skipping is not None:
            self._reject(*self.skipping)
            self.skipping = None
        pending, self.pending = self.pending, b""
        return pending

    def _reject(self, line: int, size: int, start: bytes) -> None:
        self.too_long.append({
            "file": self.name, "line": line, "text": excerpt(start),
            "reason": (f"line of {size} bytes is longer than max_line_bytes={self.max}; it was "
                       "skipped without being read into memory (raise max_line_bytes= to read it)"),
        })

    def take_bad(self) -> pl.DataFrame:
        bad, self.too_long = self.too_long, []
        return pl.DataFrame(bad, schema=BAD_SCHEMA)


class _CsvDecoder:
    """CSV lines -> rows, with the file readers' rules (parsed in Rust): the first line of the
    file is the header; the schema is inferred from it and the first records (or given); a
    record that does not parse is a bad row. A quoted field may span lines."""

    def __init__(self, name: str, separator: str, schema: pl.DataFrame | None,
                 max_bytes: int = MAX_LINE_BYTES, null_values: list[str] | None = None) -> None:
        self.name = name
        self.separator = separator
        self.given = schema
        self.max = max_bytes
        self.null_values = null_values
        self.carry_bytes = 0
        self.header: bytes | None = None
        self.expect_header = True
        self.core: Any = None
        self.schema: dict[str, pl.DataType] | None = None
        self.carry: list[tuple[int, bytes]] = []  # the lines of a record still in quotes

    def restart(self) -> None:
        """A new file under the name: its first line is the header again."""
        self.expect_header, self.carry, self.carry_bytes = True, [], 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the decoder: the header, the lines of a record still in
        quotes, and the columns."""
        from rillet._codec import encode_position

        return {"header": None if self.header is None else encode_position(self.header),
                "expect_header": self.expect_header,
                "carry": [[n, encode_position(raw)] for n, raw in self.carry],
                "schema": schema_text(self.schema)}

    def resume(self, state: dict[str, Any]) -> None:
        from rillet._codec import decode_position, schema_frame

        self.header = None if state["header"] is None else decode_position(state["header"])
        self.expect_header = state["expect_header"]
        self.carry = [(n, decode_position(raw)) for n, raw in state["carry"]]
        self.carry_bytes = sum(len(raw) + 1 for _, raw in self.carry)
        if state["schema"] is not None:
            # The columns inferred before: the records after the position are read with them.
            self.given = schema_frame(decode_position(state["schema"]))

    def decode(self, lines: list[tuple[int, bytes]]) -> Chunk:
        records: list[tuple[int, bytes]] = []
        open_quote: list[dict] = []
        for number, raw in lines:
            if self.expect_header:
                self.expect_header = False
                if self.header is not None and raw != self.header:
                    raise SourceError(
                        f"tail_csv: {self.name} came back (rotated or truncated) with the header "
                        f"{excerpt(raw)!r} instead of {excerpt(self.header)!r}; a followed CSV "
                        "file must keep its columns"
                    )
                self.header = raw
                continue
            if not self.carry and not raw.strip():
                continue  # blank lines are not rows
            self.carry.append((number, raw))
            self.carry_bytes += len(raw) + 1
            if self.carry_bytes > self.max:
                # A quoted field left open: the record is cut off rather than held on to.
                open_quote.append({
                    "file": self.name, "line": self.carry[0][0], "text": excerpt(self.carry[0][1]),
                    "reason": (f"CSV record of more than max_line_bytes={self.max} bytes (a quoted "
                               "field left open?); it was skipped (raise max_line_bytes= to read "
                               "it)")})
                self.carry, self.carry_bytes = [], 0
                continue
            text = b"\n".join(r for _, r in self.carry)
            if text.count(b'"') % 2:
                continue  # inside a quoted field: the record goes on on the next line
            records.append((self.carry[0][0], text + b"\n"))
            self.carry, self.carry_bytes = [], 0
        if self.core is None:
            if not records:
                return Chunk(pl.DataFrame(), pl.DataFrame(open_quote, schema=BAD_SCHEMA))
            head = (self.header or b"") + b"\n" + b"".join(r for _, r in records[:1000])
            self.core = _core.CsvRecords(self.name, head, self.separator, 1000, self.given,
                                         self.null_values)
        rows, bad = self.core.decode(records)
        frame = pl.DataFrame(rows)
        self.schema = dict(frame.schema)
        bad = pl.DataFrame(bad)
        if open_quote:
            bad = pl.concat([bad, pl.DataFrame(open_quote, schema=BAD_SCHEMA)])
        return Chunk(frame, bad)


class TailFile(ChunkSource):
    """Follows one file as it grows (``rl.tail_jsonl``, ``rl.tail_csv``)."""

    def __init__(self, kind: str, path: str | os.PathLike, poll: Any = "100ms", max_idle: Any = None,
                 from_start: bool = True, separator: str = ",", schema: Any = None,
                 max_line_bytes: int = MAX_LINE_BYTES, null_values: Any = None) -> None:
        from rillet.sources.files import _schema_frame

        self.kind = kind
        self.max_line_bytes = check_max_line_bytes(max_line_bytes, f"tail_{kind}")
        self.null_values = check_null_values(null_values, f"tail_{kind}")
        self.path = Path(path)
        self.poll = seconds(poll, "poll") or 0.1
        self.max_idle = seconds(max_idle, "max_idle")
        self.from_start = from_start
        if not isinstance(separator, str) or len(separator) != 1:
            raise ConfigError(f"separator must be one character, got {separator!r}")
        self.separator = separator
        self.schema = _schema_frame(schema, f"tail_{kind}")
        if kind == "jsonl" and schema is not None:
            raise ConfigError("tail_jsonl infers its schema from the first rows; schema= is for tail_csv")

    def _decoder(self) -> Any:
        if self.kind == "csv":
            return _CsvDecoder(str(self.path), self.separator, self.schema, self.max_line_bytes,
                               self.null_values)
        return JsonDecoder(str(self.path))

    def chunks(self) -> Iterator[Chunk]:
        for chunk, _ in self.positioned_chunks(None):
            yield chunk

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        """The chunks, each with where the source is after it: the file's inode, the offset
        and number of the lines passed, and the decoder's state (the columns, a CSV header and
        a record still in quotes). From ``start``, the file is read on from that offset; if
        it was replaced or truncated meanwhile, from the start of the file now there, with a
        :class:`~rillet.DataLossWarning` (what the old file held past the offset was not read)."""
        decoder = self._decoder()
        handle = None
        inode = None
        pos = 0
        lines = _Lines(str(self.path), self.max_line_bytes)
        # As tail -F -n 0: what a file holds when the source starts is skipped; a file that
        # appears later is read from its start.
        first_open = start is None and self.path.exists()
        last_data = time.monotonic()

        def position() -> dict[str, Any] | None:
            if not durable:  # asked for by checkpointed runs only
                return None
            if handle is None:  # no file yet, or the old one was read to its end (rotated)
                return {"inode": None, "offset": 0, "line": 0, "decoder": _state(decoder)}
            return {"inode": inode, "offset": lines.offset, "line": lines.number, "decoder": _state(decoder),
                    "before": _bytes_before(handle, lines.offset)}

        try:
            while True:
                if handle is None and self.path.exists():
                    handle = open(self.path, "rb")
                    inode = os.fstat(handle.fileno()).st_ino
                    lines = _Lines(str(self.path), self.max_line_bytes)
                    if hasattr(decoder, "restart"):
                        decoder.restart()
                    if first_open and not self.from_start:
                        self._skip_existing(handle, decoder, lines)
                    if start is not None:
                        self._resume(handle, decoder, lines, start)
                        start = None
                    first_open = False
                    pos = handle.tell()
                got = b""
                ended = False
                if handle is not None:
                    got = handle.read(READ_BLOCK)
                    pos += len(got)
                    if len(got) < READ_BLOCK:  # at its end: rotated or truncated meanwhile?
                        try:
                            st = os.stat(self.path)
                            if st.st_ino != inode or st.st_size < pos:
                                # Rotated (a new file under the name) or truncated: read what
                                # was written to the old file since, then start the new one over.
                                got += handle.read(READ_BLOCK)
                                handle.close()
                                handle, ended = None, True
                        except FileNotFoundError:
                            pass
                if got or ended:
                    complete = lines.feed(got) if got else []
                    cut = lines.cut_off() if ended else b""
                    if got or cut:
                        last_data = time.monotonic()
                    chunk = decoder.decode(complete) if complete else heartbeat(decoder.schema)
                    extra = [lines.take_bad()]
                    if cut:
                        # The old file ended without a newline: its last line is kept as a bad row.
                        extra.append(pl.DataFrame([{
                            "file": str(self.path), "line": lines.number + 1, "text": excerpt(cut),
                            "reason": "incomplete last line: the file was rotated or truncated "
                                      "before its newline was written"}], schema=BAD_SCHEMA))
                    extra = [e for e in extra if e.height]
                    if extra:
                        chunk = Chunk(chunk.frame, pl.concat([chunk.bad, *extra]))
                    if chunk.frame.width or chunk.bad.height:
                        yield chunk, position()
                        continue
                    if got:
                        continue  # part of a long line: read on
                if self.max_idle is not None and time.monotonic() - last_data >= self.max_idle:
                    if handle is not None:
                        handle.close()
                    return
                yield heartbeat(decoder.schema), position()
                time.sleep(self.poll)
        finally:
            if handle is not None:
                handle.close()

    def _resume(self, handle: Any, decoder: Any, lines: _Lines, start: dict[str, Any]) -> None:
        """Moves to a checkpoint's position in the file (see :meth:`positioned_chunks`)."""
        _resume_decoder(decoder, start["decoder"])
        if start["inode"] is None:
            # The checkpoint was taken before the file existed, or after the file before it
            # was read to its end: this one is read from its start.
            if hasattr(decoder, "restart"):
                decoder.restart()
            return
        size = os.fstat(handle.fileno()).st_size
        same = os.fstat(handle.fileno()).st_ino == start["inode"]
        # The bytes before the offset tell a file truncated and written again past it (a
        # copytruncate rotation), or a new file that took the inode, from the same file.
        unchanged = size >= start["offset"] and _bytes_before(handle, start["offset"]) == start["before"]
        if same and unchanged:
            handle.seek(start["offset"])
            lines.offset, lines.number = start["offset"], start["line"]
            return
        if hasattr(decoder, "restart"):
            decoder.restart()
        from rillet import _loss

        why = "replaced (rotated)" if not same else "truncated (or rewritten in place)"
        _loss.warn(
            f"tail_{self.kind}: {self.path} was {why} while the run was stopped, so it is read from "
            f"the start of the file there now; what the old file held after byte {start['offset']:,} "
            "(line " + f"{start['line']:,}) was not read. If it was rotated to another name, replay "
            f"that file with rl.read_{self.kind}")

    def _skip_existing(self, handle: Any, decoder: Any, lines: _Lines) -> None:
        """Moves past what the file holds (``from_start=False``), counting its lines so rows
        keep their line numbers; a CSV header is still read. A partial last line stays in
        ``lines``, read with the rows that follow it."""
        if self.kind == "csv":
            header = handle.readline(self.max_line_bytes + 2)
            if not header.endswith(b"\n"):
                if len(header) > self.max_line_bytes:
                    raise SourceError(
                        f"tail_csv: the header of {self.path} is longer than max_line_bytes="
                        f"{self.max_line_bytes}; is it a CSV file?"
                    )
                handle.seek(0)  # no complete header yet: it is read when it comes
                return
            decoder.decode([(1, header.rstrip(b"\r\n"))])
            lines.number = 1
            lines.offset = len(header)
        while block := handle.read(READ_BLOCK):
            lines.feed(block)
        lines.too_long.clear()  # lines passed over are not rows of the stream

    def __repr__(self) -> str:
        return f"rl.tail_{self.kind}({str(self.path)!r})"


def _bytes_before(handle: Any, offset: int) -> str:
    """The 64 bytes of the file before ``offset`` (as hex), read without moving the handle."""
    start = max(0, offset - 64)
    try:
        return os.pread(handle.fileno(), offset - start, start).hex()
    except (AttributeError, OSError):  # pragma: no cover - no pread (Windows)
        return ""


def _state(decoder: Any) -> dict[str, Any]:
    """A line decoder's state for a checkpoint (JSON: its columns, once known)."""
    if hasattr(decoder, "state"):
        return decoder.state()
    return {"schema": schema_text(decoder.schema)}


def _resume_decoder(decoder: Any, state: dict[str, Any]) -> None:
    if hasattr(decoder, "resume"):
        decoder.resume(state)
    elif state["schema"] is not None:
        decoder.schema = schema_from_text(state["schema"])


class TailDir:
    """Reads files as they land in a folder (``rl.tail_dir``), once each, in name order."""

    def __init__(self, directory: str | os.PathLike, pattern: str = "*.jsonl", poll: Any = "200ms",
                 max_idle: Any = None) -> None:
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise ConfigError(f"tail_dir: {self.dir} is not a folder")
        self.pattern = pattern
        self.poll = seconds(poll, "poll") or 0.2
        self.max_idle = seconds(max_idle, "max_idle")

    def chunks(self) -> Iterator[Chunk]:
        for chunk, _ in self.positioned_chunks(None):
            yield chunk

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        """The chunks, each with where the source is after it: the files read whole, and the
        file being read with the position in it. From ``start``, those files are not read
        again and the one being read goes on from its position."""
        from rillet.sources.files import FileSource

        done: list[str] = [] if start is None else list(start["done"])
        # Files by their real path: the folder spelled another way holds the same files.
        seen: set[str] = {os.path.realpath(f) for f in done}
        schema: dict | None = None if start is None or start["schema"] is None else schema_from_text(start["schema"])
        resume_in = None if start is None else start["file"]
        if resume_in is not None and not os.path.exists(resume_in[0]):
            from rillet import _loss

            _loss.warn(f"tail_dir: {resume_in[0]} was being read when the checkpoint was taken, and it is "
                       "gone: the rows after the checkpoint's position in it were not read")
            resume_in = None
        last_data = time.monotonic()
        while True:
            new = sorted(str(p) for p in self.dir.glob(self.pattern)
                         if os.path.realpath(p) not in seen and not p.name.startswith("."))
            if resume_in is not None:
                same = [f for f in new if os.path.realpath(f) == os.path.realpath(resume_in[0])]
                for f in same:
                    new.remove(f)
                new[:0] = same
            for f in new:
                seen.add(os.path.realpath(f))
                kind = "csv" if f.endswith((".csv", ".csv.gz")) else "jsonl"
                here = resume_in is not None and os.path.realpath(resume_in[0]) == os.path.realpath(f)
                at = resume_in[1] if resume_in is not None and here else None
                resume_in = None
                for chunk, inside in FileSource(kind, f).positioned_chunks(at, durable):
                    schema = dict(chunk.frame.schema) if chunk.frame.width else schema
                    yield chunk, {"done": done, "file": [f, inside], "schema": schema_text(schema)}
                done = [*done, f]
                last_data = time.monotonic()
            if not new:
                if self.max_idle is not None and time.monotonic() - last_data >= self.max_idle:
                    return
                yield heartbeat(schema), {"done": done, "file": None, "schema": schema_text(schema)}
                time.sleep(self.poll)

    def __repr__(self) -> str:
        return f"rl.tail_dir({str(self.dir)!r}, {self.pattern!r})"


def tail_jsonl(path: str | os.PathLike, poll: Any = "100ms", max_idle: Any = None,
               from_start: bool = True, max_line_bytes: int = MAX_LINE_BYTES) -> TailFile:
    """Follows a JSON Lines file as it grows, like ``tail -F``: a partial last line waits for
    its newline; a rotated or truncated file is read again from its start. While no data
    arrives it yields empty batches every ``poll`` (so ``idle_timeout=`` closes windows); it
    stops after ``max_idle`` without new data (None: never). ``from_start=False`` skips what
    the file holds when the source starts (as ``tail -F -n 0``). A line longer than
    ``max_line_bytes`` (default 64 MiB), or nested more than 128 levels deep, goes to
    ``run.rejected`` with its line and reason; the file is read in steps of 8 MiB, so such a
    line is never held in memory whole."""
    return TailFile("jsonl", path, poll, max_idle, from_start, max_line_bytes=max_line_bytes)


def tail_csv(path: str | os.PathLike, poll: Any = "100ms", max_idle: Any = None,
             from_start: bool = True, separator: str = ",", schema: Any = None,
             max_line_bytes: int = MAX_LINE_BYTES, null_values: Any = None) -> TailFile:
    """Follows a CSV file with a header row as it grows, as :func:`tail_jsonl` does JSON
    Lines. Records are parsed in Rust with :func:`~rillet.read_csv`'s rules: the schema is
    inferred from the header and the first records (or given as ``schema=``), a record that
    does not parse goes to ``run.rejected`` with its line and reason, and a quoted field may
    span lines. A rotated or truncated file must come back with the same header.
    ``null_values=`` and ``max_line_bytes=`` are as for :func:`~rillet.read_csv` (a record
    whose quoted field stays open for more than ``max_line_bytes`` is rejected)."""
    return TailFile("csv", path, poll, max_idle, from_start, separator, schema,
                    max_line_bytes=max_line_bytes, null_values=null_values)


def tail_dir(directory: str | os.PathLike, pattern: str = "*.jsonl", poll: Any = "200ms",
             max_idle: Any = None) -> TailDir:
    """Reads files matching ``pattern`` as they land in ``directory``, once each, in name
    order (JSON Lines, or CSV for ``*.csv``); write a file under a temporary name (starting
    with a dot) and rename it when complete. Stops after ``max_idle`` without a new file."""
    return TailDir(directory, pattern, poll, max_idle)
