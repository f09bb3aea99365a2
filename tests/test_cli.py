"""``rillet run``: the command gives what the Python API gives, and what polars computes on its
own from the same real data (/work/shared/data/real); bad options are usage errors (exit 2)
that say what is accepted; rillet errors exit 1; Ctrl-C exits 130 after writing what was
emitted.

Most runs are in-process (``main([...])``); a few go through ``python -m rillet``.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl
from rillet.__main__ import main

#: The shared real data sets (the checkout's ../shared), or RILLET_REAL_DATA.
REAL = Path(os.environ.get("RILLET_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
FLIGHTS = REAL / "nycflights13" / "flights.csv"
CGM = REAL / "iot_cgm_glucose" / "CGM.csv"
TRAIL = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"
NASA = REAL / "web_nasa_http_19950801" / "nasa_19950801.tsv"

pytestmark = pytest.mark.skipif(not FLIGHTS.exists(), reason=f"the real data sets are not at {REAL}")


def cli(capsys, *args: object) -> tuple[int, str, str]:
    """Runs ``rillet ARGS`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def python_m_rillet(*args: object, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rillet", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def rillet_with_default_sigint(*args: object) -> subprocess.Popen:
    """``rillet ARGS`` in a process where Ctrl-C is handled as Python does by default, even when
    the tests run with SIGINT ignored (started in the background), which a child inherits."""
    bootstrap = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from rillet.__main__ import main; sys.exit(main())")
    return subprocess.Popen([sys.executable, "-c", bootstrap, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def flights_csv(tmp_path_factory) -> Path:
    """January and February 2013 from flights.csv, the lines as they are in the real file."""
    path = tmp_path_factory.mktemp("flights") / "flights_jan_feb.csv"
    with open(FLIGHTS, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
        dst.write(next(src))
        for line in src:
            if line.split(",", 2)[1] in ("1", "2"):
                dst.write(line)
    return path


def flights_by_polars(path: Path) -> pl.DataFrame:
    """The CSV read by polars alone: NA as null, time_hour as a (naive UTC) Datetime."""
    return pl.read_csv(path, null_values="NA").with_columns(
        pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="ms")
    )


def hopping_by_polars(df: pl.DataFrame, t: str, period_s: int, every_s: int, by: list[str],
                      *aggs: pl.Expr) -> pl.DataFrame:
    """Hopping windows by brute force: each row in each window [start, start + period) that
    holds it, start a multiple of every."""
    per = period_s // every_s
    return (
        df.with_columns(k=pl.int_ranges(0, per))
        .explode("k")
        .with_columns(
            window_start=pl.col(t).dt.truncate(f"{every_s}s") - pl.duration(seconds=pl.col("k") * every_s)
        )
        .filter(pl.col("window_start") + pl.duration(seconds=period_s) > pl.col(t))
        .group_by(*by, "window_start")
        .agg(*aggs)
        .with_columns(window_end=pl.col("window_start") + pl.duration(seconds=period_s))
    )


def sort_windows(df: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    return df.sort("window_start", *by)


# ------------------------------------------------------------------------------ CSV, tumbling
FLIGHT_QUERY = [
    "--time", "time_hour", "--watermark", "1d", "--window", "tumbling:1d", "--by", "origin",
    "--with", "delay=TRY_CAST(dep_delay AS INTEGER)",
    "--agg", "count", "--agg", "count:delay", "--agg", "mean:delay", "--agg", "max:delay",
    "--agg", "p90=quantile:delay:0.9", "--agg", "count_distinct:dest",
]


def test_csv_tumbling_matches_polars_and_the_python_api(capsys, flights_csv, tmp_path):
    out = tmp_path / "out.parquet"
    code, stdout, err = cli(capsys, "run", flights_csv, *FLIGHT_QUERY, "--output", out, "--no-progress")
    assert code == 0, err
    assert stdout == ""  # --output: nothing printed
    got = pl.read_parquet(out)
    assert got.columns == ["origin", "window_start", "window_end", "count", "delay_count",
                           "delay_mean", "delay_max", "p90", "dest_count_distinct"]

    # Within a day the file is in departure order, so no row is more than a day behind.
    assert "late 0, rejected 0" in err
    df = flights_by_polars(flights_csv)
    want = (
        df.group_by("origin", window_start=pl.col("time_hour").dt.truncate("1d"))
        .agg(
            count=pl.len().cast(pl.Int64),
            delay_count=pl.col("dep_delay").count().cast(pl.Int64),
            delay_mean=pl.col("dep_delay").mean(),
            delay_max=pl.col("dep_delay").max(),
            p90=pl.col("dep_delay").quantile(0.9, "nearest"),
            dest_count_distinct=pl.col("dest").n_unique().cast(pl.Int64),
        )
        .with_columns(window_end=pl.col("window_start") + pl.duration(days=1))
        .select(got.columns)
    )
    assert got.height == want.height == 60 * 3  # 59 days of New York time span 60 UTC days
    assert_frame_equal(sort_windows(got, ["origin"]), sort_windows(want, ["origin"]),
                       check_dtypes=False, rel_tol=1e-12)

    api = (
        rl.stream(rl.read_csv(flights_csv), time="time_hour", watermark="1d")
        .with_columns(pl.sql_expr("TRY_CAST(dep_delay AS INTEGER)").alias("delay"))
        .window(rl.tumbling("1d"), by="origin")
        .agg(rl.count(), rl.count("delay"), rl.mean("delay"), rl.max("delay"),
             rl.quantile("delay", 0.9).alias("p90"), rl.count_distinct("dest"))
        .collect(progress=False)
    )
    assert_frame_equal(got, api)  # the same rows, in the same (emission) order


def test_console_prints_every_row_as_tables(capsys, flights_csv):
    code, out, err = cli(capsys, "run", flights_csv, "--time", "time_hour", "--watermark", "1d",
                         "--window", "tumbling:1w", "--by", "origin", "--agg", "count", "--no-progress")
    assert code == 0, err
    api = (rl.stream(rl.read_csv(flights_csv), time="time_hour", watermark="1d")
           .window(rl.tumbling("1w"), by="origin").agg(rl.count()).collect(progress=False))
    assert "│ origin ┆ window_start" in out and "…" not in out  # all rows, nothing elided
    rows = [line for line in out.splitlines() if line.startswith("│ ") and "origin" not in line]
    assert len(rows) == api.height
    assert rows[0].split("┆")[-1].strip(" │") == str(api["count"][0])
    # The summary goes to stderr, one line.
    assert err.startswith(f"rillet: rows in {api['count'].sum():,}: accepted ")
    assert f"emitted {api.height} rows" in err and "events/s" in err


# ------------------------------------------------------------------------------ JSON Lines, hopping
TRAIL_QUERY = ["--time", "eventTime", "--watermark", "10m", "--window", "hopping:10m/5m",
               "--by", "eventSource", "--agg", "count", "--agg", "count_distinct:sourceIPAddress",
               "--agg", "top_k:eventName:3", "--no-progress"]


@pytest.fixture(scope="module")
def trail_api() -> pl.DataFrame:
    return (
        rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="10m")
        .window(rl.hopping("10m", "5m"), by="eventSource")
        .agg(rl.count(), rl.count_distinct("sourceIPAddress"), rl.top_k("eventName", 3))
        .collect(progress=False)
    )


def test_jsonl_hopping_matches_polars(capsys, tmp_path, trail_api):
    out = tmp_path / "out.parquet"
    code, _, err = cli(capsys, "run", TRAIL, *TRAIL_QUERY, "--output", out, "--late", tmp_path / "late.jsonl")
    assert code == 0, err
    got = pl.read_parquet(out)
    assert_frame_equal(got, trail_api)
    # CloudTrail delivers up to 579 s late here: a 10 minute watermark loses nothing.
    assert (tmp_path / "late.jsonl").read_text() == ""
    df = pl.read_ndjson(TRAIL).with_columns(
        pl.col("eventTime").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC")
    )
    want = hopping_by_polars(
        df, "eventTime", 600, 300, ["eventSource"],
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("sourceIPAddress").n_unique().cast(pl.Int64).alias("sourceIPAddress_count_distinct"),
    )
    assert_frame_equal(
        sort_windows(got.drop("eventName_top_k"), ["eventSource"]),
        sort_windows(want.select(got.drop("eventName_top_k").columns), ["eventSource"]),
    )
    # top_k against polars: the 3 most frequent names in the busiest window, ties by name.
    busiest = got.sort("count", descending=True).row(0, named=True)
    names = (
        df.filter(pl.col("eventSource") == busiest["eventSource"],
                  pl.col("eventTime") >= busiest["window_start"], pl.col("eventTime") < busiest["window_end"])
        .group_by("eventName").len().sort(["len", "eventName"], descending=[True, False]).head(3)
    )
    assert busiest["eventName_top_k"] == [{"value": v, "count": c} for v, c in names.iter_rows()]


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_output_formats_hold_the_python_api_rows(capsys, tmp_path, trail_api, ext):
    out = tmp_path / f"out.{ext}"
    code, _, err = cli(capsys, "run", TRAIL, *TRAIL_QUERY, "--output", out)
    assert code == 0, err
    want = trail_api
    if ext == "parquet":
        got = pl.read_parquet(out)
    elif ext == "csv":
        # Lists (top_k) are JSON text in CSV; times are ISO 8601 with their offset.
        got = pl.read_csv(out, try_parse_dates=True)
        assert [json.loads(x) for x in got["eventName_top_k"]] == want["eventName_top_k"].to_list()
        got = got.drop("eventName_top_k")
        want = want.drop("eventName_top_k")
    else:
        got = pl.read_ndjson(out, schema=want.schema | {"window_start": pl.String, "window_end": pl.String})
        got = got.with_columns(pl.col("window_start", "window_end").str.to_datetime(time_unit="us", time_zone="UTC"))
    assert_frame_equal(got, want)


# ------------------------------------------------------------------------------ Parquet input
def test_parquet_input_hopping_matches_polars(capsys, tmp_path, flights_csv):
    src = tmp_path / "flights.parquet"
    df = flights_by_polars(flights_csv)
    df.write_parquet(src, row_group_size=10_000)  # several row groups: several micro-batches
    out = tmp_path / "out.csv"
    code, _, err = cli(capsys, "run", src, "--time", "time_hour", "--watermark", "1d",
                       "--window", "hopping:2d/1d", "--by", "carrier", "--agg", "sum:distance",
                       "--agg", "std:dep_delay", "--agg", "min:dep_delay", "--output", out, "--no-progress")
    assert code == 0, err
    got = pl.read_csv(out, try_parse_dates=True)
    want = hopping_by_polars(
        df, "time_hour", 2 * 86_400, 86_400, ["carrier"],
        pl.col("distance").sum().alias("distance_sum"),
        pl.col("dep_delay").std().alias("dep_delay_std"),
        pl.col("dep_delay").min().alias("dep_delay_min"),
    ).select(got.columns)
    assert_frame_equal(sort_windows(got, ["carrier"]), sort_windows(want, ["carrier"]),
                       check_dtypes=False, rel_tol=1e-9)
    api = (
        rl.stream(rl.read_parquet(src), time="time_hour", watermark="1d")
        .window(rl.hopping("2d", "1d"), by="carrier")
        .agg(rl.sum("distance"), rl.std("dep_delay"), rl.min("dep_delay"))
        .collect(progress=False)
    )
    assert_frame_equal(got, api, check_dtypes=False)  # the same rows in the same order


# ------------------------------------------------------------------------------ sessions, rejected rows
def test_csv_sessions_and_rejected_rows_match_polars(capsys, tmp_path):
    out, rejected = tmp_path / "sessions.parquet", tmp_path / "rejected.csv"
    code, _, err = cli(capsys, "run", CGM, "--time", "datetime", "--window", "session:30m",
                       "--agg", "count", "--agg", "mean:glucose", "--agg", "first:glucose",
                       "--agg", "last:glucose", "--output", out, "--rejected", rejected, "--no-progress")
    assert code == 0, err
    raw = pl.read_csv(CGM, schema_overrides={"isig": pl.String})
    # The sensor wrote "nil" for isig 1,061 times: those records do not parse as the column's
    # floats, so they are rejected with their line, not dropped.
    nil = raw.with_row_index("line", offset=2).filter(pl.col("isig") == "nil")
    assert nil.height == 1_061
    rej = pl.read_csv(rejected)
    assert rej["line"].to_list() == nil["line"].to_list()
    assert "rejected 1,061 " in err or "rejected 1,061," in err

    # Sessions by polars: a new one wherever readings are more than 30 minutes apart.
    ok = raw.filter(pl.col("isig") != "nil").with_columns(
        pl.col("datetime").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="ms")
    )
    gap = pl.duration(minutes=30)
    want = (
        ok.with_columns(session=(pl.col("datetime").diff() > gap).fill_null(False).cum_sum())
        .group_by("session", maintain_order=True)
        .agg(
            window_start=pl.col("datetime").first(),
            window_end=pl.col("datetime").last() + gap,
            count=pl.len().cast(pl.Int64),
            glucose_mean=pl.col("glucose").mean(),
            glucose_first=pl.col("glucose").first(),
            glucose_last=pl.col("glucose").last(),
        )
        .drop("session")
    )
    got = pl.read_parquet(out)
    assert got.height == want.height > 50  # sensor dropouts cut the months into sessions
    assert_frame_equal(got.sort("window_start"), want, check_dtypes=False)


def test_tsv_with_integer_time(capsys, tmp_path):
    out = tmp_path / "hits.parquet"
    code, _, err = cli(capsys, "run", NASA, "--time", "time", "--window", "tumbling:3600",
                       "--by", "response", "--agg", "count", "--output", out, "--no-progress")
    assert code == 0, err
    want = (
        pl.read_csv(NASA, separator="\t", quote_char=None)
        .group_by("response", window_start=pl.col("time") // 3600 * 3600)
        .agg(count=pl.len().cast(pl.Int64))
    )
    got = pl.read_parquet(out).drop("window_end")
    assert_frame_equal(sort_windows(got, ["response"]), sort_windows(want.select(got.columns), ["response"]))


# ------------------------------------------------------------------------------ late rows
def test_late_rows_file_matches_the_watermark_rule(capsys, tmp_path):
    late = tmp_path / "late.parquet"
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--watermark", "1m",
                       "--window", "tumbling:1m", "--agg", "count", "--late", late,
                       "--output", tmp_path / "out.csv", "--no-progress")
    assert code == 0, err
    got = pl.read_parquet(late)
    # Independently: row i is late when its minute ended at or before the watermark it met,
    # the latest earlier time minus 1 minute.
    t = pl.read_ndjson(TRAIL)["eventTime"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC")
    minute = dt.timedelta(minutes=1)
    watermark = t.cum_max().shift(1) - minute
    is_late = (t.dt.truncate("1m") + minute) <= watermark
    assert got.height == is_late.sum() > 100
    assert f"late {got.height:,}," in err
    assert got["eventID"].to_list() == pl.read_ndjson(TRAIL).filter(is_late.fill_null(False))["eventID"].to_list()
    assert got.schema["late_by"] == pl.Duration("us")


# ------------------------------------------------------------------------------ sinks
def test_to_database_sqlite_holds_the_final_rows(capsys, tmp_path):
    db = tmp_path / "trail.db"
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--watermark", "1m",
                       "--lateness", "5m", "--window", "tumbling:5m", "--by", "eventSource",
                       "--emit", "changelog", "--agg", "calls=count", "--agg", "failures=count:errorCode",
                       "--to-database", f"sqlite:///{db}", "--table", "calls", "--no-progress")
    assert code == 0, err
    final = (
        rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="1m")
        .window(rl.tumbling("5m"), by="eventSource", lateness="5m")
        .agg(rl.count().alias("calls"), rl.count("errorCode").alias("failures"))
        .collect(progress=False)
    )
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT eventSource, window_start, window_end, calls, failures FROM calls").fetchall()
    got = pl.DataFrame(rows, schema=final.columns, orient="row").with_columns(
        pl.col("window_start", "window_end").str.to_datetime(time_unit="us", time_zone="UTC")
    )
    assert_frame_equal(sort_windows(got, ["eventSource"]), sort_windows(final, ["eventSource"]))


def test_to_parquet_and_to_jsonl_folders(capsys, tmp_path, trail_api):
    code, out, err = cli(capsys, "run", TRAIL, *TRAIL_QUERY, "--to-parquet", tmp_path / "pq",
                         "--to-jsonl", tmp_path / "js")
    assert code == 0, err
    assert out == ""
    parts = sorted((tmp_path / "pq").glob("window_start_1h=*/part-*.parquet"))
    assert parts and len(list((tmp_path / "js").glob("window_start_1h=*/part-*.jsonl"))) == len(parts)
    got = pl.read_parquet(tmp_path / "pq", hive_partitioning=True)
    assert got.height == trail_api.height
    assert got["count"].sum() == trail_api["count"].sum()


# ------------------------------------------------------------------------------ checkpoints
CHECKPOINT_QUERY = ["--time", "eventTime", "--watermark", "10m", "--window", "tumbling:5m",
                    "--by", "eventSource", "--agg", "count", "--agg", "count_distinct:sourceIPAddress",
                    "--emit", "changelog", "--no-progress", "--checkpoint-every", "400"]


@pytest.mark.parametrize("crash", ["2:mid_epoch", "3:before_commit", "4:mid_commit", "5:after_commit"])
def test_a_checkpointed_run_killed_and_run_again_delivers_exactly_an_uninterrupted_runs_rows(tmp_path, crash):
    """rillet run --checkpoint: killed with SIGKILL at a phase of a checkpoint, then run again
    with the same options, its Parquet folder and its database table hold exactly the rows of
    a run never stopped (and those agree with the Python API's)."""
    # The trail in 8 files (a glob, read in name order), so the run reads it in several
    # micro-batches and checkpoints between them.
    lines = TRAIL.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "in").mkdir()
    for k in range(8):
        (tmp_path / "in" / f"part{k}.jsonl").write_text("".join(lines[k * len(lines) // 8:(k + 1) * len(lines) // 8]))

    def run(folder: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "rillet", "run", str(tmp_path / "in" / "*.jsonl"), *CHECKPOINT_QUERY,
             "--to-parquet", tmp_path / folder / "pq", "--to-database", f"sqlite:///{tmp_path / folder / 'db'}",
             "--table", "calls", "--checkpoint", tmp_path / folder / "ck"],
            capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})

    gold = run("gold")
    assert gold.returncode == 0, gold.stderr
    killed = run("again", {"RILLET_CRASH_AT": crash})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = run("again")
    assert resumed.returncode == 0, resumed.stderr

    def rows(folder: str) -> tuple[pl.DataFrame, pl.DataFrame]:
        files = pl.read_parquet(tmp_path / folder / "pq", hive_partitioning=False)
        with sqlite3.connect(tmp_path / folder / "db") as con:
            table = pl.read_database("SELECT * FROM calls", con)
        return files.sort(pl.all()), table.sort(pl.all())

    assert rows("again")[0].equals(rows("gold")[0])
    assert rows("again")[1].equals(rows("gold")[1])
    assert not (tmp_path / "again" / "pq.rillet-staging").exists()
    final = (rl.stream(rl.read_jsonl(tmp_path / "in" / "*.jsonl"), time="eventTime", watermark="10m")
             .window(rl.tumbling("5m"), by="eventSource")
             .agg(rl.count(), rl.count_distinct("sourceIPAddress")).collect(progress=False))
    table = rows("gold")[1].with_columns(pl.col("window_start", "window_end").str.to_datetime(time_unit="us", time_zone="UTC"))
    assert_frame_equal(sort_windows(table.select(final.columns), ["eventSource"]), sort_windows(final, ["eventSource"]))


@pytest.mark.parametrize(("args", "message"), [
    (["--checkpoint-every", "30s"], "--checkpoint-every needs --checkpoint DIR"),
    (["--checkpoint", "ck", "--output", "out.csv"], "--output FILE is written from the start of each run"),
    (["--checkpoint", "ck", "--checkpoint-every", "0"], "positive number of rows"),
    (["--checkpoint", "ck", "--checkpoint-every", "-5s"], "--checkpoint-every"),
])
def test_checkpoint_usage_errors(capsys, tmp_path, args, message):
    args = [str(tmp_path / a) if a in ("ck", "out.csv") else a for a in args]
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--window", "tumbling:5m", *args)
    assert code == 2
    assert message in err


# ------------------------------------------------------------------------------ formats
def test_format_auto_reads_gz_and_cloudtrail_files(capsys, tmp_path, trail_api):
    gz = tmp_path / "trail.jsonl.gz"
    gz.write_bytes(gzip.compress(TRAIL.read_bytes()))
    code, _, err = cli(capsys, "run", gz, *TRAIL_QUERY, "--output", tmp_path / "a.parquet")
    assert code == 0, err
    assert_frame_equal(pl.read_parquet(tmp_path / "a.parquet"), trail_api)

    # The same records as CloudTrail delivers them: {"Records": [...]} files in a folder.
    records = [json.loads(line) for line in TRAIL.read_text().splitlines()]
    folder = tmp_path / "AWSLogs" / "123" / "CloudTrail" / "us-east-1"
    folder.mkdir(parents=True)
    for i in range(0, len(records), 1000):
        (folder / f"part{i:05}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records[i:i + 1000]}).encode()))
    code, _, err = cli(capsys, "run", tmp_path / "AWSLogs", "--format", "cloudtrail", "--window",
                       "tumbling:1h", "--watermark", "10m", "--by", "eventSource", "--agg", "count",
                       "--output", tmp_path / "b.parquet", "--no-progress")  # time: eventTime
    assert code == 0, err
    got = pl.read_parquet(tmp_path / "b.parquet")
    assert got["count"].sum() == len(records)


@pytest.mark.parametrize(("args", "message"), [
    (["x.json"], "give --format csv, jsonl, parquet, ipc or cloudtrail"),
    (["x.dat"], "cannot tell the format of 'x.dat'"),
    (["a.csv", "b.jsonl"], "the inputs mix formats (csv, jsonl)"),
])
def test_format_auto_usage_errors(capsys, tmp_path, args, message):
    code, _, err = cli(capsys, "run", *args, "--time", "t", "--window", "tumbling:1m")
    assert code == 2
    assert message in err


# ------------------------------------------------------------------------------ follow
def test_follow_with_max_idle_ends_as_a_replay(capsys, tmp_path, trail_api):
    live = tmp_path / "live.jsonl"
    live.write_bytes(TRAIL.read_bytes())
    out = tmp_path / "out.parquet"
    t0 = time.monotonic()
    code, _, err = cli(capsys, "run", live, "--follow", "--max-idle", "300ms", *TRAIL_QUERY, "--output", out)
    assert code == 0, err
    assert time.monotonic() - t0 < 30
    assert_frame_equal(pl.read_parquet(out), trail_api)


def test_ctrl_c_exits_130_after_writing_what_was_emitted(tmp_path):
    live = tmp_path / "live.jsonl"
    live.write_bytes(TRAIL.read_bytes())
    out = tmp_path / "out.csv"
    p = rillet_with_default_sigint("run", live, "--follow", "--time", "eventTime", "--window", "tumbling:5m",
                                   "--by", "eventSource", "--agg", "count", "--output", out, "--no-progress")
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size) and time.monotonic() < deadline:
            assert p.poll() is None, p.communicate()
            time.sleep(0.05)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    # Everything the watermark closed was written; the windows still open were not flushed.
    unflushed = (
        rl.stream(rl.read_jsonl(live), time="eventTime", watermark=0, flush=False)
        .window(rl.tumbling("5m"), by="eventSource").agg(rl.count()).run(progress=False)
    )
    closed, still_open = unflushed.output, unflushed.metrics["open_windows"]
    assert still_open == 1
    assert "rillet: interrupted: 1 window still open was not emitted" in stderr
    got = pl.read_csv(out, try_parse_dates=True)
    assert_frame_equal(got, closed)
    assert f"emitted {closed.height} rows" in stderr


def test_ctrl_c_while_the_late_rows_are_written_waits_for_the_file(capsys, tmp_path, monkeypatch):
    """The late and rejected files are written when the run ends; a Ctrl-C then waits until
    they are whole, and the exit status is still 130."""
    import rillet.cli.run as cli_run

    write_table = cli_run.write_table

    def ctrl_c_first(df, target):
        signal.raise_signal(signal.SIGINT)
        return write_table(df, target)

    monkeypatch.setattr(cli_run, "write_table", ctrl_c_first)
    late = tmp_path / "late.csv"
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--window", "tumbling:5m",
                       "--output", tmp_path / "out.csv", "--late", late, "--no-progress")
    assert code == 130, err
    want = (rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark=0).window(rl.tumbling("5m"))
            .agg(rl.count()).run(progress=False))
    assert pl.read_csv(late).height == want.late.height > 0
    assert pl.read_csv(tmp_path / "out.csv").height == want.output.height
    assert "rillet: interrupted after the input had ended: every window was emitted" in err
    assert "Traceback" not in err


def test_late_and_rejected_files_in_a_missing_folder_fail_before_the_run(capsys, tmp_path):
    for option in ("--late", "--rejected"):
        target = tmp_path / "no" / "such" / "rows.csv"
        code, out, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--window", "tumbling:5m",
                             option, target, "--no-progress")
        assert code == 1
        assert err.startswith(f"rillet: error: cannot write {target} ({option}): there is no folder")
        assert out == ""  # said at once, not after the run


def test_a_parquet_output_that_cannot_be_written_leaves_no_temporary_file(capsys, tmp_path, monkeypatch):
    def half_then_disk_full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", half_then_disk_full)
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime", "--window", "tumbling:5m",
                       "--output", tmp_path / "out.parquet", "--no-progress")
    assert code == 1 and "No space left on device" in err
    assert list(tmp_path.iterdir()) == []


def test_python_m_rillet_run_prints_tables_and_a_summary(tmp_path):
    p = python_m_rillet("run", CGM, "--time", "datetime", "--window", "tumbling:1mo", "--agg", "count",
                        "--agg", "median:glucose", "--where", "glucose >= 70", cwd=tmp_path)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert "│ window_start" in stdout and "glucose_median" in stdout
    assert "2010-03-01 00:00:00" in stdout and "2010-10-01 00:00:00" in stdout
    assert stderr.count("\n") == 1 and stderr.startswith("rillet: rows in 52,281: ")
    assert "rejected 1,061 (--rejected FILE keeps them)" in stderr
    below = pl.read_csv(CGM, schema_overrides={"isig": pl.String}).filter(
        pl.col("isig") != "nil", pl.col("glucose") < 70)
    assert f"filtered out {below.height:,} " in stderr


# ------------------------------------------------------------------------------ errors and help
@pytest.mark.parametrize(("args", "messages"), [
    (["--window", "tumbly:1m"], ["argument --window: unknown window 'tumbly:1m'", "tumbling:EVERY",
                                 "hopping:PERIOD/EVERY", "session:GAP"]),
    (["--window", "hopping:5m"], ["a hopping window is written hopping:PERIOD/EVERY"]),
    (["--window", "tumbling:5x"], ["unknown unit 'x'"]),
    (["--window", "tumbling:1m", "--agg", "sum"], ["argument --agg: 'sum' needs a column: write sum:COL"]),
    (["--window", "tumbling:1m", "--agg", "quantile:x"], ["write quantile:COL:Q, e.g."]),
    (["--window", "tumbling:1m", "--agg", "quantile:x:high"], ["Q must be a number, got 'high'"]),
    (["--window", "tumbling:1m", "--agg", "median:x:0.5"], ["write median:COL"]),
    (["--window", "tumbling:1m", "--agg", "avg:x"], ["unknown aggregate 'avg:x'", "count, sum, mean"]),
    (["--window", "tumbling:1m", "--agg", "count", "--agg", "count"], ["two aggregates make the column 'count'"]),
    (["--window", "tumbling:1m", "--where", "a >"], ["argument --where: 'a >' is not a SQL expression"]),
    (["--window", "tumbling:1m", "--with", "delay"], ["write NAME=SQL"]),
    (["--window", "tumbling:1m", "--watermark", "soon"], ["argument --watermark"]),
    (["--window", "tumbling:1m", "--idle-timeout", "30"], ["give a unit, e.g. 30s"]),
    (["--window", "tumbling:1m", "--emit", "eventually"], ["invalid choice: 'eventually'", "'final', 'amend', 'changelog'"]),
    (["--window", "tumbling:1m", "--output", "out.xlsx"], ["end it in .csv, .jsonl or .parquet"]),
    (["--window", "tumbling:1m", "--table", "t"], ["--to-database URI and --table NAME go together"]),
    (["--window", "sliding:1m", "--to-database", "sqlite:///x.db", "--table", "t"], ["sliding windows emit one row per"]),
    (["--window", "session:1m", "--tz", "Europe/Paris"], ["--tz applies to tumbling and hopping windows"]),
    (["--window", "tumbling:1m", "--tz", "Mars/Olympus"], ["unknown time zone 'Mars/Olympus'"]),
    (["--window", "tumbling:1m", "--early", "5s"], ["needs --emit amend or changelog"]),
    (["--window", "tumbling:1m", "--max-idle", "5s"], ["--max-idle goes with --follow"]),
])
def test_bad_options_are_usage_errors(capsys, args, messages):
    code, out, err = cli(capsys, "run", TRAIL, "--time", "eventTime", *args)
    assert code == 2
    assert err.startswith("usage: rillet run")
    for m in messages:
        assert m in err, err
    assert out == ""


def test_missing_time_and_window_are_usage_errors(capsys):
    code, _, err = cli(capsys, "run", TRAIL, "--window", "tumbling:1m")
    assert code == 2 and "--time is required" in err
    code, _, err = cli(capsys, "run", TRAIL, "--time", "eventTime")
    assert code == 2 and "the following arguments are required: --window" in err


@pytest.mark.parametrize(("args", "message"), [
    (["/no/such/file.csv", "--time", "t"], "rillet: error: read_csv: '/no/such/file.csv' does not exist"),
    ([TRAIL, "--time", "when"], "rillet: error: time column 'when' not found"),
    ([TRAIL, "--time", "eventTime", "--by", "region"], "key column 'region' not found"),
    ([TRAIL, "--time", "eventTime", "--agg", "sum:eventName"], "needs a numeric column"),
    ([TRAIL, "--time", "eventTime", "--where", "awsRegion"], "must be of type `Boolean`"),
    ([TRAIL, "--time", "eventTime", "--where", "region = 'x'"], "rillet: error: --where refers to a column"),
])
def test_rillet_errors_exit_1(capsys, args, message):
    code, _, err = cli(capsys, "run", *args, "--window", "tumbling:1m", "--no-progress")
    assert code == 1, err
    assert message in err
    assert "Traceback" not in err


def test_run_help(capsys):
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0
    assert out.startswith("usage: rillet run")
    for key in (
        "PATH [PATH ...]", "--format {auto,csv,jsonl,parquet,ipc,cloudtrail}", "--time COL",
        "--window SPEC", "tumbling:EVERY", "hopping:PERIOD/EVERY", "(or hopping:5m,1m)",
        "session:GAP[/MAX]", "sliding:PERIOD", "--by COLS", "--agg AGG", "quantile:COL:Q",
        "top_k:COL:K", "NAME=AGG", "--where SQL", "--with NAME=SQL", "--lateness", "--emit {final,amend,changelog}",
        "--follow", "--idle-timeout", "--output FILE", "--to-parquet DIR", "--to-jsonl DIR",
        "--to-database URI", "--table NAME", "--late FILE", "--rejected FILE", "--no-progress",
        "exit status is 130", "2 a usage error",
    ):
        assert key in out, key
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and "run a windowed query over" in out and "rillet run" in out


def test_a_run_that_rejects_every_row_prints_a_warning_line(capsys, tmp_path):
    src = tmp_path / "odd.csv"
    pl.DataFrame({"t": ["02/Mar/2026:09:00:05 +0000"] * 12, "k": ["a"] * 12}).write_csv(src)
    code, _, err = cli(capsys, "run", src, "--time", "t", "--window", "tumbling:1m", "--no-progress")
    assert code == 0
    warning = [line for line in err.splitlines() if line.startswith("rillet: warning: ")]
    assert len(warning) == 1, err
    assert "every row of this run (12) was rejected" in warning[0]
    assert "unparseable time" in warning[0] and "str.to_datetime" in warning[0]


def test_on_error_skip_records_a_truncated_file_and_goes_on(capsys, tmp_path):
    import gzip

    frame = pl.DataFrame({"t": [f"2026-03-02T09:0{i}:00Z" for i in range(6)], "k": ["a", "b"] * 3})
    good = gzip.compress(frame.write_csv().encode())
    (tmp_path / "1.csv.gz").write_bytes(good)
    (tmp_path / "2.csv.gz").write_bytes(good[: len(good) // 2])  # cut part way through
    (tmp_path / "3.csv.gz").write_bytes(good)
    glob = str(tmp_path / "*.csv.gz")
    args = ["run", glob, "--time", "t", "--window", "tumbling:1h", "--watermark", "1h", "--no-progress"]
    code, _, err = cli(capsys, *args)
    assert code == 1 and "2.csv.gz" in err
    rejected = tmp_path / "rejected.jsonl"
    code, _, err = cli(capsys, *args, "--on-error", "skip", "--output", tmp_path / "out.csv",
                       "--rejected", rejected)
    assert code == 0, err
    skipped = pl.read_ndjson(rejected)
    assert skipped["file"].to_list() == [str(tmp_path / "2.csv.gz")]
    assert "on_error='skip'" in skipped["reason"][0]
    out = pl.read_csv(tmp_path / "out.csv")
    # Two whole files were read: every row counted twice, the cut file's rows once at most.
    assert out["count"].sum() >= 2 * frame.height


def test_null_values_and_max_line_bytes_reach_the_csv_reader(capsys, tmp_path):
    src = tmp_path / "readings.csv"
    src.write_text("t,v\n2026-03-02T09:00:00Z,1\n2026-03-02T09:00:10Z,nil\n"
                   f"2026-03-02T09:00:20Z,{'9' * 300}\n2026-03-02T09:00:30Z,4\n")
    rejected = tmp_path / "rejected.jsonl"
    code, _, err = cli(capsys, "run", src, "--time", "t", "--window", "tumbling:1m", "--agg", "count",
                       "--agg", "count:v", "--null-values", "nil", "--max-line-bytes", "100",
                       "--output", tmp_path / "out.csv", "--rejected", rejected, "--no-progress")
    assert code == 0, err
    reasons = pl.read_ndjson(rejected)["reason"].to_list()
    assert len(reasons) == 1 and "max_line_bytes" in reasons[0]
    out = pl.read_csv(tmp_path / "out.csv")
    assert out["count"].to_list() == [3] and out["v_count"].to_list() == [2]
    code, _, err = cli(capsys, "run", src, "--time", "t", "--window", "tumbling:1m",
                       "--max-line-bytes", "lots")
    assert code == 2 and "positive number of bytes" in err
