"""Warnings for runs that lose most of their rows without an error: a stream with no
watermark delay over out-of-order data, rows rejected en masse (a time format the engine does
not read), window layouts that leave rows in no window (docs/semantics.md, "Loss warnings").

Nothing is dropped by these checks: late and rejected rows stay in ``run.late`` and
``run.rejected``. The warnings say that they are there, why, and what would keep them."""
from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any

import polars as pl


class DataLossWarning(UserWarning):
    """A run (or a window spec) that leaves many rows out of its results without an error:
    most rows late because the stream has no watermark delay, most rows rejected, or a
    hopping window whose period is shorter than its step. The message names the cause and the
    fix. Silence it by fixing the cause, or with
    ``warnings.filterwarnings("ignore", category=rl.DataLossWarning)``."""

    __module__ = "rillet"  # tracebacks name it as users import it: rillet.DataLossWarning


#: A run with no explicit ``watermark=`` warns when more than this share of the rows that
#: reached the windows was late ...
LATE_SHARE = 0.10
#: ... and at least this many rows were late (a toy example with one late row stays quiet).
LATE_MIN_ROWS = 10
#: A run warns when more than this share of its rows was rejected (unparseable or null times)
#: and at least this many were, or when every row was (a run that aggregated nothing).
REJECTED_SHARE = 0.5
REJECTED_MIN_ROWS = 10
#: The quantile of ``late_by`` a suggested watermark delay covers.
SUGGESTED_QUANTILE = 0.99

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _inside(filename: str) -> bool:
    """Whether a code file belongs to rillet (its package or a subpackage)."""
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def warn(message: str) -> None:
    """Issues a :class:`DataLossWarning` attributed to the first caller outside rillet, so
    the warning points at the user's ``collect()`` / ``run()`` line."""
    level = 2  # 1 is this function's own line; 2 its caller's
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and _inside(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, DataLossWarning, stacklevel=level)


def run_warnings(metrics: dict[str, Any], late: Callable[[], pl.DataFrame | None],
                 rejected: Callable[[], pl.DataFrame], time_column: str, watermark_given: bool,
                 late_mode: str) -> list[str]:
    """The loss warnings a finished run deserves (an empty list for most runs). ``late`` and
    ``rejected`` give the run's late and rejected rows, read only when a warning needs them."""
    accepted = int(metrics.get("rows_accepted") or 0)
    n_late = int(metrics.get("rows_late") or 0)
    n_rejected = int(metrics.get("rows_rejected") or 0)
    judged = accepted + n_late + n_rejected
    if judged == 0:
        return []
    messages = []
    if n_rejected == judged or (n_rejected >= REJECTED_MIN_ROWS and n_rejected > REJECTED_SHARE * judged):
        messages.append(_rejected_message(n_rejected, judged, rejected(), time_column))
    reached = accepted + n_late
    if (not watermark_given and late_mode == "collect" and n_late >= LATE_MIN_ROWS
            and n_late > LATE_SHARE * reached):
        messages.append(_late_message(n_late, reached, late()))
    return messages


def _share(part: int, whole: int) -> str:
    pct = 100 * part / whole
    return f"{pct:.0f}%" if pct >= 1 else f"{pct:.1g}%"


def _rejected_message(n: int, judged: int, rejected: pl.DataFrame, time_column: str) -> str:
    reason = None
    if "reason" in rejected.columns and rejected.height:
        reason = rejected.get_column("reason").drop_nulls().head(1).to_list()
    if n == judged:
        msg = f"every row of this run ({n:,}) was rejected and none was aggregated"
    else:
        msg = f"{n:,} of {judged:,} rows of this run ({_share(n, judged)}) were rejected and not aggregated"
    if reason:
        msg += f". The first rejected row's reason: {reason[0]}"
    msg += ". They are kept in run.rejected, each with its reason."
    # Only a text time the engine could not read gets the parsing hint (not a null time, nor
    # one outside what the windows can place, whose reason says so).
    if reason and reason[0].startswith("unparseable time"):
        msg += (
            f" If the time column {time_column!r} holds text in a format rillet does not read "
            "(it reads ISO 8601 / RFC 3339), parse it before windowing, e.g. "
            f".with_columns(pl.col({time_column!r}).str.to_datetime('%d/%b/%Y:%H:%M:%S %z'))"
        )
    return msg


def _late_message(n: int, reached: int, late: pl.DataFrame | None) -> str:
    msg = (
        f"{n:,} of {reached:,} rows ({_share(n, reached)}) arrived after all their windows had "
        "closed and are not in the output (they are kept in run.late). The stream has no "
        "watermark delay (watermark=0 by default), so a row older than the newest row seen "
        "so far is late, and this input is out of order."
    )
    suggestion = suggested_watermark(late)
    if suggestion is not None:
        delay, longest = suggestion
        msg += (
            f" A delay of watermark={delay!r} would have accepted at least "
            f"{SUGGESTED_QUANTILE:.0%} of them (the most out-of-order row was {longest} behind; "
            "run.late's late_by column has each row's); windows are then emitted that much "
            "later."
        )
    else:
        msg += " Give the stream a watermark= delay as large as the input's disorder."
    msg += " Pass watermark= explicitly (watermark=0 keeps this behaviour) to silence this warning."
    return msg


def suggested_watermark(late: pl.DataFrame | None) -> tuple[str | int, str] | None:
    """A watermark delay covering ``SUGGESTED_QUANTILE`` of ``late.late_by`` (rounded up to a
    readable duration), and the largest ``late_by`` as text; None without late rows."""
    if late is None or "late_by" not in late.columns:
        return None
    late_by = late.get_column("late_by").drop_nulls()
    if not late_by.len():
        return None
    if late_by.dtype.is_integer():  # an integer time column: durations are integers too
        q = late_by.quantile(SUGGESTED_QUANTILE, "higher")
        return int(q) if q is not None else 0, str(late_by.max())
    ns = late_by.cast(pl.Duration("ns")).to_physical()
    q = ns.quantile(SUGGESTED_QUANTILE, "higher")
    return _round_up(int(q or 0)), _duration_text(int(ns.max() or 0))  # type: ignore[arg-type]  # an Int64 series' max is an int


_UNITS = (("d", 86_400 * 10**9), ("h", 3_600 * 10**9), ("m", 60 * 10**9), ("s", 10**9),
          ("ms", 10**6), ("us", 10**3), ("ns", 1))


def _round_up(ns: int) -> str:
    """``ns`` rounded up to a duration string of one unit (two above an hour): 579.2 s gives
    '10m', 42.1 s gives '43s', 0.35 s gives '350ms'."""
    if ns <= 0:
        return "1s"
    for name, size in _UNITS:
        if ns >= size * (2 if name in ("m", "h", "d") else 1):
            return f"{math.ceil(ns / size)}{name}"
    return f"{ns}ns"


def _duration_text(ns: int) -> str:
    parts = []
    for name, size in _UNITS[:4]:
        if ns >= size:
            parts.append(f"{ns // size}{name}")
            ns %= size
    if not parts:
        return f"{ns / 10**9:g}s"
    return "".join(parts)
