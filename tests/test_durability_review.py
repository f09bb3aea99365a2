"""A second review of checkpointed runs (issue 18): file sources resumed at true offsets
(files added, removed, merged by ``order_by``, .gz, CSV quoted newlines, ``on_error='skip'``,
``schema=``), followed files (copytruncate, a record in quotes across the checkpoint,
``from_start=False``), paced replays resumed part way through a batch, ``rillet run
--checkpoint`` into Parquet and a database at once, ``rl.Application`` and ``rl.start`` with
checkpoints, what a resumed run may change and what it must refuse, and the checkpoint
counters. Each resumed run is compared with an uninterrupted run over the same input and a
brute-force count of the rows (every input row processed exactly once: in a window or late)."""
from __future__ import annotations

import datetime as dt
import gc
import gzip
import json
import os
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import batches
from helpers import until
from test_sql import _trades
from test_sql_application import MINUTES_INTO_FIVE

import rillet as rl
from rillet.runtime import driver

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SIZES = [1, 7, None]


@pytest.fixture(autouse=True)
def _collect_leaked_locks():
    """A resume that raises leaves the checkpoint directory's lock file open until garbage
    collection (see test_a_refused_resume_releases_the_checkpoint_directory): collected here,
    its ResourceWarning ignored, so it cannot fail whichever later test the collector runs in."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class Boom(Exception):
    """The failure that stops a run part way (after ``k`` steps of the flow)."""


def stop_after(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    real = driver.Dataflow.step
    calls = [0]

    def step(self, item):
        calls[0] += 1
        if calls[0] > k:
            raise Boom(f"stopped after step {k}")
        return real(self, item)

    monkeypatch.setattr(driver.Dataflow, "step", step)


def records(n: int, first: int = 0, shift_s: int = 0) -> list[dict[str, Any]]:
    """Rows 3 s apart from row ``first`` on, three users, ``v`` the row's number (distinct)."""
    return [{"t": (T0 + dt.timedelta(seconds=3 * i + shift_s)).isoformat(), "user": f"u{i % 3}", "v": i}
            for i in range(first, first + n)]


def write_jsonl(path: Path, rows: list[dict[str, Any]], gz: bool = False) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


def query(source: Any) -> Any:
    return (rl.stream(source, time="t", watermark="10s")
            .window(rl.tumbling("1m"), by="user").agg(rl.count(), rl.sum("v")))


def stopped_then_resumed(monkeypatch: pytest.MonkeyPatch, make: Any, path: Path, k: int,
                         between: Any = None) -> rl.Run:
    """Runs ``query(make())`` checkpointing after every batch, stopped after ``k`` steps;
    calls ``between()``; then resumes it to its end."""
    with monkeypatch.context() as m:
        stop_after(m, k)
        with pytest.raises(Boom):
            query(make()).run(checkpoint=path, checkpoint_every=1, progress=False)
    if between is not None:
        between()
    return query(make()).run(checkpoint=path, checkpoint_every=1, progress=False)


def same_run(got: rl.Run, want: rl.Run) -> None:
    key = ["user", "window_start"]
    assert got.output.sort(key).equals(want.output.sort(key)), f"output differs:\n{got.output}\n{want.output}"
    assert got.late.sort("v").equals(want.late.sort("v")) if want.late.height else got.late.height == 0
    assert got.rejected.equals(want.rejected), f"rejected rows differ:\n{got.rejected}\n{want.rejected}"
    assert got.metrics["rows_in"] == want.metrics["rows_in"]


def each_row_once(run: rl.Run, rows: list[dict[str, Any]]) -> None:
    """The brute-force oracle: every input row is counted once, in a window or late."""
    out = run.output if run.output.width else pl.DataFrame({"count": [], "v_sum": []}, schema={"count": pl.Int64, "v_sum": pl.Int64})
    seen = int(out["v_sum"].sum() or 0) + (int(run.late["v"].sum()) if run.late.height else 0)
    counted = int(out["count"].sum() or 0) + run.late.height
    assert (counted, seen) == (len(rows), sum(r["v"] for r in rows)), "rows lost or processed twice"


def batch_rows(size: int | None) -> int:
    return 65_536 if size is None else size


def stops(n_chunks: int) -> list[int]:
    return sorted({max(1, n_chunks // 3), max(1, (2 * n_chunks) // 3)})


# -- file sources -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "arrow", "jsonl.gz"])
@pytest.mark.parametrize("size", SIZES)
def test_files_added_to_the_glob_after_the_checkpoint_are_read_once(fmt, size, tmp_path, monkeypatch):
    parts = [records(20, 0), records(20, 20), records(20, 40)]
    folder = tmp_path / "in"
    folder.mkdir()

    def put(name: str, rows: list[dict[str, Any]]) -> None:
        target = folder / f"{name}.{fmt}"
        if fmt == "csv":
            pl.DataFrame(rows).write_csv(target)
        elif fmt == "parquet":
            pl.DataFrame(rows).write_parquet(target, row_group_size=5)
        elif fmt == "arrow":
            pl.DataFrame(rows).write_ipc(target)
        else:
            write_jsonl(target, rows, gz=fmt.endswith(".gz"))

    put("a", parts[0])
    put("b", parts[1])
    reader = {"jsonl": rl.read_jsonl, "jsonl.gz": rl.read_jsonl, "csv": rl.read_csv, "parquet": rl.read_parquet,
              "arrow": rl.read_ipc}[fmt]
    make = lambda: reader(str(folder / f"*.{fmt}"), batch_rows=batch_rows(size))  # noqa: E731
    n_chunks = 2 * -(-20 // batch_rows(size))
    k = stops(n_chunks)[-1] if n_chunks > 2 else 1  # inside the second file (or after the first)
    got = stopped_then_resumed(monkeypatch, make, tmp_path / "ck", k, lambda: put("c", parts[2]))
    same_run(got, query(make()).run(progress=False))
    each_row_once(got, [r for p in parts for r in p])


@pytest.mark.parametrize("size", SIZES)
def test_csv_quoted_newlines_and_skipped_files_resume_at_every_chunk(size, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()

    def csv_text(rows: list[dict[str, Any]]) -> str:
        out = "t,user,v,note\n"
        for i, r in enumerate(rows):
            note = '"line one\nline two, with a comma"' if i % 3 == 0 else "plain"
            out += f"{r['t']},{r['user']},{r['v']},{note}\n"
        return out

    (folder / "a.csv").write_text(csv_text(records(20, 0)))
    (folder / "b.csv").write_text(csv_text(records(20, 20)))
    full = gzip.compress(csv_text(records(20, 40)).encode())
    (folder / "c.csv.gz").write_bytes(full[: len(full) // 2])  # truncated: skipped, in run.rejected
    (folder / "d.csv").write_text(csv_text(records(20, 60)))
    make = lambda: rl.read_csv(str(folder / "*.csv*"), batch_rows=batch_rows(size), on_error="skip")  # noqa: E731
    want = query(make()).run(progress=False)
    assert want.rejected.height >= 1
    n_chunks = 4 * -(-20 // batch_rows(size))
    for k in sorted({*stops(n_chunks), max(1, n_chunks // 2)}):
        got = stopped_then_resumed(monkeypatch, make, tmp_path / f"ck{k}", k)
        same_run(got, want)


@pytest.mark.parametrize("size", SIZES)
def test_read_jsonl_with_schema_resumes_like_the_uninterrupted_run(size, tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl.gz"
    rows = records(60)
    write_jsonl(src, rows, gz=True)
    schema = {"t": pl.String, "user": pl.String, "v": pl.Int64}
    make = lambda: rl.read_jsonl(str(src), batch_rows=batch_rows(size), schema=schema)  # noqa: E731
    n_chunks = -(-60 // batch_rows(size))
    # One chunk: stopped at the end of the input, after the chunk's checkpoint.
    got = stopped_then_resumed(monkeypatch, make, tmp_path / "ck", stops(n_chunks)[0])
    same_run(got, query(make()).run(progress=False))
    each_row_once(got, rows)


@pytest.mark.parametrize("size", [1, 7])
def test_order_by_merge_with_a_file_added_after_the_checkpoint_counts_each_row_once(size, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = records(20, 0), records(20, 20)
    c = [{**r, "v": 1000 + r["v"]} for r in records(40, 0, shift_s=1)]  # between a's and b's times
    write_jsonl(folder / "a.jsonl", a)
    write_jsonl(folder / "b.jsonl", b)
    make = lambda: rl.read_jsonl(str(folder / "*.jsonl"), batch_rows=size, order_by="t")  # noqa: E731
    got = stopped_then_resumed(monkeypatch, make, tmp_path / "ck", 5 if size == 1 else 2,
                               lambda: write_jsonl(folder / "c.jsonl", c))
    each_row_once(got, a + b + c)


def test_order_by_merge_with_a_file_that_grew_after_the_checkpoint_counts_each_row_once(tmp_path, monkeypatch):
    """Files merged by order_by= that were appended to while the run was stopped (each stays
    a prefix of itself): the merge before the position is unchanged, so the count holds."""
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = records(20, 0), records(20, 0, shift_s=1)
    write_jsonl(folder / "a.jsonl", a)
    write_jsonl(folder / "b.jsonl", b)
    more = [{**r, "v": 1000 + r["v"]} for r in records(10, 5, shift_s=2)]
    make = lambda: rl.read_jsonl(str(folder / "*.jsonl"), batch_rows=1, order_by="t")  # noqa: E731

    def grow() -> None:
        with open(folder / "a.jsonl", "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in more))

    try:
        got = stopped_then_resumed(monkeypatch, make, tmp_path / "ck", 6, grow)
    except rl.SourceError as e:
        assert "a.jsonl" in str(e)
        return
    each_row_once(got, a + b + more)


@pytest.mark.parametrize("gone", ["a", "b"])
def test_a_file_removed_after_it_was_read_is_refused_naming_the_checkpoint(gone, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, first in (("a", 0), ("b", 20), ("c", 40)):
        write_jsonl(folder / f"{name}.jsonl", records(20, first))
    make = lambda: rl.read_jsonl(str(folder / "*.jsonl"), batch_rows=1)  # noqa: E731
    with pytest.raises(rl.SourceError, match=rf"(?s){gone}\.jsonl.*checkpoint"):
        stopped_then_resumed(monkeypatch, make, tmp_path / "ck", 50, lambda: (folder / f"{gone}.jsonl").unlink())


# -- followed files ---------------------------------------------------------------------------
def _tail_run(src: Any, path: Path) -> rl.Run:
    return query(src).run(checkpoint=path, checkpoint_every=1, progress=False)


def test_tail_copytruncate_while_stopped_reads_the_new_content_from_its_start(tmp_path, monkeypatch):
    log = tmp_path / "app.jsonl"
    first, second = records(30), records(60, 30)
    write_jsonl(log, first)
    make = lambda: rl.tail_jsonl(str(log), poll="20ms", max_idle="300ms")  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 3)
        with pytest.raises(Boom):
            _tail_run(make(), tmp_path / "ck")

    with open(log, "r+") as f:
        f.truncate(0)
    write_jsonl(log, second)
    with pytest.warns(rl.DataLossWarning, match="truncated"):
        got = _tail_run(make(), tmp_path / "ck")
    each_row_once(got, first + second)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_tail_partial_line_and_a_quoted_record_across_the_checkpoint(kind, tmp_path, monkeypatch):
    """The checkpoint falls where the file ends in a partial line (JSON Lines) or inside a
    quoted CSV field spanning lines: the resumed run reads each record once."""
    rows = records(40)
    log = tmp_path / f"app.{kind}"
    if kind == "jsonl":
        text = "".join(json.dumps(r) + "\n" for r in rows)
        cut = text.index(json.dumps(rows[20])) + 10  # part way through row 20
    else:
        text = "t,user,v,note\n" + "".join(
            f'{r["t"]},{r["user"]},{r["v"]},"a\nb"\n' for r in rows)
        cut = text.index(f'{rows[20]["v"]},"a\n') + len(f'{rows[20]["v"]},"a\n')  # inside the quotes
    log.write_text(text[:cut])
    make = lambda: (rl.tail_jsonl if kind == "jsonl" else rl.tail_csv)(str(log), poll="20ms", max_idle="300ms")  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 3)
        with pytest.raises(Boom):
            _tail_run(make(), tmp_path / "ck")
    with open(log, "a") as f:
        f.write(text[cut:])
    got = _tail_run(make(), tmp_path / "ck")
    each_row_once(got, rows)
    assert got.rejected.height == 0
    whole = tmp_path / f"whole.{kind}"
    whole.write_text(text)
    same_run(got, query((rl.read_jsonl if kind == "jsonl" else rl.read_csv)(str(whole))).run(progress=False))


def test_tail_from_start_false_then_resume_reads_only_what_came_after(tmp_path, monkeypatch):
    log = tmp_path / "app.jsonl"
    old, new1, new2 = records(10), records(20, 10), records(20, 30)
    write_jsonl(log, old)
    make = lambda: rl.tail_jsonl(str(log), poll="20ms", max_idle="1s", from_start=False)  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 15)
        with pytest.raises(Boom):
            src = make()

            def append_soon():
                time.sleep(0.1)
                with open(log, "a") as f:
                    f.write("".join(json.dumps(r) + "\n" for r in new1))

            import threading
            threading.Thread(target=append_soon, daemon=True).start()
            _tail_run(src, tmp_path / "ck")
    with open(log, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in new2))
    got = _tail_run(make(), tmp_path / "ck")
    each_row_once(got, new1 + new2)


def test_tail_rotated_while_stopped_warns_and_reads_the_new_file(tmp_path, monkeypatch):
    log = tmp_path / "app.jsonl"
    first, second = records(30), records(20, 30)
    write_jsonl(log, first)
    make = lambda: rl.tail_jsonl(str(log), poll="20ms", max_idle="300ms")  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 3)
        with pytest.raises(Boom):
            _tail_run(make(), tmp_path / "ck")
    log.rename(tmp_path / "app.jsonl.1")
    write_jsonl(log, second)
    with pytest.warns(rl.DataLossWarning, match="replaced"):
        got = _tail_run(make(), tmp_path / "ck")
    each_row_once(got, first + second)


def test_tail_dir_with_a_file_landing_while_stopped_reads_each_file_once(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b, c = records(20), records(20, 20), records(20, 40)
    write_jsonl(folder / "a.jsonl", a)
    write_jsonl(folder / "b.jsonl", b)
    make = lambda: rl.tail_dir(str(folder), poll="20ms", max_idle="300ms")  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 1)  # after a.jsonl
        with pytest.raises(Boom):
            _tail_run(make(), tmp_path / "ck")
    write_jsonl(folder / "c.jsonl", c)
    got = _tail_run(make(), tmp_path / "ck")
    each_row_once(got, a + b + c)


def test_tail_dir_file_removed_part_way_while_stopped_warns(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", records(70_000))  # more than one chunk (65,536 rows)
    write_jsonl(folder / "b.jsonl", records(20, 70_000))
    make = lambda: rl.tail_dir(str(folder), poll="20ms", max_idle="300ms")  # noqa: E731
    with monkeypatch.context() as m:
        stop_after(m, 1)  # inside a.jsonl
        with pytest.raises(Boom):
            _tail_run(make(), tmp_path / "ck")
    (folder / "a.jsonl").unlink()
    with pytest.warns(rl.DataLossWarning, match="a.jsonl"):
        got = _tail_run(make(), tmp_path / "ck")
    assert got.metrics["rows_in"] == 65_536 + 20


def test_tail_from_start_false_reads_a_file_created_after_the_start_as_a_resume_does(tmp_path):
    import threading

    log = tmp_path / "later.jsonl"
    rows = records(10)

    def create_soon() -> None:
        time.sleep(0.2)
        write_jsonl(log, rows)

    threading.Thread(target=create_soon, daemon=True).start()
    run = query(rl.tail_jsonl(str(log), poll="20ms", max_idle="800ms", from_start=False)).run(progress=False)
    each_row_once(run, rows)


# -- paced replays ------------------------------------------------------------------------------
def _paced_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=13 * i) for i in range(60)],
        "user": [f"u{i % 3}" for i in range(60)],
        "v": list(range(60)),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


@pytest.mark.parametrize("size", [
    1,
    7,
    None,
])
def test_paced_replay_resumed_part_way_through_a_batch(size, tmp_path, monkeypatch):
    df = _paced_frame()
    rows = [{"v": v} for v in df["v"]]
    make = lambda: rl.paced(batches(df, size), speed=1000, by="t")  # noqa: E731
    want = query(make()).run(progress=False)
    for k in (3, 4, 6, 9):
        got = stopped_then_resumed(monkeypatch, make, tmp_path / f"ck{k}", k)
        same_run(got, want)
        each_row_once(got, rows)


# -- rillet run --checkpoint into Parquet and a database --------------------------------------
@pytest.mark.parametrize("crash", ["1:mid_epoch", "1:before_rename", "1:before_commit", "1:mid_commit",
                                   "2:mid_commit", "1:after_commit"])
def test_cli_checkpoint_into_parquet_and_a_database_with_late_and_rejected_files(crash, tmp_path):
    lines = []
    for i in range(80):
        s = 3 * i - (100 if i % 10 == 0 else 0)  # every tenth row late
        lines.append(json.dumps({"t": (T0 + dt.timedelta(seconds=max(s, 0))).isoformat(), "user": f"u{i % 3}", "v": i}))
        if i % 13 == 5:
            lines.append('{"t": broken')
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")

    def cli(tag: str, checkpoint: bool, crash_at: str | None = None) -> int:
        env = {k: v for k, v in os.environ.items() if k != "RILLET_CRASH_AT"}
        if crash_at:
            env["RILLET_CRASH_AT"] = crash_at
        args = [sys.executable, "-m", "rillet", "run", str(tmp_path / "in.jsonl"), "--time", "t",
                "--watermark", "10s", "--window", "tumbling:1m", "--by", "user", "--agg", "count",
                "--agg", "sum:v", "--to-parquet", str(tmp_path / f"pq_{tag}"),
                "--to-database", f"sqlite:///{tmp_path}/db_{tag}.sqlite", "--table", "w",
                "--late", str(tmp_path / f"late_{tag}.csv"), "--rejected", str(tmp_path / f"rej_{tag}.csv"),
                "--no-progress"]
        if checkpoint:
            args += ["--checkpoint", str(tmp_path / f"ck_{tag}"), "--checkpoint-every", "1"]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120).returncode

    assert cli("gold", False) == 0
    assert cli("x", True, crash) == -9
    assert cli("x", True) == 0
    key = ["user", "window_start"]
    assert pl.read_parquet(tmp_path / "pq_x").sort(key).equals(pl.read_parquet(tmp_path / "pq_gold").sort(key))
    with sqlite3.connect(tmp_path / "db_x.sqlite") as a, sqlite3.connect(tmp_path / "db_gold.sqlite") as b:
        got = a.execute("select user, window_start, count, v_sum from w order by 1, 2").fetchall()
        assert got == b.execute("select user, window_start, count, v_sum from w order by 1, 2").fetchall()
        # the oracle: every row that parsed is in a window or late
        assert sum(r[2] for r in got) + pl.read_csv(tmp_path / "late_x.csv").height == 80
    for f in ("late", "rej"):
        assert pl.read_csv(tmp_path / f"{f}_x.csv").equals(pl.read_csv(tmp_path / f"{f}_gold.csv")), f
    assert pl.read_csv(tmp_path / "rej_x.csv").height == len([i for i in range(80) if i % 13 == 5])
    assert not list(tmp_path.glob("*.rillet-staging*/**/*.parquet"))


# -- rl.Application, rl.start ------------------------------------------------------------------
class Failing:
    def __init__(self, parts: list[pl.DataFrame], fail_at: int | None = None) -> None:
        self.parts, self.fail_at = parts, fail_at

    def __iter__(self):
        for i, p in enumerate(self.parts):
            if i == self.fail_at:
                raise Boom
            yield p


@pytest.mark.parametrize("size", SIZES)
def test_application_with_two_pumps_resumes_like_the_uninterrupted_run(size, tmp_path):
    df = _trades(200)
    parts = batches(df, size)
    app = lambda src: rl.Application(MINUTES_INTO_FIVE, rl.stream(src, time="ts", watermark="10s"))  # noqa: E731
    want = app(Failing(parts)).run()
    for at in sorted({max(1, len(parts) // 3), max(1, 2 * len(parts) // 3)}):
        if at >= len(parts):
            continue
        with pytest.raises(Boom):
            app(Failing(parts, at)).run(checkpoint=tmp_path / "ck", checkpoint_every=1)
    got = app(Failing(parts)).run(checkpoint=tmp_path / "ck", checkpoint_every=1)
    for name in ("PER_MINUTE", "PER_FIVE"):
        assert got.streams[name].equals(want.streams[name]), name
    # the oracle: trades per minute add up to the input
    assert got.streams["PER_MINUTE"]["trades"].sum() == df.height


def test_rl_start_two_queries_stop_saves_without_flushing_and_a_second_start_goes_on(tmp_path):
    df = _paced_frame()
    log = tmp_path / "app.jsonl"
    rows = [{"t": t.isoformat(), "user": u, "v": v} for t, u, v in df.iter_rows()]
    write_jsonl(log, rows[:30])
    s = lambda: rl.stream(rl.tail_jsonl(str(log), poll="20ms"), time="t", watermark="10s")  # noqa: E731
    mk = lambda st: (st.window(rl.tumbling("1m"), by="user").agg(rl.count(), rl.sum("v")),  # noqa: E731
                     st.window(rl.tumbling("5m")).agg(rl.count()))
    h1, h2 = rl.start(*mk(s()), checkpoint=tmp_path / "ck", checkpoint_every=5)
    until(lambda: h1.metrics["rows_in"] == 30, timeout=10)
    first = h1.stop()
    h2.wait()
    assert first.metrics["open_windows"] > 0  # stop did not flush
    write_jsonl(log, rows)  # the rest appended (the same file, rewritten with its start intact)
    st = s()
    h1, h2 = rl.start(*mk(st), checkpoint=tmp_path / "ck", checkpoint_every=5)
    until(lambda: h1.metrics["rows_in"] == 60, timeout=10)
    h1.stop()
    # flush by a run that reads nothing new: the final windows
    q1, q2 = mk(rl.stream(rl.tail_jsonl(str(log), poll="20ms", max_idle="200ms"), time="t", watermark="10s"))
    r1, r2 = rl.run(q1, q2, checkpoint=tmp_path / "ck", progress=False)
    w1, w2 = mk(rl.stream(rl.read_jsonl(str(log)), time="t", watermark="10s"))
    o1, o2 = rl.run(w1, w2, progress=False)
    assert r1.output.sort("user", "window_start").equals(o1.output.sort("user", "window_start"))
    assert r2.output.sort("window_start").equals(o2.output.sort("window_start"))
    assert r2.output["count"].sum() == 60


def test_start_with_a_checkpoint_reports_the_checkpoint_counters(tmp_path):
    df = _paced_frame()
    q = query(batches(df, 7))
    ran = q.run(checkpoint=tmp_path / "a", checkpoint_every=5, progress=False)
    handle = q.start(checkpoint=tmp_path / "b", checkpoint_every=5)
    got = handle.wait()
    assert got.metrics["checkpoints"] == ran.metrics["checkpoints"] > 1
    assert got.metrics["checkpoint_epoch"] == ran.metrics["checkpoint_epoch"]


# -- what a resumed run may change, and what it must refuse ------------------------------------
def _frame_source() -> pl.DataFrame:
    return _paced_frame()


def test_checkpoint_every_and_progress_may_change_on_resume(tmp_path, monkeypatch):
    df = _frame_source()
    a = tmp_path / "a.jsonl"
    rows = [{"t": t.isoformat(), "user": u, "v": v} for t, u, v in df.iter_rows()]
    write_jsonl(a, rows)
    with monkeypatch.context() as m:
        stop_after(m, 20)
        with pytest.raises(Boom):
            query(rl.read_jsonl(str(a), batch_rows=1)).run(checkpoint=tmp_path / "ck", checkpoint_every=1,
                                                           progress=False)
    got = query(rl.read_jsonl(str(a), batch_rows=1)).run(checkpoint=tmp_path / "ck", checkpoint_every="1h",
                                                         progress=None)
    each_row_once(got, rows)
    same_run(got, query(rl.read_jsonl(str(a))).run(progress=False))


@pytest.mark.parametrize("size", SIZES)
def test_the_same_files_spelled_another_way_are_not_read_twice(size, tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = records(30), records(30, 30)
    write_jsonl(folder / "a.jsonl", a)
    write_jsonl(folder / "b.jsonl", b)
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        stop_after(m, 1 if size is None else -(-40 // size))  # inside b.jsonl (or after a.jsonl)
        with pytest.raises(Boom):
            query(rl.read_jsonl("in/*.jsonl", batch_rows=batch_rows(size))).run(
                checkpoint="ck", checkpoint_every=1, progress=False)
    got = query(rl.read_jsonl(str(folder / "*.jsonl"), batch_rows=batch_rows(size))).run(
        checkpoint="ck", checkpoint_every=1, progress=False)
    each_row_once(got, a + b)


def test_tail_dir_spelled_another_way_reads_each_file_once(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    a, b = records(30), records(30, 30)
    write_jsonl(folder / "a.jsonl", a)
    write_jsonl(folder / "b.jsonl", b)
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        stop_after(m, 1)  # after a.jsonl
        with pytest.raises(Boom):
            _tail_run(rl.tail_dir("in", poll="20ms", max_idle="300ms"), Path("ck"))
    got = _tail_run(rl.tail_dir(str(folder), poll="20ms", max_idle="300ms"), Path("ck"))
    each_row_once(got, a + b)


def test_a_path_that_no_longer_names_the_checkpoints_file_is_refused_naming_it(tmp_path, monkeypatch):
    df = _frame_source()
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rows = [{"t": t.isoformat(), "user": u, "v": v} for t, u, v in df.iter_rows()]
    write_jsonl(a, rows)
    write_jsonl(b, rows)
    with monkeypatch.context() as m:
        stop_after(m, 20)
        with pytest.raises(Boom):
            query(rl.read_jsonl(str(a), batch_rows=1)).run(checkpoint=tmp_path / "ck", checkpoint_every=1,
                                                           progress=False)
    with pytest.raises(rl.ConfigError, match="a.jsonl"):
        query(rl.read_jsonl(str(b), batch_rows=1)).run(checkpoint=tmp_path / "ck", checkpoint_every=1,
                                                       progress=False)


def test_a_refused_resume_releases_the_checkpoint_directory(tmp_path):
    df = _frame_source()
    mk = lambda w: (rl.stream(df, time="t", watermark="10s")  # noqa: E731
                    .window(rl.tumbling(w), by="user").agg(rl.count()))
    first = mk("1m").run(checkpoint=tmp_path / "ck", progress=False)
    with pytest.raises(rl.ConfigError, match="tumbling") as refused:
        mk("2m").run(checkpoint=tmp_path / "ck", progress=False)
    again = mk("1m").run(checkpoint=tmp_path / "ck", progress=False)  # the error is still held
    assert again.output.equals(first.output)
    assert refused.value is not None


@pytest.mark.parametrize("now", ["dataframe", "read_jsonl"])
def test_a_checkpoint_of_another_kind_of_source_is_refused_naming_it(now, tmp_path, monkeypatch):
    df = _frame_source()
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [{"t": t.isoformat(), "user": u, "v": v} for t, u, v in df.iter_rows()])
    with monkeypatch.context() as m:
        stop_after(m, 2)
        with pytest.raises(Boom):
            query([df[:20], df[20:40], df[40:]]).run(checkpoint=tmp_path / "ck", checkpoint_every=1,
                                                      progress=False)
    other = df if now == "dataframe" else rl.read_jsonl(str(src))
    with pytest.raises(rl.ConfigError, match="source"):
        query(other).run(checkpoint=tmp_path / "ck", checkpoint_every=1, progress=False)


# -- metrics after a resume --------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_metrics_after_resume_count_the_whole_run(size, tmp_path, monkeypatch):
    df = _frame_source()
    parts = batches(df, size)
    want = query(Failing(parts)).run(progress=False)
    n = len(parts)
    if n > 1:
        with pytest.raises(Boom):
            query(Failing(parts, n // 2)).run(checkpoint=tmp_path / "ck", checkpoint_every=1, progress=False)
    got = query(Failing(parts)).run(checkpoint=tmp_path / "ck", checkpoint_every=1, progress=False)
    same_run(got, want)
    assert got.metrics["rows_in"] == df.height
    assert got.metrics["checkpoints"] == got.metrics["checkpoint_epoch"] >= 1
    assert got.metrics["elapsed_s"] > 0
    assert got.metrics["rows_per_s"] == pytest.approx(df.height / got.metrics["elapsed_s"], rel=0.05, abs=2)
    again = query(Failing(parts)).run(checkpoint=tmp_path / "ck", checkpoint_every=1, progress=False)
    same_run(again, want)
    assert again.metrics["checkpoint_epoch"] >= got.metrics["checkpoint_epoch"]
