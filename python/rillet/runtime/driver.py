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

import json
import threading
from collections.abc import Callable, Generator, Sequence
from contextlib import nullcontext
from typing import Any

import polars as pl

from rillet import _clock, _loss
from rillet._errors import ConfigError, LateDataError, SinkError
from rillet._interrupt import DeferInterrupt, Interrupted, carrying_run
from rillet._time import text_instants
from rillet.plan.plan import QueryBase as Query
from rillet.runtime.execution import Execution, Run
from rillet.sources.base import positioned

# The output columns whose lower bound a query knows, so its watermark can travel downstream.
_FLOOR_COLUMNS = ("window_start", "window_end")


def _is_join(source: Any) -> bool:
    return bool(getattr(source, "carries_watermark", False)) and not isinstance(source, Query)


def roots(query: Query) -> list[Any]:
    """The sources a query ultimately reads (through queries and joins it reads)."""
    source = query._w._stream._source
    if isinstance(source, Query):
        return roots(source)
    if _is_join(source):
        left, right = source.sides()
        return roots(left) + roots(right)
    return [source]


def root(query: Query) -> Any:
    """The source a query ultimately reads (the first, for a join)."""
    return roots(query)[0]


#: How a flow over several sources takes turns: "aligned" reads next the source whose rows
#: are furthest behind in event time (so state stays small), "round_robin" one batch of each
#: in turn, "in_order" each source to its end before the next. Results do not depend on it
#: (tests run them all); only memory and latency do.
INTERLEAVE = "aligned"

_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "integer": 1}


class JoinRun:
    """One run of a join of two streams: the core's join, fed the rows of the two queries
    that read its sides, with their late rows kept (with a ``side`` column)."""

    def __init__(self, node: Any, left: int, right: int) -> None:
        from rillet import _core

        self.node = node
        self.sides = (left, right)
        self.core = _core.StreamJoin(node.spec)
        self.times = (node.left._time, node.right._time)
        self.carried = tuple(json.loads(node.spec)["carried"])
        self.suffix = json.loads(node.spec)["suffix"]
        self.late_parts: tuple[list[pl.DataFrame], list[pl.DataFrame]] = ([], [])
        #: What happens to rows late for the join: the late= of the queries reading it
        #: ("raise" if one raises, "drop" if all drop, else "collect").
        self.late = "collect"
        self.side_ended = [False, False]
        self.ended = False
        self.emitted: pl.DataFrame | None = None  # this pass's output (several readers share it)

    def step(self, flow: Dataflow, outs: list[pl.DataFrame]) -> pl.DataFrame:
        parts = []
        for k, name in enumerate(("left", "right")):
            ex = flow.execs[self.sides[k]]
            rows = outs[self.sides[k]]
            if rows.width:  # an empty batch too: it tells the join the side's columns
                fed = rows
                if rows.schema.get(self.times[k]) == pl.String:
                    # ISO 8601 text: matched by the instants the engine reads from it.
                    fed = rows.with_columns(text_instants(self.times[k]))
                out, late = self.core.process(name, fed)
                parts.append(pl.DataFrame(out))
                late_df = pl.DataFrame(late)
                if late_df.height:
                    gathered = rows.select(pl.all().gather(late_df["row"]))
                    late_by = late_df["late_by"].cast(ex._late_by_dtype())
                    if self.late == "raise":
                        raise LateDataError(
                            f"{late_df.height} row(s) of the join's {name} stream came after its watermark "
                            f"(the first late by {late_by[0]}), and the query has late='raise'; the first: "
                            f"{gathered.row(0, named=True)}")
                    if self.late != "drop":
                        self.late_parts[k].append(gathered.with_columns(late_by.alias("late_by")))
            bound = ex.op is not None and ex.op.is_bound()
            if bound and self.carried[k]:
                # A side reading a query or join: its watermark is that one's.
                floor = ex.op.emitted_floor("row_time")
                if floor is not None:
                    parts.append(pl.DataFrame(self.core.advance_watermark(name, floor)))
            elif bound and not rows.height and not ex.ended:
                idle = ex._idle_instant()
                if idle is not None:
                    parts.append(pl.DataFrame(self.core.advance_watermark(name, idle)))
        for k, name in enumerate(("left", "right")):
            if flow.execs[self.sides[k]].ended and not self.side_ended[k]:
                self.side_ended[k] = True
                parts.append(pl.DataFrame(self.core.end(name)))
        if all(self.side_ended) and not self.ended:
            self.ended = True
            parts.append(pl.DataFrame(self.core.flush()))
        return _concat(parts)

    def snapshot(self, prefix: str, parts: dict[str, bytes]) -> dict[str, Any]:
        """The join's state for a checkpoint (its late rows are saved apart, as they grow)."""
        parts[f"{prefix}/core"] = self.core.snapshot()
        return {"side_ended": self.side_ended, "ended": self.ended}

    def restore(self, meta: dict[str, Any], prefix: str, parts: dict[str, bytes]) -> None:
        self.core.restore(parts[f"{prefix}/core"])
        self.side_ended = list(meta["side_ended"])
        self.ended = meta["ended"]

    def late_frame(self, flow: Dataflow) -> pl.DataFrame:
        """Both sides' late rows, with ``side``; the right side's columns named as in the
        join's output (a name the left stream has gets the suffix), so no value is cast."""
        return self._sided(flow, self.late_parts[0], self.late_parts[1])

    def rejected_frame(self, flow: Dataflow) -> pl.DataFrame:
        """The rows either side could not read, with ``side``."""
        return self._sided(flow, *[[r] if (r := flow.execs[i].rejected_frame()).height else []
                                   for i in self.sides])

    def _sided(self, flow: Dataflow, left: list[pl.DataFrame], right: list[pl.DataFrame]) -> pl.DataFrame:
        left_ex = flow.execs[self.sides[0]]
        taken = set(left_ex.empty_batch.columns) if left_ex.empty_batch is not None else set()
        parts = [p.with_columns(pl.lit("left").alias("side")) for p in left]
        for p in right:
            # Columns a plan added for its own use (a SQL outer join's copy of a key) are not
            # the side's rows.
            p = p.drop([c for c in p.columns if c.startswith("__rl_")])
            p = p.rename({c: f"{c}{self.suffix}" for c in p.columns
                          if c in taken and c not in ("late_by", "reason")})
            parts.append(p.with_columns(pl.lit("right").alias("side")))
        if not parts:
            return pl.DataFrame({"side": []}, schema={"side": pl.String})
        return pl.concat(parts, how="diagonal_relaxed")

    def metrics(self, flow: Dataflow) -> dict[str, Any]:
        m = dict(self.core.metrics())
        for k, name in enumerate(("left", "right")):
            m[f"rows_rejected_{name}"] = flow.execs[self.sides[k]].metrics()["rows_rejected"]
        return m

    def loss_warnings(self) -> list[str]:
        """A warning per side that lost most of its rows as late (as a stream with no
        ``watermark=`` does)."""
        m = dict(self.core.metrics())
        out = []
        for k, name in enumerate(("left", "right")):
            late, rows = m[f"rows_late_{name}"], m[f"rows_in_{name}"]
            stream = self.node.left if k == 0 else self.node.right
            # As for one stream: only when the stream's watermark= was left at its default.
            if (not stream._watermark_given and rows and late >= _loss.LATE_MIN_ROWS
                    and late / rows > _loss.LATE_SHARE):
                out.append(
                    f"{late:,} of {rows:,} rows of the join's {name} stream ({late / rows:.0%}) were late for "
                    f"its watermark (delay {stream._watermark!r}) and joined nothing; they are in run.late "
                    f"with side={name!r}. Give that stream a larger watermark= delay to join them (in SQL, "
                    f"pass the input as rl.stream(rows, time=..., watermark='1m'))")
        return out


class Dataflow:
    """The queries of one run, upstream first, over the sources they read (one, or one per
    input of a join), each read once."""

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
        nodes: list[Any] = []

        def visit(q: Query) -> None:
            upstream = q._w._stream._source
            if isinstance(upstream, Query):
                visit(upstream)
            elif _is_join(upstream):
                for side in upstream.sides():
                    visit(side)
                if not any(upstream is n for n in nodes):
                    nodes.append(upstream)
            if not any(q is o for o in order):
                order.append(q)

        for q in queries:
            visit(q)
        found: list[Any] = []
        for q in order:
            for src in roots(q):
                if not any(src is f for f in found):
                    found.append(src)
        if len(found) > 1 and not nodes:
            raise ConfigError(
                f"these queries read {len(found)} different sources; rl.run() reads one source once "
                "and feeds every query built on it: build them on one stream, e.g. "
                "s = rl.stream(src, time='ts'); rl.run(s.window(...).agg(...), s.window(...).agg(...))"
            )
        self.sources = found
        self.source = found[0]
        self.queries = order
        # Progress is shown once, by the first query that reads a source's rows itself.
        first = next(q for q in order if not isinstance(q._w._stream._source, Query)
                     and not _is_join(q._w._stream._source))
        self.execs: list[Execution] = [Execution(q, progress if q is first else False) for q in order]
        index = {id(q): i for i, q in enumerate(order)}
        self.joins = [JoinRun(n, index[id(n.sides()[0])], index[id(n.sides()[1])]) for n in nodes]
        for j, node in enumerate(nodes):
            modes = {q._w._late for q in order if q._w._stream._source is node}
            j_run = self.joins[j]
            j_run.late = "raise" if "raise" in modes else ("drop" if modes == {"drop"} else "collect")
        # Per query: ("source", source number), ("query", upstream query) or ("join", join).
        self.upstream: list[tuple[str, int]] = []
        self.floor_column: list[str | None] = []
        for q in order:
            up = q._w._stream._source
            if isinstance(up, Query):
                self.upstream.append(("query", index[id(up)]))
                self.floor_column.append(_floor_column(q, up))
            elif _is_join(up):
                self.upstream.append(("join", next(j for j, n in enumerate(nodes) if n is up)))
                self.floor_column.append(None)
            else:
                self.upstream.append(("source", next(k for k, f in enumerate(found) if f is up)))
                self.floor_column.append(None)
        self.wanted = [index[id(q)] for q in queries]
        self.source_ended = [False] * len(found)
        #: Counters of the run as a whole (a checkpointed run's), added to every query's.
        self.extra_metrics: Callable[[], dict[str, Any]] | None = None

    # -- checkpoints ----------------------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Every query's and join's state between micro-batches: JSON-able counters, and the
        engine's bytes by part name."""
        parts: dict[str, bytes] = {}
        meta = {
            "source_ended": self.source_ended,
            "execs": [ex.snapshot(f"exec{i}", parts) for i, ex in enumerate(self.execs)],
            "joins": [j.snapshot(f"join{k}", parts) for k, j in enumerate(self.joins)],
        }
        return meta, parts

    def restore(self, meta: dict[str, Any], parts: dict[str, bytes]) -> None:
        """Continues from :meth:`snapshot`'s state (in a new process, the same queries)."""
        self.source_ended = list(meta["source_ended"])
        for i, (ex, m) in enumerate(zip(self.execs, meta["execs"], strict=True)):
            ex.restore(m, f"exec{i}", parts)
        for k, (j, m) in enumerate(zip(self.joins, meta["joins"], strict=True)):
            j.restore(m, f"join{k}", parts)

    # -- reading --------------------------------------------------------------------------
    def frames(self, start: list[Any] | None = None) -> Generator[Any, None, None]:
        """Every source's micro-batches as (source number, batch); (number, None) when that
        source ends. One source is read as it comes; several take turns (``INTERLEAVE``).

        With ``start`` (a checkpointed run: each source's position, None for its start), the
        sources are read from there, and ``positions`` holds, for each, the position after
        the batch last yielded; a source that had ended is not read again."""
        self.positions = [None] * len(self.sources) if start is None else list(start)
        readers = [None if self.source_ended[k] else positioned(s, self.positions[k], start is not None)
                   for k, s in enumerate(self.sources)]
        live = [k for k, r in enumerate(readers) if r is not None]
        quiet: set[int] = set()
        turn = 0
        try:
            while live:
                sid = live[0] if len(self.sources) == 1 else self._pick(live, quiet, turn)
                turn += 1
                reader = readers[sid]
                assert reader is not None
                try:
                    item, position = next(reader)
                except StopIteration:
                    live.remove(sid)
                    quiet.discard(sid)
                    yield (sid, None)
                    continue
                self.positions[sid] = position
                frame = item if isinstance(item, pl.DataFrame) else getattr(item, "frame", None)
                if frame is not None and frame.height == 0:
                    quiet.add(sid)
                    if quiet.issuperset(live):
                        quiet.clear()
                else:
                    quiet.discard(sid)
                yield (sid, item)
        finally:
            for r in readers:
                if r is not None:
                    r.close()

    def _pick(self, live: list[int], quiet: set[int], turn: int) -> int:
        awake = [s for s in live if s not in quiet] or live
        if INTERLEAVE == "in_order":
            return awake[0]
        if INTERLEAVE == "round_robin":
            return awake[turn % len(awake)]
        # Aligned: the source furthest behind (a source not read yet first).
        return min(awake, key=lambda s: (self._progress(s), (s - turn) % len(self.sources)))

    def _progress(self, sid: int) -> float:
        times = []
        for ex, (kind, k) in zip(self.execs, self.upstream):
            if kind == "source" and k == sid:
                if ex.op is None or not ex.op.is_bound():
                    return float("-inf")
                t = ex.op.metrics().get("max_event_time")
                if t is None:
                    return float("-inf")
                times.append(t * _NS.get(ex.unit, 1))
        return min(times) if times else float("-inf")

    # -- stepping -------------------------------------------------------------------------
    def step(self, item: Any) -> list[pl.DataFrame]:
        """One micro-batch of one source (or its end) through every query; each query's
        output, in flow order."""
        sid, frame = item
        if frame is None:
            self.source_ended[sid] = True
        return self._pass(sid, frame)

    def finish(self) -> list[pl.DataFrame]:
        """The end of the input (of every source not ended yet), through every query in order."""
        for k in range(len(self.sources)):
            self.source_ended[k] = True
        return self._pass(None, None)

    def _pass(self, sid: int | None, frame: Any) -> list[pl.DataFrame]:
        outs: list[pl.DataFrame] = []
        now_us = _clock.now_us()  # one arrival time per read, whichever query stamps it
        for j in self.joins:
            j.emitted = None
        for i, (ex, (kind, k)) in enumerate(zip(self.execs, self.upstream)):
            if kind == "source":
                out = ex.step(frame, now_us) if k == sid and frame is not None else pl.DataFrame()
                done = self.source_ended[k]
            elif kind == "query":
                out = self._feed(ex, outs[k], self.execs[k], self.floor_column[i])
                done = self.execs[k].ended
            else:
                join = self.joins[k]
                if join.emitted is None:
                    join.emitted = join.step(self, outs)
                out = self._feed_join(ex, join)
                done = join.ended
            if done and not ex.ended:
                out = _concat([out, ex.finish()])
                ex.ended = True
            outs.append(out)
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

    @staticmethod
    def _feed_join(ex: Execution, join: JoinRun) -> pl.DataFrame:
        """A join's output into the query that reads it, then the join's watermark."""
        parts = []
        rows = join.emitted
        if rows is not None and rows.width:
            parts.append(ex.step(rows))
        if ex.op is not None and ex.op.is_bound():
            floor = join.core.emitted_floor()
            if floor is not None:
                parts.append(ex.carry(floor))
        return _concat(parts)

    def wanted_of(self, outs: list[pl.DataFrame]) -> list[pl.DataFrame]:
        return [outs[i] for i in self.wanted]

    def runs(self, outputs: Sequence[pl.DataFrame]) -> list[Run]:
        """The runs of the queries asked for, with these outputs: a query that reads a join
        also has the join's late rows and the rows its inputs rejected (with a ``side``
        column), and the counters of the join it reads (``join_*``)."""
        runs = []
        extra = self.extra_metrics() if self.extra_metrics is not None else {}
        for i, o in zip(self.wanted, outputs):
            run = self.execs[i].result(o)
            run.late = self.late_of(i, run.late)
            run.rejected = self.rejected_of(i, run.rejected)
            run.metrics = {**self.metrics_of(i, run.metrics), **extra}
            runs.append(run)
        return runs

    def late_of(self, i: int, own: pl.DataFrame) -> pl.DataFrame:
        """Query ``i``'s late rows with those of the joins it reads."""
        return self._with_joins(i, own, JoinRun.late_frame)

    def rejected_of(self, i: int, own: pl.DataFrame) -> pl.DataFrame:
        """Query ``i``'s rejected rows with those the joins' inputs rejected."""
        return self._with_joins(i, own, JoinRun.rejected_frame)

    def _with_joins(self, i: int, own: pl.DataFrame,
                    frame: Callable[[JoinRun, Dataflow], pl.DataFrame]) -> pl.DataFrame:
        joins = self._joins_above(i)
        if not joins:
            return own
        return pl.concat([p for p in (own, *(frame(j, self) for j in joins)) if p.width],
                         how="diagonal_relaxed")

    def metrics_of(self, i: int, own: dict[str, Any]) -> dict[str, Any]:
        """Query ``i``'s counters with those of the join it reads (its nearest), and every
        join's state in ``state_bytes``."""
        joins = self._joins_above(i)
        if not joins:
            return own
        m = dict(own)
        for key, value in joins[0].metrics(self).items():
            m[f"join_{key}"] = value
        m["state_bytes"] = m.get("state_bytes", 0) + sum(j.core.metrics()["state_bytes"] for j in joins)
        return m

    def _joins_above(self, i: int) -> list[JoinRun]:
        kind, k = self.upstream[i]
        if kind == "query":
            return self._joins_above(k)
        if kind == "join":
            j = self.joins[k]
            return [j, *self._joins_above(j.sides[0]), *self._joins_above(j.sides[1])]
        return []

    def warn_losses(self) -> None:
        for i in self.wanted:
            self.warn_losses_of(i)

    def warn_losses_of(self, i: int) -> None:
        self.execs[i].warn_losses()
        for j in self._joins_above(i):
            for message in j.loss_warnings():
                _loss.warn(message)

    def close(self) -> None:
        for ex in self.execs:
            ex.close()


def _rows_of(item: Any) -> int:
    """Input rows in one read of a source (the rows that parsed and those that did not)."""
    if item is None:
        return 0
    if isinstance(item, pl.DataFrame):
        return item.height
    bad = getattr(item, "bad", None)
    return item.frame.height + (bad.height if bad is not None else 0)


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

    def __init__(self, queries: Sequence[Query], progress: bool | None, keep: bool,
                 checkpoint: Any = None, checkpoint_every: Any = None, sinks: Sequence[Any] = (),
                 kept_by: Callable[[], list[list[pl.DataFrame]]] | None = None) -> None:
        self.flow = Dataflow(queries, progress)
        self.keep = keep  # gather every output (run, collect) rather than hand it on only
        n = len(self.flow.wanted)
        self.kept: list[list[pl.DataFrame]] = [[] for _ in range(n)]
        self.undelivered: list[pl.DataFrame] = [pl.DataFrame() for _ in range(n)]
        self.stopped = False  # stop was set before the input ended
        self.durable: Any = None
        #: Where the outputs are kept when not here (``start``'s handles keep their own): a
        #: checkpoint saves them, and a resumed run puts back what it had kept.
        self.kept_by = kept_by
        if checkpoint is not None:
            from rillet.runtime.durable import Durable

            self.durable = Durable(checkpoint, checkpoint_every, self.flow, sinks,
                                   keep or kept_by is not None)
            self.flow.extra_metrics = self.durable.metrics
        elif checkpoint_every is not None:
            raise ConfigError(
                f"checkpoint_every={checkpoint_every!r} needs checkpoint=, the directory the run's "
                "checkpoints go to, e.g. checkpoint='state/q1'")

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
        start = None
        if self.durable is not None:
            try:
                with lock if lock is not None else nullcontext():
                    start, kept = self.durable.resume()
                    for mine, theirs in zip(self._kept_lists(), kept):
                        mine.extend(theirs)
            except BaseException:
                self.durable.close()  # a refused resume lets the directory go at once
                raise
        source = carrying_run(self.flow.frames(start), self.so_far)
        try:
            for frame in source:
                yield self._step(lambda: self.flow.step(frame), deliver, lock)  # noqa: B023 - called at once
                if self.durable is not None:
                    self.durable.note(_rows_of(frame[1]))
                    if self.durable.due():
                        self._checkpoint(lock)
                if stop is not None and stop.is_set():
                    self.stopped = True
                    break
            if self.stopped and self.durable is not None:
                # Stopped with a checkpoint: saved as it stands, open windows kept open, so
                # the next run with the checkpoint goes on from here.
                self._checkpoint(lock)
                return
            yield self._step(self.flow.finish, deliver, lock)
            if self.durable is not None:
                self._checkpoint(lock)  # the run is complete: the next one resumes at its end
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
            if self.durable is not None:
                self.durable.close()

    def _checkpoint(self, lock: threading.Lock | None) -> None:
        """Saves a checkpoint between micro-batches (Ctrl-C held back while it is written)."""
        with DeferInterrupt() as held, (lock if lock is not None else nullcontext()):
            self.durable.save(self._kept_lists())
        held.raise_pending()

    def _kept_lists(self) -> list[list[pl.DataFrame]]:
        if self.keep:
            return self.kept
        return self.kept_by() if self.kept_by is not None else []

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
