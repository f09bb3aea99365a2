"""Live sources: follow a growing file like ``tail -F`` (partial last lines wait; rotation and
truncation are handled) or a folder as files land. They yield empty batches while quiet, so
``idle_timeout`` can close windows, and run until ``max_idle`` passes without new data (or
forever when it is None)."""
from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from rillet._errors import ConfigError
from rillet._files import Chunk
from rillet._time import wall_ms

_BAD_SCHEMA = {"file": pl.String, "line": pl.UInt64, "reason": pl.String, "text": pl.String}


def _seconds(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return wall_ms(value, what) / 1000


class _JsonlDecoder:
    """Complete lines -> (rows, bad rows); the schema is fixed by the first good rows."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema: dict[str, pl.DataType] | None = None

    def decode(self, lines: list[tuple[int, bytes]]) -> Chunk:
        good: list[tuple[int, bytes]] = []
        bad: list[dict] = []
        for number, raw in lines:
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
                good.append((number, raw))
            except ValueError as e:
                bad.append({"file": self.name, "line": number,
                            "reason": f"unreadable JSON row: {e}",
                            "text": raw[:1000].decode("utf-8", "replace")})
        frame = pl.DataFrame()
        if good and self.schema is None:
            frame = pl.read_ndjson(io.BytesIO(b"\n".join(raw for _, raw in good)), infer_schema_length=None)
            self.schema = dict(frame.schema)
        elif good:
            try:
                frame = pl.read_ndjson(io.BytesIO(b"\n".join(raw for _, raw in good)), schema=self.schema)
            except pl.exceptions.PolarsError:
                # Find the rows whose values do not fit the schema; keep the others.
                kept = []
                for number, raw in good:
                    try:
                        kept.append(pl.read_ndjson(io.BytesIO(raw), schema=self.schema))
                    except pl.exceptions.PolarsError as e:
                        bad.append({"file": self.name, "line": number,
                                    "reason": f"unreadable JSON row: {str(e).splitlines()[0]}",
                                    "text": raw[:1000].decode("utf-8", "replace")})
                frame = pl.concat(kept) if kept else pl.DataFrame(schema=self.schema)
        elif self.schema is not None:
            frame = pl.DataFrame(schema=self.schema)
        bad.sort(key=lambda r: r["line"])
        return Chunk(frame, pl.DataFrame(bad, schema=_BAD_SCHEMA))


class TailJsonl:
    """Follows one JSON Lines file as it grows (``rl.tail_jsonl``)."""

    def __init__(self, path: str | os.PathLike, poll: Any = "100ms", max_idle: Any = None,
                 from_start: bool = True) -> None:
        self.path = Path(path)
        self.poll = _seconds(poll, "poll") or 0.1
        self.max_idle = _seconds(max_idle, "max_idle")
        self.from_start = from_start

    def chunks(self) -> Iterator[Chunk]:
        decoder = _JsonlDecoder(str(self.path))
        handle = None
        inode = None
        pos = 0
        line_no = 0
        pending = b""
        last_data = time.monotonic()
        try:
            while True:
                if handle is None and self.path.exists():
                    handle = open(self.path, "rb")  # noqa: SIM115 - kept open while following
                    inode = os.fstat(handle.fileno()).st_ino
                    if not self.from_start:
                        handle.seek(0, os.SEEK_END)
                    pos, line_no, pending = handle.tell(), 0, b""
                got = b""
                if handle is not None:
                    got = handle.read()
                    pos += len(got)
                    try:
                        st = os.stat(self.path)
                        if st.st_ino != inode or st.st_size < pos:
                            # Rotated (a new file under the name) or truncated: start it over.
                            handle.close()
                            handle = None
                    except FileNotFoundError:
                        pass
                if got:
                    last_data = time.monotonic()
                    data = pending + got
                    cut = data.rfind(b"\n")
                    if cut < 0:
                        pending = data
                    else:
                        complete, pending = data[: cut + 1], data[cut + 1:]
                        lines = []
                        for raw in complete.split(b"\n")[:-1]:
                            line_no += 1
                            lines.append((line_no, raw.rstrip(b"\r")))
                        chunk = decoder.decode(lines)
                        if chunk.frame.width or chunk.bad.height:
                            yield chunk
                            continue
                if self.max_idle is not None and time.monotonic() - last_data >= self.max_idle:
                    if handle is not None:
                        handle.close()
                    return
                if decoder.schema is not None:
                    yield Chunk(pl.DataFrame(schema=decoder.schema), pl.DataFrame(schema=_BAD_SCHEMA))
                time.sleep(self.poll)
        finally:
            if handle is not None:
                handle.close()

    def __repr__(self) -> str:
        return f"rl.tail_jsonl({str(self.path)!r})"


class TailDir:
    """Reads files as they land in a folder (``rl.tail_dir``), once each, in name order."""

    def __init__(self, directory: str | os.PathLike, pattern: str = "*.jsonl", poll: Any = "200ms",
                 max_idle: Any = None) -> None:
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise ConfigError(f"tail_dir: {self.dir} is not a folder")
        self.pattern = pattern
        self.poll = _seconds(poll, "poll") or 0.2
        self.max_idle = _seconds(max_idle, "max_idle")

    def chunks(self) -> Iterator[Chunk]:
        from rillet._files import FileSource

        seen: set[str] = set()
        schema: dict | None = None
        last_data = time.monotonic()
        while True:
            new = sorted(str(p) for p in self.dir.glob(self.pattern)
                         if str(p) not in seen and not p.name.startswith("."))
            for f in new:
                seen.add(f)
                kind = "csv" if f.endswith((".csv", ".csv.gz")) else "jsonl"
                for chunk in FileSource(kind, f).chunks():
                    schema = dict(chunk.frame.schema) if chunk.frame.width else schema
                    yield chunk
                last_data = time.monotonic()
            if not new:
                if self.max_idle is not None and time.monotonic() - last_data >= self.max_idle:
                    return
                if schema is not None:
                    yield Chunk(pl.DataFrame(schema=schema), pl.DataFrame(schema=_BAD_SCHEMA))
                time.sleep(self.poll)

    def __repr__(self) -> str:
        return f"rl.tail_dir({str(self.dir)!r}, {self.pattern!r})"


def tail_jsonl(path: str | os.PathLike, poll: Any = "100ms", max_idle: Any = None,
               from_start: bool = True) -> TailJsonl:
    """Follows a JSON Lines file as it grows, like ``tail -F``: a partial last line waits for
    its newline; a rotated or truncated file is read again from its start. While no data
    arrives it yields empty batches every ``poll`` (so ``idle_timeout=`` closes windows); it
    stops after ``max_idle`` without new data (None: never)."""
    return TailJsonl(path, poll, max_idle, from_start)


def tail_dir(directory: str | os.PathLike, pattern: str = "*.jsonl", poll: Any = "200ms",
             max_idle: Any = None) -> TailDir:
    """Reads files matching ``pattern`` as they land in ``directory``, once each, in name
    order (JSON Lines, or CSV for ``*.csv``); write a file under a temporary name (starting
    with a dot) and rename it when complete. Stops after ``max_idle`` without a new file."""
    return TailDir(directory, pattern, poll, max_idle)
