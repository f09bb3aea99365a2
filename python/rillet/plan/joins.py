"""Join specifications for :meth:`rillet.Stream.join` and :meth:`rillet.Stream.join_asof` with
a table: configuration only, checked by the core when built. The joins run in the Rust core
(src/join)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError
from rillet.plan.plan import QueryBase, span

HOWS = ("left", "inner")


def columns(value: str | pl.Expr | Sequence[str | pl.Expr] | None, what: str) -> list[str]:
    """``on=``-style arguments as column names (a name, a plain ``pl.col``, or a list)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, pl.Expr)) else value
    if not isinstance(items, Sequence):
        raise ConfigError(f"{what}= takes a column name or a list of them, got {type(value).__name__} {value!r}")
    out = []
    for item in items:
        if isinstance(item, pl.Expr) and item.meta.is_column():
            out.append(item.meta.output_name())
        elif isinstance(item, str) and item:
            out.append(item)
        else:
            raise ConfigError(
                f"{what}= takes column names or plain pl.col('name'); {item} is not one "
                "(add a computed key as a column first, with .with_columns(...))"
            )
    if len(set(out)) != len(out):
        raise ConfigError(f"{what}= names a column twice: {out}")
    return out


@dataclass(frozen=True, eq=False)
class TableJoin:
    """A join of a stream with a table: ``table`` is a DataFrame or a reference file
    (:func:`rillet.reference`), ``spec`` the core's JSON."""

    table: Any
    spec: str

    @staticmethod
    def build(table: Any, left_on: list[str], right_on: list[str], how: str, suffix: str,
              asof: dict[str, Any] | None = None) -> TableJoin:
        if how not in HOWS:
            raise ConfigError(f"how={how!r} is not a join kind; expected one of {HOWS}")
        if not isinstance(suffix, str) or not suffix:
            raise ConfigError(f"suffix= must be a non-empty string such as '_right', got {suffix!r}")
        spec = json.dumps({"left_on": left_on, "right_on": right_on, "how": how, "suffix": suffix,
                           "asof": asof})
        if isinstance(table, pl.DataFrame):
            _core.TableJoin(spec, table)  # the core checks the spec and the table's columns now
        return TableJoin(table, spec)

    def options(self) -> dict[str, Any]:
        return dict(json.loads(self.spec))

    def method(self) -> str:
        """The Stream method that made it."""
        return "join" if self.options()["asof"] is None else "join_asof"

    def __repr__(self) -> str:
        o = self.options()
        table = f"<table of {self.table.height} rows>" if isinstance(self.table, pl.DataFrame) else repr(self.table)
        keys = f"on={o['left_on']}" if o["left_on"] == o["right_on"] else \
            f"left_on={o['left_on']}, right_on={o['right_on']}"
        if o["asof"] is not None:
            return f"join_asof({table}, on={o['asof']['right_time']!r}, by={o['left_on']})"
        return f"join({table}, {keys}, how={o['how']!r})"


def asof_options(time: str, on: str, tolerance: Any) -> dict[str, Any]:
    """The as-of part of a join spec: the stream's and the table's time columns, the
    tolerance as the plan holds durations."""
    if isinstance(tolerance, bool):
        raise ConfigError(f"tolerance= takes a duration such as '10m' (or an integer for integer times), got {tolerance!r}")
    return {"left_time": time, "right_time": on, "tolerance": span(tolerance, "tolerance")}


def carries(source: Any) -> bool:
    """Whether a stream's source hands its watermark on with its rows (a query, a join)."""
    return isinstance(source, QueryBase) or bool(getattr(source, "carries_watermark", False))


class StreamJoin:
    """Two streams joined (:meth:`rillet.Stream.join_interval`, or
    :meth:`~rillet.Stream.join_asof` with a stream): the source of the stream it makes, whose
    watermark comes from the join (the smallest left time it can still emit)."""

    carries_watermark = True

    def __init__(self, left: Any, right: Any, spec: dict[str, Any]) -> None:
        self.left = left
        self.right = right
        spec = {**spec, "left_time": left._time, "right_time": right._time,
                "left_delay": span(left._watermark, "watermark") or {"count": 0},
                "right_delay": span(right._watermark, "watermark") or {"count": 0},
                # A side reading a query or a join takes that one's watermark.
                "carried": [carries(left._source), carries(right._source)]}
        self.spec = json.dumps(spec)
        _core.StreamJoin(self.spec)  # the core checks the spec now; the columns at the first rows
        self._sides: tuple[Any, Any] | None = None

    def sides(self) -> tuple[Any, Any]:
        """The two inputs as queries whose rows pass through (times read, bad ones rejected),
        made once, so every run of the flow shares them."""
        if self._sides is None:
            self._sides = (self.left._rows(), self.right._rows())
        return self._sides

    def kind(self) -> str:
        return next(iter(json.loads(self.spec)["kind"]))

    def __repr__(self) -> str:
        o = json.loads(self.spec)
        keys = f"on={o['left_on']}" if o["left_on"] == o["right_on"] else \
            f"left_on={o['left_on']}, right_on={o['right_on']}"
        if self.kind() == "interval":
            spans = o["kind"]["interval"]
            what = (f"join_interval({self.right!r}, {keys}, lower={_shown(spans['lower'])}, "
                    f"upper={_shown(spans['upper'])}, how={o['how']!r})")
        else:
            tolerance = o["kind"]["asof"]["tolerance"]
            what = f"join_asof({self.right!r}, by={o['left_on']}" + (
                f", tolerance={_shown(tolerance)})" if tolerance is not None else ")")
        return f"{self.left!r}.{what}"


def _shown(span: dict[str, Any]) -> str:
    """A duration as the plan holds it, as the user wrote it."""
    (kind, value), = span.items()
    return repr(value) if kind != "micros" else f"timedelta(microseconds={value})"
