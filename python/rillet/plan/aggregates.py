"""Aggregate specifications: what to compute per window and key."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import polars as pl

from rillet._errors import ConfigError

#: Bounds of integer options, so that a huge Python int is a ConfigError naming the option
#: rather than an OverflowError from the engine.
MAX_K = 2**32 - 1
MAX_CAPACITY = 2**40
MAX_DDOF = 2**32 - 1


@dataclass(frozen=True)
class Agg:
    """One aggregate of a query. Build with :func:`count`, :func:`sum`, ... and rename with
    :meth:`alias`."""

    kind: str
    column: str | pl.Expr | None
    where: pl.Expr | None
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    weight: str | pl.Expr | None = None

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
        args = [] if self.column is None else [repr(self.input_name())]
        # Parameters as keywords (each is a keyword of the function that built it).
        args += [f"{k}={v!r}" for k, v in self.options.items() if not (k == "approx" and v is False)]
        if self.weight is not None:
            w = self.weight if isinstance(self.weight, str) else self.weight.meta.output_name()
            args.append(f"weight={w!r}")
        if self.where is not None:
            args.append(f"where={self.where}")
        return f"rl.{self.kind}({', '.join(args)}).alias({self.name!r})"


def _make(kind: str, column: str | pl.Expr | None, where: pl.Expr | None, suffix: str,
          options: dict[str, Any] | None = None, weight: str | pl.Expr | None = None) -> Agg:
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
    return Agg(kind, column, where, name, dict(options or {}), weight)


def count(column: str | pl.Expr | None = None, *, where: pl.Expr | None = None) -> Agg:
    """Rows per window (``count``), or non-null values of a column (``{col}_count``)."""
    return _make("count", column, where, "count")


def sum(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Sum of non-null values (``{col}_sum``); compensated for floats; null over no values.

    A float sum that overflows is ``inf`` (or ``-inf``); the positive and the negative values
    are summed apart, so one that overflows both ways is NaN whatever the order of the rows
    (see docs/aggregates.md).
    """
    return _make("sum", column, where, "sum")


def mean(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Mean of non-null values (``{col}_mean``); null over no values."""
    return _make("mean", column, where, "mean")


def min(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Smallest non-null value (``{col}_min``); NaN only if every value is NaN."""
    return _make("min", column, where, "min")


def max(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Largest non-null value (``{col}_max``); NaN only if every value is NaN."""
    return _make("max", column, where, "max")


def var(column: str | pl.Expr, ddof: int = 1, *, where: pl.Expr | None = None) -> Agg:
    """Variance with ``ddof`` delta degrees of freedom (``{col}_var``); null under ``ddof + 1``
    values. Numerically stable (shifted Welford, merged with Chan's formula)."""
    return _make("var", column, where, "var", {"ddof": _ddof(ddof)})


def std(column: str | pl.Expr, ddof: int = 1, *, where: pl.Expr | None = None) -> Agg:
    """Standard deviation with ``ddof`` (``{col}_std``); null under ``ddof + 1`` values."""
    return _make("std", column, where, "std", {"ddof": _ddof(ddof)})


def _ddof(ddof: int) -> int:
    if not isinstance(ddof, int) or isinstance(ddof, bool) or not 0 <= ddof <= MAX_DDOF:
        raise ConfigError(
            f"ddof must be an integer from 0 to {MAX_DDOF:,} (2**32 - 1; 0 or 1 usually), got {ddof!r}"
        )
    return ddof


def first(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """The value of the earliest row by event time, ties by arrival (``{col}_first``)."""
    return _make("first", column, where, "first")


def last(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """The value of the latest row by event time, ties by arrival (``{col}_last``)."""
    return _make("last", column, where, "last")


def count_distinct(column: str | pl.Expr, *, where: pl.Expr | None = None) -> Agg:
    """Exact number of distinct non-null values (``{col}_count_distinct``)."""
    return _make("count_distinct", column, where, "count_distinct")


def approx_count_distinct(column: str | pl.Expr, precision: int = 14, *,
                          where: pl.Expr | None = None) -> Agg:
    """HyperLogLog distinct count (``{col}_approx_count_distinct``): exact while a window holds
    at most 2^precision / 2 distinct values (8,192 at the default 14), then within about
    1.04 / sqrt(2^precision) relative standard error (0.8% at 14). Merging is exact."""
    if not isinstance(precision, int) or isinstance(precision, bool) or not 4 <= precision <= 18:
        raise ConfigError(f"precision must be an integer from 4 to 18 (14 by default), got {precision!r}")
    return _make("approx_count_distinct", column, where, "approx_count_distinct",
                 {"precision": precision})


def _quantile_suffix(q: float) -> str:
    return f"q{q * 100:g}"


def _check_q(q: Any, fn: str) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0.0 <= q <= 1.0:
        raise ConfigError(f"{fn}: q must be a number in [0, 1] (e.g. 0.99), got {q!r}")
    return float(q)


#: The ways an exact quantile picks its value, as polars' ``interpolation=`` names them.
INTERPOLATIONS = ("nearest", "lower", "higher", "midpoint", "linear", "equiprobable")


def _interpolation(method: Any, fn: str) -> dict[str, str]:
    if method not in INTERPOLATIONS:
        raise ConfigError(f"{fn}: interpolation must be one of {', '.join(map(repr, INTERPOLATIONS))}, "
                          f"got {method!r}")
    return {} if method == "nearest" else {"interpolation": method}


@overload
def quantile(column: str | pl.Expr, q: float, *, interpolation: str = "nearest",
             where: pl.Expr | None = None) -> Agg: ...
@overload
def quantile(column: str | pl.Expr, q: Sequence[float], *, interpolation: str = "nearest",
             where: pl.Expr | None = None) -> list[Agg]: ...
def quantile(column: str | pl.Expr, q: float | Sequence[float], *, interpolation: str = "nearest",
             where: pl.Expr | None = None) -> Agg | list[Agg]:
    """Exact quantile (``{col}_q{q*100}``), by polars' ``interpolation`` methods: with ``n``
    values and ``p = (n - 1) * q``, ``"nearest"`` (the default) takes the value at rank
    ``round(p)``, ``"lower"``/``"higher"`` at ``floor(p)``/``ceil(p)``, ``"midpoint"`` their
    mean, ``"linear"`` interpolates between them (SQL's ``PERCENTILE_CONT``), and
    ``"equiprobable"`` takes rank ``ceil(q * n) - 1`` (SQL's ``PERCENTILE_DISC``; over an
    integer column it keeps the column's type). A list of ``q`` gives one aggregate per
    quantile."""
    if isinstance(q, Sequence) and not isinstance(q, str):
        return [quantile(column, _check_q(x, "rl.quantile"), interpolation=interpolation, where=where)
                for x in q]
    q = _check_q(q, "rl.quantile")
    return _make("quantile", column, where, _quantile_suffix(q),
                 {"q": q, **_interpolation(interpolation, "rl.quantile")})


def median(column: str | pl.Expr, *, interpolation: str = "nearest",
           where: pl.Expr | None = None) -> Agg:
    """Exact median (``{col}_median``): ``quantile(col, 0.5, interpolation=...)``. By
    default it picks the nearest middle value; polars' ``median()`` and SQL's ``MEDIAN``
    average the two middle values, which is ``interpolation="linear"``."""
    return _make("quantile", column, where, "median",
                 {"q": 0.5, **_interpolation(interpolation, "rl.median")})


@overload
def approx_quantile(column: str | pl.Expr, q: float, relative_error: float = 0.01,
                    *, where: pl.Expr | None = None) -> Agg: ...
@overload
def approx_quantile(column: str | pl.Expr, q: Sequence[float], relative_error: float = 0.01,
                    *, where: pl.Expr | None = None) -> list[Agg]: ...
def approx_quantile(column: str | pl.Expr, q: float | Sequence[float], relative_error: float = 0.01,
                    *, where: pl.Expr | None = None) -> Agg | list[Agg]:
    """Approximate quantile from a mergeable DDSketch (``{col}_q{q*100}``): the result is within
    ``relative_error`` of a true value of that rank, after any merges. A list of ``q`` gives
    one aggregate per quantile."""
    if isinstance(q, Sequence) and not isinstance(q, str):
        return [approx_quantile(column, _check_q(x, "rl.approx_quantile"), relative_error, where=where) for x in q]
    q = _check_q(q, "rl.approx_quantile")
    if isinstance(relative_error, bool) or not isinstance(relative_error, (int, float)) or not 1e-12 <= relative_error < 1:
        raise ConfigError(
            f"relative_error must be at least 1e-12 (finer than floats can hold) and below 1, "
            f"e.g. 0.01; got {relative_error!r}"
        )
    return _make("approx_quantile", column, where, _quantile_suffix(q),
                 {"q": q, "relative_error": float(relative_error)})


def top_k(column: str | pl.Expr, k: int, weight: str | pl.Expr | None = None, approx: bool = False,
          *, where: pl.Expr | None = None, capacity: int | None = None) -> Agg:
    """The ``k`` most frequent values (``{col}_top_k``): a list of structs ``{value, count}``
    (``{value, weight}`` with ``weight=``), count descending then value ascending. Nulls are
    not items. ``approx=True`` uses a Space-Saving summary of ``capacity`` counters (default
    max(10k, 1000)) and adds an ``error`` field: ``count`` is an upper bound and
    ``count - error`` a lower bound; any item above N / capacity is present. Integer weights
    give Int64 totals, summed as Float64 (exact up to 2**53); a total beyond the Int64 range
    saturates at its bound (9,223,372,036,854,775,807); cast the weight to Float64 to see such
    totals unclipped."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"rl.top_k: k must be an integer from 1 to {MAX_K:,} (2**32 - 1), got {k!r}")
    if not isinstance(approx, bool):
        raise ConfigError(f"rl.top_k: approx must be True or False, got {approx!r}")
    if capacity is not None and (isinstance(capacity, bool) or not isinstance(capacity, int)
                                 or not k <= capacity <= MAX_CAPACITY):
        raise ConfigError(
            f"rl.top_k: capacity must be an integer from k ({k}) to {MAX_CAPACITY:,} (2**40), "
            f"got {capacity!r}"
        )
    if weight is not None and not isinstance(weight, (str, pl.Expr)):
        raise ConfigError(f"rl.top_k: weight takes a column name or expression, got {weight!r}")
    opts: dict[str, Any] = {"k": k, "approx": approx}
    if capacity is not None:
        opts["capacity"] = capacity
    return _make("top_k", column, where, "top_k", opts, weight)


_I64_MAX = 2**63 - 1


def _saturate(value: pl.Expr) -> pl.Expr:
    """A Float64 total as Int64, held at the Int64 bounds beyond them."""
    return (pl.when(value >= 2.0**63).then(pl.lit(_I64_MAX, pl.Int64))
            .when(value < -(2.0**63)).then(pl.lit(-_I64_MAX - 1, pl.Int64))
            .otherwise(value.cast(pl.Int64, strict=False)))


def cast_back(name: str, dtype: pl.DataType) -> pl.Expr:
    """The engine's result column ``name`` cast to the type the user expects. A top_k list
    whose integer weights the engine summed as Float64 comes back with Int64 totals that
    saturate at the Int64 bounds (as no Int64 can hold more) instead of failing the cast and
    losing every window of the batch."""
    inner = dtype.inner if isinstance(dtype, pl.List) else None
    if isinstance(inner, pl.Struct):
        ints = [f.name for f in inner.fields if f.name in ("weight", "error") and f.dtype == pl.Int64]
        if ints:
            held = pl.element().struct.with_fields(**{f: _saturate(pl.field(f)) for f in ints})
            return pl.col(name).list.eval(held).cast(dtype)
    return pl.col(name).cast(dtype)
