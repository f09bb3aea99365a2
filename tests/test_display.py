"""Showing queries and runs, and stopping them with Ctrl-C.

The notebook view of a running query shows its metrics and the snapshot's newest windows
(checked against the metrics and against a fold of the handle's output computed here with
polars); it refreshes in place while the run lasts and its last update shows the end; the
text view and ``watch()`` show the same. Ctrl-C stops a blocking run at a batch boundary,
closes the source and raises ``rl.Interrupted`` carrying what was computed, which equals a
replay of the rows read with no end-of-input flush.
"""
from __future__ import annotations

import _thread
import datetime as dt
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from helpers import until
from polars.testing import assert_frame_equal

import rillet as rl
from rillet._interrupt import DeferInterrupt
from rillet.views.display import duration_text, human_bytes

CLOUDTRAIL = Path("/work/shared/data/real/cloudtrail_invictus/cloudtrail.jsonl")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


# -- reading the HTML back ---------------------------------------------------------------------
class _View(HTMLParser):
    """The status fields (``data-field`` -> shown text) and the cells of the last table."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.values: dict[str, str] = {}  # a status field's value: the text of its <b>
        self._bold: str | None = None
        self.rows: list[list[str]] = []
        self._field: list[tuple[str, int]] = []  # open data-field elements and their depth
        self._depth = 0
        self._text: dict[str, list[str]] = {}
        self._in_body = self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._depth += 1
        name = dict(attrs).get("data-field")
        if name:
            self._field.append((name, self._depth))
            self._text[name] = []
        if tag == "b" and self._field:
            self._bold = self._field[-1][0]
            self.values[self._bold] = ""
        if tag == "tbody":
            self._in_body, self.rows = True, []
        elif tag == "tr" and self._in_body:
            self.rows.append([])
        elif tag == "td" and self._in_body:
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if self._field and self._field[-1][1] == self._depth:
            name, _ = self._field.pop()
            self.fields[name] = " ".join("".join(self._text[name]).split())
        self._depth -= 1
        if tag == "b":
            self._bold = None
        if tag == "tbody":
            self._in_body = False
        elif tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        for name, _ in self._field:
            self._text[name].append(data)
        if self._bold is not None:
            self.values[self._bold] += data
        if self._in_cell:
            self.rows[-1][-1] += data

    def value(self, name: str) -> str:
        """A status field's value (without its label)."""
        return self.values[name]


# -- queries -----------------------------------------------------------------------------------
def _cloudtrail(emit: str = "final") -> rl.Query:
    return (
        rl.stream(rl.read_jsonl(CLOUDTRAIL), time="eventTime", watermark="1m")
        .window(rl.tumbling("5m"), by="eventSource", lateness="2m", emit=emit)
        .agg(rl.count(), rl.count(where=pl.col("errorCode").is_not_null()).alias("failures"))
    )


def _newest(output: pl.DataFrame, by: list[str], emit: str, n: int = 10) -> pl.DataFrame:
    """The snapshot's newest windows, folded here from the output: the last row per window
    and key, less changelog retractions; by window end, then start, newest first."""
    keys = [*by, "window_start", "window_end"]
    last = output.unique(subset=keys, keep="last", maintain_order=True)
    if emit == "changelog":
        last = last.filter(pl.col("op").is_in(["+I", "+U"]))
    return last.sort(["window_end", "window_start", *by], descending=[True, True] + [False] * len(by)).head(n)


def _paused(n_batches: int, gate: threading.Event, rows: int = 20) -> Iterator[pl.DataFrame]:
    """``n_batches`` of a minute each, then heartbeats (empty batches, as a quiet live source
    sends) until ``gate`` opens, then the end."""
    for b in range(n_batches):
        df = pl.DataFrame({
            "t": [T0 + dt.timedelta(seconds=60 * b + 3 * i) for i in range(rows)],
            "k": [f"k{i % 3}" for i in range(rows)],
        })
        yield df
    deadline = time.monotonic() + 10
    while not gate.is_set() and time.monotonic() < deadline:
        yield df.head(0)
        time.sleep(0.005)


def _small(source) -> rl.Query:
    return rl.stream(source, time="t").window(rl.tumbling("1m"), by="k").agg(rl.count())


# -- the view of a running query ---------------------------------------------------------------
@pytest.mark.parametrize("emit", ["final", "amend", "changelog"])
def test_view_shows_the_metrics_and_the_newest_windows(emit: str) -> None:
    handle = _cloudtrail(emit).start()
    handle.wait(timeout=30)
    m = handle.metrics
    with pl.Config(fmt_str_lengths=100):  # polars' settings apply: no value cut short here
        html = handle._repr_html_()
        view = _View(html)
        want = _newest(handle.output, ["eventSource"], emit)

    assert view.fields["state"] == "done"
    for name in ("rows_in", "rows_per_s", "rows_emitted", "rows_late", "rows_rejected", "open_windows"):
        assert int(view.value(name).replace(",", "")) == m[name], name
    assert m["rows_in"] == 2900 and m["rows_late"] > 0  # the real file is out of order
    assert view.value("max_event_time") == m["max_event_time"].isoformat(sep=" ")
    assert view.value("watermark") == m["watermark"].isoformat(sep=" ")
    assert m["max_event_time"] - m["watermark"] == dt.timedelta(minutes=1)
    assert view.value("watermark_lag") == "1m"  # the watermark delay, as rows flowed
    assert view.value("state_bytes") == human_bytes(m["state_bytes"])
    assert "wall_clock_lag" not in view.fields  # a file replay: the wall clock means nothing
    assert "error" not in view.fields

    assert view.rows == [[_cell(v) for v in row] for row in want.rows()]
    # The same windows as the snapshot's latest ends.
    snap = handle.snapshot().sort("window_end", "window_start", descending=True)
    assert set(want["window_end"]) <= set(snap["window_end"].head(want.height))


def _cell(value: object) -> str:
    """A value as the views show it (text as it is, unquoted; times with their zone)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def test_view_while_running_then_done() -> None:
    gate = threading.Event()
    handle = _small(_paused(4, gate)).start()
    try:
        assert until(lambda: handle.metrics["rows_in"] == 80)
        view = _View(handle._repr_html_())
        assert view.fields["state"] == "running"
        assert int(view.value("rows_in")) == 80
        # Minutes 0-2 are closed by the watermark; minute 3 is open.
        want = _newest(handle.output, ["k"], "final")
        assert want.height == 9
        assert view.rows == [[_cell(v) for v in row] for row in want.rows()]
        assert int(view.value("open_windows")) == handle.metrics["open_windows"] > 0
        assert "rillet query running" in str(handle)
    finally:
        gate.set()
    handle.wait(timeout=10)
    view = _View(handle._repr_html_())
    assert view.fields["state"] == "done"
    assert len(view.rows) == 10  # 12 windows now, the newest 10 shown
    assert view.rows[0][:1] == ["k0"] and view.rows[0][2] == "2026-01-01 00:04:00 UTC"


def test_metrics_are_frozen_when_the_run_ends() -> None:
    handle = _small(_paused(2, threading.Event())).start()
    handle.stop()
    first = handle.metrics
    time.sleep(0.05)
    assert handle.metrics == first  # rows/s does not fall after the end
    assert handle.state == "stopped"
    assert _View(handle._repr_html_()).fields["state"] == "stopped"


def test_a_failed_run_shows_its_error() -> None:
    def broken() -> Iterator[pl.DataFrame]:
        yield pl.DataFrame({"t": [T0], "k": ["a"]})
        raise rl.SourceError("the feed <went> away")

    handle = _small(broken()).start()
    assert until(lambda: not handle.running)
    html = handle._repr_html_()
    view = _View(html)
    assert view.fields["state"] == "failed"
    assert view.fields["error"].startswith("SourceError: the feed <went> away")
    assert "the feed &lt;went&gt; away" in html  # escaped
    assert int(view.value("rows_in")) == 1
    text = str(handle)
    assert "rillet query failed" in text and "failed: SourceError: the feed <went> away" in text
    assert "failed" in repr(handle)


def test_watermark_lag_and_wall_clock_lag_of_a_live_source(tmp_path: Path) -> None:
    path = tmp_path / "live.jsonl"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    path.write_text("".join(
        json.dumps({"t": (now - dt.timedelta(seconds=s)).isoformat(), "k": "a"}) + "\n" for s in (90, 60, 30)
    ))
    q = (rl.stream(rl.tail_jsonl(path, poll="10ms"), time="t", watermark="10s")
         .window(rl.tumbling("1m"), by="k").agg(rl.count()))
    handle = q.start()
    try:
        assert until(lambda: handle.metrics["rows_in"] == 3)
        view = _View(handle._repr_html_())
        assert view.value("watermark_lag") == "10s"
        # now - watermark = 30 s + 10 s, plus the time the test took since `now`
        took = dt.datetime.now(dt.UTC) - now
        shown = {duration_text(dt.timedelta(seconds=40 + s)) for s in range(int(took.total_seconds()) + 2)}
        assert view.value("wall_clock_lag") in shown
    finally:
        handle.stop()


def test_duration_and_size_formats() -> None:
    assert [duration_text(dt.timedelta(seconds=s)) for s in (0.25, 4.5, 30, 65, 3725, 90000)] == [
        "250ms", "4.5s", "30s", "1m 5s", "1h 2m", "1d 1h"]
    assert duration_text(None) == "-" and duration_text(7) == "7"
    assert [human_bytes(n) for n in (0, 1023, 1024, 1_258_291, 5 * 1024**3)] == [
        "0 B", "1023 B", "1.0 KiB", "1.2 MiB", "5.0 GiB"]


# -- refreshing in place -----------------------------------------------------------------------
class _FakeHandle:
    def __init__(self) -> None:
        self.shown: list[str] = []
        self.display_id = "fake"

    def update(self, obj) -> None:
        self.shown.append(obj._repr_html_())


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> list[_FakeHandle]:
    """IPython's display replaced by a recorder, and the process taken for a kernel."""
    import IPython.display

    handles: list[_FakeHandle] = []

    def display(obj, display_id=None):
        assert display_id is True
        handle = _FakeHandle()
        handle.shown.append(obj._repr_html_())
        handles.append(handle)
        return handle

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr("rillet.query.live.in_notebook", lambda: True)
    return handles


def _states(handle: _FakeHandle) -> list[str]:
    return [_View(h).fields["state"] for h in handle.shown]


def test_the_display_hook_shows_a_live_view(notebook: list[_FakeHandle]) -> None:
    gate = threading.Event()
    handle = _small(_paused(3, gate)).start()
    handle._ipython_display_()  # what IPython does with a handle as a cell's last expression
    assert len(notebook) == 1 and len(handle._views) == 1
    assert handle._views[0]._every == 1.0
    gate.set()
    handle.wait(timeout=10)
    assert _states(notebook[0])[-1] == "done"


def test_the_notebook_view_refreshes_until_the_end(notebook: list[_FakeHandle]) -> None:
    gate = threading.Event()
    handle = _small(_paused(3, gate)).start()
    view = handle.show(every=0.02)
    assert len(notebook) == 1
    assert until(lambda: len(notebook[0].shown) >= 4)  # refreshed in place, more than once
    assert set(_states(notebook[0])) == {"running"}
    gate.set()
    run = handle.wait(timeout=10)
    # wait() gives the final update itself: it is there as soon as wait() returns.
    final = _View(notebook[0].shown[-1])
    assert final.fields["state"] == "done"
    assert int(final.value("rows_in")) == run.metrics["rows_in"] == 60
    assert view.final
    shown = len(notebook[0].shown)
    time.sleep(0.1)
    assert len(notebook[0].shown) == shown  # nothing after the final view


def test_show_on_a_finished_run_displays_once(notebook: list[_FakeHandle]) -> None:
    handle = _small(pl.DataFrame({"t": [T0], "k": ["a"]})).start()
    handle.wait()
    view = handle.show(every=0.01)
    assert view.final and _states(notebook[0]) == ["done"]
    time.sleep(0.05)
    assert len(notebook[0].shown) == 1


def test_the_refresh_thread_wakes_when_the_run_ends(notebook: list[_FakeHandle]) -> None:
    gate = threading.Event()
    handle = _small(_paused(1, gate)).start()
    handle.show(every=30)  # a long period: only the end of the run wakes it
    gate.set()
    assert until(lambda: _states(notebook[0])[-1] == "done", timeout=10)  # well before 30 s


def test_outside_a_notebook_the_display_hook_prints_the_text_view(capsys: pytest.CaptureFixture) -> None:
    handle = _small(pl.DataFrame({"t": [T0], "k": ["a"]})).start()
    handle.wait()
    handle._ipython_display_()
    assert capsys.readouterr().out.startswith("rillet query done")


# -- the text view -----------------------------------------------------------------------------
def test_text_view_and_watch() -> None:
    gate = threading.Event()
    handle = _small(_paused(3, gate)).start()
    assert until(lambda: handle.metrics["rows_in"] == 60)
    text = str(handle)
    m = handle.metrics
    assert text.splitlines()[0] == "rillet query running: rl.tumbling('1m') by k, emit='final'"
    assert f"rows in {m['rows_in']:,}" in text and f"open windows {m['open_windows']}" in text
    assert f"watermark {m['watermark'].isoformat(sep=' ')}" in text
    assert str(_newest(handle.output, ["k"], "final")) in text
    assert repr(handle).startswith("<RunningQuery running: rows_in=60,")

    out = _Drawings(gate, after=3)
    handle.watch(every=0.02, file=out)  # returns when the run ends
    blocks = out.getvalue().split("\n\nrillet query ")
    assert len(blocks) >= 3 and "\x1b[" not in out.getvalue()
    assert blocks[0].startswith("rillet query running")
    assert blocks[-1].startswith("done")


class _Drawings(io.StringIO):
    """An output that opens ``gate`` (ending the run) once ``after`` drawings are written, so
    a test sees several refreshes however slow the machine is."""

    def __init__(self, gate: threading.Event, after: int) -> None:
        super().__init__()
        self._gate, self._after = gate, after

    def write(self, text: str) -> int:
        self._after -= 1
        if self._after <= 0:
            self._gate.set()
        return super().write(text)


class _Terminal(_Drawings):
    def isatty(self) -> bool:
        return True


def test_watch_redraws_in_place_on_a_terminal() -> None:
    gate = threading.Event()
    handle = _small(_paused(2, gate)).start()
    out = _Terminal(gate, after=2)
    handle.watch(every=0.02, file=out)
    text = out.getvalue()
    first = text.split("\x1b[")[0]
    lines = first.count("\n")
    assert re.search(rf"\x1b\[{lines}F\x1b\[J", text)  # back to the first line, then cleared
    assert text.rsplit("\x1b[J", 1)[1].startswith("rillet query done")


def test_ctrl_c_stops_watching_not_the_query() -> None:
    gate = threading.Event()
    handle = _small(_paused(2, gate)).start()
    armed = threading.Event()
    armed.set()
    timer = threading.Timer(0.2, lambda: armed.is_set() and _thread.interrupt_main())
    timer.start()
    out = io.StringIO()
    try:
        started = time.monotonic()
        handle.watch(every=0.02, file=out)
        assert time.monotonic() - started < 5  # not the 10 s the source lasts
    finally:
        armed.clear()
        timer.cancel()
    assert "stopped watching" in out.getvalue()
    assert handle.running  # the query goes on
    gate.set()
    assert handle.stop().metrics["rows_in"] == 40


# -- Run and Query -----------------------------------------------------------------------------
def test_run_and_query_html() -> None:
    q = _cloudtrail("amend")
    run = q.run()
    html = run._repr_html_()
    view = _View(html)
    assert int(view.value("rows_in").replace(",", "")) == run.metrics["rows_in"] == 2900
    assert int(view.value("output").replace(",", "")) == run.output.height
    assert int(view.value("late").replace(",", "")) == run.late.height > 0
    assert int(view.value("rejected")) == run.rejected.height == 0
    assert view.value("watermark") == run.metrics["watermark"].isoformat(sep=" ")
    assert view.rows == [[_cell(v) for v in row] for row in run.output.head(10).rows()]
    assert f"{run.late.height:,} late rows in <code>run.late</code>" in html
    assert "interrupted" not in view.fields

    qhtml = q._repr_html_()
    for shown in ("rl.read_jsonl(&#x27;", "eventTime", "&#x27;1m&#x27;", "rl.tumbling(&#x27;5m&#x27;)",
                  "eventSource", "&#x27;2m&#x27;", "amend", "collect", "failures",
                  "rl.count(where=col(&quot;errorCode&quot;).is_not_null()).alias(&#x27;failures&#x27;)"):
        assert shown in qhtml, shown
    assert "<td" in qhtml and "<script" not in qhtml


def test_query_html_names_a_frame_source_and_transformations() -> None:
    q = (rl.stream(pl.DataFrame({"t": [1, 2], "k": ["a", "b"]}), time="t", watermark=5)
         .filter(pl.col("k") != "<b>")
         .window(rl.hopping(10, 5), by=["k"], emit="changelog", early=None)
         .agg(rl.sum("t").alias("total")))
    html = q._repr_html_()
    assert "DataFrame (2 rows × 2 columns)" in html
    assert "&lt;b&gt;" in html and '"<b>"' not in html
    assert "total" in html and "changelog" in html


# -- Ctrl-C ------------------------------------------------------------------------------------
def test_a_held_back_interrupt_is_delivered_after_the_batch_and_a_second_at_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    with DeferInterrupt() as held:
        signal.raise_signal(signal.SIGINT)
        assert held.pending  # held back
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # pressed again: at once
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt):
        held.raise_pending()
    held.raise_pending()  # delivered once


def _minutes(b: int, rows: int = 30) -> pl.DataFrame:
    return pl.DataFrame({
        "t": [T0 + dt.timedelta(seconds=20 * b + (i * 7) % 20) for i in range(rows)],
        "k": [f"k{i % 4}" for i in range(rows)],
    })


def test_an_interrupt_inside_a_batch_waits_for_the_batch() -> None:
    """The interrupt comes while batch 5 is being processed (from a polars expression the
    stream runs on it); that batch is finished and counted, then the run stops."""
    armed = {"on": True}

    def ctrl_c_on_fifth(s: pl.Series) -> pl.Series:
        if armed["on"] and s.min() == T0 + dt.timedelta(seconds=4 * 20):
            _thread.interrupt_main()
            time.sleep(0.05)  # the signal arrives while the batch is in hand
        return s

    def endless() -> Iterator[pl.DataFrame]:
        b = 0
        while True:
            yield _minutes(b)
            b += 1

    def query(source, flush: bool = True) -> rl.Query:
        return (rl.stream(source, time="t", watermark="5s", flush=flush)
                .with_columns(pl.col("t").map_batches(ctrl_c_on_fifth, return_dtype=pl.Datetime("us", "UTC")))
                .window(rl.tumbling("1m"), by="k").agg(rl.count()))

    with pytest.raises(rl.Interrupted) as info:
        query(endless()).run()
    run = info.value.run
    assert isinstance(info.value, KeyboardInterrupt) and run.interrupted
    m = run.metrics
    assert m["rows_in"] == 5 * 30 == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"]
    armed["on"] = False  # no interrupt in the replay
    want = query([_minutes(b) for b in range(5)], flush=False).run()
    assert_frame_equal(run.output, want.output)
    assert run.output.height > 0
    assert "open windows were not flushed" in str(info.value)


class _GrowingFile:
    """A JSON Lines file a writer thread keeps appending to (a second of event time a line,
    two keys), opening and closing it for each append."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()

    def _write(self) -> None:
        i = 0
        while not self._stop.is_set():
            with open(self.path, "a") as f:
                for _ in range(100):
                    f.write(json.dumps({"t": (T0 + dt.timedelta(seconds=i)).isoformat(), "k": "ab"[i % 2]}) + "\n")
                    i += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        self._writer.join()


@pytest.fixture
def growing_file(tmp_path: Path) -> Iterator[_GrowingFile]:
    growing = _GrowingFile(tmp_path / "growing.jsonl")
    yield growing
    growing.stop()


def _tail_query(source) -> rl.Query:
    return rl.stream(source, time="t", watermark="5s").window(rl.tumbling("1m"), by="k").agg(rl.count())


def _open_on(path: Path) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.exists():
        return []
    found = []
    for fd in os.listdir(fds):
        try:
            if os.readlink(fds / fd) == str(path):
                found.append(fd)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("method", ["run", "collect", "iter", "for_each", "to_jsonl"])
def test_ctrl_c_stops_a_blocking_run_over_an_endless_source(growing_file: _GrowingFile, tmp_path: Path,
                                                             method: str) -> None:
    q = _tail_query(rl.tail_jsonl(growing_file.path, poll="10ms"))
    delivered: list[pl.DataFrame] = []
    armed = threading.Event()
    fired: list[float] = []

    def ctrl_c() -> None:
        if armed.is_set():
            fired.append(time.monotonic())
            _thread.interrupt_main()

    timer = threading.Timer(0.4, ctrl_c)
    armed.set()
    timer.start()
    try:
        # KeyboardInterrupt, so a failure here fails the test rather than ending the session.
        with pytest.raises(KeyboardInterrupt) as info:
            if method == "run":
                q.run()
            elif method == "collect":
                q.collect()
            elif method == "iter":
                for df in q.iter():
                    delivered.append(df)
            elif method == "for_each":
                q.for_each(delivered.append)
            else:
                q.to_jsonl(tmp_path / "out", partition_by=None, max_rows=10**6, max_delay=None)
        returned = time.monotonic()
    finally:
        armed.clear()
        timer.cancel()
    assert fired and returned - fired[0] < 5.0  # promptly (a batch or a poll, on a busy machine too)
    assert isinstance(info.value, rl.Interrupted)
    run = info.value.run
    m = run.metrics
    assert run.interrupted and m["rows_in"] > 0
    assert m["rows_in"] == m["rows_accepted"] + m["rows_late"] + m["rows_rejected"]
    growing_file.stop()
    assert not _open_on(growing_file.path.resolve())  # the tail let go of the file

    # What was emitted equals a replay of the lines read, with no end-of-input flush.
    lines = growing_file.path.read_text().splitlines()[: m["rows_in"]]
    replay = pl.DataFrame([json.loads(line) for line in lines])
    want = (rl.stream(replay, time="t", watermark="5s", flush=False)
            .window(rl.tumbling("1m"), by="k").agg(rl.count()).collect())
    assert want.height > 0
    if method == "to_jsonl":
        files = sorted((tmp_path / "out").glob("*.jsonl"))
        got = pl.concat([pl.read_ndjson(f) for f in files])  # written at close, from the buffer
        assert sorted(got.select("k", "count").rows()) == sorted(want.select("k", "count").rows())
        return
    got = pl.concat([df for df in [*delivered, run.output] if df.width], how="vertical")
    assert_frame_equal(got, want)


def _python_with_default_sigint(script: str) -> list[str]:
    """``python -c script`` with Ctrl-C handled as Python does by default, even when the tests
    run with SIGINT ignored (started in the background), which a child would inherit."""
    prelude = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    return [sys.executable, "-c", prelude + textwrap.dedent(script)]


def _package_env() -> dict[str, str]:
    package = str(Path(rl.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([package, os.environ.get("PYTHONPATH", "")])}


def _interrupted_script(script: str, ready: str, timeout: float = 30) -> tuple[int, str, str, float]:
    """Runs ``script`` in a child Python, sends it Ctrl-C 0.3 s after it prints the line
    ``ready``, and returns its exit status, the rest of its stdout, its stderr and the seconds
    from the signal to its exit."""
    proc = subprocess.Popen(_python_with_default_sigint(script), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_package_env())
    try:
        assert proc.stdout.readline() == ready + "\n"
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err, time.monotonic() - sent


def test_sigint_ends_a_script_promptly_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "growing.jsonl"
    path.write_text("".join(
        json.dumps({"t": (T0 + dt.timedelta(seconds=30 * i)).isoformat(), "k": "a"}) + "\n" for i in range(10)
    ))
    script = f"""
        import rillet as rl
        q = (rl.stream(rl.tail_jsonl({str(path)!r}, poll="20ms"), time="t")
             .window(rl.tumbling("1m"), by="k").agg(rl.count()))
        print("ready", flush=True)
        q.collect()
    """
    status, _, err, took = _interrupted_script(script, "ready")
    assert took < 10
    # An uncaught rl.Interrupted: status 1 (Python keeps 130 for a plain KeyboardInterrupt).
    assert status == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("rillet.Interrupted: interrupted after 10 input rows (4 output rows kept"), last
    assert "open windows were not flushed" in last
    assert "Exception in thread" not in err and "Exception ignored" not in err


def test_ctrl_c_stops_wait_on_a_query_that_never_ends() -> None:
    """polars' SIGINT handler restarts an untimed wait after Ctrl-C (SA_RESTART): wait() must
    still give up waiting at once, and leave the query running."""
    script = """
        import time
        import polars as pl, rillet as rl

        def quiet():
            yield pl.DataFrame({"t": [1, 2, 3], "k": ["a", "b", "a"]})
            while True:  # a live source with nothing new: heartbeats
                time.sleep(0.01)
                yield pl.DataFrame({"t": [1], "k": ["a"]}).head(0)

        handle = rl.stream(quiet(), time="t").window(rl.tumbling(10), by="k").agg(rl.count()).start()
        print("ready", flush=True)
        try:
            handle.wait()
        except KeyboardInterrupt:
            print("stopped waiting:", handle.state, flush=True)
        print("rows in:", handle.stop().metrics["rows_in"], flush=True)
    """
    status, out, err, took = _interrupted_script(script, "ready")
    assert status == 0, err
    assert out.splitlines() == ["stopped waiting: running", "rows in: 3"]
    assert took < 10


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads glibc's struct sigaction")
def test_a_blocking_run_keeps_the_sigint_handler_polars_installed() -> None:
    """polars installs a C-level SIGINT handler (so that Ctrl-C cancels a polars query);
    holding Ctrl-C back during a batch must put it back afterwards, not leave Python's alone."""
    script = """
        import ctypes, signal, tempfile
        import polars as pl, rillet as rl

        class Action(ctypes.Structure):  # glibc's struct sigaction
            _fields_ = [("handler", ctypes.c_void_p), ("mask", ctypes.c_ulong * 16),
                        ("flags", ctypes.c_int), ("restorer", ctypes.c_void_p)]

        sigaction = ctypes.CDLL(None).sigaction
        sigaction.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]

        def action():
            a = Action()
            assert sigaction(signal.SIGINT, None, ctypes.byref(a)) == 0
            return a.handler, a.flags, a.mask[0]

        before = action()
        q = (rl.stream(pl.DataFrame({"t": [1, 2, 15], "k": ["a", "b", "a"]}), time="t")
             .window(rl.tumbling(10), by="k").agg(rl.count()))
        q.run(progress=False)
        q.collect(progress=False)
        list(q.iter(progress=False))
        q.for_each(lambda df: None, progress=False)
        q.to_jsonl(tempfile.mkdtemp(), partition_by=None, progress=False)
        kept = action() == before
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own C handler
        print("kept" if kept else "lost", "native" if action() != before else "python", flush=True)
    """
    proc = subprocess.run(_python_with_default_sigint(script), capture_output=True, text=True, check=False,
                          env=_package_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    kept, whose = proc.stdout.split()
    if whose == "python":
        pytest.skip("this polars installs no SIGINT handler of its own")
    assert kept == "kept"


def test_ctrl_c_in_a_polars_call_of_the_source_raises_interrupted() -> None:
    """Ctrl-C during a polars computation the source runs (a LazyFrame collected) raises twice:
    polars' own KeyboardInterrupt, then Python's at the next call. The run still ends with
    rl.Interrupted holding what was read."""
    script = """
        import polars as pl, rillet as rl

        base = pl.LazyFrame({"a": range(60_000)})
        heavy = (base.join(base, how="cross")  # seconds of work for polars
                 .filter((pl.col("a") * 31 + pl.col("a_right") * 17) % 7 == 3)
                 .select(pl.len().alias("n"), pl.lit(5).alias("t")))

        def batches():
            yield pl.DataFrame({"n": [1], "t": [1]}, schema={"n": pl.UInt32, "t": pl.Int32})
            print("collecting", flush=True)
            yield heavy
            yield heavy

        q = rl.stream(batches(), time="t").window(rl.tumbling(10)).agg(rl.count())
        try:
            q.run(progress=False)
        except rl.Interrupted as e:
            print("interrupted, rows in:", e.run.metrics["rows_in"], flush=True)
    """
    status, out, err, _ = _interrupted_script(script, "collecting", timeout=120)
    assert status == 0, err
    assert out == "interrupted, rows in: 1\n", err


def test_ctrl_c_while_a_sink_writes_its_last_files_waits_for_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows a file sink buffered are written when the run ends; a Ctrl-C then is held
    back until they are, then raised (the input had ended: the run is complete)."""
    from rillet.sinks.writers import FileSink

    write_file = FileSink._write_file

    def ctrl_c_first(self, folder, df):
        signal.raise_signal(signal.SIGINT)
        return write_file(self, folder, df)

    monkeypatch.setattr(FileSink, "_write_file", ctrl_c_first)
    q = _small([_minutes(b) for b in range(6)])
    # KeyboardInterrupt, so a failure here fails the test rather than ending the session.
    with pytest.raises(KeyboardInterrupt) as info:
        q.to_jsonl(tmp_path / "out", max_rows=10**6, max_delay=None, progress=False)
    assert isinstance(info.value, rl.Interrupted)
    assert not info.value.run.interrupted  # every window was flushed and written
    assert "the run is complete" in str(info.value)
    got = pl.concat([pl.read_ndjson(f) for f in sorted((tmp_path / "out").rglob("*.jsonl"))])
    want = q.collect(progress=False)
    assert sorted(got.select("k", "count").rows()) == sorted(want.select("k", "count").rows())
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_a_write_cut_short_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second Ctrl-C (delivered at once) or a full disk in the middle of a file: the
    temporary file is removed, so no half file is left in the output folder."""
    def half_then(exc: BaseException):
        def write_ndjson(self, path):
            Path(path).write_text('{"k": "k0", "cou')  # half a file, then the failure
            raise exc
        return write_ndjson

    q = _small([_minutes(b) for b in range(3)])
    monkeypatch.setattr(pl.DataFrame, "write_ndjson", half_then(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        q.to_jsonl(tmp_path / "a", partition_by=None, max_delay=None, progress=False)
    assert list((tmp_path / "a").rglob("*")) == []
    monkeypatch.setattr(pl.DataFrame, "write_ndjson", half_then(OSError(28, "No space left on device")))
    with pytest.raises(rl.SinkError, match="No space left on device"):
        q.to_jsonl(tmp_path / "b", partition_by=None, max_delay=None, progress=False)
    assert list((tmp_path / "b").rglob("*")) == []


def test_a_handler_not_installed_from_python_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """signal.getsignal() is None when an embedding application handles SIGINT itself:
    signal.signal could not put it back, so rillet does not touch it."""
    calls: list[object] = []
    real_signal = signal.signal
    monkeypatch.setattr(signal, "getsignal", lambda signum: None)
    monkeypatch.setattr(signal, "signal", lambda signum, handler: calls.append(handler) or real_signal(signum, handler))
    out = _small([_minutes(0), _minutes(3)]).collect(progress=False)
    assert out.height > 0 and calls == []
