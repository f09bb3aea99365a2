"""Sinks: files read back with polars equal the output; a database kept by amendments and
changelog rows ends equal to the final result, late rows included."""
from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import batches

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


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
    assert files and all(f.parent.name.startswith("window_start_1h=") for f in files)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".parquet"]
    back = pl.read_parquet(tmp_path / "out" / "**" / "*.parquet")
    want = _query().collect()
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


def test_rerun_into_an_existing_table_upserts(tmp_path: Path) -> None:
    for uri in (f"sqlite:///{tmp_path}/r.db", f"duckdb:///{tmp_path}/r.duckdb"):
        _query("final").to_database(uri, "metrics")
        _query("amend").to_database(uri, "metrics")
    final = _query().collect().sort(["svc", "window_end"]).select("svc", "count", "bytes_sum").rows()
    lite = sqlite3.connect(tmp_path / "r.db")
    assert lite.execute("SELECT svc, count, bytes_sum FROM metrics ORDER BY svc, window_end").fetchall() == final
    lite.close()
    duck = duckdb.connect(str(tmp_path / "r.duckdb"))
    assert duck.execute("SELECT svc, count, bytes_sum FROM metrics ORDER BY svc, window_end").fetchall() == final
    duck.close()


@pytest.mark.parametrize("scheme", ["sqlite", "duckdb"])
@pytest.mark.parametrize("ddl", [
    # another query's table: other value columns
    "(svc TEXT, window_start TEXT, window_end TEXT, errors INTEGER, PRIMARY KEY (svc, window_start, window_end))",
    # the right columns, but another key
    "(svc TEXT, window_start TEXT, window_end TEXT, count INTEGER, bytes_sum INTEGER, PRIMARY KEY (svc))",
])
def test_table_of_another_shape_is_a_sink_error(tmp_path: Path, scheme: str, ddl: str) -> None:
    path = tmp_path / "r.db"
    con = sqlite3.connect(path) if scheme == "sqlite" else duckdb.connect(str(path))
    con.execute(f"CREATE TABLE metrics {ddl}")
    con.commit()
    con.close()
    with pytest.raises(rl.SinkError, match=r"(SQLite|DuckDB) table 'metrics' in .*r.db already exists and does not fit"):
        _query().to_database(f"{scheme}:///{path}", "metrics")


def test_top_k_lists_are_stored_as_json_text(tmp_path: Path) -> None:
    # Regression: list columns were stored as the repr of a polars Series.
    q = (rl.stream(_events(), time="t", watermark="2m")
         .window(rl.tumbling("1h"), by="svc").agg(rl.top_k("bytes", 2)))
    q.to_database(f"sqlite:///{tmp_path}/k.db", "top")
    con = sqlite3.connect(tmp_path / "k.db")
    got = [json.loads(v) for (v,) in con.execute("SELECT bytes_top_k FROM top ORDER BY svc, window_start")]
    con.close()
    assert got == q.collect().sort(["svc", "window_start"])["bytes_top_k"].to_list()


@pytest.mark.parametrize("uri", ["mysql://localhost/db", "sqlite:r.db"])
def test_unknown_database_uri_is_a_config_error(uri: str) -> None:
    with pytest.raises(rl.ConfigError, match="sqlite:///path.db, duckdb:///path.duckdb or postgresql://"):
        _query().to_database(uri, "metrics")


# -- max_delay: Firehose's buffering interval ---------------------------------------------
class FakeClock:
    """Stands in for rillet._clock.now_ms, so a test decides how much wall time passes."""

    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def _hourly(batches: Iterator[pl.DataFrame]) -> rl.Query:
    return rl.stream(batches, time="t").window(rl.tumbling("1h"), by="svc").agg(rl.count(), rl.sum("bytes"))


def _slow_batches(clock: FakeClock, out: Path, seen: list[int], quiet: bool) -> Iterator[pl.DataFrame]:
    """One hour of events per batch, each closing the hour before; after each batch a minute
    passes, and `seen` records how many files existed when the next batch was asked for. With
    `quiet`, the minute passes in empty batches, as a live source sends while nothing arrives."""
    events = pl.DataFrame({
        "t": [T0 + dt.timedelta(minutes=i) for i in range(240)],
        "svc": [f"s{i % 3}" for i in range(240)],
        "bytes": list(range(240)),
    })
    for hour in range(4):
        yield events.filter(pl.col("t").dt.hour() == hour)
        if quiet:
            for _ in range(6):
                clock.ms += 10_000
                yield events.head(0)
        else:
            clock.ms += 60_000
        seen.append(len(list(out.rglob("*.parquet"))))


@pytest.mark.parametrize(("quiet", "files_seen"), [
    # hour h is emitted with batch h + 1; the next batch, a minute later, writes it
    (False, [0, 0, 1, 1]),
    # the heartbeats write each hour 30 s after it was emitted
    (True, [0, 1, 2, 3]),
], ids=["slow batches", "quiet heartbeats"])
def test_max_delay_writes_files_while_the_run_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       quiet: bool, files_seen: list[int]) -> None:
    clock = FakeClock()
    monkeypatch.setattr("rillet._clock.now_ms", clock)
    out, seen = tmp_path / "out", list[int]()
    _hourly(_slow_batches(clock, out, seen, quiet)).to_parquet(out, partition_by=None, max_delay="30s")
    assert seen == files_seen
    back = pl.read_parquet(out / "*.parquet").sort(["window_start", "svc"])
    want = _hourly(_slow_batches(FakeClock(), tmp_path / "none", [], quiet)).collect()
    assert back.equals(want.sort(["window_start", "svc"]))


def test_max_delay_on_the_real_clock(tmp_path: Path) -> None:
    out, seen = tmp_path / "out", list[int]()

    def batches() -> Iterator[pl.DataFrame]:
        for hour in range(3):
            yield pl.DataFrame({"t": [T0 + dt.timedelta(hours=hour)], "svc": ["a"], "bytes": [hour]})
            time.sleep(0.1)
            seen.append(len(list(out.glob("*.jsonl"))))

    _hourly(batches()).to_jsonl(out, partition_by=None, max_delay=dt.timedelta(milliseconds=50))
    assert seen == [0, 0, 1]  # hour 0, emitted with the second batch, written with the third
    back = pl.concat(pl.read_ndjson(f) for f in sorted(out.glob("*.jsonl")))
    assert back["bytes_sum"].to_list() == [0, 1, 2]


def test_without_max_delay_rows_wait_for_max_rows_or_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("rillet._clock.now_ms", clock)
    out, seen = tmp_path / "out", list[int]()
    _hourly(_slow_batches(clock, out, seen, quiet=True)).to_parquet(out, partition_by=None, max_delay=None)
    assert seen == [0, 0, 0, 0]
    assert len(list(out.glob("*.parquet"))) == 1


@pytest.mark.parametrize("bad", [-1, "-5s", dt.timedelta(seconds=-1), "soon"])
def test_max_delay_must_be_a_wall_clock_duration(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(rl.ConfigError, match="max_delay"):
        _query().to_jsonl(tmp_path, max_delay=bad)


@pytest.mark.parametrize("scheme", ["sqlite", "duckdb"])
@pytest.mark.parametrize("size", [None, 97])
def test_database_equals_final_whatever_the_batches(tmp_path: Path, scheme: str, size: int | None) -> None:
    # Many keys, so one batch upserts more rows than DuckDB puts in one INSERT; sessions, so
    # -U and -D rows (the old bounds of grown or merged sessions) come, within a batch and
    # across batches.
    n = 3000
    df = pl.DataFrame({
        "t": [(i * 7919) % 5000 + i for i in range(n)],
        "k": [f"k{i % 700}" for i in range(n)],
    })

    def query(source: Any, emit: str) -> rl.Query:
        return (rl.stream(source, time="t", watermark=500)
                .window(rl.session(2000), by="k", lateness=5000, emit=emit).agg(rl.count()))

    assert {"-U", "-D"} <= set(query(df, "changelog").collect()["op"])
    query(batches(df, size), "changelog").to_database(f"{scheme}:///{tmp_path}/b.db", "s")
    con = sqlite3.connect(tmp_path / "b.db") if scheme == "sqlite" else duckdb.connect(str(tmp_path / "b.db"))
    got = con.execute("SELECT k, window_start, window_end, count FROM s").fetchall()
    con.close()
    final = query(df, "final").collect()
    assert final.height > 500
    assert sorted(got) == sorted(final.rows())


def test_amended_sessions_are_refused_by_the_database_sink(tmp_path: Path) -> None:
    q = (rl.stream(_events(), time="t", watermark="2m")
         .window(rl.session("5m"), by="svc", emit="amend").agg(rl.count()))
    with pytest.raises(rl.ConfigError, match="changelog"):
        q.to_database(f"sqlite:///{tmp_path / 'x.db'}", "sessions")


def test_a_failed_run_still_writes_the_rows_it_emitted(tmp_path: Path) -> None:
    """Rows buffered by a file sink are written when the source fails part way (or the run is
    interrupted): they were emitted, so they are delivered."""
    def failing():
        df = _events()
        yield df.head(2000)
        raise rl.SourceError("the feed went away")

    def q(source):
        return (rl.stream(source, time="t", watermark="2m")
                .window(rl.tumbling("10m"), by="svc").agg(rl.count()))

    seen: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError):
        q(failing()).for_each(seen.append)
    with pytest.raises(rl.SourceError):
        q(failing()).to_parquet(tmp_path / "out", partition_by=None, max_rows=1_000_000, max_delay=None)
    back = pl.read_parquet(tmp_path / "out" / "*.parquet")
    assert back.height == sum(f.height for f in seen) > 0
    assert back.sort(["window_start", "svc"]).equals(pl.concat(seen).sort(["window_start", "svc"]))


def test_null_keys_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    events = _events().with_columns(pl.when(pl.col("bytes") == 0).then(None).otherwise(pl.col("svc")).alias("svc"))
    q = rl.stream(events, time="t", watermark="2m").window(rl.tumbling("10m"), by="svc").agg(rl.count())
    with pytest.raises(rl.SinkError, match="'svc' has nulls"):
        q.to_database(f"sqlite:///{tmp_path / 'n.db'}", "counts")
