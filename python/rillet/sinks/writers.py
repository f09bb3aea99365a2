"""Sinks: deliver a query's results while it runs (Firehose-style files, databases with
upserts for amendments, callbacks)."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import itertools
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import polars as pl

from rillet import _clock
from rillet._errors import ConfigError, SinkError
from rillet._time import DurationLike, wall_ms
from rillet.runtime.checkpoint import fsync_dir

#: How long to wait for a PostgreSQL server before giving up, unless the URI says otherwise.
POSTGRES_CONNECT_TIMEOUT_S = 10


class Sink(Protocol):
    """Where a running query's emitted frames go."""

    def write(self, df: pl.DataFrame) -> None:
        """Takes one emitted frame (empty while a live source is quiet)."""

    def close(self, completed: bool) -> None:
        """Releases the sink; `completed` is False when the run failed part way."""


def run_into(query: Any, sink: Sink, progress: bool | None, checkpoint: Any = None,
             checkpoint_every: Any = None) -> Any:
    """Runs `query`, writing every emitted frame to `sink`; returns the Run (without output).

    Ctrl-C is held back while a batch is processed and written (a file or a transaction is
    never left half done), but not while a callback runs (user code, which may block); it
    closes the source, lets the sink write what it buffered (`close(completed=False)`; Ctrl-C
    is held back while it does) and raises `rl.Interrupted` (its run's output: a batch emitted
    but not delivered, if any)."""
    from rillet._interrupt import DeferInterrupt, Interrupted
    from rillet.runtime.driver import Driver

    driver = Driver([query], progress, keep=False, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, sinks=[sink])
    hold_writes = not getattr(sink, "runs_user_code", False)
    completed = False

    def write(outs: list[pl.DataFrame]) -> None:
        if outs[0].width:
            sink.write(outs[0])

    batches = driver.batches(deliver=write if hold_writes else None)
    interrupted: Interrupted | None = None
    try:
        for outs in batches:
            if not hold_writes:
                write(outs)  # a callback: Ctrl-C reaches the user's function at once
        completed = True
    except Interrupted as stopped:
        interrupted = stopped
    except KeyboardInterrupt:  # in the user's function
        batches.close()
        interrupted = Interrupted(driver.so_far()[0])
    finally:
        batches.close()
        # Held back too: the sink writes what it buffered in full (a Parquet --output, a
        # FileSink's last files), rather than losing it to a Ctrl-C in the middle. The source
        # was closed first (files, sockets and consumers let go before the sink finishes).
        with DeferInterrupt() as closing:
            sink.close(completed)
    try:
        closing.raise_pending()
    except KeyboardInterrupt:
        interrupted = interrupted or Interrupted(driver.so_far()[0])
    if interrupted is not None:
        raise interrupted from None
    driver.flow.warn_losses()
    return driver.flow.runs([pl.DataFrame()])[0]


class CallbackSink:
    """Calls a function with each emitted DataFrame."""

    runs_user_code = True  # Ctrl-C reaches the function at once (see run_into)

    def __init__(self, fn: Callable[[pl.DataFrame], Any]) -> None:
        if not callable(fn):
            raise ConfigError(f"for_each takes a function of one DataFrame, got {fn!r}")
        self.fn = fn

    def write(self, df: pl.DataFrame) -> None:
        if df.height:
            self.fn(df)

    def describe(self) -> str:
        return "for_each"

    def close(self, completed: bool) -> None:
        pass


class FileSink:
    """Hive-partitioned files, each written in a staging folder beside the dataset and renamed
    into it when complete, so a reader never sees half a file (nor a temporary one). As
    Firehose's buffering hints, rows are buffered until `max_rows` are waiting or the oldest
    has waited `max_delay` of wall-clock time, then written per partition.

    Every file keeps all the output's columns, the partition column included; the partition
    folders are named after a derived column that no output column has (see
    `partition_folder_name`), so a reader's hive column never replaces a value in the files."""

    def __init__(self, directory: str | os.PathLike, fmt: str, partition_by: str | None,
                 every: str | None, max_rows: int, max_delay: DurationLike | None) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigError(f"max_rows must be a positive integer, got {max_rows!r}")
        self.max_delay_ms = None if max_delay is None else wall_ms(max_delay, "max_delay")
        if self.max_delay_ms is not None and self.max_delay_ms < 0:
            raise ConfigError(
                f"max_delay={max_delay!r} is negative; give a duration such as '60s', or None to "
                "write only when max_rows are buffered"
            )
        self.dir = Path(directory)
        self.fmt = fmt
        self.partition_by = partition_by
        self.every = every
        self.max_rows = max_rows
        self.buffer: list[pl.DataFrame] = []
        self.buffered = 0
        self.oldest_ms: int | None = None  # wall-clock time the oldest buffered row arrived
        self.files: list[Path] = []
        self.write_failed = False
        self.folder_column: str | None = None  # named when the first frame shows the columns
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(f"cannot create the output folder {self.dir}: {e}") from e
        self.staging = _Staging(self.dir)
        # A checkpointed run's files (see recover): staged in a folder of the run's, renamed
        # in when the checkpoint that lists them is saved.
        self.epochs: Path | None = None
        self.staged: list[tuple[Path, Path]] = []

    def describe(self) -> str:
        return f"to_{self.fmt}({str(self.dir)!r}, partition_by={self.partition_by!r}, every={self.every!r})"

    # -- a checkpointed run: files committed per epoch ---------------------------------------
    def recover(self, run_id: str, epoch: int, pending: bytes | None) -> None:
        """At the start of a checkpointed run: commits what the checkpoint resumed from lists
        (again: a file already in place is passed over), and removes what was staged after it."""
        self.epochs = self.staging.named(f"epochs-{run_id}")
        if pending:
            self.commit(run_id, epoch, pending, lambda: None)
        for left in self.epochs.iterdir():
            left.unlink(missing_ok=True)

    def prepare(self, run_id: str, epoch: int) -> bytes:
        """Writes what is buffered and makes the epoch's staged files durable; returns their
        list (staged name, path in the dataset)."""
        self.flush()
        for staged, _ in self.staged:
            with open(staged, "rb") as f:
                os.fsync(f.fileno())
        if self.epochs is not None:
            fsync_dir(self.epochs)
        listed = [[p.name, str(final.relative_to(self.dir))] for p, final in self.staged]
        self.staged = []
        return json.dumps(listed).encode()

    def commit(self, run_id: str, epoch: int, pending: bytes | None, mid: Callable[[], None]) -> None:
        """Renames the epoch's staged files into the dataset (those not there yet)."""
        assert self.epochs is not None
        folders = set()
        for n, (name, rel) in enumerate(json.loads(pending or b"[]")):
            staged, final = self.epochs / name, self.dir / rel
            if staged.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
                folders.add(final.parent)
            if final not in self.files:
                self.files.append(final)
            if n == 0:
                mid()
        for folder in folders:
            fsync_dir(folder)

    def write(self, df: pl.DataFrame) -> None:
        if df.height:
            if self.partition_by is not None and self.partition_by not in df.columns:
                raise SinkError(
                    f"partition_by={self.partition_by!r} is not an output column; choose one of {df.columns}"
                )
            if self.partition_by is not None and self.folder_column is None:
                self.folder_column = partition_folder_name(
                    self.partition_by, self._truncates(df.schema[self.partition_by]), self.every, df.columns)
            self.buffer.append(df)
            self.buffered += df.height
            if self.oldest_ms is None:
                self.oldest_ms = _clock.now_ms()
        # Also on empty frames: a live source sends them while quiet, so buffered rows still
        # go out after max_delay.
        if self.buffered >= self.max_rows or self._waited_max_delay():
            self.flush()

    def _truncates(self, dtype: pl.DataType) -> bool:
        return bool(self.every) and dtype.is_temporal()

    def _waited_max_delay(self) -> bool:
        if self.max_delay_ms is None or self.oldest_ms is None:
            return False
        return _clock.now_ms() - self.oldest_ms >= self.max_delay_ms

    def flush(self) -> None:
        """Writes the buffered rows now."""
        if not self.buffer:
            return
        df = pl.concat(self.buffer, how="vertical")
        self.buffer, self.buffered, self.oldest_ms = [], 0, None
        if self.partition_by is None or self.folder_column is None:
            self._write_file(self.dir, df)
            return
        col = pl.col(self.partition_by)
        dtype = df.schema[self.partition_by]
        key = col.dt.truncate(self.every) if self.every is not None and self._truncates(dtype) else col
        if isinstance(dtype, pl.Datetime):
            # The folder text is made by polars, not from Python datetimes, which stop at
            # year 9999 (the engine's times do not).
            base = key.dt.strftime("%Y-%m-%d %H:%M:%S")
            key = pl.when(key.dt.nanosecond() % 1000 != 0).then(base + key.dt.strftime("%.9f")) \
                .when(key.dt.microsecond() != 0).then(base + key.dt.strftime("%.6f")).otherwise(base)
        df = df.with_columns(key.alias("__rl_part"))
        for (value,), part in df.group_by("__rl_part", maintain_order=True):
            folder = hive_folder(self.folder_column, value)
            if len(os.fsencode(folder)) > _NAME_MAX:
                raise SinkError(
                    f"cannot write {self.dir}: the partition value {_shorten(value)} of "
                    f"{self.partition_by!r} makes a folder name of {len(os.fsencode(folder))} "
                    f"bytes, and file systems allow {_NAME_MAX}; partition by a column of "
                    "shorter values (or partition_by=None)"
                )
            self._write_file(self.dir / folder, part.drop("__rl_part"))

    def _write_file(self, folder: Path, df: pl.DataFrame) -> None:
        self.write_failed = True  # until this file is in place
        tmp: Path | None = None
        try:
            name = f"part-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.{self.fmt}"
            tmp = self.staging.path(name)
            if self.fmt == "parquet":
                df.write_parquet(tmp)
            else:
                df.write_ndjson(tmp)
            final = folder / name
            if self.epochs is not None:
                # Checkpointed: the file waits in the staging folder for its epoch's commit.
                staged = self.epochs / name
                os.replace(tmp, staged)
                self.staged.append((staged, final))
                self.write_failed = False
                return
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
            self.files.append(final)
            self.write_failed = False
        except BaseException as e:
            if tmp is not None:
                with contextlib.suppress(OSError):  # no half-written file left behind
                    tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise SinkError(f"cannot write {folder}: {e}") from e
            raise

    def close(self, completed: bool) -> None:
        # Rows already emitted are written even when the run failed or was interrupted (a
        # source error, Ctrl-C); only a failure to write files leaves them unwritten. A
        # checkpointed run's rows after its last checkpoint are not: the run that resumes
        # from it emits them again.
        try:
            if self.epochs is not None:
                self.buffer, self.buffered = [], 0
                for staged, _ in self.staged:
                    staged.unlink(missing_ok=True)
                self.staged = []
                with contextlib.suppress(OSError):  # kept while it holds anything
                    self.epochs.rmdir()
                    self.epochs.parent.rmdir()
            elif not self.write_failed:
                self.flush()
        finally:
            self.staging.remove()


#: The longest file or folder name most file systems allow, in bytes.
_NAME_MAX = 255

#: What Hive writes for a null (or empty) partition value, and what hive readers read as null.
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"

#: The characters Hive percent-encodes in partition folder names (FileUtils.escapePathName):
#: control characters, path separators, ':' (Windows), '=' and '%' (the encoding itself).
_HIVE_ESCAPED = frozenset([*map(chr, range(0x20)), '"', "#", "%", "'", "*", "/", ":", "=", "?",
                           "\\", "\x7f", "{", "[", "]", "^"])


def hive_escape(text: str) -> str:
    """`text` with the characters Hive escapes as %XX, so it is one folder name: no '/',
    '\\' or NUL can make a path, and readers (polars, DuckDB, Spark) decode it back."""
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPED else c for c in text)


def hive_folder(column: str, value: Any) -> str:
    """The hive folder `column=value`, both escaped; a null or empty value is Hive's default
    partition (read back as null)."""
    text = None if value is None else _hive_value(value)
    return f"{hive_escape(column)}={hive_escape(text) if text else HIVE_DEFAULT_PARTITION}"


def partition_folder_name(partition_by: str, truncated: bool, every: str | None,
                          columns: list[str]) -> str:
    """The hive column of the partition folders: `window_start_1h` for `window_start`
    truncated to `every="1h"`, `svc_part` for a column partitioned by its own values; never
    the name of an output column (underscores are added if it would be), as a hive reader
    takes a folder's value over the file's column of the same name."""
    name = f"{partition_by}_{every}" if truncated else f"{partition_by}_part"
    while name in columns:
        name += "_"
    return name


def _hive_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        # Spark's and Hive's timestamp text, in the column's own zone (as the value shows).
        return value.strftime("%Y-%m-%d %H:%M:%S" + (".%f" if value.microsecond else ""))
    return str(value)


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Staging:
    """Where a FileSink writes each file before renaming it into the dataset: a folder per
    sink inside `<dataset>.rillet-staging`, beside the dataset (the same file system, so the
    rename is atomic, and outside it, so no reader of the dataset sees a partial file). A sink
    killed mid-write leaves its folder behind; the next sink on the dataset removes the ones
    of processes no longer running on this machine."""

    SUFFIX = ".rillet-staging"

    def __init__(self, dataset: Path) -> None:
        absolute = dataset.resolve()
        self.root = absolute.with_name(absolute.name + self.SUFFIX) if absolute.name else None
        self.own = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.folder: Path | None = None
        self.dataset = absolute
        # Leftovers of killed sinks go at the start, even if this run writes nothing.
        _remove_old_temporary_files(absolute)
        for root in self._roots():
            with contextlib.suppress(OSError):
                self._remove_stale(root)
                root.rmdir()  # only if nothing else is staged there

    def path(self, name: str) -> Path:
        if self.folder is None:
            self.folder = self._create()
        return self.folder / name

    def _roots(self) -> list[Path]:
        """Where staging folders go: beside the dataset, else (when its parent is not writable)
        in the system's temporary folder, if that is on the dataset's file system (a rename
        across file systems would copy, not be atomic)."""
        tmp = Path(tempfile.gettempdir()) / f"rillet-staging-{hashlib.sha1(bytes(self.dataset)).hexdigest()[:12]}"
        return [self.root, tmp] if self.root is not None else [tmp]

    def named(self, name: str) -> Path:
        """A staging folder of this name that outlives the process (a checkpointed run's)."""
        return self._create(name)

    def _create(self, name: str | None = None) -> Path:
        errors = []
        for root in self._roots():
            try:
                root.mkdir(exist_ok=True)
                if root.stat().st_dev != self.dataset.stat().st_dev:
                    errors.append(f"{root} is on another file system")
                    continue
                self._remove_stale(root)
                folder = root / (name or self.own)
                folder.mkdir(exist_ok=name is not None)
                return folder
            except OSError as e:
                errors.append(str(e))
        raise SinkError(
            f"cannot write {self.dataset}: files are written in a staging folder beside it, then "
            f"renamed in, and none could be created ({'; '.join(errors)}); make the folder that "
            f"holds {self.dataset.name!r} writable"
        )

    @staticmethod
    def _remove_stale(root: Path) -> None:
        """Removes the staging folders of sinks killed on this machine (their process is gone)."""
        host = socket.gethostname()
        for entry in root.iterdir():
            owner, _, rest = entry.name.rpartition("-")[0].rpartition("-")
            if owner != host or not rest.isdigit() or _process_alive(int(rest)):
                continue
            shutil.rmtree(entry, ignore_errors=True)

    def remove(self) -> None:
        if self.folder is None:
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # other sinks may still be writing there
            self.folder.parent.rmdir()
        self.folder = None


def _process_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill(pid, 0) would end the process there: keep every folder
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # another user's process, or no way to tell: keep its folder
    return True


def _remove_old_temporary_files(dataset: Path) -> None:
    """Removes the `.part-*.tmp` files that sinks of earlier versions, killed mid-write, left
    inside the dataset (where they break readers)."""
    with contextlib.suppress(OSError):
        for tmp in [*dataset.glob(".part-*.tmp"), *dataset.glob("*=*/.part-*.tmp")]:
            with contextlib.suppress(OSError):
                tmp.unlink()


@dataclass(frozen=True)
class _Dialect:
    """What differs between the databases DatabaseSink writes to."""

    name: str
    mark: str  # the driver's parameter placeholder
    types: dict[str, str]  # column kind (see _column_kind) -> SQL type
    # (name, part of the primary key) for each column of the table named by the one parameter;
    # no rows when there is no such table.
    columns_sql: str
    temporal_as_text: bool  # no date/time types: they go in as ISO 8601 text
    # Rows per INSERT statement. The drivers' executemany is fast for SQLite (one prepared
    # statement) and PostgreSQL (pipelined), but DuckDB runs each statement on its own, at a
    # millisecond or more a row: it gets multi-row VALUES instead.
    rows_per_insert: int


_SQLITE = _Dialect(
    "SQLite", "?",
    {"bool": "INTEGER", "int": "INTEGER", "float": "REAL", "timestamptz": "TEXT",
     "timestamp": "TEXT", "date": "TEXT", "time": "TEXT", "duration": "TEXT", "json": "TEXT",
     "text": "TEXT"},
    "SELECT name, pk > 0 FROM pragma_table_info(?)",
    temporal_as_text=True,
    rows_per_insert=1,
)
_DUCKDB = _Dialect(
    "DuckDB", "?",
    {"bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE", "timestamptz": "TIMESTAMPTZ",
     "timestamp": "TIMESTAMP", "date": "DATE", "time": "TIME", "duration": "INTERVAL",
     "json": "TEXT", "text": "TEXT"},
    "SELECT c.column_name, list_contains(coalesce(k.constraint_column_names, []), c.column_name) "
    "FROM duckdb_columns() c LEFT JOIN duckdb_constraints() k "
    "ON k.table_oid = c.table_oid AND k.constraint_type = 'PRIMARY KEY' "
    "WHERE c.table_name = ? AND c.schema_name = current_schema() "
    "AND c.database_name = current_database() ORDER BY c.column_index",
    temporal_as_text=False,
    rows_per_insert=500,
)
_POSTGRES = _Dialect(
    "PostgreSQL", "%s",
    {"bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE PRECISION", "timestamptz": "TIMESTAMPTZ",
     "timestamp": "TIMESTAMP", "date": "DATE", "time": "TIME", "duration": "INTERVAL",
     "json": "JSONB", "text": "TEXT"},
    "SELECT a.attname, COALESCE(a.attnum = ANY(i.indkey), false) "
    "FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary "
    "WHERE a.attrelid = to_regclass(quote_ident(%s)) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum",
    temporal_as_text=False,
    rows_per_insert=1,
)
_DIALECTS = {"sqlite": _SQLITE, "duckdb": _DUCKDB, "postgresql": _POSTGRES, "postgres": _POSTGRES}


#: The table where a checkpointed run's database sinks record the last epoch each wrote.
EPOCH_TABLE = "rillet_sink_epochs"


class DatabaseSink:
    """A table kept equal to the query's results: rows upsert on the key `by` + window bounds
    (amend revisions and changelog +I/+U), changelog -U/-D delete. Each emitted batch is one
    transaction: one executemany of deletes, one of upserts. SQLite (stdlib), DuckDB and
    PostgreSQL (psycopg 3)."""

    def __init__(self, uri: str, table: str, keys: list[str]) -> None:
        if not table.replace("_", "").isalnum():
            raise ConfigError(f"table name {table!r} must be letters, digits and underscores")
        scheme = urlparse(uri).scheme
        if scheme not in _DIALECTS or "://" not in uri:
            raise ConfigError(
                f"unsupported database URI {uri!r}; use sqlite:///path.db, duckdb:///path.duckdb "
                "or postgresql://user:password@host:5432/database"
            )
        self.dialect = _DIALECTS[scheme]
        self.table = table
        self.keys = keys
        self.columns: list[str] | None = None
        self.key_idx: list[int] = []
        self.delete = ""
        self.sink_id: str | None = None  # a checkpointed run's name for this sink (see recover)
        self.epoch_rows: list[pl.DataFrame] = []
        if self.dialect is _POSTGRES:
            self.where, self.con = _connect_postgres(uri, table)
            self.db: Any = self.con.cursor()
        else:
            # As SQLAlchemy: sqlite:///relative.db, sqlite:////absolute/path.db.
            rest = uri.split("://", 1)[1]
            path = rest.removeprefix("/") or ":memory:"
            self.where = path
            self.con = self.db = _connect_file(self.dialect, path)

    def _prepare(self, df: pl.DataFrame) -> None:
        """Creates the table, or checks the one there fits; builds the statements."""
        columns = [c for c in df.columns if c not in ("revision", "op")]
        try:
            existing = self.db.execute(self.dialect.columns_sql, [self.table]).fetchall()
            if existing:
                self._check_table(existing, columns)
            else:
                types = self.dialect.types
                defs = ", ".join(f"{_ident(c)} {types[_column_kind(df.schema[c])]}" for c in columns)
                pk = ", ".join(_ident(k) for k in self.keys)
                self.db.execute(f"CREATE TABLE IF NOT EXISTS {_ident(self.table)} ({defs}, PRIMARY KEY ({pk}))")
        except SinkError:
            raise
        except Exception as e:
            raise SinkError(
                f"cannot create or inspect {self.dialect.name} table {self.table!r} in {self.where}: {e}"
            ) from e
        self.columns = columns
        self.key_idx = [columns.index(k) for k in self.keys]
        self.delete = f"DELETE FROM {_ident(self.table)} WHERE " + " AND ".join(
            f"{_ident(k)} = {self.dialect.mark}" for k in self.keys
        )

    def _upsert(self, n: int) -> str:
        """INSERT ... ON CONFLICT ... DO UPDATE for `n` rows (of distinct keys: PostgreSQL and
        DuckDB refuse to update one row twice in a statement)."""
        assert self.columns is not None
        row = "(" + ", ".join(self.dialect.mark for _ in self.columns) + ")"
        updates = ", ".join(f"{_ident(c)} = excluded.{_ident(c)}" for c in self.columns if c not in self.keys)
        return (
            f"INSERT INTO {_ident(self.table)} ({', '.join(_ident(c) for c in self.columns)}) "
            f"VALUES {', '.join([row] * n)} ON CONFLICT ({', '.join(_ident(k) for k in self.keys)}) "
            + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")
        )

    def _check_table(self, existing: list[tuple[str, bool]], columns: list[str]) -> None:
        names = [name for name, _ in existing]
        key = [name for name, in_key in existing if in_key]
        missing = [c for c in columns if c not in names]
        if missing or set(key) != set(self.keys):
            raise SinkError(
                f"{self.dialect.name} table {self.table!r} in {self.where} already exists and does "
                f"not fit this query: it has columns {names} with primary key {key}, but the query "
                f"writes columns {columns} with key {self.keys}"
                + (f" (missing: {missing})" if missing else "")
                + "; drop or rename that table, or write to another table"
            )

    def describe(self) -> str:
        return f"to_database({self.dialect.name} {self.where!r}, {self.table!r})"

    # -- a checkpointed run: one transaction per epoch, with the epoch's number ---------------
    def recover(self, run_id: str, epoch: int, pending: bytes | None) -> None:
        """At the start of a checkpointed run: writes the rows of the checkpoint it resumes
        from, unless the table already has them (its epoch is recorded)."""
        self.sink_id = f"{run_id}/{self.table}"
        self.epoch_rows = []
        if pending:
            self.commit(run_id, epoch, pending, lambda: None)

    def prepare(self, run_id: str, epoch: int) -> bytes:
        """The epoch's rows (Arrow IPC), saved in the checkpoint until committed."""
        if not self.epoch_rows:
            return b""
        buf = io.BytesIO()
        pl.concat(self.epoch_rows, how="vertical").write_ipc(buf)
        self.epoch_rows = []
        return buf.getvalue()

    def commit(self, run_id: str, epoch: int, pending: bytes | None, mid: Callable[[], None]) -> None:
        """Writes the epoch's rows and its number in one transaction, unless done before."""
        if not pending:
            return
        df = pl.read_ipc(io.BytesIO(pending))
        if self.columns is None:
            self._prepare(df)
        mark = self.dialect.mark
        try:
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {EPOCH_TABLE} (sink TEXT PRIMARY KEY, epoch BIGINT NOT NULL)")
        except Exception as e:
            raise SinkError(f"cannot create the table {EPOCH_TABLE} in {self.where}, where a checkpointed run "
                            f"records the epochs it wrote: {e}") from e

        def record() -> bool:
            done = self.db.execute(f"SELECT epoch FROM {EPOCH_TABLE} WHERE sink = {mark}", [self.sink_id]).fetchone()
            if done is not None and done[0] >= epoch:
                return False
            mid()
            self.db.execute(
                f"INSERT INTO {EPOCH_TABLE} (sink, epoch) VALUES ({mark}, {mark}) "
                "ON CONFLICT (sink) DO UPDATE SET epoch = excluded.epoch", [self.sink_id, epoch])
            return True

        self._apply(df, record)

    def write(self, df: pl.DataFrame) -> None:
        if df.height == 0:
            return
        if self.columns is None:
            self._prepare(df)
        self._check_keys(df)
        if self.sink_id is not None:
            self.epoch_rows.append(df)  # written when the epoch's checkpoint is saved
            return
        self._apply(df, None)

    def _check_keys(self, df: pl.DataFrame) -> None:
        for k in self.keys:
            if df[k].null_count():
                raise SinkError(
                    f"cannot write to {self.dialect.name} table {self.table!r}: the key column "
                    f"{k!r} has nulls, and a primary key cannot hold null; fill them before the "
                    f"window, e.g. .with_columns(pl.col({k!r}).fill_null('(none)'))"
                )

    def _apply(self, df: pl.DataFrame, also: Callable[[], bool] | None) -> None:
        """The net changes of ``df`` in one transaction, with ``also`` (which may say the
        rows are written already: nothing is then)."""
        assert self.columns is not None
        ops = df["op"].to_list() if "op" in df.columns else ["+U"] * df.height
        deletes, upserts = _net_changes(ops, _rows(self.dialect, df.select(self.columns)), self.key_idx)
        try:
            self.db.execute("BEGIN")
            if also is not None and not also():
                self.db.execute("ROLLBACK")
                return
            if deletes:
                self.db.executemany(self.delete, deletes)
            self._send_upserts(upserts)
            self.db.execute("COMMIT")
        except Exception as e:
            try:
                self.db.execute("ROLLBACK")
            except Exception:
                pass
            raise SinkError(
                f"cannot write to {self.dialect.name} table {self.table!r} in {self.where}: {e}; "
                "the batch was rolled back, so the table holds the results up to the batch before"
            ) from e

    def _send_upserts(self, rows: list[tuple]) -> None:
        """One executemany of `rows_per_insert` rows a statement, then one statement for the
        rest."""
        per = self.dialect.rows_per_insert
        whole = len(rows) - len(rows) % per
        flat = itertools.chain.from_iterable
        if whole:
            chunks = [tuple(flat(rows[i:i + per])) for i in range(0, whole, per)]
            self.db.executemany(self._upsert(per), chunks)
        if whole < len(rows):
            self.db.execute(self._upsert(len(rows) - whole), tuple(flat(rows[whole:])))

    def close(self, completed: bool) -> None:
        self.con.close()


def _net_changes(ops: list[str], rows: list[tuple], key_idx: list[int]) -> tuple[list[tuple], list[tuple]]:
    """What a batch of changelog rows does to the table: the keys to delete and the rows to
    upsert, each key once. An upsert sets a key's whole row and a delete removes it, so only
    the last change to each key counts (a -U retracts a row before its +U, a session merged
    away gets +U then -D); the two lists then touch different keys, in either order."""
    last: dict[tuple, tuple[bool, tuple]] = {}
    for op, row in zip(ops, rows):
        last[tuple(row[i] for i in key_idx)] = (op in ("-U", "-D"), row)
    deletes = [key for key, (retract, _) in last.items() if retract]
    upserts = [row for retract, row in last.values() if not retract]
    return deletes, upserts


def _connect_file(dialect: _Dialect, path: str) -> Any:
    try:
        if dialect is _SQLITE:
            # isolation_level=None: transactions are the explicit BEGIN/COMMIT of each batch.
            return sqlite3.connect(path, isolation_level=None)
        try:
            import duckdb
        except ImportError as e:
            raise ConfigError(
                "writing to DuckDB needs the duckdb package: pip install 'rillet[duckdb]'"
            ) from e
        return duckdb.connect(path)
    except ConfigError:
        raise
    except Exception as e:
        raise SinkError(f"cannot open the {dialect.name} database {path}: {e}") from e


def _connect_postgres(uri: str, table: str) -> tuple[str, Any]:
    """Connects in autocommit mode (each batch opens its own transaction); returns where the
    database is, for messages (without the password), and the connection."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo
    except ImportError as e:
        raise ConfigError("writing to PostgreSQL needs psycopg 3: pip install 'rillet[postgres]'") from e
    try:
        params = conninfo_to_dict(uri)
    except psycopg.Error as e:
        raise ConfigError(
            f"cannot read the PostgreSQL URI: {e}; write postgresql://user:password@host:5432/database"
        ) from e
    host, port = params.get("host") or "localhost", params.get("port") or 5432
    where = f"database {params.get('dbname') or params.get('user') or '(default)'!r} at {host}:{port}"
    if "connect_timeout" not in params:
        uri = make_conninfo(uri, connect_timeout=POSTGRES_CONNECT_TIMEOUT_S)
    try:
        return where, psycopg.connect(uri, autocommit=True)
    except psycopg.Error as e:
        raise SinkError(
            f"cannot connect to the PostgreSQL {where} to write table {table!r}: {e}. Check that the server "
            f"is running and accepts connections at {host}:{port}, and the user, password and "
            "database in the URI"
        ) from e


def _ident(name: str) -> str:
    """A quoted SQL identifier (the same in all three databases)."""
    return '"' + name.replace('"', '""') + '"'


def _column_kind(dtype: pl.DataType) -> str:
    """The key of a polars type in `_Dialect.types`."""
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Time:
        return "time"
    if isinstance(dtype, pl.Duration):
        return "duration"
    if isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
        return "json"
    return "text"


def _rows(dialect: _Dialect, df: pl.DataFrame) -> list[tuple]:
    """Rows as the driver takes them: lists and structs as JSON text (JSONB parses it), and for
    SQLite, dates, times and durations as ISO 8601 text."""
    conv = []
    for c, t in df.schema.items():
        col = pl.col(c)
        if dialect.temporal_as_text and isinstance(t, pl.Datetime):
            col = col.dt.to_string("%Y-%m-%dT%H:%M:%S%.f")
        elif dialect.temporal_as_text and t.is_temporal():
            col = col.dt.to_string("iso")
        conv.append(col)
    rows = df.select(conv).rows()
    nested = [i for i, t in enumerate(df.dtypes) if _column_kind(t) == "json"]
    if not nested:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for i in nested:
            if values[i] is not None:
                values[i] = json.dumps(values[i], default=str)
        out.append(tuple(values))
    return out
