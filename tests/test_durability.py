"""Checkpointed runs resumed in-process (issue 18): a run is stopped part way (its source
raises after k micro-batches, or one step of the flow raises, so no checkpoint follows the
last one), then the same query runs again with the same checkpoint path and the whole input.
The resumed run must equal an uninterrupted run row for row (output, late and rejected rows,
counters) and an independent oracle (polars or a brute-force recomputation), at batch sizes
1, 7 and whole, for every kind of state the engine keeps. The kill -9 harness is
tests/test_durability_crash.py; this file needs no process of its own.
"""
from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import batches, simulate, window_starts
from helpers import until

import rillet as rl
from rillet.runtime import driver

SIZES = [1, 7, None]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Boom(Exception):
    """The failure that stops a run part way."""


def rows(n: int = 150, keys: int = 4, seed: int = 0, disorder_s: int = 20, step_s: int = 3) -> pl.DataFrame:
    """Rows about ``step_s`` seconds apart, up to ``disorder_s`` seconds out of order, with
    integral values (so sums are exact in any order)."""
    rng = np.random.default_rng(seed)
    secs = np.arange(n) * step_s + rng.integers(0, disorder_s + 1, n)
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=int(s)) for s in secs],
        "user": [f"u{k}" for k in rng.integers(0, keys, n)],
        "v": rng.integers(0, 100, n).astype(np.float64),
        "w": rng.integers(0, 12, n),
        "id": np.arange(n, dtype=np.int64),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


class Frames:
    """An iterable of micro-batches giving the same batches each time it is iterated;
    with ``fail_at``, it raises :class:`Boom` instead of giving batch ``fail_at`` (0-based;
    the number of batches: instead of ending)."""

    def __init__(self, df: pl.DataFrame, size: int | None, fail_at: int | None = None) -> None:
        self.parts = batches(df, size)
        self.fail_at = fail_at
        self.given = 0

    def __iter__(self):
        for i, part in enumerate(self.parts):
            if i == self.fail_at:
                raise Boom(f"stopped before batch {i}")
            self.given += 1
            yield part
        if self.fail_at is not None and self.fail_at >= len(self.parts):
            raise Boom("stopped before the end of the input")


def stops(n_batches: int) -> list[int]:
    """Where the runs before the last one stop, in order (each resumes the one before)."""
    return sorted({n_batches // 3, (2 * n_batches) // 3, n_batches})


def resumed(make: Callable[[Any], Any], df: pl.DataFrame, size: int | None, path: Path,
            every: Any = 5, method: str = "run", **kw: Any) -> Any:
    """Runs ``make(source)`` stopped at each of :func:`stops` in turn, each run resuming the
    one before from ``path``, then once over the whole input: the last run's result."""
    n = len(batches(df, size))
    for at in stops(n):
        with pytest.raises(Boom):
            getattr(make(Frames(df, size, at)), method)(checkpoint=path, checkpoint_every=every, **kw)
    return getattr(make(Frames(df, size)), method)(checkpoint=path, checkpoint_every=every, **kw)


def same_run(got: rl.Run, want: rl.Run) -> None:
    """The resumed run equals the uninterrupted one: rows in order, late and rejected rows,
    and the counters that do not depend on time or batching."""
    assert got.output.equals(want.output), f"output differs:\n{got.output}\n{want.output}"
    assert got.late.equals(want.late), f"late rows differ:\n{got.late}\n{want.late}"
    assert got.rejected.equals(want.rejected), f"rejected rows differ:\n{got.rejected}\n{want.rejected}"
    for key in ("rows_in", "rows_filtered", "rows_accepted", "rows_late", "rows_rejected",
                "rows_emitted", "watermark", "max_event_time", "open_windows", "keys"):
        if key in want.metrics:
            assert got.metrics[key] == want.metrics[key], f"metrics[{key!r}]: {got.metrics[key]} != {want.metrics[key]}"


def seconds(df: pl.DataFrame) -> list[int]:
    return [int((t - T0).total_seconds()) for t in df["t"]]


def at(s: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


# -- oracles --------------------------------------------------------------------------------
def windows_oracle(df: pl.DataFrame, starts_of: Callable[[int], list[tuple[int, int]]],
                   accepted: list[bool] | None = None) -> pl.DataFrame:
    """count and v_sum per user and window, by brute force: each accepted row into every
    (start, end) ``starts_of`` gives for its time (seconds from T0)."""
    out: dict[tuple[str, int, int], list[float]] = {}
    for i, (s, user, v) in enumerate(zip(seconds(df), df["user"], df["v"], strict=True)):
        if accepted is not None and not accepted[i]:
            continue
        for start, end in starts_of(s):
            cell = out.setdefault((user, start, end), [0, 0.0])
            cell[0] += 1
            cell[1] += v
    return pl.DataFrame(
        [(u, at(s), at(e), c, v) for (u, s, e), (c, v) in out.items()],
        schema={"user": pl.String, "window_start": pl.Datetime("us", "UTC"),
                "window_end": pl.Datetime("us", "UTC"), "count": pl.Int64, "v_sum": pl.Float64},
        orient="row").sort("user", "window_start", "window_end")


def fixed(period: int, every: int) -> Callable[[int], list[tuple[int, int]]]:
    return lambda s: [(w, w + period) for w in window_starts(s, period, every)]


def cumulative_windows(period: int, step: int) -> Callable[[int], list[tuple[int, int]]]:
    def of(s: int) -> list[tuple[int, int]]:
        start = s // period * period
        return [(start, start + k * step) for k in range(1, period // step + 1) if start + k * step > s]
    return of


def sessions_oracle(df: pl.DataFrame, gap: int) -> pl.DataFrame:
    """Sessions per user: rows no more than ``gap`` apart share one; [first, last + gap)."""
    out = []
    for user in sorted(set(df["user"])):
        mine = sorted((s, v) for s, u, v in zip(seconds(df), df["user"], df["v"], strict=True) if u == user)
        first, last, count, total = mine[0][0], mine[0][0], 0, 0.0
        for s, v in mine:
            if s - last > gap:
                out.append((user, at(first), at(last + gap), count, total))
                first, count, total = s, 0, 0.0
            last = s
            count += 1
            total += v
        out.append((user, at(first), at(last + gap), count, total))
    return pl.DataFrame(out, schema={"user": pl.String, "window_start": pl.Datetime("us", "UTC"),
                                     "window_end": pl.Datetime("us", "UTC"), "count": pl.Int64,
                                     "v_sum": pl.Float64}, orient="row").sort("user", "window_start")


def sliding_oracle(df: pl.DataFrame, period: int | None = None, n_rows: int | None = None) -> pl.DataFrame:
    """Per input row, v_sum over the same user's rows in (t - period, t] (or the row and the
    ``n_rows`` before it in event-time order)."""
    out = []
    data = list(zip(seconds(df), df["user"], df["v"], df["id"], strict=True))
    for s, user, _, i in data:
        mine = sorted((s2, i2, v2) for s2, u2, v2, i2 in data if u2 == user)
        if period is not None:
            total = sum(v2 for s2, _, v2 in mine if s - period < s2 <= s)
        else:
            k = mine.index((s, i, next(v for s3, _, v, i3 in data if i3 == i)))
            total = sum(v2 for _, _, v2 in mine[max(0, k - n_rows):k + 1])
        out.append((user, at(s), total))
    return pl.DataFrame(out, schema={"user": pl.String, "t": pl.Datetime("us", "UTC"), "v_sum": pl.Float64},
                        orient="row").sort("user", "t", "v_sum")


def by_window(out: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return out.select("user", "window_start", "window_end", *cols).sort("user", "window_start", "window_end")


# -- every kind of state ----------------------------------------------------------------------
def _count_sum(s: Any, window: Any, **kw: Any) -> Any:
    return s.window(window, by="user", **kw).agg(rl.count(), rl.sum("v"))


CASES: dict[str, tuple[Callable[[Any], Any], Callable[[pl.DataFrame, rl.Run], None]]] = {
    "tumbling": (
        lambda s: _count_sum(s, rl.tumbling("1m")),
        lambda df, run: by_window(run.output, "count", "v_sum").equals(windows_oracle(df, fixed(60, 60)))
        or pytest.fail("tumbling differs from the oracle")),
    "hopping": (
        lambda s: _count_sum(s, rl.hopping("1m", "20s")),
        lambda df, run: by_window(run.output, "count", "v_sum").equals(windows_oracle(df, fixed(60, 20)))
        or pytest.fail("hopping differs from the oracle")),
    "cumulative": (
        lambda s: _count_sum(s, rl.cumulative("1m", "20s")),
        lambda df, run: by_window(run.output, "count", "v_sum").equals(
            windows_oracle(df, cumulative_windows(60, 20))) or pytest.fail("cumulative differs from the oracle")),
    "session": (
        lambda s: _count_sum(s, rl.session("10s")),
        lambda df, run: by_window(run.output, "count", "v_sum").equals(sessions_oracle(df, 10))
        or pytest.fail("sessions differ from the oracle")),
    "sliding_time": (
        lambda s: s.window(rl.sliding("30s"), by="user").agg(rl.sum("v")),
        lambda df, run: run.output.select("user", "t", "v_sum").sort("user", "t", "v_sum").equals(
            sliding_oracle(df, period=30)) or pytest.fail("sliding windows differ from the oracle")),
    "sliding_rows": (
        lambda s: s.window(rl.sliding(rows=3), by="user").agg(rl.sum("v")),
        lambda df, run: run.output.select("user", "t", "v_sum").sort("user", "t", "v_sum").equals(
            sliding_oracle(df, n_rows=3)) or pytest.fail("sliding rows windows differ from the oracle")),
    "amend": (
        lambda s: _count_sum(s, rl.tumbling("1m"), emit="amend"),
        lambda df, run: by_window(
            run.output.sort("revision").group_by("user", "window_start", "window_end").last(), "count", "v_sum"
        ).equals(windows_oracle(df, fixed(60, 60))) or pytest.fail("last revisions differ from the oracle")),
    "changelog": (
        lambda s: _count_sum(s, rl.session("10s"), emit="changelog"),
        lambda df, run: by_window(upserted(run.output), "count", "v_sum").equals(sessions_oracle(df, 10))
        or pytest.fail("the changelog applied differs from the oracle")),
    "sketches": (
        lambda s: s.window(rl.tumbling("1m"), by="user").agg(
            rl.count_distinct("w"), rl.approx_count_distinct("w"), rl.quantile("v", 0.9),
            rl.approx_quantile("v", 0.5), rl.top_k("w", 3), rl.top_k("w", 3, approx=True).alias("w_top_approx")),
        lambda df, run: by_window(run.output, "w_count_distinct", "w_approx_count_distinct", "v_q90").equals(
            df.group_by("user", pl.col("t").dt.truncate("1m").alias("window_start")).agg(
                pl.col("w").n_unique().cast(pl.Int64).alias("w_count_distinct"),
                pl.col("w").n_unique().cast(pl.Int64).alias("w_approx_count_distinct"),
                pl.col("v").quantile(0.9, "nearest").alias("v_q90"))
            .with_columns((pl.col("window_start") + dt.timedelta(minutes=1)).alias("window_end"))
            .pipe(by_window, "w_count_distinct", "w_approx_count_distinct", "v_q90"))
        or pytest.fail("sketches differ from polars")),
}


def upserted(changes: pl.DataFrame) -> pl.DataFrame:
    """A changelog applied to a table keyed by user and window bounds (-U ignored)."""
    table: dict[tuple, dict] = {}
    for row in changes.iter_rows(named=True):
        key = (row["user"], row["window_start"], row["window_end"])
        if row["op"] in ("+I", "+U"):
            table[key] = row
        elif row["op"] == "-D":
            table.pop(key, None)
    return pl.DataFrame(list(table.values()), schema=changes.schema)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_run_equals_the_uninterrupted_run_and_the_oracle(case, size, tmp_path):
    build, check = CASES[case]
    df = rows(150, seed=len(case))
    make = lambda src: build(rl.stream(src, time="t", watermark="30s"))  # noqa: E731
    want = make(Frames(df, size)).run(progress=False)
    assert want.late.height == 0  # the watermark covers the disorder: the oracles take every row
    got = resumed(make, df, size, tmp_path / "ck", progress=False)
    same_run(got, want)
    check(df, got)
    assert got.metrics["checkpoint_epoch"] >= 2


@pytest.mark.parametrize("size", SIZES)
def test_calendar_days_in_a_zone_resume(size, tmp_path):
    df = rows(120, seed=3, step_s=1800, disorder_s=600)  # 2.5 days, half-hourly
    make = lambda src: (rl.stream(src, time="t", watermark="15m")  # noqa: E731
                        .window(rl.tumbling("1d", tz="Europe/Paris"), by="user").agg(rl.count(), rl.sum("v")))
    want = make(Frames(df, size)).run(progress=False)
    got = resumed(make, df, size, tmp_path / "ck", progress=False)
    same_run(got, want)
    day = pl.col("t").dt.convert_time_zone("Europe/Paris").dt.truncate("1d")
    expected = (df.group_by("user", day.alias("window_start"))
                .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("v").sum().alias("v_sum"))
                .with_columns(pl.col("window_start").dt.offset_by("1d").alias("window_end")))
    conv = [pl.col(c).dt.convert_time_zone("UTC") for c in ("window_start", "window_end")]
    assert by_window(got.output.with_columns(conv), "count", "v_sum").equals(
        by_window(expected.with_columns(conv), "count", "v_sum"))


@pytest.mark.parametrize("size", SIZES)
def test_late_rows_on_both_sides_of_the_checkpoint_are_kept_once(size, tmp_path):
    df = rows(200, seed=11, disorder_s=45)
    make = lambda src: _count_sum(rl.stream(src, time="t", watermark="5s"), rl.tumbling("20s"),  # noqa: E731
                                  lateness="5s")
    want = make(Frames(df, size)).run(progress=False)
    got = resumed(make, df, size, tmp_path / "ck", every=3, progress=False)
    same_run(got, want)
    sim = simulate(seconds(df), delay=5, period=20, every=20, lateness=5)
    late_ids = [i for i, s in enumerate(sim.status) if s == "late"]
    assert len(late_ids) > 10
    assert got.late["id"].to_list() == late_ids
    assert got.late["late_by"].to_list() == [dt.timedelta(seconds=sim.late_by[i]) for i in late_ids]
    assert by_window(got.output, "count", "v_sum").equals(
        windows_oracle(df, fixed(20, 20), [s == "accepted" for s in sim.status]))
    # Late rows came before and after the checkpoints the runs resumed from.
    n = len(batches(df, size))
    first_stop = stops(n)[0] * (size or df.height)
    if size is not None:
        assert min(late_ids) < first_stop < max(late_ids)


def test_sessions_merged_by_a_row_after_the_checkpoint(tmp_path):
    # Two sessions of one key, 30 s apart (gap 20 s): saved; then a row between them merges them.
    df = pl.DataFrame({"t": [at(0), at(5), at(35), at(40), at(20), at(200)], "user": ["a"] * 6,
                       "v": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "id": range(6)}).with_columns(
        pl.col("t").dt.cast_time_unit("us"))
    make = lambda src: (rl.stream(src, time="t", watermark="60s")  # noqa: E731
                        .window(rl.session("20s"), by="user", emit="changelog").agg(rl.count(), rl.sum("v")))
    want = make(Frames(df, 1)).run(progress=False)
    path = tmp_path / "ck"
    with pytest.raises(Boom):
        make(Frames(df, 1, fail_at=4)).run(checkpoint=path, checkpoint_every=4, progress=False)
    got = make(Frames(df, 1)).run(checkpoint=path, checkpoint_every=4, progress=False)
    same_run(got, want)
    final = upserted(got.output).sort("window_start")
    assert final.select("window_start", "window_end", "count", "v_sum").rows() == [
        (at(0), at(60), 5, 15.0), (at(200), at(220), 1, 6.0)]
    assert got.metrics["rows_in"] == 6


@pytest.mark.parametrize("size", SIZES)
def test_detector_scores_after_resume_equal_the_uninterrupted_run(size, tmp_path):
    df = rows(160, seed=5).with_columns(pl.when(pl.col("id") % 37 == 0).then(pl.col("v") * 50)
                                        .otherwise(pl.col("v")).alias("v"))
    make = lambda src: (rl.stream(src, time="t", watermark="30s")  # noqa: E731
                        .detect(rl.random_cut_forest("v", "w", trees=20, sample_size=32, seed=7), by="user")
                        .window(rl.sliding(rows=0), by="user").agg(rl.max("anomaly_score").alias("score"),
                                                                   rl.first("id").alias("id")))
    want = make(Frames(df, size)).run(progress=False)
    got = resumed(make, df, size, tmp_path / "ck", progress=False)
    same_run(got, want)
    # The oracle: the detector over the whole input in one batch, without checkpoints.
    whole = make(Frames(df, None)).run(progress=False)
    assert got.output.sort("id")["score"].to_list() == whole.output.sort("id")["score"].to_list()
    assert got.output["score"].max() > 0


@pytest.mark.parametrize("size", SIZES)
def test_table_join_resumes(size, tmp_path):
    df = rows(150, seed=6)
    table = pl.DataFrame({"user": ["u0", "u1", "u2"], "team": ["red", "red", "blue"]})
    make = lambda src: (rl.stream(src, time="t", watermark="30s").join(table, on="user", how="inner")  # noqa: E731
                        .window(rl.tumbling("1m"), by="team").agg(rl.count(), rl.sum("v")))
    want = make(Frames(df, size)).run(progress=False)
    got = resumed(make, df, size, tmp_path / "ck", progress=False)
    same_run(got, want)
    assert got.metrics["rows_filtered"] == want.metrics["rows_filtered"] == df.filter(pl.col("user") == "u3").height
    expected = (df.join(table, on="user").group_by("team", pl.col("t").dt.truncate("1m").alias("window_start"))
                .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("v").sum().alias("v_sum"))
                .sort("team", "window_start"))
    assert got.output.select("team", "window_start", "count", "v_sum").sort("team", "window_start").equals(expected)


def sorted_run(run: rl.Run, key: list[str]) -> rl.Run:
    run.output = run.output.sort(key, nulls_last=False)
    return run


def _two_streams(left: pl.DataFrame, right: pl.DataFrame, size: int | None, fail: tuple[int | None, int | None]):
    return (rl.stream(Frames(left, size, fail[0]), time="t", watermark="30s"),
            rl.stream(Frames(right, size, fail[1]), time="t", watermark="30s"))


@pytest.mark.parametrize("interleave", ["aligned", "round_robin"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["interval", "asof"])
def test_stream_joins_resume(kind, size, interleave, tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    left = rows(120, keys=5, seed=21)
    right = rows(90, keys=5, seed=22).rename({"id": "rid", "v": "rv"}).drop("w").with_columns(pl.col("rid") + 1000)

    def make(fail: tuple[int | None, int | None]):
        ls, rs = _two_streams(left, right, size, fail)
        if kind == "interval":
            return ls.join_interval(rs, on="user", lower="-10s", upper="20s", how="left")
        return ls.join_asof(rs, by="user")

    want = make((None, None)).run(progress=False)
    path = tmp_path / "ck"
    nl, nr = len(batches(left, size)), len(batches(right, size))
    for fail in [(nl // 2, None), (None, (3 * nr) // 4), (nl, nr)]:
        with pytest.raises(Boom):
            make(fail).run(checkpoint=path, checkpoint_every=4, progress=False)
    got = make((None, None)).run(checkpoint=path, checkpoint_every=4, progress=False)
    # Rows in the order the two inputs were interleaved: compared as sets (see
    # test_resumed_join_keeps_the_interleaving for the order).
    key = ["id", "rid"]
    same_run(sorted_run(got, key), sorted_run(want, key))
    if kind == "interval":
        # Every left row with each right row of its user at most 10 s before or 20 s after.
        pairs = sorted((i, r) for i, u, s in zip(left["id"], left["user"], seconds(left), strict=True)
                       for r, u2, s2 in zip(right["rid"], right["user"], seconds(right), strict=True)
                       if u == u2 and -10 <= s2 - s <= 20)
        matched = {i for i, _ in pairs}
        pairs += [(i, None) for i in left["id"] if i not in matched]
        assert sorted(got.output.select("id", "rid").rows(), key=lambda r: (r[0], r[1] is not None, r[1] or 0)) == \
            sorted(pairs, key=lambda r: (r[0], r[1] is not None, r[1] or 0))
    else:
        ordered = right.with_row_index("arrival").sort("t", "arrival").drop("arrival")
        expected = (left.sort("t").join_asof(ordered.select("t", "user", "rid"), on="t", by="user",
                                             strategy="backward").select("id", "rid").sort("id"))
        assert got.output.select("id", "rid").sort("id").equals(expected)


@pytest.mark.parametrize("size", SIZES)
def test_chained_queries_and_two_queries_over_one_source_resume(size, tmp_path):
    df = rows(200, seed=8)
    per_minute = lambda src: rl.stream(src, time="t", watermark="30s").window(  # noqa: E731
        rl.tumbling("1m"), by="user").agg(rl.count())

    def chained(src):
        return (rl.stream(per_minute(src), time="window_end").window(rl.tumbling("5m"), by="user")
                .agg(rl.sum("count").alias("count")))

    want = chained(Frames(df, size)).run(progress=False)
    got = resumed(chained, df, size, tmp_path / "chain", progress=False)
    same_run(got, want)
    # A minute's count goes to the five minutes its window_end falls in.
    minute_end = pl.col("t").dt.truncate("1m") + dt.timedelta(minutes=1)
    five = (df.group_by("user", minute_end.dt.truncate("5m").alias("window_start"))
            .agg(pl.len().cast(pl.Int64).alias("count")).sort("user", "window_start"))
    assert got.output.select("user", "window_start", "count").sort("user", "window_start").equals(five)

    # rl.run(q1, q2) over one stream: both resumed.
    def both(src, fail_at=None):
        s = rl.stream(Frames(df, size, fail_at), time="t", watermark="30s")
        return s.window(rl.tumbling("1m"), by="user").agg(rl.count()), s.window(rl.session("10s")).agg(rl.sum("v"))

    wants = rl.run(*both(None), progress=False)
    path = tmp_path / "both"
    for stop in stops(len(batches(df, size))):
        with pytest.raises(Boom):
            rl.run(*both(None, stop), checkpoint=path, checkpoint_every=6, progress=False)
    gots = rl.run(*both(None), checkpoint=path, checkpoint_every=6, progress=False)
    for g, w in zip(gots, wants, strict=True):
        same_run(g, w)
    assert by_window(gots[0].output.with_columns(pl.lit(0.0).alias("v_sum")), "count").select(
        "user", "window_start", "count").equals(windows_oracle(df, fixed(60, 60)).select("user", "window_start", "count"))


# -- a file source's rejected rows, and a step that fails ----------------------------------
def fail_step_at(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """The flow's ``k``-th step (0-based) raises Boom before it processes anything."""
    real = driver.Dataflow.step
    calls = [0]

    def step(self, item):
        calls[0] += 1
        if calls[0] > k:
            raise Boom(f"step {k}")
        return real(self, item)

    monkeypatch.setattr(driver.Dataflow, "step", step)


def jsonl_file(path: Path, df: pl.DataFrame, bad_every: int = 9) -> None:
    lines = []
    for i, row in enumerate(df.iter_rows(named=True)):
        if i % bad_every == 4:
            lines.append('{"t": "not a time", broken')
        lines.append(json.dumps({"t": row["t"].isoformat(), "user": row["user"], "v": row["v"], "id": row["id"]}))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("batch_rows", [1, 7, 65536])
def test_file_source_rejected_and_late_rows_restored(batch_rows, tmp_path, monkeypatch):
    df = rows(120, seed=9, disorder_s=40)
    src = tmp_path / "in.jsonl"
    jsonl_file(src, df)
    make = lambda: _count_sum(rl.stream(rl.read_jsonl(str(src), batch_rows=batch_rows, on_error="skip"),  # noqa: E731
                                        time="t", watermark="5s"), rl.tumbling("30s"))
    want = make().run(progress=False)
    path = tmp_path / "ck"
    n_chunks = -(-(df.height + df.height // 9) // batch_rows)
    for k in sorted({max(1, n_chunks // 3), max(1, (2 * n_chunks) // 3)}):
        with monkeypatch.context() as m:
            fail_step_at(m, k)
            with pytest.raises(Boom):
                make().run(checkpoint=path, checkpoint_every=3, progress=False)
    got = make().run(checkpoint=path, checkpoint_every=3, progress=False)
    same_run(got, want)
    assert got.rejected.height == len([i for i in range(df.height) if i % 9 == 4])
    assert got.late.height > 0


# -- errors ----------------------------------------------------------------------------------
def test_changed_query_is_refused_naming_the_change(tmp_path):
    df = rows(60)
    path = tmp_path / "ck"
    _count_sum(rl.stream(Frames(df, 7), time="t", watermark="30s"), rl.tumbling("1m")).run(
        checkpoint=path, checkpoint_every=10, progress=False)
    with pytest.raises(rl.ConfigError, match=r"(?s)1m.*2m|2m.*1m"):
        _count_sum(rl.stream(Frames(df, 7), time="t", watermark="30s"), rl.tumbling("2m")).run(
            checkpoint=path, checkpoint_every=10, progress=False)
    with pytest.raises(rl.ConfigError, match="v"):
        (rl.stream(Frames(df, 7), time="t", watermark="30s").window(rl.tumbling("1m"), by="user")
         .agg(rl.count(), rl.mean("v")).run(checkpoint=path, checkpoint_every=10, progress=False))


@pytest.mark.parametrize("every", ["-1s", 0, -3, True, False, "abc", 1.5, "0s"])
def test_bad_checkpoint_every_is_a_config_error(every, tmp_path):
    q = _count_sum(rl.stream(rows(10), time="t"), rl.tumbling("1m"))
    with pytest.raises(rl.ConfigError, match="checkpoint_every"):
        q.run(checkpoint=tmp_path / "ck", checkpoint_every=every, progress=False)


def test_checkpoint_every_without_checkpoint_and_a_file_as_checkpoint(tmp_path):
    q = _count_sum(rl.stream(rows(10), time="t"), rl.tumbling("1m"))
    with pytest.raises(rl.ConfigError, match="checkpoint="):
        q.run(checkpoint_every=5, progress=False)
    with pytest.raises(rl.ConfigError, match="checkpoint="):
        q.to_jsonl(str(tmp_path / "out"), checkpoint_every=5)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(rl.ConfigError, match="file"):
        q.run(checkpoint=a_file, checkpoint_every=5, progress=False)
    assert a_file.read_text() == "x"


def test_completed_run_rerun_returns_the_same_run_without_reading(tmp_path):
    df = rows(100)
    make = lambda src: _count_sum(rl.stream(src, time="t", watermark="30s"), rl.tumbling("1m"))  # noqa: E731
    first = make(Frames(df, 7)).run(checkpoint=tmp_path / "ck", checkpoint_every=10, progress=False)
    src = Frames(df, 7)
    again = make(src).run(checkpoint=tmp_path / "ck", checkpoint_every=10, progress=False)
    same_run(again, first)
    assert src.given == 0  # the source was not read again
    assert not again.interrupted


# -- start / stop / start ----------------------------------------------------------------------
def test_start_stop_start_goes_on_with_a_growing_tail(tmp_path):
    df = rows(90, seed=12)
    log = tmp_path / "events.jsonl"
    log.write_text("")

    def append(part: pl.DataFrame) -> None:
        with open(log, "a") as f:
            for row in part.iter_rows(named=True):
                f.write(json.dumps({"t": row["t"].isoformat(), "user": row["user"], "v": row["v"]}) + "\n")

    def make():
        return _count_sum(rl.stream(rl.tail_jsonl(str(log), poll="10ms"), time="t", watermark="30s"),
                          rl.tumbling("1m"))

    path = tmp_path / "ck"
    append(df.slice(0, 40))
    h = make().start(checkpoint=path, checkpoint_every=5)
    assert until(lambda: h.metrics.get("rows_in", 0) >= 40)
    h.stop()
    h.wait()
    append(df.slice(40, 50))
    h2 = make().start(checkpoint=path, checkpoint_every=5)
    assert until(lambda: h2.metrics.get("rows_in", 0) >= 90)
    h2.stop()
    h2.wait()
    last = df["t"].max() - dt.timedelta(seconds=30)  # the watermark: windows ending after it stay open
    # Nothing flushed at a stop: the windows the watermark closed, and no row counted twice.
    assert h2.metrics["rows_in"] == 90
    # The second run's output starts with what the first had emitted (restored, not again).
    assert h2.output.head(h.output.height).equals(h.output)
    got = by_window(h2.output, "count", "v_sum")
    assert got.filter(pl.col("window_end") > last).height == 0
    closed = windows_oracle(df, fixed(60, 60)).filter(pl.col("window_end") <= last)
    assert got.filter(pl.col("window_end") <= last).equals(closed)


# -- sinks -------------------------------------------------------------------------------------
def _sink_query(src: Any) -> Any:
    return _count_sum(rl.stream(src, time="t", watermark="30s"), rl.tumbling("1m"))


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "sqlite"])
@pytest.mark.parametrize("size", [1, 7, None])
def test_sinks_resumed_after_a_failure_hold_exactly_the_gold_rows(kind, size, tmp_path, monkeypatch):
    df = rows(200, seed=13)
    gold = windows_oracle(df, fixed(60, 60))
    out = tmp_path / "out"
    path = tmp_path / "ck"

    def write(src: Any) -> None:
        q = _sink_query(src)
        if kind == "parquet":
            q.to_parquet(str(out), checkpoint=path, checkpoint_every=5)
        elif kind == "jsonl":
            q.to_jsonl(str(out), checkpoint=path, checkpoint_every=5)
        else:
            q.to_database(f"sqlite:///{tmp_path / 'db.sqlite'}", "counts", checkpoint=path, checkpoint_every=5)

    n = len(batches(df, size))
    for stop in stops(n):
        with pytest.raises(Boom):
            write(Frames(df, size, stop))
    write(Frames(df, size))
    if kind == "parquet":
        got = pl.read_parquet(str(out / "**" / "*.parquet"), hive_partitioning=False)
    elif kind == "jsonl":
        got = pl.read_ndjson(list((out).rglob("*.jsonl"))).with_columns(
            pl.col("window_start", "window_end").str.to_datetime(time_zone="UTC", time_unit="us"))
    else:
        with sqlite3.connect(tmp_path / "db.sqlite") as con:
            got = pl.read_database("SELECT user, window_start, window_end, count, v_sum FROM counts", con)
        got = got.with_columns(pl.col("window_start", "window_end").str.to_datetime(time_zone="UTC", time_unit="us"))
    assert by_window(got, "count", "v_sum").equals(gold)
    staged = [p for p in tmp_path.rglob("*") if "staging" in p.name or p.name.endswith(".tmp")]
    assert staged == []


def test_for_each_is_at_least_once(tmp_path):
    """for_each after a failure: every batch after the last checkpoint is handed on again
    (at least once), and nothing before it is."""
    df = rows(100, seed=14)
    seen: list[pl.DataFrame] = []
    path = tmp_path / "ck"

    def q(src):
        return _sink_query(src)

    with pytest.raises(Boom):
        q(Frames(df, 1, fail_at=63)).for_each(seen.append, checkpoint=path, checkpoint_every=10)
    first = pl.concat([s for s in seen if s.height])
    seen.clear()
    q(Frames(df, 1)).for_each(seen.append, checkpoint=path, checkpoint_every=10)
    second = pl.concat([s for s in seen if s.height])
    gold = windows_oracle(df, fixed(60, 60))
    both = by_window(pl.concat([first, second]).unique(maintain_order=True), "count", "v_sum")
    assert both.equals(gold)  # nothing missing
    # Rows emitted between the checkpoint at row 60 and the failure at row 63 come twice.
    assert first.height + second.height >= gold.height


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_resume_from_an_older_epoch_after_the_newest_files_are_removed(tmp_path):
    df = rows(120, seed=15)
    make = lambda src: _count_sum(rl.stream(src, time="t", watermark="30s"), rl.tumbling("1m"))  # noqa: E731
    want = make(Frames(df, 7)).run(progress=False)
    path = tmp_path / "ck"
    make(Frames(df, 7)).run(checkpoint=path, checkpoint_every=10, progress=False)
    older = _copy(path, tmp_path / "older")
    newest = max(older.glob("chk-*.rlck"))
    epoch = newest.name[4:16]
    newest.unlink()
    (older / f"seg-{epoch}.rlck").unlink(missing_ok=True)
    got = make(Frames(df, 7)).run(checkpoint=older, checkpoint_every=10, progress=False)
    same_run(got, want)


# -- defects found in review ---------------------------------------------------------------------
def test_tail_of_a_file_created_while_stopped_is_no_data_loss(tmp_path):
    """A tail checkpointed before its file existed, resumed once it does: nothing was lost,
    so no DataLossWarning (pytest turns one into an error)."""
    log = tmp_path / "later.jsonl"
    df = rows(20, seed=17)
    make = lambda: _count_sum(rl.stream(rl.tail_jsonl(str(log), poll="10ms"), time="t", watermark="30s"),  # noqa: E731
                              rl.tumbling("1m"))
    path = tmp_path / "ck"
    h = make().start(checkpoint=path, checkpoint_every="10ms")
    h.stop()  # saves a checkpoint
    h.wait()
    assert any(path.glob("chk-*.rlck"))
    log.write_text("".join(json.dumps({"t": r["t"].isoformat(), "user": r["user"], "v": r["v"]}) + "\n"
                           for r in df.iter_rows(named=True)))
    h2 = make().start(checkpoint=path, checkpoint_every=5)
    assert until(lambda: h2.metrics.get("rows_in", 0) >= 20)
    h2.stop()
    h2.wait()
    assert h2.metrics["rows_in"] == 20


def test_resuming_with_run_after_for_each_keeps_no_partial_output(tmp_path):
    """for_each keeps no output in its checkpoints; resuming its checkpoint with run() must not
    return an output missing every row emitted before the checkpoint (refuse, or replay)."""
    df = rows(100, seed=18)
    path = tmp_path / "ck"
    with pytest.raises(Boom):
        _sink_query(Frames(df, 1, fail_at=70)).for_each(lambda _: None, checkpoint=path, checkpoint_every=10)
    try:
        got = _sink_query(Frames(df, 1)).run(checkpoint=path, checkpoint_every=10, progress=False)
    except rl.ConfigError as e:
        assert "for_each" in str(e) or "output" in str(e)
        return
    assert by_window(got.output, "count", "v_sum").equals(windows_oracle(df, fixed(60, 60)))


@pytest.mark.parametrize("interleave", ["aligned", "round_robin"])
def test_resumed_join_keeps_the_interleaving(interleave, tmp_path, monkeypatch):
    """The order two streams are read in (and so a join's output order) goes on after a
    resume as in the uninterrupted run."""
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    left = rows(60, keys=3, seed=23)
    right = rows(60, keys=3, seed=24).rename({"id": "rid", "v": "rv"}).drop("w")

    def make(fail: tuple[int | None, int | None]):
        ls, rs = _two_streams(left, right, 1, fail)
        return ls.join_interval(rs, on="user", lower="-10s", upper="20s")

    want = make((None, None)).run(progress=False)
    with pytest.raises(Boom):
        make((30, None)).run(checkpoint=tmp_path / "ck", checkpoint_every=7, progress=False)
    got = make((None, None)).run(checkpoint=tmp_path / "ck", checkpoint_every=7, progress=False)
    assert got.output.equals(want.output)


def test_empty_inputs_and_a_checkpoint_before_the_first_row(tmp_path):
    df = rows(30, seed=19)
    make = lambda src: _count_sum(rl.stream(src, time="t", watermark="30s"), rl.tumbling("1m"))  # noqa: E731
    # No batch at all, then the same again: an empty run, saved and rerun.
    for attempt in range(2):
        run = make([]).run(checkpoint=tmp_path / "none", checkpoint_every=1, progress=False)
        assert run.output.height == 0 and run.metrics["rows_in"] == 0, attempt
    # An empty first batch (columns, no rows), a checkpoint after it, a failure, then the rest.
    parts = [df.head(0), *batches(df, 7)]

    class Source:
        def __init__(self, fail_at=None):
            self.fail_at = fail_at

        def __iter__(self):
            for i, p in enumerate(parts):
                if i == self.fail_at:
                    raise Boom
                yield p

    want = make(Source()).run(progress=False)
    with pytest.raises(Boom):
        make(Source(1)).run(checkpoint=tmp_path / "early", checkpoint_every="1ms", progress=False)
    got = make(Source()).run(checkpoint=tmp_path / "early", checkpoint_every="1ms", progress=False)
    same_run(got, want)


def test_checkpoint_metrics_count_the_whole_run(tmp_path):
    """After a resume, checkpoints counts every checkpoint of the run, as checkpoint_epoch does."""
    df = rows(100, seed=20)
    make = lambda src: _count_sum(rl.stream(src, time="t", watermark="30s"), rl.tumbling("1m"))  # noqa: E731
    got = resumed(make, df, 1, tmp_path / "ck", every=10, progress=False)
    assert got.metrics["checkpoints"] == got.metrics["checkpoint_epoch"]


def test_two_runs_cannot_share_a_checkpoint_directory(tmp_path):
    """A run holds its checkpoint directory while it runs: a second run given the same path
    is refused (its checkpoints would overwrite the first's), and may use it once the first
    has ended."""
    df = rows(60, seed=31)

    class Slow(Frames):  # batches a little apart, so the first run is still running
        def __iter__(self):
            for part in super().__iter__():
                time.sleep(0.02)
                yield part

    started = rl.stream(Slow(df, 1), time="t").window(rl.tumbling("1m"), by="user").agg(rl.count())
    handle = started.start(checkpoint=tmp_path / "ck", checkpoint_every=5)
    try:
        with pytest.raises(rl.ConfigError, match="in use by another run"):
            rl.stream(df, time="t").window(rl.tumbling("1m"), by="user").agg(rl.count()).run(
                checkpoint=tmp_path / "ck", progress=False)
    finally:
        first = handle.wait()
    again = started.run(checkpoint=tmp_path / "ck", progress=False)
    assert again.output.sort("user", "window_start").equals(first.output.sort("user", "window_start"))
