"""Ctrl-C (or a notebook's interrupt) during a blocking run: the run stops at the next batch
boundary, its source is closed, and what it computed is kept in :class:`Interrupted`."""
from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Self


class Interrupted(KeyboardInterrupt):
    """A blocking run (``collect``, ``run``, ``iter``, ``for_each``, ``to_*``) was interrupted
    by Ctrl-C or a notebook's interrupt. It is a ``KeyboardInterrupt``, so code that stops on
    Ctrl-C still stops; ``.run`` is a :class:`~rillet.Run` of what was computed before it:

    - ``run.output``: every row emitted so far (``collect``, ``run``); for ``iter`` the rows of
      a batch emitted but not yet yielded, for ``for_each`` and ``to_*`` none (they went to
      the function or sink, which writes what it buffered);
    - ``run.late``, ``run.rejected`` and ``run.metrics`` as of the last batch processed.

    Open windows are not flushed: an interrupt is not the end of the input. The source is
    closed (files, sockets, consumers) before this is raised::

        try:
            out = q.collect()
        except rl.Interrupted as e:
            out = e.run.output
    """

    __module__ = "rillet"  # tracebacks name it as users import it: rillet.Interrupted

    def __init__(self, run: Any) -> None:
        self.run = run
        m = run.metrics
        when = ("open windows were not flushed" if getattr(run, "interrupted", True)
                else "after the input had ended, so the run is complete")
        super().__init__(
            f"interrupted after {m.get('rows_in', 0):,} input rows "
            f"({run.output.height:,} output rows kept, {run.late.height:,} late, "
            f"{run.rejected.height:,} rejected; {when}). What was computed is in this "
            "exception's .run: catch it with `except rl.Interrupted as e: e.run`, or in a "
            "notebook use `sys.last_value.run`"
        )


class DeferInterrupt:
    """Holds Ctrl-C back while one batch is processed (and delivered to a sink), so an
    interrupt never leaves a batch half counted: the engine's state, the rows kept and the
    metrics stay consistent. ``pending`` says one arrived; :meth:`raise_pending` delivers it.
    A second Ctrl-C while the batch is still running is delivered at once. Outside the main
    thread (where Python delivers signals) it does nothing."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handle)
                self._installed = True
            except (ValueError, OSError):  # not the main interpreter, or no SIGINT here
                pass
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._previous is signal.SIG_IGN:
            return
        if self.pending:  # pressed again: stop now
            self.pending = False
            self._deliver(signum, frame)
            return
        self.pending = True

    def raise_pending(self) -> None:
        """Delivers a held-back interrupt as the handler in place before would have."""
        if self.pending:
            self.pending = False
            self._deliver(signal.SIGINT, None)

    def _deliver(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous
        if callable(previous):
            previous(signum, frame)  # the default handler raises KeyboardInterrupt
        elif previous is not signal.SIG_IGN:
            raise KeyboardInterrupt
