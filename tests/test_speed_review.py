"""Defects a review found in the Nexmark generator, columns= and the Rust CloudTrail reader,
as regression tests. Oracles: the Python CloudTrail reader and json.dumps; a run without a
restart; the generator's own rule that an auction expires after it starts."""
from __future__ import annotations

import json
import random

import polars as pl
import pytest

import rillet as rl
from rillet.sources.cloudtrail import CloudTrailFiles


def rows_both_ways(raw: bytes, tmp_path) -> tuple[pl.DataFrame, pl.DataFrame]:
    path = tmp_path / "f.json"
    path.write_bytes(raw)
    src = CloudTrailFiles(str(path))
    return src.rows(str(path), raw, []), src.rows(str(path), raw, [], fast=False)


@pytest.mark.parametrize("literal", ["-0", "0", "-0.0", "3.4594915198092497e-200", "9.3348988293652031e-17",
                                     "7.3782211717940758e-224", "1.7612008047849625", "1e22", "18446744073709551616"])
def test_cloudtrail_numbers_are_written_as_python_reads_them(tmp_path, literal):
    raw = ('{"Records":[{"eventTime":"2024-01-01T00:00:00Z","requestParameters":{"a":' + literal + "}}]}").encode()
    fast, slow = rows_both_ways(raw, tmp_path)
    assert fast.equals(slow)
    want = json.dumps(json.loads(raw)["Records"][0]["requestParameters"], sort_keys=True, separators=(",", ":"))
    assert fast["requestParameters"][0] == want


def test_cloudtrail_float_literals_of_every_size(tmp_path):
    rng = random.Random(1)
    literals = [f"{rng.randint(1, 9)}.{rng.randint(0, 10**16)}e{rng.randint(-320, 308)}" for _ in range(2_000)]
    records = [{"eventTime": "2024-01-01T00:00:00Z", "requestParameters": {"a": None}} for _ in literals]
    text = json.dumps({"Records": records})
    for lit in literals:
        text = text.replace('"a": null', f'"a": {lit}', 1)
    fast, slow = rows_both_ways(text.encode(), tmp_path)
    assert fast.equals(slow)


def test_read_csv_columns_resumed_reads_new_files_with_the_checkpoints_types(tmp_path):
    (tmp_path / "a1.csv").write_text("ts,id,n\n2026-01-01T00:00:00Z,a1,1\n2026-01-01T00:00:01Z,b2,2\n")
    last = None
    for _, pos in rl.read_csv(f"{tmp_path}/*.csv", columns=["ts", "id"]).positioned_chunks(durable=True):
        last = pos
    (tmp_path / "a2.csv").write_text("ts,id,n\n2026-01-01T00:00:02Z,3,3\n2026-01-01T00:00:03Z,4,4\n")
    whole = [c.frame for c in rl.read_csv(f"{tmp_path}/*.csv", columns=["ts", "id"]).chunks()]
    resumed = [c.frame for c, _ in rl.read_csv(f"{tmp_path}/*.csv", columns=["ts", "id"])
               .positioned_chunks(start=last, durable=True)]
    assert all(f.schema["id"] == pl.String for f in whole)
    assert resumed and all(f.schema == whole[-1].schema for f in resumed)
    assert pl.concat(resumed).equals(whole[-1].tail(pl.concat(resumed).height))


def test_order_by_a_column_columns_leaves_out_is_refused_naming_columns(tmp_path):
    pl.DataFrame({"a": [1], "b": [1], "c": [0]}).write_parquet(tmp_path / "q1.parquet")
    with pytest.raises(rl.ConfigError, match=r"order_by='b'.*columns=\['c'\] leaves out"):
        rl.read_parquet(f"{tmp_path}/q*.parquet", columns=["c"], order_by="b")


def test_columns_outside_a_given_schema_blame_the_schema(tmp_path):
    pl.DataFrame({"a": [1], "b": [2]}).write_parquet(tmp_path / "p1.parquet")
    with pytest.raises(rl.SchemaError, match="which the schema= given does not have"):
        list(rl.read_parquet(str(tmp_path / "p1.parquet"), columns=["b"], schema={"a": pl.Float64}).chunks())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"base_time": 2**63 - 1_000_000, "rate": 1}, "base_time must be within the years 1 to 9999"),
    ({"base_time": 2**70}, "base_time must be within the years 1 to 9999"),
    ({"rate": 2**64}, "rate .* up to 1,000,000,000"),
    ({"batch_events": 2**64}, "batch_events must be a positive whole number up to"),
    ({"events": 10**16}, "events must be a whole number >= 0 up to"),
])
def test_nexmark_arguments_beyond_what_it_can_time_are_refused(kwargs, match):
    with pytest.raises(rl.ConfigError, match=match):
        rl.nexmark(**{"events": 100, **kwargs})


def test_nexmark_at_the_edges_of_time_keeps_its_rules():
    for base in ("9999-12-01T00:00:00Z", "0001-01-01T00:00:00Z"):
        nx = rl.nexmark(events=5_000, base_time=base, rate=1)
        a = nx.auctions.collect()
        assert (a["expires"] > a["date_time"]).all()
        t = nx.bids.collect()["date_time"]
        assert t.n_unique() == t.len()
