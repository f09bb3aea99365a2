#!/usr/bin/env python3
"""File replay throughput: rillet's JSON Lines reader (parse only, and a K1 query on top)
against polars' reader on the same file, in the same run.

    python bench/replay_files.py --events 1000000
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

import rillet as rl

HERE = Path(__file__).resolve().parent


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    args = ap.parse_args()
    workload = Path(os.environ.get("RILLET_BENCH_WORKLOAD", HERE.parent.parent / "shared" / "bench"))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    jsonl = args.data_dir / f"events_{args.events}.jsonl"
    if not jsonl.exists():
        pq = args.data_dir / f"events_{args.events}_jsonl.parquet"
        subprocess.run([sys.executable, str(workload / "gen_events.py"), "--events", str(args.events),
                        "--seed", "42", "--out", str(pq), "--jsonl", str(jsonl)], check=True)
    n = args.events

    def parse_rillet() -> None:
        for _ in rl.read_jsonl(str(jsonl)).chunks():
            pass

    def k1_rillet() -> None:
        (rl.stream(rl.read_jsonl(str(jsonl)), time="event_time", watermark="5s")
         .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness="15m")
         .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"))
         .collect(progress=False))

    def parse_polars() -> None:
        pl.read_ndjson(jsonl)

    rows = [
        ("rillet read_jsonl (parse)", best_of(args.runs, parse_rillet)),
        ("rillet read_jsonl + K1", best_of(args.runs, k1_rillet)),
        ("polars read_ndjson", best_of(args.runs, parse_polars)),
    ]
    ref = rows[2][1]
    print(f"{n:,} events, {jsonl.stat().st_size / 2**20:,.0f} MiB of JSON Lines")
    print(f"{'reader':28} {'events/s':>12} {'ratio to polars':>16}")
    for name, secs in rows:
        print(f"{name:28} {n / secs:>12,.0f} {ref / secs:>16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
