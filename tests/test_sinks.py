"""Sinks: files read back with polars equal the output; a database kept by amendments and
changelog rows ends equal to the final result, late rows included."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import sqlite3

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _events() -> pl.DataFrame:
    n = 3000
    times = [T0 + dt.timedelta(seconds=(i * 37) % 7200 // 2 + i) for i in range(n)]
    return pl.DataFrame({
        "t": times,
        "svc": [f"s{i % 4}" for i in range(n)],
        "bytes": [i % 97 for i in range(n)],
    })


def _query(emit: str = "final") -> rl.Query:
    return (
        rl.stream(_events(), time="t", watermark="2m")
        .window(rl.tumbling("10m"), by="svc", lateness="20m", emit=emit)
        .agg(rl.count(), rl.sum("bytes"))
    )


def test_for_each_sees_every_emitted_frame() -> None:
    seen: list[pl.DataFrame] = []
    run = _query().for_each(seen.append)
    assert pl.concat(seen).equals(_query().collect())
    assert run.metrics["rows_emitted"] == sum(f.height for f in seen)


def test_parquet_dataset_reads_back_equal_to_the_output(tmp_path: Path) -> None:
    _query().to_parquet(tmp_path / "out", every="1h", max_rows=7)
    files = sorted((tmp_path / "out").rglob("*.parquet"))
    assert files and all("window_start=" in f.parent.name for f in files)
    assert not list((tmp_path / "out").rglob("*.tmp"))
    back = pl.read_parquet(tmp_path / "out" / "**" / "*.parquet")
    want = _query().collect().drop("window_start")
    assert back.sort(["window_end", "svc"]).equals(want.sort(["window_end", "svc"]))


def test_jsonl_dataset_reads_back_equal_to_the_output(tmp_path: Path) -> None:
    _query().to_jsonl(tmp_path / "j", partition_by=None)
    back = pl.read_ndjson(next((tmp_path / "j").glob("*.jsonl")))
    want = _query().collect()
    assert back["count"].to_list() == want["count"].to_list()
    assert back["bytes_sum"].to_list() == want["bytes_sum"].to_list()


def _table(rows: list[tuple], cols: list[str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=cols, orient="row").sort(["svc", "window_end"])


def test_sqlite_table_equals_final_after_amendments(tmp_path: Path) -> None:
    run = _query("amend").to_database(f"sqlite:///{tmp_path}/r.db", "metrics")
    assert run.metrics["rows_emitted"] > _query().collect().height  # amendments happened
    con = sqlite3.connect(tmp_path / "r.db")
    rows = con.execute("SELECT svc, window_end, count, bytes_sum FROM metrics").fetchall()
    final = _query().collect()
    want = final.select("svc", pl.col("window_end").dt.to_string("%Y-%m-%dT%H:%M:%S%.f"), "count", "bytes_sum")
    assert _table(rows, want.columns).equals(want.sort(["svc", "window_end"]))


def test_duckdb_table_equals_final_after_a_changelog(tmp_path: Path) -> None:
    _query("changelog").to_database(f"duckdb:///{tmp_path}/r.duckdb", "metrics")
    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    got = con.execute("SELECT svc, count, bytes_sum FROM metrics ORDER BY svc, window_end").fetchall()
    con.close()
    final = _query().collect().sort(["svc", "window_end"])
    assert got == final.select("svc", "count", "bytes_sum").rows()


def test_session_changelog_deletes_merged_sessions(tmp_path: Path) -> None:
    df = pl.DataFrame({"t": [0, 3, 10, 12, 6, 30], "k": ["a"] * 6})
    q = rl.stream(df, time="t").window(rl.session(5), by="k", lateness=20, emit="changelog").agg(rl.count())
    q.to_database(f"sqlite:///{tmp_path}/s.db", "sessions")
    rows = sqlite3.connect(tmp_path / "s.db").execute(
        "SELECT window_start, window_end, count FROM sessions ORDER BY window_start").fetchall()
    final = rl.stream(df, time="t").window(rl.session(5), by="k", lateness=20).agg(rl.count()).collect()
    assert rows == final.select("window_start", "window_end", "count").rows()
