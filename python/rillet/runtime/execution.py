"""One run of one query: binding its plan on the first batch, feeding the core's operator,
gathering its output, late and rejected rows and metrics (:class:`Execution`); and what a run
produced (:class:`Run`). The driver (``rillet.runtime.driver``) steps executions."""
from __future__ import annotations

import time as _time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rillet import _clock
from rillet._errors import SchemaError
from rillet._progress import Progress
from rillet._time import instant_to_python, text_instants, time_unit_of, wall_ms
from rillet.plan import plan as _plan
from rillet.plan.aggregates import cast_back
from rillet.runtime.detect import DetectStep
from rillet.runtime.join import JoinStep
from rillet.sources.base import known_rows

Ops = tuple[tuple[str, tuple, dict], ...]


#: The steps that keep state from batch to batch: each run makes its own.
_STEPS: dict[str, Any] = {"detect": DetectStep, "join": JoinStep}


def start_ops(ops: Ops) -> Ops:
    """A stream's steps for one run: each detector step with its own fresh models, each join
    with its own copy of its table."""
    return tuple((op, (_STEPS[op](*args),), {}) if op in _STEPS else (op, args, kwargs)
                 for op, args, kwargs in ops)


def apply_ops(ops: Ops, df: pl.DataFrame) -> pl.DataFrame:
    """A stream's ``filter`` / ``with_columns`` / ``detect`` / ``join`` steps applied to one
    micro-batch (a stateful step not started by :func:`start_ops` starts afresh)."""
    for op, args, kwargs in ops:
        if op in _STEPS:
            step = args[0] if isinstance(args[0], _STEPS[op]) else _STEPS[op](*args)
            df = step(df)
            continue
        try:
            df = getattr(df, op)(*args, **kwargs)
        except pl.exceptions.ColumnNotFoundError as e:
            raise SchemaError(f".{op}(...) refers to a column that is not in the stream: {e}") from e
        except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError,
                pl.exceptions.SchemaError, pl.exceptions.DuplicateError) as e:
            shown = ", ".join(str(a) for a in args)[:300]
            raise SchemaError(f".{op}({shown}) cannot run on the stream's columns "
                              f"{dict(df.schema)}: {e}") from e
    return df


def engine_time(df: pl.DataFrame, tcol: str) -> pl.DataFrame:
    """``df`` with its time column as the engine reads it (see :meth:`Stream.head`)."""
    if tcol not in df.columns:
        raise SchemaError(f"time column {tcol!r} not found; the stream has columns {df.columns}")
    dtype = df.schema[tcol]
    if dtype == pl.String:
        return df.with_columns(text_instants(tcol)) if df.height else df.with_columns(
            pl.col(tcol).cast(pl.Datetime("us", "UTC")))
    unit, cast = time_unit_of(dtype, tcol)
    if cast is not None and unit != "integer":
        return df.with_columns(cast.alias(tcol))
    return df



@dataclass
class Run:
    """Everything a finished run produced."""

    output: pl.DataFrame
    late: pl.DataFrame
    rejected: pl.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)
    # The query that ran, so plot() knows its keys and emit mode.
    _query: Any = field(default=None, repr=False, compare=False)
    #: True when Ctrl-C (``rl.Interrupted.run``) or an error (``error.run``) stopped the run
    #: before its input ended: open windows were not flushed.
    interrupted: bool = False

    def plot(self, y: str | Sequence[str] | None = None, color: str | Sequence[str] | None = None,
             *, x: str | None = None, kind: str = "line", top: int | None = None,
             facet: str | None = None, title: str | None = None) -> Any:
        """A plotly Figure of the output: ``y`` (a column or a list) over ``x`` (default
        ``window_start``; a sliding window's time column; ``window_end`` for cumulative
        windows), one trace per ``color`` value, drawn as ``kind`` ``"line"``, ``"bar"``,
        ``"area"`` or ``"scatter"``. ``top=N`` keeps the N colour values with the largest
        total of ``y``; ``facet`` draws one panel per value. Amended and changelog outputs
        are folded to each window's latest value first. Lines and areas over tumbling,
        hopping and cumulative windows add the windows that emitted no row: 0 for counts,
        sums and distinct counts, a gap in the line for other metrics (docs/semantics.md,
        "Plots"). Needs ``pip install 'rillet[plot]'``::

            run.plot(y="count", color="event_source", top=10)
        """
        from rillet.views.plot import figure

        return figure(self.output, self._query, y, color, x=x, kind=kind, top=top, facet=facet,
                      title=title)

    def __repr__(self) -> str:
        m = self.metrics
        return (
            f"Run(output={self.output.height} rows, late={self.late.height}, "
            f"rejected={self.rejected.height}, rows_in={m.get('rows_in')}, "
            f"watermark={m.get('watermark')}"
            + (", interrupted" if self.interrupted else "") + ")"
        )

    def _repr_html_(self) -> str:
        """In a notebook: a summary line of the metrics, the counts of late and rejected
        rows, and the output's first rows."""
        from rillet.views.display import run_html

        return run_html(self)



class Execution:
    """One run of a query: binds the plan on the first batch, feeds the engine, gathers rows."""

    def __init__(self, query: Any, progress: bool | None) -> None:
        self.q = query
        w = query._w
        self.stream = w._stream
        self.op: Any = None
        self.window_dtype: pl.DataType | None = None
        self.unit = "us"
        self.select: list[pl.Expr] = []
        self.casts: dict[str, pl.DataType] = {}
        self.late_parts: list[pl.DataFrame] = []
        self.rejected_parts: list[pl.DataFrame] = []
        self.empty_batch: pl.DataFrame | None = None
        self.rows_in = 0
        self.rows_filtered = 0
        self.rows_added = 0  # rows a join with several matches per row added
        self.source_rejected = 0
        self.idle_ms: int | None = None
        self.last_row_ms: int | None = None
        self.wm_at_last_row: int | None = None
        self.last_stamp_us = 0
        self.batches = 0
        self.ended = False  # the input ended and open windows were flushed
        self.delay = 0  # this stream's own watermark delay, in the time unit
        self.started = _time.perf_counter()
        self.progress = Progress(progress, known_rows(self.stream._source))
        self.ops = start_ops(self.stream._ops)  # detectors keep their models for the run

    # -- source ---------------------------------------------------------------------------
    def apply_ops(self, df: pl.DataFrame) -> pl.DataFrame:
        return apply_ops(self.ops, df)

    def _rows_added(self) -> int:
        return sum(args[0].rows_added() for op, args, _ in self.ops if op == "join")

    # -- plan -----------------------------------------------------------------------------
    def bind(self, df: pl.DataFrame) -> None:
        """Types the plan against the first batch (in the core) and builds the operator."""
        exprs, probe = _plan.inputs(self.q, df)
        bound = self.q._plan.bind(probe)
        self.unit = bound.unit
        in_casts = _plan.casts(bound.input_casts)
        self.select = [e.cast(in_casts[name]) if name in in_casts else e
                       for e, name in ((e, e.meta.output_name()) for e in exprs)]
        self.casts = _plan.casts(bound.output_casts)
        self.op = bound.operator()
        self.delay = bound.delay
        if self.stream._idle_timeout is not None:
            self.idle_ms = wall_ms(self.stream._idle_timeout, "idle_timeout")
        self.empty_batch = df.head(0)
        self.time_dtype = df.schema[self.stream._time]

    # -- running --------------------------------------------------------------------------
    def step(self, df: Any, now_us: int | None = None) -> pl.DataFrame:
        """One micro-batch through this query; ``now_us`` is the wall clock when the batch was
        read (one stamp for every query of a read, for ``rl.processing_time()``)."""
        now = _clock.now_ms()
        if not isinstance(df, pl.DataFrame):  # a file source's chunk: rows + unreadable rows
            bad = df.bad
            df = df.frame
            if bad.height:
                self.rows_in += bad.height
                self.source_rejected += bad.height
                self.rejected_parts.append(bad)
            if df.width == 0:  # nothing readable yet (no schema to bind)
                return self._empty_output()
        if df.height == 0 and self.op is not None and self.op.is_bound():
            # A heartbeat from a live source: nothing to add, but time has passed.
            return self._heartbeat(now)
        self.batches += 1
        self.rows_in += df.height
        before = df.height
        idle_out = self._idle(now) if self.op is not None and self.op.is_bound() else None
        if self.stream._processing_time is not None:
            stamp = self._stamp(now_us)
            df = df.with_columns(
                pl.lit(stamp, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")).alias(self.stream._time)
            )
        df = self.apply_ops(df)
        added = self._rows_added()
        self.rows_filtered += before - df.height + added - self.rows_added
        self.rows_added = added
        if self.op is None:
            self.bind(df)
        elif self.empty_batch is not None and df.schema != self.empty_batch.schema:
            raise SchemaError(
                f"a micro-batch's schema changed mid-stream: expected {dict(self.empty_batch.schema)}, "
                f"got {dict(df.schema)}; every batch must have the same columns and types"
            )
        try:
            prepared = df.select(self.select)
        except pl.exceptions.PolarsError as e:
            raise SchemaError(f"could not prepare a micro-batch for the window operator: {e}") from e
        out, late, rejected = self.op.process(prepared, now)
        m = self.op.metrics()
        if df.height:
            self.last_row_ms = now
            self.wm_at_last_row = m["watermark"]
        late_df = pl.DataFrame(late)
        if late_df.height:
            self.late_parts.append(self._gather(df, late_df, "late_by"))
        rej_df = pl.DataFrame(rejected)
        if rej_df.height:
            self.rejected_parts.append(self._gather(df, rej_df, "reason"))
        self.progress.update(
            before,
            self._instant(m["max_event_time"]),
            self._instant(m["watermark"]),
            m["rows_late"],
        )
        result = self._finish_output(out)
        if idle_out is not None and idle_out.height:
            result = pl.concat([idle_out, result], how="vertical") if result.height else idle_out
        return result

    def _stamp(self, now_us: int | None) -> int:
        """The arrival time of what is read now (``now_us``, or the wall clock): never before
        an earlier stamp, so arrival time never goes back."""
        self.last_stamp_us = max(_clock.now_us() if now_us is None else now_us, self.last_stamp_us)
        return self.last_stamp_us

    def _heartbeat(self, now: int) -> pl.DataFrame:
        idle = self._idle(now)
        tick = self._finish_output(self.op.tick(now))
        parts = [p for p in (idle, tick) if p is not None and p.height]
        if self.stream._processing_time is not None:
            # Arrival time follows the wall clock while the source is quiet: the windows it
            # has passed close (rows read later are stamped later, so none is late).
            passed = self._finish_output(self.op.advance_watermark(self._stamp(None) - self.delay))
            if passed.height:
                parts.append(passed)
        return pl.concat(parts, how="vertical") if len(parts) > 1 else (parts[0] if parts else tick)

    def _idle(self, now: int) -> pl.DataFrame | None:
        """With idle_timeout: after that long without rows, event time follows the wall clock."""
        instant = self._idle_instant(now)
        return None if instant is None else self._finish_output(self.op.advance_watermark(instant))

    def _idle_instant(self, now: int | None = None) -> int | None:
        """With idle_timeout, after that long without rows: the watermark at the last row plus
        the time since (event time follows the wall clock); else None."""
        if self.idle_ms is None or self.last_row_ms is None or self.wm_at_last_row is None:
            return None
        quiet = (_clock.now_ms() if now is None else now) - self.last_row_ms
        if quiet < self.idle_ms:
            return None
        per_ms = {"ns": 1_000_000, "us": 1_000, "ms": 1, "s": 0, "integer": 0}[self.unit]
        advance = quiet * per_ms if per_ms else quiet // 1000
        # Held at the largest instant: a watermark near it must not overflow 64 bits.
        return min(self.wm_at_last_row + advance, 2**63 - 1)

    def carry(self, instant: int) -> pl.DataFrame:
        """The watermark of the query this one reads (less this stream's own ``watermark=``
        delay): the windows it completes or closes come out."""
        return self._finish_output(self.op.advance_watermark(max(instant - self.delay, -(2**63))))

    def finish(self) -> pl.DataFrame:
        if self.op is None or not self.op.is_bound() or not self.stream._flush:
            return self._empty_output()
        return self._finish_output(self.op.finish())

    def close(self) -> None:
        self.progress.close()

    # -- checkpoints ------------------------------------------------------------------------
    #: The counters a checkpoint carries (the rest of the state is the engine's and the steps').
    _COUNTERS = ("rows_in", "rows_filtered", "rows_added", "source_rejected", "batches", "ended",
                 "last_stamp_us", "wm_at_last_row")

    def snapshot(self, prefix: str, parts: dict[str, bytes]) -> dict[str, Any]:
        """This query's state at a boundary between micro-batches: counters (returned), and
        the engine's and the stateful steps' bytes (into ``parts`` under ``prefix``). Its
        late and rejected rows are saved apart, as they grow (``runtime.durable``)."""
        from rillet._codec import schema_bytes

        meta: dict[str, Any] = {name: getattr(self, name) for name in self._COUNTERS}
        meta["elapsed"] = _time.perf_counter() - self.started
        meta["bound"] = self.op is not None
        if self.op is not None:
            parts[f"{prefix}/op"] = self.op.snapshot()
            schema = schema_bytes(self.empty_batch)
            assert schema is not None
            parts[f"{prefix}/schema"] = schema
        for n, (op, args, _) in enumerate(self.ops):
            saved = args[0].snapshot() if op in _STEPS else None
            if saved is not None:
                parts[f"{prefix}/step{n}"] = saved
        return meta

    def restore(self, meta: dict[str, Any], prefix: str, parts: dict[str, bytes]) -> None:
        """Continues from :meth:`snapshot`'s state (in a new process, the same query)."""
        from rillet._codec import schema_frame

        for name in self._COUNTERS:
            setattr(self, name, meta[name])
        # elapsed_s and rows/s go on from the run that saved the checkpoint.
        self.started = _time.perf_counter() - meta["elapsed"]
        if meta["bound"]:
            schema = schema_frame(parts[f"{prefix}/schema"])
            assert schema is not None
            self.bind(schema)
            self.op.restore(parts[f"{prefix}/op"])
        for n, (op, args, _) in enumerate(self.ops):
            saved = parts.get(f"{prefix}/step{n}")
            if op in _STEPS and saved is not None:
                args[0].restore(saved)
        if self.wm_at_last_row is not None:
            # Idleness is wall-clock time: it counts again from the resume.
            self.last_row_ms = _clock.now_ms()

    def result(self, output: pl.DataFrame) -> Run:
        """The run so far; ``interrupted`` unless the input ended (see :class:`Interrupted`)."""
        return Run(output, self.late_frame(), self.rejected_frame(), self.metrics(), _query=self.q,
                   interrupted=not self.ended)

    # -- results --------------------------------------------------------------------------
    def _gather(self, df: pl.DataFrame, side: pl.DataFrame, extra: str) -> pl.DataFrame:
        rows = side["row"]
        part = df.select(pl.all().gather(rows))
        values = side[extra]
        if extra == "late_by":
            values = values.cast(self._late_by_dtype())
        return part.with_columns(values.alias(extra))

    def _late_by_dtype(self) -> pl.DataType:
        return pl.Int64() if self.unit == "integer" else pl.Duration(self.unit)  # type: ignore[arg-type]  # "ns", "us" or "ms" here

    def _finish_output(self, batch: Any) -> pl.DataFrame:
        out = pl.DataFrame(batch)
        if self.casts:
            out = out.with_columns(cast_back(n, t) for n, t in self.casts.items())
        if self.window_dtype is None and "window_start" in out.columns:
            self.window_dtype = out.schema["window_start"]
        return _plan.apply_post(self.q._post, out) if self.q._post else out

    def _empty_output(self) -> pl.DataFrame:
        return pl.DataFrame()

    def concat(self, outputs: list[pl.DataFrame]) -> pl.DataFrame:
        parts = [o for o in outputs if o.width]
        if not parts:
            return pl.DataFrame()
        return pl.concat(parts, how="vertical")

    def late_frame(self) -> pl.DataFrame:
        if self.late_parts:
            return pl.concat(self.late_parts, how="vertical")
        if self.empty_batch is None:
            return pl.DataFrame({"late_by": []}, schema={"late_by": self._late_by_dtype()})
        return self.empty_batch.with_columns(pl.lit(None, dtype=self._late_by_dtype()).alias("late_by")).head(0)

    def rejected_frame(self) -> pl.DataFrame:
        if self.rejected_parts:
            # Rows rejected by the engine carry their columns; rows a file source could not
            # parse carry file, line and text instead.
            return pl.concat(self.rejected_parts, how="diagonal_relaxed")
        if self.empty_batch is None:
            return pl.DataFrame({"reason": []}, schema={"reason": pl.String})
        return self.empty_batch.with_columns(pl.lit(None, dtype=pl.String).alias("reason")).head(0)

    def _instant(self, value: int | None) -> object:
        if value is None:
            return None
        if self.unit == "integer":
            return value
        dtype = self.window_dtype
        if dtype is None:
            tz = getattr(self.time_dtype, "time_zone", None) if hasattr(self, "time_dtype") else None
            dtype = pl.Datetime(self.unit, tz if self.time_dtype != pl.String else "UTC")  # type: ignore[arg-type]  # "ns", "us" or "ms" here
        return instant_to_python(value, dtype, self.unit)

    def metrics(self) -> dict[str, Any]:
        m: dict[str, Any] = {
            "rows_in": self.rows_in,
            "rows_filtered": self.rows_filtered,
            "rows_accepted": 0,
            "rows_late": 0,
            "rows_rejected": self.source_rejected,
            "rows_emitted": 0,
            "watermark": None,
            "max_event_time": None,
            "open_windows": 0,
            "open_panes": 0,
            "keys": 0,
            "state_bytes": 0,
        }
        if self.op is not None:
            m.update(self.op.metrics())
            m["watermark"] = self._instant(m["watermark"])
            m["max_event_time"] = self._instant(m["max_event_time"])
            del m["rows_in"]
            m["rows_in"] = self.rows_in
            m["rows_rejected"] += self.source_rejected
        detectors = [args[0] for op, args, _ in self.ops if op == "detect"]
        if detectors:
            # A detector's models are state too (a forest per key).
            m["detector_models"] = sum(d.models() for d in detectors)
            m["detector_bytes"] = sum(d.memory_bytes() for d in detectors)
            m["state_bytes"] += m["detector_bytes"]
        joins = [args[0] for op, args, _ in self.ops if op == "join"]
        if joins:
            # A join holds its table and the table's index.
            m["reference_loads"] = sum(j.loads() for j in joins)
            m["rows_added"] = self.rows_added
            m["join_table_bytes"] = sum(j.memory_bytes() for j in joins)
            m["state_bytes"] += m["join_table_bytes"]
        elapsed = _time.perf_counter() - self.started
        m["batches"] = self.batches
        m["elapsed_s"] = round(elapsed, 6)
        m["rows_per_s"] = round(self.rows_in / elapsed) if elapsed > 0 else None
        return m

    def warn_losses(self) -> None:
        """At the end of a run: a :class:`~rillet.DataLossWarning` for each way it lost most
        of its rows without an error (docs/semantics.md, "Loss warnings")."""
        from rillet import _loss

        w = self.q._w

        def late() -> pl.DataFrame | None:
            return pl.concat([p.select("late_by") for p in self.late_parts]) if self.late_parts else None

        for message in _loss.run_warnings(self.metrics(), late, self.rejected_frame, self.stream._time,
                                          self.stream._watermark_given, w._late):
            _loss.warn(message)
