"""File sinks and CLI outputs a user can trust with hostile values and sudden deaths.

- Partition values are escaped as Hive escapes them: no value writes outside the target, and
  hive readers (polars, DuckDB) decode the folders back to the values.
- A dataset read back with ``pl.scan_parquet(dir, hive_partitioning=True)`` or DuckDB gives
  the emitted rows (the files keep every column; the folders are named after a derived one).
- A sink killed with SIGKILL mid-write leaves nothing inside the dataset that a reader trips
  on: files are staged beside it and renamed in whole.
- CSV written by ``rillet run`` cannot carry a spreadsheet formula (OWASP's CSV injection).
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import batches
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rillet as rl
from rillet.__main__ import main
from rillet.sinks.writers import HIVE_DEFAULT_PARTITION

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SLOW = os.environ.get("RILLET_HYPOTHESIS", "fast") == "slow"


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _everything_under(root: Path) -> list[Path]:
    return [Path(d) / f for d, dirs, files in os.walk(root) for f in [*files, *dirs]]


def _keyed_query(keys: list[str | None]) -> rl.Query:
    """One window per key: the key column is the partition column."""
    df = pl.DataFrame({"t": list(range(len(keys))), "k": keys, "v": list(range(len(keys)))},
                      schema={"t": pl.Int64, "k": pl.String, "v": pl.Int64})
    return rl.stream(df, time="t").window(rl.tumbling(1_000), by="k").agg(rl.count(), rl.sum("v"))


# ------------------------------------------------------------------------ 1. hive escaping
def _check_partitioned_by_key(keys: list[str | None], fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        out = base / "a" / "b" / "out"
        want = _keyed_query(keys).collect()
        getattr(_keyed_query(keys), f"to_{fmt}")(out, partition_by="k")
        # Nothing outside the target (the staging folder beside it is removed at the end).
        assert sorted(p.name for p in (base / "a" / "b").iterdir()) == ["out"]
        assert set(base.iterdir()) == {base / "a"}
        written = _everything_under(out)
        assert written and all(_inside(p, out) for p in written)
        # Every folder is one level down and named k_part=...
        files = [p for p in written if p.is_file()]
        assert all(f.parent.parent == out and f.parent.name.startswith("k_part=") for f in files)
        if fmt == "jsonl":
            back = pl.concat([pl.read_ndjson(f, schema=want.schema) for f in files])
            assert_frame_equal(back.sort("k", nulls_last=True), want.sort("k", nulls_last=True))
            return
        # The folders' column read as text: readers otherwise guess its type from the values
        # ("00" would come back as the integer 0).
        by_polars = pl.scan_parquet(out, hive_partitioning=True, hive_schema={"k_part": pl.String}).collect()
        con = duckdb.connect()
        by_duckdb = con.sql(f"SELECT * FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true, "
                            "hive_types={'k_part': VARCHAR})").pl()
        con.close()
        for back in (by_polars, by_duckdb):
            got = back.sort("k", nulls_last=True)
            # The files give the original values and types...
            assert_frame_equal(got.select(want.columns), want.sort("k", nulls_last=True))
            # ...and the folders decode back to them (Hive reads an empty value as null).
            assert got["k_part"].to_list() == [k or None for k in got["k"].to_list()]


HOSTILE = ["../../../x", "..", ".", "/etc/passwd", "a/../../b", "\\..\\..\\x", "C:\\x", "k=v", "100%",
           "%2F", "\x00nul", "tab\there", "new\nline", "?*[]{}^'\"#", "", None]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
def test_hive_partition_value_cannot_escape_the_directory(fmt: str, value: str | None) -> None:
    _check_partitioned_by_key([value, "ok"], fmt)


def test_hive_partition_values_all_in_one_dataset() -> None:
    _check_partitioned_by_key([*HOSTILE, "ok"], "parquet")


@given(st.lists(st.one_of(st.none(), st.text(max_size=30)), min_size=1, max_size=6))
@settings(max_examples=200 if SLOW else 25)
def test_hive_partition_of_any_text_stays_inside_and_reads_back(keys: list[str | None]) -> None:
    _check_partitioned_by_key(keys, "parquet")


def test_hive_partition_column_name_cannot_escape_the_directory(tmp_path: Path) -> None:
    q = (rl.stream(_events(), time="t", watermark="2m").window(rl.tumbling("10m"), by="svc")
         .agg(rl.count().alias("../../evil")))
    want = q.collect()
    q.to_parquet(tmp_path / "a" / "out", partition_by="../../evil")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert all(_inside(p, tmp_path / "a" / "out") for p in _everything_under(tmp_path / "a" / "out"))
    back = pl.scan_parquet(tmp_path / "a" / "out", hive_partitioning=True).collect()
    assert_frame_equal(back.select(want.columns).sort(ORDER), want.sort(ORDER))
    # Readers show the folders' column name as escaped (polars and DuckDB decode values only).
    assert back["..%2F..%2Fevil_part"].cast(pl.Int64).to_list() == back["../../evil"].to_list()


def test_hive_null_partition_is_the_hive_default_partition(tmp_path: Path) -> None:
    _keyed_query([None, "a"]).to_parquet(tmp_path / "out", partition_by="k")
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == [f"k_part={HIVE_DEFAULT_PARTITION}", "k_part=a"]


def test_hive_partition_value_too_long_for_a_folder_is_a_sink_error(tmp_path: Path) -> None:
    with pytest.raises(rl.SinkError, match=r"makes a folder name of \d+ bytes.*partition by a column"):
        _keyed_query(["x" * 300]).to_parquet(tmp_path / "out", partition_by="k")


# --------------------------------------------------------------- 16. the dataset reads back
def _events() -> pl.DataFrame:
    n = 3000
    times = [T0 + dt.timedelta(seconds=(i * 37) % 7200 // 2 + i) for i in range(n)]
    return pl.DataFrame({"t": times, "svc": [f"s{i % 4}" for i in range(n)], "bytes": [i % 97 for i in range(n)]})


def _windows(source: object) -> rl.Query:
    return (rl.stream(source, time="t", watermark="2m")
            .window(rl.tumbling("10m"), by="svc", lateness="20m")
            .agg(rl.count(), rl.sum("bytes"), rl.mean("bytes")))


ORDER = ["window_start", "svc"]


@pytest.mark.parametrize("size", [1, 7, None])
def test_parquet_dataset_with_defaults_reads_back_as_the_emitted_rows(tmp_path: Path, size: int | None) -> None:
    want = _windows(_events()).collect().sort(ORDER)
    _windows(batches(_events(), size)).to_parquet(tmp_path / "out", max_rows=97)
    by_polars = pl.scan_parquet(tmp_path / "out", hive_partitioning=True).collect()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    by_duckdb = con.sql(
        f"SELECT * FROM read_parquet('{tmp_path / 'out'}/**', hive_partitioning=true)").pl()
    con.close()
    for back in (by_polars, by_duckdb):
        assert_frame_equal(back.select(want.columns).sort(ORDER), want)
        assert back.columns == [*want.columns, "window_start_1h"]
        # The folder holds the hour of the window's start.
        hour = back["window_start"].dt.truncate("1h").dt.strftime("%Y-%m-%d %H:%M:%S")
        assert back["window_start_1h"].cast(pl.String).str.slice(0, 19).to_list() == hour.to_list()


def test_jsonl_dataset_with_defaults_reads_back_as_the_emitted_rows(tmp_path: Path) -> None:
    want = _windows(_events()).collect().sort(ORDER)
    _windows(_events()).to_jsonl(tmp_path / "out", max_rows=97)
    files = sorted((tmp_path / "out").rglob("*.jsonl"))
    by_polars = pl.concat([pl.read_ndjson(f, schema=want.schema) for f in files])
    assert_frame_equal(by_polars.sort(ORDER), want)
    assert all(f.parent.name.startswith("window_start_1h=") for f in files)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    by_duckdb = con.sql(
        f"SELECT * FROM read_json('{tmp_path / 'out'}/**/*.jsonl', hive_partitioning=true)").pl()
    con.close()
    assert_frame_equal(by_duckdb.select(want.columns).sort(ORDER), want)
    assert by_duckdb.columns == [*want.columns, "window_start_1h"]


def test_partition_folder_never_takes_an_output_column_name(tmp_path: Path) -> None:
    q = (rl.stream(_events(), time="t", watermark="2m").window(rl.tumbling("10m"), by="svc")
         .agg(rl.count().alias("window_start_1h")))
    want = q.collect()
    q.to_parquet(tmp_path / "out")
    back = pl.scan_parquet(tmp_path / "out", hive_partitioning=True).collect()
    assert_frame_equal(back.select(want.columns).sort(ORDER), want.sort(ORDER))
    assert {p.name.split("=")[0] for p in (tmp_path / "out").iterdir()} == {"window_start_1h_"}


# ------------------------------------------------------------------ 13. killed mid-write
CHILD = textwrap.dedent("""
    import datetime as dt, sys
    import polars as pl
    import rillet as rl

    T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    KEYS = 30_000

    def minutes():
        for m in range(int(sys.argv[2])):
            yield pl.DataFrame({
                "t": [T0 + dt.timedelta(minutes=m)] * KEYS,
                "svc": pl.arange(0, KEYS, eager=True).cast(pl.String),
                "bytes": pl.arange(m, m + KEYS, eager=True),
            })

    (rl.stream(minutes(), time="t")
       .window(rl.tumbling("1m"), by="svc")
       .agg(rl.count(), rl.sum("bytes"), rl.mean("bytes"), rl.max("bytes"))
       .to_parquet(sys.argv[1], every="5m", max_rows=KEYS, max_delay=None, progress=False))
""")


def _staged(out: Path) -> set[str]:
    root = out.with_name(out.name + ".rillet-staging")
    try:
        return {f.name for d in root.iterdir() for f in d.iterdir()}
    except OSError:
        return set()


def _kill_while_staging(out: Path, nth: int, extra_ms: int) -> None:
    """Starts a sink writing a large dataset; SIGKILLs it `extra_ms` after its `nth` file
    appears in the staging folder (while it is being written)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), "10000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen: set[str] = set()
        deadline = time.monotonic() + 120
        while len(seen) < nth and time.monotonic() < deadline and child.poll() is None:
            seen |= _staged(out)
            if len(list(out.rglob("part-*"))) > nth + 2:
                break  # files land in the dataset without being staged beside it
            time.sleep(0.0005)
        assert len(seen) >= nth, "no file was staged outside the dataset before being renamed in"
        time.sleep(extra_ms / 1000)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stderr:
            child.stderr.close()


def _check_dataset_reads_whole(out: Path) -> int:
    """Every file inside the dataset is a complete Parquet file; both readers count exactly
    their rows. Returns that count."""
    files = [p for p in _everything_under(out) if p.is_file()]
    assert all(f.name.startswith("part-") and f.name.endswith(".parquet") for f in files), files
    complete = sum(pl.read_parquet(f).height for f in files)
    if not files:
        return 0
    by_polars = pl.scan_parquet(out, hive_partitioning=True).select(pl.len()).collect().item()
    con = duckdb.connect()
    [(by_duckdb,)] = con.sql(f"SELECT count(*) FROM read_parquet('{out}/**', hive_partitioning=true)").fetchall()
    con.close()
    assert by_polars == by_duckdb == complete
    return complete


@given(nth=st.integers(1, 4), extra_ms=st.integers(0, 40))
@settings(max_examples=12 if SLOW else 3, derandomize=not SLOW)
def test_file_sink_killed_mid_write_leaves_no_partial_file_in_the_dataset(nth: int, extra_ms: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        _kill_while_staging(out, nth, extra_ms)
        rows = _check_dataset_reads_whole(out)
        assert rows % 30_000 == 0  # whole files only: each holds one minute's 30,000 keys
        # The next sink on the dataset removes what the killed one left in its staging folder.
        subprocess.run([sys.executable, "-c", CHILD, str(out), "2"], check=True)
        assert not out.with_name("out.rillet-staging").exists()
        assert _check_dataset_reads_whole(out) == rows + 2 * 30_000


def test_file_sink_removes_temporary_files_left_inside_the_dataset(tmp_path: Path) -> None:
    # What a sink killed mid-write used to leave: a hidden temporary file among the parts.
    out = tmp_path / "out"
    (out / "window_start=2026-01-01 00%3A00%3A00").mkdir(parents=True)
    leftover = out / "window_start=2026-01-01 00%3A00%3A00" / ".part-20260101T000000000000-abcd1234.parquet.tmp"
    leftover.write_bytes(b"PAR1 half a file")
    _windows(_events()).to_parquet(out)
    assert not leftover.exists()
    assert _check_dataset_reads_whole(out) == _windows(_events()).collect().height


# ------------------------------------------------------------------ 3. CSV formula injection
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", "safe", "a=b"]


def _neutral(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> int:
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = int(e.code or 0)
    capsys.readouterr()
    return code


def test_csv_output_neutralises_formula_cells(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    def at(s: int) -> str:
        return f"2026-01-01T00:{s // 60:02d}:{s % 60:02d}Z"

    rows = [{"t": at(10 * i), "name": name, "n": -i - 1} for i, name in enumerate(FORMULAS)]
    # A late row (its window closed) and a rejected one (no readable time), both with formulas.
    rows += [{"t": at(0), "name": "=LATE()", "n": -100}, {"t": "=BAD()", "name": "-rejected", "n": -7}]
    src = tmp_path / "in.csv"
    pl.DataFrame({k: [str(r[k]) for r in rows] for k in ("t", "name", "n")}).write_csv(src)
    out, late, rejected = tmp_path / "out.csv", tmp_path / "late.csv", tmp_path / "rejected.csv"
    code = _cli(capsys, "run", src, "--time", "t", "--window", "tumbling:10s", "--by", "name", "--agg", "sum:n",
                "--output", out, "--late", late, "--rejected", rejected, "--no-progress")
    assert code == 0
    got = pl.read_csv(out)
    # Numbers stay numbers, negative ones included; every text cell reads as text.
    assert got.schema["n_sum"] == pl.Int64 and got["n_sum"].to_list() == [-i - 1 for i in range(len(FORMULAS))]
    assert got["name"].to_list() == [_neutral(f) for f in FORMULAS]
    late_rows = pl.read_csv(late)
    assert late_rows["name"].to_list() == ["'=LATE()"] and late_rows["n"].to_list() == [-100]
    rejected_rows = pl.read_csv(rejected)
    assert rejected_rows.select("t", "name", "n").rows() == [("'=BAD()", "'-rejected", -7)]
    assert rejected_rows["reason"].str.contains("=BAD()", literal=True).all()
    # The same run as JSON Lines keeps the text as it is (the quote is for spreadsheets only).
    assert _cli(capsys, "run", src, "--time", "t", "--window", "tumbling:10s", "--by", "name", "--agg", "sum:n",
                "--output", tmp_path / "out.jsonl", "--no-progress") == 0
    assert pl.read_ndjson(tmp_path / "out.jsonl")["name"].to_list() == FORMULAS


def test_csv_header_cannot_be_a_formula(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("t,=cmd\n1,2\n")
    out = tmp_path / "out.csv"
    assert _cli(capsys, "run", src, "--time", "t", "--window", "tumbling:10", "--by", "=cmd", "--output", out,
                "--no-progress") == 0
    assert out.read_text().splitlines()[0].split(",")[0] == "'=cmd"


def test_run_help_tells_about_formula_neutralising(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "single quote" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_windows_after_year_9999_are_written_to_their_partition(tmp_path: Path, fmt: str) -> None:
    # Python datetimes stop at 9999; the engine's microsecond times (and polars') do not.
    us = pl.Series([253_402_300_799_000_000 + k * 3_600_000_000 for k in (1, 2, 30)], dtype=pl.Int64)
    events = pl.DataFrame({"t": us.cast(pl.Datetime("us", "UTC")), "svc": ["a", "b", "a"]})
    q = rl.stream(events, time="t").window(rl.tumbling("1h"), by="svc").agg(rl.count())
    want = q.collect()
    getattr(q, f"to_{fmt}")(tmp_path / "out")
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    hours = want["window_start"].dt.truncate("1h").dt.strftime("%Y-%m-%d %H:%M:%S").unique().sort()
    assert folders == ["window_start_1h=" + h.replace(":", "%3A") for h in hours]
    if fmt == "parquet":
        back = pl.scan_parquet(tmp_path / "out", hive_partitioning=False).collect()
        assert_frame_equal(back.sort(ORDER), want.sort(ORDER))
