"""``rl.sql``: one streaming SELECT over named sources, as a :class:`rillet.Query`."""
from __future__ import annotations

import json
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError
from rillet.plan.plan import QueryBase
from rillet.query.stream import Query, Stream
from rillet.sources.base import _is_arrow
from rillet.sources.cloudtrail import CloudTrailFiles
from rillet.sources.files import FileSource
from rillet.sources.reference import Reference
from rillet.sql.build import Builder, _floor_time


def sql(text: str, **sources: Any) -> Query:
    """A streaming SELECT as a query: each name in ``FROM`` is a keyword argument holding a
    source (a DataFrame, an Arrow table, a ``rl.read_*`` / ``rl.tail_*`` source, ...), a
    :class:`Stream` (its ``time=`` and ``watermark=`` declare the event time) or a query.

    Both Kinesis Data Analytics' dialect (``SELECT STREAM``, ``ROWTIME``, ``STEP(... BY
    INTERVAL ...)``, ``FLOOR(... TO ...)``, ``WINDOW w AS (... RANGE ... PRECEDING)``,
    ``TOP_K_ITEMS_TUMBLING``) and Flink's window table functions (``TUMBLE``, ``HOP``,
    ``CUMULATE``, ``SESSION``, window Top-N) are read; docs/sql.md has the grammar::

        q = rl.sql('''
            SELECT window_start, window_end, eventName, COUNT(*) AS calls
            FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '1' MINUTE))
            GROUP BY window_start, window_end, eventName''',
            trail=rl.stream(rl.read_cloudtrail("logs/"), time="eventTime", watermark="5m"))
        q.collect()

    The result is an ordinary :class:`Query`: ``collect``, ``run``, ``start``, the sinks,
    ``explain``. A text the parser cannot read, or a construct rillet does not support,
    raises :class:`rillet.SqlError` with the line, the column and a caret."""
    if not isinstance(text, str):
        raise ConfigError(f"rl.sql() takes the query as a string, got {type(text).__name__}")
    info = inputs_info(sources)
    plan = json.loads(_core.sql_query(text, json.dumps(info)))
    return Builder(text, sources).query(plan)


def inputs_info(sources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What the SQL planner is told of each input: its columns when they can be known
    without consuming it, and its declared event time."""
    return {name: {"columns": columns_of(value), "time": time_of(value),
                   "window_time": value._window_time if isinstance(value, QueryBase) else None,
                   "kind": kind_of(value)}
            for name, value in sources.items()}


def kind_of(value: Any) -> str | None:
    """What an input is in a join: ``"reference"`` (always a table), ``"frame"`` (a DataFrame,
    LazyFrame or Arrow table given as it is: the table of a join without a time bound, else
    a stream), or None (a stream)."""
    if isinstance(value, Reference):
        return "reference"
    if isinstance(value, (pl.DataFrame, pl.LazyFrame)) or _is_arrow(value):
        return "frame"
    return None


def time_of(value: Any) -> str | None:
    if isinstance(value, Stream):
        return value._time
    if isinstance(value, QueryBase):
        return _floor_time(value, "ROWTIME")
    return None


def columns_of(value: Any) -> list[str] | None:
    """An input's columns, read without consuming it: a DataFrame's or LazyFrame's schema,
    an Arrow object's, a list of micro-batches' first, a file source's first chunk, a stream
    over one of those, a query's output. None for what can be read only once (iterators,
    live tails and consumers)."""
    if isinstance(value, QueryBase):
        if value._columns is not None:
            return list(value._columns)
        w = value._w
        bounds = [w._stream._time] if w._spec.kind == "sliding" else ["window_start", "window_end"]
        extra = {"amend": ["revision"], "changelog": ["op"]}.get(w._emit, [])
        return [*w._by, *bounds, *[a.name for a in value._aggs], *extra]
    if isinstance(value, pl.DataFrame):
        return value.columns
    if isinstance(value, Reference):
        return value.read()[0].columns
    if _in_memory_batches(value):
        held = [pl.DataFrame(b) for b in value]
        return next((b.columns for b in held if b.width), None)
    if isinstance(value, pl.LazyFrame):
        return value.collect_schema().names()
    if _is_arrow(value):
        return pl.DataFrame(value).columns
    if isinstance(value, (FileSource, CloudTrailFiles)):
        return Stream(value, "__unused")._peek(0, 10.0).columns
    if isinstance(value, Stream):
        root = value._source
        if (isinstance(root, (pl.DataFrame, pl.LazyFrame, FileSource, CloudTrailFiles, QueryBase))
                or _is_arrow(root) or _in_memory_batches(root)):
            return value._peek(0, 10.0).columns
    return None


def _in_memory_batches(value: Any) -> bool:
    """A list or tuple of DataFrames or Arrow objects: micro-batches held in memory, which
    can be looked at without consuming them (an iterator or generator cannot)."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(isinstance(b, pl.DataFrame) or _is_arrow(b) for b in value))
