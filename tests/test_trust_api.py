"""The analyst's traps of issue 13 (items 14, 15, 19, 20): runs that lose most of their rows
without an error warn (rl.DataLossWarning) with the cause and the fix; a wrong API shape is
a ConfigError that says what to write; streams can be previewed; plots and views show data
as it is. Results are checked against polars recomputing the same thing."""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import time
import warnings
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from conftest import batches

import rillet as rl

REAL = Path(os.environ.get("RILLET_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "real"))
CLOUDTRAIL = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"
NASA = REAL / "web_nasa_http_19950801" / "nasa_19950801.tsv"
CGM = REAL / "iot_cgm_glucose" / "CGM.csv"
SIZES = [1, 7, None]

needs_real = pytest.mark.skipif(not CLOUDTRAIL.exists(), reason="the real data sets are not here")


def _cloudtrail() -> pl.DataFrame:
    """The real CloudTrail records in file order: event time and source."""
    return _raw_cloudtrail().select(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"),
                                    "eventSource")


def _raw_cloudtrail() -> pl.DataFrame:
    """Three fields of the real CloudTrail records as text, in file order."""
    return pl.read_ndjson(CLOUDTRAIL, schema={"eventTime": pl.String, "eventSource": pl.String,
                                              "errorCode": pl.String})


def _quiet(fn):
    """``fn()`` with every rillet.DataLossWarning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", rl.DataLossWarning)
        return fn()


def _late_oracle(times: pl.Series, every: dt.timedelta) -> pl.Series:
    """Late rows of tumbling windows of ``every`` with watermark 0, as polars says: a row is
    late when its window's end is at or below the largest time before it (late rows never
    raise that maximum, being below it)."""
    before = times.cum_max().shift(1)
    return (times.dt.truncate(every) + every <= before).fill_null(False)


def _delay(text: str) -> dt.timedelta:
    value, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text).groups()  # type: ignore[union-attr]
    key = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]
    return dt.timedelta(**{key: int(value)})


# -- 15a: no watermark on disordered data -------------------------------------------------------
@needs_real
@pytest.mark.parametrize("size", SIZES)
def test_no_watermark_on_disordered_data_warns_with_a_suggested_delay(size: int | None) -> None:
    df = _cloudtrail()
    late = _late_oracle(df["eventTime"], dt.timedelta(minutes=1))
    n_late = int(late.sum())
    assert n_late > 0.5 * df.height  # the trap: most rows of the real file are late

    q = rl.stream(batches(df, size), time="eventTime").window(rl.tumbling("1m")).agg(rl.count())
    with pytest.warns(rl.DataLossWarning) as caught:
        run = q.run()
    assert run.metrics["rows_late"] == run.late.height == n_late  # kept, not lost
    message = str(caught[0].message)
    assert f"{n_late:,} of {df.height:,} rows" in message
    assert "run.late" in message and "watermark" in message
    assert caught[0].filename == __file__  # points at the caller's line, not rillet's
    suggested = re.search(r"watermark='([^']+)'", message).group(1)  # type: ignore[union-attr]

    # The oracle's lateness: how far each late row was behind the largest time before it.
    behind = (df["eventTime"].cum_max().shift(1) - df["eventTime"]).filter(late)
    assert _delay(suggested) >= behind.quantile(0.99, "higher")
    # With the suggested delay, and it given explicitly, at most 1% of those rows stay late
    # and nothing warns.
    fixed = _quiet(lambda: rl.stream(batches(df, size), time="eventTime", watermark=suggested)
                   .window(rl.tumbling("1m")).agg(rl.count()).run())
    assert fixed.metrics["rows_late"] <= 0.01 * n_late
    assert fixed.output["count"].sum() + fixed.metrics["rows_late"] == df.height


@needs_real
def test_an_explicit_watermark_or_late_mode_silences_the_late_warning() -> None:
    df = _cloudtrail()
    n_late = int(_late_oracle(df["eventTime"], dt.timedelta(minutes=1)).sum())
    chosen = [
        rl.stream(df, time="eventTime", watermark=0).window(rl.tumbling("1m")),
        rl.stream(df, time="eventTime", watermark="0s").window(rl.tumbling("1m")),
        rl.stream(df, time="eventTime").window(rl.tumbling("1m"), late="drop"),
    ]
    for windowed in chosen:
        run = _quiet(lambda w=windowed: w.agg(rl.count()).run())
        assert run.metrics["rows_late"] == n_late


def test_few_late_rows_do_not_warn() -> None:
    # 9 late rows of 100: under the threshold (10 rows and 10% of the rows).
    times = list(range(0, 910, 10)) + [5] * 9
    df = pl.DataFrame({"t": times})
    run = _quiet(lambda: rl.stream(df, time="t").window(rl.tumbling(10)).agg(rl.count()).run())
    assert run.metrics["rows_late"] == 9


@pytest.mark.parametrize("size", SIZES)
def test_late_warning_on_an_integer_time_column_suggests_an_integer_delay(size: int | None) -> None:
    # Every other row is 30 units behind the newest: half the rows are late.
    times = [t for i in range(40) for t in (100 * i + 50, 100 * i + 20)]
    df = pl.DataFrame({"t": times})
    with pytest.warns(rl.DataLossWarning, match=r"watermark=30 would have accepted"):
        run = rl.stream(batches(df, size), time="t").window(rl.tumbling(10)).agg(rl.count()).run()
    assert run.late["late_by"].max() == 30
    fixed = _quiet(lambda: rl.stream(batches(df, size), time="t", watermark=30)
                   .window(rl.tumbling(10)).agg(rl.count()).run())
    assert fixed.metrics["rows_late"] == 0 and fixed.output["count"].sum() == df.height


def test_every_way_of_running_warns_about_late_rows(tmp_path: Path) -> None:
    times = [t for i in range(40) for t in (100 * i + 50, 100 * i + 20)]
    q = rl.stream(pl.DataFrame({"t": times}), time="t").window(rl.tumbling(10)).agg(rl.count())
    runners = {
        "collect": lambda: q.collect(),
        "iter": lambda: list(q.iter()),
        "for_each": lambda: q.for_each(lambda df: None),
        "to_jsonl": lambda: q.to_jsonl(tmp_path / "out", partition_by=None),
        "start": lambda: q.start().wait(timeout=30),
    }
    for name, runner in runners.items():
        with pytest.warns(rl.DataLossWarning, match="run.late") as caught:
            runner()
        assert len(caught) == 1, name


# -- 15b: rows rejected en masse -----------------------------------------------------------------
@needs_real
@pytest.mark.parametrize("size", SIZES)
def test_every_row_rejected_warns_with_the_first_reason(size: int | None) -> None:
    # The NASA log's times as Apache writes them: not ISO 8601, so no row can be placed.
    raw = pl.read_csv(NASA, separator="\t", n_rows=500, quote_char=None)
    df = raw.select(t=pl.from_epoch("time").dt.strftime("%d/%b/%Y:%H:%M:%S -0000"), url="url")
    q = rl.stream(batches(df, size), time="t").window(rl.tumbling("1m")).agg(rl.count())
    with pytest.warns(rl.DataLossWarning) as caught:
        run = q.run()
    message = str(caught[0].message)
    assert "every row of this run (500)" in message
    assert run.rejected["reason"][0] in message  # the first reason, verbatim
    assert "str.to_datetime" in message  # and how to parse such times
    assert run.rejected.height == df.height and run.output.height == 0
    # The fix the message gives works: polars parses them, and every row is counted.
    fixed = _quiet(lambda: rl.stream(batches(df, size), time="t")
                   .with_columns(pl.col("t").str.to_datetime("%d/%b/%Y:%H:%M:%S %z"))
                   .window(rl.tumbling("1m")).agg(rl.count()).run())
    assert fixed.output["count"].sum() == df.height


def test_most_rows_rejected_warns_and_a_few_do_not() -> None:
    good = [f"2024-01-01T00:00:{s:02d}Z" for s in range(10)]
    most = pl.DataFrame({"t": good[:3] + ["yesterday"] * 12})
    with pytest.warns(rl.DataLossWarning, match=r"12 of 15 rows of this run \(80%\) were rejected"):
        run = rl.stream(most, time="t", watermark="0s").window(rl.tumbling("1m")).agg(rl.count()).run()
    assert run.rejected.height == 12 and run.output["count"].sum() == 3
    # A few rejected rows (under half, or under 10 while some rows were aggregated) are
    # run.rejected's to show, without a warning.
    for times in (good[:8] + [None, "yesterday"], good[:3] + ["yesterday"] * 9):
        run = _quiet(lambda t=times: rl.stream(pl.DataFrame({"t": t}), time="t", watermark="0s")
                     .window(rl.tumbling("1m")).agg(rl.count()).run())
        assert run.rejected.height == len(times) - run.output["count"].sum()
    # A run that aggregated nothing warns however small.
    with pytest.warns(rl.DataLossWarning, match=r"every row of this run \(2\) was rejected"):
        rl.stream(pl.DataFrame({"t": [None, "soon"]}), time="t", watermark="0s").window(
            rl.tumbling("1m")).agg(rl.count()).run()


# -- 15c: hopping arguments in Flink's order ------------------------------------------------------
@needs_real
def test_hopping_with_period_shorter_than_every_warns_at_construction() -> None:
    with pytest.warns(rl.DataLossWarning, match=r"rl\.hopping\('5m', '1m'\)") as caught:
        spec = rl.hopping("1m", "5m")
    assert caught[0].filename == __file__
    # What the warning says happens: rows outside [5k, 5k + 1) minutes are in no window.
    df = _cloudtrail().sort("eventTime")
    minute_in_five = (df["eventTime"].dt.minute() % 5)
    covered = int((minute_in_five == 0).sum())
    out = _quiet(lambda: rl.stream(df, time="eventTime", watermark=0).window(spec).agg(rl.count()).collect())
    assert out["count"].sum() == covered < 0.5 * df.height
    # The layouts that cover every row stay quiet.
    for period, every in [("5m", "1m"), ("5m", "5m"), (dt.timedelta(minutes=10), "5m"), (10, 5), ("1mo", "1d")]:
        _quiet(lambda p=period, e=every: rl.hopping(p, e))
    with pytest.warns(rl.DataLossWarning):
        rl.hopping(dt.timedelta(seconds=30), "1m")
    with pytest.warns(rl.DataLossWarning):
        rl.hopping(5, 10)


# -- 15d: read_cloudtrail on JSON Lines ----------------------------------------------------------
@needs_real
def test_read_cloudtrail_on_json_lines_says_use_read_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "trail.jsonl"
    path.write_bytes(b"".join(CLOUDTRAIL.read_bytes().splitlines(keepends=True)[:20]))
    q = rl.stream(rl.read_cloudtrail(path), time="eventTime").window(rl.tumbling("1m")).agg(rl.count())
    with pytest.warns(rl.DataLossWarning, match="read_jsonl"):
        run = q.run()
    assert "JSON Lines" in run.rejected["reason"][0] and "rl.read_jsonl" in run.rejected["reason"][0]
    # The advice works: read_jsonl reads all 20 records.
    fixed = _quiet(lambda: rl.stream(rl.read_jsonl(path), time="eventTime", watermark="10m")
                   .window(rl.tumbling("1m")).agg(rl.count()).collect())
    assert fixed["count"].sum() == 20


# -- 19: the API's shape ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
def test_by_accepts_a_plain_column_expression(size: int | None) -> None:
    df = pl.DataFrame({"t": [1, 2, 3, 11, 12, 25], "k": ["a", "b", "a", "a", "b", "b"], "j": [1, 1, 2, 1, 1, 1]})
    got = (rl.stream(batches(df, size), time="t", watermark=0)
           .window(rl.tumbling(10), by=[pl.col("k"), "j"]).agg(rl.count()).collect())
    want = (df.group_by("k", "j", (pl.col("t") // 10 * 10).alias("window_start"))
            .agg(pl.len().cast(pl.Int64).alias("count")))
    assert got.select("k", "j", "window_start", "count").sort(pl.all()).equals(
        want.select("k", "j", "window_start", "count").sort(pl.all()))
    one = rl.stream(df, time="t", watermark=0).window(rl.tumbling(10), by=pl.col("k")).agg(rl.count()).collect()
    assert one.columns[0] == "k"


def test_by_a_computed_expression_says_add_it_as_a_column() -> None:
    w = rl.stream(pl.DataFrame({"t": [1], "k": ["a"]}), time="t")
    with pytest.raises(rl.ConfigError, match=r"with_columns.*by="):
        w.window(rl.tumbling(10), by=pl.col("k").str.to_uppercase())
    with pytest.raises(rl.ConfigError, match="by= takes"):
        w.window(rl.tumbling(10), by=3)  # type: ignore[arg-type]


def test_collect_before_agg_says_call_agg_first(tmp_path: Path) -> None:
    s = rl.stream(pl.DataFrame({"t": [1], "k": ["a"]}), time="t")
    w = s.window(rl.tumbling(10))
    for name in ("collect", "run", "iter", "start", "for_each", "to_parquet", "to_jsonl", "to_database"):
        with pytest.raises(rl.ConfigError, match=r"call \.agg\(\.\.\.\) first"):
            getattr(w, name)()
    with pytest.raises(rl.ConfigError, match=r"call \.window\(\.\.\.\) first"):
        s.agg(rl.count())  # type: ignore[attr-defined]
    assert not list(tmp_path.iterdir())


def test_a_stream_without_a_window_runs_its_rows_through(tmp_path: Path) -> None:
    """A stream runs as it is (polars' collect): every row after its steps, times parsed,
    unparseable times rejected, none late; file sinks partition by its time column."""
    df = pl.DataFrame({"t": ["2026-01-01T00:00:05Z", "nope", "2026-01-01T00:00:01Z"], "k": ["a", "b", "c"]})
    s = rl.stream(df, time="t").filter(pl.col("k") != "c")
    run = s.run()
    assert run.output["k"].to_list() == ["a"]
    assert run.rejected["k"].to_list() == ["b"] and run.late.height == 0
    assert s.to_parquet(tmp_path / "p").metrics["rows_emitted"] == 1
    back = pl.read_parquet(tmp_path / "p" / "**" / "*.parquet")
    assert back["k"].to_list() == ["a"]
    with pytest.raises(rl.ConfigError, match="pass through without a window"):
        s.to_database(f"sqlite:///{tmp_path / 'x.db'}", "rows")


@needs_real
@pytest.mark.parametrize("size", SIZES)
def test_head_previews_parsed_rows_and_schema(size: int | None) -> None:
    raw = _raw_cloudtrail()
    s = (rl.stream(batches(raw, size), time="eventTime")
         .filter(pl.col("errorCode").is_not_null())
         .with_columns(service=pl.col("eventSource").str.strip_suffix(".amazonaws.com")))
    got = s.head(12)
    want = (raw.filter(pl.col("errorCode").is_not_null())
            .with_columns(service=pl.col("eventSource").str.strip_suffix(".amazonaws.com"))
            .with_columns(pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us"))
            .head(12))
    assert got.equals(want)
    assert s.schema == want.schema
    assert s.schema["eventTime"] == pl.Datetime("us", "UTC")
    assert s.head(0).height == 0 and s.head(0).schema == want.schema


def test_head_shows_an_unparseable_time_as_null() -> None:
    df = pl.DataFrame({"t": ["2024-01-01T00:00:00Z", "01/Jan/2024:00:00:00 +0000", "2024-01-01T00:00:01+01:00"]})
    got = rl.stream(df, time="t").head()
    want = [dt.datetime(2024, 1, 1, tzinfo=dt.UTC), None,
            dt.datetime(2023, 12, 31, 23, 0, 1, tzinfo=dt.UTC)]
    assert got["t"].to_list() == want
    # The row that shows null is the row a query rejects.
    run = _quiet(lambda: rl.stream(df, time="t", watermark=0).window(rl.tumbling("1h")).agg(rl.count()).run())
    assert run.rejected["t"].to_list() == [df["t"][1]]


def test_head_stops_reading_a_live_source(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    path.write_text("".join(json.dumps({"t": i, "k": "a"}) + "\n" for i in range(3)))
    s = rl.stream(rl.tail_jsonl(path, poll="20ms"), time="t")
    started = time.monotonic()
    assert s.head(2)["t"].to_list() == [0, 1]  # enough rows: at once
    assert time.monotonic() - started < 5
    started = time.monotonic()
    got = s.head(10, timeout=0.5)  # the tail never ends: what arrived within the timeout
    assert got["t"].to_list() == [0, 1, 2]
    assert 0.4 < time.monotonic() - started < 5


def test_head_rejects_bad_arguments() -> None:
    s = rl.stream(pl.DataFrame({"t": [1]}), time="t")
    for bad in (-1, 1.5, True):
        with pytest.raises(rl.ConfigError, match="head"):
            s.head(bad)  # type: ignore[arg-type]
    with pytest.raises(rl.ConfigError, match="timeout"):
        s.head(1, timeout=0)


def test_min_of_a_time_string_suggests_parsing_it() -> None:
    df = pl.DataFrame({"t": [1, 2], "seen": ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]})
    for fn in (rl.min, rl.max):
        with pytest.raises(rl.SchemaError) as info:
            rl.stream(df, time="t").window(rl.tumbling(10)).agg(fn("seen")).collect()
        assert "str.to_datetime(time_zone='UTC')" in str(info.value)
    # The suggestion works: the minimum time, as polars computes it.
    got = (rl.stream(df, time="t").with_columns(pl.col("seen").str.to_datetime(time_zone="UTC"))
           .window(rl.tumbling(10)).agg(rl.min("seen")).collect())
    assert got["seen_min"].to_list() == [df["seen"].str.to_datetime().min()]


# -- 14: huge integer options and Decimal columns -------------------------------------------------
HUGE = {
    "lateness": lambda: rl.stream(pl.DataFrame({"t": [1]}), time="t").window(rl.tumbling(10), lateness=2**70)
    .agg(rl.count()).collect(),
    "watermark": lambda: rl.stream(pl.DataFrame({"t": [1]}), time="t", watermark=2**64)
    .window(rl.tumbling(10)).agg(rl.count()).collect(),
    "tumbling window every": lambda: rl.stream(pl.DataFrame({"t": [1]}), time="t")
    .window(rl.tumbling(2**70)).agg(rl.count()).collect(),
    "tumbling window offset": lambda: rl.stream(pl.DataFrame({"t": [1]}), time="t")
    .window(rl.tumbling(10, offset=-(2**64))).agg(rl.count()).collect(),
    "session gap": lambda: rl.stream(pl.DataFrame({"t": [1]}), time="t")
    .window(rl.session(2**64)).agg(rl.count()).collect(),
    "k": lambda: rl.top_k("k", 2**64),
    "capacity": lambda: rl.top_k("k", 3, approx=True, capacity=2**64),
    "ddof": lambda: rl.std("x", ddof=2**64),
    "batch_rows": lambda: rl.read_csv(__file__, batch_rows=2**64),
}


@pytest.mark.parametrize("option", list(HUGE))
def test_huge_integer_options_are_config_errors_naming_the_option(option: str) -> None:
    with pytest.raises(rl.ConfigError) as info:
        HUGE[option]()
    message = str(info.value)
    assert option in message
    assert re.search(r"2\*\*\d+", message)  # the range it must be in


@pytest.mark.parametrize("size", SIZES)
def test_decimal_columns_sum_mean_min_max(size: int | None) -> None:
    values = [Decimal("12345.67"), Decimal("-0.01"), None, Decimal("99999999.99"), Decimal("0.10"),
              Decimal("-4321.00"), Decimal("7.77")]
    df = pl.DataFrame({"t": [1, 3, 4, 12, 15, 17, 31], "price": values},
                      schema={"t": pl.Int64, "price": pl.Decimal(12, 2)})
    got = (rl.stream(batches(df, size), time="t", watermark=0).window(rl.tumbling(10))
           .agg(rl.sum("price"), rl.mean("price"), rl.min("price"), rl.max("price")).collect())
    want = (df.group_by((pl.col("t") // 10 * 10).alias("window_start"))
            .agg(pl.col("price").sum().alias("sum"), pl.col("price").mean().alias("mean"),
                 pl.col("price").min().alias("min"), pl.col("price").max().alias("max"))
            .sort("window_start"))
    assert got["window_start"].to_list() == want["window_start"].to_list()
    for ours, theirs in (("price_sum", "sum"), ("price_mean", "mean"), ("price_min", "min"), ("price_max", "max")):
        assert got.schema[ours] == pl.Float64
        for a, b in zip(got[ours].to_list(), want[theirs].to_list(), strict=True):
            assert math.isclose(a, float(b), rel_tol=1e-15), (ours, a, b)


# -- 20: plots and views --------------------------------------------------------------------------
def test_live_figure_embeds_plotly_js_once(monkeypatch: pytest.MonkeyPatch) -> None:
    pio = pytest.importorskip("plotly.io")
    from plotly.io._base_renderers import NotebookRenderer

    from rillet.views.plot import FigureView

    embedded: list[int] = []
    monkeypatch.setattr(NotebookRenderer, "activate", lambda self: embedded.append(1))
    default = pio.renderers.default
    try:
        pio.renderers.default = "notebook"  # plotly.js embedded in the notebook, no network
        run = _quiet(lambda: rl.stream(pl.DataFrame({"t": [1, 2, 15]}), time="t")
                     .window(rl.tumbling(10)).agg(rl.count()).run())
        view = FigureView(run.plot(y="count"))
        bundles = [view._repr_mimebundle_() for _ in range(5)]  # five redraws
    finally:
        pio.renderers.default = default
    assert len(embedded) <= 1  # once per kernel, not once per redraw
    for bundle in bundles:
        assert "text/html" in bundle and "Plotly.newPlot" in bundle["text/html"]
        assert len(bundle["text/html"]) < 100_000  # the figure, without plotly.js


@pytest.mark.parametrize("size", SIZES)
def test_sliding_line_breaks_across_a_gap(size: int | None) -> None:
    pytest.importorskip("plotly")
    start = dt.datetime(2010, 5, 1)
    # Readings every 5 minutes, then nothing for 5 hours, then readings again.
    times = [start + dt.timedelta(minutes=5 * i) for i in range(12)]
    times += [times[-1] + dt.timedelta(hours=5, minutes=5 * i) for i in range(12)]
    df = pl.DataFrame({"t": times, "glucose": [100 + i for i in range(24)]})
    run = _quiet(lambda: rl.stream(batches(df, size), time="t", watermark="0s").window(rl.sliding("30m"))
                 .agg(rl.mean("glucose").alias("mean"), rl.count().alias("n")).run())
    mean = run.plot(y="mean").data[0]
    ys = list(mean.y)
    breaks = [i for i, y in enumerate(ys) if y is None or (isinstance(y, float) and math.isnan(y))]
    assert len(breaks) == 1 and mean.connectgaps is False
    # The break lies inside the gap: after the last reading before it, plus the window.
    xs = list(mean.x)
    assert xs[breaks[0] - 1] == times[11] and xs[breaks[0]] == times[11] + dt.timedelta(minutes=30)
    assert xs[breaks[0] + 1] == times[12]
    # A count is 0 while the window is empty: from last + 30m until just before the next row.
    n = run.plot(y="n").data[0]
    pts = list(zip(n.x, n.y, strict=True))
    assert (times[11] + dt.timedelta(minutes=30), 0) in pts
    assert (times[12] - dt.timedelta(microseconds=1), 0) in pts
    assert len(pts) == 24 + 2
    # Rows closer than the window stay joined: no break in the first twelve.
    assert all(y is not None for y in ys[:breaks[0]])


def test_text_columns_render_plain_and_left_aligned() -> None:
    from html.parser import HTMLParser

    df = pl.DataFrame({"t": [1, 2, 15], "service": ["s3.amazonaws.com", "kms", 'say "hi"'], "x": [1, 2, 3]})
    q = rl.stream(df, time="t", watermark=0).window(rl.tumbling(10), by="service").agg(rl.sum("x"))
    run = _quiet(q.run)

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.cells: list[tuple[str, str]] = []
            self._align: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "td":
                style = dict(attrs).get("style") or ""
                self._align = re.search(r"text-align: (\w+)", style).group(1)  # type: ignore[union-attr]
                self.cells.append((self._align, ""))

        def handle_endtag(self, tag: str) -> None:
            if tag == "td":
                self._align = None

        def handle_data(self, data: str) -> None:
            if self._align is not None:
                align, text = self.cells[-1]
                self.cells[-1] = (align, text + data)

    handle = q.start()
    _quiet(lambda: handle.wait(timeout=30))
    for html in (run._repr_html_(), handle._repr_html_()):
        parser = Cells()
        parser.feed(html)
        for value in df["service"]:
            assert ("left", value) in parser.cells  # as it is: not quoted
        for total in run.output["x_sum"]:
            assert ("right", str(total)) in parser.cells  # numbers right-aligned
