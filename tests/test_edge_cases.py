"""The edge cases of reference-semantics.md section 7, written in rillet's semantics.

Our rules (API.md): wm(i) = max(time of accepted rows before i) - delay, never backwards.
A window [start, end) is complete when wm >= end and closed when wm >= end + lateness. A row
is late iff every window containing it is closed under wm(i). Unless a test says otherwise,
windows are tumbling of size 10 over an integer time column.

Every expected value below is derived by hand in the test's docstring or comments.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import polars as pl
import pytest
from conftest import batches

import rillet as rl


def run_int(times: list[int], *, spec: rl.WindowSpec | None = None, delay: int = 0,
            lateness: int = 0, keys: list | None = None, emit: str = "final", flush: bool = True,
            size: int | None = None) -> rl.Run:
    data: dict[str, list] = {"t": times}
    by = None
    if keys is not None:
        data["k"] = keys
        by = "k"
    df = pl.DataFrame(data, schema={"t": pl.Int64, **({"k": pl.String} if keys is not None else {})})
    return (
        rl.stream(batches(df, size), time="t", watermark=delay, flush=flush)
        .window(spec or rl.tumbling(10), by=by, lateness=lateness, emit=emit)
        .agg(rl.count())
        .run()
    )


SIZES = pytest.mark.parametrize("size", [None, 1])


@SIZES
def test_case_01_event_on_boundary_goes_to_next_window(size: int | None) -> None:
    """An event at t = 10 belongs to [10, 20), not [0, 10): windows are half-open.

    As in Flink, Spark, Kafka Streams tumbling/hopping and KDA STEP. (Kafka Streams'
    inclusive sliding windows are not built.) For hopping 10/5 an event at 10 is in
    [5, 15) and [10, 20) but not [0, 10).
    """
    run = run_int([10], size=size)
    assert run.output.rows() == [(10, 20, 1)]
    run = run_int([9, 10], size=size)
    assert run.output.rows() == [(0, 10, 1), (10, 20, 1)]
    hop = run_int([10], spec=rl.hopping(10, 5), size=size)
    assert hop.output.rows() == [(5, 15, 1), (10, 20, 1)]


@SIZES
def test_case_02_which_event_closes_a_window(size: int | None) -> None:
    """With delay B = 0, an event at 9 does not close [0, 10); an event at 10 does.

    Flink DataStream computes wm = maxTs - B - 1 and fires when wm >= end - 1; we compute
    wm = maxTs - B (no -1) and close when wm >= end. Both fire exactly when an event with
    ts >= end + B arrives, so the observable behaviour is the same. With flush=False only
    closed windows are emitted, which makes the moment visible.
    """
    assert run_int([5, 9], flush=False, size=size).output.height == 0
    assert run_int([5, 10], flush=False, size=size).output.rows() == [(0, 10, 1)]
    # B = 3: 12 leaves wm = 9 < 10; 13 gives wm = 10 >= 10
    assert run_int([5, 12], delay=3, flush=False, size=size).output.height == 0
    assert run_int([5, 13], delay=3, flush=False, size=size).output.rows() == [(0, 10, 1)]


@SIZES
def test_case_03_late_but_within_lateness_is_accepted_and_amends(size: int | None) -> None:
    """B = 0, L = 5. Events 3, 12, then 4.

    12 makes wm = 12: [0, 10) is complete (12 >= 10) but not closed (12 < 10 + 5). 4 arrives
    with wm(4) = 12; it is not late because 10 + 5 > 12, so it is counted. Flink fires 1 then
    2; our emit="amend" shows the same: revision 0 with count 1, revision 1 with count 2.
    emit="final" shows only the closing value, count 2 (emitted at the flush, since no event
    reaches 15).
    """
    amend = run_int([3, 12, 4], lateness=5, emit="amend", size=size)
    assert amend.output.filter(pl.col("window_start") == 0).rows() == [(0, 10, 0, 1), (0, 10, 1, 2)]
    assert amend.late.height == 0
    final = run_int([3, 12, 4], lateness=5, size=size)
    assert final.output.rows() == [(0, 10, 2), (10, 20, 1)]
    assert final.late.height == 0


@SIZES
def test_case_04_just_past_the_lateness_is_late(size: int | None) -> None:
    """Same setup, then 16 (wm = 16), then 5.

    [0, 10) closed when wm >= 10 + 5 = 15; 16 >= 15, so its state is freed and the event at 5
    is late: it goes to run.late with late_by = 16 - 5 = 11, and rows_late counts it. (Flink:
    wm = 15 >= cleanupTime 14, the same outcome.) The boundary: after 15 instead of 16 the
    window is closed too (15 >= 15), and Flink agrees (wm 14 >= cleanupTime 14).
    """
    run = run_int([3, 12, 4, 16, 5], lateness=5, size=size)
    assert run.late["t"].to_list() == [5]
    assert run.late["late_by"].to_list() == [11]
    assert run.metrics["rows_late"] == 1
    assert run.output.filter(pl.col("window_start") == 0).rows() == [(0, 10, 2)]
    boundary = run_int([3, 15, 4], lateness=5, size=size)
    assert boundary.late["t"].to_list() == [4]
    assert boundary.late["late_by"].to_list() == [11]
    just_inside = run_int([3, 14, 4], lateness=5, size=size)
    assert just_inside.late.height == 0


@SIZES
def test_case_05_hopping_row_late_for_some_windows_only(size: int | None) -> None:
    """Hopping size 10, slide 5, L = 0. Events 11 (wm = 11), then 8.

    8 is in [0, 10) and [5, 15). [0, 10) is closed (10 <= 11), so 8 is skipped there; [5, 15)
    is open (15 > 11), so 8 is added. Accepted by one window, it is not late (Flink: no side
    output). [0, 10) has no rows at all, so it produces no row. Output by hand:
    [5, 15): {11, 8} = 2, [10, 20): {11} = 1.
    """
    run = run_int([11, 8], spec=rl.hopping(10, 5), size=size)
    assert run.late.height == 0
    assert run.metrics["rows_accepted"] == 2
    assert run.output.rows() == [(5, 15, 2), (10, 20, 1)]
    # and when a window of 8 already holds rows, 8 is not added to it once it closed:
    # events 3 ([-5,5), [0,10)), 11 (wm 11: closes [-5,5) and [0,10)), 8
    run = run_int([3, 11, 8], spec=rl.hopping(10, 5), size=size)
    assert run.output.rows() == [(-5, 5, 1), (0, 10, 1), (5, 15, 2), (10, 20, 1)]


@SIZES
def test_case_06_equal_to_max_time_is_not_late(size: int | None) -> None:
    """Flink SQL with WATERMARK FOR ts AS ts calls a row with ts <= wm late. We do not judge
    rows against the watermark but their windows: with delay 0 a row at the current maximum
    (ts == wm) is in a window whose end > ts >= wm, so it is never late. A row below the
    maximum is late only if its window closed.

    10, 10, 19: all in [10, 20), count 3, none late. 10 then 9: 9's window [0, 10) has
    end 10 <= wm 10, so 9 is late by 1.
    """
    run = run_int([10, 10, 19], size=size)
    assert run.late.height == 0
    assert run.output.rows() == [(10, 20, 3)]
    run = run_int([10, 9], size=size)
    assert run.late["late_by"].to_list() == [1]
    assert run.output.rows() == [(10, 20, 1)]


def _spark_rows(hhmm: list[tuple[int, int]], names: list[str]) -> pl.DataFrame:
    return pl.DataFrame({
        "t": [dt.datetime(2024, 1, 1, h, m) for h, m in hhmm],
        "word": names,
    })


def test_case_07_no_batch_lag_the_watermark_moves_per_row() -> None:
    """Spark: delay 10 min, window [12:00, 12:10). Batch 1 = (12:07, a), (12:21, b).

    Spark emits nothing in batch 1 (its watermark lags one batch). We judge per row: after
    12:21 the watermark is 12:11 >= 12:10, so [12:00, 12:10) closes *inside* batch 1 and
    q.iter() yields it before batch 2 is even read. Batch 2 = (12:09, c) is then late,
    deterministically (12:10 <= 12:11), by 2 minutes.
    """
    pulled: list[int] = []

    def source() -> Iterator[pl.DataFrame]:
        pulled.append(1)
        yield _spark_rows([(12, 7), (12, 21)], ["a", "b"])
        pulled.append(2)
        yield _spark_rows([(12, 9)], ["c"])

    def query() -> rl.Query:
        return (
            rl.stream(source(), time="t", watermark="10m")
            .window(rl.tumbling("10m"), lateness="0s")
            .agg(rl.count())
        )

    it = query().iter()
    first = next(it)
    assert pulled == [1]
    assert first.rows() == [(dt.datetime(2024, 1, 1, 12, 0), dt.datetime(2024, 1, 1, 12, 10), 1)]
    rest = list(it)
    assert pulled == [1, 2]
    # the flush emits [12:20, 12:30) with b only; c never reached a window
    assert pl.concat(rest).rows() == [
        (dt.datetime(2024, 1, 1, 12, 20), dt.datetime(2024, 1, 1, 12, 30), 1)
    ]
    pulled.clear()
    run = query().run()
    assert run.late["word"].to_list() == ["c"]
    assert run.late["late_by"].to_list() == [dt.timedelta(minutes=2)]


@pytest.mark.parametrize("size", [None, 1, 2])
def test_case_08_drop_rule_is_deterministic(size: int | None) -> None:
    """Spark only promises not to drop rows less than the delay behind; we drop exactly when
    every window of the row has end + lateness <= wm(i), whatever the batching.

    Delay 2 h, tumbling 10 min, lateness 0. After 15:00, wm = 13:00.
      13:01 (1 h 59 min behind): window [13:00, 13:10), end 13:10 > 13:00: aggregated.
      12:00 (3 h behind): [12:00, 12:10), 12:10 <= 13:00: late by 1 h.
      12:55: [12:50, 13:00), 13:00 <= 13:00: late by 5 min (the boundary is inclusive).
      13:00: [13:00, 13:10): aggregated.
    With lateness 5 min, 12:55 is accepted (13:05 > 13:00) but 12:00 is still late.
    """
    d = lambda h, m: dt.datetime(2024, 1, 1, h, m)  # noqa: E731
    df = pl.DataFrame({"t": [d(15, 0), d(13, 1), d(12, 0), d(12, 55), d(13, 0)]})
    run = (
        rl.stream(batches(df, size), time="t", watermark="2h")
        .window(rl.tumbling("10m"), lateness="0s").agg(rl.count()).run()
    )
    assert run.late["t"].to_list() == [d(12, 0), d(12, 55)]
    assert run.late["late_by"].to_list() == [dt.timedelta(hours=1), dt.timedelta(minutes=5)]
    assert run.output.rows() == [(d(13, 0), d(13, 10), 2), (d(15, 0), d(15, 10), 1)]
    run = (
        rl.stream(batches(df, size), time="t", watermark=dt.timedelta(hours=2))
        .window(rl.tumbling("10m"), lateness="5m").agg(rl.count()).run()
    )
    assert run.late["t"].to_list() == [d(12, 0)]
    assert run.output.rows() == [
        (d(12, 50), d(13, 0), 1), (d(13, 0), d(13, 10), 2), (d(15, 0), d(15, 10), 1)
    ]


@SIZES
def test_case_12_record_at_window_end_closes_it(size: int | None) -> None:
    """Kafka Streams, grace 0: a record at 10 sets stream time 10 and closes [0, 10); a
    following record at 9 is dropped. Ours: wm = 10 >= 10 + 0, closed; 9 is late by 1.
    With 5 first, [0, 10) is emitted right after the record at 10 (before 9 arrives).
    """
    run = run_int([5, 10, 9], size=size)
    assert run.late["t"].to_list() == [9]
    assert run.late["late_by"].to_list() == [1]
    assert run.output.rows() == [(0, 10, 1), (10, 20, 1)]
    df = pl.DataFrame({"t": [5, 10, 9]})
    it = rl.stream(batches(df, 1), time="t").window(rl.tumbling(10)).agg(rl.count()).iter()
    assert next(it).rows() == [(0, 10, 1)]
    assert [f.rows() for f in it] == [[(10, 20, 1)]]


@SIZES
def test_case_14_end_of_bounded_replay_flush_or_not(size: int | None) -> None:
    """Events 1, 12, 25 (delay 0, lateness 0).

    flush=True (Flink's MAX_WATERMARK): [0,10), [10,20) and [20,30) are all emitted.
    flush=False (Spark append, KS suppress): 12 closes [0,10), 25 closes [10,20), and
    [20,30) stays open (wm 25 < 30): not emitted, still one open window and pane.
    """
    run = run_int([1, 12, 25], size=size)
    assert run.output.rows() == [(0, 10, 1), (10, 20, 1), (20, 30, 1)]
    assert run.metrics["open_windows"] == 0
    run = run_int([1, 12, 25], flush=False, size=size)
    assert run.output.rows() == [(0, 10, 1), (10, 20, 1)]
    assert run.metrics["open_windows"] == 1
    assert run.metrics["open_panes"] == 1


@SIZES
def test_case_15_empty_windows_produce_no_rows(size: int | None) -> None:
    """Events at 1 and 35: only [0, 10) and [30, 40); no zero-count [10, 20), [20, 30)."""
    run = run_int([1, 35], size=size)
    assert run.output.rows() == [(0, 10, 1), (30, 40, 1)]


@SIZES
def test_case_16_hopping_emission_order(size: int | None) -> None:
    """Hopping size 10, slide 5, events 3, 7, 12, then the flush (wm = +inf).

    Windows by hand: [-5,5): {3}; [0,10): {3,7}; [5,15): {7,12}; [10,20): {12}.
    [-5,5) closes after 7 (wm 7 >= 5), [0,10) after 12, the other two at the flush; so the
    output is ordered by end: [-5,5), [0,10), [5,15), [10,20), like Flink's timer order.
    Note [-5, 5) starts before the first event and before the epoch.
    """
    run = run_int([3, 7, 12], spec=rl.hopping(10, 5), size=size)
    assert run.output.rows() == [(-5, 5, 1), (0, 10, 2), (5, 15, 2), (10, 20, 1)]


@SIZES
def test_case_16_same_moment_rows_are_ordered_by_end_start_then_key(size: int | None) -> None:
    """Rows emitted at the same moment come by window end, start, then key (nulls first).

    (1,b) (2,null) (3,a) (15,a) (16,b), delay 25: wm stays <= 0 until (45,a) makes wm 20,
    which closes [0,10) and [10,20) at once. Then the flush emits [40,50).
    """
    run = run_int([1, 2, 3, 15, 16, 45], keys=["b", None, "a", "a", "b", "a"], delay=25, size=size)
    assert run.output.rows() == [
        (None, 0, 10, 1), ("a", 0, 10, 1), ("b", 0, 10, 1),
        ("a", 10, 20, 1), ("b", 10, 20, 1),
        ("a", 40, 50, 1),
    ]


def test_case_16_multi_column_keys_order_nulls_first_per_column() -> None:
    """Keys (k1 int, k2 str) in one window: sorted by k1 then k2, nulls first in each."""
    df = pl.DataFrame({
        "t": [1, 2, 3, 4, 5, 6],
        "k1": [2, None, 1, 1, None, 2],
        "k2": ["x", "y", None, "a", "a", None],
    })
    out = rl.stream(df, time="t").window(rl.tumbling(10), by=["k1", "k2"]).agg(rl.count()).collect()
    assert out.select("k1", "k2").rows() == [
        (None, "a"), (None, "y"), (1, None), (1, "a"), (2, None), (2, "x")
    ]


@SIZES
def test_case_17_negative_timestamps_floor(size: int | None) -> None:
    """t = -1 with size 10 is in [-10, 0) (floor, not truncation toward zero); -10 is in
    [-10, 0) too (boundary), -11 in [-20, -10)."""
    run = run_int([-11, -10, -1, 0], delay=100, size=size)
    assert run.output.rows() == [(-20, -10, 1), (-10, 0, 2), (0, 10, 1)]


def test_case_17_datetimes_before_the_epoch_floor() -> None:
    """1969-12-31 23:59:59.5 with 1 s windows is in [23:59:59, 1970-01-01 00:00:00)."""
    t = dt.datetime(1969, 12, 31, 23, 59, 59, 500000)
    df = pl.DataFrame({"t": [t]}).with_columns(pl.col("t").dt.cast_time_unit("ns"))
    out = (
        rl.stream(df, time="t", watermark="0s").window(rl.tumbling("1s"), lateness="0s")
        .agg(rl.count()).collect()
    )
    assert out.rows() == [(dt.datetime(1969, 12, 31, 23, 59, 59), dt.datetime(1970, 1, 1), 1)]


@SIZES
def test_case_29_watermark_never_goes_backwards(size: int | None) -> None:
    """Events 20, 5, 14 (delay 0). After 20, wm = 20. 5 is late (10 <= 20). If 5 had pulled
    the watermark back, 14 would be accepted; it stays 20, so 14 ([10,20), 20 <= 20) is late
    by 6. The final watermark is 20."""
    run = run_int([20, 5, 14], size=size)
    assert run.late["t"].to_list() == [5, 14]
    assert run.late["late_by"].to_list() == [15, 6]
    assert run.metrics["watermark"] == 20
    assert run.output.rows() == [(20, 30, 1)]


def test_case_29_watermark_is_monotone_over_prefixes() -> None:
    """The watermark after each prefix of a disordered stream never decreases, and equals
    max(accepted times) - delay (delay 3: 17, 17, 27, 27, 27, 27)."""
    times = [20, 5, 30, 11, 29, 2]
    wms = []
    for n in range(1, len(times) + 1):
        run = run_int(times[:n], delay=3, lateness=100)
        wms.append(run.metrics["watermark"])
    assert wms == [17, 17, 27, 27, 27, 27]


# -- emit="amend" ---------------------------------------------------------------------------
@SIZES
def test_amend_revision_sequence(size: int | None) -> None:
    """Tumbling 10, delay 0, lateness 10. Rows 3, 12, 4, 5, 15, 21, 6.

    12: wm 12 completes [0,10)            -> ([0,10), rev 0, count 1)
    4:  lands in complete, open [0,10)    -> ([0,10), rev 1, count 2)
    5:  again                             -> ([0,10), rev 2, count 3)
    15: [10,20) not complete (wm 15 < 20) -> nothing
    21: wm 21 completes [10,20) and closes [0,10) (20 <= 21) -> ([10,20), rev 0, count 2)
    6:  [0,10) is closed -> late by 15, no revision
    flush: [20,30) never completed        -> ([20,30), rev 0, count 1)
    """
    run = run_int([3, 12, 4, 5, 15, 21, 6], lateness=10, emit="amend", size=size)
    assert run.output.columns == ["window_start", "window_end", "revision", "count"]
    assert run.output.schema["revision"] == pl.UInt32
    assert run.output.rows() == [
        (0, 10, 0, 1), (0, 10, 1, 2), (0, 10, 2, 3), (10, 20, 0, 2), (20, 30, 0, 1)
    ]
    assert run.late["late_by"].to_list() == [15]
    final = run_int([3, 12, 4, 5, 15, 21, 6], lateness=10, size=size)
    assert final.output.rows() == [(0, 10, 3), (10, 20, 2), (20, 30, 1)]


@SIZES
def test_amend_first_row_after_completion_is_revision_0(size: int | None) -> None:
    """(3,a), (12,a): [0,10)/a rev 0. Then (4,b): [0,10)/b first appears after [0,10)
    completed, so its first row is rev 0; (5,b) makes b rev 1. Lateness 100 keeps it open."""
    run = run_int([3, 12, 4, 5], keys=["a", "a", "b", "b"], lateness=100, emit="amend", size=size)
    assert run.output.rows() == [
        ("a", 0, 10, 0, 1), ("b", 0, 10, 0, 1), ("b", 0, 10, 1, 2), ("a", 10, 20, 0, 1)
    ]


@SIZES
def test_amend_flush_emits_revision_0_only_for_incomplete_windows(size: int | None) -> None:
    """3, 12 with lateness 100: [0,10) completes at 12 (rev 0), stays open; the flush adds
    nothing for it (no change) and emits [10,20) (never complete) as rev 0. With
    flush=False, [0,10)'s rev 0 is still emitted (complete, though not closed), [10,20) not."""
    run = run_int([3, 12], lateness=100, emit="amend", size=size)
    assert run.output.rows() == [(0, 10, 0, 1), (10, 20, 0, 1)]
    run = run_int([3, 12], lateness=100, emit="amend", flush=False, size=size)
    assert run.output.rows() == [(0, 10, 0, 1)]
    assert run_int([3, 12], lateness=100, flush=False, size=size).output.height == 0


@SIZES
def test_amend_hopping_row_amends_every_open_complete_window(size: int | None) -> None:
    """Hopping 10/5, lateness 10, rows 7, 16, 8.

    7 is in [0,10) and [5,15). 16 (wm 16) completes both -> rev 0, count 1 each, by end.
    8 is in [0,10) (closes at 20) and [5,15) (closes at 25): both open, both amended in one
    moment, ordered by end -> [0,10) rev 1 count 2, [5,15) rev 1 count 2. Flush: [10,20) and
    [15,25) hold 16 and never completed -> rev 0.
    """
    run = run_int([7, 16, 8], spec=rl.hopping(10, 5), lateness=10, emit="amend", size=size)
    assert run.output.rows() == [
        (0, 10, 0, 1), (5, 15, 0, 1), (0, 10, 1, 2), (5, 15, 1, 2), (10, 20, 0, 1), (15, 25, 0, 1)
    ]
