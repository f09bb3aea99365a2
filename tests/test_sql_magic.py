"""``%load_ext rillet`` and ``%%rillet_sql``: a cell's SQL over the notebook's variables gives
what ``rl.sql`` / ``rl.Application`` give in Python on the same frames (and what polars
computes on its own), ``--live`` gives the running query, and an error in the SQL shows its
message and caret without a traceback. Run in IPython's InteractiveShell on the real
CloudTrail records (/work/shared/data/real).
"""
from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_sql_cli import APP_SQL

import rillet as rl

pytest.importorskip("IPython")

REAL = Path(os.environ.get("RILLET_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
TRAIL = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"

pytestmark = pytest.mark.skipif(not TRAIL.exists(), reason=f"the real data sets are not at {REAL}")

CALLS_SQL = """\
SELECT window_start, window_end, eventSource, COUNT(*) AS calls
FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '10' MINUTE))
GROUP BY window_start, window_end, eventSource
"""



@pytest.fixture(scope="module")
def records() -> pl.DataFrame:
    """The CloudTrail records in file order, eventTime a UTC Datetime."""
    return pl.read_ndjson(TRAIL).select(
        pl.col("eventTime").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC"),
        "eventSource", "eventName", "errorCode", "sourceIPAddress", "eventID",
    )


@pytest.fixture(scope="module")
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.colors = "NoColor"
    result = ip.run_cell("%load_ext rillet")
    assert result.success, result.error_in_exec
    return ip


@pytest.fixture
def ns(shell):
    """The notebook's namespace, emptied of what a previous test left in it."""
    added = set(shell.user_ns) - set(shell.user_ns_hidden)
    for name in added:
        del shell.user_ns[name]
    return shell.user_ns


def batches(df: pl.DataFrame, size: int | None) -> list[pl.DataFrame]:
    if size is None:
        return [df]
    return [df.slice(i, size) for i in range(0, df.height, size)]


def cell(shell, line: str, body: str):
    return shell.run_cell(f"%%rillet_sql {line}\n{body}")


def sort_rows(df: pl.DataFrame) -> pl.DataFrame:
    return df.sort(df.columns)


# ------------------------------------------------------------------------------ a SELECT
@pytest.mark.parametrize("size", [1, 7, None])
def test_magic_select_stores_what_rl_sql_gives(shell, ns, records, capsys, size):
    ns["trail"] = rl.stream(batches(records, size), time="eventTime", watermark="10m")
    result = cell(shell, "--name calls", CALLS_SQL)
    assert result.success, result.error_in_exec
    want = rl.sql(CALLS_SQL, trail=rl.stream(batches(records, size), time="eventTime", watermark="10m")).collect()
    assert_frame_equal(ns["calls"], want)
    # The cell's value is the output (shown as its Out), the run is kept beside it.
    assert_frame_equal(result.result, want)
    assert isinstance(ns["calls_run"], rl.Run)
    assert ns["calls_run"].late.height == 0
    assert_frame_equal(ns["calls_run"].output, want)

    by_polars = (
        records.group_by(pl.col("eventTime").dt.truncate("10m").alias("window_start"), "eventSource")
        .agg(pl.len().cast(pl.Int64).alias("calls"))
        .with_columns((pl.col("window_start") + pl.duration(minutes=10)).alias("window_end"))
        .select(want.columns)
    )
    assert_frame_equal(sort_rows(ns["calls"]), sort_rows(by_polars))


def test_magic_result_defaults_to_rillet_and_names_match_variables_without_case(shell, ns, records):
    ns["trail"] = rl.stream(records, time="eventTime", watermark="10m")
    # TRAIL in the SQL is the variable trail (unquoted SQL names ignore case).
    result = cell(shell, "", CALLS_SQL.replace("TABLE trail", "TABLE TRAIL"))
    assert result.success, result.error_in_exec
    want = rl.sql(CALLS_SQL, trail=rl.stream(records, time="eventTime", watermark="10m")).collect()
    assert_frame_equal(ns["_rillet"], want)


def test_magic_says_where_late_rows_are(shell, ns, records, capsys):
    ns["trail"] = rl.stream(records, time="eventTime", watermark="0s")
    result = cell(shell, "--name calls", CALLS_SQL)
    assert result.success, result.error_in_exec
    late = rl.sql(CALLS_SQL, trail=rl.stream(records, time="eventTime", watermark="0s")).run().late
    assert late.height > 0
    assert ns["calls_run"].late["eventID"].to_list() == late["eventID"].to_list()
    out = capsys.readouterr().out
    assert f"rillet: {late.height:,} late and 0 rejected rows: calls_run.late, calls_run.rejected" in out


# ------------------------------------------------------------------------------ an application
def test_magic_application_stores_each_stream_and_shows_them(shell, ns, records, capsys):
    ns["logs"] = rl.stream(records, time="eventTime", watermark="10m")
    result = cell(shell, "--source logs --name app", APP_SQL)
    assert result.success, result.error_in_exec
    want = rl.Application(APP_SQL, rl.stream(records, time="eventTime", watermark="10m")).run()
    assert list(ns["app"]) == ["CALLS", "FAILURES"]
    for stream, df in want.streams.items():
        assert_frame_equal(ns["app"][stream], df)
    assert isinstance(ns["app_run"], rl.ApplicationRun)
    out = capsys.readouterr().out
    assert f"CALLS: {want.streams['CALLS'].height:,} rows" in out
    assert f"FAILURES: {want.streams['FAILURES'].height:,} rows" in out

    failures = (
        records.filter(pl.col("errorCode").is_not_null())
        .group_by((pl.col("eventTime").dt.truncate("1h") + pl.duration(hours=1)).alias("ROWTIME"), "eventName")
        .agg(pl.len().cast(pl.Int64).alias("failures"))
        .select(want.streams["FAILURES"].columns)
    )
    assert_frame_equal(sort_rows(ns["app"]["FAILURES"]), sort_rows(failures), check_dtypes=False)


def test_magic_application_input_may_be_a_variable_named_as_the_sql_does(shell, ns, records):
    ns["SOURCE_SQL_STREAM_001"] = rl.stream(records, time="eventTime", watermark="10m")
    result = cell(shell, "", APP_SQL)
    assert result.success, result.error_in_exec
    want = rl.Application(APP_SQL, rl.stream(records, time="eventTime", watermark="10m")).run()
    assert_frame_equal(ns["_rillet"]["CALLS"], want.streams["CALLS"])


# ------------------------------------------------------------------------------ --live
def test_magic_live_returns_the_running_query(shell, ns, records, capsys):
    ns["trail"] = rl.stream(records, time="eventTime", watermark="10m")
    result = cell(shell, "--live --name handle", CALLS_SQL)
    assert result.success, result.error_in_exec
    handle = ns["handle"]
    assert isinstance(handle, rl.RunningQuery)
    assert result.result is handle  # the cell's value: its live view shows
    run = handle.wait(60)
    want = rl.sql(CALLS_SQL, trail=rl.stream(records, time="eventTime", watermark="10m")).collect()
    assert_frame_equal(run.output, want)
    # Outside a notebook the view is the text view, printed.
    assert "rillet query" in capsys.readouterr().out


def test_magic_live_application_shows_each_pump(shell, ns, records, capsys):
    ns["logs"] = rl.stream(records, time="eventTime", watermark="10m")
    result = cell(shell, "--live --source logs --name app", APP_SQL)
    assert result.success, result.error_in_exec
    done = ns["app"].wait(60)
    want = rl.Application(APP_SQL, rl.stream(records, time="eventTime", watermark="10m")).run()
    for stream, df in want.streams.items():
        assert_frame_equal(done.streams[stream], df)
    out = capsys.readouterr().out
    assert "pump CALLS_PUMP -> CALLS" in out
    assert "pump FAILURES_PUMP -> FAILURES" in out


# ------------------------------------------------------------------------------ errors
def test_magic_sql_error_shows_its_caret_without_a_traceback(shell, ns, records, capsys):
    ns["trail"] = records
    bad = CALLS_SQL.replace("GROUP BY window_start, window_end, eventSource",
                            "GROUP BY window_start, window_end, nosuchcolumn")
    result = cell(shell, "--name calls", bad)
    assert not result.success
    with pytest.raises(rl.SqlError) as e:
        rl.sql(bad, trail=records)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(e.value) in err
    assert "line 3, column 36:" in err
    source, caret = err.rstrip("\n").splitlines()[-2:]
    assert source[caret.index("^"):].startswith("nosuchcolumn")
    assert "calls" not in ns


def test_magic_input_without_a_variable_says_so(shell, ns, capsys):
    result = cell(shell, "", CALLS_SQL)
    assert not result.success
    err = capsys.readouterr().err
    assert "line 2, column 25: trail is not an input; the notebook has no variable trail" in err
    assert "Traceback" not in err
    assert err.rstrip("\n").splitlines()[-1].index("^") == err.rstrip("\n").splitlines()[-2].index("trail")

    result = cell(shell, "", APP_SQL)
    assert not result.success
    assert "%%rillet_sql --source VARIABLE" in capsys.readouterr().err


def test_magic_run_error_is_its_message_without_a_traceback(shell, ns, capsys):
    # An integer time column takes integer durations: INTERVAL '10' MINUTE is refused at the run.
    ns["trail"] = pl.DataFrame({"eventTime": [1, 2, 3], "eventSource": ["a", "b", "a"]})
    result = cell(shell, "", CALLS_SQL)
    assert not result.success
    err = capsys.readouterr().err
    assert "ConfigError: " in err
    assert "integer" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("line", "body", "message"), [
    ("--bogus", CALLS_SQL, "unrecognized arguments: --bogus"),
    ("--name 1x", CALLS_SQL, "--name takes a variable name"),
    ("", "   \n", "the cell is empty"),
    ("--source trail", CALLS_SQL, "--source gives an application's SOURCE_SQL_STREAM_001"),
    ("--source nothere", APP_SQL, "the notebook has no variable 'nothere'"),
])
def test_magic_bad_options_are_usage_errors(shell, ns, records, capsys, line, body, message):
    ns["trail"] = records
    result = cell(shell, line, body)
    assert not result.success
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_magic_help_is_its_docstring(shell, ns, capsys):
    result = cell(shell, "--help", CALLS_SQL)  # prints the help; runs nothing
    assert result.success
    assert "_rillet" not in ns
    out = capsys.readouterr().out
    assert "%%rillet_sql [--name RESULT] [--live] [--source VARIABLE]" in out
    assert shell.find_cell_magic("rillet_sql").__doc__.startswith("Runs a streaming SQL query")



# ------------------------------------------------------------------------------ the docs
DOC = Path(__file__).resolve().parents[1] / "docs" / "sql-cli-and-magic.md"


def test_magic_doc_examples_run(shell, ns, records):
    """Each %%rillet_sql cell of the page runs as written, over the variables it names, and
    gives what rl.sql / rl.Application give."""
    import re

    cells = re.findall(r"```sql\n(%%rillet_sql[^\n]*\n.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(cells) == 2
    select, app = cells
    ns["trail"] = rl.stream(records, time="eventTime", watermark="10m")
    result = shell.run_cell(select)
    assert result.success, result.error_in_exec
    body = select.split("\n", 1)[1]
    want = rl.sql(body, trail=rl.stream(records, time="eventTime", watermark="10m")).collect()
    assert_frame_equal(ns["calls"], want)

    assert app.split("\n", 1)[1] == APP_SQL
    ns["logs"] = rl.stream(records, time="eventTime", watermark="10m")
    result = shell.run_cell(app)
    assert result.success, result.error_in_exec
    want_app = rl.Application(APP_SQL, rl.stream(records, time="eventTime", watermark="10m")).run()
    for stream, df in want_app.streams.items():
        assert_frame_equal(ns["app"][stream], df)
