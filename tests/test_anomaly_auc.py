"""The anomaly benchmark's ROC AUC (bench/anomaly.py, rank-based with ties) against a
brute-force count over every (anomaly, normal) pair."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import bench_module

bench_anomaly = bench_module("anomaly")


def pairwise_auc(labels: list[int], scores: list[float]) -> float:
    """Share of (anomaly, normal) pairs where the anomaly scores higher; a tie counts 1/2."""
    pos = [s for y, s in zip(labels, scores) if y == 1]
    neg = [s for y, s in zip(labels, scores) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(30))
def test_rank_auc_matches_a_pairwise_count_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes present
    rng.shuffle(labels)
    # Few distinct values, so ties are common (within and across classes).
    scores = rng.integers(0, 1 + int(rng.integers(1, 6)), n).astype(float)
    if seed % 2:
        scores = scores + rng.random(n)  # no ties
    got = bench_anomaly.roc_auc(labels, scores)
    assert got == pytest.approx(pairwise_auc(labels.tolist(), scores.tolist()), abs=1e-12)


def test_rank_auc_of_constant_scores_is_one_half() -> None:
    labels = [0, 1, 0, 0, 1]
    assert bench_anomaly.roc_auc(labels, [0.0] * 5) == pairwise_auc(labels, [0.0] * 5) == 0.5


def test_rank_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        bench_anomaly.roc_auc([0, 0, 0], [0.1, 0.2, 0.3])
