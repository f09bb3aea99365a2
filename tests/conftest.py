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
from collections.abc import Callable, Sequence
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


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Property tests draw random streams in which late, rejected and uncovered rows are the
    point, so ``rl.DataLossWarning`` (meant for an analyst's run) is no error there; every
    other test still fails on it (pytest's filterwarnings=error)."""
    import pytest

    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.filterwarnings("ignore::rillet.DataLossWarning"))


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


# -- the per-row reference for any window layout --------------------------------------------
# The same rules as ``simulate`` / ``reference_emissions`` above, for layouts that are not a
# regular grid (cumulative windows, calendar windows): ``windows_of(t)`` lists every window
# [start, end) that contains t, as integer instants in the time column's unit.
Span = tuple[int, int]


@dataclass
class SpanSimulation:
    status: list[str] = field(default_factory=list)  # "accepted" | "late" | "rejected"
    wm_before: list[int | None] = field(default_factory=list)
    wm_after: list[int | None] = field(default_factory=list)
    late_by: list[int | None] = field(default_factory=list)
    windows: list[list[Span]] = field(default_factory=list)  # windows the row was added to
    final_wm: int | None = None
    max_time: int | None = None


def simulate_spans(
    times: Sequence[int | None],
    delay: int,
    lateness: int,
    windows_of: Callable[[int], list[Span]],
) -> SpanSimulation:
    """Walks the rows one at a time: a row is late when it has windows and all are closed
    (end + lateness <= wm(i)); otherwise it is accepted into the windows still open."""
    sim = SpanSimulation()
    wm: int | None = None
    max_time: int | None = None
    for t in times:
        sim.wm_before.append(wm)
        if t is None:
            sim.status.append("rejected")
            sim.late_by.append(None)
            sim.windows.append([])
        else:
            spans = windows_of(t)
            open_spans = [w for w in spans if not _ge(wm, w[1] + lateness)]
            if spans and not open_spans:
                assert wm is not None
                sim.status.append("late")
                sim.late_by.append(wm - t)
                sim.windows.append([])
            else:
                sim.status.append("accepted")
                sim.late_by.append(None)
                sim.windows.append(open_spans)
                max_time = t if max_time is None else max(max_time, t)
                wm = t - delay if wm is None else max(wm, t - delay)
        sim.wm_after.append(wm)
    sim.final_wm = wm
    sim.max_time = max_time
    return sim


@dataclass
class SpanEmission:
    moment: int  # row index after which it was emitted; len(rows) for the end-of-input flush
    start: int
    end: int
    key: tuple
    revision: int
    rows: list[int]  # indices of the rows in the pane at that moment


def reference_span_emissions(
    times: Sequence[int | None],
    keys: Sequence[tuple],
    delay: int,
    lateness: int,
    windows_of: Callable[[int], list[Span]],
    emit: str = "final",
    flush: bool = True,
) -> list[SpanEmission]:
    """``reference_emissions`` for any layout: every emitted (window, key) row in order.

    final: a pane is emitted when its window closes (wm >= end + lateness) or at the flush.
    amend: revision 0 when the window completes (wm >= end), then one more revision after every
    accepted row that lands in the pane while it is complete but not closed; the flush emits
    revision 0 for windows that never completed. Same-moment rows: by end, start, key.
    """
    sim = simulate_spans(times, delay, lateness, windows_of)
    panes: dict[tuple[Span, tuple], list[int]] = {}
    revision: dict[tuple[Span, tuple], int] = {}
    out: list[SpanEmission] = []

    def emit_now(moment: int, pane_ids: set[tuple[Span, tuple]]) -> None:
        for span, key in sorted(pane_ids, key=lambda p: (p[0][1], p[0][0], key_sort(p[1]))):
            pid = (span, key)
            if emit == "amend":
                revision[pid] = revision[pid] + 1 if pid in revision else 0
            out.append(SpanEmission(moment, span[0], span[1], key, revision.get(pid, 0),
                                    list(panes[pid])))

    for i, status in enumerate(sim.status):
        if status != "accepted":
            continue
        before, after = sim.wm_before[i], sim.wm_after[i]
        due: set[tuple[Span, tuple]] = set()
        for span in sim.windows[i]:
            pid = (span, keys[i])
            panes.setdefault(pid, []).append(i)
            if emit == "amend" and _ge(before, span[1]):
                due.add(pid)  # amendment of a complete, still open window
        extra = 0 if emit == "amend" else lateness
        for pid in panes:
            end = pid[0][1] + extra
            if not _ge(before, end) and _ge(after, end):
                due.add(pid)  # completed (amend) or closed (final) with this row
        emit_now(i, due)
        for pid in [p for p in panes if _ge(after, p[0][1] + lateness)]:
            del panes[pid]
    if flush:
        final = set(panes) if emit == "final" else {
            p for p in panes if not _ge(sim.final_wm, p[0][1])
        }
        emit_now(len(sim.status), final)
    return out


SPAN_AGG_NAMES = ["count", "x_sum", "x_min", "y_max", "y_mean"]


def span_aggregates() -> list[Any]:
    """The aggregates the span-reference tests ask rillet for (see ``span_emissions_frame``)."""
    import rillet as rl

    return [rl.count(), rl.sum("x"), rl.min("x"), rl.max("y"), rl.mean("y")]


def span_emissions_frame(
    emissions: Sequence[SpanEmission],
    rows: pl.DataFrame,
    keys: Sequence[str],
    window_dtype: pl.DataType,
    to_window: Callable[[int], int] = lambda v: v,
    revision: bool = False,
) -> pl.DataFrame:
    """The frame rillet should emit for ``emissions`` over ``rows`` (Int64 "x", Float64 "y"),
    with ``span_aggregates()``. ``to_window`` maps a reference instant to the integer
    representation of ``window_dtype`` (e.g. seconds -> microseconds)."""
    xs, ys = rows["x"].to_list(), rows["y"].to_list()
    data: dict[str, list[Any]] = {k: [e.key[j] for e in emissions] for j, k in enumerate(keys)}
    data["window_start"] = [to_window(e.start) for e in emissions]
    data["window_end"] = [to_window(e.end) for e in emissions]
    if revision:
        data["revision"] = [e.revision for e in emissions]
    cols: dict[str, list[Any]] = {n: [] for n in SPAN_AGG_NAMES}
    for e in emissions:
        x = [xs[i] for i in e.rows if xs[i] is not None]
        y = [ys[i] for i in e.rows if ys[i] is not None]
        cols["count"].append(len(e.rows))
        cols["x_sum"].append(sum(x) if x else None)
        cols["x_min"].append(min(x) if x else None)
        cols["y_max"].append(max(y) if y else None)
        cols["y_mean"].append(sum(y) / len(y) if y else None)
    data.update(cols)
    schema: dict[str, Any] = {k: rows.schema[k] for k in keys}
    schema.update(window_start=pl.Int64, window_end=pl.Int64)
    if revision:
        schema["revision"] = pl.UInt32
    schema.update(count=pl.Int64, x_sum=pl.Int64, x_min=pl.Int64, y_max=pl.Float64,
                  y_mean=pl.Float64)
    df = pl.DataFrame(data, schema=schema)
    return df.with_columns(pl.col("window_start", "window_end").cast(window_dtype))
