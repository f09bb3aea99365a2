#!/usr/bin/env python3
"""K1 end to end from files: rillet's readers against DuckDB and polars reading the same file
and computing the same result, with the same number of threads.

    python bench/replay_k1.py --events 2000000 [--runs 5] [--threads 1] [--formats jsonl,csv,parquet]

The benchmark workload (../shared/bench/WORKLOAD.md) is written once as JSON Lines (by its
generator), CSV and Parquet (by polars, from the JSON Lines), cached beside bench/run.py's
data. Each engine then reads the file and computes K1 (tumbling 1 minute by event_source,
event_name: count, sum(bytes), mean and max of latency_ms):
  rillet   rl.stream(rl.read_<format>(file, columns=[the five K1 reads]), time="event_time")
           .window(...).agg(...)
           (every row counts: lateness 15 minutes, as bench/run.py runs K1);
  DuckDB   read_json / read_csv / read_parquet of the file in one GROUP BY (SET threads);
  polars   scan_ndjson / scan_csv / scan_parquet, group_by the truncated minute, collect
           (POLARS_MAX_THREADS, set before polars is imported).
The three results are checked equal (counts and sums exactly, means to 1e-9) before timing.
Runs are interleaved; each row is the median. Printed: events/s and the ratio of rillet's
to the best of DuckDB and polars (above 1: rillet is faster). One JSON line per format is
appended to bench/results/replay_k1.jsonl.
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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--formats", default="jsonl,csv,parquet")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    return ap.parse_args()


ARGS = parse_args()
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)  # before polars is imported

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

import rillet as rl  # noqa: E402

KEYS = ["event_source", "event_name"]
#: What K1 reads; rillet's readers are told (``columns=``), as DuckDB and polars work it out.
COLUMNS = ["event_time", *KEYS, "bytes", "latency_ms"]


def files(events: int, data_dir: Path) -> dict[str, Path]:
    """The workload as JSON Lines, CSV and Parquet (made once)."""
    workload = Path(os.environ.get("RILLET_BENCH_WORKLOAD", HERE.parent.parent / "shared" / "bench"))
    data_dir.mkdir(parents=True, exist_ok=True)
    jsonl = data_dir / f"events_{events}.jsonl"
    if not jsonl.exists():
        scratch = data_dir / f"events_{events}_gen.parquet"
        subprocess.run([sys.executable, str(workload / "gen_events.py"), "--events", str(events),
                        "--seed", "42", "--out", str(scratch), "--jsonl", str(jsonl)], check=True)
    out = {"jsonl": jsonl}
    frame = None
    for fmt in ("csv", "parquet"):
        path = data_dir / f"events_{events}_k1.{fmt}"
        if not path.exists():
            frame = pl.read_ndjson(jsonl) if frame is None else frame
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            if fmt == "csv":
                frame.write_csv(tmp)
            else:
                frame.write_parquet(tmp, row_group_size=65_536)
            os.replace(tmp, path)
        out[fmt] = path
    return out


def rillet_k1(fmt: str, path: Path) -> pl.DataFrame:
    reader = {"jsonl": rl.read_jsonl, "csv": rl.read_csv, "parquet": rl.read_parquet}[fmt]
    out = (rl.stream(reader(str(path), columns=COLUMNS), time="event_time", watermark="5s")
           .window(rl.tumbling("1m"), by=KEYS, lateness="15m")
           .agg(rl.count(), rl.sum("bytes").alias("sum_bytes"), rl.mean("latency_ms").alias("mean_latency_ms"),
                rl.max("latency_ms").alias("max_latency_ms"))
           .collect(progress=False))
    return out.select(pl.col("window_start").dt.epoch("us").alias("minute_us"), *KEYS, "count", "sum_bytes",
                      "mean_latency_ms", "max_latency_ms")


def duckdb_k1(con: Any, fmt: str, path: Path) -> pl.DataFrame:
    read = {"jsonl": f"read_json('{path}', format='newline_delimited')", "csv": f"read_csv('{path}')",
            "parquet": f"read_parquet('{path}')"}[fmt]
    minute = "epoch_us(CAST(event_time AS TIMESTAMPTZ)) // 60000000 * 60000000"
    return con.sql(f"""
        SELECT {minute} AS minute_us, event_source, event_name, count(*) AS count, sum(bytes) AS sum_bytes,
               avg(latency_ms) AS mean_latency_ms, max(latency_ms) AS max_latency_ms
        FROM {read} GROUP BY ALL""").pl()


def polars_k1(fmt: str, path: Path) -> pl.DataFrame:
    if fmt == "jsonl":
        lf = pl.scan_ndjson(path)
    elif fmt == "csv":
        lf = pl.scan_csv(path, try_parse_dates=True)
    else:
        lf = pl.scan_parquet(path)
    t = pl.col("event_time")
    return (lf.with_columns(t.str.to_datetime(time_unit="us", time_zone="UTC") if lf.collect_schema()["event_time"] == pl.String
                            else t.dt.cast_time_unit("us"))
            .group_by((t.dt.truncate("1m").dt.epoch("us")).alias("minute_us"), *KEYS)
            .agg(pl.len().alias("count"), pl.col("bytes").sum().alias("sum_bytes"),
                 pl.col("latency_ms").mean().alias("mean_latency_ms"),
                 pl.col("latency_ms").max().alias("max_latency_ms"))
            .collect())


def same(a: pl.DataFrame, b: pl.DataFrame) -> str | None:
    """None when the two results agree (counts and sums exactly, means to 1e-9), else why not."""
    cols = ["minute_us", *KEYS]
    a = a.with_columns(pl.col("count", "sum_bytes").cast(pl.Int64), pl.col("max_latency_ms").cast(pl.Float64)).sort(cols)
    b = b.with_columns(pl.col("count", "sum_bytes").cast(pl.Int64), pl.col("max_latency_ms").cast(pl.Float64)).sort(cols)
    if a.height != b.height:
        return f"{a.height} rows against {b.height}"
    for c in (*cols, "count", "sum_bytes", "max_latency_ms"):
        if not a[c].cast(b[c].dtype).equals(b[c]):
            return f"column {c} differs"
    worst = ((a["mean_latency_ms"] - b["mean_latency_ms"]).abs() / b["mean_latency_ms"].abs().clip(1e-12)).max()
    return None if worst is None or worst <= 1e-9 else f"mean_latency_ms differs by {worst:.2e}"


def main() -> int:
    rl.set_threads(ARGS.threads)
    con = duckdb.connect()
    con.execute(f"SET threads = {ARGS.threads}")
    paths = files(ARGS.events, ARGS.data_dir)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    print(f"{ARGS.events:,} events, K1 end to end, threads={ARGS.threads}, {ARGS.runs} runs each (median)")
    print(f"{'format':8} {'MiB':>7} {'rillet ev/s':>12} {'DuckDB ev/s':>12} {'polars ev/s':>12} {'x best':>7}")
    for fmt in [f.strip() for f in ARGS.formats.split(",") if f.strip()]:
        path = paths[fmt]
        engines = {"rillet": lambda f=fmt, p=path: rillet_k1(f, p),
                   "duckdb": lambda f=fmt, p=path: duckdb_k1(con, f, p),
                   "polars": lambda f=fmt, p=path: polars_k1(f, p)}
        first = {name: fn() for name, fn in engines.items()}
        for name in ("duckdb", "polars"):
            why = same(first["rillet"], first[name])
            if why is not None:
                raise SystemExit(f"{fmt}: rillet's K1 and {name}'s differ: {why}")
        times: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(ARGS.runs):
            for name, fn in engines.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        rate = {name: ARGS.events / statistics.median(ts) for name, ts in times.items()}
        best = max(rate["duckdb"], rate["polars"])
        print(f"{fmt:8} {path.stat().st_size / 2**20:7,.0f} {rate['rillet']:12,.0f} {rate['duckdb']:12,.0f} "
              f"{rate['polars']:12,.0f} {rate['rillet'] / best:7.2f}")
        with open(results / "replay_k1.jsonl", "a") as out:
            out.write(json.dumps({"format": fmt, "events": ARGS.events, "threads": ARGS.threads, "runs": ARGS.runs,
                                  "events_per_s": {k: round(v) for k, v in rate.items()},
                                  "ratio_to_best": round(rate["rillet"] / best, 4), "rillet": rl.__version__}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
