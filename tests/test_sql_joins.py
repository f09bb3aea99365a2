"""Issue 17, item 5: joins in SQL (``rl.sql`` and ``rl.Application``). Each form is checked
against (1) DuckDB running the same SQL (or its ASOF / range join) over the same rows and
(2) the same join built with the Python API (``join``, ``join_interval``, ``join_asof``), at
micro-batches of 1, 7 and the whole frame, and for two streams under several interleavings.
Joins emit in their own order, so the DuckDB comparisons are as sorted frames; a table join
is the Python API's query, so it equals it row for row.

The cases in ``DEFECTS`` are marked ``xfail(strict=True)``: each reproduces a defect of the SQL
joins, fails today, and turns into an error (XPASS) once it is fixed, when its mark goes."""
from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import batches
from polars.testing import assert_frame_equal
from test_sql import assert_same_rows, duck

import rillet as rl
from rillet.runtime import driver

SIZES = pytest.mark.parametrize("size", [1, 7, None])
INTERLEAVINGS = pytest.mark.parametrize("interleave", ["aligned", "round_robin", "in_order"])
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CLOUDTRAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


# -- rows -----------------------------------------------------------------------------------
def _events(n: int = 240, seed: int = 3) -> pl.DataFrame:
    """API calls about 1.5 s apart, up to 5 s out of order: users the table has, one it lacks
    (dave) and nulls; a region (null too) for two-key joins; an id per row."""
    rnd = random.Random(seed)
    return pl.DataFrame({
        "ts": [BASE + dt.timedelta(milliseconds=1500 * i - rnd.randint(0, 5000)) for i in range(n)],
        "user": [rnd.choice(["ann", "bob", "cy", "dave", "eve", None]) for _ in range(n)],
        "region": [rnd.choice([1, 2, None]) for _ in range(n)],
        "api": [rnd.choice(["GetObject", "PutObject", "ListBuckets"]) for _ in range(n)],
        "id": list(range(n)),
    }).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def _teams() -> pl.DataFrame:
    """bob in two teams (one row per match), a null key (never matches), dave missing, fay
    unused; ``region`` is a name the events have too."""
    return pl.DataFrame({
        "user": ["ann", "bob", "cy", "bob", None, "eve", "fay"],
        "region": [1, 1, 2, 2, 1, 1, 2],
        "team": ["red", "blue", "green", "audit", "nobody", "red", "gold"],
        "active": [True, True, False, True, True, False, True],
    })


def _pairs(n: int, seed: int, name: str, disorder_s: int = 20, keys: int = 6) -> pl.DataFrame:
    """A stream for two-stream joins: rows about 3 s apart, up to ``disorder_s`` out of order;
    a null key now and then (it never matches)."""
    rnd = random.Random(seed)
    return pl.DataFrame({
        "t": [BASE + dt.timedelta(seconds=3 * i + rnd.randint(0, disorder_s)) for i in range(n)],
        "user": [None if i % 11 == 5 else f"u{rnd.randrange(keys)}" for i in range(n)],
        name: [i + (0 if name == "id" else 100_000) for i in range(n)],
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


DEFECTS = {
    # A bound of the wrong kind for the time columns' type (their types are known only when
    # the run starts) is reported then, by the Python API's check.
    "integer_bound_on_datetimes": "a ConfigError in the Python API's terms, with no line or column",
    "interval_bound_on_integers": "a ConfigError in the Python API's terms, with no line or column",
}


def cases(ids: list[str], values: list[Any] | None = None) -> list[Any]:
    """``values`` (default: the ids; a tuple: several arguments) as parameters, those of a known
    defect marked xfail."""
    marks = {i: pytest.mark.xfail(strict=True, reason=why) for i, why in DEFECTS.items()}
    return [pytest.param(*(v if isinstance(v, tuple) else (v,)), id=i, marks=marks.get(i, ()))
            for i, v in zip(ids, values or ids, strict=True)]


def _stream(df: pl.DataFrame, size: int | None, time: str = "ts", watermark: Any = "10s") -> rl.Stream:
    return rl.stream(batches(df, size), time=time, watermark=watermark)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


def assert_same_sorted(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns, (got.columns, want.columns)
    assert_frame_equal(_sorted(got), _sorted(want.cast(dict(got.schema))))


# -- a stream with a table ------------------------------------------------------------------
def _inner(s: rl.Stream, t: Any, on: Any = "user") -> pl.DataFrame:
    return s.join(t, on=on, how="inner").collect(progress=False)


def _left(s: rl.Stream, t: Any, on: Any = "user") -> pl.DataFrame:
    return s.join(t, on=on, how="left").collect(progress=False)


TABLE_JOINS: dict[str, tuple[str, Callable[[rl.Stream, Any], pl.DataFrame]]] = {
    "join": ("SELECT e.id, e.user, t.team, e.api FROM events e JOIN teams t ON e.user = t.user",
             lambda s, t: _inner(s, t).select("id", "user", "team", "api")),
    "inner_two_keys": (
        "SELECT e.id, t.team FROM events e INNER JOIN teams t ON e.user = t.user AND t.region = e.region",
        lambda s, t: _inner(s, t, ["user", "region"]).select("id", "team")),
    "left_outer": ("SELECT e.id, e.user, t.team FROM events e LEFT OUTER JOIN teams t ON e.user = t.user",
                   lambda s, t: _left(s, t).select("id", "user", "team")),
    "left_two_keys": (
        "SELECT e.id, t.team, t.active FROM events e LEFT JOIN teams t ON e.user = t.user AND e.region = t.region",
        lambda s, t: _left(s, t, ["user", "region"]).select("id", "team", "active")),
    "using": ("SELECT id, user, team FROM events JOIN teams USING (user)",
              lambda s, t: _inner(s, t).select("id", "user", "team")),
    "left_using_two": ("SELECT id, team FROM events LEFT JOIN teams USING (user, region)",
                       lambda s, t: _left(s, t, ["user", "region"]).select("id", "team")),
    "table_first": ("SELECT e.id, e.user, t.team FROM teams t JOIN events e ON t.user = e.user",
                    lambda s, t: _inner(s, t).select("id", "user", "team")),
    "table_right_join": ("SELECT e.id, t.team FROM teams t RIGHT JOIN events e ON e.user = t.user",
                         lambda s, t: _left(s, t).select("id", "team")),
    "both_regions": ("SELECT e.id, e.region, t.region AS team_region FROM events e JOIN teams t ON e.user = t.user",
                     lambda s, t: _inner(s, t).select("id", "region", pl.col("region_right").alias("team_region"))),
    "inner_table_key": ("SELECT t.user, t.team, e.id FROM events e JOIN teams t ON e.user = t.user",
                        lambda s, t: _inner(s, t).select("user", "team", "id")),
    # ``user`` unqualified is the inner join's key (DuckDB wants it qualified: see DUCK)
    "unqualified": ("SELECT id, user, team, api, active FROM events e JOIN teams t ON e.user = t.user",
                    lambda s, t: _inner(s, t).select("id", "user", "team", "api", "active")),
    "extra_condition": (
        "SELECT e.id, t.team FROM events e JOIN teams t ON e.user = t.user AND t.active AND e.api <> 'PutObject'",
        lambda s, t: _inner(s, t).filter(pl.col("active") & (pl.col("api") != "PutObject")).select("id", "team")),
    "stream_star": ("SELECT e.*, t.team FROM events e JOIN teams t ON e.user = t.user",
                    lambda s, t: _inner(s, t).select("ts", "user", "region", "api", "id", "team")),
    "table_star": ("SELECT e.id, t.* FROM events e JOIN teams t ON e.user = t.user",
                   lambda s, t: _inner(s, t).select("id", "user", pl.col("region_right").alias("region"), "team",
                                                    "active")),
    # a USING key is one column: in a LEFT JOIN, the stream's
    "left_using_unqualified_key": ("SELECT user, team FROM events LEFT JOIN teams USING (user)",
                                   lambda s, t: _left(s, t).select("user", "team")),
    # the table's key in a LEFT JOIN: null where no table row matched
    "left_table_key": ("SELECT e.id, t.user AS team_user, t.team FROM events e LEFT JOIN teams t ON e.user = t.user",
                       lambda s, t: s.join(t.with_columns(team_user=pl.col("user")), on="user", how="left")
                       .collect(progress=False).select("id", "team_user", "team")),
    "where_after_left": (
        "SELECT e.id, e.user FROM events e LEFT JOIN teams t ON e.user = t.user WHERE t.team IS NULL",
        lambda s, t: _left(s, t).filter(pl.col("team").is_null()).select("id", "user")),
}
DUCK = {"unqualified": "SELECT id, e.user, team, api, active FROM events e JOIN teams t ON e.user = t.user"}


@SIZES
@pytest.mark.parametrize("case", cases(list(TABLE_JOINS)))
def test_table_join_equals_duckdb_and_the_python_api(case: str, size: int | None) -> None:
    sql, python = TABLE_JOINS[case]
    events, teams = _events(), _teams()
    got = rl.sql(sql, events=_stream(events, size), teams=teams).collect(progress=False)
    # the same query in Python: identical, row for row
    assert_frame_equal(got, python(_stream(events, size), teams))
    # DuckDB runs the same text over the same rows
    assert_same_rows(got, duck(DUCK.get(case, sql), events=events, teams=teams))


@SIZES
@pytest.mark.parametrize("order", ["stream_first", "table_first"])
def test_select_star_gives_the_streams_columns_then_the_tables_but_its_keys(size: int | None, order: str) -> None:
    events, teams = _events(), _teams()
    sql = ("SELECT * FROM events e JOIN teams t ON e.user = t.user" if order == "stream_first"
           else "SELECT * FROM teams t JOIN events e ON e.user = t.user")
    got = rl.sql(sql, events=_stream(events, size), teams=teams).collect(progress=False)
    assert got.columns == ["ts", "user", "region", "api", "id", "region_right", "team", "active"]
    assert_frame_equal(got, _inner(_stream(events, size), teams))
    want = duck("""SELECT e.*, t.region AS region_right, t.team, t.active
                   FROM events e JOIN teams t ON e.user = t.user""", events=events, teams=teams)
    assert_same_rows(got, want)


def _write(df: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        df.write_csv(path)
    else:
        df.write_parquet(path)


@pytest.mark.parametrize("kind", ["lazy", "arrow", "csv", "parquet"])
@pytest.mark.parametrize("order", ["stream_first", "table_first"])
def test_the_table_may_be_a_lazyframe_an_arrow_table_or_a_reference_in_either_order(
        tmp_path: Path, kind: str, order: str) -> None:
    events, teams = _events(), _teams()
    if kind in ("csv", "parquet"):
        path = tmp_path / f"teams.{kind}"
        _write(teams, path)
        table: Any = rl.reference(path)
    else:
        table = teams.lazy() if kind == "lazy" else teams.to_arrow()
    sql = ("SELECT e.id, e.user, t.team FROM events e LEFT JOIN teams t ON e.user = t.user"
           if order == "stream_first" else
           "SELECT e.id, e.user, t.team FROM teams t RIGHT JOIN events e ON e.user = t.user")
    got = rl.sql(sql, events=_stream(events, 7), teams=table).collect(progress=False)
    assert_frame_equal(got, _left(_stream(events, 7), table).select("id", "user", "team"))
    assert_same_rows(got, duck("SELECT e.id, e.user, t.team FROM events e LEFT JOIN teams t ON e.user = t.user",
                               events=events, teams=teams))


@pytest.mark.parametrize("sql", [
    "SELECT e.id, t.team FROM events e JOIN teams t ON e.user = t.user",
    "SELECT e.id, t.team FROM teams t JOIN events e ON e.user = t.user",
    "SELECT e.id, t.team FROM events e LEFT JOIN teams t ON e.user = t.user",
    # teams is first in FROM, so it is the stream: every team row is kept
    "SELECT t.team, e.id FROM teams t LEFT JOIN events e ON e.user = t.user",
], ids=["join", "join_reversed", "left", "left_first_frame_is_the_stream"])
def test_two_frames_without_a_time_bound_take_the_first_in_from_as_the_stream(sql: str) -> None:
    events, teams = _events(), _teams()
    got = rl.sql(sql, events=events, teams=teams).collect(progress=False)
    assert_same_rows(got, duck(sql, events=events, teams=teams))


def test_a_reference_is_the_table_even_first_in_from_next_to_a_frame(tmp_path: Path) -> None:
    events, teams = _events(), _teams()
    path = tmp_path / "teams.parquet"
    teams.write_parquet(path)
    sql = "SELECT e.id, t.team FROM teams t RIGHT JOIN events e ON e.user = t.user"
    got = rl.sql(sql, events=events, teams=rl.reference(path)).collect(progress=False)
    assert_same_rows(got, duck(sql, events=events, teams=teams))
    assert got.height > events.height  # bob's rows twice, every event kept


# -- windows over a join --------------------------------------------------------------------
WINDOWED = {
    "kinesis_step": """
        SELECT STREAM t.team, STEP(e.ts BY INTERVAL '1' MINUTE) AS minute, COUNT(*) AS calls
        FROM events e JOIN teams t ON e.user = t.user
        GROUP BY t.team, STEP(e.ts BY INTERVAL '1' MINUTE)""",
    "flink_tumble_over_a_sub_query": """
        SELECT team, window_start AS minute, COUNT(*) AS calls
        FROM TABLE(TUMBLE((SELECT e.ts, t.team FROM events e JOIN teams t ON e.user = t.user),
                          DESCRIPTOR(ts), INTERVAL '1' MINUTE))
        GROUP BY window_start, window_end, team""",
    "flink_tumble_over_table_of_a_sub_query": """
        SELECT team, window_start AS minute, COUNT(*) AS calls
        FROM TABLE(TUMBLE(TABLE (SELECT e.ts, t.team FROM teams t JOIN events e ON e.user = t.user),
                          DESCRIPTOR(ts), INTERVAL '1' MINUTE))
        GROUP BY window_start, window_end, team""",
}


@SIZES
@pytest.mark.parametrize("case", list(WINDOWED))
def test_a_window_over_a_table_join_counts_per_team_per_minute(case: str, size: int | None) -> None:
    events, teams = _events(400), _teams()
    run = rl.sql(WINDOWED[case], events=_stream(events, size), teams=teams).run(progress=False)
    assert run.late.height == 0
    got = run.output
    python = (_stream(events, size).join(teams, on="user", how="inner")
              .window(rl.tumbling("1m"), by="team").agg(rl.count().alias("calls")).collect(progress=False)
              .select("team", pl.col("window_start").alias("minute"), "calls"))
    assert_frame_equal(got, python)
    want = duck("""SELECT t.team, time_bucket(INTERVAL 1 MINUTE, e.ts) AS minute, COUNT(*) AS calls
                   FROM events e JOIN teams t ON e.user = t.user GROUP BY ALL""", events=events, teams=teams)
    assert_same_rows(got, want)


# -- Kinesis' reference-data example, as written --------------------------------------------
KINESIS_REFERENCE = """
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" (ticker_symbol VARCHAR(4), "Company" varchar(20),
   sector VARCHAR(12), change DOUBLE, price DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS INSERT INTO "DESTINATION_SQL_STREAM"
   SELECT STREAM ticker_symbol, "c"."Company", sector, change, price
   FROM "SOURCE_SQL_STREAM_001" LEFT JOIN "CompanyName" as "c"
   ON "SOURCE_SQL_STREAM_001".ticker_symbol = "c"."Ticker";
"""


def _tickers(n: int = 300, seed: int = 11) -> pl.DataFrame:
    """Kinesis' demo stream (upper-case names, as Kinesis stored them); QXZ has no company."""
    rnd = random.Random(seed)
    return pl.DataFrame({
        "ts": [BASE + dt.timedelta(seconds=i) for i in range(n)],
        "TICKER_SYMBOL": [rnd.choice(["AMZN", "MSFT", "NVDA", "QXZ"]) for _ in range(n)],
        "SECTOR": [rnd.choice(["TECHNOLOGY", "RETAIL"]) for _ in range(n)],
        "CHANGE": [rnd.randint(-500, 500) / 100 for _ in range(n)],
        "PRICE": [rnd.randint(1000, 90_000) / 100 for _ in range(n)],
    }).with_columns(pl.col("ts").dt.cast_time_unit("us"))


@pytest.mark.parametrize("size", ["frame", 1, 7, None])
def test_kinesis_reference_data_application_as_written(tmp_path: Path, size: Any) -> None:
    source = _tickers()
    companies = pl.DataFrame({"Ticker": ["AMZN", "MSFT", "NVDA", "ORCL"],
                              "Company": ["Amazon", "Microsoft", "Nvidia", "Oracle"]})
    csv = tmp_path / "companies.csv"
    companies.write_csv(csv)
    given = source if size == "frame" else _stream(source, size)
    out = rl.Application(KINESIS_REFERENCE, SOURCE_SQL_STREAM_001=given, CompanyName=rl.reference(csv)).run()
    rows = out.streams["DESTINATION_SQL_STREAM"]
    assert rows.columns == ["ROWTIME", "ticker_symbol", "Company", "sector", "change", "price"]
    assert all(r.late.height == 0 and r.rejected.height == 0 for r in out.runs.values())
    want = duck("""SELECT s.TICKER_SYMBOL AS ticker_symbol, c.Company AS Company, s.SECTOR AS sector,
                          s.CHANGE AS change, s.PRICE AS price
                   FROM s LEFT JOIN c ON s.TICKER_SYMBOL = c.Ticker""", s=source, c=companies)
    assert_same_rows(rows.drop("ROWTIME"), want)
    assert rows.filter(pl.col("ticker_symbol") == "QXZ")["Company"].null_count() == (source["TICKER_SYMBOL"] == "QXZ").sum()
    if size != "frame":  # ROWTIME is the declared event time
        assert rows["ROWTIME"].dt.epoch("us").to_list() == source["ts"].dt.epoch("us").to_list()


CHAINED = """
CREATE OR REPLACE STREAM "PER_MINUTE" (ticker VARCHAR(4), trades BIGINT);
CREATE OR REPLACE STREAM "NAMED" (company VARCHAR(20), trades BIGINT);
CREATE OR REPLACE PUMP "P1" AS INSERT INTO "PER_MINUTE"
  SELECT STREAM TICKER_SYMBOL, COUNT(*) FROM "SOURCE_SQL_STREAM_001" s
  GROUP BY TICKER_SYMBOL, STEP(s.ROWTIME BY INTERVAL '1' MINUTE);
CREATE OR REPLACE PUMP "P2" AS INSERT INTO "NAMED"
  SELECT STREAM c."Company", p.trades FROM "PER_MINUTE" p JOIN "CompanyName" c ON p.ticker = c."Ticker";
"""


@SIZES
def test_a_pump_enriches_another_pumps_stream_with_a_table(size: int | None) -> None:
    companies = pl.DataFrame({"Ticker": ["AMZN", "MSFT", "ORCL"], "Company": ["Amazon", "Microsoft", "Oracle"]})
    out = rl.Application(CHAINED, _stream(_tickers(), size), CompanyName=companies).run()
    per_minute, named = out.streams["PER_MINUTE"], out.streams["NAMED"]
    want = (per_minute.join(companies, left_on="ticker", right_on="Ticker")
            .select("ROWTIME", pl.col("Company").alias("company"), "trades"))
    assert_same_sorted(named, want)
    assert 0 < named.height < per_minute.height


FLINK_SELECT = ("SELECT a.id, b.rid FROM a, b WHERE a.user = b.user "
                "AND b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t + INTERVAL '20' SECOND")
FLINK_INTERVAL = f"""
CREATE TABLE a (t TIMESTAMP(3), user VARCHAR, id BIGINT, WATERMARK FOR t AS t - INTERVAL '30' SECOND);
CREATE TABLE b (t TIMESTAMP(3), user VARCHAR, rid BIGINT, WATERMARK FOR t AS t - INTERVAL '30' SECOND);
CREATE OR REPLACE STREAM "OUT" (id BIGINT, rid BIGINT);
CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT" {FLINK_SELECT};
"""


def test_an_application_interval_joins_two_tables_declared_with_watermarks() -> None:
    a, b = _pairs(120, 1, "id"), _pairs(150, 2, "rid")
    out = rl.Application(FLINK_INTERVAL, a=a, b=b).run()
    assert all(r.late.height == 0 for r in out.runs.values())
    assert_same_sorted(out.streams["OUT"].drop("ROWTIME"), duck(FLINK_SELECT, a=a, b=b))


# -- two streams: interval joins ------------------------------------------------------------
INTERVAL_JOINS: dict[str, tuple[str, str, str, str]] = {
    # name: (SQL, lower, upper, how) with ``b.t - a.t`` in [lower, upper]
    "where_between": ("SELECT a.id, b.rid FROM a, b WHERE a.user = b.user "
                      "AND b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t + INTERVAL '20' SECOND",
                      "-10s", "20s", "inner"),
    "on_ge_le": ("SELECT a.id, b.rid FROM a JOIN b ON a.user = b.user "
                 "AND b.t >= a.t AND b.t <= a.t + INTERVAL '30' SECOND", "0s", "30s", "inner"),
    "bound_on_the_other_side": ("SELECT a.id, b.rid FROM a JOIN b ON a.user = b.user "
                                "AND a.t BETWEEN b.t - INTERVAL '30' SECOND AND b.t", "0s", "30s", "inner"),
    "left": ("SELECT a.id, b.rid FROM a LEFT JOIN b ON a.user = b.user "
             "AND b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t + INTERVAL '20' SECOND", "-10s", "20s", "left"),
    "right_is_the_other_left": ("SELECT a.id, b.rid FROM b RIGHT JOIN a ON b.user = a.user "
                                "AND a.t <= b.t + INTERVAL '5' SECOND AND a.t >= b.t - INTERVAL '5' SECOND",
                                "-5s", "5s", "left"),
    # an inner join's WHERE is part of its condition (Flink reads the bound there too)
    "bound_in_where": ("SELECT a.id, b.rid FROM a JOIN b ON a.user = b.user "
                       "WHERE b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t", "-10s", "0s", "inner"),
}


@SIZES
@INTERLEAVINGS
@pytest.mark.parametrize("case", cases(list(INTERVAL_JOINS)))
def test_interval_join_equals_duckdb_range_join_and_join_interval(
        case: str, size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sql, lower, upper, how = INTERVAL_JOINS[case]
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    a, b = _pairs(120, 1, "id"), _pairs(150, 2, "rid")
    run = rl.sql(sql, a=_stream(a, size, "t", "30s"), b=_stream(b, size, "t", "30s")).run(progress=False)
    assert run.late.height == 0
    got = run.output
    python = (_stream(a, size, "t", "30s")
              .join_interval(_stream(b, size, "t", "30s"), on="user", lower=lower, upper=upper, how=how)
              .collect(progress=False).select("id", "rid"))
    assert_same_sorted(got, python)
    want = duck(sql, a=a, b=b)
    assert_same_sorted(got, want)
    assert want["rid"].null_count() > 0 if how == "left" else want.height > 0


@pytest.mark.parametrize("kind", ["datetime", "integer"])
def test_raw_frames_take_their_event_time_from_the_bound(kind: str) -> None:
    a, b = _pairs(100, 3, "id").sort("t"), _pairs(100, 4, "rid").sort("t")
    if kind == "integer":
        a, b = (df.with_columns(pl.col("t").dt.epoch("s") - 1_767_225_600) for df in (a, b))
        sql = "SELECT a.id, b.rid, a.t FROM a, b WHERE a.user = b.user AND b.t BETWEEN a.t - 10 AND a.t"
        lower, upper = -10, 0
    else:
        sql = ("SELECT a.id, b.rid, a.t FROM a, b WHERE a.user = b.user "
               "AND b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t")
        lower, upper = "-10s", "0s"
    # the time columns are not named "ts" or declared: the bound says which they are
    a, b = a.rename({"t": "seen"}), b.rename({"t": "seen"})
    sql = sql.replace(".t", ".seen")
    run = rl.sql(sql, a=a, b=b).run(progress=False)
    assert run.late.height == 0
    got = run.output
    python = (rl.stream(a, time="seen", watermark=0)
              .join_interval(rl.stream(b, time="seen", watermark=0), on="user", lower=lower, upper=upper)
              .collect(progress=False).select("id", "rid", "seen"))
    assert_same_sorted(got, python)
    assert_same_sorted(got, duck(sql, a=a, b=b))
    assert got.height > 0


@SIZES
@INTERLEAVINGS
def test_integer_times_with_integer_bounds(size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    a, b = (df.with_columns(pl.col("t").dt.epoch("s") - 1_767_225_600) for df in (_pairs(90, 5, "id"), _pairs(90, 6, "rid")))
    sql = "SELECT a.id, b.rid FROM a LEFT JOIN b ON a.user = b.user AND b.t BETWEEN a.t - 10 AND a.t"
    got = rl.sql(sql, a=_stream(a, size, "t", 30), b=_stream(b, size, "t", 30)).collect(progress=False)
    assert_same_sorted(got, duck(sql, a=a, b=b))


@SIZES
@INTERLEAVINGS
def test_late_rows_of_either_side_of_an_interval_join_are_in_run_late_with_their_side(
        size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    a, b = _pairs(200, 7, "id", disorder_s=40, keys=4), _pairs(200, 8, "rid", disorder_s=40, keys=4)
    sql = ("SELECT a.id, b.rid FROM a LEFT JOIN b ON a.user = b.user "
           "AND b.t BETWEEN a.t AND a.t + INTERVAL '15' SECOND")
    run = rl.sql(sql, a=_stream(a, size, "t", "5s"), b=_stream(b, size, "t", "5s")).run(progress=False)

    def on_time(df: pl.DataFrame) -> pl.DataFrame:  # not behind the largest earlier time - 5 s
        before = df["t"].cum_max().shift(1)
        return df.filter(before.is_null() | (pl.col("t") >= before - dt.timedelta(seconds=5)))

    a_on, b_on = on_time(a), on_time(b)
    late_a, late_b = a.join(a_on, on="id", how="anti"), b.join(b_on, on="rid", how="anti")
    assert late_a.height and late_b.height
    assert_same_sorted(run.output, duck(sql, a=a_on, b=b_on))
    late = run.late
    assert sorted(late.filter(pl.col("side") == "left")["id"].to_list()) == late_a["id"].to_list()
    assert sorted(late.filter(pl.col("side") == "right")["rid"].to_list()) == late_b["rid"].to_list()


@pytest.mark.parametrize("size", [7, None])
def test_a_window_over_an_interval_join_counts_matches_per_user_per_minute(
        size: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "INTERLEAVE", "round_robin")
    a, b = _pairs(300, 12, "id", keys=5), _pairs(300, 13, "rid", keys=5)
    sql = """SELECT window_start, user, COUNT(*) AS matches
             FROM TABLE(TUMBLE(TABLE (SELECT a.t, a.user FROM a JOIN b ON a.user = b.user
                                      AND b.t BETWEEN a.t AND a.t + INTERVAL '30' SECOND),
                               DESCRIPTOR(t), INTERVAL '1' MINUTE))
             GROUP BY window_start, window_end, user"""
    run = rl.sql(sql, a=_stream(a, size, "t", "30s"), b=_stream(b, size, "t", "30s")).run(progress=False)
    assert run.late.height == 0
    python = (_stream(a, size, "t", "30s").join_interval(_stream(b, size, "t", "30s"), on="user", lower="0s", upper="30s")
              .window(rl.tumbling("1m"), by="user").agg(rl.count().alias("matches")).collect(progress=False))
    assert_same_sorted(run.output, python.select("window_start", "user", "matches"))
    want = duck("""SELECT time_bucket(INTERVAL 1 MINUTE, a.t) AS window_start, a.user, COUNT(*) AS matches
                   FROM a JOIN b ON a.user = b.user AND b.t BETWEEN a.t AND a.t + INTERVAL 30 SECOND
                   GROUP BY ALL""", a=a, b=b)
    assert_same_rows(run.output, want)


# -- two streams: temporal (as-of) joins ----------------------------------------------------
@SIZES
@INTERLEAVINGS
@pytest.mark.parametrize("kind", ["JOIN", "LEFT JOIN"])
def test_temporal_join_equals_duckdb_asof_join_and_join_asof(
        kind: str, size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in Flink, ``JOIN ... FOR SYSTEM_TIME AS OF`` keeps the rows that found a version and
    ``LEFT JOIN`` keeps every row (nulls where none): DuckDB's ``ASOF [LEFT] JOIN``."""
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    o = _pairs(150, 9, "id", keys=5)
    # versions at distinct instants (a tie would let DuckDB pick either)
    r = (_pairs(60, 10, "version", keys=5).rename({"t": "since"})
         .with_columns(pl.col("since") + pl.duration(microseconds=pl.int_range(pl.len()))))
    sql = f"SELECT o.id, o.user, r.version FROM o {kind} r FOR SYSTEM_TIME AS OF o.t ON o.user = r.user"
    run = rl.sql(sql, o=_stream(o, size, "t", "30s"), r=_stream(r, size, "since", "30s")).run(progress=False)
    assert run.late.height == 0
    got = run.output
    python = (_stream(o, size, "t", "30s").join_asof(_stream(r, size, "since", "30s"), by="user")
              .collect(progress=False))
    if kind == "JOIN":
        python = python.filter(pl.col("since").is_not_null())
    assert_same_sorted(got, python.select("id", "user", "version"))
    want = duck(f"SELECT o.id, o.user, r.version FROM o ASOF {kind} r ON o.user = r.user AND o.t >= r.since",
                o=o, r=r)
    assert_same_sorted(got, want)
    unmatched = o.height - got["version"].count()
    assert 0 < unmatched < o.height and (got["version"].null_count() == 0) == (kind == "JOIN")


# -- real data ------------------------------------------------------------------------------
def _cloudtrail() -> pl.DataFrame:
    if not CLOUDTRAIL.exists():
        pytest.skip("shared data not present")
    return (pl.read_ndjson(CLOUDTRAIL, schema_overrides={"eventTime": pl.String})
            .select(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"),
                    "eventSource", "eventName", pl.col("userIdentity").struct.field("arn").alias("arn")))


@SIZES
def test_cloudtrail_calls_enriched_with_teams_equal_duckdb(size: int | None) -> None:
    records = _cloudtrail()
    arns = records["arn"].drop_nulls().unique().sort().to_list()
    # every user but the last in a team, every third also in "audit"
    rows = [(a, ["red", "blue", "green"][i % 3]) for i, a in enumerate(arns[:-1])]
    rows += [(a, "audit") for a in arns[:-1:3]]
    members = pl.DataFrame(rows, schema={"user_arn": pl.String, "team": pl.String}, orient="row")
    trail = _stream(records, size, "eventTime", "10m")
    enrich = """SELECT c.eventTime, c.eventName, c.arn, m.team
                FROM trail c LEFT JOIN members m ON c.arn = m.user_arn"""
    got = rl.sql(enrich, trail=trail, members=members).collect(progress=False)
    assert_same_rows(got, duck(enrich, trail=records, members=members))
    assert got.height > records.height and got["team"].null_count() > 0
    per_minute = """SELECT STREAM m.team, STEP(c.eventTime BY INTERVAL '1' MINUTE) AS minute, COUNT(*) AS calls
                    FROM trail c JOIN members m ON c.arn = m.user_arn
                    GROUP BY m.team, STEP(c.eventTime BY INTERVAL '1' MINUTE)"""
    run = rl.sql(per_minute, trail=_stream(records, size, "eventTime", "10m"), members=members).run(progress=False)
    assert run.late.height == 0
    want = duck("""SELECT m.team, time_bucket(INTERVAL 1 MINUTE, c.eventTime) AS minute, COUNT(*) AS calls
                   FROM trail c JOIN members m ON c.arn = m.user_arn GROUP BY ALL""", trail=records, members=members)
    assert_same_rows(run.output, want)


# -- refusals -------------------------------------------------------------------------------
def _reference(table: pl.DataFrame, tmp_path: Path) -> Any:
    table.write_parquet(tmp_path / "teams.parquet")
    return rl.reference(tmp_path / "teams.parquet")


def _inputs(kind: str, tmp_path: Path) -> dict[str, Any]:
    events, teams = _events(20), _teams()
    a, b = _pairs(20, 1, "id"), _pairs(20, 2, "rid")
    b.write_csv(tmp_path / "b.csv")
    return {
        "table": {"events": rl.stream(events, time="ts"), "teams": teams},
        "streams": {"a": rl.stream(a, time="t"), "b": rl.stream(b, time="t")},
        "file": {"a": rl.stream(a, time="t"), "b": rl.read_csv(tmp_path / "b.csv")},
        "query": {"a": rl.stream(a, time="t"),
                  "b": rl.sql("SELECT t, user, rid FROM b WHERE rid > 0", b=rl.stream(b, time="t"))},
        "ints": {k: rl.stream(df.with_columns(pl.col("t").dt.epoch("s")), time="t") for k, df in (("a", a), ("b", b))},
        "live": {"events": rl.stream((batch for batch in [events]), time="ts"), "teams": teams},
        "reference": {"events": rl.stream(events, time="ts"), "teams": _reference(teams, tmp_path)},
        "declared": {"a": rl.stream(a.with_columns(seen=pl.col("t")), time="t"), "b": rl.stream(b, time="t")},
    }[kind]


UPPER_BOUND = "AND b.t <= a.t + INTERVAL '1' MINUTE"
REFUSALS = [
    # (id, SQL, inputs, patterns the message's first line must each match)
    ("table_left_join_stream", "SELECT e.id FROM teams t LEFT JOIN events e ON e.user = t.user", "table",
     [r"LEFT JOIN|outer", r"table|teams", r"unmatched|keep|every"]),
    ("stream_right_join_table", "SELECT e.id FROM events e RIGHT JOIN teams t ON e.user = t.user", "table",
     [r"RIGHT JOIN|outer", r"table|teams"]),
    ("left_join_extra_condition", "SELECT e.id FROM events e LEFT JOIN teams t ON e.user = t.user AND t.active",
     "table", [r"LEFT JOIN|outer join", r"active|condition", r"key|equal|WHERE|INNER"]),
    ("reference_key_in_left_join", "SELECT t.user, e.id FROM events e LEFT JOIN teams t ON e.user = t.user",
     "reference", [r"user", r"e\.user|stream|null", r"DataFrame"]),
    ("ambiguous_name", "SELECT region FROM events e JOIN teams t ON e.user = t.user", "table",
     [r"region", r"both|events and teams|e and t", r"qualif|e\.region|t\.region"]),
    ("two_streams_without_a_bound", "SELECT a.id FROM a JOIN b ON a.user = b.user", "streams",
     [r"time bound|BETWEEN|interval", r"DataFrame|rl\.reference"]),
    ("stream_and_file_without_a_bound", "SELECT a.id FROM a JOIN b ON a.user = b.user", "file",
     [r"time bound|BETWEEN|interval", r"DataFrame|rl\.reference"]),
    ("stream_and_query_without_a_bound", "SELECT a.id FROM a JOIN b ON a.user = b.user", "query",
     [r"time bound|BETWEEN|interval", r"DataFrame|rl\.reference"]),
    ("strict_bound", f"SELECT a.id FROM a JOIN b ON a.user = b.user AND b.t > a.t {UPPER_BOUND}", "streams",
     [r">=|<=|BETWEEN|closed|strict"]),
    ("one_sided_bound", "SELECT a.id FROM a JOIN b ON a.user = b.user AND b.t >= a.t", "streams",
     [r"upper|lower|both|one side", r"BETWEEN|<=|>="]),
    ("unknown_column_in_on", "SELECT e.id FROM events e JOIN teams t ON e.user = t.usr", "table",
     [r"\busr\b", r"not found|not a column|no column|unknown"]),
    ("ambiguous_key_in_on", "SELECT e.id FROM events e JOIN teams t ON user = t.user", "table",
     [r"\buser\b", r"both|qualif|ambiguous"]),
    ("lower_bound_after_the_upper", "SELECT a.id FROM a JOIN b ON a.user = b.user "
     "AND b.t BETWEEN a.t + INTERVAL '20' SECOND AND a.t", "streams", [r"lower|upper|empty|after"]),
    ("integer_bound_on_datetimes", "SELECT a.id FROM a JOIN b ON a.user = b.user AND b.t BETWEEN a.t - 10 AND a.t",
     "streams", [r"INTERVAL", r"datetime|timestamp"]),
    ("interval_bound_on_integers", "SELECT a.id FROM a JOIN b ON a.user = b.user "
     "AND b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t", "ints", [r"integer", r"INTERVAL|number"]),
    ("live_input_with_unknown_columns", "SELECT e.id FROM events e JOIN teams t ON e.user = t.user", "live",
     [r"columns", r"FROM events\)"]),
    ("bound_on_another_column_than_the_declared_time",
     "SELECT a.id FROM a JOIN b ON a.user = b.user AND b.t BETWEEN a.seen AND a.seen + INTERVAL '1' MINUTE",
     "declared", [r"seen", r"\"t\"|'t'|\bt\b|time"]),
]


@pytest.mark.parametrize(("sql", "kind", "patterns"), cases([r[0] for r in REFUSALS], [r[1:] for r in REFUSALS]))
def test_refusals_say_what_is_wrong_and_what_would_be_right(sql: str, kind: str, patterns: list[str],
                                                            tmp_path: Path) -> None:
    with pytest.raises(rl.SqlError) as err:
        rl.sql(sql, **_inputs(kind, tmp_path)).collect(progress=False)
    first = str(err.value).splitlines()[0]  # the message, not the quoted SQL line under it
    for pattern in patterns:
        assert re.search(pattern, first, re.I), (pattern, str(err.value))
    assert err.value.line >= 1 and err.value.column >= 1, str(err.value)


def test_two_streams_joined_without_a_time_bound_in_an_application_are_refused(tmp_path: Path) -> None:
    """Two declared streams joined without a time bound in an application are refused, as in
    ``rl.sql``; the error is at the pump."""
    text = """CREATE OR REPLACE STREAM "OUT" (id BIGINT);
              CREATE OR REPLACE PUMP "P" AS INSERT INTO "OUT"
                SELECT STREAM s.id FROM "SOURCE_SQL_STREAM_001" s JOIN b ON s.user = b.user;"""
    with pytest.raises(rl.SqlError, match=r"(?i)time bound|BETWEEN|interval|rl\.reference"):
        rl.Application(text, **dict(zip(["SOURCE_SQL_STREAM_001", "b"], _inputs("streams", tmp_path).values()))).run()

