"""``rillet run``: one windowed query over files, from the command line.

The parsed options (:mod:`rillet.cli.options`) become a query and its outputs; the query runs
batch by batch, what it emits is printed or written as it is emitted, and the run's metrics
end up on standard error.
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import glob
import json
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import polars as pl

import rillet as rl
from rillet._errors import ConfigError, RilletError, SchemaError, SinkError, SourceError
from rillet._interrupt import DeferInterrupt
from rillet.cli.options import OutputFile, WindowOption

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

#: File name endings -> input format (".gz" is stripped first; only CSV and JSON Lines may have it).
INPUT_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".pq": "parquet", ".arrow": "ipc", ".ipc": "ipc", ".feather": "ipc",
}


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


# ------------------------------------------------------------------------------ the plan
@dataclass
class Plan:
    query: rl.Query
    outputs: list[Any]


def _input_format(args: argparse.Namespace, error: Callable[[str], NoReturn]) -> str:
    if args.format != "auto":
        return args.format
    kinds: set[str] = set()
    for path in args.paths:
        if Path(path).is_dir():
            error(f"{path!r} is a folder: give a glob such as '{path.rstrip('/')}/*.jsonl', or "
                  "--format cloudtrail for a folder of CloudTrail logs")
        kind = _format_of(path)
        if kind is None and _is_glob(path):
            matched = [f for f in glob.glob(path, recursive=True) if Path(f).is_file()]
            if not matched:
                raise SourceError(f"the glob {path!r} matches no file")
            found = {_format_of(f) for f in matched}
            kind = found.pop() if len(found) == 1 else None
        if kind is None:
            hint = (" (a .json file may hold JSON Lines or CloudTrail's {\"Records\": [...]})"
                    if path.lower().removesuffix(".gz").endswith(".json") else "")
            error(f"cannot tell the format of {path!r} from its name{hint}; give --format "
                  "csv, jsonl, parquet, ipc or cloudtrail")
        kinds.add(kind)
    if len(kinds) > 1:
        error(f"the inputs mix formats ({', '.join(sorted(kinds))}); give files of one format")
    return kinds.pop()


def _format_of(path: str) -> str | None:
    name = path.lower()
    gz = name.endswith(".gz")
    name = name.removesuffix(".gz")
    for ext, kind in INPUT_EXTENSIONS.items():
        if name.endswith(ext):
            return kind if not gz or kind in ("csv", "jsonl") else None
    return None


def _source(args: argparse.Namespace, fmt: str, error: Callable[[str], NoReturn]) -> Any:
    paths: list[str] = args.paths
    separator = args.separator
    if separator is not None and fmt != "csv":
        error(f"--separator is for CSV input, and the input is {fmt}")
    if separator is None:
        tsv = any(p.lower().removesuffix(".gz").endswith(".tsv") for p in paths)
        separator = "\t" if tsv else ","
    if args.null_values and fmt != "csv":
        error(f"--null-values is for CSV input, and the input is {fmt}")
    lines: dict[str, Any] = {}
    if args.max_line_bytes is not None:
        if fmt not in ("csv", "jsonl"):
            error(f"--max-line-bytes is for CSV and JSON Lines input, and the input is {fmt}")
        lines["max_line_bytes"] = args.max_line_bytes
    csv: dict[str, Any] = {"separator": separator, **lines}
    if args.null_values:
        csv["null_values"] = args.null_values
    if not args.follow:
        if args.max_idle is not None:
            error("--max-idle goes with --follow (a replay ends with its files)")
        if fmt == "csv":
            return rl.read_csv(paths, on_error=args.on_error, **csv)
        if fmt == "cloudtrail":
            return rl.read_cloudtrail(paths[0] if len(paths) == 1 else paths, on_error=args.on_error)
        return getattr(rl, f"read_{fmt}")(paths, on_error=args.on_error, **lines)
    if args.on_error != "raise":
        error("--on-error is for replays; --follow reads one growing file")
    if len(paths) != 1:
        error(f"--follow follows one file, or the files landing in one folder (a quoted glob such "
              f"as 'incoming/*.jsonl'); got {len(paths)} paths")
    path = paths[0]
    if fmt not in ("csv", "jsonl") or path.lower().endswith(".gz"):
        error("--follow reads uncompressed CSV or JSON Lines; replay other files without --follow")
    if _is_glob(path):
        folder, pattern = os.path.split(path)
        if _is_glob(folder):
            error(f"--follow {path!r}: only the file name may have wildcards, e.g. 'incoming/*.jsonl'")
        if fmt == "csv" and separator != ",":
            error("--follow with a glob reads comma-separated CSV files only")
        if args.null_values or lines:
            error("--null-values and --max-line-bytes are not read by --follow with a glob")
        return rl.tail_dir(folder or ".", pattern, max_idle=args.max_idle)
    if fmt == "csv":
        return rl.tail_csv(path, max_idle=args.max_idle, **csv)
    return rl.tail_jsonl(path, max_idle=args.max_idle, **lines)


def plan(args: argparse.Namespace) -> Plan:
    """The query and the outputs the options describe; a usage error exits with status 2."""
    parser: argparse.ArgumentParser = args.run_parser
    error = parser.error
    fmt = _input_format(args, error)
    time_col = args.time
    if time_col is None:
        if fmt != "cloudtrail":
            error("--time is required: name the event-time column, e.g. --time event_time "
                  "(only --format cloudtrail has a default, eventTime)")
        time_col = "eventTime"
    window: WindowOption = args.window
    if args.tz is not None and window.kind not in ("tumbling", "hopping"):
        error(f"--tz applies to tumbling and hopping windows, not {window.kind}")
    if args.offset is not None and window.kind not in ("tumbling", "hopping", "cumulative"):
        error(f"--offset applies to tumbling, hopping and cumulative windows, not {window.kind}")
    try:
        spec = window.spec(args.offset, args.tz)
    except ConfigError as e:
        given = "".join(f" {o} {v}" for o, v in (("--tz", args.tz), ("--offset", args.offset)) if v is not None)
        error(f"--window {window.text}{given}: {e}")
    aggs: list[rl.Agg] = args.agg or [rl.count()]
    names = [a.name for a in aggs]
    for n in names:
        if names.count(n) > 1:
            error(f"two aggregates make the column {n!r}; name one with NAME=AGG, e.g. --agg {n}_2=...")
    by = [c for cols in args.by for c in cols]
    if args.early is not None and args.emit == "final":
        error("--early emits the current values of open windows, so it needs --emit amend or changelog")
    if (args.to_database is None) != (args.table is None):
        error("--to-database URI and --table NAME go together")
    if args.checkpoint_every is not None and args.checkpoint is None:
        error("--checkpoint-every needs --checkpoint DIR, where the run's checkpoints go")
    if args.checkpoint is not None and args.output is not None:
        error("--output FILE is written from the start of each run, so a resumed run would lose what "
              "the first one wrote: with --checkpoint, deliver to --to-parquet DIR, --to-jsonl DIR or "
              "--to-database URI (exactly once)")
    if args.to_database is not None:
        if window.kind == "sliding":
            error("--to-database keeps one row per window and key; sliding windows emit one row per "
                  "input row")
        if window.kind == "session" and args.emit == "amend":
            error("--to-database with session windows needs --emit final or changelog: an amended "
                  "session's bounds change as it grows, with no retraction of the old row")

    stream = rl.stream(_source(args, fmt, error), time=time_col, watermark=args.watermark,
                       idle_timeout=args.idle_timeout)
    if args.with_:
        stream = stream.with_columns(*(w.expr for w in args.with_))
    for where in args.where:
        stream = stream.filter(where.expr)
    query = stream.window(spec, by=by, lateness=args.lateness, emit=args.emit,
                          early=args.early).agg(*aggs)
    return Plan(query, _outputs(args, by, time_col, window.kind))


def _outputs(args: argparse.Namespace, by: list[str], time_col: str, kind: str) -> list[Any]:
    from rillet.sinks.writers import DatabaseSink, FileSink

    for option, target in (("--late", args.late), ("--rejected", args.rejected)):
        # Written when the run ends: a wrong folder is said now, not after a long run.
        if target is not None and not Path(target.path).parent.is_dir():
            raise SinkError(f"cannot write {target.path} ({option}): there is no folder "
                            f"{str(Path(target.path).parent)!r}")
    outputs: list[Any] = []
    try:
        if args.output is not None:
            outputs.append(FileOutput(args.output))
        # Sliding windows have no window bounds: their files are partitioned by the row's time.
        partition = time_col if kind == "sliding" else "window_start"
        for directory, fmt in ((args.to_parquet, "parquet"), (args.to_jsonl, "jsonl")):
            if directory is not None:
                outputs.append(FileSink(directory, fmt, partition, "1h", 100_000, "60s"))
        if args.to_database is not None:
            outputs.append(DatabaseSink(args.to_database, args.table, [*by, "window_start", "window_end"]))
    except BaseException:
        for o in outputs:
            o.close(False)
        raise
    if not outputs:
        outputs.append(ConsoleOutput(sys.stdout))
    return outputs


# ------------------------------------------------------------------------------ outputs
def _json_text(column: str) -> pl.Expr:
    return pl.when(pl.col(column).is_null()).then(None).otherwise(
        pl.struct(pl.col(column).alias("v")).struct.json_encode()
        .str.strip_prefix('{"v":').str.strip_suffix("}")
    ).alias(column)


#: What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list): such text
#: cells are written with a single quote before them, which spreadsheets show as text.
FORMULA_START = "=+-@\t\r"


def _no_formula(text: str) -> str:
    return "'" + text if text[:1] and text[0] in FORMULA_START else text


def _no_formula_expr(column: str) -> pl.Expr:
    col = pl.col(column)
    return (pl.when(col.str.contains(r"^[=+\-@\t\r]"))
            .then(pl.lit("'") + col).otherwise(col).alias(column))


def _csv_ready(df: pl.DataFrame) -> pl.DataFrame:
    """CSV holds no lists, structs or durations: lists and structs (top_k's) become their JSON
    text, durations (late_by) ISO 8601 text such as PT1M30S, as in JSON Lines. Text that a
    spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return)
    gets a leading single quote, as OWASP advises; number columns are left as they are."""
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    durations = [c for c, t in df.schema.items() if isinstance(t, pl.Duration)]
    if nested or durations:
        df = df.with_columns(*map(_json_text, nested), *(pl.col(c).dt.to_string() for c in durations))
    texts = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical) or isinstance(t, pl.Enum)]
    if texts:
        df = df.with_columns(pl.col(texts).cast(pl.String)).with_columns(map(_no_formula_expr, texts))
    names = [_no_formula(c) for c in df.columns]
    return df.rename(dict(zip(df.columns, names))) if names != df.columns and len(set(names)) == len(names) else df


def _has_empty_struct(dtype: PolarsDataType) -> bool:
    if isinstance(dtype, pl.Struct):
        return not dtype.fields or any(_has_empty_struct(f.dtype) for f in dtype.fields)
    inner = getattr(dtype, "inner", None)
    return inner is not None and _has_empty_struct(inner)


def _parquet_ready(df: pl.DataFrame) -> pl.DataFrame:
    """Parquet holds no struct without fields (JSON's ``{}`` read into a column, as in
    CloudTrail's userIdentity): such columns become their JSON text."""
    empty = [c for c, t in df.schema.items() if _has_empty_struct(t)]
    return df.with_columns(map(_json_text, empty)) if empty else df


def write_table(df: pl.DataFrame, target: OutputFile) -> None:
    """Writes a whole table (late or rejected rows) to a file."""
    try:
        if target.fmt == "csv":
            _csv_ready(df).write_csv(target.path)
        elif target.fmt == "jsonl":
            df.write_ndjson(target.path)
        else:
            _parquet_ready(df).write_parquet(target.path)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise SinkError(f"cannot write {target.path}: {e}") from e


class FileOutput:
    """--output FILE: CSV and JSON Lines are written as rows are emitted (so a followed run's
    file can be followed in turn); Parquet, which cannot be appended to, when the run ends."""

    def __init__(self, target: OutputFile) -> None:
        self.target = target
        self.parts: list[pl.DataFrame] = []
        self.header = True
        self.handle: Any = None
        path = Path(target.path)
        try:
            if target.fmt == "parquet":
                if not path.parent.is_dir():
                    raise FileNotFoundError(f"no folder {str(path.parent)!r}")
            else:
                self.handle = open(path, "wb")
        except OSError as e:
            raise SinkError(f"cannot write {target.path}: {e}") from e

    def write(self, df: pl.DataFrame) -> None:
        if not df.height:
            return
        try:
            if self.target.fmt == "parquet":
                self.parts.append(df)
            elif self.target.fmt == "csv":
                _csv_ready(df).write_csv(self.handle, include_header=self.header)
                self.header = False
            else:
                df.write_ndjson(self.handle)
            if self.handle is not None:
                self.handle.flush()
        except (OSError, pl.exceptions.PolarsError) as e:
            raise SinkError(f"cannot write {self.target.path}: {e}") from e

    def close(self, completed: bool) -> None:
        # What was emitted is written even when the run failed or was interrupted.
        if self.handle is not None:
            self.handle.close()
            return
        df = pl.concat(self.parts, how="vertical") if self.parts else pl.DataFrame()
        tmp = Path(self.target.path).with_name(f".{Path(self.target.path).name}.tmp")
        try:
            _parquet_ready(df).write_parquet(tmp)
            os.replace(tmp, self.target.path)
        except BaseException as e:
            with contextlib.suppress(OSError):  # no half-written file left behind
                tmp.unlink(missing_ok=True)
            if isinstance(e, (OSError, pl.exceptions.PolarsError)):
                raise SinkError(f"cannot write {self.target.path}: {e}") from e
            raise


class ConsoleOutput:
    """Each emitted batch printed as a polars table, all rows and columns, as it is emitted."""

    def describe(self) -> str:
        return "printed"

    def __init__(self, out: Any) -> None:
        self.out = out
        self.batches = 0

    def write(self, df: pl.DataFrame) -> None:
        if not df.height:
            return
        from tqdm import tqdm

        # The terminal's width; wide, rather than wrapped in cells, when the output is piped.
        width = shutil.get_terminal_size((200, 24)).columns
        with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                       tbl_hide_column_data_types=True, fmt_table_cell_list_len=-1,
                       fmt_str_lengths=60, tbl_width_chars=width), tqdm.external_write_mode(file=self.out):
            # A blank line between batches; the progress bar (on stderr) steps aside.
            print(("\n" if self.batches else "") + str(df), file=self.out, flush=True)
        self.batches += 1

    def close(self, completed: bool) -> None:
        pass


# ------------------------------------------------------------------------------ running
class Outputs:
    """Every output as one sink: each emitted batch goes to all of them."""

    def __init__(self, outputs: Sequence[Any]) -> None:
        self.outputs = list(outputs)

    def write(self, df: pl.DataFrame) -> None:
        for o in self.outputs:
            o.write(df)

    def close(self, completed: bool) -> None:
        _close_all(self.outputs, completed)

    def describe(self) -> str:
        from rillet.runtime.durable import describe

        return " and ".join(describe(o) for o in self.outputs)

    # A checkpointed run (--checkpoint): the sinks that commit per epoch do, each with its
    # own part of the pending list; printed rows are at least once.
    def _epochal(self) -> list[tuple[int, Any]]:
        return [(i, o) for i, o in enumerate(self.outputs) if hasattr(o, "prepare")]

    def recover(self, run_id: str, epoch: int, pending: bytes | None) -> None:
        parts = json.loads(pending) if pending else {}
        for i, o in self._epochal():
            part = parts.get(str(i))
            o.recover(run_id, epoch, None if part is None else base64.b64decode(part))

    def prepare(self, run_id: str, epoch: int) -> bytes:
        return json.dumps({str(i): base64.b64encode(o.prepare(run_id, epoch)).decode()
                           for i, o in self._epochal()}).encode()

    def commit(self, run_id: str, epoch: int, pending: bytes | None, mid: Callable[[], None]) -> None:
        parts = json.loads(pending) if pending else {}
        for i, o in self._epochal():
            part = parts.get(str(i))
            o.commit(run_id, epoch, None if part is None else base64.b64decode(part), mid)


def _close_all(outputs: list[Any], completed: bool) -> None:
    """Closes every output even if one fails (the first failure is raised)."""
    if outputs:
        try:
            outputs[0].close(completed)
        finally:
            _close_all(outputs[1:], completed)


def execute(query: rl.Query, outputs: Sequence[Any], progress: bool | None, checkpoint: str | None = None,
            checkpoint_every: Any = None) -> tuple[rl.Run, bool]:
    """Runs the query into the outputs; returns the run (without output) and whether Ctrl-C
    stopped it. As every blocking run, it holds Ctrl-C back while a batch is processed and
    written, so what was emitted is all printed or written and the metrics add up; a second
    Ctrl-C stops at once (``rl.Interrupted`` either way, with the run so far)."""
    from rillet.sinks.writers import run_into

    try:
        return run_into(query, Outputs(outputs), progress, checkpoint, checkpoint_every), False
    except rl.Interrupted as e:
        return e.run, True


def _when(value: object) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") + (" UTC" if value.tzinfo else "")
    return "none" if value is None else str(value)


def summary(run: rl.Run, args: argparse.Namespace, interrupted: bool) -> str:
    m = run.metrics
    late = f"late {m['rows_late']:,}"
    if m["rows_late"] and args.late is None:
        late += " (--late FILE keeps them)"
    rejected = f"rejected {m['rows_rejected']:,}"
    if m["rows_rejected"] and args.rejected is None:
        rejected += " (--rejected FILE keeps them)"
    rate = m.get("rows_per_s")
    lines = [
        f"rillet: rows in {m['rows_in']:,}: accepted {m['rows_accepted']:,}, {late}, {rejected}, "
        f"filtered out {m['rows_filtered']:,} | emitted {m['rows_emitted']:,} rows | watermark "
        f"{_when(m['watermark'])} | {m['elapsed_s']:.2f} s"
        + (f", {rate:,} events/s" if rate is not None else "")
    ]
    if interrupted and run.interrupted:
        n = m["open_windows"]
        lines.append(f"rillet: interrupted: {n:,} window{'s' if n != 1 else ''} still open "
                     f"{'were' if n != 1 else 'was'} not emitted")
    elif interrupted:  # Ctrl-C came while the last rows or files were written: all went out
        lines.append("rillet: interrupted after the input had ended: every window was emitted")
    return "\n".join(lines)


def run_command(args: argparse.Namespace) -> int:
    """``rillet run``: 0 when the input ended (or --max-idle passed), 130 when interrupted."""
    the_plan = plan(args)
    progress = None if (args.progress and sys.stderr.isatty()) else False
    try:
        run, interrupted = execute(the_plan.query, the_plan.outputs, progress, args.checkpoint,
                                   args.checkpoint_every)
    except SchemaError as e:
        # The stream's message names the Python call; say which option it was.
        for call, option in ((".filter(...) ", "--where "), (".with_columns(...) ", "--with ")):
            if str(e).startswith(call):
                raise SchemaError(option + str(e).removeprefix(call)) from e
        raise
    except pl.exceptions.PolarsError as e:
        sql = [f"--with {w.text!r}" for w in args.with_] + [f"--where {w.text!r}" for w in args.where]
        raise RilletError(f"{e}" + (f" (from {', '.join(sql)})" if sql else "")) from e
    with DeferInterrupt() as held:  # each file is written whole; Ctrl-C meanwhile waits
        if args.late is not None:
            write_table(run.late, args.late)
        if args.rejected is not None:
            write_table(run.rejected, args.rejected)
    try:
        held.raise_pending()
    except KeyboardInterrupt:
        interrupted = True
    print(summary(run, args, interrupted), file=sys.stderr, flush=True)
    return 130 if interrupted else 0
