"""The Nexmark queries q0 to q22 (Flink's texts, nexmark/nexmark
``nexmark-flink/src/main/resources/queries/q*.sql``) written with rillet, each with a DuckDB
query that gives the same rows from the generator's three tables.

Each entry of ``QUERIES`` holds the query built with the Python API (``build``), the same
query in rillet's SQL where it can say it (``sql``), the DuckDB oracle (``oracle``) and the
columns to sort by before comparing (``key``). A query rillet cannot express has no ``build``
and says why in ``not_expressible``.

Every query reads the generator's sources with no watermark delay: the generator's events
are in time order within each source. Joins of two streams are interval joins whose bounds
cover every reference the generator makes at a rate of at least ``MIN_RATE`` events per
second of event time (the references span a fixed number of events, so they span more time
at a lower rate). Columns keep the generator's snake-case names (``date_time``, not Flink's
``dateTime``). The Python API has no projection step, so a Python form's output keeps
columns that Flink's query leaves out; ``check`` compares the oracle's columns.

bench/nexmark.py times them; tests/test_nexmark_queries.py checks them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

import rillet as rl

#: The smallest generator rate (events per second) the join bounds below are made for.
MIN_RATE = 100
#: People that auctions name, around the auction's time (q3): the generator picks a seller
#: among the last 1,000 people (about 50,000 events) or one created a few events later.
PERSON_BOUND = "1h"
#: Auctions that bids name (q20): auction time less bid time. A bid names one of the last
#: ~110 auctions (about 2,000 events before it) or, rarely, one made up to ~200 events later.
BID_AUCTION_LOWER = "-1m"
BID_AUCTION_UPPER = "10s"
#: The longest auction (expires less date_time): at most about 3,400 events.
AUCTION_SPAN = "1m"
AUCTION_SPAN_MS = 60_000
#: A window longer than any run: it closes at the end of the input, when an unbounded
#: aggregate of Flink's (GROUP BY without a window) has its final value.
FOREVER = "3650d"

#: The winning bid of an auction as one Int64 (q6, q9): price, then the time since the
#: auction started (earlier first), then the bidder (smaller first). Prices are below 2**27
#: (at most 10**8 cents), the offsets below 2**16 ms (``AUCTION_SPAN_MS``), bidders below
#: 2**20 (a run of up to about 50 million events).
PRICE_SHIFT = 36
OFFSET_SHIFT = 20
OFFSET_MASK = (1 << 16) - 1
BIDDER_MASK = (1 << 20) - 1

#: The generator's four named channels (q21).
HOT_CHANNELS = ("apple", "google", "facebook", "baidu")
#: q21's pattern, as Flink's REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2).
CHANNEL_ID = r"(&|^)channel_id=([^&]*)"


@dataclass(frozen=True)
class NexmarkQuery:
    """One Nexmark query: the rillet forms, the DuckDB oracle and how to compare them."""

    name: str
    what: str
    build: Callable[[Any, Any, Any], Any] | None
    sql: Callable[[Any, Any, Any], Any] | None
    oracle: str | None
    key: tuple[str, ...]
    inputs: tuple[str, ...]
    not_expressible: str | None = None
    note: str | None = None


def stream(source: Any) -> rl.Stream:
    """A generator source (or a DataFrame of its rows) as a stream on ``date_time``."""
    return rl.stream(source, time="date_time", watermark=0)


def side_input() -> pl.DataFrame:
    """q13's bounded side input: keys 0 to 9,999, each with a text value."""
    keys = pl.int_range(0, 10_000, dtype=pl.Int64, eager=True)
    return pl.DataFrame({"key": keys}).with_columns(value=pl.format("value-{}", pl.col("key")))


# -- stateless: q0, q1, q2, q14, q21, q22 -----------------------------------------------------

def q0(people: Any, auctions: Any, bids: Any) -> Any:
    """Every bid as it is."""
    return stream(bids)


def q1(people: Any, auctions: Any, bids: Any) -> Any:
    """Every bid with its price in euros (0.908 per dollar)."""
    return stream(bids).with_columns(price=pl.col("price") * 0.908)


def q2(people: Any, auctions: Any, bids: Any) -> Any:
    """The bids on auctions whose id is a multiple of 123."""
    return stream(bids).filter(pl.col("auction") % 123 == 0)


def _hour_kind() -> pl.Expr:
    hour = pl.col("date_time").dt.hour()
    return (pl.when((hour >= 8) & (hour <= 18)).then(pl.lit("dayTime"))
            .when((hour <= 6) | (hour >= 20)).then(pl.lit("nightTime"))
            .otherwise(pl.lit("otherTime")))


def q14(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids priced between 1,000,000 and 50,000,000 in euros, labelled by hour of the day,
    with the number of 'c' characters in ``extra``."""
    euros = pl.col("price") * 0.908
    return (stream(bids)
            .filter((euros > 1_000_000) & (euros < 50_000_000))
            .with_columns(price=euros, bid_time_type=_hour_kind(),
                          c_counts=pl.col("extra").str.count_matches("c", literal=True).cast(pl.Int64)))


def _channel_id() -> pl.Expr:
    channel = pl.col("channel").str.to_lowercase()
    return (pl.when(channel == "apple").then(pl.lit("0"))
            .when(channel == "google").then(pl.lit("1"))
            .when(channel == "facebook").then(pl.lit("2"))
            .when(channel == "baidu").then(pl.lit("3"))
            .otherwise(pl.col("url").str.extract(CHANNEL_ID, 2)))


def q21(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids with a channel id: the named channels' numbers, else the url's ``channel_id``."""
    has_id = pl.col("url").str.extract(CHANNEL_ID, 2).is_not_null()
    named = pl.col("channel").str.to_lowercase().is_in(list(HOT_CHANNELS))
    return stream(bids).filter(has_id | named).with_columns(channel_id=_channel_id())


def q22(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids with the first three directories of their url."""
    parts = pl.col("url").str.split("/")
    return stream(bids).with_columns(dir1=parts.list.get(3, null_on_oob=True),
                                     dir2=parts.list.get(4, null_on_oob=True),
                                     dir3=parts.list.get(5, null_on_oob=True))


# -- joins: q3, q20, q13 ------------------------------------------------------------------------

def q3(people: Any, auctions: Any, bids: Any) -> Any:
    """Sellers from Oregon, Idaho or California and their auctions in category 10."""
    a = stream(auctions).filter(pl.col("category") == 10)
    p = stream(people).filter(pl.col("state").is_in(["OR", "ID", "CA"]))
    return a.join_interval(p, left_on="seller", right_on="id", lower=f"-{PERSON_BOUND}", upper=PERSON_BOUND,
                           suffix="_person")


def q20(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids on auctions of category 10, with the auction's columns."""
    a = stream(auctions).filter(pl.col("category") == 10)
    return stream(bids).join_interval(a, left_on="auction", right_on="id", lower=BID_AUCTION_LOWER,
                                      upper=BID_AUCTION_UPPER, suffix="_auction")


def q13(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids joined with a bounded side input on ``auction % 10000``."""
    return (stream(bids).with_columns(key=pl.col("auction") % 10_000)
            .join(side_input(), on="key", how="inner"))


# -- winning bids: q4, q6, q9 ---------------------------------------------------------------------

def _auction_bids(auctions: Any, bids: Any) -> rl.Stream:
    """Each auction with each of its bids made while it was open (bid time in
    ``[date_time, expires]``); the bid's ``date_time`` and ``extra`` get ``_bid``."""
    return (stream(auctions)
            .join_interval(stream(bids), left_on="id", right_on="auction", lower="0s", upper=AUCTION_SPAN,
                           suffix="_bid")
            .filter(pl.col("date_time_bid") <= pl.col("expires")))


def _rank() -> pl.Expr:
    """A bid's place among its auction's bids as one Int64 (larger wins): price, then the
    earlier bid, then the smaller bidder id (see ``PRICE_SHIFT``)."""
    offset = (pl.col("date_time_bid") - pl.col("date_time")).dt.total_milliseconds().cast(pl.Int64)
    return ((pl.col("price") * (1 << PRICE_SHIFT))
            + (OFFSET_MASK - offset) * (1 << OFFSET_SHIFT)
            + (BIDDER_MASK - pl.col("bidder")))


def _decoded(rank: str) -> list[pl.Expr]:
    """The winning bid's price, bidder and time from its rank (the auction's time is the
    window's start)."""
    r = pl.col(rank)
    offset = OFFSET_MASK - ((r // (1 << OFFSET_SHIFT)) % (1 << 16))
    return [(r // (1 << PRICE_SHIFT)).alias("price"),
            (BIDDER_MASK - (r % (1 << OFFSET_SHIFT))).alias("bidder"),
            pl.col("window_start").alias("date_time"),
            (pl.col("window_start") + pl.duration(milliseconds=offset)).alias("bid_date_time")]


AUCTION_COLUMNS = ("id", "item_name", "description", "initial_bid", "reserve", "expires", "seller",
                   "category", "extra")


def _winners(auctions: Any, bids: Any, by: tuple[str, ...]) -> Any:
    """The winning bid's rank per auction: a 1 ms window at the auction's start (the joined
    rows' event time), which closes once the bids' watermark has passed the auction's start
    plus ``AUCTION_SPAN`` (the join's watermark), so every bid of the auction is in it."""
    return (_auction_bids(auctions, bids).with_columns(rank=_rank())
            .window(rl.tumbling("1ms"), by=list(by)).agg(rl.max("rank").alias("rank")))


def q4(people: Any, auctions: Any, bids: Any) -> Any:
    """The average winning price per category (over auctions with at least one bid)."""
    per_auction = (_auction_bids(auctions, bids)
                   .window(rl.tumbling("1ms"), by=["id", "category"]).agg(rl.max("price").alias("final")))
    return (rl.stream(per_auction, time="window_start", watermark=0)
            .window(rl.tumbling(FOREVER), by="category").agg(rl.mean("final").alias("final")))


def q9(people: Any, auctions: Any, bids: Any) -> Any:
    """The winning bid of each auction with every auction and bid column."""
    won = (rl.stream(_winners(auctions, bids, AUCTION_COLUMNS), time="window_start", watermark=0)
           .with_columns(*_decoded("rank"), auction=pl.col("id")))
    return (won.join_interval(stream(bids), left_on=["id", "bidder", "price"], right_on=["auction", "bidder", "price"],
                              lower="0s", upper=AUCTION_SPAN, suffix="_bid")
            .filter(pl.col("date_time_bid") == pl.col("bid_date_time")))


def q6(people: Any, auctions: Any, bids: Any) -> Any:
    """Per seller, the average winning price of the auction and its 10 predecessors, in the
    order the auctions started."""
    won = rl.stream(_winners(auctions, bids, ("id", "seller")), time="window_start", watermark=0)
    return (won.with_columns(*_decoded("rank"))
            .window(rl.sliding(rows=10), by="seller").agg(rl.mean("price").alias("avg_price")))


# -- windows: q5, q7, q8, q11, q12, q15, q16, q17 -------------------------------------------------------

def _hop_counts(bids: Any) -> Any:
    return stream(bids).window(rl.hopping("10s", "2s"), by="auction").agg(rl.count().alias("num"))


def q5(people: Any, auctions: Any, bids: Any) -> Any:
    """The auctions with the most bids in each 10-second window, every 2 seconds."""
    slot = pl.col("window_start").dt.epoch("ms").alias("slot")
    most = (rl.stream(_hop_counts(bids), time="window_start", watermark=0).with_columns(slot)
            .window(rl.tumbling("2s"), by="slot").agg(rl.max("num").alias("maxn")))
    counts = rl.stream(_hop_counts(bids), time="window_start", watermark=0).with_columns(slot)
    return (counts.join_interval(rl.stream(most, time="window_start", watermark=0), on="slot", lower="0s", upper="0s",
                                 suffix="_max")
            .filter(pl.col("num") >= pl.col("maxn")))


def q7(people: Any, auctions: Any, bids: Any) -> Any:
    """The bids at the highest price of each 10-second window, with bid time in
    ``[window_end - 10 s, window_end]``."""
    highest = stream(bids).window(rl.tumbling("10s")).agg(rl.max("price").alias("maxprice"))
    return (rl.stream(highest, time="window_end", watermark=0)
            .join_interval(stream(bids), left_on="maxprice", right_on="price", lower="-10s", upper="0s")
            .with_columns(price=pl.col("maxprice")))


def q8(people: Any, auctions: Any, bids: Any) -> Any:
    """People who created an auction in the 10-second window they registered in."""
    p = stream(people).window(rl.tumbling("10s"), by=["id", "name"]).agg(rl.count().alias("people"))
    a = stream(auctions).window(rl.tumbling("10s"), by="seller").agg(rl.count().alias("auctions"))
    return (rl.stream(p, time="window_start", watermark=0)
            .join_interval(rl.stream(a, time="window_start", watermark=0), left_on="id", right_on="seller",
                           lower="0s", upper="0s", suffix="_auction"))


def q11(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids per bidder session (gap 10 seconds)."""
    return stream(bids).window(rl.session("10s"), by="bidder").agg(rl.count().alias("bid_count"))


def q12(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids per bidder per 10 seconds of processing time."""
    return (rl.stream(bids, time=rl.processing_time("p_time"))
            .window(rl.tumbling("10s"), by="bidder").agg(rl.count().alias("bid_count")))


PRICE_BANDS = (pl.col("price") < 10_000,
               (pl.col("price") >= 10_000) & (pl.col("price") < 1_000_000),
               pl.col("price") >= 1_000_000)


def _band_counts(distinct: bool) -> list[rl.Agg]:
    out = [rl.count().alias("total_bids")]
    out += [rl.count(where=band).alias(f"rank{i}_bids") for i, band in enumerate(PRICE_BANDS, 1)]
    if distinct:
        for col in ("bidder", "auction"):
            out.append(rl.count_distinct(col).alias(f"total_{col}s"))
            out += [rl.count_distinct(col, where=band).alias(f"rank{i}_{col}s")
                    for i, band in enumerate(PRICE_BANDS, 1)]
    return out


def q15(people: Any, auctions: Any, bids: Any) -> Any:
    """Per day: bids, bidders and auctions, in all and per price band."""
    return stream(bids).window(rl.tumbling("1d")).agg(*_band_counts(True))


def q16(people: Any, auctions: Any, bids: Any) -> Any:
    """Per channel and day: q15's counts and the last minute of the day with a bid."""
    minute = (pl.col("date_time").dt.hour().cast(pl.Int64) * 60
              + pl.col("date_time").dt.minute().cast(pl.Int64)).alias("minute_of_day")
    return (stream(bids).with_columns(minute)
            .window(rl.tumbling("1d"), by="channel")
            .agg(rl.max("minute_of_day").alias("minute"), *_band_counts(True)))


def q17(people: Any, auctions: Any, bids: Any) -> Any:
    """Per auction and day: bids in all and per price band, and price statistics."""
    return (stream(bids).window(rl.tumbling("1d"), by="auction")
            .agg(*_band_counts(False), rl.min("price").alias("min_price"), rl.max("price").alias("max_price"),
                 rl.mean("price").alias("avg_price"), rl.sum("price").alias("sum_price")))


# -- unbounded: q10, q18 ----------------------------------------------------------------------------

def q10(people: Any, auctions: Any, bids: Any) -> Any:
    """Bids with their day and minute, for files partitioned by them
    (``.to_parquet(dir, partition_by="date_time", every="1m")``)."""
    return stream(bids).with_columns(dt=pl.col("date_time").dt.strftime("%Y-%m-%d"),
                                     hm=pl.col("date_time").dt.strftime("%H:%M"))


def q18(people: Any, auctions: Any, bids: Any) -> Any:
    """The last bid of each bidder on each auction."""
    cols = ("price", "channel", "url", "date_time", "extra")
    return (stream(bids).window(rl.tumbling(FOREVER), by=["bidder", "auction"])
            .agg(*(rl.last(c).alias(c) for c in cols)))


# -- SQL ----------------------------------------------------------------------------------------------

def _sql(text: str, **inputs: Any) -> Any:
    return rl.sql(text, **{k: stream(v) for k, v in inputs.items()})


def sql_q0(people: Any, auctions: Any, bids: Any) -> Any:
    """q0 in SQL."""
    return _sql("SELECT auction, bidder, price, date_time, extra FROM bids", bids=bids)


def sql_q1(people: Any, auctions: Any, bids: Any) -> Any:
    """q1 in SQL."""
    return _sql("SELECT auction, bidder, price * 0.908 AS price, date_time, extra FROM bids", bids=bids)


def sql_q2(people: Any, auctions: Any, bids: Any) -> Any:
    """q2 in SQL."""
    return _sql("SELECT auction, price, date_time FROM bids WHERE auction % 123 = 0", bids=bids)


def sql_q3(people: Any, auctions: Any, bids: Any) -> Any:
    """q3 in SQL: Flink's join with a time bound added."""
    return _sql(f"""
        SELECT P.name, P.city, P.state, A.id, A.date_time
        FROM (SELECT id, seller, date_time FROM auctions WHERE category = 10) AS A
        JOIN (SELECT id, name, city, state, date_time FROM people WHERE state IN ('OR', 'ID', 'CA')) AS P
          ON A.seller = P.id
         AND P.date_time BETWEEN A.date_time - INTERVAL '{PERSON_BOUND[:-1]}' HOUR
                             AND A.date_time + INTERVAL '{PERSON_BOUND[:-1]}' HOUR""",
                auctions=auctions, people=people)


def sql_q5(people: Any, auctions: Any, bids: Any) -> Any:
    """q5 in SQL: a window Top-N (RANK) over the hopping counts."""
    return _sql("""
        SELECT auction, num, window_start, window_end FROM (
            SELECT *, RANK() OVER (PARTITION BY window_start, window_end ORDER BY num DESC) AS r
            FROM (
                SELECT window_start, window_end, auction, COUNT(*) AS num
                FROM TABLE(HOP(TABLE bids, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
                GROUP BY window_start, window_end, auction))
        WHERE r <= 1""", bids=bids)


def sql_q7(people: Any, auctions: Any, bids: Any) -> Any:
    """q7 in SQL, as Flink's text."""
    return _sql("""
        SELECT B.auction, B.price, B.bidder, B.date_time, B.extra
        FROM (SELECT auction, price, bidder, date_time, extra FROM bids) B
        JOIN (
          SELECT MAX(price) AS maxprice, window_end AS date_time
          FROM TABLE(TUMBLE(TABLE bids2, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
          GROUP BY window_start, window_end
        ) B1
        ON B.price = B1.maxprice
        WHERE B.date_time BETWEEN B1.date_time - INTERVAL '10' SECOND AND B1.date_time""",
                bids=bids, bids2=bids)


def sql_q8(people: Any, auctions: Any, bids: Any) -> Any:
    """q8 in SQL, as Flink's text (a window join on the renamed bounds); the start is selected
    as window_start, the oracle's name for it."""
    return _sql("""
        SELECT P.id, P.name, P.starttime AS window_start
        FROM (
          SELECT id, name, window_start AS starttime, window_end AS endtime
          FROM TABLE(TUMBLE(TABLE people, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
          GROUP BY id, name, window_start, window_end
        ) P
        JOIN (
          SELECT seller, window_start AS starttime, window_end AS endtime
          FROM TABLE(TUMBLE(TABLE auctions, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
          GROUP BY seller, window_start, window_end
        ) A
        ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime""",
                people=people, auctions=auctions)


def sql_q11(people: Any, auctions: Any, bids: Any) -> Any:
    """q11 in SQL (Flink's SESSION table function, partitioned by the bidder)."""
    return _sql("""
        SELECT bidder, COUNT(*) AS bid_count, window_start, window_end
        FROM TABLE(SESSION(TABLE bids PARTITION BY bidder, DESCRIPTOR(date_time), INTERVAL '10' SECOND))
        GROUP BY bidder, window_start, window_end""", bids=bids)


def sql_q13(people: Any, auctions: Any, bids: Any) -> Any:
    """q13 in SQL: a join with the side input as a table."""
    return rl.sql("""
        SELECT B.auction, B.bidder, B.price, B.date_time, S.value
        FROM (SELECT auction, bidder, price, date_time, auction % 10000 AS k FROM bids) B
        JOIN side_input S ON B.k = S.key""", bids=stream(bids), side_input=side_input())


def sql_q14(people: Any, auctions: Any, bids: Any) -> Any:
    """q14 in SQL (the 'c' count as a length difference)."""
    return _sql("""
        SELECT auction, bidder, 0.908 * price AS price,
            CASE
                WHEN EXTRACT(HOUR FROM date_time) >= 8 AND EXTRACT(HOUR FROM date_time) <= 18 THEN 'dayTime'
                WHEN EXTRACT(HOUR FROM date_time) <= 6 OR EXTRACT(HOUR FROM date_time) >= 20 THEN 'nightTime'
                ELSE 'otherTime'
            END AS bid_time_type,
            date_time, extra,
            LENGTH(extra) - LENGTH(REPLACE(extra, 'c', '')) AS c_counts
        FROM bids
        WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000""", bids=bids)


_BANDS_SQL = ("price < 10000", "price >= 10000 AND price < 1000000", "price >= 1000000")


def _bands_sql(distinct: bool) -> str:
    out = ["COUNT(*) AS total_bids"]
    out += [f"COUNT(*) FILTER (WHERE {b}) AS rank{i}_bids" for i, b in enumerate(_BANDS_SQL, 1)]
    if distinct:
        for col in ("bidder", "auction"):
            out.append(f"COUNT(DISTINCT {col}) AS total_{col}s")
            out += [f"COUNT(DISTINCT {col}) FILTER (WHERE {b}) AS rank{i}_{col}s" for i, b in enumerate(_BANDS_SQL, 1)]
    return ",\n            ".join(out)


def sql_q15(people: Any, auctions: Any, bids: Any) -> Any:
    """q15 in SQL (a one-day TUMBLE for Flink's GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd'))."""
    return _sql(f"""
        SELECT window_start, window_end,
            {_bands_sql(True)}
        FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' DAY))
        GROUP BY window_start, window_end""", bids=bids)


def sql_q16(people: Any, auctions: Any, bids: Any) -> Any:
    """q16 in SQL."""
    return _sql(f"""
        SELECT channel, window_start, window_end,
            MAX(EXTRACT(HOUR FROM date_time) * 60 + EXTRACT(MINUTE FROM date_time)) AS minute,
            {_bands_sql(True)}
        FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' DAY))
        GROUP BY channel, window_start, window_end""", bids=bids)


def sql_q17(people: Any, auctions: Any, bids: Any) -> Any:
    """q17 in SQL."""
    return _sql(f"""
        SELECT auction, window_start, window_end,
            {_bands_sql(False)},
            MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price, SUM(price) AS sum_price
        FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '1' DAY))
        GROUP BY auction, window_start, window_end""", bids=bids)


def sql_q19(people: Any, auctions: Any, bids: Any) -> Any:
    """q19 in SQL: a Top-N over the rows of a window longer than the run."""
    return _sql(f"""
        SELECT auction, bidder, price, channel, url, date_time, extra, rank_number FROM (
            SELECT auction, bidder, price, channel, url, date_time, extra, window_start, window_end,
                ROW_NUMBER() OVER (PARTITION BY window_start, window_end, auction ORDER BY price DESC) AS rank_number
            FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '{FOREVER[:-1]}' DAY)))
        WHERE rank_number <= 10""", bids=bids)


def sql_q20(people: Any, auctions: Any, bids: Any) -> Any:
    """q20 in SQL: Flink's join with a time bound added."""
    return _sql("""
        SELECT B.auction, B.bidder, B.price, B.channel, B.url, B.date_time, B.extra,
               A.item_name, A.description, A.initial_bid, A.reserve, A.date_time AS date_time_auction,
               A.expires, A.seller, A.category, A.extra AS extra_auction
        FROM (SELECT auction, bidder, price, channel, url, date_time, extra FROM bids) AS B
        JOIN (SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, extra
              FROM auctions WHERE category = 10) AS A
          ON B.auction = A.id
         AND A.date_time BETWEEN B.date_time - INTERVAL '1' MINUTE AND B.date_time + INTERVAL '10' SECOND""",
                bids=bids, auctions=auctions)


def sql_q22(people: Any, auctions: Any, bids: Any) -> Any:
    """q22 in SQL (Flink's SPLIT_INDEX(url, '/', i) is SPLIT_PART(url, '/', i + 1))."""
    return _sql("""
        SELECT auction, bidder, price, channel,
            SPLIT_PART(url, '/', 4) AS dir1, SPLIT_PART(url, '/', 5) AS dir2, SPLIT_PART(url, '/', 6) AS dir3
        FROM bids""", bids=bids)


def sql_q4(people: Any, auctions: Any, bids: Any) -> Any:
    """q4 in SQL: the winning price in a 1 ms TUMBLE at the auction's start over the interval
    join, then the average per category in a window longer than the run (cascaded on
    window_time)."""
    return _sql(f"""
        SELECT category, AVG(final) AS final
        FROM TABLE(TUMBLE(TABLE (
            SELECT window_time, id, category, MAX(price) AS final
            FROM TABLE(TUMBLE(TABLE (
                SELECT A.id, A.category, A.date_time, B.price
                FROM (SELECT id, category, date_time, expires FROM auctions) A
                JOIN (SELECT auction, price, date_time FROM bids) B
                  ON A.id = B.auction
                 AND B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '{AUCTION_SPAN[:-1]}' MINUTE
                WHERE B.date_time <= A.expires), DESCRIPTOR(date_time), INTERVAL '1' MILLISECOND))
            GROUP BY window_start, window_end, id, category),
            DESCRIPTOR(window_time), INTERVAL '{FOREVER[:-1]}' DAY))
        GROUP BY window_start, window_end, category""", auctions=auctions, bids=bids)


def _winners_sql(columns: str, bid_columns: str) -> str:
    """The winning bid per auction in SQL: ROW_NUMBER over the rows of a 1 ms TUMBLE at the
    auction's start over the interval join (price desc, then the earlier bid, then the
    smaller bidder)."""
    a_cols = ", ".join(f"A.{c}" for c in columns.split(", "))
    return f"""
        SELECT * FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY window_start, window_end, id
                                         ORDER BY price DESC, date_time_bid, bidder) AS rownum
            FROM TABLE(TUMBLE(TABLE (
                SELECT {a_cols}, {bid_columns}
                FROM (SELECT {columns} FROM auctions) A
                JOIN (SELECT auction, bidder, price, date_time, extra FROM bids) B
                  ON A.id = B.auction
                 AND B.date_time BETWEEN A.date_time AND A.date_time + INTERVAL '{AUCTION_SPAN[:-1]}' MINUTE
                WHERE B.date_time <= A.expires), DESCRIPTOR(date_time), INTERVAL '1' MILLISECOND)))
        WHERE rownum <= 1"""


def sql_q6(people: Any, auctions: Any, bids: Any) -> Any:
    """q6 in SQL: the winners (as q9), then AVG OVER the seller's last 11 rows."""
    winners = _winners_sql("id, seller, date_time, expires", "B.bidder, B.price, B.date_time AS date_time_bid")
    return _sql(f"""
        SELECT seller, date_time AS window_start, AVG(price) OVER w AS avg_price
        FROM (SELECT id, seller, date_time, price FROM ({winners}))
        WINDOW w AS (PARTITION BY seller ROWS 10 PRECEDING)""", auctions=auctions, bids=bids)


def sql_q9(people: Any, auctions: Any, bids: Any) -> Any:
    """q9 in SQL: Flink's ROW_NUMBER, over the rows of a 1 ms TUMBLE at the auction's start."""
    winners = _winners_sql(", ".join(("id", "item_name", "description", "initial_bid", "reserve", "date_time",
                                      "expires", "seller", "category", "extra")),
                           "B.auction, B.bidder, B.price, B.date_time AS date_time_bid, B.extra AS extra_bid")
    return _sql(f"""
        SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, extra,
            auction, bidder, price, date_time_bid, extra_bid
        FROM ({winners})""", auctions=auctions, bids=bids)


def sql_q10(people: Any, auctions: Any, bids: Any) -> Any:
    """q10 in SQL (DATE_FORMAT as STRFTIME)."""
    return _sql("""
        SELECT auction, bidder, price, date_time, extra,
            STRFTIME(date_time, '%Y-%m-%d') AS dt, STRFTIME(date_time, '%H:%M') AS hm
        FROM bids""", bids=bids)


def sql_q12(people: Any, auctions: Any, bids: Any) -> Any:
    """q12 in SQL: a TUMBLE on a processing-time column."""
    return rl.sql("""
        SELECT bidder, COUNT(*) AS bid_count, window_start, window_end
        FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
        GROUP BY bidder, window_start, window_end""", bids=rl.stream(bids, time=rl.processing_time("p_time")))


def sql_q18(people: Any, auctions: Any, bids: Any) -> Any:
    """q18 in SQL: Flink's ROW_NUMBER over the rows of a window longer than the run."""
    return _sql(f"""
        SELECT auction, bidder, price, channel, url, date_time, extra FROM (
            SELECT auction, bidder, price, channel, url, date_time, extra, window_start, window_end,
                ROW_NUMBER() OVER (PARTITION BY window_start, window_end, bidder, auction ORDER BY date_time DESC)
                    AS rank_number
            FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(date_time), INTERVAL '{FOREVER[:-1]}' DAY)))
        WHERE rank_number <= 1""", bids=bids)


def sql_q21(people: Any, auctions: Any, bids: Any) -> Any:
    """q21 in SQL (polars' REGEXP_EXTRACT gives '' on no match, as DuckDB's: hence NULLIF)."""
    extract = f"NULLIF(REGEXP_EXTRACT(url, '{CHANNEL_ID}', 2), '')"
    return _sql(f"""
        SELECT auction, bidder, price, channel,
            CASE WHEN LOWER(channel) = 'apple' THEN '0' WHEN LOWER(channel) = 'google' THEN '1'
                 WHEN LOWER(channel) = 'facebook' THEN '2' WHEN LOWER(channel) = 'baidu' THEN '3'
                 ELSE {extract} END AS channel_id
        FROM bids
        WHERE {extract} IS NOT NULL OR LOWER(channel) IN ('apple', 'google', 'facebook', 'baidu')""", bids=bids)


# -- the oracles -------------------------------------------------------------------------------------

def _bucket(col: str, ms: int) -> str:
    """DuckDB: the start of the epoch-aligned window of ``ms`` milliseconds holding ``col``."""
    return f"make_timestamp(epoch_us({col}) // {ms * 1000} * {ms * 1000})"


_WINNERS_DUCK = """
    SELECT a.*, b.bidder, b.price, b.date_time AS date_time_bid, b.extra AS extra_bid,
        ROW_NUMBER() OVER (PARTITION BY a.id ORDER BY b.price DESC, b.date_time, b.bidder) AS rn
    FROM auctions a JOIN bids b ON a.id = b.auction AND b.date_time BETWEEN a.date_time AND a.expires"""

_CHANNEL_ID_DUCK = f"NULLIF(regexp_extract(url, '{CHANNEL_ID}', 2), '')"

ORACLES: dict[str, str] = {
    "q0": "SELECT auction, bidder, price, date_time, extra FROM bids",
    "q1": "SELECT auction, bidder, CAST(price AS DOUBLE) * 0.908 AS price, date_time, extra FROM bids",
    "q2": "SELECT auction, price FROM bids WHERE auction % 123 = 0",
    "q3": """
        SELECT p.name, p.city, p.state, a.id FROM auctions a JOIN people p ON a.seller = p.id
        WHERE a.category = 10 AND p.state IN ('OR', 'ID', 'CA')""",
    "q4": """
        SELECT category, AVG(final) AS final FROM (
            SELECT a.id, a.category, MAX(b.price) AS final
            FROM auctions a JOIN bids b ON a.id = b.auction AND b.date_time BETWEEN a.date_time AND a.expires
            GROUP BY a.id, a.category)
        GROUP BY category""",
    "q5": """
        WITH hops AS (
            SELECT auction, make_timestamp(s) AS window_start, make_timestamp(s + 10000000) AS window_end
            FROM (SELECT auction, epoch_us(date_time) // 2000000 * 2000000 - k * 2000000 AS s
                  FROM bids, range(5) AS r(k))),
        counts AS (SELECT auction, window_start, window_end, COUNT(*) AS num FROM hops GROUP BY ALL),
        most AS (SELECT window_start, MAX(num) AS maxn FROM counts GROUP BY ALL)
        SELECT c.auction, c.num, c.window_start, c.window_end
        FROM counts c JOIN most m USING (window_start) WHERE c.num >= m.maxn""",
    "q6": f"""
        SELECT seller, date_time AS window_start,
            AVG(price) OVER (PARTITION BY seller ORDER BY date_time, id
                             ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS avg_price
        FROM ({_WINNERS_DUCK}) WHERE rn = 1""",
    "q7": f"""
        SELECT B.auction, B.price, B.bidder, B.date_time, B.extra
        FROM bids B JOIN (
            SELECT MAX(price) AS maxprice, {_bucket("date_time", 10_000)} + INTERVAL 10 SECOND AS date_time
            FROM bids GROUP BY 2) B1
        ON B.price = B1.maxprice
        WHERE B.date_time BETWEEN B1.date_time - INTERVAL 10 SECOND AND B1.date_time""",
    "q8": f"""
        WITH p AS (SELECT DISTINCT id, name, {_bucket("date_time", 10_000)} AS window_start FROM people),
             a AS (SELECT DISTINCT seller, {_bucket("date_time", 10_000)} AS window_start FROM auctions)
        SELECT p.id, p.name, p.window_start FROM p JOIN a ON p.id = a.seller AND p.window_start = a.window_start""",
    "q9": f"""
        SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, extra,
            id AS auction, bidder, price, date_time_bid, extra_bid
        FROM ({_WINNERS_DUCK}) WHERE rn = 1""",
    "q10": """
        SELECT auction, bidder, price, date_time, extra, strftime(date_time, '%Y-%m-%d') AS dt,
            strftime(date_time, '%H:%M') AS hm
        FROM bids""",
    "q11": """
        WITH o AS (
            SELECT bidder, date_time,
                CASE WHEN date_time - lag(date_time) OVER w <= INTERVAL 10 SECOND THEN 0 ELSE 1 END AS new
            FROM bids WINDOW w AS (PARTITION BY bidder ORDER BY date_time)),
        s AS (SELECT bidder, date_time,
                  SUM(new) OVER (PARTITION BY bidder ORDER BY date_time, new DESC ROWS UNBOUNDED PRECEDING) AS sid
              FROM o)
        SELECT bidder, COUNT(*) AS bid_count, MIN(date_time) AS window_start,
            MAX(date_time) + INTERVAL 10 SECOND AS window_end
        FROM s GROUP BY bidder, sid""",
    "q12": "SELECT bidder, COUNT(*) AS bid_count FROM bids GROUP BY bidder",
    "q13": """
        SELECT b.auction, b.bidder, b.price, b.date_time, s.value
        FROM bids b JOIN side_input s ON b.auction % 10000 = s.key""",
    "q14": """
        SELECT auction, bidder, CAST(price AS DOUBLE) * 0.908 AS price,
            CASE WHEN hour(date_time) >= 8 AND hour(date_time) <= 18 THEN 'dayTime'
                 WHEN hour(date_time) <= 6 OR hour(date_time) >= 20 THEN 'nightTime'
                 ELSE 'otherTime' END AS bid_time_type,
            date_time, extra, length(extra) - length(replace(extra, 'c', '')) AS c_counts
        FROM bids WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000""",
    "q15": f"""
        SELECT date_trunc('day', date_time) AS window_start, {_bands_sql(True)}
        FROM bids GROUP BY 1""",
    "q16": f"""
        SELECT channel, date_trunc('day', date_time) AS window_start,
            MAX(hour(date_time) * 60 + minute(date_time)) AS minute, {_bands_sql(True)}
        FROM bids GROUP BY 1, 2""",
    "q17": f"""
        SELECT auction, date_trunc('day', date_time) AS window_start, {_bands_sql(False)},
            MIN(price) AS min_price, MAX(price) AS max_price, AVG(price) AS avg_price,
            CAST(SUM(price) AS BIGINT) AS sum_price
        FROM bids GROUP BY 1, 2""",
    "q18": """
        SELECT auction, bidder, price, channel, url, date_time, extra FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY date_time DESC, arrival DESC) AS rn
            FROM bids)
        WHERE rn = 1""",
    "q19": """
        SELECT auction, bidder, price, channel, url, date_time, extra, rank_number FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC, arrival) AS rank_number FROM bids)
        WHERE rank_number <= 10""",
    "q20": """
        SELECT b.auction, b.bidder, b.price, b.channel, b.url, b.date_time, b.extra,
            a.item_name, a.description, a.initial_bid, a.reserve, a.date_time AS date_time_auction,
            a.expires, a.seller, a.category, a.extra AS extra_auction
        FROM bids b JOIN auctions a ON b.auction = a.id WHERE a.category = 10""",
    "q21": f"""
        SELECT auction, bidder, price, channel,
            CASE WHEN lower(channel) = 'apple' THEN '0' WHEN lower(channel) = 'google' THEN '1'
                 WHEN lower(channel) = 'facebook' THEN '2' WHEN lower(channel) = 'baidu' THEN '3'
                 ELSE {_CHANNEL_ID_DUCK} END AS channel_id
        FROM bids
        WHERE {_CHANNEL_ID_DUCK} IS NOT NULL OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')""",
    "q22": """
        SELECT auction, bidder, price, channel,
            split_part(url, '/', 4) AS dir1, split_part(url, '/', 5) AS dir2, split_part(url, '/', 6) AS dir3
        FROM bids""",
}


def _entry(name: str, what: str, build: Callable[[Any, Any, Any], Any] | None, key: tuple[str, ...],
           inputs: tuple[str, ...], sql: Callable[[Any, Any, Any], Any] | None = None,
           not_expressible: str | None = None, note: str | None = None) -> NexmarkQuery:
    return NexmarkQuery(name, what, build, sql, ORACLES.get(name), key, inputs, not_expressible, note)


BIDS = ("bids",)

QUERIES: dict[str, NexmarkQuery] = {q.name: q for q in (
    _entry("q0", "every bid (pass-through)", q0, ("auction", "bidder", "date_time"), BIDS, sql_q0,
           note="The Python API has no projection step: the stream keeps every bid column, and `check` "
                "compares the oracle's columns."),
    _entry("q1", "bid prices in euros", q1, ("auction", "bidder", "date_time"), BIDS, sql_q1,
           note="Flink's price is DECIMAL(23, 3); here price * 0.908 is a Float64 (within 1e-9 relative)."),
    _entry("q2", "bids on auctions whose id is a multiple of 123", q2, ("auction", "price"), BIDS, sql_q2),
    _entry("q3", "sellers in OR, ID or CA and their auctions in category 10", q3, ("id",),
           ("people", "auctions"), sql_q3,
           note="Flink's join is unbounded; rillet joins two streams within a time bound only. Person time "
                f"less auction time in [-{PERSON_BOUND}, +{PERSON_BOUND}] holds every seller an auction can "
                f"name at rates >= {MIN_RATE} events/s (a seller is one of the last ~1,000 people, ~50,000 "
                "events), so the rows are Flink's."),
    _entry("q4", "average winning price per category", q4, ("category",), ("auctions", "bids"), sql_q4,
           note="The winning price per auction comes from a 1 ms window at the auction's start over the "
                "interval join (bid time less auction time in [0, AUCTION_SPAN], then bid time <= expires): "
                "the join's watermark passes it only when the bids' watermark has passed the auction's "
                "longest life, so it holds every bid. Flink's unbounded average per category is a window "
                f"longer than the run ({FOREVER}), emitted at the end: Flink's final result. The average is "
                "a Float64 (Flink's AVG of BIGINT truncates to BIGINT)."),
    _entry("q5", "auctions with the most bids per 10 s window, every 2 s", q5,
           ("window_start", "auction"), BIDS, sql_q5,
           note="Python: the hopping counts are read as a stream twice: once for the largest count per "
                "window (a 2 s tumbling window on window_start groups one hopping window), once joined with "
                "it on the window (interval join with bounds 0, 0). SQL: RANK() <= 1, a window Top-N. "
                "Windows are half-open [start, end), as Flink's HOP."),
    _entry("q6", "average winning price of each seller's last 11 auctions", q6, ("seller", "window_start"),
           ("auctions", "bids"), sql_q6,
           note="Not in Flink's suite (FLINK-19059). The winner per auction as in q9, then AVG OVER "
                "(PARTITION BY seller ... ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) as rl.sliding(rows=10) "
                "by seller. Flink's text orders by the winning bid's time; here the rows are ordered by the "
                "auction's start (window_start), ties by auction id (the order the winners come out), and "
                "the oracle orders so too: a query's output is streamed on its window bounds only "
                "(rl.stream(query, time='bid_date_time') is refused), and the winning bid's time is not a "
                "bound. The average is a Float64."),
    _entry("q7", "the highest bids of each 10 s window", q7, ("date_time", "auction", "bidder"), BIDS, sql_q7,
           note="As Flink's text, bid time BETWEEN window_end - 10 s AND window_end is closed at both ends: a "
                "bid exactly at a window's end with that window's highest price is kept too (rillet's "
                "windows are half-open, so that bid is in the next window). The join bounds [-10s, 0s] are "
                "closed, as BETWEEN, and the oracle is Flink's text."),
    _entry("q8", "people who opened an auction in the 10 s window they registered in", q8,
           ("id", "window_start"), ("people", "auctions"), sql_q8,
           note="A window join: the two windowed queries are read as streams on window_start and joined on "
                "the id and a window start equal on both sides (bounds 0, 0)."),
    _entry("q9", "the winning bid of each auction with all columns", q9, ("id",), ("auctions", "bids"), sql_q9,
           note="Winner: highest price, then the earliest bid, then the smallest bidder id (Flink: price DESC, "
                "dateTime ASC; the oracle uses the same rule). The winner is packed in one Int64 (price, time "
                "since the auction's start, bidder), its max taken in a 1 ms window at the auction's start "
                "(see q4), then joined back to the bids for the bid's other columns. Two bids equal in "
                "auction, price, millisecond and bidder would both come out."),
    _entry("q10", "bids with day and minute, to files partitioned by them", q10, ("auction", "bidder", "date_time"),
           BIDS, sql_q10,
           note="The rows are the query; the test writes them with to_parquet(dir, partition_by='date_time', "
                "every='1m') (one folder per minute, i.e. per (dt, hm)) and reads them back. rillet partitions "
                "by one column, so Flink's two levels dt/hm are one level of minutes."),
    _entry("q11", "bids per bidder session (gap 10 s)", q11, ("bidder", "window_start"), BIDS, sql_q11,
           note="rillet's session is [first, last + gap), Flink's SESSION_START/END; two bids exactly 10 s "
                "apart share a session in both."),
    _entry("q12", "bids per bidder per 10 s of processing time", q12, ("bidder",), BIDS, sql_q12,
           note="Processing-time windows depend on the wall clock: `check` compares the bids per bidder "
                "summed over all windows."),
    _entry("q13", "bids joined with a bounded side input", q13, ("auction", "bidder", "date_time"), BIDS, sql_q13,
           note="Flink's lookup join as of processing time; the side input never changes, so it is a "
                "stream-table join with a DataFrame (key 0..9999)."),
    _entry("q14", "expensive bids labelled by time of day, with a character count", q14,
           ("auction", "bidder", "date_time"), BIDS, sql_q14,
           note="count_char is str.count_matches('c', literal=True); price is a Float64."),
    _entry("q15", "per day: bids, bidders and auctions in all and per price band", q15, ("window_start",), BIDS,
           sql_q15,
           note="Flink's GROUP BY DATE_FORMAT(dateTime, 'yyyy-MM-dd') is a one-day tumbling window in UTC; the "
                "day is window_start."),
    _entry("q16", "q15 per channel, with the last minute of the day", q16, ("channel", "window_start"), BIDS,
           sql_q16,
           note="Flink's max(DATE_FORMAT(dateTime, 'HH:mm')) is given as minutes since midnight (hour * 60 + "
                "minute): rillet's max does not take text, and within a day the two orders agree."),
    _entry("q17", "per auction and day: bid counts and price statistics", q17, ("auction", "window_start"), BIDS,
           sql_q17, note="avg_price is a Float64 (Flink's AVG of BIGINT truncates)."),
    _entry("q18", "the last bid of each bidder on each auction", q18, ("bidder", "auction"), BIDS, sql_q18,
           note=f"A window longer than the run ({FOREVER}) with rl.last of each column: the latest bid by "
                "time, ties by arrival (the last to arrive), which the oracle orders by too. Flink emits "
                "updates as bids arrive; its final rows are these."),
    _entry("q19", "the 10 highest bids of each auction", None, ("auction", "rank_number"), BIDS, sql_q19,
           not_expressible="The Python API has no Top-N of rows per key: aggregates give one row per "
                           "window and key (rl.top_k gives a list of values, not the rows), and a stream "
                           "has no step that ranks or explodes rows. rillet's SQL can say it: ROW_NUMBER() "
                           f"over the rows of a {FOREVER} TUMBLE, partitioned by window and auction.",
           note="SQL: ties in price keep the rows in arrival order, as the oracle's ROW_NUMBER(ORDER BY "
                "price DESC, arrival)."),
    _entry("q20", "bids on auctions of category 10 with the auction's columns", q20,
           ("auction", "bidder", "date_time"), ("auctions", "bids"), sql_q20,
           note="Flink's join is unbounded; here auction time less bid time in "
                f"[{BID_AUCTION_LOWER}, {BID_AUCTION_UPPER}] holds every auction a bid names at rates >= "
                f"{MIN_RATE} events/s. The auction's date_time and extra get the suffix _auction."),
    _entry("q21", "bids with a channel id", q21, ("auction", "bidder", "price", "channel"), BIDS, sql_q21,
           note="REGEXP_EXTRACT is polars' str.extract (null on no match; DuckDB's gives '', hence NULLIF)."),
    _entry("q22", "bids with the first three directories of their url", q22, ("auction", "bidder", "price"),
           BIDS, sql_q22,
           note="SPLIT_INDEX(url, '/', i) is url.str.split('/').list.get(i) (null past the end; every "
                "generated url has them)."),
)}


# -- comparing ----------------------------------------------------------------------------------------

def _normal(df: pl.DataFrame) -> pl.DataFrame:
    """Datetimes as naive microseconds (UTC), integers as Int64, floats as Float64."""
    exprs = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone is not None:
                col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            exprs.append(col.dt.cast_time_unit("us"))
        elif dtype.is_integer():
            exprs.append(col.cast(pl.Int64))
        elif dtype.is_float() or dtype.is_decimal():
            exprs.append(col.cast(pl.Float64))
        else:
            exprs.append(col)
    return df.select(exprs)


def _per_bidder(df: pl.DataFrame) -> pl.DataFrame:
    return df.group_by("bidder").agg(pl.col("bid_count").sum())


def check(q: NexmarkQuery, out: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Raises AssertionError, with the differing rows, unless ``out`` holds the rows of
    ``expected`` (its columns, as a multiset; floats within 1e-9 relative). q12's windows
    follow the wall clock, so its bids per bidder are compared summed."""
    if q.name == "q12":
        out, expected = _per_bidder(out), _per_bidder(expected)
    missing = [c for c in expected.columns if c not in out.columns]
    assert not missing, f"{q.name}: rillet's output has no column {missing}; it has {out.columns}"
    a, b = _normal(out.select(expected.columns)), _normal(expected)
    floats = [c for c, t in b.schema.items() if t == pl.Float64]
    exact = [c for c in b.columns if c not in floats]
    order = [c for c in dict.fromkeys([*q.key, *exact, *floats]) if c in b.columns]
    a, b = a.sort(order, nulls_last=True), b.sort(order, nulls_last=True)
    if a.height != b.height:
        only_out = a.join(b, on=exact, how="anti", nulls_equal=True)
        only_expected = b.join(a, on=exact, how="anti", nulls_equal=True)
        raise AssertionError(f"{q.name}: {a.height} rows from rillet, {b.height} from the oracle\n"
                             f"only in rillet's ({only_out.height}):\n{only_out.head(10)}\n"
                             f"only in the oracle's ({only_expected.height}):\n{only_expected.head(10)}")
    same = []
    for c in b.columns:
        x, y = pl.col(f"x_{c}"), pl.col(f"y_{c}")
        equal = x.eq_missing(y)
        if c in floats:
            scale = pl.max_horizontal(x.abs(), y.abs())
            close = ((x - y).abs() <= 1e-9 * scale) | (x.is_nan() & y.is_nan())
            equal = equal | close.fill_null(False)
        same.append(equal.alias(c))
    pairs = pl.concat([a.select(pl.all().name.prefix("x_")), b.select(pl.all().name.prefix("y_"))], how="horizontal")
    bad = pairs.select(~pl.all_horizontal(same)).to_series()
    if bad.any():
        rows = bad.arg_true().head(10)
        raise AssertionError(f"{q.name}: {int(bad.sum())} of {a.height} rows differ (sorted by {order})\n"
                             f"rillet:\n{a[rows]}\noracle:\n{b[rows]}")


def oracle(q: NexmarkQuery, people: pl.DataFrame, auctions: pl.DataFrame, bids: pl.DataFrame) -> pl.DataFrame:
    """The oracle's rows, from DuckDB over the three tables (``bids`` with ``arrival``, its row
    number in generator order) and ``side_input``."""
    if q.oracle is None:
        raise ValueError(f"{q.name} has no oracle")
    return answer(connect(people, auctions, bids), q)


def connect(people: pl.DataFrame, auctions: pl.DataFrame, bids: pl.DataFrame,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding the oracles' tables (with ``threads`` threads if given)."""
    con = duckdb.connect()
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}")
    con.register("people", people.to_arrow())
    con.register("auctions", auctions.to_arrow())
    con.register("bids", bids.with_row_index("arrival").with_columns(pl.col("arrival").cast(pl.Int64)).to_arrow())
    con.register("side_input", side_input().to_arrow())
    return con


def answer(con: duckdb.DuckDBPyConnection, q: NexmarkQuery) -> pl.DataFrame:
    """The oracle's rows from a connection made by :func:`connect`."""
    if q.oracle is None:
        raise ValueError(f"{q.name} has no oracle")
    return pl.from_arrow(con.sql(q.oracle).to_arrow_table())  # type: ignore[return-value]


def sources(nx: Any) -> tuple[Any, Any, Any]:
    """The generator's three sources, in ``build``'s order."""
    return nx.people, nx.auctions, nx.bids
