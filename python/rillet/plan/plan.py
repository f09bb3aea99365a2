"""A query as a plan: the JSON the Rust core reads, checks and types (src/plan.rs), and the
columns the runtime prepares for it."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SchemaError
from rillet._time import I64_MAX, I64_MIN, DurationLike, wall_ms

if TYPE_CHECKING:
    from rillet.plan.aggregates import Agg


@dataclass(frozen=True)
class PostStep:
    """A step over each batch a query emits (a SQL select list, HAVING, ORDER BY within the
    batch, a window Top-N): ``apply`` takes and returns a DataFrame; ``text`` says what it
    does, for :meth:`Query.explain`."""

    text: str
    apply: Callable[[pl.DataFrame], pl.DataFrame]


def apply_post(post: tuple[PostStep, ...], df: pl.DataFrame) -> pl.DataFrame:
    """``df`` (an emitted batch with columns) through a query's post steps."""
    if not df.width:
        return df
    for step in post:
        try:
            df = step.apply(df)
        except pl.exceptions.PolarsError as e:
            raise SchemaError(f"{step.text}: {e}") from e
    return df


class QueryBase:
    """A complete query: a stream with its steps, a window and aggregates, and the plan the
    core checked. :class:`rillet.Query` is one; the plan and the runtime know queries by this
    class (they sit below the query builder)."""

    _w: Any  # the Windowed: its stream, spec, keys and modes
    _aggs: tuple[Agg, ...]
    _plan: _core.Plan
    #: Steps over each emitted batch (none for a query built in Python).
    _post: tuple[PostStep, ...] = ()
    #: Output columns whose values never go below a bound the core reports: column name ->
    #: "window_start", "window_end" or "row_time" (see ``emitted_floor``).
    _floors: dict[str, str]
    #: The output's columns when known without reading the input (a SQL select list).
    _columns: list[str] | None = None
    #: The output column that is Flink's window_time (a SQL select list's), if any.
    _window_time: str | None = None


def span(value: DurationLike | None, what: str) -> dict[str, Any] | None:
    """A duration as the plan holds it: text, an integer count, or a timedelta in
    microseconds; ``what`` names it in errors."""
    if value is None:
        return None
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, dt.timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        if not I64_MIN <= micros <= I64_MAX:
            raise ConfigError(
                f"{what}: {value!r} is out of range; a duration must be shorter than 2**63 "
                "microseconds (about 292,000 years), and fit the time column's unit"
            )
        return {"micros": micros}
    if not I64_MIN <= value <= I64_MAX:
        raise ConfigError(
            f"{what}: {value} is out of range; an integer duration must be between "
            f"-2**63 and 2**63 - 1 ({I64_MAX:,}) units of the time column"
        )
    return {"count": value}


def window(spec: Any) -> dict[str, Any]:
    """A window spec as the plan holds it."""
    kind = spec.kind

    def part(value: DurationLike | None, name: str) -> dict[str, Any] | None:
        return span(value, f"{kind} {name}" if kind in ("session", "sliding", "stagger") else f"{kind} window {name}")

    if kind == "tumbling":
        return {"kind": kind, "every": part(spec.every, "every"), "offset": part(spec.offset, "offset"),
                "tz": spec.tz}
    if kind == "hopping":
        return {"kind": kind, "period": part(spec.period, "period"), "every": part(spec.every, "every"),
                "offset": part(spec.offset, "offset"), "tz": spec.tz}
    if kind == "cumulative":
        return {"kind": kind, "period": part(spec.period, "period"), "step": part(spec.every, "step"),
                "offset": part(spec.offset, "offset")}
    if kind == "rows":
        return {"kind": kind, "window": None if spec.inner is None else window(spec.inner)}
    if kind == "stagger":
        return {"kind": kind, "range": part(spec.every, "range")}
    if kind == "session":
        return {"kind": kind, "gap": part(spec.every, "gap"), "max_duration": part(spec.period, "max_duration")}
    if spec.rows is not None:
        return {"kind": kind, "rows": spec.rows}
    return {"kind": kind, "period": part(spec.period, "window period"), "closed": spec.closed}


def layout(spec: Any, unit: str, tz: str | None) -> dict[str, Any]:
    """The window in a time unit (see ``_core.window_layout``)."""
    return _core.window_layout(json.dumps(window(spec)), unit, tz)


def _text(value: str | pl.Expr | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def agg(a: Agg) -> dict[str, Any]:
    """An aggregate as the plan holds it."""
    weight = a.weight if a.weight is None or isinstance(a.weight, str) else a.weight.meta.output_name()
    return {"kind": a.kind, "name": a.name, "input": a.input_name(), "where": _text(a.where),
            "weight": weight, "options": dict(a.options)}


def describe_source(source: Any) -> str:
    """What a stream reads, for people."""
    if isinstance(source, QueryBase):
        return f"the output of {source!r}"
    if isinstance(source, pl.DataFrame):
        return f"polars DataFrame ({source.height:,} rows, {source.width} columns)"
    if isinstance(source, pl.LazyFrame):
        return "polars LazyFrame"
    if isinstance(source, (list, tuple)):
        return f"{len(source):,} micro-batches ({type(source).__name__})"
    if type(source).__module__.startswith("rillet"):  # the sources' own reprs say what they read
        text = repr(source)
        if not text.startswith("<") and len(text) <= 300:
            return text
    return f"{type(source).__name__} (micro-batches)"


def steps(stream: Any) -> list[str]:
    """A stream's row-wise steps, for people."""
    out = []
    for op, args, kwargs in stream._ops:
        if op == "join":  # says itself what it joins, and how
            out.append(repr(args[0]))
            continue
        parts = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
        out.append(f"{op}({', '.join(parts)})")
    return out


def of(query: QueryBase) -> _core.Plan:
    """The query's plan, checked by the core."""
    w = query._w
    s = w._stream
    # A query's output, or two streams joined: the watermark comes with the rows.
    carried = isinstance(s._source, QueryBase) or getattr(s._source, "carries_watermark", False)
    delay = span(s._watermark, "watermark") or {"count": 0}
    plan = {
        "source": describe_source(s._source),
        "steps": steps(s),
        "time": s._time,
        "processing_time": s._processing_time is not None,
        "watermark": {"carried" if carried else "span": delay},
        "idle_timeout_ms": None if s._idle_timeout is None else wall_ms(s._idle_timeout, "idle_timeout"),
        "flush": s._flush,
        "window": window(w._spec),
        "by": list(w._by),
        "lateness": span(w._lateness, "lateness") or {"count": 0},
        "emit": w._emit,
        "late": w._late,
        "revise": w._revise,
        "early_ms": w._early_ms,
        "aggs": [agg(a) for a in query._aggs],
    }
    return _core.Plan(json.dumps(plan))


def inputs(query: QueryBase, df: pl.DataFrame) -> tuple[list[pl.Expr], pl.DataFrame]:
    """The columns the plan reads, as the user's expressions give them (the time column, the
    keys, and per aggregate ``i`` its value ``__rl_v{i}``, filter ``__rl_w{i}`` and weight
    ``__rl_x{i}``), and an empty frame of the stream's columns plus those, for typing."""
    w = query._w
    tcol = w._stream._time
    plain = [c for c, t in df.schema.items() if t != pl.Object]
    if w._spec.kind == "rows":
        # No window: every column passes through.
        return [pl.col(c) for c in plain], df.head(0).select(plain)
    exprs: list[pl.Expr] = [pl.col(tcol)] if tcol in df.schema else []
    for k in w._by:
        dtype = df.schema.get(k)
        if dtype == pl.Object:
            raise SchemaError(
                f"cannot group by {k!r} of type {dtype}; use string, integer, boolean, date or datetime keys"
            )
        if dtype is not None and k != tcol:
            exprs.append(pl.col(k))
    probe = df.head(0)
    extra: list[pl.Expr] = []
    for i, a in enumerate(query._aggs):
        if a.weight is not None:
            wexpr = pl.col(a.weight) if isinstance(a.weight, str) else a.weight
            extra.append(_checked(probe, wexpr, f"weight= of {a.name!r}").alias(f"__rl_x{i}"))
        if a.column is not None:
            if isinstance(a.column, str) and a.column not in df.schema:
                raise SchemaError(
                    f"rl.{a.kind}({a.column!r}): column not found; the stream has columns {list(df.schema)}"
                )
            expr = pl.col(a.column) if isinstance(a.column, str) else a.column
            extra.append(_checked(probe, expr, f"rl.{a.kind}({a.input_name()!r})").alias(f"__rl_v{i}"))
        if a.where is not None:
            extra.append(_checked(probe, a.where, f"where= of {a.name!r}").alias(f"__rl_w{i}"))
    return exprs + extra, probe.select(plain).with_columns(extra)


def _checked(probe: pl.DataFrame, expr: pl.Expr, what: str) -> pl.Expr:
    """``expr``, once polars has checked it against the stream's columns."""
    try:
        probe.select(expr)
    except pl.exceptions.PolarsError as e:
        raise SchemaError(f"{what}: {e}") from e
    return expr


def casts(batch: Any) -> dict[str, pl.DataType]:
    """Column types from the core (an empty Arrow batch) as polars types."""
    return dict(pl.DataFrame(batch).schema)
