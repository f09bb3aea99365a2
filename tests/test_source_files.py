"""rl.read_parquet / rl.read_ipc, and what every file source shares: schema= and order_by=.

Oracles: the same query over rl.stream(DataFrame) on the same rows (the benchmark workload
and real flight data), polars' own sort for the order_by merge, and polars' readers for the
rows read back.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
BENCH_GEN = SHARED / "bench" / "gen_events.py"
FLIGHTS = SHARED / "data" / "real" / "nycflights13" / "flights.csv"
BATCH_ROWS = [1, 7, None]


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    if not BENCH_GEN.exists():
        pytest.skip("shared/bench/gen_events.py not present")
    out = tmp_path_factory.mktemp("workload") / "events.parquet"
    subprocess.run([sys.executable, str(BENCH_GEN), "--events", "6000", "--seed", "3", "--out", str(out)],
                   check=True, capture_output=True)
    return pl.read_parquet(out)


def _k1(source, **kw) -> rl.Query:
    return (
        rl.stream(source, time="event_time", watermark="200ms")
        .window(rl.tumbling("1s"), by=["event_source", "event_name"], lateness="100ms", **kw)
        .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"))
    )


def _same_run(got: rl.Run, want: rl.Run) -> None:
    assert_frame_equal(got.output, want.output)
    assert_frame_equal(got.late, want.late)
    for m in ("rows_in", "rows_accepted", "rows_late", "rows_rejected", "rows_emitted"):
        assert got.metrics[m] == want.metrics[m], m


def _write_parts(df: pl.DataFrame, folder: Path, fmt: str, parts: int = 3) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-df.height // parts)
    paths = []
    for i in range(parts):
        part = df.slice(i * size, size)
        p = folder / f"part_{i}.{fmt}"
        if fmt == "parquet":
            part.write_parquet(p, row_group_size=1000, compression=["zstd", "snappy", "lz4"][i % 3])
        elif i % 2:
            part.write_ipc_stream(p)  # the stream format
        else:
            part.write_ipc(p, compression=["uncompressed", "zstd", "lz4"][i % 3])
        paths.append(p)
    return paths


# -- 1. the workload round-trips through Parquet and Arrow IPC --------------------------------
@pytest.mark.parametrize("fmt", ["parquet", "ipc"])
@pytest.mark.parametrize("batch_rows", BATCH_ROWS)
def test_workload_replays_equal_to_the_dataframe(workload: pl.DataFrame, tmp_path: Path, fmt: str,
                                                 batch_rows: int | None) -> None:
    df = workload if batch_rows is None else workload.head(1500)
    _write_parts(df, tmp_path, fmt)
    read = rl.read_parquet if fmt == "parquet" else rl.read_ipc
    source = read(str(tmp_path / f"part_*.{fmt}"), batch_rows=batch_rows or 65_536)
    assert all(c.frame.height <= (batch_rows or 65_536) for c in source.chunks())
    got = _k1(source, emit="amend").run(progress=False)
    want = _k1(df, emit="amend").run(progress=False)
    _same_run(got, want)
    assert want.metrics["rows_late"] > 0 or batch_rows is not None  # the disorder is real
    assert got.metrics["rows_in"] == df.height


def test_rows_read_back_equal_polars(workload: pl.DataFrame, tmp_path: Path) -> None:
    _write_parts(workload, tmp_path, "parquet")
    got = pl.concat(rl.read_parquet(tmp_path / "part_0.parquet").batches())
    assert_frame_equal(got, pl.read_parquet(tmp_path / "part_0.parquet"))


@pytest.mark.parametrize("fmt", ["parquet", "ipc"])
def test_real_flights_from_files_equal_the_dataframe(tmp_path: Path, fmt: str) -> None:
    if not FLIGHTS.exists():
        pytest.skip("shared data not present")
    flights = (
        pl.read_csv(FLIGHTS, null_values="NA")
        .with_columns(pl.col("time_hour").str.to_datetime(time_zone="UTC"))
        .sort("time_hour", maintain_order=True)
    )
    for month, part in flights.group_by("month", maintain_order=True):
        path = tmp_path / f"m{month[0]:02d}.{fmt}"
        part.write_parquet(path) if fmt == "parquet" else part.write_ipc(path, compression="zstd")

    def q(source):
        return (
            rl.stream(source, time="time_hour", watermark="1h")
            .window(rl.tumbling("1d"), by="carrier")
            .agg(rl.count(), rl.mean("dep_delay"), rl.max("arr_delay"), rl.count_distinct("dest"))
        )

    read = rl.read_parquet if fmt == "parquet" else rl.read_ipc
    got = q(read(tmp_path / f"m*.{fmt}")).run(progress=False)
    _same_run(got, q(flights).run(progress=False))
    assert got.metrics["rows_in"] == flights.height == 336_776


# -- 2. schema evolution and broken files ------------------------------------------------------
def test_later_files_conform_to_the_first(tmp_path: Path) -> None:
    t = [dt.datetime(2026, 1, 1, 0, 0, s, tzinfo=dt.UTC) for s in range(6)]
    pl.DataFrame({"t": t[:3], "k": ["a", "b", "a"], "x": [1, 2, 3]},
                 schema_overrides={"x": pl.Int32}).write_parquet(tmp_path / "a.parquet")
    # b lacks k, adds y, and has x as Int64: k is null, y ignored, x cast to the first's Int32.
    pl.DataFrame({"t": t[3:], "x": [4, 5, 6], "y": ["u", "v", "w"]}).write_parquet(tmp_path / "b.parquet")
    got = pl.concat(rl.read_parquet(tmp_path / "*.parquet").batches())
    assert got.columns == ["t", "k", "x"]
    assert got.schema["x"] == pl.Int32
    assert got["k"].to_list() == ["a", "b", "a", None, None, None]
    assert got["x"].to_list() == [1, 2, 3, 4, 5, 6]


def test_a_column_that_cannot_be_cast_names_the_file(tmp_path: Path) -> None:
    pl.DataFrame({"t": [1, 2], "x": [1, 2]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"t": [3, 4], "x": ["1.5e999x", "no"]}).write_parquet(tmp_path / "b.parquet")
    seen: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError, match=r"column 'x' of .*b\.parquet"):
        (rl.stream(rl.read_parquet(tmp_path / "*.parquet"), time="t")
         .window(rl.tumbling(10)).agg(rl.sum("x")).for_each(seen.append))


@pytest.mark.parametrize("fmt", ["parquet", "ipc"])
def test_truncated_file_raises_after_the_good_files(tmp_path: Path, fmt: str) -> None:
    df = pl.DataFrame({"t": list(range(100)), "x": list(range(100))})
    df.head(50).write_parquet(tmp_path / "a.parquet") if fmt == "parquet" else df.head(50).write_ipc(tmp_path / "a.ipc")
    whole = tmp_path / f"b.{fmt}"
    df.tail(50).write_parquet(whole) if fmt == "parquet" else df.tail(50).write_ipc(whole)
    whole.write_bytes(whole.read_bytes()[:-40])
    read = rl.read_parquet if fmt == "parquet" else rl.read_ipc
    seen: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError, match=r"b\." + fmt):
        (rl.stream(read(tmp_path / f"*.{fmt}"), time="t", watermark=0)
         .window(rl.tumbling(10)).agg(rl.count()).for_each(seen.append))
    # The first file's rows were processed and their closed windows emitted.
    assert pl.concat(seen)["count"].sum() >= 40


@pytest.mark.parametrize("content", [b"", b"PAR1", b"\x00\xff" * 1000, b'{"t": 1}\n'])
def test_garbage_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    for fmt, read in (("parquet", rl.read_parquet), ("ipc", rl.read_ipc)):
        p = tmp_path / f"bad.{fmt}"
        p.write_bytes(content)
        with pytest.raises(rl.SourceError, match=r"bad\." + fmt):
            rl.stream(read(p), time="t").window(rl.tumbling(10)).agg(rl.count()).run(progress=False)


def test_an_empty_table_yields_no_rows(tmp_path: Path) -> None:
    pl.DataFrame({"t": [1], "x": [1]}).head(0).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"t": [1, 2], "x": [1, 1]}).write_parquet(tmp_path / "b.parquet")
    run = rl.stream(rl.read_parquet(tmp_path / "*.parquet"), time="t").window(rl.tumbling(10)).agg(rl.count()).run()
    assert run.output["count"].to_list() == [2]


# -- 3. schema= --------------------------------------------------------------------------------
def test_jsonl_schema_types_the_columns_and_ignores_the_rest(tmp_path: Path) -> None:
    rows = [{"ts": f"2026-01-01T00:00:{s:02d}Z", "k": "a", "n": s, "extra": [s]} for s in range(10)]
    rows[4]["n"] = "four"  # does not fit Int32
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    schema = {"ts": pl.Datetime("us", "UTC"), "k": pl.String, "n": pl.Int32}
    run = (rl.stream(rl.read_jsonl(tmp_path / "a.jsonl", schema=schema), time="ts", watermark=0)
           .window(rl.tumbling("5s")).agg(rl.count(), rl.sum("n")).run(progress=False))
    assert run.output["count"].to_list() == [4, 5]
    assert run.output["n_sum"].to_list() == [0 + 1 + 2 + 3, 5 + 6 + 7 + 8 + 9]
    assert run.rejected["line"].to_list() == [5]
    got = next(rl.read_jsonl(tmp_path / "a.jsonl", schema=schema).batches())
    assert dict(got.schema) == schema


def test_csv_schema_must_name_the_header(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("t,k,x\n1,a,007\n2,b,8\n")
    got = next(rl.read_csv(tmp_path / "a.csv", schema={"t": pl.Int64, "k": pl.String, "x": pl.String}).batches())
    assert got["x"].to_list() == ["007", "8"]  # text kept as text, not inferred as a number
    with pytest.raises(rl.ConfigError, match=r'header \["t", "k", "x"\]'):
        rl.read_csv(tmp_path / "a.csv", schema={"t": pl.Int64, "x": pl.String}).chunks().__next__()


def test_parquet_schema_casts(tmp_path: Path) -> None:
    pl.DataFrame({"t": [1, 2], "x": [1, 2]}).write_parquet(tmp_path / "a.parquet")
    got = next(rl.read_parquet(tmp_path / "a.parquet", schema={"t": pl.Int64, "x": pl.Float64}).batches())
    assert got.schema["x"] == pl.Float64 and got["x"].to_list() == [1.0, 2.0]


@pytest.mark.parametrize("bad", [{"t": "int"}, ["t"], {}, {"t": 5}])
def test_bad_schema_argument_is_a_config_error(tmp_path: Path, bad) -> None:
    (tmp_path / "a.jsonl").write_text('{"t": 1}\n')
    with pytest.raises(rl.ConfigError, match="schema"):
        rl.read_jsonl(tmp_path / "a.jsonl", schema=bad)


# -- 4. order_by= merges files ----------------------------------------------------------------
def _sorted_parts(tmp_path: Path) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Three files, each sorted by ts, with overlapping ranges (as log files from three hosts)."""
    parts = []
    for host in range(3):
        ts = sorted({(i * (7 + host * 4)) % 997 for i in range(300)})
        parts.append(pl.DataFrame({"ts": ts, "host": [f"h{host}"] * len(ts), "x": list(range(len(ts)))}))
    for i, p in enumerate(parts):
        p.write_ndjson(tmp_path / f"host{i}.jsonl")
        p.write_parquet(tmp_path / f"host{i}.parquet")
    return pl.concat(parts), parts


@pytest.mark.parametrize("batch_rows", BATCH_ROWS)
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_order_by_merges_sorted_files_into_one_sorted_stream(tmp_path: Path, batch_rows: int | None,
                                                             fmt: str) -> None:
    whole, _ = _sorted_parts(tmp_path)
    read = rl.read_jsonl if fmt == "jsonl" else rl.read_parquet
    source = read(str(tmp_path / f"host*.{fmt}"), order_by="ts", batch_rows=batch_rows or 65_536)
    got = pl.concat(source.batches())
    # polars' stable sort of the files in name order is the oracle (ties in file order).
    oracle = whole.sort("ts", maintain_order=True).select(got.columns)
    assert_frame_equal(got, oracle)

    def q(src):
        return rl.stream(src, time="ts", watermark=0).window(rl.tumbling(50), by="host").agg(rl.count())

    merged = q(read(str(tmp_path / f"host*.{fmt}"), order_by="ts", batch_rows=batch_rows or 65_536)).run()
    assert merged.late.height == 0  # in order: nothing is late even with no watermark delay
    assert q(read(str(tmp_path / f"host*.{fmt}"))).run().late.height > 0  # name order is not
    _same_run(merged, q(oracle).run())


def test_order_by_delivers_every_row_once_even_from_unsorted_files(tmp_path: Path) -> None:
    a = pl.DataFrame({"ts": [5, 1, None, 9, 3], "f": ["a"] * 5})
    b = pl.DataFrame({"ts": [2, 2, 8, None, 4], "f": ["b"] * 5})
    a.write_parquet(tmp_path / "a.parquet")
    b.write_parquet(tmp_path / "b.parquet")
    got = pl.concat(rl.read_parquet(tmp_path / "*.parquet", order_by="ts", batch_rows=2).batches())
    key = ["ts", "f"]
    assert_frame_equal(got.sort(key, nulls_last=True), pl.concat([a, b]).sort(key, nulls_last=True))


def test_order_by_keeps_bad_rows_and_checks_the_column(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"ts": 1}\n{"ts": 3}\nnot json\n{"ts": 5}\n')
    (tmp_path / "b.jsonl").write_text('{"ts": 2}\n{"ts": 4}\n')
    run = (rl.stream(rl.read_jsonl(tmp_path / "*.jsonl", order_by="ts"), time="ts", watermark=0)
           .window(rl.tumbling(2)).agg(rl.count()).run(progress=False))
    assert run.late.height == 0
    assert run.output["count"].to_list() == [1, 2, 2]
    assert run.rejected.select("file", "line").rows() == [(str(tmp_path / "a.jsonl"), 3)]
    with pytest.raises(rl.SchemaError, match="order_by='nope'"):
        list(rl.read_jsonl(tmp_path / "*.jsonl", order_by="nope").chunks())


def test_parquet_schema_naming_a_missing_column_is_a_schema_error(tmp_path: Path) -> None:
    pl.DataFrame({"t": [1], "x": [1]}).write_parquet(tmp_path / "a.parquet")
    with pytest.raises(rl.SchemaError, match=r'\["y"\]'):
        rl.read_parquet(tmp_path / "a.parquet", schema={"t": pl.Int64, "y": pl.Int64}).chunks().__next__()


@pytest.mark.parametrize("batch_rows", BATCH_ROWS)
def test_workload_replays_from_csv_equal_to_the_dataframe(workload: pl.DataFrame, tmp_path: Path,
                                                          batch_rows: int | None) -> None:
    """The workload written as CSV (times as ISO text) and read back by rl.read_csv: the rows
    equal polars' reading of the same files, and the query equals the query over them."""
    df = workload if batch_rows is None else workload.head(1500)
    size = -(-df.height // 2)
    for i in range(2):
        df.slice(i * size, size).write_csv(tmp_path / f"part_{i}.csv")
    source = rl.read_csv(str(tmp_path / "part_*.csv"), batch_rows=batch_rows or 65_536)
    rows = pl.concat(source.batches())
    assert rows.height == df.height
    # Same values as the DataFrame (the CSV's times come back as naive UTC instants).
    back = rows.with_columns(pl.col("event_time", "arrival_time").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
    assert_frame_equal(back, df, check_dtypes=False)
    got = _k1(source, emit="amend").run(progress=False)
    want = _k1(rows, emit="amend").run(progress=False)
    _same_run(got, want)
