"""``rillet sql``: a SQL file over files named on the command line gives what ``rl.sql`` and
``rl.Application`` give in Python on the same data, and what polars computes on its own from
the real data (/work/shared/data/real); a SQL error exits 2 with its line, column and caret,
without a traceback.

The runs go through ``python -m rillet sql`` (the SQL text and the inputs are files the
tests write); usage errors run in-process (``main([...])``).
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_cli import cli

import rillet as rl

REAL = Path(os.environ.get("RILLET_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
TRAIL = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"
FLIGHTS = REAL / "nycflights13" / "flights.csv"

pytestmark = pytest.mark.skipif(not TRAIL.exists(), reason=f"the real data sets are not at {REAL}")

CALLS_SQL = """\
-- CloudTrail calls per service, every 10 minutes
SELECT window_start, window_end, eventSource, COUNT(*) AS calls,
       COUNT(DISTINCT sourceIPAddress) AS addresses
FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '10' MINUTE))
GROUP BY window_start, window_end, eventSource
"""

APP_SQL = """\
CREATE OR REPLACE STREAM "CALLS" (eventSource VARCHAR(64), calls BIGINT);
CREATE OR REPLACE STREAM "FAILURES" (eventName VARCHAR(64), failures BIGINT);
CREATE OR REPLACE PUMP "CALLS_PUMP" AS INSERT INTO "CALLS"
  SELECT STREAM eventSource, COUNT(*) AS calls
  FROM "SOURCE_SQL_STREAM_001"
  GROUP BY eventSource, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' HOUR);
CREATE OR REPLACE PUMP "FAILURES_PUMP" AS INSERT INTO "FAILURES"
  SELECT STREAM eventName, COUNT(*) AS failures
  FROM "SOURCE_SQL_STREAM_001"
  WHERE errorCode IS NOT NULL
  GROUP BY eventName, STEP("SOURCE_SQL_STREAM_001".ROWTIME BY INTERVAL '1' HOUR);
"""


def rillet_sql(*args: object, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m rillet sql ARGS``: its exit status, stdout and stderr (tables as wide as
    they need: a terminal width the tests inherit would wrap cells)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-m", "rillet", "sql", *map(str, args)], capture_output=True,
                          text=True, input=stdin, timeout=120, env=env, cwd=cwd)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def trail_by_polars() -> pl.DataFrame:
    """The records read by polars alone, eventTime a UTC Datetime."""
    return pl.read_ndjson(TRAIL).with_columns(
        pl.col("eventTime").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC")
    )


def sort_rows(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns)


def naive_us(df: pl.DataFrame) -> pl.DataFrame:
    """Datetime columns as naive microseconds (UTC wall time): CSV's ISO text with a Z is read
    as naive, Parquet and Arrow keep the zone polars gave it."""
    return df.with_columns(
        pl.col(c).dt.replace_time_zone(None).dt.cast_time_unit("us")
        for c, t in df.schema.items() if isinstance(t, pl.Datetime)
    )


def batches(df: pl.DataFrame, size: int | None) -> list[pl.DataFrame]:
    if size is None:
        return [df]
    return [df.slice(i, size) for i in range(0, df.height, size)]


# ------------------------------------------------------------------------------ a SELECT
def test_sql_select_file_over_cloudtrail_equals_rl_sql_and_polars(tmp_path):
    query = write(tmp_path / "calls.sql", CALLS_SQL)
    out = tmp_path / "calls.parquet"
    done = rillet_sql(query, "--input", f"trail={TRAIL}", "--time", "trail=eventTime",
                      "--watermark", "trail=10m", "--output", out, "--late", tmp_path / "late.jsonl")
    assert done.returncode == 0, done.stderr
    got = pl.read_parquet(out)

    # The same query in Python, over the same file.
    want = rl.sql(CALLS_SQL, trail=rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="10m")).collect()
    assert_frame_equal(got, want)
    # CloudTrail delivers up to 579 s late here: a 10 minute watermark loses nothing.
    assert (tmp_path / "late.jsonl").read_text() == ""
    assert "rows in 2,900: accepted 2,900, late 0" in done.stderr

    # polars on its own: 10-minute buckets of eventTime, per service.
    by_polars = (
        trail_by_polars()
        .with_columns(pl.col("eventTime").dt.truncate("10m").alias("window_start"))
        .group_by("window_start", "eventSource")
        .agg(pl.len().cast(pl.Int64).alias("calls"),
             pl.col("sourceIPAddress").n_unique().cast(pl.Int64).alias("addresses"))
        .with_columns((pl.col("window_start") + pl.duration(minutes=10)).alias("window_end"))
        .select(got.columns)
    )
    assert_frame_equal(sort_rows(got), sort_rows(by_polars))


@pytest.mark.parametrize("size", [1, 7, None])
def test_sql_select_file_output_does_not_depend_on_batch_size(tmp_path, size):
    """The command's output equals rl.sql over the same records fed in batches of 1, 7 and
    all rows."""
    query = write(tmp_path / "calls.sql", CALLS_SQL)
    out = tmp_path / "calls.jsonl"
    done = rillet_sql(query, "--input", TRAIL, "--time", "eventTime", "--watermark", "10m", "--output", out)
    assert done.returncode == 0, done.stderr
    df = trail_by_polars().select("eventTime", "eventSource", "sourceIPAddress")
    want = rl.sql(CALLS_SQL, trail=rl.stream(batches(df, size), time="eventTime", watermark="10m")).collect()
    got = pl.read_ndjson(out, schema=want.schema)
    assert_frame_equal(sort_rows(got), sort_rows(want))


@pytest.fixture(scope="module")
def flights(tmp_path_factory) -> dict[str, Path]:
    """The first 3,000 flights of 2013 as CSV (the real file's lines), Parquet and Arrow IPC."""
    folder = tmp_path_factory.mktemp("flights")
    csv = folder / "flights.csv"
    with open(FLIGHTS, encoding="utf-8") as src, open(csv, "w", encoding="utf-8") as dst:
        for _, line in zip(range(3001), src):
            dst.write(line)
    df = pl.read_csv(csv, null_values="NA")
    df.write_parquet(folder / "flights.parquet")
    df.write_ipc(folder / "flights.arrow")
    return {"csv": csv, "parquet": folder / "flights.parquet", "ipc": folder / "flights.arrow"}


FLIGHTS_SQL = """\
SELECT window_start, window_end, origin, COUNT(*) AS flights, SUM(distance) AS miles
FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(time_hour), INTERVAL '3' HOUR))
GROUP BY window_start, window_end, origin
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet", "ipc"])
def test_sql_reads_csv_parquet_and_arrow_inputs_by_their_extension(tmp_path, flights, fmt):
    """A bare --input is the SELECT's one input, read as rillet run reads it."""
    query = write(tmp_path / "flights.sql", FLIGHTS_SQL)
    out = tmp_path / "out.parquet"
    done = rillet_sql(query, "--input", flights[fmt], "--time", "time_hour", "--watermark", "1d",
                      "--null-values", "NA", "--output", out)
    assert done.returncode == 0, done.stderr
    got = pl.read_parquet(out)
    df = pl.read_csv(flights["csv"], null_values="NA").with_columns(
        pl.col("time_hour").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC"))
    by_polars = (
        df.with_columns(pl.col("time_hour").dt.truncate("3h").alias("window_start"))
        .group_by("window_start", "origin")
        .agg(pl.len().cast(pl.Int64).alias("flights"), pl.col("distance").sum().alias("miles"))
        .with_columns((pl.col("window_start") + pl.duration(hours=3)).alias("window_end"))
        .select("window_start", "window_end", "origin", "flights", "miles")
    )
    assert got.height == by_polars.height
    assert_frame_equal(sort_rows(naive_us(got)), sort_rows(naive_us(by_polars)), check_dtypes=False)


def test_sql_prints_the_select_output_as_a_table(tmp_path):
    query = write(tmp_path / "calls.sql", CALLS_SQL)
    done = rillet_sql(query, "--input", TRAIL, "--time", "eventTime", "--watermark", "10m")
    assert done.returncode == 0, done.stderr
    want = rl.sql(CALLS_SQL, trail=rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="10m")).collect()
    # One table, every row: each service and count is on a row of it.
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("│") and "UTC" in ln]
    assert len(lines) == want.height
    for line, row in zip(lines, want.iter_rows(named=True)):
        cells = [c.strip() for c in line.strip("│").split("┆")]
        assert cells[2:] == [row["eventSource"], str(row["calls"]), str(row["addresses"])]


def test_sql_reads_the_text_from_standard_input(tmp_path):
    out = tmp_path / "calls.parquet"
    done = rillet_sql("-", "--input", f"trail={TRAIL}", "--time", "eventTime", "--watermark", "10m",
                      "--output", out, stdin=CALLS_SQL)
    assert done.returncode == 0, done.stderr
    want = rl.sql(CALLS_SQL, trail=rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="10m")).collect()
    assert_frame_equal(pl.read_parquet(out), want)


def test_sql_reads_a_folder_of_cloudtrail_logs_with_format_cloudtrail(tmp_path):
    records = [json.loads(line) for line in TRAIL.read_text().splitlines()]
    folder = tmp_path / "AWSLogs" / "123" / "CloudTrail" / "us-east-1"
    folder.mkdir(parents=True)
    for i in range(0, len(records), 1000):
        (folder / f"part{i:05}.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": records[i:i + 1000]}).encode()))
    query = write(tmp_path / "calls.sql", CALLS_SQL)
    out = tmp_path / "calls.parquet"
    done = rillet_sql(query, "--input", f"trail={tmp_path / 'AWSLogs'}", "--format", "trail=cloudtrail",
                      "--time", "trail=eventTime", "--watermark", "trail=10m", "--output", out)
    assert done.returncode == 0, done.stderr
    want = rl.sql(CALLS_SQL, trail=rl.stream(rl.read_cloudtrail(tmp_path / "AWSLogs"), time="eventTime",
                                             watermark="10m")).collect()
    got = pl.read_parquet(out)
    assert_frame_equal(got, want)
    assert got["calls"].sum() == len(records)


# ------------------------------------------------------------------------------ an application
def app_in_python(watermark: str) -> rl.ApplicationRun:
    return rl.Application(APP_SQL, rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark=watermark)).run()


def test_sql_application_writes_each_stream_to_a_folder(tmp_path):
    app = write(tmp_path / "app.sql", APP_SQL)
    done = rillet_sql(app, "--input", TRAIL, "--time", "eventTime", "--watermark", "10m",
                      "--output", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    want = app_in_python("10m")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["CALLS.parquet", "FAILURES.parquet"]
    for stream, df in want.streams.items():
        assert_frame_equal(pl.read_parquet(tmp_path / "out" / f"{stream}.parquet"), df)
    # One summary line per pump.
    assert "rillet: pump CALLS_PUMP: rows in 2,900" in done.stderr
    assert "rillet: pump FAILURES_PUMP: rows in 2,900" in done.stderr

    # polars on its own: failed calls per API and hour, ROWTIME the hour's end.
    failures = (
        trail_by_polars().filter(pl.col("errorCode").is_not_null())
        .group_by((pl.col("eventTime").dt.truncate("1h") + pl.duration(hours=1)).alias("ROWTIME"), "eventName")
        .agg(pl.len().cast(pl.Int64).alias("failures"))
    )
    got = pl.read_parquet(tmp_path / "out" / "FAILURES.parquet")
    assert_frame_equal(sort_rows(got), sort_rows(failures.select(got.columns)), check_dtypes=False)


def test_sql_application_prints_each_stream_under_its_name(tmp_path):
    app = write(tmp_path / "app.sql", APP_SQL)
    done = rillet_sql(app, "--input", f"SOURCE_SQL_STREAM_001={TRAIL}", "--time", "eventTime",
                      "--watermark", "10m", "--output", f"calls={tmp_path / 'calls.csv'}")
    assert done.returncode == 0, done.stderr
    want = app_in_python("10m").streams
    # CALLS went to its file (the stream name matched without regard to case); FAILURES is printed.
    got = pl.read_csv(tmp_path / "calls.csv", try_parse_dates=True)
    assert_frame_equal(sort_rows(got), sort_rows(want["CALLS"]), check_dtypes=False)
    assert done.stdout.startswith(f"FAILURES: {want['FAILURES'].height:,} rows\n")
    printed = [ln for ln in done.stdout.splitlines() if ln.startswith("│") and "UTC" in ln]
    assert len(printed) == want["FAILURES"].height
    assert "CALLS" not in done.stdout


def test_sql_application_late_rows_are_written_with_their_pump(tmp_path):
    """Without a watermark delay, CloudTrail's disorder makes rows late: none is lost, each is
    in --late under the pump that found it late."""
    app = write(tmp_path / "app.sql", APP_SQL)
    late = tmp_path / "late.parquet"
    done = rillet_sql(app, "--input", TRAIL, "--time", "eventTime", "--watermark", "0s", "--late", late,
                      "--output", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    want = app_in_python("0s")
    got = pl.read_parquet(late)
    for pump, run in want.runs.items():
        mine = got.filter(pl.col("pump") == pump)
        assert mine.height == run.late.height
        assert sorted(mine["eventID"].to_list()) == sorted(run.late["eventID"].to_list())

    # polars on its own, for CALLS_PUMP (every row): a row is late when its hour ended at or
    # before the latest event time seen before it.
    t = trail_by_polars()["eventTime"]
    before = t.cum_max().shift(1)
    is_late = (t.dt.truncate("1h") + dt.timedelta(hours=1)) <= before
    assert got.filter(pl.col("pump") == "CALLS_PUMP").height == int(is_late.fill_null(False).sum()) > 0
    calls = pl.read_parquet(tmp_path / "out" / "CALLS.parquet")
    assert calls["calls"].sum() + int(is_late.fill_null(False).sum()) == t.len()


# ------------------------------------------------------------------------------ errors
def test_sql_error_exits_2_with_line_column_and_caret_without_traceback(tmp_path):
    bad = write(tmp_path / "bad.sql", "SELECT window_start, COUNT(*) AS n\n"
                                      "FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '1' MINUTE))\n"
                                      "GROUP BY window_start, window_end, nosuchcolumn\n")
    done = rillet_sql(bad, "--input", f"trail={TRAIL}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    with pytest.raises(rl.SqlError) as e:
        rl.sql(bad.read_text(), trail=rl.read_jsonl(TRAIL))
    assert done.stderr == f"rillet: error: {e.value}\n"
    lines = done.stderr.splitlines()
    assert lines[0].startswith("rillet: error: line 3, column 36: ")
    source, caret = lines[1], lines[2]
    assert source == "  GROUP BY window_start, window_end, nosuchcolumn"
    assert source[caret.index("^"):].startswith("nosuchcolumn")
    assert done.stdout == ""


def test_sql_error_for_an_input_not_given_names_the_option(capsys, tmp_path):
    query = write(tmp_path / "calls.sql", CALLS_SQL)
    code, out, err = cli(capsys, "sql", query, "--input", f"logs={TRAIL}")
    assert code == 2
    assert "line 4, column 25: trail is not an input" in err
    assert "give it with --input trail=PATH" in err
    assert "rl.sql(" not in err
    assert err.splitlines()[-1].index("^") == err.splitlines()[-2].index("trail")


def test_sql_unreadable_text_is_a_sql_error_with_its_caret(capsys, tmp_path):
    query = write(tmp_path / "q.sql", "SELECT STREAM COUNT(*) AS n\nFROM trail\nGROUP BY STEP(trail.ROWTIME BY)\n")
    code, out, err = cli(capsys, "sql", query, "--input", f"trail={TRAIL}")
    assert code == 2
    assert err.startswith("rillet: error: line 3, column ")
    assert err.rstrip().endswith("^")
    assert out == ""


@pytest.mark.parametrize(("sql", "args", "message"), [
    (CALLS_SQL, [], "give the SQL's inputs: --input NAME=PATH"),
    (CALLS_SQL, ["--input", TRAIL, "--input", TRAIL], "two inputs without a name"),
    (CALLS_SQL, ["--input", TRAIL, "--watermark", "5m"], "needs its event-time column: --time trail=COL"),
    (CALLS_SQL, ["--input", f"a={TRAIL}", "--input", f"b={TRAIL}", "--time", "eventTime"],
     "--time eventTime: say which input, e.g. --time a=eventTime"),
    (CALLS_SQL, ["--input", f"trail={TRAIL}", "--time", "bogus=eventTime"],
     "--time bogus=eventTime: there is no input bogus (the inputs: trail)"),
    (CALLS_SQL, ["--input", f"trail={TRAIL}", "--input", TRAIL], "the SQL reads no input besides trail"),
    (CALLS_SQL, ["--input", TRAIL, "--output", "CALLS=x.csv"], "a SELECT has one output; write --output x.csv"),
    (APP_SQL, ["--input", TRAIL, "--output", "x.csv"],
     "the application fills 2 streams (CALLS, FAILURES); say which, --output STREAM=FILE"),
    (APP_SQL, ["--input", TRAIL, "--output", "NOPE=x.csv"], "the application fills no stream 'NOPE'"),
    (APP_SQL, ["--input", TRAIL, "--output", "CALLS=x.txt"], "end it in .csv, .jsonl or .parquet"),
    (CALLS_SQL, ["--input", f"trail={TRAIL}", "--format", "trail=xml"], "unknown format 'xml'"),
    (CALLS_SQL, ["--input", TRAIL, "--output", "calls.txt"], "end it in .csv, .jsonl or .parquet"),
    ("  \n", ["--input", TRAIL], "holds no SQL"),
])
def test_sql_usage_errors_say_what_is_accepted(capsys, tmp_path, sql, args, message):
    query = write(tmp_path / "q.sql", sql)
    code, out, err = cli(capsys, "sql", query, *args)
    assert code == 2
    assert message in err
    assert out == ""


def test_sql_command_is_in_the_help(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    assert "rillet sql app.sql --input" in out
    code, out, _ = cli(capsys, "sql", "--help")
    assert code == 0
    for option in ("--input [NAME=]PATH", "--time [NAME=]COL", "--watermark [NAME=]DURATION",
                   "--output [STREAM=]FILE|DIR", "SOURCE_SQL_STREAM_001"):
        assert option in out


# ------------------------------------------------------------------------------ the docs
DOC = Path(__file__).resolve().parents[1] / "docs" / "sql-cli-and-magic.md"


def test_sql_cli_doc_examples_run(tmp_path):
    """The page's calls.sql is the one these tests run, and each of its `rillet sql` command
    lines runs (the paths pointed at the real records) and gives what rl.sql gives."""
    import shlex

    text = DOC.read_text(encoding="utf-8")
    assert f"```sql\n{CALLS_SQL}```" in text
    write(tmp_path / "calls.sql", CALLS_SQL)
    records = [json.loads(line) for line in TRAIL.read_text().splitlines()]
    (tmp_path / "AWSLogs").mkdir()
    (tmp_path / "AWSLogs" / "trail.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    want = rl.sql(CALLS_SQL, trail=rl.stream(rl.read_jsonl(TRAIL), time="eventTime", watermark="10m")).collect()
    commands = [line for line in text.splitlines() if line.startswith("rillet sql calls.sql")]
    assert len(commands) == 3
    for command in commands:
        args = [str(TRAIL) if a.endswith("cloudtrail.jsonl") and "=" not in a else a for a in shlex.split(command)[2:]]
        args = [f"trail={TRAIL}" if a == "trail=cloudtrail.jsonl" else a for a in args]
        args = [f"trail={tmp_path / 'AWSLogs'}" if a == "trail=AWSLogs/" else a for a in args]
        args = [str(tmp_path / a) if a.endswith((".sql", ".parquet")) else a for a in args]
        done = rillet_sql(*args, cwd=tmp_path)
        assert done.returncode == 0, (command, done.stderr)
        if "--output" in args:
            assert_frame_equal(pl.read_parquet(tmp_path / "calls.parquet"), want)
        else:
            printed = [ln for ln in done.stdout.splitlines() if ln.startswith("│") and "UTC" in ln]
            assert len(printed) == want.height, command
