"""The engine under hostile input: extreme times, overflowing sums, window layouts that would
explode, session changelogs read by an upsert consumer, and coalesced amendments.

Each test is named after what broke. Oracles are polars on the same data (``dt.truncate``,
``sum``, ``mean``), a brute-force replay, or the same query in another mode.
"""
from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import batches
from hypothesis import given
from hypothesis import strategies as st

import rillet as rl

# These inputs are hostile on purpose: most of their rows may be rejected, which a run
# reports with a DataLossWarning (tested in its own file); here the rows themselves are checked.
pytestmark = pytest.mark.filterwarnings("ignore::rillet.DataLossWarning")

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)
SIZES = pytest.mark.parametrize("size", [1, 7, None])
REAL = Path("/work/shared/data/real")
US_PER_S = 10**6


def _datetimes(values: list[int | None], unit: str = "us", tz: str | None = None) -> pl.Series:
    return pl.Series("t", values, dtype=pl.Int64).cast(pl.Datetime(unit, tz))  # type: ignore[arg-type]


def _accounting(run: rl.Run) -> None:
    m = run.metrics
    assert m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"], m
    assert run.rejected.height == m["rows_rejected"]


# -- item 4: Datetimes beyond Python's years ------------------------------------------------
@SIZES
def test_a_datetime_after_9999_is_accepted_and_metrics_show_the_watermark(size: int | None) -> None:
    year_10000 = 253_402_300_800 * US_PER_S  # 10000-01-01T00:00:00Z
    times = [year_10000 + 90 * 60 * US_PER_S, year_10000 + 10 * 60 * US_PER_S, year_10000 + 200 * 60 * US_PER_S]
    df = pl.DataFrame({"t": _datetimes(times), "x": [1, 2, 3]})
    run = (rl.stream(batches(df, size), time="t", watermark="1h")
           .window(rl.tumbling("1h"), lateness="2h").agg(rl.count(), rl.sum("x")).run())
    _accounting(run)
    assert run.metrics["rows_accepted"] == 3
    expected = (df.with_columns(pl.col("t").dt.truncate("1h").alias("window_start"))
                .group_by("window_start").agg(pl.len().cast(pl.Int64).alias("count"), pl.col("x").sum().alias("x_sum"))
                .sort("window_start"))
    assert run.output.sort("window_start").select("window_start", "count", "x_sum").equals(expected)
    # The watermark (year 10000) cannot be a Python datetime: it is shown as RFC 3339 text.
    assert run.metrics["watermark"] == "+10000-01-01T02:20:00+00:00"
    assert run.metrics["max_event_time"] == "+10000-01-01T03:20:00+00:00"


@SIZES
def test_a_watermark_before_year_1_is_shown_without_crashing(size: int | None) -> None:
    year_1 = -62_135_596_800 * US_PER_S  # 0001-01-01T00:00:00Z
    times = [year_1 + 30 * US_PER_S, year_1 + 90 * US_PER_S, 0]
    df = pl.DataFrame({"t": _datetimes(times)})
    q = rl.stream(batches(df, size), time="t", watermark="1h").window(rl.tumbling("1m")).agg(rl.count())
    first = rl.stream(df.head(2), time="t", watermark="1h").window(rl.tumbling("1m")).agg(rl.count()).run()
    _accounting(first)
    # A watermark one hour before year 1 (0000-12-31T23:01:30Z).
    assert first.metrics["watermark"] == "0000-12-31T23:01:30+00:00"
    run = q.run()
    _accounting(run)
    assert run.metrics["rows_accepted"] == 3
    assert run.output["count"].to_list() == [1, 1, 1]


@SIZES
def test_nanosecond_time_at_the_edges_is_rejected_only_when_its_window_cannot_be_written(
        size: int | None) -> None:
    # Tumbling 1h: the hour of i64::MIN starts before it, that of i64::MAX ends after it.
    edge_hour = (I64_MAX // 3_600_000_000_000) * 3_600_000_000_000
    df = pl.DataFrame({"t": _datetimes([0, I64_MIN + 5, I64_MAX, edge_hour - 1, None], "ns")})
    run = rl.stream(batches(df, size), time="t").window(rl.tumbling("1h")).agg(rl.count()).run()
    _accounting(run)
    assert run.metrics["rows_rejected"] == 3
    reasons = run.rejected["reason"].to_list()
    assert reasons[2] == "null time"
    for r in reasons[:2]:
        assert "outside the times this window layout supports" in r and "1677-09-21" in r, r
    ok = df.filter(pl.col("t").dt.epoch("ns").is_in([0, edge_hour - 1]))
    expected = ok.select(pl.col("t").dt.truncate("1h").alias("window_start")).sort("window_start")
    assert run.output["window_start"].to_list() == expected["window_start"].to_list()


# -- item 5: a calendar window at the i64 maximum spun forever ------------------------------
@pytest.mark.parametrize("every", ["1d", "1w"])
@pytest.mark.parametrize("tz", ["America/New_York", "Europe/Paris"])
def test_a_time_at_the_i64_maximum_with_a_zone_and_day_windows_finishes(every: str, tz: str) -> None:
    """Run in a child process with a time limit, so a hang fails the test instead of stalling
    the suite."""
    code = textwrap.dedent(f"""
        import polars as pl, rillet as rl
        t = pl.Series("t", [0, {I64_MAX}], dtype=pl.Int64).cast(pl.Datetime("ns", {tz!r}))
        run = rl.stream(pl.DataFrame({{"t": t}}), time="t").window(rl.tumbling({every!r})).agg(rl.count()).run()
        m = run.metrics
        print(m["rows_in"], m["rows_accepted"], m["rows_rejected"], run.output.height)
        print(run.rejected["reason"][0])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    counts, reason = done.stdout.splitlines()[:2]
    assert counts == "2 1 1 1"
    assert "outside the times this window layout supports" in reason


# -- item 6: calendar windows lost rows outside the calendar --------------------------------
@SIZES
@pytest.mark.parametrize("spec", [rl.tumbling("1mo"), rl.tumbling("1y"), rl.tumbling("1d", tz="Europe/Paris"),
                                  rl.hopping("3d", "1d", tz="Asia/Tokyo")], ids=repr)
def test_calendar_windows_reject_a_time_outside_the_calendar_with_the_supported_range(
        spec: rl.WindowSpec, size: int | None) -> None:
    jan = 1_704_067_200 * US_PER_S  # 2024-01-01
    df = pl.DataFrame({"t": _datetimes([jan, I64_MIN, jan + 86_400 * US_PER_S, I64_MAX], "us", "UTC")})
    run = rl.stream(batches(df, size), time="t").window(spec).agg(rl.count()).run()
    _accounting(run)
    assert run.metrics["rows_accepted"] == 2
    assert run.metrics["rows_rejected"] == 2
    for reason in run.rejected["reason"]:
        # The range of years the calendar can place (chrono's: -262143 to 262142).
        assert "outside the times this window layout supports" in reason, reason
        assert "-262143" in reason or "-262144" in reason, reason
    assert run.output["count"].sum() == (2 if spec.kind == "tumbling" else 6)


# -- item 12: float sums that overflow, top_k weights beyond Int64 --------------------------
def _overflowing_sum(xs: pl.Series) -> float:
    """The documented float sum: polars' sum, except that the positive and the negative values
    are summed apart first, so an overflow does not depend on the order rows arrive in (or on
    how windows are cut into slices): both sides overflowing is inf - inf, NaN."""
    pos, neg = xs.filter(xs >= 0).sum(), xs.filter(xs < 0).sum()
    if math.isinf(pos) or math.isinf(neg):
        return pos + neg
    return xs.sum()


OVERFLOWS = {
    "in order": ([0, 1, 2, 11, 12, 13, 25, 26, 31, 32],
                 [1e308, 1e308, 1.0, -1e308, -1e308, 3.0, 1e308, float("-inf"), 1e308, -1e308]),
    # Rows out of order: [0, 20) sees +1e308 twice, then -1e308 twice from earlier times.
    "out of order": ([15, 16, 5, 6, 24, 31, 33], [1e308, 1e308, -1e308, -1e308, 2.0, 1e308, 1e308]),
}


@SIZES
@pytest.mark.parametrize("data", OVERFLOWS)
@pytest.mark.parametrize("spec", [rl.tumbling(10), rl.tumbling(20), rl.hopping(20, 10), rl.cumulative(20, 10)],
                         ids=repr)
@pytest.mark.parametrize("emit", ["final", "amend"])
def test_float_sum_and_mean_that_overflow_are_inf_like_polars(spec: rl.WindowSpec, size: int | None,
                                                              data: str, emit: str) -> None:
    t, x = OVERFLOWS[data]
    df = pl.DataFrame({"t": t, "x": x})
    got = (rl.stream(batches(df, size), time="t", watermark=20).window(spec, emit=emit)
           .agg(rl.sum("x"), rl.mean("x")).collect())
    if emit == "amend":
        got = got.sort("revision").group_by("window_start", maintain_order=True).last()
    # polars on the rows of each window, window by window (see _overflowing_sum).
    for row in got.iter_rows(named=True):
        rows = df.filter((pl.col("t") >= row["window_start"]) & (pl.col("t") < row["window_end"]))["x"]
        total = _overflowing_sum(rows)
        mean = total / rows.len() if math.isinf(total) or math.isnan(total) else rows.mean()
        for name, value in (("x_sum", total), ("x_mean", mean)):
            assert row[name] == value or (math.isnan(row[name]) and math.isnan(value)), (row, name, value)
    # Some window overflowed (tumbling(20) on the rows in order: both ways in each, so NaN).
    assert any(math.isinf(v) or math.isnan(v) for v in got["x_sum"].to_list())


@SIZES
def test_top_k_weight_total_above_int64_saturates(size: int | None) -> None:
    df = pl.DataFrame({"t": [0, 1, 2, 3, 12], "ip": ["a", "a", "b", "b", "a"],
                       "bytes": [I64_MAX, I64_MAX, 5, 7, 1]})
    run = (rl.stream(batches(df, size), time="t").window(rl.tumbling(10))
           .agg(rl.top_k("ip", 2, weight="bytes"), rl.count()).run())
    assert run.output.height == 2  # no window lost at emission
    first = run.output["ip_top_k"][0].to_list()
    assert first == [{"value": "a", "weight": I64_MAX}, {"value": "b", "weight": 12}]
    assert run.output["ip_top_k"][1].to_list() == [{"value": "a", "weight": 1}]
    # The same with approx=True keeps its error field Int64 as well.
    approx = (rl.stream(batches(df, size), time="t").window(rl.tumbling(10))
              .agg(rl.top_k("ip", 2, weight="bytes", approx=True)).collect())
    assert approx["ip_top_k"][0].to_list()[0] == {"value": "a", "weight": I64_MAX, "error": 0}


# -- item 11: window layouts that put millions of windows on a row --------------------------
@pytest.mark.parametrize("build, count", [
    (lambda: rl.cumulative("365d", "1s"), "31,536,000"),
    (lambda: rl.hopping("1d", "1s"), "86,400"),
    (lambda: rl.hopping(dt.timedelta(hours=5), dt.timedelta(seconds=1)), "18,000"),
    (lambda: rl.hopping(20_000, 1), "20,000"),
    (lambda: rl.hopping("1000y", "1mo", tz="Europe/Paris"), "12,000"),
], ids=["cumulative-365d-1s", "hopping-1d-1s", "hopping-timedelta", "hopping-int", "hopping-months"])
def test_too_many_windows_per_row_is_refused_before_any_row(build: Any, count: str) -> None:
    with pytest.raises(rl.ConfigError) as e:
        build()
    msg = str(e.value)
    assert f"{count} windows on every row" in msg and "limit of 10,000" in msg, msg
    assert "or longer" in msg


def test_the_windows_per_row_limit_allows_ten_thousand() -> None:
    df = pl.DataFrame({"t": [0, 5]})
    out = rl.stream(df, time="t").window(rl.hopping(10_000, 1)).agg(rl.count()).collect()
    # Brute force: every window [s, s + 10000) with s in (t - 10000, t] holds the rows within.
    expected = sum(1 for s in range(-9_999, 6) if any(s <= t < s + 10_000 for t in (0, 5)))
    assert out.height == expected
    assert rl.cumulative("1d", "10s").kind == "cumulative"


def test_the_windows_per_row_limit_is_the_engines() -> None:
    from rillet import _core
    from rillet.plan import windows as _windows

    assert _windows.MAX_WINDOWS_PER_ROW == _core.MAX_WINDOWS_PER_ROW == 10_000


def test_hopping_within_the_windows_per_row_limit_is_allowed() -> None:
    assert rl.hopping("100y", "1mo").kind == "hopping"  # 1,200 windows a row
    assert rl.hopping("1d", "10s").kind == "hopping"  # 8,640


# -- item 14 (part): ISO text times outside 1677-2262 ---------------------------------------
@SIZES
def test_iso_text_times_outside_1677_2262_are_accepted(size: int | None) -> None:
    texts = ["0001-01-01T00:00:00Z", "1500-06-01T12:30:00+02:00", "2020-01-01T00:00:00Z",
             "9999-12-31T23:59:59Z", "not a time"]
    df = pl.DataFrame({"t": texts})
    run = rl.stream(batches(df, size), time="t").window(rl.tumbling("1h")).agg(rl.count()).run()
    _accounting(run)
    assert run.metrics["rows_rejected"] == 1
    assert run.rejected["reason"][0].startswith("unparseable time")
    # polars' own parser, in microseconds, truncated to the hour.
    parsed = (df.head(4).select(pl.col("t").str.to_datetime(time_unit="us", time_zone="UTC"))
              .select(pl.col("t").dt.truncate("1h").alias("window_start")).sort("window_start"))
    assert run.output.sort("window_start")["window_start"].to_list() == parsed["window_start"].to_list()


# -- item 17: a session that grows or merges in the changelog -------------------------------
def _upsert_ignoring_minus_u(log: pl.DataFrame, ident: list[str]) -> dict[tuple, tuple]:
    """An upsert sink (Flink's): +I/+U upsert by key, -D deletes, -U is ignored."""
    values = [c for c in log.columns if c not in ident and c != "op"]
    state: dict[tuple, tuple] = {}
    for row in log.iter_rows(named=True):
        key = tuple(row[c] for c in ident)
        if row["op"] in ("+I", "+U"):
            state[key] = tuple(row[c] for c in values)
        elif row["op"] == "-D":
            state.pop(key, None)
    return state


def _session_stream(seed: int, n: int = 120) -> pl.DataFrame:
    import random

    r = random.Random(seed)
    clock, t, k, x = 0, [], [], []
    for _ in range(n):
        clock += r.choice([0, 1, 2, 4, 9])
        t.append(clock - (r.randint(0, 25) if r.random() < 0.3 else 0))
        k.append(r.choice(["a", "b", None]))
        x.append(r.randint(0, 9))
    return pl.DataFrame({"t": t, "k": k, "x": x})


@SIZES
@pytest.mark.parametrize("seed", range(6))
def test_session_changelog_deletes_old_bounds_and_inserts_new_ones(seed: int, size: int | None) -> None:
    df = _session_stream(seed)
    ident = ["k", "window_start", "window_end"]

    def q(emit: str) -> rl.Query:
        return (rl.stream(batches(df, size), time="t", watermark=3)
                .window(rl.session(5), by="k", lateness=40, emit=emit).agg(rl.count(), rl.sum("x")))

    log, final = q("changelog").collect(), q("final").collect()
    state = _upsert_ignoring_minus_u(log, ident)
    expected = {tuple(r[c] for c in ident): (r["count"], r["x_sum"]) for r in final.iter_rows(named=True)}
    assert state == expected
    # -U/+U only for the same bounds; a grown or merged session is -D (old) then +I (new).
    rows = log.rows(named=True)
    for i, row in enumerate(rows):
        if row["op"] == "-U":
            nxt = rows[i + 1]
            assert nxt["op"] == "+U" and all(nxt[c] == row[c] for c in ident)


def test_session_that_grows_is_deleted_then_inserted() -> None:
    """gap 5: rows 0 and 2 make [0, 7), complete at 10; the late row 4 grows it to [0, 9)."""
    df = pl.DataFrame({"t": [0, 2, 10, 4]})
    log = (rl.stream(df, time="t").window(rl.session(5), lateness=100, emit="changelog")
           .agg(rl.count()).collect())
    assert log.rows() == [(0, 7, "+I", 2), (0, 7, "-D", 2), (0, 9, "+I", 3), (10, 15, "+I", 1)]


# -- item 18: one revision per late row -----------------------------------------------------
def _cloudtrail() -> pl.DataFrame:
    import json

    path = REAL / "cloudtrail_invictus" / "cloudtrail.jsonl"
    if not path.exists():
        pytest.skip("real CloudTrail data not present")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pl.DataFrame({"eventTime": [r["eventTime"] for r in rows],
                         "eventSource": [r["eventSource"] for r in rows]})


@pytest.mark.parametrize("emit", ["amend", "changelog"])
def test_amend_revise_watermark_coalesces_and_is_batch_independent(emit: str) -> None:
    df = _cloudtrail()

    def q(source: Any, emit: str, revise: str = "row") -> rl.Query:
        w = rl.stream(source, time="eventTime").window(
            rl.tumbling("1m"), by="eventSource", lateness="15m", emit=emit,
            **({} if emit == "final" else {"revise": revise}))
        return w.agg(rl.count())

    final = q(df, "final").collect()
    per_row = q(df, emit).collect()
    whole = q(df, emit, "watermark").collect()
    for size in (1, 7):
        assert q(batches(df, size), emit, "watermark").collect().equals(whole)
    ident = ["eventSource", "window_start", "window_end"]
    if emit == "amend":
        last = whole.sort("revision").group_by(ident, maintain_order=True).last().drop("revision")
        assert last.sort(ident).equals(final.sort(ident))
        def most(out: pl.DataFrame) -> int:
            return out.group_by(ident).len()["len"].max()

        assert most(whole) < most(per_row)
        assert whole.height < per_row.height
    else:
        from test_emission_modes import replay_changelog

        state = replay_changelog(whole, ident)
        assert state == {tuple(r[c] for c in ident): (r["count"],) for r in final.iter_rows(named=True)}
        assert whole.height < per_row.height


@SIZES
@pytest.mark.parametrize("spec", [rl.session(5), rl.sliding(10), rl.hopping(20, 10)], ids=repr)
def test_revise_watermark_ends_at_the_final_rows_for_every_window_kind(spec: rl.WindowSpec,
                                                                       size: int | None) -> None:
    df = _session_stream(3, 150)
    by = "k"

    def q(source: Any, **kw: Any) -> rl.Query:
        return (rl.stream(source, time="t", watermark=2).window(spec, by=by, lateness=30, **kw)
                .agg(rl.count(), rl.sum("x")))

    final = q(df).collect()
    amend = q(batches(df, size), emit="amend", revise="watermark").collect()
    assert amend.equals(q(df, emit="amend", revise="watermark").collect())
    ident = [by, *(["t"] if spec.kind == "sliding" else ["window_start", "window_end"])]
    if spec.kind == "session":
        # Session bounds move as they grow: the last revision of each final session is its row.
        last = {tuple(r[c] for c in ident): (r["count"], r["x_sum"]) for r in amend.iter_rows(named=True)}
        for r in final.iter_rows(named=True):
            assert last[tuple(r[c] for c in ident)] == (r["count"], r["x_sum"])
    else:
        # The last revision of each window and key (sliding: of each row; rows of one key at
        # one time share their window, so their values) is the final row.
        last = amend.with_row_index("i").sort("i").group_by(ident, maintain_order=True).last()
        key = [*ident, "count", "x_sum"]
        assert last.select(key).sort(key).equals(final.select(key).unique().sort(key))


def test_revise_needs_an_updating_mode() -> None:
    df = pl.DataFrame({"t": [0]})
    with pytest.raises(rl.ConfigError, match="emit='amend' or emit='changelog'"):
        rl.stream(df, time="t").window(rl.tumbling(10), revise="watermark")
    with pytest.raises(rl.ConfigError, match="revise='each'"):
        rl.stream(df, time="t").window(rl.tumbling(10), emit="amend", revise="each")


# -- the fuzz that found items 4-6 ----------------------------------------------------------
EXTREMES = [I64_MIN, I64_MIN + 1, I64_MAX, I64_MAX - 1, 0, -1, None,
            253_402_300_800 * US_PER_S, -62_135_596_800 * US_PER_S - 1]  # year 10000, year 0
SPECS = [
    lambda: rl.tumbling("1h"), lambda: rl.hopping("2h", "1h"), lambda: rl.hopping("1h", "2h"),
    lambda: rl.cumulative("1d", "1h"), lambda: rl.session("1h"), lambda: rl.sliding("1h"),
    lambda: rl.tumbling("1d", tz="America/New_York"), lambda: rl.tumbling("1w", tz="Europe/Paris"),
    lambda: rl.tumbling("1mo"), lambda: rl.tumbling("1y", tz="Asia/Kolkata"),
    lambda: rl.hopping("3d", "1d", tz="Australia/Sydney"), lambda: rl.tumbling("1h", offset="7m"),
]


@given(
    times=st.lists(st.one_of(st.sampled_from(EXTREMES), st.integers(I64_MIN, I64_MAX)),
                   min_size=1, max_size=12),
    spec=st.sampled_from(range(len(SPECS))),
    unit=st.sampled_from(["ns", "us", "ms"]),
    emit=st.sampled_from(["final", "amend", "changelog"]),
    delay=st.sampled_from(["0s", "1h", "36500d"]),
    size=st.sampled_from([1, 3, None]),
)
def test_extreme_times_through_every_window_kind_keep_every_row(
        times: list[int | None], spec: int, unit: str, emit: str, delay: str, size: int | None) -> None:
    df = pl.DataFrame({"t": _datetimes(times, unit), "x": list(range(len(times)))})
    try:
        run = (rl.stream(batches(df, size), time="t", watermark=delay)
               .window(SPECS[spec](), lateness="1h", emit=emit).agg(rl.count(), rl.sum("x")).run())
    except rl.ConfigError:
        return  # a window layout the unit cannot hold at all, refused before any row
    _accounting(run)
    assert run.metrics["rows_in"] == len(times)
    assert run.late.height == run.metrics["rows_late"]
    window = SPECS[spec]()
    if emit == "final" and window.kind == "sliding":
        assert run.output.height == run.metrics["rows_accepted"]  # a row out per row in
    elif emit == "final" and not (window.kind == "hopping" and window.period == "1h"):
        # Every accepted row is counted in its windows (at least one) by the end-of-input
        # flush (the gappy hopping('1h', '2h') leaves rows between windows).
        assert run.output["count"].sum() >= run.metrics["rows_accepted"]


@SIZES
def test_revise_watermark_example_of_the_windows_page(size: int | None) -> None:
    """docs/windows.md: tumbling 10, lateness 50; rows 3, 12, 4, 5, 6, 25."""
    df = pl.DataFrame({"t": [3, 12, 4, 5, 6, 25]})

    def revisions(revise: str) -> list[tuple]:
        return (rl.stream(batches(df, size), time="t").window(rl.tumbling(10), lateness=50, emit="amend",
                                                              revise=revise)
                .agg(rl.count()).collect().filter(pl.col("window_start") == 0)
                .select("revision", "count").rows())

    assert revisions("row") == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert revisions("watermark") == [(0, 1), (1, 4)]


INT_SPECS = [
    lambda: rl.tumbling(10), lambda: rl.hopping(20, 10), lambda: rl.hopping(3, 8, offset=5),
    lambda: rl.cumulative(20, 5), lambda: rl.session(7), lambda: rl.sliding(10),
    lambda: rl.tumbling(2**62), lambda: rl.hopping(2**62, 2**61),
]


@given(
    times=st.lists(st.one_of(st.sampled_from([I64_MIN, I64_MAX, I64_MIN + 3, I64_MAX - 3, 0, None]),
                             st.integers(I64_MIN, I64_MAX)), min_size=1, max_size=12),
    spec=st.sampled_from(range(len(INT_SPECS))),
    emit=st.sampled_from(["final", "amend", "changelog"]),
    revise=st.sampled_from(["row", "watermark"]),
    delay=st.sampled_from([0, 5, 2**62]),
    size=st.sampled_from([1, 3, None]),
)
def test_extreme_integer_times_through_every_window_kind_keep_every_row(
        times: list[int | None], spec: int, emit: str, revise: str, delay: int, size: int | None) -> None:
    df = pl.DataFrame({"t": pl.Series(times, dtype=pl.Int64), "x": list(range(len(times)))})
    kw = {} if emit == "final" else {"revise": revise}
    whole = (rl.stream(df, time="t", watermark=delay)
             .window(INT_SPECS[spec](), lateness=2**40, emit=emit, **kw).agg(rl.count(), rl.sum("x")).run())
    _accounting(whole)
    cut = (rl.stream(batches(df, size), time="t", watermark=delay)
           .window(INT_SPECS[spec](), lateness=2**40, emit=emit, **kw).agg(rl.count(), rl.sum("x")).run())
    assert cut.output.equals(whole.output)
    assert cut.metrics["rows_rejected"] == whole.metrics["rows_rejected"]

