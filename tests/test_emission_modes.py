"""Changelog output, early firing, idle timeouts and processing time.

The changelog is checked by its algebra: replaying +I / -U / +U / -D per (window, key) must
end at the final-mode rows, every -U must retract exactly the row last emitted, and the
+I / +U rows must be the amend-mode revisions one for one. Wall-clock features run on a fake
clock (``rillet._clock``), so no test sleeps.
"""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from strategies import Case, build_query, cases

import rillet as rl
from rillet import _clock

WINDOW = ["window_start", "window_end"]


def _identity(case: Case) -> list[str]:
    return [*case.keys, *WINDOW]


def replay_changelog(log: pl.DataFrame, ident: list[str]) -> dict[tuple, tuple]:
    """Applies a changelog in order; asserts each -U retracts the current row."""
    state: dict[tuple, tuple] = {}
    values = [c for c in log.columns if c not in ident and c != "op"]
    for row in log.iter_rows(named=True):
        key = tuple(row[c] for c in ident)
        vals = tuple(row[c] for c in values)
        op = row["op"]
        if op == "+I":
            assert key not in state, f"+I for a row already present: {key}"
            state[key] = vals
        elif op == "-U":
            assert state.get(key) == vals, f"-U does not retract the current row of {key}"
            del state[key]
        elif op == "+U":
            assert key not in state, f"+U without a preceding -U for {key}"
            state[key] = vals
        elif op == "-D":
            assert state.pop(key, None) == vals
        else:
            raise AssertionError(f"unknown op {op!r}")
    return state


def _same(a: tuple, b: tuple) -> bool:
    return all(
        (x is None and y is None) or x == y or (isinstance(x, float) and isinstance(y, float)
                                                and abs(x - y) <= 1e-9 * max(1.0, abs(x)))
        for x, y in zip(a, b, strict=True)
    )


@given(cases())
def test_changelog_replays_to_the_final_rows(case: Case) -> None:
    final = build_query(case, emit="final").collect()
    log = build_query(case, emit="changelog").collect()
    ident = _identity(case)
    state = replay_changelog(log, ident)
    values = [c for c in final.columns if c not in ident]
    expected = {tuple(r[c] for c in ident): tuple(r[c] for c in values) for r in final.iter_rows(named=True)}
    if case.flush:
        assert state.keys() == expected.keys()
    else:
        # Without the end-of-input flush, windows that completed but never closed were
        # emitted by the changelog and not (yet) by final mode.
        assert expected.keys() <= state.keys()
    for k, v in expected.items():
        assert _same(state[k], v), (k, state[k], v)


@given(cases())
def test_changelog_inserts_and_updates_are_the_amend_revisions(case: Case) -> None:
    amend = build_query(case, emit="amend").collect()
    log = build_query(case, emit="changelog").collect()
    after = log.filter(pl.col("op").is_in(["+I", "+U"])).drop("op")
    assert after.equals(amend.drop("revision"))
    # -U rows come right before their +U, for the same window and key.
    ops = log["op"].to_list()
    for i, op in enumerate(ops):
        if op == "-U":
            assert ops[i + 1] == "+U"
    assert (log["op"] == "+I").sum() == (amend["revision"] == 0).sum()


@given(cases())
def test_changelog_is_independent_of_batching(case: Case) -> None:
    whole = build_query(case, emit="changelog").run()
    for size in (1, 7):
        cut = build_query(case, source=batches(case.df, size), emit="changelog").run()
        assert cut.output.equals(whole.output)
        assert cut.late.equals(whole.late)


def test_changelog_example_late_update_retracts_then_inserts() -> None:
    """Reference edge case 30 (Flink late firing): a late row inside the lateness emits
    -U(old) then +U(new)."""
    df = pl.DataFrame({"t": [3, 12, 4], "k": ["a", "a", "a"]})
    log = (
        rl.stream(df, time="t").window(rl.tumbling(10), by="k", lateness=5, emit="changelog")
        .agg(rl.count()).collect()
    )
    assert log.select("window_start", "op", "count").rows() == [
        (0, "+I", 1),   # t = 12 completes [0, 10)
        (0, "-U", 1),   # t = 4 is late but within the lateness
        (0, "+U", 2),
        (10, "+I", 1),  # end of input
    ]


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms
        monkeypatch.setattr(_clock, "now_ms", lambda: self.ms)
        monkeypatch.setattr(_clock, "now_us", lambda: self.ms * 1000)


def _ticking(frames: list[pl.DataFrame], clock: FakeClock, step_ms: int):
    for f in frames:
        yield f
        clock.ms += step_ms


def test_early_emits_speculative_revisions_on_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    df = pl.DataFrame({"t": list(range(0, 40)), "k": ["a", "b"] * 20})
    frames = batches(df, 4)  # 10 batches, 4 s of wall clock apart
    q = (
        rl.stream(_ticking(frames, clock, 4_000), time="t")
        .window(rl.tumbling(20), by="k", emit="amend", early="10s")
        .agg(rl.count())
    )
    out = q.collect()
    final = rl.stream(df, time="t").window(rl.tumbling(20), by="k").agg(rl.count()).collect()
    # Every (window, key) ends with its final value, revisions count up from 0 without gaps.
    last = out.group_by("k", "window_start").agg(pl.col("count").last(), pl.col("revision").max(), pl.len())
    joined = last.join(final, on=["k", "window_start"], suffix="_final")
    assert joined.height == final.height
    assert (joined["count"] == joined["count_final"]).all()
    assert (joined["revision"] == joined["len"] - 1).all()
    # Early rows came before completion: some revision shows a partial count.
    assert out.filter(pl.col("window_start") == 0)["count"].to_list()[0] < 10
    # At most one early emission per 10 s of wall clock: batches at 0, 12, 24, 36 s.
    early_rows = out.filter(pl.col("window_start") == 20, pl.col("k") == "a")
    assert early_rows.height <= 4


def test_early_with_changelog_keeps_the_algebra(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    df = pl.DataFrame({"t": [1, 2, 5, 3, 11, 12, 4, 25, 14], "k": ["a", "b", "a", "a", "b", "a", "a", "b", "a"]})
    q = (
        rl.stream(_ticking(batches(df, 2), clock, 6_000), time="t", watermark=2)
        .window(rl.tumbling(10), by="k", lateness=10, emit="changelog", early="5s")
        .agg(rl.count())
    )
    log = q.collect()
    final = rl.stream(df, time="t", watermark=2).window(rl.tumbling(10), by="k", lateness=10).agg(rl.count()).collect()
    state = replay_changelog(log, ["k", *WINDOW])
    assert state == {(r["k"], r["window_start"], r["window_end"]): (r["count"],) for r in final.iter_rows(named=True)}
    assert log.height > 2 * final.height - 1  # more than one emission per window


def test_idle_timeout_closes_windows_while_the_stream_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = pl.DataFrame({"t": [t0 + dt.timedelta(seconds=s) for s in (1, 20, 50)], "v": [1, 2, 3]})
    empty = rows.clear()

    def live():
        yield rows  # arrives at wall 0
        for _ in range(5):  # then silence, with heartbeats every 10 s of wall clock
            clock.ms += 10_000
            yield empty

    q = (
        rl.stream(live(), time="t", idle_timeout="15s", flush=False)
        .window(rl.tumbling("1m")).agg(rl.count())
    )
    emitted = list(q.iter())
    # Max event time 00:00:50; after 15 s of quiet the watermark follows the wall clock:
    # at +20 s it is 00:01:10 >= 00:01:00, so [00:00, 00:01) closes without any new row.
    assert len(emitted) == 1
    assert emitted[0]["count"].to_list() == [3]
    # Without the timeout nothing is emitted (flush=False keeps open windows open).
    quiet = rl.stream(live(), time="t", flush=False).window(rl.tumbling("1m")).agg(rl.count())
    assert list(quiet.iter()) == []


def test_processing_time_stamps_rows_with_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(monkeypatch, start_ms=1_767_225_600_000)  # 2026-01-01T00:00:00Z
    frames = [pl.DataFrame({"v": [i] * 3}) for i in range(5)]
    q = (
        rl.stream(_ticking(frames, clock, 25_000), time=rl.processing_time())
        .window(rl.tumbling("1m")).agg(rl.count(), rl.sum("v"))
    )
    run = q.run()
    # Batches stamped at 0, 25, 50, 75, 100 s: minute 0 holds three batches, minute 1 two.
    assert run.output.select("count", "v_sum").rows() == [(9, 0 + 3 + 6), (6, 9 + 12)]
    assert run.late.height == 0
    assert run.output["window_start"].dtype == pl.Datetime("us", "UTC")


def test_processing_time_column_is_visible_to_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock(monkeypatch, start_ms=1_767_225_600_000)
    df = pl.DataFrame({"v": [1, 2, 3]})
    out = (
        rl.stream(df, time=rl.processing_time("seen_at"))
        .filter(pl.col("seen_at").is_not_null())
        .window(rl.tumbling("1h")).agg(rl.count()).collect()
    )
    assert out["count"].to_list() == [3]
