"""Durations and time units: what the user writes, converted to the time column's unit."""
from __future__ import annotations

import datetime as dt

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SchemaError

DurationLike = str | dt.timedelta | int

#: The range of the engine's 64-bit durations and instants.
I64_MIN, I64_MAX = -(2**63), 2**63 - 1


def validate_duration(value: DurationLike | None, what: str, calendar: bool = False) -> None:
    """Checks a duration early, when the query is built. `calendar` allows months."""
    if value is None or (isinstance(value, (int, dt.timedelta)) and not isinstance(value, bool)):
        return
    if isinstance(value, str):
        months = _core.duration_parts(value, what)[0]
        if months and not calendar:
            raise ConfigError(
                f"{what}: {value!r} is a calendar duration (mo, q, y) with no fixed length; use "
                "a fixed duration such as '30d' here"
            )
        return
    raise ConfigError(
        f"{what}: expected a duration such as '30s', a datetime.timedelta or an integer, "
        f"got {type(value).__name__} {value!r}"
    )


def time_unit_of(dtype: pl.DataType, column: str) -> tuple[str, pl.Expr | None]:
    """The engine unit for a time column, and a cast to apply first (or None)."""
    col = pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return dtype.time_unit or "us", None
    if dtype == pl.Date:
        return "us", col.cast(pl.Datetime("us"))
    if dtype.is_integer():
        return "integer", (None if dtype == pl.Int64 else col.cast(pl.Int64))
    if dtype == pl.String:
        return "us", None
    raise SchemaError(
        f"time column '{column}' has type {dtype}; use a Datetime, Date, integer, or ISO 8601 "
        "string column"
    )


def text_instants(column: str) -> pl.Expr:
    """The instants an ISO 8601 / RFC 3339 text column holds, read by the engine's own parser
    (as a text ``time=`` column is): a ``Datetime("us", "UTC")``, null where a query would
    reject the row as an unparseable time."""

    def parse(texts: pl.Series) -> pl.Series:
        return pl.Series(texts.name, _core.text_times(texts)).cast(pl.Datetime("us", "UTC"))

    return pl.col(column).map_batches(parse, return_dtype=pl.Datetime("us", "UTC")).alias(column)


_PER_SECOND = {"ns": 10**9, "us": 10**6, "ms": 10**3, "s": 1}
# Python's datetime holds years 1 to 9999 (seconds since 1970 of 0001-01-01 and 10000-01-01).
_PY_FIRST_S = -62_135_596_800
_PY_LAST_S = 253_402_300_800
_DAY_S = 86_400


def instant_to_python(value: int | None, dtype: pl.DataType, unit: str | None = None) -> object:
    """Renders an engine instant as a Python value of the window columns' type: a datetime,
    or, for an instant of ``unit`` outside the years Python's datetime holds (1 to 9999), its
    RFC 3339 text in UTC (``'+10000-01-01T00:00:00+00:00'``) rather than an error."""
    if value is None:
        return None
    unit = unit or getattr(dtype, "time_unit", None) or ""
    per = _PER_SECOND.get(unit)
    # A day's margin leaves room for any zone's offset when the column has one.
    margin = _DAY_S if getattr(dtype, "time_zone", None) not in (None, "UTC") else 0
    if per is not None and not (_PY_FIRST_S + margin) * per <= value < (_PY_LAST_S - margin) * per:
        return _core.format_instant(value, unit)
    return pl.Series([value], dtype=pl.Int64).cast(dtype).item()


def wall_ms(value: DurationLike, what: str) -> int:
    """A wall-clock duration (string or timedelta) in milliseconds."""
    if isinstance(value, dt.timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, str):
        return _core.parse_duration(value, "ms", what) if not value.strip().endswith(("us", "ns")) else (
            _core.parse_duration(value, "ns", what) // 1_000_000
        )
    raise ConfigError(f"{what}: expected a duration such as '10s' or a timedelta, got {value!r}")
