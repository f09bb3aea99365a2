"""rl.read_jsonl: JSON Lines files (plain or .gz) as a stream source.

Round trip against an in-memory DataFrame, the benchmark workload against its Parquet twin,
real CloudTrail data against polars, malformed inputs (rejected rows or a clear SourceError),
a truncated .gz, and the order in which a glob or a list of files is replayed.
"""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl

BENCH_GEN = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "gen_events.py"
CLOUDTRAIL = BENCH_GEN.parents[1] / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


def _write_lines(path: Path, lines: list[str | bytes]) -> Path:
    data = b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def _count_query(source, time: str = "t", watermark=0, period=10, by=()):
    return (
        rl.stream(source, time=time, watermark=watermark)
        .window(rl.tumbling(period), by=list(by))
        .agg(rl.count())
    )


def _good(t: int, k: str = "a") -> str:
    return json.dumps({"t": t, "k": k, "x": t * 2})


# -- 1. round trip --------------------------------------------------------------------------
def test_round_trip_plain_and_gz_across_three_files(tmp_path: Path) -> None:
    n = 300
    ts = [
        f"2024-03-01T00:{(i * 7 % 60):02d}:{(i * 13 % 60):02d}Z" for i in range(n)
    ]  # out of order on purpose: some rows are late
    df = pl.DataFrame(
        {
            "ts": ts,
            "k": [None if i % 11 == 0 else f"key{i % 4}" for i in range(n)],
            "i": [None if i % 7 == 0 else i * 3 - 100 for i in range(n)],
            "f": [None if i % 5 == 0 else i * 0.25 + 0.1 for i in range(n)],
        }
    )
    parts = [df.slice(0, 100), df.slice(100, 100), df.slice(200, 100)]
    names = ["part_0.jsonl", "part_1.jsonl.gz", "part_2.jsonl"]
    for part, name in zip(parts, names):
        raw = part.write_ndjson().encode()
        if name.endswith(".gz"):
            with gzip.open(tmp_path / name, "wb") as f:
                f.write(raw)
        else:
            (tmp_path / name).write_bytes(raw)

    def query(source):
        return (
            rl.stream(source, time="ts", watermark="2m")
            .window(rl.tumbling("5m"), by="k")
            .agg(rl.count(), rl.sum("i"), rl.mean("f"), rl.max("f"))
        )

    got = query(rl.read_jsonl(str(tmp_path / "part_*"))).run(progress=False)
    want = query(df).run(progress=False)
    assert want.late.height > 0  # the disorder is real
    assert_frame_equal(got.output, want.output)
    assert_frame_equal(got.late, want.late, check_column_order=False)
    assert got.rejected.height == 0
    for m in ("rows_in", "rows_accepted", "rows_late", "rows_rejected", "rows_emitted"):
        assert got.metrics[m] == want.metrics[m], m
    assert got.metrics["rows_in"] == n


# -- 2. the benchmark workload --------------------------------------------------------------
@pytest.mark.skipif(not BENCH_GEN.exists(), reason="shared/bench/gen_events.py not present")
def test_benchmark_k1_from_jsonl_equals_parquet(tmp_path: Path) -> None:
    pq, jl = tmp_path / "events.parquet", tmp_path / "events.jsonl"
    subprocess.run(
        [sys.executable, str(BENCH_GEN), "--events", "20000", "--seed", "1",
         "--out", str(pq), "--jsonl", str(jl)],
        check=True, capture_output=True,
    )
    df = pl.read_parquet(pq)
    jsonl_schema = next(rl.read_jsonl(str(jl)).chunks()).frame.schema
    # The JSONL carries timestamps as text (or numbers); give the DataFrame the same types.
    fixes = []
    for name, dtype in jsonl_schema.items():
        if isinstance(df.schema[name], pl.Datetime) and dtype == pl.String:
            fixes.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
        elif isinstance(df.schema[name], pl.Datetime) and dtype.is_integer():
            fixes.append(pl.col(name).dt.epoch("us").cast(dtype))
    df = df.with_columns(fixes).select(list(jsonl_schema))

    def k1(source):
        return (
            rl.stream(source, time="event_time", watermark="5s")
            .window(rl.tumbling("1m"), by=["event_source", "event_name"])
            .agg(rl.count(), rl.sum("bytes"), rl.mean("latency_ms"), rl.max("latency_ms"))
        )

    got = k1(rl.read_jsonl(str(jl))).run(progress=False)
    want = k1(df).run(progress=False)
    assert got.rejected.height == 0
    assert got.metrics["rows_in"] == want.metrics["rows_in"] == 20_000
    assert got.metrics["rows_late"] == want.metrics["rows_late"]
    keys = ["window_start", "event_source", "event_name"]
    assert_frame_equal(got.output.sort(keys), want.output.sort(keys), check_exact=False)
    assert got.output["count"].sum() + got.metrics["rows_late"] == 20_000


# -- 3. real data ---------------------------------------------------------------------------
@pytest.mark.skipif(not CLOUDTRAIL.exists(), reason="CloudTrail sample not present")
def test_cloudtrail_hourly_counts_match_polars() -> None:
    run = (
        rl.stream(rl.read_jsonl(str(CLOUDTRAIL)), time="eventTime", watermark="3650d")
        .window(rl.tumbling("1h"), by="eventSource")
        .agg(rl.count())
        .run(progress=False)
    )
    lines = CLOUDTRAIL.read_bytes().split(b"\n")
    non_blank = [i + 1 for i, ln in enumerate(lines) if ln.strip()]
    assert run.late.height == 0
    assert run.output["count"].sum() + run.metrics["rows_rejected"] == len(non_blank)
    assert run.metrics["rows_in"] == len(non_blank)

    # Every record reads: fields whose values conflict in the sample, or that are null (or
    # empty lists) in all of it, are kept as JSON text.
    assert run.metrics["rows_rejected"] == 0

    # polars cannot infer one schema for the whole file (nested struct conflicts), so read
    # just the two columns the query uses.
    ref = (
        pl.read_ndjson(CLOUDTRAIL, schema={"eventTime": pl.String, "eventSource": pl.String})
        .with_columns(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"))
        .filter(pl.col("eventTime").is_not_null())
        .group_by("eventSource", pl.col("eventTime").dt.truncate("1h").alias("window_start"))
        .agg(pl.len().cast(pl.Int64).alias("count"))
    )
    keys = ["eventSource", "window_start"]
    assert_frame_equal(
        run.output.select(*keys, "count").sort(keys), ref.select(*keys, "count").sort(keys)
    )


# -- 4. malformed inputs --------------------------------------------------------------------
BAD_LINES = {
    "bad_json": '{"t": 5, "k": }',
    "garbage": b"\xff\xfe\x00\x01\x9c garbage \x00",
    "truncated_object": '{"t": 5, "k": "a", "x"',
    "array": "[1, 2]",
    "number": "42",
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_unreadable_line_goes_to_rejected(tmp_path: Path, case: str) -> None:
    lines = [_good(1), _good(2), "", BAD_LINES[case], _good(3), _good(15)]
    path = _write_lines(tmp_path / "in.jsonl", lines)
    run = _count_query(rl.read_jsonl(str(path))).run(progress=False)
    assert run.output.rows() == [(0, 10, 3), (10, 20, 1)]
    assert run.rejected.height == 1
    row = run.rejected.row(0, named=True)
    assert row["file"] == str(path)
    assert row["line"] == 4  # 1-based, the blank line 3 still counts as a line
    assert run.rejected.schema["line"] == pl.UInt64
    assert row["reason"].startswith("unreadable JSON row:")
    assert row["text"]
    assert run.metrics["rows_in"] == 5
    assert run.metrics["rows_rejected"] == 1


def test_unreadable_long_line_text_is_cut(tmp_path: Path) -> None:
    bad = '{"t": 3, "k": ' + "x" * 5000  # truncated object, 5 kB
    path = _write_lines(tmp_path / "in.jsonl", [_good(1), bad, _good(2)])
    run = _count_query(rl.read_jsonl(str(path))).run(progress=False)
    assert run.output.rows() == [(0, 10, 2)]
    (text,) = run.rejected["text"].to_list()
    assert text.startswith(bad[:1000]) and len(text) <= 1003  # 1000 chars + "..." marker
    assert run.rejected["line"].to_list() == [2]


def test_empty_file_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(rl.SourceError, match="no JSON object"):
        _count_query(rl.read_jsonl(str(path))).run(progress=False)


def test_only_blank_lines_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"\n\n   \n\t\n\n")
    with pytest.raises(rl.SourceError, match="no JSON object"):
        _count_query(rl.read_jsonl(str(path))).run(progress=False)


def test_huge_line_parses(tmp_path: Path) -> None:
    big = "y" * (5 * 1024 * 1024)
    lines = [_good(1), json.dumps({"t": 2, "k": big, "x": 4}), _good(3, "b")]
    path = _write_lines(tmp_path / "big.jsonl", lines)
    run = (
        rl.stream(rl.read_jsonl(str(path)), time="t", watermark=0)
        .window(rl.tumbling(10))
        .agg(rl.count(), rl.sum("x"))
        .run(progress=False)
    )
    assert run.rejected.height == 0
    assert run.output.rows() == [(0, 10, 3, 2 + 4 + 6)]
    frame = pl.concat(list(rl.read_jsonl(str(path)).batches()))
    assert frame.sort("t")["k"].to_list() == ["a", big, "b"]


def test_missing_field_is_null_and_unknown_field_is_ignored(tmp_path: Path) -> None:
    # The schema comes from the first ~1000 rows; the odd rows come after them.
    head = [_good(i) for i in range(1100)]
    lines = head + ['{"t": 3000, "k": "a"}', '{"t": 3001, "k": "a", "x": 8, "zz": 1}']
    path = _write_lines(tmp_path / "in.jsonl", lines)
    frame = pl.concat(list(rl.read_jsonl(str(path)).batches()))
    assert set(frame.columns) == {"t", "k", "x"}
    assert frame.tail(2)["x"].to_list() == [None, 8]
    assert frame.height == 1102


def test_value_of_wrong_type_after_inference_is_rejected(tmp_path: Path) -> None:
    head = [_good(i) for i in range(1100)]
    bad = '{"x": 1, "t": "not a number",  "k": "b"}'
    path = _write_lines(tmp_path / "in.jsonl", head + [bad, _good(1100)])
    run = _count_query(rl.read_jsonl(str(path)), period=10_000).run(progress=False)
    assert run.output.rows() == [(0, 10_000, 1101)]
    assert run.rejected.select("line", "text").rows() == [(1101, bad)]
    assert run.rejected["reason"][0].startswith("unreadable JSON row:")
    assert run.metrics["rows_in"] == 1102 and run.metrics["rows_rejected"] == 1


@pytest.mark.parametrize("kind", ["missing", "glob_nothing", "directory"])
def test_bad_paths_raise_at_construction(tmp_path: Path, kind: str) -> None:
    arg = {
        "missing": str(tmp_path / "nope.jsonl"),
        "glob_nothing": str(tmp_path / "*.jsonl"),
        "directory": str(tmp_path),
    }[kind]
    with pytest.raises(rl.SourceError):
        rl.read_jsonl(arg)
    with pytest.raises(rl.SourceError):
        rl.read_jsonl([arg])


# -- 5. truncated .gz -----------------------------------------------------------------------
def test_truncated_gz_raises_after_earlier_rows_were_processed(tmp_path: Path) -> None:
    n = 300_000
    raw = "".join(f'{{"t":{i},"k":"a"}}\n' for i in range(n)).encode()
    full = gzip.compress(raw)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(full[: len(full) - 64])
    q = (
        rl.stream(rl.read_jsonl(str(path)), time="t", watermark=0)
        .window(rl.tumbling(1000))
        .agg(rl.count())
    )
    frames: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError, match="cut.jsonl.gz"):
        for frame in q.iter(progress=False):
            frames.append(frame)
    assert frames, "rows before the cut should have produced output"
    out = pl.concat(frames)
    assert out["count"].to_list() == [1000] * out.height
    assert out["window_start"].to_list() == [1000 * i for i in range(out.height)]


# -- 6. file order --------------------------------------------------------------------------
def _three_files(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, base in (("b.jsonl", 100), ("a.jsonl", 0), ("c.jsonl.gz", 200)):
        files[name] = _write_lines(tmp_path / name, [_good(base + j) for j in range(3)])
    return files


def test_glob_is_replayed_in_name_order(tmp_path: Path) -> None:
    _three_files(tmp_path)
    src = rl.read_jsonl(str(tmp_path / "*.jsonl*"))
    assert [Path(f).name for f in src.files] == ["a.jsonl", "b.jsonl", "c.jsonl.gz"]
    t = pl.concat(list(src.batches()))["t"].to_list()
    assert t == [0, 1, 2, 100, 101, 102, 200, 201, 202]


def test_list_is_replayed_in_given_order(tmp_path: Path) -> None:
    files = _three_files(tmp_path)
    order = [files["c.jsonl.gz"], files["a.jsonl"], str(files["b.jsonl"])]
    src = rl.read_jsonl(order)
    t = pl.concat(list(src.batches()))["t"].to_list()
    assert t == [200, 201, 202, 0, 1, 2, 100, 101, 102]
    # In stream order with watermark 0, a.jsonl and b.jsonl arrive after c.jsonl.gz: late.
    run = _count_query(rl.read_jsonl(order), period=1000).run(progress=False)
    assert run.output.rows() == [(0, 1000, 9)]
    run = _count_query(rl.read_jsonl(order), period=10).run(progress=False)
    assert run.output.rows() == [(200, 210, 3)]
    assert sorted(run.late["t"].to_list()) == [0, 1, 2, 100, 101, 102]
    # Unreadable lines report the file they came from.
    _write_lines(files["a.jsonl"], [_good(0), "oops"])
    run = _count_query(rl.read_jsonl(order), period=1000).run(progress=False)
    assert run.rejected.select("file", "line").rows() == [(str(files["a.jsonl"]), 2)]


def test_a_field_null_in_the_sample_is_read_as_text_not_refused(tmp_path: Path) -> None:
    """Inference (the first 1,000 rows) sees only nulls for "v" and only empty lists for
    "tags": their later values are kept as text rather than rejected (tail_jsonl, Kinesis and
    Kafka share the rule)."""
    rows = ([{"t": i, "v": None, "tags": []} for i in range(1100)]
            + [{"t": 1100, "v": 7, "tags": ["a"]}, {"t": 1101, "v": "x", "tags": []},
               {"t": 1102, "v": True, "tags": [2]}])
    path = tmp_path / "nulls.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for source in (rl.read_jsonl(path, batch_rows=7), rl.tail_jsonl(path, poll="10ms", max_idle="200ms")):
        run = rl.stream(source, time="t").window(rl.tumbling(10_000)).agg(rl.count(), rl.count("v")).run()
        assert run.rejected.height == 0, source
        assert run.output.select("count", "v_count").rows() == [(1103, 3)], source
    got = pl.concat(rl.read_jsonl(path).batches()).tail(3)
    assert got["v"].to_list() == ["7", "x", "true"]
    assert got["tags"].to_list() == ['["a"]', "[]", "[2]"]
