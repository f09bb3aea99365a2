"""Batch boundaries never change a result (STYLE.md habit 7).

The same rows cut into micro-batches of 1, 7 or one whole frame must give identical output,
late and rejected frames, row for row, in both emit modes; and a DataFrame, a LazyFrame, an
Arrow table, Arrow record batches and a generator of frames are the same source.
"""
from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from conftest import batches
from hypothesis import given
from polars.testing import assert_frame_equal
from strategies import Case, build_query, cases

import rillet as rl


def _same_run(a: rl.Run, b: rl.Run) -> None:
    assert_frame_equal(a.output, b.output, check_exact=True)
    assert_frame_equal(a.late, b.late, check_exact=True)
    assert_frame_equal(a.rejected, b.rejected, check_exact=True)
    for key in ("rows_in", "rows_filtered", "rows_accepted", "rows_late", "rows_rejected",
                "rows_emitted", "watermark", "max_event_time", "open_windows", "open_panes"):
        assert a.metrics[key] == b.metrics[key], key


@pytest.mark.parametrize("emit", ["final", "amend"])
@given(case=cases())
def test_batch_sizes_1_7_whole_are_identical(case: Case, emit: str) -> None:
    whole = build_query(case, emit=emit).run()
    for size in (1, 7):
        parts = batches(case.df, size)
        run = build_query(case, source=parts, emit=emit).run()
        _same_run(whole, run)
        assert run.metrics["batches"] == len(parts)


@given(case=cases(max_rows=25))
def test_iter_concatenates_to_collect(case: Case) -> None:
    """q.iter() yields the same rows as q.collect(), whatever the batching."""
    expected = build_query(case).collect()
    for size in (1, 7, None):
        parts = list(build_query(case, source=batches(case.df, size)).iter())
        assert all(p.height > 0 for p in parts)
        got = pl.concat(parts) if parts else expected.head(0)
        assert_frame_equal(got, expected, check_exact=True)


@given(case=cases(max_rows=25))
def test_arrow_lazyframe_and_generator_sources_match_dataframe(case: Case) -> None:
    expected = build_query(case).run()
    table = case.df.to_arrow()
    sources = {
        "arrow table": table,
        "arrow record batches": table.to_batches(max_chunksize=3) or [table],
        "lazyframe": case.df.lazy(),
        "list of lazyframes": [b.lazy() for b in batches(case.df, 5)],
        "generator": (b for b in batches(case.df, 4)),
        "mixed list": [
            b.to_arrow() if i % 3 == 0 else b.lazy() if i % 3 == 1 else b
            for i, b in enumerate(batches(case.df, 3))
        ],
    }
    for name, source in sources.items():
        run = build_query(case, source=source).run()
        try:
            _same_run(expected, run)
        except AssertionError as e:  # pragma: no cover - names the failing source
            raise AssertionError(f"source {name}: {e}") from e


@given(case=cases(max_rows=25))
def test_duration_spellings_are_equivalent(case: Case) -> None:
    """'10s' == timedelta(seconds=10) (datetime time), '10i' == 10 (integer time)."""
    a = build_query(case, style="str").run()
    b = build_query(case, style="native").run()
    _same_run(a, b)


def test_empty_micro_batches_in_the_middle_change_nothing() -> None:
    df = pl.DataFrame({"t": [1, 12, 3, 25, 11, 40], "k": ["a", "b", "a", "a", "b", "a"]})
    q = lambda src: (  # noqa: E731
        rl.stream(src, time="t", watermark=2).window(rl.tumbling(10), by="k").agg(rl.count())
    )
    whole = q(df).run()
    with_empties = q([df.head(0), df.slice(0, 2), df.head(0), df.head(0), df.slice(2)]).run()
    _same_run(whole, with_empties)


def test_pyarrow_record_batch_source() -> None:
    rb = pa.record_batch({"t": pa.array([1, 2, 15], pa.int64()), "v": pa.array([1.0, 2.0, 3.0])})
    out = rl.stream(rb, time="t").window(rl.tumbling(10)).agg(rl.sum("v")).collect()
    # by hand: [0,10) holds 1.0 + 2.0, [10,20) holds 3.0
    assert out.rows() == [(0, 10, 3.0), (10, 20, 3.0)]


def test_progress_bar_and_rerun_do_not_change_results() -> None:
    """progress=True/False only affects the display; a DataFrame source can be run twice."""
    df = pl.DataFrame({"t": [1, 12, 3, 25], "v": [1.0, 2.0, 3.0, 4.0]})
    q = rl.stream(df, time="t", watermark=1).window(rl.tumbling(10)).agg(rl.sum("v"))
    quiet = q.run(progress=False)
    _same_run(quiet, q.run(progress=True))
    _same_run(quiet, q.run())
    # by hand: wm after 12 is 11, so 3 ([0,10), 10 <= 11) is late; [0,10) = 1.0
    assert quiet.output.rows() == [(0, 10, 1.0), (10, 20, 2.0), (20, 30, 4.0)]
