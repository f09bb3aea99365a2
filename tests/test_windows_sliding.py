"""Sliding windows (``rl.sliding(period)``: Kinesis ``RANGE ... PRECEDING``, polars ``rolling``).

The contract under test, per accepted input row at time ``t`` (times as integers in the time
column's own unit, so "one unit" is 1 for an integer column and 1 us for a Datetime("us")):

* the output row carries the row's ``by`` values, its time (same column name and dtype) and
  the aggregates over the same key's *accepted* rows with time in ``(t - period, t]`` (closed
  on the right: rows sharing a time all see each other, exactly as polars
  ``rolling(index_column=t, period=period, closed="right", group_by=keys)``);
* the row's window completes when the watermark reaches ``t + 1`` and closes at
  ``t + 1 + lateness``; a row is late iff ``t + 1 + lateness <= wm(i)``, where ``wm(i)`` is the
  max time of the accepted rows before it minus the delay. Late rows go to ``run.late`` and are
  in nobody's window;
* ``final`` emits each row when its window closes (or at the end-of-input flush); ``amend``
  emits revision 0 when it completes, then a new revision whenever a later accepted row of the
  same key lands in its window while it is open; ``changelog`` emits ``+I`` then ``-U``/``+U``;
* rows emitted at the same moment come by time, then key (ascending, nulls first), then arrival.

Two independent references: polars ``rolling`` over the accepted rows (values), and a
brute-force, row-at-a-time model written below (acceptance, emission moments, revisions and
order). Neither shares code with the engine (src/sliding.rs).
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import batches, key_sort
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rillet as rl

UNIT_PER_SECOND = {"ns": 10**9, "us": 10**6, "ms": 10**3}
EMITS = ["final", "amend", "changelog"]

# -- aggregates: rillet, polars and plain Python spellings of the same thing -----------------
AGG_NAMES = ["count", "x_count", "x_sum", "y_mean", "x_min", "x_max", "y_min", "y_max", "y_pos"]
AGG_DTYPES: dict[str, pl.DataType] = {
    "count": pl.Int64, "x_count": pl.Int64, "x_sum": pl.Int64, "y_mean": pl.Float64,
    "x_min": pl.Int64, "x_max": pl.Int64, "y_min": pl.Float64, "y_max": pl.Float64,
    "y_pos": pl.Float64,
}


def rillet_aggs() -> list[Any]:
    return [
        rl.count(), rl.count("x"), rl.sum("x"), rl.mean("y"), rl.min("x"), rl.max("x"),
        rl.min("y"), rl.max("y"), rl.sum("y", where=pl.col("x") > 0).alias("y_pos"),
    ]


def _null_if_empty(col: pl.Expr, value: pl.Expr) -> pl.Expr:
    """polars sums no values to 0; rillet (and the contract) says null."""
    return pl.when(col.count() > 0).then(value)


def polars_aggs() -> list[pl.Expr]:
    y_pos = pl.col("y").filter(pl.col("x") > 0)
    return [
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("x").count().cast(pl.Int64).alias("x_count"),
        _null_if_empty(pl.col("x"), pl.col("x").sum()).alias("x_sum"),
        pl.col("y").mean().alias("y_mean"),
        pl.col("x").min().alias("x_min"),
        pl.col("x").max().alias("x_max"),
        pl.col("y").min().alias("y_min"),
        pl.col("y").max().alias("y_max"),
        _null_if_empty(y_pos, y_pos.sum()).alias("y_pos"),
    ]


def python_aggs(xs: Sequence[int | None], ys: Sequence[float | None],
                members: Sequence[int]) -> list[Any]:
    x = [xs[i] for i in members if xs[i] is not None]
    y = [ys[i] for i in members if ys[i] is not None]
    y_pos = [ys[i] for i in members if ys[i] is not None and xs[i] is not None and xs[i] > 0]
    return [
        len(members), len(x), sum(x) if x else None, sum(y) / len(y) if y else None,
        min(x) if x else None, max(x) if x else None,
        min(y) if y else None, max(y) if y else None,
        sum(y_pos) if y_pos else None,
    ]


# -- random streams -------------------------------------------------------------------------
@dataclass
class SlidingCase:
    df: pl.DataFrame  # arrival order: rid, t, keys..., x (Int64), y (Float64)
    times: list[int | None]  # "t" as integers in the column's unit (None: null time)
    keys: list[str]
    period: int  # in the column's unit
    delay: int
    lateness: int
    flush: bool
    time_kind: str  # "int" | "datetime"
    unit: str | None = None
    tz: str | None = None
    spelling: str = "str"  # "str" | "native"

    @property
    def scale(self) -> int:
        """Column units per second (datetime) or 1 (integer time, durations in units)."""
        return 1 if self.time_kind == "int" else UNIT_PER_SECOND[self.unit or "us"]

    def duration(self, units: int) -> Any:
        """A duration given in column units, spelled as a user would."""
        if self.time_kind == "int":
            return f"{units}i" if self.spelling == "str" else units
        seconds, rest = divmod(units, self.scale)
        assert rest == 0
        if self.spelling == "native":
            return dt.timedelta(seconds=seconds)
        return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"

    def polars_period(self) -> str:
        if self.time_kind == "int":
            return f"{self.period}i"
        return f"{self.period // self.scale}s"

    def row_keys(self) -> list[tuple]:
        if not self.keys:
            return [()] * self.df.height
        return [tuple(r) for r in self.df.select(self.keys).iter_rows()]

    def time_dtype(self) -> pl.DataType:
        return self.df.schema["t"]


KEY_COLUMNS = {"k0": (pl.String, ["a", "b", "ab", None]), "k1": (pl.Int64, [0, 7, None])}


@st.composite
def sliding_cases(draw: st.DrawFn, time_kind: str = "int", max_rows: int = 40,
                  flush: bool | None = None) -> SlidingCase:
    """Disordered streams with ties and null times; integer units, or datetimes in seconds
    with minute periods ("5m")."""
    n = draw(st.integers(0, max_rows))
    if time_kind == "int":
        step = draw(st.sampled_from([0, 1, 1, 2, 3]))
        jitter = draw(st.integers(0, 15))
        base = draw(st.integers(-30, 30))
        quantum = 1
        period = draw(st.integers(1, 20))
        delay = draw(st.integers(0, 10))
        lateness = draw(st.integers(0, 15))
    else:
        # Seconds; periods in whole minutes, delay and lateness in seconds or minutes.
        step = draw(st.sampled_from([0, 20, 60, 150]))
        jitter = draw(st.integers(0, 900))
        base = draw(st.integers(1_767_225_000, 1_767_226_000))
        quantum = draw(st.sampled_from([1, 30]))  # coarse times make more ties
        period = 60 * draw(st.integers(1, 20))
        delay = draw(st.sampled_from([0, 1, 60])) * draw(st.integers(0, 10))
        lateness = draw(st.sampled_from([1, 60])) * draw(st.integers(0, 15))
    null_rate = draw(st.sampled_from([0, 0, 8]))
    raw: list[int | None] = []
    for i in range(n):
        if null_rate and draw(st.integers(0, null_rate - 1)) == 0:
            raw.append(None)
        else:
            t = base + i * step + draw(st.integers(-jitter, jitter))
            raw.append(t // quantum * quantum)
    n_keys = draw(st.integers(0, 2))
    names = draw(st.permutations(sorted(KEY_COLUMNS)))[:n_keys]
    columns: list[pl.Series] = [pl.Series("rid", range(n), dtype=pl.Int64)]
    unit = tz = None
    if time_kind == "int":
        columns.append(pl.Series("t", raw, dtype=pl.Int64))
        times = raw
    else:
        unit = draw(st.sampled_from(["ms", "us", "ns"]))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        ups = UNIT_PER_SECOND[unit]
        times = [None if s is None else s * ups for s in raw]
        columns.append(pl.Series("t", times, dtype=pl.Int64).cast(pl.Datetime(unit, tz)))
        period, delay, lateness = period * ups, delay * ups, lateness * ups
    for name in names:
        dtype, values = KEY_COLUMNS[name]
        vals = draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))
        columns.append(pl.Series(name, vals, dtype=dtype))
    xs = draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n, max_size=n))
    ys = draw(st.lists(st.one_of(st.none(), st.integers(-40, 40).map(lambda v: v / 4)),
                       min_size=n, max_size=n))
    columns.append(pl.Series("x", xs, dtype=pl.Int64))
    columns.append(pl.Series("y", ys, dtype=pl.Float64))
    return SlidingCase(
        df=pl.DataFrame(columns), times=times, keys=list(names), period=period, delay=delay,
        lateness=lateness, flush=draw(st.booleans()) if flush is None else flush,
        time_kind=time_kind, unit=unit, tz=tz,
        spelling=draw(st.sampled_from(["str", "native"])),
    )


def sliding_query(c: SlidingCase, source: Any = None, emit: str = "final",
                  late: str = "collect") -> rl.Query:
    by = c.keys if len(c.keys) != 1 else c.keys[0]
    return (
        rl.stream(c.df if source is None else source, time="t",
                  watermark=c.duration(c.delay), flush=c.flush)
        .window(rl.sliding(c.duration(c.period)), by=by or None,
                lateness=c.duration(c.lateness), emit=emit, late=late)
        .agg(*rillet_aggs())
    )


# -- the brute-force, row-at-a-time reference -----------------------------------------------
def _ge(wm: int | None, x: int) -> bool:
    """wm >= x, with None meaning minus infinity."""
    return wm is not None and wm >= x


@dataclass
class Sim:
    status: list[str]  # "accepted" | "late" | "rejected"
    wm_before: list[int | None]
    wm_after: list[int | None]


def simulate(times: Sequence[int | None], delay: int, lateness: int) -> Sim:
    """wm(i) = max time of the accepted rows before i, minus the delay; late iff
    t + 1 + lateness <= wm(i) (the row's own window closed before it arrived)."""
    sim = Sim([], [], [])
    wm: int | None = None
    for t in times:
        sim.wm_before.append(wm)
        if t is None:
            sim.status.append("rejected")
        elif _ge(wm, t + 1 + lateness):
            sim.status.append("late")
        else:
            sim.status.append("accepted")
            wm = t - delay if wm is None else max(wm, t - delay)
        sim.wm_after.append(wm)
    return sim


@dataclass
class Emission:
    moment: int  # index of the row after which it is emitted; len(rows) for the flush
    row: int  # the input row it reports on
    revision: int
    members: list[int]  # rows in its window at that moment
    previous: list[int] | None  # members of the previous revision (None for revision 0)


def reference_emissions(c: SlidingCase, emit: str) -> list[Emission]:
    """Every emitted row, in emission order, by brute force row after row."""
    times, keys, period, lateness = c.times, c.row_keys(), c.period, c.lateness
    sim = simulate(times, c.delay, lateness)
    n = len(times)
    accepted = [i for i in range(n) if sim.status[i] == "accepted"]
    # Each accepted row's window: the same key's accepted rows with time in (t - period, t],
    # whenever they arrive (sorted by time per key, so it stays cheap on long streams).
    by_key: dict[tuple, list[tuple[int, int]]] = {}
    for k in accepted:
        by_key.setdefault(keys[k], []).append((times[k], k))  # type: ignore[arg-type]
    for rows in by_key.values():
        rows.sort()

    def window(i: int) -> list[int]:
        rows, t = by_key[keys[i]], times[i]
        assert t is not None
        lo = bisect.bisect_right(rows, (t - period, math.inf))
        hi = bisect.bisect_right(rows, (t, math.inf))
        return sorted(k for _, k in rows[lo:hi])

    # The watermark never goes back, so "the first accepted row after which wm >= x" is a
    # binary search.
    wms = [-math.inf if sim.wm_after[j] is None else sim.wm_after[j] for j in accepted]

    def first_reaching(i: int, x: int) -> int | None:
        """The moment (row index, or n for the flush) at which wm >= x, not before row i."""
        p = bisect.bisect_left(wms, x)  # type: ignore[arg-type]
        if p < len(accepted):
            return max(accepted[p], i)
        return n if c.flush else None

    events: list[tuple[int, int]] = []  # (moment, row)
    for i in accepted:
        t = times[i]
        assert t is not None
        if emit == "final":
            moment = first_reaching(i, t + 1 + lateness)  # closed
            if moment is not None:
                events.append((moment, i))
            continue
        moment = first_reaching(i, t + 1)  # complete
        if moment is None:
            continue
        events.append((moment, i))
        for k in window(i):  # later rows landing in the window while it is open
            if moment < k < n and not _ge(sim.wm_before[k], t + 1 + lateness):
                events.append((k, i))
    events.sort(key=lambda e: (e[0], times[e[1]], key_sort(keys[e[1]]), e[1]))
    out: list[Emission] = []
    last: dict[int, Emission] = {}
    for moment, i in events:
        members = [k for k in window(i) if k <= moment]
        prev = last.get(i)
        e = Emission(moment, i, 0 if prev is None else prev.revision + 1, members,
                     None if prev is None else prev.members)
        out.append(e)
        last[i] = e
    return out


def expected_frame(c: SlidingCase, emit: str) -> pl.DataFrame:
    """The exact frame rillet should emit, row for row."""
    keys = c.row_keys()
    xs, ys = c.df["x"].to_list(), c.df["y"].to_list()
    rows: list[list[Any]] = []
    for e in reference_emissions(c, emit):
        head = [*keys[e.row], c.times[e.row]]
        if emit == "final":
            rows.append([*head, *python_aggs(xs, ys, e.members)])
        elif emit == "amend":
            rows.append([*head, e.revision, *python_aggs(xs, ys, e.members)])
        elif e.previous is None:
            rows.append([*head, "+I", *python_aggs(xs, ys, e.members)])
        else:
            rows.append([*head, "-U", *python_aggs(xs, ys, e.previous)])
            rows.append([*head, "+U", *python_aggs(xs, ys, e.members)])
    schema: dict[str, Any] = {k: c.df.schema[k] for k in c.keys}
    schema["t"] = pl.Int64
    if emit == "amend":
        schema["revision"] = pl.UInt32
    elif emit == "changelog":
        schema["op"] = pl.String
    schema.update(AGG_DTYPES)
    df = pl.DataFrame(rows, schema=schema, orient="row")
    return df.with_columns(pl.col("t").cast(c.time_dtype()))


def accepted_rows(c: SlidingCase) -> pl.DataFrame:
    sim = simulate(c.times, c.delay, c.lateness)
    return c.df.filter(pl.Series([s == "accepted" for s in sim.status], dtype=pl.Boolean))


def polars_rolling(c: SlidingCase, rows: pl.DataFrame | None = None) -> pl.DataFrame:
    """polars' answer over the accepted rows: one row per row, keys, t, aggregates."""
    rows = accepted_rows(c) if rows is None else rows
    return (
        rows.sort([*c.keys, "t"])
        .rolling(index_column="t", period=c.polars_period(), closed="right",
                 group_by=c.keys or None)
        .agg(*polars_aggs())
    )


def sort_rows(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Rows of one (key, time) share identical values, so sorting by key and time makes two
    multisets of rows comparable row for row."""
    return df.sort([*keys, "t"], nulls_last=False, maintain_order=True)


def late_by_series(c: SlidingCase, values: list[int]) -> pl.Series:
    s = pl.Series("late_by", values, dtype=pl.Int64)
    return s if c.time_kind == "int" else s.cast(pl.Duration(c.unit))


def check_final_against_polars(c: SlidingCase) -> None:
    run = sliding_query(c).run()
    sim = simulate(c.times, c.delay, c.lateness)
    rids = c.df["rid"].to_list()
    # Values: polars rolling over the accepted rows (flush=True: every accepted row reported).
    expected = polars_rolling(c)
    assert run.output.columns == [*c.keys, "t", *AGG_NAMES]
    assert run.output.schema["t"] == c.time_dtype()
    assert run.output.height == sim.status.count("accepted")
    assert_frame_equal(sort_rows(run.output, c.keys), sort_rows(expected, c.keys),
                       rel_tol=1e-9, abs_tol=1e-9)
    # Late and rejected rows, with late_by = wm(i) - t.
    late = [i for i, s in enumerate(sim.status) if s == "late"]
    assert run.late["rid"].to_list() == [rids[i] for i in late]
    late_by = [sim.wm_before[i] - c.times[i] for i in late]  # type: ignore[operator]
    assert run.late["late_by"].equals(late_by_series(c, late_by))
    assert run.rejected["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "rejected"]
    m = run.metrics
    assert (m["rows_accepted"], m["rows_late"], m["rows_rejected"]) == (
        sim.status.count("accepted"), len(late), sim.status.count("rejected"))
    assert m["rows_in"] == c.df.height
    # Order: the exact emission sequence of the row-at-a-time model.
    assert_frame_equal(run.output, expected_frame(c, "final"), rel_tol=1e-9, abs_tol=1e-9)


# -- 1, 2: random streams against polars rolling and the reference --------------------------
@given(sliding_cases(time_kind="int", flush=True))
def test_sliding_final_matches_polars_rolling_on_the_accepted_rows(c: SlidingCase) -> None:
    check_final_against_polars(c)


@given(sliding_cases(time_kind="datetime", flush=True))
def test_sliding_final_datetime_minutes_matches_polars_rolling(c: SlidingCase) -> None:
    check_final_against_polars(c)


@pytest.mark.parametrize("emit", EMITS)
@given(c=sliding_cases(time_kind="int"))
def test_sliding_matches_the_row_at_a_time_reference(c: SlidingCase, emit: str) -> None:
    """Exact output, row for row (moments, order, revisions, -U/+U), flush or not."""
    out = sliding_query(c, emit=emit).collect()
    assert_frame_equal(out, expected_frame(c, emit), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("emit", ["amend", "changelog"])
@given(c=sliding_cases(time_kind="datetime"))
def test_sliding_datetime_updating_modes_match_the_reference(c: SlidingCase, emit: str) -> None:
    out = sliding_query(c, emit=emit).collect()
    assert_frame_equal(out, expected_frame(c, emit), rel_tol=1e-9, abs_tol=1e-9)


# -- 3: batching ------------------------------------------------------------------------------
@pytest.mark.parametrize("emit", EMITS)
@given(c=sliding_cases(time_kind="int"))
def test_sliding_batch_sizes_1_7_whole_are_identical(c: SlidingCase, emit: str) -> None:
    whole = sliding_query(c, emit=emit).run()
    for size in (1, 7):
        cut = sliding_query(c, source=batches(c.df, size), emit=emit).run()
        assert cut.output.equals(whole.output), size
        assert cut.late.equals(whole.late), size
        assert cut.rejected.equals(whole.rejected), size


# -- 4: amend / changelog algebra -------------------------------------------------------------
def _values(row: dict[str, Any]) -> tuple:
    return tuple(row[n] for n in AGG_NAMES)


def _final_multisets(final: pl.DataFrame, ident: list[str]) -> dict[tuple, Counter]:
    out: dict[tuple, Counter] = {}
    for r in final.iter_rows(named=True):
        out.setdefault(tuple(r[c] for c in ident), Counter())[_values(r)] += 1
    return out


def replay_sliding_changelog(log: pl.DataFrame, ident: list[str]) -> dict[tuple, Counter]:
    """``replay_changelog`` for sliding output: rows of one (key, time) are not told apart
    (ties share values), so each identity holds a multiset of current rows."""
    state: dict[tuple, Counter] = {}
    ops = log["op"].to_list()
    for i, row in enumerate(log.iter_rows(named=True)):
        ident_key = tuple(row[c] for c in ident)
        vals = _values(row)
        bag = state.setdefault(ident_key, Counter())
        if row["op"] == "+I":
            bag[vals] += 1
        elif row["op"] == "-U":
            assert bag[vals] > 0, f"-U does not retract a current row of {ident_key}: {vals}"
            bag[vals] -= 1
            assert i + 1 < len(ops) and ops[i + 1] == "+U", "-U not followed by its +U"
            nxt = log.row(i + 1, named=True)
            assert tuple(nxt[c] for c in ident) == ident_key
        elif row["op"] == "+U":
            assert ops[i - 1] == "-U", "+U without a preceding -U"
            bag[vals] += 1
        else:
            raise AssertionError(f"unexpected op {row['op']!r}")
    return {k: +v for k, v in state.items() if +v}


def replay_amend(out: pl.DataFrame, ident: list[str]) -> dict[tuple, Counter]:
    """Each (key, time) holds its rows' latest revisions; revision r > 0 replaces a row of
    that identity currently at r - 1. Returns the latest values as multisets."""
    state: dict[tuple, list[tuple[int, tuple]]] = {}
    for row in out.iter_rows(named=True):
        rows = state.setdefault(tuple(row[c] for c in ident), [])
        rev = row["revision"]
        if rev > 0:
            at = [j for j, (r, _) in enumerate(rows) if r == rev - 1]
            assert at, f"revision {rev} of {row} amends no row at revision {rev - 1}"
            rows.pop(at[0])
        rows.append((rev, _values(row)))
    return {k: Counter(v for _, v in rows) for k, rows in state.items()}


@given(sliding_cases(time_kind="int", flush=True))
def test_sliding_last_revisions_and_changelog_replay_to_the_final_rows(c: SlidingCase) -> None:
    ident = [*c.keys, "t"]
    final = sliding_query(c, emit="final").collect()
    amend = sliding_query(c, emit="amend").collect()
    log = sliding_query(c, emit="changelog").collect()
    expected = _final_multisets(final, ident)
    assert replay_amend(amend, ident) == expected
    assert replay_sliding_changelog(log, ident) == expected
    # The changelog's +I / +U rows are the amend rows one for one.
    after = log.filter(pl.col("op").is_in(["+I", "+U"])).drop("op")
    assert after.equals(amend.drop("revision"))
    assert (log["op"] == "+I").sum() == (amend["revision"] == 0).sum() == final.height


# -- 5: named cases ---------------------------------------------------------------------------
def _q(df: Any, period: Any, *, by: Any = "k", watermark: Any = 0, lateness: Any = 0,
       emit: str = "final", late: str = "collect", aggs: Sequence[Any] = (),
       flush: bool = True) -> rl.Query:
    return (
        rl.stream(df, time="t", watermark=watermark, flush=flush)
        .window(rl.sliding(period), by=by, lateness=lateness, emit=emit, late=late)
        .agg(*(aggs or [rl.count()]))
    )


@pytest.mark.parametrize("size", [None, 1, 3])
def test_case_21_three_rows_sharing_one_time_all_report_the_full_count(size: int | None) -> None:
    """Reference edge case 21 (KDA ``RANGE INTERVAL '5' SECOND PRECEDING``, trace t1, t2, t6,
    t7, t8 x 3 -> 1, 2, 2, 2, 5): the doc shows a final count of 5 but not what the two earlier
    rows at t8 report.

    Our decision: the window is closed on the right, so every row at one time sees *all* rows
    at that time, whatever their arrival order or batching: the three rows at t8 all report 5,
    exactly as polars ``rolling(closed="right")``. (A row-by-row 1-2-3 count at t8 would make
    the output depend on arrival order among equal times.)"""
    t0 = dt.datetime(2026, 1, 1, 12, 0, 0)
    secs = [1, 2, 6, 7, 8, 8, 8]
    df = pl.DataFrame({"t": [t0 + dt.timedelta(seconds=s) for s in secs], "k": ["ticker"] * 7,
                       "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    q = _q(batches(df, size), "5s", aggs=[rl.count(), rl.sum("price")])
    out = q.collect()
    assert out["t"].to_list() == df["t"].to_list()
    assert out["count"].to_list() == [1, 2, 2, 2, 5, 5, 5]
    assert out["price_sum"].to_list() == [1.0, 3.0, 5.0, 7.0, 25.0, 25.0, 25.0]
    polars = df.rolling(index_column="t", period="5s", closed="right", group_by="k").agg(
        pl.len().cast(pl.Int64).alias("count"))
    assert out["count"].to_list() == polars["count"].to_list()
    # The same rows in another arrival order (ties first): still 5, 5, 5 for t8.
    shuffled = df.select(pl.all().gather([4, 0, 5, 1, 2, 6, 3]))
    out2 = _q(shuffled, "5s", watermark="10s").collect()
    assert sorted(zip(out2["t"].to_list(), out2["count"].to_list())) == sorted(
        zip(out["t"].to_list(), out["count"].to_list()))


def test_rows_expire_from_the_window() -> None:
    """(t - 10, t] excludes t - 10: rows at 0, 5, 10, 15 count 1, 2, 2, 2."""
    df = pl.DataFrame({"t": [0, 5, 10, 15], "k": ["a"] * 4})
    out = _q(df, 10).collect()
    assert out.rows() == [("a", 0, 1), ("a", 5, 2), ("a", 10, 2), ("a", 15, 2)]
    # Expiry alone emits nothing: a long gap gives one row per input row, not more.
    gap = _q(pl.DataFrame({"t": [0, 100], "k": ["a", "a"]}), 10).collect()
    assert gap.rows() == [("a", 0, 1), ("a", 100, 1)]


@pytest.mark.parametrize("size", [None, 1, 4])
def test_min_max_expire_correctly(size: int | None) -> None:
    """A large (small) value leaves the window and max (min) falls back to what remains,
    across several expiries so the engine's two-stack aggregate flips more than once."""
    ts = list(range(20))
    vs = [5, 9, 100, 7, 6, 3, -50, 8, 2, 4, 1, 60, 0, 5, 5, 30, 2, -1, 3, 3]
    df = pl.DataFrame({"t": ts, "k": ["a"] * 20, "v": vs})
    out = _q(batches(df, size), 4, aggs=[rl.max("v"), rl.min("v")]).collect()
    expected_max = [max(vs[max(0, i - 3): i + 1]) for i in range(20)]
    expected_min = [min(vs[max(0, i - 3): i + 1]) for i in range(20)]
    assert out["v_max"].to_list() == expected_max
    assert out["v_min"].to_list() == expected_min
    assert expected_max[5:7] == [100, 7]  # 100 at t = 2 leaves at t = 6
    assert expected_min[9:11] == [-50, 1]  # -50 at t = 6 leaves at t = 10


def test_output_is_in_event_time_order_per_moment() -> None:
    """Rows emitted at one moment come by time, then key (nulls first), then arrival."""
    df = pl.DataFrame({
        "t": [7, 3, 5, 3, 3, 5, 30],
        "k": ["b", "b", "a", "a", None, "a", "a"],
        "v": [1, 2, 3, 4, 5, 6, 7],
    })
    # Watermark delay 10: nothing completes until t = 30 moves the watermark to 20, then the
    # first six rows are emitted at that one moment; t = 30 comes at the flush.
    out = _q(df, 3, watermark=10, aggs=[rl.count(), rl.sum("v")]).collect()
    assert out.rows() == [
        (None, 3, 1, 5), ("a", 3, 1, 4), ("b", 3, 1, 2),
        ("a", 5, 3, 13), ("a", 5, 3, 13), ("b", 7, 1, 1),
        ("a", 30, 1, 7),
    ]
    # In amend mode a later moment may go back in time (an amendment), but each moment is
    # still in time order: a@3 arrives after a@5 was emitted, so a@3 (revision 0) then a@5
    # (revision 1) are emitted together, in that order.
    df2 = pl.DataFrame({"t": [5, 20, 3], "k": ["a", "a", "a"]})
    out2 = _q(df2, 5, lateness=20, emit="amend").collect()
    assert out2.rows() == [("a", 5, 0, 1), ("a", 3, 0, 1), ("a", 5, 1, 2), ("a", 20, 0, 1)]


@pytest.mark.parametrize("emit", EMITS)
def test_late_row_is_in_no_window(emit: str) -> None:
    """t = 5 arrives under watermark 10: 5 + 1 + 0 <= 10, so it is late. It is reported in
    run.late (late_by = 10 - 5) and counted in no row's window, not even t = 12's (2, 12].
    t = 9 arrives after t = 12 moved the watermark to 12: late by 3."""
    df = pl.DataFrame({"rid": [0, 1, 2, 3], "t": [10, 5, 12, 9], "k": ["a"] * 4})
    run = _q(df, 10, emit=emit).run()
    assert run.late.select("rid", "late_by").rows() == [(1, 5), (3, 3)]
    out = run.output.drop("revision", "op", strict=False)
    assert sorted(out.rows()) == [("a", 10, 1), ("a", 12, 2)]
    assert run.metrics["rows_late"] == 2
    dropped = _q(df, 10, emit=emit, late="drop").run()
    assert dropped.late.height == 0 and dropped.metrics["rows_late"] == 2
    assert dropped.output.equals(run.output)
    with pytest.raises(rl.LateDataError):
        _q(df, 10, emit=emit, late="raise").collect()


def test_a_row_completes_one_unit_past_its_time_and_closes_lateness_later() -> None:
    """Boundaries of 'complete at wm >= t + 1' and 'late iff t + 1 + lateness <= wm(i)'."""
    # lateness 3: row 10 closes at wm >= 14; a row at 10 is accepted under wm 13, late at 14.
    df = pl.DataFrame({"rid": [0, 1, 2, 3], "t": [10, 23, 10, 24], "k": ["a"] * 4})
    run = _q(df, 5, watermark=10, lateness=3).run()  # wm after rows: 0, 13, 13, 14
    assert run.late["rid"].to_list() == []
    assert run.output.rows() == [("a", 10, 2), ("a", 10, 2), ("a", 23, 1), ("a", 24, 2)]
    df2 = df.with_columns(pl.Series("t", [10, 24, 10, 24]))
    assert _q(df2, 5, watermark=10, lateness=3).run().late["rid"].to_list() == [2]
    # Without the flush: row 10 completes (amend) at watermark 11, not 10; with lateness 0
    # it also closes (final) there.
    for emit, head in (("amend", ("a", 10, 0, 1)), ("final", ("a", 10, 1))):
        at_10 = _q(pl.DataFrame({"t": [10, 20], "k": ["a"] * 2}), 5, watermark=10, emit=emit,
                   flush=False).collect()
        assert at_10.height == 0, emit
        at_11 = _q(pl.DataFrame({"t": [10, 21], "k": ["a"] * 2}), 5, watermark=10, emit=emit,
                   flush=False).collect()
        assert at_11.rows() == [head], emit


def test_datetime_time_keeps_its_name_unit_and_zone() -> None:
    t0 = dt.datetime(2026, 3, 29, 0, 0, tzinfo=dt.UTC)
    df = pl.DataFrame({
        "when": pl.Series([t0 + dt.timedelta(minutes=m) for m in (0, 3, 3, 9, 4)])
        .dt.convert_time_zone("Europe/Paris").dt.cast_time_unit("ms"),
        "user": ["u", "u", "v", "u", "u"],
    })
    out = (
        rl.stream(df, time="when", watermark="10m")
        .window(rl.sliding("5m"), by="user").agg(rl.count()).collect()
    )
    assert out.schema == pl.Schema({"user": pl.String, "when": pl.Datetime("ms", "Europe/Paris"),
                                    "count": pl.Int64})
    expected = (
        df.sort("user", "when")
        .rolling(index_column="when", period="5m", closed="right", group_by="user")
        .agg(pl.len().cast(pl.Int64).alias("count"))
    )
    assert sort_rows(out.rename({"when": "t"}), ["user"]).equals(
        sort_rows(expected.rename({"when": "t"}), ["user"]))


def test_early_with_sliding_is_a_config_error() -> None:
    df = pl.DataFrame({"t": [1, 2], "k": ["a", "a"]})
    for emit in ("amend", "changelog"):
        with pytest.raises(rl.ConfigError, match="early"):
            (rl.stream(df, time="t").window(rl.sliding(5), by="k", emit=emit, early="10s")
             .agg(rl.count()).collect())


def test_long_stream_is_not_quadratic() -> None:
    """200k rows of one key, a period covering ~1000 rows, some disorder under the watermark
    and a few duplicates. Only correctness is asserted (against polars); a quadratic engine
    would take minutes here."""
    n = 200_000
    rng = np.random.default_rng(21)
    base = np.arange(n, dtype=np.int64)
    times = base + rng.integers(-5, 6, n)  # disorder of at most 10 (< watermark delay)
    times[::97] = times[::97] - times[::97] % 4  # a few ties
    df = pl.DataFrame({
        "t": times, "k": np.zeros(n, dtype=np.int64),
        "v": rng.integers(-1_000_000, 1_000_000, n),
    })
    run = (
        rl.stream(batches(df, 8192), time="t", watermark=12)
        .window(rl.sliding(1000), by="k")
        .agg(rl.count(), rl.sum("v"), rl.min("v"), rl.max("v"))
        .run()
    )
    assert run.late.height == 0
    out = run.output
    assert out.height == n
    assert out["t"].is_sorted()  # final mode: emission follows event time
    expected = (
        df.sort("t", maintain_order=True)
        .rolling(index_column="t", period="1000i", closed="right", group_by="k")
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("v").sum().alias("v_sum"),
             pl.col("v").min().alias("v_min"), pl.col("v").max().alias("v_max"))
    )
    assert out.equals(expected)
    sample = out.gather(np.linspace(0, n - 1, 50).astype(np.int64))
    for t, count in zip(sample["t"].to_list(), sample["count"].to_list(), strict=True):
        assert count == int(((times > t - 1000) & (times <= t)).sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_long_disordered_stream_with_late_rows_and_amendments(seed: int) -> None:
    """A few thousand rows over three keys (one null), disorder beyond the watermark delay
    (late rows and rows behind already-emitted ones), ties, lateness: final equals polars
    rolling over the model's accepted rows, and amend / changelog replay to it. Exercises
    the engine's slot reuse and rebuilds far beyond the hypothesis sizes."""
    n = 6000
    rng = np.random.default_rng(seed)
    times = (np.arange(n) // 2 + rng.integers(-40, 41, n)).tolist()
    keys = rng.choice(np.array(["a", "b", ""], dtype=object), n).tolist()
    keys = [None if k == "" else k for k in keys]
    xs = rng.integers(-5, 6, n).tolist()
    ys = (rng.integers(-40, 41, n) / 4).tolist()
    df = pl.DataFrame({"rid": range(n), "t": times, "k0": keys, "x": xs, "y": ys},
                      schema_overrides={"k0": pl.String})
    c = SlidingCase(df=df, times=times, keys=["k0"], period=60, delay=10, lateness=25,
                    flush=True, time_kind="int")
    sim = simulate(c.times, c.delay, c.lateness)
    assert 0 < sim.status.count("late") < n // 2
    run = sliding_query(c).run()
    assert run.late["rid"].to_list() == [i for i, s in enumerate(sim.status) if s == "late"]
    assert_frame_equal(sort_rows(run.output, c.keys), sort_rows(polars_rolling(c), c.keys),
                       rel_tol=1e-9, abs_tol=1e-9)
    ident = [*c.keys, "t"]
    expected = _final_multisets(run.output, ident)
    amend = sliding_query(c, emit="amend").collect()
    assert (amend["revision"] > 0).sum() > 100
    assert replay_amend(amend, ident) == expected
    log = sliding_query(c, emit="changelog").collect()
    assert replay_sliding_changelog(log, ident) == expected
    assert log.filter(pl.col("op") != "-U").drop("op").equals(amend.drop("revision"))
    cut = sliding_query(c, source=batches(df, 13), emit="changelog").collect()
    assert cut.equals(log)
    # And row for row against the reference model (moments, order, revisions).
    for emit, out in (("final", run.output), ("amend", amend), ("changelog", log)):
        assert_frame_equal(out, expected_frame(c, emit), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("dtype", [pl.Int64, pl.Int32, pl.UInt32])
def test_integer_time_column_keeps_its_dtype(dtype: pl.DataType) -> None:
    df = pl.DataFrame({"t": [1, 3, 3, 9], "k": ["a"] * 4}, schema={"t": dtype, "k": pl.String})
    out = _q(df, 5).collect()
    assert out.schema["t"] == dtype
    expected = df.rolling(index_column="t", period="5i", closed="right", group_by="k").agg(
        pl.len().cast(pl.Int64).alias("count"))
    assert out.equals(expected)


def test_idle_timeout_emits_sliding_rows_while_the_stream_is_quiet(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The watermark moved by the wall clock (not by a row) completes and closes rows too."""
    from rillet import _clock

    now = {"ms": 1_700_000_000_000}
    monkeypatch.setattr(_clock, "now_ms", lambda: now["ms"])
    monkeypatch.setattr(_clock, "now_us", lambda: now["ms"] * 1000)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = pl.DataFrame({"t": [t0 + dt.timedelta(seconds=s) for s in (1, 20, 50)],
                         "k": ["a", "b", "a"]})

    def live():
        yield rows
        for _ in range(5):
            now["ms"] += 10_000
            yield rows.clear()

    q = (rl.stream(live(), time="t", watermark="30s", idle_timeout="15s", flush=False)
         .window(rl.sliding("1m"), by="k").agg(rl.count()))
    out = pl.concat([f for f in q.iter() if f.height])
    assert out.select("k", "count").rows() == [("a", 1), ("b", 1), ("a", 2)]
    assert out["t"].to_list() == rows["t"].to_list()
    # Without the timeout the watermark stays at 00:00:50 - 30 s: only t = 1 s is emitted.
    quiet = (rl.stream(live(), time="t", watermark="30s", flush=False)
             .window(rl.sliding("1m"), by="k").agg(rl.count()))
    assert pl.concat([f for f in quiet.iter() if f.height]).select("k", "count").rows() == [
        ("a", 1)]
