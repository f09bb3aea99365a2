"""Hotspots (``stream.detect(rl.hotspots(...))``) on planted clusters, against a brute-force
DBSCAN written here (numpy pairwise distances, no grid) and the density definition of
docs/anomaly.md (src/anomaly/hotspots.rs): a hotspot's points per unit of its box's volume
over the window's points per unit of the window's box volume, sides shorter than
``scan_radius`` counting as ``scan_radius``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import batches
from polars.testing import assert_frame_equal

import rillet as rl

SIZES = (1, 7, None)
RADIUS = 0.2
MIN_POINTS = 17
CORE_TAIL = 0.01  # a core point has more neighbours than this share of an even spread would


def core_neighbours(n: int, box_volume: float, radius: float, d: int) -> int:
    """The neighbours (itself not counted) a core point needs: the least k >= 2 with
    P(Poisson(lambda) >= k) < 1%, lambda the neighbours a point expects when the window's n
    points are spread evenly over its box (a ball of ``radius`` over the box's volume)."""
    ball = math.pi ** (d / 2) / math.gamma(d / 2 + 1) * radius**d
    lam = (n - 1) * min(ball / box_volume, 1.0)
    k, below, term = 1, math.exp(-lam), math.exp(-lam)
    while 1 - below >= CORE_TAIL and k < n:
        term *= lam / k
        below += term
        k += 1
    return max(k, 2)


# -- the brute-force reference ----------------------------------------------------------------------
def dbscan(points: np.ndarray, eps: float, min_points: int) -> list[np.ndarray]:
    """The groups of at least ``min_points`` points (index arrays): core points within
    ``eps`` of each other share a group, a non-core point joins its core neighbour's.
    Asserts that no border point of a group that size could reach touches two groups (where
    DBSCAN's answer would depend on the order of the points)."""
    n = len(points)
    near = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1) <= eps * eps
    needed = core_neighbours(n, volume(points.min(0), points.max(0), eps), eps, points.shape[1])
    core = near.sum(1) - 1 >= needed
    label = np.full(n, -1)
    groups = 0
    for start in np.flatnonzero(core):
        if label[start] >= 0:
            continue
        label[start] = groups
        stack = [start]
        while stack:
            p = stack.pop()
            for q in np.flatnonzero(near[p] & core):
                if label[q] < 0:
                    label[q] = groups
                    stack.append(q)
        groups += 1
    members: list[list[int]] = [list(np.flatnonzero(label == g)) for g in range(groups)]
    ambiguous = []
    for p in np.flatnonzero(~core):
        touching = sorted(set(label[near[p] & core].tolist()))
        if len(touching) == 1:
            members[touching[0]].append(p)
        elif len(touching) > 1:
            ambiguous.append(touching)
    for touching in ambiguous:
        assert all(len(members[g]) + len(ambiguous) < min_points for g in touching), "fixture is ambiguous"
    return [np.array(sorted(m)) for m in members if len(m) >= min_points]


def volume(lo: np.ndarray, hi: np.ndarray, radius: float) -> float:
    return float(np.prod(np.maximum(hi - lo, radius)))


def reference(window: np.ndarray, radius: float = RADIUS, min_points: int = MIN_POINTS) -> list[dict[str, Any]]:
    """The hotspots of one window, densest first."""
    overall = len(window) / volume(window.min(0), window.max(0), radius)
    out = []
    for g in dbscan(window, radius, min_points):
        lo, hi = window[g].min(0), window[g].max(0)
        out.append({"density": len(g) / volume(lo, hi, radius) / overall,
                    "min_values": lo.tolist(), "max_values": hi.tolist(), "points": len(g)})
    return sorted(out, key=lambda h: -h["density"])


def assert_same_hotspots(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert g["min_values"] == w["min_values"] and g["max_values"] == w["max_values"]
        assert g["density"] == pytest.approx(w["density"], rel=1e-9)


# -- data ------------------------------------------------------------------------------------------
CLUSTERS = (((6.0, 2.0), (0.3, 0.2), 25), ((1.5, 7.0), (0.2, 0.3), 33))  # corner, size, one row in


def planted(n: int = 1000, seed: int = 4, clusters: Any = CLUSTERS) -> np.ndarray:
    """Rows uniform in [0, 10]^2, every ``k``-th row instead uniform in a small box."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, size=(n, 2))
    for (corner, side, every) in clusters:
        rows = np.arange(every // 2, n, every)
        x[rows] = np.array(corner) + rng.uniform(0, 1, size=(len(rows), 2)) * np.array(side)
    return x


def frame(x: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"t": np.arange(len(x)), "x": x[:, 0], "y": x[:, 1]})


def hotspots(df: pl.DataFrame, size: int | None = None, by: Any = None, **kw: Any) -> pl.DataFrame:
    spec = rl.hotspots("x", "y", **{"window_size": 1000, "scan_radius": RADIUS, "min_points": MIN_POINTS, **kw})
    return rl.stream(batches(df, size), time="t").detect(spec, by=by).collect()


# -- tests -----------------------------------------------------------------------------------------
def test_planted_clusters_are_found_with_their_boxes_and_high_densities() -> None:
    x = planted()
    out = hotspots(frame(x))
    last = out["hotspots"][-1].to_list()
    assert_same_hotspots(last, reference(x))
    assert len(last) == 2
    for corner, side, _ in CLUSTERS:
        lo, hi = np.array(corner), np.array(corner) + np.array(side)
        rows = x[np.all((x >= lo) & (x <= hi), axis=1)]  # the planted rows (and any in their box)
        assert len(rows) >= 29
        # The hotspot holding the cluster: its box holds every planted row, and lies within
        # the planted box grown by 2 radii. At 1000 rows in [0, 10]^2 a row expects 1.26
        # neighbours within 0.2, so a core point needs 5 (fewer than 1% of an even spread
        # have that many): background rows seldom chain onto the cluster.
        spot = [s for s in last if np.all(np.array(s["min_values"]) <= rows.min(0))
                and np.all(np.array(s["max_values"]) >= rows.max(0))]
        assert len(spot) == 1, (corner, last)
        assert np.all(np.array(spot[0]["min_values"]) >= lo - 2 * RADIUS)
        assert np.all(np.array(spot[0]["max_values"]) <= hi + 2 * RADIUS)
        assert spot[0]["density"] > 15  # the window's average is 1


@pytest.mark.parametrize("size", SIZES)
def test_every_rows_hotspots_are_those_of_the_window_ending_there(size: int | None) -> None:
    # 1000 rows with two clusters, then 1100 rows of background alone: the clusters leave
    # the 1000-row window as their rows do.
    x = np.vstack([planted(), np.random.default_rng(9).uniform(0, 10, size=(1100, 2))])
    out = hotspots(frame(x), size)
    assert out.height == len(x)
    for row in (30, 400, 999, 1300, 1600, 1900, 2099):
        window = x[max(0, row - 999): row + 1]
        assert_same_hotspots(out["hotspots"][row].to_list(), reference(window))
    assert len(out["hotspots"][999]) == 2
    assert out["hotspots"][2099].to_list() == []  # nothing of 17 points in background alone


def test_batch_sizes_1_7_whole_give_identical_hotspots() -> None:
    df = frame(planted(600)).with_columns(k=pl.Series(np.arange(600) % 2))
    outs = [hotspots(df, size, by="k", window_size=300, min_points=8) for size in SIZES]
    for out in outs[1:]:
        assert_frame_equal(out, outs[0], check_exact=True)
    assert outs[0]["hotspots"].list.len().max() >= 1


def test_background_alone_has_no_hotspot() -> None:
    x = np.random.default_rng(21).uniform(0, 10, size=(1000, 2))
    out = hotspots(frame(x))
    assert reference(x) == []
    assert out["hotspots"].list.len().max() == 0


def test_a_hotspot_per_key_looks_at_that_keys_rows_only() -> None:
    x = planted(1200, clusters=(((6.0, 2.0), (0.3, 0.2), 10),))
    k = np.where(np.arange(1200) % 10 == 5, "dense", "sparse")  # the cluster rows are all "dense"
    df = frame(x).with_columns(k=pl.Series(k))
    out = hotspots(df, by="k", window_size=500)
    for key in ("dense", "sparse"):
        rows = np.flatnonzero(k == key)
        last = out["hotspots"][int(rows[-1])].to_list()
        assert_same_hotspots(last, reference(x[rows][-500:]))


def test_a_row_without_finite_values_gets_null_and_is_not_in_the_window() -> None:
    x = planted()
    df = frame(x)
    holes = [5, 500, 501]
    dirty = df.with_columns(y=pl.when(pl.int_range(pl.len()).is_in(holes)).then(None).otherwise("y"))
    dirty = dirty.with_columns(x=pl.when(pl.int_range(pl.len()) == 700).then(float("nan")).otherwise("x"))
    out = hotspots(dirty)
    assert out["hotspots"].is_null().arg_true().to_list() == [*holes, 700]
    keep = [i for i in range(len(x)) if i not in (*holes, 700)]
    assert_same_hotspots(out["hotspots"][-1].to_list(), reference(x[keep]))


def test_snapshot_restore_continues_identically() -> None:
    df = frame(planted(800))
    spec = rl.hotspots("x", "y", window_size=300, scan_radius=RADIUS, min_points=8).spec(["x", "y"])
    whole = pl.DataFrame(rl._core.Detector(spec, []).process(df.select("x", "y").to_arrow()))
    first = rl._core.Detector(spec, [])
    head = pl.DataFrame(first.process(df.select("x", "y").head(333).to_arrow()))
    second = rl._core.Detector(spec, [])
    second.restore(first.snapshot())
    tail = pl.DataFrame(second.process(df.select("x", "y").slice(333).to_arrow()))
    assert_frame_equal(pl.concat([head, tail]), whole, check_exact=True)


@pytest.mark.parametrize(
    "kw,words",
    [
        ({"window_size": 1}, "window_size must be between 2"),
        ({"window_size": -5}, "window_size must be a whole number"),
        ({"scan_radius": 0.0}, "scan_radius must be a positive distance"),
        ({"scan_radius": -1.0}, "scan_radius must be a positive distance"),
        ({"scan_radius": "0.2"}, "scan_radius must be a number"),
        ({"min_points": 1}, "min_points must be at least 2"),
        ({"window_size": 100, "min_points": 101}, "at most window_size"),
        ({"min_points": True}, "min_points must be a whole number"),
    ],
)
def test_bad_parameters_get_a_clear_error(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(rl.ConfigError, match=words):
        rl.hotspots("x", "y", **kw)


def test_bad_columns_get_a_clear_error() -> None:
    df = pl.DataFrame({"t": [0, 1], "x": [1.0, 2.0], "s": ["a", "b"]})
    with pytest.raises(rl.SchemaError, match="numeric columns; 's' is"):
        rl.stream(df, time="t").detect(rl.hotspots("x", "s")).collect()
    with pytest.raises(rl.SchemaError, match="column 'z'"):
        rl.stream(df, time="t").detect(rl.hotspots("x", "z")).collect()
    with pytest.raises(rl.SchemaError, match="already has a column 'hotspots'"):
        rl.stream(df.with_columns(hotspots=pl.lit(1)), time="t").detect(rl.hotspots("x")).collect()


@pytest.mark.parametrize("radius", [float("nan"), float("inf"), float("-inf")])
def test_a_scan_radius_that_is_not_finite_is_named_in_the_error(radius: float) -> None:
    # Not "not a valid detector spec: expected value at line 1 column 81" (JSON has no NaN).
    with pytest.raises(rl.ConfigError, match="scan_radius must be a positive distance"):
        rl.hotspots("x", "y", scan_radius=radius)
