"""Streams, windowed queries and runs: the public query-building API."""
from __future__ import annotations

import datetime as _dt
import time as _time
from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from rillet import _clock, _core
from rillet._errors import ConfigError
from rillet._time import (
    DurationLike,
    validate_duration,
    wall_ms,
)
from rillet.plan import plan as _plan
from rillet.plan.aggregates import Agg
from rillet.plan.detectors import DetectorSpec
from rillet.plan.joins import StreamJoin, TableJoin, asof_options, columns
from rillet.plan.plan import span
from rillet.plan.windows import WindowSpec
from rillet.runtime.driver import Driver
from rillet.runtime.execution import Run, apply_ops, engine_time
from rillet.sources.base import _is_arrow, frames, to_frame
from rillet.sources.reference import Reference

if TYPE_CHECKING:
    from rillet.query.live import RunningQuery

EMIT_MODES = ("final", "amend", "changelog")
LATE_MODES = ("collect", "drop", "raise")
REVISE_MODES = ("row", "watermark")


class ProcessingTime:
    """Marker for ``time=rl.processing_time()``: each row is stamped with the wall clock when
    it is read, in a column of this name (Kinesis Analytics' ROWTIME)."""

    def __init__(self, column: str = "processing_time") -> None:
        if not isinstance(column, str) or not column:
            raise ConfigError(f"processing_time(column=...) takes a column name, got {column!r}")
        self.column = column

    def __repr__(self) -> str:
        return f"rl.processing_time({self.column!r})"


def processing_time(column: str = "processing_time") -> ProcessingTime:
    """Event time = the wall clock when each row is read (a ``Datetime("us", "UTC")`` column
    named ``column`` is added to every micro-batch). Such a stream is never out of order."""
    return ProcessingTime(column)


def stream(
    source: Any,
    time: str | ProcessingTime,
    watermark: DurationLike | None = None,
    idle_timeout: DurationLike | None = None,
    flush: bool = True,
) -> Stream:
    """Starts a query over ``source``, a stream of rows in arrival order.

    ``source`` is a polars DataFrame or LazyFrame, an Arrow table or record batch (anything
    with ``__arrow_c_stream__``), or an iterable of those, each one micro-batch.

    ``time`` names the event-time column (Datetime of any unit, naive meaning UTC; an ISO
    8601 string column; or an integer column). ``watermark`` is the bounded out-of-orderness
    delay: the watermark is the largest time seen minus it. Left out (``None``), it is 0 and
    a run warns (:class:`~rillet.DataLossWarning`) when over 10% of the rows turn out late,
    suggesting a delay; an explicit ``watermark=0`` runs quietly. ``flush=True`` emits every
    open window at the end of the input; ``flush=False`` leaves them open, as Spark does.

    >>> import polars as pl, rillet as rl
    >>> df = pl.DataFrame({"t": [1, 2, 11], "k": ["a", "b", "a"]})
    >>> rl.stream(df, time="t").window(rl.tumbling(10), by="k").agg(rl.count()).collect().rows()
    [('a', 0, 10, 1), ('b', 0, 10, 1), ('a', 10, 20, 1)]
    """
    return Stream(source, time, watermark, idle_timeout, flush)


class Stream:
    """Rows in arrival order, with polars transformations applied to each micro-batch."""

    def __init__(
        self,
        source: Any,
        time: str | ProcessingTime,
        watermark: DurationLike | None = None,
        idle_timeout: DurationLike | None = None,
        flush: bool = True,
        _ops: tuple[tuple[str, tuple, dict], ...] = (),
    ) -> None:
        self._processing_time: ProcessingTime | None = None
        if isinstance(time, ProcessingTime):
            self._processing_time = time
            time = time.column
        if not isinstance(time, str):
            raise ConfigError(
                f"time= must name the event-time column, e.g. time='event_time', or be "
                f"rl.processing_time(); got {time!r}"
            )
        validate_duration(watermark, "watermark")
        if idle_timeout is not None:
            if isinstance(idle_timeout, int) and not isinstance(idle_timeout, bool):
                raise ConfigError(
                    "idle_timeout is wall-clock time: give a duration such as '30s' or a "
                    f"timedelta, not the integer {idle_timeout}"
                )
            validate_duration(idle_timeout, "idle_timeout")
            if wall_ms(idle_timeout, "idle_timeout") <= 0:
                raise ConfigError(f"idle_timeout must be positive, got {idle_timeout!r}")
        if not isinstance(flush, bool):
            raise ConfigError(f"flush= must be True or False, got {flush!r}")
        self._source = source
        self._time = time
        # None: left at its default (0), so a run may warn that most rows were late.
        self._watermark_given = watermark is not None
        self._watermark: DurationLike = 0 if watermark is None else watermark
        self._idle_timeout = idle_timeout
        self._flush = flush
        self._ops = _ops

    def _with(self, op: str, args: tuple, kwargs: dict) -> Stream:
        time: str | ProcessingTime = self._processing_time or self._time
        watermark = self._watermark if self._watermark_given else None
        return Stream(self._source, time, watermark, self._idle_timeout, self._flush,
                      self._ops + ((op, args, kwargs),))

    def filter(self, *predicates: pl.Expr, **constraints: Any) -> Stream:
        """Keeps the rows of each micro-batch where the polars predicate holds."""
        if not predicates and not constraints:
            raise ConfigError("filter() needs at least one predicate, e.g. pl.col('x') > 0")
        return self._with("filter", predicates, constraints)

    def with_columns(self, *exprs: Any, **named: Any) -> Stream:
        """Adds or replaces columns of each micro-batch with polars expressions."""
        return self._with("with_columns", exprs, named)

    def detect(self, detector: DetectorSpec, by: str | Sequence[str] | None = None) -> Stream:
        """Adds a detector's columns to every row: ``anomaly_score`` (and
        ``anomaly_explanation``) for :func:`rillet.random_cut_forest`, ``hotspots`` for
        :func:`rillet.hotspots`. Rows are taken in the order the stream delivers them (after
        a window, the order it emits its rows), one at a time, so the result does not depend
        on batch sizes. ``by`` keeps one model per key (a forest per user, say). A row with
        a null or non-finite value in a column the detector reads gets null and leaves the
        model as it was.

        The stream runs as it is (``.collect()``, ``.run()``, sinks) or goes on into a
        window (``.window(...)``), e.g. the highest score per minute.
        """
        if not isinstance(detector, DetectorSpec):
            raise ConfigError(
                f"detect() takes a detector such as rl.random_cut_forest('calls') or "
                f"rl.hotspots('x', 'y'), got {type(detector).__name__}"
            )
        keys = _keys(by)
        both = sorted(set(keys) & set(detector.columns))
        if both:
            raise ConfigError(f"column {both[0]!r} is both scored and a by= key; a key picks the model, "
                              f"so score other columns")
        return self._with("detect", (detector, keys, self._time), {})

    def join(self, other: Any, on: str | Sequence[str] | None = None, how: str = "left", *,
             left_on: str | Sequence[str] | None = None, right_on: str | Sequence[str] | None = None,
             suffix: str = "_right") -> Stream:
        """Enriches every row with the matching rows of a table: a polars DataFrame or
        LazyFrame, an Arrow table, or :func:`rillet.reference` (a file read again when it
        changes). As polars' ``DataFrame.join``: the output has the stream's columns, then the
        table's but its keys (a name the stream has gets ``suffix``); ``how="left"`` keeps
        every row (nulls where nothing matches), ``"inner"`` only rows with a match; a key
        found several times in the table gives a row per match; a null key matches nothing.
        ``on`` names key columns of both sides, ``left_on``/``right_on`` keys named
        differently. Each row is joined on its own, so the result does not depend on batch
        sizes::

            teams = pl.DataFrame({"user": ["alice", "bob"], "team": ["web", "data"]})
            rl.stream(events, time="ts").join(teams, on="user").window(rl.tumbling("1m"), by="team")
        """
        table = _table(other, "join")
        left, right = _join_keys(on, left_on, right_on)
        return self._with("join", (TableJoin.build(table, left, right, how, suffix),), {})

    def join_asof(self, other: Any, on: str | None = None, by: str | Sequence[str] | None = None, *,
                  tolerance: DurationLike | None = None, suffix: str = "_right") -> Stream:
        """Joins every row with the table row of its ``by`` key(s) that is the latest at or
        before the row's event time (polars' ``join_asof(strategy="backward")``; a table that
        changes over time, such as users' roles, seen as of each event). ``other`` is a table
        as for :meth:`join`; ``on`` names its time column (default: a column named as the
        stream's time column), which need not be sorted. Among table rows of equal key and
        time the last one wins. ``tolerance`` (a duration, or an integer for integer times)
        leaves a row unmatched when the latest table row is older than that. Every row is
        kept, with nulls where nothing matches. The output has the stream's columns, then
        the table's but its ``by`` keys, and its time column only when it is named
        differently from the stream's::

            roles = pl.DataFrame({"user": ..., "since": ..., "role": ...})
            rl.stream(events, time="ts").join_asof(roles, on="since", by="user")
        """
        keys = columns(by, "by")
        if isinstance(other, Stream):
            if on is not None and on != other._time:
                raise ConfigError(f"join_asof(stream, on={on!r}): a stream's rows hold from its event time "
                                  f"{other._time!r}; leave on= out")
            validate_duration(tolerance, "tolerance")
            spec = {"kind": {"asof": {"tolerance": span(tolerance, "tolerance")}}, "left_on": keys,
                    "right_on": keys, "how": "left", "suffix": suffix}
            return self._joined(other, spec)
        table = _table(other, "join_asof")
        if on is None:
            on = self._time
        if not isinstance(on, str) or not on:
            raise ConfigError(f"join_asof(on=...) names the table's time column, got {on!r}")
        validate_duration(tolerance, "tolerance")
        asof = asof_options(self._time, on, tolerance)
        return self._with("join", (TableJoin.build(table, keys, keys, "left", suffix, asof),), {})

    def join_interval(self, other: Stream, on: str | Sequence[str] | None = None, *,
                      lower: DurationLike, upper: DurationLike, how: str = "inner",
                      left_on: str | Sequence[str] | None = None, right_on: str | Sequence[str] | None = None,
                      suffix: str = "_right") -> Stream:
        """Joins two streams: each row with the rows of ``other`` of the same key whose event
        time less the row's is within ``[lower, upper]`` (Flink's interval join), e.g. the API
        calls in the ten minutes after a login::

            logins.join_interval(calls, on="user", lower="0s", upper="10m")

        ``how="inner"`` gives a row per match; ``"left"`` also gives each row that matched
        nothing, with nulls, once ``other``'s watermark passes its time + ``upper``. Each
        side's watermark is its own (its ``watermark=`` delay); a row behind its side's
        watermark is late and goes to ``run.late`` with a ``side`` column. State is freed as
        the watermarks pass, so it stays proportional to the interval and delays. The output
        has this stream's columns, then ``other``'s but its keys (a name taken gets
        ``suffix``); its event time is this stream's, and its watermark the smallest time a
        later row can have, so a window after it closes as both inputs advance. The result
        depends neither on batch sizes nor on how the two inputs interleave.
        """
        if not isinstance(other, Stream):
            raise ConfigError(f"join_interval() joins two streams; got {type(other).__name__} (join a table "
                              "with .join() or .join_asof())")
        if how not in ("inner", "left"):
            raise ConfigError(f"how={how!r} is not a join kind; expected 'inner' or 'left'")
        validate_duration(lower, "lower")
        validate_duration(upper, "upper")
        lo, hi = _span_ns(lower), _span_ns(upper)
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"lower={lower!r} is after upper={upper!r}: the interval other.time - self.time in "
                              "[lower, upper] would be empty")
        left, right = _join_keys(on, left_on, right_on)
        spec = {"kind": {"interval": {"lower": span(lower, "lower"), "upper": span(upper, "upper")}},
                "left_on": left, "right_on": right, "how": how, "suffix": suffix}
        return self._joined(other, spec)

    def _joined(self, other: Stream, spec: dict[str, Any]) -> Stream:
        """The stream of this one joined with ``other``."""
        if other is self:
            raise ConfigError("a stream joined with itself: build the other side as its own stream, "
                              "e.g. rl.stream(df, time=...) twice")
        if self._processing_time is not None or other._processing_time is not None:
            raise ConfigError("a join of two streams needs event times on both sides, not rl.processing_time()")
        if not isinstance(spec.get("suffix"), str) or not spec["suffix"]:
            raise ConfigError(f"suffix= must be a non-empty string such as '_right', got {spec.get('suffix')!r}")
        node = StreamJoin(self, other, spec)
        return Stream(node, self._time, 0, None, self._flush)

    def _rows(self) -> Query:
        """This stream as a query without a window: rows pass through as they arrive (the
        core's rows operator: times parsed, unparseable ones rejected, none late)."""
        return Query(Windowed(self, WindowSpec("rows", None, 0), (), 0, "final", "collect"), ())

    def window(
        self,
        spec: WindowSpec,
        by: str | Sequence[str] | None = None,
        lateness: DurationLike = 0,
        emit: str = "final",
        late: str = "collect",
        early: DurationLike | None = None,
        revise: str = "row",
    ) -> Windowed:
        """Groups rows into event-time windows per key.

        ``by`` is a column name, a plain ``pl.col("name")``, or a list of them; to group by
        a computed value, add it as a column first (``.with_columns(...)``).

        ``lateness`` keeps a window open for updates that long after the watermark passes its
        end. ``emit`` is ``"final"`` (one row when the window closes), ``"amend"`` (a row
        when it completes, then a new revision for every later change) or ``"changelog"``
        (Flink row kinds in an ``op`` column: ``+I``, then ``-U``/``+U`` pairs per change).
        ``early="10s"`` (amend or changelog) also emits the current value of changed open
        windows at most once per that much wall-clock time. ``revise`` (amend or changelog)
        says when changes that late rows make to emitted windows come out: ``"row"`` (a
        revision after every such row) or ``"watermark"`` (gathered into one revision per
        window and key, emitted when the watermark next completes or closes a window, or at
        the end of the input: the output then does not depend on how many late rows there
        are, nor on batch sizes, and the last revision still equals the final row). ``late`` says what
        happens to rows whose windows have all closed: ``"collect"`` (kept in ``run.late``),
        ``"drop"`` (counted only) or ``"raise"`` (:class:`LateDataError`).
        """
        if not isinstance(spec, WindowSpec):
            raise ConfigError(
                f"window() takes a window spec such as rl.tumbling('1m') or "
                f"rl.hopping('5m', '1m'), got {type(spec).__name__}"
            )
        keys = _keys(by)
        validate_duration(lateness, "lateness")
        if emit not in EMIT_MODES:
            raise ConfigError(f"emit={emit!r} is not a mode; expected one of {EMIT_MODES}")
        if late not in LATE_MODES:
            raise ConfigError(f"late={late!r} is not a mode; expected one of {LATE_MODES}")
        if revise not in REVISE_MODES:
            raise ConfigError(f"revise={revise!r} is not a mode; expected one of {REVISE_MODES}")
        if revise != "row" and emit == "final":
            raise ConfigError(
                "revise= says when changes to emitted windows come out, so it needs "
                "emit='amend' or emit='changelog' (final mode emits each window once)"
            )
        early_ms = None
        if early is not None:
            if emit == "final":
                raise ConfigError(
                    "early= emits speculative revisions of open windows, so it needs "
                    "emit='amend' or emit='changelog'"
                )
            if isinstance(early, int) and not isinstance(early, bool):
                raise ConfigError(
                    f"early is wall-clock time: give a duration such as '10s', not the integer {early}"
                )
            validate_duration(early, "early")
            early_ms = wall_ms(early, "early")
            if early_ms <= 0:
                raise ConfigError(f"early must be a positive duration such as '10s', got {early!r}")
        return Windowed(self, spec, keys, lateness, emit, late, early_ms, revise)

    def head(self, n: int = 5, timeout: float | None = 10.0) -> pl.DataFrame:
        """The first ``n`` rows of the stream as the windows would see them: after its
        ``filter`` and ``with_columns`` steps, with the time column as the engine reads it (an
        ISO 8601 text column parsed to a ``Datetime("us", "UTC")``, null where a query would
        reject the row; a Date as a Datetime; ``rl.processing_time()`` stamped). Reads only
        as many micro-batches as it needs and closes the source; a live source (a tail,
        Kinesis, Kafka) is read until ``n`` rows or ``timeout`` seconds have passed
        (``None``: no limit), whichever comes first. Rows the source could not read are not
        shown (a query puts them in ``run.rejected``)::

            rl.stream(rl.read_csv("events.csv"), time="ts").head()
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"head(n=...) takes a number of rows of 0 or more, got {n!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or not timeout > 0):
            raise ConfigError(f"head(timeout=...) takes a positive number of seconds or None, got {timeout!r}")
        out = self._peek(n, timeout)
        return out if not out.width else engine_time(out, self._time)

    def _peek(self, n: int, timeout: float | None) -> pl.DataFrame:
        """The first ``n`` rows after the stream's steps, the time column as the source gives
        it (see :meth:`head`)."""
        if isinstance(self._source, Query) and n == 0:
            # The upstream query's output columns, typed by its plan without running it.
            upstream = self._source._output_frame(timeout)
            return apply_ops(self._ops, upstream) if upstream.width else upstream
        deadline = None if timeout is None else _time.monotonic() + timeout
        parts: list[pl.DataFrame] = []
        got = 0
        if isinstance(self._source, Query):
            source = self._source.iter()
        elif isinstance(self._source, StreamJoin):  # the joined rows, as a run gives them
            source = Stream(self._source, self._time, 0, None, self._flush)._rows().iter()
        else:
            source = frames(self._source)
        try:
            for item in source:
                df = item if isinstance(item, pl.DataFrame) else item.frame
                if df.width:
                    if self._processing_time is not None:
                        df = df.with_columns(pl.lit(_clock.now_us(), dtype=pl.Int64)
                                             .cast(pl.Datetime("us", "UTC")).alias(self._time))
                    df = apply_ops(self._ops, df)
                    if not parts or df.height:
                        parts.append(df.head(n - got))
                        got += parts[-1].height
                if (got >= n and parts) or (deadline is not None and _time.monotonic() >= deadline):
                    break
        finally:
            source.close()
        if not parts:
            return pl.DataFrame()
        return pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]

    @property
    def schema(self) -> pl.Schema:
        """The columns and types the windows see (those of :meth:`head`), read from the first
        micro-batch that has columns; the source is closed afterwards."""
        return self.head(0).schema

    def __repr__(self) -> str:
        ops = "".join(f".{args[0].method() if op == 'join' else op}(...)" for op, args, _ in self._ops)
        if isinstance(self._source, StreamJoin):  # says itself what it joins
            return f"{self._source!r}{ops}"
        return f"rl.stream(<{type(self._source).__name__}>, time={self._time!r}, watermark={self._watermark!r}){ops}"


def _keys(by: str | pl.Expr | Sequence[str | pl.Expr] | None) -> tuple[str, ...]:
    """``by=`` as column names: a name, a plain ``pl.col``, a list of them, or None."""
    if by is None:
        keys: tuple[str, ...] = ()
    elif isinstance(by, (str, pl.Expr)):
        keys = (_key_name(by),)
    elif isinstance(by, Sequence):
        keys = tuple(_key_name(k) for k in by)
    else:
        raise ConfigError(
            f"by= takes a column name, pl.col('name'), or a list of them; got "
            f"{type(by).__name__} {by!r}"
        )
    if len(set(keys)) != len(keys):
        raise ConfigError(f"by= names a column twice: {list(keys)}")
    return keys


def _span_ns(value: Any) -> int | None:
    """A fixed duration in nanoseconds (an integer as itself), to compare two; None for a
    calendar duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, _dt.timedelta):
        return (value.days * 86_400 + value.seconds) * 10**9 + value.microseconds * 1000
    if isinstance(value, str) and not _core.duration_parts(value, "duration")[0]:
        return _core.parse_duration(value, "ns", "duration")
    return None


def _table(other: Any, method: str) -> Any:
    """The table of a join: a DataFrame (from a LazyFrame or Arrow data too) or a reference."""
    if isinstance(other, Reference):
        return other
    if isinstance(other, Stream):
        raise ConfigError(
            f"{method}() takes a table (a DataFrame or rl.reference(path)); join two streams with "
            ".join_interval(other, on=..., lower=..., upper=...) or .join_asof(other, by=...)"
        )
    if isinstance(other, (pl.DataFrame, pl.LazyFrame)) or _is_arrow(other):
        return to_frame(other)
    raise ConfigError(
        f"{method}() takes a table: a polars DataFrame or LazyFrame, an Arrow table, or "
        f"rl.reference('file.csv'); got {type(other).__name__}"
    )


def _join_keys(on: Any, left_on: Any, right_on: Any) -> tuple[list[str], list[str]]:
    """A join's key columns on the stream's side and the table's."""
    if on is not None:
        if left_on is not None or right_on is not None:
            raise ConfigError("give either on= (keys named alike on both sides) or left_on= and right_on=, not both")
        keys = columns(on, "on")
        return keys, keys
    if left_on is None or right_on is None:
        raise ConfigError("a join needs its keys: on='user', or left_on='user' and right_on='user_arn'")
    left, right = columns(left_on, "left_on"), columns(right_on, "right_on")
    if len(left) != len(right):
        raise ConfigError(f"left_on names {len(left)} column(s) and right_on {len(right)}; give one "
                          "table key per stream key")
    if not left:
        raise ConfigError("a join needs at least one key column, e.g. on='user'")
    return left, right


def _key_name(key: Any) -> str:
    """A ``by=`` key as a column name: a name, or an expression that is a plain column."""
    if isinstance(key, str):
        return key
    if isinstance(key, pl.Expr):
        if key.meta.is_column():
            return key.meta.output_name()
        try:
            name = key.meta.output_name()
        except pl.exceptions.PolarsError:
            name = "key"
        raise ConfigError(
            f"by= takes column names or plain pl.col('name') expressions; {key} computes a "
            f"value. Add it as a column first, then group by its name: "
            f".with_columns(({key}).alias({name!r})).window(..., by={name!r})"
        )
    raise ConfigError(f"by= takes column names, got {type(key).__name__} {key!r}")


def _not_yet(method: str, step: str, example: str) -> Any:
    """A query-running method called before the query is complete: a ConfigError saying
    which step is missing, instead of an AttributeError."""

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            f".{method}() runs a complete query, and this {type(self).__name__} is not one "
            f"yet: call {step} first, e.g. {example}.{method}()"
        )

    call.__name__ = method
    call.__doc__ = f"Not available yet: call {step} first."
    return call


_RUNNERS = ("collect", "run", "iter", "start", "for_each", "to_parquet", "to_jsonl", "to_database")


class Windowed:
    """A stream grouped into windows; call :meth:`agg` to say what to compute."""

    def __init__(self, stream: Stream, spec: WindowSpec, by: tuple[str, ...], lateness: DurationLike,
                 emit: str, late: str, early_ms: int | None = None, revise: str = "row") -> None:
        self._stream = stream
        self._revise = revise
        self._spec = spec
        self._by = by
        self._lateness = lateness
        self._emit = emit
        self._late = late
        self._early_ms = early_ms

    def agg(self, *aggs: Agg) -> Query:
        """The aggregates to compute per window and key, e.g. ``rl.count(), rl.sum("bytes")``."""
        flat: list[Agg] = []
        for a in aggs:
            if isinstance(a, (list, tuple)):
                flat.extend(a)
            else:
                flat.append(a)
        if not flat:
            raise ConfigError("agg() needs at least one aggregate, e.g. rl.count()")
        for a in flat:
            if not isinstance(a, Agg):
                raise ConfigError(
                    f"agg() takes rillet aggregates such as rl.count() or rl.sum('bytes'), got "
                    f"{type(a).__name__} {a!r}"
                )
        bounds = {self._stream._time} if self._spec.kind == "sliding" else {"window_start", "window_end"}
        generated = bounds | {"amend": {"revision"}, "changelog": {"op"}}.get(self._emit, set())
        for k in self._by:
            if k in generated:
                raise ConfigError(
                    f"key column {k!r} would appear twice in the output: the window adds a column "
                    f"of that name ({sorted(generated)}); rename it first, e.g. "
                    f".with_columns(pl.col({k!r}).alias('{k}_key'))"
                )
        reserved = set(self._by) | generated
        seen: set[str] = set()
        for a in flat:
            if a.name in reserved or a.name in seen:
                raise ConfigError(
                    f"output column {a.name!r} appears twice; rename one aggregate with "
                    f".alias('...')"
                )
            seen.add(a.name)
        return Query(self, tuple(flat))


class Query(_plan.QueryBase):
    """A complete windowed query. Run it with :meth:`collect`, :meth:`run` or :meth:`iter`."""

    def __init__(self, windowed: Windowed, aggs: tuple[Agg, ...]) -> None:
        self._w = windowed
        self._aggs = aggs
        self._plan = _plan.of(self)  # checked by the core now; typed on the first batch
        if windowed._spec.kind == "rows" and windowed._spec.inner is not None:
            self._floors = {"window_end": "window_end"}
        elif windowed._spec.kind in ("sliding", "rows"):
            self._floors = {windowed._stream._time: "row_time"}
        else:
            self._floors = {"window_start": "window_start", "window_end": "window_end"}

    def _then(self, post: tuple[_plan.PostStep, ...], floors: dict[str, str],
              columns: list[str] | None) -> Query:
        """This query with steps applied to each batch it emits (a SQL select list,
        HAVING, ORDER BY, Top-N): a new query over the same window. ``floors`` names the
        output columns that keep a window bound (``window_start``, ``window_end``) or a
        sliding window's ``row_time``, so a query reading this one can take its watermark;
        ``columns`` are the output's columns, when known."""
        q = object.__new__(Query)
        q.__dict__.update(self.__dict__)
        q._post = self._post + post
        q._floors = floors
        q._columns = columns
        return q

    def _snapshot_keys(self) -> list[str] | None:
        """The columns that identify a window and key in the output (for snapshots), or None
        when the output does not carry them all (a sliding window, a SQL select list that
        leaves them out)."""
        w = self._w
        if w._spec.kind in ("sliding", "rows"):
            return None
        keys = [*w._by, "window_start", "window_end"]
        if self._columns is not None and not set(keys) <= set(self._columns):
            return None
        return keys

    def iter(self, progress: bool | None = None) -> Generator[pl.DataFrame, None, None]:
        """Yields each emitted DataFrame as soon as it is emitted, pulling the source lazily.
        Ctrl-C while it waits for or processes a batch raises :class:`~rillet.Interrupted`."""
        driver = Driver([self], progress, keep=False)
        batches = driver.batches()
        try:
            for (out,) in batches:
                if out.height:
                    yield out
        finally:
            batches.close()  # also when the consumer stops early: the source is let go
        driver.flow.warn_losses()

    def run(self, progress: bool | None = None, checkpoint: Any = None, checkpoint_every: Any = None) -> Run:
        """Runs to the end of the input; returns output, late rows, rejected rows and metrics.

        ``checkpoint="state/q1"`` saves the run there every ``checkpoint_every`` (a duration of
        wall-clock time such as ``"30s"``, the default, or an int number of input rows), and a
        run of the same query with the same path resumes from the newest checkpoint: after a
        crash it returns what an uninterrupted run returns (docs/durability.md).

        Ctrl-C (or a notebook's interrupt) stops it at the next batch boundary, closes the
        source and raises :class:`~rillet.Interrupted`, whose ``.run`` holds what was computed
        so far (open windows are not flushed). An error that stops the run part way (a
        :class:`SourceError` for a truncated file, a :class:`LateDataError`) carries the run
        up to it the same way, as ``error.run``::

            try:
                run = q.run()
            except rl.SourceError as e:
                run = e.run  # the output and rejected rows of the files before the bad one"""
        return run(self, progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every)[0]

    def start(self, progress: bool | None = False, checkpoint: Any = None,
              checkpoint_every: Any = None) -> RunningQuery:
        """Runs the query in a background thread and returns at once: the handle's
        ``snapshot()``, ``output``, ``late``, ``rejected`` and ``metrics`` show the results
        so far, ``stop()`` ends the run and ``wait()`` waits for its end. Use it for live
        sources (tails, Kinesis, Kafka), which run until stopped. With ``checkpoint=`` (see
        :meth:`run`), ``stop()`` saves a last checkpoint and leaves open windows open: the next
        start with the same path goes on from there."""
        from rillet.query.live import RunningQuery

        return RunningQuery(self, progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every)

    def for_each(self, fn: Any, progress: bool | None = None, checkpoint: Any = None,
                 checkpoint_every: Any = None) -> Run:
        """Calls ``fn(df)`` with each emitted DataFrame while the query runs; returns the
        run's late and rejected rows and metrics (the output went to ``fn``). With
        ``checkpoint=`` (see :meth:`run`) delivery is at least once: after a crash, the
        batches emitted since the last checkpoint are given to ``fn`` again."""
        from rillet.sinks.writers import CallbackSink, run_into

        return run_into(self, CallbackSink(fn), progress, checkpoint, checkpoint_every)

    def to_parquet(self, directory: Any, partition_by: str | None = "window_start",
                   every: str | None = "1h", max_rows: int = 100_000,
                   max_delay: DurationLike | None = "60s",
                   progress: bool | None = None, checkpoint: Any = None,
                   checkpoint_every: Any = None) -> Run:
        """Delivers results to Parquet files in hive-style partitions
        (``window_start_1h=2026-01-01 10%3A00%3A00/part-*.parquet``: the partition column
        truncated to ``every``), each written in a staging folder beside ``directory``
        (``<directory>.rillet-staging``) and renamed in when complete.

        Every file keeps all the output's columns, the partition column included, so
        ``pl.scan_parquet(directory, hive_partitioning=True)`` and DuckDB's ``read_parquet``
        give the emitted rows back, plus the folders' column. That column is named after the
        partition column and ``every`` (``window_start_1h``), or ``<column>_part`` when the
        column is partitioned by its own values (text, numbers, or ``every=None``), never
        after an output column. Values are escaped as Hive does (``%2F`` for ``/``, ``%3A``
        for ``:``, ...; ``__HIVE_DEFAULT_PARTITION__`` for null or empty text), so no value
        makes a path outside ``directory``.

        As Firehose's buffering hints, emitted rows are buffered and written when ``max_rows``
        are waiting or when the oldest has waited ``max_delay`` of wall-clock time (a duration
        such as ``"30s"`` or ``"5m"``, or a ``timedelta``; ``None`` waits for ``max_rows``).
        The delay is checked at every emitted batch, including the empty ones a live source
        sends while quiet; whatever is left is written when the run ends::

            q.to_parquet("out/", every="1d", max_rows=50_000, max_delay="1m")

        With ``checkpoint=`` (see :meth:`run`) the files of each checkpoint's epoch stay in the
        staging folder until the checkpoint is saved, then are renamed in (files are also
        written at each checkpoint, as Flink's bulk formats roll on checkpoint): after a crash
        and a resume the dataset holds exactly the rows of an uninterrupted run.
        """
        from rillet.sinks.writers import FileSink, run_into

        sink = FileSink(directory, "parquet", self._partition(partition_by), every, max_rows, max_delay)
        return run_into(self, sink, progress, checkpoint, checkpoint_every)

    def to_jsonl(self, directory: Any, partition_by: str | None = "window_start",
                 every: str | None = "1h", max_rows: int = 100_000,
                 max_delay: DurationLike | None = "60s",
                 progress: bool | None = None, checkpoint: Any = None,
                 checkpoint_every: Any = None) -> Run:
        """As :meth:`to_parquet` (partitions, ``max_rows`` / ``max_delay`` buffering), writing
        JSON Lines files ``part-*.jsonl``::

            q.to_jsonl("out/", partition_by=None, max_delay="30s")
        """
        from rillet.sinks.writers import FileSink, run_into

        sink = FileSink(directory, "jsonl", self._partition(partition_by), every, max_rows, max_delay)
        return run_into(self, sink, progress, checkpoint, checkpoint_every)

    def to_database(self, uri: str, table: str, progress: bool | None = None, checkpoint: Any = None,
                    checkpoint_every: Any = None) -> Run:
        """Keeps ``table`` equal to the results, in SQLite (``sqlite:///relative.db``,
        ``sqlite:////absolute.db``), DuckDB (``duckdb:///path.duckdb``) or PostgreSQL
        (``postgresql://user:password@host:5432/database``, needs ``rillet[postgres]``).

        The table is created if absent, with a primary key of the ``by`` columns plus
        ``window_start`` and ``window_end``; if it exists, it must have the output's columns
        and that primary key, or a ``SinkError`` says what differs. Amend revisions and
        changelog ``+I``/``+U`` rows upsert (``INSERT ... ON CONFLICT ... DO UPDATE``),
        ``-U``/``-D`` rows delete. Each emitted batch is one transaction of its net changes
        (the last change to each key: one ``executemany`` of deletes, one of upserts), so the
        table always matches a consistent point of the stream, and after the run it equals the
        ``final`` result::

            q.to_database("postgresql://rillet@localhost/metrics", "errors_per_minute")

        With ``checkpoint=`` (see :meth:`run`) the rows of each checkpoint's epoch are written
        in one transaction with the epoch's number (table ``rillet_sink_epochs``), after the
        checkpoint is saved: after a crash and a resume the table is what an uninterrupted run
        leaves, and no epoch is applied twice.
        """
        from rillet.sinks.writers import DatabaseSink, run_into

        w = self._w
        if w._spec.kind == "sliding":
            raise ConfigError("to_database needs windowed rows; sliding windows emit one row per input row")
        if w._spec.kind == "rows" and w._spec.inner is None:
            raise ConfigError(
                "to_database keeps one row per window and key, and these rows pass through without a "
                "window; write them with to_parquet or to_jsonl, or window them first"
            )
        if w._spec.kind == "session" and w._emit == "amend":
            raise ConfigError(
                "to_database keys rows by their window bounds, and an amended session's bounds "
                "change as it grows or merges, with no retraction of the old ones; use "
                "emit='changelog' (its -U rows remove the old bounds) or emit='final'"
            )
        return run_into(self, DatabaseSink(uri, table, self._sink_keys()), progress, checkpoint,
                        checkpoint_every)

    def _partition(self, partition_by: str | None) -> str | None:
        """A file sink's partition column: the default ``window_start``, for rows that carry
        no window (a sliding window's, or rows passing through), is their time column."""
        w = self._w
        no_bounds = w._spec.kind == "sliding" or (w._spec.kind == "rows" and w._spec.inner is None)
        if partition_by == "window_start" and no_bounds:
            return w._stream._time
        return partition_by

    def _sink_keys(self) -> list[str]:
        """The output columns that identify a window and key, for an upserting sink: the
        keys and the window bounds; for a SQL select list, those it keeps (a Kinesis pump's
        ROWTIME is its window's end)."""
        w = self._w
        keys = [*w._by, "window_start", "window_end"]
        if self._columns is None:
            return keys
        missing = [k for k in w._by if k not in self._columns]
        bounds = [b for b in ("window_start", "window_end", "ROWTIME") if b in self._columns]
        if missing or not bounds:
            raise ConfigError(
                "to_database keys each row by the query's GROUP BY keys and its window, but this "
                f"select list leaves out {missing + ([] if bounds else ['window_start or ROWTIME'])}; "
                "select them under their own names (e.g. SELECT window_start, window_end, key, ...)"
            )
        return [*w._by, *bounds]

    def explain(self, timeout: float | None = 10.0) -> str:
        """The plan as text: the source and its row-wise steps, the event time and watermark,
        the window with its parameters, the keys, the emission and late-row modes, the
        aggregates, and the output schema. The output schema is typed against the source's
        columns, so the first micro-batch is read (as :meth:`Stream.schema` does; a live
        source waits up to ``timeout`` seconds) and the source closed; without one it says
        it is known once the first batch is read::

            print(q.explain())
        """
        first = self._w._stream._peek(0, timeout)
        text = self._plan.explain() if not first.width else self._plan.explain(_plan.inputs(self, first)[1])
        if self._post:
            steps = "\n".join(f"  {p.text}" for p in self._post)
            text += f"\nthen, over each emitted batch:\n{steps}"
            if first.width:
                text += f"\noutput after them: {dict(self._output_frame(timeout).schema)}"
        return text

    def _output_frame(self, timeout: float | None) -> pl.DataFrame:
        """An empty frame of the columns and types this query emits (typed against the
        source's first micro-batch), or a frame without columns when the source has none."""
        first = self._w._stream._peek(0, timeout)
        if not first.width:
            return pl.DataFrame()
        out = pl.DataFrame(self._plan.bind(_plan.inputs(self, first)[1]).output_schema())
        return _plan.apply_post(self._post, out)

    def collect(self, progress: bool | None = None, checkpoint: Any = None,
                checkpoint_every: Any = None) -> pl.DataFrame:
        """Runs to the end of the input and returns everything emitted, in emission order.
        Ctrl-C raises :class:`~rillet.Interrupted`; its ``.run.output`` is what was emitted.
        ``checkpoint=`` is as for :meth:`run`."""
        return self.run(progress, checkpoint, checkpoint_every).output

    def __repr__(self) -> str:
        w = self._w
        aggs = ", ".join(repr(a) for a in self._aggs)
        revise = "" if w._revise == "row" else f", revise={w._revise!r}"
        return (f"{w._stream!r}.window({w._spec!r}, by={list(w._by)}, lateness={w._lateness!r}, "
                f"emit={w._emit!r}{revise}).agg({aggs})")

    def _repr_html_(self) -> str:
        """In a notebook: the plan (source, time column, watermark, window, keys, lateness,
        emission, aggregates and their output columns)."""
        from rillet.views.display import query_html

        return query_html(self)


def run(*queries: Query, progress: bool | None = None, checkpoint: Any = None,
        checkpoint_every: Any = None) -> list[Run]:
    """Runs queries built on one stream, reading its source once, and returns their runs in
    order; each keeps its own output, late rows, rejected rows and metrics. A query that reads
    another one's output (``rl.stream(q, ...)``) runs with it, its input fed as ``q`` emits::

        s = rl.stream(rl.read_jsonl("events.jsonl"), time="ts")
        per_minute, top = rl.run(s.window(rl.tumbling("1m"), by="api").agg(rl.count()),
                                 s.window(rl.tumbling("1h")).agg(rl.top_k("api", 10)))

    Ctrl-C raises :class:`~rillet.Interrupted` (``.runs``: every query's run so far).
    ``checkpoint=`` and ``checkpoint_every=`` are as for :meth:`Query.run`."""
    driver = Driver(queries, progress, keep=True, checkpoint=checkpoint, checkpoint_every=checkpoint_every)
    for _ in driver.batches():
        pass
    driver.flow.warn_losses()
    return driver.flow.runs(driver.outputs())


def _passing(method: str) -> Any:
    """A stream's runner: the query of its rows as they pass, run the same way."""

    def call(self: Stream, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._rows(), method)(*args, **kwargs)

    call.__name__ = method
    call.__doc__ = (f"Runs the stream without a window (every row passes through, after its steps, "
                    f"e.g. a detector's): :meth:`Query.{method}` of that query.")
    return call


for _name in _RUNNERS:
    setattr(Windowed, _name, _not_yet(_name, ".agg(...)", ".agg(rl.count())"))
    setattr(Stream, _name, _passing(_name))
Stream.agg = _not_yet("agg", ".window(...)", ".window(rl.tumbling('1m'))")  # type: ignore[attr-defined]  # a hint, set at import
