"""Sliding windows over rows (``rl.sliding(rows=n)``, SQL's ``ROWS n PRECEDING``).

The contract: each accepted row's window is the row and the ``n`` accepted rows of its key
before it in (time, arrival) order; rows with the same time are taken in arrival order, so a
row does not see the ones that arrived after it. Acceptance and lateness are as for any
sliding window (a row is late when ``t + 1 + lateness <= wm``), and a window of rows only
comes out final. The oracle is DuckDB's ``ROWS n PRECEDING`` over the accepted rows, ordered
by time then arrival; it shares no code with the engine.
"""
from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_windows_sliding import AGG_NAMES, SlidingCase, accepted_rows, rillet_aggs, simulate, sliding_cases

import rillet as rl

SIZES = [1, 7, None]


def rows_query(c: SlidingCase, n: int, source: Any = None) -> rl.Query:
    by = c.keys if len(c.keys) != 1 else c.keys[0]
    return (
        rl.stream(c.df if source is None else source, time="t", watermark=c.duration(c.delay), flush=c.flush)
        .window(rl.sliding(rows=n), by=by or None, lateness=c.duration(c.lateness))
        .agg(*rillet_aggs())
    )


def duckdb_rows(rows: pl.DataFrame, keys: list[str], n: int) -> pl.DataFrame:
    """DuckDB's ROWS n PRECEDING over ``rows`` (arrival order in ``rid``), sorted by key, time
    and arrival."""
    partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
    key_list = "".join(f"{k}, " for k in keys)
    return duckdb.sql(f"""
        SELECT {key_list} t, rid,
               count(*) OVER w AS count, count(x) OVER w AS x_count, sum(x) OVER w AS x_sum,
               avg(y) OVER w AS y_mean, min(x) OVER w AS x_min, max(x) OVER w AS x_max,
               min(y) OVER w AS y_min, max(y) OVER w AS y_max,
               sum(y) FILTER (WHERE x > 0) OVER w AS y_pos
        FROM rows
        WINDOW w AS ({partition} ORDER BY t, rid ROWS {n} PRECEDING)
    """).pl().sort([*keys, "t", "rid"], nulls_last=False).drop("rid").with_columns(
        pl.col("count", "x_count", "x_sum", "x_min", "x_max").cast(pl.Int64),
        pl.col("y_mean", "y_min", "y_max", "y_pos").cast(pl.Float64),
        pl.col("t").cast(rows.schema["t"]),
    )


def by_key_and_time(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Rows of one key and time come out in arrival order; a stable sort keeps it."""
    return df.sort([*keys, "t"], nulls_last=False, maintain_order=True)


def check(c: SlidingCase, n: int) -> None:
    sim = simulate(c.times, c.delay, c.lateness)
    expected = duckdb_rows(accepted_rows(c), c.keys, n)
    runs = {size: rows_query(c, n, source=batches(c.df, size)).run() for size in SIZES}
    whole = runs[None]
    assert whole.output.columns == [*c.keys, "t", *AGG_NAMES]
    assert whole.output.height == sim.status.count("accepted")
    assert_frame_equal(by_key_and_time(whole.output, c.keys), expected, rel_tol=1e-9, abs_tol=1e-9)
    # Emitted in time order: a row comes out once the watermark has passed its time.
    assert whole.output["t"].is_sorted(nulls_last=False)
    rids = c.df["rid"].to_list()
    assert whole.late["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "late"]
    assert whole.rejected["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "rejected"]
    for size in (1, 7):
        assert_frame_equal(runs[size].output, whole.output)
        assert runs[size].late.equals(whole.late)


@given(sliding_cases(time_kind="int", flush=True), st.integers(0, 6))
def test_rows_window_matches_duckdb_rows_preceding(c: SlidingCase, n: int) -> None:
    check(c, n)


@given(sliding_cases(time_kind="datetime", flush=True), st.integers(0, 4))
def test_rows_window_on_datetimes_matches_duckdb(c: SlidingCase, n: int) -> None:
    check(c, n)


@pytest.mark.parametrize("size", SIZES)
def test_ties_are_taken_in_arrival_order(size: int | None) -> None:
    """Three rows at one time: each sees the rows that arrived before it, not after."""
    df = pl.DataFrame({"t": [5, 5, 5, 6], "v": [1, 10, 100, 1000]})
    out = (
        rl.stream(batches(df, size), time="t")
        .window(rl.sliding(rows=1))
        .agg(rl.sum("v"), rl.count())
        .collect()
    )
    assert out.to_dict(as_series=False) == {"t": [5, 5, 5, 6], "v_sum": [1, 11, 110, 1100], "count": [1, 2, 2, 2]}


def test_rows_zero_is_the_row_alone() -> None:
    df = pl.DataFrame({"t": [1, 2, 3], "k": ["a", "a", "b"], "v": [4, 5, 6]})
    out = rl.stream(df, time="t").window(rl.sliding(rows=0), by="k").agg(rl.sum("v")).collect()
    assert out["v_sum"].to_list() == [4, 5, 6]


def test_state_stays_bounded_by_the_row_count() -> None:
    """A long stream keeps n + 1 rows per key, however long it runs: ten times the rows,
    the same state."""
    def state(n: int) -> tuple[list[int], int]:
        df = pl.DataFrame({"t": list(range(n)), "k": [i % 3 for i in range(n)], "v": [1] * n})
        run = rl.stream(batches(df, 1000), time="t").window(rl.sliding(rows=4), by="k").agg(rl.sum("v")).run()
        return run.output["v_sum"].to_list(), run.metrics["state_bytes"]

    short, long_ = state(2_000), state(20_000)
    assert long_[0][15:] == [5] * (20_000 - 15)
    assert long_[1] == short[1]


@pytest.mark.parametrize("emit", ["amend", "changelog"])
def test_updating_modes_are_refused_with_the_reason(emit: str) -> None:
    with pytest.raises(rl.ConfigError, match=r"emits each row once, final.*emit=\"final\""):
        rl.stream(pl.DataFrame({"t": [1]}), time="t").window(rl.sliding(rows=2), emit=emit).agg(rl.count())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"period": "5m", "rows": 3}, "not both"),
    ({"rows": -1}, "whole number >= 0"),
    ({"rows": 2.5}, "whole number >= 0"),
    ({"rows": True}, "whole number >= 0"),
    ({"rows": 3, "closed": "both"}, "closed= is for a sliding window over a period"),
    ({}, "give one"),
])
def test_bad_specs_name_what_is_wrong(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(rl.ConfigError, match=message):
        rl.sliding(**kwargs)


def test_repr() -> None:
    assert repr(rl.sliding(rows=9)) == "rl.sliding(rows=9)"
