"""Edges of the SQL front end a review found: queries without a window and their time column,
inputs read once, repeated pumps, sinks on SQL queries, GROUP BY without aggregates, errors
that name what is wrong, and names that look like keywords. Oracles: DuckDB and polars."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from conftest import batches
from test_sql import SIZES, _stream, _trades, assert_same_rows, bucket, duck

import rillet as rl


@SIZES
def test_a_filter_pump_over_a_declared_event_time_need_not_select_it(size: int | None) -> None:
    df = _trades()
    app = rl.Application("""
        CREATE OR REPLACE STREAM "BIG" (ticker VARCHAR(8), price DOUBLE);
        CREATE OR REPLACE PUMP "P" AS INSERT INTO "BIG"
            SELECT STREAM ticker, price FROM "SOURCE_SQL_STREAM_001" WHERE price > 600;""",
                         _stream(df, size))
    out = app.run().streams["BIG"]
    want = df.filter(pl.col("price") > 600).select(pl.col("ts").alias("ROWTIME"), "ticker", "price")
    assert out.equals(want)  # in arrival order, each with its own time as ROWTIME


@SIZES
def test_a_select_without_a_window_over_a_raw_source_passes_every_row(size: int | None) -> None:
    df = _trades()
    q = rl.sql("SELECT STREAM ticker, price * 2 AS p2 FROM t WHERE qty > 10", t=batches(df, size))
    out = q.run()
    want = df.filter(pl.col("qty") > 10).select("ticker", (pl.col("price") * 2).alias("p2"))
    assert out.output.equals(want)
    assert out.metrics["rows_in"] == df.height and out.late.height == 0


@SIZES
def test_select_star_over_an_input_read_once_keeps_each_column_once(size: int | None) -> None:
    df = _trades()
    q = rl.sql("SELECT * FROM t WHERE price > 600",
               t=rl.stream(iter(batches(df, size)), time="ts", watermark="10s"))
    out = q.collect()
    assert out.equals(df.filter(pl.col("price") > 600))


def test_a_pump_created_twice_is_an_error_unless_replaced() -> None:
    df = _trades(50)
    twice = """
        CREATE OR REPLACE STREAM "O" (n BIGINT);
        CREATE OR REPLACE STREAM "Q" (total DOUBLE);
        CREATE PUMP "P" AS INSERT INTO "O"
            SELECT STREAM COUNT(*) FROM s GROUP BY STEP(s.ROWTIME BY INTERVAL '1' MINUTE);
        {create} PUMP "P" AS INSERT INTO "Q"
            SELECT STREAM SUM(price) FROM s GROUP BY STEP(s.ROWTIME BY INTERVAL '1' MINUTE);"""
    with pytest.raises(rl.SqlError, match="pump P is created twice") as err:
        rl.Application(twice.format(create="CREATE"), s=_stream(df, None))
    assert err.value.line == 6
    app = rl.Application(twice.format(create="CREATE OR REPLACE"), s=_stream(df, None))
    assert app.pumps == {"P": "Q"}  # the later one replaced the first
    out = app.run().streams
    want = duck(f"SELECT SUM(price) AS total FROM t GROUP BY {bucket('ts', 60)}", t=df)
    assert_same_rows(out["Q"].select("total"), want)
    assert out["O"].height == 0 and out["O"].columns == ["ROWTIME", "n"]  # declared, not filled


def test_an_application_without_pumps_says_so() -> None:
    with pytest.raises(rl.SqlError, match="has no pump"):
        rl.Application('CREATE OR REPLACE STREAM "O" (n BIGINT);', _stream(_trades(5), None))
    with pytest.raises(rl.SqlError, match="CREATE PUMP needs a name"):
        rl.Application('CREATE STREAM "O" (n BIGINT); CREATE PUMP AS INSERT INTO "O" SELECT 1 FROM s',
                       _stream(_trades(5), None))


def test_to_database_on_a_sql_query_keys_by_what_the_select_keeps(tmp_path: Path) -> None:
    df = _trades(200)
    q = rl.sql("""SELECT window_start, window_end, ticker, COUNT(*) AS n
                  FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
                  GROUP BY window_start, window_end, ticker""", s=_stream(df, 7))
    db = tmp_path / "x.db"
    q.to_database(f"sqlite:///{db}", "x")
    import sqlite3

    with sqlite3.connect(db) as con:
        got = pl.DataFrame(con.execute("SELECT ticker, n FROM x").fetchall(), schema=["ticker", "n"], orient="row")
    want = duck(f"SELECT ticker, COUNT(*) AS n FROM t GROUP BY ticker, {bucket('ts', 60)}", t=df)
    assert_same_rows(got, want)
    kinesis = rl.sql("SELECT STREAM ticker AS t, COUNT(*) AS n FROM s GROUP BY ticker, "
                     "STEP(s.ROWTIME BY INTERVAL '1' MINUTE)", s=_stream(df, 7))
    with pytest.raises(rl.ConfigError, match="leaves out"):
        kinesis.to_database(f"sqlite:///{tmp_path / 'y.db'}", "y")


@SIZES
def test_group_by_without_an_aggregate_gives_each_window_s_distinct_keys(size: int | None) -> None:
    df = _trades()
    q = rl.sql("""SELECT window_start, ticker FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '1' MINUTE))
                  GROUP BY window_start, window_end, ticker""", s=_stream(df, size))
    want = duck(f"SELECT DISTINCT {bucket('ts', 60)} AS window_start, ticker FROM t", t=df)
    assert_same_rows(q.collect(), want)


def test_an_expression_polars_cannot_run_is_a_schema_error() -> None:
    q = rl.sql("SELECT STREAM ticker FROM s WHERE ticker > 1", s=_stream(_trades(20), None))
    with pytest.raises(rl.SchemaError, match="filter"):
        q.collect()


def test_an_unaliased_rowtime_keeps_its_name() -> None:
    q = rl.sql("SELECT STREAM ROWTIME, ticker, COUNT(*) AS n FROM s GROUP BY ticker, "
               "STEP(s.ROWTIME BY INTERVAL '1' MINUTE)", s=_stream(_trades(50), None))
    out = q.collect()
    assert out.columns == ["ROWTIME", "ticker", "n"]
    assert (out["ROWTIME"].dt.second() == 0).all()  # a window's end


@pytest.mark.parametrize("text, what", [
    ("SELECT STREAM ticker, STRING_AGG(ticker, ',') AS s FROM s GROUP BY ticker, "
     "STEP(s.ROWTIME BY INTERVAL '1' MINUTE)", "STRING_AGG is not supported"),
    ("SELECT STREAM ticker, FIRST_VALUE(price) RESPECT NULLS AS f FROM s GROUP BY ticker, "
     "STEP(s.ROWTIME BY INTERVAL '1' MINUTE)", "RESPECT NULLS"),
])
def test_an_unsupported_aggregate_is_named(text: str, what: str) -> None:
    with pytest.raises(rl.SqlError, match=what) as err:
        rl.sql(text, s=_stream(_trades(5), None))
    assert err.value.line == 1 and err.value.column > 1


def test_columns_named_like_keywords_are_columns() -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    df = pl.DataFrame({"ts": [base, base + dt.timedelta(seconds=5)], "stream": ["a", "b"], "windowed": [1, 2]})
    out = rl.sql("SELECT stream, windowed FROM t", t=rl.stream(df, time="ts")).collect()
    assert out.equals(df.select("stream", "windowed"))
    out = rl.sql("SELECT STREAM stream FROM t", t=rl.stream(df, time="ts")).collect()
    assert out.equals(df.select("stream"))


def test_arrival_time_windows_close_by_the_wall_clock_while_the_source_is_quiet(monkeypatch) -> None:
    """ROWTIME as arrival time (a raw source): a heartbeat of a quiet live source moves the
    watermark to the wall clock, so the window that clock passed comes out without waiting
    for another row, as Kinesis closes windows on ROWTIME."""
    from rillet import _clock

    now = {"us": 1_767_225_600_000_000}  # 2026-01-01T00:00:00Z
    monkeypatch.setattr(_clock, "now_us", lambda: now["us"])
    monkeypatch.setattr(_clock, "now_ms", lambda: now["us"] // 1000)
    rows = pl.DataFrame({"k": ["a", "b", "a"]})
    seen = []

    def source():
        yield rows
        now["us"] += 1_500_000  # 1.5 s later, nothing arrived
        yield rows.head(0)
        seen.append("heartbeat")
        now["us"] += 1_000_000
        yield rows.head(1)

    q = rl.sql("SELECT STREAM k, COUNT(*) AS n FROM s GROUP BY k, STEP(s.ROWTIME BY INTERVAL '1' SECOND)",
               s=source())
    emitted = []
    for out in q.iter():
        emitted.append((len(seen), out.sort("k").rows()))
    # the first second's counts came out at the heartbeat, before the next row was read
    assert emitted[0] == (0, [("a", 2), ("b", 1)])
    assert emitted[-1][1] == [("a", 1)]
    assert sum(n for _, part in emitted for _, n in part) == 4


@SIZES
def test_flink_cascading_windows_over_window_time_equal_the_direct_windows(size: int | None) -> None:
    """Flink's window cascading: a 2-minute window's window_time (its end less a
    millisecond) is the time of a 10-minute window over its rows, which then equals the
    10-minute window over the input: no 2-minute window slips into the next 10 minutes."""
    df = _trades(400)
    inner = """SELECT window_start, window_end, window_time AS rowtime, ticker, SUM(price) AS partial_price
               FROM TABLE(TUMBLE(TABLE s, DESCRIPTOR(ts), INTERVAL '2' MINUTES))
               GROUP BY ticker, window_start, window_end, window_time"""
    outer = """SELECT window_start, window_end, SUM(partial_price) AS total_price
               FROM TABLE(TUMBLE(TABLE {src}, DESCRIPTOR(rowtime), INTERVAL '10' MINUTES))
               GROUP BY window_start, window_end"""
    want = duck(f"""SELECT {bucket('ts', 600)} AS window_start, {bucket('ts', 600)} + INTERVAL 10 MINUTE AS window_end,
                           SUM(price) AS total_price FROM t GROUP BY ALL""", t=df)
    nested = rl.sql(outer.format(src=f"({inner})"), s=_stream(df, size)).run()
    assert nested.late.height == 0
    assert_same_rows(nested.output, want)
    named = rl.sql(outer.format(src="window1"), window1=rl.sql(inner, s=_stream(df, size))).collect()
    assert named.equals(nested.output)
