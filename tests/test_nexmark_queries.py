"""The Nexmark queries q0 to q22 (bench/nexmark_queries.py): each query built with the Python
API gives the rows of its DuckDB oracle at micro-batches of 1 and 7 event numbers and whole,
each SQL form gives the rows of the Python form (or of the oracle, where Python cannot say
the query), and every query is there, expressed or explained.

The generator runs at 1,000 events per second of event time (60,000 events are 60 s, so
10-second windows close and several exist) from 23:59:45 UTC, so the one-day windows of
q15 to q17 hold two days at the largest size.
"""
from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import polars as pl
import pytest
from helpers import bench_module

import rillet as rl

nq = bench_module("nexmark_queries")

RATE = 1_000
BASE_TIME = "2026-01-01T23:59:45Z"
#: Name -> (events, event numbers per micro-batch; None: all in one).
SIZES = {"batch1": (1_500, 1), "batch7": (5_000, 7), "whole": (60_000, None)}

BUILT = [name for name, q in nq.QUERIES.items() if q.build is not None]
IN_SQL = [name for name, q in nq.QUERIES.items() if q.sql is not None]


def generator(events: int, batch: int | None) -> rl.Nexmark:
    """The generator's sources at this size and batching (the data depend on neither)."""
    return rl.nexmark(events=events, seed=0, base_time=BASE_TIME, rate=RATE, batch_events=batch or events)


@functools.cache
def tables(events: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The people, auctions and bids of the first ``events`` events, for DuckDB."""
    nx = generator(events, None)
    return nx.people.collect(), nx.auctions.collect(), nx.bids.collect()


@functools.cache
def expected(name: str, events: int) -> pl.DataFrame:
    """The oracle's rows for query ``name`` over the first ``events`` events."""
    return nq.oracle(nq.QUERIES[name], *tables(events))


@functools.cache
def built(name: str, events: int, batch: int | None) -> pl.DataFrame:
    """The Python form's rows."""
    return nq.QUERIES[name].build(*nq.sources(generator(events, batch))).collect(progress=False)


def test_every_query_is_expressed_or_explained():
    """q0 to q22 each have exactly one of a Python form and a reason why not, an oracle, a
    sort key and inputs."""
    assert list(nq.QUERIES) == [f"q{i}" for i in range(23)]
    for name, q in nq.QUERIES.items():
        assert q.name == name
        assert (q.build is None) != (q.not_expressible is None), name
        assert q.oracle and q.key and q.what, name
        assert set(q.inputs) <= {"people", "auctions", "bids"} and q.inputs, name
        if q.build is None:
            assert q.sql is not None or q.not_expressible, name


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("name", BUILT)
def test_python_form_equals_oracle(name, size):
    """The Python form's rows equal DuckDB's over the same events, whatever the batching."""
    events, batch = SIZES[size]
    nq.check(nq.QUERIES[name], built(name, events, batch), expected(name, events))


@pytest.mark.parametrize(("name", "size"), [(name, "whole") for name in IN_SQL]
                         + [(name, "batch7") for name in IN_SQL if name not in BUILT])
def test_sql_form_equals_python_form(name, size):
    """The SQL form's rows equal the Python form's (the oracle's where there is no Python
    form, then at two batchings), on the SQL form's columns. The SQL is planned into the
    Python API's calls, whose batching the test above varies."""
    events, batch = SIZES[size]
    q = nq.QUERIES[name]
    out = q.sql(*nq.sources(generator(events, batch))).collect(progress=False)
    if q.build is None:
        nq.check(q, out, expected(name, events))
    else:
        reference = built(name, events, batch)
        nq.check(q, reference, out)
        nq.check(q, out, reference.select(out.columns))


def test_q10_partitioned_files_read_back(tmp_path: Path):
    """q10's rows written to Parquet in one folder per minute read back as the oracle's rows,
    each in the folder of its own day and minute."""
    events, batch = SIZES["whole"]
    q = nq.QUERIES["q10"]
    q.build(*nq.sources(generator(events, batch))).to_parquet(tmp_path / "bids", partition_by="date_time",
                                                             every="1m", progress=False)
    back = pl.read_parquet(tmp_path / "bids" / "**" / "*.parquet", hive_partitioning=True)
    nq.check(q, back, expected("q10", events))
    folder = back["date_time_1m"].cast(pl.String).str.slice(0, 16)
    assert (folder == back["dt"] + " " + back["hm"]).all()
    assert back["date_time_1m"].n_unique() > 1


def test_q7_keeps_a_bid_at_a_window_end():
    """q7's BETWEEN is closed at both ends: a bid exactly at a window's end at that window's
    highest price is kept for it, and again for the next window whose highest it is."""
    t0 = dt.datetime(2026, 1, 1)
    bids = pl.DataFrame({
        "auction": [1000, 1001, 1002], "bidder": [1000, 1001, 1002], "price": [100, 100, 50],
        "channel": ["Google"] * 3, "url": ["https://www.nexmark.com/a/b/c/item.htm?query=1"] * 3,
        "date_time": [t0 + dt.timedelta(seconds=s) for s in (1, 10, 12)], "extra": ["", "", ""],
    }).with_columns(pl.col("date_time").dt.cast_time_unit("ms"))
    people, auctions = tables(1_500)[:2]
    q = nq.QUERIES["q7"]
    want = nq.oracle(q, people.head(0), auctions.head(0), bids)
    assert sorted(want["date_time"].dt.second()) == [1, 10, 10]
    nq.check(q, q.build(people, auctions, bids).collect(progress=False), want)
    nq.check(q, q.sql(people, auctions, bids).collect(progress=False), want)


def test_check_reports_differences():
    """check raises with the differing rows; floats may differ by 1e-9 relative."""
    q = nq.QUERIES["q1"]
    a = pl.DataFrame({"auction": [1, 2], "bidder": [3, 4], "price": [1.0, 2.0]})
    nq.check(q, a, a.with_columns(pl.col("price") * (1 + 1e-12)))
    with pytest.raises(AssertionError, match="1 of 2 rows differ"):
        nq.check(q, a, a.with_columns(price=pl.Series([1.0, 2.001])))
    with pytest.raises(AssertionError, match="2 rows from rillet, 1 from the oracle"):
        nq.check(q, a, a.head(1))
    with pytest.raises(AssertionError, match="no column"):
        nq.check(q, a.drop("price"), a)
