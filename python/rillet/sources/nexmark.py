"""``rl.nexmark``: the Nexmark benchmark's people, auctions and bids, generated in Rust.

One generator numbers its events from 0; of each 50, one is a person, three are auctions and
46 are bids. ``rl.nexmark(...)`` gives the three kinds as three sources (``.people``,
``.auctions``, ``.bids``) whose union is that one stream: each reads the same event numbers
and keeps its own kind, so they can be joined, each with its own watermark. Event ``n``
happens at ``base_time + n / rate`` seconds, in order.

The data depend only on ``seed``, ``base_time`` and ``rate``: every event draws from its own
generator, so the rows do not depend on how the stream is cut into batches, nor on the
machine. The generator follows the reference (Apache Beam's and Flink's ``nexmark``) in its
default configuration; the random draws are rillet's own (see ``src/source/nexmark.rs``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.rows import BAD_SCHEMA
from rillet.sources.source import ChunkSource

#: Event 0's time unless told otherwise: a fixed instant (the reference generator takes the
#: clock, so its data change from run to run).
BASE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: The most events a generator makes (an unbounded one stops there): at one event a second,
#: their times still fit in 64-bit milliseconds from any base time of years 1 to 9999.
MAX_EVENTS = 10**15
#: The most events per second of event time (one a nanosecond).
MAX_RATE = 10**9
#: Base times from 0001-01-01 to 9999-12-31 (milliseconds since the epoch).
BASE_RANGE = (-62_135_596_800_000, 253_402_300_799_999)

#: What each kind holds, for people reading a schema.
COLUMNS = {
    "people": "id, name, email_address, credit_card, city, state, date_time, extra",
    "auctions": ("id, item_name, description, initial_bid, reserve, date_time, expires, seller, "
                 "category, extra"),
    "bids": "auction, bidder, price, channel, url, date_time, extra",
}


def _millis(value: Any) -> int:
    """``base_time`` as milliseconds since the epoch (UTC)."""
    if isinstance(value, bool):
        raise ConfigError(f"base_time must be a datetime, an ISO 8601 text or milliseconds since "
                          f"the epoch, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"base_time {value!r} is not an ISO 8601 time; e.g. "
                              "\"2026-01-01T00:00:00Z\"") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)  # naive means UTC, as time columns
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return delta // dt.timedelta(milliseconds=1)
    raise ConfigError(f"base_time must be a datetime, an ISO 8601 text or milliseconds since the "
                      f"epoch, not {type(value).__name__}")


def _count(value: Any, what: str, example: str, least: int = 1, most: int = MAX_EVENTS) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        kind = "a whole number >= 0" if least == 0 else "a positive whole number"
        raise ConfigError(f"{what} must be {kind} up to {most:,}, e.g. {example}; got {value!r}")
    return value


class Nexmark:
    """The Nexmark generator's three sources (see :func:`nexmark`)."""

    def __init__(self, events: int | None, seed: int, base_time: Any, rate: int,
                 batch_events: int) -> None:
        self.events = None if events is None else _count(events, "events", "10_000_000", least=0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ConfigError(f"seed must be a whole number from 0 to 2**64 - 1; got {seed!r}")
        self.seed = seed
        self.base_time_ms = _millis(base_time)
        if not BASE_RANGE[0] <= self.base_time_ms <= BASE_RANGE[1]:
            raise ConfigError(f"base_time must be within the years 1 to 9999; got {base_time!r}")
        self.rate = _count(rate, "rate (events per second of event time)", "10_000", most=MAX_RATE)
        self.batch_events = _count(batch_events, "batch_events", "65_536", most=10**9)
        self.people = NexmarkSource(self, "people")
        self.auctions = NexmarkSource(self, "auctions")
        self.bids = NexmarkSource(self, "bids")

    def __repr__(self) -> str:
        base = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=self.base_time_ms)
        events = "unbounded" if self.events is None else f"{self.events:_}"
        return (f"rl.nexmark(events={events}, seed={self.seed}, base_time='{base.isoformat()}', "
                f"rate={self.rate:_})")

    def generate(self, kind: str, start: int, end: int) -> pl.DataFrame:
        """The events of ``kind`` among the event numbers ``[start, end)``."""
        return pl.DataFrame(_core.nexmark_events(kind, start, end, self.seed, self.base_time_ms, self.rate))


class NexmarkSource(ChunkSource):
    """One kind of Nexmark event (``people``, ``auctions`` or ``bids``) as a rillet source:
    micro-batches of ``batch_events`` event numbers each (the rows of this kind among them),
    whose position is the next event number, so a checkpointed run resumes there."""

    pace_by = "date_time"

    def __init__(self, generator: Nexmark, kind: str) -> None:
        self.generator = generator
        self.kind = kind

    def __repr__(self) -> str:
        return f"{self.generator!r}.{self.kind} ({COLUMNS[self.kind]})"

    def chunks(self) -> Iterator[Chunk]:
        for chunk, _ in self.positioned_chunks():
            yield chunk

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        g = self.generator
        at = int(start or 0)
        last = MAX_EVENTS if g.events is None else g.events
        if at > last:
            raise SourceError(f"the checkpoint was taken after event {at:,} of {g!r}, which makes "
                              f"{last:,} events: resume with the same generator, or give a new "
                              "checkpoint path")
        bad = pl.DataFrame(schema=BAD_SCHEMA)
        while at < last:
            end = min(at + g.batch_events, last)
            frame = g.generate(self.kind, at, end)
            at = end
            if frame.height:
                yield Chunk(frame, bad), at

    def collect(self) -> pl.DataFrame:
        """All the events of this kind at once, as one DataFrame (for a batch engine to check
        a query against); an unbounded generator refuses."""
        g = self.generator
        if g.events is None:
            raise ConfigError(f"{g!r} is unbounded: give events= to collect its {self.kind}")
        return g.generate(self.kind, 0, g.events)


def nexmark(events: int | None = 10_000_000, seed: int = 0, base_time: Any = BASE_TIME,
            rate: int = 10_000, batch_events: int = 262_144) -> Nexmark:
    """The Nexmark benchmark's events, generated in Rust: ``.people``, ``.auctions`` and
    ``.bids`` are three sources whose union is the generator's one stream.

    Args:
        events: how many events (of all three kinds) the generator makes; ``None`` for no end
            (in practice: it stops after 10**15).
        seed: the same seed, base time and rate give the same rows, however they are batched.
        base_time: the time of event 0: a datetime (naive means UTC), an ISO 8601 text or
            milliseconds since the epoch. Default 2026-01-01T00:00:00Z.
        rate: events per second of event time (event ``n`` happens ``n / rate`` s after
            ``base_time``).
        batch_events: event numbers per micro-batch (each source's batch holds its kind
            among them: about 2 %, 6 % and 92 %).

    Columns (Nexmark's, in snake case; times are millisecond Datetimes in UTC):

    - people: ``id, name, email_address, credit_card, city, state, date_time, extra``
    - auctions: ``id, item_name, description, initial_bid, reserve, date_time, expires,
      seller, category, extra``
    - bids: ``auction, bidder, price, channel, url, date_time, extra``

    >>> nx = rl.nexmark(events=1_000)
    >>> rl.stream(nx.bids, time="date_time").window(rl.tumbling("1s")).agg(rl.count()).collect()
    """
    return Nexmark(events, seed, base_time, rate, batch_events)
