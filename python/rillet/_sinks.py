"""Sinks: deliver a query's results while it runs (Firehose-style files, databases with
upserts for amendments, callbacks)."""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl

from rillet._errors import ConfigError, SinkError


class FileSink:
    """Hive-partitioned files, each written to a temporary name and renamed, so a reader never
    sees half a file. Rows are buffered until `max_rows`, then written per partition."""

    def __init__(self, directory: str | os.PathLike, fmt: str, partition_by: str | None,
                 every: str | None, max_rows: int) -> None:
        self.dir = Path(directory)
        self.fmt = fmt
        self.partition_by = partition_by
        self.every = every
        self.max_rows = max_rows
        self.buffer: list[pl.DataFrame] = []
        self.buffered = 0
        self.files: list[Path] = []
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create the output folder {self.dir}: {e}") from e

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        if self.partition_by is not None and self.partition_by not in df.columns:
            raise SinkError(
                f"partition_by={self.partition_by!r} is not an output column; choose one of {df.columns}"
            )
        self.buffer.append(df)
        self.buffered += df.height
        if self.buffered >= self.max_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        df = pl.concat(self.buffer, how="vertical")
        self.buffer, self.buffered = [], 0
        if self.partition_by is None:
            self._write_file(self.dir, df)
            return
        col = pl.col(self.partition_by)
        dtype = df.schema[self.partition_by]
        key = col.dt.truncate(self.every) if (self.every and dtype.is_temporal()) else col
        df = df.with_columns(key.alias("__rl_part"))
        for (value,), part in df.group_by("__rl_part", maintain_order=True):
            self._write_file(self.dir / f"{self.partition_by}={_hive_value(value)}", part.drop("__rl_part"))

    def _write_file(self, folder: Path, df: pl.DataFrame) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.{self.fmt}"
            final = folder / name
            tmp = folder / f".{name}.tmp"
            data = df.drop(self.partition_by) if self.partition_by in df.columns else df
            if self.fmt == "parquet":
                data.write_parquet(tmp)
            else:
                data.write_ndjson(tmp)
            os.replace(tmp, final)
            self.files.append(final)
        except OSError as e:
            raise SinkError(f"cannot write {folder}: {e}") from e

    def close(self) -> None:
        self.flush()


def _hive_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


class DatabaseSink:
    """A table kept equal to the query's results: rows upsert on the key `by` + window bounds
    (amend revisions and changelog +I/+U), changelog -D deletes; each emitted batch is one
    transaction. SQLite (stdlib) and DuckDB."""

    def __init__(self, uri: str, table: str, keys: list[str]) -> None:
        parsed = urlparse(uri)
        self.kind = parsed.scheme
        if not table.replace("_", "").isalnum():
            raise ConfigError(f"table name {table!r} must be letters, digits and underscores")
        self.table = table
        self.keys = keys
        # As SQLAlchemy: sqlite:///relative.db, sqlite:////absolute/path.db.
        rest = uri.split("://", 1)[1] if "://" in uri else ""
        path = rest[1:] if rest.startswith("/") else rest
        try:
            if self.kind == "sqlite":
                self.con = sqlite3.connect(path or ":memory:")
            elif self.kind == "duckdb":
                import duckdb

                self.con = duckdb.connect(path or ":memory:")
            else:
                raise ConfigError(
                    f"unsupported database URI {uri!r}; use sqlite:///path.db or duckdb:///path.duckdb"
                )
        except (sqlite3.Error, OSError) as e:
            raise SinkError(f"cannot open {uri}: {e}") from e
        self.columns: list[str] | None = None

    def _create(self, df: pl.DataFrame) -> None:
        value_cols = [c for c in df.columns if c not in ("revision", "op")]
        self.columns = value_cols
        types = {c: _sql_type(self.kind, df.schema[c]) for c in value_cols}
        cols = ", ".join(f'"{c}" {types[c]}' for c in value_cols)
        pk = ", ".join(f'"{c}"' for c in self.keys)
        self.con.execute(f'CREATE TABLE IF NOT EXISTS "{self.table}" ({cols}, PRIMARY KEY ({pk}))')

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        if self.columns is None:
            self._create(df)
        assert self.columns is not None
        ops = df["op"].to_list() if "op" in df.columns else ["+U"] * df.height
        rows = _rows(self.kind, df.select(self.columns))
        cols = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in self.columns if c not in self.keys)
        key_idx = [self.columns.index(k) for k in self.keys]
        upsert = (
            f'INSERT INTO "{self.table}" ({cols}) VALUES ({marks}) '
            f'ON CONFLICT ({", ".join(chr(34) + k + chr(34) for k in self.keys)}) DO UPDATE SET {updates}'
            if updates else f'INSERT OR IGNORE INTO "{self.table}" ({cols}) VALUES ({marks})'
        )
        delete = f'DELETE FROM "{self.table}" WHERE ' + " AND ".join(f'"{k}" = ?' for k in self.keys)
        try:
            self.con.execute("BEGIN")
            for op, row in zip(ops, rows):
                if op in ("+I", "+U"):
                    self.con.execute(upsert, row)
                elif op in ("-D", "-U"):
                    # -U retracts the row as it was (a session's bounds may change); its +U
                    # follows in the same transaction.
                    self.con.execute(delete, [row[i] for i in key_idx])
            self.con.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - any driver error is a sink error
            try:
                self.con.execute("ROLLBACK")
            except Exception:  # noqa: BLE001, S110
                pass
            raise SinkError(f"cannot write to {self.kind} table {self.table!r}: {e}") from e

    def close(self) -> None:
        self.con.close()


def _sql_type(kind: str, dtype: pl.DataType) -> str:
    if dtype.is_integer() or dtype == pl.Boolean:
        return "BIGINT" if kind == "duckdb" else "INTEGER"
    if dtype.is_float():
        return "DOUBLE" if kind == "duckdb" else "REAL"
    if isinstance(dtype, pl.Datetime) and kind == "duckdb":
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    return "VARCHAR" if kind == "duckdb" else "TEXT"


def _rows(kind: str, df: pl.DataFrame) -> list[tuple]:
    conv = []
    for c, t in df.schema.items():
        if isinstance(t, pl.Datetime) and kind == "sqlite":
            conv.append(pl.col(c).dt.to_string("%Y-%m-%dT%H:%M:%S%.f"))
        elif isinstance(t, (pl.List, pl.Struct)):
            conv.append(pl.col(c).map_elements(lambda v: json.dumps(v, default=str), return_dtype=pl.String))
        else:
            conv.append(pl.col(c))
    return df.select(conv).rows()


def run_into(query: Any, sink: Any, progress: bool | None) -> Any:
    """Runs `query`, writing every emitted frame to `sink`; returns the Run (without output)."""
    from rillet._stream import Run

    ex = query._execution(progress)
    try:
        for frame in ex.frames():
            sink.write(ex.step(frame))
        sink.write(ex.finish())
        sink.close()
    finally:
        ex.close()
    return Run(pl.DataFrame(), ex.late_frame(), ex.rejected_frame(), ex.metrics())


class CallbackSink:
    """Calls a function with each emitted DataFrame."""

    def __init__(self, fn: Callable[[pl.DataFrame], Any]) -> None:
        if not callable(fn):
            raise ConfigError(f"for_each takes a function of one DataFrame, got {fn!r}")
        self.fn = fn

    def write(self, df: pl.DataFrame) -> None:
        if df.height:
            self.fn(df)

    def close(self) -> None:
        pass
