"""Cumulative windows (Flink CUMULATE) against a brute-force, row-at-a-time reference.

``rl.cumulative(period, step, offset)``: the time line is cut into blocks
``[b, b + period)`` with ``b = k * period + offset``; each block has the windows
``[b, b + j * step)`` for ``j = 1 .. period / step``. A row at ``t`` belongs to every window of
its block whose end is after ``t``.

The windows of one block end at different moments, so under the watermark they close one by
one: a row is late only when *all* its windows are closed (in particular the block's full
window); otherwise it is added to the windows still open. ``conftest.simulate_spans`` walks the
rows one at a time exactly like that, sharing no code with the engine.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from conftest import (
    SPAN_AGG_NAMES,
    Span,
    batches,
    reference_span_emissions,
    simulate_spans,
    span_aggregates,
    span_emissions_frame,
)
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal
from strategies import UNIT_PER_SECOND, Case, cases

import rillet as rl


def cumulative_spans(t: int, period: int, step: int, offset: int = 0) -> list[Span]:
    """Every cumulative window containing t: its block's windows that end after t."""
    block = (t - offset) // period * period + offset  # floor, so negative t works too
    return [(block, block + j * step) for j in range(1, period // step + 1)
            if block + j * step > t]


@pytest.mark.parametrize("period,step,offset", [(10, 2, 0), (10, 10, 0), (12, 3, 5), (6, 2, -7)])
def test_cumulative_spans_helper(period: int, step: int, offset: int) -> None:
    """Sanity of the reference: windows share the block start, grow by step, contain t."""
    for t in range(-30, 30):
        spans = cumulative_spans(t, period, step, offset)
        assert spans, t
        starts = {s for s, _ in spans}
        assert len(starts) == 1
        (start,) = starts
        assert (start - offset) % period == 0 and start <= t < start + period
        assert all(s <= t < e and (e - s) % step == 0 for s, e in spans)
        assert spans[-1][1] == start + period  # the full window is always there
        assert spans[0][1] - step <= t  # the window one step shorter does not contain t


# -- random streams -------------------------------------------------------------------------
@dataclass
class CumulativeCase:
    case: Case  # rows, keys, delay, lateness, flush, time kind (integer seconds in .times)
    period: int
    step: int
    offset: int | None
    spelling: str  # how durations are written: "str" or "native"

    @property
    def offset0(self) -> int:
        return self.offset or 0

    def windows_of(self, t: int) -> list[Span]:
        return cumulative_spans(t, self.period, self.step, self.offset0)

    def duration(self, n: int) -> Any:
        if self.case.time_kind == "int":
            return f"{n}i" if self.spelling == "str" else n
        return f"{n}s" if self.spelling == "str" else dt.timedelta(seconds=n)

    def to_window(self, seconds: int) -> int:
        """Reference instant (seconds, or the integer time) -> the window column's integer."""
        if self.case.time_kind == "int":
            return seconds
        assert self.case.unit is not None
        return seconds * UNIT_PER_SECOND[self.case.unit]


@st.composite
def cumulative_cases(draw: st.DrawFn, time_kind: str | None = None,
                     max_rows: int = 40) -> CumulativeCase:
    case = draw(cases(time_kind=time_kind, kind="tumbling", max_rows=max_rows))
    step = draw(st.integers(1, 8))
    period = step * draw(st.integers(1, 5))
    offset = draw(st.one_of(st.none(), st.integers(-25, 25)))
    return CumulativeCase(case, period, step, offset, draw(st.sampled_from(["str", "native"])))


def cumulative_query(c: CumulativeCase, source: Any = None, emit: str = "final") -> rl.Query:
    case = c.case
    spec = rl.cumulative(c.duration(c.period), c.duration(c.step),
                         offset=None if c.offset is None else c.duration(c.offset))
    by = case.keys if len(case.keys) != 1 else case.keys[0]
    return (
        rl.stream(case.df if source is None else source, time="t",
                  watermark=c.duration(case.delay), flush=case.flush)
        .window(spec, by=by or None, lateness=c.duration(case.lateness), emit=emit)
        .agg(*span_aggregates())
    )


def row_keys(case: Case) -> list[tuple]:
    if not case.keys:
        return [()] * case.df.height
    return [tuple(r) for r in case.df.select(case.keys).iter_rows()]


def expected_frame(c: CumulativeCase, emit: str) -> pl.DataFrame:
    case = c.case
    emissions = reference_span_emissions(case.times, row_keys(case), case.delay, case.lateness,
                                         c.windows_of, emit=emit, flush=case.flush)
    return span_emissions_frame(emissions, case.df, case.keys, case.window_dtype(),
                                c.to_window, revision=emit == "amend")


def expected_late_by(c: CumulativeCase, seconds: list[int]) -> pl.Series:
    s = pl.Series("late_by", seconds, dtype=pl.Int64)
    if c.case.time_kind == "int":
        return s
    assert c.case.unit is not None
    return (s * UNIT_PER_SECOND[c.case.unit]).cast(pl.Duration(c.case.unit))


def check_against_reference(c: CumulativeCase) -> None:
    case = c.case
    run = cumulative_query(c).run()
    assert_frame_equal(run.output, expected_frame(c, "final"), rel_tol=1e-9, abs_tol=1e-9)

    sim = simulate_spans(case.times, case.delay, case.lateness, c.windows_of)
    rids = case.df["rid"].to_list()
    late = [i for i, s in enumerate(sim.status) if s == "late"]
    assert run.late["rid"].to_list() == [rids[i] for i in late]
    assert_series_equal(run.late["late_by"], expected_late_by(c, [sim.late_by[i] for i in late]))
    assert run.rejected["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "rejected"]
    m = run.metrics
    assert m["rows_accepted"] == sim.status.count("accepted")
    assert m["rows_late"] == len(late)
    assert m["rows_emitted"] == run.output.height


@given(cumulative_cases(time_kind="int"))
def test_cumulative_int_time_matches_bruteforce(c: CumulativeCase) -> None:
    check_against_reference(c)


@given(cumulative_cases(time_kind="datetime"))
def test_cumulative_datetime_time_matches_bruteforce(c: CumulativeCase) -> None:
    """Datetime columns (ns/us/ms; naive, UTC or Europe/Paris): fixed durations, UTC-aligned."""
    check_against_reference(c)


@given(cumulative_cases())
def test_cumulative_amend_matches_bruteforce_replay(c: CumulativeCase) -> None:
    out = cumulative_query(c, emit="amend").collect()
    assert_frame_equal(out, expected_frame(c, "amend"), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("emit", ["final", "amend"])
@given(c=cumulative_cases())
def test_cumulative_batch_sizes_1_7_whole_are_identical(c: CumulativeCase, emit: str) -> None:
    whole = cumulative_query(c, emit=emit).run()
    for size in (1, 7):
        run = cumulative_query(c, source=batches(c.case.df, size), emit=emit).run()
        assert_frame_equal(run.output, whole.output, check_exact=True)
        assert_frame_equal(run.late, whole.late, check_exact=True)
        assert_frame_equal(run.rejected, whole.rejected, check_exact=True)
        for key in ("rows_accepted", "rows_late", "rows_rejected", "rows_emitted", "watermark",
                    "open_windows", "open_panes"):
            assert run.metrics[key] == whole.metrics[key], key


@given(cumulative_cases(time_kind="int"))
def test_cumulative_full_windows_are_the_tumbling_windows(c: CumulativeCase) -> None:
    """The full window of a block closes last, so a row is late for the block exactly when it is
    late for tumbling(period), and every accepted row is in it: the cumulative rows with
    end - start == period are the tumbling(period, offset) output, in the same order."""
    case = c.case
    cum = cumulative_query(c).run()
    by = case.keys if len(case.keys) != 1 else case.keys[0]
    tumble = (
        rl.stream(case.df, time="t", watermark=case.delay, flush=case.flush)
        .window(rl.tumbling(c.period, offset=c.offset), by=by or None, lateness=case.lateness)
        .agg(*span_aggregates())
        .run()
    )
    full = cum.output.filter(pl.col("window_end") - pl.col("window_start") == c.period)
    assert_frame_equal(full, tumble.output, rel_tol=1e-9, abs_tol=1e-9)
    assert_frame_equal(cum.late, tumble.late)


@given(cumulative_cases(time_kind="int"))
def test_cumulative_with_step_equal_to_period_is_tumbling(c: CumulativeCase) -> None:
    case = c.case
    by = case.keys if len(case.keys) != 1 else case.keys[0]

    def q(spec: rl.WindowSpec) -> rl.Run:
        return (
            rl.stream(case.df, time="t", watermark=case.delay, flush=case.flush)
            .window(spec, by=by or None, lateness=case.lateness)
            .agg(*span_aggregates())
            .run()
        )

    a, b = q(rl.cumulative(c.step, c.step, offset=c.offset)), q(rl.tumbling(c.step, offset=c.offset))
    assert_frame_equal(a.output, b.output, check_exact=True)
    assert_frame_equal(a.late, b.late, check_exact=True)


# -- hand-made cases ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [None, 1])
def test_case_19_flink_cumulate_example(size: int | None) -> None:
    """Reference edge case 19, the Flink CUMULATE documentation example: step 2 min, size
    10 min; events 08:05 (4.00), 08:07 (2.00), 08:09 (5.00).

    By hand, the windows of block [08:00, 08:10) are [08:00, 08:02k) for k = 1..5; 08:05 is in
    those ending at 08:06, 08:08, 08:10; 08:07 in 08:08, 08:10; 08:09 in 08:10 only. So:
    [08:00, 08:06) = 4, [08:00, 08:08) = 4 + 2 = 6, [08:00, 08:10) = 4 + 2 + 5 = 11, and the
    windows ending at 08:02 and 08:04 are empty, so they produce no row.
    """
    at = lambda h, m: dt.datetime(2021, 6, 30, h, m, tzinfo=dt.UTC)  # noqa: E731
    df = pl.DataFrame({
        "t": [at(8, 5), at(8, 7), at(8, 9)],
        "price": [4.0, 2.0, 5.0],
    })
    out = (
        rl.stream(batches(df, size), time="t")
        .window(rl.cumulative("10m", "2m"))
        .agg(rl.sum("price"))
        .collect()
    )
    assert out.rows() == [
        (at(8, 0), at(8, 6), 4.0),
        (at(8, 0), at(8, 8), 6.0),
        (at(8, 0), at(8, 10), 11.0),
    ]
    assert out.schema["window_start"] == pl.Datetime("us", "UTC")


def test_cumulative_row_joins_only_the_still_open_windows_of_its_block() -> None:
    """period 10, step 2, delay 0, lateness 0. Rows 1, 5, 3, 12, 9.

    * 1 -> [0,2) [0,4) [0,6) [0,8) [0,10); wm = 1.
    * 5 -> [0,6) [0,8) [0,10); wm = 5 closes [0,2) and [0,4) (ends <= 5): emitted with 1 row.
    * 3 is in [0,4) [0,6) [0,8) [0,10); [0,4) is closed, so 3 joins only [0,6) [0,8) [0,10)
      and is not late (late_by is only for rows whose every window is closed).
    * 12 is in [10,14) [10,16) [10,18) [10,20); wm = 12 closes [0,6) [0,8) [0,10).
    * 9 is only in [0,10), which is closed: late by 12 - 9 = 3.
    * flush: [10,14) [10,16) [10,18) [10,20) with the row at 12.
    """
    df = pl.DataFrame({"t": [1, 5, 3, 12, 9]})
    run = (
        rl.stream(df, time="t")
        .window(rl.cumulative(10, 2))
        .agg(rl.count(), rl.min("t"))
        .run()
    )
    assert run.output.rows() == [
        (0, 2, 1, 1), (0, 4, 1, 1),
        (0, 6, 3, 1), (0, 8, 3, 1), (0, 10, 3, 1),
        (10, 14, 1, 12), (10, 16, 1, 12), (10, 18, 1, 12), (10, 20, 1, 12),
    ]
    assert run.late.rows() == [(9, 3)]
    assert run.metrics["rows_accepted"] == 4


def test_cumulative_same_moment_rows_ordered_by_end_start_key() -> None:
    """period 4, step 2, offset 1, keys; delay 0. Blocks are [1, 5), [5, 9), ...

    Rows (2, b), (2, a), (4, None), (9, a). The row at 9 moves the watermark to 9, which closes
    every window of block [1, 5): [1,3) and [1,5) for each key, emitted together ordered by
    end, then start, then key with nulls first. Block [5, 9) is empty. The flush emits [9,11)
    and [9,13) for key a.
    """
    df = pl.DataFrame({"t": [2, 2, 4, 9], "k": ["b", "a", None, "a"]})
    out = (
        rl.stream(df, time="t")
        .window(rl.cumulative(4, 2, offset=1), by="k")
        .agg(rl.count())
        .collect()
    )
    assert out.rows() == [
        ("a", 1, 3, 1), ("b", 1, 3, 1),
        (None, 1, 5, 1), ("a", 1, 5, 1), ("b", 1, 5, 1),
        ("a", 9, 11, 1), ("a", 9, 13, 1),
    ]


def test_cumulative_negative_times_and_offset_normalisation() -> None:
    """Blocks use floor division: with period 6, step 3, t = -1 is in block [-6, 0), window
    [-6, 0) only ([-6, -3) ends before it); -4 is in [-6, -3) and [-6, 0); 7 in [6, 9) and
    [6, 12). An offset of 6 + 2 (or 2 - 6) is the same grid as 2."""
    df = pl.DataFrame({"t": [-1, -4, 0, 7]})
    q = lambda off: (  # noqa: E731
        rl.stream(df, time="t", watermark=100).window(rl.cumulative(6, 3, offset=off))
        .agg(rl.count()).collect()
    )
    assert q(None).rows() == [
        (-6, -3, 1), (-6, 0, 2), (0, 3, 1), (0, 6, 1), (6, 9, 1), (6, 12, 1)
    ]
    # offset 2: blocks [-4, 2), [2, 8); -4 is in [-4,-1) and [-4,2); 7 only in [2, 8)
    assert q(2).rows() == [(-4, -1, 1), (-4, 2, 3), (2, 8, 1)]
    assert_frame_equal(q(8), q(2))
    assert_frame_equal(q(-4), q(2))


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_cumulative_is_utc_aligned_on_a_tz_aware_column(unit: str) -> None:
    """Cumulative windows take fixed durations aligned in UTC, whatever the column's zone:
    on an Asia/Kolkata (UTC+05:30) column, 1-hour blocks start at :00 UTC = :30 local. The
    bounds keep the column's unit and zone."""
    utc = dt.UTC
    times = [dt.datetime(2024, 5, 1, 10, 20, tzinfo=utc), dt.datetime(2024, 5, 1, 10, 50, tzinfo=utc)]
    df = pl.DataFrame({"t": pl.Series(times).dt.cast_time_unit(unit)
                       .dt.convert_time_zone("Asia/Kolkata")})
    out = rl.stream(df, time="t").window(rl.cumulative("1h", "30m")).agg(rl.count()).collect()
    assert out.schema["window_start"] == pl.Datetime(unit, "Asia/Kolkata")
    assert out.schema["window_end"] == pl.Datetime(unit, "Asia/Kolkata")
    got = out.with_columns(pl.col("window_start", "window_end").dt.convert_time_zone("UTC"))
    h = lambda hh, mm: dt.datetime(2024, 5, 1, hh, mm, tzinfo=dt.UTC)  # noqa: E731
    # 10:20 is in [10:00, 10:30) and [10:00, 11:00); 10:50 only in [10:00, 11:00)
    assert [(r[0], r[1], r[2]) for r in got.rows()] == [
        (h(10, 0), h(10, 30), 1), (h(10, 0), h(11, 0), 2)
    ]


def test_cumulative_day_blocks_on_a_utc_column() -> None:
    """'1d' / '6h' on a UTC column is a fixed 24-hour block from UTC midnight."""
    utc = dt.UTC
    df = pl.DataFrame({"t": [dt.datetime(2024, 3, 1, 7, tzinfo=utc),
                             dt.datetime(2024, 3, 1, 19, tzinfo=utc)]})
    out = rl.stream(df, time="t").window(rl.cumulative("1d", "6h")).agg(rl.count()).collect()
    d = lambda day, hh: dt.datetime(2024, 3, day, hh, tzinfo=utc)  # noqa: E731
    assert out.rows() == [(d(1, 0), d(1, 12), 1), (d(1, 0), d(1, 18), 1), (d(1, 0), d(2, 0), 2)]


# -- configuration errors -------------------------------------------------------------------
DF_INT = pl.DataFrame({"t": [1, 2, 15]})
DF_UTC = pl.DataFrame({"t": [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]})
DF_PARIS = pl.DataFrame({"t": pl.Series([dt.datetime(2024, 1, 1)]).dt.replace_time_zone("Europe/Paris")})


def _run(df: pl.DataFrame, spec_fn: Any) -> Any:
    return rl.stream(df, time="t").window(spec_fn()).agg(rl.count()).collect()


@pytest.mark.parametrize("name,fn,words", [
    ("period not a multiple of step (int)",
     lambda: _run(DF_INT, lambda: rl.cumulative(10, 3)), ("multiple", "step", "10", "3")),
    ("step longer than period",
     lambda: _run(DF_INT, lambda: rl.cumulative(2, 10)), ("multiple",)),
    ("period not a multiple of step (datetime)",
     lambda: _run(DF_UTC, lambda: rl.cumulative("1h", "7m")), ("multiple", "'1h'", "'7m'")),
    ("calendar period", lambda: rl.cumulative("1mo", "1d"), ("calendar", "'1mo'", "fixed")),
    ("calendar step", lambda: rl.cumulative("1y", "1q"), ("calendar", "fixed")),
    ("day blocks in a zone's calendar",
     lambda: _run(DF_PARIS, lambda: rl.cumulative("1d", "1h")), ("cumulative", "fixed", "UTC")),
    ("zero step", lambda: _run(DF_INT, lambda: rl.cumulative(10, 0)), ("positive",)),
    ("negative period", lambda: _run(DF_INT, lambda: rl.cumulative(-10, 2)), ("positive",)),
    ("time span on an integer column",
     lambda: _run(DF_INT, lambda: rl.cumulative("1h", "10m")), ("integer",)),
])
def test_cumulative_config_errors(name: str, fn: Any, words: tuple[str, ...]) -> None:
    with pytest.raises(rl.ConfigError) as info:
        fn()
    msg = str(info.value).lower()
    for w in words:
        assert w.lower() in msg, f"{name}: {w!r} not in {msg!r}"


def test_cumulative_output_columns_and_types() -> None:
    """Keys first, then window_start / window_end (the time column's type), then aggregates."""
    df = pl.DataFrame({"t": [1, 3], "k": ["a", "a"], "x": [1, 2], "y": [0.5, None]})
    out = rl.stream(df, time="t").window(rl.cumulative(4, 2), by="k").agg(*span_aggregates()).collect()
    assert out.columns == ["k", "window_start", "window_end", *SPAN_AGG_NAMES]
    assert out.schema["window_start"] == pl.Int64 and out.schema["window_end"] == pl.Int64
    assert out.rows() == [("a", 0, 2, 1, 1, 1, 0.5, 0.5), ("a", 0, 4, 2, 3, 1, 0.5, 0.5)]
