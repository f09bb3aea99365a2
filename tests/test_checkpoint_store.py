"""Checkpoint files (python/rillet/runtime/checkpoint.py): what is saved reads back byte for
byte; a torn, corrupt or half-written file is never taken for a checkpoint, including after a
real kill -9 at each phase of a save; a changed query is refused with the difference named."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rillet as rl
from rillet.runtime import checkpoint as ck

FP = {"query 0": "source  rl.stream(events)\nwindow  tumbling('1m')\nby      user"}


def _parts(seed: int) -> dict[str, bytes]:
    rnd = random.Random(seed)
    return {"op 0": rnd.randbytes(rnd.randrange(0, 5000)), "source 0": b'{"file": "a.jsonl", "offset": 12}',
            "empty": b"", "sink 0": rnd.randbytes(17)}


def test_what_is_saved_reads_back_byte_for_byte_and_only_the_newest_are_kept(tmp_path: Path) -> None:
    store = ck.CheckpointStore(tmp_path / "chk", keep=2)
    assert store.latest() is None
    for epoch in range(5):
        store.save(epoch, FP, _parts(epoch))
        got = store.latest()
        assert got is not None
        assert (got.epoch, got.fingerprint, got.parts) == (epoch, FP, _parts(epoch))
        assert got.version == rl.__version__
    assert store.epochs() == [3, 4]
    # A store opened again finds the same.
    again = ck.CheckpointStore(tmp_path / "chk")
    latest = again.latest()
    assert latest is not None and latest.parts == _parts(4)


@pytest.mark.parametrize("damage", ["truncated", "byte_flipped", "empty", "not_a_checkpoint"])
def test_a_damaged_newest_file_is_passed_over_for_the_one_before(tmp_path: Path, damage: str) -> None:
    store = ck.CheckpointStore(tmp_path, keep=3)
    store.save(1, FP, _parts(1))
    newest = store.save(2, FP, _parts(2))
    data = newest.read_bytes()
    if damage == "truncated":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "byte_flipped":
        i = len(data) // 3
        newest.write_bytes(data[:i] + bytes([data[i] ^ 0x40]) + data[i + 1:])
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.write_bytes(b"PAR1" + data[4:])
    with pytest.raises(ck.CorruptCheckpoint):
        ck.read(newest)
    got = store.latest()
    assert got is not None and (got.epoch, got.parts) == (1, _parts(1))


def test_a_leftover_temporary_file_is_removed_and_never_read(tmp_path: Path) -> None:
    store = ck.CheckpointStore(tmp_path)
    store.save(1, FP, _parts(1))
    (tmp_path / "chk-000000000002.rlck.tmp").write_bytes(b"half of a save")
    again = ck.CheckpointStore(tmp_path)
    assert not list(tmp_path.glob("*.tmp"))
    got = again.latest()
    assert got is not None and got.epoch == 1


CHILD = textwrap.dedent("""
    import os, signal, sys
    from rillet.runtime import checkpoint as ck
    sys.path.insert(0, {tests!r})
    from test_checkpoint_store import FP, _parts
    store = ck.CheckpointStore({path!r})
    store.save(1, FP, _parts(1))
    phase = {phase!r}
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if phase == "before_rename":
        ck.os.replace = die
    elif phase == "after_rename_before_dir_fsync":
        ck.fsync_dir = die
    elif phase == "mid_write":
        ck.os.fsync = die
    store.save(2, FP, _parts(2))
    os.kill(os.getpid(), signal.SIGKILL)  # after the save: killed all the same
""")


@pytest.mark.parametrize(("phase", "want"), [
    ("mid_write", 1), ("before_rename", 1), ("after_rename_before_dir_fsync", 2), ("after_save", 2),
])
def test_a_kill_9_at_each_phase_of_a_save_leaves_a_whole_checkpoint(tmp_path: Path, phase: str, want: int) -> None:
    path = tmp_path / "chk"
    code = CHILD.format(tests=str(Path(__file__).parent), path=str(path), phase=phase)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    store = ck.CheckpointStore(path)
    got = store.latest()
    assert got is not None
    assert (got.epoch, got.fingerprint, got.parts) == (want, FP, _parts(want))
    assert not list(path.glob("*.tmp"))


def test_a_changed_query_is_refused_with_the_difference_named(tmp_path: Path) -> None:
    changed = {"query 0": FP["query 0"].replace("tumbling('1m')", "tumbling('5m')")}
    with pytest.raises(rl.ConfigError, match=r"query 0 changed at line 2: was \"window  tumbling\('1m'\)\", "
                                             r"now \"window  tumbling\('5m'\)\""):
        ck.check_same_query(FP, changed, tmp_path)
    with pytest.raises(rl.ConfigError, match=r"query 1 is new.*new checkpoint path"):
        ck.check_same_query(FP, {**FP, "query 1": "x"}, tmp_path)
    with pytest.raises(rl.ConfigError, match=r"query 0 was in the checkpointed run"):
        ck.check_same_query(FP, {}, tmp_path)
    ck.check_same_query(FP, dict(FP), tmp_path)  # the same query resumes


def test_a_checkpoint_of_another_format_is_refused_by_name(tmp_path: Path) -> None:
    store = ck.CheckpointStore(tmp_path)
    path = store.save(1, FP, _parts(1))
    body = path.read_bytes()[:-4]
    body = body[:4] + (ck.FORMAT_VERSION + 1).to_bytes(4, "little") + body[8:]
    import zlib
    path.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))
    with pytest.raises(rl.ConfigError, match=r"format 2.*reads format 1.*new checkpoint path"):
        ck.read(path)


def test_a_file_where_the_directory_should_be_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(rl.ConfigError, match="is a file; give a directory"):
        ck.CheckpointStore(tmp_path / "f")
    with pytest.raises(rl.ConfigError, match="keeps at least one"):
        ck.CheckpointStore(tmp_path / "d", keep=0)
    assert os.path.isdir(tmp_path / "d") is False


@pytest.mark.parametrize("size", [1, 7, None])
def test_a_window_operators_snapshot_restored_into_a_new_one_continues_as_if_never_stopped(size: int | None) -> None:
    """What a checkpoint holds of a window: the core's snapshot, read back into a new
    operator, gives the rest of the output an uninterrupted run gives (against polars)."""
    import datetime as dt

    import polars as pl
    from conftest import batches

    from rillet.runtime.execution import Execution

    rnd = random.Random(5)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    df = pl.DataFrame({"ts": [base + dt.timedelta(seconds=i * 7 + rnd.randrange(0, 20)) for i in range(300)],
                       "user": [rnd.choice("abc") for _ in range(300)], "v": [rnd.randrange(100) for _ in range(300)]})
    query = (rl.stream(df, time="ts", watermark="30s").window(rl.tumbling("1m"), by="user")
             .agg(rl.count(), rl.sum("v").alias("total")))
    parts = list(batches(df, size))
    half = max(1, len(parts) // 2)  # whole: the state of everything, then only the end

    first = Execution(query, False)
    out = [first.step(b) for b in parts[:half]]
    saved = first.op.snapshot()
    second = Execution(query, False)
    second.bind(parts[0])
    second.op.restore(saved)
    out += [second.step(b) for b in parts[half:]]
    out.append(second.finish())
    got = pl.concat([o for o in out if o.height]).sort("window_start", "user")

    late = (first.late_frame(), second.late_frame())
    assert all(frame.height == 0 for frame in late)
    want = (df.group_by(pl.col("ts").dt.truncate("1m").alias("window_start"), "user")
            .agg(pl.len().alias("count"), pl.col("v").sum().alias("total")).sort("window_start", "user"))
    assert got.select("window_start", "user", "count", "total").equals(
        want.with_columns(pl.col("count").cast(got.schema["count"]), pl.col("total").cast(got.schema["total"])))
