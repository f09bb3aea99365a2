"""Sources fed hostile or broken input: links out of a folder, corrupt Arrow schemas, odd
CloudTrail records, truncated archives part way through a glob, lines of gigabytes, bad CSV
headers and bytes. Every case is checked against an independent oracle (polars over the same
rows, or the rows counted by hand) and against the accounting rule
rows_in == accepted + late + rejected; a bounded fuzz test mutates files of every format."""
from __future__ import annotations

import gzip
import io
import json
import random
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rillet as rl

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
CLOUDTRAIL = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"
GLUCOSE = REAL / "iot_cgm_glucose" / "CGM.csv"
BATCHES = [1, 7, 65_536]


def accounted(run: Any) -> bool:
    m = run.metrics
    return m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"] + m["rows_filtered"]


def counts(source: Any, time: str = "t", every: Any = 10, by: str | None = "k",
           flush: bool = True) -> Any:
    """A count per window (and key) over ``source``; the watermark is given, so no warning."""
    return (rl.stream(source, time=time, watermark=0, flush=flush)
            .window(rl.tumbling(every), by=by).agg(rl.count()))


def oracle_counts(df: pl.DataFrame, every: int = 10) -> pl.DataFrame:
    """polars' count per 10-wide window and key, as rillet's columns."""
    return (df.with_columns((pl.col("t") // every * every).alias("window_start"))
            .group_by("k", "window_start").agg(pl.len().cast(pl.UInt64).alias("count"))
            .sort("window_start", "k"))


def same_counts(out: pl.DataFrame, want: pl.DataFrame) -> bool:
    got = out.select("k", "window_start", pl.col("count").cast(pl.UInt64)).sort("window_start", "k")
    return got.rows() == want.select("k", pl.col("window_start").cast(got.schema["window_start"]),
                                     "count").rows()


def rows(n: int, seed: int = 0, start: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    return pl.DataFrame({
        "t": list(range(start, start + n)),
        "k": [rng.choice("abc") for _ in range(n)],
        "x": [round(rng.uniform(-5, 5), 3) for _ in range(n)],
    })


def jsonl_bytes(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.write_ndjson(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def trail() -> list[dict]:
    if not CLOUDTRAIL.exists():
        pytest.skip("shared data not present")
    return [json.loads(line) for line in CLOUDTRAIL.read_text().splitlines()[:60] if line.strip()]


def _log_dir(root: Path) -> Path:
    base = root / "AWSLogs" / "123837392027" / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    base.mkdir(parents=True)
    return base


def _per_name(records: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        out[r["eventName"]] = out.get(r["eventName"], 0) + 1
    return out


def _cloudtrail_counts(source: Any) -> Any:
    return (rl.stream(source, time="eventTime", watermark="2h")
            .window(rl.tumbling("1d"), by="eventName").agg(rl.count()).run())


# -- item 2: links out of the folder ------------------------------------------------------------
@pytest.mark.parametrize("given_as", ["folder", "glob"])
def test_read_cloudtrail_does_not_follow_a_symlink_out_of_its_folder(
        tmp_path: Path, trail: list[dict], given_as: str) -> None:
    root = tmp_path / "logs"
    base = _log_dir(root)
    (base / "a.json").write_text(json.dumps({"Records": trail[:20]}))
    # A link inside the folder to a file inside it is read.
    (root / "store").mkdir()
    (root / "store" / "b.txt").write_text(json.dumps({"Records": trail[20:30]}))
    (base / "b.json").symlink_to(root / "store" / "b.txt")
    # A link to a file outside, and a linked folder outside, are not.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("SECRET-TOKEN-8f2c not a log file")
    (outside / "c.json").write_text(json.dumps({"Records": trail[30:40]}))
    (base / "evil.json").symlink_to(outside / "secret.json")
    (root / "linked").symlink_to(outside, target_is_directory=True)

    source = rl.read_cloudtrail(root if given_as == "folder" else f"{root}/**/*.json")
    run = _cloudtrail_counts(source)
    got = dict(zip(run.output["eventName"], run.output["count"]))
    assert got == _per_name(trail[:30])
    assert "SECRET-TOKEN" not in str(run.rejected.to_dicts())
    # Each link out is one rejected row naming it (a glob's ** also walks the linked folder).
    names = sorted(Path(f).relative_to(root).as_posix().split("/", 1)[0] if "linked" in f else Path(f).name
                   for f in run.rejected["file"])
    assert names == (["evil.json"] if given_as == "folder" else ["evil.json", "linked", "linked"])
    assert all("outside" in r for r in run.rejected["reason"])
    assert run.rejected["text"].to_list() == [""] * run.rejected.height
    assert accounted(run)


# -- item 7: corrupt Arrow schemas --------------------------------------------------------------
_MUTATE = textwrap.dedent("""
    import base64, random, sys, warnings
    import polars as pl, rillet as rl
    warnings.simplefilter("ignore")
    fmt, path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    df = pl.DataFrame({"t": list(range(200)), "k": ["a", "b"] * 100, "x": [1.5] * 200,
                       "when": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1, 3, 19),
                                                 "1m", eager=True)})
    {"parquet": df.write_parquet, "ipc": df.write_ipc, "ipc_stream": df.write_ipc_stream}[fmt](path)
    raw = open(path, "rb").read()
    rng = random.Random(seed)
    if fmt == "parquet":
        # The Arrow schema parquet keeps in its footer (base64 of an IPC schema message):
        # characters of it replaced by other base64 characters, so the footer stays valid.
        at = raw.index(b"ARROW:schema") + len(b"ARROW:schema") + 1
        while raw[at:at + 1] not in b"/+=" and not raw[at:at + 1].isalnum():
            at += 1
        end = at
        while raw[end:end + 1].isalnum() or raw[end:end + 1] in b"/+=":
            end += 1
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        region = range(at, end - 4)
    else:
        region = range(len(raw))
    outcomes = {}
    for i in range(int(sys.argv[4])):
        b = bytearray(raw)
        for _ in range(rng.randint(1, 3)):
            j = rng.choice(region)
            b[j] = rng.choice(alphabet) if fmt == "parquet" else rng.randrange(256)
        open(path, "wb").write(b)
        reader = rl.read_parquet if fmt == "parquet" else rl.read_ipc
        try:
            run = (rl.stream(reader(path), time="t", watermark=0)
                   .window(rl.tumbling(10)).agg(rl.count()).run())
            m = run.metrics
            assert m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"], m
            outcome = "read"
        except rl.SourceError as e:
            assert path in str(e), e
            outcome = "SourceError"
        except rl.RilletError as e:
            outcome = type(e).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(__import__('json').dumps(outcomes))
""")


@pytest.mark.parametrize("fmt", ["parquet", "ipc", "ipc_stream"])
def test_corrupt_arrow_schema_in_parquet_or_ipc_is_a_source_error(tmp_path: Path, fmt: str) -> None:
    # In a child process: before the fix, a corrupt length aborted the interpreter.
    path = tmp_path / ("f.parquet" if fmt == "parquet" else "f.arrow")
    done = subprocess.run([sys.executable, "-c", _MUTATE, fmt, str(path), "7", "150"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(outcomes) <= {"read", "SourceError", "SchemaError"}, outcomes
    assert outcomes.get("SourceError", 0) > 0
    assert "panicked" not in done.stderr


# -- item 8: odd CloudTrail records and deeply nested lines -------------------------------------
def test_read_cloudtrail_rejects_one_odd_record_and_keeps_the_rest(tmp_path: Path, trail: list[dict]) -> None:
    good = trail[:40]
    texts = [json.dumps(r) for r in good]
    odd = {
        5: json.dumps({**good[0], "eventTime": 1688989320}),
        10: json.dumps({**good[1], "userAgent": "agent"}).replace('"agent"', '"ag\\ud800ent"'),
        20: json.dumps({**good[2], "requestParameters": "DEEP"}).replace(
            '"DEEP"', "[" * 100_000 + "]" * 100_000),
        30: "[1, 2]",
    }
    for i in sorted(odd):
        texts.insert(i, odd[i])
    base = _log_dir(tmp_path)
    (base / "a.json").write_text('{"Records": [' + ", ".join(texts) + "]}")
    with gzip.open(base / "b.json.gz", "wt") as f:
        f.write(json.dumps({"Records": trail[40:60]}))
    run = _cloudtrail_counts(rl.read_cloudtrail(tmp_path))
    got = dict(zip(run.output["eventName"], run.output["count"]))
    assert got == _per_name(good + trail[40:60])
    reasons = sorted(run.rejected["reason"].to_list())
    assert len(reasons) == 4
    for i in odd:
        assert any(r.startswith(f"record {i}:") for r in reasons), (i, reasons)
    assert any("eventTime" in r for r in reasons) and any("surrogate" in r for r in reasons)
    assert any("nested" in r for r in reasons)
    assert accounted(run)


@pytest.mark.parametrize("reader", ["tail_jsonl", "read_jsonl"])
def test_tail_jsonl_rejects_a_deeply_nested_line(tmp_path: Path, reader: str) -> None:
    df = rows(60)
    lines = jsonl_bytes(df).splitlines()
    deep = {7: b'{"t": 7, "k": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            30: b'{"t": 30, "k": "b", "x": 1.0, "y": ' + b"[" * 300 + b"]" * 300 + b"}"}
    for at in sorted(deep):
        lines.insert(at, deep[at])
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = (rl.tail_jsonl(path, poll="10ms", max_idle=0.3) if reader == "tail_jsonl"
              else rl.read_jsonl(path))
    run = counts(source).run()
    assert sorted(run.rejected["line"].to_list()) == [at + 1 for at in sorted(deep)]
    assert same_counts(run.output, oracle_counts(df))
    assert accounted(run)


# -- item 9: an unreadable file part way through a glob -------------------------------------------
def _three_parts(tmp_path: Path, kind: str, cut: int | None) -> tuple[list[pl.DataFrame], Any]:
    """Three files of 50 rows each; the middle one cut to ``cut`` bytes (None: half)."""
    parts = [rows(50, seed=i, start=50 * i) for i in range(3)]
    for i, df in enumerate(parts):
        if kind == "parquet":
            path = tmp_path / f"part-{i}.parquet"
            df.write_parquet(path)
        else:
            path = tmp_path / f"part-{i}.{kind}.gz"
            data = jsonl_bytes(df) if kind == "jsonl" else df.write_csv().encode()
            path.write_bytes(gzip.compress(data))
        if i == 1:
            raw = path.read_bytes()
            path.write_bytes(raw[: (len(raw) // 2 if cut is None else cut)])
    reader = {"jsonl": rl.read_jsonl, "csv": rl.read_csv, "parquet": rl.read_parquet}[kind]
    return parts, reader


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_truncated_gz_mid_glob_keeps_the_partial_run(tmp_path: Path, kind: str, batch: int) -> None:
    parts, reader = _three_parts(tmp_path, kind, cut=20)
    glob = str(tmp_path / "part-*")
    with pytest.raises(rl.SourceError, match="part-1") as info:
        counts(reader(glob, batch_rows=batch)).run()
    partial = info.value.run
    assert partial.interrupted and accounted(partial)
    # What the run had computed: exactly the first file, windows not flushed.
    alone = counts(reader(str(tmp_path / "part-0*"), batch_rows=batch), flush=False).run()
    assert partial.output.equals(alone.output)
    assert partial.metrics["rows_in"] == 50
    # collect() and iter() raise the same, with the run.
    with pytest.raises(rl.SourceError) as again:
        counts(reader(glob, batch_rows=batch)).collect()
    assert again.value.run.output.equals(alone.output)
    emitted: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError) as lazily:
        emitted.extend(counts(reader(glob, batch_rows=batch)).iter())
    assert lazily.value.run.metrics["rows_in"] == 50 and accounted(lazily.value.run)
    assert pl.concat(emitted).equals(alone.output) if emitted else alone.output.height == 0

    # on_error="skip": the file is one rejected row, the others are read in full.
    run = counts(reader(glob, batch_rows=batch, on_error="skip")).run()
    assert same_counts(run.output, oracle_counts(pl.concat([parts[0], parts[2]])))
    assert run.rejected.height == 1
    bad = run.rejected.row(0, named=True)
    assert bad["file"].endswith(("part-1.jsonl.gz", "part-1.csv.gz", "part-1.parquet"))
    assert "skipped" in bad["reason"]
    assert accounted(run) and not run.interrupted


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_truncated_gz_mid_glob_keeps_the_rows_read_before_the_cut(tmp_path: Path, kind: str) -> None:
    parts, reader = _three_parts(tmp_path, kind, cut=None)
    glob = str(tmp_path / "part-*")
    with pytest.raises(rl.SourceError) as info:
        counts(reader(glob)).run()
    partial = info.value.run
    read = partial.metrics["rows_in"]
    assert 50 <= read < 100 and accounted(partial)
    # The rows of the cut file before the cut were counted: the same as a run over exactly them.
    before = pl.concat([parts[0], parts[1].head(read - 50)])
    direct = counts(before, flush=False).run()
    assert partial.output.equals(direct.output)
    skipped = counts(reader(glob, on_error="skip")).run()
    assert skipped.metrics["rows_in"] == read + 1 + 50 and accounted(skipped)
    assert same_counts(skipped.output, oracle_counts(pl.concat([before, parts[2]])))


def test_truncated_gz_in_a_sink_run_carries_the_run(tmp_path: Path) -> None:
    _three_parts(tmp_path, "jsonl", cut=20)
    seen: list[pl.DataFrame] = []
    with pytest.raises(rl.SourceError) as info:
        counts(rl.read_jsonl(str(tmp_path / "part-*"))).for_each(seen.append)
    assert accounted(info.value.run) and info.value.run.metrics["rows_in"] == 50


def test_truncated_cloudtrail_file_is_skipped_on_request(tmp_path: Path, trail: list[dict]) -> None:
    base = _log_dir(tmp_path)
    for i, part in enumerate([trail[:20], trail[20:40], trail[40:60]]):
        data = gzip.compress(json.dumps({"Records": part}).encode())
        (base / f"f{i}.json.gz").write_bytes(data[: len(data) // 2] if i == 1 else data)
    with pytest.raises(rl.SourceError, match="f1.json.gz") as info:
        _cloudtrail_counts(rl.read_cloudtrail(tmp_path))
    assert info.value.run.metrics["rows_in"] == 20
    run = _cloudtrail_counts(rl.read_cloudtrail(tmp_path, on_error="skip"))
    assert dict(zip(run.output["eventName"], run.output["count"])) == _per_name(trail[:20] + trail[40:60])
    assert run.rejected["file"].to_list() == [str(base / "f1.json.gz")] and accounted(run)


def test_on_error_is_checked() -> None:
    with pytest.raises(rl.ConfigError, match="skip"):
        rl.read_jsonl(str(CLOUDTRAIL), on_error="ignore")


# -- item 10: a line of gigabytes ---------------------------------------------------------------
_HUGE = textwrap.dedent("""
    import gzip, json, sys, warnings
    import rillet as rl
    warnings.simplefilter("ignore")
    kind, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    block = b"x" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=1) as f:
        if kind == "csv":
            f.write(b"t,k,x\\n1,a,1.0\\n2,a,\\"")
            for _ in range(size >> 20):
                f.write(block)
            f.write(b"\\"\\n3,b,2.0\\n")
        elif kind == "cloudtrail":
            f.write(b'{"Records": [{"eventTime": "2023-07-10T11:42:00Z", "eventName": "A", "x": "')
            for _ in range(size >> 20):
                f.write(block)
            f.write(b'"}]}')
        else:
            f.write(b'{"t": 1, "k": "a"}\\n{"t": 2, "k": "')
            for _ in range(size >> 20):
                f.write(block)
            f.write(b'"}\\n{"t": 3, "k": "b"}\\n')

    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM"):
                return int(line.split()[1]) * 1024

    limit = 1 << 20
    if kind == "cloudtrail":
        source, time = rl.read_cloudtrail(path, max_file_bytes=limit), "eventTime"
    elif kind == "tail":
        source, time = rl.tail_jsonl(path.removesuffix(".gz"), poll="10ms", max_idle=0.5,
                                     max_line_bytes=limit), "t"
        with gzip.open(path) as src, open(path.removesuffix(".gz"), "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
    else:
        reader = rl.read_csv if kind == "csv" else rl.read_jsonl
        source, time = reader(path, max_line_bytes=limit), "t"
    q = rl.stream(source, time=time, watermark=0).window(rl.tumbling(10 if time == "t" else "1h")).agg(rl.count())
    before = hwm()
    run = q.run()
    grew = hwm() - before
    m = run.metrics
    print(json.dumps({"grew": grew, "rejected": run.rejected.select("line", "reason").rows(),
                      "accounted": m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"],
                      "out": int(run.output["count"].sum() or 0)}))
""")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc")
@pytest.mark.parametrize("kind", ["jsonl", "csv", "tail", "cloudtrail"])
def test_a_line_longer_than_max_line_bytes_is_rejected_in_bounded_memory(tmp_path: Path, kind: str) -> None:
    size = 160 << 20  # the long line (the gz file is well under 1 MB)
    path = tmp_path / ("big.json.gz" if kind == "cloudtrail" else f"big.{'csv' if kind == 'csv' else 'jsonl'}.gz")
    done = subprocess.run([sys.executable, "-c", _HUGE, kind, str(path), str(size)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["accounted"]
    assert result["grew"] < 64 << 20, result["grew"]  # the line is 160 MiB
    (line, reason), = result["rejected"]
    assert "max_" in reason and str(1 << 20) in reason
    if kind == "cloudtrail":
        assert result["out"] == 0 and line == 1
    else:
        assert result["out"] == 2 and line == (3 if kind == "csv" else 2)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_max_line_bytes_rejects_only_the_long_lines(tmp_path: Path, kind: str, batch: int) -> None:
    df = rows(40)
    long_rows = {3, 17, 39}
    big = df.with_columns(pl.when(pl.int_range(pl.len()).is_in(list(long_rows)))
                          .then(pl.lit("y" * 500)).otherwise(pl.col("k")).alias("k"))
    path = tmp_path / f"f.{kind}"
    if kind == "csv":
        big.write_csv(path)
        first_row_line = 2
    else:
        path.write_bytes(jsonl_bytes(big))
        first_row_line = 1
    reader = rl.read_csv if kind == "csv" else rl.read_jsonl
    run = counts(reader(path, max_line_bytes=200, batch_rows=batch)).run()
    assert sorted(run.rejected["line"].to_list()) == [i + first_row_line for i in sorted(long_rows)]
    assert all("max_line_bytes=200" in r for r in run.rejected["reason"])
    keep = pl.int_range(pl.len()).is_in(list(long_rows)).not_()
    assert same_counts(run.output, oracle_counts(df.filter(keep)))
    assert accounted(run)


def test_max_line_bytes_is_checked() -> None:
    with pytest.raises(rl.ConfigError, match="max_line_bytes"):
        rl.read_csv(str(GLUCOSE), max_line_bytes=0)


# -- item 14 (readers): CSV headers, bytes, inference; brotli ------------------------------------
def test_duplicate_csv_header_is_a_schema_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("t,k,x,k\n1,a,1.0,b\n")
    with pytest.raises(rl.SchemaError, match=r'"k" twice \(columns 2 and 4\).*rename'):
        counts(rl.read_csv(path)).run()


def test_nul_in_csv_header_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"t,k\x00,x\n1,a,1.0\n")
    with pytest.raises(rl.SchemaError, match="NUL"):
        counts(rl.read_csv(path)).run()


def test_nul_in_a_json_field_name_is_a_schema_error(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"t": 1, "a\\u0000b": 2}\n{"t": 2, "a\\u0000b": 3}\n')
    with pytest.raises(rl.SchemaError, match="NUL.*schema="):
        counts(rl.read_jsonl(path), by=None).run()
    # Given a schema without it, the field is ignored as any field not in the schema.
    run = counts(rl.read_jsonl(path, schema={"t": pl.Int64}), by=None).run()
    assert run.output["count"].to_list() == [2] and accounted(run)


@pytest.mark.parametrize("batch", BATCHES)
def test_invalid_utf8_in_the_first_rows_rejects_only_that_row(tmp_path: Path, batch: int) -> None:
    df = rows(2000)
    text = df.write_csv().encode().splitlines()
    broken = {5, 1500}  # data rows (0-based); the header is text[0]
    for i in broken:
        text[i + 1] = text[i + 1].replace(b",", b",\xff", 1)
    path = tmp_path / "f.csv"
    path.write_bytes(b"\n".join(text) + b"\n")
    run = counts(rl.read_csv(path, batch_rows=batch), every=100).run()
    assert sorted(run.rejected["line"].to_list()) == [i + 2 for i in sorted(broken)]
    keep = pl.int_range(pl.len()).is_in(list(broken)).not_()
    assert same_counts(run.output, oracle_counts(df.filter(keep), every=100))
    assert accounted(run)


@pytest.fixture(scope="module")
def glucose() -> Path:
    if not GLUCOSE.exists():
        pytest.skip("shared data not present")
    return GLUCOSE


def _daily_glucose(source: Any) -> Any:
    return (rl.stream(source, time="datetime", watermark=0)
            .window(rl.tumbling("1d")).agg(rl.count(), rl.mean("isig"), rl.mean("glucose")).run())


def test_glucose_nil_readings_are_read_as_null_with_null_values(glucose: Path) -> None:
    run = _daily_glucose(rl.read_csv(glucose, null_values=["nil"]))
    want = (pl.read_csv(glucose, null_values=["nil"], try_parse_dates=True)
            .group_by(pl.col("datetime").dt.truncate("1d").alias("window_start"))
            .agg(pl.len().alias("count"), pl.col("isig").mean().alias("isig_mean"),
                 pl.col("glucose").mean().alias("glucose_mean"))
            .sort("window_start"))
    got = run.output.sort("window_start")
    assert run.rejected.height == 0 and accounted(run)
    assert got["count"].to_list() == want["count"].to_list()
    nan = float("nan")
    assert got["isig_mean"].is_null().to_list() == want["isig_mean"].is_null().to_list()
    assert got["isig_mean"].fill_null(nan).to_list() == pytest.approx(
        want["isig_mean"].fill_null(nan).to_list(), rel=1e-12, nan_ok=True)
    assert got["glucose_mean"].to_list() == pytest.approx(want["glucose_mean"].to_list(), rel=1e-12)


def test_glucose_nil_readings_without_null_values_name_the_fix(glucose: Path) -> None:
    run = _daily_glucose(rl.read_csv(glucose))
    nil = pl.read_csv(glucose, schema_overrides={"isig": pl.String}).filter(pl.col("isig") == "nil").height
    assert run.rejected.height == nil > 0 and accounted(run)
    reason = run.rejected["reason"][0]
    assert "'isig'" in reason and '"nil"' in reason and "null_values=" in reason


def test_csv_integer_column_later_holding_floats_is_read_with_a_longer_sample(tmp_path: Path) -> None:
    df = rows(3000).with_columns(pl.int_range(pl.len()).alias("n"))
    text = df.with_columns(pl.col("n").cast(pl.String)).with_columns(
        pl.when(pl.col("t") == 2500).then(pl.lit("2500.5")).otherwise(pl.col("n")).alias("n"))
    path = tmp_path / "f.csv"
    text.write_csv(path)
    # From the first 1,000 rows, n is an integer column: the later float is rejected, saying how
    # to read it.
    first = (rl.stream(rl.read_csv(path), time="t", watermark=0)
             .window(rl.tumbling(1000)).agg(rl.sum("n")).run())
    assert first.rejected["line"].to_list() == [2502]
    assert "infer_schema_length=" in first.rejected["reason"][0] and accounted(first)
    # infer_schema_length=None samples the whole file, as polars does: n is Float64.
    whole = (rl.stream(rl.read_csv(path, infer_schema_length=None), time="t", watermark=0)
             .window(rl.tumbling(1000)).agg(rl.sum("n")).run())
    want = pl.read_csv(path, infer_schema_length=None).group_by(pl.col("t") // 1000).agg(pl.col("n").sum()).sort("t")
    assert whole.rejected.height == 0
    assert whole.output.sort("window_start")["n_sum"].to_list() == pytest.approx(want["n"].to_list())


def test_null_values_on_tail_csv(tmp_path: Path) -> None:
    df = rows(30).with_columns(pl.when(pl.col("t") % 4 == 0).then(None).otherwise(pl.col("x")).alias("x"))
    path = tmp_path / "f.csv"
    df.write_csv(path, null_value="NA")
    run = (rl.stream(rl.tail_csv(path, poll="10ms", max_idle=0.3, null_values="NA"), time="t", watermark=0)
           .window(rl.tumbling(10)).agg(rl.count("x"), rl.sum("x")).run())
    want = (df.group_by((pl.col("t") // 10 * 10).alias("w"))
            .agg(pl.col("x").count().alias("c"), pl.col("x").sum().alias("s")).sort("w"))
    got = run.output.sort("window_start")
    assert run.rejected.height == 0 and accounted(run)
    assert got["x_count"].to_list() == want["c"].to_list()
    assert got["x_sum"].to_list() == pytest.approx(want["s"].to_list())


@pytest.mark.parametrize("batch", BATCHES)
def test_brotli_parquet_is_read(tmp_path: Path, batch: int) -> None:
    df = rows(500)
    path = tmp_path / "f.parquet"
    df.write_parquet(path, compression="brotli")
    run = counts(rl.read_parquet(path, batch_rows=batch)).run()
    assert same_counts(run.output, oracle_counts(df)) and accounted(run)


# -- the fuzz that found these --------------------------------------------------------------------
KINDS = ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet", "ipc", "ipc_stream", "cloudtrail",
         "cloudtrail.gz"]


def _file_bytes(kind: str, df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    if kind.startswith("csv"):
        df.write_csv(buf)
    elif kind.startswith("jsonl"):
        df.write_ndjson(buf)
    elif kind == "parquet":
        df.write_parquet(buf)
    elif kind == "ipc":
        df.write_ipc(buf)
    elif kind == "ipc_stream":
        df.write_ipc_stream(buf)
    else:
        records = [{"eventTime": f"2023-07-10T11:{t % 60:02d}:00Z", "eventName": k, "x": x}
                   for t, k, x in df.iter_rows()]
        buf.write(json.dumps({"Records": records}).encode())
    data = buf.getvalue()
    return gzip.compress(data) if kind.endswith(".gz") else data


mutation = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("insert"), st.floats(0, 1),
              st.sampled_from([0, 10, 34, 44, 91, 92, 123, 0xFF, 0xC3])),
)


@given(kind=st.sampled_from(KINDS), n=st.integers(0, 40), seed=st.integers(0, 2**16),
       mutations=st.lists(mutation, max_size=6), batch=st.sampled_from(BATCHES),
       on_error=st.sampled_from(["raise", "skip"]), inside=st.booleans())
def test_fuzzed_files_never_raise_anything_but_rillet_errors(
        kind: str, n: int, seed: int, mutations: list, batch: int, on_error: str,
        inside: bool) -> None:
    df = rows(n, seed=seed)
    data = bytearray(_file_bytes(kind, df))
    for what, where, value in mutations:
        at = min(int(where * len(data)), max(len(data) - 1, 0))
        if what == "flip" and data:
            data[at] = value
        elif what == "cut":
            del data[at:]
        elif what == "insert":
            data[at:at] = bytes([value]) * (1 + value % 3)
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / ("logs" if inside else "")
        base.mkdir(exist_ok=True)
        name = {"cloudtrail": "a.json", "cloudtrail.gz": "a.json.gz", "ipc_stream": "a.arrows"}.get(kind, f"a.{kind}")
        path = base / name
        path.write_bytes(bytes(data))
        good = base / ("b" + name[1:])  # a good file after it: read when the first is skipped
        good.write_bytes(_file_bytes(kind, rows(5, seed=seed + 1, start=1000)))
        if kind.startswith("cloudtrail"):
            source, time = rl.read_cloudtrail(base, on_error=on_error), "eventTime"
        else:
            reader = {"csv": rl.read_csv, "jsonl": rl.read_jsonl, "parquet": rl.read_parquet,
                      "ipc": rl.read_ipc, "ipc_stream": rl.read_ipc}[kind.split(".")[0]]
            source, time = reader([str(path), str(good)], batch_rows=batch, on_error=on_error), "t"
        q = (rl.stream(source, time=time, watermark=0)
             .window(rl.tumbling(10 if time == "t" else "1h")).agg(rl.count()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                run = q.run()
            except rl.RilletError as e:
                run = getattr(e, "run", None)
                if run is None:
                    return  # refused before reading (no schema to infer, no time column, ...)
        assert accounted(run), run.metrics
        if not run.interrupted and on_error == "skip":
            assert run.metrics["rows_in"] >= 5  # the good file was read


def test_fuzz_helpers_write_readable_files() -> None:
    # The unmutated files the fuzz starts from are read in full (the fuzz is not vacuous).
    df = rows(12, seed=3)
    with tempfile.TemporaryDirectory() as d:
        for kind in KINDS:
            name = {"cloudtrail": "a.json", "cloudtrail.gz": "a.json.gz"}.get(kind, f"a.{kind}")
            path = Path(d) / kind / name
            path.parent.mkdir()
            path.write_bytes(_file_bytes(kind, df))
            if kind.startswith("cloudtrail"):
                run = _cloudtrail_counts(rl.read_cloudtrail(path.parent))
            else:
                reader = {"csv": rl.read_csv, "jsonl": rl.read_jsonl, "parquet": rl.read_parquet,
                          "ipc": rl.read_ipc, "ipc_stream": rl.read_ipc}[kind.split(".")[0]]
                run = counts(reader(path)).run()
            assert run.metrics["rows_accepted"] == 12 and accounted(run), kind
