"""Every exception class, raised where the contract says, with a message that says what was
wrong and what would be right (asserted on key words, not on exact wording)."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator

import polars as pl
import pytest

import rillet as rl

DF = pl.DataFrame({
    "t": [1, 2, 15],
    "k": ["a", "b", "a"],
    "s": ["x", "y", "z"],
    "x": [1, 2, 3],
    "l": [[1], [2], [3]],
})
DDF = pl.DataFrame({"t": [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 30)], "x": [1, 2]})


def q_int(**window: object) -> rl.Windowed:
    return rl.stream(DF, time="t").window(rl.tumbling(10), **window)  # type: ignore[arg-type]


def q_dt(spec: rl.WindowSpec, **window: object) -> rl.Windowed:
    kw = {"lateness": "0s", **window}
    return rl.stream(DDF, time="t", watermark="0s").window(spec, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cls", [rl.SchemaError, rl.ConfigError, rl.SourceError, rl.SinkError, rl.LateDataError]
)
def test_every_error_is_a_rillet_error(cls: type) -> None:
    assert issubclass(cls, rl.RilletError)
    assert issubclass(rl.RilletError, Exception)
    assert cls is not rl.RilletError


def _raises(cls: type[Exception], fn: Callable[[], object], *words: str) -> str:
    with pytest.raises(cls) as info:
        fn()
    msg = str(info.value)
    for w in words:
        assert re.search(w, msg, flags=re.IGNORECASE), f"{w!r} not in {msg!r}"
    return msg


# -- SchemaError ----------------------------------------------------------------------------
SCHEMA_CASES: dict[str, tuple[Callable[[], object], tuple[str, ...]]] = {
    "missing time column": (
        lambda: rl.stream(DF, time="when").window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("'when'", "not found", "columns", "'t'"),
    ),
    "missing key column": (
        lambda: q_int(by="region").agg(rl.count()).collect(),
        ("'region'", "not found", "'k'"),
    ),
    "missing aggregate column": (
        lambda: q_int().agg(rl.sum("bytes")).collect(),
        ("bytes", "not found", "'x'"),
    ),
    "sum of a string column": (
        lambda: q_int().agg(rl.sum("s")).collect(),
        (r"rl\.sum\('s'\)", "numeric", "String", "cast"),
    ),
    "mean of a string column": (
        lambda: q_int().agg(rl.mean("s")).collect(),
        (r"rl\.mean\('s'\)", "numeric", "cast"),
    ),
    "max of a string column": (
        lambda: q_int().agg(rl.max("s")).collect(),
        (r"rl\.max\('s'\)", "numeric"),
    ),
    "non-boolean where": (
        lambda: q_int().agg(rl.count(where=pl.col("x")).alias("n")).collect(),
        ("where", "'n'", "boolean", "Int64"),
    ),
    "where on a missing column": (
        lambda: q_int().agg(rl.count(where=pl.col("zz") > 1)).collect(),
        ("where", "zz"),
    ),
    "float time column": (
        lambda: rl.stream(DF.with_columns(pl.col("t").cast(pl.Float64)), time="t")
        .window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("time column 't'", "Float64", "Datetime", "integer", "ISO 8601"),
    ),
    "schema changes mid-stream": (
        lambda: rl.stream([DF, DF.with_columns(pl.col("x").cast(pl.Float64))], time="t")
        .window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("schema changed", "x", "Float64", "same columns"),
    ),
    "group by a list column": (
        lambda: q_int(by="l").agg(rl.count()).collect(),
        ("'l'", "List", "string, integer"),
    ),
    "filter on a missing column": (
        lambda: rl.stream(DF, time="t").filter(pl.col("zz") > 1)
        .window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("filter", "zz"),
    ),
}


@pytest.mark.parametrize("name", sorted(SCHEMA_CASES))
def test_schema_error(name: str) -> None:
    fn, words = SCHEMA_CASES[name]
    _raises(rl.SchemaError, fn, *words)


# -- ConfigError ----------------------------------------------------------------------------
CONFIG_CASES: dict[str, tuple[Callable[[], object], tuple[str, ...]]] = {
    "bad duration string": (
        lambda: rl.tumbling("5 minutes"),
        ("5 minutes", "duration", "'30s'"),
    ),
    "bad watermark string": (
        lambda: rl.stream(DF, time="t", watermark="five"),
        ("watermark", "five", "duration"),
    ),
    "negative lateness": (
        lambda: q_int(lateness=-1).agg(rl.count()).collect(),
        ("lateness", "negative", "0"),
    ),
    "negative watermark": (
        lambda: rl.stream(DF, time="t", watermark=-1).window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("watermark", "negative"),
    ),
    "unknown emit mode": (
        lambda: q_int(emit="eventually"),
        ("eventually", "final", "amend"),
    ),
    "early with final": (
        lambda: q_int(early="10s"),
        ("early", "amend", "changelog"),
    ),
    "early as an integer": (
        lambda: q_int(emit="amend", early=10),
        ("early", "wall-clock", "'10s'"),
    ),
    "unknown late mode": (
        lambda: q_int(late="ignore"),
        ("ignore", "collect", "drop", "raise"),
    ),
    "duplicate default names": (
        lambda: q_int().agg(rl.count(), rl.count()),
        ("'count'", "twice", "alias"),
    ),
    "alias collides with an aggregate": (
        lambda: q_int().agg(rl.count(), rl.sum("x").alias("count")),
        ("'count'", "twice", "alias"),
    ),
    "aggregate named like a key": (
        lambda: q_int(by="k").agg(rl.count().alias("k")),
        ("'k'", "twice"),
    ),
    "aggregate named window_end": (
        lambda: q_int().agg(rl.count().alias("window_end")),
        ("window_end", "twice"),
    ),
    "aggregate named revision in amend mode": (
        lambda: q_int(emit="amend").agg(rl.count().alias("revision")),
        ("revision", "twice"),
    ),
    "int duration with datetime column": (
        lambda: q_dt(rl.tumbling(10)).agg(rl.count()).collect(),
        ("integer 10", "datetimes", "'10s'", "timedelta"),
    ),
    "time-span string with integer column": (
        lambda: rl.stream(DF, time="t").window(rl.tumbling("10s")).agg(rl.count()).collect(),
        ("integer", "'10i'"),
    ),
    "timedelta with integer column": (
        lambda: rl.stream(DF, time="t").window(rl.tumbling(dt.timedelta(seconds=10)))
        .agg(rl.count()).collect(),
        ("integer", "timedelta"),
    ),
    "index duration with datetime column": (
        lambda: q_dt(rl.tumbling("10i")).agg(rl.count()).collect(),
        ("'10i'", "index", "'30s'"),
    ),
    "calendar watermark": (
        lambda: rl.stream(DF, time="t", watermark="1mo"),
        ("watermark", "calendar", "fixed"),
    ),
    "calendar months mixed with days": (
        lambda: q_dt(rl.tumbling("1mo15d")).agg(rl.count()).collect(),
        ("mixes calendar months", "one or the other"),
    ),
    "unknown time zone": (
        lambda: rl.tumbling("1h", tz="Mars/Olympus"),
        ("Mars/Olympus", "IANA"),
    ),
    "calendar window on integer time": (
        lambda: rl.stream(DF, time="t").window(rl.tumbling("1mo")).agg(rl.count()).collect(),
        ("integer",),
    ),
    "idle_timeout on integer time": (
        lambda: rl.stream(DF, time="t", idle_timeout="30s").window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("idle_timeout", "Datetime", "integer"),
    ),
    "idle_timeout as an integer": (
        lambda: rl.stream(DF, time="t", idle_timeout=30),
        ("idle_timeout", "wall-clock", "'30s'"),
    ),
    "zero window": (
        lambda: rl.stream(DF, time="t").window(rl.tumbling(0)).agg(rl.count()).collect(),
        ("positive",),
    ),
    "negative hop": (
        lambda: rl.stream(DF, time="t").window(rl.hopping(10, -5)).agg(rl.count()).collect(),
        ("positive", "-5"),
    ),
    "duration finer than the column": (
        lambda: rl.stream(DDF.with_columns(pl.col("t").dt.cast_time_unit("ms")), time="t",
                          watermark="0s").window(rl.tumbling("1us"), lateness="0s")
        .agg(rl.count()).collect(),
        ("finer", "ms"),
    ),
    "time is not a column name": (
        lambda: rl.stream(DF, time=pl.col("t")),  # type: ignore[arg-type]
        ("time=", "column"),
    ),
    "window spec is a string": (
        lambda: rl.stream(DF, time="t").window("10s"),  # type: ignore[arg-type]
        (r"rl\.tumbling", "str"),
    ),
    "by is not names": (
        lambda: q_int(by=[1]),
        ("by=", "column names"),
    ),
    "by names a column twice": (
        lambda: q_int(by=["k", "k"]),
        ("by=", "twice"),
    ),
    "agg without aggregates": (
        lambda: q_int().agg(),
        ("at least one", r"rl\.count\(\)"),
    ),
    "agg of a polars expression": (
        lambda: q_int().agg(pl.col("x").sum()),  # type: ignore[arg-type]
        (r"rl\.count\(\)", "Expr"),
    ),
    "empty alias": (
        lambda: rl.count().alias(""),
        ("alias", "non-empty"),
    ),
    "where is not an expression": (
        lambda: rl.count(where="x > 1"),  # type: ignore[arg-type]
        ("where", "boolean polars expression"),
    ),
    "watermark of the wrong type": (
        lambda: rl.stream(DF, time="t", watermark=1.5),  # type: ignore[arg-type]
        ("watermark", "float", "'30s'"),
    ),
    "flush is not a bool": (
        lambda: rl.stream(DF, time="t", flush="yes"),  # type: ignore[arg-type]
        ("flush", "True or False"),
    ),
    "unsupported source": (
        lambda: rl.stream(42, time="t").window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("source", "int", "DataFrame"),
    ),
    "unsupported micro-batch": (
        lambda: rl.stream([DF, {"t": [1]}], time="t").window(rl.tumbling(10)).agg(rl.count()).collect(),
        ("micro-batch", "dict", "DataFrame"),
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIG_CASES))
def test_config_error(name: str) -> None:
    fn, words = CONFIG_CASES[name]
    _raises(rl.ConfigError, fn, *words)


# -- LateDataError --------------------------------------------------------------------------
def test_late_raise_names_the_row_times_and_the_fix() -> None:
    """3, 12, 4 (delay 0): 12 closes [0, 10), so 4 is late by 12 - 4 = 8."""
    df = pl.DataFrame({"t": [3, 12, 4, 5]})
    msg = _raises(
        rl.LateDataError,
        lambda: rl.stream(df, time="t").window(rl.tumbling(10), late="raise").agg(rl.count()).collect(),
        "late", r"\b4\b", r"\b12\b", r"\b8\b", "lateness", "collect",
    )
    assert "row 2" in msg


def test_late_raise_datetime_message_shows_instants() -> None:
    df = pl.DataFrame({"t": [dt.datetime(2024, 1, 1, 0, 0, s) for s in (3, 12, 4)]})
    _raises(
        rl.LateDataError,
        lambda: rl.stream(df, time="t", watermark="0s")
        .window(rl.tumbling("10s"), lateness="0s", late="raise").agg(rl.count()).collect(),
        "2024-01-01T00:00:04", "2024-01-01T00:00:12",
    )


def test_late_raise_stops_at_the_first_late_row_after_earlier_output() -> None:
    """Batches [3], [12], [4]: iter() yields [0, 10) (closed by 12) and then raises on 4."""
    df = pl.DataFrame({"t": [3, 12, 4]})
    it = (
        rl.stream([df.slice(i, 1) for i in range(3)], time="t")
        .window(rl.tumbling(10), late="raise").agg(rl.count()).iter()
    )
    assert next(it).rows() == [(0, 10, 1)]
    with pytest.raises(rl.LateDataError):
        next(it)


def test_late_raise_without_late_rows_is_silent() -> None:
    """Lateness 5 keeps [0, 10) open at wm 12, so 4 is accepted and nothing raises."""
    df = pl.DataFrame({"t": [3, 12, 4]})
    out = (
        rl.stream(df, time="t").window(rl.tumbling(10), lateness=5, late="raise")
        .agg(rl.count()).collect()
    )
    assert out.rows() == [(0, 10, 2), (10, 20, 1)]


def test_late_raise_hopping_partially_late_row_does_not_raise() -> None:
    """Hopping 10/5: after 11, 8 is late for [0,10) but not [5,15): accepted, no error."""
    df = pl.DataFrame({"t": [11, 8]})
    out = (
        rl.stream(df, time="t").window(rl.hopping(10, 5), late="raise").agg(rl.count()).collect()
    )
    assert out.rows() == [(5, 15, 2), (10, 20, 1)]


# -- SourceError ----------------------------------------------------------------------------
class _BrokenArrow:
    """Claims the Arrow stream interface but cannot produce data."""

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        raise OSError("disk on fire")


def test_source_error_for_unreadable_arrow_object() -> None:
    _raises(
        rl.SourceError,
        lambda: rl.stream(_BrokenArrow(), time="t").window(rl.tumbling(10)).agg(rl.count()).collect(),
        "Arrow", "_BrokenArrow", "disk on fire",
    )


def test_source_error_for_unreadable_batch_inside_an_iterable() -> None:
    def gen() -> Iterator[object]:
        yield DF
        yield _BrokenArrow()

    _raises(
        rl.SourceError,
        lambda: rl.stream(gen(), time="t").window(rl.tumbling(10)).agg(rl.count()).collect(),
        "_BrokenArrow",
    )


def test_errors_are_catchable_as_rillet_error() -> None:
    with pytest.raises(rl.RilletError):
        rl.tumbling("5 minutes")
    with pytest.raises(rl.RilletError):
        q_int().agg(rl.sum("s")).collect()


@pytest.mark.parametrize("key,emit", [("window_start", "final"), ("window_end", "final"),
                                      ("revision", "amend")])
def test_key_named_like_a_window_column_is_a_config_error(key: str, emit: str) -> None:
    """Duplicate output names are a ConfigError; a key column named like a window column
    would duplicate that output column."""
    df = pl.DataFrame({"t": [1, 2, 15], key: [1, 1, 2]})
    _raises(
        rl.ConfigError,
        lambda: rl.stream(df, time="t").window(rl.tumbling(10), by=key, emit=emit)
        .agg(rl.count()).collect(),
        key, "twice|duplicate|reserved",
    )
