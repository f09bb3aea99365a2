#!/usr/bin/env python3
"""What joins cost, on the benchmark workload (../shared/bench/WORKLOAD.md).

    python bench/joins.py --events 10000000 [--runs 3] [--threads 1] [--parts enrich]

enrich: stream-table enrichment. A 5,000-row table maps each user of the workload to one of
50 teams. Timed in one process on the same in-memory DataFrame, runs interleaved:
  K1              the workload's K1 (tumbling 1 minute by event_source, event_name), as
                  bench/run.py runs it;
  K1+join         the same query after .join(teams, on="user") (the team column added to
                  every row, the aggregation unchanged): the join's cost; the goal is
                  >= 0.8x K1's events/s;
  team/min        .join(teams, on="user") then tumbling 1 minute by team, event_source:
                  count and sum(bytes), next to DuckDB (JOIN ... GROUP BY) and polars
                  (join + dt.truncate + group_by) computing the same result from the same
                  DataFrame with the same threads; outputs checked equal before timing.
interval: a stream-stream interval join. The workload is split in two streams: the failed
calls (error_code set, about 3%) and the others. Each failed call is joined with the other
calls of the same user from the same IP in the 10 seconds after it
(`failed.join_interval(ok, on=["user", "source_ip"], lower="0s", upper="10s")`), and the
pairs are counted per minute of the failed call. Both streams have a 15-minute watermark
delay, so no row is late and the result equals DuckDB's batch range join over the same rows
(JOIN ... ON keys AND r.t BETWEEN l.t AND l.t + 10 s, GROUP BY minute), which is timed next
to it with the same threads; the counts are checked equal before timing.
One JSON line per measurement is appended to bench/results/joins.jsonl.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import run as bench  # noqa: E402  (bench/run.py: the workload's cache and loader)

TEAMS = 50
#: As bench/run.py: every row of K1 counts (the workload's rows arrive at most 15 minutes late).
LATENESS = "15m"


def teams_table(df: Any) -> Any:
    """The 5,000 users of the workload, each in one of TEAMS teams (by a hash of the name)."""
    import polars as pl

    users = df.select(pl.col("user").unique().sort())
    return users.with_columns(team=pl.format("team-{}", (pl.col("user").hash(7) % TEAMS).cast(pl.Int64)))


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def record(row: dict[str, Any]) -> None:
    results = ROOT / "bench" / "results" / "joins.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a") as f:
        f.write(json.dumps({**row, "commit": bench.git_commit()}) + "\n")


def enrich(df: Any, args: argparse.Namespace) -> None:
    import duckdb
    import polars as pl

    import rillet as rl

    teams = teams_table(df)
    stream = rl.stream(df, time="event_time", watermark="5s")
    k1_aggs = (rl.count(), rl.sum("bytes").alias("sum_bytes"), rl.mean("latency_ms").alias("mean_latency_ms"),
               rl.max("latency_ms").alias("max_latency_ms"))
    k1 = stream.window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness=LATENESS).agg(*k1_aggs)
    k1_join = (stream.join(teams, on="user")
               .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness=LATENESS).agg(*k1_aggs))
    per_team = (stream.join(teams, on="user")
                .window(rl.tumbling("1m"), by=["team", "event_source"], lateness=LATENESS)
                .agg(rl.count(), rl.sum("bytes").alias("sum_bytes")))

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.register("arrow_events", df.to_arrow())
    con.execute("CREATE TABLE events AS SELECT * FROM arrow_events")
    con.register("arrow_teams", teams.to_arrow())
    con.execute("CREATE TABLE teams AS SELECT * FROM arrow_teams")

    def duck() -> Any:
        return con.sql("""
            SELECT team, event_source, time_bucket(INTERVAL 1 MINUTE, event_time) AS window_start,
                   count(*) AS count, sum(bytes) AS sum_bytes
            FROM events LEFT JOIN teams USING ("user") GROUP BY ALL""").to_arrow_table()

    def polars() -> Any:
        return (df.join(teams, on="user", how="left")
                .group_by("team", "event_source", pl.col("event_time").dt.truncate("1m").alias("window_start"))
                .agg(pl.len().alias("count"), pl.col("bytes").sum().alias("sum_bytes")))

    # Outputs checked before timing: K1 with and without the join, and the per-team counts
    # against both peers.
    base = k1.collect(progress=False)
    joined = k1_join.collect(progress=False)
    if not joined.equals(base):
        raise SystemExit("K1 after the join differs from K1")
    got = per_team.collect(progress=False).select("team", "event_source", "window_start", "count", "sum_bytes")
    order = ["team", "event_source", "window_start"]
    for name, fn in (("duckdb", duck), ("polars", polars)):
        ref = pl.DataFrame(fn()).with_columns(pl.col("window_start").cast(got.schema["window_start"]),
                                pl.col("count").cast(pl.Int64), pl.col("sum_bytes").cast(pl.Int64))
        if not got.sort(order).equals(ref.select(got.columns).sort(order)):
            raise SystemExit(f"the per-team counts differ from {name}'s")
    n = df.height
    times: dict[str, list[float]] = {"K1": [], "K1+join": [], "team/min": [], "duckdb": [], "polars": []}
    for _ in range(args.runs):  # interleaved, so drift in the machine's speed hits all alike
        times["K1"].append(timed(lambda: k1.run(progress=False)))
        times["K1+join"].append(timed(lambda: k1_join.run(progress=False)))
        times["team/min"].append(timed(lambda: per_team.run(progress=False)))
        times["duckdb"].append(timed(duck))
        times["polars"].append(timed(polars))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"enrich: {n:,} events, a {teams.height:,}-row table of {TEAMS} teams, {args.threads} thread(s), "
          f"median of {args.runs} runs")
    print(f"  {'K1':14} {n / med['K1']:14,.0f} ev/s")
    print(f"  {'K1+join':14} {n / med['K1+join']:14,.0f} ev/s   {med['K1'] / med['K1+join']:.3f}x K1 (goal >= 0.8)")
    print(f"  {'team/min':14} {n / med['team/min']:14,.0f} ev/s   "
          f"{med['duckdb'] / med['team/min']:.3f}x DuckDB ({n / med['duckdb']:,.0f} ev/s), "
          f"{med['polars'] / med['team/min']:.3f}x polars ({n / med['polars']:,.0f} ev/s)")
    record({"part": "enrich", "events": n, "threads": args.threads, **{f"{k}_s": v for k, v in med.items()},
            "join_vs_k1": med["K1"] / med["K1+join"]})


def interval(df: Any, args: argparse.Namespace) -> None:
    import duckdb
    import polars as pl

    import rillet as rl

    failed = df.filter(pl.col("error_code").is_not_null())
    ok = df.filter(pl.col("error_code").is_null())
    keys = ["user", "source_ip"]

    def query() -> Any:
        left = rl.stream(failed, time="event_time", watermark=LATENESS)
        right = rl.stream(ok, time="event_time", watermark=LATENESS)
        return (left.join_interval(right, on=keys, lower="0s", upper="10s")
                .window(rl.tumbling("1m")).agg(rl.count()))

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    con.register("arrow_failed", failed.to_arrow())
    con.execute("CREATE TABLE failed AS SELECT * FROM arrow_failed")
    con.register("arrow_ok", ok.to_arrow())
    con.execute("CREATE TABLE ok AS SELECT * FROM arrow_ok")

    def duck() -> Any:
        return con.sql("""
            SELECT time_bucket(INTERVAL 1 MINUTE, l.event_time) AS window_start, count(*) AS count
            FROM failed l JOIN ok r ON l."user" = r."user" AND l.source_ip = r.source_ip
             AND r.event_time >= l.event_time AND r.event_time <= l.event_time + INTERVAL 10 SECOND
            GROUP BY ALL""").to_arrow_table()

    q = query()
    run = q.run(progress=False)
    got = run.output.select("window_start", "count").sort("window_start")
    ref = pl.DataFrame(duck()).with_columns(pl.col("window_start").cast(got.schema["window_start"]),
                                            pl.col("count").cast(pl.Int64)).sort("window_start")
    if not got.equals(ref):
        raise SystemExit("the interval join's counts differ from DuckDB's range join")
    pairs = int(got["count"].sum())
    n = df.height
    times: dict[str, list[float]] = {"rillet": [], "duckdb": []}
    for _ in range(args.runs):
        times["rillet"].append(timed(lambda: query().run(progress=False)))
        times["duckdb"].append(timed(duck))
    med = {k: statistics.median(v) for k, v in times.items()}
    state = run.metrics["join_state_bytes"]
    print(f"interval: {n:,} events ({failed.height:,} failed calls joined with {ok.height:,} others), "
          f"{pairs:,} pairs, {args.threads} thread(s), median of {args.runs} runs")
    print(f"  {'rillet':14} {n / med['rillet']:14,.0f} ev/s   {med['duckdb'] / med['rillet']:.3f}x DuckDB "
          f"({n / med['duckdb']:,.0f} ev/s); join state at the end {state / 2**20:.1f} MiB")
    record({"part": "interval", "events": n, "threads": args.threads, "pairs": pairs,
            **{f"{k}_s": v for k, v in med.items()}, "vs_duckdb": med["duckdb"] / med["rillet"]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--parts", default="enrich,interval", help="comma list from enrich, interval")
    ap.add_argument("--workload-dir", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    args = ap.parse_args()
    import polars as pl

    import rillet as rl

    df = pl.read_parquet(bench.ensure_parquet(args))
    rl.set_threads(args.threads)
    parts = {"enrich": enrich, "interval": interval}
    for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
        if part not in parts:
            raise SystemExit(f"--parts: unknown part {part!r}; expected some of {sorted(parts)}")
        parts[part](df, args)


if __name__ == "__main__":
    main()
