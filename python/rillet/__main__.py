"""The ``rillet`` command (also ``python -m rillet``).

    rillet run PATH [PATH ...] --time COL --window SPEC [--by COLS] [--agg AGG ...] ...
    rillet sql FILE.sql --input [NAME=]PATH [--time [NAME=]COL] [--watermark [NAME=]DURATION] ...
    rillet demo [--events N] [--seed S] [--no-progress]
    rillet --version
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence

from rillet.cli.options import add_parser as add_run_parser
from rillet.cli.sql import add_parser as add_sql_parser

DESCRIPTION = """\
rillet: streaming analytics for analysts. Event-time windows, watermarks and
late data over polars, with a Rust core.

This command runs a windowed query over files (rillet run), a streaming SQL query
or Kinesis Data Analytics application over files (rillet sql) or the built-in demo
(rillet demo). The library itself is used from Python:

    import polars as pl, rillet as rl
    q = (rl.stream(events, time="event_time", watermark="5s")
         .window(rl.tumbling("1m"), by="event_source", lateness="1m")
         .agg(rl.count(), rl.sum("bytes")))
    run = q.run()   # run.output, run.late, run.rejected, run.metrics
"""

EPILOG = """\
examples:
  rillet run flights.csv --time time_hour --window tumbling:1h --by origin --agg mean:distance
                                   flights per origin and hour, with their mean distance
  rillet run app.jsonl --follow --time ts --window tumbling:1m --agg count
                                   follow a growing file; Ctrl-C stops
  rillet sql app.sql --input events.jsonl --time ts --watermark 5s
                                   a Kinesis Data Analytics application (or a SELECT)
                                   over a file; each stream it fills printed as a table
  rillet demo                      replay 200,000 CloudTrail-like events
  rillet demo --events 1000000     a bigger replay
  rillet demo --no-progress > out.txt

Run 'rillet COMMAND --help' for a command's options.
"""

DEMO_DESCRIPTION = """\
Generates a CloudTrail-like stream of API calls (rows in arrival order, with
realistic disorder, a few far-too-late rows and one incident of denied EC2
RunInstances calls), replays it through a few metrics (calls and failures per
service per minute, EC2 failures per minute, failing addresses over 5-minute
hopping windows, the busiest APIs) and prints the results, the late rows and
the run metrics. The same --events and --seed always give the same output.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version() -> str:
    from rillet import __version__

    return f"rillet {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (one sub-command per task)."""
    parser = argparse.ArgumentParser(
        prog="rillet",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_run_parser(commands)
    add_sql_parser(commands)
    demo = commands.add_parser(
        "demo",
        help="replay a generated CloudTrail-like stream through a few metrics",
        description=DEMO_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--events", type=_positive_int, default=200_000, metavar="N",
                      help="number of events to generate (default: 200,000)")
    demo.add_argument("--seed", type=int, default=7, metavar="S",
                      help="random seed; the same seed gives the same stream (default: 7)")
    demo.add_argument("--no-progress", dest="progress", action="store_false",
                      help="do not show progress bars")
    return parser


def _demo(args: argparse.Namespace) -> int:
    from rillet.demo import run_demo

    run_demo(events=args.events, seed=args.seed, progress=args.progress)
    return 0


def _run(args: argparse.Namespace) -> int:
    from rillet.cli.run import run_command

    return run_command(args)


def _sql(args: argparse.Namespace) -> int:
    from rillet.cli.sql import sql_command

    return sql_command(args)


COMMANDS = {"demo": _demo, "run": _run, "sql": _sql}


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    print(f"rillet: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``rillet`` command with ``argv`` (default: the process arguments).

    Returns the exit status: 0 on success, 1 on a rillet error, 2 on a usage error or a SQL
    text that cannot be read (``rl.SqlError``: its line, column and caret).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from rillet import DataLossWarning, RilletError, SqlError

    try:
        with warnings.catch_warnings():
            # A run that loses most of its rows says so as the command's own warning line,
            # not as a Python warning pointing into the package.
            warnings.simplefilter("always", DataLossWarning)
            warnings.showwarning = _show_warning
            return COMMANDS[args.command](args)
    except SqlError as e:  # the SQL text is the command's input: a usage error, with its caret
        print(f"rillet: error: {e}", file=sys.stderr)
        return 2
    except RilletError as e:
        print(f"rillet: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # rl.Interrupted too: `rillet run` reports its own
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `rillet demo | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
