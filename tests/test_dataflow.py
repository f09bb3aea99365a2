"""Issue 14: the plan in Rust (explain), fan-out (one read, many queries) and chaining
(a query's output streamed into another, its watermark carried along)."""
from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest
from conftest import batches

import rillet as rl

SIZES = pytest.mark.parametrize("size", [1, 7, None])


def _events(n: int = 500, seed: int = 3) -> pl.DataFrame:
    """Events over about 20 minutes, a little out of order, with keys and values."""
    import random

    rnd = random.Random(seed)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ts = sorted(base + dt.timedelta(seconds=rnd.randint(0, 1200)) for _ in range(n))
    # a bounded shuffle: each row at most 5 seconds before the previous ones
    ts = [t - dt.timedelta(seconds=rnd.randint(0, 5)) for t in ts]
    return pl.DataFrame({
        "ts": ts,
        "api": [rnd.choice(["Get", "Put", "List", "Delete"]) for _ in range(n)],
        "bytes": [rnd.randint(0, 1000) for _ in range(n)],
        "ok": [rnd.random() < 0.8 for _ in range(n)],
    }).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def _output_schema(text: str) -> dict[str, str]:
    lines = text.split("output\n", 1)[1].splitlines()
    return dict(re.match(r"\s+(\S+): (.+)$", ln).groups() for ln in lines if ln.strip())  # type: ignore[union-attr]


# -- explain --------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [rl.tumbling("1m"), rl.hopping("5m", "1m"), rl.cumulative("10m", "2m"),
                                  rl.session("30s"), rl.sliding("1m"), rl.tumbling("1d", tz="Europe/Paris")],
                         ids=repr)
@pytest.mark.parametrize("emit", ["final", "amend", "changelog"])
def test_explain_names_every_part_and_its_output_schema_is_the_runs(spec: rl.WindowSpec, emit: str) -> None:
    df = _events(50)
    if spec.kind == "sliding" and emit != "final":
        pytest.skip("sliding windows emit final rows only")
    q = (rl.stream(df, time="ts", watermark="5s").filter(pl.col("bytes") >= 0)
         .window(spec, by="api", emit=emit, lateness="10s")
         .agg(rl.count(), rl.sum("bytes"), rl.max("ts").alias("last"), rl.top_k("api", 2),
              rl.mean("bytes", where=pl.col("ok")).alias("ok_mean")))
    text = q.explain()
    for part in ("polars DataFrame (50 rows", "filter(", "event time  ts", "'5s'", spec.kind,
                 "by          api", emit, "lateness '10s'", "count = count()", "bytes_sum = sum('bytes')",
                 "where=", "last = max('ts')"):
        assert part in text, (part, text)
    out = q.collect()
    assert list(_output_schema(text)) == out.columns
    # each type as polars names it, e.g. Datetime(time_unit='us', time_zone='UTC')
    for name, dtype in out.schema.items():
        shown = _output_schema(text)[name]
        assert shown.split("(")[0] == repr(dtype).split("(")[0] or shown.startswith(str(dtype).split("(")[0]), (
            name, shown, dtype)


def test_explain_before_any_row_says_the_output_is_known_once_a_batch_is_read() -> None:
    q = rl.stream([], time="t").window(rl.tumbling(10)).agg(rl.count())
    text = q.explain()
    assert "tumbling(10)" in text and "known once the first batch is read" in text


def test_explain_shows_a_type_error_as_the_run_would() -> None:
    q = rl.stream(pl.DataFrame({"t": [1], "s": ["x"]}), time="t").window(rl.tumbling(10)).agg(rl.min("s"))
    with pytest.raises(rl.SchemaError, match="needs a numeric or temporal column"):
        q.explain()
    with pytest.raises(rl.SchemaError, match="needs a numeric or temporal column"):
        q.collect()


@SIZES
def test_a_plan_types_inputs_as_before_integer_times_and_small_ints(size: int | None) -> None:
    df = pl.DataFrame({"t": pl.Series([1, 5, 12, 3, 25], dtype=pl.Int16),
                       "v": pl.Series([1, 2, 3, 4, 5], dtype=pl.Int8)})
    out = rl.stream(batches(df, size), time="t", watermark=20).window(rl.tumbling(10)).agg(
        rl.min("v"), rl.sum("v")).collect()
    expected = (df.with_columns((pl.col("t").cast(pl.Int64) // 10 * 10).alias("window_start"))
                .group_by("window_start").agg(pl.col("v").min().alias("v_min"), pl.col("v").cast(pl.Int64).sum()
                                              .alias("v_sum")).sort("window_start"))
    assert out.schema["v_min"] == pl.Int8
    assert out.sort("window_start").select("window_start", "v_min", "v_sum").rows() == expected.rows()


# -- fan-out: one read, many queries ----------------------------------------------------------
class Counting:
    """An iterable of micro-batches that counts how often it is read and how many batches
    it hands out."""

    def __init__(self, df: pl.DataFrame, size: int | None) -> None:
        self.parts = list(batches(df, size))
        self.reads = 0
        self.batches = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.reads += 1
        for p in self.parts:
            self.batches += 1
            yield p


def _by_minute(df: pl.DataFrame, every: str, where: pl.Expr | None = None) -> pl.DataFrame:
    """The oracle: polars' group_by over truncated times."""
    if where is not None:
        df = df.filter(where)
    return (df.with_columns(pl.col("ts").dt.truncate(every).alias("window_start"))
            .group_by("api", "window_start").agg(pl.len().cast(pl.Int64).alias("count"),
                                                  pl.col("bytes").sum().alias("bytes_sum"))
            .sort("api", "window_start"))


@SIZES
def test_run_reads_the_source_once_for_every_query_and_each_equals_its_own_run(size: int | None) -> None:
    df = _events()
    src = Counting(df, size)
    s = rl.stream(src, time="ts", watermark="10s")
    q1 = s.window(rl.tumbling("1m"), by="api").agg(rl.count(), rl.sum("bytes"))
    q2 = s.filter(pl.col("ok")).window(rl.tumbling("5m"), by="api").agg(rl.count(), rl.sum("bytes"))
    q3 = rl.stream(src, time="ts", watermark="1h").window(rl.hopping("10m", "5m")).agg(rl.max("bytes"))
    r1, r2, r3 = rl.run(q1, q2, q3)
    assert src.reads == 1 and src.batches == len(src.parts)
    cols = ["api", "window_start", "count", "bytes_sum"]
    assert r1.output.select(cols).sort("api", "window_start").rows() == _by_minute(df, "1m").select(cols).rows()
    assert (r2.output.select(cols).sort("api", "window_start").rows()
            == _by_minute(df, "5m", pl.col("ok")).select(cols).rows())
    # each query alone gives what it gave in the shared run
    for q, r in ((q1, r1), (q2, r2), (q3, r3)):
        alone = q.run()
        assert alone.output.rows() == r.output.rows()
        assert alone.late.rows() == r.late.rows()
        assert alone.metrics["rows_accepted"] == r.metrics["rows_accepted"]
    assert r2.metrics["rows_filtered"] == df.filter(~pl.col("ok")).height
    assert r1.metrics["rows_in"] == r2.metrics["rows_in"] == r3.metrics["rows_in"] == df.height


@SIZES
def test_each_query_of_a_run_keeps_its_own_late_rows_and_metrics(size: int | None) -> None:
    df = _events(300)
    src = Counting(df, size)
    tight = rl.stream(src, time="ts", watermark=0).window(rl.tumbling("10s")).agg(rl.count())
    loose = rl.stream(src, time="ts", watermark="1m").window(rl.tumbling("10s")).agg(rl.count())
    rt, rl_ = rl.run(tight, loose)
    assert src.reads == 1
    assert rt.late.height > 0 and rl_.late.height == 0
    # nothing lost: every row is counted in a window or kept as late
    assert rt.output["count"].sum() + rt.late.height == df.height
    assert rl_.output["count"].sum() == df.height
    assert rt.metrics["rows_late"] == rt.late.height


def test_run_refuses_queries_over_different_sources_naming_the_fix() -> None:
    a = rl.stream(pl.DataFrame({"t": [1]}), time="t").window(rl.tumbling(10)).agg(rl.count())
    b = rl.stream(pl.DataFrame({"t": [1]}), time="t").window(rl.tumbling(10)).agg(rl.count())
    with pytest.raises(rl.ConfigError, match="2 different sources"):
        rl.run(a, b)
    with pytest.raises(rl.ConfigError, match="take queries"):
        rl.run(a, "b")  # type: ignore[arg-type]
    with pytest.raises(rl.ConfigError, match="at least one query"):
        rl.run()


def test_start_runs_queries_in_one_background_read() -> None:
    df = _events(200)
    src = Counting(df, 7)
    s = rl.stream(src, time="ts", watermark="10s")
    q1 = s.window(rl.tumbling("1m"), by="api").agg(rl.count(), rl.sum("bytes"))
    q2 = s.window(rl.tumbling("1m")).agg(rl.count())
    h1, h2 = rl.start(q1, q2)
    r1, r2 = h1.wait(30), h2.wait(30)
    assert src.reads == 1
    cols = ["api", "window_start", "count", "bytes_sum"]
    assert r1.output.select(cols).sort("api", "window_start").rows() == _by_minute(df, "1m").select(cols).rows()
    assert r2.output["count"].sum() == df.height
    assert h1.state == h2.state == "done"


# -- chaining: a query's output into another, its watermark carried ------------------------------
def _per_minute(src: object) -> rl.Query:
    return (rl.stream(src, time="ts", watermark="10s")
            .window(rl.tumbling("1m"), by="api").agg(rl.count(), rl.sum("bytes")))


@SIZES
def test_chained_minute_counts_into_five_minute_windows_equal_the_direct_five_minute_counts(
        size: int | None) -> None:
    df = _events(800)
    minutes = _per_minute(batches(df, size))
    five = (rl.stream(minutes, time="window_start").window(rl.tumbling("5m"), by="api")
            .agg(rl.sum("count").alias("count"), rl.sum("bytes_sum").alias("bytes_sum")))
    direct = (rl.stream(batches(df, size), time="ts", watermark="10s")
              .window(rl.tumbling("5m"), by="api").agg(rl.count(), rl.sum("bytes")))
    chained, alone = five.run(), direct.run()
    cols = ["api", "window_start", "window_end", "count", "bytes_sum"]
    assert chained.output.select(cols).sort("api", "window_start").rows() == \
        alone.output.select(cols).sort("api", "window_start").rows()
    # and against polars
    assert chained.output.select("api", "window_start", "count", "bytes_sum").sort("api", "window_start").rows() \
        == _by_minute(df, "5m").select("api", "window_start", "count", "bytes_sum").rows()
    assert chained.late.height == 0
    assert chained.metrics["rows_in"] == minutes.run().output.height  # one row per minute and api


@pytest.mark.parametrize("size", [1, 7])
def test_chained_windows_close_as_the_input_advances_not_only_at_its_end(size: int) -> None:
    df = _events(800)
    src = Counting(df, size)
    five = (rl.stream(_per_minute(src), time="window_end").window(rl.tumbling("5m"))
            .agg(rl.sum("count").alias("count")))
    pulled_at_first_output = None
    total = 0
    for out in five.iter():
        if pulled_at_first_output is None:
            pulled_at_first_output = src.batches
        total += out["count"].sum()
    assert src.reads == 1
    assert pulled_at_first_output is not None and pulled_at_first_output < len(src.parts) / 2, (
        pulled_at_first_output, len(src.parts))
    assert total == df.height


def test_running_both_ends_of_a_chain_reads_the_source_once() -> None:
    df = _events(400)
    src = Counting(df, 7)
    minutes = _per_minute(src)
    hours = rl.stream(minutes, time="window_start").window(rl.tumbling("1h")).agg(rl.sum("count").alias("n"))
    rm, rh = rl.run(minutes, hours)
    assert src.reads == 1
    assert rm.output["count"].sum() == rh.output["n"].sum() == df.height
    assert rm.output.rows() == _per_minute(Counting(df, 7)).collect().rows()


@pytest.mark.parametrize("spec", [rl.session("30s"), rl.hopping("2m", "1m")], ids=repr)
@SIZES
def test_a_chained_stream_over_sessions_or_hops_loses_no_row(spec: rl.WindowSpec, size: int | None) -> None:
    df = _events(300)
    up = rl.stream(batches(df, size), time="ts", watermark="10s").window(spec, by="api").agg(rl.count())
    for col in ("window_start", "window_end"):
        down = rl.stream(up, time=col).window(rl.tumbling("10m"), by="api").agg(rl.sum("count").alias("n"))
        r = down.run()
        assert r.late.height == 0, col
        assert r.output["n"].sum() == up.collect()["count"].sum()


def test_a_chained_stream_over_sliding_windows_uses_the_row_time() -> None:
    df = _events(200)
    up = rl.stream(batches(df, 7), time="ts", watermark="10s").window(rl.sliding("1m"), by="api").agg(rl.count())
    down = rl.stream(up, time="ts").window(rl.tumbling("5m")).agg(rl.count().alias("rows"))
    r = down.run()
    assert r.late.height == 0 and r.output["rows"].sum() == df.height


def test_a_chained_stream_must_take_a_window_bound_as_its_time() -> None:
    up = rl.stream(pl.DataFrame({"t": [1, 2]}), time="t").window(rl.tumbling(10)).agg(rl.count())
    down = rl.stream(up, time="count").window(rl.tumbling(10)).agg(rl.count())
    with pytest.raises(rl.ConfigError, match="'window_start' or 'window_end'"):
        down.collect()


def test_explain_of_a_chained_query_shows_the_carried_watermark_and_its_columns() -> None:
    minutes = _per_minute(_events(50))
    five = rl.stream(minutes, time="window_start").window(rl.tumbling("5m")).agg(rl.sum("count"))
    text = five.explain()
    assert "carried from the upstream query" in text
    assert "the output of" in text and "count_sum: Int64" in text


# -- found in review ----------------------------------------------------------------------------
def test_a_week_offset_near_the_64_bit_limit_never_wraps_into_other_windows() -> None:
    # 106750 days are 15250 whole weeks: the windows are those of offset 0, or a ConfigError says why not.
    df = pl.DataFrame({"t": [dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 9)]}).with_columns(
        pl.col("t").dt.cast_time_unit("ns"))
    plain = rl.stream(df, time="t").window(rl.tumbling("1w")).agg(rl.count()).collect()
    try:
        shifted = rl.stream(df, time="t").window(rl.tumbling("1w", offset="106750d")).agg(rl.count()).collect()
    except rl.ConfigError:
        return
    # oracle: polars' own weekly truncation (Mondays)
    want = df.group_by(pl.col("t").dt.truncate("1w").alias("window_start")).len().sort("window_start")
    assert shifted["window_start"].to_list() == want["window_start"].to_list() == plain["window_start"].to_list()


@SIZES
def test_a_source_error_in_rl_run_carries_every_querys_run(size: int | None) -> None:
    df = pl.DataFrame({"t": list(range(0, 40, 3)), "k": ["a", "b"] * 7})

    def gen():  # type: ignore[no-untyped-def]
        yield from batches(df, size)
        raise rl.SourceError("the next file is truncated")

    s = rl.stream(gen(), time="t", watermark=0)
    q1 = s.window(rl.tumbling(10)).agg(rl.count())
    q2 = s.window(rl.tumbling(5), by="k").agg(rl.count())
    with pytest.raises(rl.SourceError) as caught:
        rl.run(q1, q2)
    runs = caught.value.runs  # as Interrupted.runs
    # oracle: each query alone over the rows read (interrupted: windows the watermark closed)
    for q_runs, make in zip(runs, (lambda st: st.window(rl.tumbling(10)).agg(rl.count()),
                                   lambda st: st.window(rl.tumbling(5), by="k").agg(rl.count()))):
        alone = make(rl.stream(df, time="t", watermark=0, flush=False)).collect()
        assert q_runs.output.sort(q_runs.output.columns).equals(alone.sort(alone.columns))


def test_queries_of_one_read_see_one_processing_time_per_row() -> None:
    frames = [pl.DataFrame({"x": list(range(20_000))}) for _ in range(4)]
    s = rl.stream(frames, time=rl.processing_time())
    r1, r2 = rl.run(s.window(rl.sliding("1h")).agg(rl.count()), s.window(rl.sliding("1h")).agg(rl.count()))
    assert r1.output["processing_time"].equals(r2.output["processing_time"])


def test_a_timedelta_too_long_for_a_plan_names_the_option() -> None:
    with pytest.raises(rl.ConfigError, match="tumbling window every: .* out of range"):
        rl.stream(pl.DataFrame({"t": [1]}), time="t").window(rl.tumbling(dt.timedelta.max)).agg(rl.count())


def test_the_progress_of_a_chained_query_counts_the_sources_rows(capsys: pytest.CaptureFixture[str]) -> None:
    df = _events(300)
    minutes = _per_minute(df)
    five = rl.stream(minutes, time="window_start").window(rl.tumbling("5m")).agg(rl.sum("count"))
    five.run(progress=True)
    err = capsys.readouterr().err
    assert "300" in err, err


@SIZES
def test_a_late_row_raised_in_one_query_of_a_run_carries_every_querys_run(size: int | None) -> None:
    df = pl.DataFrame({"t": [1, 2, 15, 3, 25], "k": ["a", "b", "a", "b", "a"]})
    s = rl.stream(batches(df, size), time="t", watermark=0)
    strict = s.window(rl.tumbling(10), late="raise").agg(rl.count())
    lenient = s.window(rl.tumbling(10), by="k").agg(rl.count())
    with pytest.raises(rl.LateDataError) as caught:
        rl.run(lenient, strict)
    runs = caught.value.runs  # type: ignore[attr-defined]
    assert len(runs) == 2 and caught.value.run is runs[0]  # type: ignore[attr-defined]
    # the lenient query saw the rows up to the late one (t=3): window [0, 10) closed at t=15
    assert runs[0].metrics["rows_in"] >= 3
    assert runs[0].interrupted and runs[1].interrupted
