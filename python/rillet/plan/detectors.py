"""Detector specifications for :meth:`rillet.Stream.detect`: configuration only, checked
by the core when built. The detectors themselves (random cut forests, hotspots) run in the
Rust core (src/anomaly)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from rillet import _core
from rillet._errors import ConfigError

#: The columns each detector adds to every row.
OUTPUTS: dict[str, tuple[str, ...]] = {"random_cut_forest": ("anomaly_score",), "hotspots": ("hotspots",)}
#: The constructors' defaults (a repr shows only what differs).
DEFAULTS: dict[str, dict[str, Any]] = {
    "random_cut_forest": {"trees": 100, "sample_size": 256, "time_decay": 100_000, "shingle_size": 1,
                          "with_explanation": False, "directionality": False, "seed": 0},
    "hotspots": {"window_size": 1000, "scan_radius": 0.2, "min_points": 17},
}
#: Their names in Kinesis' SQL functions, which give the explanation and hotspots as JSON text.
KINESIS = {"anomaly_score": "ANOMALY_SCORE", "anomaly_explanation": "ANOMALY_EXPLANATION",
           "hotspots": "HOTSPOTS_RESULT"}


@dataclass(frozen=True)
class DetectorSpec:
    """A detector: build one with :func:`random_cut_forest` or :func:`hotspots`."""

    kind: str
    columns: tuple[str, ...]
    options: tuple[tuple[str, Any], ...]

    def spec(self, columns: list[str] | tuple[str, ...]) -> str:
        """The core's JSON spec, over ``columns`` (the given ones, or those chosen at the
        first batch)."""
        return json.dumps({"kind": self.kind, "columns": list(columns), **dict(self.options)})

    def outputs(self) -> tuple[str, ...]:
        """The names of the columns the detector adds (Kinesis' names for a SQL detector)."""
        options = dict(self.options)
        names = OUTPUTS[self.kind]
        if self.kind == "random_cut_forest" and options["with_explanation"]:
            names = ("anomaly_score", "anomaly_explanation")
        if options.get("kinesis"):
            return tuple(KINESIS[n] for n in names)
        return names

    def __repr__(self) -> str:
        cols = ", ".join(repr(c) for c in self.columns)
        defaults = DEFAULTS[self.kind]
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options if k in defaults and defaults[k] != v)
        return f"rl.{self.kind}({cols}{', ' if cols and opts else ''}{opts})"


def _int(value: Any, name: str, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be a whole number such as {example}, got {value!r}")
    return value


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")
    return value


def _columns(columns: tuple[Any, ...], what: str) -> tuple[str, ...]:
    for c in columns:
        if not isinstance(c, str):
            raise ConfigError(f"{what} takes column names, e.g. {what}('calls'); got {type(c).__name__} {c!r}")
    if len(set(columns)) != len(columns):
        raise ConfigError(f"{what} names a column twice: {list(columns)}")
    return columns


def _checked(spec: DetectorSpec) -> DetectorSpec:
    # The core checks the numbers (one place for the rules); names are filled in later when
    # left to the first batch.
    _core.Detector(spec.spec(spec.columns or ("column",)), [])
    return spec


def random_cut_forest(
    *columns: str,
    trees: int = 100,
    sample_size: int = 256,
    time_decay: int = 100_000,
    shingle_size: int = 1,
    with_explanation: bool = False,
    directionality: bool = False,
    seed: int = 0,
) -> DetectorSpec:
    """Anomaly scores from a robust random cut forest (Kinesis Data Analytics'
    ``RANDOM_CUT_FOREST``): each row's numeric ``columns`` (all numeric columns but the time
    and the keys when none are named) are a point, scored against the forest as it stands,
    then offered to its trees' samples. ``anomaly_score`` is about 1 for ordinary rows and
    several times that for outliers, 0 while the forest fills (its first
    ``1 + sample_size // 4`` points).

    ``time_decay`` is how many rows it takes for an old point's odds of staying in a sample
    to fall by ``e`` (Kinesis' default 100000; 0: no decay); ``shingle_size`` puts that many
    consecutive rows side by side in one point, so a change of shape scores, not only a
    change of level. ``with_explanation=True`` adds ``anomaly_explanation``: per column, its
    ``attribution_score`` (the parts add up to the score) and, with ``directionality=True``,
    its ``direction`` ("HIGH" or "LOW") and ``strength`` (how many standard deviations the
    value is from the column's running mean). The same ``seed`` and rows give the same
    scores, however the stream is cut into batches.

    >>> import rillet as rl
    >>> rl.random_cut_forest("calls", shingle_size=4)
    rl.random_cut_forest('calls', shingle_size=4)
    """
    options = (
        ("trees", _int(trees, "trees", "100")),
        ("sample_size", _int(sample_size, "sample_size", "256")),
        ("time_decay", _int(time_decay, "time_decay", "100_000")),
        ("shingle_size", _int(shingle_size, "shingle_size", "1")),
        ("with_explanation", _bool(with_explanation, "with_explanation")),
        ("directionality", _bool(directionality, "directionality")),
        ("seed", _int(seed, "seed", "0")),
    )
    if seed >= 2**64:
        raise ConfigError(f"seed must be between 0 and 2**64 - 1, got {seed}")
    if directionality and not with_explanation:
        raise ConfigError("directionality=True describes the explanation; add with_explanation=True")
    return _checked(DetectorSpec("random_cut_forest", _columns(columns, "random_cut_forest"), options))


def hotspots(
    *columns: str,
    window_size: int = 1000,
    scan_radius: float = 0.2,
    min_points: int = 17,
) -> DetectorSpec:
    """Hotspots (Kinesis Data Analytics' ``HOTSPOTS``): regions of the last ``window_size``
    rows, in the space of the numeric ``columns``, much denser than the window as a whole.
    Rows at most ``scan_radius`` apart (in the columns' units) are neighbours; a hotspot
    holds at least ``min_points`` rows. Each row gets ``hotspots``: a list of structs
    ``density`` (the region's rows per volume over the window's), ``min_values`` and
    ``max_values`` (its box), densest first. docs/anomaly.md has the definition.

    >>> import rillet as rl
    >>> rl.hotspots("x", "y", scan_radius=0.5)
    rl.hotspots('x', 'y', scan_radius=0.5)
    """
    if isinstance(scan_radius, bool) or not isinstance(scan_radius, (int, float)):
        raise ConfigError(f"scan_radius must be a number such as 0.2, got {scan_radius!r}")
    if not (math.isfinite(scan_radius) and scan_radius > 0):  # NaN and infinity have no JSON form
        raise ConfigError(f"scan_radius must be a positive distance in the columns' units, such as 0.2, "
                          f"got {scan_radius!r}")
    options = (
        ("window_size", _int(window_size, "window_size", "1000")),
        ("scan_radius", float(scan_radius)),
        ("min_points", _int(min_points, "min_points", "17")),
    )
    return _checked(DetectorSpec("hotspots", _columns(columns, "hotspots"), options))
