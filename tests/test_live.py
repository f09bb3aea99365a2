"""q.start(): a query in a background thread. Its handle's results equal a blocking run's on
the same input; snapshot() is the standing value per window and key (checked against the
final output); a live tail runs until stopped; errors surface in the handle."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from helpers import until
from polars.testing import assert_frame_equal

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _events(n: int = 4000) -> pl.DataFrame:
    # Out of order on purpose, so amend revises windows and some rows are late.
    times = [T0 + dt.timedelta(seconds=(i * 37) % 600 + i // 4) for i in range(n)]
    return pl.DataFrame({"t": times, "k": [f"k{i % 5}" for i in range(n)], "x": [i % 13 for i in range(n)]})


def _query(source, emit: str = "final", window=None) -> rl.Query:
    return (
        rl.stream(source, time="t", watermark="30s")
        .window(window or rl.tumbling("1m"), by="k", lateness="2m", emit=emit)
        .agg(rl.count(), rl.sum("x"))
    )


@pytest.mark.parametrize("size", [1, 7, None])
def test_a_started_run_equals_the_blocking_run(size: int | None) -> None:
    df = _events(600 if size else 4000)
    src = df if size is None else [df.slice(i, size) for i in range(0, df.height, size)]
    handle = _query(src, "amend").start()
    got = handle.wait(timeout=60)
    want = _query(df, "amend").run()
    assert not handle.running and handle.error is None
    assert_frame_equal(got.output, want.output)
    assert_frame_equal(got.late, want.late)
    assert_frame_equal(handle.output, want.output)
    assert_frame_equal(handle.late, want.late)
    for m in ("rows_in", "rows_accepted", "rows_late", "rows_emitted"):
        assert got.metrics[m] == want.metrics[m] == handle.metrics[m], m


@pytest.mark.parametrize("emit", ["final", "amend", "changelog"])
@pytest.mark.parametrize("window", [rl.tumbling("1m"), rl.session("20s")], ids=["tumbling", "session"])
def test_snapshot_is_the_final_result(emit: str, window) -> None:
    df = _events()
    handle = _query(df, emit, window).start()
    handle.wait(timeout=60)
    final = _query(df, "final", window).collect()
    keys = ["window_start", "window_end", "k"]
    snap = handle.snapshot().drop("revision", "op", strict=False)
    if emit == "amend" and window.kind == "session":
        # Amend rows carry no retraction: a session's earlier bounds stay beside the final
        # ones, whose last revisions equal the final result.
        assert final.join(snap, on=[*keys, "count", "x_sum"], how="anti").height == 0
        assert snap.height > final.height
        return
    assert_frame_equal(snap.sort(keys), final.sort(keys))


def test_snapshot_grows_while_running_and_stop_flushes() -> None:
    release = threading.Event()

    def slow() -> Iterator[pl.DataFrame]:
        df = _events(400)
        for i in range(0, df.height, 50):
            yield df.slice(i, 50)
        release.wait(10)  # then quiet until stopped: heartbeats keep the run alive
        while True:
            yield df.head(0)
            time.sleep(0.01)

    handle = _query(slow(), "amend").start()
    assert until(lambda: handle.metrics["rows_in"] == 400)
    assert handle.running
    mid = handle.snapshot()
    assert mid.height > 0  # windows the watermark passed are visible before the end
    release.set()
    run = handle.stop()
    assert not handle.running
    # stop() ends the input there: open windows are flushed (flush=True), so the result is
    # the same as the whole input replayed.
    want = _query(_events(400), "amend").run()
    assert_frame_equal(run.output, want.output)


def test_tail_runs_until_stopped_and_shows_windows_closing(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_text("")

    def line(s: float, k: str) -> str:
        return json.dumps({"t": (T0 + dt.timedelta(seconds=s)).isoformat(), "k": k, "x": 1}) + "\n"

    q = (
        rl.stream(rl.tail_jsonl(path, poll="10ms"), time="t", watermark="1s", idle_timeout="200ms")
        .window(rl.tumbling("1m"), by="k").agg(rl.count())
    )
    handle = q.start()
    with open(path, "a") as f:
        for s in range(10):
            f.write(line(s, "a" if s % 2 else "b"))
        f.flush()
        assert until(lambda: handle.metrics["rows_in"] == 10)
        assert handle.snapshot().height == 0  # the minute is still open
        f.write(line(61, "a"))  # the watermark passes 00:01 -1s... not yet: 60 s + 1 s delay
        f.flush()
        # idle_timeout: after 200 ms of quiet the watermark follows the wall clock.
        assert until(lambda: handle.snapshot().height == 2)
    snap = handle.snapshot()
    assert sorted(snap.select("k", "count").rows()) == [("a", 5), ("b", 5)]
    assert handle.running  # a tail never ends by itself
    run = handle.stop()
    assert not handle.running
    assert run.metrics["rows_in"] == 11
    assert sorted(run.output.select("k", "count").rows()) == [("a", 1), ("a", 5), ("b", 5)]


def test_errors_surface_in_the_handle() -> None:
    def broken() -> Iterator[pl.DataFrame]:
        yield _events(100)
        raise rl.SourceError("the feed went away")

    handle = _query(broken()).start()
    assert until(lambda: not handle.running)
    assert isinstance(handle.error, rl.SourceError)
    assert "failed" in repr(handle)
    with pytest.raises(rl.SourceError, match="the feed went away"):
        handle.wait()
    assert handle.metrics["rows_in"] == 100  # what it did before the failure stays visible


def test_wait_times_out_while_running_and_queries_run_side_by_side() -> None:
    def endless() -> Iterator[pl.DataFrame]:
        df = _events(100)
        yield df
        while True:
            yield df.head(0)
            time.sleep(0.01)

    a, b = _query(endless()).start(), _query(endless(), "amend").start()
    with pytest.raises(TimeoutError, match="stop"):
        a.wait(timeout=0.1)
    assert a.running and b.running
    ra, rb = a.stop(), b.stop()
    assert ra.metrics["rows_in"] == rb.metrics["rows_in"] == 100
    assert_frame_equal(ra.output, _query(_events(100)).collect())


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_stop_works_before_any_row_arrives(tmp_path: Path, kind: str) -> None:
    """A tail on a file that does not exist yet (or holds only a CSV header) still sends
    heartbeats, so stop() ends the run at once rather than waiting for a first row."""
    path = tmp_path / f"later.{kind}"
    if kind == "csv":
        path.write_text("t,k\n")
    tail = rl.tail_jsonl(path, poll="10ms") if kind == "jsonl" else rl.tail_csv(path, poll="10ms")
    handle = rl.stream(tail, time="t").window(rl.tumbling("1m")).agg(rl.count()).start()
    time.sleep(0.1)
    run = handle.stop(timeout=10)
    assert not handle.running
    assert run.metrics["rows_in"] == 0 and run.output.height == 0


def test_a_source_that_fails_to_close_fails_the_run() -> None:
    """A source whose close() raises (a consumer that cannot commit, say) fails the run, as the
    error would end a blocking run(), rather than killing the thread with the handle "done"."""

    class Feed:
        def batches(self) -> Iterator[pl.DataFrame]:
            try:
                yield _events(100)
                while True:
                    time.sleep(0.01)
                    yield _events(1).head(0)
            finally:
                raise rl.SourceError("could not commit the offsets")

    class Chunked:  # rillet's own sources hand their chunks over as they are
        def chunks(self) -> Iterator[pl.DataFrame]:
            yield from Feed().batches()

    handle = _query(Chunked()).start()
    assert until(lambda: handle.metrics["rows_in"] == 100)
    with pytest.raises(rl.SourceError, match="could not commit the offsets"):
        handle.stop()
    assert handle.state == "failed" and not handle.running
    assert handle.metrics["rows_in"] == 100  # the counters are frozen at the end all the same
