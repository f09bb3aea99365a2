"""Joins of two streams, reviewed: the edge cases of ``join_interval`` and ``join_asof`` with a
stream, and the driver that reads several sources, against DuckDB's range joins, polars'
``join`` / ``join_asof`` and brute force over the on-time rows of each side (a row is late
when its time is below its side's largest earlier time less that side's watermark delay), at
batch sizes 1, 7 and whole and the three interleavings of the inputs.

The tests marked ``xfail(strict=True)`` reproduce defects found in the review; each fails
today and turns into an error (XPASS) once the defect is fixed, when its mark goes.
"""
from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from hypothesis import strategies as st

import rillet as rl
from rillet.runtime import driver

SIZES = [1, 7, None]
INTERLEAVINGS = ["aligned", "round_robin", "in_order"]
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def defect(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=reason)


# -- data and oracles -----------------------------------------------------------------------
def events(n: int, keys: int, seed: int, disorder_s: int = 20, name: str = "id", step_s: int = 3,
           key: str = "user") -> pl.DataFrame:
    """Rows about ``step_s`` seconds apart, arriving up to ``disorder_s`` seconds out of order."""
    rng = np.random.default_rng(seed)
    secs = np.arange(n) * step_s + rng.integers(0, disorder_s + 1, n)
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=int(s)) for s in secs],
        key: [f"u{k}" for k in rng.integers(0, keys, n)],
        name: np.arange(n, dtype=np.int64) + (0 if name == "id" else 100_000),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


def on_time(df: pl.DataFrame, delay: Any, time: str = "t") -> pl.DataFrame:
    """The rows not behind their side's watermark (largest earlier time less the delay)."""
    prev_max = df[time].cum_max().shift(1)
    return df.filter(prev_max.is_null() | (pl.col(time) >= prev_max - delay))


def duck_interval(left: pl.DataFrame, right: pl.DataFrame, lo_s: int, hi_s: int, how: str,
                  keys: tuple[str, ...] = ("user",)) -> list[tuple[Any, Any]]:
    """(id, rid) of DuckDB's range join: equal keys (a null never matches) and
    ``r.t - l.t`` in ``[lo_s, hi_s]`` seconds."""
    con = duckdb.connect()
    con.register("l", left.to_arrow())
    con.register("r", right.to_arrow())
    on = " AND ".join(f"l.{k} = r.{k}" for k in keys)
    kind = "LEFT JOIN" if how == "left" else "JOIN"
    rows = con.sql(f"""SELECT l.id, r.rid FROM l {kind} r ON {on}
                       AND r.t >= l.t + to_seconds({lo_s}) AND r.t <= l.t + to_seconds({hi_s})""").fetchall()
    return ordered(rows)


def ordered(rows: Any) -> list[tuple[Any, ...]]:
    return sorted((tuple(r) for r in rows), key=lambda r: tuple((v is not None, v) for v in r))


def pairs(df: pl.DataFrame, *cols: str) -> list[tuple[Any, ...]]:
    return ordered(df.select(cols or ("id", "rid")).rows()) if df.width else []


def side_rows(frame: pl.DataFrame, side: str, ident: str) -> list[Any]:
    """The ``ident`` values of the rows of one side in ``run.late`` or ``run.rejected``."""
    if "side" not in frame.columns:
        return []
    return sorted(frame.filter(pl.col("side") == side)[ident].to_list())


def run_join(build: Any, left: pl.DataFrame, right: pl.DataFrame, size: int | None, interleave: str,
             monkeypatch: pytest.MonkeyPatch, delay: Any = "30s", **kw: Any) -> rl.Run:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    ls = rl.stream(batches(left, size), time="t", watermark=delay, **kw)
    rs = rl.stream(batches(right, size), time="t", watermark=delay, **kw)
    return build(ls, rs).run(progress=False)


def every_way(test: Any) -> Any:
    """Parametrizes a test over the batch sizes and the interleavings of the two inputs."""
    return pytest.mark.parametrize("size", SIZES)(pytest.mark.parametrize("interleave", INTERLEAVINGS)(test))


# -- defects found in the review --------------------------------------------------------------
def test_a_join_of_joined_streams_takes_the_joined_sides_carried_watermark():
    # The first join emits (id 2 at t=3) before (id 1 at t=0): its watermark (the smallest
    # left time it can still emit) allows that, so the second join must not call t=0 late.
    left = pl.DataFrame({"t": [0, 3], "user": ["a", "b"], "id": [1, 2]})
    right = pl.DataFrame({"t": [4, 5], "user": ["b", "a"], "rid": [20, 10]})
    third = pl.DataFrame({"t": [0, 3], "user": ["a", "b"], "zid": [100, 200]})
    joined = rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower=0, upper=5)
    run = (joined.join_interval(rl.stream(third, time="t"), on="user", lower=0, upper=0, suffix="_z")
           .run(progress=False))
    assert pairs(run.output, "id", "rid", "zid") == [(1, 10, 100), (2, 20, 200)]
    assert run.late.height == 0


def test_a_query_output_side_takes_the_querys_carried_watermark():
    events_ = pl.DataFrame({"t": [0, 1, 2, 4], "user": ["a", "b", "a", "a"]})
    sessions = rl.stream(events_, time="t").window(rl.session(3), by="user").agg(rl.count())
    expected = sessions.collect(progress=False)  # b's session [1, 4) closes before a's [0, 7)
    assert expected["window_start"].to_list() == [1, 0]
    right = pl.DataFrame({"t": [0, 1], "user": ["a", "b"], "rid": [1, 2]})
    run = (rl.stream(sessions, time="window_start")
           .join_interval(rl.stream(right, time="t"), on="user", lower=0, upper=0).run(progress=False))
    assert sorted(run.output.select("user", "window_start", "rid").rows()) == [("a", 0, 1), ("b", 1, 2)]
    assert run.late.height == 0


def test_join_counters_of_a_join_of_joined_streams_describe_the_join_the_query_reads():
    left = pl.DataFrame({"t": [0, 3, 9], "user": ["a", "b", "c"], "id": [1, 2, 3]})
    right = pl.DataFrame({"t": [4, 5], "user": ["b", "a"], "rid": [20, 10]})
    third = pl.DataFrame({"t": [10, 11, 12, 13], "user": ["a", "b", "c", "d"], "zid": [1, 2, 3, 4]})
    inner = rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower=0, upper=5)
    first = inner.collect(progress=False)
    run = (inner.join_interval(rl.stream(third, time="t"), on="user", lower=0, upper=20, suffix="_z")
           .run(progress=False))
    # The join this query reads takes the first join's rows on its left, the third stream's on
    # its right.
    assert run.metrics["join_rows_in_left"] == first.height == 2
    assert run.metrics["join_rows_in_right"] == third.height


def test_a_started_join_shows_the_late_and_rejected_rows_of_its_sides():
    left = events(120, 4, seed=3, disorder_s=40)
    right = events(120, 4, seed=4, disorder_s=40, name="rid")
    left = left.with_columns(t=pl.when(pl.col("id") == 7).then(None).otherwise(pl.col("t")))

    def joined() -> rl.Stream:
        return (rl.stream(batches(left, 7), time="t", watermark="5s")
                .join_interval(rl.stream(batches(right, 7), time="t", watermark="5s"), on="user",
                               lower="0s", upper="15s", how="left"))

    expected = joined().run(progress=False)
    assert expected.late.height and expected.rejected.height
    handle = joined().start()
    got = handle.wait(60)
    for frame in (got.late, handle.late):
        assert side_rows(frame, "right", "rid") == side_rows(expected.late, "right", "rid")
    assert handle.rejected.height == expected.rejected.height == 1
    assert got.metrics["join_rows_late_left"] == expected.metrics["join_rows_late_left"]


def test_every_row_of_each_side_is_accounted_for_in_the_join_counters():
    left = events(80, 3, seed=21, disorder_s=40)
    right = events(80, 3, seed=22, disorder_s=40, name="rid")
    left = left.with_columns(t=pl.when(pl.col("id") % 10 == 3).then(None).otherwise(pl.col("t")))
    right = right.with_columns(t=pl.when(pl.col("rid") % 10 == 4).then(None).otherwise(pl.col("t")))
    run = (rl.stream(left, time="t", watermark="5s")
           .join_interval(rl.stream(right, time="t", watermark="5s"), on="user", lower="0s", upper="15s",
                          how="left").run(progress=False))
    m = run.metrics
    for side, df, ident in (("left", left, "id"), ("right", right, "rid")):
        assert m[f"join_rows_late_{side}"] == len(side_rows(run.late, side, ident))
        rejected = side_rows(run.rejected, side, ident)
        assert m[f"join_rows_rejected_{side}"] == len(rejected) == df["t"].null_count()
        assert m[f"join_rows_in_{side}"] + m[f"join_rows_rejected_{side}"] == df.height
    # A left join emits every on-time left row (at least once) or keeps it.
    emitted = run.output["id"].n_unique()
    assert emitted + m["join_rows_kept_left"] + m["join_rows_late_left"] + m["join_rows_rejected_left"] == left.height


def test_a_sides_watermark_never_goes_back_after_it_followed_the_wall_clock(monkeypatch):
    now = {"ms": 1_000_000}
    monkeypatch.setattr(rl._clock, "now_ms", lambda: now["ms"])
    monkeypatch.setattr(driver, "INTERLEAVE", "round_robin")
    at = [T0 + dt.timedelta(seconds=s) for s in range(200)]
    left_schema = {"t": pl.Datetime("us", "UTC"), "user": pl.String, "id": pl.Int64}
    right_schema = {"t": pl.Datetime("us", "UTC"), "user": pl.String, "rid": pl.Int64}

    def left():
        yield pl.DataFrame({"t": [at[100]], "user": ["a"], "id": [1]}, schema=left_schema)
        for _ in range(400):
            yield pl.DataFrame(schema=left_schema)

    def right():
        yield pl.DataFrame({"t": [at[0]], "user": ["b"], "rid": [10]}, schema=right_schema)
        for _ in range(200):  # quiet: the right watermark follows the clock past 100 + 10 s
            now["ms"] += 1_000
            yield pl.DataFrame(schema=right_schema)
        yield pl.DataFrame({"t": [at[150]], "user": ["z"], "rid": [11]}, schema=right_schema)
        yield pl.DataFrame({"t": [at[105]], "user": ["a"], "rid": [12]}, schema=right_schema)

    run = (rl.stream(left(), time="t")
           .join_interval(rl.stream(right(), time="t", watermark="60s", idle_timeout="30s"), on="user",
                          lower="0s", upper="10s", how="left").run(progress=False))
    # Left row 1 went out unmatched once the right watermark passed 110 s, so right row 12
    # (at 105 s, inside its interval) must be late, not accepted and matched with nothing.
    assert pairs(run.output) == [(1, None)]
    assert side_rows(run.late, "right", "rid") == [12]


def test_late_rows_of_a_join_keep_their_values_whatever_the_other_sides_types():
    at = [T0 + dt.timedelta(seconds=s) for s in (100, 0)]
    left = (pl.DataFrame({"t": at, "user": ["a", "a"], "v": [1, 2]})
            .with_columns(pl.col("t").dt.cast_time_unit("ns") + pl.duration(nanoseconds=7)))
    right = pl.DataFrame({"t": at, "user": ["a", "a"], "v": ["x", "y"]})
    run = (rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower="0s",
                                                   upper="1s", how="left").run(progress=False))
    late_left = run.late.filter(pl.col("side") == "left")
    assert late_left.schema["v"] == pl.Int64 and late_left["v"].to_list() == [2]
    assert late_left["t"].to_list() == left["t"].to_list()[1:]  # to the nanosecond


@pytest.mark.parametrize("case", ["time zones", "list and text"])
def test_late_rows_of_sides_sharing_a_column_name_of_unlike_types_do_not_crash_the_run(case):
    at = [T0 + dt.timedelta(seconds=s) for s in (100, 0)]
    left = pl.DataFrame({"t": at, "user": ["a", "a"], "v": [1, 2]})
    right = pl.DataFrame({"t": [at[0], None, at[1]], "user": ["a", "a", "a"], "v": [3, 4, 5]})
    if case == "time zones":  # each side's events in its own zone, the time column named alike
        right = right.with_columns(pl.col("t").dt.convert_time_zone("Europe/Paris"))
    else:
        left = left.with_columns(pl.col("v").cast(pl.String).str.split(","))
    run = (rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower="0s",
                                                   upper="1s", how="left").run(progress=False))
    assert run.output.height == 1
    assert sorted(run.late["side"].to_list()) == ["left", "right"]
    assert run.rejected["side"].to_list() == ["right"]


def test_late_and_rejected_rows_of_a_join_always_have_a_side_column():
    left = events(20, 2, seed=71)
    right = events(20, 2, seed=72, name="rid")
    run = (rl.stream(left, time="t", watermark="30s")
           .join_interval(rl.stream(right, time="t", watermark="30s"), on="user", lower="0s", upper="10s")
           .run(progress=False))
    assert run.late.height == run.rejected.height == 0
    assert run.late.filter(pl.col("side") == "left").height == 0
    assert run.rejected.filter(pl.col("side") == "right").height == 0


def test_far_future_datetimes_are_refused_not_all_one_instant():
    """Times beyond what 64-bit nanoseconds hold (after 2262) are an error naming the limit,
    never compared as one clamped instant (docs/joins.md)."""
    left = pl.DataFrame({"t": [dt.datetime(2300, 1, 1, tzinfo=dt.UTC)], "user": ["a"], "id": [1]})
    right = pl.DataFrame({"t": [dt.datetime(2400, 1, 1, tzinfo=dt.UTC)], "user": ["a"], "rid": [1]})
    with pytest.raises(rl.SchemaError, match="2262"):
        (rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower="0s",
                                                 upper="1s", how="left").run(progress=False))


def test_an_asof_row_at_the_largest_instant_is_not_lost():
    top = 2**63 - 1
    left = pl.DataFrame({"t": [5, top], "user": ["a", "a"], "id": [1, 2]})
    right = pl.DataFrame({"t": [1, top], "user": ["a", "a"], "rid": [10, 20]})
    run = rl.stream(left, time="t").join_asof(rl.stream(right, time="t"), by="user").run(progress=False)
    accounted = run.output["id"].to_list() + side_rows(run.late, "left", "id") + side_rows(run.rejected, "left", "id")
    assert sorted(accounted) == [1, 2]
    assert run.metrics["join_rows_kept_left"] == 0  # the run has ended


def test_join_state_stays_flat_when_every_key_is_new(monkeypatch):
    """Requests and their responses, joined on the request id: every key is seen once per
    side, then never again."""
    peak = _peak_state(monkeypatch)
    seen = {}
    for n in (3_000, 30_000):
        peak.update(bytes=0, rows=0)
        left = events(n, 3, seed=73).with_columns(req=pl.format("r{}", pl.col("id")))
        right = events(n, 3, seed=74, name="rid").with_columns(req=pl.format("r{}", pl.col("rid") - 100_000))
        run = run_join(lambda a, b: a.join_interval(b, on="req", lower="-30s", upper="30s"), left, right, 500,
                       "aligned", monkeypatch)
        assert run.output.height == n
        seen[n] = dict(peak)
    assert seen[30_000]["rows"] <= 1.5 * seen[3_000]["rows"] + 100, seen
    assert seen[30_000]["bytes"] <= 1.5 * seen[3_000]["bytes"] + 50_000, seen


def test_a_join_that_loses_most_of_a_sides_rows_as_late_warns():
    n = 100
    at = [T0 + dt.timedelta(seconds=s) for s in range(n)]
    left = pl.DataFrame({"t": [T0 + dt.timedelta(seconds=1_000), *at], "user": "a", "id": range(n + 1)})
    right = pl.DataFrame({"t": at, "user": "a", "rid": range(n)})
    joined = rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower="0s",
                                                     upper="1s", how="left")
    with pytest.warns(rl.DataLossWarning, match="late"):
        run = joined.run(progress=False)
    assert run.late.height == n


def test_late_raise_after_a_join_raises_for_a_late_row_of_either_side():
    at = [T0 + dt.timedelta(seconds=s) for s in (100, 0)]
    left = pl.DataFrame({"t": at, "user": ["a", "a"], "id": [1, 2]})
    right = pl.DataFrame({"t": at[:1], "user": ["a"], "rid": [1]})
    q = (rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="user", lower="0s", upper="1s")
         .window(rl.tumbling("1m"), late="raise").agg(rl.count()))
    with pytest.raises(rl.LateDataError):
        q.run(progress=False)


@pytest.mark.parametrize("size", SIZES)
def test_streams_with_iso_text_times_join_as_their_datetimes_do(size, monkeypatch):
    left = events(40, 3, seed=31)
    right = events(40, 3, seed=32, name="rid")

    def text(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))

    def build(a: rl.Stream, b: rl.Stream) -> rl.Stream:
        return a.join_interval(b, on="user", lower="-10s", upper="20s", how="left")

    run = run_join(build, text(left), text(right), size, "aligned", monkeypatch)
    assert pairs(run.output) == duck_interval(left, right, -10, 20, "left")
    # The joined stream's event time is the instant read from the text (docs/joins.md).
    assert run.output.schema["t"] == pl.Datetime("us", "UTC")


def test_join_interval_refuses_lower_after_upper_when_called():
    s = rl.stream(events(5, 2, seed=1), time="t")
    o = rl.stream(events(5, 2, seed=2, name="rid"), time="t")
    with pytest.raises(rl.ConfigError, match="lower.*after upper"):
        s.join_interval(o, on="user", lower="10s", upper="0s")


# -- behaviour that works, now tested -----------------------------------------------------------
@st.composite
def two_streams(draw: Any) -> dict[str, Any]:
    """Two sides of integer times (nearly in order or scrambled), keys with nulls, null times
    now and then, and a join: interval (inner or left) or as of (with a tolerance or not)."""
    def side(base: int) -> list[tuple[int | None, str | None, int]]:
        n = draw(st.integers(0, 30))
        scrambled = draw(st.booleans())
        keys = draw(st.lists(st.sampled_from(["a", "b", "c", None]), min_size=n, max_size=n))
        times = [draw(st.integers(0, 3 * n + 12)) if scrambled else 3 * i + draw(st.integers(0, 12))
                 for i in range(n)]
        nulls = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return [(None if z and i % 7 == 3 else t, k, base + i)
                for i, (t, k, z) in enumerate(zip(times, keys, nulls))]

    lower = draw(st.integers(-8, 5))
    return {
        "left": side(0), "right": side(1_000),
        "delays": (draw(st.integers(0, 10)), draw(st.integers(0, 10))),
        "kind": draw(st.sampled_from(["interval", "asof"])),
        "lower": lower, "upper": lower + draw(st.integers(0, 10)),
        "how": draw(st.sampled_from(["inner", "left"])),
        "tolerance": draw(st.one_of(st.none(), st.integers(0, 10))),
        "size": draw(st.sampled_from(SIZES)),
        "interleave": draw(st.sampled_from(INTERLEAVINGS)),
    }


def brute_on_time(rows: list[tuple[Any, ...]], delay: int) -> list[tuple[Any, ...]]:
    kept, top = [], None
    for r in rows:
        if r[0] is None or (top is not None and r[0] < top - delay):
            continue
        top = r[0] if top is None else max(top, r[0])
        kept.append(r)
    return kept


def brute_join(case: dict[str, Any]) -> list[tuple[Any, Any]]:
    left = brute_on_time(case["left"], case["delays"][0])
    right = brute_on_time(case["right"], case["delays"][1])
    out: list[tuple[Any, Any]] = []
    for t, k, i in left:
        if case["kind"] == "interval":
            hits = [(i, r) for rt, rk, r in right
                    if k is not None and rk == k and case["lower"] <= rt - t <= case["upper"]]
            out += hits or ([(i, None)] if case["how"] == "left" else [])
        else:  # the latest right row at or before, the last to arrive among equal times
            best = None
            for rt, rk, r in right:
                if k is not None and rk == k and rt <= t and (best is None or rt >= best[0]):
                    best = (rt, r)
            tol = case["tolerance"]
            out.append((i, None if best is None or (tol is not None and t - best[0] > tol) else best[1]))
    return ordered(out)


def frame(rows: list[tuple[Any, ...]], ident: str) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"t": pl.Int64, "k": pl.String, ident: pl.Int64}, orient="row")


@given(two_streams())
def test_joins_of_two_streams_equal_brute_force_over_each_sides_on_time_rows(case):
    # A property test cannot take pytest's monkeypatch: the interleaving is set and restored here.
    saved = driver.INTERLEAVE
    driver.INTERLEAVE = case["interleave"]
    try:
        left, right = frame(case["left"], "id"), frame(case["right"], "rid")
        ls = rl.stream(batches(left, case["size"]), time="t", watermark=case["delays"][0])
        rs = rl.stream(batches(right, case["size"]), time="t", watermark=case["delays"][1])
        if case["kind"] == "interval":
            joined = ls.join_interval(rs, on="k", lower=case["lower"], upper=case["upper"], how=case["how"])
        else:
            joined = ls.join_asof(rs, by="k", tolerance=case["tolerance"])
        run = joined.run(progress=False)
    finally:
        driver.INTERLEAVE = saved
    assert pairs(run.output) == brute_join(case)
    for side, rows, ident in (("left", case["left"], "id"), ("right", case["right"], "rid")):
        on_time_ids = {r[2] for r in brute_on_time(rows, case["delays"][side == "right"])}
        late_ids = {r[2] for r in rows if r[0] is not None} - on_time_ids
        assert side_rows(run.late, side, ident) == sorted(late_ids)
        assert run.metrics[f"join_rows_late_{side}"] == len(late_ids)


@every_way
def test_interval_join_on_two_key_columns_of_different_integer_widths(size, interleave, monkeypatch):
    left = events(90, 3, seed=41).with_columns(shard=(pl.col("id") % 3).cast(pl.Int8))
    right = events(90, 3, seed=42, name="rid").with_columns(shard=(pl.col("rid") % 3).cast(pl.UInt32))
    run = run_join(lambda a, b: a.join_interval(b, on=["user", "shard"], lower="-10s", upper="20s", how="left"),
                   left, right, size, interleave, monkeypatch)
    wide = right.with_columns(pl.col("shard").cast(pl.Int8))
    assert pairs(run.output) == duck_interval(left, wide, -10, 20, "left", keys=("user", "shard"))
    assert run.output.schema["shard"] == pl.Int8  # the left keys stay, the right ones go
    assert "shard_right" not in run.output.columns


@every_way
@pytest.mark.parametrize("how", ["inner", "left"])
def test_null_keys_match_nothing_and_left_rows_with_one_still_come_out(how, size, interleave, monkeypatch):
    left = events(60, 3, seed=43).with_columns(
        user=pl.when(pl.col("id") % 4 == 0).then(None).otherwise(pl.col("user")))
    right = events(60, 3, seed=44, name="rid").with_columns(
        user=pl.when(pl.col("rid") % 3 == 0).then(None).otherwise(pl.col("user")))
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="-10s", upper="20s", how=how),
                   left, right, size, interleave, monkeypatch)
    assert pairs(run.output) == duck_interval(left, right, -10, 20, how)
    asof = run_join(lambda a, b: a.join_asof(b, by="user"), left, right, size, interleave, monkeypatch)
    nulls = asof.output.filter(pl.col("user").is_null())
    assert nulls.height == left["user"].null_count() and nulls["rid"].null_count() == nulls.height


def test_keys_of_different_types_are_a_schema_error_naming_both():
    left = rl.stream(events(5, 2, seed=1), time="t")
    right = rl.stream(events(5, 2, seed=2, name="rid").with_columns(user=pl.col("rid")), time="t")
    for joined in (left.join_interval(right, on="user", lower="0s", upper="1s"), left.join_asof(right, by="user")):
        with pytest.raises(rl.SchemaError, match=r"(?s)String.*left.*Int64.*right"):
            joined.collect(progress=False)


@pytest.mark.parametrize("empty", ["left", "right", "both"])
@pytest.mark.parametrize("kind", ["inner", "left", "asof"])
def test_a_side_without_rows(empty, kind, monkeypatch):
    left = events(20, 2, seed=45)
    right = events(20, 2, seed=46, name="rid")
    left = left.clear() if empty in ("left", "both") else left
    right = right.clear() if empty in ("right", "both") else right

    def build(a: rl.Stream, b: rl.Stream) -> rl.Stream:
        if kind == "asof":
            return a.join_asof(b, by="user")
        return a.join_interval(b, on="user", lower="0s", upper="10s", how=kind)

    run = run_join(build, left, right, 7, "aligned", monkeypatch)
    assert run.output.columns == ["t", "user", "id", "t_right", "rid"]
    expected = left.height if kind != "inner" and empty == "right" else 0
    assert run.output.height == expected and run.output["rid"].null_count() == expected


@pytest.mark.parametrize("interleave", INTERLEAVINGS)
def test_one_side_much_denser_than_the_other(interleave, monkeypatch):
    # Ten left rows a second against one right row every three seconds, over the same span.
    rng = np.random.default_rng(47)
    n = 3_000
    left = pl.DataFrame({
        "t": [T0 + dt.timedelta(milliseconds=int(ms)) for ms in np.arange(n) * 100 + rng.integers(0, 2_000, n)],
        "user": [f"u{k}" for k in rng.integers(0, 5, n)], "id": np.arange(n),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))
    right = events(100, 5, seed=48, name="rid")
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="-5s", upper="5s", how="left"),
                   left, right, 50, interleave, monkeypatch)
    assert pairs(run.output) == duck_interval(left, right, -5, 5, "left")
    asof = run_join(lambda a, b: a.join_asof(b, by="user"), left, right, 50, interleave, monkeypatch)
    expected = (left.sort("t").join_asof(right.sort("t"), on="t", by="user", strategy="backward",
                                         check_sortedness=False)
                .select("id", "rid"))
    assert pairs(asof.output) == pairs(expected)


def _peak_state(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Records the largest join state seen between batches (the final figure is after the
    flush, when everything is freed)."""
    peak = {"bytes": 0, "rows": 0}
    step = driver.JoinRun.step

    def recording(self: Any, flow: Any, outs: Any) -> pl.DataFrame:
        out = step(self, flow, outs)
        if not any(self.side_ended):
            m = self.core.metrics()
            peak["bytes"] = max(peak["bytes"], m["state_bytes"])
            peak["rows"] = max(peak["rows"], m["rows_kept_left"] + m["rows_kept_right"])
        return out

    monkeypatch.setattr(driver.JoinRun, "step", recording)
    return peak


@pytest.mark.parametrize("kind", ["interval", "asof"])
@pytest.mark.parametrize("interleave", ["aligned", "round_robin"])
def test_join_state_stays_flat_while_a_long_run_goes_on(kind, interleave, monkeypatch):
    peak = _peak_state(monkeypatch)
    seen = {}
    for n in (2_000, 20_000):
        peak.update(bytes=0, rows=0)
        left = events(n, 50, seed=49)
        right = events(n, 50, seed=50, name="rid")

        def build(a: rl.Stream, b: rl.Stream) -> rl.Stream:
            if kind == "asof":
                return a.join_asof(b, by="user")
            return a.join_interval(b, on="user", lower="0s", upper="10s", how="left")

        run = run_join(build, left, right, 500, interleave, monkeypatch)
        assert run.output["id"].n_unique() == n
        seen[n] = dict(peak)
    # Ten times the rows, the same state: what the interval and the delays keep.
    assert seen[20_000]["rows"] <= 1.5 * seen[2_000]["rows"] + 100, seen
    assert seen[20_000]["bytes"] <= 1.5 * seen[2_000]["bytes"] + 50_000, seen


@every_way
def test_streams_filtered_and_with_new_columns_before_the_join(size, interleave, monkeypatch):
    left = events(80, 3, seed=51)
    right = events(80, 3, seed=52, name="rid")
    run = run_join(lambda a, b: a.filter(pl.col("id") % 2 == 0).join_interval(
        b.with_columns(double=pl.col("rid") * 2), on="user", lower="-10s", upper="20s", how="left"),
        left, right, size, interleave, monkeypatch)
    assert pairs(run.output) == duck_interval(left.filter(pl.col("id") % 2 == 0), right, -10, 20, "left")
    assert (run.output.drop_nulls("rid")["double"] == run.output.drop_nulls("rid")["rid"] * 2).all()


@every_way
def test_a_self_join_of_one_source_split_by_filters(size, interleave, monkeypatch):
    """Logins and the calls after them, from one stream of events: one source read once."""
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    events_ = events(150, 3, seed=53).with_columns(
        kind=pl.when(pl.col("id") % 3 == 0).then(pl.lit("login")).otherwise(pl.lit("call")))
    s = rl.stream(batches(events_, size), time="t", watermark="5s")
    logins = s.filter(pl.col("kind") == "login")
    calls = s.filter(pl.col("kind") == "call").with_columns(rid=pl.col("id"))
    run = logins.join_interval(calls, on="user", lower="0s", upper="30s", how="left").run(progress=False)
    lo = on_time(events_.filter(pl.col("kind") == "login"), dt.timedelta(seconds=5))
    ro = on_time(events_.filter(pl.col("kind") == "call").with_columns(rid=pl.col("id")), dt.timedelta(seconds=5))
    assert pairs(run.output) == duck_interval(lo, ro, 0, 30, "left")


@pytest.mark.parametrize(("left_unit", "right_unit", "right_tz"),
                         [("us", "ns", "UTC"), ("ns", "us", "UTC"), ("ms", "us", "Europe/Paris"),
                          ("us", "us", None)])
@pytest.mark.parametrize("size", SIZES)
def test_datetime_units_and_time_zones_may_differ_between_the_sides(left_unit, right_unit, right_tz, size,
                                                                    monkeypatch):
    left = events(60, 3, seed=54)
    right = events(60, 3, seed=55, name="rid")
    lt = left.with_columns(pl.col("t").dt.cast_time_unit(left_unit))
    rt = right.with_columns(pl.col("t").dt.cast_time_unit(right_unit))
    rt = rt.with_columns(pl.col("t").dt.convert_time_zone(right_tz)) if right_tz else \
        rt.with_columns(pl.col("t").dt.replace_time_zone(None))  # naive means UTC
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="-10s", upper="20s", how="left"),
                   lt, rt, size, "aligned", monkeypatch)
    assert pairs(run.output) == duck_interval(left, right, -10, 20, "left")
    assert run.output.schema["t"] == lt.schema["t"] and run.output.schema["t_right"] == rt.schema["t"]
    asof = run_join(lambda a, b: a.join_asof(b, by="user", tolerance="7s"), lt, rt, size, "aligned",
                    monkeypatch)
    expected = left.sort("t").join_asof(right.sort("t"), on="t", by="user", strategy="backward",
                                        tolerance="7s", check_sortedness=False)
    assert pairs(asof.output) == pairs(expected)


def _window_counts(out: pl.DataFrame, emit: str) -> dict[Any, int]:
    """Each window's count as it stands at the end: the last revision (amend), the upserts
    less the retractions (changelog), the row (final)."""
    if emit == "amend":
        out = out.sort("window_start", "revision").group_by("window_start").last()
    elif emit == "changelog":
        sign = pl.when(pl.col("op").is_in(["+I", "+U"])).then(1).otherwise(-1)
        out = out.group_by("window_start").agg((pl.col("count") * sign).sum().alias("count"))
    return dict(out.select("window_start", "count").rows())


@every_way
@pytest.mark.parametrize("emit", ["final", "amend", "changelog"])
def test_windows_after_a_join_close_on_its_watermark_with_every_emit_mode(emit, size, interleave, monkeypatch):
    left = events(150, 4, seed=56, disorder_s=40)
    right = events(150, 4, seed=57, disorder_s=40, name="rid")
    run = run_join(lambda a, b: a.join_interval(b, on="user", lower="0s", upper="20s", how="left")
                   .window(rl.tumbling("1m"), lateness="30s", emit=emit).agg(rl.count()),
                   left, right, size, interleave, monkeypatch, delay="10s")
    ten = dt.timedelta(seconds=10)
    lo, ro = on_time(left, ten), on_time(right, ten)
    matched = pl.DataFrame(duck_interval(lo, ro, 0, 20, "left"), schema=["id", "rid"], orient="row")
    expected = (matched.join(left, on="id").group_by(pl.col("t").dt.truncate("1m").alias("window_start"))
                .agg(pl.len()))
    assert _window_counts(run.output, emit) == dict(expected.rows())
    assert run.metrics["rows_late"] == 0  # a joined row is never late for the window after it
    assert run.late.height == run.metrics["join_rows_late_left"] + run.metrics["join_rows_late_right"]


@pytest.mark.parametrize("interleave", INTERLEAVINGS)
def test_two_queries_over_one_joined_stream_and_one_side_read_each_source_once(interleave, monkeypatch):
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    left = events(100, 3, seed=58)
    right = events(100, 3, seed=59, name="rid")
    reads = {"left": 0, "right": 0}

    def counted(df: pl.DataFrame, name: str) -> Any:
        for b in batches(df, 7):
            reads[name] += 1
            yield b

    ls = rl.stream(counted(left, "left"), time="t", watermark="30s")
    rs = rl.stream(counted(right, "right"), time="t", watermark="30s")
    joined = ls.join_interval(rs, on="user", lower="-10s", upper="20s", how="left")
    per_user = joined.window(rl.tumbling("1m"), by="user").agg(rl.count())
    total = joined.window(rl.tumbling("2m")).agg(rl.count())
    lefts = ls.window(rl.tumbling("1m")).agg(rl.count())
    a, b, c = rl.run(per_user, total, lefts, progress=False)
    assert reads == {"left": len(batches(left, 7)), "right": len(batches(right, 7))}
    matched = pl.DataFrame(duck_interval(left, right, -10, 20, "left"), schema=["id", "rid"], orient="row")
    assert a.output["count"].sum() == b.output["count"].sum() == matched.height
    assert dict(a.output.group_by("user").agg(pl.col("count").sum()).rows()) == \
        dict(matched.join(left, on="id").group_by("user").agg(pl.len()).rows())
    assert c.output["count"].sum() == left.height


@every_way
def test_a_window_join_of_two_windowed_queries_equals_polars_join_of_their_outputs(size, interleave, monkeypatch):
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    left = events(200, 3, seed=60, disorder_s=40)
    right = events(200, 3, seed=61, disorder_s=40, name="rid")
    a = rl.stream(batches(left, size), time="t", watermark="40s").window(rl.tumbling("1m"), by="user") \
        .agg(rl.count().alias("n"))
    b = rl.stream(batches(right, size), time="t", watermark="40s").window(rl.tumbling("1m"), by="user") \
        .agg(rl.count().alias("m"))
    expected = a.collect(progress=False).join(b.collect(progress=False), on=["user", "window_start"], how="left")
    run = (rl.stream(a, time="window_start")
           .join_interval(rl.stream(b, time="window_start"), on="user", lower="0s", upper="0s", how="left")
           .run(progress=False))
    cols = ("user", "window_start", "n", "m")
    assert pairs(run.output, *cols) == pairs(expected, *cols)
    assert run.late.height == 0


def test_a_joined_stream_through_head_schema_iter_explain_and_a_parquet_sink(tmp_path):
    left = events(80, 3, seed=62)
    right = events(80, 3, seed=63, name="rid")

    def joined() -> rl.Stream:
        return (rl.stream(batches(left, 7), time="t", watermark="30s")
                .join_interval(rl.stream(batches(right, 7), time="t", watermark="30s"), on="user",
                               lower="-10s", upper="20s", how="left"))

    whole = joined().collect(progress=False)
    assert pairs(whole) == duck_interval(left, right, -10, 20, "left")
    head = joined().head(5)
    assert head.height == 5 and head.schema == whole.schema == joined().schema
    assert set(head.rows()) <= set(whole.rows())
    q = joined().window(rl.tumbling("1m"), by="user").agg(rl.count())
    expected = q.collect(progress=False).sort("user", "window_start")
    assert pl.concat([o for o in q.iter() if o.height]).sort("user", "window_start").equals(expected)
    assert "join_interval(" in q.explain() and "['user']" in q.explain()
    sink = q.to_parquet(tmp_path, every="1d")
    written = pl.read_parquet(tmp_path / "**" / "*.parquet", hive_partitioning=False)
    assert written.select(expected.columns).sort("user", "window_start").equals(expected)
    assert sink.metrics["join_rows_in_left"] == left.height


def test_a_started_join_gives_the_rows_a_run_gives():
    left = events(100, 3, seed=64)
    right = events(100, 3, seed=65, name="rid")

    def query() -> Any:
        return (rl.stream(batches(left, 7), time="t", watermark="30s")
                .join_interval(rl.stream(batches(right, 7), time="t", watermark="30s"), on="user",
                               lower="-10s", upper="20s", how="left")
                .window(rl.tumbling("1m"), by="user").agg(rl.count()))

    handle = query().start()
    got = handle.wait(60).output
    assert got.sort("user", "window_start").equals(query().collect(progress=False).sort("user", "window_start"))


def test_a_join_of_joined_streams_in_order_gives_every_match():
    """Three inputs, read one after the other, in event-time order on every side (where the
    first join's rows come out in time order): the same rows as brute force."""
    def rows(name: str, seed: int) -> pl.DataFrame:
        df = events(40, 3, seed=seed, name=name, disorder_s=0)
        return df
    left, right, third = rows("id", 66), rows("rid", 67), rows("zid", 68)
    # An inner join whose right side is ahead of the left emits in left order.
    first = (rl.stream(left, time="t", watermark="30s")
             .join_asof(rl.stream(right, time="t", watermark="30s"), by="user"))
    run = (first.join_asof(rl.stream(third, time="t", watermark="30s"), by="user", suffix="_z")
           .run(progress=False))
    expected = (left.join_asof(right, on="t", by="user", strategy="backward")
                .join_asof(third, on="t", by="user", strategy="backward", suffix="_z"))
    assert pairs(run.output, "id", "rid", "zid") == pairs(expected, "id", "rid", "zid")


def test_errors_of_two_stream_joins_name_what_is_wrong():
    df = events(5, 2, seed=1)
    s = rl.stream(df, time="t")
    o = rl.stream(events(5, 2, seed=2, name="rid"), time="t")
    clocked = rl.stream(df, time=rl.processing_time())
    cases = [
        (lambda: s.join_interval(s, on="user", lower="0s", upper="1s"), "joined with itself"),
        (lambda: s.join_asof(s, by="user"), "joined with itself"),
        (lambda: clocked.join_interval(o, on="user", lower="0s", upper="1s"), "event times on both sides"),
        (lambda: s.join_asof(clocked, by="user"), "event times on both sides"),
        (lambda: s.join_interval(df, on="user", lower="0s", upper="1s"), "joins two streams; got DataFrame"),
        (lambda: s.join_interval(o.window(rl.tumbling("1m")).agg(rl.count()), on="user", lower="0s",
                                 upper="1s"), "joins two streams; got Query"),
        (lambda: s.join(o, on="user"), "takes a table"),
        (lambda: s.join_interval(o, on="user", lower="0s", upper="1s", how="outer"), "'inner' or 'left'"),
        (lambda: s.join_interval(o, lower="0s", upper="1s"), "needs its keys"),
        (lambda: s.join_interval(o, on="user", lower="soon", upper="1s"), "lower: bad duration 'soon'"),
        (lambda: s.join_asof(o, on="other", by="user"), "leave on= out"),
        (lambda: s.join_interval(o, on="user", lower="0s", upper="1s", suffix=""), "suffix"),
    ]
    for build, message in cases:
        with pytest.raises(rl.ConfigError, match=message):
            build()
    at_run = [
        (lambda: s.join_interval(o, on="user", lower=0, upper=5), rl.ConfigError, "only a duration for an integer"),
        (lambda: s.join_interval(o, on="user", lower="0s", upper="1mo"), rl.ConfigError, "calendar duration"),
        (lambda: s.join_asof(o, by="user", tolerance="-1s"), rl.ConfigError, "must not be negative"),
        (lambda: s.join_interval(o, left_on="user", right_on="nope", lower="0s", upper="1s"), rl.SchemaError,
         '"nope" is not a column of the right stream'),
        (lambda: s.join_interval(rl.stream(df.with_columns(t=pl.col("id")), time="t"), on="user", lower="0s",
                                 upper="1s"), rl.SchemaError, "both must be datetimes or both integers"),
        (lambda: s.with_columns(t_right=pl.lit(1)).join_interval(o, on="user", lower="0s", upper="1s"),
         rl.SchemaError, "give another suffix="),
    ]
    for build, error, message in at_run:
        with pytest.raises(error, match=message):
            build().collect(progress=False)


def test_integer_keys_beyond_the_other_sides_range_match_nothing():
    left = pl.DataFrame({"t": [1, 2], "k": [-1, 5], "id": [1, 2]})
    right = pl.DataFrame({"t": [1, 2], "k": pl.Series([2**64 - 1, 5], dtype=pl.UInt64), "rid": [10, 20]})
    got = (rl.stream(left, time="t").join_interval(rl.stream(right, time="t"), on="k", lower=-5, upper=5,
                                                   how="left").collect(progress=False))
    assert pairs(got) == [(1, None), (2, 20)]


def test_every_interleaving_reads_all_of_both_inputs_whatever_their_lengths():
    left = events(3, 2, seed=69)
    right = events(50, 2, seed=70, name="rid")
    for interleave, size in itertools.product(INTERLEAVINGS, SIZES):
        saved = driver.INTERLEAVE
        driver.INTERLEAVE = interleave
        try:
            run = (rl.stream(batches(left, size), time="t", watermark="30s")
                   .join_interval(rl.stream(batches(right, size), time="t", watermark="30s"), on="user",
                                  lower="-100s", upper="100s", how="left").run(progress=False))
        finally:
            driver.INTERLEAVE = saved
        assert pairs(run.output) == duck_interval(left, right, -100, 100, "left"), (interleave, size)
        assert run.metrics["join_rows_in_right"] == right.height
