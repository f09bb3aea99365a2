"""Every input row is accounted for exactly once: accepted, late, rejected or filtered.

Each input row carries a unique ``rid``. Filtered rids are computed with polars from the
input; late and rejected rids are read from run.late and run.rejected; accepted rids are the
rest, and (tumbling windows, flush) the emitted counts must add up to exactly that many rows.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from strategies import FILTER, Case, build_query, cases

import rillet as rl


def _partition(case: Case, run: rl.Run) -> dict[str, set[int]]:
    all_rids = set(case.df["rid"].to_list())
    kept = case.df.filter(FILTER) if case.use_filter else case.df
    filtered = all_rids - set(kept["rid"].to_list())
    late = run.late["rid"].to_list()
    rejected = run.rejected["rid"].to_list()
    assert len(late) == len(set(late)), "a row reported late twice"
    assert len(rejected) == len(set(rejected)), "a row rejected twice"
    accepted = all_rids - filtered - set(late) - set(rejected)
    return {"filtered": filtered, "late": set(late), "rejected": set(rejected),
            "accepted": accepted}


@pytest.mark.parametrize("size", [None, 3])
@given(case=cases())
def test_every_row_in_exactly_one_bucket(case: Case, size: int | None) -> None:
    run = build_query(case, source=batches(case.df, size)).run()
    parts = _partition(case, run)
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not parts[a] & parts[b], (a, b)
    assert set().union(*parts.values()) == set(case.df["rid"].to_list())
    m = run.metrics
    assert m["rows_in"] == case.df.height
    assert m["rows_filtered"] == len(parts["filtered"])
    assert m["rows_late"] == len(parts["late"])
    assert m["rows_rejected"] == len(parts["rejected"])
    assert m["rows_accepted"] == len(parts["accepted"])
    assert m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"] + m["rows_filtered"]
    # rejected rows are exactly the null times that survived the filter
    null_time = set(case.df.filter(pl.col("t").is_null())["rid"].to_list())
    assert parts["rejected"] == null_time - parts["filtered"]


@given(case=cases(kind="tumbling"))
def test_tumbling_counts_add_up_to_accepted_rows(case: Case) -> None:
    """With tumbling windows and a flush, each accepted row is counted in exactly one window."""
    case = dataclasses.replace(case, flush=True)
    run = build_query(case).run()
    assert run.output["count"].sum() == run.metrics["rows_accepted"]
    # and those are exactly the rows neither late, rejected nor filtered
    assert run.output["count"].sum() == len(_partition(case, run)["accepted"])


@pytest.mark.parametrize("late", ["collect", "drop"])
@given(case=cases())
def test_late_drop_counts_but_does_not_collect(case: Case, late: str) -> None:
    collected = build_query(case).run()
    run = build_query(case, late=late).run()
    assert run.metrics["rows_late"] == collected.late.height
    assert run.output.equals(collected.output)
    if late == "drop":
        assert run.late.height == 0
        assert run.late.columns == collected.late.columns
        assert run.late.schema == collected.late.schema
    else:
        assert run.late.equals(collected.late)


def test_filter_runs_before_the_watermark() -> None:
    """A filtered row never moves the watermark, so it cannot make later rows late.

    Rows (t, keep): (5, y), (100, n), (6, y). Without the filter, 100 pushes the watermark
    to 100 and 6 is late for [0, 10). With it, 100 is dropped first and 6 is accepted:
    [0, 10) counts 2.
    """
    df = pl.DataFrame({"t": [5, 100, 6], "keep": [True, False, True]})
    q = rl.stream(df, time="t").filter(pl.col("keep")).window(rl.tumbling(10)).agg(rl.count())
    run = q.run()
    assert run.output.rows() == [(0, 10, 2)]
    assert run.late.height == 0
    assert run.metrics["rows_filtered"] == 1
    assert run.metrics["watermark"] == 6


def test_rejected_rows_do_not_move_the_watermark() -> None:
    """Null and unparseable times go to run.rejected and leave the watermark alone.

    ISO rows: 00:00:05, null, 'garbage', 00:00:07. Watermark (delay 0) ends at 00:00:07.
    """
    df = pl.DataFrame({
        "t": ["1970-01-01T00:00:05Z", None, "garbage", "1970-01-01T00:00:07Z"],
        "rid": [0, 1, 2, 3],
    })
    run = (
        rl.stream(df, time="t", watermark="0s")
        .window(rl.tumbling("10s"), lateness="0s")
        .agg(rl.count())
        .run()
    )
    assert run.rejected["rid"].to_list() == [1, 2]
    assert run.rejected["reason"][0] == "null time"
    assert "unparseable time" in run.rejected["reason"][1]
    assert run.metrics["watermark"] == dt.datetime(1970, 1, 1, 0, 0, 7, tzinfo=dt.UTC)
    assert run.output["count"].to_list() == [2]
    assert run.metrics["rows_in"] == 4
    assert run.metrics["rows_accepted"] == 2 and run.metrics["rows_rejected"] == 2


def test_metrics_before_any_row() -> None:
    """An empty stream: no rows, no watermark yet, nothing open."""
    df = pl.DataFrame({"t": pl.Series([], dtype=pl.Int64)})
    m = rl.stream(df, time="t").window(rl.tumbling(10)).agg(rl.count()).run().metrics
    assert m["rows_in"] == 0 and m["rows_accepted"] == 0 and m["rows_emitted"] == 0
    assert m["watermark"] is None and m["max_event_time"] is None
    assert m["open_windows"] == 0 and m["open_panes"] == 0
    expected_keys = {"rows_in", "rows_filtered", "rows_accepted", "rows_late", "rows_rejected",
                     "rows_emitted", "watermark", "max_event_time", "open_windows", "open_panes",
                     "keys", "state_bytes", "batches", "elapsed_s", "rows_per_s"}
    assert expected_keys <= set(m)
