"""Turning what the user passes as a source into polars micro-batches, in arrival order."""
from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import Any

import polars as pl

from rillet._errors import ConfigError, SourceError

#: A DataFrame source is replayed in slices of this many rows (results never depend on it).
REPLAY_SLICE = 1 << 20


class Chunk:
    """One micro-batch from a file source: the rows that parsed and those that did not."""

    __slots__ = ("bad", "frame")

    def __init__(self, frame: pl.DataFrame, bad: pl.DataFrame) -> None:
        self.frame = frame
        self.bad = bad


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


def positioned(source: Any, start: Any = None, durable: bool = False) -> Generator[tuple[Any, Any], None, None]:
    """The source's micro-batches, as :func:`frames` gives them, each with the source's
    position after it (JSON-able, or bytes); from ``start``, a position given before, or the
    beginning. rillet's own sources know where they are (a file and an offset, a Kafka offset
    per partition, a Kinesis sequence number per shard); a DataFrame by its row; any other
    source by the number of batches it gave, so a resumed run reads it again from its start
    and passes over those batches (it must give the same ones again). ``durable``: the run
    checkpoints, so a source that records its progress elsewhere (Kafka's committed offsets)
    records it only for what a checkpoint holds (see ``runtime.durable``)."""
    if isinstance(source, (pl.LazyFrame,)) or (_is_arrow(source) and not isinstance(source, pl.DataFrame)):
        source = to_frame(source)
    if isinstance(source, pl.DataFrame):
        offset = int(start or 0)
        if offset > source.height:
            raise SourceError(
                f"the checkpoint was taken after row {offset:,} of the DataFrame this run reads, and "
                f"it has {source.height:,} rows: resume with the same rows, or give a new checkpoint path")
        if offset == 0 and source.height <= REPLAY_SLICE:
            yield source, source.height
            return
        for at in range(offset, source.height, REPLAY_SLICE):
            yield source.slice(at, REPLAY_SLICE), min(at + REPLAY_SLICE, source.height)
        return
    own = getattr(source, "positioned_chunks", None)
    if callable(own):
        yield from own(start, durable)
        return
    yield from counted(frames(source), start)


def counted(items: Iterator[Any], start: Any) -> Generator[tuple[Any, Any], None, None]:
    """Items numbered from 1 as positions, the first ``start`` of them passed over."""
    skip = int(start or 0)
    try:
        for n, item in enumerate(items, start=1):
            if n > skip:
                yield item, n
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()
