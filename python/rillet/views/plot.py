"""Plots of a query's output: a metric over time as a plotly Figure (``run.plot(...)``,
``running.plot(...)``). plotly is optional (``pip install 'rillet[plot]'``); pandas is not used.

What is drawn, in order (docs/semantics.md, "Plots"):

1. amend and changelog outputs are folded to the latest value per window and key, as
   ``RunningQuery.snapshot()`` does, so a revision never shows as a second point;
2. with ``x`` a window bound (or a sliding window's time column), one row per key and ``x``
   stays: the last emitted (a session amended as it grew, cumulative windows sharing a start);
3. rows that still share ``(facet, color, x)`` differ in keys the plot does not show: counts
   and sums are added up, mins and maxes combined; any other aggregate is a ConfigError;
4. ``top=N`` keeps the N colour values with the largest total of the first ``y``;
5. one trace per ``y`` column and colour value, sorted by ``x``; colour values sorted;
6. lines and areas over the windows of a tumbling, hopping or cumulative window are put on
   the window grid (the query's ``every``, or a cumulative window's step), since an empty
   window emits no row: a missing window of a count, sum or distinct count is 0 (from the
   figure's first window to its last), of any other metric a gap (``None``: the line breaks
   there). Session and sliding windows have no grid: their points are joined as emitted.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from rillet._errors import ConfigError, RilletError

KINDS = ("line", "bar", "area", "scatter")
BOUNDS = ("window_start", "window_end")
MAX_FACETS = 20
# How rows that differ only in keys the plot does not show are combined into one point.
_COMBINE = {"count": "sum", "sum": "sum", "min": "min", "max": "max"}
_ADDITIVE = ("count", "sum")
# What a window with no rows holds: these are 0 there; any other metric is unknown (a gap).
_ZERO_WHEN_EMPTY = ("count", "sum", "count_distinct", "approx_count_distinct")
GRIDDED = ("tumbling", "hopping", "cumulative")
_MAX_GRID = 1_000_000  # windows between the first and last drawn; beyond, points as emitted
_EVERY_WINDOW_UP_TO = 10_000  # beyond, a run of missing windows gets its first and last only
# One style per y column, so several metrics per colour value stay apart.
_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_SYMBOLS = ("circle", "square", "diamond", "cross", "x", "triangle-up")
_PATTERNS = ("", "/", "x", ".", "\\", "+")
_MARKERS_UP_TO = 60  # line traces this short also get markers


def plotly() -> tuple[Any, Any]:
    """``plotly.graph_objects`` and ``plotly.subplots.make_subplots``, or an ImportError that
    says how to install them."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as e:
        raise ImportError(
            "plots need plotly, which is not installed: pip install 'rillet[plot]' "
            "(or pip install 'plotly>=6')"
        ) from e
    return go, make_subplots


@dataclass(frozen=True)
class OutputShape:
    """What a plot needs to know about the query behind an output."""

    by: tuple[str, ...]
    emit: str
    window: str  # tumbling, hopping, session, sliding, cumulative
    time: str  # the stream's time column (a sliding window's output carries it)
    aggs: dict[str, str]  # output column -> aggregate kind
    spec: Any = None  # the WindowSpec, for the window grid

    @classmethod
    def of(cls, query: Any) -> OutputShape | None:
        if query is None:
            return None
        w = query._w
        return cls(tuple(w._by), w._emit, w._spec.kind, w._stream._time,
                   {a.name: a.kind for a in query._aggs}, w._spec)

    @property
    def bounds(self) -> tuple[str, ...]:
        return (self.time,) if self.window == "sliding" else BOUNDS

    @property
    def keys(self) -> list[str]:
        return [*self.by, *self.bounds]

    @property
    def columns(self) -> list[str]:
        extra = {"amend": ["revision"], "changelog": ["op"]}.get(self.emit, [])
        return [*self.keys, *extra, *self.aggs]


def figure(
    output: pl.DataFrame,
    query: Any = None,
    y: str | Sequence[str] | None = None,
    color: str | Sequence[str] | None = None,
    *,
    x: str | None = None,
    kind: str = "line",
    top: int | None = None,
    facet: str | None = None,
    title: str | None = None,
) -> Any:
    """A plotly Figure of ``output`` (the rows a query emitted; see the module doc)."""
    go, make_subplots = plotly()
    shape = OutputShape.of(query)
    columns = output.columns if output.width else (shape.columns if shape else [])
    colors = _names(color, "color")
    if kind not in KINDS:
        raise ConfigError(f"kind={kind!r} is not a plot kind; expected one of {KINDS}")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ConfigError(f"top= takes a positive number of colour values, got {top!r}")
        if not colors:
            raise ConfigError("top= keeps the N largest colour values, so it needs color=, e.g. "
                              "color='source_ip', top=10")
    if facet is not None and not isinstance(facet, str):
        raise ConfigError(f"facet= takes one column name, got {facet!r}")
    if title is not None and not isinstance(title, str):
        raise ConfigError(f"title= takes a string, got {title!r}")
    if x is None:
        x = _default_x(columns, shape)
    elif not isinstance(x, str):
        raise ConfigError(f"x= takes one column name, got {x!r}")
    ys = _names(y, "y") or _default_y(output, columns, shape, {x, *colors, facet})
    named = [("x", x), *(("y", c) for c in ys), *(("color", c) for c in colors)]
    if facet is not None:
        named.append(("facet", facet))
    for what, name in named:
        if name not in columns:
            raise ConfigError(f"{what}={name!r}: no such column in the query's output; its columns "
                              f"are {columns}")
    seen: set[str] = set()
    for what, name in named:
        if name in seen:
            raise ConfigError(f"{what}={name!r}: x, y, color and facet must name different "
                              f"columns, and {name!r} is given twice")
        seen.add(name)
    for c in ys:
        _check_numeric(output, c, shape)

    df, labels = _points(output, shape, x, ys, colors, facet)
    legend = ", ".join(colors)
    if top is not None and df.height:
        df, legend = _top(df, colors, ys[0], top, legend)
    grid = window_grid(df.get_column(x), shape, x) if kind in ("line", "area") and df.height else None
    return _draw(go, make_subplots, df, shape, x, ys, labels, colors, facet, kind, title, legend,
                 output.schema.get(x), grid)


# -- choosing columns -----------------------------------------------------------------------
def _names(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(f"{what}= takes a column name or a list of them, got {value!r}")


def _default_x(columns: list[str], shape: OutputShape | None) -> str:
    if shape is not None and shape.window == "sliding":
        return shape.time  # a sliding window's rows carry the input row's time, not bounds
    if shape is not None and shape.window == "cumulative":
        return "window_end"  # the steps of one cumulative window share its start
    for c in BOUNDS:
        if c in columns:
            return c
    raise ConfigError(f"this output has no window_start or window_end; say which column is "
                      f"time with x=..., one of {columns}")


def _default_y(output: pl.DataFrame, columns: list[str], shape: OutputShape | None,
               taken: set[str | None]) -> list[str]:
    if shape is not None:
        candidates = [c for c, k in shape.aggs.items() if k != "top_k"]
    else:
        candidates = [c for c in columns if c not in (*BOUNDS, "revision")]
    if output.width:
        candidates = [c for c in candidates if output.schema[c].is_numeric()]
    candidates = [c for c in candidates if c not in taken]
    if len(candidates) == 1:
        return candidates
    raise ConfigError(f"say which column to plot with y=...: one of {candidates}, or a list "
                      f"of them" if candidates else
                      f"y=...: the output has no numeric column to plot; its columns are {columns}")


def _check_numeric(output: pl.DataFrame, c: str, shape: OutputShape | None) -> None:
    dtype: pl.DataType | str
    if output.width:
        dtype = output.schema[c]
        if dtype.is_numeric():
            return
        numeric = [n for n, t in output.schema.items() if t.is_numeric()
                   and n not in (*BOUNDS, "revision")]
    elif shape is not None and shape.aggs.get(c) == "top_k":
        dtype = "a list of {value, count}"
        numeric = [n for n, k in shape.aggs.items() if k != "top_k"]
    else:
        return  # nothing emitted yet: checked when there are rows
    raise ConfigError(f"y={c!r} is {dtype}, not a number, so it cannot be plotted; numeric "
                      f"columns are {numeric}")


# -- from rows to points ----------------------------------------------------------------------
def _points(output: pl.DataFrame, shape: OutputShape | None, x: str, ys: list[str],
            colors: list[str], facet: str | None) -> tuple[pl.DataFrame, dict[str, str]]:
    """One row per (facet, colour, x), sorted; and the y labels (saying what was combined)."""
    labels = {c: c for c in ys}
    groups = [*([facet] if facet else []), *colors, x]
    if not output.height:
        return output, labels
    df = output
    if shape is not None:
        if shape.window != "sliding":
            from rillet.views.display import standing

            df = standing(df, shape.keys, shape.emit)
        if x in shape.bounds:
            df = df.unique(subset=list(dict.fromkeys([*shape.by, *groups])), keep="last",
                           maintain_order=True)
        # Points are rows when x is not a key (count against bytes_sum, say); otherwise rows
        # that share a point differ in keys the plot does not show.
        hidden = [k for k in shape.keys
                  if k not in groups and not (x in shape.bounds and k in shape.bounds)]
        if x in shape.keys and hidden and df.select(groups).is_duplicated().any():
            df, labels = _combine(df, shape, groups, ys, hidden)
    df = df.select(list(dict.fromkeys([*groups, *ys])))
    return df.sort([*groups, *ys], nulls_last=True, maintain_order=True), labels


def _combine(df: pl.DataFrame, shape: OutputShape, groups: list[str], ys: list[str],
             hidden: list[str]) -> tuple[pl.DataFrame, dict[str, str]]:
    shown_as = [h for h in hidden if h not in shape.bounds]
    if len(shown_as) < len(hidden):
        shown_as.append("windows")
    over = " and ".join(shown_as)
    # A sliding value belongs to one key's row at one instant: adding keys up means nothing.
    ops = {c: None if shape.window == "sliding" else _COMBINE.get(shape.aggs.get(c, "")) for c in ys}
    cannot = [c for c, op in ops.items() if op is None]
    if cannot:
        raise ConfigError(
            f"several rows fall on the same point: they differ in {hidden}, which the plot does "
            f"not show, and {cannot} cannot be added up. Show those columns (color= takes a "
            f"list, or facet=), or plot counts, sums, mins or maxes, which are combined"
        )
    aggs = []
    for c, op in ops.items():
        value = pl.col(c).sum() if op == "sum" else getattr(pl.col(c), str(op))()
        aggs.append(pl.when(pl.col(c).count() > 0).then(value).alias(c))  # all null stays null
    labels = {c: f"{c} ({ops[c]} over {over})" for c in ys}
    return df.group_by(groups, maintain_order=True).agg(aggs), labels


def _top(df: pl.DataFrame, colors: list[str], y: str, n: int,
         legend: str) -> tuple[pl.DataFrame, str]:
    totals = (df.group_by(colors).agg(pl.col(y).sum().alias("__total"))
              .sort(["__total", *colors], descending=[True, *[False] * len(colors)],
                    nulls_last=True))
    if totals.height <= n:
        return df, legend
    kept = totals.head(n).drop("__total")
    df = df.join(kept, on=colors, how="semi", nulls_equal=True)
    return df, f"{legend}<br><sup>top {n} of {totals.height} by total {y}</sup>"


# -- the window grid ----------------------------------------------------------------------------
def window_grid(xs: pl.Series, shape: OutputShape | None, x: str) -> pl.Series | None:
    """Every window bound ``x`` takes from the first in ``xs`` to the last, as the physical
    integers of ``xs`` (sorted); None when there is no grid (sessions, sliding windows, ``x``
    not a bound), when it would hold over ``_MAX_GRID`` windows, or when a bound in ``xs`` is
    not on it (a layout this does not know: the points are then drawn as emitted)."""
    if shape is None or shape.spec is None or x not in BOUNDS or shape.window not in GRIDDED:
        return None
    resolved = _resolved(shape.spec, xs.dtype)
    if resolved is None:
        return None
    window, unit, tz = resolved
    seen = xs.drop_nulls().to_physical().cast(pl.Int64).unique().sort()
    if not seen.len():
        return None
    lo, hi = seen[0], seen[-1]
    # A cumulative window's steps end every step; its starts are a period apart.
    step_of = "period" if shape.window == "cumulative" and x == "window_start" else "every"
    if window["kind"] in ("fixed", "cumulative"):
        step = window[step_of]
        if (hi - lo) // step >= _MAX_GRID:
            return None
        grid = pl.int_range(lo, hi + 1, step, eager=True)
    elif window["kind"] == "calendar":
        months, span = window[f"{step_of}_months"], window[step_of]
        day = 86_400 * {"ns": 10**9, "us": 10**6, "ms": 10**3}[unit]
        shortest = months * 28 * day if months else span
        if (hi - lo) // shortest >= _MAX_GRID:
            return None
        # Calendar months and days follow the window's zone (23- and 25-hour days).
        every = f"{months}mo" if months else f"{span // day}d" if span % day == 0 else f"{span}{unit}"
        wall = pl.col(x) if tz else pl.col(x).dt.replace_time_zone("UTC")
        wall = wall.dt.convert_time_zone(window["tz"])
        grid = (xs.to_frame(x).select(pl.datetime_range(wall.min(), wall.max(), every))
                .to_series().to_physical().cast(pl.Int64))
    else:
        return None
    if not seen.is_in(grid).all():
        return None
    return grid


def _on_grid(pts: pl.DataFrame, x: str, y: str, grid: pl.Series, zero: bool,
             every_window: bool) -> tuple[pl.DataFrame, bool]:
    """``pts[x, y]`` with the windows of ``grid`` it misses: 0 over the whole grid when
    ``zero``, else None between its first and last point (a gap). With ``every_window``
    False, a run of missing windows gets its first and last only (the same line). Also
    whether any window was added."""
    part = pts.select(x, y)
    have = part.get_column(x).to_physical().cast(pl.Int64)
    span = grid if zero else grid.filter(grid.is_between(have.min(), have.max()))
    missing = ~span.is_in(have)
    if not every_window:
        missing = missing & ~(missing.shift(1, fill_value=False) & missing.shift(-1, fill_value=False))
    added = span.filter(missing)
    if not added.len():
        return part, False
    ydtype = part.schema[y]
    filler = pl.DataFrame({
        x: added.cast(part.schema[x]),
        y: pl.repeat(0 if zero else None, added.len(), eager=True).cast(ydtype),
    })
    return pl.concat([part, filler]).sort(x), True


def sliding_span(df: pl.DataFrame, shape: OutputShape | None, x: str) -> int | None:
    """A sliding window's period in the physical units of its time column ``x``, or None
    (not a sliding window's own time on x, or no rows)."""
    if shape is None or shape.spec is None or shape.window != "sliding" or x != shape.time:
        return None
    if shape.spec.rows is not None:  # a window of rows has no span in time
        return None
    if not df.height:
        return None
    resolved = _resolved(shape.spec, df.schema[x])
    return None if resolved is None else int(resolved[0]["period"])


def _resolved(spec: Any, dtype: pl.DataType) -> tuple[dict[str, Any], str, str | None] | None:
    """The query's window in the physical units of a time column of ``dtype``, with that
    unit and zone, or None (not a time column, or a window that does not resolve there)."""
    unit: str
    if isinstance(dtype, pl.Datetime):
        unit, tz = dtype.time_unit or "us", dtype.time_zone
    elif dtype.is_integer():
        unit, tz = "integer", None
    else:
        return None
    try:
        return spec.resolve(unit, tz), unit, tz
    except RilletError:
        return None


def _break_gaps(pts: pl.DataFrame, x: str, y: str, period: int, zero: bool) -> tuple[pl.DataFrame, bool]:
    """A sliding window's points, with the stretches where its window held no row: where two
    consecutive rows are more than ``period`` apart, the window ``(t - period, t]`` is empty
    from ``t_prev + period`` until just before ``t_next``. A count or sum is 0 there (two
    points of 0 on those bounds); any other metric has no value (a gap: the line breaks).
    Also whether any point was added."""
    part = pts.select(x, y).sort(x)
    xs = part.get_column(x).to_physical().cast(pl.Int64)
    prev, nxt = xs.head(-1) if xs.len() else xs, xs.tail(-1) if xs.len() else xs
    far = (nxt - prev) > period
    if not far.any():
        return part, False
    starts = (prev.filter(far) + period)
    if zero:
        ends = nxt.filter(far) - 1
        added = pl.concat([starts, ends]).unique().sort()
    else:
        added = starts
    filler = pl.DataFrame({
        x: added.cast(part.schema[x]),
        y: pl.repeat(0 if zero else None, added.len(), eager=True).cast(part.schema[y]),
    })
    return pl.concat([part, filler]).sort(x, maintain_order=True), True


# -- drawing ----------------------------------------------------------------------------------
def _draw(go: Any, make_subplots: Any, df: pl.DataFrame, shape: OutputShape | None, x: str,
          ys: list[str], labels: dict[str, str], colors: list[str], facet: str | None, kind: str,
          title: str | None, legend: str, x_dtype: Any, grid: pl.Series | None = None) -> Any:
    from plotly.colors import qualitative

    facets: list[Any] = [None]
    if facet is not None and df.height:
        facets = df.get_column(facet).unique().sort(nulls_last=True).to_list()
        if len(facets) > MAX_FACETS:
            raise ConfigError(f"facet={facet!r} has {len(facets)} values; at most {MAX_FACETS} "
                              f"panels are drawn: use color=, or filter the rows first")
    if facet is not None and df.height:
        fig = make_subplots(rows=len(facets), cols=1, shared_xaxes=True,
                            vertical_spacing=min(0.08, 0.3 / len(facets)),
                            subplot_titles=[f"{facet} = {_label(v)}" for v in facets])
    else:
        fig = go.Figure()
    values = (df.select(colors).unique().sort(colors, nulls_last=True).rows()
              if colors and df.height else [()])
    # A colour per colour value; without color=, a colour per y column (else they would share one).
    by_y = not colors and len(ys) > 1
    palette = qualitative.Plotly if max(len(values), len(ys) if by_y else 0) <= 10 else qualitative.Dark24
    shade = {v: palette[i % len(palette)] for i, v in enumerate(values)}
    every_window = grid is not None and grid.len() <= _EVERY_WINDOW_UP_TO
    span = sliding_span(df, shape, x) if kind in ("line", "area") and grid is None else None
    additive = shape is not None and all(shape.aggs.get(c) in _ADDITIVE for c in ys)
    x_format = _x_hover_format(df.get_column(x)) if df.height else None
    y_format = {c: ",d" if df.schema[c].is_integer() else ",.6~r" for c in ys} if df.height else {}
    longest = 0
    traces: list[tuple[int, Any, list[bool] | None]] = []
    legend_seen: set[str] = set()
    for row, fv in enumerate(facets if df.height else [], start=1):
        part = df if facet is None else df.filter(pl.col(facet).eq_missing(fv))
        by_colour = (part.partition_by(colors, as_dict=True, maintain_order=True)
                     if colors else {(): part})
        for value in values:
            pts = by_colour.get(value)
            if pts is None or not pts.height:
                continue
            for i, c in enumerate(ys):
                name = ", ".join(_label(v) for v in value) if colors else c
                if colors and len(ys) > 1:
                    name = f"{name} · {c}"
                line, gapped = pts.select(x, c), False
                zero = shape is not None and shape.aggs.get(c) in _ZERO_WHEN_EMPTY
                if grid is not None:
                    line, added = _on_grid(pts, x, c, grid, zero, every_window)
                    gapped = added and not zero
                elif span is not None:
                    line, added = _break_gaps(pts, x, c, span, zero)
                    gapped = added and not zero
                longest = max(longest, line.height)
                style = dict(
                    x=_axis_values(line.get_column(x)), y=_axis_values(line.get_column(c)),
                    name=name, legendgroup=name, showlegend=name not in legend_seen,
                    xhoverformat=x_format, yhoverformat=y_format[c],
                )
                if gapped:
                    style["connectgaps"] = False
                legend_seen.add(name)
                if kind == "scatter":
                    style["hovertemplate"] = (f"<b>%{{fullData.name}}</b><br>{x}: %{{x}}<br>"
                                              f"{labels[c]}: %{{y}}<extra></extra>")
                colour = palette[i % len(palette)] if by_y else shade[value]
                trace = _trace(go, kind, style, colour, 0 if by_y else i, c, additive)
                traces.append((row, trace, _alone(line.get_column(c)) if gapped else None))
    for row, trace, alone in traces:
        if kind == "line" and (longest <= _MARKERS_UP_TO or len(trace.x) == 1):
            trace.mode = "lines+markers"
        elif kind == "line" and alone is not None and any(alone):
            # A point between two gaps has no line to draw: a marker shows it.
            trace.mode = "lines+markers"
            trace.marker.size = [6 if a else 0 for a in alone]
        if facet is not None and df.height:
            fig.add_trace(trace, row=row, col=1)
        else:
            fig.add_trace(trace)

    x_title = x
    if isinstance(x_dtype, pl.Datetime):
        x_title = f"{x} ({x_dtype.time_zone or 'UTC'})"
    layout: dict[str, Any] = dict(
        hovermode="closest" if kind == "scatter" else "x unified",
        legend_title_text=legend or None,
        showlegend=len(legend_seen) > 1 or bool(colors),
    )
    if title is not None:
        layout["title_text"] = title
    if kind == "bar":
        layout["barmode"] = "relative" if additive and len(ys) == 1 else "group"
    if len(facets) > 1:
        layout["height"] = max(450, 220 * len(facets))
    if not df.height:
        layout["annotations"] = [dict(text="no rows emitted yet", showarrow=False,
                                      xref="paper", yref="paper", x=0.5, y=0.5)]
    fig.update_layout(**layout)
    y_title = ", ".join(labels[c] for c in ys)
    fig.update_yaxes(title_text=y_title)
    fig.update_xaxes(title_text=x_title, row=len(facets) if facet is not None and df.height else None)
    return fig


def _alone(y: pl.Series) -> list[bool]:
    """Which values have no value on either side (a line through them has no length)."""
    known = y.is_not_null()
    return (known & ~known.shift(1, fill_value=False) & ~known.shift(-1, fill_value=False)).to_list()


def _trace(go: Any, kind: str, style: dict[str, Any], shade: str, i: int, y: str,
           additive: bool) -> Any:
    if kind == "bar":
        return go.Bar(**style, marker=dict(color=shade, pattern_shape=_PATTERNS[i % len(_PATTERNS)]))
    if kind == "scatter":
        return go.Scatter(**style, mode="markers",
                          marker=dict(color=shade, symbol=_SYMBOLS[i % len(_SYMBOLS)]))
    line = dict(color=shade, dash=_DASHES[i % len(_DASHES)])
    if kind == "area":
        # Counts and sums stack (their total means something); other metrics overlap.
        fill = dict(stackgroup=y) if additive else dict(fill="tozeroy")
        return go.Scatter(**style, mode="lines", line=line, **fill)
    return go.Scatter(**style, mode="lines", line=line)


def _axis_values(s: pl.Series) -> Any:
    """Numbers as numpy arrays; datetimes as Python datetimes in their own time zone (plotly
    draws the wall-clock time the offset belongs to); anything else as a list."""
    if s.dtype.is_numeric() and s.dtype != pl.Decimal:
        return s.to_numpy()
    if s.dtype == pl.Decimal:
        return s.cast(pl.Float64).to_numpy()
    return s.to_list()


def _x_hover_format(s: pl.Series) -> str | None:
    if not isinstance(s.dtype, pl.Datetime):
        return None
    sub_second = s.dt.truncate("1s").ne_missing(s).any()
    return "%Y-%m-%d %H:%M:%S.%L" if sub_second else "%Y-%m-%d %H:%M:%S"


def _label(v: Any) -> str:
    return "null" if v is None else str(v)


def live_figure(make: Any, running: Any, every: float,
                wake: threading.Event | None = None) -> tuple[Any, Any]:
    """``make()`` now, and in Jupyter also shown and redrawn in place every ``every`` seconds
    while ``running()`` (``rillet.views.display.live``; ``wake`` cuts the last wait short). Returns
    the figure, the one redrawn (so it holds the last picture once the query ends), and the
    live view (None outside Jupyter, where the figure is just ``make()``).
    """
    from rillet.views import display as _display

    if isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0:
        raise ConfigError(f"every= is the refresh interval in seconds, a positive number; got {every!r}")
    fig = make()  # raises here, in the caller, for a bad column or option
    if not _display.in_notebook():
        return fig, None
    go, _ = plotly()
    lock = threading.Lock()

    def render() -> FigureView:
        try:
            latest = make()
        except RilletError as e:  # e.g. y turns out to be text once rows arrive
            latest = go.Figure(layout=dict(annotations=[dict(
                text=str(e), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)]))
        with lock:
            fig.data = ()
            fig.layout = latest.layout
            fig.add_traces(latest.data)
        return FigureView(fig)

    view = _display.live(running, render, every, wake=wake)
    _shown_live_in_this_cell(fig)
    return fig, view


class FigureView:
    """Shows a figure through its MIME bundle. A plotly Figure displays itself
    (``_ipython_display_``), and IPython then ignores the display id, so a live view of the
    bare figure would add a new output at every refresh instead of redrawing in place."""

    def __init__(self, figure: Any) -> None:
        self.figure = figure

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        # Not figure._repr_mimebundle_: it names the default renderers, and plotly activates
        # named renderers at every call; the "notebook" renderer's activation embeds all of
        # plotly.js (about 5 MB) in the output, so every redraw of a live figure added a copy.
        # Left unnamed, pending renderers are activated once per kernel, as for a shown figure.
        try:
            import plotly.io as pio
            from plotly.io._utils import validate_coerce_fig_to_dict

            return pio.renderers._build_mime_bundle(validate_coerce_fig_to_dict(self.figure, False))
        except (ImportError, AttributeError, TypeError):  # another plotly layout: its own way
            return self.figure._repr_mimebundle_(include=include, exclude=exclude, **kwargs)

    def __repr__(self) -> str:
        return f"<live plotly figure, {len(self.figure.data)} traces>"


def _shown_live_in_this_cell(fig: Any) -> None:
    """``handle.plot(..., live=True)`` as a cell's last line returns the figure the live view
    already shows: IPython would draw a frozen copy under it. Not in that cell; later, as usual."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    cell = shell.execution_count
    show = fig._ipython_display_

    def _ipython_display_() -> None:
        current = get_ipython()
        if current is None or current.execution_count != cell:
            show()

    fig._ipython_display_ = _ipython_display_  # plotly accepts attributes named with "_"
