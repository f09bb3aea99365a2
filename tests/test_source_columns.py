"""``columns=`` on the file readers: only those columns are read, in that order, and the rows
equal polars reading the same file with the same columns, whatever the batch size; a value
that does not parse in a column left out rejects nothing; positions still resume."""
from __future__ import annotations

import datetime as dt
import gzip

import polars as pl
import pytest

import rillet as rl

T0 = dt.datetime(2026, 1, 5, 9, 0)
READERS = {"parquet": rl.read_parquet, "ipc": rl.read_ipc, "jsonl": rl.read_jsonl, "csv": rl.read_csv,
           "jsonl.gz": rl.read_jsonl, "csv.gz": rl.read_csv}


def frame(n: int = 200) -> pl.DataFrame:
    return pl.DataFrame({
        "ts": [T0 + dt.timedelta(seconds=7 * i) for i in range(n)],
        "user": [f"u{i % 13}" for i in range(n)],
        "note": [f"text, with \"quotes\" {i}" for i in range(n)],
        "bytes": [i * 37 % 1_001 for i in range(n)],
        "ratio": [i / 7 for i in range(n)],
    })


def write(df: pl.DataFrame, kind: str, path) -> str:
    out = str(path / f"data.{kind}")
    if kind == "parquet":
        df.write_parquet(out, row_group_size=17)
    elif kind == "ipc":
        df.write_ipc(out)
    elif kind.startswith("jsonl"):
        text = df.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_ndjson()
        data = text.encode()
        with (gzip.open(out, "wb") if kind.endswith(".gz") else open(out, "wb")) as f:
            f.write(data)
    else:
        text = df.write_csv()
        with (gzip.open(out, "wt") if kind.endswith(".gz") else open(out, "w")) as f:
            f.write(text)
    return out


def read(kind: str, path: str, **kw) -> tuple[pl.DataFrame, pl.DataFrame]:
    frames, bad = [], []
    for chunk in READERS[kind](path, **kw).chunks():
        frames.append(chunk.frame)
        bad.append(chunk.bad)
    return pl.concat(frames), pl.concat(bad)


@pytest.mark.parametrize("kind", list(READERS))
@pytest.mark.parametrize("batch_rows", [1, 7, 65_536])
def test_only_the_columns_named_are_read_in_their_order(tmp_path, kind, batch_rows):
    df = frame()
    path = write(df, kind, tmp_path)
    cols = ["bytes", "ts", "user"]
    rows, bad = read(kind, path, columns=cols, batch_rows=batch_rows)
    everything, _ = read(kind, path, batch_rows=batch_rows)
    assert rows.columns == cols and bad.height == 0
    assert rows.equals(everything.select(cols))
    if kind.startswith("jsonl"):  # JSON Lines keep the times as text
        rows = rows.with_columns(pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us"))
    us = pl.col("ts").cast(pl.Datetime("us"))
    assert rows.with_columns(us).equals(df.select(cols).with_columns(us))


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_bad_value_in_a_column_left_out_rejects_nothing(tmp_path, kind):
    df = frame(30)
    path = write(df, kind, tmp_path)
    with open(path) as f:
        text = f.read().splitlines()
    # Row 10's ratio becomes text where the column holds numbers.
    if kind == "jsonl":
        text[10] = text[10].replace('"ratio":', '"ratio":"n/a","was":')
    else:
        head = text[0].split(",")
        fields = text[11].rsplit(",", 1)
        assert head[-1] == "ratio"
        text[11] = fields[0] + ",n/a"
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")
    schema = {"ts": pl.String, "user": pl.String, "note": pl.String, "bytes": pl.Int64, "ratio": pl.Float64}
    rows, bad = read(kind, path, schema=schema)
    assert bad.height == 1 and rows.height == 29
    rows, bad = read(kind, path, schema=schema, columns=["ts", "bytes"])
    assert bad.height == 0 and rows.height == 30
    assert rows["bytes"].equals(df["bytes"])


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "csv"])
def test_a_query_over_some_columns_equals_polars(tmp_path, kind):
    df = frame(500)
    path = write(df, kind, tmp_path)
    src = READERS[kind](path, columns=["ts", "user", "bytes"], batch_rows=7)
    out = (rl.stream(src, time="ts").window(rl.tumbling("5m"), by="user").agg(rl.count(), rl.sum("bytes"))
           .collect().sort("window_start", "user"))
    expected = (df.group_by(pl.col("ts").dt.truncate("5m").alias("window_start"), "user")
                .agg(count=pl.len(), bytes_sum=pl.col("bytes").sum()).sort("window_start", "user"))
    assert out["count"].cast(pl.Int64).to_list() == expected["count"].cast(pl.Int64).to_list()
    assert out["bytes_sum"].to_list() == expected["bytes_sum"].to_list()
    assert out["user"].to_list() == expected["user"].to_list()


@pytest.mark.parametrize("kind", ["parquet", "ipc", "jsonl", "csv"])
def test_positions_resume_with_the_same_columns(tmp_path, kind):
    path = write(frame(), kind, tmp_path)
    src = READERS[kind](path, columns=["user", "ts"], batch_rows=7)
    chunks = list(src.positioned_chunks(durable=True))
    middle = len(chunks) // 2
    rest = list(src.positioned_chunks(start=chunks[middle][1], durable=True))
    assert len(rest) == len(chunks) - middle - 1
    for (a, _), (b, _) in zip(rest, chunks[middle + 1:], strict=True):
        assert a.frame.equals(b.frame) and a.frame.columns == ["user", "ts"]


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "csv"])
def test_columns_a_file_does_not_have_are_named(tmp_path, kind):
    path = write(frame(5), kind, tmp_path)
    with pytest.raises(rl.SchemaError, match=r'columns= names "usr", which .* does not have; its columns are'):
        read(kind, path, columns=["ts", "usr"])
    with pytest.raises(rl.ConfigError, match='names "ts" twice'):
        read(kind, path, columns=["ts", "ts"])


@pytest.mark.parametrize("bad", [[], "", [1], 5, [""]])
def test_columns_must_be_names(tmp_path, bad):
    path = write(frame(5), "parquet", tmp_path)
    with pytest.raises(rl.ConfigError, match=r"read_parquet\(columns=...\) takes a list of column names"):
        rl.read_parquet(path, columns=bad)
