"""The progress bar of long replays: rows, event-time position, watermark and late rows, on
stderr (tqdm, notebook-aware); progress=False shows nothing, and no setting changes a result."""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl

CLOUDTRAIL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"


def _query(source) -> rl.Query:
    return (rl.stream(source, time="eventTime", watermark="1m")
            .window(rl.tumbling("5m"), by="eventSource")
            .agg(rl.count()))


@pytest.fixture
def log() -> Path:
    if not CLOUDTRAIL.exists():
        pytest.skip(f"the shared data is not beside the repository ({CLOUDTRAIL})")
    return CLOUDTRAIL


def test_a_file_replay_shows_rows_event_time_and_late_rows(log: Path, capsys) -> None:
    run = _query(rl.read_jsonl(str(log))).run(progress=True)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    # Independent facts about the file: its lines, its largest event time.
    lines = log.read_text().splitlines()
    latest = max(json.loads(line)["eventTime"] for line in lines)
    assert re.search(rf"\b{len(lines) / 1000:.2f}k rows\b", last), last
    assert f"event time {run.metrics['max_event_time']}" in last
    assert run.metrics["max_event_time"] == dt.datetime.fromisoformat(latest)
    assert f"watermark {run.metrics['watermark']}" in last
    assert last.rstrip().endswith(f"late {run.metrics['rows_late']}]"), last
    assert run.metrics["rows_late"] > 0  # the file is out of order: late rows are counted


def test_a_dataframe_replay_shows_a_total(capsys) -> None:
    df = pl.DataFrame({"eventTime": pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 1, 1),
                                                       "1s", eager=True, time_zone="UTC")})
    df = df.with_columns(eventSource=pl.lit("s3"))
    _query(df).run(progress=True)
    last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and f"{df.height / 1000:.2f}k/{df.height / 1000:.2f}k" in last, last


def test_progress_false_prints_nothing_and_results_match(log: Path, capsys) -> None:
    quiet = _query(rl.read_jsonl(str(log))).run(progress=False)
    assert capsys.readouterr().err == ""
    shown = _query(rl.read_jsonl(str(log))).run(progress=True)
    assert_frame_equal(shown.output, quiet.output)
    assert_frame_equal(shown.late, quiet.late)
