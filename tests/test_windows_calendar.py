"""Calendar windows: days, weeks, months, quarters and years on a time zone's wall clock.

Rules under test (API.md, Windows):

* month-based durations (mo, q, y) are always calendar-aligned; days and weeks follow ``tz=``,
  else the time column's zone, else the UTC epoch; an explicit ``tz=`` other than UTC aligns
  even sub-day windows on that zone's wall clock; weeks start on Monday;
* a window is ``[start, end)`` between two wall-clock boundaries mapped to instants, so days at
  DST changes last 23 or 25 hours; a boundary that falls in a DST gap (a wall-clock time that
  does not exist) maps to the first instant after the gap, and one that exists twice maps to
  its first occurrence;
* window_start / window_end keep the time column's dtype (unit and zone).

Two oracles:

* polars ``group_by_dynamic(every, closed="left", label="left")`` for tumbling 1d/1w/1mo/1q/1y
  in Europe/Paris and Australia/Sydney (opposite hemispheres, both DST changes of a year);
* a brute force written with ``zoneinfo`` (``WallClock`` below), where polars cannot serve:
  hopping windows across DST (polars #25410: group_by_dynamic with a period that crosses a
  non-existent wall time panicked, fixed only in recent versions), offsets across DST
  (polars #15966, open: wrong window starts with an offset when DST changes just before the
  first window), explicit ``tz=`` on another zone's column and sub-day wall-clock windows
  (polars has no such option), mixed spans such as "1d12h", and late rows. The brute force
  maps every wall-clock boundary to an instant with the rule above and assigns a row to the
  windows whose *instants* contain it; it shares no code with the engine.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import polars as pl
import pytest
from conftest import (
    Span,
    batches,
    reference_span_emissions,
    simulate_spans,
    span_aggregates,
    span_emissions_frame,
)
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import rillet as rl

UTC = dt.UTC
PER_SECOND = {"ms": 10**3, "us": 10**6, "ns": 10**9}
DAY = 86_400
HOUR = 3_600
MONDAY_SHIFT = 4 * DAY  # 1970-01-01 was a Thursday; week windows start on Monday


# -- the brute-force oracle -----------------------------------------------------------------
def parse_span(d: str) -> tuple[int, int]:
    """(months, seconds) of a duration string such as '1q', '1d12h' or '-30m'."""
    sign = -1 if d.startswith("-") else 1
    months = seconds = 0
    for n, u in re.findall(r"(\d+)(mo|q|y|w|d|h|m|s)", d):
        k = int(n)
        if u in ("mo", "q", "y"):
            months += k * {"mo": 1, "q": 3, "y": 12}[u]
        else:
            seconds += k * {"w": 7 * DAY, "d": DAY, "h": HOUR, "m": 60, "s": 1}[u]
    return sign * months, sign * seconds


class WallClock:
    """A zone's wall clock over integer instants counting ``per_second`` units per second."""

    def __init__(self, zone: str, per_second: int) -> None:
        self.zone = zoneinfo.ZoneInfo(zone)
        self.ps = per_second

    @cache  # noqa: B019 - a handful of instances per test run
    def _offset_at_second(self, second: int) -> int:
        off = dt.datetime.fromtimestamp(second, tz=self.zone).utcoffset()
        assert off is not None
        return int(off.total_seconds())

    def offset(self, u: int) -> int:
        return self._offset_at_second(u // self.ps)

    def wall(self, u: int) -> int:
        """Local wall-clock time of instant u, as an instant-like integer."""
        return u + self.offset(u) * self.ps

    @cache  # noqa: B019
    def instant(self, w: int) -> int:
        """The first instant whose wall clock reads w or later: the earlier of two occurrences
        of a repeated wall time, the first instant after the gap for a skipped one."""
        ps = self.ps
        offsets = {self.offset(w + k * HOUR * ps) for k in (-30, -12, 0, 12, 30)}
        exact = [w - o * ps for o in offsets if self.wall(w - o * ps) == w]
        if exact:
            return min(exact)
        lo, hi = w - max(offsets) * ps, w - min(offsets) * ps
        assert self.wall(lo) < w <= self.wall(hi)
        while hi - lo > 1:  # wall() is increasing around a gap: bisect for the gap's end
            mid = (lo + hi) // 2
            if self.wall(mid) >= w:
                hi = mid
            else:
                lo = mid
        return hi


def _month_start_seconds(month: int) -> int:
    """Wall-clock seconds since 1970-01-01 of the first day of month (0 = January 1970)."""
    year, m = divmod(month, 12)
    return (dt.date(1970 + year, m + 1, 1) - dt.date(1970, 1, 1)).days * DAY


def _whole_weeks(d: str) -> bool:
    months, seconds = parse_span(d)
    return months == 0 and seconds % (7 * DAY) == 0


@dataclass(frozen=True)
class Layout:
    """A tumbling or hopping window layout as the user writes it."""

    every: str
    period: str | None = None  # None: tumbling
    offset: str | None = None
    tz: str | None = None

    def spec(self) -> rl.WindowSpec:
        if self.period is None:
            return rl.tumbling(self.every, offset=self.offset, tz=self.tz)
        return rl.hopping(self.period, self.every, offset=self.offset, tz=self.tz)

    def durations(self) -> list[str]:
        return [self.every] + ([self.period] if self.period else [])

    def zone_for(self, column_tz: str | None) -> str | None:
        """The zone whose wall clock the windows follow, or None for the fixed UTC grid."""
        zone = self.tz if self.tz is not None else column_tz
        if any(parse_span(d)[0] for d in self.durations()):
            return zone or "UTC"
        days = any(re.search(r"\d(d|w)", d) for d in self.durations())
        if days and zone not in (None, "UTC"):
            return zone
        if self.tz not in (None, "UTC"):
            return self.tz
        return None

    def windows_of(self, column_tz: str | None, unit: str) -> Callable[[int], list[Span]]:
        ps = PER_SECOND[unit]
        every_m, every_s = parse_span(self.every)
        period_m, period_s = parse_span(self.period or self.every)
        offset_s = parse_span(self.offset)[1] if self.offset else 0
        if _whole_weeks(self.every):
            offset_s += MONDAY_SHIFT
        zone = self.zone_for(column_tz)
        if zone is None:  # fixed windows on the UTC epoch grid
            E, P, O = every_s * ps, period_s * ps, offset_s * ps  # noqa: E741 (the formula's names)

            def fixed(t: int) -> list[Span]:
                first, last = (t - O - P) // E + 1, (t - O) // E
                return [(k * E + O, k * E + O + P) for k in range(first, last + 1)]
            return fixed

        clock = WallClock(zone, ps)
        O = offset_s * ps  # noqa: E741

        @cache
        def bounds(k: int) -> Span:
            if every_m:
                s = _month_start_seconds(k * every_m) * ps + O
                e = _month_start_seconds(k * every_m + period_m) * ps + O
            else:
                s = k * every_s * ps + O
                e = s + period_s * ps
            return clock.instant(s), clock.instant(e)

        slack = 3 * HOUR * ps  # more than any DST shift: candidates around the wall time

        def calendar(t: int) -> list[Span]:
            w = clock.wall(t)
            if every_m:
                day = dt.date(1970, 1, 1) + dt.timedelta(seconds=(w - O) // ps)
                k0 = ((day.year - 1970) * 12 + day.month - 1) // every_m
                ks = range(k0 - period_m // every_m - 2, k0 + 3)
            else:
                E, P = every_s * ps, period_s * ps
                ks = range((w - O - P - slack) // E, (w - O + slack) // E + 1)
            return [b for b in map(bounds, ks) if b[0] <= t < b[1]]
        return calendar


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def _seconds(d: dt.datetime) -> int:
    return int(d.timestamp())


@cache
def dst_changes(zone: str, years: tuple[int, ...] = (2024, 2025)) -> list[int]:
    """UTC seconds of the zone's offset changes in the given years (found hour by hour)."""
    clock = WallClock(zone, 1)
    out = []
    for year in years:
        start = _seconds(_utc(year, 1, 1))
        prev = clock.offset(start)
        for h in range(1, 366 * 24):
            cur = clock.offset(start + h * HOUR)
            if cur != prev:
                out.append(start + h * HOUR)
            prev = cur
    return out


def test_oracle_sanity() -> None:
    """The brute force itself, on facts checked by hand."""
    paris = WallClock("Europe/Paris", 1)
    # 2025-03-30: 02:00 CET -> 03:00 CEST at 01:00 UTC; 02:30 does not exist -> 01:00 UTC
    assert paris.instant(_seconds(_utc(2025, 3, 30, 2, 30))) == _seconds(_utc(2025, 3, 30, 1))
    # 2025-10-26: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:30 is at 00:30 and 01:30 UTC
    assert paris.instant(_seconds(_utc(2025, 10, 26, 2, 30))) == _seconds(_utc(2025, 10, 26, 0, 30))
    assert paris.wall(_seconds(_utc(2025, 10, 26, 1, 30))) == _seconds(_utc(2025, 10, 26, 2, 30))
    assert len(dst_changes("Europe/Paris")) == 4 and len(dst_changes("Australia/Sydney")) == 4
    assert dst_changes("Asia/Kolkata") == []
    day = Layout("1d").windows_of("Europe/Paris", "us")
    t = _seconds(_utc(2025, 3, 30, 12)) * 10**6
    assert day(t) == [(_seconds(_utc(2025, 3, 29, 23)) * 10**6, _seconds(_utc(2025, 3, 30, 22)) * 10**6)]
    assert Layout("1h").zone_for("Europe/Paris") is None  # sub-day, no tz=: the UTC grid
    assert Layout("1h", tz="Asia/Kolkata").zone_for(None) == "Asia/Kolkata"
    assert Layout("1mo").zone_for(None) == "UTC"
    assert Layout("1d", tz="UTC").zone_for("Europe/Paris") is None


# -- helpers --------------------------------------------------------------------------------
def frame(instants: list[dt.datetime | None], column_tz: str | None, unit: str = "us",
          **extra: list[Any]) -> pl.DataFrame:
    """A stream with a Datetime(unit, column_tz) column "t" built from aware UTC datetimes."""
    t = pl.Series("t", instants, dtype=pl.Datetime(unit, "UTC"))
    t = t.dt.convert_time_zone(column_tz) if column_tz else t.dt.replace_time_zone(None)
    return pl.DataFrame([t, *(pl.Series(k, v) for k, v in extra.items())])


def windows(spec: rl.WindowSpec, df: pl.DataFrame, **kw: Any) -> pl.DataFrame:
    """count / min / max of t per window, everything flushed, nothing late."""
    return (
        rl.stream(df, time="t", watermark="10000d")
        .window(spec, **kw)
        .agg(rl.count(), rl.min("t").alias("first"), rl.max("t").alias("last"))
        .collect()
    )


def in_utc(out: pl.DataFrame) -> list[tuple]:
    return out.with_columns(
        pl.col(c).dt.convert_time_zone("UTC") for c in out.columns
        if isinstance(out.schema[c], pl.Datetime)
    ).rows()


def assert_rows_inside_their_windows(out: pl.DataFrame) -> None:
    bad = out.filter((pl.col("first") < pl.col("window_start")) | (pl.col("last") >= pl.col("window_end")))
    assert bad.height == 0, bad


# -- polars as the oracle -------------------------------------------------------------------
ZONES = ["Europe/Paris", "Australia/Sydney"]


@st.composite
def instants_near_dst(draw: st.DrawFn, zone: str, spread_days: int) -> list[int]:
    """UTC instants (microseconds) around the zone's DST changes or anywhere in 2024-2025."""
    n = draw(st.integers(1, 60))
    changes = dst_changes(zone)
    out = []
    for _ in range(n):
        if draw(st.booleans()):
            centre = draw(st.sampled_from(changes))
            sec = centre + draw(st.integers(-spread_days * DAY, spread_days * DAY))
        else:
            sec = draw(st.integers(_seconds(_utc(2024, 1, 1)), _seconds(_utc(2025, 12, 31))))
        if draw(st.booleans()):
            sec -= sec % HOUR  # exactly on the hour: on boundaries and DST changes
        out.append(sec * 10**6 + draw(st.sampled_from([0, 0, 1, 999_999])))
    return out


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("every", ["1d", "1w", "1mo", "1q", "1y"])
@given(data=st.data())
def test_calendar_tumbling_matches_polars_group_by_dynamic(zone: str, every: str,
                                                          data: st.DataObject) -> None:
    """Tumbling calendar windows on a tz-aware column == polars group_by_dynamic on the same
    rows (arrival order shuffled; the watermark is far behind, so no row is late)."""
    spread = {"1d": 2, "1w": 10, "1mo": 40, "1q": 100, "1y": 400}[every]
    micros = data.draw(instants_near_dst(zone, spread))
    unit = data.draw(st.sampled_from(["ms", "us", "ns"]))
    df = pl.DataFrame({
        "t": pl.Series(micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
        .dt.convert_time_zone(zone).dt.cast_time_unit(unit),
        "x": pl.Series(range(len(micros)), dtype=pl.Int64),
    })
    run = (
        rl.stream(df, time="t", watermark="10000d")
        .window(rl.tumbling(every))
        .agg(rl.count(), rl.sum("x"))
        .run()
    )
    assert run.late.height == 0
    expected = (
        df.sort("t")
        .group_by_dynamic("t", every=every, closed="left", label="left", include_boundaries=True)
        .agg(pl.len().cast(pl.Int64).alias("count"), pl.col("x").sum().alias("x_sum"))
        .select(window_start="_lower_boundary", window_end="_upper_boundary", count="count",
                x_sum="x_sum")
    )
    # polars' boundaries carry the column's dtype too; rillet emits them ordered by end
    assert run.output.schema["window_start"] == pl.Datetime(unit, zone)
    assert_frame_equal(run.output, expected)


# -- the brute force on random streams with late rows ---------------------------------------
# Boundaries inside DST gaps and repeated hours have their own regression tests at the end of
# this file (test_windows_around_dst_changes_match_bruteforce and the two named ones).
LAYOUTS = [
    Layout("1d"), Layout("2d"), Layout("1d12h"), Layout("1w"), Layout("2w"), Layout("1mo"),
    Layout("2mo"), Layout("1q"), Layout("1y"), Layout("1d", offset="6h"),
    Layout("1w", offset="1d"), Layout("1mo", offset="-3h"),
    Layout("1d", period="3d"), Layout("12h", period="2d"), Layout("1d", period="1w"),
    Layout("2d", period="1d"),  # gaps: period < every
    Layout("1mo", period="2mo"), Layout("1q", period="1y"),
]
SUB_DAY = [Layout("1h"), Layout("3h"), Layout("2h", period="6h"), Layout("1h", offset="-1h")]
CAL_ZONES = ["Europe/Paris", "Australia/Sydney", "America/New_York", "America/Havana",
             "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@dataclass
class CalendarCase:
    df: pl.DataFrame  # rid, t, k, x, y in arrival order
    times: list[int | None]  # t in the column's unit (None: null time)
    layout: Layout
    column_tz: str | None
    unit: str
    delay: int  # seconds
    lateness: int  # seconds
    keys: list[str]

    def windows_of(self) -> Callable[[int], list[Span]]:
        return self.layout.windows_of(self.column_tz, self.unit)

    def query(self, source: Any = None, emit: str = "final") -> rl.Query:
        by = self.keys[0] if self.keys else None
        return (
            rl.stream(self.df if source is None else source, time="t",
                      watermark=f"{self.delay}s")
            .window(self.layout.spec(), by=by, lateness=f"{self.lateness}s", emit=emit)
            .agg(*span_aggregates())
        )


@st.composite
def calendar_cases(draw: st.DrawFn, max_rows: int = 40) -> CalendarCase:
    zone = draw(st.sampled_from(CAL_ZONES))
    explicit = draw(st.booleans())
    base_layout = draw(st.sampled_from(LAYOUTS + (SUB_DAY if explicit else [])))
    layout = Layout(base_layout.every, base_layout.period, base_layout.offset,
                    zone if explicit else None)
    column_tz = draw(st.sampled_from([None, "UTC", "Asia/Tokyo", zone])) if explicit else zone
    unit = draw(st.sampled_from(["ms", "us", "ns"]))
    ps = PER_SECOND[unit]
    months = any(parse_span(d)[0] for d in layout.durations())
    stride = draw(st.sampled_from([0, 600, HOUR, 6 * HOUR, DAY] + ([9 * DAY] if months else [])))
    jitter = draw(st.sampled_from([0, HOUR, DAY, 3 * DAY] + ([40 * DAY] if months else [])))
    changes = dst_changes(zone) or [_seconds(_utc(2024, 6, 1))]
    base = draw(st.sampled_from(changes)) - draw(st.integers(0, 3 * DAY))
    n = draw(st.integers(0, max_rows))
    times: list[int | None] = []
    for i in range(n):
        if draw(st.integers(0, 15)) == 0:
            times.append(None)
            continue
        # a coarse draw, so that disorder of the order of the jitter is common
        sec = base + i * stride + draw(st.integers(-8, 8)) * jitter // 8
        sec += draw(st.integers(0, min(jitter, HOUR)))
        if draw(st.booleans()):
            sec -= sec % HOUR
        times.append(sec * ps + draw(st.sampled_from([0, 0, 1, ps - 1])))
    delay = draw(st.sampled_from([0, 0, HOUR, DAY] + ([20 * DAY] if months else [])))
    lateness = draw(st.sampled_from([0, 0, 2 * HOUR, DAY] + ([20 * DAY] if months else [])))
    keys = draw(st.sampled_from([[], ["k"]]))
    t = pl.Series("t", times, dtype=pl.Int64).cast(pl.Datetime(unit, "UTC"))
    t = t.dt.convert_time_zone(column_tz) if column_tz else t.dt.replace_time_zone(None)
    df = pl.DataFrame([
        pl.Series("rid", range(n), dtype=pl.Int64),
        t,
        pl.Series("k", draw(st.lists(st.sampled_from(["a", "b", None]), min_size=n, max_size=n)),
                  dtype=pl.String),
        pl.Series("x", draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)), min_size=n,
                                     max_size=n)), dtype=pl.Int64),
        pl.Series("y", draw(st.lists(st.one_of(st.none(), st.integers(-8, 8).map(lambda v: v / 4)),
                                     min_size=n, max_size=n)), dtype=pl.Float64),
    ])
    return CalendarCase(df, times, layout, column_tz, unit, delay, lateness, keys)


def _row_keys(c: CalendarCase) -> list[tuple]:
    return [tuple(r) for r in c.df.select(c.keys).iter_rows()] if c.keys else [()] * c.df.height


@given(calendar_cases())
def test_calendar_windows_match_bruteforce_with_late_rows(c: CalendarCase) -> None:
    """Output (rows and order), late rows and rejected rows == the row-at-a-time reference
    over brute-force calendar windows, for disordered streams with a delay and lateness."""
    ps = PER_SECOND[c.unit]
    run = c.query().run()
    emissions = reference_span_emissions(c.times, _row_keys(c), c.delay * ps, c.lateness * ps,
                                         c.windows_of())
    expected = span_emissions_frame(emissions, c.df, c.keys, pl.Datetime(c.unit, c.column_tz))
    assert_frame_equal(run.output, expected, rel_tol=1e-9, abs_tol=1e-9)
    sim = simulate_spans(c.times, c.delay * ps, c.lateness * ps, c.windows_of())
    rids = c.df["rid"].to_list()
    assert run.late["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "late"]
    late_by = [lb for lb, s in zip(sim.late_by, sim.status) if s == "late"]
    assert run.late["late_by"].to_list() == pl.Series(late_by, dtype=pl.Int64).cast(
        pl.Duration(c.unit)).to_list()
    assert run.rejected["rid"].to_list() == [r for r, s in zip(rids, sim.status) if s == "rejected"]
    assert run.metrics["rows_accepted"] == sim.status.count("accepted")


@given(calendar_cases(max_rows=25))
def test_calendar_amend_matches_bruteforce_replay(c: CalendarCase) -> None:
    ps = PER_SECOND[c.unit]
    out = c.query(emit="amend").collect()
    emissions = reference_span_emissions(c.times, _row_keys(c), c.delay * ps, c.lateness * ps,
                                         c.windows_of(), emit="amend")
    expected = span_emissions_frame(emissions, c.df, c.keys, pl.Datetime(c.unit, c.column_tz),
                                    revision=True)
    assert_frame_equal(out, expected, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("emit", ["final", "amend"])
@given(c=calendar_cases())
def test_calendar_batch_sizes_1_7_whole_are_identical(c: CalendarCase, emit: str) -> None:
    whole = c.query(emit=emit).run()
    for size in (1, 7):
        run = c.query(source=batches(c.df, size), emit=emit).run()
        assert_frame_equal(run.output, whole.output, check_exact=True)
        assert_frame_equal(run.late, whole.late, check_exact=True)
        assert_frame_equal(run.rejected, whole.rejected, check_exact=True)
        for key in ("rows_accepted", "rows_late", "rows_emitted", "watermark", "open_windows"):
            assert run.metrics[key] == whole.metrics[key], key


# -- named cases ----------------------------------------------------------------------------
DST = {
    # zone: (spring-forward day, fall-back day), as local dates in 2025
    "Europe/Paris": (dt.date(2025, 3, 30), dt.date(2025, 10, 26)),
    "Australia/Sydney": (dt.date(2025, 10, 5), dt.date(2025, 4, 6)),
}


def _day_windows_around(zone: str, day: dt.date) -> pl.DataFrame:
    z = zoneinfo.ZoneInfo(zone)
    local = [dt.datetime.combine(day + dt.timedelta(days=d), dt.time(h), tzinfo=z)
             for d in (-1, 0, 1) for h in (0, 1, 2, 3, 4, 12, 23)]
    df = frame([x.astimezone(UTC) for x in local], zone)
    return windows(rl.tumbling("1d"), df)


def _local_midnight(zone: str, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=zoneinfo.ZoneInfo(zone))


@pytest.mark.parametrize("zone", ZONES)
def test_dst_day_is_23_hours_in_spring(zone: str) -> None:
    """The day clocks go forward (Paris 2025-03-30, Sydney 2025-10-05) has 23 hours; the days
    around it have 24. Each row sits in the day of its local date (7 local hours a day, 02:00
    does not exist that day and reads 03:00)."""
    day = DST[zone][0]
    out = _day_windows_around(zone, day)
    assert out.schema["window_start"] == pl.Datetime("us", zone)
    lengths = (out["window_end"] - out["window_start"]).to_list()
    assert lengths == [dt.timedelta(hours=24), dt.timedelta(hours=23), dt.timedelta(hours=24)]
    assert out["window_start"].to_list() == [_local_midnight(zone, day + dt.timedelta(days=d))
                                             for d in (-1, 0, 1)]
    assert out["count"].to_list() == [7, 7, 7]
    assert_rows_inside_their_windows(out)


@pytest.mark.parametrize("zone", ZONES)
def test_dst_day_is_25_hours_in_autumn(zone: str) -> None:
    """The day clocks go back (Paris 2025-10-26, Sydney 2025-04-06) has 25 hours."""
    day = DST[zone][1]
    out = _day_windows_around(zone, day)
    lengths = (out["window_end"] - out["window_start"]).to_list()
    assert lengths == [dt.timedelta(hours=24), dt.timedelta(hours=25), dt.timedelta(hours=24)]
    assert out["window_start"].to_list() == [_local_midnight(zone, day + dt.timedelta(days=d))
                                             for d in (-1, 0, 1)]
    assert out["count"].to_list() == [7, 7, 7]
    assert_rows_inside_their_windows(out)


@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Paris", "Australia/Sydney"])
def test_month_window_across_leap_day(zone: str | None) -> None:
    """February 2024 has 29 days: [2024-02-01, 2024-03-01) local is 29 * 24 hours (no DST
    change in February in these zones). The last microsecond of Feb 29 is in February, the
    first of March 1 is not."""
    z = zoneinfo.ZoneInfo(zone or "UTC")
    local = [dt.datetime(2024, 1, 31, 23, 59, 59, 999_999), dt.datetime(2024, 2, 1),
             dt.datetime(2024, 2, 28, 12), dt.datetime(2024, 2, 29, 23, 59, 59, 999_999),
             dt.datetime(2024, 3, 1)]
    df = frame([x.replace(tzinfo=z).astimezone(UTC) for x in local], zone)
    out = windows(rl.tumbling("1mo"), df)
    lengths = (out["window_end"] - out["window_start"]).to_list()
    assert lengths[1] == dt.timedelta(days=29)
    assert out["count"].to_list() == [1, 3, 1]
    starts = out["window_start"].to_list()
    if zone is not None:
        starts = [s.astimezone(z).replace(tzinfo=None) for s in starts]
    assert starts == [dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)]
    # the year and the first quarter hold them all; bounds are local midnights
    local_bounds = lambda out: [  # noqa: E731
        tuple(v.astimezone(z).replace(tzinfo=None) if zone else v for v in r[:2])
        for r in out.rows()]
    assert local_bounds(windows(rl.tumbling("1y"), df)) == [
        (dt.datetime(2024, 1, 1), dt.datetime(2025, 1, 1))]
    assert local_bounds(windows(rl.tumbling("1q"), df)) == [
        (dt.datetime(2024, 1, 1), dt.datetime(2024, 4, 1))]


@pytest.mark.parametrize("zone", [None, "Europe/Paris", "Australia/Sydney", "America/New_York"])
def test_week_windows_start_on_monday(zone: str | None) -> None:
    """'1w' windows start at local midnight on Monday (as polars' dt.truncate('1w')), every
    day of the year; weeks with a DST change last 167 or 169 hours."""
    z = zoneinfo.ZoneInfo(zone or "UTC")
    instants = [_utc(2025, 1, 1) + dt.timedelta(hours=13 * i) for i in range(680)]
    df = frame(instants, zone)
    out = windows(rl.tumbling("1w"), df)
    for start, end in zip(out["window_start"], out["window_end"]):
        local = start.astimezone(z) if zone else start
        assert local.weekday() == 0 and local.time() == dt.time(0), local
        assert (end - start) in {dt.timedelta(hours=h) for h in (167, 168, 169)}
    assert out["count"].sum() == len(instants)
    assert_rows_inside_their_windows(out)
    # same windows as polars truncate('1w')
    truncated = df.select(pl.col("t").dt.truncate("1w").unique().sort())["t"]
    assert out["window_start"].to_list() == truncated.to_list()
    # hopping with a week step starts on Monday too
    hop = windows(rl.hopping("2w", "1w"), df)
    assert all((s.astimezone(z) if zone else s).weekday() == 0 for s in hop["window_start"])


@pytest.mark.parametrize("column_tz", [None, "UTC", "Europe/Paris"])
def test_offset_equivalence(column_tz: str | None) -> None:
    """Reference edge case 18: 10-minute tumbling windows with offsets -16m, -6m and +4m are
    the same grid (offsets that differ by a multiple of the size). All put 2021-06-30 00:00:04
    into [2021-06-29 23:54, 2021-06-30 00:04); fixed durations are aligned in UTC whatever the
    column's zone (Paris is a whole number of hours from UTC, so the same local minutes)."""
    t = _utc(2021, 6, 30, 0, 0, 4)
    df = frame([t, _utc(2021, 6, 30, 0, 4)], column_tz)
    outs = [windows(rl.tumbling("10m", offset=off), df) for off in ("-16m", "-6m", "4m")]
    for out in outs[1:]:
        assert_frame_equal(out, outs[0])
    rows = in_utc(outs[0])
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (_utc(2021, 6, 29, 23, 54), _utc(2021, 6, 30, 0, 4), 1),
        (_utc(2021, 6, 30, 0, 4), _utc(2021, 6, 30, 0, 14), 1),  # a boundary is the next window
    ]
    # the same with an integer time column in seconds
    ints = pl.DataFrame({"t": [_seconds(t)]})
    got = {
        rl.stream(ints, time="t").window(rl.tumbling(600, offset=off)).agg(rl.count())
        .collect().rows()[0]
        for off in (-960, -360, 240)
    }
    assert got == {(_seconds(_utc(2021, 6, 29, 23, 54)), _seconds(_utc(2021, 6, 30, 0, 4)), 1)}


def test_mixed_duration_1d12h() -> None:
    """'1d12h' is a 36-hour span. On a UTC column the windows are the epoch grid of 36 hours:
    2024-01-01 00:00 UTC is hour 473352 since the epoch, 473352 = 13148 * 36 + 24, so its
    window is [2023-12-31 00:00, 2024-01-01 12:00). On a Paris column (days follow the zone)
    the 36 hours are counted on the wall clock from the local epoch 1970-01-01 00:00, so the
    window holding the spring DST change is 35 hours long."""
    utc_out = windows(rl.tumbling("1d12h"), frame([_utc(2024, 1, 1), _utc(2024, 1, 1, 12)], "UTC"))
    assert [(r[0], r[1], r[2]) for r in in_utc(utc_out)] == [
        (_utc(2023, 12, 31), _utc(2024, 1, 1, 12), 1),
        (_utc(2024, 1, 1, 12), _utc(2024, 1, 3), 1),
    ]
    # Paris: local wall hours since the local epoch; 2025-03-30 00:00 local is safely inside
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    t = dt.datetime(2025, 3, 30, 12, tzinfo=paris)
    wall_hours = (t.replace(tzinfo=None) - dt.datetime(1970, 1, 1)) // dt.timedelta(hours=1)
    k = wall_hours // 36
    start = (dt.datetime(1970, 1, 1) + dt.timedelta(hours=36 * k)).replace(tzinfo=paris)
    end = (dt.datetime(1970, 1, 1) + dt.timedelta(hours=36 * k + 36)).replace(tzinfo=paris)
    out = windows(rl.tumbling("1d12h"), frame([t.astimezone(UTC)], "Europe/Paris"))
    assert out.rows()[0][:3] == (start, end, 1)
    assert start < dt.datetime(2025, 3, 30, 2, tzinfo=paris) < end  # holds the DST change
    # (Python subtracts aware datetimes of one zone on the wall clock: use the epoch)
    assert out["window_end"][0].timestamp() - out["window_start"][0].timestamp() == 35 * HOUR


@pytest.mark.parametrize("column_tz", ["UTC", None, "Asia/Tokyo"])
def test_explicit_tz_on_utc_column(column_tz: str | None) -> None:
    """tumbling('1d', tz='America/New_York') on a column in another zone gives New York days
    (midnight EST = 05:00 UTC, EDT = 04:00 UTC; 2025-03-09 has 23 hours, 2025-11-02 has 25);
    the bounds keep the column's dtype."""
    ny = zoneinfo.ZoneInfo("America/New_York")
    days = [dt.date(2025, 3, 8), dt.date(2025, 3, 9), dt.date(2025, 3, 10), dt.date(2025, 11, 2)]
    local = [dt.datetime.combine(d, dt.time(h), tzinfo=ny) for d in days for h in (0, 3, 23)]
    df = frame([x.astimezone(UTC) for x in local], column_tz)
    out = windows(rl.tumbling("1d", tz="America/New_York"), df)
    assert out.schema["window_start"] == pl.Datetime("us", column_tz)
    rows = in_utc(out) if column_tz else [
        (r[0].replace(tzinfo=UTC), r[1].replace(tzinfo=UTC), *r[2:]) for r in out.rows()]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (_utc(2025, 3, 8, 5), _utc(2025, 3, 9, 5), 3),
        (_utc(2025, 3, 9, 5), _utc(2025, 3, 10, 4), 3),  # 23 hours
        (_utc(2025, 3, 10, 4), _utc(2025, 3, 11, 4), 3),
        (_utc(2025, 11, 2, 4), _utc(2025, 11, 3, 5), 3),  # 25 hours
    ]


def test_explicit_utc_overrides_the_column_zone() -> None:
    """tz='UTC' on a Paris column: UTC days (shown in Paris as 01:00 / 02:00)."""
    df = frame([_utc(2025, 7, 1, 23, 30), _utc(2025, 7, 2, 0, 30)], "Europe/Paris")
    out = windows(rl.tumbling("1d", tz="UTC"), df)
    assert out.schema["window_start"] == pl.Datetime("us", "Europe/Paris")
    assert [(r[0], r[1], r[2]) for r in in_utc(out)] == [
        (_utc(2025, 7, 1), _utc(2025, 7, 2), 1), (_utc(2025, 7, 2), _utc(2025, 7, 3), 1)]


@pytest.mark.parametrize("column_tz", ["UTC", None, "Asia/Kolkata"])
def test_sub_day_windows_with_explicit_tz(column_tz: str | None) -> None:
    """'1h' with tz='Asia/Kolkata' (UTC+05:30, no DST) aligns on Kolkata's wall clock: windows
    start at :00 local = :30 UTC. Without tz=, a fixed '1h' is aligned in UTC even on a
    Kolkata column: :00 UTC = :30 local."""
    df = frame([_utc(2024, 5, 1, 10, 10), _utc(2024, 5, 1, 10, 40)], column_tz)
    out = windows(rl.tumbling("1h", tz="Asia/Kolkata"), df)
    rows = in_utc(out) if column_tz else [(r[0].replace(tzinfo=UTC), r[1].replace(tzinfo=UTC),
                                           *r[2:]) for r in out.rows()]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (_utc(2024, 5, 1, 9, 30), _utc(2024, 5, 1, 10, 30), 1),
        (_utc(2024, 5, 1, 10, 30), _utc(2024, 5, 1, 11, 30), 1),
    ]
    plain = windows(rl.tumbling("1h"), frame([_utc(2024, 5, 1, 10, 10)], "Asia/Kolkata"))
    assert [(r[0], r[1]) for r in in_utc(plain)] == [(_utc(2024, 5, 1, 10), _utc(2024, 5, 1, 11))]


@pytest.mark.parametrize("day", [dt.date(2025, 3, 30), dt.date(2025, 10, 26)])
def test_hopping_3d_every_1d_in_paris_across_dst(day: dt.date) -> None:
    """hopping('3d', '1d') on a Paris column: each window is three local days (71 hours when
    it holds the spring change, 73 in autumn) starting at every local midnight; a row is in
    three windows. Brute force: the zoneinfo oracle (polars' group_by_dynamic cannot serve:
    #25410 / #15966, see the module docstring)."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    local = [dt.datetime.combine(day + dt.timedelta(days=d), dt.time(h), tzinfo=paris)
             for d in range(-3, 4) for h in (0, 2, 3, 5, 23)]
    local = [x for x in local if x.astimezone(UTC).astimezone(paris) == x]  # drop 02:00 in the gap
    df = frame([x.astimezone(UTC) for x in local], "Europe/Paris")
    layout = Layout("1d", period="3d")
    out = windows(layout.spec(), df)
    windows_of = layout.windows_of("Europe/Paris", "us")
    micros = [int(x.timestamp()) * 10**6 for x in local]
    counts: dict[Span, int] = {}
    for t in micros:
        spans = windows_of(t)
        assert len(spans) == 3
        for s in spans:
            counts[s] = counts.get(s, 0) + 1
    expected = sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    got = out.with_columns(pl.col("window_start", "window_end").dt.epoch("us"))
    assert [((r[0], r[1]), r[2]) for r in got.rows()] == expected
    lengths = {(e - s) // 3_600_000_000 for (s, e), _ in expected}
    assert lengths == ({71, 72} if day.month == 3 else {72, 73})
    assert_rows_inside_their_windows(out)


@pytest.mark.parametrize("zone,day", [
    ("America/Havana", dt.date(2025, 3, 9)),     # 00:00 CST -> 01:00 CDT
    ("America/Santiago", dt.date(2024, 9, 8)),   # 24:00 -04 -> 01:00 -03
])
def test_midnight_that_does_not_exist_starts_the_day_after_the_gap(zone: str, day: dt.date) -> None:
    """When clocks jump from 00:00 to 01:00, the day starts at the first instant after the
    gap (01:00 local) and lasts 23 hours; the day before ends there."""
    z = zoneinfo.ZoneInfo(zone)
    gap_end = dt.datetime.combine(day, dt.time(1), tzinfo=z).astimezone(UTC)
    assert (gap_end - dt.timedelta(microseconds=1)).astimezone(z).hour == 23  # the day before
    # (arithmetic in UTC: Python adds to aware datetimes on the wall clock)
    rows = [gap_end - dt.timedelta(microseconds=1), gap_end, gap_end + dt.timedelta(hours=5)]
    out = windows(rl.tumbling("1d"), frame(rows, zone))
    utc_rows = in_utc(out)
    assert [(r[1], r[2]) for r in utc_rows[:1]] == [(gap_end, 1)]
    assert utc_rows[1][0] == gap_end
    assert utc_rows[1][1] - utc_rows[1][0] == dt.timedelta(hours=23)
    assert utc_rows[1][2] == 2


def test_repeated_midnight_starts_at_its_first_occurrence() -> None:
    """America/Havana 2025-11-02: 01:00 CDT -> 00:00 CST, so 00:00-01:00 happens twice. The day
    starts at the first 00:00 (04:00 UTC) and lasts 25 hours; a row at the second 00:30 (05:30
    UTC) belongs to it."""
    rows = [_utc(2025, 11, 2, 4, 30), _utc(2025, 11, 2, 5, 30), _utc(2025, 11, 2, 3, 59)]
    out = windows(rl.tumbling("1d"), frame(rows, "America/Havana"))
    assert [(r[0], r[1], r[2]) for r in in_utc(out)] == [
        (_utc(2025, 11, 1, 4), _utc(2025, 11, 2, 4), 1),
        (_utc(2025, 11, 2, 4), _utc(2025, 11, 3, 5), 2),
    ]


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
@pytest.mark.parametrize("every", ["1d", "1mo"])
def test_calendar_bounds_keep_the_column_dtype(unit: str, every: str) -> None:
    df = frame([_utc(2024, 6, 1, 12)], "Australia/Sydney", unit)
    out = windows(rl.tumbling(every), df)
    assert out.schema["window_start"] == pl.Datetime(unit, "Australia/Sydney")
    assert out.schema["window_end"] == pl.Datetime(unit, "Australia/Sydney")
    naive = windows(rl.tumbling(every, tz="Australia/Sydney"), frame([_utc(2024, 6, 1, 12)], None, unit))
    assert naive.schema["window_start"] == pl.Datetime(unit)


def test_iso_string_column_follows_tz() -> None:
    """An ISO 8601 string column is UTC: '1d' alone gives UTC days, tz= gives local days."""
    df = pl.DataFrame({"t": ["2024-03-31T00:30:00+01:00", "2024-03-31T23:30:00+02:00"]})
    utc_days = rl.stream(df, time="t", watermark="1d").window(rl.tumbling("1d")).agg(rl.count()).collect()
    assert utc_days.rows() == [(_utc(2024, 3, 30), _utc(2024, 3, 31), 1),
                               (_utc(2024, 3, 31), _utc(2024, 4, 1), 1)]
    paris_days = (
        rl.stream(df, time="t", watermark="1d").window(rl.tumbling("1d", tz="Europe/Paris"))
        .agg(rl.count()).collect()
    )
    # 2024-03-31 in Paris: 00:00 CET = 23:00 UTC the day before, 23 hours long
    assert paris_days.rows() == [(_utc(2024, 3, 30, 23), _utc(2024, 3, 31, 22), 2)]


# -- configuration errors -------------------------------------------------------------------
DF_INT = pl.DataFrame({"t": [1, 2, 15]})
DF_PARIS = frame([_utc(2024, 1, 1)], "Europe/Paris")


def _run(df: pl.DataFrame, spec: Callable[[], rl.WindowSpec]) -> Any:
    return rl.stream(df, time="t").window(spec()).agg(rl.count()).collect()


@pytest.mark.parametrize("name,fn,words", [
    ("months mixed with days", lambda: _run(DF_PARIS, lambda: rl.tumbling("1mo15d")),
     ("'1mo15d'", "mixes calendar months", "one or the other")),
    ("months mixed with hours in hopping", lambda: _run(DF_PARIS, lambda: rl.hopping("1q", "1mo1h")),
     ("mixes calendar months",)),
    ("months period with a days step", lambda: _run(DF_PARIS, lambda: rl.hopping("1mo", "1d")),
     ("calendar months", "fixed")),
    ("month window on an integer column", lambda: _run(DF_INT, lambda: rl.tumbling("1mo")),
     ("integer",)),
    ("day window on an integer column", lambda: _run(DF_INT, lambda: rl.tumbling("1d")),
     ("integer",)),
    ("week hopping on an integer column", lambda: _run(DF_INT, lambda: rl.hopping("1w", "1d")),
     ("integer",)),
    ("tz on an integer column", lambda: _run(DF_INT, lambda: rl.tumbling(10, tz="Europe/Paris")),
     ("Europe/Paris", "Datetime", "integer")),
    ("unknown zone", lambda: rl.tumbling("1d", tz="Mars/Olympus"), ("Mars/Olympus", "IANA")),
    ("unknown zone in hopping", lambda: rl.hopping("2d", "1d", tz="Europe/Atlantis"),
     ("Europe/Atlantis", "IANA")),
    ("zone that is not a string", lambda: rl.tumbling("1d", tz=1), ("IANA",)),
    ("calendar offset", lambda: rl.tumbling("1y", offset="1mo"), ("offset", "calendar")),
    ("calendar watermark", lambda: rl.stream(DF_PARIS, time="t", watermark="1mo"),
     ("watermark", "calendar")),
    ("calendar lateness",
     lambda: rl.stream(DF_PARIS, time="t").window(rl.tumbling("1d"), lateness="1q")
     .agg(rl.count()).collect(), ("lateness", "calendar")),
])
def test_calendar_config_errors(name: str, fn: Callable[[], object], words: tuple[str, ...]) -> None:
    with pytest.raises(rl.ConfigError) as info:
        fn()
    msg = str(info.value).lower()
    for w in words:
        assert w.lower() in msg, f"{name}: {w!r} not in {msg!r}"


# -- engine bugs (pinned; see the module docstring for the rules) ---------------------------
def _dense(centre: dt.datetime, hours: int = 3, step_min: int = 5) -> list[dt.datetime]:
    return [centre + dt.timedelta(minutes=m) for m in range(-hours * 60, hours * 60 + 1, step_min)]


def _bruteforce_counts(layout: Layout, instants: list[dt.datetime], column_tz: str | None) -> list[tuple]:
    windows_of = layout.windows_of(column_tz, "us")
    counts: dict[Span, int] = {}
    for x in instants:
        for s in windows_of(int(x.timestamp()) * 10**6):
            counts[s] = counts.get(s, 0) + 1
    return [(s, e, n) for (s, e), n in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0]))]


def _engine_counts(layout: Layout, instants: list[dt.datetime], column_tz: str | None,
                   watermark: str) -> list[tuple]:
    df = frame(instants, column_tz)
    out = (
        rl.stream(df, time="t", watermark=watermark).window(layout.spec())
        .agg(rl.count()).collect()
        .with_columns(pl.col("window_start", "window_end").dt.epoch("us"))
    )
    return out.rows()


GAP_PARIS = _utc(2025, 3, 30, 1)      # 02:00 CET -> 03:00 CEST
FOLD_PARIS = _utc(2025, 10, 26, 1)    # 03:00 CEST -> 02:00 CET
GAP_SYDNEY = _utc(2025, 10, 4, 16)    # 02:00 AEST -> 03:00 AEDT
FOLD_SANTIAGO = _utc(2024, 4, 7, 3)   # 24:00 -03 -> 23:00 -04


@pytest.mark.parametrize("watermark", ["0s", "2h"])
@pytest.mark.parametrize("layout,centre", [
    (Layout("1h", tz="Europe/Paris"), GAP_PARIS),
    (Layout("1h", tz="Europe/Paris"), FOLD_PARIS),
    (Layout("15m", tz="Europe/Paris"), GAP_PARIS),
    (Layout("1h", offset="30m", tz="Europe/Paris"), GAP_PARIS),
    (Layout("1d", offset="2h30m"), GAP_PARIS),
    (Layout("1h", period="3h", tz="Australia/Sydney"), GAP_SYDNEY),
    (Layout("1h", offset="10m", tz="Europe/Paris"), GAP_PARIS),
    (Layout("1d", offset="2h7m"), GAP_SYDNEY),
    (Layout("30m", tz="Europe/Paris"), FOLD_PARIS),
    (Layout("1d", offset="2h30m"), FOLD_PARIS),
    (Layout("30m", period="1h", tz="America/Santiago"), FOLD_SANTIAGO),
])
def test_windows_around_dst_changes_match_bruteforce(layout: Layout, centre: dt.datetime,
                                                     watermark: str) -> None:
    column_zone = {GAP_SYDNEY: "Australia/Sydney", FOLD_SANTIAGO: "America/Santiago"}.get(
        centre, "Europe/Paris")
    """Rows every 5 minutes for 3 hours either side of a DST change, in order: each window's
    count is the number of rows whose instant is in [start, end), and no row goes missing."""
    instants = _dense(centre)
    column_tz = column_zone if layout.tz is None else "UTC"
    got = _engine_counts(layout, instants, column_tz, watermark)
    assert got == _bruteforce_counts(layout, instants, column_tz)


def test_boundary_inside_a_gap_maps_to_the_first_instant_after_it() -> None:
    """Paris 2025-03-30: local 02:00-03:00 does not exist (01:00 UTC). With '1h' windows at :10
    past on Paris' wall clock, the boundary 02:10 local does not exist, so it maps to the first
    instant after the gap, 03:00 CEST = 01:00 UTC: the windows are [00:10, 01:00) UTC (01:10 CET
    to the gap) and [01:00, 01:10) UTC (03:00 to 03:10 CEST). Rows at 01:00 and 01:05 UTC are
    in the second one."""
    df = frame([_utc(2025, 3, 30, 0, 50), _utc(2025, 3, 30, 1, 0), _utc(2025, 3, 30, 1, 5)], "UTC")
    out = windows(rl.tumbling("1h", offset="10m", tz="Europe/Paris"), df)
    assert [(r[0], r[1], r[2]) for r in in_utc(out)] == [
        (_utc(2025, 3, 30, 0, 10), _utc(2025, 3, 30, 1), 1),
        (_utc(2025, 3, 30, 1), _utc(2025, 3, 30, 1, 10), 2),
    ]


def test_rows_in_a_repeated_hour_are_not_lost() -> None:
    """Paris 2025-10-26: 03:00 CEST -> 02:00 CET at 01:00 UTC, so 02:00-03:00 local happens
    twice. '30m' windows on Paris' wall clock: [02:30, 03:00) local starts at the first 02:30
    (00:30 UTC) and ends at 03:00 CET (02:00 UTC). Rows every 10 minutes from 00:00 to 01:50
    UTC: 3 in [00:00, 00:30) and 9 in [00:30, 02:00); all 12 are accepted, none is late, so all
    12 must be counted."""
    rows = [_utc(2025, 10, 26, 0, 0) + dt.timedelta(minutes=10 * i) for i in range(12)]
    run = (
        rl.stream(frame(rows, "UTC"), time="t")
        .window(rl.tumbling("30m", tz="Europe/Paris"))
        .agg(rl.count(), rl.min("t").alias("first"), rl.max("t").alias("last"))
        .run()
    )
    assert run.metrics["rows_accepted"] == 12 and run.late.height == 0
    assert run.output["count"].sum() == 12
    assert [(r[0], r[1], r[2]) for r in in_utc(run.output)] == [
        (_utc(2025, 10, 26, 0, 0), _utc(2025, 10, 26, 0, 30), 3),
        (_utc(2025, 10, 26, 0, 30), _utc(2025, 10, 26, 2, 0), 9),
    ]
