#!/usr/bin/env python3
"""Nexmark on rillet: events/s per core for each query, next to DuckDB's batch time on the
same events and the published per-core figures of Flink, Feldera and DBSP.

    python bench/nexmark.py --events 10000000 [--runs 3] [--threads 1,2] [--queries q0,q1,...]

The events come from ``rl.nexmark(events=N)`` (seed 0, the default base time, 10,000 events
per second of event time). They are generated once per thread count, before timing, into
DataFrames in memory: the figures are the engine's, not the generator's (whose own rate is
printed). Each query is bench/nexmark_queries.py's: its ``build`` (rillet's Python API; its
SQL form where Python cannot say it) is run with ``.collect()``, and its ``oracle`` (DuckDB SQL
over the same frames, registered as tables people, auctions and bids) with ``SET threads``. The two results are checked equal
before timing. Runs are interleaved; the median is reported.

Events/s counts all N generated events (people, auctions and bids), as Nexmark reports: a
query that reads bids only still receives the generator's one stream in Flink. Per core is
events/s divided by the threads. The published figures (events/s per core) are those of
../shared/research/peers.md section 4: Flink (the Nexmark repository's V1 example table),
Feldera (its 16-core run, divided by 16) and DBSP (a laptop, 8 cores).

Each thread count runs in its own process (polars reads POLARS_MAX_THREADS when it is
imported). One JSON line per query and thread count is appended to bench/results/nexmark.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: Published events/s per core (peers.md section 4): Flink V1, Feldera (16 cores / 16), DBSP.
PUBLISHED: dict[str, tuple[int | None, int | None, int | None]] = {
    "q0": (155_000, 436_000, 936_000), "q1": (158_000, 412_000, 856_000), "q2": (175_000, 422_000, 874_000),
    "q3": (152_000, 413_000, 804_000), "q4": (34_000, 265_000, 738_000), "q5": (22_000, 412_000, 868_000),
    "q6": (None, None, 747_000), "q7": (12_000, 196_000, None), "q8": (146_000, 415_000, None),
    "q9": (14_000, 57_000, None), "q11": (40_000, None, None), "q12": (76_000, 418_000, None),
    "q15": (72_000, 221_000, None), "q16": (19_000, 51_000, None), "q17": (117_000, 242_000, None),
    "q18": (54_000, 85_000, None), "q19": (44_000, 75_000, None), "q20": (19_000, 85_000, None),
    "q21": (None, None, 430_000), "q22": (130_000, 394_000, 340_000),
}
#: The issue's goal: at least this many events/s per core on these queries.
MILLION = ("q0", "q1", "q2", "q5", "q7", "q8", "q11", "q12")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="thread counts, each run in its own process")
    ap.add_argument("--queries", default="", help="comma-separated names (default: every expressible one)")
    ap.add_argument("--no-check", action="store_true", help="skip checking each result against DuckDB")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return ap.parse_args()


def timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def worker(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One thread count: generate, check, time; returns one record per query."""
    threads = int(args.threads)
    import polars as pl

    import rillet as rl

    sys.path.insert(0, str(HERE))
    import nexmark_queries as nq

    rl.set_threads(threads)
    nx = rl.nexmark(events=args.events)
    gen_s, frames = timed(lambda: {k: getattr(nx, k).collect() for k in ("people", "auctions", "bids")})
    print(f"[{threads} thread(s)] generated {args.events:,} events in {gen_s:.2f} s "
          f"({args.events / gen_s / 1e6:.2f}M events/s): " +
          ", ".join(f"{k} {v.height:,}" for k, v in frames.items()), flush=True)
    con = nq.connect(frames["people"], frames["auctions"], frames["bids"], threads)
    names = [n for n in args.queries.split(",") if n] or list(nq.QUERIES)
    records = []
    for name in names:
        q = nq.QUERIES[name]
        make = q.build if q.build is not None else q.sql
        if make is None:
            records.append({"query": name, "threads": threads, "skipped": q.not_expressible})
            continue

        def ours(make: Any = make) -> pl.DataFrame:
            return make(frames["people"], frames["auctions"], frames["bids"]).collect(progress=False)

        def theirs(q: Any = q) -> pl.DataFrame:
            return nq.answer(con, q)

        if not args.no_check and q.oracle is not None:
            nq.check(q, ours(), theirs())
        times: dict[str, list[float]] = {"rillet": [], "duckdb": []}
        for _ in range(args.runs):
            times["rillet"].append(timed(ours)[0])
            if q.oracle is not None:
                times["duckdb"].append(timed(theirs)[0])
        ours_s = statistics.median(times["rillet"])
        theirs_s = statistics.median(times["duckdb"]) if times["duckdb"] else None
        rec = {"query": name, "threads": threads, "events": args.events,
               "rillet_s": ours_s, "rillet_eps": args.events / ours_s,
               "rillet_eps_per_core": args.events / ours_s / threads,
               "duckdb_s": theirs_s, "vs_duckdb": None if theirs_s is None else theirs_s / ours_s,
               "runs": {k: [round(x, 4) for x in v] for k, v in times.items()},
               "form": "python" if q.build is not None else "sql",
               "generate_s": gen_s, "checked": not args.no_check and q.oracle is not None}
        print(f"  {name:>4}: rillet {ours_s:7.3f} s ({rec['rillet_eps_per_core'] / 1e6:6.2f}M ev/s/core)"
              + ("" if theirs_s is None else f"   DuckDB {theirs_s:7.3f} s   ratio {theirs_s / ours_s:5.2f}x"),
              flush=True)
        records.append(rec)
    return records


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1e3:.0f}K"


def main() -> None:
    args = parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)), flush=True)
        return
    results: list[dict[str, Any]] = []
    for threads in [int(t) for t in args.threads.split(",")]:
        cmd = [sys.executable, __file__, "--worker", "--events", str(args.events), "--runs", str(args.runs),
               "--threads", str(threads), "--queries", args.queries] + (["--no-check"] if args.no_check else [])
        env = dict(os.environ, POLARS_MAX_THREADS=str(threads))
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                results.extend(json.loads(line[len("RESULT "):]))
            else:
                print(line)
    out = HERE / "results" / "nexmark.jsonl"
    out.parent.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with out.open("a") as f:
        for r in results:
            f.write(json.dumps({"at": stamp, **r}) + "\n")
    by = {(r["query"], r["threads"]): r for r in results}
    counts = sorted({r["threads"] for r in results})
    head = ["query"] + [f"rillet {t}T ev/s/core" for t in counts] + [f"vs DuckDB {t}T" for t in counts]
    head += ["Flink/core", "Feldera/core", "DBSP/core", "rillet 1T / Flink"]
    print("\n| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for name in dict.fromkeys(r["query"] for r in results):
        rows = [by.get((name, t), {}) for t in counts]
        if any("skipped" in r for r in rows):
            print(f"| {name} | not expressible: {rows[0]['skipped']} |")
            continue
        flink, feldera, dbsp = PUBLISHED.get(name, (None, None, None))
        first = rows[0].get("rillet_eps_per_core")
        cells = [name] + [fmt_rate(r.get("rillet_eps_per_core")) for r in rows]
        cells += ["-" if r.get("vs_duckdb") is None else f"{r['vs_duckdb']:.2f}x" for r in rows]
        cells += [fmt_rate(flink), fmt_rate(feldera), fmt_rate(dbsp),
                  "-" if flink is None or first is None else f"{first / flink:.0f}x"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
