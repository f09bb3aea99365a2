"""Durations and time units: what the user writes, converted to the time column's unit."""
from __future__ import annotations

import datetime as dt

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SchemaError

DurationLike = str | dt.timedelta | int


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


def to_units(value: DurationLike | None, unit: str, what: str) -> int:
    """Converts a duration to a count of `unit`s ('ns', 'us', 'ms' or 'integer')."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration, got the boolean {value!r}")
    if isinstance(value, int):
        if unit != "integer" and value != 0:  # zero needs no unit
            raise ConfigError(
                f"{what}: the integer {value} is only a duration for an integer time column; "
                f"this time column holds datetimes, so give a string such as '{value}s' or a "
                "datetime.timedelta"
            )
        return value
    if isinstance(value, dt.timedelta):
        if unit == "integer":
            raise ConfigError(
                f"{what}: the time column is an integer column, so durations must be integers "
                f"(e.g. 10 or '10i'), not a timedelta"
            )
        us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return _core.parse_duration(f"{us}us", unit, what) if us >= 0 else -_core.parse_duration(
            f"{-us}us", unit, what
        )
    if isinstance(value, str):
        return _core.parse_duration(value, unit, what)
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
    """The instants an ISO 8601 / RFC 3339 text column holds, as the stream reads them
    (``parse_timestamp`` in src/time.rs, which the engine applies to a text ``time=``
    column): ``T`` or a space between date and time, seconds and fraction optional with
    minutes, ``Z`` or an offset, none meaning UTC, or a date alone (midnight UTC). Text the
    engine would reject ("unparseable time") is null. A ``Datetime("ns", "UTC")``.

    The engine's parser is not exposed to Python, so its formats are restated here as polars
    formats; tests/test_pacing.py checks both read the same instants.
    """
    text = (
        pl.col(column).str.strip_chars().str.to_uppercase()  # chrono takes t and z as T and Z
        .str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"Z$", "+00:00")
    )

    def parsed(fmt: str, offset: bool) -> pl.Expr:
        if offset:
            return text.str.to_datetime(fmt, time_unit="ns", time_zone="UTC", strict=False)
        return text.str.to_datetime(fmt, time_unit="ns", strict=False).dt.replace_time_zone("UTC")

    return pl.coalesce(
        parsed("%Y-%m-%dT%H:%M:%S%.f%z", True),
        parsed("%Y-%m-%dT%H:%M:%S%.f", False),
        parsed("%Y-%m-%dT%H:%M", False),
        parsed("%Y-%m-%d", False),
    ).alias(column)


def instant_to_python(value: int | None, dtype: pl.DataType) -> object:
    """Renders an engine instant as a Python value of the window columns' type."""
    if value is None:
        return None
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
