"""The exact aggregates (var, std, first, last, quantile, median, count_distinct, top_k) against
polars and brute force, on random tumbling, hopping, session, cumulative and sliding windows;
top_k semantics; numerical edge cases; configuration errors.

How the expected frame is built (no engine code involved):

* which rows land in which (window, key) pane, and when each pane is emitted, comes from the
  row-at-a-time references the other suites already trust: ``conftest.reference_emissions``
  (tumbling / hopping, late rows included), ``test_windows_session.SessionOracle`` (sessions,
  including sessions merged by rows that bridge them, and ``max_duration``),
  ``conftest.reference_span_emissions`` (cumulative) and ``test_windows_sliding``'s reference;
* each pane's rows are then aggregated directly: with polars for var / std / quantile / median
  / count_distinct (``group_by`` over a long (pane, row) frame), and in plain Python for
  first / last (min / max of ``(time, arrival)`` over the non-null values) and top_k
  (a Counter, sorted count descending then value ascending).

The same query runs on batches of 1 and 7 rows and on the whole frame; all three must equal the
expected frame (so they are identical to each other). In amend / changelog mode the last
revision equals the final row and every retraction repeats the values last emitted.

Documented choices checked here (where the contract is silent or differs from polars):

* ``count_distinct`` counts non-null values (polars' ``n_unique`` counts null as a value):
  compared with ``drop_nulls().n_unique()``; over no values it is 0 (like ``count``), not null.
  NaNs are one value and -0.0 == 0.0, as in polars.
* nulls are never top_k items; a row with a null weight is skipped; float items tie-break in
  total order (NaN after +inf).
* ``rl.median`` is the nearest-rank median (``quantile(0.5, "nearest")``), not polars'
  ``median()`` which averages the two middle values.
* Nearest rank uses index ``round((n - 1) * q)`` rounding half away from zero. polars'
  ``interpolation="nearest"`` rounds the same way (checked on every .5 case for n < 40 below),
  so there is no difference to report. NaN is a value that sorts last in both.
* ``approx_quantile`` skips NaN (the exact quantile and polars count it as the largest value).
* var / std of 1e12 + small differences: rillet is exact to ~1e-9 relative where polars' own
  var is off by ~1e-6 (1e-3 at 1e15); the reference there is rational arithmetic.
* var / std over a window holding NaN or an infinity is NaN, as polars.
* ``top_k`` over no values is ``[]`` although docs/aggregates.md says "an aggregate over no
  values is null, except counts": pinned as built, flagged for a decision.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl
import pytest
from conftest import batches, reference_emissions, reference_span_emissions
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_windows_cumulative import cumulative_spans
from test_windows_session import SessionOracle
from test_windows_sliding import SlidingCase
from test_windows_sliding import reference_emissions as sliding_emissions

import rillet as rl

QS = [0.0, 0.25, 0.5, 0.9, 1.0]
COND = pl.col("c")


def exact_aggregates() -> list[Any]:
    return [
        rl.var("y"),
        rl.std("y", ddof=0),
        rl.var("x", ddof=2).alias("x_var2"),
        rl.std("x", where=COND).alias("x_std_c"),
        rl.first("x"),
        rl.last("x"),
        rl.first("s"),
        rl.last("s"),
        rl.first("y", where=COND).alias("y_first_c"),
        rl.last("c"),
        rl.quantile("y", QS),
        rl.median("x"),
        rl.quantile("x", 0.3, where=COND).alias("x_q30_c"),
        rl.count_distinct("x"),
        rl.count_distinct("s"),
        rl.count_distinct("y", where=COND).alias("y_cd_c"),
        rl.approx_count_distinct("s"),  # exact while small
        rl.top_k("s", 2),
        rl.top_k("x", 3, weight="w").alias("x_top_w"),
        rl.top_k("y", 10, where=COND).alias("y_top_c"),
        rl.top_k("s", 3, approx=True, capacity=50).alias("s_top_ss"),  # exact: items fit
    ]


POLARS_NAMES = ["y_var", "y_std", "x_var2", "x_std_c", *[f"y_q{q * 100:g}" for q in QS],
                "x_median", "x_q30_c", "x_count_distinct", "s_count_distinct", "y_cd_c",
                "s_approx_count_distinct"]
# (name, column, "first" | "last", use the where= condition)
FIRST_LAST = [("x_first", "x", "first", False), ("x_last", "x", "last", False),
              ("s_first", "s", "first", False), ("s_last", "s", "last", False),
              ("y_first_c", "y", "first", True), ("c_last", "c", "last", False)]
# (name, column, k, weighted, use where=, approx)
TOP_K = [("s_top_k", "s", 2, False, False, False), ("x_top_w", "x", 3, True, False, False),
         ("y_top_c", "y", 10, False, True, False), ("s_top_ss", "s", 3, False, False, True)]
AGG_ORDER = ["y_var", "y_std", "x_var2", "x_std_c", "x_first", "x_last", "s_first", "s_last",
             "y_first_c", "c_last", *[f"y_q{q * 100:g}" for q in QS], "x_median", "x_q30_c",
             "x_count_distinct", "s_count_distinct", "y_cd_c", "s_approx_count_distinct",
             "s_top_k", "x_top_w", "y_top_c", "s_top_ss"]


def polars_exprs() -> list[pl.Expr]:
    x = pl.col("x").cast(pl.Float64)
    return [
        pl.col("y").var(ddof=1).alias("y_var"),
        pl.col("y").std(ddof=0).alias("y_std"),
        x.var(ddof=2).alias("x_var2"),
        x.filter(COND).std(ddof=1).alias("x_std_c"),
        *[pl.col("y").quantile(q, "nearest").alias(f"y_q{q * 100:g}") for q in QS],
        x.quantile(0.5, "nearest").alias("x_median"),
        x.filter(COND).quantile(0.3, "nearest").alias("x_q30_c"),
        pl.col("x").drop_nulls().n_unique().cast(pl.Int64).alias("x_count_distinct"),
        pl.col("s").drop_nulls().n_unique().cast(pl.Int64).alias("s_count_distinct"),
        pl.col("y").filter(COND).drop_nulls().n_unique().cast(pl.Int64).alias("y_cd_c"),
        pl.col("s").drop_nulls().n_unique().cast(pl.Int64).alias("s_approx_count_distinct"),
    ]


SCHEMA: dict[str, Any] = {
    "rid": pl.Int64, "k0": pl.String, "k1": pl.Int64, "t": pl.Int64, "x": pl.Int64,
    "y": pl.Float64, "s": pl.String, "w": pl.Float64, "c": pl.Boolean,
}
OUT_DTYPES: dict[str, Any] = {
    "x_first": pl.Int64, "x_last": pl.Int64, "s_first": pl.String, "s_last": pl.String,
    "y_first_c": pl.Float64, "c_last": pl.Boolean,
    "s_top_k": pl.List(pl.Struct({"value": pl.String, "count": pl.Int64})),
    "x_top_w": pl.List(pl.Struct({"value": pl.Int64, "weight": pl.Float64})),
    "y_top_c": pl.List(pl.Struct({"value": pl.Float64, "count": pl.Int64})),
    "s_top_ss": pl.List(pl.Struct({"value": pl.String, "count": pl.Int64, "error": pl.Int64})),
}


# -- random cases ---------------------------------------------------------------------------
@dataclass
class AggCase:
    df: pl.DataFrame  # arrival order; rid = row index
    times: list[int | None]
    keys: list[str]
    kind: str  # tumbling | hopping | session | cumulative | sliding
    period: int  # hopping / cumulative / sliding period
    every: int  # tumbling / hopping every, cumulative step
    offset: int
    gap: int
    max_duration: int | None
    delay: int
    lateness: int
    flush: bool

    def row_keys(self) -> list[tuple]:
        if not self.keys:
            return [()] * self.df.height
        return [tuple(r) for r in self.df.select(self.keys).iter_rows()]


@st.composite
def agg_cases(draw: st.DrawFn, kind: str, max_rows: int = 40) -> AggCase:
    n = draw(st.integers(0, max_rows))
    step = draw(st.sampled_from([0, 1, 2, 3]))
    jitter = draw(st.integers(0, 20))
    base = draw(st.integers(-30, 30))
    null_every = draw(st.sampled_from([0, 0, 8]))
    times: list[int | None] = []
    for i in range(n):
        if null_every and draw(st.integers(0, null_every - 1)) == 0:
            times.append(None)
        else:
            times.append(base + i * step + draw(st.integers(-jitter, jitter)))

    def col(values: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(values, min_size=n, max_size=n))

    keys = ["k0", "k1"][: draw(st.integers(0, 2))]
    data: dict[str, list[Any]] = {
        "rid": list(range(n)),
        "k0": col(st.sampled_from(["a", "b", None])),
        "k1": col(st.sampled_from([1, 2, None])),
        "t": times,
        "x": col(st.one_of(st.none(), st.integers(-3, 3))),
        "y": col(st.one_of(st.none(), st.integers(-40, 40).map(lambda v: v / 4))),
        "s": col(st.sampled_from(["a", "b", "ab", "B", "", None])),
        "w": col(st.sampled_from([None, 0.0, 0.5, 1.0, 2.0, 3.0])),
        "c": col(st.sampled_from([True, False, None])),
    }
    df = pl.DataFrame(data, schema=SCHEMA).select(["rid", *keys, "t", "x", "y", "s", "w", "c"])
    every = draw(st.integers(1, 12))
    if kind == "hopping":
        period = every * draw(st.integers(1, 3)) + draw(st.integers(0, every - 1))
    elif kind == "cumulative":
        period = every * draw(st.integers(1, 4))
    elif kind == "sliding":
        period = draw(st.integers(1, 15))
    else:
        period = every
    gap = draw(st.integers(1, 8))
    max_duration = None
    if kind == "session":
        max_duration = draw(st.one_of(st.none(), st.integers(gap, 4 * gap)))
    # a generous watermark most of the time (nothing late), a tight one otherwise
    delay = draw(st.one_of(st.just(1000), st.integers(0, 10)))
    return AggCase(df, times, keys, kind, period, every, draw(st.integers(-10, 10)), gap,
                   max_duration, delay, draw(st.integers(0, 10)), draw(st.booleans()))


def build(case: AggCase, source: Any, aggs: Sequence[Any], emit: str = "final") -> rl.Query:
    if case.kind == "tumbling":
        spec = rl.tumbling(case.every, offset=case.offset)
    elif case.kind == "hopping":
        spec = rl.hopping(case.period, case.every, offset=case.offset)
    elif case.kind == "cumulative":
        spec = rl.cumulative(case.period, case.every, offset=case.offset)
    elif case.kind == "sliding":
        spec = rl.sliding(case.period)
    else:
        spec = rl.session(case.gap, max_duration=case.max_duration)
    return (
        rl.stream(source, time="t", watermark=case.delay, flush=case.flush)
        .window(spec, by=case.keys or None, lateness=case.lateness, emit=emit)
        .agg(*aggs)
    )


@dataclass
class Pane:
    key: tuple
    start: int  # sliding: the reporting row's time (start = end)
    end: int
    rows: list[int]


def reference_panes(case: AggCase) -> list[Pane]:
    """Every emitted pane, in emission order, with the indices of its rows."""
    keys = case.row_keys()
    if case.kind == "session":
        oracle = SessionOracle(case.gap, case.delay, case.lateness, case.max_duration)
        ref = oracle.run(case.times, keys, case.flush)
        return [Pane(o.key, o.start, o.end, o.rows) for o in ref.out]
    if case.kind == "cumulative":
        spans = reference_span_emissions(
            case.times, keys, case.delay, case.lateness,
            lambda t: cumulative_spans(t, case.period, case.every, case.offset), flush=case.flush)
        return [Pane(e.key, e.start, e.end, e.rows) for e in spans]
    if case.kind == "sliding":
        sc = SlidingCase(case.df, case.times, case.keys, case.period, case.delay, case.lateness,
                         case.flush, "int")
        slides = sliding_emissions(sc, "final")
        at = [case.times[e.row] for e in slides]
        return [Pane(keys[e.row], t, t, e.members)  # type: ignore[arg-type]
                for e, t in zip(slides, at, strict=True)]
    offset = case.offset % case.every  # the grid only depends on offset mod every
    ems = reference_emissions(case.times, keys, case.delay, case.period, case.every, offset,
                              case.lateness, emit="final", flush=case.flush)
    return [Pane(e.key, e.start, e.start + case.period, e.rows) for e in ems]


# -- brute force ----------------------------------------------------------------------------
def first_last(rows: list[int], times: list[Any], values: list[Any], cond: list[Any] | None,
               last: bool) -> Any:
    """The value of the row with the smallest (first) / largest (last) (time, arrival)."""
    cand = [r for r in rows if values[r] is not None and (cond is None or cond[r] is True)]
    if not cand:
        return None
    pick = (max if last else min)(cand, key=lambda r: (times[r], r))
    return values[pick]


def top_k_of(rows: list[int], values: list[Any], k: int, weights: list[Any] | None,
             cond: list[Any] | None) -> list[tuple[Any, Any]]:
    counts: Counter[Any] = Counter()
    for r in rows:
        if values[r] is None or (cond is not None and cond[r] is not True):
            continue
        if weights is None:
            counts[values[r]] += 1
        elif weights[r] is not None:
            counts[values[r]] += weights[r]
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def expected_frame(case: AggCase, panes: list[Pane]) -> pl.DataFrame:
    df = case.df
    long = pl.DataFrame(
        {"__g": [g for g, p in enumerate(panes) for _ in p.rows],
         "rid": [r for p in panes for r in p.rows]},
        schema={"__g": pl.Int64, "rid": pl.Int64},
    )
    agg = (long.join(df, on="rid", how="left").group_by("__g").agg(polars_exprs())
           .sort("__g"))
    assert agg["__g"].to_list() == list(range(len(panes)))
    cols = {c: df[c].to_list() for c in ["x", "y", "s", "w", "c"]}
    out: dict[str, pl.Series] = {}
    for j, k in enumerate(case.keys):
        out[k] = pl.Series(k, [p.key[j] for p in panes], dtype=SCHEMA[k])
    bounds = ["t"] if case.kind == "sliding" else ["window_start", "window_end"]
    if case.kind == "sliding":
        out["t"] = pl.Series([p.start for p in panes], dtype=pl.Int64)
    else:
        out["window_start"] = pl.Series([p.start for p in panes], dtype=pl.Int64)
        out["window_end"] = pl.Series([p.end for p in panes], dtype=pl.Int64)
    for name in POLARS_NAMES:
        out[name] = agg[name]
    for name, c, which, use_cond in FIRST_LAST:
        vals = [first_last(p.rows, case.times, cols[c], cols["c"] if use_cond else None,
                           which == "last") for p in panes]
        out[name] = pl.Series(name, vals, dtype=OUT_DTYPES[name])
    for name, c, k, weighted, use_cond, approx in TOP_K:
        lists = []
        for p in panes:
            top = top_k_of(p.rows, cols[c], k, cols["w"] if weighted else None,
                           cols["c"] if use_cond else None)
            field = "weight" if weighted else "count"
            lists.append([{"value": v, field: n, **({"error": 0} if approx else {})}
                          for v, n in top])
        out[name] = pl.Series(name, lists, dtype=OUT_DTYPES[name])
    frame = pl.DataFrame([s.alias(n) for n, s in out.items()])
    return frame.select([*case.keys, *bounds, *AGG_ORDER])


def check_exact(case: AggCase) -> None:
    expected = expected_frame(case, reference_panes(case))
    for size in (1, 7, None):
        source = case.df if size is None else batches(case.df, size)
        got = build(case, source, exact_aggregates()).collect()
        assert_frame_equal(got, expected, rel_tol=1e-9, abs_tol=1e-9)


@given(agg_cases("tumbling"))
def test_exact_aggregates_tumbling(case: AggCase) -> None:
    check_exact(case)


@given(agg_cases("hopping"))
def test_exact_aggregates_hopping(case: AggCase) -> None:
    check_exact(case)


@given(agg_cases("session"))
def test_exact_aggregates_session(case: AggCase) -> None:
    check_exact(case)


@given(agg_cases("cumulative"))
def test_exact_aggregates_cumulative(case: AggCase) -> None:
    check_exact(case)


@given(agg_cases("sliding"))
def test_exact_aggregates_sliding(case: AggCase) -> None:
    check_exact(case)


def check_updates(case: AggCase) -> None:
    """amend: the last revision of every (window, key) is the final row; changelog: every -U /
    -D retracts exactly the values last emitted for those bounds (the engine copies states into
    shadow slots for this)."""
    case = replace(case, flush=True)
    ident = [*case.keys, "window_start", "window_end"]
    final = build(case, case.df, exact_aggregates()).collect()
    amend = build(case, case.df, exact_aggregates(), emit="amend").collect()
    last = amend.group_by(ident, maintain_order=True).last().drop("revision")
    if case.kind == "session":
        # a session's bounds grow as it changes: the revisions under its final bounds end
        # with the final row (earlier bounds belong to earlier states)
        last = final.select(ident).join(last, on=ident, how="left", nulls_equal=True)
    assert_frame_equal(last.sort(ident, nulls_last=False), final.sort(ident, nulls_last=False),
                       rel_tol=1e-9, abs_tol=1e-9)
    changes = build(case, case.df, exact_aggregates(), emit="changelog").collect()
    shown: dict[tuple, tuple] = {}
    for row in changes.iter_rows(named=True):
        op = row.pop("op")
        ident_v = tuple(row[c] for c in ident)
        vals = tuple(repr(row[c]) for c in AGG_ORDER)
        if op in ("+I", "+U"):
            shown[ident_v] = vals
        else:
            assert shown.pop(ident_v) == vals, (op, row)


@given(agg_cases("hopping"))
def test_amend_and_changelog_agree_with_final_hopping(case: AggCase) -> None:
    check_updates(case)


@given(agg_cases("session"))
def test_amend_and_changelog_agree_with_final_session(case: AggCase) -> None:
    check_updates(case)


@given(agg_cases("cumulative"))
def test_amend_and_changelog_agree_with_final_cumulative(case: AggCase) -> None:
    check_updates(case)


# -- hand-checked examples ------------------------------------------------------------------
def one_window(df: pl.DataFrame, *aggs: Any, period: int = 100) -> dict[str, Any]:
    out = rl.stream(df, time="t", watermark=10**6).window(rl.tumbling(period)).agg(*aggs).collect()
    assert out.height == 1
    return out.row(0, named=True)


def test_default_names_and_types() -> None:
    df = pl.DataFrame({"t": [1, 2, 3], "v": [1, 2, 3], "s": ["a", "b", "a"]})
    q = rl.stream(df, time="t").window(rl.tumbling(10)).agg(
        rl.var("v"), rl.std("v"), rl.first("v"), rl.last("s"), rl.median("v"),
        rl.quantile("v", [0.9, 0.999, 0.05, 0.001, 0.125]), rl.count_distinct("s"),
        rl.approx_count_distinct("s"), rl.top_k("s", 1),
        rl.approx_quantile("v", 0.5, relative_error=0.05).alias("v_aq50"),
        rl.top_k("s", 1, weight="v", approx=True).alias("s_top_w"),
    )
    assert q.collect().schema == pl.Schema({
        "window_start": pl.Int64, "window_end": pl.Int64,
        "v_var": pl.Float64, "v_std": pl.Float64, "v_first": pl.Int64, "s_last": pl.String,
        "v_median": pl.Float64, "v_q90": pl.Float64, "v_q99.9": pl.Float64, "v_q5": pl.Float64,
        "v_q0.1": pl.Float64, "v_q12.5": pl.Float64, "s_count_distinct": pl.Int64,
        "s_approx_count_distinct": pl.Int64,
        "s_top_k": pl.List(pl.Struct({"value": pl.String, "count": pl.Int64})),
        "v_aq50": pl.Float64,
        "s_top_w": pl.List(pl.Struct({"value": pl.String, "weight": pl.Int64,  # v is Int64
                                      "error": pl.Int64})),
    })
    assert rl.approx_quantile("v", [0.5, 0.99])[1].name == "v_q99"


@pytest.mark.parametrize("make", [rl.quantile, rl.approx_quantile], ids=["quantile", "approx_quantile"])
def test_quantile_list_items_are_each_checked_as_a_q(make: Any) -> None:
    """A list of q gives the aggregates of its items one by one; an item that is not a number
    in [0, 1] (a nested list, text, a bool) is refused at once, naming the item."""
    assert make("v", [0.5, 0.99]) == [make("v", 0.5), make("v", 0.99)]
    for item in ([0.5, 0.9], "0.5", True, 1.5):
        with pytest.raises(rl.ConfigError, match=r"q must be a number in \[0, 1\].*got " + re.escape(repr(item))):
            make("v", [0.25, item])


def test_var_std_null_under_ddof_plus_one_values() -> None:
    df = pl.DataFrame({"t": [1, 2, 3, 11, 21, 22], "v": [5.0, None, None, 7.0, 1.0, 3.0]})
    out = (rl.stream(df, time="t").window(rl.tumbling(10))
           .agg(rl.var("v"), rl.std("v"), rl.var("v", ddof=0).alias("v0"),
                rl.var("v", ddof=2).alias("v2")).collect())
    # windows: [5] (one value), [7], [1, 3]
    assert out["v_var"].to_list() == [None, None, 2.0]
    assert out["v_std"].to_list() == [None, None, math.sqrt(2.0)]
    assert out["v0"].to_list() == [0.0, 0.0, 1.0]
    assert out["v2"].to_list() == [None, None, None]


def test_aggregates_over_no_values() -> None:
    """Every value null (or filtered out by where=): null, except the counts (0) and top_k
    (an empty list)."""
    df = pl.DataFrame({"t": [1, 2], "v": [None, None], "s": ["a", "b"]},
                      schema={"t": pl.Int64, "v": pl.Float64, "s": pl.String})
    never = pl.col("s") == "zzz"
    row = one_window(
        df, rl.var("v"), rl.std("v", ddof=0), rl.first("v"), rl.last("v"), rl.median("v"),
        rl.count_distinct("v"), rl.approx_count_distinct("v"), rl.top_k("v", 3),
        rl.top_k("s", 3, approx=True, where=never).alias("s_top"),
        rl.approx_quantile("v", 0.5).alias("aq"),
        rl.first("s", where=never).alias("s_first"),
        rl.count_distinct("s", where=never).alias("scd"),
    )
    assert row == {
        "window_start": 0, "window_end": 100, "v_var": None, "v_std": None, "v_first": None,
        "v_last": None, "v_median": None, "v_count_distinct": 0, "v_approx_count_distinct": 0,
        "v_top_k": [], "s_top": [], "aq": None, "s_first": None, "scd": 0,
    }


def test_first_last_ties_by_arrival_and_nulls_skipped() -> None:
    # rid:        0     1     2     3     4     5     6
    t = [5, 1, 1, 9, 9, 1, 9]
    v = [10, 11, 12, 13, 14, None, None]
    df = pl.DataFrame({"t": t, "v": v})
    row = one_window(df, rl.first("v"), rl.last("v"))
    # smallest time 1: rids 1, 2 (5 is null) -> earliest arrival 1 -> 11
    # largest time 9: rids 3, 4 (6 is null) -> latest arrival 4 -> 14
    assert (row["v_first"], row["v_last"]) == (11, 14)
    # the same across micro-batches of every size
    for size in range(1, 8):
        out = (rl.stream(batches(df, size), time="t", watermark=10**6)
               .window(rl.tumbling(100)).agg(rl.first("v"), rl.last("v")).collect())
        assert out.row(0)[2:] == (11, 14)


def test_first_last_with_where_and_a_stream_filter() -> None:
    """Arrival order is the input order even when .filter() drops rows in between."""
    df = pl.DataFrame({"t": [3, 3, 3, 3, 3, 3], "v": [1, 2, 3, 4, 5, 6],
                       "keep": [False, True, True, False, True, False]})
    for size in (1, 2, 4, None):
        src = df if size is None else batches(df, size)
        out = (rl.stream(src, time="t", watermark=10**6).filter(pl.col("keep") | (pl.col("v") == 1))
               .window(rl.tumbling(100))
               .agg(rl.first("v"), rl.last("v"),
                    rl.first("v", where=pl.col("v") > 1).alias("f2"),
                    rl.last("v", where=pl.col("v") < 5).alias("l5"))
               .collect())
        assert out.row(0)[2:] == (1, 5, 2, 3)


@pytest.mark.parametrize("time_dtype", ["str", pl.Datetime("ns"), pl.Datetime("ms", "Asia/Tokyo")])
def test_first_last_by_datetime_and_string_time(time_dtype: Any) -> None:
    stamps = ["2024-01-01T00:00:05Z", "2024-01-01T00:00:01Z", "2024-01-01T00:00:01Z",
              "2024-01-01T00:00:09Z", "2024-01-01T00:00:09Z", "2024-01-01T00:00:00.5Z"]
    t = pl.Series("t", stamps)
    if time_dtype != "str":
        t = t.str.to_datetime(time_zone="UTC").cast(time_dtype)
    df = pl.DataFrame([t, pl.Series("v", [1, 2, 3, 4, 5, None])])
    for size in (1, 4, None):
        out = (rl.stream(df if size is None else batches(df, size), time="t", watermark="1m")
               .window(rl.tumbling("1m")).agg(rl.first("v"), rl.last("v")).collect())
        # 00:00.5 holds a null; earliest non-null is the first arrival at 00:01, latest the
        # last arrival at 00:09
        assert out.select("v_first", "v_last").row(0) == (2, 5)


@pytest.mark.parametrize("dtype,values", [
    (pl.Int8, [3, -2, 7]),
    (pl.UInt32, [3, 2, 4_000_000_000]),
    (pl.Float32, [1.5, -2.25, 3.0]),
    (pl.Boolean, [True, False, True]),
    (pl.Date, [dt.date(2024, 1, 1), dt.date(1969, 12, 31), dt.date(2024, 2, 29)]),
    (pl.Datetime("ms", "Europe/Paris"), [dt.datetime(2024, 3, 31, 1, 30, tzinfo=dt.UTC),
                                         dt.datetime(2024, 3, 31, 0, 30, tzinfo=dt.UTC),
                                         dt.datetime(1999, 1, 1, tzinfo=dt.UTC)]),
    (pl.Duration("us"), [dt.timedelta(seconds=3), dt.timedelta(days=-1), dt.timedelta(0)]),
    (pl.Time, [dt.time(12, 0), dt.time(0, 0, 1), dt.time(23, 59)]),
    (pl.String, ["b", "", "a"]),
])
def test_first_last_top_k_keep_the_input_dtype(dtype: Any, values: list[Any]) -> None:
    df = pl.DataFrame({"t": [2, 1, 3], "v": pl.Series(values, dtype=dtype)})
    out = (rl.stream(df, time="t").window(rl.tumbling(10))
           .agg(rl.first("v"), rl.last("v"), rl.top_k("v", 2), rl.count_distinct("v"))
           .collect())
    assert out.schema["v_first"] == dtype and out.schema["v_last"] == dtype
    assert out.schema["v_top_k"] == pl.List(pl.Struct({"value": dtype, "count": pl.Int64}))
    top = (df.group_by("v").agg(pl.len().cast(pl.Int64).alias("count"))
           .sort(["count", "v"], descending=[True, False]).head(2))
    expected_top = [{"value": v, "count": c} for v, c in top.iter_rows()]
    assert out.row(0) == (0, 10, values[1], values[2], expected_top, df["v"].n_unique())


def test_categorical_values_come_back_as_strings() -> None:
    v = pl.Series(["q", "p", "q", None], dtype=pl.Categorical)
    df = pl.DataFrame({"t": [2, 1, 3, 4], "v": v})
    out = (rl.stream(df, time="t").window(rl.tumbling(10))
           .agg(rl.first("v"), rl.last("v"), rl.top_k("v", 5), rl.count_distinct("v"))
           .collect())
    assert out.schema["v_first"] == pl.String
    assert out.row(0) == (0, 10, "p", "q", [{"value": "q", "count": 2},
                                            {"value": "p", "count": 1}], 2)


def test_uint64_beyond_int64_is_never_silently_wrapped() -> None:
    """Values are carried as Int64 in the engine: a UInt64 above 2^63 - 1 either comes back
    exactly or the query fails with a RilletError, never a wrapped negative number."""
    big = 2**64 - 1
    df = pl.DataFrame({"t": [1, 2], "v": pl.Series([big, 5], dtype=pl.UInt64)})
    try:
        out = (rl.stream(df, time="t").window(rl.tumbling(10))
               .agg(rl.first("v"), rl.count_distinct("v")).collect())
    except rl.RilletError:
        return
    assert out.row(0)[2:] == (big, 2)


def test_count_distinct_float_nan_and_signed_zero() -> None:
    nan = float("nan")
    other_nan = -float("nan")
    s = pl.Series([0.0, -0.0, nan, other_nan, 1.0, None, 1.0])
    df = pl.DataFrame({"t": [1] * len(s), "v": s})
    row = one_window(df, rl.count_distinct("v"), rl.approx_count_distinct("v"))
    assert row["v_count_distinct"] == 3 == s.drop_nulls().n_unique()  # polars agrees
    assert row["v_approx_count_distinct"] == 3


def test_count_distinct_string_and_bool_and_where() -> None:
    df = pl.DataFrame({"t": [1, 2, 3, 4, 5, 6], "s": ["a", "b", "a", None, "", "b"],
                       "b": [True, None, True, False, True, None], "x": [1, 2, 3, 4, 5, 6]})
    row = one_window(df, rl.count_distinct("s"), rl.count_distinct("b"),
                     rl.count_distinct("s", where=pl.col("x") > 2).alias("s3"))
    assert (row["s_count_distinct"], row["b_count_distinct"], row["s3"]) == (3, 2, 3)


def test_median_is_nearest_rank_not_polars_median() -> None:
    df = pl.DataFrame({"t": [1, 2, 3, 4], "v": [1.0, 2.0, 3.0, 10.0]})
    row = one_window(df, rl.median("v"))
    # round(3 * 0.5 = 1.5) = 2 (half away from zero) -> 3.0; polars' median() gives 2.5
    assert row["v_median"] == 3.0 == df["v"].quantile(0.5, "nearest")
    assert df["v"].median() == 2.5


def test_polars_nearest_rounds_half_away_from_zero_like_rust() -> None:
    """The reference itself: polars' "nearest" is index round_half_away((n - 1) * q)."""
    for n in range(1, 40):
        s = pl.Series(range(n), dtype=pl.Float64)
        for j in range(0, 81):
            q = j / 80
            x = (n - 1) * q
            idx = math.floor(x + 0.5)
            assert s.quantile(q, "nearest") == idx, (n, q)


@given(st.lists(st.one_of(st.none(), st.integers(-50, 50).map(lambda v: v / 2)), max_size=60),
       st.lists(st.floats(0, 1), min_size=1, max_size=4))
def test_quantile_matches_polars_nearest(values: list[float | None], qs: list[float]) -> None:
    df = pl.DataFrame({"t": [1] * len(values), "v": values},
                      schema={"t": pl.Int64, "v": pl.Float64})
    aggs = [rl.quantile("v", q).alias(f"a{i}") for i, q in enumerate(qs)]
    for size in (1, 7, None):
        src = df if size is None else batches(df, size)
        out = rl.stream(src, time="t").window(rl.tumbling(10)).agg(*aggs).collect()
        if not values:
            assert out.height == 0
            continue
        got = out.row(0)[2:]
        assert list(got) == [df["v"].quantile(q, "nearest") for q in qs]


# -- top_k ----------------------------------------------------------------------------------
def top(values: list[Any], *aggs: Any, dtype: Any = None, **cols: list[Any]) -> dict[str, Any]:
    data = {"t": list(range(len(values))), "v": pl.Series(values, dtype=dtype), **cols}
    return one_window(pl.DataFrame(data), *aggs)


@pytest.mark.parametrize("approx", [False, True])
def test_top_k_ties_by_value_ascending_and_k_beyond_the_items(approx: bool) -> None:
    row = top(["b", "a", "c", "a", "b", "c", "d", "B"], rl.top_k("v", 3, approx=approx).alias("k3"),
              rl.top_k("v", 100, approx=approx).alias("all"))
    err = {"error": 0} if approx else {}
    assert row["k3"] == [{"value": "a", "count": 2, **err}, {"value": "b", "count": 2, **err},
                         {"value": "c", "count": 2, **err}]
    # k larger than the number of items: every item, no padding; "B" < "d" (byte order)
    assert [e["value"] for e in row["all"]] == ["a", "b", "c", "B", "d"]
    ints = top([5, -1, -3, 5, 0], rl.top_k("v", 10, approx=approx))["v_top_k"]
    assert [(e["value"], e["count"]) for e in ints] == [(5, 2), (-3, 1), (-1, 1), (0, 1)]


def test_top_k_float_items_order_and_identity() -> None:
    """Floats tie-break in total order (-inf < ... < inf < NaN), as polars sorts; NaNs are one
    item and -0.0 is the same item as 0.0 (as polars' value_counts)."""
    inf, nan = math.inf, math.nan
    got = top([inf, 1.5, -inf, nan, 0.0, -0.0, 1.5, nan], rl.top_k("v", 10))["v_top_k"]
    pairs = [(e["value"], e["count"]) for e in got]
    assert pairs[0] == (0.0, 2) and pairs[1] == (1.5, 2)
    assert math.isnan(pairs[2][0]) and pairs[2][1] == 2
    assert pairs[3:] == [(-inf, 1), (inf, 1)]
    vc = pl.Series([inf, 1.5, -inf, nan, 0.0, -0.0, 1.5, nan]).value_counts()
    assert vc.height == 5


def test_top_k_nulls_are_not_items() -> None:
    row = top([None, None, None, "a", None, "b", "a"], rl.top_k("v", 5),
              rl.top_k("v", 5, approx=True).alias("ss"), dtype=pl.String)
    assert row["v_top_k"] == [{"value": "a", "count": 2}, {"value": "b", "count": 1}]
    assert [e["value"] for e in row["ss"]] == ["a", "b"]


def test_top_k_weights() -> None:
    v = ["a", "b", "c", "a", "b", "d", "e"]
    w = [1.5, 1.0, 2.5, 1.0, None, 2.5, 0.0]
    row = top(v, rl.top_k("v", 3, weight="w"),
              rl.top_k("v", 10, weight=pl.col("w") * 2).alias("w2"),
              rl.top_k("v", 10, weight="n").alias("wint"),
              rl.top_k("v", 2, weight="w", approx=True).alias("ss"),
              rl.top_k("v", 10, weight="w", where=pl.col("v") != "a").alias("wc"),
              w=w, n=[1, 2, 3, 4, 5, 6, 7])
    # a: 2.5, b: 1.0 (its null weight row is skipped), c: 2.5, d: 2.5, e: 0.0
    assert row["v_top_k"] == [{"value": "a", "weight": 2.5}, {"value": "c", "weight": 2.5},
                              {"value": "d", "weight": 2.5}]
    assert [(e["value"], e["weight"]) for e in row["w2"]] == [
        ("a", 5.0), ("c", 5.0), ("d", 5.0), ("b", 2.0), ("e", 0.0)]
    # an integer weight column gives integer weights, as rl.sum does; b and e tie at 7: value ascending
    wint = {e["value"]: e["weight"] for e in row["wint"]}
    assert wint == {"a": 5, "b": 7, "c": 3, "d": 6, "e": 7}
    assert all(isinstance(w, int) for w in wint.values())
    assert [e["value"] for e in row["wint"]] == ["b", "e", "d", "a", "c"]
    assert row["ss"] == [{"value": "a", "weight": 2.5, "error": 0.0},
                         {"value": "c", "weight": 2.5, "error": 0.0}]
    assert [e["value"] for e in row["wc"]] == ["c", "d", "b", "e"]


def test_top_k_where_skips_false_and_null_conditions() -> None:
    row = top(["a", "b", "a", "c", "b", "b"], rl.top_k("v", 5, where=pl.col("keep")),
              keep=[True, None, True, False, True, True])
    assert row["v_top_k"] == [{"value": "a", "count": 2}, {"value": "b", "count": 2}]


def test_top_k_space_saving_eviction_by_hand() -> None:
    """capacity 2 over a a b c c: c replaces the smallest counter (b, 1) and inherits it as
    error: c count 1 + 1 = 2 (error 1), then 3; counts overstate, count - error understates."""
    row = top(["a", "a", "b", "c", "c"], rl.top_k("v", 2, approx=True, capacity=2))
    assert row["v_top_k"] == [{"value": "c", "count": 3, "error": 1},
                              {"value": "a", "count": 2, "error": 0}]


# -- numerical edge cases -------------------------------------------------------------------
NAN, INF = math.nan, math.inf


@pytest.mark.parametrize("values", [[1.0, NAN, 3.0, 4.0], [1.0, INF], [INF, INF], [-INF, 5.0],
                                    [NAN]], ids=["nan", "inf", "inf-inf", "-inf", "only-nan"])
def test_var_std_with_nan_or_infinity_is_nan_like_polars(values: list[float]) -> None:
    """Regression: the variance used to be clamped with f64::max(0.0), which turned NaN into
    0.0 (fixed in 4735e58)."""
    s = pl.Series("v", values)
    row = one_window(pl.DataFrame({"t": [1] * len(values), "v": s}),
                     rl.var("v"), rl.std("v", ddof=0))
    assert math.isnan(s.var(ddof=0))  # polars
    assert math.isnan(row["v_std"]), row
    if len(values) > 1:
        assert math.isnan(s.var())
        assert math.isnan(row["v_var"]), row


def test_var_std_of_infinite_free_data_is_finite() -> None:
    """The defined cases agree with polars: huge but finite values, and zeros."""
    for values in ([1e300, -1e300, 0.0], [0.0, -0.0, 0.0], [1e-300, 2e-300, 3e-300]):
        s = pl.Series("v", values)
        row = one_window(pl.DataFrame({"t": [1] * len(values), "v": s}), rl.var("v"), rl.std("v"))
        assert row["v_var"] == pytest.approx(s.var(), rel=1e-12, abs=0)
        assert row["v_std"] == pytest.approx(s.std(), rel=1e-12, abs=0)


SPECIAL = [NAN, INF, -INF, 0.0, -0.0, 1.5, -2.0, 1e300, -1e-300, 7.0]


@given(st.lists(st.one_of(st.none(), st.sampled_from(SPECIAL)), min_size=1, max_size=30),
       st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]), min_size=1, max_size=3,
                unique=True))
def test_quantile_with_nan_and_infinities_matches_polars(values: list[float | None],
                                                         qs: list[float]) -> None:
    """Exact quantile: NaN is a value that sorts last, as in polars. approx_quantile skips NaN
    (a documented difference): it is compared with the nearest rank over the non-NaN values."""
    s = pl.Series("v", values, dtype=pl.Float64)
    aggs = [a for i, q in enumerate(qs)
            for a in (rl.quantile("v", q).alias(f"e{i}"),
                      rl.approx_quantile("v", q).alias(f"a{i}"))]
    row = one_window(pl.DataFrame({"t": [1] * len(values), "v": s}), *aggs)
    finite = sorted(v for v in values if v is not None and not math.isnan(v))
    for i, q in enumerate(qs):
        want = s.quantile(q, "nearest")
        got = row[f"e{i}"]
        if want is None:
            assert got is None
        elif math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == want, (q, got, want)
        if not finite:
            assert row[f"a{i}"] is None
            continue
        truth = finite[math.floor((len(finite) - 1) * q + 0.5)]
        got = row[f"a{i}"]
        if math.isinf(truth) or truth == 0.0:
            assert got == truth
        else:
            assert abs(got - truth) <= 0.01 * abs(truth) * (1 + 1e-9), (q, got, truth)


def _exact_var(values: list[float], ddof: int = 1) -> float:
    from fractions import Fraction
    xs = [Fraction(v) for v in values]
    mean = sum(xs) / len(xs)
    return float(sum((x - mean) ** 2 for x in xs) / (len(xs) - ddof))


@pytest.mark.parametrize("base", [1e9, 1e12, 1e15])
def test_var_large_magnitudes_small_differences(base: float) -> None:
    """1e12 + {0..6}: the shifted Welford keeps full precision, in one window, across micro-
    batches, in sliced hopping windows and in sessions merged by bridging rows. (polars itself
    loses digits here: its var of 1e12 + {0..6} x 100 is off by ~1e-6 relative, ~1e-3 at 1e15,
    so the reference is an exact rational computation.)"""
    import random
    rnd = random.Random(7)
    n = 700
    vals = [base + (i % 7) for i in range(n)]
    rnd.shuffle(vals)
    times = [rnd.randrange(0, 100) for _ in range(n)]
    df = pl.DataFrame({"t": times, "v": vals})
    for size in (1, 7, None):
        src = df if size is None else batches(df, size)
        out = (rl.stream(src, time="t", watermark=1000).window(rl.tumbling(100))
               .agg(rl.var("v"), rl.std("v", ddof=0)).collect())
        assert out["v_var"][0] == pytest.approx(_exact_var(vals), rel=1e-9)
        assert out["v_std"][0] == pytest.approx(math.sqrt(_exact_var(vals, 0)), rel=1e-9)
    hop = (rl.stream(df, time="t", watermark=1000).window(rl.hopping(20, 5))
           .agg(rl.var("v")).collect())
    for w in hop.iter_rows(named=True):
        rows = [v for v, t in zip(vals, times, strict=True)
                if w["window_start"] <= t < w["window_end"]]
        assert w["v_var"] == pytest.approx(_exact_var(rows), rel=1e-9)
    # two sessions (t < 40 and t >= 60, gap 10) joined by rows arriving last
    sess_t = [t if t < 40 else t + 20 for t in times]
    bridge_t = list(range(40, 61, 5))
    bridge_v = [base + 3.0] * len(bridge_t)
    sdf = pl.DataFrame({"t": sess_t + bridge_t, "v": vals + bridge_v})
    out = (rl.stream(sdf, time="t", watermark=0).window(rl.session(10), lateness=1000)
           .agg(rl.var("v"), rl.count()).collect())
    assert out["count"].to_list() == [sdf.height]
    assert out["v_var"][0] == pytest.approx(_exact_var(vals + bridge_v), rel=1e-9)


# -- configuration errors -------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: rl.quantile("v", -0.1),
    lambda: rl.quantile("v", 1.5),
    lambda: rl.quantile("v", math.nan),
    lambda: rl.quantile("v", [0.5, 2.0]),
    lambda: rl.quantile("v", "0.5"),
    lambda: rl.quantile("v", True),
    lambda: rl.approx_quantile("v", 1.01),
    lambda: rl.approx_quantile("v", -1e-9),
    lambda: rl.approx_quantile("v", 0.5, relative_error=0),
    lambda: rl.approx_quantile("v", 0.5, relative_error=1),
    lambda: rl.approx_quantile("v", 0.5, relative_error=-0.1),
    lambda: rl.approx_quantile("v", 0.5, relative_error=1.5),
    lambda: rl.approx_quantile("v", 0.5, relative_error=math.nan),
    lambda: rl.top_k("v", 0),
    lambda: rl.top_k("v", -3),
    lambda: rl.top_k("v", 2.5),
    lambda: rl.top_k("v", True),
    lambda: rl.top_k("v", 10, approx=True, capacity=5),
    lambda: rl.top_k("v", 3, approx="yes"),
    lambda: rl.approx_count_distinct("v", precision=3),
    lambda: rl.approx_count_distinct("v", precision=19),
    lambda: rl.approx_count_distinct("v", precision=14.0),
    lambda: rl.var("v", ddof=-1),
    lambda: rl.std("v", ddof=1.5),
], ids=lambda f: "")
def test_config_errors(make: Any) -> None:
    with pytest.raises(rl.ConfigError):
        make()


def test_boundary_configs_are_accepted() -> None:
    df = pl.DataFrame({"t": [1, 2, 3], "v": [1.0, 2.0, 4.0]})
    row = one_window(df, rl.quantile("v", 0).alias("a"), rl.quantile("v", 1).alias("b"),
                     rl.approx_count_distinct("v", precision=4).alias("p4"),
                     rl.approx_count_distinct("v", precision=18).alias("p18"),
                     rl.top_k("v", 1, approx=True, capacity=1).alias("c1"),
                     rl.approx_quantile("v", 0.5, relative_error=0.999).alias("wide"))
    assert (row["a"], row["b"], row["p4"], row["p18"]) == (1.0, 4.0, 3, 3)
    assert len(row["c1"]) == 1 and row["wide"] > 0


@pytest.mark.parametrize("agg", [
    rl.var("s"), rl.std("s"), rl.quantile("s", 0.5), rl.median("s"), rl.approx_quantile("s", 0.5),
    rl.var("d"), rl.quantile("d", 0.5),
    rl.top_k("l", 3), rl.count_distinct("l"), rl.approx_count_distinct("l"), rl.first("l"),
    rl.last("st"), rl.top_k("st", 2),
    rl.top_k("s", 3, weight="s"),
], ids=repr)
def test_schema_errors(agg: Any) -> None:
    df = pl.DataFrame({"t": [1, 2], "s": ["a", "b"], "d": [dt.date(2024, 1, 1)] * 2,
                       "l": [[1, 2], [3]], "st": [{"a": 1}, {"a": 2}]})
    with pytest.raises(rl.SchemaError):
        rl.stream(df, time="t").window(rl.tumbling(10)).agg(agg).collect()


@pytest.mark.parametrize("approx", [False, True])
@pytest.mark.parametrize(("weight", "dtype"), [(pl.Int64, pl.Int64), (pl.UInt16, pl.Int64),
                                                (pl.Float32, pl.Float64)])
def test_top_k_integer_weights_stay_integers(weight: Any, dtype: Any, approx: bool) -> None:
    """A regression: an Int64 weight (bytes) came back as Float64 weights."""
    df = pl.DataFrame({"t": [1, 2, 3, 4], "url": ["/a", "/b", "/a", "/c"],
                       "bytes": pl.Series([1000, 250, 3000, 7], dtype=weight)})
    out = (rl.stream(df, time="t").window(rl.tumbling(10))
           .agg(rl.top_k("url", 2, weight="bytes", approx=approx)).collect())
    fields = {"value": pl.String, "weight": dtype, **({"error": dtype} if approx else {})}
    assert out.schema["url_top_k"] == pl.List(pl.Struct(fields))
    want = df.group_by("url").agg(pl.col("bytes").sum().cast(dtype).alias("weight")).sort(
        ["weight", "url"], descending=[True, False]).head(2)
    got = out.select(pl.col("url_top_k").explode().struct.unnest()).select(url="value", weight="weight")
    assert got.equals(want)
