"""Replay at a multiple of the recorded pace: ``source.paced(speed=10.0, by="arrival_time")``."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import polars as pl

from rillet._errors import ConfigError, SchemaError
from rillet._files import Chunk
from rillet._source import frames

_STEP_S = 0.05  # release rows in steps of this much wall-clock time


class Paced:
    """A source whose rows are released at ``speed`` times the pace recorded in the ``by``
    column (a Datetime): rows recorded one second apart arrive ``1 / speed`` seconds apart."""

    def __init__(self, source: Any, speed: float | None, by: str) -> None:
        if speed is not None and (isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed <= 0):
            raise ConfigError(f"paced(speed=...) must be a positive number or None, got {speed!r}")
        self.source = source
        self.speed = speed
        self.by = by

    def chunks(self) -> Iterator[Any]:
        start_wall: float | None = None
        start_rec: int | None = None
        for item in frames(self.source):
            frame = item.frame if isinstance(item, Chunk) else item
            if self.speed is None or frame.height == 0:
                yield item
                continue
            if self.by not in frame.columns or not isinstance(frame.schema[self.by], pl.Datetime):
                raise SchemaError(
                    f"paced(by={self.by!r}) needs a Datetime column of that name; the source has "
                    f"{dict(frame.schema)}"
                )
            us = frame[self.by].dt.epoch("us").to_numpy()
            if start_rec is None:
                start_wall, start_rec = time.monotonic(), int(us[0])
            assert start_wall is not None
            # Slice the batch where the recorded time crosses each release step.
            steps = ((us - start_rec) / 1e6 / self.speed // _STEP_S).astype("int64")
            cuts = [0, *[i for i in range(1, len(steps)) if steps[i] != steps[i - 1]], len(steps)]
            for a, b in zip(cuts, cuts[1:]):
                due = start_wall + steps[a] * _STEP_S
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                part = frame.slice(a, b - a)
                if isinstance(item, Chunk):
                    yield Chunk(part, item.bad if a == 0 else item.bad.clear())
                else:
                    yield part

    def __repr__(self) -> str:
        return f"{self.source!r}.paced(speed={self.speed!r}, by={self.by!r})"


def paced(source: Any, speed: float | None = 10.0, by: str = "arrival_time") -> Paced:
    """Replays ``source`` (any rillet source: a DataFrame, files, ...) at ``speed`` times the
    pace recorded in its ``by`` Datetime column; ``speed=None`` is as fast as possible."""
    return Paced(source, speed, by)
