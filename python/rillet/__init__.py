"""rillet: streaming analytics for analysts.

Replay or tail a stream of events and get incremental, event-time windowed metrics as polars
DataFrames, with late data kept and visible rather than lost.

>>> import polars as pl, rillet as rl
>>> events = pl.DataFrame({"t": [1, 5, 12, 3], "k": ["a", "a", "b", "a"]})
>>> run = rl.stream(events, time="t", watermark=5).window(rl.tumbling(10), by="k").agg(rl.count()).run()
>>> run.output.rows()
[('a', 0, 10, 3), ('b', 10, 20, 1)]
"""
from __future__ import annotations

from rillet._core import __version__, set_threads, threads
from rillet._errors import (
    ConfigError,
    LateDataError,
    RilletError,
    SchemaError,
    SinkError,
    SourceError,
    SqlError,
)
from rillet._interrupt import Interrupted
from rillet._loss import DataLossWarning
from rillet.plan.aggregates import (
    Agg,
    approx_count_distinct,
    approx_quantile,
    count,
    count_distinct,
    first,
    last,
    max,
    mean,
    median,
    min,
    quantile,
    std,
    sum,
    top_k,
    var,
)
from rillet.plan.detectors import DetectorSpec, hotspots, random_cut_forest
from rillet.plan.windows import WindowSpec, cumulative, hopping, session, sliding, stagger, tumbling
from rillet.query.live import RunningQuery, start
from rillet.query.stream import ProcessingTime, Query, Run, Stream, Windowed, processing_time, run, stream
from rillet.sources.cloudtrail import read_cloudtrail
from rillet.sources.files import read_csv, read_ipc, read_jsonl, read_parquet
from rillet.sources.kafka import read_kafka
from rillet.sources.kinesis import read_kinesis
from rillet.sources.nexmark import Nexmark, nexmark
from rillet.sources.pacing import paced
from rillet.sources.reference import ReferenceWarning, reference
from rillet.sources.tail import tail_csv, tail_dir, tail_jsonl
from rillet.sql.application import Application, ApplicationRun
from rillet.sql.query import sql

__all__ = [
    "Agg",
    "Application",
    "ApplicationRun",
    "ConfigError",
    "DataLossWarning",
    "Interrupted",
    "LateDataError",
    "ProcessingTime",
    "Query",
    "RilletError",
    "Run",
    "RunningQuery",
    "SchemaError",
    "SinkError",
    "SourceError",
    "SqlError",
    "Stream",
    "WindowSpec",
    "Windowed",
    "__version__",
    "approx_count_distinct",
    "approx_quantile",
    "count",
    "count_distinct",
    "cumulative",
    "first",
    "hopping",
    "last",
    "max",
    "mean",
    "median",
    "min",
    "nexmark",
    "Nexmark",
    "paced",
    "processing_time",
    "quantile",
    "read_cloudtrail",
    "read_csv",
    "read_ipc",
    "read_jsonl",
    "read_kafka",
    "read_kinesis",
    "read_parquet",
    "reference",
    "ReferenceWarning",
    "run",
    "session",
    "set_threads",
    "sliding",
    "stagger",
    "random_cut_forest",
    "hotspots",
    "DetectorSpec",
    "start",
    "std",
    "stream",
    "sql",
    "sum",
    "tail_csv",
    "threads",
    "tail_dir",
    "tail_jsonl",
    "top_k",
    "tumbling",
    "var",
]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext rillet``: registers the ``%%rillet_sql`` cell magic (docs/sql.md)."""
    from rillet.sql.magic import load

    load(ipython)
