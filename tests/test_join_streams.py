"""Joins of two streams (interval and as-of) against DuckDB's range joins and polars'
join_asof over the same rows, at batch sizes 1, 7 and whole and several interleavings of the
two inputs; late rows of either side in run.late with their side; state bounded."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest
from conftest import batches

import rillet as rl
from rillet.runtime import driver

SIZES = [1, 7, None]
INTERLEAVINGS = ["aligned", "round_robin", "in_order"]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def events(n: int, keys: int, seed: int, disorder_s: int = 20, name: str = "id") -> pl.DataFrame:
    """Rows about 3 s apart, arriving up to ``disorder_s`` seconds out of order."""
    rng = np.random.default_rng(seed)
    secs = np.arange(n) * 3 + rng.integers(0, disorder_s + 1, n)
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=int(s)) for s in secs],
        "user": [f"u{k}" for k in rng.integers(0, keys, n)],
        name: np.arange(n, dtype=np.int64) + (0 if name == "id" else 100_000),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


def on_time(df: pl.DataFrame, delay_s: int) -> pl.DataFrame:
    """The rows not behind their side's watermark (largest earlier time less the delay)."""
    prev_max = df["t"].cum_max().shift(1)
    return df.filter(prev_max.is_null() | (pl.col("t") >= prev_max - dt.timedelta(seconds=delay_s)))


def interval_oracle(left: pl.DataFrame, right: pl.DataFrame, lo: int, hi: int, how: str) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("l", left.to_arrow())
    con.register("r", right.to_arrow())
    kind = "LEFT JOIN" if how == "left" else "JOIN"
    out = con.sql(f"""
        SELECT l.id, r.rid FROM l {kind} r ON l.user = r.user
          AND r.t >= l.t + to_seconds({lo}) AND r.t <= l.t + to_seconds({hi})""").to_arrow_table()
    return pl.DataFrame(out).sort("id", "rid", nulls_last=False)


def run_join(build, left: pl.DataFrame, right: pl.DataFrame, size: int | None, interleave: str,
             monkeypatch: pytest.MonkeyPatch, delay: str) -> rl.Run:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    ls = rl.stream(batches(left, size), time="t", watermark=delay)
    rs = rl.stream(batches(right, size), time="t", watermark=delay)
    return build(ls, rs).run(progress=False)


@pytest.mark.parametrize("how", ["inner", "left"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("interleave", INTERLEAVINGS)
def test_interval_join_equals_duckdb_range_join(how, size, interleave, monkeypatch):
    left = events(120, 6, seed=1)
    right = events(150, 6, seed=2, name="rid")
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="-10s", upper="20s", how=how),
                   left, right, size, interleave, monkeypatch, delay="30s")
    expected = interval_oracle(left, right, -10, 20, how)
    got = run.output.select("id", "rid").sort("id", "rid", nulls_last=False)
    assert got.equals(expected)
    assert run.late.height == 0


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("interleave", INTERLEAVINGS)
def test_late_rows_of_either_side_go_to_run_late_with_their_side(size, interleave, monkeypatch):
    left = events(200, 4, seed=3, disorder_s=40)
    right = events(200, 4, seed=4, disorder_s=40, name="rid")
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="0s", upper="15s", how="left"),
                   left, right, size, interleave, monkeypatch, delay="5s")
    lo, ro = on_time(left, 5), on_time(right, 5)
    expected = interval_oracle(lo, ro, 0, 15, "left")
    assert run.output.select("id", "rid").sort("id", "rid", nulls_last=False).equals(expected)
    late_left = left.join(lo, on="id", how="anti")
    late_right = right.join(ro, on="rid", how="anti")
    assert late_left.height and late_right.height
    late = run.late
    assert sorted(late.filter(pl.col("side") == "left")["id"].to_list()) == sorted(late_left["id"].to_list())
    assert sorted(late.filter(pl.col("side") == "right")["rid"].to_list()) == sorted(late_right["rid"].to_list())
    assert run.metrics["join_rows_late_left"] == late_left.height


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("interleave", INTERLEAVINGS)
def test_stream_join_asof_equals_polars_join_asof(size, interleave, monkeypatch):
    left = events(150, 5, seed=5)
    right = events(60, 5, seed=6, name="rid").rename({"rid": "version"})
    run = run_join(lambda a, b: a.join_asof(b, by="user"), left, right, size, interleave, monkeypatch,
                   delay="30s")
    # The latest right row at or before each left row (ties: the last to arrive).
    ordered = right.with_row_index("arrival").sort("t", "arrival")
    expected = (left.sort("t").join_asof(ordered.drop("arrival"), on="t", by="user", strategy="backward")
                .select("id", "version").sort("id"))
    assert run.output.select("id", "version").sort("id").equals(expected)


@pytest.mark.parametrize("size", [7, None])
def test_window_after_an_interval_join_counts_matches_per_minute(size, monkeypatch):
    left = events(300, 5, seed=7)
    right = events(300, 5, seed=8, name="rid")
    monkeypatch.setattr(driver, "INTERLEAVE", "round_robin")
    ls = rl.stream(batches(left, size), time="t", watermark="30s")
    rs = rl.stream(batches(right, size), time="t", watermark="30s")
    out = (ls.join_interval(rs, on="user", lower="0s", upper="30s")
           .window(rl.tumbling("1m"), by="user").agg(rl.count()).collect(progress=False))
    pairs = interval_oracle(left, right, 0, 30, "inner").join(left, on="id")
    expected = (pairs.group_by("user", pl.col("t").dt.truncate("1m").alias("window_start"))
                .agg(pl.len().cast(pl.Int64).alias("count")).sort("user", "window_start"))
    got = out.select("user", "window_start", "count").sort("user", "window_start")
    assert got.with_columns(pl.col("window_start").cast(pl.Datetime("us", "UTC"))).equals(
        expected.with_columns(pl.col("window_start").cast(pl.Datetime("us", "UTC"))))


def test_long_interval_join_keeps_state_flat(monkeypatch):
    monkeypatch.setattr(driver, "INTERLEAVE", "aligned")
    kept = {}
    for n in (2_000, 20_000):
        left = events(n, 50, seed=9)
        right = events(n, 50, seed=10, name="rid")
        run = (rl.stream(batches(left, 500), time="t", watermark="30s")
               .join_interval(rl.stream(batches(right, 500), time="t", watermark="30s"), on="user",
                              lower="0s", upper="10s").run(progress=False))
        kept[n] = run.metrics["join_state_bytes"]
        assert run.output.height == interval_oracle(left, right, 0, 10, "inner").height
    # Ten times the rows, about the same state (what the interval and delays keep).
    assert kept[20_000] < 2 * kept[2_000] + 200_000, kept


def test_join_interval_errors_name_what_is_wrong():
    s = rl.stream(events(5, 2, seed=1), time="t")
    o = rl.stream(events(5, 2, seed=2, name="rid"), time="t")
    with pytest.raises(rl.ConfigError, match="lower.*after upper|interval"):
        s.join_interval(o, on="user", lower="10s", upper="0s").collect(progress=False)
    with pytest.raises(rl.ConfigError, match="joins two streams"):
        s.join_interval(events(5, 2, seed=3), on="user", lower="0s", upper="1s")
    with pytest.raises(rl.SchemaError, match='"nope".*not a column of the left stream'):
        s.join_interval(o, on="nope", lower="0s", upper="1s").collect(progress=False)


def test_an_idle_input_does_not_hold_the_join_back(monkeypatch):
    """With idle_timeout on the right stream, a right input with nothing new lets its
    watermark follow the wall clock: the left rows that matched nothing come out as the
    clock passes, long before the input ends."""
    now = {"ms": 1_000_000}
    reads = {"right": 0}
    monkeypatch.setattr(rl._clock, "now_ms", lambda: now["ms"])
    monkeypatch.setattr(driver, "INTERLEAVE", "round_robin")
    left_rows = events(5, 2, seed=11)
    right_rows = events(1, 2, seed=12, name="rid")

    def left():
        yield left_rows
        for _ in range(200):
            yield left_rows.head(0)

    def right():
        yield right_rows
        for _ in range(200):
            now["ms"] += 1_000  # a second of wall clock per quiet read
            reads["right"] += 1
            yield right_rows.head(0)

    ls = rl.stream(left(), time="t", watermark="30s")
    rs = rl.stream(right(), time="t", watermark="0s", idle_timeout="30s")
    expected = interval_oracle(left_rows, right_rows, 0, 10, "left")
    seen, reads_when_done = [], None
    for out in ls.join_interval(rs, on="user", lower="0s", upper="10s", how="left")._rows().iter():
        seen.append(out)
        if reads_when_done is None and sum(o.height for o in seen) == expected.height:
            reads_when_done = reads["right"]
    assert reads_when_done is not None and reads_when_done < 100, reads_when_done
    got = pl.concat([o for o in seen if o.height]).select("id", "rid").sort("id", "rid", nulls_last=False)
    assert got.equals(expected)


def test_integer_times_and_a_right_stream_without_rows(monkeypatch):
    monkeypatch.setattr(driver, "INTERLEAVE", "aligned")
    left = pl.DataFrame({"t": [1, 5, 9], "user": ["a", "b", "a"], "id": [1, 2, 3]})
    right = pl.DataFrame({"t": [2, 9], "user": ["a", "a"], "rid": [10, 11]})
    got = (rl.stream(left, time="t", watermark=0)
           .join_interval(rl.stream(right, time="t", watermark=0), on="user", lower=0, upper=3, how="left")
           .collect(progress=False).sort("id", "rid", nulls_last=False))
    assert got.select("id", "rid").rows() == [(1, 10), (2, None), (3, 11)]
    empty = (rl.stream(left, time="t", watermark=0)
             .join_interval(rl.stream(right.clear(), time="t", watermark=0), on="user", lower=0, upper=3,
                            how="left").collect(progress=False))
    assert empty.columns == ["t", "user", "id", "t_right", "rid"]
    assert empty.sort("id")["id"].to_list() == [1, 2, 3] and empty["rid"].null_count() == 3


def test_repr_and_explain_say_what_a_join_of_two_streams_joins():
    s = rl.stream(events(5, 2, seed=1), time="t", watermark="5s")
    o = rl.stream(events(5, 2, seed=2, name="rid"), time="t", watermark="5s")
    joined = s.join_interval(o, on="user", lower="-10s", upper="20s", how="left")
    assert "join_interval(" in repr(joined) and "lower='-10s'" in repr(joined) and "how='left'" in repr(joined)
    plan = joined.window(rl.tumbling("1m")).agg(rl.count()).explain()
    assert "upper='20s'" in plan.splitlines()[0]
    asof = s.join_asof(o, by="user", tolerance="1m")
    assert "join_asof(" in repr(asof) and "tolerance='1m'" in repr(asof)
