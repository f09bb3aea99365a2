#!/usr/bin/env python3
"""Tail latency: how long after its watermark passes is a window's result visible?

    python bench/latency.py [--seconds 30] [--rate 2000] [--poll 5ms] [--delay 100ms]

Issue 6's goal: an appended row's window result is visible within 50 ms (p99) of its
watermark passing. Measured end to end, in two modes:

  file    a writer thread appends CloudTrail-like JSON lines (time, service, user, event) to a
          file at --rate rows/s; the query follows it with rl.tail_jsonl(path, poll=--poll)
  engine  the same writer hands polars DataFrames to the query through a queue.Queue; no
          file, no polling, no JSON: what is left is the engine and the thread hand-off

Each row's event time is the wall-clock moment it is written (rows written together share
it). The query is tumbling --window windows by service with watermark=--delay::

      rows written ...  |  window [S, E)  |  ...  first row with time >= E + delay written
                                          E       ^ the watermark passes E: "pass"
                                                        ... result row for E seen: "visible"

    latency(E) = visible(E) - pass(E)

"pass" is when the write (and flush) of the first row with event time >= E + delay returned;
"visible" is when q.iter() handed the consumer the first frame holding window E, which is
what q.for_each and the sinks see too (a q.start() handle shows it at the consumer's next
look). Latency is split into "read" (pass -> the batch holding that row reached the
engine: file polling and JSON decoding, or the queue hand-off) and "engine" (-> visible).
Windows in the first --warmup seconds and those flushed when the input ends are left out.

A table is printed and one JSON line per mode is appended to bench/results/latency.jsonl.
Figures from a debug build of the native module mean nothing; build a release first.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import queue
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import rillet as rl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "latency.jsonl"
GOAL_MS = 50.0
SERVICES = [f"{s}.amazonaws.com" for s in (
    "ec2", "s3", "iam", "sts", "lambda", "dynamodb", "kms", "cloudwatch", "logs", "sqs",
    "sns", "rds", "ecs", "eks", "cloudformation", "ssm", "secretsmanager", "route53",
    "elasticloadbalancing", "autoscaling")]
USERS = [f"arn:aws:iam::123456789012:user/u{i:04d}" for i in range(500)]
EVENTS = ["DescribeInstances", "GetObject", "PutObject", "AssumeRole", "Invoke", "GetItem",
          "Decrypt", "PutMetricData", "RunInstances", "ListBuckets"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# One clock for every moment: wall-clock microseconds, but advancing with perf_counter so a
# clock adjustment during the run cannot bend an interval.
_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


def now_us() -> int:
    """Wall-clock microseconds since the epoch, monotonic within this process."""
    return (time.perf_counter_ns() + _OFFSET_NS) // 1000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="End-to-end tail latency of window results: file tail and in-memory engine.",
        epilog="Figures from a debug build of the native core mean nothing; build a release first.",
    )
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the writer writes (default 30)")
    ap.add_argument("--rate", type=float, default=2000.0, help="rows written per second (default 2000)")
    ap.add_argument("--poll", default="5ms", help="rl.tail_jsonl poll interval (default 5ms)")
    ap.add_argument("--delay", default="100ms", help="watermark delay (default 100ms)")
    ap.add_argument("--window", default="1s", help="tumbling window size (default 1s)")
    ap.add_argument("--tick", type=float, default=1.0, help="the writer writes what is due every this many ms (default 1)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds of windows left out at the start (default 1)")
    ap.add_argument("--modes", default="file,engine", help="comma list from file,engine (default both)")
    ap.add_argument("--seed", type=int, default=6, help="seed of the rows' services and users")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON lines to append to (default bench/results/latency.jsonl)")
    a = ap.parse_args(argv)
    a.modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    for m in a.modes:
        if m not in ("file", "engine"):
            ap.error(f"unknown mode {m!r}; choose from file, engine")
    if a.seconds <= 0 or a.rate <= 0 or a.tick <= 0:
        ap.error("--seconds, --rate and --tick must be positive")
    a.delay_us = duration_us(a.delay)
    a.window_us = duration_us(a.window)
    return a


def duration_us(text: str) -> int:
    """'100ms', '1s', '250us' -> microseconds."""
    for suffix, scale in (("us", 1), ("ms", 1000), ("s", 1_000_000), ("m", 60_000_000)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return round(float(text[: -len(suffix)]) * scale)
    raise SystemExit(f"not a duration: {text!r} (use e.g. 5ms, 100ms, 1s)")


# ------------------------------------------------------------------------------ writing
@dataclass
class WriteLog:
    """What the writer did: per write, the rows' event time and when the write returned."""

    stamps: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    rows: int = 0
    started: int = 0
    ended: int = 0


def pace(rate: float, seconds: float, tick_s: float, emit: Callable[[int, int], None],
         log: WriteLog) -> None:
    """Every tick, hands what is due at `rate` to `emit(stamp_us, n)`, stamped with the moment
    it is written; logs each write's stamp and the moment it returned."""
    log.started = start = now_us()
    end = start + round(seconds * 1e6)
    next_tick = time.perf_counter()
    while True:
        t = now_us()
        if t >= end:
            break
        due = int((t - start) * rate / 1e6) - log.rows
        if due > 0:
            stamp = max(t, log.stamps[-1] if log.stamps else t)
            emit(stamp, due)
            log.stamps.append(stamp)
            log.done.append(now_us())
            log.rows += due
        next_tick += tick_s
        pause = next_tick - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            next_tick = time.perf_counter()  # fell behind: do not try to catch up in a burst
    log.ended = now_us()


class Rows:
    """CloudTrail-like rows: a service, a user and an event name each."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, n: int) -> tuple[list[str], list[str], list[str]]:
        s = self.rng.integers(0, len(SERVICES), n)
        u = self.rng.zipf(1.3, n) % len(USERS)
        e = self.rng.integers(0, len(EVENTS), n)
        return [SERVICES[i] for i in s], [USERS[i] for i in u], [EVENTS[i] for i in e]

    def jsonl(self, stamp: int, n: int) -> str:
        iso = (EPOCH + dt.timedelta(microseconds=stamp)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        services, users, events = self.pick(n)
        return "".join(f'{{"time":"{iso}","service":"{s}","user":"{u}","event":"{e}"}}\n'
                       for s, u, e in zip(services, users, events))

    def frame(self, stamp: int, n: int) -> pl.DataFrame:
        services, users, events = self.pick(n)
        return pl.DataFrame({
            "time": pl.Series([stamp] * n, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "service": services, "user": users, "event": events,
        })


# ------------------------------------------------------------------------------ running
@dataclass
class Trace:
    """One run: the writes, each non-empty batch the engine read, each window's visibility."""

    mode: str
    log: WriteLog
    reads: list[tuple[int, int, int]] = field(default_factory=list)  # (moment, max event time, rows)
    visible: dict[int, int] = field(default_factory=dict)  # window end -> first moment seen
    batches_in: int = 0  # every batch the engine was handed, heartbeats included


def windowed(source: Any, args: argparse.Namespace) -> rl.Query:
    return (
        rl.stream(source, time="time", watermark=args.delay)
        .window(rl.tumbling(args.window), by="service")
        .agg(rl.count(), rl.count_distinct("user").alias("users"))
    )


def consume(query: rl.Query, trace: Trace) -> None:
    """Runs the query, noting when each window's rows are handed to the consumer."""
    for out in query.iter(progress=False):
        seen = now_us()
        for end in out["window_end"].dt.epoch("us").unique().to_list():
            trace.visible.setdefault(end, seen)


def run_file(args: argparse.Namespace, folder: Path) -> Trace:
    """Writer thread -> JSON Lines file -> rl.tail_jsonl -> query."""
    path = folder / "events.jsonl"
    path.write_bytes(b"")
    rows = Rows(args.seed)
    trace = Trace("file", WriteLog())

    with open(path, "a", encoding="utf-8") as f:

        def emit(stamp: int, n: int) -> None:
            f.write(rows.jsonl(stamp, n))
            f.flush()

        writer = threading.Thread(target=pace, args=(args.rate, args.seconds, args.tick / 1000, emit, trace.log),
                                  name="writer", daemon=True)
        # The source ends half a second after the writer stops; windows it then flushes are
        # left out (their watermark never passed).
        tail = rl.tail_jsonl(path, poll=args.poll, max_idle="500ms")

        def batches() -> Iterator[pl.DataFrame]:
            for chunk in tail.chunks():
                if chunk.bad.height:
                    raise RuntimeError(f"the tail rejected rows: {chunk.bad.head(3)}")
                frame = chunk.frame
                if frame.height:
                    last = dt.datetime.fromisoformat(frame["time"].max())  # one ISO format: text order is time order
                    trace.reads.append((now_us(), (last - EPOCH) // dt.timedelta(microseconds=1), frame.height))
                if frame.width:  # before the first row there are no columns to bind to
                    trace.batches_in += 1
                    yield frame

        writer.start()
        consume(windowed(batches(), args), trace)
        writer.join()
    return trace


def run_engine(args: argparse.Namespace) -> Trace:
    """Writer thread -> queue.Queue of DataFrames -> query: no file, polling or JSON."""
    rows = Rows(args.seed)
    trace = Trace("engine", WriteLog())
    handoff: queue.Queue[pl.DataFrame | None] = queue.Queue()

    def emit(stamp: int, n: int) -> None:
        handoff.put(rows.frame(stamp, n))

    def write() -> None:
        pace(args.rate, args.seconds, args.tick / 1000, emit, trace.log)
        handoff.put(None)

    def batches() -> Iterator[pl.DataFrame]:
        while (frame := handoff.get()) is not None:
            trace.reads.append((now_us(), frame["time"].dt.epoch("us").max(), frame.height))
            trace.batches_in += 1
            yield frame

    writer = threading.Thread(target=write, name="writer", daemon=True)
    writer.start()
    consume(windowed(batches(), args), trace)
    writer.join()
    return trace


# ------------------------------------------------------------------------------ reporting
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the conservative one for few samples)."""
    return float(np.percentile(values, p, method="higher")) if values else float("nan")


def summarize(trace: Trace, args: argparse.Namespace) -> dict[str, Any]:
    log = trace.log
    read_stamps = [r[1] for r in trace.reads]
    # Reads' max event times only grow (each write's stamp does), so bisect finds the first.
    first_warm = log.started + round(args.warmup * 1e6)
    total, read, engine = [], [], []
    for end, seen in sorted(trace.visible.items()):
        if end < first_warm:
            continue
        need = end + args.delay_us
        w = bisect_left(log.stamps, need)
        r = bisect_left(read_stamps, need)
        if w == len(log.stamps) or r == len(read_stamps):
            continue  # flushed at the end: its watermark never passed
        passed, arrived = log.done[w], trace.reads[r][0]
        total.append((seen - passed) / 1000)
        read.append((arrived - passed) / 1000)
        engine.append((seen - arrived) / 1000)
    elapsed = max(log.ended - log.started, 1) / 1e6
    sizes = [r[2] for r in trace.reads]

    def stats(xs: list[float], prefix: str) -> dict[str, float]:
        return {f"{prefix}p50_ms": round(percentile(xs, 50), 3), f"{prefix}p95_ms": round(percentile(xs, 95), 3),
                f"{prefix}p99_ms": round(percentile(xs, 99), 3),
                f"{prefix}max_ms": round(max(xs), 3) if xs else float("nan")}

    return {
        "mode": trace.mode,
        "windows": len(total),
        "events": log.rows,
        "events_per_s": round(log.rows / elapsed),
        "writes": len(log.stamps),
        "batches_in": trace.batches_in,
        "rows_per_batch_mean": round(float(np.mean(sizes)), 1) if sizes else 0.0,
        "rows_per_batch_max": max(sizes, default=0),
        **stats(total, ""),
        **stats(read, "read_"),
        **stats(engine, "engine_"),
    }


def verdict(row: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Whether the goal is met, and if not, where the time went."""
    if not row["windows"]:
        return [f"{row['mode']}: no window closed after the warm-up; run longer (--seconds)"]
    if row["p99_ms"] <= GOAL_MS:
        return [f"{row['mode']}: p99 {row['p99_ms']:.1f} ms <= {GOAL_MS:.0f} ms: goal met"]
    lines = [f"{row['mode']}: p99 {row['p99_ms']:.1f} ms > {GOAL_MS:.0f} ms: goal NOT met"]
    poll_ms = duration_us(args.poll) / 1000
    if row["read_p99_ms"] > row["engine_p99_ms"]:
        lines.append(f"  most of it is before the engine (read p99 {row['read_p99_ms']:.1f} ms): "
                     + (f"the tail polls every {poll_ms:g} ms and decodes JSON in Python"
                        if row["mode"] == "file" else "the queue hand-off between threads"))
    else:
        lines.append(f"  most of it is in the engine step (engine p99 {row['engine_p99_ms']:.1f} ms, "
                     f"batches of {row['rows_per_batch_mean']:g} rows on average, "
                     f"{row['rows_per_batch_max']:,} at most)")
    lines.append(f"  the GIL switch interval is {sys.getswitchinterval() * 1000:g} ms: a thread "
                 "waiting for the GIL behind a busy one can wait that long")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import core_has_debug_info, git_commit  # bench/run.py, next to this file

    debug = core_has_debug_info()
    env = {"commit": git_commit(), "rillet": rl.__version__, "core_debug_info": debug,
           "polars": pl.__version__, "python": platform.python_version(),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus"}
    print(f"latency: {args.rate:g} rows/s for {args.seconds:g} s, tumbling {args.window} by service, "
          f"watermark {args.delay}, tail poll {args.poll}, writer tick {args.tick:g} ms")
    if debug:
        print("WARNING: rillet's native module is a debug build; these latencies are not representative.")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rillet-latency-") as folder:
        for mode in args.modes:
            print(f"running {mode} ...", flush=True)
            trace = run_file(args, Path(folder)) if mode == "file" else run_engine(args)
            rows.append(summarize(trace, args))

    head = (f"{'mode':7} {'events/s':>9} {'windows':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
            f"{'max ms':>7} {'read p99':>8} {'engine p99':>10} {'rows/batch':>10}")
    print()
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['mode']:7} {r['events_per_s']:>9,} {r['windows']:>7} {r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} "
              f"{r['p99_ms']:>7.2f} {r['max_ms']:>7.2f} {r['read_p99_ms']:>8.2f} {r['engine_p99_ms']:>10.2f} "
              f"{r['rows_per_batch_mean']:>10g}")
    print()
    print("latency = result visible to the consumer - watermark passed (the write of the first row "
          f"at or past window end + {args.delay}); read = up to the engine, engine = the rest. "
          "Percentiles are nearest-rank: with under 100 windows p99 is the largest or next to it.")
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    met = True
    for r in rows:
        for line in verdict(r, args):
            print(line)
        met = met and bool(r["windows"]) and r["p99_ms"] <= GOAL_MS
        line = {"time": stamp, **r, "rate": args.rate, "seconds": args.seconds,
                "poll": args.poll if r["mode"] == "file" else None, "delay": args.delay,
                "window": args.window, "tick_ms": args.tick, "goal_ms": GOAL_MS,
                "met": bool(r["windows"]) and r["p99_ms"] <= GOAL_MS, **env}
        with open(args.out, "a") as f:
            f.write(json.dumps(line) + "\n")
    print(f"\nappended to {args.out}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
