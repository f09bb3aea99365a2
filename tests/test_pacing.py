"""Replay pacing: rows recorded over a span arrive over span / speed of wall clock, and the
results are those of the unpaced replay; ISO 8601 text times are read as the stream reads them."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import rillet as rl
from rillet import _time

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CLOUDTRAIL = Path("/work/shared/data/real/cloudtrail_invictus/cloudtrail.jsonl")


def _events() -> pl.DataFrame:
    n = 200
    arrival = [T0 + dt.timedelta(milliseconds=50 * i) for i in range(n)]  # 10 s recorded
    return pl.DataFrame({"arrival_time": arrival, "t": arrival, "v": list(range(n))})


def test_paced_replay_takes_span_over_speed_and_changes_no_result() -> None:
    df = _events()
    q = lambda src: rl.stream(src, time="t").window(rl.tumbling("1s")).agg(rl.count(), rl.sum("v"))  # noqa: E731
    started = time.monotonic()
    got = q(rl.paced(df, speed=20.0)).collect()
    took = time.monotonic() - started
    assert 0.35 < took < 2.0  # 9.95 s recorded at 20x is ~0.5 s
    assert got.equals(q(df).collect())


def test_unpaced_is_as_fast_as_possible() -> None:
    df = _events()
    started = time.monotonic()
    rl.stream(rl.paced(df, speed=None), time="t").window(rl.tumbling("1s")).agg(rl.count()).collect()
    assert time.monotonic() - started < 0.3


def test_file_sources_can_be_paced_by_their_iso_text_times(tmp_path) -> None:
    _events().write_ndjson(tmp_path / "e.jsonl")  # arrival_time is ISO 8601 text in JSON Lines
    src = rl.read_jsonl(str(tmp_path / "e.jsonl"))
    q = lambda s: rl.stream(s, time="t").window(rl.tumbling("1s")).agg(rl.count())  # noqa: E731
    started = time.monotonic()
    got = q(src.paced(speed=20.0)).collect()
    assert 0.35 < time.monotonic() - started < 2.0
    assert got.equals(q(src).collect())


# The forms the engine reads from a text time column (src/time.rs parse_timestamp), and some it
# rejects; the times are out of order on purpose.
TEXT_TIMES = [
    "2023-07-10T11:42:01Z", "2023-07-10T11:42:01.123456Z", "2023-07-10 11:42:01+01:00",
    "2023-07-10T11:42:01.5+0530", "2023-07-10T11:42", "2023-07-10 11:42:03.25", "2023-07-10",
    " 2023-07-10T11:42:01z ", "2023-07-10t11:42:01Z", "2023-07-10T11:42:01-03:00",
    "2023-07-10T11:42:01.123456789Z", "1969-12-31T23:59:59.9999995Z",
    "nope", None, "2023-07-10 11:42+02:00", "2023-07-10T11:42:01+01", "10/07/2023 11:42",
]


def test_text_times_are_read_as_the_stream_reads_them() -> None:
    df = pl.DataFrame({"t": TEXT_TIMES, "i": range(len(TEXT_TIMES))})
    run = (rl.stream(df, time="t", watermark="100000d").window(rl.tumbling("1us"), by="i")
           .agg(rl.count()).run())
    engine = dict(run.output.select("i", "window_start").iter_rows())
    assert set(run.rejected["i"]) == {12, 13, 14, 15, 16}  # the last five are not times
    ours = df.select("i", _time.text_instants("t")).rows()
    assert dict(ours) == {i: engine.get(i) for i in range(len(TEXT_TIMES))}


def _releases(source: Any) -> list[pl.DataFrame]:
    return list(rl.paced(source, speed=40.0, by="at").chunks())


def test_paced_by_iso_text_is_paced_by_the_parsed_datetime() -> None:
    n = 120
    at = [T0 + dt.timedelta(milliseconds=97 * i + (i % 5) * 400) for i in range(n)]  # 12 s, disordered
    forms = ["%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S.%f+00:00", "%Y-%m-%dT%H:%M:%S.%f"]
    text = [t.strftime(forms[i % 3]) for i, t in enumerate(at)]
    text[7] = text[8] = None  # released with the row before them
    as_text = pl.DataFrame({"at": text, "v": range(n)})
    parsed = as_text.with_columns(pl.Series("at", [None if s is None else t for s, t in zip(text, at, strict=True)],
                                            dtype=pl.Datetime("us", "UTC")))
    started = time.monotonic()
    by_text = _releases(as_text)
    took = time.monotonic() - started
    by_datetime = _releases(parsed)
    assert 0.15 < took < 1.5  # about 12.2 s / 40
    assert [f.height for f in by_text] == [f.height for f in by_datetime]
    assert len(by_text) > 20 and pl.concat(by_text).equals(as_text)


@pytest.mark.skipif(not CLOUDTRAIL.exists(), reason="real CloudTrail sample absent")
def test_cloudtrail_jsonl_is_paced_by_its_event_time_without_a_schema() -> None:
    src = rl.read_jsonl(CLOUDTRAIL)  # eventTime is text here; 55 minutes recorded
    q = lambda s: rl.stream(s, time="eventTime", watermark="10m").window(rl.tumbling("5m")).agg(rl.count())  # noqa: E731
    started = time.monotonic()
    got = q(src.paced(speed=6000, by="eventTime")).run(progress=False)
    assert 0.3 < time.monotonic() - started < 3.0
    assert got.output.equals(q(src).collect()) and got.metrics["rows_in"] == 2900


@pytest.mark.parametrize(("by", "message"), [
    # A nested column's fields are not spelled out: its type's name is enough.
    ("userIdentity", (r"^paced\(by='userIdentity'\): 'userIdentity' is Struct; pacing needs a "
                      r"Datetime, a Date, or ISO 8601 text such as 2024-05-01T12:00:00Z$")),
    ("n", r"'n' is Int64; .* \(integer times have no unit: convert them to a Datetime first\)$"),
    ("nope", (r"^paced\(by='nope'\): the source has no column 'nope'; its columns are "
              r"\['at', 'n', 'userIdentity'\]$")),
])
def test_an_unusable_pace_column_is_named_with_its_type(by: str, message: str) -> None:
    df = pl.DataFrame({"at": [T0], "n": [1], "userIdentity": [{"type": "IAMUser", "arn": "x",
                                                               "sessionContext": {"a": 1}}]})
    with pytest.raises(rl.SchemaError, match=message):
        list(rl.paced(df, speed=10.0, by=by).chunks())


def test_bad_speed_is_a_config_error() -> None:
    with pytest.raises(rl.ConfigError, match="positive"):
        rl.paced(_events(), speed=0)
