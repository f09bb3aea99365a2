"""Shared test machinery: hypothesis profiles, micro-batching, and a brute-force reference.

The reference below is deliberately naive: it walks the rows one at a time in plain Python,
keeping the watermark as a Python int, exactly as the contract states the semantics
(API.md, "Watermark and lateness"). It shares no code with the engine.

    wm(i)   = max(time of accepted rows 0..i-1) - delay      (None = minus infinity)
    late(i) = every window containing t_i has end + lateness <= wm(i)
    accepted rows go into the windows containing t_i with end + lateness > wm(i)

Tests import the helpers with ``from conftest import ...`` (pytest puts tests/ on sys.path).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from hypothesis import HealthCheck, settings

# -- hypothesis profiles --------------------------------------------------------------------
settings.register_profile(
    "fast",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "slow",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("slow" if os.environ.get("RILLET_HYPOTHESIS", "fast") == "slow" else "fast")


# -- micro-batches --------------------------------------------------------------------------
def batches(df: pl.DataFrame, size: int | None) -> list[pl.DataFrame]:
    """Cuts ``df`` into consecutive micro-batches of ``size`` rows (None: one batch).

    An empty frame gives one empty batch, so the stream still carries the schema.
    """
    if size is None or df.height == 0:
        return [df]
    return [df.slice(start, size) for start in range(0, df.height, size)]


# -- window arithmetic ----------------------------------------------------------------------
def window_starts(t: int, period: int, every: int, offset: int = 0) -> list[int]:
    """Starts of every window [s, s + period) with s = k * every + offset that contains t.

    Python's // floors, so t = -1 with every = 10 is in [-10, 0).
    """
    first_k = (t - offset - period) // every + 1
    last_k = (t - offset) // every
    return [k * every + offset for k in range(first_k, last_k + 1)]


def _ge(wm: int | None, x: int) -> bool:
    """wm >= x, with None meaning minus infinity."""
    return wm is not None and wm >= x


# -- the per-row reference ------------------------------------------------------------------
@dataclass
class Simulation:
    """What the reference says about each row (indices into the rows given)."""

    status: list[str] = field(default_factory=list)  # "accepted" | "late" | "rejected"
    wm_before: list[int | None] = field(default_factory=list)
    wm_after: list[int | None] = field(default_factory=list)
    late_by: list[int | None] = field(default_factory=list)
    windows: list[list[int]] = field(default_factory=list)  # starts the row was added to
    final_wm: int | None = None
    max_time: int | None = None
    period: int = 0
    lateness: int = 0

    def mask(self, status: str) -> list[bool]:
        return [s == status for s in self.status]

    def close_moment(self, start: int) -> int | None:
        """Index of the row after which window ``start`` closes (None: never, before a flush)."""
        return self._first_reaching(start + self.period + self.lateness)

    def complete_moment(self, start: int) -> int | None:
        return self._first_reaching(start + self.period)

    def _first_reaching(self, x: int) -> int | None:
        for i, wm in enumerate(self.wm_after):
            if _ge(wm, x):
                return i
        return None


def simulate(
    times: Sequence[int | None],
    delay: int,
    period: int,
    every: int,
    offset: int = 0,
    lateness: int = 0,
) -> Simulation:
    """Walks the rows one at a time; ``times`` are ints (None: null time, rejected)."""
    sim = Simulation(period=period, lateness=lateness)
    wm: int | None = None
    max_time: int | None = None
    for t in times:
        sim.wm_before.append(wm)
        if t is None:
            sim.status.append("rejected")
            sim.late_by.append(None)
            sim.windows.append([])
        else:
            starts = window_starts(t, period, every, offset)
            open_starts = [s for s in starts if not _ge(wm, s + period + lateness)]
            if starts and not open_starts:
                assert wm is not None
                sim.status.append("late")
                sim.late_by.append(wm - t)
                sim.windows.append([])
            else:
                sim.status.append("accepted")
                sim.late_by.append(None)
                sim.windows.append(open_starts)
                max_time = t if max_time is None else max(max_time, t)
                wm = t - delay if wm is None else max(wm, t - delay)
        sim.wm_after.append(wm)
    sim.final_wm = wm
    sim.max_time = max_time
    return sim


def reference_late_mask(
    times: Sequence[int | None],
    delay: int,
    period: int,
    every: int,
    offset: int = 0,
    lateness: int = 0,
) -> list[bool]:
    """True for each row the contract calls late (all its windows closed under wm(i))."""
    return simulate(times, delay, period, every, offset, lateness).mask("late")


def key_sort(key: tuple) -> tuple:
    """Ascending with nulls first, column by column (the emission order of keys)."""
    return tuple((0,) if v is None else (1, v) for v in key)


@dataclass
class Emission:
    moment: int  # row index after which it was emitted; len(rows) for the end-of-input flush
    start: int
    key: tuple
    revision: int
    rows: list[int]  # indices of the rows in the pane at that moment


def reference_emissions(
    times: Sequence[int | None],
    keys: Sequence[tuple],
    delay: int,
    period: int,
    every: int,
    offset: int = 0,
    lateness: int = 0,
    emit: str = "final",
    flush: bool = True,
) -> list[Emission]:
    """Every emitted (window, key) row in emission order, by brute force.

    final: a pane is emitted when its window closes (wm >= end + lateness) or at the flush.
    amend: revision 0 when the window completes (wm >= end); then revision + 1 after every
    accepted row that lands in the pane while the window is complete but not closed; a pane
    first emitted after completion starts at revision 0; the flush emits revision 0 for
    windows that never completed. Same-moment rows: by end, start, key (nulls first).
    """
    sim = simulate(times, delay, period, every, offset, lateness)
    panes: dict[tuple[int, tuple], list[int]] = {}
    revision: dict[tuple[int, tuple], int] = {}
    out: list[Emission] = []

    def emit_now(moment: int, pane_ids: set[tuple[int, tuple]]) -> None:
        for start, key in sorted(pane_ids, key=lambda p: (p[0] + period, p[0], key_sort(p[1]))):
            pid = (start, key)
            if emit == "amend":
                revision[pid] = revision[pid] + 1 if pid in revision else 0
            out.append(Emission(moment, start, key, revision.get(pid, 0), list(panes[pid])))

    for i, status in enumerate(sim.status):
        if status != "accepted":
            continue
        before, after = sim.wm_before[i], sim.wm_after[i]
        due: set[tuple[int, tuple]] = set()
        for s in sim.windows[i]:
            pid = (s, keys[i])
            panes.setdefault(pid, []).append(i)
            if emit == "amend" and _ge(before, s + period):
                due.add(pid)  # amendment of a complete, still open window
        if emit == "amend":
            for pid in panes:
                end = pid[0] + period
                if not _ge(before, end) and _ge(after, end):
                    due.add(pid)  # the window completed with this row
        else:
            for pid in panes:
                end = pid[0] + period + lateness
                if not _ge(before, end) and _ge(after, end):
                    due.add(pid)
        emit_now(i, due)
        for pid in [p for p in panes if _ge(after, p[0] + period + lateness)]:
            del panes[pid]
    if flush:
        final = set(panes) if emit == "final" else {
            p for p in panes if not _ge(sim.final_wm, p[0] + period)
        }
        emit_now(len(sim.status), final)
    return out


def to_int_time(series: pl.Series) -> list[Any]:
    """A time column as a list of ints in its own unit (Datetime -> epoch in its unit)."""
    if isinstance(series.dtype, pl.Datetime):
        return series.dt.epoch(series.dtype.time_unit or "us").to_list()
    return series.to_list()
