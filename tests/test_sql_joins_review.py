"""Issue 17: defects of the SQL joins found by a second reading, each as a failing test
(``xfail(strict=True)``) against an independent oracle: DuckDB running the same SQL over the
same rows, the Python API's own join, or a brute-force recomputation of which rows are late.
Streams are read at micro-batches of 1, 7 and the whole frame. The tests still marked are
limits docs/sql.md ("Joins") states; each turns into an error (XPASS) once lifted, when its
mark goes."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any

import polars as pl
import pytest
from conftest import batches
from test_sql import assert_same_rows, duck
from test_sql_joins import _events, _pairs, _teams, assert_same_sorted

import rillet as rl

SIZES = pytest.mark.parametrize("size", [1, 7, None])
INTERVAL = "b.t BETWEEN a.t - INTERVAL '10' SECOND AND a.t + INTERVAL '20' SECOND"


def _stream(df: pl.DataFrame, size: int | None, time: str = "ts", watermark: Any = "10s") -> rl.Stream:
    return rl.stream(batches(df, size), time=time, watermark=watermark)


def _ab(size: int | None) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, rl.Stream]]:
    a, b = _pairs(120, 1, "id"), _pairs(150, 2, "rid")
    return a, b, {"a": _stream(a, size, "t", "30s"), "b": _stream(b, size, "t", "30s")}


# -- names ----------------------------------------------------------------------------------
@SIZES
def test_a_qualified_table_column_keeps_its_own_name(size: int | None) -> None:
    events, teams = _events(), _teams()
    sql = "SELECT e.id, t.region FROM events e JOIN teams t ON e.user = t.user"
    got = rl.sql(sql, events=_stream(events, size), teams=teams).collect(progress=False)
    assert_same_sorted(got, duck(sql, events=events, teams=teams))


@SIZES
@pytest.mark.xfail(strict=True, reason="documented limit: b.t named like the first stream's time column "
                                       "needs an alias (AS ...), as that name is the join's event time")
def test_a_qualified_column_of_the_second_stream_keeps_its_own_name(size: int | None) -> None:
    a, b, inputs = _ab(size)
    sql = f"SELECT a.id, b.rid, b.t FROM a JOIN b ON a.user = b.user AND {INTERVAL}"
    got = rl.sql(sql, **inputs).collect(progress=False)
    assert_same_sorted(got, duck(sql, a=a, b=b))


@SIZES
def test_the_tables_star_then_the_streams_names_a_repeated_name_as_the_join_does(size: int | None) -> None:
    events, teams = _events(), _teams()
    got = rl.sql("SELECT t.*, e.* FROM events e JOIN teams t ON e.user = t.user",
                 events=_stream(events, size), teams=teams).collect(progress=False)
    # docs/sql.md: a name already selected takes the join's suffix, a key already selected is not repeated
    want = duck("""SELECT t.*, e.ts, e.region AS region_right, e.api, e.id
                   FROM events e JOIN teams t ON e.user = t.user""", events=events, teams=teams)
    assert_same_sorted(got, want)


# -- what a join may read -------------------------------------------------------------------
@SIZES
@pytest.mark.parametrize("table", [
    "(SELECT user, COUNT(*) AS n FROM teams GROUP BY user)",
    "(SELECT DISTINCT user, region AS n FROM teams)",
], ids=["group_by", "distinct"])
@pytest.mark.xfail(strict=True, reason="documented limit: a table sub-query filters, computes and selects; "
                                       "GROUP BY / DISTINCT in SQL are a stream's windows (aggregate the table in polars)")
def test_a_table_sub_query_may_aggregate_the_table(table: str, size: int | None) -> None:
    events, teams = _events(), _teams()
    sql = f"SELECT e.id, t.n FROM events e JOIN {table} t ON e.user = t.user"
    got = rl.sql(sql, events=_stream(events, size), teams=teams).collect(progress=False)
    assert_same_rows(got, duck(sql, events=events, teams=teams))


SUB_QUERY_RENAMES_TIME = ("SELECT x.id, b.rid FROM (SELECT t AS at, user, id FROM a) x JOIN b "
                          "ON x.user = b.user AND b.t BETWEEN x.at - INTERVAL '10' SECOND AND x.at")


@SIZES
def test_a_stream_sub_query_that_renames_its_time_is_bounded_on_the_new_name(size: int | None) -> None:
    a, b, inputs = _ab(size)
    got = rl.sql(SUB_QUERY_RENAMES_TIME, **inputs).collect(progress=False)
    assert_same_sorted(got, duck(SUB_QUERY_RENAMES_TIME, a=a, b=b))


def test_raw_frames_with_a_sub_query_that_renames_the_bound_column_join_as_duckdb() -> None:
    a, b = _pairs(120, 1, "id").sort("t"), _pairs(150, 2, "rid").sort("t")
    run = rl.sql(SUB_QUERY_RENAMES_TIME, a=a, b=b).run(progress=False)
    assert run.late.height == 0
    assert_same_sorted(run.output, duck(SUB_QUERY_RENAMES_TIME, a=a, b=b))


@SIZES
def test_a_column_in_two_key_equalities_joins_as_sql_does(size: int | None) -> None:
    events = _events()
    teams = _teams().with_columns(nick=pl.when(pl.col("team") == "audit").then(pl.lit("robert")).otherwise("user"))
    sql = "SELECT e.id, t.team FROM events e JOIN teams t ON e.user = t.user AND e.user = t.nick"
    got = rl.sql(sql, events=_stream(events, size), teams=teams).collect(progress=False)
    assert_same_rows(got, duck(sql, events=events, teams=teams))


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.xfail(strict=True, reason="documented limit: key types are known when the run starts, where a "
                                       "mismatch is a SchemaError naming both types")
def test_keys_of_different_types_are_an_sql_error_at_the_condition() -> None:
    sql = "SELECT e.id, t.team FROM events e JOIN teams t ON e.region = t.region"
    teams = _teams().with_columns(pl.col("region").cast(pl.String))
    with pytest.raises(rl.SqlError) as err:
        rl.sql(sql, events=rl.stream(_events(20), time="ts"), teams=teams).collect(progress=False)
    first = str(err.value).splitlines()[0]
    assert re.search(r"region", first) and re.search(r"(?i)cast", first), str(err.value)
    assert err.value.line == 1 and err.value.column > sql.index(" ON "), str(err.value)


def test_an_alias_taken_twice_is_refused_as_such() -> None:
    sql = "SELECT e.id FROM events e JOIN teams e ON e.user = e.user"
    with pytest.raises(rl.SqlError) as err:
        rl.sql(sql, events=rl.stream(_events(20), time="ts"), teams=_teams()).collect(progress=False)
    first = str(err.value).splitlines()[0]
    assert re.search(r"(?i)\be\b.*(twice|already|more than once|both|duplicate)", first), str(err.value)


# -- late rows of an interval join ----------------------------------------------------------
RIGHT_JOIN = ("SELECT a.id, b.rid FROM b RIGHT JOIN a ON a.user = b.user "
              "AND b.t BETWEEN a.t AND a.t + INTERVAL '15' SECOND")


def _late_inputs(size: int | None) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, rl.Stream]]:
    a, b = _pairs(200, 7, "id", disorder_s=40, keys=4), _pairs(200, 8, "rid", disorder_s=40, keys=4)
    return a, b, {"a": _stream(a, size, "t", "5s"), "b": _stream(b, size, "t", "5s")}


def _late(df: pl.DataFrame) -> pl.DataFrame:
    """The rows behind the largest earlier time by more than 5 s (the watermark's delay)."""
    before = df["t"].cum_max().shift(1)
    return df.filter(before.is_not_null() & (pl.col("t") < before - dt.timedelta(seconds=5)))


@SIZES
@pytest.mark.xfail(strict=True, reason="documented: in 'b RIGHT JOIN a', run.late's sides are those of "
                                       "the LEFT JOIN it is read as (a is 'left')")
def test_late_rows_of_a_right_interval_join_carry_the_side_they_have_in_the_sql(size: int | None) -> None:
    a, b, inputs = _late_inputs(size)
    late = rl.sql(RIGHT_JOIN, **inputs).run(progress=False).late
    assert _late(a).height and _late(b).height
    assert late.filter(pl.col("side") == "left")["rid"].sort().to_list() == _late(b)["rid"].sort().to_list()
    assert late.filter(pl.col("side") == "right")["id"].sort().to_list() == _late(a)["id"].sort().to_list()


@SIZES
@pytest.mark.parametrize("sql", [
    RIGHT_JOIN,
    "SELECT a.id, b.rid FROM a LEFT JOIN b ON a.user = b.user AND b.t BETWEEN a.t AND a.t + INTERVAL '15' SECOND",
], ids=["right", "left"])
def test_late_rows_of_an_outer_interval_join_hold_the_python_apis_columns(sql: str, size: int | None) -> None:
    a, b, inputs = _late_inputs(size)
    late = rl.sql(sql, **inputs).run(progress=False).late
    python = (_stream(a, size, "t", "5s")
              .join_interval(_stream(b, size, "t", "5s"), on="user", lower="0s", upper="15s", how="left")
              .run(progress=False).late)
    assert late.height == python.height > 0
    assert sorted(late.columns) == sorted(python.columns), (late.columns, python.columns)


# -- window joins ---------------------------------------------------------------------------
def _per_minute(name: str, count: str) -> str:
    return (f"(SELECT user, window_start, window_end, COUNT(*) AS {count} "
            f"FROM TABLE(TUMBLE(TABLE {name}, DESCRIPTOR(t), INTERVAL '1' MINUTE)) "
            "GROUP BY user, window_start, window_end)")


WINDOW_JOIN_DUCK = """SELECT l.user, l.we AS window_end, l.n, r.m
    FROM (SELECT user, time_bucket(INTERVAL 1 MINUTE, t) + INTERVAL 1 MINUTE AS we, COUNT(*) AS n FROM a GROUP BY ALL) l
    JOIN (SELECT user, time_bucket(INTERVAL 1 MINUTE, t) + INTERVAL 1 MINUTE AS we, COUNT(*) AS m FROM b GROUP BY ALL) r
    ON l.user = r.user AND l.we = r.we"""


@SIZES
@pytest.mark.parametrize("bound", [
    # docs/sql.md's spelling; it runs when the windowed queries are rl.sql inputs, not sub-queries
    "r.window_end BETWEEN l.window_end AND l.window_end",
    # Flink's window join
    "l.window_start = r.window_start AND l.window_end = r.window_end",
], ids=["between_window_ends", "flink_equal_bounds"])
def test_a_window_join_of_two_windowed_sub_queries_equals_duckdb(bound: str, size: int | None) -> None:
    a, b = _pairs(300, 12, "id", keys=5), _pairs(300, 13, "rid", keys=5)
    sql = (f"SELECT l.user, l.window_end, l.n, r.m FROM {_per_minute('a', 'n')} l "
           f"JOIN {_per_minute('b', 'm')} r ON l.user = r.user AND {bound}")
    run = rl.sql(sql, a=_stream(a, size, "t", "30s"), b=_stream(b, size, "t", "30s")).run(progress=False)
    assert run.late.height == 0
    assert_same_sorted(run.output, duck(WINDOW_JOIN_DUCK, a=a, b=b))
