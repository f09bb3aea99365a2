"""State stays flat over a long stream (issue 6): closed windows are freed, so the operator's
state is set by the windows still open, not by the rows seen.

50M rows (``RILLET_STATE_ROWS`` to change it) go through a 1-minute tumbling window by 300
string keys in batches of 1M, generated one at a time and never held whole::

    batch b:  event time = b * 5 min + (a fixed template: steady, ~1.5 s of jitter,
              0.5% stragglers up to 3 min behind, most of which are late)

     0        5m       10m              ...              245m      250m
     |--b0----|--b1----|--- ... -------------------------|--b49----|
       each batch spans five whole windows, so every batch meets the watermark
       in the same phase and the state seen after each one is comparable

After every batch the run's metrics and the process RSS are sampled from inside the source
(the worker thread asks for the next batch only once the last one is processed). Results are
checked against a numpy oracle that shares no code with the engine: the per-row watermark of
docs/semantics.md over a running maximum decides which rows are late, and a few windows
(one straddling a batch boundary) are recomputed per key.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

import rillet as rl

ROWS = int(os.environ.get("RILLET_STATE_ROWS", "50000000"))
BATCH = 1_000_000
KEYS = 300
SEC = 1_000_000  # the time column is in microseconds
WINDOW = 60 * SEC
DELAY = 2 * SEC  # watermark="2s"
LATENESS = 10 * SEC  # lateness="10s"
SPAN = 5 * WINDOW  # event time covered by one batch: whole windows, so every batch has the same phase
START = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * SEC
#: Windows that can be open at once: those whose end + lateness is past the watermark.
MAX_OPEN_WINDOWS = -(-(DELAY + LATENESS) // WINDOW) + 1
#: Batches before the state reaches its steady size: the engine's tables grow to the capacity
#: the stream needs within the first few (one step of about 30%, seen at batch 3 or 4).
WARM_UP = 5
RSS_GROWTH = 96 * 2**20  # bytes the RSS may grow past its early peak (allocator noise, output rows)
STATE_GROWTH = 1.2  # the state may reach this many times its early peak
STATE_PER_PANE = 1024  # bytes; a count and a sum need far less


@dataclass
class Template:
    """One batch's random parts, drawn once; batch b shifts its times by b * SPAN."""

    offsets: np.ndarray  # event time within the batch, microseconds
    key_ids: np.ndarray
    x: np.ndarray
    frame: pl.DataFrame  # the same, with keys as strings and time still relative


def template(seed: int = 6) -> Template:
    rng = np.random.default_rng(seed)
    steady = np.arange(BATCH, dtype=np.int64) * (SPAN // BATCH)
    jitter = rng.integers(0, 3 * SEC // 2, BATCH)  # within the 2 s delay: never late
    stragglers = rng.random(BATCH) < 0.005
    jitter[stragglers] = rng.integers(0, 180 * SEC, int(stragglers.sum()))
    offsets = steady - jitter
    key_ids = rng.integers(0, KEYS, BATCH)
    x = rng.integers(0, 1000, BATCH)
    names = pl.Series("k", [f"user-{i:03d}" for i in range(KEYS)])
    frame = pl.DataFrame({"time": offsets, "k": names.gather(key_ids), "x": x})
    return Template(offsets, key_ids, x, frame)


@dataclass
class Oracle:
    """Late rows and a few windows' per-key counts and sums, from numpy alone."""

    sampled: list[int]  # window ids (start // WINDOW)
    max_seen: int = np.iinfo(np.int64).min // 2  # minus infinity, with room to subtract
    rows: int = 0
    late: int = 0
    x_kept: int = 0
    counts: dict[int, np.ndarray] = field(default_factory=dict)
    sums: dict[int, np.ndarray] = field(default_factory=dict)

    def add(self, times: np.ndarray, key_ids: np.ndarray, x: np.ndarray) -> None:
        # watermark(i) = max(time of rows 0..i-1) - delay; late rows are below it, so taking
        # the maximum over every row equals taking it over the accepted ones.
        before = np.empty_like(times)
        before[0] = self.max_seen
        np.maximum.accumulate(times[:-1], out=before[1:])
        np.maximum(before, self.max_seen, out=before)
        self.max_seen = max(self.max_seen, int(times.max()))
        window = times // WINDOW
        late = (window + 1) * WINDOW + LATENESS <= before - DELAY
        kept = ~late
        self.rows += times.size
        self.late += int(late.sum())
        self.x_kept += int(x[kept].sum())
        for w in self.sampled:
            rows = kept & (window == w)
            if rows.any():
                self.counts[w] = self.counts.get(w, 0) + np.bincount(key_ids[rows], minlength=KEYS)
                self.sums[w] = self.sums.get(w, 0) + np.bincount(
                    key_ids[rows], weights=x[rows], minlength=KEYS
                ).astype(np.int64)


@dataclass
class Sample:
    """The run's gauges and the process RSS after one batch."""

    batch: int
    open_windows: int
    open_panes: int
    keys: int
    state_bytes: int
    rss: int | None


def rss_bytes() -> int | None:
    """The resident set size now (None where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def test_state_stays_flat_over_a_long_stream() -> None:
    n_batches = -(-ROWS // BATCH)
    assert n_batches >= 4 * WARM_UP, "too short a stream to tell flat from growing"
    tpl = template()
    first_window = START // WINDOW
    per_batch = SPAN // WINDOW
    # Early, middle (straddling a batch boundary: it ends where the middle batch starts, and
    # rows of that batch jittered behind its start fall into it) and late.
    sampled = [first_window + 2 * per_batch + 2, first_window + (n_batches // 2) * per_batch - 1,
               first_window + (n_batches - 1) * per_batch + 3]
    oracle = Oracle(sampled)
    samples: list[Sample] = []
    handle_ready = threading.Event()
    holder: dict[str, Any] = {}

    def sample(batch: int) -> None:
        m = holder["handle"].metrics  # the worker does not hold the lock while it asks for input
        samples.append(Sample(batch, m["open_windows"], m["open_panes"], m["keys"], m["state_bytes"],
                              rss_bytes()))

    def source() -> Iterator[pl.DataFrame]:
        assert handle_ready.wait(30), "q.start() did not return"
        for b in range(n_batches):
            n = min(BATCH, ROWS - b * BATCH)
            shift = START + b * SPAN
            oracle.add(tpl.offsets[:n] + shift, tpl.key_ids[:n], tpl.x[:n])
            yield tpl.frame.head(n).with_columns(
                (pl.col("time") + shift).cast(pl.Datetime("us", "UTC"))
            )
            sample(b)  # batch b has been processed when the next one is asked for

    query = (
        rl.stream(source(), time="time", watermark="2s")
        .window(rl.tumbling("1m"), by="k", lateness="10s", late="drop")
        .agg(rl.count(), rl.sum("x"))
    )
    handle = query.start()
    holder["handle"] = handle
    handle_ready.set()
    run = handle.wait(timeout=600)

    # -- results: the oracle's counts, sums and late rows ----------------------------------
    out = run.output
    m = run.metrics
    assert oracle.rows == ROWS == m["rows_in"]
    assert 0 < oracle.late < ROWS // 100, "the stream should have some, but few, late rows"
    assert m["rows_late"] == oracle.late
    assert out["count"].sum() == ROWS - oracle.late
    assert out["x_sum"].sum() == oracle.x_kept
    assert out.select(pl.struct("window_start", "k").is_unique().all()).item()
    assert m["keys"] == KEYS
    for w in sampled:
        start = dt.datetime.fromtimestamp(w * WINDOW // SEC, tz=dt.UTC)
        got = out.filter(pl.col("window_start") == start).sort("k")
        want_keys = np.flatnonzero(oracle.counts[w])
        assert got["k"].to_list() == [f"user-{i:03d}" for i in want_keys], start
        assert got["count"].to_list() == oracle.counts[w][want_keys].tolist(), start
        assert got["x_sum"].to_list() == oracle.sums[w][want_keys].tolist(), start

    # -- state: set by the open windows, not by the rows seen ------------------------------
    assert [s.batch for s in samples] == list(range(n_batches))
    for s in samples:
        assert 1 <= s.open_windows <= MAX_OPEN_WINDOWS, s
        assert s.open_panes <= s.open_windows * KEYS, s
        assert s.keys == KEYS, s
    early = samples[WARM_UP: WARM_UP + max(2, n_batches // 10)]
    late_half = samples[n_batches // 2:]
    early_state = max(s.state_bytes for s in early)
    late_state = max(s.state_bytes for s in late_half)
    assert late_state <= STATE_GROWTH * early_state, (
        f"state grew: {early_state:,} bytes early, {late_state:,} in the second half"
    )
    assert max(s.open_panes for s in late_half) <= max(s.open_panes for s in early)
    for s in samples:  # the key dictionary lives for the run: it counts as a pane's worth per key
        assert s.state_bytes <= STATE_PER_PANE * (s.open_panes + s.keys), s

    # -- memory: the process does not grow either (where /proc tells) --------------------
    if any(s.rss is None for s in samples):
        return
    early_rss = max(s.rss or 0 for s in early)
    late_rss = max(s.rss or 0 for s in late_half)
    assert late_rss <= early_rss + RSS_GROWTH, (
        f"RSS grew from {early_rss / 2**20:.0f} MiB early to {late_rss / 2**20:.0f} MiB"
    )
