"""Smoke test of an installed rillet wheel: no pytest, no Rust toolchain, no services.

Runs where the wheel was installed into a fresh virtual environment (.ci/run and the
wheel workflow): imports the compiled module, runs a tumbling-window query over a
DataFrame and over a CSV file, and checks every count against polars' group_by on the
same rows. Exits non-zero on any difference.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

import rillet as rl


def main() -> int:
    base = datetime(2026, 3, 2, 9, tzinfo=UTC)
    n = 5_000
    events = pl.DataFrame({
        "t": [base + timedelta(seconds=(i * 7919) % 3600) for i in range(n)],
        "name": [("GetObject", "PutObject", "ListBuckets")[i % 3] for i in range(n)],
    })
    expected = (
        events.group_by(pl.col("t").dt.truncate("5m").alias("window_start"), "name")
        .agg(pl.len().alias("count").cast(pl.Int64))
        .sort("window_start", "name")
    )

    def check(source: object, what: str) -> None:
        run = (
            rl.stream(source, time="t", watermark="1h")
            .window(rl.tumbling("5m"), by="name")
            .agg(rl.count())
            .run(progress=False)
        )
        got = run.output.select("window_start", "name", "count").sort("window_start", "name")
        if not got.equals(expected.with_columns(pl.col("window_start").cast(got["window_start"].dtype))):
            print(f"smoke: {what}: rillet's counts differ from polars'", file=sys.stderr)
            print(got, expected, sep="\n", file=sys.stderr)
            raise SystemExit(1)
        m = run.metrics
        if m["rows_in"] != n or m["rows_accepted"] != n:
            raise SystemExit(f"smoke: {what}: rows_in {m['rows_in']}, accepted {m['rows_accepted']}; expected {n}")
        print(f"smoke: {what}: {got.height} windows equal polars' group_by, {n} rows accounted")

    check(events, "DataFrame")
    folder = Path(tempfile.mkdtemp(prefix="rillet-smoke-"))
    try:
        path = folder / "events.csv"
        events.with_columns(pl.col("t").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
        check(rl.read_csv(str(path)), "read_csv")
    finally:
        shutil.rmtree(folder)
    print(f"smoke: rillet {rl.__version__} from {Path(rl.__file__).parent} works")
    return 0


if __name__ == "__main__":
    sys.exit(main())
