"""Resumable positions of file readers and snapshots of joins (checkpoints, issue 18).

A file reader's ``position()`` after chunk k, given to a fresh reader's ``seek()``, must make
it return exactly the chunks k+1.. of the uninterrupted reader (rows, bad rows, line numbers,
file names), for JSON Lines, CSV (plain and gzip), Parquet and Arrow IPC over several files
at batch sizes 1, 7 and 65536; a file that changed under a position is refused. A join of
two streams restored from a snapshot taken at any split point emits what the uninterrupted
join emits; a table join keeps its counters.
"""
from __future__ import annotations

import datetime as dt
import gzip
import os

import numpy as np
import polars as pl
import pytest

import rillet as rl
from rillet import _core
from rillet.plan.joins import TableJoin

SIZES = [1, 7, 65536]


# -- file readers ----------------------------------------------------------------------------
def read_all(make) -> tuple[list[tuple[pl.DataFrame, pl.DataFrame]], list[bytes]]:
    """Every chunk of a fresh reader, and its position before the first and after each."""
    reader = make()
    chunks, positions = [], [reader.position()]
    while (chunk := reader.next_chunk()) is not None:
        rows, bad = chunk
        chunks.append((pl.DataFrame(rows), pl.DataFrame(bad)))
        positions.append(reader.position())
    positions.append(reader.position())  # after the end was seen
    return chunks, positions


def spread(n: int, most: int = 40) -> list[int]:
    """Every index up to n, or (when there are many) the first, the last and a spread."""
    if n <= most:
        return list(range(n + 1))
    return sorted({0, 1, 2, n - 1, n, *np.linspace(0, n, most, dtype=int).tolist()})


def assert_resumes_everywhere(make) -> list[tuple[pl.DataFrame, pl.DataFrame]]:
    chunks, positions = read_all(make)
    assert chunks, "the files give chunks"
    for k in spread(len(positions) - 1):
        reader = make()
        reader.seek(positions[k])
        rest = []
        while (chunk := reader.next_chunk()) is not None:
            rest.append((pl.DataFrame(chunk[0]), pl.DataFrame(chunk[1])))
        want = chunks[min(k, len(chunks)):]
        assert len(rest) == len(want), f"after position {k}: {len(rest)} chunks, expected {len(want)}"
        for i, ((rows, bad), (rows_w, bad_w)) in enumerate(zip(rest, want, strict=True)):
            assert rows.equals(rows_w), f"after position {k}, chunk {k + i}: rows differ"
            assert bad.equals(bad_w), f"after position {k}, chunk {k + i}: bad rows differ"
        assert reader.position() == positions[-1]
    return chunks


def gz(path, data: bytes) -> str:
    path.write_bytes(gzip.compress(data))
    return str(path)


def jsonl_text(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        r = rng.integers(0, 10)
        if r == 0:
            lines.append("{not json")
        elif r == 1:
            lines.append("")
        elif r == 2:
            lines.append('{"id": "not an int", "v": 1.5}')
        else:
            lines.append(f'{{"id": {seed * 1000 + i}, "v": {rng.normal():.6f}, "s": "row {i}"}}')
    return ("\n".join(lines) + "\n").encode()


def csv_text(n: int, seed: int, crlf: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    rows = ["id,v,s"]
    for i in range(n):
        r = rng.integers(0, 10)
        if r == 0:
            rows.append(f'{seed * 1000 + i},1.0,"two\nlines, quoted"')
        elif r == 1:
            rows.append("1,2,3,4")  # too many fields
        elif r == 2:
            rows.append("x,notanumber,y")
        else:
            rows.append(f"{seed * 1000 + i},{rng.normal():.6f},row {i}")
    end = "\r\n" if crlf else "\n"
    return (end.join(rows) + end).encode()


def test_jsonl_positions_resume_at_every_chunk_with_the_same_bad_rows(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(jsonl_text(60, 1))
    b = gz(tmp_path / "b.jsonl.gz", jsonl_text(45, 2))
    c = tmp_path / "c.jsonl"
    c.write_bytes(jsonl_text(30, 3).rstrip(b"\n"))  # no newline at the end
    paths = [str(a), b, str(tmp_path / "missing.jsonl"), str(c)]
    for size in SIZES:
        chunks = assert_resumes_everywhere(
            lambda size=size: _core.FileReader("jsonl", paths, batch_rows=size, on_error="skip"))
        bad = pl.concat([b for _, b in chunks])
        # The unreadable rows and the file skipped are each reported once, in file order.
        assert bad.filter(pl.col("reason").str.contains("skipped")).height == 1
        assert bad.filter(pl.col("file") == str(a))["line"].is_sorted()
        assert pl.concat([r for r, _ in chunks]).height > 100


def test_csv_positions_resume_at_every_chunk_with_quoted_newlines_and_bad_rows(tmp_path):
    a = tmp_path / "a.csv"
    a.write_bytes(csv_text(60, 1))
    b = gz(tmp_path / "b.csv.gz", csv_text(45, 2, crlf=True))
    c = tmp_path / "c.csv"
    c.write_bytes(csv_text(30, 3))
    paths = [str(a), b, str(c)]
    for size in SIZES:
        chunks = assert_resumes_everywhere(
            lambda size=size: _core.FileReader("csv", paths, batch_rows=size, on_error="skip"))
        rows = pl.concat([r for r, _ in chunks])
        assert rows["s"].str.contains("\n").any(), "quoted newlines are read"
        assert pl.concat([b for _, b in chunks]).height > 5


def test_csv_gz_positions_resume_inside_the_decompressed_stream(tmp_path):
    paths = [gz(tmp_path / f"{i}.csv.gz", csv_text(50, i)) for i in range(3)]
    for size in SIZES:
        assert_resumes_everywhere(lambda size=size: _core.FileReader("csv", paths, batch_rows=size))


def frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"id": np.arange(n) + seed * 1000, "v": rng.normal(size=n),
                         "s": [f"r{i}" for i in range(n)]})


def test_parquet_positions_skip_row_groups_and_resume_at_every_chunk(tmp_path):
    paths = []
    for i, n in enumerate([95, 40, 1]):
        p = tmp_path / f"{i}.parquet"
        frame(n, i).write_parquet(p, row_group_size=10)
        paths.append(str(p))
    whole = pl.concat([pl.read_parquet(p) for p in paths])
    for size in SIZES:
        chunks = assert_resumes_everywhere(lambda size=size: _core.FileReader("parquet", paths, batch_rows=size))
        assert pl.concat([r for r, _ in chunks]).equals(whole)


def test_ipc_positions_skip_batches_and_resume_at_every_chunk(tmp_path):
    parts = [frame(n, i) for i, n in enumerate([9, 20, 3, 13])]
    file_format = tmp_path / "a.arrow"
    pl.concat(parts[:3], rechunk=False).write_ipc(file_format)
    stream_format = tmp_path / "b.arrows"
    pl.concat(parts[1:], rechunk=False).write_ipc_stream(stream_format)
    paths = [str(file_format), str(stream_format)]
    whole = pl.concat([pl.read_ipc(file_format), pl.read_ipc_stream(stream_format)])
    for size in SIZES:
        chunks = assert_resumes_everywhere(lambda size=size: _core.FileReader("ipc", paths, batch_rows=size))
        assert pl.concat([r for r, _ in chunks]).equals(whole)


def position_after(reader, chunks: int) -> bytes:
    for _ in range(chunks):
        assert reader.next_chunk() is not None
    return reader.position()


def test_a_position_in_a_file_that_shrank_is_refused_naming_it(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(jsonl_text(20, 1))
    b.write_bytes(jsonl_text(20, 2))
    paths = [str(a), str(b)]
    pos = position_after(_core.FileReader("jsonl", paths, batch_rows=7), 5)  # inside b
    b.write_bytes(jsonl_text(20, 2)[:30])
    with pytest.raises(rl.SourceError, match="b.jsonl is shorter than the position"):
        _core.FileReader("jsonl", paths, batch_rows=7).seek(pos)


def test_a_position_in_a_file_that_only_grew_reads_on(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(b'{"id": 1}\n{"id": 2}\n')
    pos = position_after(_core.FileReader("jsonl", [str(a)], batch_rows=1), 1)
    with a.open("ab") as f:
        f.write(b'{"id": 3}\n')
    reader = _core.FileReader("jsonl", [str(a)], batch_rows=10)
    reader.seek(pos)
    rows, bad = reader.next_chunk()
    assert pl.DataFrame(rows)["id"].to_list() == [2, 3]


def test_a_replaced_file_is_refused_naming_it(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_bytes(csv_text(20, 1))
    b.write_bytes(csv_text(20, 2))
    paths = [str(a), str(b)]
    pos = position_after(_core.FileReader("csv", paths, batch_rows=7), 4)  # inside b
    # b replaced by a file as long but with other bytes.
    original = b.read_bytes()
    b.write_bytes(original.replace(b"row", b"ROW"))
    with pytest.raises(rl.SourceError, match="b.csv is not the file the position was taken in"):
        _core.FileReader("csv", paths, batch_rows=7).seek(pos)
    b.write_bytes(original)
    # a, read to its end before the position, replaced by another file.
    a.write_bytes(csv_text(25, 9))
    with pytest.raises(rl.SourceError, match="a.csv changed size since the position was taken"):
        _core.FileReader("csv", paths, batch_rows=7).seek(pos)
    # The same size and another modification time: refused too.
    a.write_bytes(csv_text(20, 1))
    os.utime(a, ns=(0, 10**18))
    with pytest.raises(rl.SourceError, match="a.csv was modified since the position was taken"):
        _core.FileReader("csv", paths, batch_rows=7).seek(pos)


def test_a_rewritten_parquet_file_is_refused(tmp_path):
    p = tmp_path / "a.parquet"
    frame(50, 1).write_parquet(p, row_group_size=10)
    pos = position_after(_core.FileReader("parquet", [str(p)], batch_rows=7), 2)
    frame(60, 2).write_parquet(p, row_group_size=10)
    with pytest.raises(rl.SourceError, match="a.parquet changed since the position was taken"):
        _core.FileReader("parquet", [str(p)], batch_rows=7).seek(pos)


def test_a_position_of_another_reader_is_a_config_error(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(jsonl_text(10, 1))
    b.write_bytes(jsonl_text(10, 2))
    pos = position_after(_core.FileReader("jsonl", [str(a), str(b)], batch_rows=3), 2)
    with pytest.raises(rl.ConfigError, match="other files"):
        _core.FileReader("jsonl", [str(b), str(a)], batch_rows=3).seek(pos)
    with pytest.raises(rl.ConfigError, match="other files"):
        _core.FileReader("jsonl", [str(a)], batch_rows=3).seek(pos)
    c = tmp_path / "c.csv"
    c.write_bytes(csv_text(5, 1))
    with pytest.raises(rl.ConfigError, match="jsonl reader, not a csv reader"):
        _core.FileReader("csv", [str(c)]).seek(pos)
    with pytest.raises(rl.ConfigError, match="damaged"):
        _core.FileReader("jsonl", [str(a), str(b)]).seek(pos[:-5])
    assert pos.count(b"fformat\x01") == 1
    with pytest.raises(rl.ConfigError, match="format version 2, this rillet reads version 1"):
        _core.FileReader("jsonl", [str(a), str(b)]).seek(pos.replace(b"fformat\x01", b"fformat\x02"))


def test_a_truncated_gz_file_resumed_before_the_error_raises_it_again(tmp_path):
    whole = gzip.compress(jsonl_text(400, 1))
    p = tmp_path / "a.jsonl.gz"
    p.write_bytes(whole[: len(whole) * 2 // 3])
    reader = _core.FileReader("jsonl", [str(p)], batch_rows=50, infer_rows=20)
    positions = [reader.position()]
    count = 0
    with pytest.raises(rl.SourceError) as first:
        while reader.next_chunk() is not None:
            count += 1
            positions.append(reader.position())
    assert count > 0
    resumed = _core.FileReader("jsonl", [str(p)], batch_rows=50, infer_rows=20)
    resumed.seek(positions[-1])
    with pytest.raises(rl.SourceError) as again:
        while resumed.next_chunk() is not None:
            pass
    assert str(again.value) == str(first.value)


# -- joins -----------------------------------------------------------------------------------
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def events(n: int, seed: int, name: str, disorder_s: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    secs = np.arange(n) * 3 + rng.integers(0, disorder_s + 1, n)
    users = [f"u{k}" if k else None for k in rng.integers(0, 5, n)]
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=int(s)) for s in secs],
        "user": users,
        name: np.arange(n, dtype=np.int64),
    }).with_columns(pl.col("t").dt.cast_time_unit("us"))


def join_spec(kind: str) -> str:
    left = rl.stream(events(1, 1, "id", 0), time="t", watermark="5s")
    right = rl.stream(events(1, 2, "rid", 0), time="t", watermark="5s")
    if kind == "interval":
        joined = left.join_interval(right, on="user", lower="-10s", upper="20s")
    elif kind == "interval_left":
        joined = left.join_interval(right, on="user", lower="-10s", upper="20s", how="left")
    else:
        joined = left.join_asof(right, by="user", tolerance="30s")
    return joined._source.spec


def join_steps(size: int) -> list[tuple[str, str, pl.DataFrame | None]]:
    """Batches of both sides, round robin, with rows late for their side; then the ends."""
    left = events(80, 3, "id", disorder_s=30)
    right = events(80, 4, "rid", disorder_s=30)
    lb = [left.slice(i, size) for i in range(0, left.height, size)]
    rb = [right.slice(i, size) for i in range(0, right.height, size)]
    steps: list[tuple[str, str, pl.DataFrame | None]] = []
    for i in range(max(len(lb), len(rb))):
        if i < len(lb):
            steps.append(("process", "left", lb[i]))
        if i < len(rb):
            steps.append(("process", "right", rb[i]))
    steps += [("end", "left", None), ("end", "right", None), ("flush", "", None)]
    return steps


def step(join, what: str, side: str, df: pl.DataFrame | None):
    if what == "process":
        out, late = join.process(side, df)
        late = pl.DataFrame(late)
    elif what == "end":
        out, late = join.end(side), None
    else:
        out, late = join.flush(), None
    metrics = {k: v for k, v in join.metrics().items() if k != "state_bytes"}
    return pl.DataFrame(out), late, metrics, join.emitted_floor()


def assert_same(got, want, where: str) -> None:
    assert got[0].equals(want[0]), f"{where}: rows differ"
    assert (got[1] is None) == (want[1] is None) and (got[1] is None or got[1].equals(want[1])), \
        f"{where}: late rows differ"
    assert got[2:] == want[2:], f"{where}: metrics or floor differ"


@pytest.mark.parametrize("kind", ["interval", "interval_left", "asof"])
@pytest.mark.parametrize("size", [1, 7, 80])
def test_a_restored_stream_join_emits_what_the_uninterrupted_one_does_at_any_split(kind, size):
    spec = join_spec(kind)
    steps = join_steps(size)
    whole = _core.StreamJoin(spec)
    expected = [step(whole, *s) for s in steps]
    assert sum(e[0].height for e in expected) > 20
    assert sum(e[1].height for e in expected if e[1] is not None) > 0, "some rows are late"
    for k in spread(len(steps), most=25):
        a = _core.StreamJoin(spec)
        for s in steps[:k]:
            step(a, *s)
        b = _core.StreamJoin(spec)
        b.restore(a.snapshot())
        for i, s in enumerate(steps[k:]):
            assert_same(step(b, *s), expected[k + i], f"{kind}, size {size}, split {k}, step {k + i}")


def test_a_stream_join_snapshot_of_another_join_is_refused():
    a = _core.StreamJoin(join_spec("interval"))
    a.process("left", events(5, 1, "id", 0))
    with pytest.raises(rl.ConfigError, match='how was "inner", is "left"'):
        _core.StreamJoin(join_spec("interval_left")).restore(a.snapshot())
    with pytest.raises(rl.ConfigError, match="damaged"):
        _core.StreamJoin(join_spec("interval")).restore(a.snapshot()[:-10])


def test_a_table_join_keeps_rows_added_through_a_restore():
    table = pl.DataFrame({"user": ["u1", "u1", "u2", "u3", "u3", "u3"], "role": list("abcdef")})
    spec = TableJoin.build(table, ["user"], ["user"], "left", "_right").spec
    stream = events(60, 5, "id", 0)
    parts = [stream.slice(i, 7) for i in range(0, stream.height, 7)]
    whole = _core.TableJoin(spec, table)
    counts = []
    for p in parts:
        whole.process(p)
        counts.append(whole.rows_added())
    # Rows added: per stream row, its matches beyond the first (polars' join as the oracle).
    matches = stream.join(table, on="user", how="left").group_by("id").len()
    assert counts[-1] == int((matches["len"] - 1).sum())
    for k in range(len(parts) + 1):
        a = _core.TableJoin(spec, table)
        for p in parts[:k]:
            a.process(p)
        b = _core.TableJoin(spec, table)
        b.restore(a.snapshot())
        for i, p in enumerate(parts[k:]):
            b.process(p)
            assert b.rows_added() == counts[k + i]
    other = spec.replace('"left"', '"inner"')
    with pytest.raises(rl.ConfigError, match="how was"):
        _core.TableJoin(other, table).restore(whole.snapshot())
