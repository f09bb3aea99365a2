"""Window specifications. A spec is configuration only: it is validated when built and turned
into engine parameters when the query meets its first batch (and so learns the time unit and
the time column's zone)."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from rillet import _core
from rillet._errors import ConfigError
from rillet._time import DurationLike, validate_duration

_DAY_NS = 86_400 * 10**9
# The most windows one row may belong to (the engine's MAX_WINDOWS_PER_ROW; see
# docs/windows.md): each is a pane to update and an output row per key.
MAX_WINDOWS_PER_ROW = 10_000


@dataclass(frozen=True)
class WindowSpec:
    """A window layout. Build one with :func:`tumbling`, :func:`hopping` or :func:`cumulative`."""

    kind: str
    period: DurationLike | None  # None only for a session without max_duration
    every: DurationLike
    offset: DurationLike | None = None
    tz: str | None = None
    #: kind "rows" (a query without aggregates): the windows that list its rows, if any.
    inner: WindowSpec | None = None
    #: kind "sliding": "right" ((t - period, t]) or "both" ([t - period, t]).
    closed: str | None = None
    #: kind "sliding" over rows: how many of the key's rows before each row its window holds.
    rows: int | None = None

    def resolve(self, unit: str, column_tz: str | None = None) -> dict[str, Any]:
        """The layout in a time column of ``unit`` ('ns', 'us', 'ms' or 'integer') whose zone
        is ``column_tz``, as the core resolves it (src/plan.rs)."""
        from rillet.plan.plan import layout

        return layout(self, unit, column_tz)

    def __repr__(self) -> str:
        if self.kind == "tumbling":
            body = f"{self.every!r}"
        elif self.kind == "sliding" and self.rows is not None:
            body = f"rows={self.rows!r}"
        elif self.kind == "sliding" and self.closed is not None:
            body = f"{self.period!r}, closed={self.closed!r}"
        elif self.kind == "sliding":
            body = f"{self.period!r}"
        elif self.kind == "stagger":
            body = f"{self.every!r}"
        elif self.kind == "session":
            body = f"{self.every!r}" + ("" if self.period is None else f", max_duration={self.period!r}")
        elif self.kind == "cumulative":
            body = f"period={self.period!r}, step={self.every!r}"
        else:
            body = f"period={self.period!r}, every={self.every!r}"
        if self.offset is not None:
            body += f", offset={self.offset!r}"
        if self.tz is not None:
            body += f", tz={self.tz!r}"
        return f"rl.{self.kind}({body})"


def _span(value: DurationLike) -> tuple[str, int] | None:
    """A duration as (kind, amount): ("months", n), ("ns", n) or ("int", n); None when it mixes
    months with a fixed span or is not positive (other checks report those)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return ("int", value) if value > 0 else None
    if isinstance(value, dt.timedelta):
        ns = value // dt.timedelta(microseconds=1) * 1000
        return ("ns", ns) if ns > 0 else None
    if isinstance(value, str):
        months, weeks, days, nanos, index, negative = _core.duration_parts(value, "window")
        fixed = (weeks * 7 + days) * _DAY_NS + nanos
        if negative or (months and fixed):
            return None
        kind, amount = ("int", index) if index else (("months", months) if months else ("ns", fixed))
        return (kind, amount) if amount > 0 else None
    return None


def _shortest(kind: str, amount: int) -> str:
    """The shortest round duration of at least ``amount`` (months, nanoseconds or an integer)."""
    if kind == "months":
        return f"'{amount}mo'"
    if kind == "int":
        return str(amount)
    for unit, ns in (("d", _DAY_NS), ("h", 3_600 * 10**9), ("m", 60 * 10**9), ("s", 10**9),
                     ("ms", 10**6), ("us", 10**3)):
        if amount >= ns:
            return f"'{-(-amount // ns)}{unit}'"
    return f"'{amount}ns'"


def _check_windows_per_row(kind: str, period: DurationLike, every: DurationLike) -> None:
    """Refuses, before any row, a layout that puts more than ``MAX_WINDOWS_PER_ROW`` windows on
    a row (each is a pane to update and an output row per key)."""
    p, e = _span(period), _span(every)
    if p is None or e is None or p[0] != e[0]:
        return  # units known only with the time column: the engine checks them
    count = -(-p[1] // e[1])
    limit = MAX_WINDOWS_PER_ROW
    if count > limit:
        what = "step" if kind == "cumulative" else "every"
        raise ConfigError(
            f"rl.{kind}({period!r}, {every!r}) would put {count:,} windows on every row "
            f"(period / {what}), more than the limit of {limit:,}: each is a pane to update and "
            f"an output row per key. Use {what}={_shortest(p[0], -(-p[1] // limit))} or longer, "
            "or a shorter period"
        )


def _check_tz(tz: str | None) -> None:
    if tz is None:
        return
    if not isinstance(tz, str):
        raise ConfigError(f"tz= takes an IANA time zone name such as 'Europe/Paris', got {tz!r}")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(
            f"unknown time zone {tz!r}; use an IANA name such as 'Europe/Paris', "
            "'America/New_York' or 'UTC'"
        ) from e


def tumbling(every: DurationLike, offset: DurationLike | None = None, tz: str | None = None) -> WindowSpec:
    """Back-to-back windows ``[start, start + every)``, aligned to the epoch plus ``offset``.

    Like Flink's TUMBLE and Kinesis Analytics' STEP; the same windows as polars'
    ``dt.truncate(every)``. Calendar units (``"1d"``, ``"1w"``, ``"1mo"``, ``"1q"``, ``"1y"``)
    follow ``tz`` (by default the time column's zone) and are DST-correct; weeks start on
    Monday.

    >>> import rillet as rl
    >>> rl.tumbling("1m")
    rl.tumbling('1m')
    """
    validate_duration(every, "tumbling window every", calendar=True)
    validate_duration(offset, "tumbling window offset")
    _check_tz(tz)
    return WindowSpec("tumbling", every, every, offset, tz)


def hopping(
    period: DurationLike,
    every: DurationLike,
    offset: DurationLike | None = None,
    tz: str | None = None,
) -> WindowSpec:
    """Windows ``[start, start + period)`` starting every ``every`` (Flink HOP).

    A row belongs to about ``period / every`` windows; more than 10,000
    (``rl.hopping("1d", "1s")``) is refused with a ``ConfigError`` before any row, as each
    is a pane to update and an output row per key.

    The length comes first (Flink's HOP and Kinesis take the slide first): a ``period``
    shorter than ``every`` leaves rows in no window, and issues a
    :class:`~rillet.DataLossWarning` naming the swapped call.

    >>> import rillet as rl
    >>> rl.hopping("5m", "1m")
    rl.hopping(period='5m', every='1m')
    """
    validate_duration(period, "hopping window period", calendar=True)
    validate_duration(every, "hopping window every", calendar=True)
    validate_duration(offset, "hopping window offset")
    _check_tz(tz)
    _check_windows_per_row("hopping", period, every)
    if _shorter(period, every):
        from rillet._loss import warn

        warn(
            f"rl.hopping({period!r}, {every!r}) makes windows of {period!r} starting every "
            f"{every!r}, so the rows between one window's end and the next one's start fall in "
            "no window and are counted nowhere. rillet takes (period, every), the window's "
            "length first; Flink's HOP and Kinesis take the slide first. For windows of "
            f"{every!r} sliding by {period!r}, write rl.hopping({every!r}, {period!r}). To "
            "sample on purpose, silence this with "
            "warnings.filterwarnings('ignore', category=rl.DataLossWarning)."
        )
    return WindowSpec("hopping", period, every, offset, tz)


def _shorter(period: DurationLike, every: DurationLike) -> bool:
    """Whether ``period`` is certainly shorter than ``every`` (False when they cannot be
    compared: a calendar month against a fixed span, an integer against a time)."""
    a, b = _comparable(period), _comparable(every)
    if a is None or b is None or a[0] != b[0]:
        return False
    return a[1] < b[1]


def _comparable(value: DurationLike) -> tuple[str, int] | None:
    """(kind, length): months, fixed nanoseconds or integer units; None if mixed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "integer", value
    if isinstance(value, dt.timedelta):
        return "fixed", ((value.days * 86_400 + value.seconds) * 10**6 + value.microseconds) * 1_000
    if isinstance(value, str):
        try:
            months, weeks, days, nanos, index, negative = _core.duration_parts(value, "duration")
        except ConfigError:
            return None
        fixed = (weeks * 7 + days) * _DAY_NS + nanos
        if negative or (months and fixed):
            return None
        if index:
            return "integer", index
        return ("months", months) if months else ("fixed", fixed)
    return None


def cumulative(period: DurationLike, step: DurationLike, offset: DurationLike | None = None) -> WindowSpec:
    """Windows that grow by ``step`` from the start of each ``period`` (Flink CUMULATE):
    ``[start, start + k * step)`` for k = 1 .. period / step. A row belongs to up to
    ``period / step`` windows; more than 10,000 (``rl.cumulative("365d", "1s")``) is refused
    with a ``ConfigError`` before any row.

    >>> import rillet as rl
    >>> rl.cumulative("1h", "10m")
    rl.cumulative(period='1h', step='10m')
    """
    validate_duration(period, "cumulative window period")
    validate_duration(step, "cumulative window step")
    validate_duration(offset, "cumulative window offset")
    _check_windows_per_row("cumulative", period, step)
    return WindowSpec("cumulative", period, step, offset, None)


def session(gap: DurationLike, max_duration: DurationLike | None = None) -> WindowSpec:
    """Per-key sessions: rows no more than ``gap`` apart share a session, whose window is
    ``[first, last + gap)`` (Flink and Spark session windows). Two rows exactly ``gap`` apart
    share a session; a row that bridges two sessions, late ones included, merges them.
    ``max_duration`` caps a session's span: a row that would stretch a session beyond it
    starts a new session instead.

    >>> import rillet as rl
    >>> rl.session("30s")
    rl.session('30s')
    """
    validate_duration(gap, "session gap")
    validate_duration(max_duration, "session max_duration")
    return WindowSpec("session", max_duration, gap, None, None)


def stagger(range: DurationLike) -> WindowSpec:
    """Per-key windows that open at a key's first row and last ``range`` from it (Kinesis
    Analytics' ``WINDOWED BY STAGGER``): a row joins the open window of its key whose
    ``[start, start + range)`` holds its time, or opens ``[t, t + range)``. Windows are
    emitted when the watermark passes their end, so a key's rows are not split at a clock
    boundary, as tumbling windows split them. A row whose own window would already be closed
    is late. Which row opens a window follows arrival order (as in Kinesis), whatever the
    batch sizes.

    >>> import rillet as rl
    >>> rl.stagger("1m")
    rl.stagger('1m')
    """
    validate_duration(range, "stagger range")
    return WindowSpec("stagger", range, range, None, None)


def sliding(period: DurationLike | None = None, closed: str = "right", *, rows: int | None = None) -> WindowSpec:
    """One output row per input row, aggregating the same key's rows with time in
    ``(t - period, t]`` (polars' ``rolling``), or in ``[t - period, t]`` with
    ``closed="both"`` (SQL's and Kinesis Analytics' ``RANGE INTERVAL ... PRECEDING``, which
    holds the row exactly ``period`` before). Rows are emitted in event-time order once the
    watermark has passed their time; each carries its ``by`` values and its time column
    instead of window bounds.

    ``rows=n`` instead looks back over rows (SQL's ``ROWS n PRECEDING``): each row's window
    is the row and the ``n`` rows of its key before it in event-time order, rows with the
    same time taken in arrival order. Such a window only comes out final (``emit="final"``):
    a row arriving behind emitted ones would shift every later window by a row.

    >>> import rillet as rl
    >>> rl.sliding("5m")
    rl.sliding('5m')
    >>> rl.sliding(rows=9)
    rl.sliding(rows=9)
    """
    if rows is not None:
        if period is not None:
            raise ConfigError(
                f"a sliding window looks back over a period or over rows, not both: write "
                f"rl.sliding({period!r}) or rl.sliding(rows={rows!r})"
            )
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ConfigError(
                f"sliding(rows=...) is how many earlier rows each row's window holds, a whole "
                f"number >= 0 (rows=9: the row and the nine before it), got {rows!r}"
            )
        if closed != "right":
            raise ConfigError("closed= is for a sliding window over a period; a window of rows holds the "
                              "row and the rows before it")
        return WindowSpec("sliding", None, rows, None, None, rows=rows)
    if period is None:
        raise ConfigError(
            "a sliding window looks back over a period (rl.sliding('5m')) or a number of rows "
            "(rl.sliding(rows=10)): give one"
        )
    validate_duration(period, "sliding window period")
    if closed not in ("right", "both"):
        raise ConfigError(
            f"sliding(closed=...) is 'right' ((t - period, t], as polars' rolling) or 'both' "
            f"([t - period, t], as SQL's RANGE ... PRECEDING), got {closed!r}"
        )
    return WindowSpec("sliding", period, period, None, None, closed=None if closed == "right" else closed)
