"""Checkpointed runs: at consistent points between micro-batches the driver saves where each
source is, every operator's state, the rows the run keeps and each sink's pending output;
a run given the same checkpoint path resumes from the newest checkpoint, and its sinks end
up holding exactly what an uninterrupted run writes (docs/durability.md).

One epoch is the work between two checkpoints. Saving epoch ``e``:

1. the sinks *prepare* it: a file sink writes what it buffered to its staging folder (never
   the dataset) and fsyncs it; a database sink hands over the rows of the epoch;
2. the rows the run keeps (output for ``run``, late and rejected rows) since the epoch before
   are written as a segment file, ``seg-<e>.rlck``;
3. the checkpoint ``chk-<e>.rlck`` is written (temp, fsync, rename, fsync directory), holding
   the source positions, the state of every operator and join, and each sink's pending list;
4. the sinks *commit* it: staged files are renamed into the dataset, a database sink writes
   the epoch's rows and the epoch number in one transaction.

A crash before 3 leaves the previous checkpoint: the epoch is replayed from its positions and
what was staged for it is removed. A crash after 3 is resumed by committing the checkpoint's
pending list again, which does nothing for what was already committed (a file already in
place, a database whose recorded epoch is ``e``).

``RILLET_CRASH_AT=<epoch>:<phase>`` kills the process with SIGKILL at a named point (the
crash tests): ``mid_epoch`` (a batch of the epoch processed and delivered, not saved),
``before_rename`` (the checkpoint file durable under its temporary name), ``before_commit``
(the checkpoint in place, the sinks not committed), ``mid_commit`` (a sink part way through
committing) and ``after_commit``.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from rillet._codec import decode_position, encode_position, frame, ipc
from rillet._errors import ConfigError, SinkError
from rillet._time import wall_ms
from rillet.runtime import checkpoint as ck

#: The phases ``RILLET_CRASH_AT`` names.
PHASES = ("mid_epoch", "before_rename", "before_commit", "mid_commit", "after_commit")

_SEGMENT = "seg-{:012d}.rlck"


def crash_point(epoch: int, phase: str) -> None:
    """Kills this process (SIGKILL: no cleanup runs) when ``RILLET_CRASH_AT`` names this epoch
    and phase."""
    at = os.environ.get("RILLET_CRASH_AT")
    if at and at == f"{epoch}:{phase}":
        os.kill(os.getpid(), signal.SIGKILL)


class Every:
    """When to checkpoint: after ``rows`` input rows, or ``seconds`` of wall-clock time,
    whichever comes first (at the next boundary between micro-batches)."""

    def __init__(self, value: Any) -> None:
        self.rows: int | None = None
        self.seconds: float | None = None
        if isinstance(value, bool) or value is None:
            raise ConfigError(f"checkpoint_every={value!r}: give a duration such as '30s' or a number of input rows")
        if isinstance(value, int):
            if value < 1:
                raise ConfigError(f"checkpoint_every={value!r}: a number of input rows must be positive")
            self.rows = value
        elif isinstance(value, (str, dt.timedelta)):
            ms = wall_ms(value, "checkpoint_every")
            if ms <= 0:
                raise ConfigError(f"checkpoint_every={value!r}: give a positive duration such as '30s'")
            self.seconds = ms / 1000
        else:
            raise ConfigError(
                f"checkpoint_every={value!r}: give a duration such as '30s' (wall-clock time) or an "
                "int, a number of input rows")










class Durable:
    """The checkpoints of one run: resuming from the newest, and saving one per epoch."""

    def __init__(self, path: Any, every: Any, flow: Any, sinks: Sequence[Any], keep_outputs: bool) -> None:
        """``keep_outputs``: the run keeps its output (run, collect, start), which the
        checkpoints then hold too; else it goes to ``sinks``."""
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigError(f"checkpoint={path!r}: give a directory path for the run's checkpoints")
        self.every = Every("30s" if every is None else every)
        try:
            self.store = ck.CheckpointStore(path)
        except OSError as e:
            raise SinkError(f"cannot use {str(path)!r} for the run's checkpoints: {e}") from e
        self.path = Path(path)
        self.flow = flow
        self.sinks = list(sinks)
        self.keep_outputs = keep_outputs
        self.lock = _lock(self.path)
        self.fingerprint = fingerprint(flow)
        # Where the output goes is part of what must match: a run that keeps its output
        # cannot resume a checkpoint whose output went to a sink (it would lack those rows).
        self.fingerprint["delivery"] = ("the run keeps its output (run, collect or start)" if keep_outputs
                                        else " and ".join(describe(s) for s in self.sinks) or "iter")
        self.epoch = 0
        self.run_id = ""
        self.segments: list[int] = []
        self.rows_since = 0
        self.since = time.monotonic()
        self.saved_bytes = 0  # the newest checkpoint file
        self.largest = 0  # the largest checkpoint file of this run
        self.segment_bytes = 0  # the rows kept, in segments written by this run
        self.saved_seconds = 0.0
        self.saves = 0
        # How much of each list of kept rows the segments already hold.
        self.marks: dict[str, int] = {}

    # -- resuming ---------------------------------------------------------------------------
    def resume(self) -> tuple[list[Any], list[list[pl.DataFrame]]]:
        """Restores the newest checkpoint, if any: returns each source's position (None: from
        its start) and the outputs the run had kept, per query asked for."""
        kept: list[list[pl.DataFrame]] = [[] for _ in self.flow.wanted]
        positions: list[Any] = [None] * len(self.flow.sources)
        latest = self.store.latest()
        self.run_id = self._run_id()
        parts: dict[str, bytes] = {}
        if latest is not None:
            ck.check_same_query(latest.fingerprint, self.fingerprint, self.path)
            parts = latest.parts
            meta = json.loads(parts["run"])
            self.epoch = latest.epoch
            self.saves = latest.epoch  # the run's checkpoints, in every process it ran in
            self.segments = list(meta["segments"])
            positions = [decode_position(p) for p in meta["positions"]]
            self.flow.restore(meta["flow"], parts)
        # Segments of an epoch that was not saved are removed; those up to the checkpoint
        # give back the rows the run kept.
        self._clear_segments(after=self.epoch)
        lists = self._lists(kept)
        for e in self.segments:
            for name, data in ck.read(self.path / _SEGMENT.format(e)).parts.items():
                lists[name.partition(":")[0]].append(frame(data))
        self.marks = {key: len(rows) for key, rows in lists.items()}
        for k, sink in enumerate(self.sinks):
            if hasattr(sink, "recover"):
                sink.recover(self.run_id, self.epoch, parts.get(f"sink/{k}"))
        return positions, kept

    def _run_id(self) -> str:
        """This checkpoint directory's run: named once, when its first run starts (sinks key
        what they stage and record by it, so a new directory never takes an old run's). It is
        made durable by the first checkpoint's fsync of the directory: a run that dies before
        that committed nothing under its name."""
        named = self.path / "run-id"
        try:
            return named.read_text().strip()
        except FileNotFoundError:
            pass
        run_id = uuid.uuid4().hex
        tmp = named.with_name("run-id.tmp")
        with open(tmp, "w") as f:
            f.write(run_id)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, named)
        return run_id

    def _clear_segments(self, after: int) -> None:
        for p in self.path.glob("seg-*.rlck"):
            try:
                e = int(p.name[4:16])
            except ValueError:
                continue
            if e > after:
                p.unlink(missing_ok=True)

    def _lists(self, kept: Sequence[list[pl.DataFrame]]) -> dict[str, list[pl.DataFrame]]:
        """Every list of rows the run keeps, by name: the output of each query asked for
        (``kept``, when the run keeps it), late and rejected rows of each query, and of each
        join's sides."""
        out: dict[str, list[pl.DataFrame]] = {}
        if self.keep_outputs:
            out.update((f"out{i}", rows) for i, rows in enumerate(kept))
        for i, ex in enumerate(self.flow.execs):
            out[f"late{i}"] = ex.late_parts
            out[f"rej{i}"] = ex.rejected_parts
        for j, join in enumerate(self.flow.joins):
            out[f"jlate{j}l"] = join.late_parts[0]
            out[f"jlate{j}r"] = join.late_parts[1]
        return out

    # -- saving -----------------------------------------------------------------------------
    def note(self, rows: int) -> None:
        """A micro-batch of ``rows`` input rows was processed and delivered."""
        self.rows_since += rows
        crash_point(self.epoch + 1, "mid_epoch")

    def due(self) -> bool:
        if self.every.rows is not None:
            return self.rows_since >= self.every.rows
        assert self.every.seconds is not None
        return time.monotonic() - self.since >= self.every.seconds

    def save(self, kept: Sequence[list[pl.DataFrame]]) -> None:
        """Checkpoints the run as it stands (between micro-batches): see the module's doc."""
        try:
            self._save(kept)
        except OSError as e:
            raise SinkError(
                f"cannot save checkpoint {self.epoch + 1} in {str(self.path)!r}: {e}. The run stopped; "
                f"checkpoint {self.epoch} stands: make room or fix the folder, and run the query again with "
                "the same checkpoint path to resume") from e

    def _save(self, kept: Sequence[list[pl.DataFrame]]) -> None:
        started = time.perf_counter()
        epoch = self.epoch + 1
        pending = {f"sink/{k}": sink.prepare(self.run_id, epoch)
                   for k, sink in enumerate(self.sinks) if hasattr(sink, "prepare")}
        # The rows kept since the epoch before.
        seg_parts: dict[str, bytes] = {}
        for key, rows in self._lists(kept).items():
            start = self.marks.get(key, 0)
            for n, df in enumerate(rows[start:]):
                seg_parts[f"{key}:{start + n}"] = ipc(df)
            self.marks[key] = len(rows)
        segments = list(self.segments)
        if seg_parts:
            seg = self.path / _SEGMENT.format(epoch)
            # Its rename is made durable by the checkpoint's, in the same directory, before
            # anything refers to it.
            ck.write_file(seg, epoch, self.fingerprint, seg_parts, sync_dir=False)
            segments.append(epoch)
            self.segment_bytes += seg.stat().st_size
        flow_meta, parts = self.flow.snapshot()
        parts = {**parts, **pending}
        parts["run"] = json.dumps({
            "run_id": self.run_id, "segments": segments, "flow": flow_meta,
            "positions": [encode_position(p) for p in self.flow.positions],
        }).encode()
        final = self.store.save(epoch, self.fingerprint, parts,
                                before_rename=lambda: crash_point(epoch, "before_rename"))
        self.saved_bytes = final.stat().st_size
        self.largest = max(self.largest, self.saved_bytes)
        self.epoch, self.segments = epoch, segments
        crash_point(epoch, "before_commit")
        for k, sink in enumerate(self.sinks):
            if hasattr(sink, "commit"):
                sink.commit(self.run_id, epoch, pending.get(f"sink/{k}"),
                            lambda: crash_point(epoch, "mid_commit"))
        crash_point(epoch, "after_commit")
        for source, position in zip(self.flow.sources, self.flow.positions):
            # A source that also records its progress elsewhere (Kafka: the group's committed
            # offsets, for lag dashboards) does so for what the checkpoint holds.
            hook = getattr(source, "checkpointed", None)
            if callable(hook) and position is not None:
                hook(position)
        self.rows_since = 0
        self.since = time.monotonic()
        self.saves += 1
        self.saved_seconds += time.perf_counter() - started

    def close(self) -> None:
        """Lets another run use the checkpoint directory."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def metrics(self) -> dict[str, Any]:
        """What checkpointing did in this run: checkpoints saved, the epoch of the newest, the
        size of the newest and of the largest checkpoint file, the bytes of kept rows written
        to segments, and the time spent saving."""
        return {"checkpoints": self.saves, "checkpoint_epoch": self.epoch,
                "checkpoint_bytes": self.saved_bytes, "checkpoint_bytes_max": self.largest,
                "checkpoint_segment_bytes": self.segment_bytes,
                "checkpoint_seconds": round(self.saved_seconds, 6)}


def _lock(path: Path) -> Any:
    """Holds the checkpoint directory for this run: two runs saving into one directory would
    overwrite each other's checkpoints. The lock goes with the process (a killed run's too)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows
        return None
    handle = open(path / "lock", "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(
            f"the checkpoint directory {str(path)!r} is in use by another run (in this process or "
            "another); stop that run first, or give this one its own checkpoint path") from None
    return handle


def fingerprint(flow: Any) -> dict[str, str]:
    """What a resumed run must match, per query: its plan as ``explain()`` shows it (the
    source line aside: where the source is, its position says), its steps after the
    window, and the joins it reads."""
    out: dict[str, str] = {}
    for i, q in enumerate(flow.queries):
        lines = [ln for ln in q._plan.explain().splitlines() if not ln.startswith("source")]
        lines += [f"then {p.text}" for p in q._post]
        if q._columns is not None:
            lines.append(f"columns {list(q._columns)}")
        lines.append(f"flush open windows at the end {q._w._stream._flush}")
        out[f"query {i + 1}"] = "\n".join(lines)
    for j, join in enumerate(flow.joins):
        out[f"join {j + 1}"] = join.node.spec
    # What kind each source is (not where: its position says that), so a position is never
    # read as another kind's (a count of batches as a row).
    out["sources"] = "\n".join(source_kind(src) for src in flow.sources)
    return out


def source_kind(source: Any) -> str:
    """A source's kind as the fingerprint names it."""
    if isinstance(source, (pl.DataFrame, pl.LazyFrame)) or hasattr(source, "__arrow_c_stream__"):
        return "a DataFrame (or Arrow table)"
    inner = getattr(source, "source", None)
    if type(source).__name__ == "Paced":
        return f"{source_kind(inner)}, paced"
    kind = getattr(source, "kind", None)
    names = {"FileSource": f"read_{kind}", "TailFile": f"tail_{kind}", "TailDir": "tail_dir",
             "KafkaSource": "read_kafka", "KinesisSource": "read_kinesis", "CloudTrailFiles": "read_cloudtrail",
             "NexmarkSource": f"nexmark {kind}"}
    return names.get(type(source).__name__, "an iterable of frames")


def describe(sink: Any) -> str:
    """A sink as the fingerprint names it (where it delivers)."""
    own = getattr(sink, "describe", None)
    return own() if callable(own) else type(sink).__name__



