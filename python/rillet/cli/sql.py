"""``rillet sql``: a streaming SELECT or a Kinesis Data Analytics application, from a .sql file,
over files named on the command line.

The inputs are opened as ``rillet run`` opens its files (:func:`rillet.cli.run._source`); the
text is planned by ``rl.sql`` or ``rl.Application`` (:mod:`rillet.sql.magic` tells them
apart and finds the inputs it reads); the results are printed as ``rillet run`` prints them,
or written with its file writers.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

import rillet as rl
from rillet._errors import RilletError, SinkError, SqlError
from rillet.cli.options import (
    FORMATS,
    OUTPUT_EXTENSIONS,
    OutputFile,
    event_duration,
    output_file,
    separator_option,
)
from rillet.cli.run import ConsoleOutput, _input_format, _source, summary, write_table
from rillet.sql.application import SOURCE
from rillet.sql.magic import is_application, plan, with_hint

DESCRIPTION = """\
Runs a streaming SQL query over files: either one SELECT (as rl.sql) or a Kinesis
Data Analytics application, CREATE STREAM and CREATE PUMP statements (as
rl.Application; a file with a CREATE STREAM or CREATE PUMP statement is one).

Each --input NAME=PATH is the input the SQL calls NAME, read by the extension as
rillet run reads files. A bare --input PATH is the application's SOURCE_SQL_STREAM_001,
or the SELECT's one input. --time NAME=COL makes COL the input's event time, and
--watermark NAME=DURATION the out-of-orderness allowed, as
rl.stream(source, time=COL, watermark=DURATION) in Python; without --time an input's
time is what the SQL says (DESCRIPTOR(col) in a window function), or ROWTIME, the
arrival time. NAME= may be left out when there is one input.

The results are printed as tables when the input ends: a SELECT's output, or each
in-application stream an application fills, under its name. --output writes them
instead. A summary (rows in, accepted, late, rejected; rows emitted) goes to standard
error, one line per pump for an application.
"""

EPILOG = """\
examples:
  rillet sql per_minute.sql --input trail=cloudtrail.jsonl --time trail=eventTime \\
      --watermark trail=5m
  rillet sql app.sql --input logs/ --format cloudtrail --time eventTime --watermark 1m \\
      --output results/
  rillet sql app.sql --input events.parquet --output DESTINATION_SQL_STREAM=dest.csv

per_minute.sql:
  SELECT window_start, window_end, eventName, COUNT(*) AS calls
  FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '1' MINUTE))
  GROUP BY window_start, window_end, eventName

output (--output, repeatable):
  FILE           a .csv, .jsonl or .parquet file: the SELECT's output, or the
                 application's stream when it fills one
  STREAM=FILE    an application's stream STREAM
  DIR            a folder (a name ending in / or without an extension; made if
                 missing): each stream as DIR/STREAM.parquet (a SELECT's output as
                 DIR/<the .sql file's name>.parquet)
  A result no --output writes is printed. --late FILE and --rejected FILE keep the
  late and rejected rows (an application's with a pump column naming the pump).

A SQL text that cannot be read or is not supported is reported with its line and
column and a caret under the place, with exit status 2. Exit status: 0 done, 1 a
rillet error ('rillet: error: ...'), 2 a usage or SQL error, 130 interrupted.
"""

_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_$#@]*)=(.*)", re.DOTALL)


# ------------------------------------------------------------------------------ option values
@dataclass(frozen=True)
class Named:
    """An option's value, for the input (or stream) ``name``; None when not named."""

    name: str | None
    value: Any
    text: str


def named(parse: Any = str) -> Any:
    """``[NAME=]VALUE``, the value parsed by ``parse``."""

    def read(text: str) -> Named:
        m = _NAME.fullmatch(text)
        name, value = (m.group(1), m.group(2)) if m else (None, text)
        if not value.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: the value after '=' is empty")
        return Named(name, parse(value.strip()), text)

    return read


def format_option(text: str) -> str:
    if text not in FORMATS:
        raise argparse.ArgumentTypeError(f"unknown format {text!r}; expected one of {', '.join(FORMATS)}")
    return text


@dataclass(frozen=True)
class Target:
    """An --output: a file (``fmt`` csv, jsonl or parquet) or a folder (``fmt`` None)."""

    stream: str | None
    path: str
    fmt: str | None


def target_option(text: str) -> Target:
    m = _NAME.fullmatch(text)
    stream, path = (m.group(1), m.group(2)) if m else (None, text)
    if stream is not None and not path:
        raise argparse.ArgumentTypeError(f"{text!r}: write STREAM=FILE, e.g. DESTINATION_SQL_STREAM=out.csv")
    fmt = next((f for ext, f in OUTPUT_EXTENSIONS.items() if path.lower().endswith(ext)), None)
    if stream is not None and fmt is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: cannot tell the format from the name; end it in .csv, .jsonl or .parquet"
        )
    folder = path.endswith(("/", os.sep)) or Path(path).is_dir() or not Path(path).suffix
    if fmt is None and not folder:
        output_file(path)  # out.txt: says which endings are understood
    return Target(stream, path, fmt)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Adds ``sql`` to the ``rillet`` command's sub-commands."""
    p = commands.add_parser(
        "sql",
        help="run a streaming SQL query or a Kinesis Data Analytics application over files",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(sql_parser=p)
    p.add_argument("file", metavar="FILE.sql", help="the SQL text: one SELECT, or an application ('-': "
                                                   "standard input)")
    src = p.add_argument_group("input")
    src.add_argument("--input", type=named(), action="append", default=[], metavar="[NAME=]PATH",
                     help="an input the SQL reads by NAME: a file or a quoted glob (.csv, .tsv, .jsonl, "
                          ".ndjson, .parquet, .arrow, .ipc; CSV and JSON Lines may end in .gz), or with "
                          "--format cloudtrail CloudTrail log files or a folder of them (repeatable); "
                          "without NAME=, SOURCE_SQL_STREAM_001 or the SELECT's one input")
    src.add_argument("--format", type=named(format_option), action="append", default=[],
                     metavar="[NAME=]FORMAT",
                     help=f"an input's format: {', '.join(FORMATS)} (default: auto, from the extension)")
    src.add_argument("--time", type=named(), action="append", default=[], metavar="[NAME=]COL",
                     help="an input's event-time column (Datetime, ISO 8601 text or integer)")
    src.add_argument("--watermark", type=named(event_duration("--watermark")), action="append", default=[],
                     metavar="[NAME=]DURATION",
                     help="with --time: how far behind the latest event time an input's rows may "
                          "arrive and still count, e.g. 5s or 1m (default: 0, in order)")
    src.add_argument("--separator", type=separator_option, metavar="CHAR",
                     help="the CSV inputs' field separator (default: ',', a tab for .tsv)")
    src.add_argument("--null-values", action="append", default=[], metavar="TEXT",
                     help="CSV inputs: a field holding exactly this text is null (repeatable)")
    src.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                     help="a file that cannot be read part way: raise stops the run (default); skip "
                          "records it in --rejected and goes on")
    out = p.add_argument_group("output")
    out.add_argument("--output", type=target_option, action="append", default=[],
                     metavar="[STREAM=]FILE|DIR",
                     help="write results to a .csv, .jsonl or .parquet FILE, or to DIR (see below) "
                          "instead of printing them (repeatable)")
    out.add_argument("--late", type=output_file, metavar="FILE",
                     help="write the late rows to FILE (.csv, .jsonl or .parquet) when the run ends")
    out.add_argument("--rejected", type=output_file, metavar="FILE",
                     help="write the rejected rows to FILE when the run ends")
    out.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar (it shows on a terminal after a second)")
    return p


# ------------------------------------------------------------------------------ inputs
class Inputs:
    """The --input, --format, --time and --watermark options, opened as sources by name."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.error = args.sql_parser.error
        self.named: dict[str, str] = {}
        self.bare: str | None = None
        for given in args.input:
            if given.name is None:
                if self.bare is not None:
                    self.error(f"two inputs without a name ({self.bare!r}, {given.value!r}): name them, "
                               "e.g. --input trail=PATH, as the SQL calls them")
                self.bare = given.value
            elif given.name in self.named:
                self.error(f"--input {given.name}= is given twice")
            else:
                self.named[given.name] = given.value
        if not args.input:
            self.error("give the SQL's inputs: --input NAME=PATH (or --input PATH for an application's "
                       "SOURCE_SQL_STREAM_001, or a SELECT's one input)")
        self.options = {o: self._by_name(o, getattr(args, o)) for o in ("format", "time", "watermark")}
        self.used: set[str] = set()

    def _by_name(self, option: str, values: list[Named]) -> dict[str | None, Any]:
        out: dict[str | None, Any] = {}
        for v in values:
            key = v.name
            if key is None and self.bare is None and len(self.named) == 1:
                key = next(iter(self.named))  # the one input
            if key is None and self.bare is None:
                self.error(f"--{option} {v.text}: say which input, e.g. --{option} "
                           f"{next(iter(self.named))}={v.value}")
            if key in out:
                self.error(f"--{option} is given twice for {'the unnamed input' if key is None else key}")
            out[key] = v.value
        return out

    def _option(self, option: str, name: str, bare: bool) -> Any:
        values = self.options[option]
        if bare and None in values and name in values:
            self.error(f"--{option} is given twice for {name} (the unnamed input)")
        key = None if bare and None in values else name
        if key in values:
            self.used.add(f"{option}:{key}")
            return values[key]
        return None

    def open(self, name: str, path: str, bare: bool) -> Any:
        """The input ``name`` (at ``path``): its source, as a stream when --time says its time."""
        fmt_given = self._option("format", name, bare) or "auto"
        ns = argparse.Namespace(paths=[path], format=fmt_given, separator=None, null_values=[],
                                max_line_bytes=None, follow=False, max_idle=None, on_error=self.args.on_error)
        fmt = _input_format(ns, self.error)
        if fmt == "csv":
            ns.separator, ns.null_values = self.args.separator, self.args.null_values
        source = _source(ns, fmt, self.error)
        time = self._option("time", name, bare)
        watermark = self._option("watermark", name, bare)
        if time is None:
            if watermark is not None:
                self.error(f"--watermark for {name} needs its event-time column: --time {name}=COL")
            return source
        return rl.stream(source, time=time, watermark=watermark if watermark is not None else 0)

    def check_all_used(self) -> None:
        for option, values in self.options.items():
            for key, value in values.items():
                if key is not None and f"{option}:{key}" not in self.used:
                    known = [*self.named, *([] if self.bare is None else ["the unnamed input"])]
                    self.error(f"--{option} {key}={value}: there is no input {key} (the inputs: "
                               f"{', '.join(known)})")


def build(args: argparse.Namespace, text: str) -> Any:
    """The query (rl.sql) or application (rl.Application) of the SQL text, over the inputs."""
    inputs = Inputs(args)
    application = is_application(text)
    opened = {name: inputs.open(name, path, False) for name, path in inputs.named.items()}
    bare_name: list[str] = []
    if inputs.bare is not None and application:
        if SOURCE in opened:
            args.sql_parser.error(f"--input {SOURCE}= and an unnamed --input are the same input: give one")
        opened[SOURCE] = inputs.open(SOURCE, inputs.bare, True)
        bare_name.append(SOURCE)

    def resolve(name: str, error: SqlError) -> Any:
        if inputs.bare is not None and not bare_name:
            bare_name.append(name)
            return inputs.open(name, inputs.bare, True)
        raise with_hint(error, name, f"give it with --input {name}=PATH") from None

    built = plan(text, opened, resolve)
    if inputs.bare is not None and not bare_name:
        args.sql_parser.error(f"--input {inputs.bare}: the SQL reads no input besides "
                              f"{', '.join(inputs.named)}; name it as the SQL does, --input NAME=PATH")
    inputs.check_all_used()
    return built


# ------------------------------------------------------------------------------ outputs
def _results_targets(args: argparse.Namespace, results: list[str | None],
                     file_stem: str) -> dict[str | None, list[OutputFile]]:
    """Which files each result goes to; a result no --output names is printed."""
    error = args.sql_parser.error
    where: dict[str | None, list[OutputFile]] = {k: [] for k in results}
    streams = [k for k in results if k is not None]
    for t in args.output:
        if t.fmt is None:  # a folder: every result in it, as Parquet
            for k in results:
                where[k].append(OutputFile(str(Path(t.path) / f"{k if k is not None else file_stem}.parquet"),
                                           "parquet"))
            continue
        if t.stream is None:
            if len(results) != 1:
                error(f"--output {t.path}: the application fills {len(streams)} streams ({', '.join(streams)}); "
                      "say which, --output STREAM=FILE, or give a folder")
            where[next(iter(results))].append(OutputFile(t.path, t.fmt))
            continue
        if not streams:
            error(f"--output {t.stream}={t.path}: a SELECT has one output; write --output {t.path}")
        match = [s for s in streams if s == t.stream] or [s for s in streams if s.upper() == t.stream.upper()]
        if len(match) != 1:
            error(f"--output {t.stream}=...: the application fills no stream {t.stream!r} (its streams: "
                  f"{', '.join(streams)})")
        where[match[0]].append(OutputFile(t.path, t.fmt))
    return where


def _check_folders(args: argparse.Namespace) -> None:
    """Results are written when the run ends: a wrong folder is said before it starts."""
    for t in args.output:
        if t.fmt is None:
            try:
                Path(t.path).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise SinkError(f"cannot make the folder {t.path} (--output): {e}") from e
    files = [(f"--output {t.path}", t.path) for t in args.output if t.fmt is not None]
    files += [(f"--{o} {f.path}", f.path) for o, f in (("late", args.late), ("rejected", args.rejected)) if f]
    for option, path in files:
        if not Path(path).parent.is_dir():
            raise SinkError(f"cannot write {path} ({option}): there is no folder {str(Path(path).parent)!r}")


def _rows(runs: dict[str, Any], what: str) -> pl.DataFrame:
    """The late or rejected rows of every run; an application's with a pump column."""
    if list(runs) == [""]:
        return getattr(runs[""], what)
    frames = [getattr(r, what).clone().insert_column(0, pl.Series("pump", [p] * getattr(r, what).height, pl.String))
              for p, r in runs.items()]
    frames = [f for f in frames if f.height] or frames[:1]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


# ------------------------------------------------------------------------------ running
def _read_text(args: argparse.Namespace) -> tuple[str, str]:
    if args.file == "-":
        return sys.stdin.read(), "query"
    path = Path(args.file)
    try:
        return path.read_text(encoding="utf-8"), path.stem
    except (OSError, UnicodeDecodeError) as e:
        args.sql_parser.error(f"cannot read the SQL file {args.file}: {e}")
        raise  # pragma: no cover - error() exits


def sql_command(args: argparse.Namespace) -> int:
    """``rillet sql``: 0 when the input ended, 130 when interrupted."""
    text, stem = _read_text(args)
    if not text.strip():
        args.sql_parser.error(f"{args.file} holds no SQL")
    built = build(args, text)
    # The results: a SELECT's output (None), or each stream an application fills.
    keys: list[str | None] = list(dict.fromkeys(built.pumps.values())) if isinstance(built, rl.Application) else [None]
    where = _results_targets(args, keys, stem)
    _check_folders(args)
    progress = None if (args.progress and sys.stderr.isatty()) else False
    interrupted = False
    results: dict[str | None, pl.DataFrame]
    runs: dict[str, Any]
    try:
        if isinstance(built, rl.Application):
            try:
                app_run = built.run(progress)
            except rl.Interrupted as e:  # what the pumps emitted before Ctrl-C is still shown
                interrupted = True
                by_pump = dict(zip(built.pumps, e.runs)) if len(e.runs) == len(built.pumps) else {}
                app_run = rl.ApplicationRun(built._gather(by_pump) if by_pump else {}, by_pump)
            results, runs = {k: v for k, v in app_run.streams.items()}, app_run.runs
        else:
            try:
                run = built.run(progress)
            except rl.Interrupted as e:
                interrupted, run = True, e.run
            results, runs = {None: run.output}, {"": run}
    except pl.exceptions.PolarsError as e:
        raise RilletError(f"{e} (from the SQL in {args.file})") from e

    printed = 0
    for key, df in results.items():
        for target in where.get(key, []):
            write_table(df, target)
        if where.get(key):
            continue
        if key is not None:  # an application's stream, under its name
            print(("\n" if printed else "") + f"{key}: {df.height:,} rows", flush=True)
        ConsoleOutput(sys.stdout).write(df)
        printed += 1
    if args.late is not None:
        write_table(_rows(runs, "late"), args.late)
    if args.rejected is not None:
        write_table(_rows(runs, "rejected"), args.rejected)
    for pump, r in runs.items():
        line = summary(r, args, interrupted and pump == next(iter(runs)))
        print(line.replace("rillet: ", f"rillet: pump {pump}: ", 1) if pump else line, file=sys.stderr, flush=True)
    return 130 if interrupted else 0
