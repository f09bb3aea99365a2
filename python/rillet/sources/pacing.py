"""Replay at a multiple of the recorded pace: ``source.paced(speed=10.0, by="arrival_time")``."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from rillet._errors import ConfigError, SchemaError
from rillet._time import text_instants
from rillet.sources.base import Chunk, positioned

_STEP_S = 0.05  # release rows in steps of this much wall-clock time
ACCEPTED = "a Datetime, a Date, or ISO 8601 text such as 2024-05-01T12:00:00Z"


class _Clock:
    """Where a paced replay stands: the recorded time of its first and last rows, and the
    wall-clock time the first part was released (set when it is)."""

    def __init__(self) -> None:
        self.start_rec: int | None = None
        self.last_rec: int | None = None
        self.start_wall: float | None = None

    def due(self, step: int) -> float:
        if self.start_wall is None:
            self.start_wall = time.monotonic()
        return self.start_wall + step * _STEP_S


class Paced:
    """A source whose rows are released at ``speed`` times the pace recorded in the ``by``
    column (a Datetime, a Date, or ISO 8601 text read as the stream reads a text ``time=``):
    rows recorded one second apart arrive ``1 / speed`` seconds apart. A row whose time is
    null or unreadable is released with the row before it."""

    def __init__(self, source: Any, speed: float | None, by: str) -> None:
        if speed is not None and (isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed <= 0):
            raise ConfigError(f"paced(speed=...) must be a positive number or None, got {speed!r}")
        if not isinstance(by, str):
            raise ConfigError(f"paced(by=...) takes a column name, got {by!r}")
        self.source = source
        self.speed = speed
        self.by = by

    def chunks(self) -> Iterator[Any]:
        for item, _ in self.positioned_chunks(None):
            yield item

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Any, Any]]:
        """The paced batches, each with the position after it: the source's position before
        the batch it was cut from and the rows of it released (or, after its last part, the
        source's position after it). From ``start``, the rows released before are passed
        over without waiting, and pacing starts again from the first row released."""
        before = None if start is None else start["source"]
        skip = 0 if start is None else start["rows"]
        clock = _Clock()
        for item, after in positioned(self.source, before, durable):
            if skip:
                # Resumed part way through this batch: its rows released before are passed
                # over (its unreadable rows went with its first part).
                frame = item.frame if isinstance(item, Chunk) else item
                rest = frame.slice(skip)
                item = Chunk(rest, item.bad.clear()) if isinstance(item, Chunk) else rest
            parts = self._cuts(item, clock)
            released = skip
            for n, (part, due) in enumerate(parts, start=1):
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                released += (part.frame if isinstance(part, Chunk) else part).height
                yield part, ({"source": after, "rows": 0} if n == len(parts) else {"source": before, "rows": released})
            skip = 0
            before = after

    def _cuts(self, item: Any, clock: _Clock) -> list[tuple[Any, float]]:
        """One batch cut where its recorded time crosses each release step: each part with the
        wall-clock time it is due (``clock`` carries the pace from batch to batch; it starts at
        the first part released)."""
        frame = item.frame if isinstance(item, Chunk) else item
        if self.speed is None or frame.height == 0:
            return [(item, 0.0)]
        recorded = self._recorded_us(frame)
        recorded = recorded.forward_fill()
        recorded = recorded.backward_fill() if clock.last_rec is None else recorded.fill_null(clock.last_rec)
        if recorded.null_count() == recorded.len():  # no time yet: nothing to pace by
            return [(item, 0.0)]
        us = recorded.to_numpy()
        clock.last_rec = int(us[-1])
        if clock.start_rec is None:
            clock.start_rec = int(us[0])
        steps = ((us - clock.start_rec) / 1e6 / self.speed // _STEP_S).astype("int64")
        cuts = [0, *(np.flatnonzero(np.diff(steps)) + 1).tolist(), len(steps)]
        out = []
        for a, b in zip(cuts, cuts[1:]):
            part = frame.slice(a, b - a)
            if isinstance(item, Chunk):
                part = Chunk(part, item.bad if a == 0 else item.bad.clear())
            out.append((part, clock.due(int(steps[a]))))
        return out

    def _recorded_us(self, frame: pl.DataFrame) -> pl.Series:
        """The ``by`` column as microseconds since the epoch (Int64, null where unreadable)."""
        dtype = frame.schema.get(self.by)
        if dtype is None:
            raise SchemaError(
                f"paced(by={self.by!r}): the source has no column {self.by!r}; its columns are "
                f"{frame.columns}"
            )
        if isinstance(dtype, pl.Datetime):
            times = frame.get_column(self.by)
        elif dtype == pl.Date:
            times = frame.get_column(self.by).cast(pl.Datetime("us"))
        elif dtype == pl.String:
            times = frame.select(text_instants(self.by)).to_series()
        else:
            hint = " (integer times have no unit: convert them to a Datetime first)" if dtype.is_integer() else ""
            raise SchemaError(
                f"paced(by={self.by!r}): {self.by!r} is {_type_name(dtype)}; pacing needs "
                f"{ACCEPTED}{hint}"
            )
        return times.dt.epoch("us")

    def __repr__(self) -> str:
        return f"{self.source!r}.paced(speed={self.speed!r}, by={self.by!r})"


def _type_name(dtype: pl.DataType) -> str:
    """A type's name without its fields: a nested type's full schema can run to pages."""
    return dtype.base_type().__name__ if dtype.is_nested() else str(dtype)


def paced(source: Any, speed: float | None = 10.0, by: str = "arrival_time") -> Paced:
    """Replays ``source`` (any rillet source: a DataFrame, files, ...) at ``speed`` times the
    pace recorded in its ``by`` column (a Datetime, a Date, or ISO 8601 text);
    ``speed=None`` is as fast as possible."""
    return Paced(source, speed, by)
