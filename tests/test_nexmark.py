"""rl.nexmark: the Nexmark generator's three sources, checked against the generator's rules
(recomputed here in Python from the event numbers) and against polars over the same rows."""
from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pytest

import rillet as rl

KINDS = ("people", "auctions", "bids")
BASE = dt.datetime(2026, 1, 1)


def whole(source) -> pl.DataFrame:
    """The rows of a source as its micro-batches give them, in order."""
    frames = list(source.batches())
    return pl.concat(frames) if frames else source.generator.generate(source.kind, 0, 0)


def kind_of(n: int) -> str:
    r = n % 50
    return "people" if r < 1 else "auctions" if r < 4 else "bids"


def expected_time(n: int, rate: int, base: dt.datetime = BASE) -> dt.datetime:
    """Event ``n``'s time: base + n / rate seconds, rounded to the millisecond (half up)."""
    return base + dt.timedelta(milliseconds=(n * 2000 + rate) // (2 * rate))


def test_the_three_sources_split_the_one_stream_one_three_and_forty_six_in_fifty():
    events, rate = 5_003, 1_000
    nx = rl.nexmark(events=events, rate=rate)
    numbers = {k: [n for n in range(events) if kind_of(n) == k] for k in KINDS}
    for k in KINDS:
        df = whole(getattr(nx, k))
        assert df.height == len(numbers[k])
        assert df["date_time"].to_list() == [expected_time(n, rate) for n in numbers[k]]
    assert sum(len(v) for v in numbers.values()) == events
    people, auctions = whole(nx.people), whole(nx.auctions)
    assert people["id"].to_list() == list(range(1000, 1000 + people.height))
    assert auctions["id"].to_list() == list(range(1000, 1000 + auctions.height))


def test_schema_names_and_types():
    nx = rl.nexmark(events=100)
    ts = pl.Datetime("ms")
    assert dict(whole(nx.people).schema) == {
        "id": pl.Int64, "name": pl.String, "email_address": pl.String, "credit_card": pl.String,
        "city": pl.String, "state": pl.String, "date_time": ts, "extra": pl.String}
    assert dict(whole(nx.auctions).schema) == {
        "id": pl.Int64, "item_name": pl.String, "description": pl.String, "initial_bid": pl.Int64,
        "reserve": pl.Int64, "date_time": ts, "expires": ts, "seller": pl.Int64, "category": pl.Int64,
        "extra": pl.String}
    assert dict(whole(nx.bids).schema) == {
        "auction": pl.Int64, "bidder": pl.Int64, "price": pl.Int64, "channel": pl.String, "url": pl.String,
        "date_time": ts, "extra": pl.String}


@pytest.mark.parametrize("kind", KINDS)
def test_rows_do_not_depend_on_batch_size(kind):
    events = 3_000
    frames = {size: whole(getattr(rl.nexmark(events=events, seed=3, batch_events=size), kind))
              for size in (1, 7, events)}
    assert frames[1].equals(frames[events])
    assert frames[7].equals(frames[events])
    assert getattr(rl.nexmark(events=events, seed=3), kind).collect().equals(frames[events])


def test_a_seed_and_base_time_fix_the_data():
    a = rl.nexmark(events=2_000, seed=5).bids.collect()
    assert a.equals(rl.nexmark(events=2_000, seed=5).bids.collect())
    other = rl.nexmark(events=2_000, seed=6).bids.collect()
    assert not a.equals(other)
    assert a["date_time"].equals(other["date_time"])
    # The base time moves the times only; the same instant given three ways is the same.
    later = rl.nexmark(events=2_000, seed=5, base_time="2027-03-04T05:06:07Z").bids.collect()
    shift = dt.datetime(2027, 3, 4, 5, 6, 7) - BASE
    assert later.drop("date_time").equals(a.drop("date_time"))
    assert (later["date_time"] - a["date_time"]).unique().to_list() == [shift]
    ms = int((dt.datetime(2027, 3, 4, 5, 6, 7) - dt.datetime(1970, 1, 1)).total_seconds() * 1000)
    for same in (ms, dt.datetime(2027, 3, 4, 5, 6, 7), dt.datetime(2027, 3, 4, 6, 6, 7, tzinfo=dt.timezone(
            dt.timedelta(hours=1)))):
        assert rl.nexmark(events=2_000, seed=5, base_time=same).bids.collect().equals(later)


def test_rate_sets_the_pace_of_event_time():
    for rate in (1, 3, 7_000, 10_000, 1_000_000):
        times = rl.nexmark(events=500, rate=rate).bids.collect()["date_time"].to_list()
        numbers = [n for n in range(500) if kind_of(n) == "bids"]
        assert times == [expected_time(n, rate) for n in numbers]


def test_references_and_distributions_follow_the_generator():
    nx = rl.nexmark(events=200_000)
    people, auctions, bids = nx.people.collect(), nx.auctions.collect(), nx.bids.collect()
    last_person, last_auction = people["id"].max(), auctions["id"].max()
    # Every reference is to an id that exists or is at most the generator's lead ahead.
    assert bids["auction"].is_between(1000, last_auction + 10).all()
    assert bids["bidder"].is_between(1000, last_person + 10).all()
    assert auctions["seller"].is_between(1000, last_person + 10).all()
    # A bid names an auction created at most ~0.5 s before it or ~20 ms after it.
    joined = bids.join(auctions.select("id", a_time="date_time"), left_on="auction", right_on="id")
    gap = (joined["date_time"] - joined["a_time"]).dt.total_milliseconds()
    assert joined.height > 0.99 * bids.height
    assert gap.min() >= -20 and gap.max() <= 500, (gap.min(), gap.max())
    # Half the bids go to the hot auction, three in four to a hot bidder, half to a hot channel.
    assert abs((bids["auction"] % 100 == 0).mean() - 0.5) < 0.02
    assert abs((bids["bidder"] % 100 == 1).mean() - 0.75) < 0.02
    assert abs(bids["channel"].is_in(["Google", "Facebook", "Baidu", "Apple"]).mean() - 0.5) < 0.01
    # Prices are log-uniform between $1 and $1M: a third below $100, a third above $10,000.
    cents = bids["price"]
    assert cents.min() >= 100 and cents.max() <= 100_000_000
    assert abs((cents < 10_000).mean() - 1 / 3) < 0.01 and abs((cents >= 1_000_000).mean() - 1 / 3) < 0.01
    assert (auctions["reserve"] > auctions["initial_bid"]).all()
    assert (auctions["expires"] > auctions["date_time"]).all()
    assert auctions["category"].is_between(10, 14).all() and auctions["category"].n_unique() == 5
    assert set(people["state"]) == {"AZ", "CA", "ID", "OR", "WA", "WY"}
    # Padding brings each kind to its average size (200, 500 and 100 bytes, as the reference).
    assert abs(bids["extra"].str.len_bytes().mean() - 68) < 1
    assert people["credit_card"].str.contains(r"^\d{4} \d{4} \d{4} \d{4}$").all()
    assert people["email_address"].str.contains(r"^[a-z]{7}@[a-z]{5}\.com$").all()
    urls = bids["url"].str.split("/")
    assert (urls.list.get(2) == "www.nexmark.com").all() and (urls.list.len() == 7).all()


@pytest.mark.parametrize("size", [1, 7, None])
def test_a_query_over_the_bids_equals_polars_on_the_same_rows(size):
    events = 4_000 if size == 1 else 30_000
    nx = rl.nexmark(events=events, rate=1_000, batch_events=size or events)
    out = (rl.stream(nx.bids, time="date_time")
           .window(rl.tumbling("2s"), by="channel")
           .agg(rl.count(), rl.sum("price"), rl.max("bidder"))
           .collect())
    bids = nx.bids.collect()
    expected = (bids.group_by(pl.col("date_time").dt.truncate("2s").alias("window_start"), "channel")
                .agg(count=pl.len(), price_sum=pl.col("price").sum(), bidder_max=pl.col("bidder").max()))
    cols = ["window_start", "channel", "count", "price_sum", "bidder_max"]
    got = out.select(cols).with_columns(pl.col("window_start").cast(pl.Datetime("ms")), pl.col("count").cast(pl.Int64))
    expected = expected.select(cols).with_columns(pl.col("count").cast(pl.Int64))
    assert got.sort(cols[:2]).equals(expected.sort(cols[:2]))
    run = rl.stream(nx.bids, time="date_time").window(rl.tumbling("2s")).agg(rl.count()).run()
    assert run.late.height == 0 and run.rejected.height == 0
    assert run.output["count"].sum() == bids.height


def test_the_sources_join_each_other():
    nx = rl.nexmark(events=20_000, rate=1_000)
    q = (rl.stream(nx.auctions, time="date_time")
         .join_interval(rl.stream(nx.people, time="date_time"), left_on="seller", right_on="id",
                        lower="-1h", upper="1h"))
    out = q.collect()
    auctions, people = nx.auctions.collect(), nx.people.collect()
    expected = auctions.join(people, left_on="seller", right_on="id", suffix="_right")
    assert out.height == expected.height > 0
    key = ["id", "seller"]
    assert out.select(key).sort(key).equals(expected.select(key).sort(key))


def test_a_checkpointed_run_resumes_at_the_next_event(tmp_path):
    nx = rl.nexmark(events=50_000, rate=1_000, batch_events=5_000)
    q = rl.stream(nx.bids, time="date_time").window(rl.tumbling("5s"), by="channel").agg(rl.count())
    gold = q.collect()
    chunks = list(nx.bids.positioned_chunks())
    assert [p for _, p in chunks] == list(range(5_000, 50_001, 5_000))
    rest = list(nx.bids.positioned_chunks(start=20_000))
    assert [c.frame.equals(d.frame) for (c, _), (d, _) in zip(rest, chunks[4:], strict=True)] == [True] * 6
    out = q.collect(checkpoint=tmp_path / "chk", checkpoint_every=10_000)
    key = ["window_start", "channel"]
    assert out.sort(key).equals(gold.sort(key))
    with pytest.raises(rl.SourceError, match="after event 60,000"):
        next(nx.bids.positioned_chunks(start=60_000))


def test_an_unbounded_generator_keeps_going_and_refuses_to_collect():
    nx = rl.nexmark(events=None, batch_events=1_000)
    first = list(itertools.islice(nx.bids.batches(), 30))
    assert sum(f.height for f in first) == 30 * 920
    assert pl.concat(first).equals(rl.nexmark(events=30_000).bids.collect())
    with pytest.raises(rl.ConfigError, match="unbounded"):
        nx.bids.collect()
    assert "events=unbounded" in repr(nx)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"events": -1}, "events must be a whole number >= 0"),
    ({"events": 1.5}, "events must be"),
    ({"rate": 0}, r"rate \(events per second of event time\) must be a positive whole number"),
    ({"batch_events": 0}, "batch_events must be a positive"),
    ({"seed": -1}, "seed must be a whole number from 0"),
    ({"base_time": "yesterday"}, "base_time 'yesterday' is not an ISO 8601 time"),
    ({"base_time": 1.5}, "base_time must be a datetime"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(rl.ConfigError, match=match):
        rl.nexmark(**kwargs)


def test_no_events_is_an_empty_stream():
    nx = rl.nexmark(events=0)
    assert list(nx.bids.chunks()) == []
    assert nx.bids.collect().height == 0
    out = rl.stream(nx.bids, time="date_time").window(rl.tumbling("1s")).agg(rl.count()).collect()
    assert out.height == 0
