"""The ``rillet run`` command's options: its help, and each option's text parsed into the
Python API's objects, so that a bad value is a usage error (exit status 2) that says what is
accepted."""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

import rillet as rl
from rillet._errors import ConfigError
from rillet._time import validate_duration, wall_ms

FORMATS = ("auto", "csv", "jsonl", "parquet", "ipc", "cloudtrail")
OUTPUT_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
EMIT_MODES = ("final", "amend", "changelog")

#: Window kind -> (how it is written, an example, fewest and most durations after the colon).
WINDOWS = {
    "tumbling": ("tumbling:EVERY", "tumbling:1m", 1, 1),
    "hopping": ("hopping:PERIOD/EVERY", "hopping:5m/1m", 2, 2),
    "session": ("session:GAP[/MAX]", "session:30m", 1, 2),
    "sliding": ("sliding:PERIOD", "sliding:5m", 1, 1),
    "cumulative": ("cumulative:PERIOD/STEP", "cumulative:1h/10m", 2, 2),
}

DESCRIPTION = """\
Runs one windowed query over files and prints (or writes) each window's row as it
is emitted.

The files are replayed as a stream, rows in file order, files in the order given (a
quoted glob in name order); --time names the event-time column and --watermark the
out-of-orderness allowed. By default (--emit final) a window gives one row per key
when the watermark passes its end plus --lateness; at the end of the input every
window still open is emitted. Rows that come after their windows closed are late,
rows whose time is missing or unreadable are rejected: neither is lost (--late,
--rejected). It is the same query as, in Python:

    rl.stream(rl.read_csv(PATH), time=COL, watermark=...)
      .with_columns(pl.sql_expr(SQL).alias(NAME))
      .filter(pl.sql_expr(WHERE))
      .window(WINDOW, by=[...], lateness=..., emit=...)
      .agg(AGG, ...)
"""

EPILOG = """\
windows (--window):
  tumbling:EVERY           back-to-back windows [start, start+EVERY): tumbling:1m
  hopping:PERIOD/EVERY     PERIOD long, one starting every EVERY: hopping:5m/1m
                           (or hopping:5m,1m); a row is in PERIOD/EVERY windows
  session:GAP[/MAX]        per key: rows at most GAP apart share a session, whose
                           window is [first, last+GAP); MAX caps its length
  sliding:PERIOD           one output row per input row, over the same key's rows
                           in (t-PERIOD, t]; rows carry the time column, no bounds
  cumulative:PERIOD/STEP   windows growing by STEP from each PERIOD's start
  Durations are polars duration strings (500ms, 30s, 5m, 1h30m, 1d, 1w, 1mo, 1q, 1y);
  over an integer time column, whole numbers in its unit (tumbling:3600).
  Windows align to the Unix epoch; days and longer follow --tz (default: the time
  column's zone, else UTC).

aggregates (--agg, repeatable; default: count) and their output columns:
  count                            rows                          count
  count:COL                        non-null values of COL        COL_count
  sum:COL  mean:COL  min:COL  max:COL                            COL_sum, ...
  var:COL[:DDOF]  std:COL[:DDOF]   DDOF 1 unless given           COL_var, COL_std
  first:COL  last:COL              by event time                 COL_first, COL_last
  count_distinct:COL               exact                         COL_count_distinct
  approx_count_distinct:COL[:P]    HyperLogLog, precision P=14   COL_approx_count_distinct
  median:COL                       exact, nearest rank           COL_median
  quantile:COL:Q                   exact, nearest rank           COL_q95 (Q=0.95)
  approx_quantile:COL:Q[:ERR]      DDSketch, ERR=0.01 relative   COL_q99 (Q=0.99)
  top_k:COL:K                      the K most frequent values    COL_top_k
  NAME=AGG                         AGG, in a column named NAME   (failures=count:errorCode)
  Nulls are skipped; an aggregate over no values is null (a count is 0).

printed or written:
  Without --output or a --to-* option, each batch of emitted rows is printed as a
  table when it is emitted (all rows, all columns). --output writes a .csv, .jsonl or
  .parquet file: CSV and JSON Lines as rows are emitted (lists and structs, such as
  top_k's, as JSON text in CSV), Parquet when the run ends. Output options combine.
  In CSV files (--output, --late, --rejected), a text cell or column name that
  starts with =, +, -, @, a tab or a carriage return gets a single quote before it,
  so a spreadsheet shows it as text instead of running it as a formula (numbers
  are written as they are; JSON Lines and Parquet keep text as it is).
  A summary (rows in, accepted, late, rejected, filtered out; rows emitted; events/s)
  goes to standard error.

examples:
  rillet run flights.csv --time time_hour --window tumbling:1d --tz America/New_York \\
      --by origin --with "delay=TRY_CAST(dep_delay AS INTEGER)" \\
      --agg count --agg mean:delay --agg p95=quantile:delay:0.95
  rillet run 'logs/*.jsonl.gz' --time ts --watermark 5s --window hopping:5m/1m \\
      --by service --where "status >= 500" --output errors.parquet --late late.csv
  rillet run AWSLogs/ --format cloudtrail --window session:30m --by sourceIPAddress \\
      --agg count_distinct:eventName --to-database sqlite:///trail.db --table sessions
  rillet run app.jsonl --follow --time ts --window tumbling:10s --idle-timeout 30s

Ctrl-C stops a run after the batch being processed: what was emitted is printed or
written, windows still open are not emitted, and the exit status is 130. A second
Ctrl-C stops at once. Exit status: 0 done, 1 a rillet error ('rillet: error: ...'),
2 a usage error, 130 interrupted.
"""


# ------------------------------------------------------------------------------ option values
def _duration_text(text: str, what: str) -> str | int:
    """A duration as the API takes it: a whole number (integer time) or a polars string."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError(f"{what}: missing duration, e.g. 30s or 5m")
    return int(text) if text.isdigit() else text


def event_duration(what: str) -> Callable[[str], str | int]:
    """An event-time duration option (watermark, lateness, offset), checked as the API does."""

    def parse(text: str) -> str | int:
        value = _duration_text(text, what)
        try:
            validate_duration(value, what)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value

    return parse


def checkpoint_every_option(text: str) -> str | int:
    """--checkpoint-every: a number of input rows, or a wall-clock duration."""
    value = text.strip().replace("_", "")
    if value.isdigit():
        if int(value) < 1:
            raise argparse.ArgumentTypeError("--checkpoint-every takes a positive number of rows, or a duration such as 30s")
        return int(value)
    return wall_duration("--checkpoint-every")(text)


def wall_duration(what: str) -> Callable[[str], str]:
    """A wall-clock duration option (idle timeout, early, max idle): a positive polars string."""

    def parse(text: str) -> str:
        value = text.strip()
        if value.isdigit():
            raise argparse.ArgumentTypeError(
                f"{what} is wall-clock time: give a unit, e.g. {value}s, not the bare number {value}"
            )
        try:
            positive = wall_ms(value, what) > 0
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        if not positive:
            raise argparse.ArgumentTypeError(f"{what} must be positive, e.g. 30s; got {text!r}")
        return value

    return parse


@dataclass(frozen=True)
class WindowOption:
    """A parsed --window: the kind and its durations; built into a spec once --tz and
    --offset are known."""

    kind: str
    durations: tuple[str | int, ...]
    text: str

    def spec(self, offset: str | int | None = None, tz: str | None = None) -> rl.WindowSpec:
        d = self.durations
        if self.kind == "tumbling":
            return rl.tumbling(d[0], offset=offset, tz=tz)
        if self.kind == "hopping":
            return rl.hopping(d[0], d[1], offset=offset, tz=tz)
        if self.kind == "cumulative":
            return rl.cumulative(d[0], d[1], offset=offset)
        if self.kind == "session":
            return rl.session(d[0], d[1] if len(d) > 1 else None)
        return rl.sliding(d[0])


def window_option(text: str) -> WindowOption:
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    if kind not in WINDOWS:
        forms = [form for form, *_ in WINDOWS.values()]
        raise argparse.ArgumentTypeError(
            f"unknown window {text!r}; expected {', '.join(forms[:-1])} or {forms[-1]}, e.g. "
            "tumbling:1m or hopping:5m/1m"
        )
    form, example, low, high = WINDOWS[kind]
    parts = re.split(r"[/,]", rest) if rest.strip() else []  # hopping:5m/1m or hopping:5m,1m
    if not low <= len(parts) <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: a {kind} window is written {form}, e.g. {example}")
    option = WindowOption(kind, tuple(_duration_text(p, f"{kind} window") for p in parts), text)
    try:
        option.spec()
    except ConfigError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    return option


#: Aggregate -> (form for messages, how many extra arguments after the column: fewest, most).
AGGREGATES: dict[str, tuple[str, int, int]] = {
    "count": ("count or count:COL", 0, 0),
    "sum": ("sum:COL", 0, 0),
    "mean": ("mean:COL", 0, 0),
    "min": ("min:COL", 0, 0),
    "max": ("max:COL", 0, 0),
    "var": ("var:COL[:DDOF]", 0, 1),
    "std": ("std:COL[:DDOF]", 0, 1),
    "first": ("first:COL", 0, 0),
    "last": ("last:COL", 0, 0),
    "count_distinct": ("count_distinct:COL", 0, 0),
    "approx_count_distinct": ("approx_count_distinct:COL[:PRECISION]", 0, 1),
    "median": ("median:COL", 0, 0),
    "quantile": ("quantile:COL:Q", 1, 1),
    "approx_quantile": ("approx_quantile:COL:Q[:ERR]", 1, 2),
    "top_k": ("top_k:COL:K", 1, 1),
}


def _number(text: str, kind: type, what: str, spec: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{spec!r}: {what} must be {noun}, got {text!r}") from None


def agg_option(text: str) -> rl.Agg:
    """``[NAME=]FUNC[:COL[:ARG...]]`` as a rillet aggregate."""
    spec = text.strip()
    name = None
    head, eq, tail = spec.partition("=")
    if eq and ":" not in head:
        name, spec = head.strip(), tail.strip()
        if not name:
            raise argparse.ArgumentTypeError(f"{text!r}: the name before '=' is empty; write NAME=AGG")
    func, *rest = spec.split(":")
    func = func.strip().lower()
    if func not in AGGREGATES:
        raise argparse.ArgumentTypeError(
            f"unknown aggregate {text!r}; expected one of {', '.join(AGGREGATES)} "
            "(e.g. count, sum:bytes, quantile:latency_ms:0.95)"
        )
    form, low, high = AGGREGATES[func]
    col = rest[0].strip() if rest else None
    args = [a.strip() for a in rest[1:]]
    if func == "count" and not args:
        agg = rl.count(col or None)
    else:
        if not col:
            raise argparse.ArgumentTypeError(f"{text!r} needs a column: write {form}, e.g. {_agg_example(func)}")
        if not low <= len(args) <= high:
            raise argparse.ArgumentTypeError(f"{text!r}: write {form}, e.g. {_agg_example(func)}")
        try:
            agg = _make_agg(func, col, args, spec)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
    return agg.alias(name) if name else agg


def _agg_example(func: str) -> str:
    return {"quantile": "quantile:latency_ms:0.95", "approx_quantile": "approx_quantile:latency_ms:0.99",
            "top_k": "top_k:user:10", "count": "count:user"}.get(func, f"{func}:bytes")


def _make_agg(func: str, col: str, args: list[str], spec: str) -> rl.Agg:
    if func in ("var", "std"):
        ddof = _number(args[0], int, "DDOF", spec) if args else 1
        return getattr(rl, func)(col, ddof)
    if func == "approx_count_distinct":
        return rl.approx_count_distinct(col, _number(args[0], int, "PRECISION", spec) if args else 14)
    if func == "quantile":
        return rl.quantile(col, _number(args[0], float, "Q", spec))
    if func == "approx_quantile":
        err = _number(args[1], float, "ERR", spec) if len(args) > 1 else 0.01
        return rl.approx_quantile(col, _number(args[0], float, "Q", spec), err)
    if func == "top_k":
        return rl.top_k(col, _number(args[0], int, "K", spec))
    return getattr(rl, func)(col)


def columns_option(text: str) -> list[str]:
    names = [c.strip() for c in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r}: give column names separated by commas, e.g. origin,carrier")
    return names


@dataclass(frozen=True)
class SqlOption:
    """A --where or --with: its text and the polars expression it reads as."""

    text: str
    expr: pl.Expr


def _sql(text: str, example: str) -> pl.Expr:
    try:
        return pl.sql_expr(text)
    except pl.exceptions.PolarsError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a SQL expression polars can read ({e}); write, e.g., {example}"
        ) from None


def where_option(text: str) -> SqlOption:
    return SqlOption(text, _sql(text, "\"status >= 500 AND method = 'GET'\""))


def with_option(text: str) -> SqlOption:
    name, eq, sql = text.partition("=")
    if not eq or not name.strip() or not sql.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r}: write NAME=SQL, e.g. \"delay=TRY_CAST(dep_delay AS INTEGER)\""
        )
    return SqlOption(text, _sql(sql, "\"delay=TRY_CAST(dep_delay AS INTEGER)\"").alias(name.strip()))


def separator_option(text: str) -> str:
    value = {"\\t": "\t", "tab": "\t"}.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"the separator is one character (or \\t), got {text!r}")
    return value


def byte_count(text: str) -> int:
    """A positive byte count: a number, optionally with a binary unit (``64MiB``, ``512KiB``)."""
    m = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of bytes, e.g. 1048576 or 64MiB")
    return int(m.group(1)) * {"B": 1, None: 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


@dataclass(frozen=True)
class OutputFile:
    path: str
    fmt: str


def output_file(text: str) -> OutputFile:
    for ext, fmt in OUTPUT_EXTENSIONS.items():
        if text.lower().endswith(ext):
            return OutputFile(text, fmt)
    raise argparse.ArgumentTypeError(
        f"{text!r}: cannot tell the format from the name; end it in .csv, .jsonl or .parquet"
    )


# ------------------------------------------------------------------------------ the parser
def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``run`` to the ``rillet`` command's sub-commands."""
    p = commands.add_parser(
        "run",
        help="run a windowed query over CSV, JSON Lines, Parquet, Arrow or CloudTrail files",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(run_parser=p)
    src = p.add_argument_group("input")
    src.add_argument("paths", nargs="+", metavar="PATH",
                     help="files or globs (quote a glob to have rillet expand it, in name order); "
                          "with --format cloudtrail, a folder of CloudTrail logs")
    src.add_argument("--format", choices=FORMATS, default="auto",
                     help="the files' format (default: auto, from the extension: .csv, .tsv, "
                          ".jsonl, .ndjson, .parquet, .pq, .arrow, .ipc, .feather; CSV and JSON "
                          "Lines may end in .gz); cloudtrail reads CloudTrail's S3 delivery files "
                          "({\"Records\": [...]}, .json or .json.gz), flattened")
    src.add_argument("--separator", type=separator_option, metavar="CHAR",
                     help="the CSV field separator (default: ',', or a tab for .tsv; write \\t for a tab)")
    src.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                     help="a file that cannot be read part way through a replay (truncated .gz, "
                          "corrupt Parquet): raise stops the run with what was computed so far "
                          "(default); skip records the file in --rejected and goes on")
    src.add_argument("--null-values", action="append", default=[], metavar="TEXT",
                     help="CSV: a field holding exactly this text is null (repeat for several, "
                          "e.g. --null-values NA --null-values nil)")
    src.add_argument("--max-line-bytes", type=byte_count, metavar="BYTES",
                     help="CSV and JSON Lines: a line longer than this is rejected without being "
                          "held in memory (default 64MiB)")
    src.add_argument("--time", metavar="COL",
                     help="the event-time column: Datetime, ISO 8601 text or integer; required "
                          "except with --format cloudtrail (eventTime)")
    src.add_argument("--follow", action="store_true",
                     help="follow one CSV or JSON Lines file as it grows, like tail -F (from its "
                          "start; rotation and truncation handled), or, given a quoted glob such as "
                          "'incoming/*.jsonl', read files as they land in that folder; runs until "
                          "Ctrl-C or --max-idle")
    src.add_argument("--max-idle", type=wall_duration("--max-idle"), metavar="DURATION",
                     help="with --follow: stop, as at the end of a replay, after this long without "
                          "new data (default: never)")
    q = p.add_argument_group("query")
    q.add_argument("--window", type=window_option, required=True, metavar="SPEC",
                   help="the windows: tumbling:EVERY, hopping:PERIOD/EVERY, session:GAP[/MAX], "
                        "sliding:PERIOD or cumulative:PERIOD/STEP (see below)")
    q.add_argument("--by", type=columns_option, action="append", default=[], metavar="COLS",
                   help="key columns, separated by commas (repeatable): one row per window and key")
    q.add_argument("--agg", type=agg_option, action="append", default=[], metavar="AGG",
                   help="an aggregate per window and key, such as count, sum:bytes, "
                        "quantile:latency_ms:0.95 or failures=count:errorCode (repeatable; "
                        "default: count; see below)")
    q.add_argument("--with", dest="with_", type=with_option, action="append", default=[],
                   metavar="NAME=SQL",
                   help="add or replace column NAME, computed per row by a SQL expression as "
                        "polars' pl.sql_expr reads it, before --where and the windows; e.g. "
                        "\"delay=TRY_CAST(dep_delay AS INTEGER)\" (repeatable)")
    q.add_argument("--where", type=where_option, action="append", default=[], metavar="SQL",
                   help="keep only the rows where this SQL condition holds, as polars' "
                        "pl.sql_expr reads it, e.g. \"errorCode IS NOT NULL\" or \"status >= 500 AND "
                        "method = 'GET'\" (repeatable: every one must hold)")
    q.add_argument("--watermark", type=event_duration("--watermark"), default=0, metavar="DURATION",
                   help="how far behind the latest event time seen rows may arrive and still count "
                        "(default: 0, in order)")
    q.add_argument("--lateness", type=event_duration("--lateness"), default=0, metavar="DURATION",
                   help="keep windows open for updates this long after the watermark passes their "
                        "end (default: 0)")
    q.add_argument("--emit", choices=EMIT_MODES, default="final",
                   help="final: one row per window and key when it closes (default); amend: a row "
                        "when it completes, then a revision (column revision) per later change; "
                        "changelog: +I, -U/+U and -D rows (column op)")
    q.add_argument("--early", type=wall_duration("--early"), metavar="DURATION",
                   help="with --emit amend or changelog: also emit open windows' current values at "
                        "most once per this much wall-clock time")
    q.add_argument("--idle-timeout", type=wall_duration("--idle-timeout"), metavar="DURATION",
                   help="when no row arrives for this long (wall clock), event time moves on with "
                        "the clock, so windows close while a followed file is quiet")
    q.add_argument("--tz", metavar="ZONE",
                   help="IANA time zone that tumbling and hopping windows of days, weeks, months... "
                        "follow (default: the time column's zone, else UTC)")
    q.add_argument("--offset", type=event_duration("--offset"), metavar="DURATION",
                   help="shift tumbling, hopping and cumulative windows from their alignment, e.g. "
                        "--window tumbling:1d --offset 6h for days from 06:00")
    out = p.add_argument_group("output")
    out.add_argument("--output", type=output_file, metavar="FILE",
                     help="write the emitted rows to FILE (.csv, .jsonl or .parquet) instead of "
                          "printing them")
    out.add_argument("--to-parquet", metavar="DIR",
                     help="deliver to Parquet files in DIR, in hive partitions "
                          "window_start_1h=YYYY-MM-DD HH:00:00 (hourly; the files keep every "
                          "column, window_start included), as q.to_parquet(DIR)")
    out.add_argument("--to-jsonl", metavar="DIR",
                     help="the same as JSON Lines files, as q.to_jsonl(DIR)")
    out.add_argument("--to-database", metavar="URI",
                     help="keep --table equal to the results (upserts on the keys and window "
                          "bounds): sqlite:///relative.db, sqlite:////absolute.db, "
                          "duckdb:///path.duckdb or postgresql://user:password@host/database")
    out.add_argument("--table", metavar="NAME", help="the table --to-database writes")
    out.add_argument("--late", type=output_file, metavar="FILE",
                     help="write the late rows (their columns and late_by) to FILE (.csv, .jsonl or "
                          ".parquet) when the run ends")
    out.add_argument("--rejected", type=output_file, metavar="FILE",
                     help="write the rejected rows (unreadable lines with file, line, reason and "
                          "text; rows without a readable time with reason) to FILE when the run ends")
    out.add_argument("--checkpoint", metavar="DIR",
                     help="save the run in DIR at consistent points and resume from there when run "
                          "again with the same options (after a crash: --to-parquet, --to-jsonl and "
                          "--to-database then hold exactly an uninterrupted run's rows; printed and "
                          "--output rows are at least once), as q.run(checkpoint=DIR)")
    out.add_argument("--checkpoint-every", type=checkpoint_every_option, metavar="DURATION|ROWS",
                     help="how often --checkpoint saves: wall-clock time such as 30s (the default), "
                          "or a number of input rows")
    out.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar (it shows on a terminal after a second)")
    return p


