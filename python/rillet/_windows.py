"""Window specifications. A spec is configuration only: it is validated when built and turned
into engine parameters when the query meets its first batch (and so learns the time unit)."""
from __future__ import annotations

from dataclasses import dataclass

from rillet import _core
from rillet._errors import ConfigError
from rillet._time import DurationLike, to_units, validate_duration

_WEEK_ALIGN_NS = 4 * 86_400 * 10**9  # 1970-01-01 was a Thursday; weeks start on Monday


@dataclass(frozen=True)
class WindowSpec:
    """A fixed-duration window layout: windows of length `period` starting every `every`.

    Build one with :func:`tumbling` or :func:`hopping`.
    """

    kind: str
    period: DurationLike
    every: DurationLike
    offset: DurationLike | None = None
    tz: str | None = None

    def resolve(self, unit: str) -> tuple[int, int, int]:
        """(period, every, offset) in the time column's unit."""
        every = to_units(self.every, unit, f"{self.kind} window every")
        if self.kind == "tumbling":
            period = every
        else:
            period = to_units(self.period, unit, f"{self.kind} window period")
        if period <= 0 or every <= 0:
            raise ConfigError(
                f"{self.kind} window durations must be positive, got period={self.period!r}, "
                f"every={self.every!r}"
            )
        offset = to_units(self.offset, unit, f"{self.kind} window offset")
        if isinstance(self.every, str) and unit != "integer" and _core.is_whole_weeks(self.every):
            offset += _core.parse_duration(f"{_WEEK_ALIGN_NS}ns", unit, "week alignment")
        return period, every, offset

    def __repr__(self) -> str:
        if self.kind == "tumbling":
            body = f"{self.every!r}"
        else:
            body = f"period={self.period!r}, every={self.every!r}"
        if self.offset is not None:
            body += f", offset={self.offset!r}"
        return f"rl.{self.kind}({body})"


def _check_tz(tz: str | None) -> None:
    if tz not in (None, "UTC"):
        raise ConfigError(
            f"tz={tz!r}: time-zone aware calendar windows are not supported yet; fixed-duration "
            "windows are aligned to the UTC epoch, so leave tz unset (or 'UTC')"
        )


def tumbling(every: DurationLike, offset: DurationLike | None = None, tz: str | None = None) -> WindowSpec:
    """Back-to-back windows ``[start, start + every)``, aligned to the epoch plus ``offset``.

    Like Flink's TUMBLE and Kinesis Analytics' STEP; the same windows as polars'
    ``dt.truncate(every)``. Weeks (``"1w"``) start on Monday, as in polars.

    >>> import rillet as rl
    >>> rl.tumbling("1m")
    rl.tumbling('1m')
    """
    validate_duration(every, "tumbling window every")
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

    A row belongs to about ``period / every`` windows.

    >>> import rillet as rl
    >>> rl.hopping("5m", "1m")
    rl.hopping(period='5m', every='1m')
    """
    validate_duration(period, "hopping window period")
    validate_duration(every, "hopping window every")
    validate_duration(offset, "hopping window offset")
    _check_tz(tz)
    return WindowSpec("hopping", period, every, offset, tz)
