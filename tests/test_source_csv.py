"""rl.read_csv: CSV files replayed in order, parsed in Rust, unreadable records kept in
run.rejected. The oracle is the same query over the same rows as a DataFrame, and polars'
own CSV reader on real data."""
from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

import rillet as rl

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def _query(source: object) -> rl.Query:
    return (
        rl.stream(source, time="t", watermark=3)
        .window(rl.tumbling(10), by="k")
        .agg(rl.count(), rl.sum("v"), rl.max("x"))
    )


def _frame() -> pl.DataFrame:
    n = 500
    return pl.DataFrame({
        "t": [(i * 7) % 211 + i // 3 for i in range(n)],
        "k": [None if i % 17 == 0 else f"k{i % 5}" for i in range(n)],
        "v": [None if i % 11 == 0 else i % 13 for i in range(n)],
        "x": [i / 7 for i in range(n)],
    })


def test_csv_files_replay_like_the_dataframe(tmp_path: Path) -> None:
    df = _frame()
    parts = [df.slice(0, 150), df.slice(150, 200), df.slice(350, 150)]
    parts[0].write_csv(tmp_path / "a_0.csv")
    with gzip.open(tmp_path / "a_1.csv.gz", "wb") as f:
        f.write(parts[1].write_csv().encode())
    parts[2].write_csv(tmp_path / "a_2.csv")
    got = _query(rl.read_csv(str(tmp_path / "a_*"))).run()
    want = _query(df).run()
    assert got.output.equals(want.output)
    assert got.late.select(want.late.columns).equals(want.late)
    assert got.metrics["rows_in"] == want.metrics["rows_in"] == df.height


def test_unreadable_records_are_rejected_with_file_line_and_reason(tmp_path: Path) -> None:
    good = "\n".join(f"{i},k{i % 3},{i},{i}.5" for i in range(1, 1200))
    text = "t,k,v,x\n" + good + "\n1300,ka,notanumber,1.0\n1301,kb\n1302,kc,5,2.5\n"
    (tmp_path / "bad.csv").write_text(text)
    run = _query(rl.read_csv(str(tmp_path / "bad.csv"))).run()
    rej = run.rejected.filter(pl.col("file").is_not_null()).sort("line")
    assert rej["line"].to_list() == [1201, 1202]
    assert all(r.startswith("unreadable CSV record:") for r in rej["reason"])
    assert rej["text"].to_list() == ["1300,ka,notanumber,1.0", "1301,kb"]
    assert run.metrics["rows_in"] == 1199 + 3
    assert run.metrics["rows_rejected"] == 2
    assert run.output["count"].sum() + run.metrics["rows_late"] == 1199 + 1


def test_missing_and_empty_files_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(rl.SourceError, match="does not exist"):
        rl.read_csv(str(tmp_path / "nope.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(rl.SourceError):
        _query(rl.read_csv(str(tmp_path / "empty.csv"))).collect()


def test_truncated_gzip_raises_naming_the_file(tmp_path: Path) -> None:
    df = pl.DataFrame({"t": list(range(200_000)), "k": ["a"] * 200_000, "v": [1] * 200_000,
                       "x": [0.5] * 200_000})
    data = gzip.compress(df.write_csv().encode())
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) - 64])
    seen = []
    with pytest.raises(rl.SourceError, match="cut.csv.gz"):
        for out in _query(rl.read_csv(str(tmp_path / "cut.csv.gz"))).iter():
            seen.append(out)
    assert seen, "windows before the cut were emitted"


def test_real_glucose_readings_match_polars() -> None:
    """The CGM file has 'nil' readings late in the file (polars' own reader stops on them
    unless told); rillet keeps them in run.rejected with their line, and every other row is
    counted in its day exactly as polars counts it."""
    path = REAL / "iot_cgm_glucose" / "CGM.csv"
    if not path.exists():
        pytest.skip("shared data not present")
    run = (
        rl.stream(rl.read_csv(str(path)), time="datetime", watermark="1d")
        .window(rl.tumbling("1d")).agg(rl.count(), rl.max("glucose"))
        .run()
    )
    df = pl.read_csv(path, infer_schema_length=0).with_row_index("line", offset=2)
    m = run.metrics
    assert m["rows_in"] == df.height
    assert m["rows_accepted"] + m["rows_late"] + m["rows_rejected"] == df.height
    rejected = run.rejected.filter(pl.col("file").is_not_null())
    assert rejected.height == m["rows_rejected"] > 0
    assert rejected["text"].str.contains("nil").all()
    kept = df.filter(~pl.col("line").is_in(rejected["line"].cast(pl.UInt32).implode()))
    want = (
        kept.with_columns(pl.col("datetime").str.to_datetime("%Y-%m-%d %H:%M:%S"))
        .group_by(pl.col("datetime").dt.truncate("1d").alias("window_start"))
        .agg(pl.len().alias("count"))
        .sort("window_start")
    )
    assert m["rows_late"] == 0
    got = run.output.select("window_start", "count").sort("window_start")
    assert got["count"].to_list() == want["count"].to_list()
    assert got["window_start"].to_list() == want["window_start"].to_list()


def test_a_column_empty_in_the_sample_is_read_as_text(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    path.write_text("t,v\n" + "".join(f"{i},\n" for i in range(1100)) + "1100,5\n1101,hello\n")
    got = pl.concat(rl.read_csv(path).batches())
    assert got.schema["v"] == pl.String
    assert got["v"].drop_nulls().to_list() == ["5", "hello"]
    run = rl.stream(rl.read_csv(path), time="t").window(rl.tumbling(10_000)).agg(rl.count("v")).run()
    assert run.output["v_count"].to_list() == [2] and run.rejected.height == 0


def test_reject_reasons_do_not_carry_arrow_chunk_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "typed.csv"
    path.write_text("t,v\n" + "".join(f"{i},{i}\n" for i in range(1100)) + "1100,oops\n")
    run = rl.stream(rl.read_csv(path), time="t").window(rl.tumbling(10_000)).agg(rl.sum("v")).run()
    (reason,) = run.rejected["reason"].to_list()
    assert run.rejected["line"].to_list() == [1102]
    assert "at line" not in reason and "oops" in reason
