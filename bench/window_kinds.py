#!/usr/bin/env python3
"""What each window kind costs per row: the benchmark workload through every window kind of
rillet, with the same key and aggregates, and DuckDB's K3 (sessions) in the same run.

    python bench/window_kinds.py --events 1000000 [--runs 3]

Every query keys by `event_source` and computes count and max(latency_ms), with a watermark
of 5 s and 15 minutes of lateness (so no row is late; the workload's worst delay). Prints
events/s and nanoseconds per row for each kind.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ensure_parquet  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    ap.add_argument("--workload-dir", default=None)
    args = ap.parse_args()
    import os

    workload = Path(args.workload_dir or os.environ.get("RILLET_BENCH_WORKLOAD", HERE.parent.parent / "shared" / "bench"))
    args.workload_dir = workload
    sys.path.insert(0, str(workload / "peers"))
    import polars as pl

    import rillet as rl

    path = ensure_parquet(args)
    df = pl.read_parquet(path).rechunk()
    kinds = {
        "tumbling 1m": rl.tumbling("1m"),
        "hopping 5m/1m": rl.hopping("5m", "1m"),
        "cumulative 1h/1m": rl.cumulative("1h", "1m"),
        "calendar 1d (Paris)": rl.tumbling("1d", tz="Europe/Paris"),
        "calendar 1h (Kolkata)": rl.tumbling("1h", tz="Asia/Kolkata"),
        "session 30s": rl.session("30s"),
        "sliding 1m": rl.sliding("1m"),
    }
    print(f"{args.events:,} events, key event_source, aggregates count + max(latency_ms)")
    print(f"{'window':24} {'events/s':>12} {'ns/row':>8} {'rows out':>10}")
    for name, spec in kinds.items():
        q = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(spec, by="event_source", lateness="15m")
            .agg(rl.count(), rl.max("latency_ms"))
        )
        times, out = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            out = q.collect(progress=False)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{name:24} {df.height / med:>12,.0f} {med / df.height * 1e9:>8.0f} {out.height:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
