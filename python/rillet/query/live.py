"""Queries running in the background: ``q.start()`` returns a :class:`RunningQuery` whose
results can be looked at while the stream flows (a notebook stays responsive)."""
from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

import polars as pl

from rillet.views.display import (
    NEWEST_WINDOWS,
    RunningView,
    _Html,
    in_notebook,
    is_live,
    live,
    newest_windows,
    running_html,
    running_text,
    standing,
)

#: How often wait() looks up from waiting, so that Ctrl-C stops the waiting at once.
WAIT_SLICE_S = 0.1


class RunningQuery:
    """A query running in a background thread (``q.start()``).

    ``snapshot()`` is the latest value per window and key so far; ``output`` every row
    emitted so far; ``late``, ``rejected`` and ``metrics`` as on a finished run. ``stop()``
    ends the input as if the stream had ended there (the query's ``flush`` rule applies) and
    ``wait()`` returns the :class:`~rillet.Run`, raising what the run raised. Several can run
    at once; the engine releases the GIL while it works.

    In Jupyter the handle, as a cell's last expression, shows a view of the run that refreshes
    in place every second until it ends (:meth:`show`); in a terminal, :meth:`watch` and
    ``print(handle)`` show the same as text (docs/watching.md).
    """

    def __init__(self, query: Any, progress: bool | None = False, _worker: _Worker | None = None,
                 _index: int = 0, checkpoint: Any = None, checkpoint_every: Any = None) -> None:
        self._query = query
        w = query._w
        self._emit = w._emit
        self._keys = query._snapshot_keys()
        self._frames: list[pl.DataFrame] = []  # emitted, in order
        self._run: Any = None
        self._final_metrics: dict[str, Any] | None = None  # frozen when the run ends
        self._views: list[Any] = []  # live notebook views, given their final update by wait()
        self._warned = False  # wait() gave the run's loss warnings (rillet._loss)
        self._worker = _worker if _worker is not None else _Worker([query], progress, checkpoint, checkpoint_every)
        self._index = _index
        self._flow = self._worker.driver.flow
        self._at = self._flow.wanted[_index]  # this query in the flow
        self._ex = self._flow.execs[self._at]
        self._lock = self._worker.lock
        self._done = self._worker.done
        self._worker.handles.append(self)
        if _worker is None:
            self._worker.start()

    @property
    def _error(self) -> BaseException | None:
        return self._worker.error

    @property
    def _stopped(self) -> bool:
        return self._worker.driver.stopped

    def _result_locked(self) -> Any:
        """The run as it stands: the rows kept, with what the joins it reads kept."""
        run = self._ex.result(self._output_locked())
        run.late = self._flow.late_of(self._at, run.late)
        run.rejected = self._flow.rejected_of(self._at, run.rejected)
        run.metrics = self._metrics_locked(run.metrics)
        return run

    def _metrics_locked(self, own: dict[str, Any] | None = None) -> dict[str, Any]:
        m = self._flow.metrics_of(self._at, self._ex.metrics() if own is None else own)
        extra = self._flow.extra_metrics
        return {**m, **extra()} if extra is not None else m

    def _keep(self, out: pl.DataFrame) -> None:
        if out.height:
            self._frames.append(out)

    # -- looking at it --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True until the run has ended (input exhausted, stopped, or failed)."""
        return not self._done.is_set()

    @property
    def state(self) -> str:
        """``"running"``, ``"done"`` (the input ended), ``"stopped"`` (by :meth:`stop`) or
        ``"failed"`` (see :attr:`error`)."""
        if self.running:
            return "running"
        if self._error is not None:
            return "failed"
        return "stopped" if self._stopped else "done"

    @property
    def error(self) -> BaseException | None:
        """What the run raised, if it failed."""
        return self._error

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's counters as of the last batch (see ``Run.metrics``); once the run has
        ended, its final counters."""
        with self._lock:
            if self._final_metrics is not None:
                return dict(self._final_metrics)
            return self._metrics_locked()

    @property
    def late(self) -> pl.DataFrame:
        """Late rows so far."""
        with self._lock:
            return self._flow.late_of(self._at, self._ex.late_frame())

    @property
    def rejected(self) -> pl.DataFrame:
        """Rejected rows so far."""
        with self._lock:
            return self._flow.rejected_of(self._at, self._ex.rejected_frame())

    @property
    def output(self) -> pl.DataFrame:
        """Every row emitted so far, in emission order."""
        with self._lock:
            return self._output_locked()

    def _output_locked(self) -> pl.DataFrame:
        return pl.concat(self._frames, how="vertical") if self._frames else pl.DataFrame()

    def snapshot(self) -> pl.DataFrame:
        """The latest value per window and key so far: each window's last revision (amend),
        or the rows a changelog leaves standing (``+I``/``+U`` upserted, ``-U``/``-D``
        removed); in final mode, the windows emitted so far. Sorted by window, then key. A
        session amended after it grew or merged keeps its earlier bounds' rows too (amend
        rows carry no retraction); ``emit="changelog"`` retracts them. A sliding-window query
        has no window key: its snapshot is its output."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return pl.DataFrame()
        if self._keys is None:
            return pl.concat(frames, how="vertical")
        latest = standing(pl.concat(frames, how="vertical"), self._keys, self._emit)
        return latest.sort(["window_start", "window_end", *self._keys[:-2]], nulls_last=False)

    def plot(self, y: str | Sequence[str] | None = None, color: str | Sequence[str] | None = None,
             *, x: str | None = None, kind: str = "line", top: int | None = None,
             facet: str | None = None, title: str | None = None, live: bool = False,
             every: float = 1.0) -> Any:
        """A plotly Figure of the results so far (the snapshot), with the options of
        :meth:`Run.plot <rillet.Run.plot>`. ``live=True`` in Jupyter also shows it and
        redraws it in place every ``every`` seconds while the query runs; the figure returned
        is the one redrawn. Outside Jupyter ``live`` changes nothing."""
        from rillet.views.plot import figure, live_figure

        def make() -> Any:
            return figure(self.output, self._query, y, color, x=x, kind=kind, top=top,
                          facet=facet, title=title)

        if not live:
            return make()
        fig, view = live_figure(make, lambda: self.running, every, wake=self._done)
        if view is not None:
            self._views.append(view)  # wait() gives it its final update
        return fig

    # -- showing it ----------------------------------------------------------------------
    def _view(self, rows: int = NEWEST_WINDOWS) -> RunningView:
        """What the views show, taken under the lock at one moment."""
        with self._lock:
            state = self.state
            metrics = dict(self._final_metrics) if self._final_metrics is not None else self._metrics_locked()
            frames = list(self._frames)
        w = self._query._w
        return RunningView(
            state=state,
            metrics=metrics,
            newest=newest_windows(frames, self._keys, self._emit, rows),
            title=f"{w._spec!r}" + (f" by {', '.join(w._by)}" if w._by else "") + f", emit={w._emit!r}",
            live=is_live(self._query),
            error=self._error,
        )

    def _repr_html_(self) -> str:
        """The notebook view: a status line (state; rows in and rows/s, the average since the
        start; rows emitted, late and rejected; the event-time position, i.e. the largest
        event time seen; the watermark and the watermark lag, i.e. the event-time position
        minus the watermark, at least zero; for live sources also how far the watermark is
        behind the wall clock; open windows; state size), the error if the run failed, and
        the snapshot's newest windows (by window end, newest first)."""
        return running_html(self._view())

    def _ipython_display_(self) -> None:
        # IPython calls this when the handle is a cell's last expression or is display()ed.
        if in_notebook():
            self.show()
        else:
            print(self)

    def show(self, every: float = 1.0) -> Any:
        """Shows the view of :meth:`_repr_html_` in the notebook and refreshes it in place every
        ``every`` seconds while the run lasts; the last refresh shows the final state (a
        handle as a cell's last expression does this too). Outside Jupyter: :meth:`watch`."""
        if not in_notebook():
            return self.watch(every)
        view = live(lambda: self.running, lambda: _Html(self._repr_html_(), repr(self)), every,
                    wake=self._done)
        self._views.append(view)
        return view

    def watch(self, every: float = 1.0, file: TextIO | None = None) -> None:
        """Prints the text view (``str(handle)``) every ``every`` seconds until the run ends:
        redrawn in place with ANSI codes when ``file`` (default: standard output) is a
        terminal, a new block per refresh otherwise. Ctrl-C stops watching, not the query."""
        if not every > 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        out = sys.stdout if file is None else file
        tty = bool(getattr(out, "isatty", lambda: False)())
        drawn = 0  # lines of the last drawing, to move back over in a terminal
        try:
            while True:
                ended = not self.running
                text = str(self)
                if tty:
                    width = max(shutil.get_terminal_size().columns - 1, 20)
                    text = "\n".join(line[:width] for line in text.splitlines())
                    out.write((f"\x1b[{drawn}F\x1b[J" if drawn else "") + text + "\n")
                    drawn = text.count("\n") + 1
                else:
                    out.write(("\n" if drawn else "") + text + "\n")
                    drawn = 1
                out.flush()
                if ended:
                    return
                self._done.wait(every)
        except KeyboardInterrupt:
            out.write("\n(stopped watching; the query goes on: stop() ends it)\n")
            out.flush()

    def __str__(self) -> str:
        """The text view: the status lines of :meth:`_repr_html_` and the newest windows."""
        return running_text(self._view())

    # -- ending it ------------------------------------------------------------------------
    def stop(self, timeout: float | None = 10.0) -> Any:
        """Stops reading after the current batch, ends the run as if the input had ended there,
        and returns its :class:`~rillet.Run` (see :meth:`wait`)."""
        self._worker.stop.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> Any:
        """Waits for the run to end and returns its :class:`~rillet.Run`; raises what the run
        raised, or TimeoutError if it is still running after ``timeout`` seconds."""
        # In slices: polars' SIGINT handler restarts an untimed wait after Ctrl-C (SA_RESTART),
        # so a plain join() could not be interrupted until the run ended (for a tail: never).
        # On the event, not join(): Python 3.11 takes a join cut short by Ctrl-C for the end of
        # the thread (is_alive() turns False while it still runs).
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
            if left <= 0:
                break
            self._done.wait(left)
        if not self._done.is_set():
            raise TimeoutError(
                f"the query is still running after {timeout} s; call stop() to end it, or wait longer"
            )
        self._worker.thread.join(WAIT_SLICE_S)  # it ends right after setting done
        for view in self._views:
            view.finish()  # from this thread: a notebook records the final view before going on
        if self._error is not None:
            raise self._error
        if not self._warned:  # here, in the caller's thread, where warnings filters apply
            self._warned = True
            with self._lock:
                self._flow.warn_losses_of(self._at)
        return self._run

    def __repr__(self) -> str:
        m = self.metrics
        state = self.state
        return (
            f"<RunningQuery {state}: rows_in={m['rows_in']}, emitted={sum(f.height for f in self._frames)}, "
            f"late={m['rows_late']}, rejected={m['rows_rejected']}, watermark={m['watermark']}>"
        )


class _Worker:
    """The background thread of ``start``: one driver loop over the queries of its handles
    (``rl.start(q1, q2)`` reads the source once for both). The lock is held while a batch is
    processed, never while the source waits; stopping one handle stops the run."""

    def __init__(self, queries: Sequence[Any], progress: bool | None, checkpoint: Any = None,
                 checkpoint_every: Any = None) -> None:
        from rillet.runtime.driver import Driver

        self.handles: list[RunningQuery] = []
        self.driver = Driver(queries, progress, keep=False, checkpoint=checkpoint,
                             checkpoint_every=checkpoint_every,
                             kept_by=lambda: [h._frames for h in self.handles])
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.done = threading.Event()  # set when the run has ended, whatever the reason
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._work, name=f"rillet {queries[0]!r}"[:60], daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _work(self) -> None:

        flow = self.driver.flow

        def keep(outs: list[pl.DataFrame]) -> None:
            for handle, out in zip(self.handles, outs):
                handle._keep(out)

        ran = False
        try:
            for _ in self.driver.batches(deliver=keep, lock=self.lock, stop=self.stop):
                pass
            ran = True
        except BaseException as e:
            self.error = e
        finally:
            try:
                with self.lock:
                    for handle in self.handles:
                        if ran:
                            handle._run = handle._result_locked()
                            handle._run.interrupted = False
                        # Frozen, so rows/s does not keep falling after the end.
                        handle._final_metrics = (handle._run.metrics if handle._run is not None
                                                 else handle._metrics_locked())
                    if self.error is not None and hasattr(self.error, "runs"):
                        # The rows the handles kept, not the driver's (it hands them on).
                        runs = [h._result_locked() for h in self.handles]
                        self.error.run, self.error.runs = runs[0], runs  # type: ignore[attr-defined]
                del flow
            finally:
                self.done.set()


def start(*queries: Any, progress: bool | None = False, checkpoint: Any = None,
          checkpoint_every: Any = None) -> list[RunningQuery]:
    """Runs queries built on one stream in one background thread, reading its source once,
    and returns their handles in order (each as ``q.start()``'s); ``stop()`` on any of them
    ends the input for all::

        s = rl.stream(rl.tail_jsonl("app.log"), time="ts")
        errors, volume = rl.start(s.filter(pl.col("level") == "ERROR").window(rl.tumbling("1m")).agg(rl.count()),
                                  s.window(rl.tumbling("1m")).agg(rl.sum("bytes")))
    """
    worker = _Worker(queries, progress, checkpoint, checkpoint_every)
    handles = [RunningQuery(q, progress, _worker=worker, _index=i) for i, q in enumerate(queries)]
    worker.start()
    return handles
