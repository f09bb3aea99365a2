#!/usr/bin/env python3
"""Anomaly detection: how good (ROC AUC on labelled data) and how fast (rows/s) rillet's
random cut forest is, next to river's HalfSpaceTrees and rrcf, in one process.

    python bench/anomaly.py [--quick] [--limit 10000] [--rrcf-trees 40] [--speed-rows 1000000]

--quick (a smoke run, well under 2 minutes) is the same as --limit 2000 --rrcf-trees 20
--speed-rows 100000 --speed-rrcf-rows 300 --speed-hst-rows 20000 --no-full; a flag given
explicitly wins. The default run takes about 5-10 minutes, nearly all of it rrcf's.

Quality. Two labelled sets that nobody here wrote, each streamed in file order, every
detector on the same rows in the same order, scoring each row when it arrives:

  shuttle   river's Statlog Shuttle (river/datasets/shuttle.csv.gz in the river wheel):
            9 numeric features f1..f9, label `anomaly` (about 7% ones). The first --limit
            rows get all three detectors; with the default run a second line scores all
            49,097 rows with HalfSpaceTrees and rillet only (rrcf would take an hour).
  uniDS     streamad's univariate set (streamad/util/data/uniDS.csv): feature `value`,
            label `label` (9 of 999 rows), the timestamp column only orders the file.

  HST       river's anomaly.HalfSpaceTrees with its defaults (n_trees=10, height=8,
            window_size=250) and seed=42, behind preprocessing.MinMaxScaler() so the
            features lie in [0, 1]: exactly river's own Shuttle example (score_one, then
            learn_one). River's docs report RollingROCAUC(10,000) = 90.07% for it on the
            first 10,000 rows, which the shuttle line with --limit 10000 should come close to.
  rrcf      rrcf's README streaming recipe: --rrcf-trees RCTrees (random_state=seed+i),
            each a sliding window of the last 256 points (forget_point, then insert_point),
            score = CoDisp of the new point averaged over the trees.
  rillet    rl.stream(...).detect(rl.random_cut_forest(*features, trees=100, sample_size=256,
            time_decay=100_000, shingle_size=1, seed=--seed)) (API.md, "Anomaly
            detection"); its `anomaly_score` is 0.0 while the forest fills. Until rillet has
            rl.random_cut_forest the column says n/a ("rillet: not available yet").

  AUC is the probability that a random anomaly scores above a random normal row, ties
  counting one half (Mann-Whitney; tests/test_anomaly_auc.py checks it against a pairwise
  count). Every row counts, warm-up rows (score 0 or a constant) included, the same for
  every detector. "s" columns are each detector's seconds over the whole stream, input
  already in the detector's own form (dicts for river, a numpy array for rrcf, a
  DataFrame for rillet).

Speed. One seeded 1-dimensional stream (a sine of period 1,000 rows plus Gaussian noise and
0.1% spikes), 100 trees with 256 samples each for both forests: rillet over --speed-rows
rows, rrcf over its first --speed-rrcf-rows rows (it runs at about 1,000 points/s per tree;
its small trees during the first 256 rows flatter it, so the ratio errs in rrcf's favour),
river HST (its defaults) over the first --speed-hst-rows rows. Printed: rows/s of each and
rows/s as a multiple of rrcf's (issue 16's goal: rillet >= 100,000 rows/s on one core and
>= 100x rrcf), and memory per forest (the run's detector_bytes over its detector_models) where rillet's
metrics report it. Figures from a debug build of the native module mean nothing; build a
release first.

One JSON line per table row is appended to bench/results/anomaly.jsonl (--no-save: none).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "anomaly.jsonl"
TREE_SIZE = 256  # samples per tree, the same for rrcf and rillet
SPEED_TREES = 100
HST_SEED = 42  # river's own Shuttle example
QUICK = {"limit": 2000, "rrcf_trees": 20, "speed_rows": 100_000, "speed_rrcf_rows": 300,
         "speed_hst_rows": 20_000, "full": False}
DEFAULT = {"limit": 10_000, "rrcf_trees": 40, "speed_rows": 1_000_000, "speed_rrcf_rows": 2000,
           "speed_hst_rows": 100_000, "full": True}
NOT_YET = "rillet: not available yet"
#: River's docs (river.datasets.Shuttle): HST's RollingROCAUC(10,000) over the first 10,000 rows.
RIVER_DOCS_HST_AUC = ("shuttle[:10000]", 0.9007)


# -- ROC AUC ----------------------------------------------------------------------------------
def roc_auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """ROC AUC from ranks (Mann-Whitney U over n_pos * n_neg): the chance that a random
    positive scores above a random negative, a tie counting 1/2. O(n log n).

    >>> roc_auc([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    0.875
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"labels and scores must be 1-d and of one length; got shapes {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (normal) or 1 (anomaly)")
    if np.isnan(s).any():
        raise ValueError(f"scores hold {int(np.isnan(s).sum())} NaN values; AUC needs a score for every row")
    pos = y == 1
    n_pos = int(pos.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} anomalies and {n_neg} normal rows")
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    # Tie groups in sorted order: [start, end); their rows share the mean of ranks start+1..end.
    start = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    end = np.r_[start[1:], s.size]
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat((start + 1 + end) / 2.0, end - start)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


# -- data ---------------------------------------------------------------------------------------
@dataclass
class Dataset:
    name: str
    features: pl.DataFrame  # numeric columns only, Float64, in file order
    labels: np.ndarray  # 0/1 per row

    @property
    def rows(self) -> int:
        return self.features.height

    def head(self, n: int | None, name: str | None = None) -> Dataset:
        if n is None or n >= self.rows:
            return Dataset(name or self.name, self.features, self.labels)
        return Dataset(name or f"{self.name}[:{n}]", self.features.head(n), self.labels[:n])


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed; this benchmark reads {'/'.join(parts)} from it")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the installed {package}")
    return path


def labelled(name: str, df: pl.DataFrame, label: str, features: list[str]) -> Dataset:
    missing = [c for c in [label, *features] if c not in df.columns]
    if missing:
        raise SystemExit(f"{name}: columns {missing} not found; the file has {df.columns}")
    return Dataset(name, df.select(pl.col(features).cast(pl.Float64)),
                   df[label].cast(pl.Int8).to_numpy())


def shuttle() -> Dataset:
    df = pl.read_csv(package_file("river", "datasets", "shuttle.csv.gz"))
    return labelled("shuttle", df, "anomaly", [f"f{i}" for i in range(1, 10)])


def uni_ds() -> Dataset:
    df = pl.read_csv(package_file("streamad", "util", "data", "uniDS.csv"))
    return labelled("uniDS", df, "label", ["value"])


def speed_stream(rows: int, seed: int) -> pl.DataFrame:
    """1-d: a sine of period 1,000 rows (amplitude 10), Gaussian noise (sd 1), 0.1% spikes."""
    rng = np.random.default_rng(seed)
    i = np.arange(rows)
    x = 10 * np.sin(2 * np.pi * i / 1000) + rng.normal(0, 1, rows)
    spikes = rng.random(rows) < 0.001
    x[spikes] += rng.choice([-20.0, 20.0], int(spikes.sum()))
    return pl.DataFrame({"value": x})


# -- detectors ------------------------------------------------------------------------------------
# Each takes the features (and settings) and returns (scores, seconds, extra metrics), or
# None when the detector is not available.
Scored = tuple[np.ndarray, float, dict[str, Any]]


def run_hst(features: pl.DataFrame, seed: int = HST_SEED) -> Scored:
    from river import anomaly, preprocessing

    rows = features.to_dicts()
    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)
    scores = np.empty(len(rows), dtype=np.float64)
    t0 = time.perf_counter()
    for i, x in enumerate(rows):
        scores[i] = model.score_one(x)
        model.learn_one(x)
    return scores, time.perf_counter() - t0, {}


def run_rrcf(features: pl.DataFrame, trees: int, seed: int, tree_size: int = TREE_SIZE) -> Scored:
    import rrcf

    points = features.to_numpy()
    forest = [rrcf.RCTree(random_state=seed + k) for k in range(trees)]
    scores = np.empty(len(points), dtype=np.float64)
    t0 = time.perf_counter()
    for i, point in enumerate(points):
        total = 0.0
        for tree in forest:
            if len(tree.leaves) > tree_size:
                tree.forget_point(i - tree_size)
            tree.insert_point(point, index=i)
            total += tree.codisp(i)
        scores[i] = total / trees
    return scores, time.perf_counter() - t0, {}


@functools.cache
def rillet_missing() -> str | None:
    """Why the rillet column cannot run (printed after "rillet: not available yet"), or None
    when it can: rl.random_cut_forest missing, or a two-row probe run failing because a piece
    of it (the native module, Stream.run) has not landed."""
    import rillet as rl

    if not hasattr(rl, "random_cut_forest"):
        return "rl has no random_cut_forest"
    probe = pl.DataFrame({"_row": [0, 1], "x": [0.0, 1.0]})
    try:
        rl.stream(probe, time="_row", watermark=0).detect(
            rl.random_cut_forest("x", trees=1), by=None).run(progress=False)
    except (AttributeError, NotImplementedError, rl.RilletError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def not_yet() -> str:
    return f"{NOT_YET} ({rillet_missing()})"


def run_rillet(features: pl.DataFrame, trees: int, seed: int, sample_size: int = TREE_SIZE) -> Scored | None:
    """The rillet column: None (printed as n/a) until rl.random_cut_forest exists."""
    import rillet as rl

    if rillet_missing() is not None:
        return None
    row = "_row"
    df = features.with_columns(pl.int_range(features.height, dtype=pl.Int64).alias(row))
    t0 = time.perf_counter()
    query = rl.stream(df, time=row, watermark=0).detect(
        rl.random_cut_forest(*features.columns, trees=trees, sample_size=sample_size,
                             time_decay=100_000, shingle_size=1, with_explanation=False, seed=seed),
        by=None)
    run = query.run(progress=False)
    seconds = time.perf_counter() - t0
    out = run.output.sort(row)
    if out.height != features.height or not out[row].equals(df[row]):
        raise SystemExit(f"rillet: detect() gave {out.height} rows for {features.height} input rows; "
                         "it must pass every input row through once")
    return out["anomaly_score"].to_numpy(), seconds, dict(run.metrics)


def memory_per_forest(metrics: dict[str, Any]) -> int | None:
    """Bytes of the detector's models per forest (the run's detector_bytes over its
    detector_models), if the run reports them."""
    state = metrics.get("detector_bytes")
    if not state:
        return None
    return int(state) // max(int(metrics.get("detector_models") or 1), 1)


# -- printing -------------------------------------------------------------------------------------
def human_bytes(n: int | None) -> str:
    if n is None:
        return "not reported"
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def cell(value: float | None, fmt: str, width: int) -> str:
    return f"{'n/a' if value is None else format(value, fmt):>{width}}"


def save(record: dict[str, Any], enabled: bool) -> None:
    if not enabled:
        return
    sys.path.insert(0, str(ROOT / "bench"))
    import run as bench  # bench/run.py: git_commit()

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps({**record, "commit": bench.git_commit()}) + "\n")


# -- the two parts --------------------------------------------------------------------------------
def quality(args: argparse.Namespace) -> None:
    full_shuttle, uni = shuttle(), uni_ds()
    # (dataset, detectors to run on it)
    runs: list[tuple[Dataset, tuple[str, ...]]] = [
        (full_shuttle.head(args.limit), ("hst", "rrcf", "rillet")),
        (uni.head(args.limit), ("hst", "rrcf", "rillet")),
    ]
    if args.full and args.limit is not None and args.limit < full_shuttle.rows:
        runs.append((full_shuttle.head(None, "shuttle (all, no rrcf)"), ("hst", "rillet")))
    detectors: dict[str, Callable[[pl.DataFrame], Scored | None]] = {
        "hst": run_hst,
        "rrcf": lambda f: run_rrcf(f, args.rrcf_trees, args.seed),
        "rillet": lambda f: run_rillet(f, SPEED_TREES, args.seed),
    }
    print(f"Quality: ROC AUC, rows streamed in file order. HST: river defaults + MinMaxScaler, "
          f"seed {HST_SEED}; rrcf: {args.rrcf_trees} trees x {TREE_SIZE}-point windows, "
          f"seed {args.seed}; rillet: {SPEED_TREES} trees x {TREE_SIZE} samples, seed {args.seed}")
    if rillet_missing() is not None:
        print(not_yet())
    print(f"{'dataset':24} {'rows':>7} {'anomalies':>9} {'AUC hst':>8} {'AUC rrcf':>8} "
          f"{'AUC rillet':>10} {'s hst':>7} {'s rrcf':>8} {'s rillet':>8}")
    for data, which in runs:
        if data.labels.min() == data.labels.max():
            print(f"{data.name:24} {data.rows:7,} skipped: these rows hold one class only (raise --limit)")
            continue
        auc: dict[str, float | None] = {}
        secs: dict[str, float | None] = {}
        for name in ("hst", "rrcf", "rillet"):
            got = detectors[name](data.features) if name in which else None
            if got is None:
                auc[name] = secs[name] = None
                continue
            scores, seconds, _ = got
            auc[name], secs[name] = roc_auc(data.labels, scores), seconds
        share = float(data.labels.mean())
        print(f"{data.name:24} {data.rows:7,} {share:9.2%} {cell(auc['hst'], '.4f', 8)} "
              f"{cell(auc['rrcf'], '.4f', 8)} {cell(auc['rillet'], '.4f', 10)} "
              f"{cell(secs['hst'], '.2f', 7)} {cell(secs['rrcf'], '.1f', 8)} {cell(secs['rillet'], '.2f', 8)}",
              flush=True)
        if data.name == RIVER_DOCS_HST_AUC[0] and auc["hst"] is not None:
            agree = abs(auc["hst"] - RIVER_DOCS_HST_AUC[1]) < 0.005
            print(f"  (river's docs give HST {RIVER_DOCS_HST_AUC[1]:.4f} on these rows: "
                  f"{'agrees' if agree else 'DIFFERS'})")
        save({"part": "quality", "dataset": data.name, "rows": data.rows, "anomaly_share": share,
              "auc": auc, "seconds": secs, "rrcf_trees": args.rrcf_trees, "seed": args.seed}, args.save)


def speed(args: argparse.Namespace) -> None:
    stream = speed_stream(args.speed_rows, args.seed)
    print(f"\nSpeed: one 1-d stream (sine + noise + spikes), {SPEED_TREES} trees x {TREE_SIZE} "
          f"samples for rillet and rrcf, one process, one thread")
    rows: dict[str, tuple[int, float] | None] = {}
    got = run_rillet(stream, SPEED_TREES, args.seed)
    memory = None
    if got is None:
        print(not_yet())  # the rillet row below says n/a
        rows["rillet"] = None
    else:
        rows["rillet"] = (stream.height, got[1])
        memory = memory_per_forest(got[2])
    prefix = stream.head(args.speed_rrcf_rows)
    rows["rrcf"] = (prefix.height, run_rrcf(prefix, SPEED_TREES, args.seed)[1])
    hst = stream.head(args.speed_hst_rows)
    rows["river HST"] = (hst.height, run_hst(hst)[1])
    rrcf_rate = rows["rrcf"][0] / rows["rrcf"][1]
    print(f"{'detector':10} {'rows':>10} {'seconds':>9} {'rows/s':>12} {'x rrcf':>9} {'memory/forest':>14}")
    for name, got_rows in rows.items():
        if got_rows is None:
            print(f"{name:10} {'n/a':>10} {'n/a':>9} {'n/a':>12} {'n/a':>9} {'n/a':>14}")
            save({"part": "speed", "detector": name, "available": False}, args.save)
            continue
        n, seconds = got_rows
        rate = n / seconds
        mem = human_bytes(memory) if name == "rillet" else "-"
        print(f"{name:10} {n:10,} {seconds:9.2f} {rate:12,.0f} {rate / rrcf_rate:9.1f} {mem:>14}")
        save({"part": "speed", "detector": name, "rows": n, "seconds": seconds, "rows_per_s": rate,
              "vs_rrcf": rate / rrcf_rate, "trees": SPEED_TREES if name != "river HST" else 10,
              "memory_per_forest": memory if name == "rillet" else None}, args.save)
    if rows["rillet"] is not None:
        rate = rows["rillet"][0] / rows["rillet"][1]
        ok = rate >= 100_000 and rate / rrcf_rate >= 100
        print(f"goal (>= 100,000 rows/s and >= 100x rrcf): {'met' if ok else 'NOT met'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small limits: a smoke run under 2 minutes")
    ap.add_argument("--limit", type=int, help="rows of each labelled set, from the start (0: all); "
                    f"default {DEFAULT['limit']:,}")
    ap.add_argument("--rrcf-trees", type=int, help=f"trees in rrcf's forest; default {DEFAULT['rrcf_trees']}")
    ap.add_argument("--speed-rows", type=int, help=f"rows of the 1-d stream for rillet; default {DEFAULT['speed_rows']:,}")
    ap.add_argument("--speed-rrcf-rows", type=int, help=f"its prefix for rrcf; default {DEFAULT['speed_rrcf_rows']:,}")
    ap.add_argument("--speed-hst-rows", type=int, help=f"its prefix for river HST; default {DEFAULT['speed_hst_rows']:,}")
    ap.add_argument("--no-full", dest="full", action="store_false", default=None,
                    help="skip scoring all of Shuttle with HST and rillet")
    ap.add_argument("--seed", type=int, default=0, help="seed of rillet, rrcf and the speed stream")
    ap.add_argument("--only", choices=("quality", "speed"), help="run one part")
    ap.add_argument("--no-save", dest="save", action="store_false", help=f"append nothing to {RESULTS.name}")
    args = ap.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULT).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.limit == 0:
        args.limit = None
    for key in ("rrcf_trees", "speed_rows", "speed_rrcf_rows", "speed_hst_rows"):
        if getattr(args, key) < 1:
            ap.error(f"--{key.replace('_', '-')} must be at least 1; got {getattr(args, key)}")
    if args.limit is not None and args.limit < 0:
        ap.error(f"--limit must be 0 (all rows) or a row count; got {args.limit}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from importlib.metadata import version

    import rillet as rl

    rl.set_threads(1)  # issue 16's speed goal is per core; the others are single-threaded
    print(f"rillet {rl.__version__}, river {version('river')}, rrcf {version('rrcf')}, "
          f"python {sys.version.split()[0]}, 1 thread")
    if args.only in (None, "quality"):
        quality(args)
    if args.only in (None, "speed"):
        speed(args)


if __name__ == "__main__":
    main()
