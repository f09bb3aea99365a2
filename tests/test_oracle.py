"""Random streams against independent oracles.

* final output == polars group_by over the rows the per-row reference accepts, each put in
  the windows that were still open when it arrived (for tumbling windows that is simply
  ``floor((t - offset) / every) * every + offset``; hopping windows are exploded), ordered
  by the moment the reference says the window closed, then end, start and key;
* run.late == the rows the brute-force watermark simulation calls late (with ``late_by``);
* run.rejected == the rows with a null time;
* amend output == a brute-force, row-at-a-time replay of the amend rules.
"""
from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from conftest import Emission, reference_emissions, reference_late_mask, simulate, window_starts
from hypothesis import given
from polars.testing import assert_frame_equal, assert_series_equal
from strategies import UNIT_PER_SECOND, Case, build_query, cases, engine_rows

AGG_NAMES = ["count", "x_count", "x_sum", "y_sum", "y_mean", "x_min", "y2_max", "failures",
             "y_pos_x"]


def _nonempty(values: pl.Expr, result: pl.Expr) -> pl.Expr:
    """``result`` when ``values`` has a non-null value, else null (polars' sum gives 0)."""
    return pl.when(values.count() > 0).then(result).otherwise(None)


def polars_aggregates() -> list[pl.Expr]:
    """The same aggregates as strategies.aggregates(), written directly in polars."""
    y_pos = pl.col("y").filter(pl.col("x") > 0)  # a null condition drops the row too
    return [
        pl.len().cast(pl.Int64).alias("count"),
        pl.col("x").count().cast(pl.Int64).alias("x_count"),
        _nonempty(pl.col("x"), pl.col("x").sum()).cast(pl.Int64).alias("x_sum"),
        _nonempty(pl.col("y"), pl.col("y").sum()).cast(pl.Float64).alias("y_sum"),
        pl.col("y").mean().cast(pl.Float64).alias("y_mean"),
        pl.col("x").min().cast(pl.Int64).alias("x_min"),
        pl.col("y2").max().cast(pl.Float64).alias("y2_max"),
        pl.col("e").is_not_null().sum().cast(pl.Int64).alias("failures"),
        _nonempty(y_pos, y_pos.sum()).cast(pl.Float64).alias("y_pos_x"),
    ]


def engine_times(case: Case, rows: pl.DataFrame) -> list[int | None]:
    return [case.times[r] for r in rows["rid"].to_list()]


def expected_final(case: Case) -> pl.DataFrame:
    """The final-mode output by polars group_by over the reference's accepted rows."""
    rows = engine_rows(case)
    times = engine_times(case, rows)
    sim = simulate(times, case.delay, case.period, case.every, case.offset0, case.lateness)
    if case.kind == "tumbling":
        # tumbling: the one window is floor((t - offset) / every) * every + offset
        off = case.offset0
        win = pl.Series("__t", times, dtype=pl.Int64)
        win = ((win - off) // case.every) * case.every + off
        wins = [[w] if st == "accepted" else [] for w, st in zip(win.to_list(), sim.status)]
        assert wins == sim.windows  # the reference agrees with the closed form
    else:
        wins = sim.windows
    acc = (
        rows.with_columns(
            pl.Series("__status", sim.status, dtype=pl.String),
            pl.Series("__win", wins, dtype=pl.List(pl.Int64)),
            (pl.col("y") * 2).alias("y2"),
        )
        .filter(pl.col("__status") == "accepted")
        .explode("__win")
        .filter(pl.col("__win").is_not_null())
    )
    grouped = acc.group_by([*case.keys, "__win"]).agg(polars_aggregates())
    flush_moment = len(times)
    starts = sorted(set(grouped["__win"].to_list()))
    moments = [sim.close_moment(s) for s in starts]
    moment_df = pl.DataFrame(
        {
            "__win": pl.Series(starts, dtype=pl.Int64),
            "__moment": pl.Series([flush_moment if m is None else m for m in moments], dtype=pl.Int64),
        }
    )
    out = grouped.join(moment_df, on="__win", how="left")
    if not case.flush:
        out = out.filter(pl.col("__moment") < flush_moment)
    out = (
        out.with_columns(
            pl.col("__win").alias("window_start"),
            (pl.col("__win") + case.period).alias("window_end"),
        )
        .sort(["__moment", "window_end", "window_start", *case.keys], nulls_last=False,
              maintain_order=True)
        .with_columns(
            case.to_window_type(pl.col("window_start")).alias("window_start"),
            case.to_window_type(pl.col("window_end")).alias("window_end"),
        )
    )
    return out.select([*case.keys, "window_start", "window_end", *AGG_NAMES])


def expected_late_by(case: Case, late_seconds: list[int]) -> pl.Series:
    s = pl.Series("late_by", late_seconds, dtype=pl.Int64)
    if case.time_kind == "int":
        return s
    assert case.unit is not None
    return (s * UNIT_PER_SECOND[case.unit]).cast(pl.Duration(case.unit))


def to_python_instant(case: Case, seconds: int | None) -> Any:
    if seconds is None:
        return None
    return pl.select(case.to_window_type(pl.lit(seconds))).item()


def check_final(case: Case) -> None:
    run = build_query(case).run()
    expected = expected_final(case)
    assert_frame_equal(run.output, expected, rel_tol=1e-9, abs_tol=1e-9)

    rows = engine_rows(case)
    times = engine_times(case, rows)
    sim = simulate(times, case.delay, case.period, case.every, case.offset0, case.lateness)
    rids = rows["rid"].to_list()

    mask = reference_late_mask(times, case.delay, case.period, case.every, case.offset0,
                               case.lateness)
    late_rids = [r for r, late in zip(rids, mask) if late]
    assert run.late["rid"].to_list() == late_rids
    late_by = [lb for lb, s in zip(sim.late_by, sim.status) if s == "late"]
    assert_series_equal(run.late["late_by"], expected_late_by(case, late_by))
    # the late frame carries the micro-batch's columns after with_columns
    assert run.late.columns == [*rows.columns, "y2", "late_by"]

    rejected_rids = [r for r, s in zip(rids, sim.status) if s == "rejected"]
    assert run.rejected["rid"].to_list() == rejected_rids
    assert set(run.rejected["reason"].to_list()) <= {"null time"}

    m = run.metrics
    assert m["rows_in"] == case.df.height
    assert m["rows_filtered"] == case.df.height - rows.height
    assert m["rows_accepted"] == sim.status.count("accepted")
    assert m["rows_late"] == len(late_rids)
    assert m["rows_rejected"] == len(rejected_rids)
    assert m["rows_emitted"] == run.output.height
    assert m["watermark"] == to_python_instant(case, sim.final_wm)
    assert m["max_event_time"] == to_python_instant(case, sim.max_time)
    if case.flush:
        assert m["open_panes"] == 0 and m["open_windows"] == 0
    else:
        open_panes = {
            (s, tuple(rows.row(i, named=True)[k] for k in case.keys))
            for i, st in enumerate(sim.status) if st == "accepted"
            for s in sim.windows[i]
            if sim.final_wm is None or s + case.period + case.lateness > sim.final_wm
        }
        assert m["open_panes"] == len(open_panes)
        assert m["open_windows"] == len({s for s, _ in open_panes})


@given(cases(time_kind="int"))
def test_final_int_time_matches_polars(case: Case) -> None:
    check_final(case)


@given(cases(time_kind="datetime"))
def test_final_datetime_time_matches_polars(case: Case) -> None:
    check_final(case)


@given(cases(kind="hopping"))
def test_final_hopping_matches_polars(case: Case) -> None:
    check_final(case)


def expected_emissions_frame(case: Case, emissions: list[Emission], rows: pl.DataFrame) -> pl.DataFrame:
    xs = rows["x"].to_list()
    data: dict[str, list[Any]] = {k: [e.key[j] for e in emissions] for j, k in enumerate(case.keys)}
    data["window_start"] = [e.start for e in emissions]
    data["window_end"] = [e.start + case.period for e in emissions]
    data["revision"] = [e.revision for e in emissions]
    data["count"] = [len(e.rows) for e in emissions]
    sums = []
    for e in emissions:
        vals = [xs[i] for i in e.rows if xs[i] is not None]
        sums.append(sum(vals) if vals else None)
    data["x_sum"] = sums
    schema = {k: rows.schema[k] for k in case.keys}
    schema.update(window_start=pl.Int64, window_end=pl.Int64, revision=pl.UInt32,
                  count=pl.Int64, x_sum=pl.Int64)
    df = pl.DataFrame(data, schema=schema)
    return df.with_columns(
        case.to_window_type(pl.col("window_start")).alias("window_start"),
        case.to_window_type(pl.col("window_end")).alias("window_end"),
    )


@given(cases())
def test_amend_matches_bruteforce_replay(case: Case) -> None:
    rows = engine_rows(case)
    times = engine_times(case, rows)
    keys = [tuple(r) for r in rows.select(case.keys).iter_rows()] if case.keys else [()] * rows.height
    emissions = reference_emissions(times, keys, case.delay, case.period, case.every,
                                    case.offset0, case.lateness, emit="amend", flush=case.flush)
    out = build_query(case, emit="amend").collect()
    got = out.select([*case.keys, "window_start", "window_end", "revision", "count", "x_sum"])
    assert_frame_equal(got, expected_emissions_frame(case, emissions, rows))


@given(cases())
def test_final_order_and_membership_match_bruteforce_replay(case: Case) -> None:
    """The same replay in final mode: every emission carries exactly the reference's rows."""
    rows = engine_rows(case)
    times = engine_times(case, rows)
    keys = [tuple(r) for r in rows.select(case.keys).iter_rows()] if case.keys else [()] * rows.height
    emissions = reference_emissions(times, keys, case.delay, case.period, case.every,
                                    case.offset0, case.lateness, emit="final", flush=case.flush)
    out = build_query(case).collect()
    got = out.select([*case.keys, "window_start", "window_end", "count", "x_sum"])
    expected = expected_emissions_frame(case, emissions, rows).drop("revision")
    assert_frame_equal(got, expected)


@given(cases())
def test_last_revision_equals_final_row(case: Case) -> None:
    """The last amend revision of every (window, key) is the final-mode row."""
    final = build_query(case).collect()
    amend = build_query(case, emit="amend").collect()
    ident = [*case.keys, "window_start", "window_end"]
    last = amend.group_by(ident, maintain_order=True).last().drop("revision")
    # final mode has exactly one row per (window, key); compare as sets of rows
    key_order = [*ident]
    assert final.select(ident).is_duplicated().sum() == 0
    if case.flush:
        assert_frame_equal(
            last.sort(key_order, nulls_last=False),
            final.sort(key_order, nulls_last=False),
            rel_tol=1e-9,
            abs_tol=1e-9,
        )
    else:
        # without a flush, final mode shows closed windows only; their last revision agrees
        joined = final.join(last, on=ident, how="left", nulls_equal=True, suffix="_amend")
        for name in AGG_NAMES:
            assert_series_equal(joined[name], joined[f"{name}_amend"].alias(name),
                                rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("every,period,offset", [(10, 10, 0), (10, 10, 3), (5, 10, 0), (5, 12, -7)])
def test_window_starts_helper_is_floor_division(every: int, period: int, offset: int) -> None:
    """Sanity of the reference itself: windows are [s, s + period) containing t, by floor."""
    for t in range(-40, 40):
        starts = window_starts(t, period, every, offset)
        assert starts, t
        for s in starts:
            assert s <= t < s + period
            assert (s - offset) % every == 0
        # the grid starts just outside the list do not contain t
        assert starts[0] - every + period <= t
        assert starts[-1] + every > t
