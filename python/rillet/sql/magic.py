"""The notebook cell magic ``%%rillet_sql`` (``%load_ext rillet``), and what it shares with
``rillet sql`` on the command line: telling a SELECT from an application, and finding the
inputs a text reads by planning it.

IPython is imported inside functions only: rillet does not need it.
"""
from __future__ import annotations

import argparse
import html
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any

from rillet._errors import ConfigError, SchemaError, SqlError
from rillet.sql.application import SOURCE, Application
from rillet.sql.query import sql

#: A statement that makes the text a Kinesis Data Analytics application.
_APPLICATION = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:STREAM|PUMP)\b", re.IGNORECASE)
#: Comments and quoted text, blanked out before looking for statements.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", re.DOTALL)
#: The planner's message for a name in FROM that no input has.
_MISSING = re.compile(r"(?:line \d+, column \d+: )?(.+?) is not an input(?: \(known: [^\n]*?\))?; "
                      r"pass it by that name, e\.g\. rl\.sql\(text, .+?=source\)")

MAGIC_HELP = """\
Runs a streaming SQL query, or a Kinesis Data Analytics application, over the notebook's
variables, and shows its output:

    %%rillet_sql [--name RESULT] [--live] [--source VARIABLE]
    SELECT window_start, window_end, eventName, COUNT(*) AS calls
    FROM TABLE(TUMBLE(TABLE trail, DESCRIPTOR(eventTime), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end, eventName

Each name in FROM is a variable of the notebook: a DataFrame, a rillet source
(rl.read_cloudtrail(...)) or a stream declaring its event time (rl.stream(df,
time="eventTime", watermark="5m")). A cell with CREATE STREAM / CREATE PUMP statements is
an application (rl.Application); --source VARIABLE gives its SOURCE_SQL_STREAM_001.

Without --live the query runs to the end of its input: the cell shows the output (an
application: each in-application stream), RESULT (default _rillet) holds it (an
application: a dict of stream name -> DataFrame) and RESULT_run the run, with its late and
rejected rows and metrics. With --live the query starts in the background: the cell shows
its live view, and RESULT holds the handle (stop() ends it).
"""


def is_application(text: str) -> bool:
    """Whether ``text`` is an application (it has a ``CREATE [OR REPLACE] STREAM`` or ``PUMP``
    statement, outside comments and quotes) rather than one SELECT."""
    return _APPLICATION.search(_NOT_CODE.sub(" ", text)) is not None


def missing_input(error: SqlError) -> str | None:
    """The name a planning error says no input has, if that is what it says."""
    m = _MISSING.match(str(error))
    return m.group(1) if m else None


def with_hint(error: SqlError, name: str, hint: str) -> SqlError:
    """``error`` (a name no input has) with the planner's Python advice replaced by ``hint``;
    the line, column and caret are kept."""
    message = re.sub(r"; pass it by that name, e\.g\. rl\.sql\(text, .+?=source\)", lambda _: f"; {hint}",
                     str(error), count=1)
    err = SqlError(message)
    err.line, err.column = getattr(error, "line", 0), getattr(error, "column", 0)  # as the core sets them
    return err


def plan(text: str, inputs: dict[str, Any], resolve: Callable[[str, SqlError], Any]) -> Any:
    """``rl.sql(text, **inputs)``, or ``rl.Application(text, **inputs)`` when ``text`` is an
    application. Each input the text reads that ``inputs`` lacks is asked of ``resolve(name,
    error)``, which returns it or raises (``error`` is the planner's, with the caret)."""
    inputs = dict(inputs)
    application = is_application(text)
    asked: set[str] = set()
    while True:
        try:
            return Application(text, **inputs) if application else sql(text, **inputs)
        except SqlError as e:
            name = missing_input(e)
            if name is None or name in asked:
                raise
            asked.add(name)
            inputs[name] = resolve(name, e)


# ------------------------------------------------------------------------------ the magic
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        from IPython.core.error import UsageError

        raise UsageError(f"%%rillet_sql: {message}\n{self.format_usage()}")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="%%rillet_sql", add_help=False, description=MAGIC_HELP,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="_rillet", metavar="RESULT",
                   help="the variable that gets the output (default: _rillet); RESULT_run gets the run")
    p.add_argument("--live", action="store_true",
                   help="start the query in the background and show its live view")
    p.add_argument("--source", metavar="VARIABLE",
                   help="the variable holding an application's input, SOURCE_SQL_STREAM_001")
    return p


def _variable(namespace: dict[str, Any], name: str) -> tuple[str, Any] | None:
    """The notebook variable ``name`` names: itself, else the one variable equal to it but
    for case (SQL's unquoted names are case-insensitive)."""
    if name in namespace:
        return name, namespace[name]
    same = [k for k in namespace if not k.startswith("_") and k.lower() == name.lower()]
    return (same[0], namespace[same[0]]) if len(same) == 1 else None


def cell_plan(namespace: dict[str, Any], text: str, source: str | None) -> Any:
    """The query or application of a ``%%rillet_sql`` cell, its inputs taken from
    ``namespace``. Raises :class:`rillet.SqlError` (with the caret) or ConfigError."""
    inputs: dict[str, Any] = {}
    if source is not None:
        if not is_application(text):
            raise ConfigError(
                "--source gives an application's SOURCE_SQL_STREAM_001; a SELECT names its "
                f"inputs in FROM: write FROM {source} (or the variable's name) there"
            )
        found = _variable(namespace, source)
        if found is None:
            raise ConfigError(f"--source {source}: the notebook has no variable {source!r}")
        inputs[SOURCE] = found[1]

    def resolve(name: str, error: SqlError) -> Any:
        found = _variable(namespace, name)
        if found is None:
            hint = (f"the notebook has no variable {name}: define it, e.g. {name} = "
                    "rl.stream(df, time=\"ts\", watermark=\"5s\")")
            if name.upper() == SOURCE:
                hint += ", or give the input's variable with %%rillet_sql --source VARIABLE"
            raise with_hint(error, name, hint) from None
        return found[1]

    return plan(text, inputs, resolve)


def _heading(text: str) -> None:
    from IPython.display import display

    display({"text/plain": text, "text/html": f"<b>{html.escape(text)}</b>"}, raw=True)


def _note_losses(runs: dict[str, Any], name: str) -> None:
    """Says where late and rejected rows are, when there are any (they are kept, not shown)."""
    for label, run in runs.items():
        late, rejected = run.late.height, run.rejected.height
        if late or rejected:
            where = f"{name}_run" + (f".runs[{label!r}]" if label else "")
            print(f"rillet: {late:,} late and {rejected:,} rejected rows{f' in pump {label}' if label else ''}: "
                  f"{where}.late, {where}.rejected", file=sys.stdout)


def run_cell(shell: Any, line: str, cell: str) -> Any:
    """``%%rillet_sql``: see :data:`MAGIC_HELP`."""
    from IPython.core.error import UsageError

    try:
        words = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"%%rillet_sql: cannot read the options {line!r}: {e}") from None
    if any(w in ("-h", "--help") for w in words):
        print(MAGIC_HELP)
        return None
    args = _parser().parse_args(words)
    if not args.name.isidentifier():
        raise UsageError(f"%%rillet_sql: --name takes a variable name, got {args.name!r}")
    if not cell.strip():
        raise UsageError("%%rillet_sql: the cell is empty; write a SELECT, or an application's "
                         "CREATE STREAM and CREATE PUMP statements, below the magic's line")
    try:
        return _run(shell.user_ns, cell, args)
    except (ConfigError, SchemaError) as e:
        # The cell's text or its inputs are wrong (rl.SqlError's message has the line, column
        # and caret): the message alone, without a traceback through rillet.
        raise UsageError(str(e) if isinstance(e, SqlError) else f"{type(e).__name__}: {e}") from None


def _run(ns: dict[str, Any], cell: str, args: argparse.Namespace) -> Any:
    from IPython.display import display

    built = cell_plan(ns, cell, args.source)
    if isinstance(built, Application):
        if args.live:
            handle = built.start()
            ns[args.name] = handle
            for pump, h in handle.pumps.items():
                _heading(f"pump {pump} -> {built.pumps[pump]}")
                display(h)
            return None
        app_run = built.run()
        ns[args.name], ns[f"{args.name}_run"] = app_run.streams, app_run
        for stream, df in app_run.streams.items():
            _heading(f"{stream}: {df.height:,} rows")
            display(df)
        _note_losses(app_run.runs, args.name)
        return None
    if args.live:
        running = built.start()
        ns[args.name] = running
        return running
    run = built.run()
    ns[args.name], ns[f"{args.name}_run"] = run.output, run
    _note_losses({"": run}, args.name)
    return run.output


def load(ipython: Any) -> None:
    """Registers ``%%rillet_sql`` with ``ipython`` (``%load_ext rillet`` calls this)."""

    def rillet_sql(line: str, cell: str) -> Any:
        return run_cell(ipython, line, cell)

    rillet_sql.__doc__ = MAGIC_HELP
    ipython.register_magic_function(rillet_sql, magic_kind="cell", magic_name="rillet_sql")
