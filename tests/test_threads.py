"""rl.set_threads: a large batch's key encoding and accumulator updates run on the worker
threads; results are identical with 1, 2 and 3 threads and equal polars' group-by."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl


@pytest.fixture
def restore_threads():
    before = rl.threads()
    yield
    rl.set_threads(before)


def _stream(n: int = 300_000) -> pl.DataFrame:
    rng = np.random.default_rng(7)
    t = np.cumsum(rng.integers(0, 40, n)) - rng.integers(0, 2_000, n) * (rng.random(n) < 0.02)
    src = rng.integers(0, 20, n)
    names = np.array([f"Api{i}" for i in range(190)])
    return pl.DataFrame({
        "t": t,
        "svc": [f"svc{i}.amazonaws.com" for i in src],
        "api": names[(src * 7 + rng.integers(0, 10, n)) % 190],
        "user": pl.Series(rng.integers(0, 5_000, n)).cast(pl.String),
        "bytes": rng.integers(200, 20_000, n),
        "lat": rng.lognormal(3, 1, n),
    }).with_columns(pl.when(pl.col("bytes") % 31 == 0).then(None).otherwise(pl.col("api")).alias("api"))


#: Windows long enough that each closing moment updates the accumulators with over 100k
#: rows, which go to the worker threads (short ones keep the moments small).
PERIODS = [60_000, 2_000_000]


def _query(df: pl.DataFrame, emit: str = "final", period: int = 60_000) -> rl.Query:
    return (
        rl.stream(df, time="t", watermark=500)
        .window(rl.tumbling(period), by=["svc", "api"], lateness=1_000, emit=emit)
        .agg(rl.count(), rl.sum("bytes"), rl.mean("lat"), rl.max("lat"), rl.count_distinct("user"))
    )


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("emit", ["final", "amend"])
def test_results_do_not_depend_on_the_thread_count(restore_threads, emit: str, period: int) -> None:
    df = _stream()
    runs = []
    for n in (1, 2, 3):
        rl.set_threads(n)
        assert rl.threads() == n
        runs.append(_query(df, emit, period).run())
    for other in runs[1:]:
        assert_frame_equal(other.output, runs[0].output)
        assert_frame_equal(other.late, runs[0].late)
        assert other.metrics["rows_late"] == runs[0].metrics["rows_late"]


@pytest.mark.parametrize("period", PERIODS)
def test_large_batches_equal_polars(restore_threads, period: int) -> None:
    rl.set_threads(2)
    df = _stream()
    run = _query(df, period=period).run()
    kept = df.join(run.late.select("t", "svc", "bytes", "lat"), on=["t", "svc", "bytes", "lat"], how="anti")
    want = (
        kept.with_columns((pl.col("t") // period * period).alias("window_start"))
        .group_by("svc", "api", "window_start")
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("bytes").sum().alias("bytes_sum"),
             pl.col("lat").mean().alias("lat_mean"), pl.col("lat").max().alias("lat_max"),
             pl.col("user").n_unique().cast(pl.Int64).alias("user_count_distinct"))
    )
    keys = ["svc", "api", "window_start"]
    got = run.output.select(*keys, "count", "bytes_sum", "lat_mean", "lat_max", "user_count_distinct")
    assert_frame_equal(got.sort(keys, nulls_last=False), want.select(got.columns).sort(keys, nulls_last=False),
                       check_dtypes=False, rel_tol=1e-9)


def test_thread_count_must_be_positive(restore_threads) -> None:
    with pytest.raises(rl.ConfigError, match="at least 1"):
        rl.set_threads(0)


#: One accumulator per query: its slots are split between two threads (keyed), or its
#: updates handed to a second thread while rows are assigned (no key).
SINGLE = {
    "count_distinct": lambda: rl.count_distinct("user"),
    "approx_count_distinct": lambda: rl.approx_count_distinct("user"),
    "top_k": lambda: rl.top_k("api", 5),
    "median": lambda: rl.median("lat"),
    "last": lambda: rl.last("bytes"),
}


@pytest.mark.parametrize("by", [["svc"], []])
@pytest.mark.parametrize("agg", sorted(SINGLE))
def test_one_accumulator_on_two_threads(restore_threads, agg: str, by: list[str]) -> None:
    df = _stream()
    runs = []
    for n in (1, 2):
        rl.set_threads(n)
        q = (rl.stream(df, time="t", watermark=500)
             .window(rl.tumbling(2_000_000), by=by, lateness=1_000)
             .agg(SINGLE[agg]()))
        runs.append(q.run())
    assert_frame_equal(runs[1].output, runs[0].output)
    assert_frame_equal(runs[1].late, runs[0].late)
    if agg in ("count_distinct", "median"):
        # And right: polars' group-by over the rows that were not late.
        kept = df.join(runs[1].late.select("t", "svc", "bytes", "lat"), on=["t", "svc", "bytes", "lat"],
                       how="anti")
        col, expr = (("user_count_distinct", pl.col("user").n_unique().cast(pl.Int64)) if agg == "count_distinct"
                     else ("lat_median", pl.col("lat").quantile(0.5, interpolation="nearest")))
        keys = [*by, "window_start"]
        want = (kept.with_columns((pl.col("t") // 2_000_000 * 2_000_000).alias("window_start"))
                .group_by(keys).agg(expr.alias(col)).sort(keys))
        got = runs[1].output.select(*keys, col).sort(keys)
        assert_frame_equal(got, want, check_dtypes=False)


def test_concurrent_queries_without_keys_finish_and_equal_polars(restore_threads) -> None:
    """Two queries running at once (as `start()` runs them) share the engine's two threads:
    each large batch runs on one of them and, without keys, hands its accumulator updates
    to a feeder thread of its own, which never waits for the engine's threads; both finish
    with polars' result."""
    import threading

    rl.set_threads(2)
    n = 400_000
    rng = np.random.default_rng(5)
    df = pl.DataFrame({"t": np.arange(n) // 200_000 * 1_000 + 500, "v": rng.integers(0, 50_000, n)})
    want = (df.group_by((pl.col("t") // 1_000 * 1_000).alias("window_start"))
            .agg(pl.col("v").n_unique().alias("v_count_distinct")).sort("window_start"))
    results: dict[int, pl.DataFrame] = {}

    def one(i: int) -> None:
        for _ in range(3):
            out = (rl.stream(df, time="t").window(rl.tumbling(1_000), lateness=10_000)
                   .agg(rl.count_distinct("v")).run(progress=False).output)
            results[i] = out
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a query did not finish: the threads wait on each other"
    for out in results.values():
        got = out.select("window_start", pl.col("v_count_distinct")).sort("window_start")
        assert_frame_equal(got, want, check_dtypes=False)
