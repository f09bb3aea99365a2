"""Live sources: a writer thread appends to a file (or drops files in a folder) while a query
runs; windows close on new rows or, while the file is quiet, on the idle timeout."""
from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import rillet as rl

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _line(seconds: float, k: str = "a") -> str:
    return json.dumps({"t": (T0 + dt.timedelta(seconds=seconds)).isoformat(), "k": k}) + "\n"


def test_tail_sees_appended_rows_and_partial_lines(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_text(_line(1) + _line(2))

    def writer() -> None:
        time.sleep(0.2)
        with open(path, "a") as f:
            f.write(_line(70)[:10])  # a partial line waits for its newline
            f.flush()
            time.sleep(0.2)
            f.write(_line(70)[10:] + _line(130))

    threading.Thread(target=writer, daemon=True).start()
    q = rl.stream(rl.tail_jsonl(path, poll="20ms", max_idle="800ms"), time="t").window(
        rl.tumbling("1m")).agg(rl.count())
    run = q.run()
    assert run.output["count"].to_list() == [2, 1, 1]
    assert run.rejected.height == 0
    assert run.metrics["rows_in"] == 4


def test_idle_timeout_closes_a_window_while_the_file_is_quiet(tmp_path: Path) -> None:
    path = tmp_path / "quiet.jsonl"
    path.write_text(_line(1) + _line(59.9))
    q = (
        rl.stream(rl.tail_jsonl(path, poll="20ms", max_idle="1500ms"), time="t",
                  idle_timeout="300ms", flush=False)
        .window(rl.tumbling("1m")).agg(rl.count())
    )
    started = time.monotonic()
    first = next(iter(q.iter()))
    waited = time.monotonic() - started
    # No new row ever arrives: after 0.3 s of quiet, event time follows the wall clock from
    # the last watermark (00:00:59.9), so [00:00, 00:01) closes without another row.
    assert first["count"].to_list() == [2]
    assert waited < 1.5


def test_truncation_starts_the_file_over(tmp_path: Path) -> None:
    path = tmp_path / "trunc.jsonl"
    path.write_text(_line(1) + _line(2) + _line(3))

    def writer() -> None:
        time.sleep(0.3)
        path.write_text(_line(200))  # truncated and rewritten

    threading.Thread(target=writer, daemon=True).start()
    run = rl.stream(rl.tail_jsonl(path, poll="20ms", max_idle="800ms"), time="t").window(
        rl.tumbling("1m")).agg(rl.count()).run()
    assert run.output["count"].to_list() == [3, 1]


def test_tail_dir_reads_files_as_they_land_once_each(tmp_path: Path) -> None:
    (tmp_path / "001.jsonl").write_text(_line(1) + _line(2))

    def writer() -> None:
        time.sleep(0.3)
        tmp = tmp_path / ".002.jsonl.tmp"
        tmp.write_text(_line(61) + _line(62) + _line(125))
        os.replace(tmp, tmp_path / "002.jsonl")

    threading.Thread(target=writer, daemon=True).start()
    run = rl.stream(rl.tail_dir(tmp_path, "*.jsonl", poll="20ms", max_idle="800ms"), time="t").window(
        rl.tumbling("1m")).agg(rl.count()).run()
    assert run.output["count"].to_list() == [2, 2, 1]
    assert run.metrics["rows_in"] == 5


def test_bad_lines_in_a_tail_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(_line(1) + "{oops\n" + _line(2))
    run = rl.stream(rl.tail_jsonl(path, poll="20ms", max_idle="300ms"), time="t").window(
        rl.tumbling("1m")).agg(rl.count()).run()
    assert run.output["count"].to_list() == [2]
    bad = run.rejected.filter(pl.col("file").is_not_null())
    assert bad["line"].to_list() == [2]


def test_tail_dir_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(rl.ConfigError, match="not a folder"):
        rl.tail_dir(tmp_path / "missing")


def test_a_value_of_the_wrong_type_is_rejected_not_nulled(tmp_path: Path) -> None:
    def row(seconds: int, v: object) -> str:
        return json.dumps({"t": (T0 + dt.timedelta(seconds=seconds)).isoformat(), "v": v}) + "\n"

    path = tmp_path / "types.jsonl"
    path.write_text(row(1, 10) + row(2, 20))

    def writer() -> None:
        time.sleep(0.2)
        with open(path, "a") as f:
            f.write(row(3, "abc") + row(4, 40))

    threading.Thread(target=writer, daemon=True).start()
    run = rl.stream(rl.tail_jsonl(path, poll="20ms", max_idle="600ms"), time="t").window(
        rl.tumbling("1m")).agg(rl.count(), rl.sum("v")).run()
    assert run.output.select("count", "v_sum").rows() == [(3, 70)]
    bad = run.rejected.filter(pl.col("file").is_not_null())
    assert bad["line"].to_list() == [3]


# -- tail_csv ----------------------------------------------------------------------------------
def _csv_row(seconds: float, k: str = "a", v: object = 1) -> str:
    return f"{(T0 + dt.timedelta(seconds=seconds)).isoformat()},{k},{v}\n"


def test_tail_csv_equals_read_csv_on_the_same_file(tmp_path: Path) -> None:
    """A writer appends rows (some split mid-line, some bad) while the query runs; the result,
    late rows and rejected rows equal rl.read_csv over the finished file."""
    path = tmp_path / "live.csv"
    rows = [_csv_row((i * 7) % 300, f"k{i % 3}", i) for i in range(200)]
    rows[5] = "not a time,k0,1\n"  # in the first rows: both readers infer t as text
    rows[90] = "2026-01-01T00:01:00+00:00,k1\n"  # a field short
    rows[120] = '2026-01-01T00:02:00+00:00,"a\nquoted, multi-line key",5\n'  # one record, two lines
    path.write_text("t,k,v\n" + "".join(rows[:20]))

    def writer() -> None:
        with open(path, "a") as f:
            for i in range(20, 200, 30):
                block = "".join(rows[i:i + 30])
                f.write(block[:17])  # a partial line waits for its newline
                f.flush()
                time.sleep(0.03)
                f.write(block[17:])
                f.flush()
                time.sleep(0.03)

    t = threading.Thread(target=writer, daemon=True)
    t.start()

    def q(source):
        return (rl.stream(source, time="t", watermark="30s")
                .window(rl.tumbling("1m"), by="k").agg(rl.count(), rl.sum("v")))

    got = q(rl.tail_csv(path, poll="10ms", max_idle="600ms")).run()
    t.join()
    want = q(rl.read_csv(path)).run()
    assert want.rejected.height == 2 and want.late.height > 0
    assert_frame_equal(got.output, want.output)
    assert_frame_equal(got.late, want.late)
    def rejected(run: rl.Run) -> list[tuple]:
        return sorted(map(repr, run.rejected.select("file", "line", "t", "reason").rows()))

    assert rejected(got) == rejected(want)
    assert got.metrics["rows_in"] == want.metrics["rows_in"] == 200


def test_tail_csv_from_the_end_keeps_the_header_and_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text("t,k,v\n" + _csv_row(1) + _csv_row(2))

    def writer() -> None:
        time.sleep(0.2)
        with open(path, "a") as f:
            f.write(_csv_row(3, v=5) + "x,y\n" + _csv_row(4, v=7))

    threading.Thread(target=writer, daemon=True).start()
    run = (rl.stream(rl.tail_csv(path, poll="10ms", max_idle="500ms", from_start=False), time="t")
           .window(rl.tumbling("1m")).agg(rl.count(), rl.sum("v")).run())
    assert run.output.select("count", "v_sum").rows() == [(2, 12)]
    assert run.rejected.filter(pl.col("file").is_not_null())["line"].to_list() == [5]


def test_tail_csv_rotation_needs_the_same_header(tmp_path: Path) -> None:
    path = tmp_path / "rot.csv"
    path.write_text("t,k,v\n" + _csv_row(1) + _csv_row(2))

    def rotate(header: str) -> None:
        time.sleep(0.2)
        os.replace(path, tmp_path / "rot.csv.1")
        path.write_text(header + _csv_row(70, v=3))

    threading.Thread(target=rotate, args=("t,k,v\n",), daemon=True).start()
    run = (rl.stream(rl.tail_csv(path, poll="10ms", max_idle="600ms"), time="t")
           .window(rl.tumbling("1m")).agg(rl.count(), rl.sum("v")).run())
    assert run.output.select("count", "v_sum").rows() == [(2, 2), (1, 3)]

    path2 = tmp_path / "rot2.csv"
    path2.write_text("t,k,v\n" + _csv_row(1))

    def rotate2() -> None:
        time.sleep(0.2)
        (tmp_path / "new.csv").write_text("t,other\n" + _csv_row(70))
        os.replace(tmp_path / "new.csv", path2)

    threading.Thread(target=rotate2, daemon=True).start()
    with pytest.raises(rl.SourceError, match="header"):
        (rl.stream(rl.tail_csv(path2, poll="10ms", max_idle="600ms"), time="t")
         .window(rl.tumbling("1m")).agg(rl.count()).run())


def test_tail_csv_schema_and_separator(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("t;k;v\n" + _csv_row(1, v="007").replace(",", ";"))
    frame = next(iter(rl.tail_csv(path, separator=";", max_idle="100ms",
                                  schema={"t": pl.String, "k": pl.String, "v": pl.String}).chunks())).frame
    assert frame["v"].to_list() == ["007"]
    with pytest.raises(rl.ConfigError, match="separator"):
        rl.tail_csv(path, separator=";;")


def test_tail_csv_schema_must_name_the_header(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("t,k,v\n" + _csv_row(1))
    with pytest.raises(rl.ConfigError, match="header"):
        list(rl.tail_csv(path, max_idle="100ms", schema={"k": pl.String, "t": pl.String, "v": pl.Int64}).chunks())


def test_rotation_reads_the_old_file_to_its_end_and_keeps_a_cut_line(tmp_path: Path) -> None:
    """Rows written to the old file after the rename are still read; a last line left without
    its newline is a rejected row, not glued to the new file's first line."""
    path = tmp_path / "rot.jsonl"
    path.write_text(_line(1))
    old = open(path, "a")  # the writer keeps its descriptor across the rename

    def writer() -> None:
        time.sleep(0.15)
        os.replace(path, tmp_path / "rot.jsonl.1")
        old.write(_line(2) + _line(3) + '{"t": "2026-01-01T00:00:0')  # cut off
        old.flush()
        old.close()
        time.sleep(0.02)
        path.write_text(_line(100))

    threading.Thread(target=writer, daemon=True).start()
    run = (rl.stream(rl.tail_jsonl(path, poll="50ms", max_idle="600ms"), time="t")
           .window(rl.tumbling("1m")).agg(rl.count()).run())
    assert run.output["count"].to_list() == [3, 1]
    bad = run.rejected.filter(pl.col("file").is_not_null())
    assert bad["line"].to_list() == [4] and "incomplete last line" in bad["reason"][0]


def test_tail_jsonl_on_real_cloudtrail_counts_every_record(tmp_path: Path) -> None:
    """The real CloudTrail records, appended in uneven pieces (cut mid-line) by a writer
    thread while the query follows the file: every record is counted in its hour or rejected
    with its line, checked against plain Python over the records. (The tail infers its schema
    from the first rows it reads, so which records fit can differ from rl.read_jsonl's.)"""
    real = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "cloudtrail_invictus" / "cloudtrail.jsonl"
    if not real.exists():
        pytest.skip("shared data not present")
    data = real.read_bytes()
    path = tmp_path / "trail.jsonl"
    path.write_bytes(data[:200_000])

    def writer() -> None:
        with open(path, "ab") as f:
            for at in range(200_000, len(data), 700_001):
                f.write(data[at:at + 700_001])
                f.flush()
                time.sleep(0.05)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    run = (rl.stream(rl.tail_jsonl(path, poll="10ms", max_idle="700ms"), time="eventTime", watermark="3650d")
           .window(rl.tumbling("1h"), by="eventSource").agg(rl.count()).run())
    t.join()
    records = [json.loads(line) for line in data.splitlines() if line.strip()]
    rejected = set(run.rejected.filter(pl.col("file").is_not_null())["line"].to_list())
    expected: dict[tuple, int] = {}
    for number, r in enumerate(records, start=1):
        if number in rejected:
            continue
        hour = dt.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00")).replace(minute=0, second=0)
        expected[(r["eventSource"], hour)] = expected.get((r["eventSource"], hour), 0) + 1
    got = {(src, w): c for src, w, c in run.output.select("eventSource", "window_start", "count").iter_rows()}
    assert got == expected
    assert run.metrics["rows_in"] == len(records) == 2900
    assert run.output["count"].sum() + len(rejected) == len(records)
