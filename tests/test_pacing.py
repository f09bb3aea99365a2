"""Replay pacing: rows recorded over a span arrive over span / speed of wall clock, and the
results are those of the unpaced replay."""
from __future__ import annotations

import datetime as dt
import time

import polars as pl
import pytest

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


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


def test_file_sources_can_be_paced(tmp_path) -> None:
    _events().write_ndjson(tmp_path / "e.jsonl")
    src = rl.read_jsonl(str(tmp_path / "e.jsonl"))
    with pytest.raises(rl.SchemaError, match="Datetime"):
        # arrival_time is an ISO string in JSON Lines: pacing needs a Datetime column
        rl.stream(src.paced(speed=50.0), time="t").window(rl.tumbling("1s")).agg(rl.count()).collect()


def test_bad_speed_is_a_config_error() -> None:
    with pytest.raises(rl.ConfigError, match="positive"):
        rl.paced(_events(), speed=0)
