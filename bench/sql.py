#!/usr/bin/env python3
"""What SQL costs: the benchmark workload's K1-K5 written in SQL against the same queries
built with the Python API, in one process, on the same in-memory DataFrame.

    python bench/sql.py --events 10000000 [--runs 3] [--threads 1]

Both sides run the same plan (watermark 5 s, no allowed lateness, so the ~2% of rows that
arrive later are late on both sides) to the same rows (K4's top-K lists are flattened into
one row per item on the Python side, as TOP_K_ITEMS_TUMBLING gives them), and their outputs
are checked equal before timing. The two sides' runs alternate, so drift in the machine's
speed hits both alike.
Printed per query: events/s of each side (median of --runs) and SQL's throughput as a
fraction of Python's (the goal is >= 0.95). DuckDB's time for the batch equivalent (K1-K5
of peers/duckdb_batch.py, same threads) and polars' (peers/polars_batch.py, dt.truncate +
group_by, polars' own thread pool) are printed next to them as the usual yardsticks.
One JSON line per query is appended to bench/results/sql.jsonl.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402  (bench/run.py: the workload's cache and loader)

FROM = "FROM TABLE({tvf}(TABLE events, DESCRIPTOR(event_time), {args}))"

#: K1-K5 in SQL (Flink's window functions) and with the Python API.
SQL = {
    "K1": """SELECT event_source, event_name, window_start, window_end, COUNT(*) AS count,
                    SUM(bytes) AS sum_bytes, AVG(latency_ms) AS mean_latency_ms,
                    MAX(latency_ms) AS max_latency_ms
             """ + FROM.format(tvf="TUMBLE", args="INTERVAL '1' MINUTE") + """
             GROUP BY window_start, window_end, event_source, event_name""",
    "K2": """SELECT user, window_start, window_end, COUNT(*) AS count,
                    COUNT(*) FILTER (WHERE error_code IS NOT NULL) AS errors
             """ + FROM.format(tvf="HOP", args="INTERVAL '1' MINUTE, INTERVAL '5' MINUTE") + """
             GROUP BY window_start, window_end, user""",
    "K3": """SELECT source_ip, window_start, window_end, COUNT(*) AS count
             FROM TABLE(SESSION(TABLE events PARTITION BY source_ip, DESCRIPTOR(event_time),
                                INTERVAL '30' SECOND))
             GROUP BY window_start, window_end, source_ip""",
    "K4": """SELECT STREAM * FROM TABLE(TOP_K_ITEMS_TUMBLING(
                 CURSOR(SELECT STREAM * FROM events), 'event_name', 10, 60))""",
    "K5": """SELECT event_source, window_start, window_end, COUNT(DISTINCT user) AS count
             """ + FROM.format(tvf="TUMBLE", args="INTERVAL '1' MINUTE") + """
             GROUP BY window_start, window_end, event_source""",
}


def python_queries(stream: Any) -> dict[str, Any]:
    import polars as pl

    import rillet as rl

    return {
        "K1": stream.window(rl.tumbling("1m"), by=["event_source", "event_name"]).agg(
            rl.count(), rl.sum("bytes").alias("sum_bytes"),
            rl.mean("latency_ms").alias("mean_latency_ms"), rl.max("latency_ms").alias("max_latency_ms")),
        "K2": stream.window(rl.hopping("5m", "1m"), by="user").agg(
            rl.count(), rl.count(where=pl.col("error_code").is_not_null()).alias("errors")),
        "K3": stream.window(rl.session("30s"), by="source_ip").agg(rl.count()),
        "K4": stream.window(rl.tumbling("1m")).agg(rl.top_k("event_name", 10).alias("top")),
        "K5": stream.window(rl.tumbling("1m"), by="event_source").agg(
            rl.count_distinct("user").alias("count")),
    }


def as_rows(query: str, out: Any) -> Any:
    """K4's Python output (a list per window) as SQL's rows (one per item); others as they are."""
    import polars as pl

    if query != "K4":
        return out
    return (out.explode("top").filter(pl.col("top").is_not_null())
            .select(pl.col("top").struct.field("value").alias("event_name"),
                    pl.col("top").struct.field("count").alias("MOST_FREQUENT_VALUES")))


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--queries", default="K1,K2,K3,K4,K5")
    ap.add_argument("--workload-dir", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    args = ap.parse_args()
    import polars as pl

    import rillet as rl

    sys.path.insert(0, str(args.workload_dir / "peers"))
    import duckdb_batch  # the peers' DuckDB queries
    import polars_batch  # the peers' polars queries (dt.truncate + group_by)

    path = bench.ensure_parquet(args)
    df = pl.read_parquet(path)
    rl.set_threads(args.threads)
    stream = rl.stream(df, time="event_time", watermark="5s")
    built = python_queries(stream)
    con = duckdb_batch.prepare(df.to_arrow(), SimpleNamespace(threads=args.threads))
    duck = {"K1": duckdb_batch.k1, "K2": duckdb_batch.k2, "K3": duckdb_batch.k3,
            "K4": duckdb_batch.k4, "K5": duckdb_batch.k5}
    polars_batch.STYLE = "truncate"
    batch = {"K1": polars_batch.k1, "K2": polars_batch.k2, "K3": polars_batch.k3,
             "K4": polars_batch.k4, "K5": polars_batch.k5}
    print(f"{args.events:,} events, {args.threads} thread(s), median of {args.runs} runs, rillet {rl.__version__}")
    print(f"{'query':6} {'python ev/s':>14} {'sql ev/s':>14} {'sql/python':>11} {'duckdb ev/s':>14} "
          f"{'sql/duckdb':>11} {'polars ev/s':>14} {'sql/polars':>11}")
    results = ROOT / "bench" / "results" / "sql.jsonl"
    for name in [q.strip() for q in args.queries.split(",") if q.strip()]:
        sql_query = rl.sql(SQL[name], events=stream)
        py_query = built[name]
        expected = as_rows(name, py_query.collect(progress=False))
        got = sql_query.collect(progress=False)
        if not got.select(expected.columns).equals(expected):
            raise SystemExit(f"{name}: the SQL query's output differs from the Python API's")
        # Interleaved, so drift in the machine's speed hits both sides alike.
        py_t, sql_t = [], []
        for _ in range(args.runs):
            # Both sides to the same rows (K4's lists flattened on the Python side).
            py_t.append(timed(lambda q=py_query, k=name: as_rows(k, q.run(progress=False).output), 1)[0])
            sql_t.append(timed(lambda q=sql_query: q.run(progress=False).output, 1)[0])
        py_s, sql_s = statistics.median(py_t), statistics.median(sql_t)
        duck_s, _ = timed(lambda f=duck[name]: f(con), args.runs)
        polars_s, _ = timed(lambda f=batch[name]: f(df), args.runs)
        n = df.height
        print(f"{name:6} {n / py_s:14,.0f} {n / sql_s:14,.0f} {py_s / sql_s:11.3f} {n / duck_s:14,.0f} "
              f"{duck_s / sql_s:11.3f} {n / polars_s:14,.0f} {polars_s / sql_s:11.3f}")
        results.parent.mkdir(parents=True, exist_ok=True)
        with results.open("a") as f:
            f.write(json.dumps({"query": name, "events": n, "threads": args.threads,
                                "python_s": py_s, "sql_s": sql_s, "ratio": py_s / sql_s,
                                "duckdb_s": duck_s, "polars_s": polars_s,
                                "commit": bench.git_commit()}) + "\n")


if __name__ == "__main__":
    main()
