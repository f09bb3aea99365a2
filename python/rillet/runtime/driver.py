"""The one loop that runs queries.

A :class:`Dataflow` is the queries of one run: those asked for and the queries they read
(``rl.stream(q, ...)``), in order, upstream first. It reads the source once; each micro-batch
goes to every query built on the source, and each query's output goes to the queries that
read it, followed by its watermark (the core's ``emitted_floor``), so chained windows close as
the input advances. :class:`Driver` runs a dataflow: ``collect``, ``run``, ``iter``,
``for_each``, the sinks, ``start`` and ``rl.run`` / ``rl.start`` are all this loop
(docs/architecture.md draws it, with where checkpoint barriers and partitions will sit).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import nullcontext
from typing import Any

import polars as pl

from rillet import _clock
from rillet._errors import ConfigError, LateDataError, SinkError
from rillet._interrupt import DeferInterrupt, Interrupted, carrying_run
from rillet.plan.plan import QueryBase as Query
from rillet.runtime.execution import Execution, Run
from rillet.sources.base import frames

# The output columns whose lower bound a query knows, so its watermark can travel downstream.
_FLOOR_COLUMNS = ("window_start", "window_end")


def root(query: Query) -> Any:
    """The source a query ultimately reads (through any queries it is chained to)."""
    source = query._w._stream._source
    while isinstance(source, Query):
        source = source._w._stream._source
    return source


class Dataflow:
    """The queries of one run, upstream first, over one source read once."""

    def __init__(self, queries: Sequence[Query], progress: bool | None) -> None:
        if not queries:
            raise ConfigError("give at least one query, e.g. rl.run(q1, q2)")
        for q in queries:
            if not isinstance(q, Query):
                raise ConfigError(
                    f"rl.run() and rl.start() take queries (a stream with .window(...).agg(...)), got "
                    f"{type(q).__name__} {q!r}"
                )
        order: list[Query] = []

        def visit(q: Query) -> None:
            upstream = q._w._stream._source
            if isinstance(upstream, Query):
                visit(upstream)
            if not any(q is o for o in order):
                order.append(q)

        for q in queries:
            visit(q)
        sources = {id(root(q)): root(q) for q in order}
        if len(sources) > 1:
            raise ConfigError(
                f"these queries read {len(sources)} different sources; rl.run() reads one source once "
                "and feeds every query built on it: build them on one stream, e.g. "
                "s = rl.stream(src, time='ts'); rl.run(s.window(...).agg(...), s.window(...).agg(...))"
            )
        self.source = next(iter(sources.values()))
        self.queries = order
        # Progress is shown once, by the first query that reads the source's rows itself.
        first = next(q for q in order if not isinstance(q._w._stream._source, Query))
        self.execs: list[Execution] = [Execution(q, progress if q is first else False) for q in order]
        self.upstream: list[int | None] = []
        self.floor_column: list[str | None] = []
        for q in order:
            up = q._w._stream._source
            if isinstance(up, Query):
                i = next(j for j, o in enumerate(order) if o is up)
                self.upstream.append(i)
                self.floor_column.append(_floor_column(q, up))
            else:
                self.upstream.append(None)
                self.floor_column.append(None)
        self.wanted = [next(j for j, o in enumerate(order) if o is q) for q in queries]

    def frames(self) -> Generator[Any, None, None]:
        return frames(self.source)

    def step(self, frame: Any) -> list[pl.DataFrame]:
        """One micro-batch through every query; each query's output, in flow order."""
        outs: list[pl.DataFrame] = []
        now_us = _clock.now_us()  # one arrival time per read, whichever query stamps it
        for ex, up in zip(self.execs, self.upstream):
            if up is None:
                outs.append(ex.step(frame, now_us))
            else:
                outs.append(self._feed(ex, outs[up], self.execs[up], self.floor_column[len(outs)]))
        return outs

    def finish(self) -> list[pl.DataFrame]:
        """The end of the input, through every query in order."""
        outs: list[pl.DataFrame] = []
        for ex, up in zip(self.execs, self.upstream):
            if up is None:
                outs.append(ex.finish())
            else:
                fed = self._feed(ex, outs[up], self.execs[up], None)
                outs.append(_concat([fed, ex.finish()]))
            ex.ended = True
        return outs

    @staticmethod
    def _feed(ex: Execution, rows: pl.DataFrame, upstream: Execution, column: str | None) -> pl.DataFrame:
        """An upstream query's output into a downstream one, then the upstream's watermark."""
        parts = []
        if rows.width:
            parts.append(ex.step(rows))
        if column is not None and upstream.op is not None and ex.op is not None and ex.op.is_bound():
            floor = upstream.op.emitted_floor(column)
            if floor is not None:
                parts.append(ex.carry(floor))
        return _concat(parts)

    def wanted_of(self, outs: list[pl.DataFrame]) -> list[pl.DataFrame]:
        return [outs[i] for i in self.wanted]

    def runs(self, outputs: Sequence[pl.DataFrame]) -> list[Run]:
        """The runs of the queries asked for, with these outputs."""
        return [self.execs[i].result(o) for i, o in zip(self.wanted, outputs)]

    def warn_losses(self) -> None:
        for i in self.wanted:
            self.execs[i].warn_losses()

    def close(self) -> None:
        for ex in self.execs:
            ex.close()


def _floor_column(q: Query, upstream: Query) -> str:
    """The column of ``upstream``'s output whose lower bound becomes ``q``'s watermark."""
    time = q._w._stream._time
    floors = upstream._floors
    if time not in floors:
        raise ConfigError(
            f"rl.stream(query, time={time!r}): the event time of a query's output is one of "
            f"its window bounds, {' or '.join(repr(a) for a in floors)}, whose watermark travels "
            "with the rows; to window on another column, collect the query first"
        )
    return floors[time]


def _concat(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    parts = [p for p in parts if p.width]
    if not parts:
        return pl.DataFrame()
    if len(parts) == 1:
        return parts[0]
    full = [p for p in parts if p.height]
    return pl.concat(full, how="vertical") if full else parts[-1]


class Driver:
    """Runs a dataflow: reads the source, steps every query, hands each step's outputs on,
    and ends the input. Ctrl-C is held back while a batch is processed and delivered, then
    stops the run with :class:`~rillet.Interrupted` carrying what was computed; an error while
    reading the source carries the run so far the same way."""

    def __init__(self, queries: Sequence[Query], progress: bool | None, keep: bool) -> None:
        self.flow = Dataflow(queries, progress)
        self.keep = keep  # gather every output (run, collect) rather than hand it on only
        n = len(self.flow.wanted)
        self.kept: list[list[pl.DataFrame]] = [[] for _ in range(n)]
        self.undelivered: list[pl.DataFrame] = [pl.DataFrame() for _ in range(n)]
        self.stopped = False  # stop was set before the input ended

    def so_far(self) -> list[Run]:
        """The runs as they stand: kept outputs plus what was computed but not delivered."""
        return self.flow.runs([_concat([*k, u]) for k, u in zip(self.kept, self.undelivered)])

    def outputs(self) -> list[pl.DataFrame]:
        return [_concat(k) for k in self.kept]

    def batches(self, deliver: Callable[[list[pl.DataFrame]], None] | None = None,
                lock: threading.Lock | None = None,
                stop: threading.Event | None = None) -> Generator[list[pl.DataFrame], None, None]:
        """Runs the flow, yielding each step's outputs (one per query asked for). ``deliver``
        takes them while Ctrl-C is held back (a sink's write); ``lock`` is held while a batch
        is processed, never while the source waits; ``stop`` ends the input early."""
        source = carrying_run(self.flow.frames(), self.so_far)
        try:
            for frame in source:
                yield self._step(lambda: self.flow.step(frame), deliver, lock)  # noqa: B023 - called at once
                if stop is not None and stop.is_set():
                    self.stopped = True
                    break
            yield self._step(self.flow.finish, deliver, lock)
        except (LateDataError, SinkError) as e:
            # A late row under late="raise", or a sink that cannot write, stops the run between
            # rows that were all accounted for: the error carries the runs up to it, as one
            # while reading the source does. (An input the plan cannot bind carries none.)
            if not hasattr(e, "runs"):
                runs = self.so_far()
                e.run, e.runs = runs[0], runs  # type: ignore[union-attr]  # the core's error classes take .run at runtime
            raise
        except KeyboardInterrupt:
            # Ctrl-C in a polars call raises twice (polars' own KeyboardInterrupt, then Python's
            # at the next call): the second one is absorbed here.
            try:
                source.close()
            except KeyboardInterrupt:
                source.close()
            runs = self.so_far()
            stopped = Interrupted(runs[0])
            stopped.runs = runs  # every query's, in the order given
            raise stopped from None
        finally:
            source.close()  # also when the consumer stops early: files, sockets, consumers
            self.flow.close()

    def _step(self, produce: Callable[[], list[pl.DataFrame]],
              deliver: Callable[[list[pl.DataFrame]], None] | None,
              lock: threading.Lock | None) -> list[pl.DataFrame]:
        empty = [pl.DataFrame() for _ in self.undelivered]
        with DeferInterrupt() as held, (lock if lock is not None else nullcontext()):
            self.undelivered = self.flow.wanted_of(produce())
            if self.keep:
                for k, out in zip(self.kept, self.undelivered):
                    if out.width:
                        k.append(out)
                outs, self.undelivered = self.undelivered, empty
            elif deliver is not None:
                deliver(self.undelivered)
                outs, self.undelivered = self.undelivered, empty
            else:
                outs = self.undelivered
        held.raise_pending()
        self.undelivered = empty
        return outs
