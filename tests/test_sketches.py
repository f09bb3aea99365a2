"""The approximate aggregates against their documented error bounds, and merging.

* HyperLogLog (``approx_count_distinct``): exact while a window holds at most 2^p / 2 distinct
  values; beyond, within 3 standard errors, 3 * 1.04 / sqrt(2^p), of the true distinct count.
* DDSketch (``approx_quantile``): at rank round((n - 1) * q) (the exact nearest-rank
  quantile), the result is within relative_error * |true value|.
* Space-Saving (``top_k(approx=True)``): count >= true count >= count - error; every item with a
  true count above N / capacity is in the summary; exact (error 0) while the items fit.
* Merging: a hopping window equals the tumbling window over the same span exactly for the
  lossless aggregates (count_distinct, exact top_k and quantile, HLL) and within the bounds for
  DDSketch and Space-Saving. (Final-mode hopping windows whose period is a multiple of
  ``every`` are built by merging per-slice states when they close, so Space-Saving may differ
  from a directly updated window; other hopping windows are updated directly.) A session merged
  from several sessions (by rows that bridge them, behind the watermark but within the
  lateness) equals the aggregate of the merged session's rows computed directly (the same rows
  fed in time order, so no merge happens): exactly for count_distinct, exact top_k and HLL
  (register-wise max / set union is lossless), within the bounds for DDSketch and
  Space-Saving.

Data is generated with numpy from fixed seeds (one window, a single batch), so the
probabilistic bounds are checked on fixed inputs and cannot flake. Zipf data is truncated to a
universe of U items (p_i proportional to 1 / i^s) and the ranks are mapped to scattered ids.
"""
from __future__ import annotations

import math
import sys
from collections import Counter
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from test_aggregates import AggCase, agg_cases, build, reference_panes

import rillet as rl

SEED = 20240607


# -- helpers --------------------------------------------------------------------------------
def one_window(values: pl.Series | np.ndarray, *aggs: Any, times: Any = None) -> dict[str, Any]:
    """The aggregates over every value in one window, fed as a single batch."""
    v = values if isinstance(values, pl.Series) else pl.Series("v", values)
    t = pl.Series("t", np.zeros(len(v), dtype=np.int64) if times is None else times)
    df = pl.DataFrame([t, v.alias("v")])
    out = rl.stream(df, time="t", watermark=10**9).window(rl.tumbling(10**6)).agg(*aggs).collect()
    assert out.height == 1
    return out.row(0, named=True)


def zipf_ranks(rng: np.random.Generator, universe: int, size: int, s: float) -> np.ndarray:
    """``size`` draws from a Zipf(s) law truncated to ranks 0 .. universe - 1."""
    p = 1.0 / np.arange(1, universe + 1, dtype=np.float64) ** s
    return rng.choice(universe, size=size, p=p / p.sum())


def zipf_ids(rng: np.random.Generator, universe: int, size: int, s: float) -> np.ndarray:
    """Zipf draws as scattered int64 ids (so frequency order is not value order)."""
    return scatter(zipf_ranks(rng, universe, size, s))


def scatter(ranks: np.ndarray) -> np.ndarray:
    """An injective, order-scrambling map of small non-negative ints to int64 ids."""
    return (ranks.astype(np.int64) * 2_654_435_761 + 97) % (2**61 - 1) - 2**60


def nearest_rank(sorted_values: np.ndarray, q: float) -> float:
    """The exact nearest-rank quantile: index round((n - 1) * q), half away from zero."""
    idx = math.floor((len(sorted_values) - 1) * q + 0.5)
    return float(sorted_values[idx])


def within_relative(got: float, truth: float, alpha: float) -> bool:
    if math.isinf(truth) or truth == 0.0:
        return got == truth
    # a hair of slack for floating-point rounding: the bound is attained at the edge of a
    # bucket (e.g. 1.0 -> 2 / (gamma + 1) = 1 - alpha), where ln / exp round by ~1e-16
    return abs(got - truth) <= (alpha * (1 + 1e-6) + 1e-15) * abs(truth)


def hll_bound(precision: int) -> float:
    return 3 * 1.04 / math.sqrt(2**precision)


def check_space_saving(entries: list[dict[str, Any]], truth: dict[Any, float], total: float,
                       capacity: int, k: int, weighted: bool = False) -> None:
    """The Space-Saving guarantees for a reported list (``total``: N, or the summed weight)."""
    field = "weight" if weighted else "count"
    order = [(-e[field], e["value"]) for e in entries]
    assert order == sorted(order), "count descending, then value ascending"
    assert len(entries) <= k
    assert len({e["value"] for e in entries}) == len(entries)
    slack = 1e-9 * max(total, 1.0)
    for e in entries:
        t = truth.get(e["value"], 0)
        assert e["error"] >= 0
        assert e[field] + slack >= t >= e[field] - e["error"] - slack, (e, t)
        assert e["error"] <= total / capacity + slack, (e, total, capacity)
    reported = {e["value"] for e in entries}
    ranked = sorted(truth.values(), reverse=True)
    if k >= capacity:  # the whole summary is shown: every heavy item is in it
        for item, t in truth.items():
            if t > total / capacity + slack:
                assert item in reported, (item, t, total / capacity)
    # An item heavier than the (k+1)-th true count plus N / capacity outranks every item
    # outside the true top k (their counts overstate by at most N / capacity): it is shown.
    if len(ranked) > k:
        for item, t in truth.items():
            if t > ranked[k] + total / capacity + slack:
                assert item in reported, (item, t)
    else:  # k <= capacity: every item fits, all are shown
        assert len(entries) == len(truth)


# -- HyperLogLog ----------------------------------------------------------------------------
@pytest.mark.parametrize("precision", [4, 10, 14])
def test_hll_exact_up_to_half_the_registers(precision: int) -> None:
    limit = 2**precision // 2
    rng = np.random.default_rng(SEED + precision)
    ids = scatter(np.arange(limit + 1))
    # every value a few times, shuffled: exactly `limit` distinct values -> exact
    vals = rng.permutation(np.concatenate([ids[:limit]] * 3))
    row = one_window(vals, rl.approx_count_distinct("v", precision), rl.count_distinct("v"))
    assert row["v_approx_count_distinct"] == row["v_count_distinct"] == limit
    # strings too
    strs = pl.Series([f"user-{i}" for i in range(limit)] * 2)
    row = one_window(strs, rl.approx_count_distinct("v", precision))
    assert row["v_approx_count_distinct"] == limit
    # one more distinct value: estimation mode, within the bound
    est = one_window(ids, rl.approx_count_distinct("v", precision))["v_approx_count_distinct"]
    assert abs(est - (limit + 1)) <= hll_bound(precision) * (limit + 1)


@pytest.mark.parametrize("distinct", [1_000, 100_000, 1_000_000])
@pytest.mark.parametrize("shape", ["uniform", "zipf"])
def test_hll_error_bound(distinct: int, shape: str) -> None:
    rng = np.random.default_rng(SEED + distinct)
    if shape == "uniform":
        ranks = np.arange(distinct) if distinct >= 1_000_000 else np.tile(np.arange(distinct), 3)
    else:  # every item once, plus heavily skewed repeats
        extra = zipf_ranks(rng, distinct, min(distinct, 200_000), 1.2)
        ranks = np.concatenate([np.arange(distinct), extra])
    vals = pl.Series("v", scatter(rng.permutation(ranks)))
    assert vals.n_unique() == distinct
    row = one_window(vals, rl.approx_count_distinct("v"))
    est = row["v_approx_count_distinct"]
    if distinct <= 8192:
        assert est == distinct
    else:
        assert abs(est - distinct) <= hll_bound(14) * distinct, (est, distinct)


@pytest.mark.parametrize("precision", [4, 8, 12, 16, 18])
def test_hll_precisions(precision: int) -> None:
    n = 100_000
    vals = pl.Series("v", [f"ip-{i}" for i in range(n)])
    row = one_window(vals, rl.approx_count_distinct("v", precision=precision))
    est = row["v_approx_count_distinct"]
    if n <= 2**precision // 2:
        assert est == n  # p = 18 holds 131,072 hashes exactly
    else:
        assert abs(est - n) <= hll_bound(precision) * n, (est, n)


def test_hll_one_million_distinct_high_precision() -> None:
    vals = pl.int_range(0, 1_000_000, eager=True).alias("v") * 3 + 1
    est = one_window(vals, rl.approx_count_distinct("v", precision=18))["v_approx_count_distinct"]
    assert abs(est - 1_000_000) <= hll_bound(18) * 1_000_000


# -- DDSketch -------------------------------------------------------------------------------
QS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0]


def sample(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if shape == "uniform":
        return rng.uniform(0, 1000, n)
    if shape == "lognormal":
        return rng.lognormal(0, 2, n)
    if shape == "negative":
        return -rng.lognormal(3, 1.5, n)
    # both signs, exact zeros and a wide dynamic range
    x = rng.normal(0, 50, n) * rng.lognormal(0, 2, n)
    x[rng.random(n) < 0.05] = 0.0
    return x


def check_ddsketch(values: np.ndarray, qs: list[float], alpha: float) -> None:
    aggs = [rl.approx_quantile("v", q, relative_error=alpha).alias(f"a{i}")
            for i, q in enumerate(qs)]
    row = one_window(values, *aggs)
    s = np.sort(values[~np.isnan(values)])
    for i, q in enumerate(qs):
        truth = nearest_rank(s, q)
        assert within_relative(row[f"a{i}"], truth, alpha), (q, row[f"a{i}"], truth, alpha)


@pytest.mark.parametrize("n", [1_000, 100_000])
@pytest.mark.parametrize("shape", ["uniform", "lognormal", "negative", "mixed"])
def test_ddsketch_relative_error(shape: str, n: int) -> None:
    rng = np.random.default_rng(SEED + n + len(shape))
    check_ddsketch(sample(shape, n, rng), QS, 0.01)


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.2])
def test_ddsketch_other_accuracies(alpha: float) -> None:
    rng = np.random.default_rng(SEED)
    check_ddsketch(sample("mixed", 20_000, rng), QS, alpha)


def test_ddsketch_one_million_values() -> None:
    rng = np.random.default_rng(SEED + 1)
    check_ddsketch(rng.lognormal(5, 3, 1_000_000), [0.001, 0.5, 0.999], 0.01)


def test_ddsketch_integer_input_and_small_windows() -> None:
    for values in ([7], [3, 1], [5, 5, 5], [-2, 0, 2], list(range(-50, 51))):
        check_ddsketch(np.array(values, dtype=np.float64), QS, 0.01)
    row = one_window(pl.Series("v", [1, 10, 100, 1000]), rl.approx_quantile("v", 1.0))
    assert within_relative(row["v_q100"], 1000.0, 0.01)


# -- Space-Saving ---------------------------------------------------------------------------
@pytest.mark.parametrize("universe", [1_000, 100_000, 1_000_000])
def test_space_saving_bounds_on_zipf(universe: int) -> None:
    rng = np.random.default_rng(SEED + universe)
    n = 100_000
    vals = zipf_ids(rng, universe, n, 1.1)
    truth = dict(Counter(vals.tolist()))
    capacity = 200
    row = one_window(vals, rl.top_k("v", capacity, approx=True, capacity=capacity).alias("all"),
                     rl.top_k("v", 10, approx=True, capacity=capacity).alias("top10"),
                     rl.top_k("v", 10, approx=True).alias("default"))
    check_space_saving(row["all"], truth, n, capacity, capacity)
    check_space_saving(row["top10"], truth, n, capacity, 10)
    check_space_saving(row["default"], truth, n, 1000, 10)  # default capacity max(10k, 1000)
    assert row["top10"] == row["all"][:10]
    # Zipf's head is heavy: the true top 3 are far apart and reported in order
    top3 = sorted(truth, key=lambda v: -truth[v])[:3]
    assert [e["value"] for e in row["default"][:3]] == top3


def test_space_saving_exact_while_items_fit() -> None:
    rng = np.random.default_rng(SEED)
    vals = zipf_ids(rng, 500, 20_000, 1.0)
    row = one_window(vals, rl.top_k("v", 50, approx=True, capacity=500).alias("ss"),
                     rl.top_k("v", 50).alias("exact"))
    assert all(e["error"] == 0 for e in row["ss"])
    assert [{"value": e["value"], "count": e["count"]} for e in row["ss"]] == row["exact"]
    # the default capacity is max(10 * k, 1000): 2,000 counters for k = 200 hold 1,500 items
    vals = zipf_ids(rng, 1_500, 30_000, 0.5)
    assert pl.Series(vals).n_unique() == 1_500
    row = one_window(vals, rl.top_k("v", 200, approx=True).alias("ss"),
                     rl.top_k("v", 200).alias("exact"))
    assert all(e["error"] == 0 for e in row["ss"])
    assert [{"value": e["value"], "count": e["count"]} for e in row["ss"]] == row["exact"]


def test_space_saving_weighted_bounds() -> None:
    rng = np.random.default_rng(SEED + 5)
    n = 30_000
    vals = zipf_ids(rng, 5_000, n, 1.2)
    w = rng.integers(1, 10, n).astype(np.float64)
    df = pl.DataFrame({"t": np.zeros(n, dtype=np.int64), "v": vals, "w": w})
    out = (rl.stream(df, time="t").window(rl.tumbling(10))
           .agg(rl.top_k("v", 100, weight="w", approx=True, capacity=100)).collect())
    truth: Counter[int] = Counter()
    for v, x in zip(vals.tolist(), w.tolist(), strict=True):
        truth[v] += x
    check_space_saving(out["v_top_k"][0].to_list(), dict(truth), float(w.sum()), 100, 100,
                       weighted=True)


# -- merging --------------------------------------------------------------------------------
SKETCHES = [
    rl.count_distinct("v"),
    rl.approx_count_distinct("v"),
    rl.approx_count_distinct("v", precision=8).alias("hll8"),
    rl.approx_quantile("f", [0.01, 0.5, 0.99]),
    rl.top_k("v", 5),
    rl.top_k("v", 50, approx=True, capacity=50).alias("ss"),
    rl.var("f"),
    rl.quantile("f", 0.9).alias("exact_q90"),
]
IDENTICAL = ["v_count_distinct", "v_approx_count_distinct", "hll8", "v_top_k", "exact_q90"]


def sketch_frame(n: int, distinct: int, t_lo: int, t_hi: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({
        "t": rng.integers(t_lo, t_hi, n),
        "v": zipf_ids(rng, distinct, n, 1.0),
        "f": rng.lognormal(2, 1.5, n) * rng.choice([-1.0, 1.0], n),
    })


@pytest.mark.parametrize("period", [20, 25], ids=["sliced", "direct"])
def test_hopping_window_equals_the_tumbling_window_over_the_same_span(period: int) -> None:
    df = sketch_frame(60_000, 30_000, 0, 200, SEED)
    hop = (rl.stream(df, time="t", watermark=1000).window(rl.hopping(period, 10))
           .agg(*SKETCHES).collect())
    tumbles = pl.concat([
        rl.stream(df, time="t", watermark=1000).window(rl.tumbling(period, offset=off))
        .agg(*SKETCHES).collect() for off in range(0, period, math.gcd(period, 10))
    ]).filter((pl.col("window_start") % 10) == 0)
    joined = hop.join(tumbles, on=["window_start", "window_end"], how="inner", suffix="_tum")
    assert joined.height == hop.height == (21 if period == 20 else 22)
    for name in IDENTICAL:
        assert joined[name].to_list() == joined[f"{name}_tum"].to_list(), name
    for a, b in zip(joined["f_var"], joined["f_var_tum"], strict=True):
        assert math.isclose(a, b, rel_tol=1e-9)
    # and each window is within its bounds
    for w in hop.iter_rows(named=True):
        rows = df.filter((pl.col("t") >= w["window_start"]) & (pl.col("t") < w["window_end"]))
        distinct = rows["v"].n_unique()
        assert w["v_count_distinct"] == distinct
        assert abs(w["v_approx_count_distinct"] - distinct) <= hll_bound(14) * distinct
        assert abs(w["hll8"] - distinct) <= hll_bound(8) * distinct
        s = np.sort(rows["f"].to_numpy())
        for q, name in [(0.01, "f_q1"), (0.5, "f_q50"), (0.99, "f_q99")]:
            assert within_relative(w[name], nearest_rank(s, q), 0.01)
        check_space_saving(w["ss"], dict(Counter(rows["v"].to_list())), rows.height, 50, 50)


def clustered_sessions(per_cluster: int, distinct: int,
                       clusters: int = 5) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``clusters`` sessions (gap 10) of rows in time order, 100 apart, and the rows that
    bridge them (every 5 time units across each hole), to arrive last."""
    parts = []
    for c in range(clusters):
        part = sketch_frame(per_cluster, distinct, c * 100, c * 100 + 50, SEED + c)
        parts.append(part.sort("t", maintain_order=True))
    body = pl.concat(parts)
    bridge_t = [c * 100 + d for c in range(clusters - 1) for d in range(50, 100, 5)]
    rng = np.random.default_rng(SEED + 99)
    bridge = pl.DataFrame({
        "t": bridge_t,
        "v": scatter(rng.integers(0, distinct, len(bridge_t))),
        "f": rng.lognormal(2, 1.5, len(bridge_t)),
    })
    return body, bridge


def session_query(source: Any, emit: str = "final", by: str | None = None) -> rl.Query:
    # delay 0: every bridging row is behind the watermark; the lateness keeps sessions open
    return (rl.stream(source, time="t", watermark=0)
            .window(rl.session(10), by=by, lateness=10**6, emit=emit).agg(*SKETCHES))


@pytest.mark.parametrize("per_cluster,distinct", [(1_500, 1_500), (12_000, 40_000)],
                         ids=["sparse", "dense"])
def test_session_merged_by_late_rows_equals_direct(per_cluster: int, distinct: int) -> None:
    body, bridge = clustered_sessions(per_cluster, distinct)
    apart = session_query(body).collect()
    assert apart.height == 5  # five sessions before the bridges arrive
    late = pl.concat([body, bridge])
    run = session_query(late).run()
    assert run.late.height == 0 and run.output.height == 1
    merged = run.output.row(0, named=True)
    changes = session_query(late, emit="changelog").collect()
    # four sessions merged away; the last one was never emitted (with delay 0 the watermark,
    # 449, had not passed its end, 459), so three retractions of merged-away sessions; the
    # survivor's growths are -D (old bounds) then +I (new bounds), keyed by the bounds
    ops = changes["op"].to_list()
    assert [ops[i + 1:i + 2] for i, op in enumerate(ops) if op == "-D"].count(["+I"]) > 0
    assert sum(1 for i, op in enumerate(ops) if op == "-D" and ops[i + 1:i + 2] != ["+I"]) == 3
    # the same rows in time order: one session that never merges
    direct = session_query(late.sort("t", maintain_order=True)).collect().row(0, named=True)
    for name in IDENTICAL:
        assert merged[name] == direct[name], name
    assert math.isclose(merged["f_var"], direct["f_var"], rel_tol=1e-9)
    # and against the truth
    distinct_now = late["v"].n_unique()
    assert merged["v_count_distinct"] == distinct_now
    if distinct_now <= 8192:
        assert merged["v_approx_count_distinct"] == distinct_now  # exact while sparse
    else:
        assert abs(merged["v_approx_count_distinct"] - distinct_now) <= hll_bound(14) * distinct_now
    assert abs(merged["hll8"] - distinct_now) <= hll_bound(8) * distinct_now
    s = np.sort(late["f"].to_numpy())
    for q, name in [(0.01, "f_q1"), (0.5, "f_q50"), (0.99, "f_q99")]:
        assert within_relative(merged[name], nearest_rank(s, q), 0.01)
    assert merged["f_var"] == pytest.approx(late["f"].var(), rel=1e-9)
    truth = dict(Counter(late["v"].to_list()))
    check_space_saving(merged["ss"], truth, late.height, 50, 50)
    exact_top = sorted(truth.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert merged["v_top_k"] == [{"value": v, "count": c} for v, c in exact_top]


def test_session_merges_per_key_across_batch_sizes() -> None:
    body, bridge = clustered_sessions(300, 2_000, clusters=3)
    body = body.with_columns(
        k=pl.when(pl.int_range(pl.len()) % 3 == 0).then(pl.lit("a")).otherwise(pl.lit("b")))
    # every key gets every bridging row, interleaved
    bridges = pl.concat([bridge.with_columns(k=pl.lit(k)) for k in ("b", "a")], how="vertical")
    bridges = bridges.with_columns(i=pl.int_range(pl.len()) % bridge.height).sort(
        "i", maintain_order=True).drop("i")
    late = pl.concat([body, bridges])
    outs = [session_query(late if size is None else batches(late, size), by="k").collect()
            for size in (1, 7, 500, None)]
    for other in outs[1:]:
        assert other.equals(outs[0])
    assert outs[0]["k"].to_list() == ["a", "b"]  # each key's sessions merged into one
    for row in outs[0].iter_rows(named=True):
        rows = late.filter(pl.col("k") == row["k"])
        assert row["v_count_distinct"] == row["v_approx_count_distinct"] == rows["v"].n_unique()


# -- random windows: every sketch within its bound after whatever merges happen --------------
APPROX = [
    rl.approx_count_distinct("x"),
    rl.approx_count_distinct("s", precision=4).alias("s_hll4"),  # exact up to 8 values
    *[rl.approx_quantile("y", q).alias(f"aq{i}") for i, q in enumerate([0.0, 0.1, 0.5, 0.9, 1.0])],
    rl.approx_quantile("x", 0.5, relative_error=0.2, where=pl.col("c")).alias("aqx"),
    rl.top_k("x", 3, approx=True, capacity=3).alias("ss3"),
    rl.top_k("x", 2, approx=True, capacity=3).alias("ss2"),
    rl.top_k("x", 3, weight="w", approx=True, capacity=3).alias("ssw"),
]


def check_sketches(case: AggCase) -> None:
    panes = reference_panes(case)
    xs, ys, ss = case.df["x"].to_list(), case.df["y"].to_list(), case.df["s"].to_list()
    ws, cs = case.df["w"].to_list(), case.df["c"].to_list()
    outs = [build(case, case.df if size is None else batches(case.df, size), APPROX).collect()
            for size in (1, 7, None)]
    assert outs[1].equals(outs[0]) and outs[2].equals(outs[0])
    out = outs[0]
    assert out.height == len(panes)
    assert out["window_start"].to_list() == [p.start for p in panes]
    for row, p in zip(out.iter_rows(named=True), panes, strict=True):
        x = [xs[r] for r in p.rows if xs[r] is not None]
        assert row["x_approx_count_distinct"] == len(set(x))
        assert row["s_hll4"] == len({ss[r] for r in p.rows if ss[r] is not None})
        y = np.sort(np.array([ys[r] for r in p.rows if ys[r] is not None], dtype=np.float64))
        for i, q in enumerate([0.0, 0.1, 0.5, 0.9, 1.0]):
            if len(y) == 0:
                assert row[f"aq{i}"] is None
            else:
                assert within_relative(row[f"aq{i}"], nearest_rank(y, q), 0.01)
        xc = np.sort(np.array([xs[r] for r in p.rows if xs[r] is not None and cs[r] is True],
                              dtype=np.float64))
        if len(xc) == 0:
            assert row["aqx"] is None
        else:
            assert within_relative(row["aqx"], nearest_rank(xc, 0.5), 0.2)
        truth = dict(Counter(x))
        check_space_saving(row["ss3"], truth, len(x), 3, 3)
        check_space_saving(row["ss2"], truth, len(x), 3, 2)
        wtruth: Counter[int] = Counter()
        for r in p.rows:
            if xs[r] is not None and ws[r] is not None:
                wtruth[xs[r]] += ws[r]
        check_space_saving(row["ssw"], dict(wtruth), sum(wtruth.values()), 3, 3, weighted=True)


@given(agg_cases("session"))
def test_sketch_bounds_on_random_sessions(case: AggCase) -> None:
    check_sketches(case)


@given(agg_cases("hopping"))
def test_sketch_bounds_on_random_hopping_windows(case: AggCase) -> None:
    check_sketches(case)


# -- extreme inputs -------------------------------------------------------------------------
def test_ddsketch_infinities_and_nan() -> None:
    """Infinities are counted and returned at their ranks; NaN is skipped by the sketch.

    This differs from the exact quantile (and polars), where NaN is a value that sorts last:
    over [1, ..., 99, NaN] the exact q=1 is NaN, the sketch's is ~99.
    """
    inf, nan = math.inf, math.nan
    vals = pl.Series("v", [-inf, *[float(i) for i in range(1, 99)], inf, nan])
    row = one_window(vals, rl.approx_quantile("v", [0.0, 0.5, 1.0]),
                     rl.quantile("v", 1.0).alias("exact"))
    assert row["v_q0"] == -inf and row["v_q100"] == inf
    assert within_relative(row["v_q50"], 50.0, 0.01)  # 100 values, NaN skipped: rank 50 -> 50
    assert math.isnan(row["exact"]) and math.isnan(vals.quantile(1.0, "nearest"))
    row = one_window(pl.Series("v", [*[float(i) for i in range(1, 100)], nan]),
                     rl.approx_quantile("v", 1.0))
    assert within_relative(row["v_q100"], 99.0, 0.01)


@pytest.mark.parametrize("alpha", [1e-6, 1e-9, 1e-12])
def test_ddsketch_small_relative_error_keeps_its_bound(alpha: float) -> None:
    """Regression: bucket indices were i32 and saturated, so 1e10 came back as 73.3 at
    relative_error=1e-9 (fixed in 4735e58 with 64-bit indices)."""
    values = [1e-300, -1e-3, 1.0, 7.3, 1e10, -1e20, 1e300, sys.float_info.max]
    for v in values:
        row = one_window(pl.Series("v", [v]), rl.approx_quantile("v", 0.5, relative_error=alpha))
        assert within_relative(row["v_q50"], v, alpha), (v, row["v_q50"])


@pytest.mark.parametrize("alpha", [1e-17, 1e-20])
def test_ddsketch_relative_error_below_float_precision_is_refused_or_honoured(alpha: float) -> None:
    """Regression: below ~1.1e-16, gamma rounded to 1.0 and every value came back as +-1.0;
    such relative errors are now refused (the floor is 1e-12)."""
    try:
        agg = rl.approx_quantile("v", 0.5, relative_error=alpha)
        row = one_window(pl.Series("v", [1e10]), agg)
    except rl.ConfigError:
        return
    assert within_relative(row["v_q50"], 1e10, alpha), row["v_q50"]


@pytest.mark.parametrize("value", [1e-305, -1e-310, 5e-324, sys.float_info.max,
                                   -sys.float_info.max, 1.79e308])
def test_ddsketch_extreme_magnitudes_keep_the_bound(value: float) -> None:
    """Regression: |x| < 1e-300 used to be counted as zero, and values near f64::MAX came back
    as inf (fixed in 4735e58)."""
    row = one_window(pl.Series("v", [value]), rl.approx_quantile("v", 0.5))
    assert within_relative(row["v_q50"], value, 0.01), row["v_q50"]


def test_ddsketch_magnitudes_inside_the_range_keep_the_bound() -> None:
    vals = np.array([1e-300, -1e-299, 1e-100, 1e100, 1e300, -1.7e308, 1.7e308])
    for v in vals:
        row = one_window(pl.Series("v", [v]), rl.approx_quantile("v", 0.5))
        assert within_relative(row["v_q50"], float(v), 0.01), (v, row["v_q50"])
