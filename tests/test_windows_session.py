"""Session windows (``rl.session(gap, max_duration=None)``) against a brute-force oracle.

The rules, per key (``SessionOracle`` below walks the rows one at a time exactly like this,
in plain Python, sharing no code with the engine):

* a row at ``t`` *touches* an open session S of its key when
  ``S.start - gap <= t <= S.last + gap`` (inclusive: rows exactly ``gap`` apart share a
  session); it joins every session it touches, and they merge into one (the survivor is the
  one with the earliest start). The window is ``[start, last + gap)``.
* with ``max_duration=M``: it joins all touched sessions only if the merged span
  ``max(last) + gap - min(start)`` (the row included) is ``<= M``; otherwise it joins the first
  touched session, latest start first, whose span extended by the row fits; otherwise it
  starts a session of its own.
* a row that starts a session of its own is LATE when ``t + gap + lateness <= wm(i)`` (its
  own session would already be closed), with ``late_by = wm(i) - t``.
* ``wm(i) = max(time of accepted rows 0..i-1) - delay``. A session is complete when
  ``wm >= end`` and closed (emitted in final mode, then freed: no row can join it any more)
  when ``wm >= end + lateness``.
* final: one row per session when it closes (or at the end-of-input flush). amend: revision 0
  when it completes, then revision + 1 after every accepted row that changes it. changelog:
  ``+I`` at completion, ``-U`` / ``+U`` (same bounds, old and new values) per change that
  keeps the bounds, ``-D`` (last emitted bounds and values) then ``+I`` (new bounds) per change
  that moves them (the changelog is keyed by the bounds, API.md "Emission"), ``-D`` for an
  emitted session merged away into another. Rows of one moment come by window end, start,
  key (nulls first); a ``-U``/``+U`` or ``-D``/``+I`` pair sorts by the session's new bounds,
  retraction first; the ``-D`` of a merged-away session by the bounds it retracts.

Note that a single row can merge at most two sessions: without ``max_duration`` the
sessions of a key are more than ``gap`` apart (else an earlier row would have merged them),
so a third session between the two neighbours of ``t`` cannot fit in ``[t - gap, t + gap]``.
``max_duration`` lets sessions lie within the gap of each other (a row may then *touch* three
or more), but only sessions the cap kept apart, and those never fit together later (spans
only grow). The oracle asserts it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from conftest import batches, key_sort
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from test_emission_modes import replay_changelog

import rillet as rl

AGG_NAMES = ["count", "x_count", "x_sum", "x_min", "x_max", "y_mean"]


def session_aggregates() -> list[rl.Agg]:
    return [rl.count(), rl.count("x"), rl.sum("x"), rl.min("x"), rl.max("x"), rl.mean("y")]


# -- the oracle -----------------------------------------------------------------------------
@dataclass(eq=False)
class _Session:
    key: tuple
    start: int
    last: int
    rows: list[int]
    emitted: bool = False
    revision: int = -1
    shown: tuple[int, int, list[int]] | None = None  # (start, end, rows) as last emitted


@dataclass
class Out:
    moment: int  # row index after which it was emitted; len(rows) for the flush
    key: tuple
    start: int
    end: int
    tag: Any  # None (final) | revision (amend) | op (changelog)
    rows: list[int]


@dataclass
class OracleResult:
    status: list[str] = field(default_factory=list)  # accepted | late | rejected
    late_by: list[int | None] = field(default_factory=list)
    out: list[Out] = field(default_factory=list)


class SessionOracle:
    def __init__(self, gap: int, delay: int, lateness: int, max_duration: int | None = None,
                 emit: str = "final") -> None:
        self.gap, self.delay, self.lateness = gap, delay, lateness
        self.max_duration, self.emit = max_duration, emit

    def _span(self, sessions: Sequence[_Session], t: int) -> int:
        start = min([t, *(s.start for s in sessions)])
        last = max([t, *(s.last for s in sessions)])
        return last + self.gap - start

    def _choose(self, touched: list[_Session], t: int) -> list[_Session]:
        if not touched:
            return []
        m = self.max_duration
        if m is None or self._span(touched, t) <= m:
            return touched
        for s in sorted(touched, key=lambda s: -s.start):  # latest start first
            if self._span([s], t) <= m:
                return [s]
        return []

    def run(self, times: Sequence[int | None], keys: Sequence[tuple],
            flush: bool = True) -> OracleResult:
        gap, lateness = self.gap, self.lateness
        res = OracleResult()
        sessions: dict[tuple, list[_Session]] = {}
        wm: int | None = None
        for i, (t, key) in enumerate(zip(times, keys, strict=True)):
            if t is None:
                res.status.append("rejected")
                res.late_by.append(None)
                continue
            mine = sessions.setdefault(key, [])
            touched = [s for s in mine if s.start - gap <= t <= s.last + gap]
            join = self._choose(touched, t)
            assert len(join) <= 2, "a row can merge at most two sessions"
            deleted: list[_Session] = []
            if not join:
                if wm is not None and t + gap + lateness <= wm:
                    res.status.append("late")
                    res.late_by.append(wm - t)
                    continue
                changed = _Session(key, t, t, [i])
                mine.append(changed)
            else:
                changed = min(join, key=lambda s: s.start)
                for other in join:
                    if other is changed:
                        continue
                    mine.remove(other)
                    if other.emitted:
                        # The survivor has the earliest end, so it was emitted too.
                        assert changed.emitted
                        if self.emit == "changelog":
                            deleted.append(other)
                    changed.rows.extend(other.rows)
                    changed.start = min(changed.start, other.start)
                    changed.last = max(changed.last, other.last)
                changed.rows.append(i)
                changed.start = min(changed.start, t)
                changed.last = max(changed.last, t)
            res.status.append("accepted")
            res.late_by.append(None)
            wm = t - self.delay if wm is None else max(wm, t - self.delay)
            res.out.extend(self._moment(i, sessions, wm, changed, deleted))
        if flush:
            res.out.extend(self._moment(len(times), sessions, None, None, []))
        return res

    def _moment(self, moment: int, sessions: dict[tuple, list[_Session]], wm: int | None,
                changed: _Session | None, deleted: list[_Session]) -> list[Out]:
        """Emissions after one row (``wm`` None: the end-of-input flush, wm = +infinity)."""
        end_of_input = wm is None
        pending: list[tuple[tuple, Out]] = []

        def order(end: int, start: int, key: tuple, seq: int) -> tuple:
            return (end, start, key_sort(key), seq)

        if self.emit == "changelog":
            for d in deleted:
                assert d.shown is not None
                s0, e0, rows0 = d.shown
                pending.append((order(e0, s0, d.key, 0), Out(moment, d.key, s0, e0, "-D", rows0)))
        for key, mine in sessions.items():
            for s in list(mine):
                end = s.last + self.gap
                complete = end_of_input or wm >= end  # type: ignore[operator]
                closed = end_of_input or wm >= end + self.lateness  # type: ignore[operator]
                if self.emit == "final":
                    if closed:
                        pending.append((order(end, s.start, key, 0),
                                        Out(moment, key, s.start, end, None, list(s.rows))))
                elif (s is changed and s.emitted) or (not s.emitted and complete):
                    if self.emit == "amend":
                        s.revision = s.revision + 1 if s.emitted else 0
                        pending.append((order(end, s.start, key, 0),
                                        Out(moment, key, s.start, end, s.revision, list(s.rows))))
                    elif s.emitted:
                        assert s.shown is not None
                        s0, e0, rows0 = s.shown
                        moved = (s0, e0) != (s.start, end)
                        pending.append((order(end, s.start, key, 0),
                                        Out(moment, key, s0, e0, "-D" if moved else "-U", rows0)))
                        pending.append((order(end, s.start, key, 1),
                                        Out(moment, key, s.start, end, "+I" if moved else "+U",
                                            list(s.rows))))
                    else:
                        pending.append((order(end, s.start, key, 0),
                                        Out(moment, key, s.start, end, "+I", list(s.rows))))
                    s.emitted = True
                    s.shown = (s.start, end, list(s.rows))
                if closed:
                    mine.remove(s)
        pending.sort(key=lambda p: p[0])
        return [o for _, o in pending]


# -- random streams -------------------------------------------------------------------------
KEY_COLUMNS = {
    "k0": (pl.String, ["a", "b", None]),
    "k1": (pl.Int64, [1, 2, None]),
}


@dataclass
class SessionCase:
    df: pl.DataFrame  # arrival order; columns rid, [k0, [k1]], t, x, y
    times: list[int | None]
    keys: list[str]
    gap: int
    delay: int
    lateness: int
    max_duration: int | None
    flush: bool
    spelling: str  # "int" | "str" ("5i")

    def d(self, n: int) -> Any:
        return f"{n}i" if self.spelling == "str" else n

    def row_keys(self) -> list[tuple]:
        if not self.keys:
            return [()] * self.df.height
        return [tuple(r) for r in self.df.select(self.keys).iter_rows()]

    def oracle(self, emit: str = "final") -> OracleResult:
        o = SessionOracle(self.gap, self.delay, self.lateness, self.max_duration, emit)
        return o.run(self.times, self.row_keys(), self.flush)


@st.composite
def session_cases(draw: st.DrawFn, max_rows: int = 40) -> SessionCase:
    n = draw(st.integers(0, max_rows))
    step = draw(st.sampled_from([0, 1, 2, 3]))
    jitter = draw(st.integers(0, 20))
    base = draw(st.integers(-30, 30))
    null_every = draw(st.sampled_from([0, 0, 8]))
    times: list[int | None] = []
    for i in range(n):
        if null_every and draw(st.integers(0, null_every - 1)) == 0:
            times.append(None)
        else:
            times.append(base + i * step + draw(st.integers(-jitter, jitter)))
    columns = [pl.Series("rid", range(n), dtype=pl.Int64)]
    keys = sorted(KEY_COLUMNS)[: draw(st.integers(0, 2))]
    for k in keys:
        dtype, values = KEY_COLUMNS[k]
        columns.append(pl.Series(k, draw(st.lists(st.sampled_from(values), min_size=n,
                                                  max_size=n)), dtype=dtype))
    columns.append(pl.Series("t", times, dtype=pl.Int64))
    columns.append(pl.Series("x", draw(st.lists(st.one_of(st.none(), st.integers(-5, 5)),
                                                min_size=n, max_size=n)), dtype=pl.Int64))
    columns.append(pl.Series("y", draw(st.lists(
        st.one_of(st.none(), st.integers(-40, 40).map(lambda v: v / 4)), min_size=n, max_size=n
    )), dtype=pl.Float64))
    gap = draw(st.integers(1, 10))
    max_duration = draw(st.one_of(st.none(), st.integers(gap, 4 * gap)))
    return SessionCase(
        df=pl.DataFrame(columns),
        times=times,
        keys=keys,
        gap=gap,
        delay=draw(st.integers(0, 10)),
        lateness=draw(st.integers(0, 15)),
        max_duration=max_duration,
        flush=draw(st.booleans()),
        spelling=draw(st.sampled_from(["int", "str"])),
    )


def session_query(c: SessionCase, source: Any = None, emit: str = "final",
                  late: str = "collect") -> rl.Query:
    spec = rl.session(c.d(c.gap),
                      max_duration=None if c.max_duration is None else c.d(c.max_duration))
    by = c.keys if len(c.keys) != 1 else c.keys[0]
    return (
        rl.stream(c.df if source is None else source, time="t", watermark=c.d(c.delay),
                  flush=c.flush)
        .window(spec, by=by or None, lateness=c.d(c.lateness), emit=emit, late=late)
        .agg(*session_aggregates())
    )


def expected_frame(c: SessionCase, out: Sequence[Out], emit: str) -> pl.DataFrame:
    xs, ys = c.df["x"].to_list(), c.df["y"].to_list()
    data: dict[str, list[Any]] = {k: [o.key[j] for o in out] for j, k in enumerate(c.keys)}
    data["window_start"] = [o.start for o in out]
    data["window_end"] = [o.end for o in out]
    schema: dict[str, Any] = {k: c.df.schema[k] for k in c.keys}
    schema.update(window_start=pl.Int64, window_end=pl.Int64)
    if emit == "amend":
        data["revision"] = [o.tag for o in out]
        schema["revision"] = pl.UInt32
    elif emit == "changelog":
        data["op"] = [o.tag for o in out]
        schema["op"] = pl.String
    cols: dict[str, list[Any]] = {n: [] for n in AGG_NAMES}
    for o in out:
        x = [xs[i] for i in o.rows if xs[i] is not None]
        y = [ys[i] for i in o.rows if ys[i] is not None]
        cols["count"].append(len(o.rows))
        cols["x_count"].append(len(x))
        cols["x_sum"].append(sum(x) if x else None)
        cols["x_min"].append(min(x) if x else None)
        cols["x_max"].append(max(x) if x else None)
        cols["y_mean"].append(sum(y) / len(y) if y else None)
    data.update(cols)
    schema.update(count=pl.Int64, x_count=pl.Int64, x_sum=pl.Int64, x_min=pl.Int64,
                  x_max=pl.Int64, y_mean=pl.Float64)
    return pl.DataFrame(data, schema=schema)


def check_against_oracle(c: SessionCase, emit: str) -> None:
    run = session_query(c, emit=emit).run()
    ref = c.oracle(emit)
    assert_frame_equal(run.output, expected_frame(c, ref.out, emit), rel_tol=1e-9, abs_tol=1e-9)
    rids = c.df["rid"].to_list()
    late = [i for i, s in enumerate(ref.status) if s == "late"]
    assert run.late["rid"].to_list() == [rids[i] for i in late]
    assert run.late["late_by"].to_list() == [ref.late_by[i] for i in late]
    assert run.rejected["rid"].to_list() == [r for r, s in zip(rids, ref.status) if s == "rejected"]
    m = run.metrics
    assert m["rows_in"] == c.df.height
    assert m["rows_accepted"] == ref.status.count("accepted")
    assert m["rows_late"] == len(late)
    assert m["rows_rejected"] == ref.status.count("rejected")
    assert m["rows_emitted"] == run.output.height


@given(session_cases())
def test_final_matches_the_oracle(c: SessionCase) -> None:
    """Final-mode rows (values, bounds and emission order), late rows with late_by, rejected
    rows and the counters, against the row-at-a-time oracle."""
    check_against_oracle(c, "final")


@given(session_cases())
def test_amend_matches_the_oracle(c: SessionCase) -> None:
    check_against_oracle(c, "amend")


@given(session_cases())
def test_changelog_matches_the_oracle(c: SessionCase) -> None:
    check_against_oracle(c, "changelog")


@pytest.mark.parametrize("emit", ["final", "amend", "changelog"])
@given(c=session_cases())
def test_batch_size_never_changes_anything(emit: str, c: SessionCase) -> None:
    whole = session_query(c, emit=emit).run()
    for size in (1, 7):
        cut = session_query(c, source=batches(c.df, size), emit=emit).run()
        assert cut.output.equals(whole.output), size
        assert cut.late.equals(whole.late), size
        assert cut.rejected.equals(whole.rejected), size
        for name in ("rows_in", "rows_accepted", "rows_late", "rows_rejected", "rows_emitted"):
            assert cut.metrics[name] == whole.metrics[name], (size, name)


IDENT = ["window_start", "window_end"]


@given(session_cases())
def test_changelog_algebra(c: SessionCase) -> None:
    """Replaying the changelog ends at the final rows (with the flush); every -U and -D
    retracts exactly the row currently shown for those bounds (so -D only ever removes an
    emitted session); -U is always followed by its +U of the same bounds (a session whose
    bounds move is -D then +I); +I/+U are the amend rows."""
    log = session_query(c, emit="changelog").collect()
    final = session_query(c, emit="final").collect()
    amend = session_query(c, emit="amend").collect()
    ident = [*c.keys, *IDENT]
    state = replay_changelog(log, ident)  # asserts -U / -D retract the current row
    values = [n for n in final.columns if n not in ident]
    expected = {tuple(r[n] for n in ident): tuple(r[n] for n in values)
                for r in final.iter_rows(named=True)}
    if c.flush:
        assert state.keys() == expected.keys()
    else:
        assert expected.keys() <= state.keys()
    for k, v in expected.items():
        got = state[k]
        for a, b in zip(got, v, strict=True):
            assert a == b or (a is not None and b is not None and abs(a - b) < 1e-9), (k, got, v)
    ops = log["op"].to_list()
    nk = len(c.keys)
    for i, op in enumerate(ops):
        if op == "-U":
            assert ops[i + 1] == "+U"
            assert log.row(i)[:nk + 2] == log.row(i + 1)[:nk + 2]  # same key and bounds
    after = log.filter(pl.col("op").is_in(["+I", "+U"])).drop("op")
    assert after.equals(amend.drop("revision"))
    # An upsert consumer that ignores -U (keyed by key + bounds) ends at the final rows too.
    upsert: dict[tuple, tuple] = {}
    for row in log.iter_rows():
        op = row[nk + 2]
        if op in ("+I", "+U"):
            upsert[row[:nk + 2]] = row[nk + 3:]
        elif op == "-D":
            upsert.pop(row[:nk + 2], None)
    assert upsert == state


@given(session_cases(max_rows=25))
def test_late_drop_and_collect_agree(c: SessionCase) -> None:
    collect = session_query(c).run()
    drop = session_query(c, late="drop").run()
    assert drop.output.equals(collect.output)
    assert drop.late.height == 0
    assert drop.metrics["rows_late"] == collect.late.height


# -- the oracle's own sanity ----------------------------------------------------------------
def _oracle_final(times: list[int | None], gap: int, delay: int = 0, lateness: int = 0,
                  max_duration: int | None = None, keys: list[tuple] | None = None,
                  emit: str = "final") -> OracleResult:
    keys = keys or [()] * len(times)
    return SessionOracle(gap, delay, lateness, max_duration, emit).run(times, keys)


def test_oracle_sanity() -> None:
    """The module docstring's picture: gap 5, rows 0 3 10 12 20 then a late 6 (lateness 100)."""
    ref = _oracle_final([0, 3, 10, 12, 20, 6], gap=5, lateness=100)
    assert [(o.start, o.end, sorted(o.rows)) for o in ref.out] == [
        (0, 17, [0, 1, 2, 3, 5]), (20, 25, [4])
    ]
    ref = _oracle_final([0, 3, 10, 12, 20, 6], gap=5, lateness=0)
    assert ref.status[-1] == "late" and ref.late_by[-1] == 14


# -- named edge cases -----------------------------------------------------------------------
def _run(times: list[Any], gap: Any = 5, keys: list[Any] | None = None, delay: Any = 0,
         lateness: Any = 0, emit: str = "final", late: str = "collect",
         max_duration: Any = None, size: int | None = None, flush: bool = True) -> rl.Run:
    data: dict[str, Any] = {"t": times, "x": list(range(len(times)))}
    if keys is not None:
        data["k"] = keys
    df = pl.DataFrame(data, schema_overrides={"t": pl.Int64})
    return (
        rl.stream(batches(df, size), time="t", watermark=delay, flush=flush)
        .window(rl.session(gap, max_duration=max_duration), by="k" if keys is not None else None,
                lateness=lateness, emit=emit, late=late)
        .agg(rl.count(), rl.sum("x"))
        .run()
    )


SIZES = pytest.mark.parametrize("size", [1, 7, None])


@SIZES
def test_case_09_rows_exactly_gap_apart_share_a_session(size: int | None) -> None:
    """Reference case 9: gap 5; 0 and 5 form one session [0, 10) (Flink, Spark, and Kafka
    Streams' [0, 5] inclusive); 0 and 6 form two, [0, 5) and [6, 11)."""
    assert _run([0, 5], size=size).output.rows() == [(0, 10, 2, 1)]
    assert _run([5, 0], size=size, lateness=10).output.rows() == [(0, 10, 2, 1)]
    assert _run([0, 6], size=size).output.rows() == [(0, 5, 1, 0), (6, 11, 1, 1)]
    # A chain of rows each gap apart is one session, however long.
    assert _run([0, 5, 10, 15], size=size).output.rows() == [(0, 20, 4, 6)]


@SIZES
def test_case_10_late_row_bridges_two_sessions(size: int | None) -> None:
    """Reference case 10: sessions {0, 2} = [0, 7) and {10, 12} = [10, 17), gap 5, large
    lateness; a row at 30 completes both; a late row at 6 touches both and merges them into
    [0, 17) with 5 rows. Kafka Streams emits tombstones for both and the new value; here, as
    the changelog is keyed by the bounds, the survivor's old bounds are deleted and its new
    ones inserted, and the merged-away one gets -D, all at the same moment, ordered by
    (end, start): -D [0,7), +I [0,17), -D [10,17)."""
    times = [0, 2, 10, 12, 30, 6]
    final = _run(times, lateness=100, size=size)
    assert final.output.rows() == [(0, 17, 5, 0 + 1 + 2 + 3 + 5), (30, 35, 1, 4)]
    assert final.late.height == 0

    log = _run(times, lateness=100, emit="changelog", size=size).output
    assert log.rows() == [
        (0, 7, "+I", 2, 1),     # after 10: wm 10 >= 7
        (10, 17, "+I", 2, 5),   # after 30
        (0, 7, "-D", 2, 1),     # after 6: the survivor's old bounds ...
        (0, 17, "+I", 5, 11),   # ... its new ones
        (10, 17, "-D", 2, 5),   # ... and the session merged away
        (30, 35, "+I", 1, 4),   # flush
    ]
    assert replay_changelog(log, IDENT) == {(0, 17): (5, 11), (30, 35): (1, 4)}

    amend = _run(times, lateness=100, emit="amend", size=size).output
    assert amend.rows() == [(0, 7, 0, 2, 1), (10, 17, 0, 2, 5), (0, 17, 1, 5, 11),
                            (30, 35, 0, 1, 4)]

    # Without the 30, [10, 17) was never emitted: no -D for it, only the survivor's update.
    log = _run([0, 2, 10, 12, 6], lateness=100, emit="changelog", size=size).output
    assert log.rows() == [(0, 7, "+I", 2, 1), (0, 7, "-D", 2, 1), (0, 17, "+I", 5, 10)]

    # With lateness 0 both sessions are closed (wm 30 >= 17) when 6 arrives: 6 joins
    # nothing and its own [6, 11) is closed too, so it is late by 24.
    closed = _run(times, lateness=0, size=size)
    assert closed.output.rows() == [(0, 7, 2, 1), (10, 17, 2, 5), (30, 35, 1, 4)]
    assert closed.late.select("t", "late_by").rows() == [(6, 24)]


@SIZES
def test_case_11_session_close(size: int | None) -> None:
    """Reference case 11 (Kafka Streams session close), adapted to our rule.

    Gap 5, lateness 0, delay 0; key a at 20 makes the watermark 20. Rows of key b then find
    no open session of their own and start one, ``[t, t + 5)``, which is late when
    ``t + gap + lateness <= wm``:

    * b at 14: [14, 19), 19 <= 20 -> late by 6 (Kafka Streams drops it too);
    * b at 15: [15, 20), 20 <= 20 -> late by 5. Kafka Streams *accepts* it: it drops a record
      when ``mergedEnd < streamTime - grace - gap`` with an inclusive end (15 < 15 is false),
      i.e. it is late only when ``t + gap + grace < streamTime``, while we use ``<=``
      (closed when wm >= end + lateness, as for every other window). The boundary is one
      unit apart;
    * b at 16: [16, 21), 21 > 20 -> accepted.

    Key a's own session {20} is open, and a at 15 touches it (20 - 5 <= 15): accepted, the
    session becomes [15, 25).
    """
    run = _run([20, 14, 15, 16, 15], keys=["a", "b", "b", "b", "a"], size=size)
    assert run.late.select("k", "t", "late_by").rows() == [("b", 14, 6), ("b", 15, 5)]
    assert run.output.rows() == [("b", 16, 21, 1, 3), ("a", 15, 25, 2, 0 + 4)]
    assert run.metrics["rows_late"] == 2


@SIZES
def test_late_row_merges_three_sessions(size: int | None) -> None:
    """Three sessions, gap 10: S1 = {0, 1} [0, 11), S2 = {12, 13} [12, 23), S3 = {24} [24, 34)
    (each more than the gap after the previous one). One row can touch at most two sessions
    (see the module docstring: a third one between them would have to lie within the gap of
    both), so the three merge through two late rows: 11 bridges S1 and S2 (1 + 10 >= 11 >=
    12 - 10), then 14 bridges that with S3 (23 + ... : 13 + 10 >= 14 >= 24 - 10).

    A row at 60 completes all three first (lateness 100 keeps them open), so the changelog
    shows each merge as -D/+I for the survivor (S1's lineage: its bounds move) and -D for
    the other.
    """
    times = [0, 1, 12, 13, 24, 60, 11, 14]
    final = _run(times, gap=10, lateness=100, size=size)
    assert final.output.rows() == [(0, 34, 7, 0 + 1 + 2 + 3 + 4 + 6 + 7), (60, 70, 1, 5)]

    log = _run(times, gap=10, lateness=100, emit="changelog", size=size).output
    assert log.select("window_start", "window_end", "op", "count").rows() == [
        (0, 11, "+I", 2),    # after 12
        (12, 23, "+I", 2),   # after 24
        (24, 34, "+I", 1),   # after 60
        (0, 11, "-D", 2),    # after 11: S1 + S2 ...
        (0, 23, "+I", 5),
        (12, 23, "-D", 2),
        (0, 23, "-D", 5),    # after 14: ... + S3
        (0, 34, "+I", 7),
        (24, 34, "-D", 1),
        (60, 70, "+I", 1),   # flush
    ]
    state = replay_changelog(log, IDENT)
    assert state == {(0, 34): (7, 23), (60, 70): (1, 5)}

    # The oracle agrees. A row at 18 reaches 8 .. 28: it bridges S2 and S3, not S1.
    ref = _oracle_final([0, 1, 12, 13, 24, 60, 18], gap=10, lateness=100)
    assert [(o.start, o.end, len(o.rows)) for o in ref.out] == [
        (0, 11, 2), (12, 34, 4), (60, 70, 1)
    ]
    assert _run([0, 1, 12, 13, 24, 60, 18], gap=10, lateness=100, size=size).output.select(
        "window_start", "window_end", "count").rows() == [(0, 11, 2), (12, 34, 4), (60, 70, 1)]


@SIZES
def test_max_duration_splits_long_sessions(size: int | None) -> None:
    """gap 5, max_duration 10: 0, 3 -> {0, 3} [0, 8); 6 would stretch it to [0, 11), 11 > 10,
    so it starts {6}; 9 joins it ([6, 14), 8 <= 10); 12 would make [6, 17): new {12}. The
    windows overlap ([0, 8) and [6, 14)): sessions kept apart never merge again."""
    times = [0, 3, 6, 9, 12]
    run = _run(times, max_duration=10, size=size)
    assert run.output.rows() == [(0, 8, 2, 1), (6, 14, 2, 5), (12, 17, 1, 4)]
    assert _run(times, size=size).output.rows() == [(0, 17, 5, 10)]  # no cap: one session
    # A span of exactly max_duration fits: 0 and 5 make [0, 10).
    assert _run([0, 5], max_duration=10, size=size).output.rows() == [(0, 10, 2, 1)]
    assert _run([0, 6], max_duration=10, gap=6, size=size).output.rows() == [
        (0, 6, 1, 0), (6, 12, 1, 1)
    ]


@SIZES
def test_max_duration_joins_the_latest_touched_session_that_fits(size: int | None) -> None:
    """gap 5, max 10: {0, 5} = [0, 10) is full; 6 starts {6}. Then 4 touches both ([0, 10)
    contains it, and 6 - 5 <= 4); merging all would give [0, 11), too long, so it joins the
    touched session with the latest start that fits: {6} -> {4, 6} = [4, 11)."""
    run = _run([0, 5, 6, 4], max_duration=10, lateness=20, size=size)
    assert run.output.rows() == [(0, 10, 2, 1), (4, 11, 2, 5)]
    # max_duration == gap: every session is a single instant; 1 touches {0} but cannot join.
    run = _run([0, 1, 0, 2], max_duration=5, lateness=20, size=size)
    assert run.output.rows() == [(0, 5, 2, 2), (1, 6, 1, 1), (2, 7, 1, 3)]


def test_max_duration_must_be_at_least_the_gap() -> None:
    df = pl.DataFrame({"t": [0, 1]})
    with pytest.raises(rl.ConfigError):
        rl.stream(df, time="t").window(rl.session(5, max_duration=4)).agg(rl.count()).collect()
    with pytest.raises(rl.ConfigError):
        rl.stream(df, time="t").window(rl.session(0)).agg(rl.count()).collect()


@SIZES
def test_sessions_per_key_are_independent(size: int | None) -> None:
    """gap 5: a at 0 and 8 are two sessions although b at 4 lies between them (one session
    each if keys were shared); the watermark is shared: b at 100 closes a's sessions."""
    run = _run([0, 4, 8, 100, 3], keys=["a", "b", "a", "b", "a"], size=size)
    assert run.output.rows() == [
        ("a", 0, 5, 1, 0),   # closed by a at 8 (wm 8)
        ("b", 4, 9, 1, 1),   # closed by b at 100 (wm 100), ordered by end
        ("a", 8, 13, 1, 2),
        ("b", 100, 105, 1, 3),  # flush
    ]
    assert run.late.select("k", "t", "late_by").rows() == [("a", 3, 97)]
    # Null keys group together; same bounds at the same moment: null key first.
    run = _run([0, 2, 2, 1], keys=[None, "a", None, None], size=size)
    assert run.output.rows() == [(None, 0, 7, 3, 0 + 2 + 3), ("a", 2, 7, 1, 1)]
    run = _run([2, 2], keys=["a", None], size=size)
    assert run.output.rows() == [(None, 2, 7, 1, 1), ("a", 2, 7, 1, 0)]


@SIZES
def test_datetime_time_column_with_30s_gap(size: int | None) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, 0, 0)
    secs = [0, 30, 61, 20, 200]
    df = pl.DataFrame({
        "t": [t0 + dt.timedelta(seconds=s) for s in secs],
        "k": ["a"] * 5,
    }).with_columns(pl.col("t").dt.replace_time_zone("UTC"))
    run = (
        rl.stream(batches(df, size), time="t", watermark="10s")
        .window(rl.session("30s"), by="k", lateness=dt.timedelta(seconds=5))
        .agg(rl.count())
        .run()
    )
    # 0 and 30 (exactly the gap) share a session; 61 is 31 s after 30: a new one. 20 joins
    # the first. 200 (wm 190) closes both.
    utc = dt.UTC
    at = lambda s: (t0 + dt.timedelta(seconds=s)).replace(tzinfo=utc)  # noqa: E731
    assert run.output.rows() == [
        ("a", at(0), at(60), 3),
        ("a", at(61), at(91), 1),
        ("a", at(200), at(230), 1),
    ]
    assert run.output.schema["window_start"] == df.schema["t"]
    assert run.output.schema["window_end"] == df.schema["t"]
    # A row at 30 now: wm 190; its own [30, 60) + 5 s is closed -> late by 160 s.
    late = (
        rl.stream(pl.concat([df, df.slice(1, 1)]), time="t", watermark="10s")
        .window(rl.session("30s"), by="k", lateness="5s").agg(rl.count()).run()
    )
    assert late.late["late_by"].to_list() == [dt.timedelta(seconds=160)]


@SIZES
def test_late_drop_only_counts(size: int | None) -> None:
    run = _run([20, 14, 16], keys=["a", "b", "b"], late="drop", size=size)
    assert run.late.height == 0
    assert run.metrics["rows_late"] == 1
    assert run.output.rows() == [("b", 16, 21, 1, 2), ("a", 20, 25, 1, 0)]


def test_late_raise() -> None:
    with pytest.raises(rl.LateDataError, match="late"):
        _run([20, 14], keys=["a", "b"], late="raise")
    # A row that joins an open session is never late, however old it is.
    assert _run([20, 15], keys=["a", "a"], late="raise").output.rows() == [("a", 15, 25, 2, 1)]


@SIZES
def test_null_times_are_rejected(size: int | None) -> None:
    run = _run([0, None, 3], size=size)
    assert run.rejected.height == 1
    assert run.rejected["x"].to_list() == [1]
    assert run.output.rows() == [(0, 8, 2, 2)]


@SIZES
def test_amend_session_extended_after_completion(size: int | None) -> None:
    """gap 5, lateness 20: a {0}; b at 7 makes wm 7, so a's [0, 5) completes (rev 0). a at 3
    extends it to [0, 8): rev 1 right away, although [0, 8) is no longer complete (wm 7); b at
    8 completes it again, with no new revision (nothing changed). The flush emits b [7, 13)."""
    run = _run([0, 7, 3, 8], keys=["a", "b", "a", "b"], lateness=20, emit="amend", size=size)
    assert run.output.rows() == [
        ("a", 0, 5, 0, 1, 0), ("a", 0, 8, 1, 2, 2), ("b", 7, 13, 0, 2, 1 + 3)
    ]
    log = _run([0, 7, 3, 8], keys=["a", "b", "a", "b"], lateness=20, emit="changelog",
               size=size).output
    assert log.select("k", "window_start", "window_end", "op", "count").rows() == [
        ("a", 0, 5, "+I", 1), ("a", 0, 5, "-D", 1), ("a", 0, 8, "+I", 2),
        ("b", 7, 13, "+I", 2),
    ]


# -- regression: a session complete on arrival is emitted right away ----------------------
# (The engine used to run a moment only when the watermark moved, so such a session was
# emitted at the next watermark move, or never with flush=False.)
@SIZES
def test_amend_session_complete_on_arrival_is_emitted_at_once(size: int | None) -> None:
    """gap 5, lateness 10: a at 0, a at 10 (wm 10: [0, 5) rev 0). b at 3 starts [3, 8), which
    is already complete (8 <= 10) but open (18 > 10): its revision 0 is due right after it,
    as for a tumbling window first seen after completion. Then a at 1 amends a's session."""
    run = _run([0, 10, 3, 1], keys=["a", "a", "b", "a"], lateness=10, emit="amend", size=size)
    ref = SessionOracle(5, 0, 10, emit="amend").run([0, 10, 3, 1], [("a",), ("a",), ("b",),
                                                                     ("a",)])
    assert [(o.key[0], o.start, o.end, o.tag, len(o.rows)) for o in ref.out] == [
        ("a", 0, 5, 0, 1), ("b", 3, 8, 0, 1), ("a", 0, 6, 1, 2), ("a", 10, 15, 0, 1)
    ]
    assert run.output.select("k", "window_start", "window_end", "revision", "count").rows() == [
        ("a", 0, 5, 0, 1), ("b", 3, 8, 0, 1), ("a", 0, 6, 1, 2), ("a", 10, 15, 0, 1)
    ]


def test_amend_session_complete_on_arrival_is_emitted_at_once_without_flush() -> None:
    """Same as above with rows a 0, a 10, b 3 and flush=False: b's [3, 8) is complete (wm 10)
    so amend and changelog owe its revision 0 / +I, exactly as tumbling(5) emits [0, 5)/b."""
    run = _run([0, 10, 3], keys=["a", "a", "b"], lateness=10, emit="amend", flush=False)
    assert run.output.select("k", "window_start", "revision").rows() == [
        ("a", 0, 0), ("b", 3, 0)
    ]


def test_changelog_merge_into_a_session_complete_on_arrival() -> None:
    """gap 1, lateness 4, delay 0: 10, 12 (wm 12: [10, 11) +I). 8 starts [8, 9), complete on
    arrival (9 <= 12 < 13): +I right away. 9 bridges [8, 9) and [10, 11): the survivor [8, 9)
    moves to [8, 11) (-D [8, 9), +I [8, 11)) and [10, 11) is deleted. (Deferring [8, 9)'s +I
    gave +I [8, 11) then -D [10, 11) instead.)"""
    expected = [
        (10, 11, "+I", 1),
        (8, 9, "+I", 1),    # after 8
        (8, 9, "-D", 1),    # after 9
        (8, 11, "+I", 3),
        (10, 11, "-D", 1),
        (12, 13, "+I", 1),  # flush
    ]
    ref = SessionOracle(1, 0, 4, emit="changelog").run([10, 12, 8, 9], [()] * 4)
    assert [(o.start, o.end, o.tag, len(o.rows)) for o in ref.out] == expected
    log = _run([10, 12, 8, 9], gap=1, lateness=4, emit="changelog").output
    assert log.select("window_start", "window_end", "op", "count").rows() == expected
    amend = _run([10, 12, 8, 9], gap=1, lateness=4, emit="amend").output
    assert amend.select("window_start", "window_end", "revision", "count").rows() == [
        (10, 11, 0, 1), (8, 9, 0, 1), (8, 11, 1, 3), (12, 13, 0, 1)
    ]
