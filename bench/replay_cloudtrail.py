#!/usr/bin/env python3
"""CloudTrail end to end: calls and failures per minute by service and API, from CloudTrail's
S3 delivery layout (``.json.gz`` files, each ``{"Records": [...]}``), by rillet's
``read_cloudtrail``, DuckDB and polars reading the same files, with the same threads.

    python bench/replay_cloudtrail.py [--copies 350] [--per-file 1000] [--runs 3] [--threads 1]

The records are the real ones of ../shared/data/real/cloudtrail_invictus (2,900 records of
one account over 55 minutes, delivered out of order as CloudTrail does). They are written
``--copies`` times, copy k with every ``eventTime`` moved k hours later (``eventID`` made
unique), into ``AWSLogs/<account>/CloudTrail/us-east-1/YYYY/MM/DD/`` files of ``--per-file``
records each, gzipped, under /tmp/rillet-bench (made once). The default is 1,015,000 records
in 1,050 files, 54 MB compressed.

Each engine computes, per minute of ``eventTime``, ``eventSource`` and ``eventName``: the
number of calls and of failed calls (``errorCode`` set):
  rillet   rl.stream(rl.read_cloudtrail(dir), time="eventTime", watermark="5s")
           .window(rl.tumbling("1m"), by=[...], lateness="15m") (every record counts);
  DuckDB   read_json of the files with the four fields of Records, unnest, GROUP BY;
  polars   read_json of each file with the same four fields, explode, group_by.
The three results are checked equal before timing. Runs are interleaved; the median is
reported with the ratio of rillet's events/s to the best of the other two. One JSON line is
appended to bench/results/replay_cloudtrail.jsonl.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=350)
    ap.add_argument("--per-file", type=int, default=1_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/rillet-bench"))
    return ap.parse_args()


ARGS = parse_args()
os.environ["POLARS_MAX_THREADS"] = str(ARGS.threads)  # before polars is imported

import duckdb  # noqa: E402
import polars as pl  # noqa: E402

import rillet as rl  # noqa: E402

KEYS = ["eventSource", "eventName"]
FIELDS = {"eventTime": pl.String, "eventSource": pl.String, "eventName": pl.String, "errorCode": pl.String}


def layout(copies: int, per_file: int, data_dir: Path) -> tuple[Path, int]:
    """The records in CloudTrail's S3 layout (made once); the folder and the record count."""
    root = data_dir / f"cloudtrail_{copies}x{per_file}"
    records = [json.loads(line) for line in SOURCE.read_text().splitlines() if line.strip()]
    total = copies * len(records)
    if (root / "DONE").exists():
        return root, total
    folder = root / "AWSLogs" / "218007301253" / "CloudTrail" / "us-east-1"
    n = 0
    for k in range(copies):
        batch = []
        for i, rec in enumerate(records):
            rec = dict(rec)
            t = dt.datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ") + dt.timedelta(hours=k)
            rec["eventTime"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            rec["eventID"] = f"{rec['eventID']}-{k}-{i}"
            batch.append(rec)
        for start in range(0, len(batch), per_file):
            part = batch[start:start + per_file]
            day = dt.datetime.strptime(part[0]["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
            where = folder / day.strftime("%Y/%m/%d")
            where.mkdir(parents=True, exist_ok=True)
            name = f"218007301253_CloudTrail_us-east-1_{day:%Y%m%dT%H%M}Z_{n:06d}.json.gz"
            with gzip.open(where / name, "wt", compresslevel=6) as f:
                json.dump({"Records": part}, f, separators=(",", ":"))
            n += 1
    (root / "DONE").write_text(f"{total} records in {n} files\n")
    return root, total


def rillet_minutes(root: Path) -> pl.DataFrame:
    run = (rl.stream(rl.read_cloudtrail(str(root)), time="eventTime", watermark="5s")
           .window(rl.tumbling("1m"), by=KEYS, lateness="15m")
           .agg(rl.count(), rl.count(where=pl.col("errorCode").is_not_null()).alias("failures"))
           .run(progress=False))
    assert run.late.height == 0 and run.rejected.height == 0, (run.late.height, run.rejected.height)
    return run.output.select(pl.col("window_start").dt.epoch("us").alias("minute_us"), *KEYS, "count", "failures")


def duckdb_minutes(con: duckdb.DuckDBPyConnection, root: Path) -> pl.DataFrame:
    glob = f"{root}/AWSLogs/**/*.json.gz"
    return con.sql(f"""
        WITH r AS (
            SELECT unnest(Records, recursive := true)
            FROM read_json('{glob}', format = 'auto', records = true, columns = {{'Records':
                 'STRUCT(eventTime VARCHAR, eventSource VARCHAR, eventName VARCHAR, errorCode VARCHAR)[]'}}))
        SELECT epoch_us(CAST(eventTime AS TIMESTAMPTZ)) // 60000000 * 60000000 AS minute_us, eventSource,
               eventName, count(*) AS count, count(errorCode) AS failures
        FROM r GROUP BY ALL""").pl()


def polars_minutes(root: Path) -> pl.DataFrame:
    schema = {"Records": pl.List(pl.Struct(FIELDS))}
    frames = []
    for path in sorted(root.glob("AWSLogs/**/*.json.gz")):
        with gzip.open(path, "rb") as f:
            frames.append(pl.read_json(f.read(), schema=schema))
    recs = pl.concat(frames).explode("Records").unnest("Records")
    t = pl.col("eventTime").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC")
    return (recs.group_by(t.dt.truncate("1m").dt.epoch("us").alias("minute_us"), *KEYS)
            .agg(pl.len().alias("count"), pl.col("errorCode").is_not_null().sum().alias("failures")))


def same(a: pl.DataFrame, b: pl.DataFrame) -> str | None:
    cols = ["minute_us", *KEYS]
    a = a.with_columns(pl.col("count", "failures").cast(pl.Int64)).sort(cols)
    b = b.with_columns(pl.col("count", "failures").cast(pl.Int64)).sort(cols)
    if a.height != b.height:
        return f"{a.height} rows against {b.height}"
    for c in (*cols, "count", "failures"):
        if not a[c].cast(b[c].dtype).equals(b[c]):
            return f"column {c} differs"
    return None


def main() -> int:
    rl.set_threads(ARGS.threads)
    con = duckdb.connect()
    con.execute(f"SET threads = {ARGS.threads}")
    root, total = layout(ARGS.copies, ARGS.per_file, ARGS.data_dir)
    size = sum(p.stat().st_size for p in root.glob("AWSLogs/**/*.json.gz"))
    engines = {"rillet": lambda: rillet_minutes(root), "duckdb": lambda: duckdb_minutes(con, root),
               "polars": lambda: polars_minutes(root)}
    first = {name: fn() for name, fn in engines.items()}
    for name in ("duckdb", "polars"):
        why = same(first["rillet"], first[name])
        if why is not None:
            raise SystemExit(f"rillet's result and {name}'s differ: {why}")
    times: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(ARGS.runs):
        for name, fn in engines.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    rate = {name: total / statistics.median(ts) for name, ts in times.items()}
    best = max(rate["duckdb"], rate["polars"])
    print(f"{total:,} CloudTrail records in {size / 2**20:,.0f} MiB of .json.gz, threads={ARGS.threads}, "
          f"{ARGS.runs} runs each (median)")
    print(f"{'rillet ev/s':>12} {'DuckDB ev/s':>12} {'polars ev/s':>12} {'x best':>7}")
    print(f"{rate['rillet']:12,.0f} {rate['duckdb']:12,.0f} {rate['polars']:12,.0f} {rate['rillet'] / best:7.2f}")
    (HERE / "results").mkdir(exist_ok=True)
    with open(HERE / "results" / "replay_cloudtrail.jsonl", "a") as out:
        out.write(json.dumps({"records": total, "threads": ARGS.threads, "runs": ARGS.runs,
                              "events_per_s": {k: round(v) for k, v in rate.items()},
                              "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
                              "ratio_to_best": round(rate["rillet"] / best, 4), "rillet": rl.__version__}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
