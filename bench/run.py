#!/usr/bin/env python3
"""Times rillet against polars and DuckDB on the benchmark workload, in one process.

    python bench/run.py --events 1000000 [--runs 3] [--queries K1,K2,K6] [--engines ...] [--memory]

The workload (../shared/bench/WORKLOAD.md) is generated once with gen_events.py and cached
as Parquet under /tmp/rillet-bench/. It is loaded once (as an Arrow table and as a polars
DataFrame; loading is timed apart), then every (query, engine) runs --runs times from memory
and the median is reported:

  rillet        the query from the in-memory DataFrame, rows in arrival order, no progress bar
  polars-tru    dt.truncate + group_by   } the functions of peers/polars_batch.py, with
  polars-dyn    group_by_dynamic         } polars' own thread pool (POLARS_MAX_THREADS)
  duckdb-1t/2t  the SQL of peers/duckdb_batch.py with 1 and 2 threads

K1 and K2 are batch queries: every row counts. rillet runs them as a deployment sized to
this data would: watermark 5 s behind the latest event time and 15 minutes of allowed
lateness, the workload's largest arrival delay, so no row is late and windows are still
emitted and freed as the watermark passes them. K6 is K1 with 1 minute of lateness: rillet
drops (and counts) the rows whose window is already closed, the "window" rule of
peers/common.k6_dropped_mask, and its result must equal batch K1 over the rows it kept. For
K6 the peers' row repeats their batch K1 time (no late-data handling: the bound a one-pass
engine is compared with).

Every result is checked: K1 and K2 against polars (dt.truncate), by the order-independent
checksum of peers/common.py (or, if only floats differ in the last digits, a frame
comparison with a relative tolerance of 1e-9); K6 against batch K1 over the kept rows, with
the same number of rows dropped. A table is printed and one JSON line per (query, engine) is
appended to bench/results/results.jsonl.

--memory also measures each (query, engine) once in a fresh child process (this script with
an internal flag), so no other query's allocations count. The child loads the cached Parquet
(rillet and polars with pl.read_parquet, as the same DataFrame; DuckDB with the peers' Arrow
loader) and notes its RSS once the allocators have handed back what loading freed (the
baseline); it then resets the peak (/proc/self/clear_refs), runs the query and reads the peak
(VmHWM; ru_maxrss where /proc is missing, see peak_rss for why not ru_maxrss), which for
DuckDB includes the copy of the table it makes before querying. Extra columns: the peak RSS,
the peak less the baseline (what the query added), the peak over the input table's
in-memory size (polars estimated_size()), and the same without the bare interpreter and
libraries (RSS before loading). The timed runs are unchanged; the JSON lines get mem_*.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD_DIR = Path(os.environ.get("RILLET_BENCH_WORKLOAD", ROOT.parent / "shared" / "bench"))
DATA_DIR = Path("/tmp/rillet-bench")
RESULTS = ROOT / "bench" / "results" / "results.jsonl"
QUERIES = ("K1", "K2", "K3", "K4", "K5", "K5a", "K6")
ENGINES = ("rillet-1t", "rillet-2t", "polars-tru", "polars-dyn", "duckdb-1t", "duckdb-2t")
#: K1/K2 allowed lateness: the workload's rows arrive at most 15 minutes after their event time.
BATCH_LATENESS = "15m"
FLOAT_RTOL = 1e-9


# ------------------------------------------------------------------------------ set-up
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Time rillet against polars and DuckDB on the benchmark workload.",
        epilog="Figures from a debug build of the native core (maturin develop) mean nothing; "
        "build a release (pip install .) before quoting any.",
    )
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the workload (default 1,000,000)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per (query, engine); the median is reported")
    ap.add_argument("--queries", default=",".join(QUERIES), help="comma list from K1,K2,K3,K4,K5,K5a,K6 (default: all)")
    ap.add_argument("--engines", default=",".join(ENGINES), help=f"comma list from {','.join(ENGINES)} (default: all)")
    ap.add_argument("--seed", type=int, default=42, help="gen_events.py seed (default 42, as WORKLOAD.md)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help=f"Parquet cache (default {DATA_DIR})")
    ap.add_argument("--workload-dir", type=Path, default=WORKLOAD_DIR,
                    help="folder with gen_events.py and peers/ (default ../shared/bench, or $RILLET_BENCH_WORKLOAD)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON lines to append to (default bench/results/results.jsonl)")
    ap.add_argument("--memory", action="store_true",
                    help="also measure each (query, engine)'s peak RSS, once, in a fresh child process")
    ap.add_argument("--memory-child", metavar="QUERY:ENGINE", help=argparse.SUPPRESS)  # internal: the child
    a = ap.parse_args(argv)
    a.queries = [q.strip().upper().replace("K5A", "K5a") for q in a.queries.split(",") if q.strip()]
    a.engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for q in a.queries:
        if q not in QUERIES:
            ap.error(f"unknown query {q!r}; choose from {', '.join(QUERIES)}")
    for e in a.engines:
        if e not in ENGINES:
            ap.error(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    if a.events < 1 or a.runs < 1:
        ap.error("--events and --runs must be at least 1")
    if not (a.workload_dir / "gen_events.py").exists():
        ap.error(f"{a.workload_dir}/gen_events.py not found; point --workload-dir (or "
                 "$RILLET_BENCH_WORKLOAD) at the folder of WORKLOAD.md")
    return a


def parquet_path(args: argparse.Namespace) -> Path:
    return args.data_dir / f"events_{args.events}_seed{args.seed}.parquet"


def ensure_parquet(args: argparse.Namespace) -> Path:
    """The workload as Parquet, generated on first use and cached."""
    path = parquet_path(args)
    if path.exists():
        return path
    args.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    print(f"generating {args.events:,} events -> {path}", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(args.workload_dir / "gen_events.py"), "--events",
                    str(args.events), "--seed", str(args.seed), "--out", str(tmp)], check=True)
    os.replace(tmp, path)
    print(f"  generated in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def core_has_debug_info() -> bool | None:
    """Whether the native module carries DWARF debug info (a debug build, as `maturin
    develop` makes by default; release builds are stripped). None if it is not ELF."""
    import rillet._core as core

    try:
        with open(core.__file__, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit ELF only
                return None
            e = "<" if head[5] == 1 else ">"
            (shoff,) = struct.unpack_from(e + "Q", head, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 0x3A)
            f.seek(shoff + shstrndx * shentsize)
            _, _, _, _, str_off, str_size = struct.unpack(e + "IIQQQQ", f.read(40))
            f.seek(str_off)
            return b".debug_info" in f.read(str_size)
    except (OSError, struct.error):
        return None


def git_commit() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


# ------------------------------------------------------------------------------ queries
def engine_makers(df: Any, table: Any) -> dict[str, Callable[[], dict]]:
    """Each engine's query builders, made when called (DuckDB copies `table` into its own
    storage then)."""
    return {
        "rillet-1t": lambda: rillet_at(df, 1),
        "rillet-2t": lambda: rillet_at(df, 2),
        "polars-tru": lambda: polars_queries(df, "truncate"),
        "polars-dyn": lambda: polars_queries(df, "dynamic"),
        "duckdb-1t": lambda: duckdb_queries(table, 1),
        "duckdb-2t": lambda: duckdb_queries(table, 2),
    }


def rillet_at(df: Any, threads: int) -> dict[str, Callable[[], tuple[Any, dict]]]:
    """The rillet queries with the engine on `threads` threads (set before each run)."""
    import rillet as rl

    def on(fn: Callable[[], tuple[Any, dict]]) -> Callable[[], tuple[Any, dict]]:
        def run() -> tuple[Any, dict]:
            rl.set_threads(threads)
            return fn()
        return run

    return {q: on(fn) for q, fn in rillet_queries(df).items()}


def checkpoint_facts(metrics: dict) -> dict:
    """A checkpointed run's counters (none for a run without checkpoints)."""
    return {k: v for k, v in metrics.items() if k.startswith("checkpoint")}


def rillet_queries(df: Any, run_options: Callable[[], dict] | None = None) -> dict[str, Callable[[], tuple[Any, dict]]]:
    """K1-K6 through rillet, each returning (result, facts); ``run_options()`` gives more
    keywords for each ``run`` (bench/durability.py: a new checkpoint directory each time)."""
    import polars as pl

    import rillet as rl

    def options() -> dict:
        return {"progress": False, **(run_options() if run_options is not None else {})}

    def k1_aggs() -> tuple:
        return (
            rl.count(),
            rl.sum("bytes").alias("sum_bytes"),
            rl.mean("latency_ms").alias("mean_latency_ms"),
            rl.max("latency_ms").alias("max_latency_ms"),
        )

    def k1() -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness=BATCH_LATENESS)
            .agg(*k1_aggs())
            .run(**options())
        )
        return run.output, {"late": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    def k2() -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.hopping("5m", "1m"), by="user", lateness=BATCH_LATENESS)
            .agg(rl.count(), rl.count(where=pl.col("error_code").is_not_null()).alias("errors"))
            .run(**options())
        )
        return run.output, {"late": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    def k6() -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.tumbling("1m"), by=["event_source", "event_name"], lateness="1m", late="drop")
            .agg(*k1_aggs())
            .run(**options())
        )
        return run.output, {"dropped": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    def k3() -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.session("30s"), by="source_ip", lateness=BATCH_LATENESS)
            .agg(rl.count())
            .run(**options())
        )
        return run.output, {"late": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    def k4() -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.tumbling("1m"), lateness=BATCH_LATENESS)
            .agg(rl.top_k("event_name", 10).alias("top"))
            .run(**options())
        )
        ranked = (
            run.output.explode("top").unnest("top").rename({"value": "event_name"})
            .with_columns(rank=pl.int_range(1, pl.len() + 1).over("window_start"))
        )
        return ranked, {"late": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    def k5_with(agg: Any) -> tuple[Any, dict]:
        run = (
            rl.stream(df, time="event_time", watermark="5s")
            .window(rl.tumbling("1m"), by="event_source", lateness=BATCH_LATENESS)
            .agg(agg.alias("count"))
            .run(**options())
        )
        return run.output, {"late": run.metrics["rows_late"], **checkpoint_facts(run.metrics)}

    return {"K1": k1, "K2": k2, "K3": k3, "K4": k4,
            "K5": lambda: k5_with(rl.count_distinct("user")),
            "K5a": lambda: k5_with(rl.approx_count_distinct("user")), "K6": k6}


def polars_queries(df: Any, style: str) -> dict[str, Callable[[], tuple[Any, dict]]]:
    import polars_batch  # peers/polars_batch.py

    def bind(fn: Callable) -> Callable[[], tuple[Any, dict]]:
        def run() -> tuple[Any, dict]:
            polars_batch.STYLE = style  # the module reads its style from this global
            return fn(df), {}

        return run

    # K6 for a batch engine: K1 over every row (no late-data handling), the bound.
    return {"K1": bind(polars_batch.k1), "K2": bind(polars_batch.k2), "K3": bind(polars_batch.k3),
            "K4": bind(polars_batch.k4), "K5": bind(polars_batch.k5), "K5a": bind(polars_batch.k5a),
            "K6": bind(polars_batch.k1)}


def duckdb_queries(table: Any, threads: int) -> dict[str, Callable[[], tuple[Any, dict]]]:
    import duckdb_batch  # peers/duckdb_batch.py

    con = duckdb_batch.prepare(table, SimpleNamespace(threads=threads))  # copies the table (untimed)

    def bind(fn: Callable) -> Callable[[], tuple[Any, dict]]:
        return lambda: (fn(con), {})

    return {"K1": bind(duckdb_batch.k1), "K2": bind(duckdb_batch.k2), "K3": bind(duckdb_batch.k3),
            "K4": bind(duckdb_batch.k4), "K5": bind(duckdb_batch.k5), "K5a": bind(duckdb_batch.k5a),
            "K6": bind(duckdb_batch.k1)}


# ------------------------------------------------------------------------------ checking
def normalized(result: Any) -> Any:
    """A result as a polars frame: timestamps as integer microseconds, columns by name, rows
    sorted by every non-float column, so two engines' results can be compared."""
    import polars as pl
    from common import to_arrow

    f = pl.from_arrow(to_arrow(result))
    f = f.with_columns(
        [pl.col(c).dt.epoch("us") for c, t in f.schema.items() if isinstance(t, pl.Datetime)]
        + [pl.col(c).cast(pl.Int64) for c, t in f.schema.items() if t.is_integer()]
        + [pl.col(c).cast(pl.String) for c, t in f.schema.items() if isinstance(t, pl.Categorical)]
        # DuckDB sums BIGINT into HUGEINT, which arrives as a decimal with scale 0
        + [pl.col(c).cast(pl.Int64 if t.scale == 0 else pl.Float64)
           for c, t in f.schema.items() if isinstance(t, pl.Decimal)]
    )
    f = f.select(sorted(f.columns))
    keys = [c for c, t in f.schema.items() if not t.is_float()]
    return f.sort(keys)


def compare(result: Any, ref_checksum: str, ref_frame: Any) -> tuple[bool, str]:
    """(equal?, how): checksums first, then a frame comparison with a float tolerance."""
    from common import checksum
    from polars.testing import assert_frame_equal

    if checksum(result) == ref_checksum:
        return True, "yes"
    try:
        assert_frame_equal(normalized(result), ref_frame, check_exact=False, rel_tol=FLOAT_RTOL,
                           abs_tol=0.0, check_dtypes=False)
    except (AssertionError, TypeError):
        try:  # older polars spells the tolerance rtol/atol
            assert_frame_equal(normalized(result), ref_frame, check_exact=False, rtol=FLOAT_RTOL,
                               atol=0.0, check_dtypes=False)
        except AssertionError:
            return False, "NO"
    return True, f"yes (floats within {FLOAT_RTOL:g})"


def approx_error(result: Any, exact: Any) -> float:
    """The worst relative error of an approximate distinct count against the exact one."""
    import polars as pl

    keys = ["window_start", "event_source"]
    got = normalized(result).select(*keys, pl.col("count").alias("approx"))
    j = got.join(exact.select(*keys, "count"), on=keys)
    if j.height != exact.height:
        return float("inf")
    return float(((j["approx"] - j["count"]).abs() / j["count"]).max())


# ------------------------------------------------------------------------------ memory
MIB = 2**20


def proc_status(field: str) -> int | None:
    """A size field of /proc/self/status (``VmRSS``, ``VmHWM``) in bytes, or None where /proc
    is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def rss_now() -> int | None:
    """The resident set size now, bytes (None where /proc is missing)."""
    return proc_status("VmRSS")


def settled_rss(limit_s: float = 15.0) -> int | None:
    """RSS once the allocators have handed back what loading freed (jemalloc returns freed
    pages over some seconds): polls until it has not fallen for a second, or `limit_s`."""
    last = rss_now()
    if last is None:
        return None
    start = quiet_since = time.perf_counter()
    while time.perf_counter() - start < limit_s and time.perf_counter() - quiet_since < 1.0:
        time.sleep(0.2)
        now = rss_now() or last
        if now < last - MIB:
            quiet_since = time.perf_counter()
        last = min(last, now)
    return rss_now()


def reset_peak_rss() -> bool:
    """Resets the process's peak RSS to its current RSS (Linux >= 4.0); False if it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """The process's peak RSS since the last reset, bytes: VmHWM where /proc has it, else
    ru_maxrss (KiB on Linux, bytes on macOS). Linux's ru_maxrss is the larger of VmHWM and a
    per-process maximum that clear_refs does not reset and that exec seeds with the RSS of
    the address space it replaces, the parent's when subprocess forks (or vforks) this child
    from a big benchmark process: it would report the parent's size. VmHWM is this process's
    own high-water mark."""
    hwm = proc_status("VmHWM")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def memory_child(args: argparse.Namespace) -> int:
    """Runs one (query, engine) once in this fresh process and prints its memory as JSON."""
    query, name = args.memory_child.split(":")
    sys.path.insert(0, str(args.workload_dir / "peers"))
    import polars as pl

    if name.startswith("rillet"):
        import rillet  # noqa: F401 - loaded before the runtime's RSS is read
    elif name.startswith("polars"):
        import polars_batch  # noqa: F401
    else:
        import duckdb_batch  # noqa: F401
        import pyarrow as pa
        from common import load_events
    runtime = rss_now()
    parquet = parquet_path(args)
    df: Any = None
    table: Any = None
    if name.startswith("duckdb"):
        table = load_events(str(parquet))
        pa.default_memory_pool().release_unused()  # the reader's scratch, kept by mimalloc
    else:
        # polars' own reader, a column at a time: the same frame as the timed runs'
        # pl.from_arrow(load_events(...)).rechunk(), without a second copy in Arrow's memory
        # pool or a whole second copy while row groups are joined into one chunk.
        df = pl.DataFrame([pl.read_parquet(parquet, columns=[c]).to_series().rechunk()
                           for c in pl.read_parquet_schema(parquet)])
    gc.collect()
    t0 = time.perf_counter()
    baseline = settled_rss()
    settle_s = time.perf_counter() - t0
    reset = reset_peak_rss()
    load_peak = peak_rss()  # the loading's peak, if it could not be reset
    makers = engine_makers(df, table)
    queries = makers[name]()
    setup = rss_now()  # DuckDB has copied the table into its own storage by now
    t0 = time.perf_counter()
    result, _ = queries[query]()
    wall = time.perf_counter() - t0
    peak = peak_rss()
    after = rss_now()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    del result
    print(json.dumps({"runtime": runtime, "baseline": baseline, "setup": setup, "peak": peak,
                      "after": after, "ru_maxrss_kib": maxrss, "peak_reset": reset, "load_peak": load_peak,
                      "settle_s": round(settle_s, 2), "wall_s": round(wall, 4)}))
    return 0


def measure_memory(args: argparse.Namespace, query: str, name: str, input_bytes: int) -> dict[str, Any]:
    """Runs (query, engine) in a child process; its memory figures, in MiB, and ratios."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--events", str(args.events), "--seed",
           str(args.seed), "--data-dir", str(args.data_dir), "--workload-dir", str(args.workload_dir),
           "--memory-child", f"{query}:{name}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        print(f"  memory of {query} {name}: the child failed ({done.returncode}): "
              f"{done.stderr.strip()[-500:]}", file=sys.stderr)
        return {"mem_error": done.stderr.strip()[-500:] or f"exit {done.returncode}"}
    m = json.loads(lines[-1])

    def mib(v: int | None) -> float | None:
        return None if v is None else round(v / MIB, 1)

    baseline = m["baseline"] or 0
    rec: dict[str, Any] = {
        "mem_input_mib": mib(input_bytes),
        "mem_runtime_mib": mib(m["runtime"]),
        "mem_baseline_mib": mib(m["baseline"]),
        "mem_setup_mib": mib(m["setup"]),
        "mem_peak_mib": mib(m["peak"]),
        "mem_query_mib": mib(m["peak"] - baseline) if m["baseline"] is not None else None,
        "mem_peak_ratio": round(m["peak"] / input_bytes, 2) if input_bytes else None,
        # without the interpreter and libraries: the input as loaded plus what the query added
        "mem_data_ratio": (round((m["peak"] - m["runtime"]) / input_bytes, 2)
                           if input_bytes and m["runtime"] is not None else None),
        "mem_peak_reset": m["peak_reset"],
        "mem_settle_s": m["settle_s"],
        "mem_wall_s": m["wall_s"],
    }
    if not m["peak_reset"] and m["load_peak"] >= m["peak"]:
        rec["mem_note"] = "peak RSS could not be reset after loading; the peak may be the loading's"
    return rec


# ------------------------------------------------------------------------------ running
def measure(fn: Callable[[], tuple[Any, dict]], runs: int) -> tuple[Any, dict, list[float], list[float]]:
    """Runs fn `runs` times; returns the last (result, facts), wall and CPU seconds."""
    wall, cpu = [], []
    result, facts = None, {}
    for _ in range(runs):
        result = None  # let the previous result go before the next run
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result, facts = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return result, facts, wall, cpu


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child:
        return memory_child(args)
    sys.path.insert(0, str(args.workload_dir / "peers"))
    import numpy as np
    import polars as pl
    import pyarrow as pa
    from common import checksum, k6_dropped_mask, load_events

    import rillet

    parquet = ensure_parquet(args)
    t0 = time.perf_counter()
    table = load_events(str(parquet))
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = pl.from_arrow(table).rechunk()
    load_s = time.perf_counter() - t0
    n = table.num_rows

    debug = core_has_debug_info()
    try:
        import duckdb

        duckdb_version = duckdb.__version__
    except ImportError:
        duckdb_version = None
    env = {
        "commit": git_commit(),
        "rillet": rillet.__version__,
        "core_debug_info": debug,
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
        "duckdb": duckdb_version,
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    print(f"workload: {n:,} events from {parquet} (read {read_s:.2f} s, to polars {load_s:.2f} s)")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in env.items() if k not in ("commit", "core_debug_info")))
    if debug:
        print("WARNING: rillet's native module is a debug build (it carries debug info); its "
              "timings are not representative. Build a release (pip install .) to measure.")

    # Engines, built lazily: DuckDB copies the table into its own storage once per engine.
    labels = {"polars-tru": f"polars-tru-{pl.thread_pool_size()}t",
              "polars-dyn": f"polars-dyn-{pl.thread_pool_size()}t"}
    makers = engine_makers(df, table)
    engines: dict[str, dict] = {}
    skipped: dict[str, str] = {}

    def engine(name: str) -> dict | None:
        if name not in engines and name not in skipped:
            try:
                engines[name] = makers[name]()
            except ImportError as e:
                skipped[name] = str(e)
                print(f"  skipping {name}: {e}")
        return engines.get(name)

    # References (untimed): polars dt.truncate, and for K6 the same over the kept rows.
    import polars_batch

    polars_batch.STYLE = "truncate"
    refs: dict[str, tuple[str, Any, int | None]] = {}

    def reference(query: str) -> tuple[str, Any, int | None]:
        if query not in refs:
            if query == "K6":
                drop = k6_dropped_mask(table["event_time"].cast(pa.int64()).to_numpy(), rule="window")
                ref = polars_batch.k1(df.filter(~pl.Series(drop)))
                dropped = int(np.count_nonzero(drop))
            else:
                ref = {"K1": polars_batch.k1, "K2": polars_batch.k2, "K3": polars_batch.k3,
                       "K4": polars_batch.k4, "K5": polars_batch.k5,
                       "K5a": polars_batch.k5}[query](df)
                dropped = None
            refs[query] = (checksum(ref), normalized(ref), dropped)
        return refs[query]

    input_bytes = df.estimated_size()
    mem_cols = f" {'peak MiB':>9} {'+query MiB':>10} {'peak/in':>7} {'data/in':>7}" if args.memory else ""
    header = f"{'query':5}  {'engine':24} {'events/s':>12} {'median s':>9} {'ratio':>7}{mem_cols}  result matches"
    print()
    print("ratio = rillet events/s / the engine's events/s, rillet on as many threads (1 for *-1t, else 2; above 1: rillet is faster)")
    if args.memory:
        print(f"memory: each query once in a fresh process; input table {input_bytes / MIB:,.0f} MiB "
              "(polars estimated_size); +query = peak RSS - RSS after loading; peak/in = peak RSS / "
              "input; data/in = (peak RSS - RSS of the bare interpreter and libraries) / input")
    print(header)
    print("-" * (len(header) + 20))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    peer_k1: dict[str, dict] = {}  # K1 timings of batch engines, reused for their K6 row
    failures = 0
    for query in args.queries:
        ref_checksum, ref_frame, ref_dropped = reference(query)
        rillet_eps: dict[int, int] = {}  # by thread count
        for name in args.engines:
            label = labels.get(name, name)
            note = None
            if query == "K6" and not name.startswith("rillet") and name in peer_k1:
                rec = {**peer_k1[name], "matches": None}
                note = "batch K1 time (no late-data handling)"
                matches = "n/a (batch K1)"
            else:
                queries = engine(name)
                if queries is None:
                    continue
                result, facts, wall, cpu = measure(queries[query], args.runs)
                med = statistics.median(wall)
                rec = {
                    "runs": [round(w, 4) for w in wall],
                    "median_s": round(med, 4),
                    "cpu_s": round(statistics.median(cpu), 4),
                    "events_per_s": round(n / med) if med > 0 else None,
                    "checksum": checksum(result),
                    **facts,
                }
                if query == "K6" and not name.startswith("rillet"):
                    note = "batch K1 time (no late-data handling)"
                    matches = "n/a (batch K1)"
                elif query == "K5a":
                    err = approx_error(result, ref_frame)
                    ok = err <= 0.02
                    matches = f"max rel err {err:.4f}" + ("" if ok else " (over 2%)")
                    rec["matches"] = ok
                    rec["k5a_max_rel_err"] = err
                    failures += not ok
                else:
                    ok, matches = compare(result, ref_checksum, ref_frame)
                    if query == "K6":
                        same_drop = facts.get("dropped") == ref_dropped
                        ok = ok and same_drop
                        matches = (f"{matches}, dropped {facts.get('dropped'):,}"
                                   + ("" if same_drop else f" (expected {ref_dropped:,})"))
                        matches = matches if ok else "NO: " + matches
                    elif facts.get("late"):
                        ok = False
                        matches = f"NO: {facts['late']:,} rows late"
                    rec["matches"] = ok
                    failures += not ok
                del result
                if args.memory:
                    rec.update(measure_memory(args, query, name, input_bytes))
                if query == "K1" and not name.startswith("rillet"):
                    peer_k1[name] = rec
            eps = rec["events_per_s"]
            if name.startswith("rillet"):
                rillet_eps[int(name[-2])] = eps
                ratio = None
            else:
                # Against rillet with the same threads: 1 for the 1-thread engines, else 2.
                mine = rillet_eps.get(1 if name.endswith("-1t") else 2) or rillet_eps.get(1)
                ratio = round(mine / eps, 3) if mine and eps else None
            ratio_s = "-" if ratio is None else f"{ratio:.2f}"
            mem_s = ""
            if args.memory:
                cells = [(rec.get("mem_peak_mib"), 9, ",.0f"), (rec.get("mem_query_mib"), 10, ",.0f"),
                         (rec.get("mem_peak_ratio"), 7, ".2f"), (rec.get("mem_data_ratio"), 7, ".2f")]
                mem_s = "".join(f" {'-' if v is None else format(v, spec):>{width}}" for v, width, spec in cells)
            print(f"{query:5}  {label:24} {eps:>12,} {rec['median_s']:>9.3f} {ratio_s:>7}{mem_s}  {matches}",
                  flush=True)
            line = {"time": stamp, "query": query, "engine": label, "events": n, "seed": args.seed,
                    "read_s": round(read_s, 3), "load_s": round(load_s, 3), **rec, "ratio": ratio,
                    "match": matches, **({"note": note} if note else {}), **env}
            with open(args.out, "a") as f:
                f.write(json.dumps(line) + "\n")
    print(f"\nappended to {args.out}")
    if failures:
        print(f"{failures} result(s) did not match the reference", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
