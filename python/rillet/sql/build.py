"""From a plan the core's SQL front end made (``src/sql``) to a query built with the Python
API: a stream with its row-wise steps, ``.window(...)``, ``.agg(...)``, and the steps over
what it emits. A SQL query is therefore the same query as one built in Python."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError
from rillet.plan import aggregates as _aggs
from rillet.plan import windows as _windows
from rillet.plan.detectors import DetectorSpec
from rillet.plan.plan import PostStep, QueryBase
from rillet.plan.windows import WindowSpec
from rillet.query.stream import Query, Stream, Windowed, processing_time
from rillet.sources.base import to_frame
from rillet.sources.reference import Reference

#: SQL types a pump's target stream declares, as polars types (by the type's first word).
SQL_TYPES: dict[str, pl.DataType] = {
    "BIGINT": pl.Int64(), "LONG": pl.Int64(), "INTEGER": pl.Int32(), "INT": pl.Int32(),
    "SMALLINT": pl.Int16(), "TINYINT": pl.Int8(), "DOUBLE": pl.Float64(), "FLOAT": pl.Float64(),
    "REAL": pl.Float32(), "DECIMAL": pl.Float64(), "NUMERIC": pl.Float64(),
    "VARCHAR": pl.String(), "CHAR": pl.String(), "CHARACTER": pl.String(), "STRING": pl.String(),
    "TEXT": pl.String(), "BOOLEAN": pl.Boolean(), "DATE": pl.Date(), "VARBINARY": pl.Binary(),
    "BINARY": pl.Binary(),
}


def sql_error(message: str, line: int = 0, column: int = 0, text: str | None = None) -> Exception:
    """A :class:`rillet.SqlError` at ``line``/``column`` of ``text`` (with a caret)."""
    shown = message
    if line and text is not None:
        lines = text.splitlines()
        if 0 < line <= len(lines):
            shown = f"line {line}, column {column}: {message}\n  {lines[line - 1]}\n  {' ' * (column - 1)}^"
    err = _core.SqlError(shown)
    err.line, err.column = line, column  # as the core sets them
    return err


class Builder:
    """Builds the queries of one SQL text. ``inputs`` are the caller's sources by name;
    ``streams`` gives an in-application stream's query by name (an application's)."""

    def __init__(self, text: str, inputs: dict[str, Any],
                 streams: Callable[[str], Query] | None = None) -> None:
        self.text = text
        self.inputs = inputs
        self.streams = streams

    # -- values -------------------------------------------------------------------------
    def expr(self, scalar: Any) -> pl.Expr:
        """A value the plan computes, as a polars expression."""
        if scalar == "null":
            return pl.lit(None)
        (kind, value), = scalar.items()
        if kind == "col":
            return pl.col(value)
        if kind == "all":
            return pl.all().exclude(value) if value else pl.all()
        if kind == "truncate":
            every = value["every"]
            col = pl.col(value["column"])
            return (col // every) * every if isinstance(every, int) else col.dt.truncate(every)
        try:
            return pl.sql_expr(value["text"])
        except pl.exceptions.PolarsError as e:
            raise sql_error(f"polars' SQL cannot read {value['text']}: {e}", value["line"],
                            value["column"], self.text) from e

    def named(self, items: list[Any]) -> list[pl.Expr]:
        """``(name, value)`` pairs as aliased expressions (``*``: every column, as they are)."""
        return [(pl.all().exclude("ROWTIME", r"^__rl_.*$") if v == {"col": "*"} else self.expr(v))
                if n == "*" else self.expr(v).alias(n) for n, v in items]

    # -- steps --------------------------------------------------------------------------
    def stream_steps(self, stream: Stream, steps: list[Any]) -> Stream:
        """The plan's row-wise steps before the window, as stream steps."""
        for step in steps:
            (kind, value), = step.items()
            if kind == "filter":
                stream = stream.filter(self.expr(value))
            elif kind == "with_columns":
                stream = stream.with_columns(*self.named(value))
            elif kind == "select":
                stream = stream._with("select", tuple(self.named(value)), {})
            elif kind == "detect":
                options = tuple((k, v) for k, v in value.items() if k != "kind")
                stream = stream.detect(DetectorSpec(value["kind"], (), options))
            elif kind == "join":
                stream = self.join(stream, value)
            else:  # pragma: no cover - the planner puts no other step before a window
                raise ConfigError(f"unexpected step before the window: {step}")
        return stream

    def join(self, stream: Stream, plan: dict[str, Any]) -> Stream:
        """A planned join: with a table (``Stream.join``), or with another stream within a
        time bound (``join_interval``) or as of each row's time (``join_asof``)."""
        try:
            return self._join(stream, plan)
        except ConfigError as e:
            if isinstance(e, _core.SqlError):
                raise
            raise sql_error(f"this join cannot be built: {e}", plan["line"], plan["column"], self.text) from e

    def _join(self, stream: Stream, plan: dict[str, Any]) -> Stream:
        right, how, suffix = plan["right"], plan["how"], plan["suffix"]
        left_on, right_on = plan["left_on"], plan["right_on"]
        if plan["kind"] == "table":
            return stream.join(self.table(right), how=how, left_on=left_on, right_on=right_on, suffix=suffix)
        other = self.stream(right)
        if plan["kind"] == "interval":
            return stream.join_interval(other, left_on=left_on, right_on=right_on, lower=plan["lower"],
                                        upper=plan["upper"], how=how, suffix=suffix)
        spec = {"kind": {"asof": {"tolerance": None}}, "left_on": left_on, "right_on": right_on,
                "how": "left", "suffix": suffix}
        return stream._joined(other, spec)

    def table(self, plan: dict[str, Any]) -> Any:
        """The table side of a join: the input as given (a DataFrame, Arrow table or
        reference), through the steps of a sub-query over it, run once."""
        (kind, name), = plan["input"].items()
        given = self.inputs[name]
        if isinstance(given, Reference):
            return given
        frame = to_frame(given)
        for step in plan["steps"]:
            (kind, value), = step.items()
            try:
                if kind == "filter":
                    frame = frame.filter(self.expr(value))
                elif kind == "with_columns":
                    frame = frame.with_columns(*self.named(value))
                elif kind == "select":
                    frame = frame.select(*self.named(value))
                else:  # pragma: no cover - the planner puts no other step on a table
                    raise ConfigError(f"unexpected step on a table: {step}")
            except pl.exceptions.PolarsError as e:
                raise ConfigError(f"the sub-query over table {name!r} failed: {e}") from e
        return frame

    def post_steps(self, steps: list[Any]) -> tuple[PostStep, ...]:
        """The plan's steps over what the window emits."""
        out = []
        for step in steps:
            (kind, value), = step.items()
            out.append(self.post_step(kind, value))
        return tuple(out)

    def post_step(self, kind: str, value: Any) -> PostStep:
        if kind == "select":
            exprs = self.named(value)
            names = ", ".join(n for n, _ in value)
            return PostStep(f"select {names}", lambda df: df.select(exprs))
        if kind == "filter":
            cond = self.expr(value)
            return PostStep(f"filter {cond}", lambda df: df.filter(cond))
        if kind == "sort":
            by, desc, nulls = value["by"], value["descending"], value["nulls_last"]
            return PostStep(
                f"sort by {by} (descending {desc}) within each emitted batch",
                lambda df: df.sort(by, descending=desc, nulls_last=nulls, maintain_order=True),
            )
        if kind == "explode":
            col, v, c = value["column"], value["value"], value["count"]

            def explode(df: pl.DataFrame) -> pl.DataFrame:
                rows = df.explode(col).filter(pl.col(col).is_not_null())
                return rows.with_columns(pl.col(col).struct.field("value").alias(v),
                                         pl.col(col).struct.field("count").alias(c)).drop(col)

            return PostStep(f"one row per item of {col}: {v}, {c}", explode)
        if kind == "cast":
            return PostStep(f"cast to {dict(value)}", lambda df: cast_columns(df, value))
        raise ConfigError(f"unexpected step after the window: {kind}")  # pragma: no cover

    # -- queries ------------------------------------------------------------------------
    def stream(self, plan: dict[str, Any]) -> Stream:
        """The stream a plan reads, with its steps."""
        source = plan["input"]
        time = plan["time"]
        (kind, value), = source.items()
        if kind == "query":
            up = self.query(value)
            stream = Stream(up, _upstream_time(up, time, value.get("rowtime")),
                            watermark=plan.get("watermark") or 0)
        elif kind == "stream":
            if self.streams is None:  # pragma: no cover - the planner only names streams in apps
                raise ConfigError(f"in-application stream {value} outside an application")
            up = self.streams(value)
            stream = Stream(up, "ROWTIME", watermark=0)
        else:
            given = self.inputs[value]
            if isinstance(given, Stream):
                stream = given
            elif isinstance(given, QueryBase):
                stream = Stream(given, _upstream_time(given, time, None), watermark=plan.get("watermark") or 0)
            elif time == "rowtime":
                stream = Stream(given, processing_time("ROWTIME"))
            else:
                (_, column), = time.items()
                stream = Stream(given, column, watermark=plan.get("watermark"))
        return self.stream_steps(stream, plan["steps"])

    def query(self, plan: dict[str, Any]) -> Query:
        """The query a plan describes."""
        stream = self.stream(plan)
        w = plan["window"]
        if w is None:
            # No aggregates: the rows pass through (the core's rows operator), or each
            # window's rows come out together when it closes.
            listed = plan.get("rows_window")
            spec = WindowSpec("rows", None, 0, inner=None if listed is None else window_spec(listed))
            q = Query(Windowed(stream, spec, (), 0, "final", "collect"), ())
        else:
            aggs = [self.aggregate(a) for a in plan["aggs"]]
            q = stream.window(window_spec(w), by=plan["by"]).agg(*aggs)
        floors = {}
        if plan.get("rowtime"):
            if w is None and plan.get("rows_window") is not None:
                # Rows listed by a window keep their own time, at or after their window's
                # start: rows still to come carry at least the smallest start to come.
                floors[plan["rowtime"]] = "window_start"
            else:
                row_time = w is None or w["kind"] == "sliding"
                floors[plan["rowtime"]] = "row_time" if row_time else "window_end"
        if plan.get("window_start"):
            floors[plan["window_start"]] = "window_start"
        if w is not None and w["kind"] != "sliding":
            # A window's end selected as it is (`window_end`, or an alias of it) bounds the
            # rows' time too: a join may take it as the event time.
            for step in plan["post"]:
                if "select" in step:
                    for name, value in step["select"]:
                        if value == {"col": "window_end"}:
                            floors.setdefault(name, "window_end")
        if plan.get("window_time"):
            # Flink's window_time, the end less a millisecond: a query windowing on it reads
            # the upstream's watermark less a millisecond (its own watermark="1ms").
            floors[plan["window_time"]] = "window_end"
        q = q._then(self.post_steps(plan["post"]), floors, plan["columns"])
        q._window_time = plan.get("window_time")
        return q

    def aggregate(self, a: dict[str, Any]) -> _aggs.Agg:
        kind = a["kind"]
        col = a["column"]
        column: str | pl.Expr | None = None if col is None else (col["col"] if "col" in col else self.expr(col))
        where = None if a["where"] is None else self.expr(a["where"])
        opts = a["options"]
        if kind == "count":
            return _aggs.count(column, where=where).alias(a["name"])
        if column is None:  # pragma: no cover - the planner gives every other aggregate an input
            raise ConfigError(f"{kind} needs an input column")
        if kind in ("var", "std"):
            agg = getattr(_aggs, kind)(column, opts["ddof"], where=where)
        elif kind == "quantile":
            agg = _aggs.quantile(column, opts["q"], interpolation=opts.get("interpolation", "nearest"),
                                 where=where)
        elif kind == "approx_quantile":
            agg = _aggs.approx_quantile(column, opts["q"], where=where)
        elif kind == "current":  # a sliding window's own row's value (no public constructor)
            agg = _aggs._make("current", column, where, "current")
        elif kind == "top_k":
            agg = _aggs.top_k(column, opts["k"], where=where)
        else:
            agg = getattr(_aggs, kind)(column, where=where)
        return agg.alias(a["name"])


def window_spec(w: dict[str, Any]) -> _windows.WindowSpec:
    """A planned window as the Python API's window."""
    kind, args = w["kind"], w["args"]
    if kind == "tumbling":
        return _windows.tumbling(args["every"], offset=args.get("offset"))
    if kind == "hopping":
        return _windows.hopping(args["period"], args["every"], offset=args.get("offset"))
    if kind == "cumulative":
        return _windows.cumulative(args["period"], args["step"], offset=args.get("offset"))
    if kind == "session":
        return _windows.session(args["gap"])
    if kind == "stagger":
        return _windows.stagger(args["range"])
    if "rows" in args:
        return _windows.sliding(rows=args["rows"])
    return _windows.sliding(args["period"], closed=args.get("closed", "right"))


def sql_dtype(sql_type: str) -> pl.DataType | None:
    """A declared SQL type (``VARCHAR(10)``, ``DOUBLE PRECISION``, ``TIMESTAMP``) as a polars
    type, by its first word; None for a type rillet does not know."""
    base = sql_type.split("(")[0].strip().split(" ")[0].upper()
    return pl.Datetime("us", "UTC") if base == "TIMESTAMP" else SQL_TYPES.get(base)


def cast_columns(df: pl.DataFrame, types: list[tuple[str, str]]) -> pl.DataFrame:
    """A pump's output cast to its target stream's declared types (TIMESTAMP keeps the
    column's Datetime unit and zone; unknown types leave the column as it is)."""
    exprs = []
    for name, sql_type in types:
        target = sql_dtype(sql_type)
        current = df.schema[name]
        if target is None or current == target or (isinstance(target, pl.Datetime)
                                                    and isinstance(current, pl.Datetime)):
            continue
        exprs.append(pl.col(name).cast(target))
    return df.with_columns(exprs) if exprs else df


def _upstream_time(query: QueryBase, time: Any, preferred: str | None) -> str:
    """The event time of a stream over ``query``'s rows: the column the plan declares, when
    the query's output bounds it, else its window's end."""
    if isinstance(time, dict) and "declared" in time and time["declared"] in query._floors:
        return time["declared"]
    return _floor_time(query, preferred)


def _floor_time(query: QueryBase, preferred: str | None) -> str:
    """The output column of ``query`` a query reading it takes as its event time."""
    floors = query._floors
    if preferred in floors:
        return preferred
    for column, bound in floors.items():
        if bound in ("window_end", "row_time"):
            return column
    raise ConfigError(
        "this query's output keeps no window bound (window_end) to read it as a stream by; "
        "select window_end (or ROWTIME) in it"
    )
