"""Hypothesis strategies for random streams, shared by the property tests.

A drawn case is a polars DataFrame in arrival order (with a row id column ``rid``), plus a
query configuration in integer units. For datetime streams the integer times are seconds
since the epoch and :func:`build_query` turns every duration into a string or timedelta.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl
from hypothesis import strategies as st

import rillet as rl

KEY_VALUES: dict[str, list[Any]] = {
    "str": ["a", "b", "ab", None],
    "int": [-1, 0, 7, None],
    "bool": [True, False, None],
}
KEY_DTYPES = {"str": pl.String, "int": pl.Int64, "bool": pl.Boolean}
UNIT_PER_SECOND = {"ns": 10**9, "us": 10**6, "ms": 10**3}


@dataclass
class Case:
    df: pl.DataFrame  # the input, arrival order; time column "t" (Int64 seconds or Datetime)
    times: list[int | None]  # "t" in integer seconds (None = null time)
    keys: list[str]
    kind: str  # "tumbling" | "hopping"
    period: int
    every: int
    offset: int | None
    delay: int
    lateness: int
    flush: bool
    time_kind: str  # "int" | "datetime"
    unit: str | None = None  # datetime unit
    tz: str | None = None
    use_filter: bool = False

    @property
    def offset0(self) -> int:
        return self.offset or 0

    def window_dtype(self) -> pl.DataType:
        if self.time_kind == "int":
            return pl.Int64
        return pl.Datetime(self.unit, self.tz)  # type: ignore[arg-type]

    def to_window_type(self, seconds: pl.Expr) -> pl.Expr:
        """Integer seconds -> the window columns' dtype."""
        if self.time_kind == "int":
            return seconds.cast(pl.Int64)
        assert self.unit is not None
        return (seconds.cast(pl.Int64) * UNIT_PER_SECOND[self.unit]).cast(self.window_dtype())


def _duration(case_kind: str, seconds: int, style: str) -> Any:
    """A duration as the user would write it for this time column."""
    if case_kind == "int":
        return f"{seconds}i" if style == "str" else seconds
    if style == "str":
        return f"{seconds}s"
    return dt.timedelta(seconds=seconds)


@st.composite
def cases(draw: st.DrawFn, time_kind: str | None = None, kind: str | None = None,
          max_rows: int = 40) -> Case:
    time_kind = time_kind or draw(st.sampled_from(["int", "datetime"]))
    kind = kind or draw(st.sampled_from(["tumbling", "hopping"]))
    n = draw(st.integers(0, max_rows))
    step = draw(st.sampled_from([0, 1, 2, 5]))
    jitter = draw(st.integers(0, 25))
    base = draw(st.integers(-60, 30))
    null_rate = draw(st.sampled_from([0, 0, 10]))
    times: list[int | None] = []
    for i in range(n):
        if null_rate and draw(st.integers(0, null_rate - 1)) == 0:
            times.append(None)
        else:
            times.append(base + i * step + draw(st.integers(-jitter, jitter)))
    n_keys = draw(st.integers(0, 3))
    key_types = [draw(st.sampled_from(sorted(KEY_VALUES))) for _ in range(n_keys)]
    columns: dict[str, pl.Series] = {"rid": pl.Series("rid", range(n), dtype=pl.Int64)}
    keys = []
    for j, kt in enumerate(key_types):
        name = f"k{j}"
        keys.append(name)
        vals = draw(st.lists(st.sampled_from(KEY_VALUES[kt]), min_size=n, max_size=n))
        columns[name] = pl.Series(name, vals, dtype=KEY_DTYPES[kt])
    xs = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
    ys = draw(st.lists(
        st.one_of(st.none(), st.integers(-40, 40).map(lambda v: v / 4)), min_size=n, max_size=n
    ))
    es = draw(st.lists(st.sampled_from([None, "AccessDenied"]), min_size=n, max_size=n))
    columns["x"] = pl.Series("x", xs, dtype=pl.Int64)
    columns["y"] = pl.Series("y", ys, dtype=pl.Float64)
    columns["e"] = pl.Series("e", es, dtype=pl.String)

    every = draw(st.integers(1, 15))
    if kind == "tumbling":
        period = every
    else:
        period = every * draw(st.integers(1, 3)) + draw(st.integers(0, every - 1))
    offset = draw(st.one_of(st.none(), st.integers(-20, 20)))
    delay = draw(st.integers(0, 12))
    lateness = draw(st.integers(0, 12))
    flush = draw(st.booleans())
    use_filter = draw(st.booleans())

    unit = tz = None
    tseries = pl.Series("t", times, dtype=pl.Int64)
    if time_kind == "datetime":
        unit = draw(st.sampled_from(["ns", "us", "ms"]))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        tseries = (tseries * UNIT_PER_SECOND[unit]).cast(pl.Datetime(unit, tz))
    columns["t"] = tseries
    df = pl.DataFrame(list(columns.values()))
    return Case(df, times, keys, kind, period, every, offset, delay, lateness, flush,
                time_kind, unit, tz, use_filter)


FILTER = pl.col("x").is_null() | (pl.col("x") != 3)


def aggregates() -> list[rl.Agg]:
    return [
        rl.count(),
        rl.count("x"),
        rl.sum("x"),
        rl.sum("y"),
        rl.mean("y"),
        rl.min("x"),
        rl.max("y2"),
        rl.count(where=pl.col("e").is_not_null()).alias("failures"),
        rl.sum("y", where=pl.col("x") > 0).alias("y_pos_x"),
    ]


def build_query(case: Case, source: Any = None, emit: str = "final", late: str = "collect",
                style: str = "mixed") -> rl.Query:
    """The rillet query for a case. ``style`` picks how durations are spelled."""
    src = case.df if source is None else source

    def d(seconds: int, i: int) -> Any:
        s = style if style != "mixed" else ("str" if (seconds + i) % 2 else "native")
        return _duration(case.time_kind, seconds, s)

    stream = rl.stream(src, time="t", watermark=d(case.delay, 0), flush=case.flush)
    if case.use_filter:
        stream = stream.filter(FILTER)
    stream = stream.with_columns(y2=pl.col("y") * 2)
    if case.kind == "tumbling":
        spec = rl.tumbling(d(case.every, 1), offset=None if case.offset is None else d(case.offset, 2))
    else:
        spec = rl.hopping(d(case.period, 3), d(case.every, 1),
                          offset=None if case.offset is None else d(case.offset, 2))
    by = case.keys if len(case.keys) != 1 else case.keys[0]
    return (
        stream.window(spec, by=by or None, lateness=d(case.lateness, 4), emit=emit, late=late)
        .agg(*aggregates())
    )


def engine_rows(case: Case) -> pl.DataFrame:
    """The rows the window operator sees: the input after the per-batch filter."""
    return case.df.filter(FILTER) if case.use_filter else case.df
