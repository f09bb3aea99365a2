"""The PostgreSQL sink: the table ends equal to the final result after amendments and after a
session changelog (-U/-D), re-runs upsert into the same table, a table of another shape and an
unreachable server are clear SinkErrors.

The server is the one at RILLET_TEST_POSTGRES_URI (CI starts it: .ci/services/postgres.sh);
without it the fixture starts a throwaway one with initdb, as that script does. Where neither is
possible the tests skip, except in CI (env CI set), where they fail.
"""
from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import polars as pl
import psycopg
import pytest
from conftest import batches

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# -- the server -----------------------------------------------------------------------------
def _unavailable(why: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"no PostgreSQL server for the sink tests in CI: {why}")
    pytest.skip(f"no PostgreSQL server: {why}; set RILLET_TEST_POSTGRES_URI or install PostgreSQL")


def _postgres_bin() -> Path | None:
    """A folder with initdb and pg_ctl: on PATH, or Debian's /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    folders = [Path(on_path).resolve().parent] if on_path else []
    folders += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((f for f in folders if (f / "initdb").exists() and (f / "pg_ctl").exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    uri = os.environ.get("RILLET_TEST_POSTGRES_URI")
    if uri:
        yield uri
        return
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _unavailable("initdb was not found on PATH nor in /usr/lib/postgresql/*/bin")
    # /tmp rather than pytest's tmp_path: the server's user must be able to reach the folder.
    folder = Path(tempfile.mkdtemp(prefix="rillet-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            _unavailable("running as root, and there is no 'postgres' user to run the server as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log, port = folder / "data", folder / "server.log", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*run_as, *args], check=True, capture_output=True, timeout=60, cwd=folder)

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "rillet", "--auth=trust", "-E", "UTF8",
           "--locale=C", "--no-sync")
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o",
           f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off", "start")
    except (OSError, subprocess.SubprocessError) as e:
        detail = e.stderr.decode(errors="replace") if isinstance(e, subprocess.CalledProcessError) else ""
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"could not start one with {bin_dir}: {e} {detail} {tail}")
    try:
        yield f"postgresql://rillet@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def table(postgres_uri: str) -> Iterator[str]:
    """A table name of its own for each test, dropped afterwards."""
    name = f"rillet_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres_uri, autocommit=True) as con:
        con.execute(f'DROP TABLE IF EXISTS "{name}"')


def _rows(uri: str, table: str, columns: list[str]) -> list[tuple]:
    """The table's rows as psycopg reads them (JSONB as Python lists and dicts), sorted."""
    with psycopg.connect(uri) as con:
        rows = con.execute(f'SELECT {", ".join(columns)} FROM "{table}"').fetchall()
    return sorted(rows)


def _assert_table_equals(uri: str, table: str, want: pl.DataFrame, keys: list[str]) -> None:
    """The table holds the rows of `want` (a `final` result), compared as Python values."""
    columns = keys + [c for c in want.columns if c not in keys]
    assert _rows(uri, table, [f'"{c}"' for c in columns]) == sorted(want.select(columns).rows())


def _types(uri: str, table: str) -> dict[str, str]:
    with psycopg.connect(uri) as con:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
            [table],
        ).fetchall()
    return dict(rows)


# -- the queries ----------------------------------------------------------------------------
def _events() -> pl.DataFrame:
    """Out of order by up to an hour: with watermark 2m and lateness 20m, windows are amended
    and some rows come too late even for that."""
    n = 2000
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=(i * 37) % 7200 // 2 + i) for i in range(n)],
        "svc": [f"s{i % 3}" for i in range(n)],
        "region": ["eu" if i % 5 else "us" for i in range(n)],
        "bytes": [float(i % 97) for i in range(n)],
        "user": [f"u{i % 7}" for i in range(n)],
    })


def _windows(emit: str, size: int | None = None) -> rl.Query:
    return (
        rl.stream(batches(_events(), size), time="t", watermark="2m")
        .window(rl.tumbling("10m"), by=["svc", "region"], lateness="20m", emit=emit)
        .agg(rl.count(), rl.mean("bytes"), rl.top_k("user", 2))
    )


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [None, 97])
def test_postgres_table_equals_final_after_amendments_and_late_rows(postgres_uri: str, table: str,
                                                                   size: int | None) -> None:
    run = _windows("amend", size).to_database(postgres_uri, table)
    final = _windows("final").run()
    assert run.metrics["rows_emitted"] > final.output.height  # amendments happened
    assert run.late.height > 0  # and rows came too late even for them
    _assert_table_equals(postgres_uri, table, final.output, ["svc", "region", "window_start"])
    assert _types(postgres_uri, table) == {
        "svc": "text", "region": "text", "window_start": "timestamp with time zone",
        "window_end": "timestamp with time zone", "count": "bigint",
        "bytes_mean": "double precision", "user_top_k": "jsonb",
    }


def _sessions(emit: str, size: int | None = None) -> rl.Query:
    # Naive datetimes (TIMESTAMP) and a 5-minute gap. By 00:30 the sessions [00:00, 00:08) and
    # [00:10, 00:17) of "a" are emitted; the late row at 00:06 bridges them into one, so one is
    # deleted (-D) and the other grows (-D of its old bounds, +I of the new ones).
    minutes = [0, 1, 3, 10, 12, 4, 30, 6, 61, 33, 14, 90]
    df = pl.DataFrame({
        "t": [dt.datetime(2026, 1, 1) + dt.timedelta(minutes=m) for m in minutes],
        "k": ["a", "b", "a", "a", "a", "b", "a", "a", "a", "a", "b", "b"],
        "ok": [True, False, True, True, False, True, False, True, True, True, False, True],
    })
    return (
        rl.stream(batches(df, size), time="t", watermark="1m")
        .window(rl.session("5m"), by="k", lateness="1h", emit=emit)
        .agg(rl.count(), rl.count("ok", where=pl.col("ok")).alias("oks"), rl.first("ok"))
    )


@pytest.mark.parametrize("size", [None, 1])
def test_postgres_session_changelog_deletes_retracted_rows(postgres_uri: str, table: str, size: int | None) -> None:
    ops = set(_sessions("changelog").collect()["op"])
    assert {"+I", "-D"} == ops
    _sessions("changelog", size).to_database(postgres_uri, table)
    _assert_table_equals(postgres_uri, table, _sessions("final").collect(), ["k", "window_start"])
    types = _types(postgres_uri, table)
    assert (types["window_start"], types["ok_first"]) == ("timestamp without time zone", "boolean")


def test_postgres_rerun_into_the_existing_table_upserts(postgres_uri: str, table: str) -> None:
    _windows("final").to_database(postgres_uri, table)
    _windows("amend").to_database(postgres_uri, table)
    _assert_table_equals(postgres_uri, table, _windows("final").collect(), ["svc", "region", "window_start"])


@pytest.mark.parametrize("ddl", [
    # another query's table: other value columns
    ('("svc" TEXT, "region" TEXT, "window_start" TIMESTAMPTZ, "window_end" TIMESTAMPTZ, '
     '"errors" BIGINT, PRIMARY KEY ("svc", "region", "window_start", "window_end"))'),
    # the right columns, but another key
    ('("svc" TEXT, "region" TEXT, "window_start" TIMESTAMPTZ, "window_end" TIMESTAMPTZ, '
     '"count" BIGINT, "bytes_mean" DOUBLE PRECISION, "user_top_k" JSONB, PRIMARY KEY ("svc"))'),
])
def test_postgres_table_of_another_shape_is_a_sink_error(postgres_uri: str, table: str, ddl: str) -> None:
    with psycopg.connect(postgres_uri, autocommit=True) as con:
        con.execute(f'CREATE TABLE "{table}" {ddl}')
    with pytest.raises(rl.SinkError, match=f"table '{table}' .* already exists and does not fit"):
        _windows("final").to_database(postgres_uri, table)


def test_postgres_unreachable_server_is_a_quick_sink_error() -> None:
    port = _free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(rl.SinkError, match=f"127.0.0.1:{port}") as e:
        _windows("final").to_database(f"postgres://rillet:hunter2@127.0.0.1:{port}/metrics", "m")
    assert time.monotonic() - started < 5
    assert "hunter2" not in str(e.value)
    assert "is running and accepts connections" in str(e.value)


def test_postgres_driver_missing_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(rl.ConfigError, match=r"pip install 'rillet\[postgres\]'"):
        _windows("final").to_database("postgresql://localhost/db", "m")
