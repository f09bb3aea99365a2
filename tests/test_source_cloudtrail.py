"""rl.read_cloudtrail on CloudTrail's S3 delivery layout, built in a temp dir from the real
records of ../shared/data/real/cloudtrail_invictus; the oracle is polars over the same
records read straight from the JSON Lines file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

import rillet as rl

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


@pytest.fixture(scope="module")
def records() -> list[dict]:
    if not SOURCE.exists():
        pytest.skip("shared data not present")
    return [json.loads(line) for line in SOURCE.read_text().splitlines() if line.strip()]


def _layout(root: Path, records: list[dict], per_file: int = 400, gz: bool = True) -> Path:
    base = root / "AWSLogs" / "123837392027" / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    base.mkdir(parents=True)
    for i in range(0, len(records), per_file):
        name = f"123837392027_CloudTrail_us-east-1_20230710T{i:05d}Z_abc.json"
        doc = json.dumps({"Records": records[i:i + per_file]})
        if gz and (i // per_file) % 2 == 0:
            with gzip.open(base / (name + ".gz"), "wt") as f:
                f.write(doc)
        else:
            (base / name).write_text(doc)
    return root


def test_flattened_columns_match_the_records(tmp_path: Path, records: list[dict]) -> None:
    root = _layout(tmp_path, records)
    frames = [c.frame for c in rl.read_cloudtrail(root).chunks()]
    df = pl.concat(frames)
    assert df.height == len(records)
    assert df.schema["eventTime"] == pl.Datetime("us", "UTC")
    for col in ["eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
                "errorCode", "userIdentity.arn", "userIdentity.type", "recipientAccountId"]:
        assert col in df.columns
    want_names = [r["eventName"] for r in records]
    assert df["eventName"].to_list() == want_names
    want_arn = [(r.get("userIdentity") or {}).get("arn") for r in records]
    assert df["userIdentity.arn"].to_list() == want_arn
    want_err = [r.get("errorCode") for r in records]
    assert df["errorCode"].to_list() == want_err
    first = json.loads(df["requestParameters"].drop_nulls()[0])
    assert isinstance(first, dict)


def test_per_minute_metrics_equal_polars_over_the_same_records(tmp_path: Path, records: list[dict]) -> None:
    root = _layout(tmp_path, records)
    run = (
        rl.stream(rl.read_cloudtrail(root), time="eventTime", watermark="1h")
        .window(rl.tumbling("1m"), by="eventSource")
        .agg(rl.count(), rl.count(where=pl.col("errorCode").is_not_null()).alias("failures"))
        .run()
    )
    assert run.metrics["rows_in"] == len(records)
    assert run.late.height == 0 and run.rejected.height == 0
    ref = pl.DataFrame({
        "eventTime": [r["eventTime"] for r in records],
        "eventSource": [r["eventSource"] for r in records],
        "failed": [r.get("errorCode") is not None for r in records],
    }).with_columns(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"))
    want = (
        ref.group_by("eventSource", pl.col("eventTime").dt.truncate("1m").alias("window_start"))
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("failed").sum().cast(pl.Int64).alias("failures"))
        .sort("eventSource", "window_start")
    )
    got = run.output.select("eventSource", "window_start", "count", "failures").sort("eventSource", "window_start")
    assert got.equals(want)


def test_a_file_that_is_not_a_cloudtrail_log_is_rejected(tmp_path: Path, records: list[dict]) -> None:
    root = _layout(tmp_path, records[:50], per_file=50, gz=False)
    (root / "AWSLogs" / "bogus.json").write_text('{"not": "records"}')
    run = rl.stream(rl.read_cloudtrail(root), time="eventTime", watermark="1h").window(
        rl.tumbling("1h")).agg(rl.count()).run()
    bad = run.rejected.filter(pl.col("file").is_not_null())
    assert bad.height == 1 and "not a CloudTrail log file" in bad["reason"][0]
    assert run.output["count"].sum() == 50
    assert run.metrics["rows_in"] == 51


def test_a_truncated_gzip_names_the_file(tmp_path: Path, records: list[dict]) -> None:
    root = _layout(tmp_path, records[:800], per_file=400)
    files = sorted((root / "AWSLogs").rglob("*.json.gz"))
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 2])
    with pytest.raises(rl.SourceError, match=files[0].name):
        rl.stream(rl.read_cloudtrail(root), time="eventTime").window(rl.tumbling("1h")).agg(rl.count()).collect()


def test_an_empty_folder_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(rl.SourceError, match="no .json"):
        rl.read_cloudtrail(tmp_path)
