"""Stream-table joins: ``Stream.join``, ``Stream.join_asof`` and ``rl.reference``.

Every result is checked against an oracle over the same whole frames: polars'
``DataFrame.join`` (``maintain_order="left_right"``: stream order, then table order, is part
of the contract, so those comparisons are exact) and ``DataFrame.join_asof(strategy=
"backward")``, DuckDB's ASOF JOIN, and a brute-force as-of in plain Python, at batch sizes 1,
7 and whole. Real data: CloudTrail records enriched with a table of their users (and counted
per team per minute), and NYC departures with the weather at their airport as of their time.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from conftest import batches
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rillet as rl
from rillet import _clock

SIZES = pytest.mark.parametrize("size", [1, 7, None])
ALL_SIZES = (1, 7, None)
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLOUDTRAIL = DATA / "cloudtrail_invictus" / "cloudtrail.jsonl"
FLIGHTS = DATA / "nycflights13" / "flights.csv"
WEATHER = DATA / "nycflights13" / "weather.csv"
BASE = dt.datetime(2026, 1, 1)


# -- running and the oracles ----------------------------------------------------------------
def _stream(df: pl.DataFrame, size: int | None, time: str = "t", watermark: Any = 0) -> rl.Stream:
    return rl.stream(batches(df, size), time=time, watermark=watermark)


def _collect(s: Any) -> pl.DataFrame:
    return s.collect(progress=False)


def polars_join(events: pl.DataFrame, table: pl.DataFrame, how: str = "left",
                on: str | Sequence[str] | None = None, left_on: str | Sequence[str] | None = None,
                right_on: str | Sequence[str] | None = None, suffix: str = "_right") -> pl.DataFrame:
    """polars' join as the contract states it: stream order, then table order, kept."""
    return events.join(table, on=on, left_on=left_on, right_on=right_on, how=how, suffix=suffix,
                       maintain_order="left_right")


def _as_dtype(col: pl.Expr, source: pl.DataType, target: pl.DataType) -> pl.Expr:
    """A time column of the table in the stream's time type (naive datetimes mean UTC)."""
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime):
        if source.time_zone is None and target.time_zone is not None:
            col = col.dt.replace_time_zone("UTC").dt.convert_time_zone(target.time_zone)
        elif source.time_zone is not None and target.time_zone is None:
            col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return col.cast(target)


def _parsed_time(events: pl.DataFrame, time: str) -> pl.Expr:
    """The stream's event time as the engine reads it: ISO 8601 text as Datetime("us", "UTC")."""
    if events.schema[time] == pl.String:
        return pl.col(time).str.to_datetime(time_zone="UTC", time_unit="us")
    return pl.col(time)


def _table_part(events: pl.DataFrame, table: pl.DataFrame, time: str, on: str, by: list[str],
                suffix: str) -> pl.DataFrame:
    """The table's columns an as-of join adds: all but its ``by`` keys (and its time column
    when it has the stream's time column's name), suffixed where the stream has the name."""
    keep = [c for c in table.columns if c not in by and not (c == on and on == time)]
    return table.select([pl.col(c).alias(c + suffix if c in events.columns else c) for c in keep])


def polars_asof(events: pl.DataFrame, table: pl.DataFrame, time: str, on: str | None = None,
                by: str | Sequence[str] | None = None, tolerance: Any = None,
                suffix: str = "_right") -> pl.DataFrame:
    """polars' backward ``join_asof`` per stream row, in stream order; the table's time is cast
    to the stream's time type; table rows with a null time never match."""
    on = on or time
    by_cols = [by] if isinstance(by, str) else list(by or [])
    left = events.with_row_index("__row").with_columns(_parsed_time(events, time).alias("__t"))
    right = (table.with_row_index("__trow")
             .filter(pl.col(on).is_not_null())
             .with_columns(_as_dtype(pl.col(on), table.schema[on], left.schema["__t"]).alias("__on"))
             .sort("__on", maintain_order=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sortedness cannot be checked with by groups"
        joined = left.sort("__t", maintain_order=True).join_asof(
            right.select("__on", "__trow", *by_cols), left_on="__t", right_on="__on",
            by=by_cols or None, strategy="backward", tolerance=tolerance)
    matched = joined.sort("__row")["__trow"]
    return _gather(events, table, matched, time, on, by_cols, suffix)


def _gather(events: pl.DataFrame, table: pl.DataFrame, matched: pl.Series | list[int | None],
            time: str, on: str, by: list[str], suffix: str) -> pl.DataFrame:
    """The stream's rows with the table row of index ``matched[i]`` (None: nulls)."""
    part = _table_part(events, table, time, on, by, suffix).with_row_index("__m")
    left = events.with_columns(pl.Series("__m", list(matched), dtype=pl.UInt32))
    return left.join(part, on="__m", how="left", maintain_order="left").drop("__m")


def brute_asof(events: pl.DataFrame, table: pl.DataFrame, time: str, on: str | None = None,
               by: str | Sequence[str] | None = None, tolerance: int | None = None,
               suffix: str = "_right") -> pl.DataFrame:
    """The as-of join row by row in plain Python (integer times): for each stream row, the
    table row with equal non-null ``by`` keys whose time is the latest at or before the row's
    (within ``tolerance``), the last in table order among equals."""
    on = on or time
    by_cols = [by] if isinstance(by, str) else list(by or [])
    rows = events.to_dicts()
    trows = table.to_dicts()
    matched: list[int | None] = []
    for r in rows:
        best: tuple[int, int] | None = None
        for i, tr in enumerate(trows):
            if tr[on] is None or r[time] is None or tr[on] > r[time]:
                continue
            if tolerance is not None and r[time] - tr[on] > tolerance:
                continue
            if any(r[b] is None or tr[b] != r[b] for b in by_cols):
                continue
            if best is None or (tr[on], i) >= best:
                best = (tr[on], i)
        matched.append(None if best is None else best[1])
    return _gather(events, table, matched, time, on, by_cols, suffix)


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns, nulls_last=True)


# -- small frames ---------------------------------------------------------------------------
def _events() -> pl.DataFrame:
    """Users of a stream: keys the table has, one it lacks (dave), and nulls; out of order."""
    return pl.DataFrame({
        "t": [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3],
        "user": ["ann", "bob", None, "dave", "ann", "cy", "bob", "ann", None, "dave", "cy", "bob",
                 "ann", "eve", "bob", "cy"],
        "region": [1, 1, 2, 1, 2, 1, None, 1, 2, 2, 1, 2, 1, 1, 1, 2],
        "x": list(range(16)),
    })


def _teams() -> pl.DataFrame:
    """A table with a duplicate key (bob: two teams), a null key, and a column ``x`` the stream
    has too (so it takes the suffix)."""
    return pl.DataFrame({
        "user": ["ann", "bob", "cy", "bob", None, "eve"],
        "region": [1, 1, 1, 2, 2, 1],
        "team": ["red", "blue", "green", "audit", "nobody", "red"],
        "x": [10, 20, 30, 40, 50, 60],
    })


# -- join: polars' DataFrame.join per row ---------------------------------------------------
@SIZES
@pytest.mark.parametrize("how", ["left", "inner"])
@pytest.mark.parametrize("on", ["user", ["user", "region"]], ids=["one_key", "two_keys"])
def test_join_equals_polars_join_in_stream_then_table_order(size: int | None, how: str,
                                                            on: Any) -> None:
    events, teams = _events(), _teams()
    got = _collect(_stream(events, size).join(teams, on=on, how=how))
    want = polars_join(events, teams, how=how, on=on)
    added = ["region_right", "team", "x_right"] if on == "user" else ["team", "x_right"]
    assert got.columns == ["t", "user", "region", "x", *added]
    assert_frame_equal(got, want)


@SIZES
@pytest.mark.parametrize("how", ["left", "inner"])
def test_integer_keys_and_one_to_many_matches(size: int | None, how: str) -> None:
    events = pl.DataFrame({"t": list(range(12)), "account": [7, 3, None, 7, 1, 9, 3, 7, 1, 1, None, 9]})
    table = pl.DataFrame({"account": [7, 1, 7, None, 3, 7], "role": ["a", "b", "c", "d", "e", "f"]})
    got = _collect(_stream(events, size).join(table, on="account", how=how))
    assert_frame_equal(got, polars_join(events, table, how=how, on="account"))
    # one output row per match: account 7 has three
    assert got.filter(pl.col("account") == 7).height == 3 * 3


@SIZES
def test_null_keys_never_match_even_a_null_in_the_table(size: int | None) -> None:
    events = pl.DataFrame({"t": [1, 2, 3, 4], "user": [None, "ann", None, "bob"], "k2": [1, None, None, 2]})
    table = pl.DataFrame({"user": [None, "ann", "bob", None], "k2": [1, None, 2, None], "v": [1, 2, 3, 4]})
    for on in ("user", ["user", "k2"]):
        left = _collect(_stream(events, size).join(table, on=on, how="left"))
        inner = _collect(_stream(events, size).join(table, on=on, how="inner"))
        assert_frame_equal(left, polars_join(events, table, "left", on=on))
        assert_frame_equal(inner, polars_join(events, table, "inner", on=on))
    # the null-keyed stream rows are kept by a left join, and unmatched
    assert left.filter(pl.col("user").is_null())["v"].to_list() == [None, None]


@SIZES
@pytest.mark.parametrize("how", ["left", "inner"])
def test_left_on_right_on_drops_the_tables_key(size: int | None, how: str) -> None:
    events = _events().with_columns(user_arn=pl.lit("stream's own column"))
    table = _teams().rename({"user": "arn"})
    got = _collect(_stream(events, size).join(table, left_on="user", right_on="arn", how=how))
    want = polars_join(events, table, how=how, left_on="user", right_on="arn")
    assert "arn" not in got.columns
    assert_frame_equal(got, want)
    two = _collect(_stream(events, size).join(table, left_on=["user", "region"],
                                              right_on=["arn", "region"], how=how))
    assert_frame_equal(two, polars_join(events, table, how=how, left_on=["user", "region"],
                                        right_on=["arn", "region"]))


@SIZES
def test_name_clashes_take_the_suffix(size: int | None) -> None:
    events = _events().with_columns(team=pl.lit("mine"))
    teams = _teams()
    got = _collect(_stream(events, size).join(teams, on="user", how="left", suffix="_tbl"))
    want = polars_join(events, teams, "left", on="user", suffix="_tbl")
    assert got.columns == ["t", "user", "region", "x", "team", "region_tbl", "team_tbl", "x_tbl"]
    assert_frame_equal(got, want)


@SIZES
@pytest.mark.parametrize("kind", ["DataFrame", "LazyFrame", "Arrow"])
def test_the_table_may_be_a_lazyframe_or_an_arrow_table(size: int | None, kind: str) -> None:
    events, teams = _events(), _teams()
    table: Any = {"DataFrame": teams, "LazyFrame": teams.lazy(),
                  # pa.string() (not polars' large string): both strings, so the key joins
                  "Arrow": pa.table({c: pa.array(teams[c].to_list(),
                                                 pa.string() if teams[c].dtype == pl.String else pa.int64())
                                     for c in teams.columns})}[kind]
    got = _collect(_stream(events, size).join(table, on="user", how="left"))
    assert_frame_equal(got, polars_join(events, teams, "left", on="user"))


@SIZES
@pytest.mark.parametrize(("stream_type", "table_type"), [
    (pl.Int64, pl.Int32), (pl.Int32, pl.Int64), (pl.UInt16, pl.Int64), (pl.Int8, pl.Int64),
])
def test_integer_keys_of_other_widths_are_cast_to_the_streams_type(
        size: int | None, stream_type: pl.DataType, table_type: pl.DataType) -> None:
    events = pl.DataFrame({"t": [1, 2, 3, 4, 5], "k": [1, 2, 3, None, 100]},
                          schema={"t": pl.Int64, "k": stream_type})
    # -1 and 300 do not fit some stream types: such table rows cannot equal any stream key
    table = pl.DataFrame({"k": [2, 1, -1, 300, 100, 2], "v": ["a", "b", "c", "d", "e", "f"]},
                         schema={"k": table_type, "v": pl.String})
    got = _collect(_stream(events, size).join(table, on="k", how="left"))
    want = polars_join(events, table.with_columns(pl.col("k").cast(stream_type, strict=False)),
                       "left", on="k")
    assert got.schema["k"] == stream_type
    assert_frame_equal(got, want)


@SIZES
def test_a_categorical_table_key_joins_a_string_stream_key(size: int | None) -> None:
    events, teams = _events(), _teams()
    table = teams.with_columns(pl.col("user").cast(pl.Categorical))
    got = _collect(_stream(events, size).join(table, on="user", how="left"))
    assert_frame_equal(got, polars_join(events, teams, "left", on="user"))


@SIZES
def test_float_keys_match_as_polars_and_duckdb_compare_them(size: int | None) -> None:
    """Float keys (the same type on both sides) join by value as polars and DuckDB do:
    0.0 equals -0.0, NaN equals NaN; a null matches nothing."""
    events = pl.DataFrame({"t": [1, 2, 3, 4, 5], "k": [0.0, -0.0, float("nan"), None, 1.5]})
    table = pl.DataFrame({"k": [-0.0, 0.0, float("nan"), None, 1.5], "v": [1, 2, 3, 4, 5]})
    got = _collect(_stream(events, size).join(table, on="k", how="left"))
    assert_frame_equal(got, polars_join(events, table, "left", on="k"))
    duck = duckdb.connect()
    duck.register("s", events)
    duck.register("tb", table)
    pairs = duck.sql("SELECT s.t, tb.v FROM s JOIN tb ON s.k = tb.k ORDER BY s.t, tb.v").fetchall()
    assert sorted(got.filter(pl.col("v").is_not_null()).select("t", "v").rows()) == pairs


@SIZES
def test_an_empty_table_gives_nulls_left_and_nothing_inner(size: int | None) -> None:
    events, teams = _events(), _teams().clear()
    left = _collect(_stream(events, size).join(teams, on="user", how="left"))
    inner = _collect(_stream(events, size).join(teams, on="user", how="inner"))
    assert_frame_equal(left, polars_join(events, teams, "left", on="user"))
    assert_frame_equal(inner, polars_join(events, teams, "inner", on="user"))
    assert inner.height == 0 and inner.columns == left.columns


def test_an_empty_stream_keeps_the_joined_schema() -> None:
    events, teams = _events().clear(), _teams()
    got = _collect(_stream(events, None).join(teams, on="user", how="left"))
    assert_frame_equal(got, polars_join(events, teams, "left", on="user"))


@SIZES
def test_steps_before_and_after_the_join(size: int | None) -> None:
    events, teams = _events(), _teams()
    got = _collect(_stream(events, size)
                   .with_columns(pl.col("user").str.to_uppercase().alias("USER"))
                   .join(teams.with_columns(pl.col("user").str.to_uppercase().alias("USER")).drop("user"),
                         on="USER", how="inner")
                   .filter(pl.col("team") != "blue")
                   .with_columns(total=pl.col("x") + pl.col("x_right")))
    want = (polars_join(events.with_columns(pl.col("user").str.to_uppercase().alias("USER")),
                        teams.with_columns(pl.col("user").str.to_uppercase().alias("USER")).drop("user"),
                        "inner", on="USER")
            .filter(pl.col("team") != "blue")
            .with_columns(total=pl.col("x") + pl.col("x_right")))
    assert_frame_equal(got, want)


@SIZES
def test_run_passes_the_joined_rows_through(size: int | None) -> None:
    events, teams = _events(), _teams()
    run = _stream(events, size).join(teams, on="user", how="inner").run(progress=False)
    assert_frame_equal(run.output, polars_join(events, teams, "inner", on="user"))
    assert run.late.height == 0 and run.rejected.height == 0


# -- real data: CloudTrail users enriched with their teams ----------------------------------
def _cloudtrail() -> pl.DataFrame:
    if not CLOUDTRAIL.exists():
        pytest.skip("shared data not present")
    return (pl.read_ndjson(CLOUDTRAIL, schema_overrides={"eventTime": pl.String})
            .select(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"),
                    "eventSource", "eventName",
                    pl.col("userIdentity").struct.field("arn").alias("arn")))


def _memberships(records: pl.DataFrame) -> pl.DataFrame:
    """A team table built from the records' users: every user but the last in one team, every
    third also in "audit" (one-to-many); the last user is missing from the table."""
    arns = records["arn"].drop_nulls().unique().sort().to_list()[:-1]
    rows = [(a, ["red", "blue", "green"][i % 3], i + 1) for i, a in enumerate(arns)]
    rows += [(a, "audit", 100) for i, a in enumerate(arns) if i % 3 == 0]
    return pl.DataFrame(rows, schema={"user_arn": pl.String, "team": pl.String, "weight": pl.Int64},
                        orient="row")


@SIZES
@pytest.mark.parametrize("how", ["left", "inner"])
def test_cloudtrail_records_enriched_with_teams_equal_polars(size: int | None, how: str) -> None:
    records = _cloudtrail()
    teams = _memberships(records)
    s = rl.stream(batches(records, size), time="eventTime", watermark="10m")
    got = _collect(s.join(teams, left_on="arn", right_on="user_arn", how=how))
    want = polars_join(records, teams, how, left_on="arn", right_on="user_arn")
    assert_frame_equal(got, want)
    assert got.height > records.height if how == "left" else got["team"].null_count() == 0


@SIZES
@pytest.mark.parametrize("how", ["left", "inner"])
def test_join_then_window_counts_and_sums_per_team_per_minute(size: int | None, how: str) -> None:
    records = _cloudtrail()
    teams = _memberships(records)
    s = rl.stream(batches(records, size), time="eventTime", watermark="10m")
    run = (s.join(teams, left_on="arn", right_on="user_arn", how=how)
           .window(rl.tumbling("1m"), by="team").agg(rl.count(), rl.sum("weight"))
           .run(progress=False))
    assert run.late.height == 0  # the records are at most 579 s out of order
    joined = polars_join(records, teams, how, left_on="arn", right_on="user_arn")
    want = (joined.group_by(pl.col("eventTime").dt.truncate("1m").alias("window_start"), "team")
            .agg(pl.len().cast(pl.Int64).alias("count"),
                 # a sum over no values is null (rillet's sum), not polars' 0
                 pl.when(pl.col("weight").count() > 0).then(pl.col("weight").sum()).alias("weight_sum"))
            .with_columns(window_end=pl.col("window_start") + pl.duration(minutes=1))
            .select("team", "window_start", "window_end", "count", "weight_sum"))
    got = run.output
    assert got.columns == want.columns
    assert_frame_equal(_sorted(got), _sorted(want.cast(got.schema)))
    # DuckDB on the same rows: the same counts per team and minute
    con = duckdb.connect()
    con.register("j", joined.with_columns(pl.col("eventTime").dt.replace_time_zone(None)))
    duck = con.sql("""SELECT team, time_bucket(INTERVAL 1 MINUTE, "eventTime") AS ws, count(*) AS n
                      FROM j GROUP BY ALL""").pl()
    mine = got.select("team", pl.col("window_start").dt.replace_time_zone(None).alias("ws"),
                      pl.col("count").alias("n"))
    assert_frame_equal(_sorted(mine), _sorted(duck.cast(mine.schema)))


# -- join_asof: polars' join_asof(strategy="backward") per row ------------------------------
def _rates() -> pl.DataFrame:
    """Unsorted, with ties (cy at 4 twice: the later one in table order wins), a null time
    and a null key."""
    return pl.DataFrame({
        "user": ["ann", "bob", "cy", "ann", "cy", "cy", "bob", None, "ann", "eve"],
        "valid_from": [5, 0, 4, 0, 4, 1, None, 0, 9, 2],
        "rate": [1.5, 2.0, 3.0, 1.0, 3.5, 2.5, 9.9, 7.7, 1.9, 4.0],
        "x": [100, 101, 102, 103, 104, 105, 106, 107, 108, 109],
    })


@SIZES
@pytest.mark.parametrize("by", [None, "user", ["user", "region"]], ids=["no_by", "by_user", "by_two"])
@pytest.mark.parametrize("tolerance", [None, 2])
def test_join_asof_with_integer_times_equals_polars_and_brute_force(
        size: int | None, by: Any, tolerance: int | None) -> None:
    events = _events()
    rates = _rates().with_columns(region=pl.Series([1, 1, 1, 1, 2, 1, 1, 1, 1, 1]))
    got = _collect(_stream(events, size).join_asof(rates, on="valid_from", by=by, tolerance=tolerance))
    want = polars_asof(events, rates, "t", on="valid_from", by=by, tolerance=tolerance)
    assert_frame_equal(got, want)
    assert_frame_equal(got, brute_asof(events, rates, "t", on="valid_from", by=by, tolerance=tolerance))
    assert got.height == events.height  # never drops a row


@SIZES
def test_join_asof_ties_take_the_last_table_row(size: int | None) -> None:
    events = pl.DataFrame({"t": [4, 5, 3], "user": ["cy", "cy", "cy"]})
    rates = pl.DataFrame({"user": ["cy", "cy", "cy", "cy"], "valid_from": [4, 4, 1, 4],
                          "rate": [3.0, 3.5, 2.5, 3.25]})
    got = _collect(_stream(events, size).join_asof(rates, on="valid_from", by="user"))
    assert got["rate"].to_list() == [3.25, 3.25, 2.5]
    assert_frame_equal(got, polars_asof(events, rates, "t", on="valid_from", by="user"))


@SIZES
def test_join_asof_on_the_streams_time_name_drops_the_tables_time(size: int | None) -> None:
    events = _events()
    rates = _rates().rename({"valid_from": "t"})
    got = _collect(_stream(events, size).join_asof(rates, by="user"))  # on defaults to "t"
    assert got.columns == ["t", "user", "region", "x", "rate", "x_right"]
    assert_frame_equal(got, polars_asof(events, rates, "t", by="user"))


def _dt_events(unit: str, tz: str | None) -> pl.DataFrame:
    secs = [30, 5, 61, 61, 125, 3600, 7, 599, 600, 601]
    return pl.DataFrame({
        "ts": [BASE + dt.timedelta(seconds=s) for s in secs],
        "user": ["ann", "bob", "ann", "cy", "bob", "ann", None, "cy", "cy", "cy"],
    }).with_columns(pl.col("ts").dt.replace_time_zone(tz).dt.cast_time_unit(unit))


def _dt_rates(unit: str, tz: str | None) -> pl.DataFrame:
    secs = [0, 60, 0, 120, 1, 600, 10, 590]
    return pl.DataFrame({
        "user": ["ann", "ann", "bob", "bob", "cy", "cy", "ann", "cy"],
        "valid_from": [BASE + dt.timedelta(seconds=s) for s in secs],
        "rate": [1.0, 1.1, 2.0, 2.1, 3.0, 3.1, 1.05, 3.05],
    }).with_columns(pl.col("valid_from").dt.replace_time_zone(tz).dt.cast_time_unit(unit))


@SIZES
@pytest.mark.parametrize(("stream_unit", "table_unit"), [
    ("us", "us"), ("us", "ns"), ("ns", "us"), ("us", "ms"), ("ms", "ns"),
])
@pytest.mark.parametrize("tolerance", [None, "10m"])
def test_join_asof_across_datetime_units(size: int | None, stream_unit: str, table_unit: str,
                                         tolerance: str | None) -> None:
    events, rates = _dt_events(stream_unit, None), _dt_rates(table_unit, None)
    got = _collect(_stream(events, size, time="ts").join_asof(rates, on="valid_from", by="user",
                                                               tolerance=tolerance))
    want = polars_asof(events, rates, "ts", on="valid_from", by="user", tolerance=tolerance)
    assert got.schema["valid_from"] == pl.Datetime(table_unit)  # the table's column as it was
    assert_frame_equal(got, want)


@SIZES
@pytest.mark.parametrize(("stream_tz", "table_tz"), [("UTC", None), (None, "UTC"), ("UTC", "UTC")])
def test_join_asof_naive_datetimes_mean_utc(size: int | None, stream_tz: str | None,
                                            table_tz: str | None) -> None:
    events, rates = _dt_events("us", stream_tz), _dt_rates("us", table_tz)
    got = _collect(_stream(events, size, time="ts").join_asof(rates, on="valid_from", by="user"))
    assert_frame_equal(got, polars_asof(events, rates, "ts", on="valid_from", by="user"))


@SIZES
def test_join_asof_reads_iso_string_times_as_the_engine_does(size: int | None) -> None:
    events = pl.DataFrame({
        "ts": ["2026-01-01T00:00:30Z", "2026-01-01T00:00:05Z", "2026-01-01T00:01:01.500Z",
               "2026-01-01T02:01:01+01:00", "2026-01-01T00:02:05Z", "2026-01-01T00:09:59Z"],
        "user": ["ann", "bob", "ann", "cy", "bob", "cy"],
    })
    # the engine's reading of the text is polars' (a sanity check of the oracle's input)
    seen = rl.stream(events, time="ts").head(10)
    assert seen["ts"].to_list() == events.select(_parsed_time(events, "ts"))["ts"].to_list()
    for table_tz in ("UTC", None):
        rates = _dt_rates("us", table_tz)
        got = _collect(_stream(events, size, time="ts").join_asof(rates, on="valid_from", by="user",
                                                                   tolerance="10m"))
        assert_frame_equal(got, polars_asof(events, rates, "ts", on="valid_from", by="user",
                                            tolerance="10m"))
        assert got.schema["ts"] == pl.String  # the stream's column as it came


@pytest.mark.parametrize(("stream_unit", "table_unit", "stream_ns", "table_ns", "tolerance", "match"), [
    ("ns", "us", 5_000_000_500, 5_000_000_000, None, True),      # the table row is 500 ns before
    ("us", "ns", 5_000_000_000, 5_000_000_500, None, False),     # ... 500 ns after: not yet valid
    ("ms", "ns", 5_000_000_000, 3_999_999_999, "1s", False),     # 1 s + 1 ns before: past tolerance
    ("ns", "ms", 5_000_000_000, 4_000_000_000, "1s", True),      # exactly 1 s: within it
])
def test_join_asof_compares_exact_instants_across_units(
        stream_unit: str, table_unit: str, stream_ns: int, table_ns: int, tolerance: str | None,
        match: bool) -> None:
    """Times of different units are compared as the instants they are, not truncated to the
    coarser unit (polars would need both cast to one unit first; this states the instants)."""
    events = pl.DataFrame({"ts": [stream_ns], "user": ["a"]}).with_columns(
        pl.col("ts").cast(pl.Datetime("ns")).dt.cast_time_unit(stream_unit))
    rates = pl.DataFrame({"user": ["a"], "valid_from": [table_ns], "v": [1]}).with_columns(
        pl.col("valid_from").cast(pl.Datetime("ns")).dt.cast_time_unit(table_unit))
    # the instants are representable in both units
    assert events["ts"].dt.epoch("ns").to_list() == [stream_ns]
    assert rates["valid_from"].dt.epoch("ns").to_list() == [table_ns]
    got = _collect(_stream(events, None, time="ts").join_asof(rates, on="valid_from", by="user",
                                                              tolerance=tolerance))
    assert got["v"].to_list() == ([1] if match else [None])


@pytest.mark.parametrize(("stream_unit", "table_unit", "stream_years", "table_years"), [
    ("ms", "ns", [2500, 2020, 2263], [2200, 2000]),   # stream times after the ns range
    ("us", "ns", [2500, 2020, 2263], [2200, 2000]),
    ("ns", "ms", [1700, 2020, 2200], [1500, 1690, 2000]),  # table times before the ns range
    ("ns", "us", [1700, 2020, 2200], [1500, 2000]),
])
@pytest.mark.parametrize("tolerance_days", [None, 36_500, 5_000])
def test_join_asof_tolerance_across_units_outside_the_nanosecond_range(
        stream_unit: str, table_unit: str, stream_years: list[int], table_years: list[int],
        tolerance_days: int | None) -> None:
    """Instants a nanosecond column cannot hold (before 1677, after 2262) are still compared
    exactly with the other side's, tolerance included (oracle: Python datetimes)."""
    times = [dt.datetime(y, 1, 1) for y in stream_years]
    valid = [dt.datetime(y, 1, 1) for y in table_years]
    events = pl.DataFrame({"ts": times, "user": ["a"] * len(times)}).with_columns(
        pl.col("ts").dt.cast_time_unit(stream_unit))
    rates = pl.DataFrame({"user": ["a"] * len(valid), "valid_from": valid, "v": list(range(len(valid)))}
                         ).with_columns(pl.col("valid_from").dt.cast_time_unit(table_unit))
    tolerance = None if tolerance_days is None else dt.timedelta(days=tolerance_days)
    want = []
    for t in times:  # the latest table row at or before t, if within the tolerance
        latest = max(((vf, i) for i, vf in enumerate(valid) if vf <= t), default=None)
        fits = latest is not None and (tolerance is None or t - latest[0] <= tolerance)
        want.append(latest[1] if fits and latest is not None else None)
    got = _collect(_stream(events, None, time="ts").join_asof(
        rates, on="valid_from", by="user", tolerance=None if tolerance_days is None else f"{tolerance_days}d"))
    assert got["v"].to_list() == want


def test_a_csv_reference_with_iso_times_is_usable_or_says_how(tmp_path: Path) -> None:
    """polars reads a CSV's ISO 8601 times as text. An as-of join with such a reference reads
    them as the engine reads the stream's ISO text; or, refused, the error names the column and
    its type as polars names it, and how to read them as datetimes (try_parse_dates=True)."""
    path = tmp_path / "rates.csv"
    rates = _dt_rates("us", "UTC")
    rates.with_columns(pl.col("valid_from").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    events = _dt_events("us", "UTC")
    try:
        got = _collect(_stream(events, 7, time="ts").join_asof(rl.reference(path), on="valid_from", by="user"))
    except rl.SchemaError as e:
        assert "valid_from" in str(e) and "String" in str(e) and "try_parse_dates" in str(e), str(e)
    else:
        want = polars_asof(events, rates, "ts", on="valid_from", by="user")
        assert_frame_equal(got.drop("valid_from"), want.drop("valid_from"))
    parsed = _collect(_stream(events, 7, time="ts")
                      .join_asof(rl.reference(path, try_parse_dates=True), on="valid_from", by="user"))
    assert_frame_equal(parsed, polars_asof(events, pl.read_csv(path, try_parse_dates=True), "ts",
                                           on="valid_from", by="user"))


@SIZES
def test_join_asof_then_window(size: int | None) -> None:
    events = _dt_events("us", None)
    rates = _dt_rates("ms", None)
    got = (_stream(events, size, time="ts", watermark="2h").join_asof(rates, on="valid_from", by="user")
           .window(rl.tumbling("1m"), by="user").agg(rl.count(), rl.sum("rate")).collect(progress=False))
    joined = polars_asof(events, rates, "ts", on="valid_from", by="user")
    want = (joined.group_by(pl.col("ts").dt.truncate("1m").alias("window_start"), "user")
            .agg(pl.len().cast(pl.Int64).alias("count"),
                 pl.when(pl.col("rate").count() > 0).then(pl.col("rate").sum()).alias("rate_sum"))
            .with_columns(window_end=pl.col("window_start") + pl.duration(minutes=1))
            .select("user", "window_start", "window_end", "count", "rate_sum"))
    assert_frame_equal(_sorted(got), _sorted(want.cast(got.schema)))


# -- real data: each departure with its airport's weather as of its time -------------------
def _flights() -> pl.DataFrame:
    """NYC departures scheduled on 1 January 2013, in file order; event time = the actual
    departure (UTC)."""
    if not FLIGHTS.exists():
        pytest.skip("shared data not present")
    f = pl.read_csv(FLIGHTS, null_values="NA", n_rows=1000, infer_schema_length=None)
    dep = (pl.datetime("year", "month", "day", pl.col("sched_dep_time") // 100,
                       pl.col("sched_dep_time") % 100, time_zone="America/New_York")
           + pl.duration(minutes=pl.col("dep_delay")))
    return (f.with_columns(dep.dt.convert_time_zone("UTC").alias("dep_at"))
            .filter(pl.col("dep_at").is_not_null())
            .select("dep_at", "time_hour", "origin", "carrier", "flight", "dep_delay", "year", "month", "day"))


def _weather() -> pl.DataFrame:
    return (pl.read_csv(WEATHER, null_values="NA", infer_schema_length=None)
            .filter(pl.col("month") == 1, pl.col("day") <= 4)
            .with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC", time_unit="us"))
            .select("origin", "time_hour", "temp", "humid", "pressure", "year", "month", "day", "hour"))


@SIZES
def test_flights_with_the_weather_as_of_departure_equal_polars_and_duckdb(size: int | None) -> None:
    flights, weather = _flights(), _weather()
    got = _collect(rl.stream(batches(flights, size), time="dep_at", watermark="1d")
                   .join_asof(weather, on="time_hour", by="origin", tolerance="2h"))
    want = polars_asof(flights, weather, "dep_at", on="time_hour", by="origin", tolerance="2h")
    # the table's time column is kept (another name than the stream's time), and its clashing
    # names take the suffix
    assert got.columns == [*flights.columns, "time_hour_right", "temp", "humid", "pressure",
                           "year_right", "month_right", "day_right", "hour"]
    assert_frame_equal(got, want)
    # DuckDB's ASOF JOIN (no ties: one reading per station and hour)
    con = duckdb.connect()
    con.register("f", flights.with_row_index("i").with_columns(pl.col("dep_at").dt.replace_time_zone(None)))
    con.register("w", weather.with_columns(pl.col("time_hour").dt.replace_time_zone(None)))
    duck = con.sql("""SELECT f.i, CASE WHEN f.dep_at - w.time_hour <= INTERVAL 2 HOUR THEN w.temp END AS temp
                      FROM f ASOF LEFT JOIN w ON f.origin = w.origin AND f.dep_at >= w.time_hour
                      ORDER BY f.i""").pl()
    assert got["temp"].to_list() == duck["temp"].to_list()
    assert got["temp"].null_count() < got.height // 10


@SIZES
def test_flights_on_their_scheduled_iso_hour_take_that_hours_weather(size: int | None) -> None:
    flights, weather = _flights().drop("dep_at"), _weather()
    got = _collect(rl.stream(batches(flights, size), time="time_hour", watermark="1d")
                   .join_asof(weather, by="origin"))  # on defaults to "time_hour": dropped
    want = polars_asof(flights, weather, "time_hour", by="origin")
    assert "time_hour_right" not in got.columns
    assert_frame_equal(got, want)


# -- a property: random streams and tables, every batch size --------------------------------
@st.composite
def stream_and_table(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = draw(st.integers(0, 20))
    m = draw(st.integers(0, 8))
    keys = st.sampled_from(["a", "b", "c", None])
    small = st.sampled_from([0, 1, None])
    events = pl.DataFrame({
        "t": draw(st.lists(st.integers(0, 30), min_size=n, max_size=n)),
        "k": draw(st.lists(keys, min_size=n, max_size=n)),
        "k2": draw(st.lists(small, min_size=n, max_size=n)),
        "x": list(range(n)),
    }, schema={"t": pl.Int64, "k": pl.String, "k2": pl.Int64, "x": pl.Int64})
    table = pl.DataFrame({
        "k": draw(st.lists(st.sampled_from(["a", "b", "d", None]), min_size=m, max_size=m)),
        "k2": draw(st.lists(small, min_size=m, max_size=m)),
        "vf": draw(st.lists(st.one_of(st.integers(0, 30), st.none()), min_size=m, max_size=m)),
        "x": [100 + i for i in range(m)],
        "v": draw(st.lists(st.integers(-5, 5), min_size=m, max_size=m)),
    }, schema={"k": pl.String, "k2": pl.Int64, "vf": pl.Int64, "x": pl.Int64, "v": pl.Int64})
    return events, table


@given(stream_and_table(), st.sampled_from(["left", "inner"]),
       st.sampled_from([["k"], ["k", "k2"]]))
def test_random_joins_equal_polars_at_every_batch_size(case: tuple[pl.DataFrame, pl.DataFrame],
                                                       how: str, on: list[str]) -> None:
    events, table = case
    want = polars_join(events, table, how, on=on)
    for size in ALL_SIZES:
        assert_frame_equal(_collect(_stream(events, size).join(table, on=on, how=how)), want)


@given(stream_and_table(), st.sampled_from([None, "k", ["k", "k2"]]), st.sampled_from([None, 0, 4]))
def test_random_asof_joins_equal_polars_and_brute_force_at_every_batch_size(
        case: tuple[pl.DataFrame, pl.DataFrame], by: Any, tolerance: int | None) -> None:
    events, table = case
    want = brute_asof(events, table, "t", on="vf", by=by, tolerance=tolerance)
    assert_frame_equal(want, polars_asof(events, table, "t", on="vf", by=by, tolerance=tolerance))
    for size in ALL_SIZES:
        got = _collect(_stream(events, size).join_asof(table, on="vf", by=by, tolerance=tolerance))
        assert_frame_equal(got, want)


def _brute_matches(events: pl.DataFrame, table: pl.DataFrame, by: list[str],
                   tolerance: int | None) -> list[int | None]:
    """Indices of the table rows ``brute_asof`` picks, over integer times "t" and "vf"."""
    out = brute_asof(events.with_columns(__i=pl.int_range(pl.len())),
                     table.with_row_index("__ti").with_columns(pl.col("__ti").cast(pl.Int64)),
                     "t", on="vf", by=by, tolerance=tolerance)
    return out["__ti"].to_list()


@given(stream_and_table(), st.sampled_from([None, "k"]), st.sampled_from([None, 0, 4]),
       st.sampled_from(["us", "ns", "ms", "iso"]), st.sampled_from(["us", "ns", "ms"]),
       st.sampled_from([None, "UTC"]))
def test_random_asof_joins_over_datetimes_equal_brute_force_at_every_batch_size(
        case: tuple[pl.DataFrame, pl.DataFrame], by: str | None, tolerance: int | None,
        stream_unit: str, table_unit: str, table_tz: str | None) -> None:
    """The integer cases again with the times as datetimes: seconds after BASE, the stream in
    one unit (or ISO 8601 text), the table in another, naive or UTC; tolerance in seconds."""
    events, table = case
    matched = _brute_matches(events, table, [by] if by else [], tolerance)
    as_time = (pl.lit(BASE) + pl.duration(seconds=pl.col("t"))).dt.cast_time_unit(
        "us" if stream_unit == "iso" else stream_unit)
    if stream_unit == "iso":
        as_time = as_time.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    dt_events = events.with_columns(as_time.alias("t"))
    dt_table = table.with_columns((pl.lit(BASE) + pl.duration(seconds=pl.col("vf")))
                                  .dt.cast_time_unit(table_unit).dt.replace_time_zone(table_tz).alias("vf"))
    want = _gather(dt_events, dt_table, matched, "t", "vf", [by] if by else [], "_right")
    tol = None if tolerance is None else f"{tolerance}s"
    for size in ALL_SIZES:
        got = _collect(_stream(dt_events, size).join_asof(dt_table, on="vf", by=by, tolerance=tol))
        assert_frame_equal(got, want)


# -- rl.reference: a table from a file, reloaded when it changes ---------------------------
WRITERS = {
    "csv": lambda df, p: df.write_csv(p),
    "parquet": lambda df, p: df.write_parquet(p),
    "jsonl": lambda df, p: df.write_ndjson(p),
    "arrow": lambda df, p: df.write_ipc(p),
    "ipc": lambda df, p: df.write_ipc(p),
}
READERS = {"csv": pl.read_csv, "parquet": pl.read_parquet, "jsonl": pl.read_ndjson,
           "arrow": pl.read_ipc, "ipc": pl.read_ipc}
_MTIME = [1_700_000_000_000_000_000]


def _write(df: pl.DataFrame, path: Path) -> None:
    """Writes the table and moves its modification time on (a change is always visible)."""
    WRITERS[path.suffix[1:]](df, path)
    _MTIME[0] += 10**9
    os.utime(path, ns=(_MTIME[0], _MTIME[0]))


def _team_table(tag: str, extra: int = 0) -> pl.DataFrame:
    """users ann, bob, cy in teams named after ``tag``; ``extra`` more rows change the size."""
    users = ["ann", "bob", "cy"] + [f"u{i}" for i in range(extra)]
    return pl.DataFrame({"user": users, "team": [f"{tag}-{u}" for u in users],
                         "weight": list(range(len(users)))})


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The wall clock, in milliseconds, moved on by the test."""
    now = [1_800_000_000_000]
    monkeypatch.setattr(_clock, "now_ms", lambda: now[0])
    monkeypatch.setattr(_clock, "now_us", lambda: now[0] * 1000)
    return now


def _batch(i: int) -> pl.DataFrame:
    return pl.DataFrame({"t": [i, i, i, i], "user": ["ann", "bob", "cy", "zed"], "b": [i] * 4})


def _tags(out: pl.DataFrame) -> list[set[str]]:
    """The table versions each batch saw (from the team names' prefixes)."""
    return [set(out.filter(pl.col("b") == b)["team"].drop_nulls().str.split("-").list.first())
            for b in sorted(set(out["b"].to_list()))]


@SIZES
@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl", "arrow", "ipc"])
@pytest.mark.parametrize("how", ["left", "inner"])
def test_reference_file_joins_as_polars_reads_it(tmp_path: Path, size: int | None, ext: str,
                                                 how: str) -> None:
    events = _events()
    path = tmp_path / f"teams.{ext}"
    _write(_teams(), path)
    got = _collect(_stream(events, size).join(rl.reference(str(path), refresh="1m"), on="user", how=how))
    assert_frame_equal(got, polars_join(events, READERS[ext](path), how, on="user"))


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_reference_reload_applies_from_the_next_batch(tmp_path: Path, clock: list[int], ext: str) -> None:
    path = tmp_path / f"teams.{ext}"
    _write(_team_table("v1"), path)

    def source() -> Iterator[pl.DataFrame]:
        yield _batch(0)                       # the first load: v1
        _write(_team_table("v2", 1), path)
        yield _batch(1)                       # no time has passed: not checked yet, v1
        clock[0] += 61_000
        yield _batch(2)                       # a minute on: checked, changed, v2 from here
        _write(_team_table("v3", 2), path)
        clock[0] += 30_000
        yield _batch(3)                       # 30 s since the last check: still v2
        clock[0] += 31_000
        yield _batch(4)                       # a minute since it: v3
        clock[0] += 600_000
        yield _batch(5)                       # checked, unchanged: v3

    run = (rl.stream(source(), time="t", watermark=0)
           .join(rl.reference(path, refresh="1m"), on="user", how="left").run(progress=False))
    assert _tags(run.output) == [{"v1"}, {"v1"}, {"v2"}, {"v2"}, {"v3"}, {"v3"}]
    # every batch is joined exactly as polars joins it with the version it saw
    versions = {"v1": _team_table("v1"), "v2": _team_table("v2", 1), "v3": _team_table("v3", 2)}
    for b, tag in enumerate(["v1", "v1", "v2", "v2", "v3", "v3"]):
        assert_frame_equal(run.output.filter(pl.col("b") == b),
                           polars_join(_batch(b), versions[tag], "left", on="user"))
    assert run.metrics["reference_loads"] == 3


def test_a_reloaded_table_is_never_mixed_within_a_batch(tmp_path: Path, clock: list[int]) -> None:
    """Whole batches of many rows, the file rewritten after each: each batch sees one version."""
    path = tmp_path / "teams.parquet"
    _write(_team_table("v0"), path)

    def source() -> Iterator[pl.DataFrame]:
        for i in range(8):
            yield pl.concat([_batch(i)] * 50)
            _write(_team_table(f"v{i + 1}", i + 1), path)
            clock[0] += 61_000

    out = _collect(rl.stream(source(), time="t", watermark=0)
                   .join(rl.reference(path, refresh="1m"), on="user", how="inner"))
    assert _tags(out) == [{f"v{i}"} for i in range(8)]


@pytest.mark.parametrize(("ext", "damage"), [
    ("parquet", "half"),     # a writer caught halfway
    ("jsonl", "malformed"),  # a line cut short
    ("csv", "missing"),      # deleted between two writes
    ("csv", "cut"),          # a writer caught in the middle of a row: too few fields, no newline
])
def test_an_unreadable_file_at_reload_keeps_the_old_table_and_warns(
        tmp_path: Path, clock: list[int], ext: str, damage: str) -> None:
    path = tmp_path / f"teams.{ext}"
    _write(_team_table("v1"), path)

    def source() -> Iterator[pl.DataFrame]:
        yield _batch(0)
        if damage == "half":
            _write(_team_table("v2", 3), path)
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        elif damage == "malformed":
            path.write_text('{"user": "ann", "team": "v2-ann", "weight": 0}\n{"user": "bob", "te')
        elif damage == "cut":
            text = _team_table("v2").write_csv()
            path.write_text(text[: text.index("v2-bob") + 4])  # ends "bob,v2-b"
        else:
            path.unlink()
        clock[0] += 61_000
        yield _batch(1)                       # unreadable: v1 kept, a warning
        _write(_team_table("v3", 1), path)
        clock[0] += 61_000
        yield _batch(2)                       # readable again: v3

    s = rl.stream(source(), time="t", watermark=0).join(rl.reference(str(path), refresh="1m"), on="user")
    with pytest.warns(rl.ReferenceWarning, match=re.escape(path.name)):
        out = _collect(s)
    assert issubclass(rl.ReferenceWarning, UserWarning)
    assert _tags(out) == [{"v1"}, {"v1"}, {"v3"}]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_missing_file_at_the_first_load_is_a_source_error_naming_it(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"no_such_teams.{ext}"
    with pytest.raises(rl.SourceError, match="no_such_teams"):
        _collect(_stream(_events(), None).join(rl.reference(str(path), refresh="1m"), on="user"))


def test_an_unreadable_file_at_the_first_load_is_a_source_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken_teams.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(rl.SourceError, match="broken_teams"):
        _collect(_stream(_events(), None).join(rl.reference(str(path)), on="user"))


def test_refresh_none_never_reloads(tmp_path: Path, clock: list[int]) -> None:
    path = tmp_path / "teams.csv"
    _write(_team_table("v1"), path)

    def source() -> Iterator[pl.DataFrame]:
        for i in range(4):
            yield _batch(i)
            _write(_team_table(f"v{i + 2}", i + 1), path)
            clock[0] += 86_400_000

    run = (rl.stream(source(), time="t", watermark=0)
           .join(rl.reference(str(path), refresh=None), on="user").run(progress=False))
    assert _tags(run.output) == [{"v1"}] * 4
    assert run.metrics["reference_loads"] == 1


@SIZES
def test_reference_then_window(tmp_path: Path, size: int | None) -> None:
    records = _cloudtrail()
    teams = _memberships(records)
    path = tmp_path / "teams.parquet"
    _write(teams, path)
    got = (rl.stream(batches(records, size), time="eventTime", watermark="10m")
           .join(rl.reference(str(path), refresh="1m"), left_on="arn", right_on="user_arn", how="inner")
           .window(rl.tumbling("1m"), by="team").agg(rl.count()).collect(progress=False))
    want = (polars_join(records, teams, "inner", left_on="arn", right_on="user_arn")
            .group_by("team", pl.col("eventTime").dt.truncate("1m").alias("window_start"))
            .agg(pl.len().alias("count")))
    assert_frame_equal(_sorted(got.drop("window_end")), _sorted(want.cast(got.drop("window_end").schema)))


@pytest.mark.parametrize(("ext", "change"), [
    ("parquet", "extra column"),
    ("parquet", "column dropped"),
    ("parquet", "key column renamed"),
    ("csv", "key now integers"),
    ("parquet", "weight now float"),
    ("csv", "weight column empty"),  # polars infers String for an all-empty CSV column
    ("csv", "no rows"),              # likewise for every column of a header-only CSV
])
def test_a_reloaded_table_of_another_schema_never_stops_the_run(
        tmp_path: Path, clock: list[int], ext: str, change: str) -> None:
    """A live run outlives many versions of its reference file. A new version whose columns
    or types differ from the first one's must not end the run (the stream's batches did not
    change): it is read in the first version's schema where it fits (a CSV column that is now
    empty), else the run goes on with the old table and a ReferenceWarning. Either way every
    batch has the first schema and sees one version."""
    path = tmp_path / f"teams.{ext}"
    first = _team_table("v1")
    _write(first, path)
    new = {"extra column": _team_table("v2").with_columns(extra=pl.lit(1)),
           "column dropped": _team_table("v2").drop("weight"),
           "key column renamed": _team_table("v2").rename({"user": "usr"}),
           "key now integers": pl.DataFrame({"user": [1, 2], "team": ["v2-1", "v2-2"], "weight": [1, 2]}),
           "weight now float": _team_table("v2").with_columns(pl.col("weight").cast(pl.Float64)),
           "weight column empty": _team_table("v2").with_columns(weight=pl.lit(None, pl.Int64)),
           "no rows": _team_table("v2").clear()}[change]

    def source() -> Iterator[pl.DataFrame]:
        yield _batch(0)
        _write(new, path)
        clock[0] += 61_000
        yield _batch(1)
        clock[0] += 61_000
        yield _batch(2)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _collect(rl.stream(source(), time="t", watermark=0)
                       .join(rl.reference(path, refresh="1m"), on="user"))
    warned = [w for w in caught if issubclass(w.category, rl.ReferenceWarning)]
    assert out.schema == polars_join(_batch(0), first, "left", on="user").schema
    tags = _tags(out)
    assert tags[0] == {"v1"}
    assert tags[1] == tags[2]
    if tags[1] == {"v1"}:  # kept the old table: said so, naming the file
        assert warned and path.name in str(warned[0].message)


@SIZES
def test_join_rows_are_accounted_for(size: int | None) -> None:
    """rows_in plus the rows a join adds (a row's matches beyond its first) = accepted + late +
    rejected + filtered (an inner join's unmatched rows are filtered)."""
    events = pl.concat([_events(), pl.DataFrame({"t": [0], "user": ["bob"], "region": [1], "x": [99]})])
    teams = _teams()
    run = (_stream(events, size, watermark=2).join(teams, on="user", how="inner")
           .window(rl.tumbling(3), by="team").agg(rl.count()).run(progress=False))
    m = run.metrics
    joined = polars_join(events, teams, "inner", on="user")
    matched_rows = events.join(teams, on="user", how="semi").height
    assert m["rows_in"] == events.height
    assert m["rows_added"] == joined.height - matched_rows
    assert m["rows_filtered"] == events.height - matched_rows
    assert m["rows_accepted"] + m["rows_late"] == joined.height
    assert m["rows_in"] + m["rows_added"] == (m["rows_accepted"] + m["rows_late"] + m["rows_rejected"]
                                              + m["rows_filtered"])
    assert run.late.height == m["rows_late"]


# -- errors name what is wrong --------------------------------------------------------------
def _run_join(**kwargs: Any) -> None:
    table = kwargs.pop("table", _teams())
    _collect(_stream(_events(), None).join(table, **kwargs))


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"on": "usr"}, r"usr"),                                                    # in neither
    ({"left_on": "nope", "right_on": "user"}, r"nope"),                         # not in the stream
    ({"left_on": "user", "right_on": "arn"}, r"arn"),                           # not in the table
    ({"on": "user", "how": "full"}, r"full.*(left|inner)|(left|inner).*full"),  # how
    ({"on": "user", "how": "right"}, r"right"),
])
def test_bad_join_arguments_are_named(kwargs: dict[str, Any], pattern: str) -> None:
    with pytest.raises(rl.RilletError, match=pattern):
        _run_join(**kwargs)


def test_on_with_left_on_or_mismatched_key_counts_are_refused() -> None:
    with pytest.raises(rl.RilletError, match=r"on"):
        _run_join(on="user", left_on="user", right_on="user")
    with pytest.raises(rl.RilletError, match=r"left_on|right_on"):
        _run_join(left_on=["user", "region"], right_on=["user"])


@pytest.mark.parametrize(("stream_type", "table_type"), [
    (pl.Int64, pl.String), (pl.String, pl.Int64), (pl.Int64, pl.Float64), (pl.String, pl.Boolean),
    (pl.Datetime("us"), pl.Date),
])
def test_incompatible_key_types_are_a_schema_error_naming_column_and_types(
        stream_type: pl.DataType, table_type: pl.DataType) -> None:
    """The types are named as the user knows them: polars' names (String, not Arrow's
    Utf8View; Datetime, not Timestamp)."""
    events = pl.DataFrame({"t": [1, 2], "acct": [1, 0]}).with_columns(pl.col("acct").cast(stream_type))
    table = pl.DataFrame({"acct": [1, 0], "v": [1, 2]}).with_columns(pl.col("acct").cast(table_type))
    with pytest.raises(rl.SchemaError) as err:
        _collect(_stream(events, None).join(table, on="acct"))
    text = str(err.value)
    assert "acct" in text
    for dtype in (stream_type, table_type):
        name = type(dtype).__name__ if isinstance(dtype, pl.Datetime) else str(dtype)
        assert name in text, f"{name} not named in: {text}"


def test_a_suffixed_name_that_is_taken_is_named() -> None:
    events = _events().with_columns(team=pl.lit("a"), team_right=pl.lit("b"))
    with pytest.raises(rl.RilletError, match=r"team_right"):
        _collect(_stream(events, None).join(_teams(), on="user"))


@pytest.mark.parametrize(("case", "kwargs", "pattern"), [
    ("plain", {"on": "valid_to", "by": "user"}, r"valid_to"),  # the table has no such time column
    ("plain", {"by": "user"}, r"\bts\b"),                    # default on: the stream's time name
    ("team", {"on": "valid_from", "by": "team"}, r"team"),     # a by key the table lacks
    ("region", {"on": "valid_from", "by": "region"}, r"region"),  # a by key the stream lacks
])
def test_join_asof_without_its_columns_names_them(case: str, kwargs: dict[str, Any], pattern: str) -> None:
    events = _dt_events("us", None)
    rates = _dt_rates("us", None)
    if case == "team":
        events = events.with_columns(team=pl.lit("x"))
    if case == "region":
        rates = rates.with_columns(region=pl.lit(1))
    with pytest.raises(rl.RilletError, match=pattern):
        _collect(_stream(events, None, time="ts").join_asof(rates, **kwargs))


@pytest.mark.parametrize(("time_kind", "tolerance", "pattern"), [
    ("int", -1, r"tolerance.*got -1\b"),
    ("datetime", "-10m", r"tolerance.*-10m"),
    ("int", "10m", r"tolerance.*integer"),
    ("datetime", 600, r"tolerance.*600"),
])
def test_a_bad_tolerance_is_named_as_given(time_kind: str, tolerance: Any, pattern: str) -> None:
    """Negative, or of the wrong kind for the time column: named as the user wrote it (not in
    the engine's internal form such as Count(-1))."""
    if time_kind == "int":
        s, rates = _stream(_events(), None), _rates()
    else:
        s, rates = _stream(_dt_events("us", None), None, time="ts"), _dt_rates("us", None)
    with pytest.raises(rl.ConfigError, match=pattern) as err:
        _collect(s.join_asof(rates, on="valid_from", by="user", tolerance=tolerance))
    assert not re.search(r"Count\(|Text\(", str(err.value)), str(err.value)


def test_join_asof_on_a_time_column_of_another_type_is_named() -> None:
    events = _dt_events("us", None)
    rates = _dt_rates("us", None).with_columns(pl.col("valid_from").dt.epoch("s").cast(pl.Float64))
    with pytest.raises(rl.SchemaError, match=r"valid_from.*Float64"):
        _collect(_stream(events, None, time="ts").join_asof(rates, on="valid_from", by="user"))


def test_join_asof_reads_a_text_time_column_of_the_table_as_the_engine_reads_text() -> None:
    """ISO 8601 text in the table is read as a text time column of a stream is (what a CSV
    reference holds unless told otherwise); the result equals the join on datetimes."""
    events = _dt_events("us", None)
    rates = _dt_rates("us", None)
    as_text = rates.with_columns(pl.col("valid_from").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"))
    s = _stream(events, None, time="ts")
    got = _collect(s.join_asof(as_text, on="valid_from", by="user"))
    expected = _collect(s.join_asof(rates, on="valid_from", by="user"))
    assert_frame_equal(got.drop("valid_from"), expected.drop("valid_from"))


def test_join_asof_without_its_time_column_in_a_reference_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "rates.parquet"
    _write(_dt_rates("us", None).drop("valid_from"), path)
    with pytest.raises(rl.RilletError, match=r"valid_from"):
        _collect(_stream(_dt_events("us", None), None, time="ts")
                 .join_asof(rl.reference(str(path)), on="valid_from", by="user"))


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"refresh": "soon"}, r"soon"),
    ({"refresh": "-1m"}, r"refresh"),
])
def test_bad_reference_arguments_are_named(tmp_path: Path, kwargs: dict[str, Any], pattern: str) -> None:
    path = tmp_path / "teams.csv"
    _write(_teams(), path)
    with pytest.raises(rl.RilletError, match=pattern):
        _collect(_stream(_events(), None).join(rl.reference(str(path), **kwargs), on="user"))


def test_a_reference_file_of_unknown_kind_is_named(tmp_path: Path) -> None:
    path = tmp_path / "teams.xlsx"
    path.write_bytes(b"not a table")
    with pytest.raises(rl.RilletError, match=r"xlsx"):
        _collect(_stream(_events(), None).join(rl.reference(str(path)), on="user"))
