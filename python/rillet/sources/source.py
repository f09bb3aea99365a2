"""The base of rillet's own sources: micro-batches of rows with the rows that could not be
read (``chunks()``), the rows alone, and a paced replay."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import polars as pl

from rillet.sources.pacing import Paced


class ChunkSource(ABC):
    """What every rillet source offers over its ``chunks()`` (micro-batches of rows, each with
    the rows that could not be read): the rows alone, and a paced replay."""

    #: The column ``paced()`` follows unless told otherwise.
    pace_by = "arrival_time"

    @abstractmethod
    def chunks(self) -> Iterator[Any]:
        """The source's micro-batches, in arrival order."""

    def positioned_chunks(self, start: Any = None, durable: bool = False) -> Iterator[tuple[Any, Any]]:
        """The chunks, each with the position after it, from ``start``: by default their
        number, the first ``start`` read and passed over (a source that knows where it is
        says so instead)."""
        from rillet.sources.base import counted

        return counted(self.chunks(), start)

    def batches(self) -> Iterator[pl.DataFrame]:
        """The rows only (unreadable ones are visible through a query's ``run.rejected``)."""
        for c in self.chunks():
            yield c.frame

    def paced(self, speed: float | None = 10.0, by: str | None = None) -> Any:
        """This source replayed at ``speed`` times the pace recorded in the column ``by`` (a
        Datetime, a Date, or ISO 8601 text; default: the source's arrival time, or
        ``eventTime`` for CloudTrail)."""
        return Paced(self, speed, self.pace_by if by is None else by)
