"""Reference tables (:func:`reference`): a file read whole, for joining a stream with, and
read again when it changes, as Kinesis Analytics' reference data."""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from rillet import _clock
from rillet._errors import ConfigError, SourceError
from rillet._time import DurationLike, wall_ms

#: The readers by file extension (a ``.gz``-compressed CSV or JSON Lines file too).
FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "json", ".arrow": "ipc", ".ipc": "ipc", ".feather": "ipc"}


class ReferenceWarning(UserWarning):
    """A reference table that changed could not be read again (a file half-written, or no
    longer readable): the join goes on with the table it had, and tries again at the next
    check. Write a new table under another name and rename it over the old one, so readers
    never see it half-written."""

    __module__ = "rillet"


class Reference:
    """A table read from a file and read again when it changes (see :func:`reference`)."""

    def __init__(self, path: str | os.PathLike, refresh: DurationLike | None, format: str | None,
                 options: dict[str, Any]) -> None:
        self.path = Path(path)
        self.refresh_ms = None if refresh is None else wall_ms(refresh, "refresh")
        if self.refresh_ms is not None and self.refresh_ms <= 0:
            raise ConfigError(f"refresh= must be a positive duration such as '1m', or None, got {refresh!r}")
        self.refresh = refresh
        if format is None:
            suffixes = [s.lower() for s in self.path.suffixes]
            if suffixes and suffixes[-1] == ".gz":
                suffixes = suffixes[:-1]
            format = FORMATS.get(suffixes[-1]) if suffixes else None
            if format is None:
                raise ConfigError(
                    f"rl.reference({str(path)!r}): cannot tell the file's format from its name; give "
                    f"format= one of {sorted(set(FORMATS.values()))}"
                )
        elif format not in set(FORMATS.values()):
            raise ConfigError(f"rl.reference(format={format!r}): expected one of {sorted(set(FORMATS.values()))}")
        self.format = format
        self.options = options

    def read(self, reload: bool = False) -> tuple[pl.DataFrame, tuple[int, int, int]]:
        """The table now, and the file's identity (inode, size, modification time) it was
        read at. A file that changed while it was read raises :class:`SourceError`, and at a
        reload (``reload``) so does a text file that does not end with a line break (a
        writer still at it)."""
        before = self.stat()
        if reload and self.format in ("csv", "jsonl") and not self.path.name.lower().endswith(".gz"):
            self._check_complete(before[1])
        readers: dict[str, Callable[..., pl.DataFrame]] = {
            "csv": pl.read_csv, "parquet": pl.read_parquet, "jsonl": pl.read_ndjson, "json": pl.read_json,
            "ipc": pl.read_ipc}
        read = readers[self.format]
        try:
            table = read(self.path, **self.options)
        except (OSError, pl.exceptions.PolarsError, ValueError) as e:
            raise SourceError(f"could not read the reference table {str(self.path)!r} as {self.format}: {e}") from e
        if self.stat() != before:
            raise SourceError(f"the reference table {str(self.path)!r} changed while it was read")
        return table, before

    def _check_complete(self, size: int) -> None:
        if size == 0:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(size - 1)
                last = f.read(1)
        except OSError as e:
            raise SourceError(f"cannot read the reference table {str(self.path)!r}: {e.strerror or e}") from e
        if last not in (b"\n", b"\r"):
            raise SourceError(
                f"the reference table {str(self.path)!r} does not end with a line break, so it may be "
                "half-written (end it with one, or write it elsewhere and rename it over)")

    def stat(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise SourceError(f"cannot read the reference table {str(self.path)!r}: {e.strerror or e}") from e
        return st.st_ino, st.st_size, st.st_mtime_ns

    def __repr__(self) -> str:
        return f"rl.reference({str(self.path)!r}, refresh={self.refresh!r})"


class Loaded:
    """One run's copy of a reference table: when it was last read and checked."""

    def __init__(self, ref: Reference) -> None:
        self.ref = ref
        self.table, self.identity = ref.read()
        self.loads = 1
        self.checked_ms = _clock.now_ms()

    def reloaded(self) -> pl.DataFrame | None:
        """The new table when the file changed since it was read (checked at most once per
        ``refresh``), else None. A changed file that cannot be read warns and keeps the
        table (:class:`ReferenceWarning`)."""
        if self.ref.refresh_ms is None:
            return None
        now = _clock.now_ms()
        if now - self.checked_ms < self.ref.refresh_ms:
            return None
        self.checked_ms = now
        try:
            if self.ref.stat() == self.identity:
                return None
            table, identity = self.ref.read(reload=True)
            table = self._same_schema(table)
        except SourceError as e:
            warnings.warn(f"{e}; the join goes on with the table read before and tries again in "
                          f"{self.ref.refresh}", ReferenceWarning, stacklevel=2)
            return None
        self.table, self.identity = table, identity
        self.loads += 1
        return table

    def _same_schema(self, table: pl.DataFrame) -> pl.DataFrame:
        """The reloaded table in the first one's columns and types (a run's output keeps its
        columns): cast where the values allow (a CSV column read as text because it is empty
        now, say), else a :class:`SourceError`."""
        schema = self.table.schema
        if table.schema == schema:
            return table
        if table.columns != self.table.columns:
            raise SourceError(
                f"the reference table {str(self.ref.path)!r} now has columns {table.columns}, not "
                f"{self.table.columns}; a run keeps the columns it started with (restart it to use the new ones)")
        try:
            return table.cast(dict(schema), strict=True)  # type: ignore[arg-type]  # a Schema is a mapping of dtypes
        except pl.exceptions.PolarsError as e:
            raise SourceError(
                f"the reference table {str(self.ref.path)!r} has types {dict(table.schema)} that cannot be read "
                f"as the types it started with, {dict(schema)}: {e}") from e


def reference(path: str | os.PathLike, refresh: DurationLike | None = "1m", format: str | None = None,
              **options: Any) -> Reference:
    """A reference table in a file, for :meth:`rillet.Stream.join` and
    :meth:`~rillet.Stream.join_asof`: read whole when a run starts, then, every ``refresh``
    of wall-clock time (``None``: never), read again if the file changed (its inode, size or
    modification time). The new table applies from the next micro-batch on: every row of a
    batch sees the old table or the new one, never a mix. A changed file that cannot be read
    (half-written, malformed) keeps the old table with a :class:`ReferenceWarning`; replace
    the file by renaming a complete one over it. The format comes from the extension (CSV,
    Parquet, JSON Lines, JSON, Arrow IPC) or ``format=``; ``options`` go to the polars
    reader (``pl.read_csv(path, **options)``, ...)::

        teams = rl.reference("teams.csv", refresh="1m")
        rl.stream(events, time="ts").join(teams, on="user").window(...)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"rl.reference() takes the path of a file, got {type(path).__name__} {path!r}")
    return Reference(path, refresh, format, options)
