"""Kinesis Data Streams as a live source (``rl.read_kinesis``): every shard, a parent read to
its end before its children, JSON or raw records, each row with its arrival time, shard and
sequence number. Like the tail sources it yields empty batches while quiet (so
``idle_timeout=`` closes windows) and stops after ``max_idle`` without records."""
from __future__ import annotations

import datetime as dt
import heapq
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from rillet._errors import ConfigError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.rows import BAD_SCHEMA, JsonDecoder, excerpt, heartbeat, schema_from_text, schema_text, seconds
from rillet.sources.source import ChunkSource

#: The columns added to every row, before ``meta_prefix``.
META_COLUMNS = ("arrival_time", "shard_id", "sequence_number")

_THROTTLED = {"ProvisionedThroughputExceededException", "LimitExceededException"}
_THROTTLE_ATTEMPTS = 10  # waits from 0.1 s doubling to 5 s: some 15-20 s of throttling in all
_BACKOFF_FIRST_S = 0.1
_BACKOFF_MAX_S = 5.0
_SHARD_SYNC_S = 1.0  # ListShards at most this often (and at once when a shard ends)
_INFER_RECORDS = 1000  # JSON: the schema is inferred from this many records (or all, if fewer)
_INFER_WAIT_S = 1.0  # ... or from those that came within this long of the first
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


@dataclass
class _Shard:
    """One shard and how far this reader got in it."""

    id: str
    parents: tuple[str, ...]
    closed: bool
    initial: bool  # listed when the reader started: starts at `start`, later ones at their start
    iterator: str | None = None
    last_sequence: str | None = None
    read: int = 0  # records read from it, numbering rejected records ("line")
    done: bool = False
    #: A resumed reader's start in a shard it had handed nothing of: when the first reader
    #: started (its start="LATEST" then), so records that came since are not passed over.
    resume_at: dt.datetime | None = None


class KinesisSource(ChunkSource):
    """Reads a Kinesis data stream (``rl.read_kinesis``); see :func:`read_kinesis`."""

    def __init__(self, stream: str, start: str | dt.datetime, endpoint_url: str | None,
                 region_name: str | None, format: str, limit: int | None, poll: Any,
                 max_idle: Any, meta_prefix: str) -> None:
        try:
            import boto3
        except ImportError as e:
            raise ConfigError("read_kinesis needs boto3: pip install 'rillet[kinesis]'") from e
        if not isinstance(stream, str) or not stream:
            raise ConfigError(f"read_kinesis: stream must be a stream name such as 'events', got {stream!r}")
        self.stream = stream
        self.start = _start(start)
        if format not in ("json", "raw"):
            raise ConfigError(
                f"read_kinesis(format={format!r}): use 'json' (each record a JSON object, one row) "
                "or 'raw' (the bytes in a Binary column 'data')"
            )
        self.format = format
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or not 1 <= limit <= 10_000):
            raise ConfigError(
                f"read_kinesis(limit={limit!r}): GetRecords takes 1 to 10000 records, or None for "
                "the service's maximum"
            )
        self.limit = limit
        poll_s = seconds(poll, "poll")
        if poll_s is None or poll_s <= 0:
            raise ConfigError(f"read_kinesis(poll={poll!r}): give a positive duration such as '200ms'")
        self.poll = poll_s
        self.max_idle = seconds(max_idle, "max_idle")
        if not isinstance(meta_prefix, str):
            raise ConfigError(f"read_kinesis(meta_prefix={meta_prefix!r}) must be a string such as 'kinesis_'")
        self.meta = tuple(meta_prefix + name for name in META_COLUMNS)
        self.pace_by = self.meta[0]  # the arrival time
        self.endpoint_url = endpoint_url
        self.region_name = boto3.session.Session(region_name=region_name).region_name
        if self.region_name is None:
            raise ConfigError(
                "read_kinesis: no AWS region; pass region_name='us-east-1' (the stream's region) "
                "or set AWS_DEFAULT_REGION"
            )

    # -- the stream -----------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        """The records as chunks: rows, and the records that could not be read as rows."""
        for chunk, _ in self.positioned_chunks(None):
            yield chunk

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        """The chunks, each with where the reader is after it: per shard the sequence number
        of the last record handed on (a resumed reader goes on AFTER_SEQUENCE_NUMBER), the
        shards finished, and the columns."""
        client = self._client()
        try:
            yield from self._follow(client, start, durable)
        finally:
            client.close()

    def _client(self) -> Any:
        """A client of this reader's own (boto3 sessions must not be shared between threads)."""
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=self.region_name)
        return session.client("kinesis", endpoint_url=self.endpoint_url,
                              config=Config(retries={"mode": "standard"}, connect_timeout=10))

    def _follow(self, client: Any, start: Any, durable: bool) -> Iterator[tuple[Chunk, Any]]:
        shards: dict[str, _Shard] = {}
        # Where each shard was handed on to: {id: [sequence number, records read]}.
        handed: dict[str, list] = {} if start is None else dict(start["shards"])
        finished_ids: list[str] = [] if start is None else list(start["done"])
        resumed: set[str] = set()
        started = dt.datetime.now(dt.UTC) if start is None else dt.datetime.fromisoformat(start["started"])

        def sync(initial: bool) -> None:
            self._sync(client, shards, initial=initial)
            for shard in shards.values():
                if start is not None and shard.id not in resumed:
                    resumed.add(shard.id)
                    if shard.id in handed:
                        shard.last_sequence, shard.read = handed[shard.id]
                    elif shard.initial and self.start == "LATEST":
                        shard.resume_at = started
                    shard.done = shard.done or shard.id in finished_ids

        def position() -> dict[str, Any] | None:
            if not durable:  # asked for by checkpointed runs only
                return None
            return {"shards": dict(handed), "done": list(finished_ids), "started": started.isoformat(),
                    "schema": schema_text(decoder.schema) if decoder is not None else None}

        sync(initial=True)
        synced = time.monotonic()
        decoder = JsonDecoder(self.stream) if self.format == "json" else None
        if decoder is not None and start is not None and start["schema"] is not None:
            decoder.schema = schema_from_text(start["schema"])  # as inferred before
        pending: list[tuple[_Shard, int, dict]] = []  # JSON records held back for the schema
        beat: Chunk | None = None  # an empty batch with the columns, once known
        held_since = 0.0
        last_data = time.monotonic()
        while True:
            round_started = time.monotonic()
            if round_started - synced >= _SHARD_SYNC_S:
                sync(initial=False)
                synced = time.monotonic()
            per_shard: list[list[tuple[_Shard, int, dict]]] = []
            ended = False
            for shard in list(shards.values()):
                if shard.done or any(p in shards and not shards[p].done for p in shard.parents):
                    continue  # finished, or a parent still has records that come first
                per_shard.append(self._read(client, shard))
                ended |= shard.done
            # One sequence by arrival time; a merge, so each shard's own order is kept.
            got = list(heapq.merge(*per_shard, key=lambda rec: rec[2]["ApproximateArrivalTimestamp"]))
            if ended:  # a closed shard ran out: its children may be listed by now
                sync(initial=False)
                synced = time.monotonic()
            finished = all(s.done for s in shards.values())
            if got:
                last_data = time.monotonic()
            if got and not pending:
                held_since = time.monotonic()
            pending.extend(got)
            # Hold JSON records back until there are enough to infer the schema from, the
            # stream is quiet, it ends, or a second has passed; after that each round is
            # decoded as it comes.
            while pending and (decoder is None or decoder.schema is not None or not got or finished
                               or len(pending) >= _INFER_RECORDS
                               or time.monotonic() - held_since >= _INFER_WAIT_S):
                cut = _INFER_RECORDS if decoder is not None and decoder.schema is None else len(pending)
                chunk = self._chunk(decoder, pending[:cut])
                for shard, number, record in pending[:cut]:
                    handed[shard.id] = [record["SequenceNumber"], number]
                pending = pending[cut:]
                waiting = {shard.id for shard, _, _ in pending}
                finished_ids = [s.id for s in shards.values() if s.done and s.id not in waiting]
                if chunk.frame.width:
                    beat = Chunk(chunk.frame.clear(), pl.DataFrame(schema=BAD_SCHEMA))
                if chunk.frame.width or chunk.bad.height:
                    yield chunk, position()
            if finished:
                return
            if not got:
                if self.max_idle is not None and time.monotonic() - last_data >= self.max_idle:
                    return
                yield (beat if beat is not None else heartbeat(None)), position()
            # Each shard is asked at most once a poll: Kinesis allows 5 GetRecords a second
            # per shard, shared by all the stream's consumers.
            time.sleep(max(0.0, round_started + self.poll - time.monotonic()))

    def _sync(self, client: Any, shards: dict[str, _Shard], initial: bool) -> None:
        """Adds the shards not seen yet (ListShards) and notes which have closed."""
        listing: list[dict] = []
        args: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self._call(client, "list_shards", **args)
            listing.extend(page.get("Shards", []))
            if not page.get("NextToken"):
                break
            args = {"NextToken": page["NextToken"]}
        for item in listing:
            closed = "EndingSequenceNumber" in item.get("SequenceNumberRange", {})
            known = shards.get(item["ShardId"])
            if known is not None:
                known.closed = closed
                continue
            parents = tuple(p for p in (item.get("ParentShardId"), item.get("AdjacentParentShardId")) if p)
            shard = _Shard(item["ShardId"], parents, closed, initial)
            # From LATEST, a shard closed before the reader started holds nothing new.
            shard.done = initial and closed and self.start == "LATEST"
            shards[shard.id] = shard

    def _read(self, client: Any, shard: _Shard) -> list[tuple[_Shard, int, dict]]:
        """One GetRecords on a shard: its records, numbered; marks the shard done at its end."""
        if shard.iterator is None:
            shard.iterator = self._iterator(client, shard)
        args: dict[str, Any] = {"ShardIterator": shard.iterator}
        if self.limit is not None:
            args["Limit"] = self.limit
        try:
            page = self._call(client, "get_records", **args)
        except _ExpiredIterator:  # unused for 5 minutes (a slow consumer): go on from where we were
            args["ShardIterator"] = self._iterator(client, shard)
            page = self._call(client, "get_records", **args)
        records = page.get("Records", [])
        if records:
            shard.last_sequence = records[-1]["SequenceNumber"]
        since = shard.resume_at or (self.start if shard.initial and isinstance(self.start, dt.datetime) else None)
        if since is not None:
            # botocore sends AT_TIMESTAMP in whole seconds: drop what came earlier in that second.
            records = [r for r in records if r["ApproximateArrivalTimestamp"] >= since]
        shard.iterator = page.get("NextShardIterator")
        # A closed shard is finished when GetRecords gives no next iterator; emulators such as
        # moto always give one, so an empty answer that is not behind the tip counts too.
        shard.done = shard.iterator is None or (
            shard.closed and not page.get("Records") and page.get("MillisBehindLatest") == 0
        )
        numbered = []
        for record in records:
            shard.read += 1
            numbered.append((shard, shard.read, record))
        return numbered

    def _iterator(self, client: Any, shard: _Shard) -> str:
        """A shard iterator: after the last record read, else at the reader's start."""
        args: dict[str, Any] = {"StreamName": self.stream, "ShardId": shard.id}
        if shard.last_sequence is not None:
            args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=shard.last_sequence)
        elif shard.resume_at is not None:
            args.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=shard.resume_at)
        elif not shard.initial or self.start == "TRIM_HORIZON":
            args.update(ShardIteratorType="TRIM_HORIZON")
        elif self.start == "LATEST":
            args.update(ShardIteratorType="LATEST")
        else:
            args.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=self.start)
        return self._call(client, "get_shard_iterator", **args)["ShardIterator"]

    # -- rows -----------------------------------------------------------------------------
    def _chunk(self, decoder: JsonDecoder | None, records: list[tuple[_Shard, int, dict]]) -> Chunk:
        """Records -> rows with the added columns, and the records that are not rows."""
        if decoder is None:
            data = pl.DataFrame({"data": pl.Series([r["Data"] for _, _, r in records], dtype=pl.Binary)})
            return Chunk(pl.concat([data, self._meta(records)], how="horizontal"),
                         pl.DataFrame(schema=BAD_SCHEMA))
        had_schema = decoder.schema is not None
        frame, kept, failed = decoder.parse([r["Data"] for _, _, r in records])
        if decoder.schema is not None and not had_schema:
            clash = [name for name in self.meta if name in decoder.schema]
            if clash:
                raise ConfigError(
                    f"read_kinesis({self.stream!r}): the records have a field {clash[0]!r}, which "
                    f"is the name of a column read_kinesis adds ({', '.join(self.meta)}); pass a "
                    "meta_prefix= that no field uses, e.g. meta_prefix='kinesis_' for "
                    "kinesis_arrival_time, kinesis_shard_id and kinesis_sequence_number"
                )
        if decoder.schema is not None:
            frame = pl.concat([frame, self._meta([records[i] for i in kept])], how="horizontal")
        bad = pl.DataFrame(
            [{"file": f"{self.stream}/{records[i][0].id}", "line": records[i][1],
              "reason": f"unreadable JSON record: {why}", "text": excerpt(records[i][2]["Data"])}
             for i, why in failed],
            schema=BAD_SCHEMA,
        )
        # The rejected records keep their position too, to be found again in the stream.
        bad = pl.concat([bad, self._meta([records[i] for i, _ in failed])], how="horizontal")
        return Chunk(frame, bad)

    def _meta(self, records: list[tuple[_Shard, int, dict]]) -> pl.DataFrame:
        """The added columns: arrival time (UTC, microseconds), shard id and sequence number."""
        arrival, shard_id, sequence = self.meta
        return pl.DataFrame({
            arrival: pl.Series([(r["ApproximateArrivalTimestamp"] - _EPOCH) // _US for _, _, r in records],
                               dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            shard_id: pl.Series([s.id for s, _, _ in records], dtype=pl.String),
            sequence: pl.Series([r["SequenceNumber"] for _, _, r in records], dtype=pl.String),
        })

    # -- errors ---------------------------------------------------------------------------
    def _call(self, client: Any, operation: str, **args: Any) -> dict:
        """One Kinesis call. Throttling is retried with exponential backoff (after botocore's
        own retries); any other failure raises SourceError naming the stream."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        delay = _BACKOFF_FIRST_S
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return getattr(client, operation)(**args)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":
                    raise _ExpiredIterator() from e
                if code not in _THROTTLED:
                    raise self._refused(client, operation, e) from e
                if attempt == _THROTTLE_ATTEMPTS:
                    raise SourceError(
                        f"read_kinesis({self.stream!r}): {operation} was still throttled after "
                        f"{attempt} attempts over {waited:.1f} s ({code}); the shards' read limits "
                        "(5 GetRecords calls and 2 MB a second per shard) are shared with the "
                        "stream's other consumers: use fewer consumers, enhanced fan-out, or more "
                        "shards"
                    ) from e
            except NoCredentialsError as e:
                raise SourceError(
                    f"read_kinesis({self.stream!r}): no AWS credentials found; set "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
                ) from e
            except BotoCoreError as e:
                raise SourceError(
                    f"read_kinesis({self.stream!r}): {operation} failed: {e}; check endpoint_url= "
                    f"({client.meta.endpoint_url}) and the network"
                ) from e
            pause = delay / 2 + random.uniform(0, delay / 2)  # jitter: readers do not retry in step
            time.sleep(pause)
            waited += pause
            delay = min(delay * 2, _BACKOFF_MAX_S)

    def _refused(self, client: Any, operation: str, e: Any) -> SourceError:
        """A SourceError for a call Kinesis refused, saying what to do about it."""
        error = e.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        where = f"region {client.meta.region_name}, endpoint {client.meta.endpoint_url}"
        if code == "ResourceNotFoundException" and operation == "list_shards":
            return SourceError(
                f"read_kinesis: the Kinesis stream {self.stream!r} does not exist ({where}); "
                f"{self._streams(client)}. Check the name, region_name= and endpoint_url="
            )
        if code in ("AccessDeniedException", "UnrecognizedClientException",
                    "InvalidSignatureException", "ExpiredTokenException"):
            return SourceError(
                f"read_kinesis({self.stream!r}): AWS refused {operation} ({code}: {message}); "
                "the credentials need kinesis:ListShards, kinesis:GetShardIterator and "
                "kinesis:GetRecords on the stream (check AWS_PROFILE / AWS_ACCESS_KEY_ID)"
            )
        return SourceError(f"read_kinesis({self.stream!r}): {operation} failed ({where}): {code}: {message}")

    def _streams(self, client: Any) -> str:
        """The streams that do exist, for an error message."""
        from botocore.exceptions import BotoCoreError, ClientError

        names: list[str] = []
        try:
            page = client.list_streams()
            names.extend(page.get("StreamNames", []))
            while page.get("HasMoreStreams") and len(names) < 100:
                page = client.list_streams(ExclusiveStartStreamName=names[-1])
                names.extend(page.get("StreamNames", []))
        except (BotoCoreError, ClientError) as e:
            return f"the streams could not be listed ({e})"
        if not names:
            return "there are no streams there"
        return "the streams there are: " + ", ".join(repr(n) for n in sorted(names))

    def __repr__(self) -> str:
        start = self.start if isinstance(self.start, str) else self.start.isoformat()
        extra = "" if self.format == "json" else f", format={self.format!r}"
        if self.endpoint_url is not None:
            extra += f", endpoint_url={self.endpoint_url!r}"
        return f"rl.read_kinesis({self.stream!r}, start={start!r}{extra})"


class _ExpiredIterator(Exception):
    """A shard iterator unused for five minutes; a new one continues after the last record."""


def _start(start: Any) -> str | dt.datetime:
    """``start=`` checked: 'TRIM_HORIZON', 'LATEST' or an aware datetime (naive means UTC)."""
    if isinstance(start, str) and start.upper() in ("TRIM_HORIZON", "LATEST"):
        return start.upper()
    if isinstance(start, dt.datetime):
        return start if start.tzinfo is not None else start.replace(tzinfo=dt.UTC)
    raise ConfigError(
        f"read_kinesis(start={start!r}): use 'TRIM_HORIZON' (the oldest record kept), 'LATEST' "
        "(only records that arrive from now on) or a datetime (records from that arrival time on)"
    )


def read_kinesis(stream: str, start: str | dt.datetime = "TRIM_HORIZON", endpoint_url: str | None = None,
                 region_name: str | None = None, format: str = "json", limit: int | None = None,
                 poll: Any = "200ms", max_idle: Any = None, meta_prefix: str = "") -> KinesisSource:
    """Reads a Kinesis data stream: every shard, a parent shard to its end before its children
    (after a split or merge), from ``start``: ``"TRIM_HORIZON"`` (the oldest record kept),
    ``"LATEST"`` (records arriving from now on) or a ``datetime`` (AT_TIMESTAMP; naive means
    UTC).

    ``format="json"``: each record is a JSON object, one row; the columns are inferred from
    the first 1,000 records (or all of them, if the stream goes quiet sooner); a later missing
    field is null, a new field is ignored, and a record that is not a JSON object or whose
    values do not fit goes to ``run.rejected`` (``file`` = ``stream/shard``, ``line`` = its
    number in that shard, ``reason``, ``text``). ``format="raw"``: the bytes, in a Binary
    column ``data``. Every row gets ``arrival_time`` (ApproximateArrivalTimestamp, a UTC
    Datetime), ``shard_id`` and ``sequence_number``, named with ``meta_prefix`` in front.

    While no records arrive it yields empty batches every ``poll`` (so ``idle_timeout=``
    closes windows); it stops after ``max_idle`` without records (None: never) or when every
    shard is closed and read. Credentials and region come from ``region_name=`` and the usual
    AWS settings (environment, profile); ``endpoint_url=`` points at an emulator::

        q = rl.stream(rl.read_kinesis("cloudtrail", max_idle="5m"), time="eventTime")
    """
    return KinesisSource(stream, start, endpoint_url, region_name, format, limit, poll, max_idle, meta_prefix)
