#!/usr/bin/env python3
"""What checkpoints cost, on the benchmark workload (../shared/bench/WORKLOAD.md).

    python bench/durability.py --events 10000000 [--runs 7] [--queries K1,K2,K3,K4,K5]

Each query of bench/run.py runs on the same in-memory DataFrame three ways, interleaved run by
run (the machine's noise falls on all three alike):
  plain        ``.run()``;
  every 1s     ``.run(checkpoint=..., checkpoint_every="1s")``: a checkpoint each second of
               wall-clock time (at the next boundary between micro-batches; a DataFrame is
               replayed in slices of 2**20 rows), and a last one when the input ends;
  every 1M     ``.run(checkpoint=..., checkpoint_every=1_000_000)``: a checkpoint after each
               slice, to show the cost of one checkpoint of each query's state.
Every checkpointed run writes to a new directory (on the same file system as the workload
cache), so none resumes another. Each result is checked equal to the plain run's. Printed per
query: events/s (median), the ratio to plain, checkpoints taken, the largest checkpoint file
(the state of open windows and where the source is), the rows kept in segments (the output),
and the mean time a checkpoint took. One JSON line per measurement is appended to
bench/results/durability.jsonl.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402  (bench/run.py: the workload's cache, loader and queries)

MODES = {"plain": None, "every 1s": "1s", "every 1M": 1_000_000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--queries", default="K1,K2,K3,K4,K5")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    args = bench.parse_args(["--events", str(a.events)])
    sys.path.insert(0, str(args.workload_dir / "peers"))  # the peers' common.py: normalized()
    import polars as pl

    import rillet as rl

    df = pl.read_parquet(bench.ensure_parquet(args))
    scratch = Path(tempfile.mkdtemp(prefix="rillet-durability-", dir=args.data_dir))
    made = 0

    def fresh(every: Any) -> dict:
        nonlocal made
        if every is None:
            return {}
        made += 1
        return {"checkpoint": scratch / f"ck{made}", "checkpoint_every": every}

    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    out = open(results / "durability.jsonl", "a")
    print(f"{a.events:,} events, {a.runs} runs each, threads={a.threads}, rillet {rl.__version__}, "
          f"commit {bench.git_commit()}")
    print(f"{'query':6} {'mode':9} {'events/s':>12} {'x plain':>8} {'chk':>4} {'largest chk':>12} "
          f"{'kept rows':>10} {'per chk':>9}")
    try:
        every_now: dict[str, Any] = {"every": None}  # the mode being timed
        queries = bench.rillet_queries(df, lambda: fresh(every_now["every"]))
        for q in [q.strip().upper() for q in a.queries.split(",") if q.strip()]:
            times: dict[str, list[float]] = {m: [] for m in MODES}
            facts: dict[str, dict] = {}
            reference = None
            for _ in range(a.runs):
                for mode, every in MODES.items():
                    every_now["every"] = every
                    rl.set_threads(a.threads)
                    t0 = time.perf_counter()
                    result, fact = queries[q]()
                    times[mode].append(time.perf_counter() - t0)
                    facts[mode] = fact
                    if mode == "plain":
                        reference = bench.normalized(result)
                    elif not bench.normalized(result).equals(reference):
                        raise SystemExit(f"{q} {mode}: the result differs from the plain run's")
                    del result
                    for d in scratch.iterdir():  # the checkpoints of finished runs: not needed
                        shutil.rmtree(d, ignore_errors=True)
            plain = statistics.median(times["plain"])
            for mode in MODES:
                med = statistics.median(times[mode])
                f = facts[mode]
                n = f.get("checkpoints", 0)
                per = f.get("checkpoint_seconds", 0.0) / n if n else 0.0
                rec = {"query": q, "mode": mode, "events": a.events, "runs": a.runs, "threads": a.threads,
                       "events_per_s": round(a.events / med), "ratio_to_plain": round(plain / med, 4),
                       "wall_s": [round(t, 4) for t in times[mode]], **f, "commit": bench.git_commit()}
                out.write(json.dumps(rec) + "\n")
                print(f"{q:6} {mode:9} {a.events / med:12,.0f} {plain / med:8.3f} {n:4} "
                      f"{f.get('checkpoint_bytes_max', 0) / 2**20:10.2f}Mi "
                      f"{f.get('checkpoint_segment_bytes', 0) / 2**20:8.2f}Mi {per * 1000:7.1f}ms")
    finally:
        out.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
