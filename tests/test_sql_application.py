"""Issue 15: Kinesis Data Analytics applications (``rl.Application``): in-application
streams, pumps inserting into them positionally with a ``ROWTIME`` (the window's end) first,
pumps reading other pumps' streams, the research note's examples E1, E2, E3, E6 and E10 as
written. Each stream's rows equal the same queries built with the Python API and a DuckDB
recomputation, at micro-batches of 1, 7 and the whole input."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import batches
from polars.testing import assert_frame_equal
from test_sql import SIZES, _stream, _trades, assert_same_rows, bucket, duck

import rillet as rl

CLOUDTRAIL = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "cloudtrail_invictus"
              / "cloudtrail.jsonl")

MINUTES_INTO_FIVE = """
CREATE OR REPLACE STREAM "PER_MINUTE" (ticker VARCHAR(4), minute TIMESTAMP, trades BIGINT, volume BIGINT);
CREATE OR REPLACE STREAM "PER_FIVE" (ticker VARCHAR(4), five TIMESTAMP, trades BIGINT, volume BIGINT);
-- per minute and ticker, on the input's time
CREATE OR REPLACE PUMP "MINUTE_PUMP" AS INSERT INTO "PER_MINUTE"
  SELECT STREAM ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' MINUTE), COUNT(*), SUM(qty)
  FROM "SOURCE_SQL_STREAM_001"
  GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' MINUTE);
-- the per-minute rows summed into five minutes: a ROWTIME window and the minute's own bucket
CREATE OR REPLACE PUMP "FIVE_PUMP" AS INSERT INTO "PER_FIVE"
  SELECT STREAM ticker, STEP(minute BY INTERVAL '5' MINUTE), SUM(trades), SUM(volume)
  FROM "PER_MINUTE"
  GROUP BY ticker, STEP("PER_MINUTE".ROWTIME BY INTERVAL '5' MINUTE), STEP(minute BY INTERVAL '5' MINUTE);
"""


@SIZES
def test_a_pump_reading_another_pumps_stream_equals_python_chaining_and_duckdb(size: int | None) -> None:
    df = _trades(500)
    app = rl.Application(MINUTES_INTO_FIVE, _stream(df, size))
    assert app.streams == ["PER_MINUTE", "PER_FIVE"]
    assert app.pumps == {"MINUTE_PUMP": "PER_MINUTE", "FIVE_PUMP": "PER_FIVE"}
    out = app.run()
    minute, five = out.streams["PER_MINUTE"], out.streams["PER_FIVE"]
    assert minute.columns == ["ROWTIME", "ticker", "minute", "trades", "volume"]
    assert five.columns == ["ROWTIME", "ticker", "five", "trades", "volume"]
    assert all(r.late.height == 0 and r.rejected.height == 0 for r in out.runs.values())

    # (1) the same chain built with the Python API: a pump's ROWTIME is its window's end
    minutes = _stream(df, size).window(rl.tumbling("1m"), by="ticker").agg(rl.count(), rl.sum("qty"))
    py_minute = minutes.collect().select(pl.col("window_end").alias("ROWTIME"), "ticker",
                                         pl.col("window_start").alias("minute"), pl.col("count").alias("trades"),
                                         pl.col("qty_sum").alias("volume"))
    assert minute.equals(py_minute)
    py_five = (rl.stream(minutes, time="window_end")
               .with_columns(pl.col("window_start").dt.truncate("5m").alias("five"))
               .window(rl.tumbling("5m"), by=["ticker", "five"])
               .agg(rl.sum("count").alias("trades"), rl.sum("qty_sum").alias("volume")).collect()
               .select(pl.col("window_end").alias("ROWTIME"), "ticker", "five", "trades", "volume"))
    assert five.equals(py_five)

    # (2) DuckDB: the per-minute rows, then the five-minute rows over them
    want_minute = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 1 MINUTE AS ROWTIME, ticker, {bucket('ts', 60)} AS minute,
                                  COUNT(*) AS trades, SUM(qty) AS volume FROM t GROUP BY ALL""", t=df)
    assert_same_rows(minute, want_minute)
    want_five = duck(f"""SELECT {bucket('ROWTIME', 300)} + INTERVAL 5 MINUTE AS ROWTIME, ticker,
                                {bucket('minute', 300)} AS five, SUM(trades) AS trades, SUM(volume) AS volume
                         FROM m GROUP BY ALL""", m=want_minute)
    assert_same_rows(five, want_five)

    # The minute ending on a five-minute boundary is read at that boundary (its ROWTIME), so it
    # lands in the next ROWTIME window under its own five-minute key: Kinesis' partial results.
    # Added up per key they are the direct five-minute counts.
    assert five.select("ticker", "five").is_duplicated().any()
    combined = (five.group_by("ticker", "five").agg(pl.col("trades").sum(), pl.col("volume").sum())
                .rename({"five": "window_start"}))
    direct = rl.sql("""SELECT STREAM ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE) AS window_start,
                              COUNT(*) AS trades, SUM(qty) AS volume
                       FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '5' MINUTE)""", s=_stream(df, size))
    assert_frame_equal(combined.select("ticker", "window_start", "trades", "volume"), direct.collect(),
                       check_row_order=False)
    assert combined["trades"].sum() == df.height


def test_each_stream_and_pump_is_a_query_and_running_them_reads_the_input_once() -> None:
    df = _trades(200)
    app = rl.Application(MINUTES_INTO_FIVE, SOURCE_SQL_STREAM_001=_stream(df, 7))
    out = app.run()
    assert app.stream("PER_FIVE").collect().equals(out.streams["PER_FIVE"])
    assert app.stream("per_minute").collect().equals(out.streams["PER_MINUTE"])  # declared name, any case
    assert app.pump("MINUTE_PUMP").collect().equals(out.streams["PER_MINUTE"])
    assert out.runs["MINUTE_PUMP"].metrics["rows_in"] == df.height
    text = app.explain()
    assert "pump MINUTE_PUMP -> PER_MINUTE" in text and "pump FIVE_PUMP -> PER_FIVE" in text
    assert "tumbling('1m')" in text and "tumbling('5m')" in text and "cast to" in text
    with pytest.raises(rl.ConfigError, match="no pump 'NOPE'"):
        app.pump("NOPE")


# -- the research note's examples, as written -----------------------------------------------------------
E2 = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), Min_Price DOUBLE, Max_Price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM Ticker_Symbol, MIN(Price) AS Min_Price, MAX(Price) AS Max_Price
    FROM    "SOURCE_SQL_STREAM_001"
    GROUP BY Ticker_Symbol, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND);
"""

E3 = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (EVENT_TIME timestamp, TICKER VARCHAR(4), min_price REAL, max_price REAL);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
  INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM STEP("SOURCE_SQL_STREAM_001".EVENT_TIME BY INTERVAL '60' SECOND),
        TICKER, MIN(PRICE) AS MIN_PRICE, MAX(PRICE) AS MAX_PRICE
    FROM    "SOURCE_SQL_STREAM_001"
    GROUP BY TICKER,
             STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '60' SECOND),
             STEP("SOURCE_SQL_STREAM_001".EVENT_TIME BY INTERVAL '60' SECOND);
"""

E6 = """
CREATE OR REPLACE STREAM DESTINATION_SQL_STREAM ("TICKER" VARCHAR(4), "MOST_FREQUENT_VALUES" BIGINT);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM"
    SELECT STREAM *
        FROM TABLE (TOP_K_ITEMS_TUMBLING(
            CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
            'TICKER',         -- name of column in single quotes
            5,                -- number of the most frequently occurring values
            60                -- tumbling window size in seconds
            ));
"""

E10_FIRST_PUMP = """
CREATE OR REPLACE STREAM "CALC_COUNT_SQL_STREAM" ("TICKER" VARCHAR(4), "TRADETIME" TIMESTAMP, "TICKERCOUNT" DOUBLE);
CREATE PUMP "CALC_COUNT_SQL_PUMP_001" AS
    INSERT INTO "CALC_COUNT_SQL_STREAM" ("TICKER","TRADETIME", "TICKERCOUNT")
    SELECT STREAM "TICKER_SYMBOL",
        STEP("SOURCE_SQL_STREAM_001"."ROWTIME" BY INTERVAL '1' MINUTE) as "TradeTime",
        COUNT(*) AS "TickerCount"
    FROM "SOURCE_SQL_STREAM_001"
    GROUP BY STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' MINUTE),
             STEP("SOURCE_SQL_STREAM_001"."APPROXIMATE_ARRIVAL_TIME" BY INTERVAL '1' MINUTE),
             TICKER_SYMBOL;
"""


@SIZES
def test_e2_tumbling_on_rowtime_as_written(size: int | None) -> None:
    df = _trades().rename({"ticker": "TICKER_SYMBOL", "price": "PRICE"})
    out = rl.Application(E2, _stream(df, size)).run().streams["DESTINATION_SQL_STREAM"]
    assert out.columns == ["ROWTIME", "ticker_symbol", "Min_Price", "Max_Price"]
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS ROWTIME, TICKER_SYMBOL AS ticker_symbol,
                           MIN(PRICE) AS Min_Price, MAX(PRICE) AS Max_Price FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)
    py = (_stream(df, size).window(rl.tumbling("60s"), by="TICKER_SYMBOL")
          .agg(rl.min("PRICE"), rl.max("PRICE")).collect()
          .select(pl.col("window_end").alias("ROWTIME"), pl.col("TICKER_SYMBOL").alias("ticker_symbol"),
                  pl.col("PRICE_min").alias("Min_Price"), pl.col("PRICE_max").alias("Max_Price")))
    assert out.equals(py)


@SIZES
def test_e3_rowtime_window_with_an_event_time_key_cast_to_the_declared_types(size: int | None) -> None:
    df = _trades().rename({"ticker": "TICKER", "price": "PRICE", "ev": "EVENT_TIME"})
    out = rl.Application(E3, _stream(df, size)).run().streams["DESTINATION_SQL_STREAM"]
    assert out.schema == pl.Schema({"ROWTIME": pl.Datetime("us", "UTC"), "EVENT_TIME": pl.Datetime("us", "UTC"),
                                    "TICKER": pl.String, "min_price": pl.Float32, "max_price": pl.Float32})
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS ROWTIME, {bucket('EVENT_TIME', 60)} AS EVENT_TIME,
                           TICKER, CAST(MIN(PRICE) AS REAL) AS min_price, CAST(MAX(PRICE) AS REAL) AS max_price
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)
    py = (_stream(df, size).with_columns(pl.col("EVENT_TIME").dt.truncate("60s").alias("E"))
          .window(rl.tumbling("60s"), by=["TICKER", "E"]).agg(rl.min("PRICE"), rl.max("PRICE")).collect()
          .select(pl.col("window_end").alias("ROWTIME"), pl.col("E").alias("EVENT_TIME"), "TICKER",
                  pl.col("PRICE_min").cast(pl.Float32).alias("min_price"),
                  pl.col("PRICE_max").cast(pl.Float32).alias("max_price")))
    assert out.equals(py)


@SIZES
def test_e6_top_k_items_tumbling_as_written(size: int | None) -> None:
    df = _trades().rename({"ticker": "TICKER"})
    out = rl.Application(E6, _stream(df, size)).run().streams["DESTINATION_SQL_STREAM"]
    assert out.columns == ["ROWTIME", "TICKER", "MOST_FREQUENT_VALUES"]
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS ROWTIME, TICKER, COUNT(*) AS MOST_FREQUENT_VALUES
                    FROM t GROUP BY ALL""", t=df)  # 4 tickers: the top 5 is every ticker
    assert_same_rows(out, want)
    direct = rl.sql("""SELECT STREAM ROWTIME, * FROM TABLE(TOP_K_ITEMS_TUMBLING(
                         CURSOR(SELECT STREAM * FROM s), 'TICKER', 5, 60))""", s=_stream(df, size)).collect()
    assert out.equals(direct)


def test_e6_over_an_input_read_once() -> None:
    df = _trades().rename({"ticker": "TICKER"})
    app = rl.Application(E6, rl.stream(iter(batches(df, 7)), time="ts", watermark="10s"))
    out = app.run().streams["DESTINATION_SQL_STREAM"]
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS ROWTIME, TICKER, COUNT(*) AS MOST_FREQUENT_VALUES
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(out, want)


@SIZES
def test_e10_first_pump_inserts_into_the_listed_columns(size: int | None) -> None:
    df = _trades().rename({"ticker": "TICKER_SYMBOL", "ev": "APPROXIMATE_ARRIVAL_TIME"})
    out = rl.Application(E10_FIRST_PUMP, _stream(df, size)).run().streams["CALC_COUNT_SQL_STREAM"]
    assert out.schema == pl.Schema({"ROWTIME": pl.Datetime("us", "UTC"), "TICKER": pl.String,
                                    "TRADETIME": pl.Datetime("us", "UTC"), "TICKERCOUNT": pl.Float64})
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 1 MINUTE AS ROWTIME, TICKER_SYMBOL AS TICKER,
                           {bucket('ts', 60)} AS TRADETIME, CAST(COUNT(*) AS DOUBLE) AS TICKERCOUNT
                    FROM t GROUP BY {bucket('ts', 60)}, {bucket('APPROXIMATE_ARRIVAL_TIME', 60)}, TICKER_SYMBOL""", t=df)
    assert_same_rows(out, want)


E10_SECOND_PUMP = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("TICKER" VARCHAR(4), "TRADETIME" TIMESTAMP, "TICKERCOUNT" DOUBLE);
CREATE PUMP "AGGREGATED_SQL_PUMP" AS
    INSERT INTO "DESTINATION_SQL_STREAM" ("TICKER","TRADETIME", "TICKERCOUNT")
    SELECT STREAM "TICKER", "TRADETIME", SUM("TICKERCOUNT") OVER W1 AS "TICKERCOUNT"
    FROM "CALC_COUNT_SQL_STREAM"
    WINDOW W1 AS (PARTITION BY "TRADETIME" RANGE INTERVAL '10' MINUTE PRECEDING);
"""


@SIZES
def test_e10_partial_results_summed_by_a_sliding_pump_carry_each_rows_ticker(size: int | None) -> None:
    """E10 whole: per-minute partial counts, then a sliding SUM OVER w partitioned by the minute,
    whose select also names TICKER (neither a key nor an aggregate: each row's own value)."""
    df = _trades().rename({"ticker": "TICKER_SYMBOL", "ev": "APPROXIMATE_ARRIVAL_TIME"})
    app = rl.Application(E10_FIRST_PUMP + E10_SECOND_PUMP, _stream(df, size))
    out = app.run().streams["DESTINATION_SQL_STREAM"]
    partial = duck(f"""SELECT TICKER_SYMBOL AS TICKER, {bucket('ts', 60)} AS TRADETIME, COUNT(*) AS n
                       FROM t GROUP BY {bucket('ts', 60)}, {bucket('APPROXIMATE_ARRIVAL_TIME', 60)}, TICKER_SYMBOL""",
                   t=df)
    # every partial row of a minute has that minute's end as ROWTIME: the window over the
    # minute's partition holds them all, so each carries the minute's total
    want = duck("""SELECT TRADETIME + INTERVAL 1 MINUTE AS ROWTIME, TICKER, TRADETIME,
                          CAST(SUM(n) OVER (PARTITION BY TRADETIME) AS DOUBLE) AS TICKERCOUNT
                   FROM p""", p=partial)
    assert_same_rows(out, want)


def test_a_pump_whose_select_has_the_wrong_number_of_columns_is_an_error() -> None:
    trades = _stream(_trades(20).rename({"ticker": "Ticker_Symbol"}), None)
    text = E2.replace("MAX(Price) AS Max_Price", "MAX(Price) AS Max_Price, COUNT(*) AS n")
    with pytest.raises(rl.SqlError) as err:
        rl.Application(text, trades)
    e = err.value
    assert "the SELECT gives 4 columns" in str(e) and "takes 3" in str(e)
    assert e.line == 5  # the SELECT's line
    assert str(e).endswith("^")
    text = E2.replace('"DESTINATION_SQL_STREAM" (', '"DEST" (', 1)
    with pytest.raises(rl.SqlError, match="stream DESTINATION_SQL_STREAM is not created") as err:
        rl.Application(text, trades)
    assert err.value.line == 4


def test_late_rows_of_a_pump_are_in_its_run() -> None:
    df = _trades(200)
    rows = pl.concat([df.head(150), df.head(1), df.tail(50)])  # the first trade again, minutes late
    out = rl.Application(MINUTES_INTO_FIVE, _stream(rows, 7)).run()
    assert out.runs["MINUTE_PUMP"].late.height == 1
    assert out.runs["MINUTE_PUMP"].late.drop("late_by").row(0) == df.row(0)
    assert out.streams["PER_MINUTE"]["trades"].sum() == df.height
    assert out.runs["FIVE_PUMP"].late.height == 0


# -- E1 on real CloudTrail records -----------------------------------------------------------------------
E1_FIRST_PUMP = """
CREATE STREAM "TOTAL_CALL_COUNT_STREAM" (eventTimeStamp TIMESTAMP, callCount BIGINT);
CREATE OR REPLACE PUMP "PUMP_FOR_TOTAL_CALL_COUNT" AS
  INSERT INTO "TOTAL_CALL_COUNT_STREAM"
  SELECT STREAM STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND) eventTimeStamp, COUNT(*) totalCalls
       FROM "SOURCE_SQL_STREAM_001" cloudtraillogs
       GROUP BY STEP(cloudtraillogs.ROWTIME BY INTERVAL '10' SECOND), STEP(cloudtraillogs."eventTimestamp" BY INTERVAL '10' SECOND);
"""


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real records in CloudTrail's S3 delivery layout, 300 records a file."""
    if not CLOUDTRAIL.exists():
        pytest.skip("shared data not present")
    records = [json.loads(line) for line in CLOUDTRAIL.read_text().splitlines() if line.strip()]
    root = tmp_path_factory.mktemp("trail")
    base = root / "AWSLogs" / "123837392027" / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    base.mkdir(parents=True)
    for i in range(0, len(records), 300):
        name = base / f"123837392027_CloudTrail_us-east-1_20230710T{i:05d}Z_abc.json.gz"
        with gzip.open(name, "wt") as f:
            f.write(json.dumps({"Records": records[i:i + 300]}))
    return root


@pytest.mark.parametrize("size", [1, 7, None, "files"])
def test_e1_total_call_count_pump_on_real_cloudtrail_records(trail: Path, size: int | str | None) -> None:
    records = pl.read_ndjson(CLOUDTRAIL, schema_overrides={"eventTime": pl.String}).select("eventTime")
    if size == "files":
        source = rl.read_cloudtrail(trail)
    else:
        frames = pl.concat([c.frame for c in rl.read_cloudtrail(trail).chunks()])
        source = batches(frames, size)  # type: ignore[arg-type]
    # the solution's Kinesis input carried the event time as "eventTimestamp"
    stream = (rl.stream(source, time="eventTime", watermark="10m")
              .with_columns(pl.col("eventTime").alias("eventTimestamp")))
    out = rl.Application(E1_FIRST_PUMP, stream).run()
    got = out.streams["TOTAL_CALL_COUNT_STREAM"]
    assert got.columns == ["ROWTIME", "eventTimeStamp", "callCount"]
    run = out.runs["PUMP_FOR_TOTAL_CALL_COUNT"]
    assert run.late.height == 0 and run.rejected.height == 0 and run.metrics["rows_in"] == records.height
    t = records.with_columns(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"))
    want = duck(f"""SELECT {bucket('eventTime', 10)} + INTERVAL 10 SECOND AS ROWTIME,
                           {bucket('eventTime', 10)} AS eventTimeStamp, COUNT(*) AS callCount
                    FROM t GROUP BY ALL""", t=t)
    assert_same_rows(got, want)
    assert got["callCount"].sum() == records.height == 2900
    # and the same count per 10 s built with the Python API, row for row
    py = (rl.stream(source, time="eventTime", watermark="10m").window(rl.tumbling("10s")).agg(rl.count()).collect()
          .select(pl.col("window_end").alias("ROWTIME"), pl.col("window_start").alias("eventTimeStamp"),
                  pl.col("count").alias("callCount")))
    assert got.equals(py)


# -- several pumps into one stream, declarations after use, Flink's CREATE TABLE ... WATERMARK FOR ----------
BY_SIZE = """
CREATE OR REPLACE PUMP "BIG" AS INSERT INTO "TRADES_BY_SIZE"
  SELECT STREAM 'big', ticker, COUNT(*) FROM "SOURCE_SQL_STREAM_001" WHERE qty > 10
  GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '5' MINUTE);
CREATE OR REPLACE PUMP "SMALL" AS INSERT INTO "TRADES_BY_SIZE"
  SELECT STREAM 'small', ticker, COUNT(*) FROM "SOURCE_SQL_STREAM_001" WHERE qty <= 10
  GROUP BY ticker, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '5' MINUTE);
-- declared after the pumps that fill it
CREATE OR REPLACE STREAM "TRADES_BY_SIZE" (size VARCHAR(8), ticker VARCHAR(4), n INTEGER);
"""


@SIZES
def test_two_pumps_into_one_stream_give_its_rows_in_rowtime_order(size: int | None) -> None:
    df = _trades(400)
    app = rl.Application(BY_SIZE, _stream(df, size))
    out = app.run()
    rows = out.streams["TRADES_BY_SIZE"]
    assert rows.schema == pl.Schema({"ROWTIME": pl.Datetime("us", "UTC"), "size": pl.String, "ticker": pl.String,
                                     "n": pl.Int32})
    want = duck(f"""SELECT {bucket('ts', 300)} + INTERVAL 5 MINUTE AS ROWTIME,
                           CASE WHEN qty > 10 THEN 'big' ELSE 'small' END AS size, ticker, COUNT(*) AS n
                    FROM t GROUP BY ALL""", t=df)
    assert_same_rows(rows, want)
    # an in-application stream is ordered by ROWTIME, as in Kinesis; each pump's rows keep their order
    assert rows["ROWTIME"].is_sorted()
    for pump, label in (("BIG", "big"), ("SMALL", "small")):
        assert rows.filter(pl.col("size") == label).equals(app.pump(pump).collect())
        assert out.runs[pump].output.equals(app.pump(pump).collect())
    with pytest.raises(rl.ConfigError, match="2 pumps insert into 'TRADES_BY_SIZE'"):
        app.stream("TRADES_BY_SIZE")


@SIZES
def test_a_flink_script_with_create_table_watermark_for_and_insert_into(size: int | None) -> None:
    df = _trades(400)
    text = """
        CREATE TABLE trades (ts TIMESTAMP(3), ticker STRING, price DOUBLE,
                             WATERMARK FOR ts AS ts - INTERVAL '10' SECOND);
        CREATE OR REPLACE STREAM "PER_MINUTE" (ws TIMESTAMP, ticker VARCHAR(4), n BIGINT, total DOUBLE);
        INSERT INTO "PER_MINUTE"
          SELECT window_start, ticker, COUNT(*), SUM(price)
          FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
          GROUP BY window_start, window_end, ticker;"""
    out = rl.Application(text, trades=batches(df, size)).run()
    (run,) = out.runs.values()
    assert run.late.height == 0  # the declared 10 s covers the 5 s of disorder
    got = out.streams["PER_MINUTE"]
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 1 MINUTE AS ROWTIME, {bucket('ts', 60)} AS ws, ticker,
                           COUNT(*) AS n, SUM(price) AS total FROM t GROUP BY ALL""", t=df)
    assert_same_rows(got, want)
    py = (rl.stream(batches(df, size), time="ts", watermark="10s").window(rl.tumbling("1m"), by="ticker")
          .agg(rl.count(), rl.sum("price")).collect()
          .select(pl.col("window_end").alias("ROWTIME"), pl.col("window_start").alias("ws"), "ticker",
                  pl.col("count").alias("n"), pl.col("price_sum").alias("total")))
    assert got.equals(py)
    # without the declaration the same rows have a watermark of 0 and the disorder is late
    bare = rl.sql("""SELECT window_start, ticker, COUNT(*) AS n
                     FROM TABLE(TUMBLE(TABLE trades, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
                     GROUP BY window_start, window_end, ticker""", trades=batches(df, size)).run()
    assert bare.late.height > 0 and bare.late.height + bare.output["n"].sum() == df.height


def test_a_raw_source_with_one_step_on_a_column_takes_that_column_as_its_event_time() -> None:
    df = _trades(300).sort("ts")  # in order: the watermark is 0
    q = rl.sql("""SELECT STREAM ticker, STEP(ts BY INTERVAL '1' MINUTE) AS minute, COUNT(*) AS n
                  FROM s GROUP BY ticker, STEP(ts BY INTERVAL '1' MINUTE)""", s=batches(df, 7))
    run = q.run()
    assert run.late.height == 0
    py = (rl.stream(batches(df, 7), time="ts").window(rl.tumbling("1m"), by="ticker").agg(rl.count().alias("n"))
          .collect().select("ticker", pl.col("window_start").alias("minute"), "n"))
    assert run.output.equals(py)
    assert_same_rows(run.output, duck(f"SELECT ticker, {bucket('ts', 60)} AS minute, COUNT(*) AS n FROM t GROUP BY ALL",
                                      t=df))


def test_rowtime_of_a_raw_source_is_the_arrival_time() -> None:
    df = _trades(100)
    q = rl.sql("""SELECT STREAM ticker, COUNT(*) AS n, MIN(ts) AS first_ts
                  FROM s GROUP BY ticker, STEP(s.ROWTIME BY INTERVAL '1' HOUR)""", s=batches(df, 7))
    run = q.run()
    assert run.late.height == 0 and run.output["n"].sum() == df.height
    assert "ROWTIME" not in run.output.columns
    # all rows arrive within the same hour or two of wall-clock time, whatever their event times
    assert run.output.height <= 2 * df["ticker"].n_unique()
    assert "event time  ROWTIME (processing time" in q.explain()


def test_a_started_application_ends_with_the_same_streams_as_a_run() -> None:
    df = _trades(300)
    ran = rl.Application(BY_SIZE + MINUTES_INTO_FIVE, _stream(df, 7)).run()
    handle = rl.Application(BY_SIZE + MINUTES_INTO_FIVE, _stream(df, 7)).start()
    done = handle.wait(timeout=60)
    assert list(done.streams) == list(ran.streams) == ["TRADES_BY_SIZE", "PER_MINUTE", "PER_FIVE"]
    for name, rows in ran.streams.items():
        assert done.streams[name].equals(rows), name
        assert handle.streams[name].equals(rows), name


@pytest.mark.parametrize(("text", "what", "line"), [
    ("""CREATE STREAM "O" (t VARCHAR(4), n BIGINT);
CREATE PUMP "P" AS INSERT INTO "O"
  SELECT STREAM t, SUM(n) FROM "O" GROUP BY t, STEP("O".ROWTIME BY INTERVAL '1' MINUTE);""",
     "pump 'P' reads its own output", 2),
    ("""CREATE STREAM "EMPTY" (t VARCHAR(4), n BIGINT);
CREATE STREAM "O" (t VARCHAR(4), n BIGINT);
CREATE PUMP "P" AS INSERT INTO "O"
  SELECT STREAM t, SUM(n) FROM "EMPTY" GROUP BY t, STEP("EMPTY".ROWTIME BY INTERVAL '1' MINUTE);""",
     "a pump reads 'EMPTY', which no pump fills", 3),
], ids=["reads itself", "reads an unfilled stream"])
def test_a_pump_reading_a_stream_it_cannot_read_is_a_sql_error_at_the_pump(text: str, what: str, line: int) -> None:
    with pytest.raises(rl.SqlError, match=what) as err:
        rl.Application(text, _stream(_trades(20), None))
    assert (err.value.line, err.value.column) == (line, 1)
    assert str(err.value).endswith(f"\n  {text.splitlines()[line - 1]}\n  ^")


E4_AND_A_READER = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), Min_Price DOUBLE, Max_Price DOUBLE, Avg_Price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
     SELECT STREAM ticker_symbol,
                   MIN(Price) OVER W1 AS Min_Price,
                   MAX(Price) OVER W1 AS Max_Price,
                   AVG(Price) OVER W1 AS Avg_Price
     FROM   "SOURCE_SQL_STREAM_001"
     WINDOW W1 AS (PARTITION BY ticker_symbol RANGE INTERVAL '1' MINUTE PRECEDING);
CREATE OR REPLACE STREAM "PER_MINUTE" (ticker_symbol VARCHAR(4), rows_seen BIGINT, top DOUBLE);
CREATE OR REPLACE PUMP "READER" AS INSERT INTO "PER_MINUTE"
  SELECT STREAM ticker_symbol, COUNT(*), MAX(Max_Price) FROM "DESTINATION_SQL_STREAM"
  GROUP BY ticker_symbol, STEP("DESTINATION_SQL_STREAM".ROWTIME BY INTERVAL '1' MINUTE);
"""


@SIZES
def test_e4_sliding_pump_rows_carry_their_own_rowtime_and_feed_another_pump(size: int | None) -> None:
    df = _trades(300).rename({"ticker": "TICKER_SYMBOL", "price": "PRICE"})
    out = rl.Application(E4_AND_A_READER, _stream(df, size)).run()
    sliding = out.streams["DESTINATION_SQL_STREAM"]
    py = (_stream(df, size).window(rl.sliding("1m", closed="both"), by="TICKER_SYMBOL")
          .agg(rl.min("PRICE").alias("Min_Price"), rl.max("PRICE").alias("Max_Price"), rl.mean("PRICE").alias("Avg_Price"))
          .collect().select(pl.col("ts").alias("ROWTIME"), pl.col("TICKER_SYMBOL").alias("ticker_symbol"),
                            "Min_Price", "Max_Price", "Avg_Price"))
    assert sliding.equals(py)
    assert sliding.height == df.height
    # the reader sees one row per input row, at the input row's time; no row of it is late
    assert out.runs["READER"].late.height == 0
    per_minute = out.streams["PER_MINUTE"]
    want = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 1 MINUTE AS ROWTIME, TICKER_SYMBOL AS ticker_symbol,
                           COUNT(*) AS rows_seen, MAX(PRICE) AS top FROM t GROUP BY ALL""", t=df)
    # the largest trailing maximum in a minute is the minute's largest price or one from the minute before
    assert_same_rows(per_minute.drop("top"), want.drop("top"))
    joined = per_minute.join(want, on=["ROWTIME", "ticker_symbol"], suffix="_minute")
    assert (joined["top"] >= joined["top_minute"]).all() and (joined["top"] > joined["top_minute"]).any()


SPREAD_OVER_E2 = E2 + """
CREATE OR REPLACE STREAM "SPREAD" ("TICKER_SYMBOL" VARCHAR(4), "SPREAD" DOUBLE);
CREATE OR REPLACE PUMP "SPREAD_PUMP" AS INSERT INTO "SPREAD"
  SELECT STREAM "TICKER_SYMBOL", MAX("MAX_PRICE") - MIN("MIN_PRICE") FROM "DESTINATION_SQL_STREAM"
  GROUP BY "TICKER_SYMBOL", STEP("DESTINATION_SQL_STREAM".ROWTIME BY INTERVAL '5' MINUTE);
"""


@pytest.mark.parametrize("text", [
    SPREAD_OVER_E2,
    SPREAD_OVER_E2.replace('CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM"',
                           "CREATE OR REPLACE STREAM destination_sql_stream"),
], ids=["unquoted columns", "unquoted stream name"])
def test_a_name_declared_unquoted_is_found_by_its_quoted_upper_case_form(text: str) -> None:
    df = _trades(200).rename({"ticker": "TICKER_SYMBOL", "price": "PRICE"})
    out = rl.Application(text, _stream(df, 7)).run().streams["SPREAD"]
    minutes = duck(f"""SELECT {bucket('ts', 60)} + INTERVAL 60 SECOND AS rt, TICKER_SYMBOL, MIN(PRICE) AS lo,
                              MAX(PRICE) AS hi FROM t GROUP BY ALL""", t=df)
    want = duck(f"""SELECT {bucket('rt', 300)} + INTERVAL 5 MINUTE AS ROWTIME, TICKER_SYMBOL,
                           MAX(hi) - MIN(lo) AS SPREAD FROM m GROUP BY ALL""", m=minutes)
    assert_same_rows(out, want)
