"""Turning what the user passes as a source into polars micro-batches, in arrival order."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import polars as pl

from rillet._errors import ConfigError, SourceError

#: A DataFrame source is replayed in slices of this many rows (results never depend on it).
REPLAY_SLICE = 1 << 20


class ChunkSource(ABC):
    """What every rillet source offers over its ``chunks()`` (micro-batches of rows, each with
    the rows that could not be read): the rows alone, and a paced replay."""

    #: The column ``paced()`` follows unless told otherwise.
    pace_by = "arrival_time"

    @abstractmethod
    def chunks(self) -> Iterator[Any]:
        """The source's micro-batches, in arrival order."""

    def batches(self) -> Iterator[pl.DataFrame]:
        """The rows only (unreadable ones are visible through a query's ``run.rejected``)."""
        for c in self.chunks():
            yield c.frame

    def paced(self, speed: float | None = 10.0, by: str | None = None) -> Any:
        """This source replayed at ``speed`` times the pace recorded in the column ``by`` (a
        Datetime, a Date, or ISO 8601 text; default: the source's arrival time, or
        ``eventTime`` for CloudTrail)."""
        from rillet._pacing import Paced

        return Paced(self, speed, self.pace_by if by is None else by)


def _is_arrow(obj: Any) -> bool:
    return hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__")


def to_frame(obj: Any) -> pl.DataFrame:
    """One micro-batch as a polars DataFrame."""
    if isinstance(obj, pl.DataFrame):
        return obj
    if isinstance(obj, pl.LazyFrame):
        return obj.collect()
    if _is_arrow(obj):
        try:
            return pl.DataFrame(obj)
        except Exception as e:
            raise SourceError(f"could not read Arrow data from {type(obj).__name__}: {e}") from e
    raise ConfigError(
        f"unsupported micro-batch of type {type(obj).__name__}; each batch must be a polars "
        "DataFrame or LazyFrame, or an Arrow table or record batch"
    )


def known_rows(source: Any) -> int | None:
    """The number of rows a source will yield, when known in advance."""
    if isinstance(source, pl.DataFrame):
        return source.height
    return None


def frames(source: Any) -> Generator[Any, None, None]:
    """Yields the source's micro-batches in arrival order."""
    if isinstance(source, pl.DataFrame):
        if source.height <= REPLAY_SLICE:
            yield source
            return
        for start in range(0, source.height, REPLAY_SLICE):
            yield source.slice(start, REPLAY_SLICE)
        return
    if isinstance(source, pl.LazyFrame) or _is_arrow(source):
        yield from frames(to_frame(source))
        return
    if hasattr(source, "chunks") and callable(source.chunks):
        yield from source.chunks()  # file sources: rows plus the rows that did not parse
        return
    if hasattr(source, "batches") and callable(source.batches):
        yield from (to_frame(b) for b in source.batches())
        return
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, dict)):
        for item in source:
            yield to_frame(item)
        return
    raise ConfigError(
        f"unsupported source of type {type(source).__name__}; pass a polars DataFrame or "
        "LazyFrame, an Arrow table or record batch (anything with __arrow_c_stream__), or an "
        "iterable of those (one micro-batch each, in arrival order)"
    )
