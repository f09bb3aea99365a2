"""Queries running in the background: ``q.start()`` returns a :class:`RunningQuery` whose
results can be looked at while the stream flows (a notebook stays responsive)."""
from __future__ import annotations

import threading
from typing import Any

import polars as pl


class RunningQuery:
    """A query running in a background thread (``q.start()``).

    ``snapshot()`` is the latest value per window and key so far; ``output`` every row
    emitted so far; ``late``, ``rejected`` and ``metrics`` as on a finished run. ``stop()``
    ends the input as if the stream had ended there (the query's ``flush`` rule applies) and
    ``wait()`` returns the :class:`~rillet.Run`, raising what the run raised. Several can run
    at once; the engine releases the GIL while it works.
    """

    def __init__(self, query: Any, progress: bool | None = False) -> None:
        from rillet._stream import _Execution

        self._query = query
        w = query._w
        self._emit = w._emit
        self._keys = [*w._by, "window_start", "window_end"] if w._spec.kind != "sliding" else None
        self._ex = _Execution(query, progress)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._frames: list[pl.DataFrame] = []  # emitted, in order
        self._emitted = 0
        self._error: BaseException | None = None
        self._run: Any = None
        self._thread = threading.Thread(target=self._work, name=f"rillet {query!r}"[:60], daemon=True)
        self._thread.start()

    # -- the worker -----------------------------------------------------------------------
    def _work(self) -> None:
        from rillet._stream import Run

        ex = self._ex
        source = ex.frames()
        try:
            for frame in source:
                # The lock is held while a batch is processed, never while the source waits.
                with self._lock:
                    self._keep(ex.step(frame))
                if self._stop.is_set():
                    break
            with self._lock:
                self._keep(ex.finish())
                self._run = Run(self._output_locked(), ex.late_frame(), ex.rejected_frame(), ex.metrics())
        except BaseException as e:  # noqa: BLE001 - surfaced by wait(), error and the display
            self._error = e
        finally:
            source.close()  # a live source lets go of its files, sockets and consumers
            ex.close()

    def _keep(self, out: pl.DataFrame) -> None:
        if out.height:
            self._frames.append(out)
            self._emitted += out.height

    # -- looking at it --------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True until the run has ended (input exhausted, stopped, or failed)."""
        return self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """What the run raised, if it failed."""
        return self._error

    @property
    def metrics(self) -> dict[str, Any]:
        """The run's counters as of the last batch (see ``Run.metrics``)."""
        with self._lock:
            return self._ex.metrics()

    @property
    def late(self) -> pl.DataFrame:
        """Late rows so far."""
        with self._lock:
            return self._ex.late_frame()

    @property
    def rejected(self) -> pl.DataFrame:
        """Rejected rows so far."""
        with self._lock:
            return self._ex.rejected_frame()

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
        latest = _latest(pl.concat(frames, how="vertical"), self._keys, self._emit)
        return latest.sort(["window_start", "window_end", *self._keys[:-2]], nulls_last=False)

    # -- ending it ------------------------------------------------------------------------
    def stop(self, timeout: float | None = 10.0) -> Any:
        """Stops reading after the current batch, ends the run as if the input had ended there,
        and returns its :class:`~rillet.Run` (see :meth:`wait`)."""
        self._stop.set()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> Any:
        """Waits for the run to end and returns its :class:`~rillet.Run`; raises what the run
        raised, or TimeoutError if it is still running after ``timeout`` seconds."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(
                f"the query is still running after {timeout} s; call stop() to end it, or wait longer"
            )
        if self._error is not None:
            raise self._error
        return self._run

    def __repr__(self) -> str:
        m = self.metrics
        state = "failed" if self._error is not None else "running" if self.running else "done"
        return (
            f"<RunningQuery {state}: rows_in={m['rows_in']}, emitted={self._emitted}, "
            f"late={m['rows_late']}, rejected={m['rows_rejected']}, watermark={m['watermark']}>"
        )


def _latest(df: pl.DataFrame, keys: list[str], emit: str) -> pl.DataFrame:
    """The standing rows of an output stream: the last row per key, less retracted ones."""
    last = df.unique(subset=keys, keep="last", maintain_order=True)
    if emit == "changelog":
        return last.filter(pl.col("op").is_in(["+I", "+U"]))
    return last
