"""Ctrl-C (or a notebook's interrupt) during a blocking run: the run stops at the next batch
boundary, its source is closed, and what it computed is kept in :class:`Interrupted`."""
from __future__ import annotations

import ctypes
import functools
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterator
from types import FrameType, TracebackType
from typing import Any, Self

from rillet._errors import RilletError


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
        #: With ``rl.run(q1, q2, ...)``: every query's run so far, in the order given.
        self.runs: list[Any] = [run]
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
    """Holds Ctrl-C back while one batch is processed (and delivered to a sink), or while a
    sink writes what it buffered, so an interrupt never leaves a batch half counted or a file
    half written: the engine's state, the rows kept and the metrics stay consistent.
    ``pending`` says one arrived; :meth:`raise_pending` delivers it. A second Ctrl-C while the
    work is still running is delivered at once. The SIGINT handler in place before, including
    a native one (polars'), is put back afterwards. Outside the main thread (where Python
    delivers signals) it does nothing."""

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._native: Any = None
        self._installed = False

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            try:
                # None: the handler was not installed from Python (an embedding application
                # handles Ctrl-C itself), and signal.signal could not put it back.
                if signal.getsignal(signal.SIGINT) is not None:
                    self._native = _native_action()
                    self._previous = signal.signal(signal.SIGINT, self._handle)
                    self._installed = True
            except (ValueError, OSError):  # not the main interpreter, or no SIGINT here
                pass
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            _restore_native_action(self._native)
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


# signal.signal() installs Python's own C-level handler, dropping one a native library put over
# it: polars registers one (chaining to Python's) so that Ctrl-C cancels a running polars
# query. The C-level action is saved before and put back after, as an opaque struct sigaction.
_SIGACTION_BYTES = 1024  # more than any platform's struct sigaction (152 bytes on Linux x86-64)


@functools.cache
def _sigaction() -> Any:
    if os.name != "posix":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sigaction
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


def _native_action() -> Any:
    """The process's C-level SIGINT action now, or None where it cannot be read."""
    sigaction = _sigaction()
    if sigaction is None:
        return None
    saved = ctypes.create_string_buffer(_SIGACTION_BYTES)
    return saved if sigaction(signal.SIGINT, None, saved) == 0 else None


def _restore_native_action(saved: Any) -> None:
    if saved is not None:
        _sigaction()(signal.SIGINT, saved, None)


def carrying_run(frames: Iterator[Any], runs: Callable[[], list[Any]]) -> Generator[Any, None, None]:
    """The source's micro-batches; a :class:`RilletError` raised while reading them (a file
    that cannot be read part way through a glob) carries the runs so far, as
    :class:`Interrupted` does: ``.run`` the first query's, ``.runs`` every query's."""
    try:
        yield from frames
    except RilletError as e:
        so_far = runs()
        e.run = so_far[0]  # type: ignore[attr-defined]  # the core's error classes take .run at runtime
        e.runs = so_far  # type: ignore[attr-defined]
        raise
