"""The kill -9 harness (issue 18): a checkpointed run killed at named phases and at seeded random
moments, then resumed with the same checkpoint path, ends with sinks holding exactly what an
uninterrupted run writes: no duplicate, nothing missing, no staged file visible.

Each run is a child process (tests/crash_child.py) reading a seeded, disordered stream of
3,000 events (some late, some with an unparseable time, some unreadable lines) through
``read_jsonl``, ``read_csv``, ``read_parquet``, ``tail_jsonl`` (a file written whole before the
run), ``read_kafka`` or ``read_kinesis``, into ``to_parquet``, ``to_jsonl``, ``to_database``
(SQLite, DuckDB, PostgreSQL) or ``run()`` (whose output, late and rejected rows the child
writes out), checkpointing every 500 input rows.

- Named phases: ``RILLET_CRASH_AT=<epoch>:<phase>`` makes the child SIGKILL itself there; the
  harness checks it died of SIGKILL, then runs it again without the variable.
- Random kills: the harness SIGKILLs the child after a seeded random delay (some land before
  the first checkpoint, some after the end), then resumes it.
- The sink's content, and the Run's late and rejected rows, are compared with a GOLD run of the
  same child that nobody killed, as multisets (sorted, polars' equality); the gold itself is
  checked against an oracle (polars group_by over the events, less the late rows a per-row
  brute force finds and the unparseable ones), so two wrong runs cannot agree.
- A negative control (a ``for_each`` appending every batch to a file, at least once by
  contract) killed before its checkpoint is in place must show duplicates the harness flags.

A fast subset runs by default (JSON Lines into every sink, every sink from two file sources,
the other sources into Parquet and SQLite; three kills chained at two epochs, phases rotated);
``RILLET_CRASH_FULL=1`` runs the full matrix: every source into every sink, every phase at
epochs first, second, middle and last-but-one, each killed once and resumed, plus 10 random
kills each. Every test prints (and puts in its assertion message) the kills tried, resumed and
identical. After every kill, before the resume, a reader of the sink must see only rows of the
gold (none twice) and no staged file.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import simulate

# The services of the other tests: a Kafka broker, a Kinesis endpoint, a PostgreSQL server,
# started only by the cases that need them. Where a client library is missing, the cases that
# need it skip as those tests do (they fail under CI).
try:
    from test_source_kafka import kafka  # the broker fixture
except pytest.skip.Exception as _no_kafka:
    _KAFKA_MISSING = str(_no_kafka)

    @pytest.fixture(scope="session")
    def kafka() -> str:
        pytest.skip(_KAFKA_MISSING)
try:
    from test_source_kinesis import endpoint  # the server fixture
except pytest.skip.Exception as _no_kinesis:
    _KINESIS_MISSING = str(_no_kinesis)

    @pytest.fixture(scope="session")
    def endpoint() -> str:
        pytest.skip(_KINESIS_MISSING)
try:
    from test_sinks_postgres import postgres_uri  # the server fixture
except ImportError as _no_postgres:
    _POSTGRES_MISSING = f"psycopg is not installed: {_no_postgres}"

    @pytest.fixture(scope="session")
    def postgres_uri() -> str:
        if os.environ.get("CI"):
            pytest.fail(_POSTGRES_MISSING)
        pytest.skip(_POSTGRES_MISSING)

FULL = os.environ.get("RILLET_CRASH_FULL") == "1"
full_matrix = pytest.mark.skipif(not FULL, reason="the full kill -9 matrix runs with RILLET_CRASH_FULL=1")

CHILD = Path(__file__).with_name("crash_child.py")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T0_MS = int(T0.timestamp() * 1000)  # a whole second: windows align on T0 as on the epoch
EVENTS = 3000
BATCH = 100  # rows per read (file sources), messages per consume (Kafka), records per get (Kinesis)
EVERY = 500  # checkpoint_every: input rows
WATERMARK_MS, WINDOW_MS = 2000, 1000  # the child's query: watermark="2s", tumbling("1s") by k
SEED = 18
PHASES = ("mid_epoch", "before_rename", "before_commit", "mid_commit", "after_commit")
FILE_SOURCES = ("read_jsonl", "read_csv", "read_parquet")
# Two JSON Lines files merged by id (the same stream): a file source whose positions are counts
# of chunks, re-read and passed over on resume (the others resume at the reader's offset).
MERGED = "read_jsonl_merged"
LIVE_SOURCES = ("tail_jsonl", "read_kafka", "read_kinesis")
ALL_SOURCES = (*FILE_SOURCES, MERGED, *LIVE_SOURCES)
SINKS = ("to_parquet", "to_jsonl", "sqlite", "duckdb", "postgres", "run")
RANDOM_KILLS = 10
WORKERS = 3  # children at a time (2 cores; the live sources mostly wait)
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


# -- the events -----------------------------------------------------------------------------
@dataclass
class Events:
    """The stream in arrival order: rows (id, t, k, v; t None where it is unparseable) and,
    between them, unreadable lines (``broken[i]``: how many come before row i)."""

    rows: list[dict[str, Any]]
    broken_before: list[int]

    @property
    def broken(self) -> int:
        return sum(self.broken_before)


def make_events(n: int = EVENTS, seed: int = SEED) -> Events:
    rng = np.random.default_rng(seed)
    rows, broken = [], []
    for i in range(n):
        r = rng.random()
        if r < 0.02:
            ms = None  # an unparseable time: rejected
        elif r < 0.05:
            ms = i * 100 - int(rng.integers(5_000, 30_000))  # far behind: mostly late
        else:
            ms = i * 100 + int(rng.integers(-1_500, 1_500))  # disordered within the watermark, mostly
        broken.append(1 if rng.random() < 0.01 else 0)
        rows.append({"id": i, "ms": ms, "k": "abcde"[int(rng.integers(5))], "v": int(rng.integers(100))})
    return Events(rows, broken)


def _time_text(ms: int | None) -> str:
    return "not a time" if ms is None else (T0 + dt.timedelta(milliseconds=ms)).isoformat()


def jsonl_lines(ev: Events) -> list[str]:
    lines = []
    for row, broken in zip(ev.rows, ev.broken_before, strict=True):
        lines += ['{"id": 1, "t": '] * broken  # cut short: unreadable JSON
        lines.append(json.dumps({"id": row["id"], "t": _time_text(row["ms"]), "k": row["k"], "v": row["v"]}))
    return lines


def csv_lines(ev: Events) -> list[str]:
    lines = ["id,t,k,v"]
    for row, broken in zip(ev.rows, ev.broken_before, strict=True):
        lines += ["1,2026-01-01T00:00:00+00:00,a,1,one field too many"] * broken
        lines.append(f"{row['id']},{_time_text(row['ms'])},{row['k']},{row['v']}")
    return lines


def parquet_frame(ev: Events) -> pl.DataFrame:
    # No unreadable lines in Parquet: the unparseable times are its rejected rows.
    return pl.DataFrame({"id": [r["id"] for r in ev.rows], "t": [_time_text(r["ms"]) for r in ev.rows],
                         "k": [r["k"] for r in ev.rows], "v": [r["v"] for r in ev.rows]})


@dataclass
class Oracle:
    """What the contract says of the events, by brute force: the late ids, the rejected ids,
    and the windows (k, window_start in ms, count, v_sum) of the rows accepted."""

    late: set[int]
    rejected: set[int]
    windows: pl.DataFrame
    broken: int


def oracle(ev: Events, with_broken: bool) -> Oracle:
    times = [r["ms"] for r in ev.rows]
    sim = simulate(times, WATERMARK_MS, WINDOW_MS, WINDOW_MS)
    late = {r["id"] for r, s in zip(ev.rows, sim.status, strict=True) if s == "late"}
    rejected = {r["id"] for r, s in zip(ev.rows, sim.status, strict=True) if s == "rejected"}
    accepted = pl.DataFrame([r for r, s in zip(ev.rows, sim.status, strict=True) if s == "accepted"])
    windows = (
        accepted.with_columns((T0_MS + (pl.col("ms") // WINDOW_MS) * WINDOW_MS).alias("window_start"))
        .group_by("k", "window_start").agg(pl.len().cast(pl.Int64).alias("count"),
                                           pl.col("v").sum().cast(pl.Int64).alias("v_sum"))
    )
    return Oracle(late, rejected, windows, ev.broken if with_broken else 0)


# -- comparing ------------------------------------------------------------------------------
def difference(want: pl.DataFrame, got: pl.DataFrame) -> str | None:
    """None when ``got`` holds the same rows as ``want``, each as often (a multiset: sorted,
    then polars' equality); otherwise what is extra (duplicated) and what is missing."""
    if set(want.columns) != set(got.columns):
        return f"columns differ: {want.columns} expected, got {got.columns}"
    got = got.select(want.columns)
    if want.schema != got.schema:
        return f"types differ: {dict(want.schema)} expected, got {dict(got.schema)}"
    a = want.sort(want.columns, nulls_last=True)
    b = got.sort(want.columns, nulls_last=True)
    if a.equals(b):
        return None
    ca, cb = Counter(a.rows()), Counter(b.rows())
    extra, missing = cb - ca, ca - cb
    if not extra and not missing:  # equal multisets that polars' equality tells apart: say so
        return "the same rows, yet polars' equality differs"
    return (f"{sum(extra.values())} rows extra (duplicated or wrong), e.g. {list(extra)[:2]}; "
            f"{sum(missing.values())} rows missing, e.g. {list(missing)[:2]}")


def normalized_windows(df: pl.DataFrame) -> pl.DataFrame:
    """A sink's window rows as the oracle has them: k, window_start in epoch ms, count, v_sum."""
    ws = pl.col("window_start")
    if df.schema["window_start"] == pl.String:
        ws = ws.str.to_datetime(time_zone="UTC")
    return df.select("k", ws.dt.epoch("ms").alias("window_start"), pl.col("count").cast(pl.Int64),
                     pl.col("v_sum").cast(pl.Int64))


PART = re.compile(r"part-\d{8}T\d+-[0-9a-f]{8}\.(parquet|jsonl)")


def stray_files(dataset: Path, completed: bool = True) -> list[str]:
    """Files in a dataset directory a reader should not see (anything but committed parts), and
    (once a run completed) a staging folder left beside it."""
    stray = [str(p.relative_to(dataset)) for p in dataset.rglob("*")
             if (p.is_file() and not PART.fullmatch(p.name)) or p.name.startswith((".", "_"))]
    if completed:
        stray += [str(p) for p in dataset.parent.glob(f"{dataset.name}.rillet-staging*")]
    return stray


def beyond(gold: pl.DataFrame, seen: pl.DataFrame) -> str | None:
    """None when every row a reader sees part way (after a kill) is a row of the gold, no more
    often than there: committed output is final (emit="final"), never duplicated."""
    if seen.height == 0:
        return None
    extra = Counter(seen.select(gold.columns).rows()) - Counter(gold.rows())
    if extra:
        return f"{sum(extra.values())} rows the gold does not have (or has fewer times), e.g. {list(extra)[:2]}"
    return None


# -- the child ------------------------------------------------------------------------------
@dataclass
class Scenario:
    """One checkpoint path, one sink target, the child's outputs."""

    folder: Path
    cfg: dict[str, Any]

    @property
    def checkpoint(self) -> Path:
        return Path(self.cfg["checkpoint"])

    def checkpoints(self) -> list[str]:
        return sorted(p.name for p in self.checkpoint.glob("chk-*.rlck")) if self.checkpoint.exists() else []


@dataclass
class Child:
    """How to run the harness's child for one source and sink."""

    source: str
    sink: str
    base: Path
    source_cfg: dict[str, Any]
    env: dict[str, str]
    postgres: str | None = None

    def scenario(self, name: str, checkpoint: bool = True) -> Scenario:
        folder = self.base / f"{name}-{uuid.uuid4().hex[:6]}"
        (folder / "out").mkdir(parents=True)
        cfg = {**self.source_cfg, "sink": self.sink, "batch": BATCH, "every": EVERY,
               "checkpoint": str(folder / "checkpoint") if checkpoint else None, "out": str(folder / "out")}
        if "group" in cfg:  # Kafka: a consumer group of the scenario's own, kept across its runs
            cfg["group"] = f"crash-{uuid.uuid4().hex[:10]}"
        if self.sink in ("to_parquet", "to_jsonl", "for_each"):
            cfg["target"] = str(folder / ("dataset" if self.sink != "for_each" else "appended.jsonl"))
        elif self.sink in ("sqlite", "duckdb"):
            cfg["target"] = f"{self.sink}:///{folder / 'table.db'}"
            cfg["table"] = "windows"
        elif self.sink == "postgres":
            cfg["target"] = self.postgres
            cfg["table"] = f"crash_{uuid.uuid4().hex[:10]}"
        return Scenario(folder, cfg)

    def start(self, scn: Scenario, crash_at: str | None = None) -> subprocess.Popen:
        env = dict(self.env)
        if crash_at is not None:
            env["RILLET_CRASH_AT"] = crash_at
        log = open(scn.folder / "stderr.log", "ab")
        log.write(f"--- run, RILLET_CRASH_AT={crash_at}\n".encode())
        log.flush()
        proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(scn.cfg)], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
        proc.log = log  # type: ignore[attr-defined]
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen, timeout: float = 120) -> int:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return -999  # hung: a failure of its own
        finally:
            proc.log.close()  # type: ignore[attr-defined]

    def run(self, scn: Scenario, crash_at: str | None = None) -> int:
        return self.finish(self.start(scn, crash_at))

    # -- what the sink holds ------------------------------------------------------------------
    def content(self, scn: Scenario) -> dict[str, pl.DataFrame]:
        out = Path(scn.cfg["out"])
        got = {"late": pl.read_ipc(out / "late.arrow"), "rejected": pl.read_ipc(out / "rejected.arrow")}
        got["sink"] = self._sink(scn)
        return got

    def _sink(self, scn: Scenario) -> pl.DataFrame:
        cfg = scn.cfg
        if self.sink == "run":
            return pl.read_ipc(Path(cfg["out"]) / "output.arrow")
        if self.sink in ("to_parquet", "to_jsonl"):
            files = sorted(p for p in Path(cfg["target"]).rglob("*") if p.is_file())
            read = pl.read_parquet if self.sink == "to_parquet" else pl.read_ndjson
            return pl.concat([read(f) for f in files if f.stat().st_size]) if files else pl.DataFrame()
        if self.sink == "for_each":
            path = Path(cfg["target"])
            return pl.read_ndjson(path) if path.exists() and path.stat().st_size else pl.DataFrame()
        sql = f'SELECT * FROM "{cfg["table"]}"'
        if self.sink == "sqlite":
            con = sqlite3.connect(cfg["target"].split(":///", 1)[1])
            try:
                cur = con.execute(sql)
                return pl.DataFrame(cur.fetchall(), schema=[d[0] for d in cur.description], orient="row")
            finally:
                con.close()
        if self.sink == "duckdb":
            import duckdb

            with duckdb.connect(cfg["target"].split(":///", 1)[1], read_only=True) as con:
                cur = con.execute(sql)
                return pl.DataFrame(cur.fetchall(), schema=[d[0] for d in cur.description], orient="row")
        import psycopg

        with psycopg.connect(cfg["target"]) as con:
            cur = con.execute(sql)
            return pl.DataFrame(cur.fetchall(), schema=[d.name for d in cur.description], orient="row")

    def strays(self, scn: Scenario, completed: bool = True) -> list[str]:
        if self.sink in ("to_parquet", "to_jsonl") and Path(scn.cfg["target"]).exists():
            return stray_files(Path(scn.cfg["target"]), completed)
        return []

    def visible(self, scn: Scenario) -> pl.DataFrame:
        """What a reader of the sink sees now (after a kill): nothing where no table or file
        was made yet; run() shows nothing until it ends."""
        cfg = scn.cfg
        if self.sink in ("run", "for_each"):
            return pl.DataFrame()
        if self.sink in ("to_parquet", "to_jsonl"):
            return self._sink(scn) if Path(cfg["target"]).exists() else pl.DataFrame()
        if self.sink == "sqlite":
            path = cfg["target"].split(":///", 1)[1]
            if not Path(path).exists():
                return pl.DataFrame()
            con = sqlite3.connect(path)
            try:
                made = con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [cfg["table"]]).fetchone()
            finally:
                con.close()
        elif self.sink == "duckdb":
            import duckdb

            path = cfg["target"].split(":///", 1)[1]
            if not Path(path).exists():
                return pl.DataFrame()
            with duckdb.connect(path, read_only=True) as con:
                made = con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?",
                                   [cfg["table"]]).fetchone()
        else:
            import psycopg

            with psycopg.connect(cfg["target"]) as con:
                made = con.execute("SELECT to_regclass(%s)", [f'"{cfg["table"]}"']).fetchone()[0]
        return self._sink(scn) if made else pl.DataFrame()


@dataclass
class Gold:
    content: dict[str, pl.DataFrame]
    epochs: int  # the last checkpoint's epoch: the one taken at the end
    seconds: float  # the child's time from its imports done to its end


@dataclass
class Tally:
    """Kills tried (the child died of SIGKILL, or a random kill came after it ended),
    resumed (the next run completed), identical (equal to the gold), and what went wrong."""

    name: str
    tried: int = 0
    resumed: int = 0
    identical: int = 0
    landed: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)  # kills run in threads

    def add(self, tried: int = 0, resumed: int = 0, identical: int = 0, landed: str | None = None,
            failure: str | None = None) -> None:
        with self.lock:
            self.tried += tried
            self.resumed += resumed
            self.identical += identical
            if landed is not None:
                self.landed[landed] += 1
            if failure is not None:
                self.failures.append(failure)

    def line(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in sorted(self.landed.items()))
        return (f"{self.name}: kills tried {self.tried}, resumed {self.resumed}, identical "
                f"{self.identical}" + (f" (random kills landed: {where})" if where else ""))


def compare(child: Child, gold: Gold, scn: Scenario) -> list[str]:
    """What differs from the gold: the sink's rows, the late and rejected rows, stray files."""
    problems = []
    got = child.content(scn)
    for part in ("sink", "late", "rejected"):
        diff = difference(gold.content[part], got[part])
        if diff:
            problems.append(f"{part}: {diff}")
    stray = child.strays(scn)
    if stray:
        problems.append(f"files a reader sees that are not committed parts: {stray[:5]}")
    return problems


def _stderr(scn: Scenario) -> str:
    text = (scn.folder / "stderr.log").read_text(errors="replace")
    return "\n".join(text.splitlines()[-15:])


def named_kills(child: Child, gold: Gold, crashes: list[str], tally: Tally, label: str) -> Scenario | None:
    """One scenario: the child is run with each of ``crashes`` in turn (each must kill it), then
    once without, to completion; the result must equal the gold. Returns the scenario when it
    did."""
    scn = child.scenario(label.replace(":", "-").replace(" ", ""))
    try:
        for at in crashes:
            rc = child.run(scn, at)
            if rc != -signal.SIGKILL:
                tally.add(failure=f"{label}: RILLET_CRASH_AT={at} did not kill the child "
                                      f"(exit code {rc}); stderr:\n{_stderr(scn)}")
                return None
            tally.add(tried=1)
            # What a reader sees before the resume: committed rows only, no staged file.
            seen = beyond(gold.content["sink"], child.visible(scn))
            stray = child.strays(scn, completed=False)
            if seen or stray:
                tally.add(failure=f"{label}: right after the kill at {at}, a reader sees "
                                  + (f"{seen}" if seen else f"files that are not committed parts: {stray[:5]}"))
                return None
        rc = child.run(scn)
        if rc != 0:
            tally.add(failure=f"{label}: the resumed run failed (exit code {rc}); stderr:\n{_stderr(scn)}")
            return None
        tally.add(resumed=len(crashes))
        problems = compare(child, gold, scn)
        if problems:
            tally.add(failure=f"{label} ({scn.folder}): " + "; ".join(problems))
            return None
        tally.add(identical=len(crashes))
        return scn
    except Exception as e:  # reading what the child left: part of the failure report
        tally.add(failure=f"{label}: {type(e).__name__}: {e}")
    return None


def random_kill(child: Child, gold: Gold, seed: int, tally: Tally) -> None:
    """Kills the child from outside after a seeded random delay from its imports done (up to
    twice the gold run's time from there, so some kills come after the end), then resumes it."""
    delay = random.Random(seed).uniform(0.0, 2.0 * gold.seconds)
    label = f"random kill seed={seed} {delay:.3f} s after the child's imports"
    scn = child.scenario(f"random-{seed}")
    try:
        proc = child.start(scn)
        started = Path(scn.cfg["out"]) / "started"
        while not started.exists() and proc.poll() is None:
            time.sleep(0.002)
        try:
            proc.wait(delay)
            landed = "after the end"
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            landed = "mid-run" if scn.checkpoints() else "before the first checkpoint"
        rc = child.finish(proc)
        if rc == 0:  # it ended between the wait and the kill
            landed = "after the end"
        if rc not in (-signal.SIGKILL, 0):
            tally.add(failure=f"{label}: exit code {rc}; stderr:\n{_stderr(scn)}")
            return
        tally.add(tried=1, landed=landed)
        seen = beyond(gold.content["sink"], child.visible(scn))
        stray = child.strays(scn, completed=landed == "after the end")
        if seen or stray:
            tally.add(failure=f"{label}: right after the kill ({landed}), a reader sees "
                              + (f"{seen}" if seen else f"files that are not committed parts: {stray[:5]}"))
            return
        rc = child.run(scn)
        if rc != 0:
            tally.add(failure=f"{label}: the resumed run failed (exit code {rc}); stderr:\n{_stderr(scn)}")
            return
        tally.add(resumed=1)
        problems = compare(child, gold, scn)
        if problems:
            tally.add(failure=f"{label}, {landed} ({scn.folder}): " + "; ".join(problems))
        else:
            tally.add(identical=1)
    except Exception as e:
        tally.add(failure=f"{label}: {type(e).__name__}: {e}")


# -- the services and the inputs --------------------------------------------------------------
@pytest.fixture(scope="session")
def events() -> Events:
    return make_events()


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory, events: Events) -> dict[str, dict[str, Any]]:
    """The event stream as each file source reads it."""
    folder = tmp_path_factory.mktemp("crash-inputs")
    lines = "\n".join(jsonl_lines(events)) + "\n"
    (folder / "events.jsonl").write_text(lines)
    half = len(events.rows) // 2  # the first half's rows (and unreadable lines) in one file
    cut = sum(events.broken_before[:half]) + half
    every_line = jsonl_lines(events)
    (folder / "first.jsonl").write_text("\n".join(every_line[:cut]) + "\n")
    (folder / "second.jsonl").write_text("\n".join(every_line[cut:]) + "\n")
    (folder / "tailed.jsonl").write_text(lines)  # written whole before any run
    (folder / "events.csv").write_text("\n".join(csv_lines(events)) + "\n")
    parquet_frame(events).write_parquet(folder / "events.parquet", row_group_size=700)
    return {
        "read_jsonl": {"source": "read_jsonl", "path": str(folder / "events.jsonl")},
        "read_csv": {"source": "read_csv", "path": str(folder / "events.csv")},
        "read_parquet": {"source": "read_parquet", "path": str(folder / "events.parquet")},
        MERGED: {"source": MERGED, "paths": [str(folder / "first.jsonl"), str(folder / "second.jsonl")]},
        "tail_jsonl": {"source": "tail_jsonl", "path": str(folder / "tailed.jsonl"), "block": 16384},
    }


@pytest.fixture(scope="session")
def kafka_topic(kafka: str, events: Events) -> dict[str, Any]:
    """One partition (a stream's arrival order is then the same in every run), the events as
    JSON messages, the unreadable ones among them."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"crash-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": kafka})  # kept alive until the topic is made
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": 5})
    for i, line in enumerate(jsonl_lines(events)):
        producer.produce(topic, line.encode(), partition=0, timestamp=int(T0.timestamp() * 1000) + i)
    assert producer.flush(30) == 0
    return {"source": "read_kafka", "topic": topic, "bootstrap": kafka, "group": None}


@pytest.fixture(scope="session")
def kinesis_stream(endpoint: str, events: Events) -> dict[str, Any]:
    """One shard (the arrival order is the same in every run), the events as JSON records."""
    import boto3

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    stream = f"crash-{uuid.uuid4().hex[:12]}"
    client.create_stream(StreamName=stream, ShardCount=1)
    client.get_waiter("stream_exists").wait(StreamName=stream)
    lines = [line.encode() for line in jsonl_lines(events)]
    for a in range(0, len(lines), 500):
        resp = client.put_records(StreamName=stream, Records=[
            {"Data": d, "PartitionKey": "p"} for d in lines[a:a + 500]])
        assert resp["FailedRecordCount"] == 0
    client.close()
    return {"source": "read_kinesis", "stream": stream, "endpoint": endpoint}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RILLET_CRASH_AT"}
    return {**env, **AWS}


_CHILDREN: dict[tuple[str, str], Child] = {}
_GOLDS: dict[tuple[str, str], Gold] = {}
_GOLD_LOCK = threading.Lock()


@pytest.fixture
def harness(request: pytest.FixtureRequest, inputs: dict[str, dict[str, Any]],
            tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``harness(source, sink)``: the child for that pair, its services started (in the test's
    thread: fixtures are not for other threads)."""

    def make(source: str, sink: str) -> Child:
        if (source, sink) not in _CHILDREN:
            if source == "read_kafka":
                cfg = request.getfixturevalue("kafka_topic")
            elif source == "read_kinesis":
                cfg = request.getfixturevalue("kinesis_stream")
            else:
                cfg = inputs[source]
            pg = request.getfixturevalue("postgres_uri") if sink == "postgres" else None
            _CHILDREN[(source, sink)] = Child(source, sink, tmp_path_factory.mktemp(f"crash-{source}-{sink}"),
                                              cfg, _env(), pg)
        return _CHILDREN[(source, sink)]

    return make


def gold_of(child: Child, events: Events) -> Gold:
    """The child's uninterrupted run (once a session), checked against the oracle."""
    key = (child.source, child.sink)
    with _GOLD_LOCK:
        if key in _GOLDS:
            return _GOLDS[key]
    scn = child.scenario("gold")
    rc = child.run(scn)
    assert rc == 0, f"the gold run of {child.source} -> {child.sink} failed ({rc}):\n{_stderr(scn)}"
    metrics = json.loads((scn.folder / "out" / "metrics.json").read_text())
    gold = Gold(child.content(scn), int(metrics["checkpoint_epoch"]), float(metrics["run_seconds"]))
    check_gold(child.source, child.sink, gold, events, child.strays(scn))
    with _GOLD_LOCK:
        return _GOLDS.setdefault(key, gold)


def check_gold(source: str, sink: str, gold: Gold, events: Events, strays: list[str]) -> None:
    """The gold run against the oracle: its windows are polars' group_by over the accepted
    events, its late rows those the brute force calls late, its rejected rows the unparseable
    times and the unreadable lines."""
    want = oracle(events, with_broken=source != "read_parquet")
    where = f"gold run {source} -> {sink}"
    assert not strays, f"{where}: files a reader sees that are not committed parts: {strays}"
    late_ids = set(gold.content["late"]["id"].to_list())
    assert late_ids == want.late, (f"{where}: late rows differ from the brute force: extra "
                                   f"{sorted(late_ids - want.late)[:5]}, missing {sorted(want.late - late_ids)[:5]}")
    assert gold.content["late"].height == len(want.late), f"{where}: a late row twice"
    rejected = gold.content["rejected"]
    assert set(rejected["id"].drop_nulls().to_list()) == want.rejected, f"{where}: rejected rows differ"
    assert rejected["id"].null_count() == want.broken, f"{where}: unreadable lines differ"
    assert rejected.height == len(want.rejected) + want.broken, f"{where}: a rejected row twice"
    diff = difference(want.windows, normalized_windows(gold.content["sink"]))
    assert diff is None, f"{where}: the windows differ from polars' group_by: {diff}"
    assert gold.epochs >= 3, f"{where}: only {gold.epochs} checkpoints"


def spread(epochs: int) -> list[int]:
    """First, second, middle and last-but-one epoch (the last is the one taken at the end)."""
    return sorted({1, min(2, epochs), max(1, epochs // 2), max(1, epochs - 1)})


def applicable(sink: str, phase: str) -> bool:
    # run() has no sink to commit: mid_commit is a point inside a sink's commit.
    return not (sink == "run" and phase == "mid_commit")


def run_all(jobs: list[Any]) -> None:
    with ThreadPoolExecutor(WORKERS) as pool:
        for f in [pool.submit(job) for job in jobs]:
            f.result()


def report(tallies: list[Tally]) -> str:
    text = "\n".join(t.line() for t in tallies)
    print(text)
    fails = [f for t in tallies for f in t.failures]
    return text + ("\n\nfailures:\n" + "\n\n".join(fails) if fails else "")


# -- the fast subset --------------------------------------------------------------------------
# Three kills chained in one checkpoint path: at the first epoch, one before its checkpoint is
# in place then one at or after it; at the middle epoch, one more; rotated so that across the
# sinks of a source every phase comes.
BEFORE = ("mid_epoch", "before_rename")
AFTER = ("before_commit", "mid_commit", "after_commit")
# The sinks of each source in the fast subset: JSON Lines into every sink, every sink from two
# file sources; the other sources into Parquet and SQLite (the full matrix has every pair).
FAST_SINKS = {"read_jsonl": SINKS, "read_csv": ("to_jsonl", "sqlite", "run"),
              "read_parquet": ("to_parquet", "duckdb", "postgres")}
LIVE_SINKS = ("to_parquet", "sqlite")


def fast_chain(source: str, sink: str, epochs: int) -> list[str]:
    n = SINKS.index(sink) + ALL_SOURCES.index(source)
    after = AFTER[n % 3]
    middle = PHASES[(n + 1) % len(PHASES)]
    if not applicable(sink, after):
        after = "before_commit"
    if not applicable(sink, middle):
        middle = "after_commit"
    return [f"1:{BEFORE[n % 2]}", f"1:{after}", f"{max(2, epochs // 2)}:{middle}"]


@pytest.mark.parametrize("source", ALL_SOURCES)
def test_killed_runs_resume_to_the_gold_result(harness: Any, events: Events, source: str) -> None:
    """Each sink of the source (FAST_SINKS) in its own thread: its gold run, then its chain of
    kills and the resumed run."""
    sinks = FAST_SINKS.get(source, LIVE_SINKS)
    children = [harness(source, sink) for sink in sinks]
    tallies: list[Tally] = []

    def case(child: Child) -> None:
        gold = gold_of(child, events)
        chain = fast_chain(source, child.sink, gold.epochs)
        tally = Tally(f"{source} -> {child.sink} ({gold.epochs} epochs), kills {chain} chained")
        tallies.append(tally)
        scn = named_kills(child, gold, chain, tally, " ".join(chain))
        if source == "read_jsonl" and scn is not None:
            # A run that completed, run again: nothing is read, nothing is written again.
            rc = child.run(scn)
            problems = compare(child, gold, scn) if rc == 0 else [f"exit code {rc}: {_stderr(scn)}"]
            if problems:
                tally.add(failure=f"the completed run, run again: {'; '.join(problems)}")
        if (source, child.sink) == ("read_jsonl", "to_parquet"):
            for seed in (SEED, SEED + 1):
                random_kill(child, gold, seed, tally)

    run_all([lambda child=child: case(child) for child in children])
    text = report(sorted(tallies, key=lambda t: t.name))
    assert len(tallies) == len(sinks), text
    assert all(not t.failures and t.identical == t.tried >= 3 for t in tallies), text


# -- the full matrix --------------------------------------------------------------------------
@full_matrix
@pytest.mark.parametrize("sink", SINKS)
@pytest.mark.parametrize("source", ALL_SOURCES)
def test_full_matrix_every_phase_and_random_kills(harness: Any, events: Events, source: str, sink: str) -> None:
    """Every phase at epochs first, second, middle and last-but-one, each killed once and
    resumed; then RANDOM_KILLS seeded random kills, each resumed."""
    child = harness(source, sink)
    gold = gold_of(child, events)
    named = Tally(f"{source} -> {sink} ({gold.epochs} epochs), named phases")
    randomly = Tally(f"{source} -> {sink}, {RANDOM_KILLS} random kills")
    jobs = [lambda at=f"{e}:{p}": named_kills(child, gold, [at], named, at)
            for e in spread(gold.epochs) for p in PHASES if applicable(sink, p)]
    seeds = [SEED * 1000 + ALL_SOURCES.index(source) * 100 + SINKS.index(sink) * 10 + k
             for k in range(RANDOM_KILLS)]
    jobs += [lambda seed=seed: random_kill(child, gold, seed, randomly) for seed in seeds]
    run_all(jobs)
    text = report([named, randomly])
    assert not named.failures and not randomly.failures, text
    assert named.identical == named.tried == len(jobs) - RANDOM_KILLS, text
    assert randomly.identical == randomly.tried == RANDOM_KILLS, text


# -- a Kafka consumer group's offsets ------------------------------------------------------------
def test_kafka_killed_before_its_first_checkpoint_reads_from_the_start_again(harness: Any, events: Events) -> None:
    """The consumer group's offsets are committed only once a checkpoint holds them: a run
    killed after several batches but before its first checkpoint resumes from the start, not
    from the group's offsets past rows no sink holds (the harness found this one)."""
    child = harness("read_kafka", "to_parquet")
    gold = gold_of(child, events)
    tally = Tally("read_kafka -> to_parquet, killed before its first checkpoint")
    named_kills(child, gold, ["1:before_rename"], tally, "1:before_rename")
    text = report([tally])
    assert not tally.failures and tally.identical == tally.tried == 1, text


# -- the gold against a run without checkpoints ------------------------------------------------
def test_the_gold_equals_a_run_without_checkpoints(harness: Any, events: Events) -> None:
    """Checkpointing changes nothing: the uninterrupted checkpointed run is the plain run."""
    child = harness("read_jsonl", "run")
    gold = gold_of(child, events)
    scn = child.scenario("plain", checkpoint=False)
    assert child.run(scn) == 0, _stderr(scn)
    plain = child.content(scn)
    for part in ("sink", "late", "rejected"):
        assert difference(plain[part], gold.content[part]) is None, part


# -- the negative control -----------------------------------------------------------------------
def test_for_each_appending_is_at_least_once_and_the_harness_flags_its_duplicates(harness: Any,
                                                                                   events: Events) -> None:
    """A plain append sink (for_each, at least once by contract) killed after it wrote rows its
    checkpoint does not cover (mid_epoch: a batch; before_rename: the whole epoch) shows
    duplicates, and the harness's comparison flags them; killed once the checkpoint is in place
    (before_commit, after_commit), it has nothing to write again."""
    gold = gold_of(harness("read_jsonl", "run"), events)
    append = Child("read_jsonl", "for_each", harness("read_jsonl", "run").base, harness("read_jsonl", "run").source_cfg,
                   _env())
    scn = append.scenario("for-each-gold")
    assert append.run(scn) == 0, _stderr(scn)
    appended_gold = Gold(append.content(scn), gold.epochs, gold.seconds)
    # What an uninterrupted run appends is the run's output.
    assert difference(normalized_windows(gold.content["sink"]),
                      normalized_windows(appended_gold.content["sink"])) is None
    outcomes: dict[str, list[str]] = {}
    tallies = []

    def one(at: str) -> None:
        tally = Tally(f"for_each, killed at {at}")
        named_kills(append, appended_gold, [at], tally, at)
        tallies.append(tally)
        outcomes[at] = tally.failures

    run_all([lambda at=f"2:{p}": one(at) for p in PHASES if p != "mid_commit"])  # (no sink commit)
    text = report(sorted(tallies, key=lambda t: t.name))
    for phase in ("mid_epoch", "before_rename"):  # appended, then replayed: flagged as duplicates
        failures = outcomes[f"2:{phase}"]
        assert len(failures) == 1 and "sink: " in failures[0] and "rows extra" in failures[0], text
        assert "; 0 rows missing" in failures[0], text
    for phase in ("before_commit", "after_commit"):  # the checkpoint covers what was appended
        assert not outcomes[f"2:{phase}"], text
