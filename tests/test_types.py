"""Column types: time columns, key columns, aggregate result types, NaN and infinities, empty
and unusual sources. Expected values are computed with polars (floor division on epoch
instants, group_by) or derived by hand in comments."""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

import rillet as rl

UTC = dt.UTC
PER_SECOND = {"ns": 10**9, "us": 10**6, "ms": 10**3}


def _dt_query(source: object, spec: rl.WindowSpec, by: str | list[str] | None = None,
              watermark: str = "0s", lateness: str = "0s") -> rl.Windowed:
    return rl.stream(source, time="t", watermark=watermark).window(spec, by=by, lateness=lateness)


# -- time columns ---------------------------------------------------------------------------
SECONDS = [7, 65, 61, 59, 130, 200, 3]  # arrival order; 3 arrives after wm 200 - 10 = 190


@pytest.mark.parametrize("unit", ["ns", "us", "ms"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_datetime_time_column_units_and_time_zones(unit: str, tz: str | None) -> None:
    """1-minute windows on a Datetime(unit, tz) column, delay 10 s.

    Expected windows come from polars: floor(epoch / 60 s) * 60 s, cast back to the column's
    dtype. 3 s arrives when wm = 200 - 10 = 190 s, its window [0, 60) closed (60 <= 190):
    late by 187 s. Window columns keep the column's unit and time zone; late_by is a
    Duration in the same unit.
    """
    dtype = pl.Datetime(unit, tz)  # type: ignore[arg-type]
    base = 1_700_000_040  # a whole minute, 2023-11-14 22:14:00 UTC
    secs = pl.Series("s", [base + s for s in SECONDS], dtype=pl.Int64)
    df = pl.DataFrame({"t": (secs * PER_SECOND[unit]).cast(dtype), "v": range(len(SECONDS))})
    run = _dt_query(df, rl.tumbling("1m"), watermark="10s").agg(rl.count(), rl.max("t")).run()

    accepted = df.head(len(SECONDS) - 1)
    epoch = pl.col("t").dt.epoch(unit)
    minute = 60 * PER_SECOND[unit]
    expected = (
        accepted.group_by(((epoch // minute) * minute).alias("start"))
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("t").max().alias("t_max"))
        .sort("start")
        .select(
            pl.col("start").cast(dtype).alias("window_start"),
            (pl.col("start") + minute).cast(dtype).alias("window_end"),
            "count",
            "t_max",
        )
    )
    assert_frame_equal(run.output, expected)
    assert run.output.schema["window_start"] == dtype
    assert run.late["v"].to_list() == [6]
    assert run.late.schema["late_by"] == pl.Duration(unit)  # type: ignore[arg-type]
    assert run.late["late_by"].to_list() == [dt.timedelta(seconds=187)]
    wm = run.metrics["watermark"]
    assert isinstance(wm, dt.datetime)
    expected_wm = pl.Series([(base + 190) * PER_SECOND[unit]]).cast(dtype).item()
    assert wm == expected_wm
    assert (wm.tzinfo is None) == (tz is None)


def test_tz_aware_windows_are_utc_epoch_aligned_across_dst() -> None:
    """Europe/Paris springs forward at 2024-03-31 02:00 CET (01:00 UTC). 1 h windows are
    fixed durations aligned to the UTC epoch: 00:30 CET (23:30 UTC) is in [00:00, 01:00 CET);
    01:10 CET (00:10 UTC) is in [00:00 UTC, 01:00 UTC) = [01:00 CET, 03:00 CEST), one hour
    long although the wall clock moves by two."""
    paris = pl.Datetime("us", "Europe/Paris")
    df = pl.DataFrame({"t": [dt.datetime(2024, 3, 31, 0, 30), dt.datetime(2024, 3, 31, 1, 10)]})
    df = df.with_columns(pl.col("t").dt.replace_time_zone("Europe/Paris"))
    out = _dt_query(df, rl.tumbling("1h")).agg(rl.count()).collect()
    utc_bounds = out.select(
        pl.col("window_start").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
        pl.col("window_end").dt.convert_time_zone("UTC").dt.replace_time_zone(None),
    ).rows()
    assert utc_bounds == [
        (dt.datetime(2024, 3, 30, 23), dt.datetime(2024, 3, 31, 0)),
        (dt.datetime(2024, 3, 31, 0), dt.datetime(2024, 3, 31, 1)),
    ]
    assert out.schema["window_start"] == paris


def test_iso_string_time_column() -> None:
    """ISO 8601 / RFC 3339 strings, parsed; windows are Datetime("us", "UTC").

    12:00:05Z, 12:00:07 (no offset: UTC), 14:00:09+02:00 (= 12:00:09Z) and 12:00:11.5Z;
    'yesterday' is unparseable and null has no time: both rejected with a reason. The bare
    date 2024-05-01 is midnight UTC: its window [00:00:00, 00:00:10) closed long ago
    (wm 12:00:11.5), so it is late by 12:00:11.5.
    """
    df = pl.DataFrame({
        "t": ["2024-05-01T12:00:05Z", "2024-05-01 12:00:07", "yesterday",
              "2024-05-01T14:00:09+02:00", None, "2024-05-01T12:00:11.5Z", "2024-05-01"],
        "rid": range(7),
    })
    run = _dt_query(df, rl.tumbling("10s")).agg(rl.count(), rl.sum("rid")).run()
    utc = pl.Datetime("us", "UTC")
    assert run.output.schema["window_start"] == utc
    assert run.output.schema["window_end"] == utc
    d = lambda s, us=0: dt.datetime(2024, 5, 1, 12, 0, s, us, tzinfo=UTC)  # noqa: E731
    # rids 0, 1, 3 in [12:00:00, 12:00:10); rid 5 in [12:00:10, 12:00:20)
    assert run.output.rows() == [(d(0), d(10), 3, 4), (d(10), d(20), 1, 5)]
    assert run.rejected["rid"].to_list() == [2, 4]
    reasons = run.rejected["reason"].to_list()
    assert reasons[0].startswith("unparseable time") and "yesterday" in reasons[0]
    assert "ISO 8601" in reasons[0]
    assert reasons[1] == "null time"
    assert run.rejected.schema["t"] == pl.String
    assert run.late["rid"].to_list() == [6]
    assert run.late["t"].to_list() == ["2024-05-01"]
    assert run.late["late_by"].to_list() == [dt.timedelta(hours=12, seconds=11, microseconds=500000)]
    assert run.metrics["watermark"] == d(11, 500000)


def test_date_time_column() -> None:
    """A Date column is midnight UTC of each day. 2-day windows are epoch-aligned:
    2024-01-01 is day 19723 since 1970-01-01, odd, so its window starts on day 19722 =
    2023-12-31. Days 1, 2, 4 -> [12-31, 01-02), [01-02, 01-04), [01-04, 01-06).

    The window columns hold datetimes (a Date cannot carry sub-day bounds); we compare
    their values as datetimes.
    """
    df = pl.DataFrame({"t": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 4)]})
    out = _dt_query(df, rl.tumbling("2d")).agg(rl.count()).collect()
    bounds = out.select(pl.col("window_start", "window_end").cast(pl.Datetime("us"))).rows()
    day = lambda m, d: dt.datetime(2023 + (m == 1), m, d)  # noqa: E731
    assert bounds == [(day(12, 31), day(1, 2)), (day(1, 2), day(1, 4)), (day(1, 4), day(1, 6))]
    assert out["count"].to_list() == [1, 1, 1]


def test_datetime_time_column_with_default_watermark_and_lateness() -> None:
    """Regression: the defaults watermark=0 and lateness=0 are ints, and a datetime column
    once rejected them with ConfigError. Zero needs no unit, so all-defaults must run (API.md:
    stream(source, time, watermark=0, ...), window(..., lateness=0)); a non-zero int is
    still a ConfigError (test_errors)."""
    start, end = dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 10)
    for col in (
        pl.Series("t", [dt.datetime(2024, 1, 1, 0, 0, 5)]),
        pl.Series("t", ["2024-01-01T00:00:05Z"]),
        pl.Series("t", [dt.date(2024, 1, 1)]),
    ):
        df = pl.DataFrame(col)
        out = rl.stream(df, time="t").window(rl.tumbling("10s")).agg(rl.count()).collect()
        bounds = out.select(
            pl.col("window_start", "window_end").cast(pl.Datetime("us", "UTC"))
            .dt.replace_time_zone(None)
        )
        assert bounds.rows() == [(start, end)], col.dtype
        explicit = (
            rl.stream(df, time="t", watermark=0).window(rl.tumbling("10s"), lateness=0)
            .agg(rl.count()).collect()
        )
        assert explicit.equals(out)


@pytest.mark.parametrize("dtype", [pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt32])
def test_integer_time_column_types(dtype: pl.DataType) -> None:
    """Any integer time column works; windows and late_by are Int64. 1, 12, 3 with size 10:
    12 closes [0, 10), so 3 is late by 9."""
    df = pl.DataFrame({"t": pl.Series([1, 12, 3], dtype=dtype)})
    run = rl.stream(df, time="t").window(rl.tumbling(10)).agg(rl.count()).run()
    assert run.output.rows() == [(0, 10, 1), (10, 20, 1)]
    assert run.output.schema["window_start"] == pl.Int64
    assert run.late["late_by"].to_list() == [9]
    assert run.late.schema["late_by"] == pl.Int64
    assert run.late.schema["t"] == dtype
    assert run.metrics["watermark"] == 12


# -- key columns ----------------------------------------------------------------------------
KEY_COLUMNS = {
    "str": pl.Series("k", ["b", "a", None, "b", "é", "a"], dtype=pl.String),
    "int": pl.Series("k", [3, -1, None, 3, 0, -1], dtype=pl.Int32),
    "uint64": pl.Series("k", [2**63 + 5, 1, None, 2**63 + 5, 0, 1], dtype=pl.UInt64),
    "bool": pl.Series("k", [True, False, None, True, None, False], dtype=pl.Boolean),
    "date": pl.Series("k", [dt.date(2024, 1, 2), dt.date(1969, 5, 1), None,
                            dt.date(2024, 1, 2), dt.date(2000, 1, 1), dt.date(1969, 5, 1)]),
    "datetime": pl.Series("k", [dt.datetime(2024, 1, 2, 3), dt.datetime(2024, 1, 2), None,
                                dt.datetime(2024, 1, 2, 3), dt.datetime(1999, 1, 1),
                                dt.datetime(2024, 1, 2)]).cast(pl.Datetime("ms", "UTC")),
    "categorical": pl.Series("k", ["b", "a", None, "b", "é", "a"]).cast(pl.Categorical),
}


@pytest.mark.parametrize("kind", sorted(KEY_COLUMNS))
def test_key_column_types(kind: str) -> None:
    """Grouping by one key column of each type matches polars group_by, null keys grouped
    together, rows ordered by window then key ascending with nulls first."""
    key = KEY_COLUMNS[kind]
    df = pl.DataFrame({"t": [1, 2, 3, 4, 15, 16], "v": [1, 2, 3, 4, 5, 6]}).with_columns(key)
    out = rl.stream(df, time="t").window(rl.tumbling(10), by="k").agg(rl.count(), rl.sum("v")).collect()
    cmp_key = pl.col("k").cast(pl.String) if kind == "categorical" else pl.col("k")
    expected = (
        df.with_columns(cmp_key, ((pl.col("t") // 10) * 10).alias("window_start"))
        .group_by("k", "window_start")
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("v").sum().alias("v_sum"))
        .with_columns((pl.col("window_start") + 10).alias("window_end"))
        .sort("window_end", "window_start", "k", nulls_last=False)
        .select("k", "window_start", "window_end", "count", "v_sum")
    )
    assert_frame_equal(out.with_columns(cmp_key), expected)
    if kind != "categorical":
        assert out.schema["k"] == key.dtype


def test_three_keys_of_mixed_types() -> None:
    """by=[str, int, bool]: one row per distinct combination (nulls equal), as polars."""
    df = pl.DataFrame({
        "t": list(range(12)),
        "a": ["x", "y", None, "x", "x", None, "y", "x", None, "x", "y", "x"],
        "b": [1, 1, None, 1, 2, None, 1, 1, None, 2, 1, 1],
        "c": [True, None, False, True, True, False, None, True, False, True, None, False],
    })
    out = rl.stream(df, time="t").window(rl.tumbling(100), by=["a", "b", "c"]).agg(rl.count()).collect()
    expected = (
        df.group_by("a", "b", "c").agg(pl.len().cast(pl.Int64).alias("count"))
        .sort("a", "b", "c", nulls_last=False)
    )
    assert out.drop("window_start", "window_end").equals(expected)


# -- aggregate result types ------------------------------------------------------------------
def test_aggregate_result_dtypes() -> None:
    """sum of ints -> Int64, of floats -> Float64; mean -> Float64; min/max keep the dtype;
    count -> Int64. Values by hand over the one window: x = 1, 2, 3 (Int32);
    f = 1.5, null, 2.0 (Float32); b = True, False, null; u = 1, 2, 3 (UInt8)."""
    df = pl.DataFrame({
        "t": [1, 2, 3],
        "x": pl.Series([1, 2, 3], dtype=pl.Int32),
        "f": pl.Series([1.5, None, 2.0], dtype=pl.Float32),
        "b": [True, False, None],
        "u": pl.Series([1, 2, 3], dtype=pl.UInt8),
        "d": [dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2)],
    })
    out = rl.stream(df, time="t").window(rl.tumbling(10)).agg(
        rl.count("f"), rl.sum("x"), rl.mean("x"), rl.min("x"), rl.max("x"), rl.sum("f"),
        rl.mean("f"), rl.min("f"), rl.max("f"), rl.sum("u"), rl.max("u"), rl.min("b"),
        rl.max("b"), rl.min("d"), rl.max("d"),
    ).collect()
    expected_schema = {
        "window_start": pl.Int64, "window_end": pl.Int64, "f_count": pl.Int64,
        "x_sum": pl.Int64, "x_mean": pl.Float64, "x_min": pl.Int32, "x_max": pl.Int32,
        "f_sum": pl.Float64, "f_mean": pl.Float64, "f_min": pl.Float32, "f_max": pl.Float32,
        "u_sum": pl.Int64, "u_max": pl.UInt8, "b_min": pl.Boolean, "b_max": pl.Boolean,
        "d_min": pl.Datetime("us"), "d_max": pl.Datetime("us"),
    }
    assert dict(out.schema) == expected_schema
    assert out.row(0) == (
        0, 10, 2, 6, 2.0, 1, 3, 3.5, 1.75, 1.5, 2.0, 6, 3, False, True,
        dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 3),
    )


def test_empty_aggregates_are_null_and_counts_zero() -> None:
    """One window where x is all null and the where= filter is never true:
    count = 2, x_count = 0, sum/mean/min/max = null, count(where) = 0, sum(where) = null."""
    df = pl.DataFrame({"t": [1, 2], "x": [None, None], "y": [1.0, 2.0], "e": [None, None]},
                      schema={"t": pl.Int64, "x": pl.Float64, "y": pl.Float64, "e": pl.String})
    out = rl.stream(df, time="t").window(rl.tumbling(10)).agg(
        rl.count(), rl.count("x"), rl.sum("x"), rl.mean("x"), rl.min("x"), rl.max("x"),
        rl.count(where=pl.col("e").is_not_null()).alias("failures"),
        rl.sum("y", where=pl.col("e") == "boom").alias("y_boom"),
    ).collect()
    assert out.row(0) == (0, 10, 2, 0, None, None, None, None, 0, None)


def test_where_null_condition_skips_the_row() -> None:
    """where= null counts as false. x = 5, null, -2, 4 with where x > 0: rows 5 and 4
    (null > 0 is null -> skipped): count 2, sum of y over them = 10 + 40."""
    df = pl.DataFrame({"t": [1, 2, 3, 4], "x": [5, None, -2, 4], "y": [10, 20, 30, 40]})
    out = rl.stream(df, time="t").window(rl.tumbling(10)).agg(
        rl.count(where=pl.col("x") > 0).alias("n"), rl.sum("y", where=pl.col("x") > 0).alias("s"),
    ).collect()
    assert out.rows() == [(0, 10, 2, 50)]


def test_expression_inputs_and_with_columns() -> None:
    """Aggregates over a with_columns result and over a polars expression.
    v = 1, 2, 3; w = v * 10 -> sum 60; sum(v ** 2) = 1 + 4 + 9 = 14."""
    df = pl.DataFrame({"t": [1, 2, 3], "v": [1, 2, 3]})
    out = (
        rl.stream(df, time="t").with_columns(w=pl.col("v") * 10)
        .window(rl.tumbling(10)).agg(rl.sum("w"), rl.sum((pl.col("v") ** 2).alias("sq")))
        .collect()
    )
    assert out.columns == ["window_start", "window_end", "w_sum", "sq_sum"]
    assert out.rows() == [(0, 10, 60, 14)]


# -- NaN, infinities, compensated sums ------------------------------------------------------
def _float_window(values: list[float | None]) -> dict[str, object]:
    df = pl.DataFrame({"t": list(range(len(values))), "y": values}, schema={"t": pl.Int64, "y": pl.Float64})
    out = rl.stream(df, time="t").window(rl.tumbling(100)).agg(
        rl.count("y"), rl.sum("y"), rl.mean("y"), rl.min("y"), rl.max("y")
    ).collect()
    return out.row(0, named=True)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


NAN, INF = math.nan, math.inf
# (values, (count, sum, mean, min, max)), each derived by hand
FLOAT_CASES = [
    # min/max ignore NaN unless every value is NaN; NaN poisons sum and mean (as polars)
    ([NAN, 1.0, 3.0], (3, NAN, NAN, 1.0, 3.0)),
    ([NAN, NAN], (2, NAN, NAN, NAN, NAN)),
    ([INF, 1.0], (2, INF, INF, 1.0, INF)),
    ([INF, -INF, 2.0], (3, NAN, NAN, -INF, INF)),
    ([-INF, None, 1.0], (2, -INF, -INF, -INF, 1.0)),
    # compensated: naive left-to-right summation gives 1e16 + 1 = 1e16 (ulp 2), then 0.0
    ([1e16, 1.0, -1e16], (3, 1.0, 1.0 / 3, -1e16, 1e16)),
    # 0.1 ten times is 0.9999999999999999 naively; the correctly rounded sum is 1.0
    ([0.1] * 10, (10, 1.0, 0.1, 0.1, 0.1)),
]


@pytest.mark.parametrize("values,expected", FLOAT_CASES)
def test_float_special_values(values: list[float | None], expected: tuple) -> None:
    row = _float_window(values)
    names = ("y_count", "y_sum", "y_mean", "y_min", "y_max")
    for name, value in zip(names, expected):
        assert _same(row[name], value), (name, row[name], value)


def test_nan_min_max_match_polars() -> None:
    """Against polars' own min/max (which also skip NaN unless all are NaN)."""
    values = [math.nan, 2.5, -1.0, math.nan, 7.0]
    row = _float_window(values)
    s = pl.Series(values)
    assert row["y_min"] == s.min() and row["y_max"] == s.max()


# -- sources and empty inputs ---------------------------------------------------------------
@pytest.mark.parametrize("time_kind", ["int", "datetime"])
def test_empty_input_dataframe(time_kind: str) -> None:
    """No rows: empty output with the full schema, empty late/rejected, zero metrics."""
    tdt = pl.Int64 if time_kind == "int" else pl.Datetime("ms", "UTC")
    df = pl.DataFrame(schema={"t": tdt, "k": pl.String, "x": pl.Int32})
    every = 10 if time_kind == "int" else "10s"
    zero = 0 if time_kind == "int" else "0s"
    run = (
        rl.stream(df, time="t", watermark=zero).window(rl.tumbling(every), by="k", lateness=zero)
        .agg(rl.count(), rl.sum("x"), rl.max("x")).run()
    )
    assert run.output.height == 0
    assert dict(run.output.schema) == {
        "k": pl.String, "window_start": tdt, "window_end": tdt, "count": pl.Int64,
        "x_sum": pl.Int64, "x_max": pl.Int32,
    }
    assert run.late.height == 0 and run.rejected.height == 0
    assert run.late.columns == ["t", "k", "x", "late_by"]
    assert run.rejected.columns == ["t", "k", "x", "reason"]
    assert run.metrics["rows_in"] == 0 and run.metrics["watermark"] is None


def test_empty_iterable_source() -> None:
    """No micro-batches at all: nothing emitted, nothing counted."""
    run = rl.stream([], time="t").window(rl.tumbling(10)).agg(rl.count()).run()
    assert run.output.height == 0 and run.late.height == 0 and run.rejected.height == 0
    assert run.metrics["rows_in"] == 0 and run.metrics["batches"] == 0


def test_generator_and_iterable_sources() -> None:
    """A generator is consumed lazily, once; frames of mixed kinds are one stream.
    Rows 1, 5, 12, 3 (delay 0): 12 closes [0, 10) holding 1 and 5; 3 is late by 9."""
    df = pl.DataFrame({"t": [1, 5, 12, 3]})
    q = lambda src: rl.stream(src, time="t").window(rl.tumbling(10)).agg(rl.count())  # noqa: E731

    def gen() -> Iterator[object]:
        yield df.slice(0, 1)
        yield df.slice(1, 1).lazy()
        yield df.slice(2, 1).to_arrow()
        yield pa.record_batch({"t": pa.array([3], pa.int64())})

    for source in (gen(), [df.slice(0, 2), df.slice(2, 2)], (df.slice(i, 1) for i in range(4))):
        run = q(source).run()
        assert run.output.rows() == [(0, 10, 2), (10, 20, 1)]
        assert run.late["late_by"].to_list() == [9]


def test_late_frame_keeps_all_columns_and_types() -> None:
    """run.late holds the batch's columns after with_columns, with their dtypes, plus
    late_by. Rows 3, 12, 4: 4 is late by 8."""
    df = pl.DataFrame({
        "t": [3, 12, 4], "name": ["a", "b", "c"], "v": pl.Series([1, 2, 3], dtype=pl.Int16),
    })
    run = (
        rl.stream(df, time="t").with_columns(v2=pl.col("v") * 2)
        .window(rl.tumbling(10)).agg(rl.count()).run()
    )
    expected = pl.DataFrame({
        "t": [4], "name": ["c"], "v": pl.Series([3], dtype=pl.Int16),
        "v2": pl.Series([6], dtype=pl.Int16), "late_by": [8],
    })
    assert_frame_equal(run.late, expected)
    assert_series_equal(run.late["late_by"], pl.Series("late_by", [8], dtype=pl.Int64))
