"""Partial window states: an operator that read part of the input hands its state
(``partial()``) to one that read another part (``merge()``), and the merged operator emits
what one operator over all the rows emits (the local-global aggregation scale-out builds
on). Checked against polars over the same rows, for every way of cutting the input into
parts and batches (1, 7 and whole); non-mergeable states are refused with a clear error."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl
from rillet.runtime.execution import Execution

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def events(n: int = 300, seed: int = 3) -> pl.DataFrame:
    import random

    rnd = random.Random(seed)
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=rnd.randrange(0, 600)) for _ in range(n)],
        "svc": [rnd.choice(["ec2", "s3", "iam"]) for _ in range(n)],
        "user": [rnd.choice(["ana", "bo", "cy", "di", "ed"]) for _ in range(n)],
        "bytes": [rnd.randrange(0, 1000) for _ in range(n)],
    })


def query(df: pl.DataFrame, window: object) -> object:
    return (
        rl.stream(df, time="ts", watermark="5s")
        .window(window, by="svc", lateness="1h")
        .agg(rl.count(), rl.sum("bytes").alias("bytes"), rl.max("bytes").alias("top"),
             rl.count_distinct("user").alias("users"))
    )


def run_parts(df: pl.DataFrame, window: object, cuts: list[int], batch: int | None) -> pl.DataFrame:
    """Each part (rows between cuts) through its own operator, then every partial merged
    into the first, which is then finished."""
    bounds = [0, *cuts, df.height]
    runs = []
    for lo, hi in zip(bounds, bounds[1:]):
        part = df.slice(lo, hi - lo)
        ex = Execution(query(part, window), progress=False)
        size = part.height if batch is None else batch
        outs = [ex.step(part.slice(i, size)) for i in range(0, part.height, max(size, 1))]
        assert all(o.height == 0 for o in outs), "nothing closes within the hour of lateness"
        runs.append(ex)
    first, *rest = [ex for ex in runs if ex.op is not None]
    for ex in rest:
        first.op.merge(ex.op.partial())
    return first.finish()


def oracle(df: pl.DataFrame, every: str, period: str | None = None) -> pl.DataFrame:
    if period is None:
        starts = df.with_columns(window_start=pl.col("ts").dt.truncate(every))
    else:  # hopping: every row in each window that covers it
        p = pl.duration(minutes=int(period[:-1]))
        e = pl.duration(minutes=int(every[:-1]))
        last = pl.col("ts").dt.truncate(every)
        n = int(int(period[:-1]) / int(every[:-1]))
        starts = pl.concat([df.with_columns(window_start=last - e * k) for k in range(n)])
        starts = starts.filter(pl.col("window_start") + p > pl.col("ts"))
    size = pl.duration(minutes=int((period or every)[:-1]))
    return (
        starts.group_by("window_start", "svc")
        .agg(pl.len().cast(pl.UInt64).alias("count"), pl.col("bytes").sum().alias("bytes"),
             pl.col("bytes").max().alias("top"), pl.col("user").n_unique().cast(pl.UInt64).alias("users"))
        .with_columns(window_end=pl.col("window_start") + size)
    )


def normal(df: pl.DataFrame) -> pl.DataFrame:
    cols = ["window_start", "window_end", "svc", "count", "bytes", "top", "users"]
    return df.select([pl.col(c).cast(pl.UInt64) if c in ("count", "users") else pl.col(c) for c in cols]).sort(
        "window_start", "svc")


@pytest.mark.parametrize("batch", [1, 7, None])
@pytest.mark.parametrize("cuts", [[150], [1, 299], [60, 120, 240], [0]])
def test_merged_tumbling_partials_equal_polars(batch: int | None, cuts: list[int]) -> None:
    df = events()
    got = run_parts(df, rl.tumbling("1m"), cuts, batch)
    assert_frame_equal(normal(got), normal(oracle(df, "1m")), check_dtypes=False)


@pytest.mark.parametrize("batch", [1, 7, None])
def test_merged_hopping_partials_equal_polars(batch: int | None) -> None:
    df = events()
    got = run_parts(df, rl.hopping("3m", "1m"), [100, 200], batch)
    assert_frame_equal(normal(got), normal(oracle(df, "1m", "3m")), check_dtypes=False)


def test_merged_partials_equal_one_operator_over_every_row() -> None:
    df = events(500, seed=9)
    whole = query(df, rl.tumbling("2m")).run(progress=False).output
    got = run_parts(df, rl.tumbling("2m"), [170, 333], None)
    assert_frame_equal(got.sort("window_start", "svc"), whole.sort("window_start", "svc"))


def test_a_session_state_is_refused_with_what_to_do_instead() -> None:
    df = events(40)
    q = rl.stream(df, time="ts").window(rl.session("30s"), by="svc").agg(rl.count())
    ex = Execution(q, progress=False)
    ex.step(df)
    with pytest.raises(rl.ConfigError, match="not mergeable.*repartition the input by key"):
        ex.op.partial()


def test_a_finished_operator_takes_no_partial() -> None:
    df = events(40)
    a, b = Execution(query(df, rl.tumbling("1m")), False), Execution(query(df, rl.tumbling("1m")), False)
    a.step(df)
    b.step(df)
    a.finish()
    with pytest.raises(rl.ConfigError, match="after flush"):
        a.op.merge(b.op.partial())
