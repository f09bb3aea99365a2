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
from rillet._errors import ConfigError, SourceError

PathLike = str | os.PathLike | Sequence[str | os.PathLike]


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


class Chunk:
    """One micro-batch from a file source: the rows that parsed and those that did not."""

    __slots__ = ("frame", "bad")

    def __init__(self, frame: pl.DataFrame, bad: pl.DataFrame) -> None:
        self.frame = frame
        self.bad = bad


class FileSource:
    """Files (plain or .gz), read in order by the Rust core in bounded memory.

    Use as a source: ``rl.stream(rl.read_jsonl("logs/*.jsonl.gz"), time="ts")``.
    """

    def __init__(self, kind: str, path: PathLike, order_by: str | None = None,
                 batch_rows: int = 65_536, separator: str = ",") -> None:
        self.kind = kind
        self.files = expand(path, f"read_{kind}")
        if order_by is not None:
            raise ConfigError(
                f"read_{kind}(order_by=...) is not supported yet; files are replayed in name order"
            )
        if batch_rows < 1:
            raise ConfigError(f"batch_rows must be positive, got {batch_rows}")
        self.batch_rows = batch_rows
        self.separator = separator

    def chunks(self) -> Iterator[Chunk]:
        reader = _core.FileReader(self.kind, self.files, self.batch_rows, 1000, self.separator)
        while True:
            nxt = reader.next_chunk()
            if nxt is None:
                return
            rows, bad = nxt
            yield Chunk(pl.DataFrame(rows), pl.DataFrame(bad))

    def paced(self, speed: float | None = 10.0, by: str = "arrival_time") -> Any:
        """This source replayed at ``speed`` times the pace recorded in column ``by``."""
        from rillet._pacing import Paced

        return Paced(self, speed, by)

    def batches(self) -> Iterator[pl.DataFrame]:
        """The parsed rows only (bad rows are visible through a query's run.rejected)."""
        for c in self.chunks():
            yield c.frame

    def __repr__(self) -> str:
        return f"rl.read_{self.kind}({self.files[0]!r}{'...' if len(self.files) > 1 else ''})"


def read_jsonl(path: PathLike, order_by: str | None = None, schema: dict | None = None) -> FileSource:
    """Replays JSON Lines files (plain or ``.gz``; a path, a glob or a list, name order) as a
    stream. The schema is inferred from the first rows; a later row with a missing field gets
    null, an unknown field is ignored, and a row that does not parse goes to ``run.rejected``
    with its file, line and reason. A truncated ``.gz`` raises :class:`SourceError` naming the
    file, after the good rows were processed."""
    if schema is not None:
        raise ConfigError("read_jsonl(schema=...) is not supported yet; the schema is inferred")
    return FileSource("jsonl", path, order_by)


def read_csv(path: PathLike, order_by: str | None = None, schema: dict | None = None,
             separator: str = ",") -> FileSource:
    """Replays CSV files with a header row (plain or ``.gz``; a path, a glob or a list, name
    order) as a stream, parsed in Rust. The schema is inferred from the first rows of the first
    file (later files must have the same columns in the same order); a record that does not
    parse (wrong number of fields, a value of the wrong type) goes to ``run.rejected`` with its
    file, line and reason."""
    if schema is not None:
        raise ConfigError("read_csv(schema=...) is not supported yet; the schema is inferred")
    if not isinstance(separator, str) or len(separator) != 1:
        raise ConfigError(f"separator must be one character, got {separator!r}")
    return FileSource("csv", path, order_by, separator=separator)
