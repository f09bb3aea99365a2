"""Aggregate specifications: what to compute per window and key."""
from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from rillet._errors import ConfigError, SchemaError


@dataclass(frozen=True)
class Agg:
    """One aggregate of a query. Build with :func:`count`, :func:`sum`, ... and rename with
    :meth:`alias`."""

    kind: str
    column: str | pl.Expr | None
    where: pl.Expr | None
    name: str

    def alias(self, name: str) -> Agg:
        """The same aggregate under another output column name."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"alias needs a non-empty string, got {name!r}")
        return replace(self, name=name)

    def input_name(self) -> str | None:
        """The name of the input column (or expression output)."""
        if self.column is None:
            return None
        if isinstance(self.column, str):
            return self.column
        return self.column.meta.output_name()

    def __repr__(self) -> str:
        arg = "" if self.column is None else repr(self.input_name())
        where = "" if self.where is None else f", where={self.where}"
        return f"rl.{self.kind}({arg}{where}).alias({self.name!r})"


def _make(kind: str, column: str | pl.Expr | None, where: pl.Expr | None, suffix: str) -> Agg:
    if column is not None and not isinstance(column, (str, pl.Expr)):
        raise ConfigError(
            f"rl.{kind}() takes a column name or a polars expression, got {type(column).__name__}"
        )
    if where is not None and not isinstance(where, pl.Expr):
        raise ConfigError(
            f"rl.{kind}(where=...) takes a boolean polars expression such as "
            f"pl.col('error_code').is_not_null(), got {type(where).__name__}"
        )
    if column is None:
        name = kind
    else:
        base = column if isinstance(column, str) else column.meta.output_name()
        name = f"{base}_{suffix}"
    return Agg(kind, column, where, name)


def count(column: str | pl.Expr | None = None, *, where: pl.Expr | None = None) -> Agg:
    """Rows per window (``count``), or non-null values of a column (``{col}_count``)."""
    return _make("count", column, where, "count")


def sum(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:  # noqa: A001
    """Sum of non-null values (``{col}_sum``); compensated for floats; null over no values."""
    return _make("sum", column, where, "sum")


def mean(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Mean of non-null values (``{col}_mean``); null over no values."""
    return _make("mean", column, where, "mean")


def min(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:  # noqa: A001
    """Smallest non-null value (``{col}_min``); NaN only if every value is NaN."""
    return _make("min", column, where, "min")


def max(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:  # noqa: A001
    """Largest non-null value (``{col}_max``); NaN only if every value is NaN."""
    return _make("max", column, where, "max")


def engine_input(agg: Agg, dtype: pl.DataType) -> tuple[pl.DataType | None, pl.DataType | None]:
    """(dtype to cast the input to before the engine, dtype to cast the result back to)."""
    name = agg.input_name()
    if agg.kind == "count":
        return None, None
    if agg.kind in ("sum", "mean"):
        if dtype.is_integer() or dtype == pl.Boolean:
            return (pl.Int64, None) if agg.kind == "sum" else (pl.Float64, None)
        if dtype.is_float():
            return pl.Float64, None
        if agg.kind == "mean" and dtype.is_temporal():
            raise SchemaError(
                f"rl.mean({name!r}): mean of a {dtype} column is not supported; cast it to a "
                "number first"
            )
    if agg.kind in ("min", "max"):
        if dtype.is_integer() or dtype == pl.Boolean:
            return pl.Int64, (None if dtype == pl.Int64 else dtype)
        if dtype.is_float():
            return pl.Float64, (None if dtype == pl.Float64 else dtype)
        if dtype.is_temporal():
            return pl.Int64, dtype
    raise SchemaError(
        f"rl.{agg.kind}({name!r}) needs a numeric column, but {name!r} is {dtype}; cast it "
        "with .with_columns(pl.col(...).cast(pl.Float64)) first"
    )
