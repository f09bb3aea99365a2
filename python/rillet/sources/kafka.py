"""Kafka source: ``rl.read_kafka(topic, bootstrap_servers, group_id)`` consumes a topic as a
consumer-group member with confluent-kafka (an optional dependency), one micro-batch per
``consume()`` call. Offsets are committed after a batch has been handed on, so delivery is
at least once. While the topic is quiet it yields empty batches (so ``idle_timeout`` closes
windows), and it stops after ``max_idle`` without messages (or never when it is None)."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, Literal

import polars as pl

from rillet._errors import ConfigError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.rows import BAD_SCHEMA, JsonDecoder, excerpt, heartbeat, schema_from_text, schema_text, seconds
from rillet.sources.source import ChunkSource

Seconds = str | dt.timedelta | int | float

#: The columns each row gets from its message, before ``meta_prefix``.
METADATA: dict[str, pl.DataType] = {
    "arrival_time": pl.Datetime("us", "UTC"),
    "topic": pl.String(),
    "partition": pl.Int32(),
    "offset": pl.Int64(),
}

#: JSON columns are inferred from this many first messages (fewer if the topic goes quiet).
INFER_MESSAGES = 1000
#: ... or from those that came within this many seconds of the first (a steady trickle).
INFER_WAIT_S = 1.0

# librdkafka's log goes through Python logging, silent unless the application configures it.
_LOG = logging.getLogger("rillet.kafka")
_LOG.addHandler(logging.NullHandler())

#: Consumer settings rillet starts from; ``config=`` overrides them. A short session timeout
#: makes joining the group quick (brokers such as tansu wait about half of it); 6 s is the
#: smallest session timeout a stock Kafka broker accepts.
DEFAULT_CONFIG: dict[str, Any] = {
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 500,
    "fetch.wait.max.ms": 100,
    "logger": _LOG,
}

#: Consumer settings that belong to read_kafka itself, with what to use instead.
_RESERVED = {
    "bootstrap.servers": "the bootstrap_servers argument",
    "group.id": "the group_id argument",
    "auto.offset.reset": "start='earliest' or start='latest'",
    "enable.auto.commit": "nothing: read_kafka commits each batch after it was handed on",
    "error_cb": "nothing: read_kafka turns client errors into SourceError",
    "on_commit": "nothing: read_kafka logs failed commits to the 'rillet.kafka' logger",
}


def _confluent() -> ModuleType:
    try:
        import confluent_kafka
    except ImportError as e:
        raise ConfigError("read_kafka needs confluent-kafka: pip install 'rillet[kafka]'") from e
    return confluent_kafka


class KafkaSource(ChunkSource):
    """One or more Kafka topics read as a consumer-group member (``rl.read_kafka``).

    Use as a source: ``rl.stream(rl.read_kafka("events", "localhost:9092", "dash"), time="ts")``.
    Each ``chunks()`` call is a new consumer in the group, which resumes from the group's
    committed offsets.
    """

    def __init__(self, topic: str | Sequence[str], bootstrap_servers: str, group_id: str,
                 start: Literal["earliest", "latest"], format: Literal["json", "raw"],
                 schema: Mapping[str, Any] | None, config: Mapping[str, Any] | None,
                 batch_size: int, poll: Seconds, max_idle: Seconds | None, timeout: Seconds,
                 meta_prefix: str) -> None:
        _confluent()
        topics = [topic] if isinstance(topic, str) else list(topic)
        if not topics or not all(isinstance(t, str) and t for t in topics):
            raise ConfigError(f"read_kafka: topic must be a topic name or a list of them, got {topic!r}")
        for what, value in (("bootstrap_servers", bootstrap_servers), ("group_id", group_id)):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"read_kafka: {what} must be a non-empty string, got {value!r}")
        if start not in ("earliest", "latest"):
            raise ConfigError(f"read_kafka: start must be 'earliest' or 'latest', got {start!r}")
        if format not in ("json", "raw"):
            raise ConfigError(f"read_kafka: format must be 'json' or 'raw', got {format!r}")
        if schema is not None and format != "json":
            raise ConfigError("read_kafka: schema= applies to format='json' only; raw messages "
                              "are always key and value (Binary)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 1_000_000:
            raise ConfigError(
                f"read_kafka: batch_size must be an integer from 1 to 1,000,000, got {batch_size!r}")
        for key in config or {}:
            if key in _RESERVED:
                raise ConfigError(f"read_kafka: config[{key!r}] is set by read_kafka; use {_RESERVED[key]}")
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.start = start
        self.format = format
        self.config = {**DEFAULT_CONFIG, **(config or {})}
        self.batch_size = batch_size
        self.poll = _positive(poll, "poll")
        self.max_idle = None if max_idle is None else _positive(max_idle, "max_idle")
        self.timeout = _positive(timeout, "timeout")
        self.metadata = {f"{meta_prefix}{name}": dtype for name, dtype in METADATA.items()}
        self.pace_by = f"{meta_prefix}arrival_time"
        if schema is not None:
            from rillet.sources.files import _schema_frame

            checked = _schema_frame(schema, "kafka")  # a dict of polars dtypes, or ConfigError
            schema = None if checked is None else checked.schema
        self.schema = None if schema is None else dict(schema)
        if format == "raw":
            self.schema = {"key": pl.Binary(), "value": pl.Binary()}
        if self.schema is not None:
            self._check_clash(self.schema)

    # -- reading ------------------------------------------------------------------------------
    def chunks(self) -> Iterator[Chunk]:
        """Micro-batches of rows (plus the messages that could not be read), in arrival order;
        empty ones while the topic is quiet, once the columns are known."""
        for chunk, _ in self.positioned_chunks(None):
            yield chunk

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Chunk, Any]]:
        """The chunks, each with where the source is after it: the next offset of each
        partition read, and the columns. From ``start``, each partition it names is read from
        its offset there (the checkpoint's offsets, not the group's committed ones, which may
        be ahead of it); a partition it does not name starts as the group says. ``durable``:
        offsets are committed to the group only once a checkpoint holds them
        (:meth:`checkpointed`), so a run that crashes before its first checkpoint reads again
        what it read."""
        ck = _confluent()
        offsets: dict[str, int] = {} if start is None else dict(start["offsets"])
        resume = dict(offsets)
        errors: list[Any] = []  # client errors, reported during consume()
        assigned: list[bool] = []
        try:
            consumer = ck.Consumer({
                **self.config,
                "bootstrap.servers": self.bootstrap_servers,
                "group.id": self.group_id,
                "auto.offset.reset": self.start,
                "enable.auto.commit": False,
                "error_cb": errors.append,
                "on_commit": _commit_failed,
            })
        except ck.KafkaException as e:
            raise ConfigError(
                f"read_kafka: the consumer configuration was refused: {e.args[0].str()}") from e
        try:
            self._check_topics(ck, consumer)
            if durable:
                self._committer = lambda found: self._commit(
                    ck, consumer, {(k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1])): o for k, o in found.items()})

            def on_assign(consumer: Any, partitions: list[Any]) -> None:
                if resume:
                    for p in partitions:
                        if f"{p.topic}/{p.partition}" in resume:
                            p.offset = resume[f"{p.topic}/{p.partition}"]
                    consumer.assign(partitions)
                assigned.append(True)

            consumer.subscribe(self.topics, on_assign=on_assign)
            decoder = JsonDecoder(",".join(self.topics))
            decoder.schema = self.schema  # the columns, once known (raw: from the start)
            if decoder.schema is None and start is not None and start["schema"] is not None:
                decoder.schema = schema_from_text(start["schema"])  # as inferred before
            held: list[Any] = []  # JSON messages held back until the columns are inferred
            held_since = 0.0
            started = last_data = time.monotonic()
            while True:
                want = self.batch_size
                if decoder.schema is None:
                    want = min(want, INFER_MESSAGES - len(held))
                messages = self._messages(ck, consumer.consume(want, self.poll))
                self._raise_client_errors(ck, consumer, errors)
                now = time.monotonic()
                if not assigned:
                    if now - started >= self.timeout:
                        raise SourceError(
                            f"read_kafka: the consumer was given no partitions of {self.topics} "
                            f"within {self.timeout:g} s (consumer group {self.group_id!r} did not "
                            "finish joining); check that the broker's group coordinator works, "
                            "or raise timeout= for a group with slow members"
                        )
                    last_data = now  # max_idle counts from joining the group
                if messages:
                    last_data = now
                if decoder.schema is None and (messages or held):
                    # The columns come from the first INFER_MESSAGES messages, or from all that
                    # came before the topic went quiet, however consume() cuts them.
                    if not held:
                        held_since = now
                    held += messages
                    if messages and len(held) < INFER_MESSAGES and now - held_since < INFER_WAIT_S:
                        continue
                    messages, held = held, []
                if messages:
                    chunk, positions = self._decode(ck, messages, decoder)
                    offsets = {**offsets, **{f"{t}/{p}": o for (t, p), o in positions.items()}}
                    yield chunk, self._position(consumer, offsets, decoder, held) if durable else None
                    if not durable:
                        self._commit(ck, consumer, positions)
                    continue
                if self.max_idle is not None and now - last_data >= self.max_idle:
                    return
                yield (heartbeat({**decoder.schema, **self.metadata} if decoder.schema is not None else None),
                       self._position(consumer, offsets, decoder, held) if durable else None)
        finally:
            self._committer = None
            self._close(consumer)

    @staticmethod
    def _position(consumer: Any, offsets: dict[str, int], decoder: JsonDecoder, held: list[Any]) -> dict[str, Any]:
        """Where the reader is: the next offset of each partition it handed rows of, and of
        each partition assigned to it that it handed nothing of yet (where it would start, so
        a resume does not start at the group's offset or ``start=`` again)."""
        found = dict(offsets)
        waiting = {f"{m.topic()}/{m.partition()}" for m in held}
        try:
            for tp in consumer.position(consumer.assignment()):
                key = f"{tp.topic}/{tp.partition}"
                if key not in found and key not in waiting and tp.offset >= 0:
                    found[key] = tp.offset
        except Exception:  # a consumer between assignments: the handed offsets suffice
            pass
        return {"offsets": found, "schema": schema_text(decoder.schema)}

    def checkpointed(self, position: Any) -> None:
        """A checkpoint holds ``position``: its offsets are committed to the group."""
        commit = self._committer
        if commit is not None:
            commit(position["offsets"])

    _committer: Any = None

    def _close(self, consumer: Any) -> None:
        """Closes the consumer (it leaves the group), waiting at most ``timeout``: with the
        broker gone, librdkafka's close can block far longer (seen here: over 30 s)."""
        def close() -> None:
            try:
                consumer.close()
            except Exception as e:
                _LOG.warning("read_kafka: closing the consumer failed: %s", e)

        closer = threading.Thread(target=close, name="rillet-kafka-close", daemon=True)
        closer.start()
        closer.join(self.timeout)
        if closer.is_alive():
            _LOG.warning("read_kafka: the consumer did not close within %g s (is the broker gone?); "
                         "it goes on closing in the background", self.timeout)

    def _check_topics(self, ck: ModuleType, consumer: Any) -> None:
        """Fails fast, within ``timeout``, when no broker answers or a topic does not exist."""
        deadline = time.monotonic() + self.timeout
        for name in self.topics:
            try:
                meta = consumer.list_topics(name, timeout=max(deadline - time.monotonic(), 0.001))
            except ck.KafkaException as e:
                raise SourceError(
                    f"read_kafka: no Kafka broker answered at {self.bootstrap_servers} within "
                    f"{self.timeout:g} s ({e.args[0].str()}); check bootstrap_servers and that the "
                    "broker is running, or raise timeout="
                ) from e
            err = meta.topics[name].error if name in meta.topics else None
            missing = err is not None and err.code() == ck.KafkaError.UNKNOWN_TOPIC_OR_PART
            if name not in meta.topics or missing:
                raise SourceError(
                    f"read_kafka: topic {name!r} does not exist on {self.bootstrap_servers}; check "
                    "the name, or create the topic first"
                )
            if err is not None:
                raise SourceError(
                    f"read_kafka: topic {name!r} is not readable on {self.bootstrap_servers} "
                    f"({err.str()}); check that this client may read it"
                )

    def _raise_client_errors(self, ck: ModuleType, consumer: Any, errors: list[Any]) -> None:
        """Fatal client errors end the stream; when every broker is down, the stream waits for
        one to answer for up to ``timeout``. Other errors are retried by the client."""
        pending = errors[:]
        errors.clear()
        for err in pending:
            if err.fatal():
                raise SourceError(f"read_kafka: the Kafka client failed: {err.str()}")
        if any(err.code() == ck.KafkaError._ALL_BROKERS_DOWN for err in pending):
            try:
                consumer.list_topics(self.topics[0], timeout=self.timeout)
            except ck.KafkaException as e:
                raise SourceError(
                    f"read_kafka: lost the Kafka brokers at {self.bootstrap_servers}: none answered "
                    f"within {self.timeout:g} s ({e.args[0].str()}); check that the broker is running"
                ) from e

    @staticmethod
    def _messages(ck: ModuleType, consumed: list[Any]) -> list[Any]:
        """The messages of a consume() call; end-of-partition events (``enable.partition.eof``)
        are skipped, any other error ends the stream."""
        messages = []
        for m in consumed:
            err = m.error()
            if err is None:
                messages.append(m)
            elif err.code() != ck.KafkaError._PARTITION_EOF:
                raise SourceError(
                    f"read_kafka: reading {m.topic()}/{m.partition()} failed: {err.str()}; check "
                    "that the topic exists and that this client may read it"
                )
        return messages

    def _decode(self, ck: ModuleType, messages: list[Any],
                decoder: JsonDecoder) -> tuple[Chunk, dict[tuple[str, int], int]]:
        """Messages -> a chunk, and the next offset to commit for each (topic, partition)."""
        positions: dict[tuple[str, int], int] = {}
        readable: list[Any] = []
        bad: list[dict[str, Any]] = []
        for m in messages:
            positions[(m.topic(), m.partition())] = m.offset() + 1
            value = m.value()
            if self.format == "json" and (value is None or not value.strip()):
                bad.append(_bad_row(m, "empty message value", value or b""))
            else:
                readable.append(m)
        if self.format == "raw":
            frame = pl.DataFrame({"key": [m.key() for m in readable],
                                  "value": [m.value() for m in readable]}, schema=self.schema)
            rows = readable
        else:
            frame, kept, failed = decoder.parse([m.value() for m in readable])
            if decoder.schema is not None:
                self._check_clash(decoder.schema)
            bad += [_bad_row(readable[i], f"unreadable JSON message: {why}", readable[i].value())
                    for i, why in failed]
            rows = [readable[i] for i in kept]
        bad.sort(key=lambda r: (r["file"], r["line"]))
        if decoder.schema is None:  # nothing readable yet: no columns to add to
            return Chunk(frame, pl.DataFrame(bad, schema=BAD_SCHEMA)), positions
        stamps = [ts if kind != ck.TIMESTAMP_NOT_AVAILABLE else None
                  for kind, ts in (m.timestamp() for m in rows)]
        values = [
            (pl.Series(stamps, dtype=pl.Int64) * 1000).cast(METADATA["arrival_time"]),
            pl.Series([m.topic() for m in rows], dtype=pl.String),
            pl.Series([m.partition() for m in rows], dtype=pl.Int32),
            pl.Series([m.offset() for m in rows], dtype=pl.Int64),
        ]
        frame = frame.with_columns(v.alias(name) for name, v in zip(self.metadata, values))
        return Chunk(frame, pl.DataFrame(bad, schema=BAD_SCHEMA)), positions

    @staticmethod
    def _commit(ck: ModuleType, consumer: Any, positions: dict[tuple[str, int], int]) -> None:
        """Commits in the background: a blocking commit could wait for a lost broker far longer
        than ``timeout``. Commits are cumulative, so one that fails is made good by the next."""
        if positions:
            consumer.commit(offsets=[ck.TopicPartition(t, p, o) for (t, p), o in positions.items()],
                            asynchronous=True)

    def _check_clash(self, schema: Mapping[str, Any]) -> None:
        """Neither a message field nor a metadata column is renamed or dropped in silence."""
        clash = sorted(set(schema) & set(self.metadata))
        if clash:
            raise ConfigError(
                f"read_kafka: the messages have the field(s) {clash}, which are also the names of "
                f"the metadata columns {list(self.metadata)}; pass meta_prefix='kafka_' (or "
                "another prefix) to name the metadata columns apart"
            )

    def __repr__(self) -> str:
        topic = self.topics[0] if len(self.topics) == 1 else self.topics
        return f"rl.read_kafka({topic!r}, {self.bootstrap_servers!r}, {self.group_id!r})"


def _commit_failed(err: Any, partitions: list[Any]) -> None:
    if err is not None:
        _LOG.warning("read_kafka: offsets %s were not committed (%s); a restarted consumer may "
                     "read those messages again", [(p.topic, p.partition, p.offset) for p in partitions],
                     err.str())


def _positive(value: Seconds, what: str) -> float:
    s = seconds(value, f"read_kafka {what}")
    if s is None or s <= 0:
        raise ConfigError(f"read_kafka: {what} must be a positive duration such as '5s', got {value!r}")
    return s


def _bad_row(message: Any, reason: str, raw: bytes) -> dict[str, Any]:
    return {"file": f"{message.topic()}/{message.partition()}", "line": message.offset(),
            "reason": reason, "text": excerpt(raw)}


def read_kafka(
    topic: str | Sequence[str],
    bootstrap_servers: str,
    group_id: str,
    *,
    start: Literal["earliest", "latest"] = "earliest",
    format: Literal["json", "raw"] = "json",
    schema: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    batch_size: int = 10_000,
    poll: Seconds = "100ms",
    max_idle: Seconds | None = None,
    timeout: Seconds = "30s",
    meta_prefix: str = "",
) -> KafkaSource:
    """Reads Kafka topics as a member of consumer group ``group_id`` (confluent-kafka, from
    ``pip install 'rillet[kafka]'``), resuming from the group's committed offsets; ``start``
    says where a partition with none starts (Kafka's ``auto.offset.reset``).

    ``format="json"``: each message value is one JSON object, one row; the columns come from
    the first 1,000 messages (fewer if the topic goes quiet first) or from ``schema``; a later
    missing field is null and a new one is ignored.
    A message that is empty, not a JSON object, or has a value that does not fit the columns
    goes to ``run.rejected`` with ``file`` = ``topic/partition`` and ``line`` = its offset.
    ``format="raw"``: ``key`` and ``value`` as Binary. Every row also gets ``arrival_time`` (the
    message timestamp, UTC), ``topic``, ``partition`` and ``offset``, named with
    ``meta_prefix`` in front (a message field of the same name is a ConfigError).

    Messages are consumed ``batch_size`` at a time, waiting up to ``poll`` for them; the offsets
    of a batch are committed when the query asks for the next one (at least once). While the
    topic is quiet it yields empty batches every ``poll``; it stops after ``max_idle`` without
    messages (None: never). A broker that does not answer within ``timeout`` is a SourceError.
    ``config`` is passed to the consumer (librdkafka properties)."""
    return KafkaSource(topic, bootstrap_servers, group_id, start, format, schema, config,
                       batch_size, poll, max_idle, timeout, meta_prefix)
