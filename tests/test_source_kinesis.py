"""rl.read_kinesis against a real Kinesis API: moto's server on 127.0.0.1.

CI starts the server (.ci/services/kinesis.sh) and sets RILLET_TEST_KINESIS_ENDPOINT; without
it these tests start moto_server themselves. The oracles are independent of the source: the
same rows through rl.stream(DataFrame), polars or plain Python over the records that were
put, and each shard's contents read back with boto3.
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl
from rillet.sources import kinesis as _kinesis
from rillet.sources.kinesis import KinesisSource

if importlib.util.find_spec("boto3") is None and not os.environ.get("CI"):
    pytest.skip("boto3 is not installed: pip install 'rillet[kinesis]'", allow_module_level=True)
import boto3
from botocore.exceptions import ClientError

BENCH_GEN = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gen_events.py"
CLOUDTRAIL = Path("/work/shared/data/real/cloudtrail_invictus/cloudtrail.jsonl")
CGM = Path("/work/shared/data/real/iot_cgm_glucose/CGM.csv")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# -- the server -----------------------------------------------------------------------------
def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI is set, so the Kinesis tests must run, not be skipped")
    pytest.skip(why)


def _wait_until_up(url: str, proc: subprocess.Popen | None, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            _unavailable(f"moto_server exited with code {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    _unavailable(f"moto_server did not answer at {url} within {seconds:.0f} s")


@pytest.fixture(scope="session")
def endpoint() -> Iterator[str]:
    """The Kinesis endpoint: CI's server, or a moto_server started here for the session."""
    url = os.environ.get("RILLET_TEST_KINESIS_ENDPOINT")
    if url:
        _wait_until_up(url, None)
        yield url
        return
    if importlib.util.find_spec("moto") is None:
        _unavailable("moto is not installed: pip install 'moto[server]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_up(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region, through the usual AWS variables."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def kinesis(endpoint: str) -> Iterator[Any]:
    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")
    yield client
    client.close()


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A stream name of this test's own."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:90] + "-" + uuid.uuid4().hex[:8]


# -- helpers --------------------------------------------------------------------------------
def _create(client: Any, stream: str, shards: int) -> None:
    client.create_stream(StreamName=stream, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=stream)


def _put(client: Any, stream: str, datas: list[bytes], keys: list[str] | None = None) -> list[tuple[str, str]]:
    """Puts records in order; returns each one's (shard id, sequence number)."""
    keys = keys or [f"pk{i}" for i in range(len(datas))]
    where: list[tuple[str, str]] = []
    for a in range(0, len(datas), 500):
        resp = client.put_records(StreamName=stream, Records=[
            {"Data": d, "PartitionKey": k} for d, k in zip(datas[a:a + 500], keys[a:a + 500])])
        assert resp["FailedRecordCount"] == 0
        where.extend((r["ShardId"], r["SequenceNumber"]) for r in resp["Records"])
    return where


def _shard_contents(client: Any, stream: str, shard_id: str) -> list[tuple[str, bytes]]:
    """Everything a shard holds, read with boto3 alone: (sequence number, data) in order."""
    it = client.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out: list[tuple[str, bytes]] = []
    while True:
        page = client.get_records(ShardIterator=it)
        out.extend((r["SequenceNumber"], r["Data"]) for r in page["Records"])
        if not page["Records"]:
            return out
        it = page["NextShardIterator"]


def _rows(source: KinesisSource) -> pl.DataFrame:
    return pl.concat([b for b in source.batches() if b.height])


def _event(seconds: float, k: str = "a", **more: Any) -> bytes:
    return json.dumps({"t": (T0 + dt.timedelta(seconds=seconds)).isoformat(), "k": k, **more}).encode()


class _Flaky:
    """A Kinesis client whose calls fail as scheduled (``{"get_records": [code, None, ...]}``:
    the first call fails with ``code``, the second works, ...), then work."""

    def __init__(self, client: Any, schedule: dict[str, list[str | None]]) -> None:
        self._client = client
        self.schedule = schedule
        self.calls: Counter[str] = Counter()

    def __getattr__(self, attr: str) -> Any:
        real = getattr(self._client, attr)
        if attr not in self.schedule:
            return real

        def call(**kwargs: Any) -> Any:
            self.calls[attr] += 1
            plan = self.schedule[attr]
            code = plan.pop(0) if plan else None
            if code is not None:
                raise ClientError({"Error": {"Code": code, "Message": f"injected {code}"}}, attr)
            return real(**kwargs)

        return call


class _AfterFirstChunk:
    """A source that runs ``action`` once, when its first chunk has been taken."""

    def __init__(self, source: KinesisSource, action: Any) -> None:
        self.source = source
        self.action = action

    def chunks(self) -> Iterator[Any]:
        for i, chunk in enumerate(self.source.chunks()):
            yield chunk
            if i == 0:
                self.action()


def _flaky(monkeypatch: pytest.MonkeyPatch, endpoint: str, schedule: dict[str, list[str | None]]) -> _Flaky:
    flaky = _Flaky(boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1"), schedule)
    monkeypatch.setattr(KinesisSource, "_client", lambda self: flaky)
    monkeypatch.setattr(_kinesis, "_BACKOFF_FIRST_S", 0.01)
    return flaky


# -- against independent oracles ------------------------------------------------------------
@pytest.mark.skipif(not BENCH_GEN.exists(), reason="shared/bench/gen_events.py not present")
def test_workload_over_three_shards_equals_the_dataframe_and_polars(kinesis: Any, endpoint: str, name: str,
                                                                    tmp_path: Path) -> None:
    jl = tmp_path / "events.jsonl"
    subprocess.run([sys.executable, str(BENCH_GEN), "--events", "3000", "--seed", "7",
                    "--out", str(tmp_path / "events.parquet"), "--jsonl", str(jl)],
                   check=True, capture_output=True)
    lines = jl.read_bytes().splitlines()
    df = pl.read_ndjson(jl)
    _create(kinesis, name, 3)
    where = _put(kinesis, name, lines, df["user"].to_list())
    assert len({shard for shard, _ in where}) == 3

    def k1(source: Any) -> rl.Query:
        # The shards interleave in another order than the file: with a watermark longer than
        # the whole stream nothing is late, so the result does not depend on the order.
        return (
            rl.stream(source, time="event_time", watermark="1h")
            .window(rl.tumbling("100ms"), by=["event_source"])
            .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"),
                 rl.count(where=pl.col("error_code").is_not_null()).alias("errors"))
        )

    # The records carry their own arrival_time: the added columns get a prefix.
    src = rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms", poll="20ms", meta_prefix="kinesis_")
    got = k1(src).run(progress=False)
    want = k1(df).run(progress=False)
    assert got.rejected.height == 0 and got.late.height == 0
    assert got.metrics["rows_in"] == want.metrics["rows_in"] == 3000
    keys = ["window_start", "event_source"]
    assert_frame_equal(got.output.sort(keys), want.output.sort(keys), check_exact=False)

    # polars alone, over the lines that were put
    by_polars = (
        df.with_columns(pl.col("event_time").str.to_datetime(time_zone="UTC").dt.truncate("100ms").alias("window_start"))
        .group_by(keys).agg(pl.len().alias("count"), pl.col("bytes").sum().alias("bytes_sum"))
    )
    assert_frame_equal(got.output.select(*keys, "count", "bytes_sum").sort(keys),
                       by_polars.sort(keys), check_dtypes=False)

    rows = _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms", poll="20ms", meta_prefix="kinesis_"))
    assert rows.height == 3000
    assert rows.schema["kinesis_arrival_time"] == pl.Datetime("us", "UTC")
    assert rows.select("kinesis_shard_id", "kinesis_sequence_number").n_unique() == 3000
    assert set(rows.select("kinesis_shard_id", "kinesis_sequence_number").iter_rows()) == set(where)
    assert rows.schema["arrival_time"] == pl.String  # the records' own column, kept as it was
    now = dt.datetime.now(dt.UTC)
    assert (now - rows["kinesis_arrival_time"].min()) < dt.timedelta(minutes=5)


@pytest.mark.skipif(not CGM.exists(), reason="the IoT glucose sample is not present")
def test_real_iot_readings_hourly_equal_polars(kinesis: Any, endpoint: str, name: str) -> None:
    cgm = pl.read_csv(CGM, n_rows=2000, null_values="nil")
    lines = [json.dumps(r).encode() for r in cgm.iter_rows(named=True)]
    _create(kinesis, name, 2)
    _put(kinesis, name, lines, [r[:13] for r in cgm["datetime"]])  # an hour's readings share a shard
    got = (
        rl.stream(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="300ms", poll="50ms"),
                  time="datetime", watermark="30d")
        .with_columns(pl.col("datetime").str.to_datetime("%Y-%m-%d %H:%M:%S"))
        .window(rl.tumbling("1h"))
        .agg(rl.count(), rl.mean("glucose"), rl.min("glucose"), rl.max("glucose"))
        .run(progress=False)
    )
    want = (
        cgm.with_columns(pl.col("datetime").str.to_datetime("%Y-%m-%d %H:%M:%S"))
        .group_by_dynamic("datetime", every="1h").agg(
            pl.len().alias("count"), pl.col("glucose").mean().alias("glucose_mean"),
            pl.col("glucose").min().alias("glucose_min"), pl.col("glucose").max().alias("glucose_max"))
        .rename({"datetime": "window_start"})
    )
    assert got.rejected.height == 0 and got.late.height == 0
    assert_frame_equal(got.output.drop("window_end"), want, check_dtypes=False)


@pytest.mark.skipif(not CLOUDTRAIL.exists(), reason="the CloudTrail sample is not present")
def test_real_cloudtrail_records_every_one_counted_or_rejected(kinesis: Any, endpoint: str, name: str) -> None:
    lines = [ln for ln in CLOUDTRAIL.read_bytes().split(b"\n") if ln.strip()]
    events = [json.loads(ln) for ln in lines]
    _create(kinesis, name, 2)
    where = _put(kinesis, name, lines, [e["eventID"] for e in events])
    run = (
        rl.stream(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="300ms", poll="50ms"),
                  time="eventTime", watermark="3650d")
        .window(rl.tumbling("5m"), by="eventSource")
        .agg(rl.count())
        .run(progress=False)
    )
    assert run.metrics["rows_in"] == len(lines) == 2900
    # The schema comes from the first records (fields null in all of them are read as text);
    # a later record whose value does not fit would be rejected with its place, not lost.
    rej = run.rejected
    assert rej.height < 30
    at = {w: i for i, w in enumerate(where)}
    rejected_at = set()
    if rej.height:
        assert rej["file"].null_count() == 0
        assert rej["reason"].str.starts_with("unreadable JSON record: ").all()
        rejected_at = {at[(s, q)] for s, q in rej.select("shard_id", "sequence_number").iter_rows()}
        for (s, q), file, text in zip(rej.select("shard_id", "sequence_number").iter_rows(), rej["file"],
                                      rej["text"]):
            assert file == f"{name}/{s}"
            assert text == lines[at[(s, q)]][:1000].decode("utf-8", "replace")
    expected = Counter()
    for i, e in enumerate(events):
        if i not in rejected_at:
            t = dt.datetime.fromisoformat(e["eventTime"].replace("Z", "+00:00"))
            expected[(e["eventSource"], t.replace(minute=t.minute - t.minute % 5, second=0))] += 1
    got = {(s, w): c for s, w, c in run.output.select("eventSource", "window_start", "count").iter_rows()}
    assert got == dict(expected)
    assert run.output["count"].sum() + rej.height == 2900


# -- shards ---------------------------------------------------------------------------------
def _keyed(lo: int, hi: int, keys: list[str]) -> tuple[list[bytes], list[str]]:
    """Records {"k": key, "n": n} for n in [lo, hi), partitioned by key."""
    pairs = [(json.dumps({"k": k, "n": n}).encode(), k) for n in range(lo, hi) for k in keys]
    return [d for d, _ in pairs], [k for _, k in pairs]


def _per_key(rows: pl.DataFrame, keys: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {k: [] for k in keys}
    for data in rows["data"]:
        value = json.loads(data)
        out[value["k"]].append(value["n"])
    return out


# moto differs from Kinesis after a reshard in two ways, which these tests allow for: it keeps
# routing new records to the closed parent shards, and a merge copies the parents' records
# into the child. What is asserted holds either way: every record stored in every shard is
# read exactly once, in the shard's order, and every parent record before any child record.
def test_a_merge_mid_stream_reads_each_parent_to_its_end_before_the_child(kinesis: Any, endpoint: str,
                                                                          name: str) -> None:
    keys = [f"key{i}" for i in range(6)]
    _create(kinesis, name, 2)
    _put(kinesis, name, *_keyed(0, 10, keys))
    src = rl.read_kinesis(name, endpoint_url=endpoint, format="raw", limit=7, poll="20ms", max_idle="1500ms")
    chunks = src.chunks()
    first = next(chunks).frame  # 7 records from each parent: they are read only in part
    assert first.height == 14
    kinesis.update_shard_count(StreamName=name, TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    _put(kinesis, name, *_keyed(10, 20, keys))
    rows = pl.concat([first, *(c.frame for c in chunks)])

    child = next(s for s in kinesis.list_shards(StreamName=name)["Shards"] if "ParentShardId" in s)
    parents = {child["ParentShardId"], child["AdjacentParentShardId"]}
    for shard in [*parents, child["ShardId"]]:
        mine = rows.filter(pl.col("shard_id") == shard)
        assert list(zip(mine["sequence_number"], mine["data"])) == _shard_contents(kinesis, name, shard)
    shard_of = rows["shard_id"].to_list()
    last_parent = max(i for i, s in enumerate(shard_of) if s in parents)
    assert shard_of[last_parent + 1:] == [child["ShardId"]] * 60
    for k, ns in _per_key(rows, keys).items():
        assert ns == [*range(20), *range(10)], k  # the parent's records, then the child's


def test_a_split_mid_stream_loses_and_repeats_nothing(kinesis: Any, endpoint: str, name: str) -> None:
    keys = [f"key{i}" for i in range(8)]
    _create(kinesis, name, 1)
    _put(kinesis, name, *_keyed(0, 10, keys))
    chunks = rl.read_kinesis(name, endpoint_url=endpoint, format="raw", limit=7, poll="20ms",
                             max_idle="1500ms").chunks()
    first = next(chunks).frame
    assert first.height == 7
    kinesis.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    _put(kinesis, name, *_keyed(10, 15, keys))
    rows = pl.concat([first, *(c.frame for c in chunks)])
    assert rows.height == 120
    assert rows.select("shard_id", "sequence_number").n_unique() == 120
    for k, ns in _per_key(rows, keys).items():
        assert ns == list(range(15)), k


def test_it_stops_when_every_shard_is_closed_and_read(kinesis: Any, endpoint: str, name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _create(kinesis, name, 2)
    _put(kinesis, name, [_event(i) for i in range(20)])
    flaky = _flaky(monkeypatch, endpoint, {})
    real_list_shards = flaky._client.list_shards

    def all_closed(**kwargs: Any) -> dict:  # as after the stream's last reshard
        page = real_list_shards(**kwargs)
        for shard in page["Shards"]:
            shard["SequenceNumberRange"]["EndingSequenceNumber"] = "99999"
        return page

    monkeypatch.setattr(flaky, "list_shards", all_closed, raising=False)
    result: list[pl.DataFrame] = []
    reader = threading.Thread(target=lambda: result.append(
        _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle=None, poll="50ms"))), daemon=True)
    started = time.monotonic()
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "max_idle=None and every shard closed: the source must end by itself"
    assert time.monotonic() - started < 5
    assert result[0].height == 20


# -- where to start -------------------------------------------------------------------------
def test_start_latest_reads_only_what_arrives_after(kinesis: Any, endpoint: str, name: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _create(kinesis, name, 2)
    _put(kinesis, name, [_event(i, "old") for i in range(10)])
    positioned = threading.Event()  # set once the reader holds an iterator for each shard
    iterators: list[str] = []
    real_iterator = KinesisSource._iterator

    def spy(self: KinesisSource, client: Any, shard: Any) -> str:
        iterator = real_iterator(self, client, shard)
        iterators.append(shard.id)
        if len(iterators) == 2:
            positioned.set()
        return iterator

    monkeypatch.setattr(KinesisSource, "_iterator", spy)

    def writer() -> None:
        assert positioned.wait(10)
        _put(kinesis, name, [_event(i, "new") for i in range(10, 16)])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    rows = _rows(rl.read_kinesis(name, start="LATEST", endpoint_url=endpoint, max_idle="500ms", poll="20ms"))
    thread.join()
    assert sorted(rows["k"]) == ["new"] * 6


def test_start_at_a_timestamp(kinesis: Any, endpoint: str, name: str) -> None:
    _create(kinesis, name, 2)
    _put(kinesis, name, [_event(i, "before") for i in range(10)])
    time.sleep(0.1)
    cut = dt.datetime.now(dt.UTC)  # Kinesis takes whole seconds: the source cuts finer
    time.sleep(0.1)
    _put(kinesis, name, [_event(i, "after") for i in range(10, 17)])
    for start in (cut, cut.replace(tzinfo=None)):  # naive means UTC
        rows = _rows(rl.read_kinesis(name, start=start, endpoint_url=endpoint, max_idle="200ms", poll="20ms"))
        assert sorted(rows["k"]) == ["after"] * 7
        assert (rows["arrival_time"] >= cut).all()


# -- formats and bad records ----------------------------------------------------------------
def test_raw_records_keep_their_bytes_and_can_be_paced(kinesis: Any, endpoint: str, name: str) -> None:
    datas = [b"\x00\xff\xfe binary", b"plain text", b'{"json": 1}', *(bytes([i]) * (i + 1) for i in range(30))]
    _create(kinesis, name, 2)
    where = _put(kinesis, name, datas)
    src = rl.read_kinesis(name, endpoint_url=endpoint, format="raw", max_idle="300ms", poll="50ms")
    rows = _rows(src)
    assert rows.schema == pl.Schema({"data": pl.Binary, "arrival_time": pl.Datetime("us", "UTC"),
                                     "shard_id": pl.String, "sequence_number": pl.String})
    for shard in {s for s, _ in where}:
        assert rows.filter(pl.col("shard_id") == shard)["data"].to_list() == [
            d for d, (s, _) in zip(datas, where) if s == shard]
    run = rl.stream(src.paced(speed=1000.0), time="arrival_time").window(rl.tumbling("1h")).agg(rl.count()).run()
    assert run.output["count"].sum() == len(datas)
    assert run.rejected.height == 0


def test_unreadable_records_are_rejected_with_their_place_and_good_rows_kept(kinesis: Any, endpoint: str,
                                                                              name: str) -> None:
    pretty = json.dumps({"t": (T0 + dt.timedelta(seconds=7)).isoformat(), "k": "b", "v": 7}, indent=2).encode()
    first = [_event(1, "a", v=1), b"{oops", _event(2, "b", v=2), b"[1, 2]", b'"just a string"',
             b"\xff\xfe\x00\x01garbage", pretty, _event(3, "a", v=3), b"", _event(4, "b", v=4)]
    later = [_event(5, "a", v="abc"), _event(6, "a", v=6), json.dumps({"t": None, "k": "a", "v": 9}).encode(),
             _event(8, "b", v={"deep": 1})]
    _create(kinesis, name, 2)
    where = _put(kinesis, name, first)
    # The later records are put once the first chunk is out: the schema is fixed by then.
    source = _AfterFirstChunk(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="300ms", poll="20ms"),
                              lambda: where.extend(_put(kinesis, name, later)))
    run = (
        rl.stream(source, time="t", watermark="1d")
        .window(rl.tumbling("1h"), by="k").agg(rl.count(), rl.sum("v"))
        .run(progress=False)
    )
    assert run.output.select("k", "count", "v_sum").sort("k").rows() == [("a", 3, 10), ("b", 3, 13)]
    assert run.metrics["rows_in"] == 14
    records = first + later
    ordinal = {}
    seen: Counter[str] = Counter()
    for w in where:
        seen[w[0]] += 1
        ordinal[w] = seen[w[0]]
    by_source = run.rejected.filter(pl.col("file").is_not_null())
    # position in `records` -> part of the reason
    expected_bad = {1: "Expecting", 3: "not a JSON object", 4: "not a JSON object", 5: "",
                    8: "Expecting value", 10: "cannot parse", 13: "cannot parse"}
    got_bad = {}
    for s, q, file, line, reason, text in by_source.select(
            "shard_id", "sequence_number", "file", "line", "reason", "text").iter_rows():
        i = where.index((s, q))
        got_bad[i] = reason
        assert file == f"{name}/{s}" and line == ordinal[(s, q)]
        assert reason.startswith("unreadable JSON record: ")
        assert text == records[i][:1000].decode("utf-8", "replace")
    assert sorted(got_bad) == sorted(expected_bad)
    for i, fragment in expected_bad.items():
        assert fragment in got_bad[i], (i, got_bad[i])
    # The null time is the engine's to reject: it keeps its columns and its place too.
    by_engine = run.rejected.filter(pl.col("file").is_null())
    assert by_engine.select("v", "sequence_number").rows() == [(9, where[12][1])]


def test_a_field_named_like_an_added_column_needs_a_prefix(kinesis: Any, endpoint: str, name: str) -> None:
    _create(kinesis, name, 1)
    _put(kinesis, name, [json.dumps({"t": T0.isoformat(), "shard_id": "mine"}).encode()])
    with pytest.raises(rl.ConfigError, match="meta_prefix='kinesis_'"):
        _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms", poll="50ms"))
    rows = _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms", poll="50ms", meta_prefix="kinesis_"))
    assert rows.columns == ["t", "shard_id", "kinesis_arrival_time", "kinesis_shard_id", "kinesis_sequence_number"]
    assert rows["shard_id"].to_list() == ["mine"]


@pytest.mark.parametrize("limit", [1, 7, None])
def test_results_do_not_depend_on_records_per_get(kinesis: Any, endpoint: str, name: str,
                                                  limit: int | None) -> None:
    # Out of order on purpose (some rows late). One shard: the arrival order is the put order.
    seconds = [(i * 7) % 45 + i // 3 for i in range(45)]
    datas = [_event(s, "ab"[i % 2], v=i) for i, s in enumerate(seconds)]
    _create(kinesis, name, 1)
    _put(kinesis, name, datas)

    def q(source: Any) -> rl.Query:
        return rl.stream(source, time="t", watermark="5s").window(rl.tumbling("10s"), by="k").agg(
            rl.count(), rl.sum("v"))

    src = rl.read_kinesis(name, endpoint_url=endpoint, limit=limit, max_idle="200ms", poll="20ms")
    got = q(src).run(progress=False)
    want = q(pl.read_ndjson(io.BytesIO(b"\n".join(datas)))).run(progress=False)
    assert want.late.height > 0
    assert_frame_equal(got.output, want.output)
    assert_frame_equal(got.late.select(want.late.columns), want.late)


# -- errors and throttling ------------------------------------------------------------------
def test_a_stream_that_does_not_exist_is_named_with_those_that_do(kinesis: Any, endpoint: str, name: str) -> None:
    _create(kinesis, name, 1)
    src = rl.read_kinesis("no-such-stream", endpoint_url=endpoint, max_idle="200ms")
    with pytest.raises(rl.SourceError, match=r"'no-such-stream' does not exist .*" + re.escape(repr(name))):
        rl.stream(src, time="t").window(rl.tumbling("1m")).agg(rl.count()).run()


def test_throttling_is_retried_with_backoff(kinesis: Any, endpoint: str, name: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _create(kinesis, name, 2)
    _put(kinesis, name, [_event(i, v=i) for i in range(40)])
    flaky = _flaky(monkeypatch, endpoint, {
        "list_shards": ["LimitExceededException"],
        "get_records": ["ProvisionedThroughputExceededException"] * 3 + [None, "ExpiredIteratorException"],
    })
    rows = _rows(rl.read_kinesis(name, endpoint_url=endpoint, limit=5, max_idle="300ms", poll="20ms"))
    assert sorted(rows["v"]) == list(range(40))  # each record once, the expired iterator renewed
    assert rows.select("shard_id", "sequence_number").n_unique() == 40
    assert flaky.calls["list_shards"] >= 2 and flaky.calls["get_records"] > 5


def test_endless_throttling_ends_in_a_source_error(kinesis: Any, endpoint: str, name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _create(kinesis, name, 1)
    _flaky(monkeypatch, endpoint, {"get_records": ["ProvisionedThroughputExceededException"] * 100})
    monkeypatch.setattr(_kinesis, "_THROTTLE_ATTEMPTS", 4)
    with pytest.raises(rl.SourceError, match="still throttled after 4 attempts"):
        _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms"))


def test_refused_credentials_say_which_permissions_are_needed(endpoint: str, name: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _flaky(monkeypatch, endpoint, {"list_shards": ["AccessDeniedException"]})
    with pytest.raises(rl.SourceError, match="kinesis:GetRecords"):
        _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms"))


def test_missing_credentials_and_an_unreachable_endpoint_are_source_errors(
        endpoint: str, name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(rl.SourceError, match="check endpoint_url="):
        _rows(rl.read_kinesis(name, endpoint_url="http://127.0.0.1:9", max_idle="200ms"))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(rl.SourceError, match="no AWS credentials found"):
        _rows(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="200ms"))


def test_configuration_errors_say_what_would_be_right(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(rl.ConfigError, match="'TRIM_HORIZON'.*'LATEST'.*datetime"):
        rl.read_kinesis("s", start="EARLIEST")
    with pytest.raises(rl.ConfigError, match="'json'.*'raw'"):
        rl.read_kinesis("s", format="csv")
    with pytest.raises(rl.ConfigError, match="1 to 10000"):
        rl.read_kinesis("s", limit=0)
    with pytest.raises(rl.ConfigError, match="positive duration"):
        rl.read_kinesis("s", poll="0s")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(rl.ConfigError, match="region_name="):
        rl.read_kinesis("s")
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(rl.ConfigError, match=re.escape("pip install 'rillet[kinesis]'")):
        rl.read_kinesis("s")


def test_repr_names_the_stream() -> None:
    assert repr(rl.read_kinesis("events", start="LATEST")) == "rl.read_kinesis('events', start='LATEST')"
    assert repr(rl.read_kinesis("events", format="raw", endpoint_url="http://127.0.0.1:4566")) == (
        "rl.read_kinesis('events', start='TRIM_HORIZON', format='raw', endpoint_url='http://127.0.0.1:4566')")


# -- live: quiet periods and stopping -------------------------------------------------------
def test_max_idle_stops_a_quiet_stream(kinesis: Any, endpoint: str, name: str) -> None:
    _create(kinesis, name, 2)
    started = time.monotonic()
    quiet = list(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="300ms", poll="50ms").chunks())
    assert quiet and all(c.frame.width == 0 and c.bad.height == 0 for c in quiet)  # heartbeats only
    assert 0.3 <= time.monotonic() - started < 3
    _put(kinesis, name, [_event(1), _event(2)])
    chunks = list(rl.read_kinesis(name, endpoint_url=endpoint, max_idle="400ms", poll="50ms").chunks())
    assert sum(c.frame.height for c in chunks) == 2
    heartbeats = [c for c in chunks if c.frame.height == 0]
    # Once the columns are known, heartbeats carry them.
    assert heartbeats and all(c.frame.schema == chunks[-1].frame.schema for c in heartbeats if c.frame.width)


def test_idle_timeout_closes_a_window_while_records_arrive_from_another_thread(kinesis: Any, endpoint: str,
                                                                               name: str) -> None:
    _create(kinesis, name, 2)
    _put(kinesis, name, [_event(1)])

    def writer() -> None:
        time.sleep(0.3)
        _put(kinesis, name, [_event(59.9, "b")])

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    q = (
        rl.stream(rl.read_kinesis(name, endpoint_url=endpoint, poll="50ms", max_idle="4s"), time="t",
                  idle_timeout="300ms", flush=False)
        .window(rl.tumbling("1m")).agg(rl.count())
    )
    started = time.monotonic()
    first = next(iter(q.iter()))
    waited = time.monotonic() - started
    thread.join()
    # No row after 00:00:59.9 ever arrives: 0.3 s after it, event time follows the wall clock,
    # so [00:00, 00:01) closes long before max_idle ends the stream.
    assert first["count"].to_list() == [2]
    assert waited < 3
