"""read_cloudtrail flattens records in Rust (``_core.cloudtrail_rows``) and falls back to its
Python reader for what only that reads exactly; the two give the same rows and rejections.
The oracle is the Python reader (``rows(..., fast=False)``), on the real CloudTrail records of
../shared/data/real and on generated records of every JSON shape."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rillet as rl
from rillet import _core
from rillet.sources.cloudtrail import BOOLEANS, FIELDS, IDENTITY, JSON_FIELDS, CloudTrailFiles

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


def both(tmp_path: Path, doc: object | bytes) -> tuple[pl.DataFrame, list, pl.DataFrame, list, bool]:
    """The rows and rejections of one file by the Rust path (with fallback) and by Python
    alone, and whether Rust read it."""
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    path = tmp_path / "f.json"
    path.write_bytes(raw)
    src = CloudTrailFiles(str(path))
    fast_bad: list = []
    slow_bad: list = []
    fast = src.rows(str(path), raw, fast_bad)
    slow = src.rows(str(path), raw, slow_bad, fast=False)
    return fast, fast_bad, slow, slow_bad, _core.cloudtrail_rows(raw) is not None


def real_records() -> list[dict]:
    if not REAL.exists():
        pytest.skip(f"{REAL} is not here (../shared beside the checkout)")
    return [json.loads(line) for line in REAL.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("per_file", [1, 7, 2_900])
def test_the_real_records_read_the_same_both_ways(tmp_path, per_file):
    records = real_records()
    for start in range(0, len(records), per_file)[:40]:
        fast, fast_bad, slow, slow_bad, in_rust = both(tmp_path, {"Records": records[start:start + per_file]})
        assert in_rust
        assert fast.equals(slow) and fast_bad == slow_bad == []


def test_a_query_over_the_real_records_in_their_s3_layout(tmp_path):
    records = real_records()
    folder = tmp_path / "AWSLogs" / "218007301253" / "CloudTrail" / "us-east-1" / "2023" / "07" / "10"
    folder.mkdir(parents=True)
    for n, start in enumerate(range(0, len(records), 100)):
        with gzip.open(folder / f"218007301253_CloudTrail_us-east-1_20230710T1142Z_{n:04d}.json.gz", "wt") as f:
            json.dump({"Records": records[start:start + 100]}, f)
    run = (rl.stream(rl.read_cloudtrail(str(tmp_path)), time="eventTime", watermark="10m")
           .window(rl.tumbling("5m"), by="eventSource")
           .agg(rl.count(), rl.count(where=pl.col("errorCode").is_not_null()).alias("failures"))
           .run())
    assert run.late.height == 0 and run.rejected.height == 0
    frame = pl.DataFrame({
        "t": [r["eventTime"] for r in records], "eventSource": [r["eventSource"] for r in records],
        "failed": [r.get("errorCode") is not None for r in records]})
    expected = (frame.group_by(pl.col("t").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
                               .dt.truncate("5m").alias("window_start"), "eventSource")
                .agg(count=pl.len(), failures=pl.col("failed").sum()))
    key = ["window_start", "eventSource"]
    got = run.output.select(*key, pl.col("count", "failures").cast(pl.Int64)).sort(key)
    want = expected.select(pl.col("window_start").cast(got["window_start"].dtype), "eventSource",
                           pl.col("count", "failures").cast(pl.Int64)).sort(key)
    assert got.equals(want)


EDGE_CASES = [
    [{"eventTime": "2023-07-10T11:42:36Z", "userIdentity": {"type": "Root", "b": [1, {"z": None, "a": True}]},
      "requestParameters": {"text": "é ü 😀 \u2028 \x7f \x00 \n\t\"\\/", "n": -0, "big": 2**63 - 1, "neg": -2**63}}],
    [{"eventTime": None, "userIdentity": {}, "resources": "kept as text", "readOnly": False, "zz": [], "aa": {}}],
    [{"eventName": "NoTime"}, {}],
    [{"requestParameters": {"f": 1.5}}],  # a float: Python writes it
    [{"responseElements": {"u": 2**64}}],  # beyond 64 bits
    [1, {"eventTime": "x"}],  # not an object
    [{"eventTime": 5}],
    [{"eventSource": 3}],
    [{"readOnly": "true"}],
    [{"userIdentity": "root"}],
    [{"userIdentity": {"arn": ["a"]}}],
    [{"eventTime": "2023-07-10T11:42:36Z", "a" * 300: "long key", "requestParameters": {"k": [[[[]]]]}}],
]


@pytest.mark.parametrize("records", EDGE_CASES)
def test_edge_cases_read_the_same_both_ways(tmp_path, records):
    fast, fast_bad, slow, slow_bad, _ = both(tmp_path, {"Records": records})
    assert fast.equals(slow)
    assert fast_bad == slow_bad


@pytest.mark.parametrize("raw", [b'{"Records": [{"x": NaN}]}', b'{"Records": [{"x": "\\ud800"}]}',
                                 b'{"Records": {}}', b"[1, 2]", b"{}", b'{"Records": []}', b"nope"])
def test_files_only_python_reads_go_to_python(tmp_path, raw):
    fast, fast_bad, slow, slow_bad, _ = both(tmp_path, raw)
    assert fast.equals(slow)
    assert fast_bad == slow_bad


KEYS = st.sampled_from(["eventTime", *FIELDS, *BOOLEANS, "userIdentity", *JSON_FIELDS, "x", "é", "a b", "Z"])
SCALARS = st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70) | st.text(max_size=8) \
    | st.floats(allow_nan=False, allow_infinity=False)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)
IDENT = st.dictionaries(st.sampled_from([*IDENTITY, "sessionContext", "q"]), JSON, max_size=4)
RECORD = st.dictionaries(KEYS, JSON | IDENT, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD | JSON, max_size=5))
def test_any_records_read_the_same_both_ways(tmp_path, records):
    fast, fast_bad, slow, slow_bad, _ = both(tmp_path, {"Records": records})
    assert fast.equals(slow)
    assert fast_bad == slow_bad
