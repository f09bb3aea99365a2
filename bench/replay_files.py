#!/usr/bin/env python3
"""File replay throughput: rillet's JSON Lines and Parquet readers (parse only, and a K1 query
on top) against polars' readers on the same files, in the same run.

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
    parquet = args.data_dir / f"events_{args.events}_jsonl.parquet"
    if not parquet.exists():
        pl.read_ndjson(jsonl).write_parquet(parquet, row_group_size=65_536)
    n = args.events

    def parse(source) -> None:
        for _ in source.chunks():
            pass

    def k1(source) -> None:
        (rl.stream(source, time="event_time", watermark="5s")
         .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness="15m")
         .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"))
         .collect(progress=False))

    groups = [
        (f"{jsonl.stat().st_size / 2**20:,.0f} MiB of JSON Lines", [
            ("rillet read_jsonl (parse)", lambda: parse(rl.read_jsonl(str(jsonl)))),
            ("rillet read_jsonl + K1", lambda: k1(rl.read_jsonl(str(jsonl)))),
            ("polars read_ndjson", lambda: pl.read_ndjson(jsonl)),
        ]),
        (f"{parquet.stat().st_size / 2**20:,.0f} MiB of Parquet (zstd)", [
            ("rillet read_parquet (parse)", lambda: parse(rl.read_parquet(str(parquet)))),
            ("rillet read_parquet + K1", lambda: k1(rl.read_parquet(str(parquet)))),
            ("polars read_parquet", lambda: pl.read_parquet(parquet)),
        ]),
    ]
    for title, cases in groups:
        rows = [(name, best_of(args.runs, fn)) for name, fn in cases]
        ref = rows[-1][1]
        print(f"{n:,} events, {title}")
        print(f"{'reader':28} {'events/s':>12} {'ratio to polars':>16}")
        for name, secs in rows:
            print(f"{name:28} {n / secs:>12,.0f} {ref / secs:>16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
