"""Three defects of the SQL front end found by the Nexmark queries, each checked against DuckDB
running the same SQL (or its plain equivalent) over the same rows, at micro-batches of 1, 7
and the whole frame (two streams also under several interleavings):

1. an outer SELECT naming ``window_end`` of a windowed sub-query names its column
   ``window_end`` (it was ``ROWTIME``);
2. an interval join takes comparisons of other time columns (``B.date_time <= A.expires``,
   in ``ON`` or ``WHERE``) as filters of the joined rows, once the bound on the two event
   times is found (q4, q9);
3. a window join on renamed bounds (``window_start AS starttime, window_end AS endtime``,
   joined on them, as Flink's q8 writes it) is a window join.
"""
from __future__ import annotations

import datetime as dt
import random
from typing import Any

import polars as pl
import pytest
from conftest import batches
from test_sql import bucket, duck
from test_sql_joins import assert_same_sorted

import rillet as rl
from rillet.runtime import driver

SIZES = pytest.mark.parametrize("size", [1, 7, None])
INTERLEAVINGS = pytest.mark.parametrize("interleave", ["aligned", "round_robin", "in_order"])
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _stream(df: pl.DataFrame, size: int | None, watermark: Any = "5s") -> rl.Stream:
    return rl.stream(batches(df, size), time="date_time", watermark=watermark)


def _us(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(pl.col(c).dt.cast_time_unit("us") for c, t in df.schema.items()
                           if isinstance(t, pl.Datetime))


def _disorder(times: list[dt.datetime], rnd: random.Random, ms: int) -> list[dt.datetime]:
    """Times in order, each then moved back by up to ``ms`` (under the watermark)."""
    return [t - dt.timedelta(milliseconds=rnd.randint(0, ms)) for t in sorted(times)]


# -- 1. window_end keeps its name ------------------------------------------------------------
def _keyed(n: int = 150, seed: int = 1) -> pl.DataFrame:
    """Rows about 0.4 s apart over a minute, up to 2 s out of order, with a key of three."""
    rnd = random.Random(seed)
    times = _disorder([BASE + dt.timedelta(milliseconds=rnd.randint(0, 60_000)) for _ in range(n)], rnd, 2000)
    return _us(pl.DataFrame({"date_time": times, "k": [rnd.choice("abc") for _ in range(n)]}))


PER_WINDOW = """SELECT window_start, window_end, k, COUNT(*) AS n
    FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
    GROUP BY window_start, window_end, k"""
PER_WINDOW_DUCK = f"""SELECT {bucket('date_time', 10)} AS window_start,
        {bucket('date_time', 10)} + INTERVAL 10 SECOND AS window_end, k, COUNT(*) AS n
    FROM t GROUP BY ALL"""


def test_the_briefs_repro_names_window_end() -> None:
    t0 = dt.datetime(2026, 1, 1)
    df = pl.DataFrame({"ts": [t0 + dt.timedelta(seconds=s) for s in (1, 12)], "k": ["a", "b"]})
    q = rl.sql("SELECT k, window_end FROM (SELECT window_start, window_end, k, COUNT(*) AS n FROM "
               "TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k)",
               t=rl.stream(df, time="ts"))
    out = q.collect(progress=False)
    assert out.columns == ["k", "window_end"]
    assert out.sort("k")["window_end"].to_list() == [t0 + dt.timedelta(seconds=10), t0 + dt.timedelta(seconds=20)]


OUTER_SELECTS = {
    # outer select -> the same over DuckDB's rows of the sub-query
    "end": ("SELECT k, window_end FROM ({inner})", "SELECT k, window_end FROM ({inner})"),
    "qualified": ("SELECT s.k, s.window_end, s.n FROM ({inner}) s", "SELECT k, window_end, n FROM ({inner})"),
    "both_bounds": ("SELECT window_start, window_end, n FROM ({inner}) WHERE k <> 'c'",
                    "SELECT window_start, window_end, n FROM ({inner}) WHERE k <> 'c'"),
    "twice_nested": ("SELECT k, window_end FROM (SELECT k, window_end, n FROM ({inner}))",
                     "SELECT k, window_end FROM ({inner})"),
    "aliased": ("SELECT k, window_end AS closes FROM ({inner})", "SELECT k, window_end AS closes FROM ({inner})"),
}


@SIZES
@pytest.mark.parametrize("case", list(OUTER_SELECTS))
def test_a_window_bound_selected_from_a_windowed_sub_query_keeps_its_name(case: str, size: int | None) -> None:
    df = _keyed()
    sql, oracle = OUTER_SELECTS[case]
    run = rl.sql(sql.format(inner=PER_WINDOW), t=_stream(df, size)).run(progress=False)
    assert run.late.height == 0
    want = duck(oracle.format(inner=PER_WINDOW_DUCK), t=df)
    assert_same_sorted(run.output, want)
    assert want.height > 0


@SIZES
def test_a_query_over_the_named_window_end_reads_it_as_its_time(size: int | None) -> None:
    """The renamed column still carries the rows' time: a stream over the query's output,
    windowed on it, counts what DuckDB counts."""
    df = _keyed()
    q = rl.sql(f"SELECT k, window_end FROM ({PER_WINDOW})", t=_stream(df, size))
    run = (rl.stream(q, time="window_end", watermark=0).window(rl.tumbling("20s"))
           .agg(rl.count().alias("rows")).run(progress=False))
    assert run.late.height == 0
    want = duck(f"""SELECT {bucket('window_end', 20)} AS window_start, COUNT(*) AS rows
                    FROM ({PER_WINDOW_DUCK}) GROUP BY ALL""", t=df)
    assert_same_sorted(run.output.select("window_start", "rows"), want)


# -- 2. other time comparisons of an interval join filter its rows ---------------------------
def _auctions_and_bids(seed: int = 2) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Auctions about 0.5 s apart, each expiring 0.1 to 40 s after it starts; bids on an
    auction started before them, 0 to 90 s after its start (so some after it expires and
    some past the minute of the bound), both up to 1 s out of order."""
    rnd = random.Random(seed)
    n_a, n_b = 120, 400
    starts = [BASE + dt.timedelta(milliseconds=500 * i + rnd.randint(0, 400)) for i in range(n_a)]
    auctions = pl.DataFrame({
        "id": list(range(n_a)),
        "category": [rnd.randint(10, 12) for _ in range(n_a)],
        "date_time": starts,
        "expires": [s + dt.timedelta(milliseconds=rnd.randint(100, 40_000)) for s in starts],
    }).sort("date_time")
    picks = [rnd.randrange(n_a) for _ in range(n_b)]
    bid_times = [starts[a] + dt.timedelta(milliseconds=rnd.randint(0, 90_000)) for a in picks]
    bids = pl.DataFrame({"auction": picks, "price": [rnd.randint(1, 10_000) for _ in range(n_b)],
                         "date_time": bid_times}).sort("date_time")
    auctions = auctions.with_columns(pl.Series("date_time", _disorder(auctions["date_time"].to_list(), rnd, 1000)))
    bids = bids.with_columns(pl.Series("date_time", _disorder(bids["date_time"].to_list(), rnd, 1000)))
    return _us(auctions), _us(bids)


BOUND = "B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '1' MINUTE"
SELECT = "SELECT A.id, A.category, B.price, B.date_time AS bid_time"
EXTRA_CONDITIONS = {
    "in_where": f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND {BOUND} WHERE B.date_time <= A.expires",
    "in_on": f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND {BOUND} AND B.date_time <= A.expires",
    "before_the_bound": f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND A.expires >= B.date_time "
                        f"AND {BOUND}",
    "comma_join": f"{SELECT} FROM auctions A, bids B WHERE A.id = B.auction AND B.date_time <= A.expires AND {BOUND}",
    "strict": f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND {BOUND} AND B.date_time < A.expires",
    "second_bound_on_the_times": f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND {BOUND} "
                                 "AND B.date_time <= A.date_time + INTERVAL '20' SECOND",
    "left_join_filtered_in_where": f"{SELECT} FROM auctions A LEFT JOIN bids B ON A.id = B.auction AND {BOUND} "
                                   "WHERE B.date_time <= A.expires OR B.date_time IS NULL",
}


@SIZES
@INTERLEAVINGS
@pytest.mark.parametrize("case", list(EXTRA_CONDITIONS))
def test_an_interval_join_filters_its_rows_by_other_time_comparisons(
        case: str, size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    auctions, bids = _auctions_and_bids()
    sql = EXTRA_CONDITIONS[case]
    run = rl.sql(sql, auctions=_stream(auctions, size), bids=_stream(bids, size)).run(progress=False)
    assert run.late.height == 0
    want = duck(sql, auctions=auctions, bids=bids)
    assert_same_sorted(run.output, want)
    # the extra condition drops joined rows the bound alone keeps
    unfiltered = duck(f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction AND {BOUND}",
                      auctions=auctions, bids=bids)
    assert 0 < want.filter(pl.col("price").is_not_null()).height < unfiltered.height


def test_an_outer_joins_other_time_comparison_in_on_is_refused() -> None:
    auctions, bids = _auctions_and_bids()
    with pytest.raises(rl.SqlError, match="outer join's ON holds only"):
        rl.sql(f"{SELECT} FROM auctions A LEFT JOIN bids B ON A.id = B.auction AND {BOUND} "
               "AND B.date_time <= A.expires", auctions=_stream(auctions, None), bids=_stream(bids, None))


def test_comparisons_that_make_no_whole_bound_are_still_refused() -> None:
    auctions, bids = _auctions_and_bids()
    with pytest.raises(rl.SqlError, match="time bounds compare"):
        rl.sql(f"{SELECT} FROM auctions A JOIN bids B ON A.id = B.auction "
               "AND B.date_time BETWEEN A.date_time AND A.expires",
               auctions=_stream(auctions, None), bids=_stream(bids, None))


# -- 3. a window join on renamed bounds ------------------------------------------------------
def _people_and_sellers(seed: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People joining over two minutes, and auctions whose sellers are people of the same
    ten seconds about half the time, up to 1 s out of order."""
    rnd = random.Random(seed)
    n_p, n_a = 150, 300
    p_times = _disorder([BASE + dt.timedelta(milliseconds=rnd.randint(0, 120_000)) for _ in range(n_p)], rnd, 1000)
    people = pl.DataFrame({"id": list(range(n_p)), "name": [f"p{i % 37}" for i in range(n_p)],
                           "date_time": p_times})
    a_times = _disorder([BASE + dt.timedelta(milliseconds=rnd.randint(0, 120_000)) for _ in range(n_a)], rnd, 1000)
    sellers = pl.DataFrame({"seller": [rnd.randrange(n_p) for _ in range(n_a)], "date_time": a_times})
    return _us(people), _us(sellers)


def _windowed(table: str, keys: str, start: str, end: str) -> str:
    return (f"(SELECT {keys}, window_start AS {start}, window_end AS {end} "
            f"FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(date_time), INTERVAL '10' SECOND)) "
            f"GROUP BY {keys}, window_start, window_end)")


def _windowed_duck(table: str, keys: str, start: str, end: str) -> str:
    return (f"(SELECT {keys}, {bucket('date_time', 10)} AS {start}, "
            f"{bucket('date_time', 10)} + INTERVAL 10 SECOND AS {end} FROM {table} GROUP BY ALL)")


WINDOW_JOINS = {
    # Flink's q8, as written
    "q8": ("starttime", "endtime", "P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime"),
    "end_only": ("starttime", "endtime", "P.id = A.seller AND P.endtime = A.endtime"),
    "end_renamed_start_not": ("window_start", "we", "P.id = A.seller AND P.window_start = A.window_start "
                                                    "AND P.we = A.we"),
    "between_renamed_ends": ("starttime", "endtime", "P.id = A.seller AND A.endtime BETWEEN P.endtime AND P.endtime"),
}


@SIZES
@INTERLEAVINGS
@pytest.mark.parametrize("case", list(WINDOW_JOINS))
def test_a_window_join_on_renamed_bounds_equals_duckdb(
        case: str, size: int | None, interleave: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "INTERLEAVE", interleave)
    people, sellers = _people_and_sellers()
    start, end = WINDOW_JOINS[case][:2]
    on = WINDOW_JOINS[case][2]
    sql = (f"SELECT P.id, P.name, P.{start} FROM {_windowed('people', 'id, name', start, end)} P "
           f"JOIN {_windowed('auctions', 'seller', start, end)} A ON {on}")
    run = rl.sql(sql, people=_stream(people, size), auctions=_stream(sellers, size)).run(progress=False)
    assert run.late.height == 0
    want = duck(f"SELECT P.id, P.name, P.{start} FROM {_windowed_duck('people', 'id, name', start, end)} P "
                f"JOIN {_windowed_duck('auctions', 'seller', start, end)} A ON {on}",
                people=people, auctions=sellers)
    assert run.output.columns == ["id", "name", start]
    assert_same_sorted(run.output, want)
    assert want.height > 0
