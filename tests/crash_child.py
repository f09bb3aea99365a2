"""The child process of the kill -9 harness (tests/test_durability_crash.py).

``python crash_child.py '<json>'`` runs one checkpointed query over the harness's event stream
into one sink, then writes the Run's late and rejected rows (and, for ``run``, its output) and
its metrics beside it, each file written whole under a temporary name and renamed. It is killed
from outside, or kills itself through ``RILLET_CRASH_AT``; the harness runs it again with the
same checkpoint path to resume.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

import rillet as rl
from rillet.sources import tail

# tansu lets a consumer join its group after half the session timeout (tests/test_source_kafka.py).
KAFKA_FAST = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 100}


def source(cfg: dict[str, Any]) -> Any:
    kind, batch = cfg["source"], cfg["batch"]
    if kind == "read_jsonl":
        return rl.read_jsonl(cfg["path"], batch_rows=batch)
    if kind == "read_jsonl_merged":
        # Files merged by a column: positions are counts of chunks, re-read and passed over.
        return rl.read_jsonl(cfg["paths"], order_by="id", batch_rows=batch)
    if kind == "read_csv":
        return rl.read_csv(cfg["path"], batch_rows=batch)
    if kind == "read_parquet":
        return rl.read_parquet(cfg["path"], batch_rows=batch)
    if kind == "tail_jsonl":
        # Read in small blocks, as a file that grows while it is followed is: many batches, so
        # many checkpoints (a file read whole at once is one batch).
        tail.READ_BLOCK = cfg["block"]
        return rl.tail_jsonl(cfg["path"], poll="50ms", max_idle="300ms")
    if kind == "read_kafka":
        # The columns given: batches of `batch` messages from the first (not held back while
        # the columns are inferred from the first 1,000), so the first epoch spans batches.
        return rl.read_kafka(cfg["topic"], cfg["bootstrap"], cfg["group"], config=KAFKA_FAST,
                             schema={"id": pl.Int64, "t": pl.String, "k": pl.String, "v": pl.Int64},
                             batch_size=batch, poll="50ms", max_idle="1s")
    if kind == "read_kinesis":
        return rl.read_kinesis(cfg["stream"], endpoint_url=cfg["endpoint"], region_name="us-east-1",
                               limit=batch, poll="50ms", max_idle="1s")
    raise ValueError(f"unknown source {kind!r}")


def query(cfg: dict[str, Any]) -> rl.Query:
    return (
        rl.stream(source(cfg), time="t", watermark="2s")
        .window(rl.tumbling("1s"), by=["k"])
        .agg(rl.count(), rl.sum("v"))
    )


def write_whole(df: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    df.write_ipc(tmp)
    os.replace(tmp, path)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    out = Path(cfg["out"])
    (out / "started").touch()  # imports done: the harness times its random kills from here
    started = time.perf_counter()
    q = query(cfg)
    kw = {"checkpoint": cfg["checkpoint"], "checkpoint_every": cfg["every"], "progress": False}
    if cfg["checkpoint"] is None:
        kw.pop("checkpoint")
        kw.pop("checkpoint_every")
    sink = cfg["sink"]
    if sink in ("to_parquet", "to_jsonl"):
        # Partitions of one minute: an epoch's rows land in a few folders, so a commit renames
        # several files.
        run = getattr(q, sink)(cfg["target"], partition_by="window_start", every="1m", **kw)
    elif sink in ("sqlite", "duckdb", "postgres"):
        run = q.to_database(cfg["target"], cfg["table"], **kw)
    elif sink == "run":
        run = q.run(**kw)
        write_whole(run.output, out / "output.arrow")
    elif sink == "for_each":
        target = cfg["target"]

        def append(df: pl.DataFrame) -> None:  # a plain append: at least once
            with open(target, "a", encoding="utf-8") as f:
                f.write(df.write_ndjson())

        run = q.for_each(append, **kw)
    else:
        raise ValueError(f"unknown sink {sink!r}")
    write_whole(run.late, out / "late.arrow")
    write_whole(run.rejected, out / "rejected.arrow")
    metrics = {k: v for k, v in run.metrics.items() if isinstance(v, (int, float, str, type(None)))}
    metrics["run_seconds"] = time.perf_counter() - started
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics))
    os.replace(tmp, out / "metrics.json")


if __name__ == "__main__":
    main()
