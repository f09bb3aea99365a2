"""Kinesis' anomaly functions in SQL (``RANDOM_CUT_FOREST``, ``..._WITH_EXPLANATION``,
``HOTSPOTS``) against the same detectors built with the Python API, at batch sizes 1, 7 and
whole, and the AWS CloudTrail solution's whole application (notebooks/
kinesis-cloudtrail-application.sql, unchanged) over the real CloudTrail records, each pump
against polars."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import batches

import rillet as rl

SIZES = pytest.mark.parametrize("size", [1, 7, None])
BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
APP = Path(__file__).resolve().parents[1] / "notebooks" / "kinesis-cloudtrail-application.sql"
CLOUDTRAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


def _heart(n: int = 1500) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    rate = rng.normal(70, 5, n)
    if n > 1300:
        rate[[900, 1300]] = [150, 20]
    return pl.DataFrame({
        "ts": [BASE + dt.timedelta(seconds=i) for i in range(n)],
        "heartRate": rate,
        "rateType": np.where(rate > 100, "HIGH", "NORMAL"),
        "beats": rng.integers(0, 5, n),
    })


@SIZES
def test_random_cut_forest_equals_the_python_api(size: int | None) -> None:
    df = _heart()
    q = rl.sql("""SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
                  FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"),
                                               50, 128, 100000, 2))""",
               SOURCE_SQL_STREAM_001=rl.stream(batches(df, size), time="ts"))
    out = q.collect()
    assert out.columns == ["heartRate", "rateType", "ANOMALY_SCORE"]
    # every numeric column of the cursor but its time: heartRate and beats
    api = (rl.stream(df, time="ts")
           .detect(rl.random_cut_forest("heartRate", "beats", trees=50, sample_size=128, shingle_size=2))
           .collect())
    np.testing.assert_array_equal(out["ANOMALY_SCORE"].to_numpy(), api["anomaly_score"].to_numpy())
    # the planted rows and the rows whose shingle holds them score highest
    assert set(np.argsort(-out["ANOMALY_SCORE"].to_numpy())[:4]) == {900, 901, 1300, 1301}


@SIZES
def test_random_cut_forest_with_explanation_is_kinesis_json(size: int | None) -> None:
    df = _heart().select("ts", "heartRate")
    q = rl.sql("""SELECT STREAM * FROM TABLE(RANDOM_CUT_FOREST_WITH_EXPLANATION(
                      CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001"), 100, 256, 100000, 1, true))""",
               SOURCE_SQL_STREAM_001=rl.stream(batches(df, size), time="ts"))
    out = q.collect()
    assert out.columns == ["ts", "heartRate", "ANOMALY_SCORE", "ANOMALY_EXPLANATION"]
    api = (rl.stream(df, time="ts")
           .detect(rl.random_cut_forest("heartRate", with_explanation=True, directionality=True)).collect())
    for row, want in zip(out.iter_rows(named=True), api.iter_rows(named=True)):
        got = json.loads(row["ANOMALY_EXPLANATION"])
        part = want["anomaly_explanation"]["heartRate"]
        assert list(got) == ["heartRate"]
        assert got["heartRate"]["ATTRIBUTION_SCORE"] == f"{part['attribution_score']:.4f}"
        if part["direction"] is None:  # warming up: no direction yet
            assert list(got["heartRate"]) == ["ATTRIBUTION_SCORE"]
        else:
            assert got["heartRate"]["DIRECTION"] == part["direction"]
            assert got["heartRate"]["STRENGTH"] == f"{part['strength']:.4f}"
        # the attributions add up to the score (to the four decimals Kinesis printed)
        assert float(got["heartRate"]["ATTRIBUTION_SCORE"]) == pytest.approx(row["ANOMALY_SCORE"], abs=6e-5)
    assert json.loads(out["ANOMALY_EXPLANATION"][900])["heartRate"]["DIRECTION"] == "HIGH"
    assert json.loads(out["ANOMALY_EXPLANATION"][1300])["heartRate"]["DIRECTION"] == "LOW"


@SIZES
def test_hotspots_result_is_the_python_apis_hotspots_as_json(size: int | None) -> None:
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 10, (1200, 2))
    xy[::20] = [6, 2] + rng.uniform(0, 0.25, (60, 2))
    df = pl.DataFrame({"t": np.arange(1200), "x": xy[:, 0], "y": xy[:, 1], "is_hot": np.where(np.arange(1200) % 20 == 0, "Y", "N")})
    q = rl.sql("""SELECT "x", "y", "is_hot", "HOTSPOTS_RESULT"
                  FROM TABLE (HOTSPOTS(CURSOR(SELECT STREAM "x", "y", "is_hot" FROM "SOURCE_SQL_STREAM_001"), 1000, 0.2, 17))""",
               SOURCE_SQL_STREAM_001=rl.stream(batches(df, size), time="t"))
    out = q.collect()
    api = rl.stream(df, time="t").detect(rl.hotspots("x", "y")).collect()
    for got, want in zip(out["HOTSPOTS_RESULT"].to_list()[::97], api["hotspots"].to_list()[::97]):
        spots = json.loads(got)["hotspots"]
        assert [(s["density"], s["minValues"], s["maxValues"]) for s in spots] == \
            [(w["density"], w["min_values"], w["max_values"]) for w in want]
    last = json.loads(out["HOTSPOTS_RESULT"][-1])["hotspots"]
    assert last and last[0]["density"] > 10 and 5.5 <= last[0]["minValues"][0] <= 6.1


@pytest.mark.parametrize(("call", "message"), [
    ("RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM s), 100, 256)", "takes the cursor alone"),
    ("RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM s), 0, 256, 100000, 1)", "number of trees must be a positive"),
    ("RANDOM_CUT_FOREST_WITH_EXPLANATION(CURSOR(SELECT STREAM * FROM s), 100, 256, 100000, 1, 'yes')",
     "directionality is true or false"),
    ("HOTSPOTS(CURSOR(SELECT STREAM * FROM s), 1000, -0.2, 17)", "scan radius must be a positive number"),
])
def test_bad_arguments_are_named(call: str, message: str) -> None:
    df = _heart(10)
    with pytest.raises(rl.SqlError, match=message):
        rl.sql(f"SELECT STREAM * FROM TABLE({call})", s=rl.stream(df, time="ts"))


# -- the CloudTrail solution's application, unchanged ------------------------------------------------------
@pytest.fixture(scope="module")
def solution() -> rl.ApplicationRun:
    if not CLOUDTRAIL.exists():
        pytest.skip("shared data not present")
    schema = {
        "eventTime": pl.Datetime("us", "UTC"), "eventSource": pl.String, "eventName": pl.String,
        "sourceIPAddress": pl.String, "errorCode": pl.String,
        "userIdentity": pl.Struct({"sessionContext": pl.Struct({"sessionIssuer": pl.Struct({"userName": pl.String})})}),
    }
    issuer = pl.col("userIdentity").struct.field("sessionContext").struct.field("sessionIssuer")
    source = rl.stream(rl.read_jsonl(CLOUDTRAIL, schema=schema), time="eventTime", watermark="10m").with_columns(
        pl.lit("aws.cloudtrail").alias("source"), issuer.struct.field("userName").alias("userName"),
        pl.col("eventTime").alias("eventTimestamp"))
    return rl.Application(APP.read_text(), SOURCE_SQL_STREAM_001=source).run()


def _records() -> pl.DataFrame:
    return pl.read_ndjson(CLOUDTRAIL, schema_overrides={"eventTime": pl.String}).with_columns(
        pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"),
        pl.col("userIdentity").struct.field("sessionContext").struct.field("sessionIssuer")
        .struct.field("userName").alias("userName"))


@pytest.mark.parametrize(("kind", "every", "keys", "keep"), [
    ("CallsPerUniqueIp", "1m", ["sourceIPAddress"], None),
    ("CallsPerAPI", "10s", ["eventSource", "eventName"], None),
    ("CallsPerServiceType", "10s", ["eventSource"], pl.col("eventSource") != "ec2.amazonaws.com"),
    ("EC2Calls", "10s", ["eventSource", "errorCode"], pl.col("eventSource") == "ec2.amazonaws.com"),
    ("CallsPerUser", "10s", ["userName"], None),
    ("NumberOfSuccessfulCalls", "10s", [], None),
])
def test_every_pump_of_the_solution_equals_polars(solution: rl.ApplicationRun, kind: str, every: str,
                                                  keys: list[str], keep: pl.Expr | None) -> None:
    records = _records()
    if keep is not None:
        records = records.filter(keep)
    want = (records.group_by(pl.col("eventTime").dt.truncate(every).alias("eventTimeStamp"), *keys)
            .agg(pl.len().alias("unitValue")))
    got = solution.streams["DESTINATION_SQL_STREAM"].filter(pl.col("computationType") == kind)
    names = {"CallsPerUniqueIp": ["category"], "CallsPerAPI": ["category", "subCategory"],
             "CallsPerServiceType": ["category"], "EC2Calls": ["category", "subCategory"],
             "CallsPerUser": ["category"], "NumberOfSuccessfulCalls": []}[kind]
    got = got.select("eventTimeStamp", *[pl.col(n).alias(k) for n, k in zip(names, keys)], "unitValue")
    sort = ["eventTimeStamp", *keys]
    assert got.sort(sort, nulls_last=True).equals(want.select(got.columns).cast(got.schema).sort(sort, nulls_last=True))
    assert solution.runs[next(p for p in solution.runs if p != "PUMP_FOR_ANOMALY_CALL_COUNT")].late.height == 0


def test_the_solutions_anomaly_pump_equals_the_python_api(solution: rl.ApplicationRun) -> None:
    anomaly = solution.streams["DESTINATION_ANOMALY_STREAM"]
    counts = solution.streams["TOTAL_CALL_COUNT_STREAM"]
    assert anomaly["category"].cast(pl.Int64).to_list() == counts["callCount"].to_list()
    want = (rl.stream(counts.drop("ROWTIME"), time="eventTimeStamp")
            .detect(rl.random_cut_forest("callCount", trees=100, sample_size=256, time_decay=100_000, shingle_size=20))
            .collect())
    np.testing.assert_array_equal(anomaly["anomalyScore"].to_numpy(), want["anomaly_score"].to_numpy())
    # warm-up: 19 rows fill the first shingle, then 65 points fill the forest
    scores = anomaly["anomalyScore"].to_numpy()
    assert (scores[:84] == 0).all() and (scores[84:] > 0).all()


# -- E7: scores, then each second's rows ordered by score ---------------------------------------------------
E7 = """
CREATE OR REPLACE STREAM "TEMP_STREAM" ("heartRate" INTEGER, "rateType" varchar(20), "ANOMALY_SCORE" DOUBLE);
CREATE OR REPLACE STREAM "DESTINATION_SQL_STREAM" ("heartRate" INTEGER, "rateType" varchar(20), "ANOMALY_SCORE" DOUBLE);
CREATE OR REPLACE PUMP "STREAM_PUMP" AS
   INSERT INTO "TEMP_STREAM"
      SELECT STREAM "heartRate", "rateType", ANOMALY_SCORE
      FROM TABLE(RANDOM_CUT_FOREST(CURSOR(SELECT STREAM * FROM "SOURCE_SQL_STREAM_001")));
CREATE OR REPLACE PUMP "OUTPUT_PUMP" AS
   INSERT INTO "DESTINATION_SQL_STREAM"
      SELECT STREAM * FROM "TEMP_STREAM"
      ORDER BY FLOOR("TEMP_STREAM".ROWTIME TO SECOND), ANOMALY_SCORE DESC;
"""


def _quarter_seconds(n: int = 800) -> pl.DataFrame:
    rng = np.random.default_rng(8)
    rate = rng.normal(70, 5, n)
    rate[min(700, n - 1)] = 160
    return pl.DataFrame({"ts": [BASE + dt.timedelta(milliseconds=250 * i) for i in range(n)],
                         "heartRate": rate, "rateType": np.where(rate > 100, "HIGH", "NORMAL")})


@SIZES
def test_e7_scores_each_row_and_orders_each_second_by_score(size: int | None) -> None:
    df = _quarter_seconds()
    out = rl.Application(E7, SOURCE_SQL_STREAM_001=rl.stream(batches(df, size), time="ts")).run()
    got = out.streams["DESTINATION_SQL_STREAM"]
    # the oracle: the same forest with the Python API, then polars sorting each second's rows
    scored = (rl.stream(df, time="ts").detect(rl.random_cut_forest("heartRate")).collect()
              .with_columns(pl.col("heartRate").cast(pl.Int32)))
    want = (scored.with_columns(pl.col("ts").dt.truncate("1s").alias("second"))
            .sort("second", "anomaly_score", descending=[False, True], maintain_order=True)
            .select(pl.col("ts").alias("ROWTIME"), "heartRate", "rateType",
                    pl.col("anomaly_score").alias("ANOMALY_SCORE")))
    assert got.equals(want)
    assert got.height == df.height and out.runs["OUTPUT_PUMP"].late.height == 0


@SIZES
def test_order_by_a_time_bucket_over_raw_rows_sorts_each_bucket(size: int | None) -> None:
    df = _quarter_seconds(300).with_columns(pl.col("ts").shuffle(seed=1).sort().alias("ts"))
    q = rl.sql('SELECT STREAM "heartRate", ts FROM s ORDER BY FLOOR(s.ROWTIME TO MINUTE), "heartRate" DESC',
               s=rl.stream(batches(df, size), time="ts"))
    want = (df.with_columns(pl.col("ts").dt.truncate("1m").alias("m"))
            .sort("m", "heartRate", descending=[False, True], maintain_order=True).select("heartRate", "ts"))
    assert q.collect().equals(want)
