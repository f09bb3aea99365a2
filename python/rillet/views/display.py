"""Showing queries, runs and running queries: in Jupyter as HTML that refreshes itself while a
query runs, elsewhere as text."""
from __future__ import annotations

import datetime as dt
import html
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

#: Rows of the newest windows a running query's view shows.
NEWEST_WINDOWS = 10


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live(running: Callable[[], bool], render: Callable[[], Any], every: float = 1.0,
         wake: threading.Event | None = None) -> LiveView:
    """Displays ``render()`` in the notebook and re-renders it in place every ``every``
    seconds from a daemon thread while ``running()`` is true, then once more when it ends,
    so the last view shows the final state. ``wake`` (set when the run ends) cuts the last
    wait short. Returns the :class:`LiveView` (its ``handle`` is the IPython display handle).

    ``render`` returns anything IPython can display (an object with ``_repr_html_``, a
    plotly figure, ...). It is called from the refresh thread, so it must take its own locks.
    """
    return LiveView(running, render, every, wake)


class LiveView:
    """One output area kept up to date while a run lasts (see :func:`live`).

    Updates come from a daemon thread; :meth:`finish` publishes the final view at once from
    the calling thread (``RunningQuery.wait()`` does), so a notebook run by nbclient, whose
    next cell waits for the run, records the final state rather than a racing thread's."""

    def __init__(self, running: Callable[[], bool], render: Callable[[], Any], every: float = 1.0,
                 wake: threading.Event | None = None) -> None:
        from IPython.display import display

        if not every > 0:
            raise ValueError(f"every must be a positive number of seconds, got {every!r}")
        self._running = running
        self._render = render
        self._every = every
        self._wake = wake if wake is not None else threading.Event()
        self._lock = threading.Lock()  # one update at a time; none after the final one
        self.updates = 0
        was_running = running()
        self.handle = display(self._safe_render(), display_id=True)
        self.final = not was_running  # rendered after the end: already the final view
        if not self.final:
            threading.Thread(target=self._refresh, name="rillet live view", daemon=True).start()

    @property
    def display_id(self) -> str:
        return self.handle.display_id

    def update(self, obj: Any) -> None:
        """Shows ``obj`` in this view's place (as ``DisplayHandle.update``)."""
        self.handle.update(obj)

    def refresh(self) -> None:
        """Re-renders now (does nothing once the final view is shown)."""
        self._publish(final=False)

    def finish(self) -> None:
        """Shows the final view now, if it is not shown yet; later refreshes do nothing."""
        self._publish(final=True)

    def _refresh(self) -> None:
        try:
            while self._running() and not self.final:
                self._wake.wait(self._every)
                if self._running():
                    self._publish(final=False)
            self.finish()
        except Exception:
            self.final = True

    def _publish(self, final: bool) -> None:
        with self._lock:
            if self.final:
                return
            self.handle.update(self._safe_render())
            self.updates += 1
            self.final = final

    def _safe_render(self) -> Any:
        # A failure to render must not kill the refresh thread with a traceback on stderr.
        try:
            return self._render()
        except Exception as e:
            return _Html(f"<pre>{html.escape(f'could not render the view: {type(e).__name__}: {e}')}</pre>",
                         f"could not render the view: {type(e).__name__}: {e}")


class _Html:
    """Something IPython shows as HTML in a notebook, as text elsewhere."""

    def __init__(self, html_text: str, text: str) -> None:
        self._html = html_text
        self._text = text

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text


# -- values as the views show them -------------------------------------------------------------
def human_bytes(n: float | None) -> str:
    """A byte count in binary units: ``1258291`` -> ``"1.2 MiB"``."""
    if n is None:
        return "-"
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):  # noqa: B007 (the unit reached is used below)
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def instant_text(value: object) -> str:
    """An event-time instant (a datetime, or an integer for integer time); ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def duration_text(value: object) -> str:
    """A duration as ``2h 5m``, ``1m 30s``, ``4.5s`` or ``250ms``; an integer-time span as
    the integer; ``-`` for none."""
    if value is None:
        return "-"
    if not isinstance(value, dt.timedelta):
        return str(value)
    total = value.total_seconds()
    sign, total = ("-" if total < 0 else ""), abs(total)
    if total < 1:
        return f"{sign}{total * 1000:.0f}ms"
    if total < 60:
        return f"{sign}{total:.3g}s" if total < 10 and total != int(total) else f"{sign}{int(total)}s"
    whole = int(total)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    first = next(i for i, (v, _) in enumerate(parts) if v)
    return sign + " ".join(f"{v}{u}" for v, u in parts[first:first + 2] if v)


def watermark_lag(metrics: dict[str, Any]) -> object:
    """How far the watermark trails the event-time position (the largest event time seen):
    ``max_event_time - watermark``, never below zero. With rows flowing it is the
    ``watermark=`` delay; it drops to zero when ``idle_timeout`` moves the watermark on while
    the source is quiet. None before the first row."""
    position, watermark = metrics.get("max_event_time"), metrics.get("watermark")
    if position is None or watermark is None:
        return None
    try:
        lag = position - watermark
    except TypeError:
        return None
    return max(lag * 0, lag)  # 0 of the lag's type: a timedelta or an integer


def wall_clock_lag(metrics: dict[str, Any], now: dt.datetime | None = None) -> dt.timedelta | None:
    """How far the watermark trails the wall clock (``now - watermark``): how old the newest
    results that can be final are. Only meaningful for a live source; None for integer time
    or before the first row."""
    watermark = metrics.get("watermark")
    if not isinstance(watermark, dt.datetime):
        return None
    if watermark.tzinfo is None:
        watermark = watermark.replace(tzinfo=dt.UTC)  # naive event time means UTC
    now = now if now is not None else dt.datetime.now(dt.UTC)
    return now - watermark


def is_live(query: Any) -> bool:
    """True for a query over a live source (a tail, Kinesis, Kafka) or on processing time or
    with an idle timeout: its watermark can be compared with the wall clock."""
    from rillet.sources.kafka import KafkaSource
    from rillet.sources.kinesis import KinesisSource
    from rillet.sources.tail import TailDir, TailFile

    s = query._w._stream
    if s._processing_time is not None or s._idle_timeout is not None:
        return True
    return isinstance(s._source, (TailFile, TailDir, KafkaSource, KinesisSource))


def _count(value: object) -> str:
    return "-" if value is None else f"{value:,}"


def status_fields(state: str, metrics: dict[str, Any], live: bool = False,
                  now: dt.datetime | None = None) -> list[tuple[str, str, str]]:
    """The status line of a running query: ``(key, label, text)`` for each field. ``key`` is
    the metric shown (or ``state``, ``watermark_lag``, ``wall_clock_lag``)."""
    m = metrics
    fields = [
        ("state", "state", state),
        ("rows_in", "rows in", _count(m.get("rows_in"))),
        ("rows_per_s", "rows/s", _count(m.get("rows_per_s"))),
        ("rows_emitted", "emitted", _count(m.get("rows_emitted"))),
        ("rows_late", "late", _count(m.get("rows_late"))),
        ("rows_rejected", "rejected", _count(m.get("rows_rejected"))),
        ("max_event_time", "event time", instant_text(m.get("max_event_time"))),
        ("watermark", "watermark", instant_text(m.get("watermark"))),
        ("watermark_lag", "watermark lag", duration_text(watermark_lag(m))),
    ]
    if live:
        fields.append(("wall_clock_lag", "behind wall clock", duration_text(wall_clock_lag(m, now))))
    elapsed = m.get("elapsed_s")
    fields += [
        ("open_windows", "open windows", _count(m.get("open_windows"))),
        ("state_bytes", "state", human_bytes(m.get("state_bytes"))),
        ("elapsed_s", "elapsed", "-" if elapsed is None else duration_text(dt.timedelta(seconds=elapsed))),
    ]
    return fields


# -- a running query ---------------------------------------------------------------------------
@dataclass
class RunningView:
    """What a running query's view shows, taken at one moment (``RunningQuery._view()``)."""

    state: str  # running, done, failed or stopped
    metrics: dict[str, Any]
    newest: pl.DataFrame  # the snapshot's newest windows, newest first
    title: str = ""
    live: bool = False  # a live source: the view also shows the lag behind the wall clock
    error: BaseException | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def fields(self) -> list[tuple[str, str, str]]:
        return status_fields(self.state, self.metrics, self.live, self.now)


_STATE_COLOURS = {"running": "#1f6feb", "done": "#1a7f37", "failed": "#cf222e", "stopped": "#6e7781"}
_LINES = (  # the text view's status lines
    ("rows_in", "rows_per_s", "rows_emitted", "rows_late", "rows_rejected"),
    ("max_event_time", "watermark", "watermark_lag", "wall_clock_lag"),
    ("open_windows", "state_bytes", "elapsed_s"),
)


def newest_windows(frames: list[pl.DataFrame], keys: list[str] | None, emit: str,
                   n: int = NEWEST_WINDOWS) -> pl.DataFrame:
    """The ``n`` newest rows of the snapshot (standing value per window and key) of an output
    emitted as ``frames``: by window end, then start, newest first, then by key. Only the
    windows with the latest ends are folded, so this stays cheap on a long output. A sliding
    window (``keys`` None) has no window key: its last rows, newest first."""
    if not frames:
        return pl.DataFrame()
    out = pl.concat(frames, how="vertical", rechunk=False)
    if keys is None:
        return out.tail(n).reverse()
    by = keys[:-2]
    ends = out.get_column("window_end").unique()
    take = n
    while True:
        part = out if take >= ends.len() else out.filter(pl.col("window_end") >= ends.top_k(take).min())
        latest = standing(part, keys, emit)
        if latest.height >= n or part.height == out.height:
            break
        take *= 4  # retractions left fewer standing rows than asked: look further back
    order = ["window_end", "window_start", *by]
    return latest.sort(order, descending=[True, True, *[False] * len(by)], nulls_last=True,
                       maintain_order=True).head(n)


def frame_html(df: pl.DataFrame, max_rows: int | None = None) -> str:
    """A frame as an HTML table for rillet's views: text as plain, left-aligned text (polars'
    own HTML quotes strings and right-aligns every column), numbers right-aligned, nulls
    dimmed; other values as polars formats them. Column names over their types, as polars."""
    import os

    esc = html.escape
    limit = int(os.environ.get("POLARS_FMT_STR_LEN", "30"))
    shown = df if max_rows is None else df.head(max_rows)
    right = {c: dtype.is_numeric() for c, dtype in df.schema.items()}

    def align(c: str) -> str:
        return "right" if right[c] else "left"

    def cell(series: pl.Series, i: int) -> str:
        value = series[i]
        if value is None:
            return '<span style="opacity: 0.5">null</span>'
        if series.dtype in (pl.String, pl.Categorical) or isinstance(series.dtype, pl.Enum):
            text = str(value)
            text = text if len(text) <= limit else text[:limit] + "…"
        else:
            try:
                text = series._s.get_fmt(i, limit)  # polars' own text for this value
            except AttributeError:  # another polars layout
                text = str(value)
        return esc(text)

    head = "".join(f'<th style="text-align: {align(c)}">{esc(c)}</th>' for c in df.columns)
    types = "".join(f'<td style="text-align: {align(c)}; opacity: 0.65"><small>{esc(str(t))}</small></td>'
                    for c, t in df.schema.items())
    columns = shown.get_columns()
    body = "".join(
        "<tr>" + "".join(f'<td style="text-align: {align(s.name)}; white-space: pre-wrap">{cell(s, i)}</td>'
                         for s in columns) + "</tr>"
        for i in range(shown.height)
    )
    return (f'<table class="dataframe rillet-frame" border="1"><thead><tr>{head}</tr><tr>{types}</tr>'
            f"</thead><tbody>{body}</tbody></table>")


def running_html(view: RunningView) -> str:
    """The notebook view of a running query: status line, error if it failed, newest windows."""
    esc = html.escape
    colour = _STATE_COLOURS.get(view.state, "#6e7781")
    parts = [
        ('<div class="rillet-running" style="font-family: var(--jp-ui-font-family, sans-serif); '
         'font-size: 13px; line-height: 1.5">'),
        (f'<div><b>rillet</b> <span data-field="state" style="color: {colour}; font-weight: bold">'
         f'{esc(view.state)}</span> <code>{esc(view.title)}</code></div>'),
        '<div class="rillet-status">',
    ]
    items = [
        f'<span data-field="{esc(key)}" style="white-space: nowrap"><span style="opacity: 0.65">'
        f'{esc(label)}</span> <b>{esc(text)}</b></span>'
        for key, label, text in view.fields() if key != "state"
    ]
    parts += [" &middot; ".join(items), "</div>"]
    if view.error is not None:
        parts.append(
            '<div data-field="error" style="margin: 6px 0; padding: 6px 10px; border-left: 4px solid '
            '#cf222e; background: rgba(207, 34, 46, 0.08)"><b>'
            f'{esc(type(view.error).__name__)}</b>: <span style="white-space: pre-wrap">'
            f'{esc(str(view.error))}</span><br><small>wait() raises it; the results so far stay in '
            'snapshot(), output, late and metrics</small></div>'
        )
    if view.newest.height:
        parts.append(f'<div style="margin-top: 6px; opacity: 0.65">newest windows '
                     f'({view.newest.height:,} rows, newest first)</div>')
        parts.append(f'<div class="rillet-newest">{frame_html(view.newest)}</div>')
    else:
        parts.append('<div style="margin-top: 6px; opacity: 0.65"><i>no window emitted yet</i></div>')
    parts.append("</div>")
    return "\n".join(parts)


def running_text(view: RunningView) -> str:
    """The terminal view of a running query: the same fields as :func:`running_html`."""
    fields = {key: (label, text) for key, label, text in view.fields()}
    lines = [f"rillet query {view.state}: {view.title}".rstrip()]
    for keys in _LINES:
        shown = [f"{fields[k][0]} {fields[k][1]}" for k in keys if k in fields]
        lines.append("  " + " | ".join(shown))
    if view.error is not None:
        lines.append(f"  failed: {type(view.error).__name__}: {view.error}")
    if view.newest.height:
        lines.append("newest windows (newest first):")
        lines.append(str(view.newest))
    else:
        lines.append("no window emitted yet")
    return "\n".join(lines)


# -- a finished run and a query ----------------------------------------------------------------
def run_html(run: Any, rows: int = NEWEST_WINDOWS) -> str:
    """A finished run: a summary line, then the output's first rows (polars' own HTML)."""
    esc = html.escape
    m = run.metrics
    out = run.output
    head = '<b>rillet run</b>'
    if getattr(run, "interrupted", False):
        head += (' <span data-field="interrupted" style="color: #bf8700; font-weight: bold">'
                 'interrupted</span> <small>(open windows were not flushed)</small>')
    summary = [
        ("rows_in", "rows in", _count(m.get("rows_in"))),
        ("output", "output rows", f"{out.height:,}"),
        ("late", "late", f"{run.late.height:,}"),
        ("rejected", "rejected", f"{run.rejected.height:,}"),
        ("watermark", "watermark", instant_text(m.get("watermark"))),
        ("rows_per_s", "rows/s", _count(m.get("rows_per_s"))),
    ]
    if m.get("elapsed_s") is not None:
        summary.append(("elapsed_s", "elapsed", duration_text(dt.timedelta(seconds=m["elapsed_s"]))))
    items = [f'<span data-field="{k}" style="white-space: nowrap"><span style="opacity: 0.65">'
             f'{esc(label)}</span> <b>{esc(text)}</b></span>' for k, label, text in summary]
    parts = ['<div class="rillet-run" style="font-size: 13px; line-height: 1.5">', f"<div>{head}</div>",
             "<div>" + " &middot; ".join(items) + "</div>"]
    notes = []
    if run.late.height:
        notes.append(f"{run.late.height:,} late rows in <code>run.late</code>")
    if run.rejected.height:
        notes.append(f"{run.rejected.height:,} rejected rows in <code>run.rejected</code>")
    if notes:
        parts.append("<div>" + "; ".join(notes) + "</div>")
    if out.width:
        shown = f", the first {rows}" if out.height > rows else ""
        parts.append(f'<div style="margin-top: 6px; opacity: 0.65">output: {out.height:,} rows{shown}</div>')
        parts.append(frame_html(out, rows))
    parts.append("</div>")
    return "\n".join(parts)


def source_text(source: Any) -> str:
    """A query's source, briefly: a rillet source's own repr, a frame's shape, a list's length."""
    if isinstance(source, pl.DataFrame):
        return f"DataFrame ({source.height:,} rows × {source.width} columns)"
    if isinstance(source, pl.LazyFrame):
        return "LazyFrame"
    if type(source).__module__.startswith("rillet"):
        return repr(source)
    if isinstance(source, (list, tuple)):
        return f"{type(source).__name__} of {len(source):,} micro-batches"
    return type(source).__name__


def query_html(query: Any) -> str:
    """A query's plan: source, time, watermark, window, keys, lateness, emission, aggregates
    with their output columns."""
    esc = html.escape
    w = query._w
    s = w._stream
    rows: list[tuple[str, str]] = [("source", source_text(s._source))]
    time = repr(s._processing_time) if s._processing_time is not None else s._time
    rows += [("time", time), ("watermark", repr(s._watermark))]
    if s._idle_timeout is not None:
        rows.append(("idle timeout", repr(s._idle_timeout)))
    for op, args, kwargs in s._ops:
        shown = [str(a) for a in args] + [f"{k}={v}" for k, v in kwargs.items()]
        rows.append((op, ", ".join(shown)))
    rows += [
        ("window", repr(w._spec)),
        ("by", ", ".join(w._by) if w._by else "(no key)"),
        ("lateness", repr(w._lateness)),
        ("emit", w._emit),
        ("late rows", w._late),
    ]
    if w._early_ms is not None:
        rows.append(("early", f"every {duration_text(dt.timedelta(milliseconds=w._early_ms))}"))
    rows.append(("flush at end", "yes" if s._flush else "no"))
    cells = "".join(
        f'<tr><th style="text-align: left">{esc(k)}</th><td style="text-align: left">'
        f"<code>{esc(v)}</code></td></tr>" for k, v in rows
    )
    aggs = "".join(
        f'<tr><td style="text-align: left"><code>{esc(a.name)}</code></td>'
        f'<td style="text-align: left"><code>{esc(repr(a))}</code></td></tr>' for a in query._aggs
    )
    return (
        '<div class="rillet-query" style="font-size: 13px"><b>rillet query</b>'
        f"<table>{cells}</table>"
        '<div style="margin-top: 4px"><b>aggregates</b></div>'
        '<table><tr><th style="text-align: left">output column</th>'
        f'<th style="text-align: left">aggregate</th></tr>{aggs}</table></div>'
    )


def standing(df: pl.DataFrame, keys: list[str], emit: str) -> pl.DataFrame:
    """The standing rows of an output stream: the last row per key, less retracted ones."""
    last = df.unique(subset=keys, keep="last", maintain_order=True)
    if emit == "changelog":
        return last.filter(pl.col("op").is_in(["+I", "+U"]))
    return last
