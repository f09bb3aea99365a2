"""Issue 15: streaming SQL. Every supported construct, checked twice: the SQL query's output
equals (1) the same query built with the Python API (its columns selected and renamed the
same way), row for row, and (2) an independent recomputation in DuckDB (or brute force)
over the same rows, at micro-batches of 1, 7 and the whole frame. The event time is
declared (``rl.stream(..., time=, watermark=)``) and the disorder is bounded under the
watermark, so nothing is late unless a test says so."""
from __future__ import annotations

import datetime as dt
import random
from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rillet as rl

SIZES = pytest.mark.parametrize("size", [1, 7, None])
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TICKERS = ["AAPL", "AMZN", "MSFT", "NVDA"]


def _trades(n: int = 400, seed: int = 7) -> pl.DataFrame:
    """Trades over about 20 minutes, at most 5 s out of order (the watermark is 10 s), with
    a ticker, a price (all distinct, so a Top-N has no ties), a quantity and a second time
    column ``ev`` up to 5 minutes before ``ts`` (an event time other than the stream's)."""
    rnd = random.Random(seed)
    ts = sorted(BASE + dt.timedelta(milliseconds=rnd.randint(0, 1_200_000)) for _ in range(n))
    ts = [t - dt.timedelta(milliseconds=rnd.randint(0, 5000)) for t in ts]
    prices = rnd.sample(range(100, 100_000), n)
    return pl.DataFrame({
        "ts": ts,
        "ticker": [rnd.choice(TICKERS) for _ in range(n)],
        "price": [p / 100 for p in prices],
        "qty": [rnd.randint(1, 20) for _ in range(n)],
        "ev": [t - dt.timedelta(seconds=rnd.randint(0, 300)) for t in ts],
    }).with_columns(pl.col("ts", "ev").dt.cast_time_unit("us"))


def _stream(df: pl.DataFrame, size: int | None, watermark: str = "10s") -> rl.Stream:
    return rl.stream(batches(df, size), time="ts", watermark=watermark)


def _naive(df: pl.DataFrame) -> pl.DataFrame:
    """Zoned datetimes as naive UTC, for DuckDB."""
    return df.with_columns(pl.col(c).dt.replace_time_zone(None)
                           for c, t in df.schema.items() if isinstance(t, pl.Datetime) and t.time_zone)


def duck(query: str, **frames: pl.DataFrame) -> pl.DataFrame:
    """``query`` run by DuckDB over ``frames`` (naive UTC times); its times back in UTC."""
    con = duckdb.connect()
    for name, df in frames.items():
        con.register(name, _naive(df))
    out = con.sql(query).pl()
    return out.with_columns(pl.col(c).dt.replace_time_zone("UTC").dt.cast_time_unit("us")
                            for c, t in out.schema.items() if isinstance(t, pl.Datetime))


def assert_same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The same rows in any order (the oracle's types cast to rillet's), floats to 1e-9."""
    assert got.columns == want.columns, (got.columns, want.columns)
    assert got.height > 0
    assert_frame_equal(got, want.cast(dict(got.schema)), check_row_order=False, rel_tol=1e-9, abs_tol=1e-9)


def bucket(col: str, seconds: int) -> str:
    """DuckDB: ``col`` truncated to ``seconds``, epoch-aligned (STEP/FLOOR/TUMBLE)."""
    return f"time_bucket(INTERVAL '{seconds} seconds', {col}, TIMESTAMP '1970-01-01')"


# -- Kinesis: STEP / FLOOR in GROUP BY --------------------------------------------------------
@SIZES
def test_kinesis_step_on_rowtime_with_a_key_and_min_max_equals_python_and_duckdb(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT STREAM ticker, MIN(price) AS Min_Price, MAX(price) AS Max_Price
        FROM "SOURCE_SQL_STREAM_001"
        GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND)""",
               SOURCE_SQL_STREAM_001=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).window(rl.tumbling("60s"), by="ticker")
          .agg(rl.min("price").alias("Min_Price"), rl.max("price").alias("Max_Price"))
          .collect().select("ticker", "Min_Price", "Max_Price"))
    assert out.equals(py)
    want = duck(f"""SELECT ticker, MIN(price) AS Min_Price, MAX(price) AS Max_Price FROM t
                    GROUP BY ticker, {bucket('ts', 60)}""", t=df)
    assert_same_rows(out, want)


@SIZES
def test_kinesis_step_on_rowtime_and_on_an_event_column_makes_the_second_a_truncated_key(
        size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT STREAM STEP("SOURCE_SQL_STREAM_001".ev BY INTERVAL '60' SECOND) AS EVENT_TIME,
               ticker, MIN(price) AS min_price, MAX(price) AS max_price
        FROM "SOURCE_SQL_STREAM_001"
        GROUP BY ticker,
                 STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND),
                 STEP("SOURCE_SQL_STREAM_001".ev BY INTERVAL '60' SECOND)""",
               SOURCE_SQL_STREAM_001=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).with_columns(pl.col("ev").dt.truncate("60s").alias("EVENT_TIME"))
          .window(rl.tumbling("60s"), by=["ticker", "EVENT_TIME"])
          .agg(rl.min("price").alias("min_price"), rl.max("price").alias("max_price"))
          .collect().select("EVENT_TIME", "ticker", "min_price", "max_price"))
    assert out.equals(py)
    want = duck(f"""SELECT {bucket('ev', 60)} AS EVENT_TIME, ticker, MIN(price) AS min_price,
                           MAX(price) AS max_price
                    FROM t GROUP BY ticker, {bucket('ts', 60)}, {bucket('ev', 60)}""", t=df)
    assert_same_rows(out, want)
    # the event-time key really splits the ROWTIME windows (the partial results of KDA)
    assert out.height > out.select("ticker").n_unique() * 21


@SIZES
def test_kinesis_floor_to_minute_is_a_one_minute_window_with_its_start_selected(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT STREAM ticker, FLOOR(ts TO MINUTE) AS minute, COUNT(*) AS trades, SUM(qty) AS volume
        FROM trades GROUP BY ticker, FLOOR(ts TO MINUTE)""", trades=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).window(rl.tumbling("1m"), by="ticker")
          .agg(rl.count().alias("trades"), rl.sum("qty").alias("volume"))
          .collect().select("ticker", pl.col("window_start").alias("minute"), "trades", "volume"))
    assert out.equals(py)
    want = duck(f"""SELECT ticker, {bucket('ts', 60)} AS minute, COUNT(*) AS trades, SUM(qty) AS volume
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)


@SIZES
def test_where_having_and_expressions_over_aggregates(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT STREAM ticker, SUM(qty) AS volume, SUM(price * qty) / SUM(qty) AS vwap,
               MAX(price) - MIN(price) AS spread, COUNT(*) AS n
        FROM s
        WHERE price > 100 AND ticker <> 'NVDA'
        GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '2' MINUTE)
        HAVING COUNT(*) >= 5 AND SUM(qty) > 40""", s=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).filter((pl.col("price") > 100) & (pl.col("ticker") != "NVDA"))
          .with_columns((pl.col("price") * pl.col("qty")).alias("pq"))
          .window(rl.tumbling("2m"), by="ticker")
          .agg(rl.sum("qty"), rl.sum("pq"), rl.max("price"), rl.min("price"), rl.count())
          .collect()
          .filter((pl.col("count") >= 5) & (pl.col("qty_sum") > 40))
          .select("ticker", pl.col("qty_sum").alias("volume"),
                  (pl.col("pq_sum") / pl.col("qty_sum")).alias("vwap"),
                  (pl.col("price_max") - pl.col("price_min")).alias("spread"), pl.col("count").alias("n")))
    assert_frame_equal(out, py, rel_tol=1e-12)
    want = duck(f"""SELECT ticker, SUM(qty) AS volume, SUM(price * qty) / SUM(qty) AS vwap,
                           MAX(price) - MIN(price) AS spread, COUNT(*) AS n
                    FROM t WHERE price > 100 AND ticker <> 'NVDA'
                    GROUP BY ticker, {bucket('ts', 120)}
                    HAVING COUNT(*) >= 5 AND SUM(qty) > 40""", t=df)
    assert_same_rows(out, want)
    # HAVING removed some groups and kept others
    groups = duck(f"SELECT 1 FROM t WHERE price > 100 AND ticker <> 'NVDA' GROUP BY ticker, {bucket('ts', 120)}",
                  t=df).height
    assert 0 < out.height < groups


@SIZES
def test_count_distinct_aggregate_filter_and_default_names(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT STREAM ticker, COUNT(DISTINCT qty) AS qtys, COUNT(*) FILTER (WHERE price > 500) AS big,
               SUM(qty), AVG(price), COUNT(*), SUM(qty) FILTER (WHERE qty > 10) AS large_volume
        FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)""", s=_stream(df, size))
    out = q.collect()
    assert out.columns == ["ticker", "qtys", "big", "qty_sum", "price_mean", "count", "large_volume"]
    py = (_stream(df, size).window(rl.tumbling("1m"), by="ticker")
          .agg(rl.count_distinct("qty").alias("qtys"), rl.count(where=pl.col("price") > 500).alias("big"),
               rl.sum("qty"), rl.mean("price"), rl.count(),
               rl.sum("qty", where=pl.col("qty") > 10).alias("large_volume"))
          .collect().drop("window_start", "window_end"))
    assert out.equals(py)
    want = duck(f"""SELECT ticker, COUNT(DISTINCT qty) AS qtys, COUNT(*) FILTER (WHERE price > 500) AS big,
                           SUM(qty) AS qty_sum, AVG(price) AS price_mean, COUNT(*) AS count,
                           SUM(qty) FILTER (WHERE qty > 10) AS large_volume
                    FROM t GROUP BY ticker, {bucket('ts', 60)}""", t=df)
    assert_same_rows(out, want)


@SIZES
def test_statistical_and_positional_aggregates_with_nulls_equal_duckdb(size: int | None) -> None:
    df = _trades().with_columns(pl.when(pl.col("qty") % 4 == 0).then(None).otherwise(pl.col("price") - 1)
                                .alias("bid"))
    q = rl.sql("""SELECT STREAM ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE) AS w, COUNT(bid) AS bids,
                         STDDEV(bid) AS sd, STDDEV_POP(price) AS sdp, VAR_SAMP(price) AS vs, VARIANCE(qty) AS vq,
                         VAR_POP(bid) AS vp, FIRST_VALUE(price) AS fv, LAST_VALUE(bid) AS lv,
                         APPROX_COUNT_DISTINCT(qty) AS aq, AVG(bid) AS ab, SUM(bid) AS sb, MIN(bid) AS lo
                  FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).window(rl.tumbling("5m"), by="ticker")
          .agg(rl.count("bid"), rl.std("bid"), rl.std("price", ddof=0), rl.var("price"), rl.var("qty"),
               rl.var("bid", ddof=0), rl.first("price"), rl.last("bid"), rl.approx_count_distinct("qty"),
               rl.mean("bid"), rl.sum("bid"), rl.min("bid"))
          .collect().drop("window_end"))
    py.columns = out.columns
    assert out.equals(py)
    want = duck(f"""SELECT ticker, {bucket('ts', 300)} AS w, COUNT(bid) AS bids, STDDEV_SAMP(bid) AS sd,
                           STDDEV_POP(price) AS sdp, VAR_SAMP(price) AS vs, VAR_SAMP(qty) AS vq, VAR_POP(bid) AS vp,
                           arg_min(price, ts) AS fv, arg_max(bid, ts) FILTER (WHERE bid IS NOT NULL) AS lv,
                           COUNT(DISTINCT qty) AS aq, AVG(bid) AS ab, SUM(bid) AS sb, MIN(bid) AS lo
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)
    assert out["bids"].sum() < df.height  # the nulls were there, and skipped


def test_percentile_disc_is_the_sql_standard_discrete_percentile() -> None:
    df = _trades()
    q = rl.sql("""SELECT STREAM ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE) AS w,
                         PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY qty) AS q50,
                         PERCENTILE_DISC(0.9) WITHIN GROUP (ORDER BY price) AS p90
                  FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, 7))
    want = duck(f"""SELECT ticker, {bucket('ts', 300)} AS w, PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY qty) AS q50,
                           PERCENTILE_DISC(0.9) WITHIN GROUP (ORDER BY price) AS p90
                    FROM t GROUP BY ALL""", t=df)
    out = q.collect()
    assert out.schema["q50"] == pl.Int64
    assert_same_rows(out, want)


def test_median_of_an_even_count_averages_the_two_middle_values() -> None:
    df = _trades()
    q = rl.sql("""SELECT STREAM ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE) AS w, MEDIAN(price) AS med
                  FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, 7))
    want = duck(f"SELECT ticker, {bucket('ts', 300)} AS w, MEDIAN(price) AS med FROM t GROUP BY ALL", t=df)
    assert_same_rows(q.collect(), want)


@pytest.mark.parametrize("spelling", [
    "STEP(s.ROWTIME BY INTERVAL '1' MINUTE)",
    "STEP(ROWTIME BY INTERVAL '1' MINUTE)",
    'STEP(s."ROWTIME" BY INTERVAL \'1\' MINUTE)',
    "STEP(S.rowtime BY INTERVAL '1' MINUTE)",
    "STEP(s.ROWTIME BY INTERVAL '60' SECOND)",
    "FLOOR(s.ROWTIME TO MINUTE)",
    "STEP(s.ts BY INTERVAL '1' MINUTE)",
])
def test_a_step_on_rowtime_in_the_select_is_the_window_start_however_it_is_spelled(spelling: str) -> None:
    df = _trades(200)
    q = rl.sql(f"""SELECT STREAM {spelling} AS minute, COUNT(*) AS n
                   FROM s GROUP BY STEP(s.ROWTIME BY INTERVAL '1' MINUTE)""", s=_stream(df, 7))
    want = duck(f"SELECT {bucket('ts', 60)} AS minute, COUNT(*) AS n FROM t GROUP BY ALL", t=df)
    assert_same_rows(q.collect(), want)


@SIZES
def test_a_windowed_sub_query_read_by_an_outer_window_and_by_a_stateless_select(size: int | None) -> None:
    df = _trades(400)
    inner = "SELECT STREAM ticker, COUNT(*) AS n FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '1' MINUTE)"
    q = rl.sql(f"""SELECT STREAM ticker, SUM(n) AS n, MAX(n) AS busiest_minute FROM ({inner}) AS m
                   GROUP BY ticker, STEP(m.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, size))
    out = q.collect()
    minutes = _stream(df, size).window(rl.tumbling("1m"), by="ticker").agg(rl.count().alias("n"))
    py = (rl.stream(minutes, time="window_end").window(rl.tumbling("5m"), by="ticker")
          .agg(rl.sum("n").alias("n"), rl.max("n").alias("busiest_minute")).collect()
          .select("ticker", "n", "busiest_minute"))
    assert out.equals(py)
    # the inner rows' ROWTIME is their window's end
    want = duck(f"""SELECT ticker, SUM(n) AS n, MAX(n) AS busiest_minute FROM (
                        SELECT ticker, {bucket('ts', 60)} + INTERVAL 1 MINUTE AS rt, COUNT(*) AS n FROM t GROUP BY ALL)
                    GROUP BY ticker, {bucket('rt', 300)}""", t=df)
    assert_same_rows(out, want)
    # the same with the inner query built in Python and given by name: its ROWTIME is its window_end
    given = rl.sql("""SELECT STREAM ticker, SUM(n) AS n, MAX(n) AS busiest_minute FROM m
                      GROUP BY ticker, STEP(m.ROWTIME BY INTERVAL '5' MINUTE)""", m=minutes)
    assert given.collect().equals(out)
    # a stateless SELECT over it: more steps over what the inner window emits
    q = rl.sql(f"SELECT STREAM ticker, n * 10 AS n10 FROM ({inner}) WHERE n > 5 ORDER BY n10 DESC", s=_stream(df, size))
    want = duck(f"""SELECT ticker, n * 10 AS n10 FROM (SELECT ticker, COUNT(*) AS n FROM t GROUP BY ticker, {bucket('ts', 60)})
                    WHERE n > 5""", t=df)
    assert_same_rows(q.collect(), want)


@pytest.mark.parametrize("spelling", [
    "LOWER(ticker)",
    "lower(ticker)",
    "LOWER(s.ticker)",
])
def test_a_computed_key_in_the_select_matches_the_group_by_whatever_its_spelling(spelling: str) -> None:
    df = _trades(200)
    q = rl.sql(f"""SELECT STREAM {spelling} AS t, COUNT(*) AS n
                   FROM s GROUP BY LOWER(ticker), STEP(s.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, 7))
    want = duck(f"SELECT LOWER(ticker) AS t, COUNT(*) AS n FROM t GROUP BY LOWER(ticker), {bucket('ts', 300)}", t=df)
    assert_same_rows(q.collect(), want)


@st.composite
def _random_trades(draw: st.DrawFn) -> tuple[pl.DataFrame, int | None, int, int, str]:
    """Random rows (integer seconds, some out of order, some null times), a batch size, a
    watermark delay, a window size and a key, for the property test below."""
    n = draw(st.integers(0, 60))
    times = draw(st.lists(st.one_of(st.integers(0, 300), st.none()), min_size=n, max_size=n))
    df = pl.DataFrame({
        "t": pl.Series(times, dtype=pl.Int64),
        "k": pl.Series(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)), dtype=pl.String),
        "x": pl.Series(draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)), dtype=pl.Int64),
    })
    size = draw(st.sampled_from([1, 7, None]))
    return df, size, draw(st.sampled_from([0, 5, 400])), draw(st.sampled_from([10, 30, 60])), draw(
        st.sampled_from(["k", "x > 0"]))


@given(_random_trades())
def test_property_a_sql_step_query_equals_the_python_query_late_and_rejected_rows_included(
        case: tuple[pl.DataFrame, int | None, int, int, str]) -> None:
    df, size, delay, every, key = case
    q = rl.sql(f"""SELECT STREAM {key} AS g, COUNT(*) AS n, SUM(x) AS total, MIN(x) FILTER (WHERE x > 0) AS lo
                   FROM s WHERE x <> 13 GROUP BY {key}, STEP(s.t BY {every}) HAVING COUNT(*) > 1""",
               s=rl.stream(batches(df, size), time="t", watermark=delay))
    got = q.run()
    py = (rl.stream(batches(df, size), time="t", watermark=delay).filter(pl.col("x") != 13)
          .with_columns((pl.col("k") if key == "k" else pl.col("x") > 0).alias("g"))
          .window(rl.tumbling(every), by="g")
          .agg(rl.count().alias("n"), rl.sum("x").alias("total"), rl.min("x", where=pl.col("x") > 0).alias("lo"))
          .run())
    want = py.output.filter(pl.col("n") > 1).select("g", "n", "total", "lo")
    assert got.output.equals(want)
    assert got.late.drop("g", strict=False).equals(py.late.drop("g", strict=False))
    # the WHERE runs before the time is read: a filtered-out row is neither rejected nor late
    assert got.rejected.height == py.rejected.height == df.filter(pl.col("t").is_null() & (pl.col("x") != 13)).height
    if py.late.height == 0 and got.output.height:
        oracle = duck(f"""SELECT {key} AS g, COUNT(*) AS n, SUM(x) AS total, MIN(x) FILTER (WHERE x > 0) AS lo
                          FROM t WHERE x <> 13 AND t IS NOT NULL GROUP BY {key}, t // {every}
                          HAVING COUNT(*) > 1""", t=df)
        assert_same_rows(got.output, oracle)


# -- names ------------------------------------------------------------------------------------
def _step_query(select: str) -> str:
    return f"SELECT STREAM {select} FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)"


@pytest.mark.parametrize("form", ["frame", "stream over a frame", "stream over a list of batches",
                                  "list of batches"])
def test_an_unknown_column_is_a_sql_error_at_its_place_for_every_input_read_without_consuming_it(
        form: str) -> None:
    df = _trades(50)
    given: Any = {"frame": df, "stream over a frame": rl.stream(df, time="ts"),
                  "stream over a list of batches": _stream(df, 7), "list of batches": batches(df, 7)}[form]
    text = "SELECT STREAM ticker,\n       MAX(prize) AS hi\nFROM s\nGROUP BY ticker, STEP(s.ts BY INTERVAL '1' MINUTE)"
    with pytest.raises(rl.SqlError) as err:
        rl.sql(text, s=given)
    e = err.value
    assert (e.line, e.column) == (2, 12)
    assert "column prize not found" in str(e) and "'price'" in str(e).replace('"', "'")
    assert str(e).endswith("\n         MAX(prize) AS hi\n             ^")


def test_unquoted_names_match_any_case_quoted_ones_exactly_and_an_ambiguous_one_is_an_error() -> None:
    df = _trades(120).rename({"ticker": "Ticker_Symbol"}).with_columns((pl.col("price") * 2).alias("Price"))
    s = rl.stream(df, time="ts", watermark="10s")
    q = rl.sql("""SELECT STREAM TICKER_SYMBOL, MAX("Price") AS hi2, MAX(price) AS hi
                  FROM S GROUP BY ticker_symbol, STEP(s.rowtime BY INTERVAL '5' MINUTE)""", s=s)
    out = q.collect()
    py = (rl.stream(df, time="ts", watermark="10s").window(rl.tumbling("5m"), by="Ticker_Symbol")
          .agg(rl.max("Price").alias("hi2"), rl.max("price").alias("hi")).collect()
          .select("Ticker_Symbol", "hi2", "hi"))
    assert out.columns == ["Ticker_Symbol", "hi2", "hi"]  # a plain column keeps its own name
    assert out.equals(py)
    assert (out["hi2"] == out["hi"] * 2).all()
    # PRICE matches both "price" and "Price": ambiguous, and the error says how to pick one
    with pytest.raises(rl.SqlError, match=r"PRICE matches several columns .*quote the one you mean") as err:
        rl.sql(text := _step_query("Ticker_Symbol, MAX(PRICE) AS hi").replace("ticker,", "Ticker_Symbol,"), s=s)
    assert (err.value.line, err.value.column) == (1, text.index("PRICE") + 1)
    # a quoted name is exact: "ticker_symbol" is not Ticker_Symbol
    with pytest.raises(rl.SqlError, match="column ticker_symbol not found"):
        rl.sql('SELECT STREAM "ticker_symbol", COUNT(*) AS n FROM s '
               'GROUP BY "ticker_symbol", STEP(ROWTIME BY INTERVAL \'1\' MINUTE)', s=s)


def test_select_stream_x_is_never_an_alias_of_a_column_named_stream() -> None:
    df = _trades(60).with_columns(pl.lit("not me").alias("STREAM"), pl.col("ticker").alias("x"))
    q = rl.sql("SELECT STREAM x, COUNT(*) AS n FROM s GROUP BY x, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)",
               s=rl.stream(df, time="ts", watermark="10s"))
    out = q.collect()
    assert out.columns == ["x", "n"]
    assert set(out["x"]) == set(df["ticker"]) and out["n"].sum() == df.height
    # SELECT STREAM * keeps STREAM as a column like any other (here through TOP_K's cursor)
    q = rl.sql("""SELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(
                    CURSOR(SELECT STREAM * FROM s), 'STREAM', 1, 3600))""", s=rl.stream(df, time="ts"))
    assert q.collect().rows() == [("not me", df.height)]


# -- Kinesis: sliding windows (E4) --------------------------------------------------------------
@SIZES
def test_kinesis_sliding_window_min_max_avg_over_w1_equals_python_and_brute_force(size: int | None) -> None:
    df = _trades(300)
    assert df.select("ticker", "ts").is_unique().all()
    q = rl.sql("""
        SELECT STREAM ticker_symbol, ROWTIME AS t,
                      MIN(Price) OVER W1 AS Min_Price,
                      MAX(Price) OVER W1 AS Max_Price,
                      AVG(Price) OVER W1 AS Avg_Price
        FROM   "SOURCE_SQL_STREAM_001"
        WINDOW W1 AS (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING)""",
               SOURCE_SQL_STREAM_001=_stream(df.rename({"ticker": "TICKER_SYMBOL", "price": "PRICE"}), size))
    out = q.collect()
    assert out.height == df.height  # one row per input row
    py = (_stream(df.rename({"ticker": "TICKER_SYMBOL", "price": "PRICE"}), size)
          .window(rl.sliding("1m", closed="both"), by="TICKER_SYMBOL")
          .agg(rl.min("PRICE").alias("Min_Price"), rl.max("PRICE").alias("Max_Price"),
               rl.mean("PRICE").alias("Avg_Price"))
          .collect().select("TICKER_SYMBOL", pl.col("ts").alias("t"), "Min_Price", "Max_Price", "Avg_Price"))
    assert out.equals(py)
    # brute force: each row with its ticker's rows in [t - 1 minute, t] (SQL's RANGE frame)
    rows = df.with_row_index("i")
    pairs = (rows.join(rows, on="ticker", suffix="_o")
             .filter((pl.col("ts_o") >= pl.col("ts") - pl.duration(minutes=1)) & (pl.col("ts_o") <= pl.col("ts"))))
    want = (pairs.group_by("i", "ticker", "ts")
            .agg(pl.col("price_o").min().alias("Min_Price"), pl.col("price_o").max().alias("Max_Price"),
                 pl.col("price_o").mean().alias("Avg_Price"))
            .select(pl.col("ticker").alias("TICKER_SYMBOL"), pl.col("ts").alias("t"),
                    "Min_Price", "Max_Price", "Avg_Price"))
    assert_same_rows(out, want)
    assert (out["Min_Price"] < out["Max_Price"]).any()  # windows really hold several rows


@SIZES
def test_a_sliding_select_carries_each_rows_own_columns(size: int | None) -> None:
    """A plain column that is neither a PARTITION BY key nor an aggregate (Kinesis' E10: the
    ticker next to a SUM OVER w partitioned by the minute) comes out with each row's own
    value, also when several rows share a time."""
    df = _trades(300).with_columns(minute=pl.col("ts").dt.truncate("1m"))
    # rows sharing a time, next to the rows they copy
    df = pl.concat([df, df.head(20).with_columns(qty=pl.col("qty") + 100)]).sort("ts", maintain_order=True)
    q = rl.sql("""
        SELECT STREAM ticker, minute, qty, SUM(qty) OVER w AS total, ts
        FROM s
        WINDOW w AS (PARTITION BY minute RANGE INTERVAL '2' MINUTE PRECEDING)""", s=_stream(df, size))
    out = q.collect()
    assert out.columns == ["ticker", "minute", "qty", "total", "ts"]
    assert out.height == df.height
    rows = df.with_row_index("i")
    pairs = (rows.join(rows, on="minute", suffix="_o")
             .filter((pl.col("ts_o") >= pl.col("ts") - pl.duration(minutes=2)) & (pl.col("ts_o") <= pl.col("ts"))))
    want = (pairs.group_by("i", "ticker", "minute", "qty", "ts").agg(pl.col("qty_o").sum().alias("total"))
            .select("ticker", "minute", "qty", "total", "ts"))
    assert_same_rows(out, want)
    # outside a sliding window a column must be a key or inside an aggregate
    with pytest.raises(rl.SqlError, match="neither a GROUP BY key"):
        rl.sql("SELECT STREAM ticker, qty, COUNT(*) FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '1' MINUTE)",
               s=_stream(df, None))


SLIDING_FORMS = {
    "inline, ordered by ROWTIME": ("COUNT(*) OVER (PARTITION BY ticker ORDER BY ROWTIME RANGE INTERVAL '30' SECOND "
                                   "PRECEDING) AS n, SUM(qty) OVER (PARTITION BY ticker ORDER BY ROWTIME RANGE "
                                   "INTERVAL '30' SECOND PRECEDING) AS v", "", True),
    "between ... and current row": ("COUNT(*) OVER w AS n, SUM(qty) OVER w AS v",
                                    "WINDOW w AS (PARTITION BY ticker ORDER BY ts RANGE BETWEEN INTERVAL '30' SECOND "
                                    "PRECEDING AND CURRENT ROW)", True),
    "with a where": ("COUNT(*) OVER w AS n, SUM(qty) OVER w AS v",
                     "WHERE qty > 5 WINDOW w AS (PARTITION BY ticker RANGE INTERVAL '30' SECOND PRECEDING)", True),
    "no partition": ("COUNT(*) OVER w AS n, SUM(qty) OVER w AS v",
                     "WINDOW w AS (RANGE INTERVAL '30' SECOND PRECEDING)", False),
}


@pytest.mark.parametrize("form", list(SLIDING_FORMS))
@pytest.mark.parametrize("size", [1, None])
def test_sliding_window_forms_equal_brute_force(form: str, size: int | None) -> None:
    df = _trades(250)
    select, tail, keyed = SLIDING_FORMS[form]
    key = "ticker, " if keyed else ""
    q = rl.sql(f"SELECT STREAM {key}ROWTIME AS t, {select} FROM s {tail}", s=_stream(df, size))
    out = q.collect()
    rows = (df.filter(pl.col("qty") > 5) if "where" in form else df).with_row_index("i")
    pairs = rows.join(rows, on="ticker", suffix="_o") if keyed else rows.join(rows, how="cross", suffix="_o")
    pairs = pairs.filter((pl.col("ts_o") >= pl.col("ts") - pl.duration(seconds=30)) & (pl.col("ts_o") <= pl.col("ts")))
    want = (pairs.group_by("i", "ticker", "ts")
            .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("qty_o").sum().alias("v"))
            .select(*(["ticker"] if keyed else []), pl.col("ts").alias("t"), "n", "v"))
    assert_same_rows(out, want)
    assert out["t"].is_sorted() if not keyed else out.height == rows.height  # emitted in event-time order


ROWS_FORMS = {
    "named window": "WINDOW w AS (PARTITION BY ticker ROWS 4 PRECEDING)",
    "between ... and current row": "WINDOW w AS (PARTITION BY ticker ORDER BY ts ROWS BETWEEN 4 PRECEDING AND "
                                   "CURRENT ROW)",
}


@pytest.mark.parametrize("form", list(ROWS_FORMS))
@SIZES
def test_rows_preceding_equals_duckdb_and_the_python_api(form: str, size: int | None) -> None:
    """ROWS 4 PRECEDING: the row and the four rows of its key before it, in time order (ties
    in arrival order), as DuckDB computes it over the same rows."""
    df = _trades(300).with_columns(pl.col("ts").dt.truncate("1s"))  # second-truncated: ties
    q = rl.sql(f"SELECT STREAM ticker, ts, qty, SUM(qty) OVER w AS v, COUNT(*) OVER w AS n, MAX(price) OVER w AS top "
               f"FROM s {ROWS_FORMS[form]}", s=_stream(df, size))
    out = q.collect()
    want = duck("""SELECT ticker, ts, qty, SUM(qty) OVER w AS v, COUNT(*) OVER w AS n, MAX(price) OVER w AS top, i
                   FROM t WINDOW w AS (PARTITION BY ticker ORDER BY ts, i ROWS 4 PRECEDING)""",
                t=df.with_row_index("i")).sort("ts", "ticker", "i").drop("i")
    assert_frame_equal(out, want.cast(dict(out.schema)))
    api = (_stream(df, size).window(rl.sliding(rows=4), by="ticker")
           .agg(rl.sum("qty").alias("v"), rl.count().alias("n"), rl.max("price").alias("top")).collect())
    assert_frame_equal(out.drop("qty"), api.select("ticker", "ts", "v", "n", "top"))


@pytest.mark.parametrize(("frame", "message"), [
    ("ROWS UNBOUNDED PRECEDING", "UNBOUNDED PRECEDING"),
    ("ROWS 2.5 PRECEDING", "a whole number of rows"),
    ("ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING", "ROWS <n> PRECEDING"),
])
def test_rows_frames_that_cannot_stream_say_why(frame: str, message: str) -> None:
    with pytest.raises(rl.SqlError, match=message):
        rl.sql(f"SELECT STREAM ticker, SUM(qty) OVER (PARTITION BY ticker {frame}) AS v FROM s",
               s=_stream(_trades(10), None))


# -- Kinesis: TOP_K_ITEMS_TUMBLING (E6), COUNT_DISTINCT_ITEMS_TUMBLING -----------------------------
@SIZES
def test_top_k_items_tumbling_gives_the_item_column_and_most_frequent_values(size: int | None) -> None:
    df = _trades().rename({"ticker": "TICKER"})
    q = rl.sql("""
        SELECT STREAM ROWTIME AS w, TICKER, MOST_FREQUENT_VALUES
        FROM TABLE (TOP_K_ITEMS_TUMBLING(
            CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
            'TICKER',         -- name of column in single quotes
            2,                -- number of the most frequently occurring values
            60                -- tumbling window size in seconds
            ))""", SOURCE_SQL_STREAM_001=_stream(df, size))
    out = q.collect()
    assert out.columns == ["w", "TICKER", "MOST_FREQUENT_VALUES"]
    py = (_stream(df, size).window(rl.tumbling("60s")).agg(rl.top_k("TICKER", 2)).collect()
          .explode("TICKER_top_k")
          .select(pl.col("window_end").alias("w"), pl.col("TICKER_top_k").struct.field("value").alias("TICKER"),
                  pl.col("TICKER_top_k").struct.field("count").alias("MOST_FREQUENT_VALUES")))
    assert out.equals(py)
    # DuckDB: per minute, each ticker's count, the two largest (ties by the smaller value)
    want = duck(f"""SELECT w, TICKER, MOST_FREQUENT_VALUES FROM (
                        SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS w, TICKER, COUNT(*) AS MOST_FREQUENT_VALUES
                        FROM t GROUP BY ALL)
                    QUALIFY ROW_NUMBER() OVER (PARTITION BY w ORDER BY MOST_FREQUENT_VALUES DESC, TICKER) <= 2
                    """, t=df)
    assert_same_rows(out, want)
    # within each window the most frequent comes first
    assert out.group_by("w", maintain_order=True).agg(pl.col("MOST_FREQUENT_VALUES").is_sorted(descending=True)
                                                      .alias("ok"))["ok"].all()


@SIZES
def test_count_distinct_items_tumbling_gives_number_of_distinct_items(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""SELECT STREAM ROWTIME, * FROM TABLE(COUNT_DISTINCT_ITEMS_TUMBLING(
                    CURSOR(SELECT STREAM * FROM s WHERE ticker <> 'AAPL'), 'qty', 120))""", s=_stream(df, size))
    out = q.collect()
    assert out.columns == ["ROWTIME", "NUMBER_OF_DISTINCT_ITEMS"]
    py = (_stream(df, size).filter(pl.col("ticker") != "AAPL").window(rl.tumbling("120s"))
          .agg(rl.approx_count_distinct("qty").alias("NUMBER_OF_DISTINCT_ITEMS")).collect()
          .select(pl.col("window_end").alias("ROWTIME"), "NUMBER_OF_DISTINCT_ITEMS"))
    assert out.equals(py)
    want = duck(f"""SELECT {bucket('ts', 120)} + INTERVAL 120 SECOND AS ROWTIME,
                           COUNT(DISTINCT qty) AS NUMBER_OF_DISTINCT_ITEMS
                    FROM t WHERE ticker <> 'AAPL' GROUP BY 1""", t=df)
    assert_same_rows(out, want)  # exact while small (HyperLogLog's sparse range)


# -- ORDER BY within an emitted moment, late rows ------------------------------------------------
@SIZES
def test_order_by_sorts_the_rows_of_each_window(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""SELECT STREAM STEP(s.ROWTIME BY INTERVAL '1' MINUTE) AS minute, ticker, SUM(qty) AS volume
                  FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '1' MINUTE)
                  ORDER BY STEP(s.ROWTIME BY INTERVAL '1' MINUTE), volume DESC, ticker""", s=_stream(df, size))
    out = q.collect()
    want = duck(f"""SELECT {bucket('ts', 60)} AS minute, ticker, SUM(qty) AS volume FROM t GROUP BY ALL
                    ORDER BY minute, volume DESC, ticker""", t=df)
    assert_frame_equal(out, want.cast(dict(out.schema)))  # in this very order
    assert not out["volume"].is_sorted(descending=True)  # the sort is per window, not global


def test_late_rows_of_a_sql_query_go_to_run_late_and_the_rest_is_counted() -> None:
    df = _trades(200)
    late = pl.DataFrame({"ts": [BASE + dt.timedelta(seconds=30)], "ticker": ["AAPL"], "price": [1.0],
                         "qty": [1000], "ev": [BASE]}).with_columns(pl.col("ts", "ev").dt.cast_time_unit("us"))
    rows = pl.concat([df.head(150), late, df.tail(50)])
    q = rl.sql("SELECT STREAM ticker, COUNT(*) AS n, SUM(qty) AS volume FROM s "
               "GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '1' MINUTE)", s=_stream(rows, 7))
    run = q.run()
    assert run.late.height == 1
    assert run.late["qty"].to_list() == [1000] and run.late["late_by"][0] > dt.timedelta(minutes=5)
    assert run.metrics["rows_in"] == rows.height
    want = duck(f"SELECT ticker, COUNT(*) AS n, SUM(qty) AS volume FROM t GROUP BY ticker, {bucket('ts', 60)}", t=df)
    assert_same_rows(run.output, want)


# -- Flink: window table-valued functions ---------------------------------------------------------
FLINK = {  # the TVF, the same window in the Python API, and its layout for DuckDB
    "tumble": ("TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '2' MINUTES)", rl.tumbling("2m"), "tumble"),
    "tumble offset": ("TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '2' MINUTES, INTERVAL '30' SECONDS)",
                      rl.tumbling("2m", offset="30s"), "tumble offset"),
    "hop": ("HOP(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '5' MINUTES)", rl.hopping("5m", "1m"), "hop"),
    "cumulate": ("CUMULATE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '4' MINUTES)",
                 rl.cumulative("4m", "1m"), "cumulate"),
    "named": ("TUMBLE(DATA => TABLE s, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '2' MINUTES)", rl.tumbling("2m"),
              "tumble"),
    "named, any order": ("HOP(DATA => TABLE s, SIZE => INTERVAL '5' MINUTES, TIMECOL => DESCRIPTOR(ts), "
                         "SLIDE => INTERVAL '1' MINUTE)", rl.hopping("5m", "1m"), "hop"),
    "named with an offset": ("TUMBLE(DATA => TABLE s, TIMECOL => DESCRIPTOR(ts), SIZE => INTERVAL '2' MINUTE, "
                             "OFFSET => INTERVAL '30' SECOND)", rl.tumbling("2m", offset="30s"), "tumble offset"),
    "named cumulate": ("CUMULATE(DATA => TABLE s, TIMECOL => DESCRIPTOR(ts), STEP => INTERVAL '1' MINUTE, "
                       "SIZE => INTERVAL '4' MINUTE)", rl.cumulative("4m", "1m"), "cumulate"),
    "lower case": ("tumble(table s, descriptor(ts), interval '2' minutes)", rl.tumbling("2m"), "tumble"),
}


def _flink_windows(layout: str) -> str:
    """DuckDB: every (window_start, window_end) of each row, for a TVF's ``layout``."""
    start2 = "time_bucket(INTERVAL '2 minutes', ts, TIMESTAMP '1970-01-01')"
    if layout == "tumble":
        return f"SELECT *, {start2} AS window_start, {start2} + INTERVAL 2 MINUTE AS window_end FROM t"
    if layout == "tumble offset":
        s = "time_bucket(INTERVAL '2 minutes', ts, TIMESTAMP '1970-01-01 00:00:30')"
        return f"SELECT *, {s} AS window_start, {s} + INTERVAL 2 MINUTE AS window_end FROM t"
    if layout == "hop":
        return f"""SELECT *, ws AS window_start, ws + INTERVAL 5 MINUTE AS window_end FROM (
                   SELECT *, unnest([{bucket('ts', 60)} - INTERVAL (k) MINUTE FOR k IN range(5)]) AS ws FROM t)"""
    assert layout == "cumulate"
    s = "time_bucket(INTERVAL '4 minutes', ts, TIMESTAMP '1970-01-01')"
    return f"""SELECT *, {s} AS window_start, we AS window_end FROM (
               SELECT *, unnest([{s} + INTERVAL (k) MINUTE FOR k IN range(1, 5)]) AS we FROM t) WHERE ts < we"""


@pytest.mark.parametrize("kind", list(FLINK))
@SIZES
def test_flink_window_tvf_group_by_window_start_end_and_a_key(kind: str, size: int | None) -> None:
    df = _trades()
    tvf, spec, layout = FLINK[kind]
    q = rl.sql(f"""SELECT window_start, window_end, ticker, SUM(price) AS total, COUNT(*) AS n
                   FROM TABLE({tvf})
                   GROUP BY window_start, window_end, ticker""", s=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).window(spec, by="ticker").agg(rl.sum("price").alias("total"), rl.count().alias("n"))
          .collect().select("window_start", "window_end", "ticker", "total", "n"))
    assert out.equals(py)
    want = duck(f"""SELECT window_start, window_end, ticker, SUM(price) AS total, COUNT(*) AS n
                    FROM ({_flink_windows(layout)}) GROUP BY ALL""", t=df)
    assert_same_rows(out, want)


@pytest.mark.parametrize("tvf", [
    "SESSION(TABLE s PARTITION BY ticker, DESCRIPTOR(ts), INTERVAL '20' SECONDS)",
    "SESSION(DATA => TABLE s PARTITION BY ticker, TIMECOL => DESCRIPTOR(ts), GAP => INTERVAL '20' SECOND)",
], ids=["positional", "named"])
@SIZES
def test_flink_session_tvf_partitioned_by_a_key(size: int | None, tvf: str) -> None:
    df = _trades(250)
    q = rl.sql(f"""SELECT window_start, window_end, ticker, COUNT(*) AS n, MAX(price) AS hi
                   FROM TABLE({tvf})
                   GROUP BY ticker, window_start, window_end""", s=_stream(df, size))
    out = q.collect()
    py = (_stream(df, size).window(rl.session("20s"), by="ticker").agg(rl.count().alias("n"), rl.max("price").alias("hi"))
          .collect().select("window_start", "window_end", "ticker", "n", "hi"))
    assert out.equals(py)
    # DuckDB: a new session where the gap to the key's previous row is 20 s or more
    want = duck("""SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL 20 SECOND AS window_end, ticker,
                          COUNT(*) AS n, MAX(price) AS hi
                   FROM (SELECT *, SUM(new) OVER (PARTITION BY ticker ORDER BY ts) AS session FROM (
                         SELECT *, CASE WHEN ts - LAG(ts) OVER (PARTITION BY ticker ORDER BY ts) < INTERVAL 20 SECOND
                                   THEN 0 ELSE 1 END AS new FROM t))
                   GROUP BY ticker, session""", t=df)
    assert_same_rows(out, want)
    assert (out["n"] > 1).any() and out.height > 4  # sessions both split and merge rows


def test_flink_documentation_examples_give_the_documented_results() -> None:
    """The Bid table and the results printed in Flink's window aggregation and window Top-N
    documentation."""
    bid = pl.DataFrame({
        "bidtime": [dt.datetime(2020, 4, 15, 8, m) for m in (5, 7, 9, 11, 13, 17)],
        "price": [4.0, 2.0, 5.0, 3.0, 1.0, 6.0],
        "item": ["C", "A", "D", "B", "E", "F"],
        "supplier_id": ["supplier1", "supplier1", "supplier2", "supplier2", "supplier1", "supplier2"],
    })

    def run(text: str) -> list[tuple]:
        return rl.sql(text, Bid=rl.stream(bid, time="bidtime")).collect().rows()

    def at(h: int, m: int) -> dt.datetime:
        return dt.datetime(2020, 4, 15, h, m)

    assert run("""SELECT window_start, window_end, SUM(price) AS total_price
                  FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
                  GROUP BY window_start, window_end""") == [(at(8, 0), at(8, 10), 11.0), (at(8, 10), at(8, 20), 10.0)]
    assert run("""SELECT window_start, window_end, SUM(price) AS total_price
                  FROM TABLE(HOP(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '5' MINUTES, INTERVAL '10' MINUTES))
                  GROUP BY window_start, window_end""") == [
        (at(8, 0), at(8, 10), 11.0), (at(8, 5), at(8, 15), 15.0), (at(8, 10), at(8, 20), 10.0),
        (at(8, 15), at(8, 25), 6.0)]
    assert run("""SELECT window_start, window_end, SUM(price) AS total_price
                  FROM TABLE(CUMULATE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '2' MINUTES, INTERVAL '10' MINUTES))
                  GROUP BY window_start, window_end""") == [
        (at(8, 0), at(8, 6), 4.0), (at(8, 0), at(8, 8), 6.0), (at(8, 0), at(8, 10), 11.0),
        (at(8, 10), at(8, 12), 3.0), (at(8, 10), at(8, 14), 4.0), (at(8, 10), at(8, 16), 4.0),
        (at(8, 10), at(8, 18), 10.0), (at(8, 10), at(8, 20), 10.0)]
    assert run("""SELECT window_start, window_end, SUM(price) AS total_price
                  FROM TABLE(TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES, INTERVAL '1' MINUTES))
                  GROUP BY window_start, window_end""") == [(at(8, 1), at(8, 11), 11.0), (at(8, 11), at(8, 21), 10.0)]
    sessions = run("""SELECT window_start, window_end, item, SUM(price) AS total_price
                      FROM TABLE(SESSION(TABLE Bid PARTITION BY item, DESCRIPTOR(bidtime), INTERVAL '5' MINUTES))
                      GROUP BY item, window_start, window_end""")
    assert sorted(sessions, key=lambda r: r[2]) == [
        (at(8, 7), at(8, 12), "A", 2.0), (at(8, 11), at(8, 16), "B", 3.0), (at(8, 5), at(8, 10), "C", 4.0),
        (at(8, 9), at(8, 14), "D", 5.0), (at(8, 13), at(8, 18), "E", 1.0), (at(8, 17), at(8, 22), "F", 6.0)]
    top = run("""SELECT *
                 FROM (
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) as rownum
                   FROM (
                     SELECT window_start, window_end, supplier_id, SUM(price) as price, COUNT(*) as cnt
                     FROM TABLE(
                       TUMBLE(TABLE Bid, DESCRIPTOR(bidtime), INTERVAL '10' MINUTES))
                     GROUP BY window_start, window_end, supplier_id
                   )
                 ) WHERE rownum <= 3""")
    assert sorted(top) == [
        (at(8, 0), at(8, 10), "supplier1", 6.0, 2, 1), (at(8, 0), at(8, 10), "supplier2", 5.0, 1, 2),
        (at(8, 10), at(8, 20), "supplier1", 1.0, 1, 2), (at(8, 10), at(8, 20), "supplier2", 9.0, 2, 1)]


@SIZES
def test_flink_window_top_n_over_an_aggregated_sub_query_equals_duckdb_qualify(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT * FROM (
          SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY total DESC) AS rownum
          FROM (SELECT window_start, window_end, ticker, SUM(price) AS total, COUNT(*) AS n
                FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '5' MINUTES))
                GROUP BY window_start, window_end, ticker))
        WHERE rownum <= 3""", s=_stream(df, size))
    out = q.collect()
    assert out.columns == ["window_start", "window_end", "ticker", "total", "n", "rownum"]
    py = (_stream(df, size).window(rl.tumbling("5m"), by="ticker").agg(rl.sum("price").alias("total"),
                                                                       rl.count().alias("n"))
          .collect()
          .with_columns(pl.col("total").rank("ordinal", descending=True).over("window_start", "window_end")
                        .cast(pl.Int64).alias("rownum"))
          .filter(pl.col("rownum") <= 3).select(out.columns))
    assert_frame_equal(out, py, check_row_order=False)
    want = duck("""SELECT window_start, window_end, ticker, SUM(price) AS total, COUNT(*) AS n,
                          ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY SUM(price) DESC) AS rownum
                   FROM (SELECT *, time_bucket(INTERVAL '5 minutes', ts, TIMESTAMP '1970-01-01') AS window_start,
                                window_start + INTERVAL 5 MINUTE AS window_end FROM t)
                   GROUP BY window_start, window_end, ticker QUALIFY rownum <= 3""", t=df)
    assert_same_rows(out, want)
    groups = _stream(df, None).window(rl.tumbling("5m"), by="ticker").agg(rl.count()).collect().height
    assert out["rownum"].max() == 3 and out.height < groups  # the fourth ticker of a window is cut


@SIZES
def test_flink_window_top_n_with_rank_keeps_ties_and_a_second_condition(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""
        SELECT * FROM (
          SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY n DESC) AS r
          FROM (SELECT window_start, window_end, ticker, COUNT(*) AS n
                FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '5' MINUTES))
                GROUP BY window_start, window_end, ticker))
        WHERE r <= 2 AND n > 3""", s=_stream(df, size))
    out = q.collect()
    want = duck(f"""SELECT * FROM (
                      SELECT window_start, window_start + INTERVAL 5 MINUTE AS window_end, ticker,
                             COUNT(*) AS n, RANK() OVER (PARTITION BY window_start ORDER BY COUNT(*) DESC) AS r
                      FROM (SELECT *, {bucket('ts', 300)} AS window_start FROM t) GROUP BY window_start, ticker)
                    WHERE r <= 2 AND n > 3""", t=df)
    assert_same_rows(out, want)
    assert out.select("window_start", "r").is_duplicated().any()  # a tie, both kept


def test_flink_window_columns_qualified_by_the_tvf_alias() -> None:
    df = _trades()
    q = rl.sql("""SELECT w.window_start, w.ticker, COUNT(*) AS n
                  FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) AS w
                  GROUP BY w.window_start, w.window_end, w.ticker""", s=_stream(df, 7))
    want = duck(f"SELECT {bucket('ts', 60)} AS window_start, ticker, COUNT(*) AS n FROM t GROUP BY ALL", t=df)
    assert_same_rows(q.collect(), want)


def test_flink_cascading_window_aggregation_groups_by_window_time() -> None:
    df = _trades()
    q = rl.sql("""SELECT window_start, window_end, window_time AS rowtime, ticker, SUM(price) AS partial_price
                  FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTES))
                  GROUP BY ticker, window_start, window_end, window_time""", s=_stream(df, None))
    out = q.collect()
    want = duck(f"""SELECT {bucket('ts', 60)} AS window_start, window_start + INTERVAL 1 MINUTE AS window_end,
                           window_end - INTERVAL 1 MILLISECOND AS rowtime, ticker, SUM(price) AS partial_price
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)


def test_flink_window_top_n_straight_over_the_tvf_rows() -> None:
    df = _trades()
    q = rl.sql("""SELECT * FROM (
                    SELECT ts, price, ticker, window_start, window_end,
                           ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY price DESC) AS rownum
                    FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '5' MINUTES))
                  ) WHERE rownum <= 3""", s=_stream(df, None))
    out = q.collect()
    want = duck(f"""SELECT ts, price, ticker, {bucket('ts', 300)} AS window_start,
                           window_start + INTERVAL 5 MINUTE AS window_end,
                           ROW_NUMBER() OVER (PARTITION BY window_start ORDER BY price DESC) AS rownum
                    FROM t QUALIFY rownum <= 3""", t=df)
    assert_same_rows(out, want)


# -- errors -----------------------------------------------------------------------------------------
def _sql_error(text: str, **sources: Any) -> rl.SqlError:
    with pytest.raises(rl.SqlError) as err:
        rl.sql(text, **sources)
    e = err.value
    assert isinstance(e, rl.RilletError)
    return e


def _caret(e: rl.SqlError, text: str) -> None:
    """The message ends with the offending line and a caret under e.column."""
    line = text.splitlines()[e.line - 1]
    assert str(e).startswith(f"line {e.line}, column {e.column}: ")
    assert str(e).endswith(f"\n  {line}\n  {' ' * (e.column - 1)}^"), str(e)


def test_an_unknown_input_name_says_which_inputs_there_are() -> None:
    text = "SELECT STREAM ticker, COUNT(*) AS n\nFROM trades\nGROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)"
    e = _sql_error(text, s=_trades(10))
    assert (e.line, e.column) == (2, 6)
    assert 'trades is not an input (known: "s")' in str(e) and "trades=source" in str(e)
    _caret(e, text)


@pytest.mark.parametrize(("text", "where", "what"), [
    ("SELECT STREAM ticker, COUNT(*)\nFROM s\nGROUP BY ticker STEP(ROWTIME BY INTERVAL '1' MINUTE)", (3, 17),
     "unexpected STEP"),
    ("SELECT STREAM ticker, COUNT(*\nFROM s", (2, 1), "syntax error: Expected: ), found: FROM"),
    ("SELECT STREAM ticker,, COUNT(*) FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)", (1, 22),
     "syntax error"),
    ("SELECT STREAM ticker, COUNT(*) AS n FROM s\n  GROUP BY ticker, STEP(ROWTIME BY INTERVAL 'one' MINUTE)",
     (2, 45), "whole number of minutes"),
], ids=["missing comma", "unclosed parenthesis", "double comma", "bad interval"])
def test_a_syntax_error_points_at_its_line_and_column(text: str, where: tuple[int, int], what: str) -> None:
    e = _sql_error(text, s=_trades(10))
    assert (e.line, e.column) == where, str(e)
    assert what in str(e)
    _caret(e, text)


@pytest.mark.parametrize(("text", "token", "what"), [
    ("SELECT STREAM a.ticker, COUNT(*) FROM s AS a\nFULL OUTER JOIN r ON a.ticker = r.ticker "
     "GROUP BY a.ticker, STEP(a.ROWTIME BY INTERVAL '1' MINUTE)", "r ON", "FULL OUTER JOIN is not supported"),
    ("SELECT STREAM ticker, COUNT(*) AS n FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)\nLIMIT 10",
     "10", "LIMIT has no end on a stream"),
    ("SELECT STREAM ticker, COUNT(*) AS n FROM s\nGROUP BY ticker", "ticker", "a streaming GROUP BY needs a time window"),
    ("SELECT STREAM DISTINCT ticker, COUNT(*) AS n FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)",
     "SELECT", "SELECT DISTINCT"),
    ("SELECT STREAM ticker, COUNT(*) AS n FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)\n"
     "UNION ALL SELECT STREAM ticker, COUNT(*) AS n FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)",
     "SELECT", "set operations"),
], ids=["full join", "limit", "group by without a window", "distinct", "union"])
def test_an_unsupported_construct_is_named_and_placed(text: str, token: str, what: str) -> None:
    e = _sql_error(text, s=_stream(_trades(10), None), r=_trades(10))
    assert what in str(e)
    assert e.line >= 1 and e.column >= 1
    _caret(e, text)
    line = text.splitlines()[e.line - 1]
    assert line[e.column - 1:].startswith(token), (line, e.column, token)


def test_a_window_tvf_on_a_column_other_than_the_streams_time_is_an_error() -> None:
    text = ("SELECT window_start, window_end, COUNT(*) AS n\n"
            "FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ev), INTERVAL '1' MINUTE))\nGROUP BY window_start, window_end")
    e = _sql_error(text, s=_stream(_trades(10), None))
    assert "DESCRIPTOR(ev) is not the stream's time column" in str(e) and e.line == 2
    _caret(e, text)


def test_an_aggregate_outside_a_windowed_query_and_a_plain_column_outside_group_by_are_errors() -> None:
    text = "SELECT STREAM ticker, price, COUNT(*) AS n FROM s GROUP BY ticker, STEP(ROWTIME BY INTERVAL '1' MINUTE)"
    e = _sql_error(text, s=_stream(_trades(10), None))
    assert "column price is neither a GROUP BY key nor inside an aggregate" in str(e)
    assert (e.line, e.column) == (1, text.index("price") + 1)


# -- explain ------------------------------------------------------------------------------------------
def test_explain_of_a_sql_query_names_its_window_and_the_steps_over_each_emitted_batch() -> None:
    q = rl.sql("""SELECT STREAM ticker, SUM(qty) AS volume, MAX(price) - MIN(price) AS spread
                  FROM s WHERE price > 10
                  GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '2' MINUTE)
                  HAVING COUNT(*) > 2
                  ORDER BY volume DESC""", s=rl.stream(_trades(50), time="ts", watermark="10s"))
    text = q.explain()
    for part in ("event time  ts", "'10s'", "tumbling('2m')", "by          ticker", "filter(",
                 "volume = sum('qty')", "over each emitted batch", "select ticker, volume, spread",
                 "filter", "sort by ['volume']", "output after them"):
        assert part in text, (part, text)
    assert list(q.collect().columns) == ["ticker", "volume", "spread"]


@SIZES
def test_a_hop_window_s_rows_come_out_per_window_with_late_rows_kept(size: int | None) -> None:
    """A window function read without aggregates lists each window's rows (a row in every
    hopping window that holds it) when the window closes; rows whose windows all closed are
    late, in run.late, never lost."""
    df = _trades(300)
    late = df.head(5).with_columns(pl.col("ts") - pl.duration(minutes=30), qty=pl.lit(999, dtype=pl.Int64))
    df = pl.concat([df, late])  # arrive last, far behind the watermark
    q = rl.sql("""SELECT window_start, window_end, window_time, ticker, qty
                  FROM TABLE(HOP(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE, INTERVAL '3' MINUTE))
                  WHERE qty > 3
                  ORDER BY window_end, qty DESC""", s=_stream(df, size))
    run = q.run()
    assert run.late.height == 5 and (run.late["qty"] == 999).all()
    kept = df.filter(pl.col("qty") != 999)
    want = duck("""SELECT w.ws AS window_start, w.ws + INTERVAL 3 MINUTE AS window_end,
                          w.ws + INTERVAL 3 MINUTE - INTERVAL 1 MILLISECOND AS window_time, ticker, qty
                   FROM t, (SELECT DISTINCT time_bucket(INTERVAL '1 minute', ts) - INTERVAL (k) MINUTE AS ws
                            FROM t, range(0, 3) r(k)) w
                   WHERE ts >= w.ws AND ts < w.ws + INTERVAL 3 MINUTE AND qty > 3""", t=kept)
    assert_same_rows(run.output, want)
    # within each window, the rows come ordered by qty, largest first
    for _, part in run.output.group_by("window_start", maintain_order=True):
        assert part["qty"].to_list() == sorted(part["qty"].to_list(), reverse=True)
    assert run.metrics["rows_in"] == df.height


def test_a_range_frame_holds_the_row_exactly_its_length_before() -> None:
    """SQL's RANGE INTERVAL '1' MINUTE PRECEDING is [t - 1 minute, t], as DuckDB computes it;
    rl.sliding's default, as polars' rolling, is (t - 1 minute, t]."""
    df = pl.DataFrame({"ts": [BASE, BASE + dt.timedelta(minutes=1), BASE + dt.timedelta(minutes=2, seconds=1)],
                       "k": ["a", "a", "a"]})
    q = rl.sql("SELECT STREAM k, COUNT(*) OVER w AS n FROM s WINDOW w AS (PARTITION BY k RANGE INTERVAL '1' MINUTE "
               "PRECEDING)", s=rl.stream(df, time="ts", watermark=0))
    want = duck("SELECT k, COUNT(*) OVER (PARTITION BY k ORDER BY ts RANGE BETWEEN INTERVAL 1 MINUTE PRECEDING "
                "AND CURRENT ROW) AS n FROM t", t=df)
    assert_same_rows(q.collect(), want)
    assert q.collect()["n"].to_list() == [1, 2, 1]
    right = rl.stream(df, time="ts", watermark=0).window(rl.sliding("1m"), by="k").agg(rl.count()).collect()
    assert right["count"].to_list() == [1, 1, 1]
