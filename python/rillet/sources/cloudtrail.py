"""CloudTrail's own delivery layout: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``
files, each ``{"Records": [...]}``, flattened into the columns analysts use."""
from __future__ import annotations

import gzip
import json
import os
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError, SourceError
from rillet.sources.base import Chunk
from rillet.sources.files import PathLike, check_on_error, expand
from rillet.sources.source import ChunkSource

#: Top-level fields kept as columns (strings unless noted).
FIELDS = [
    "eventVersion", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent",
    "errorCode", "errorMessage", "requestID", "eventID", "eventType", "eventCategory",
    "recipientAccountId", "sharedEventID", "vpcEndpointId",
]
BOOLEANS = ["readOnly", "managementEvent"]
IDENTITY = ["type", "arn", "principalId", "accountId", "userName", "accessKeyId", "invokedBy"]
#: Nested fields kept as their JSON text.
JSON_FIELDS = ["requestParameters", "responseElements", "additionalEventData", "resources"]
KNOWN = {"eventTime", "userIdentity", *FIELDS, *BOOLEANS, *JSON_FIELDS}

SCHEMA: dict[str, pl.DataType] = {
    "eventTime": pl.Datetime("us", "UTC"),
    **{f: pl.String() for f in FIELDS},
    **{f: pl.Boolean() for f in BOOLEANS},
    **{f"userIdentity.{f}": pl.String() for f in IDENTITY},
    "userIdentity": pl.String(),
    **{f: pl.String() for f in JSON_FIELDS},
    "other": pl.String(),
}


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), sort_keys=True)


def _flatten(rec: dict) -> dict:
    ident = rec.get("userIdentity") or {}
    row: dict[str, Any] = {"eventTime": rec.get("eventTime")}
    for f in FIELDS:
        v = rec.get(f)
        row[f] = None if v is None else str(v)
    for f in BOOLEANS:
        v = rec.get(f)
        row[f] = v if isinstance(v, bool) else (None if v is None else str(v).lower() == "true")
    for f in IDENTITY:
        v = ident.get(f) if isinstance(ident, dict) else None
        row[f"userIdentity.{f}"] = None if v is None else str(v)
    row["userIdentity"] = _text(ident) if ident else None
    for f in JSON_FIELDS:
        row[f] = _text(rec.get(f))
    other = {k: v for k, v in rec.items() if k not in KNOWN}
    row["other"] = _text(other) if other else None
    return row


#: The largest (decompressed) log file read unless told otherwise: 256 MiB. CloudTrail
#: delivers a file every few minutes per region, far below it.
MAX_FILE_BYTES = 256 * 1024 * 1024

_BAD_SCHEMA = {"file": pl.String, "line": pl.UInt64, "reason": pl.String, "text": pl.String}
#: The rows as they are flattened, before ``eventTime`` is read.
_TEXT_TIME_SCHEMA = {k: (pl.String() if k == "eventTime" else v) for k, v in SCHEMA.items()}


class CloudTrailFiles(ChunkSource):
    """CloudTrail log files replayed in name order (CloudTrail names files by time)."""

    pace_by = "eventTime"

    def __init__(self, path: PathLike, on_error: str = "raise",
                 max_file_bytes: int = MAX_FILE_BYTES) -> None:
        self.on_error = check_on_error(on_error, "read_cloudtrail")
        if isinstance(max_file_bytes, bool) or not isinstance(max_file_bytes, int) \
                or not 1 <= max_file_bytes <= 2**62:
            raise ConfigError(
                "read_cloudtrail(max_file_bytes=...) takes a positive number of bytes (default "
                f"{MAX_FILE_BYTES:,}, 256 MiB), got {max_file_bytes!r}"
            )
        self.max_file_bytes = max_file_bytes
        #: Files are read only when they resolve inside this folder (None: files named
        #: one by one, read wherever they are).
        self.root: str | None = None
        if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
            root = Path(path)
            # Linked folders are not entered; linked files are checked when read.
            files = sorted(
                os.path.join(folder, name)
                for folder, _, names in os.walk(root)
                for name in names if name.endswith((".json", ".json.gz"))
            )
            if not files:
                raise SourceError(f"read_cloudtrail: no .json or .json.gz files under {root}")
            self.files = files
            self.root = os.path.realpath(root)
        else:
            self.files = expand(path, "read_cloudtrail")
            glob_root = _glob_root(path)
            self.root = os.path.realpath(glob_root) if glob_root is not None else None

    def chunks(self) -> Iterator[Chunk]:
        for f in self.files:
            bad: list[dict] = []
            raw = self._read(f, bad)
            frame = None if raw is None else self.rows(f, raw, bad)
            if frame is None:
                frame = pl.DataFrame(schema=_TEXT_TIME_SCHEMA)
            frame = frame.with_columns(
                pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
            )
            yield Chunk(frame, pl.DataFrame(bad, schema=_BAD_SCHEMA))

    def rows(self, f: str, raw: bytes, bad: list[dict], fast: bool = True) -> pl.DataFrame:
        """The file's records as rows with ``eventTime`` as text; what cannot be a row goes to
        ``bad``. Flattened in Rust, unless the file holds something only this module's
        Python reads exactly (a record that is not an object, a value of an unexpected type,
        a whole number beyond 64 bits or ``-0``, deep nesting, a lone surrogate escape); ``fast=False``
        always reads it in Python (the two give the same rows)."""
        if fast:
            rows = _core.cloudtrail_rows(raw)
            if rows is not None:
                return pl.DataFrame(rows)
        out: list[dict] = []
        for i, rec in self._records(f, raw, bad):
            row, why = _row(rec)
            if row is not None:
                out.append(row)
            else:
                bad.append({"file": f, "line": 1, "reason": f"record {i}: {why}",
                            "text": _record_text(rec)})
        return pl.DataFrame(out, schema=_TEXT_TIME_SCHEMA)

    def _read(self, f: str, bad: list[dict]) -> bytes | None:
        """The file's (decompressed) bytes, or None after noting in ``bad`` why not."""
        if self.root is not None and not _inside(f, self.root):
            bad.append({"file": f, "line": 0, "text": "", "reason": (
                f"a symbolic link to a file outside {self.root}: not followed (read_cloudtrail "
                "reads only the files inside the folder it is given; pass the file's own path "
                "to read it)")})
            return None
        cap = self.max_file_bytes
        try:
            with (gzip.open(f, "rb") if f.endswith(".gz") else open(f, "rb")) as handle:
                raw = handle.read(cap + 1)
        except (OSError, EOFError, zlib.error) as e:
            message = (f"cannot read {f}: {e} (a truncated or corrupt file?); the files before "
                       "it were processed")
            if self.on_error == "raise":
                raise SourceError(message) from e
            bad.append({"file": f, "line": 0, "text": "",
                        "reason": f"file skipped (on_error='skip'): {message}"})
            return None
        if len(raw) > cap:
            bad.append({"file": f, "line": 1, "text": raw[:1000].decode("utf-8", "replace"),
                        "reason": (f"the file holds more than max_file_bytes={cap} bytes "
                                   "(decompressed); it was skipped without being read whole "
                                   "(raise max_file_bytes= to read it)")})
            return None
        return raw

    def _records(self, f: str, raw: bytes, bad: list[dict]) -> list[tuple[int, Any]]:
        """(index, record) of each record of the file; what cannot be read goes to ``bad``."""
        try:
            doc = json.loads(raw)
        except RecursionError:
            doc = None  # some record is nested too deeply for json: read them one by one
        except ValueError as e:
            bad.append({"file": f, "line": 1, "reason": _not_cloudtrail(raw, e),
                        "text": raw[:1000].decode("utf-8", "replace")})
            return []
        if doc is not None:
            records = doc.get("Records") if isinstance(doc, dict) else None
            if not isinstance(records, list):
                wrong = ValueError('expected an object {"Records": [...]}')
                bad.append({"file": f, "line": 1, "reason": _not_cloudtrail(raw, wrong),
                            "text": raw[:1000].decode("utf-8", "replace")})
                return []
            return list(enumerate(records))
        try:
            spans = _record_spans(raw.decode("utf-8"))
        except ValueError as e:
            bad.append({"file": f, "line": 1, "reason": _not_cloudtrail(raw, e),
                        "text": raw[:1000].decode("utf-8", "replace")})
            return []
        out: list[tuple[int, Any]] = []
        for i, span in enumerate(spans):
            try:
                out.append((i, json.loads(span)))
            except RecursionError:
                bad.append({"file": f, "line": 1, "text": span[:1000], "reason": (
                    f"record {i}: nested more deeply than JSON is read here "
                    f"(about {sys.getrecursionlimit()} levels)")})
            except ValueError as e:
                bad.append({"file": f, "line": 1, "text": span[:1000],
                            "reason": f"record {i}: not valid JSON: {e}"})
        return out

    def __repr__(self) -> str:
        return f"rl.read_cloudtrail({len(self.files)} files)"


def _row(rec: Any) -> tuple[dict | None, str]:
    """A record flattened into a row, or None and why it cannot be one."""
    if not isinstance(rec, dict):
        return None, f"not an object but {type(rec).__name__}"
    t = rec.get("eventTime")
    if t is not None and not isinstance(t, str):
        return None, (f"eventTime is {json.dumps(t)[:100] if not isinstance(t, (dict, list)) else type(t).__name__}, "
                      "not ISO 8601 text such as \"2023-07-10T11:42:00Z\"")
    try:
        row = _flatten(rec)
    except RecursionError:
        return None, f"nested more deeply than JSON is written here (about {sys.getrecursionlimit()} levels)"
    for k, v in row.items():
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                return None, (f"{k} holds a lone UTF-16 surrogate escape (such as \\ud800), which "
                              "is not text")
    return row, ""


def _record_text(rec: Any) -> str:
    """A record's start, for ``run.rejected``."""
    try:
        return json.dumps(rec)[:1000]
    except (RecursionError, ValueError, TypeError):
        return repr(type(rec))


def _inside(f: str, root: str) -> bool:
    """True when ``f``, links resolved, is ``root`` or inside it."""
    real = os.path.realpath(f)
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:  # another drive (Windows)
        return False


def _glob_root(path: PathLike) -> str | None:
    """For one glob, the folder before its first wildcard (files it matches must resolve inside
    it); None for plain paths and lists, which name their files."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    p = os.fspath(path)
    if not any(c in p for c in "*?["):
        return None
    fixed = []
    for part in Path(p).parts:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


_WS = re.compile(r"\s*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r'["\[\]{}]')
_SCALAR = re.compile(r"[^,\]}\s]*")


def _after_ws(text: str, i: int) -> int:
    """The index of the first non-whitespace character of ``text`` from ``i`` on."""
    m = _WS.match(text, i)
    return i if m is None else m.end()  # never None: the pattern matches the empty string


def _value_end(text: str, i: int) -> int:
    """Where the JSON value starting at ``text[i]`` ends, found without recursion (objects and
    arrays by counting brackets outside strings; its contents are checked when it is read)."""
    if i >= len(text):
        raise ValueError("the file ends inside the Records array")
    c = text[i]
    if c == '"':
        m = _STRING.match(text, i)
        if m is None:
            raise ValueError(f"an unterminated string at character {i}")
        return m.end()
    if c not in "[{":
        m = _SCALAR.match(text, i)
        return i if m is None else m.end()  # never None: the pattern matches the empty string
    depth = 0
    j = i
    while True:
        m = _BRACKET.search(text, j)
        if m is None:
            raise ValueError(f"an unclosed {c} at character {i}")
        j = m.start()
        if text[j] == '"':
            s = _STRING.match(text, j)
            if s is None:
                raise ValueError(f"an unterminated string at character {j}")
            j = s.end()
            continue
        depth += 1 if text[j] in "[{" else -1
        j += 1
        if depth == 0:
            return j


def _record_spans(text: str) -> list[str]:
    """The text of each element of the top-level ``Records`` array of ``text``."""
    i = _after_ws(text, 0)
    if not text.startswith("{", i):
        raise ValueError('expected an object {"Records": [...]}')
    i += 1
    spans: list[str] | None = None
    while True:
        i = _after_ws(text, i)
        if text.startswith("}", i):
            break
        key = _STRING.match(text, i)
        if key is None:
            raise ValueError(f"expected a key at character {i}")
        i = _after_ws(text, key.end())
        if not text.startswith(":", i):
            raise ValueError(f"expected ':' at character {i}")
        i = _after_ws(text, i + 1)
        end = _value_end(text, i)
        if json.loads(key.group()) == "Records" and text.startswith("[", i):
            spans = []
            j = i + 1
            while True:
                j = _after_ws(text, j)
                if text.startswith("]", j) or j >= end:
                    break
                e = _value_end(text, j)
                spans.append(text[j:e])
                j = _after_ws(text, e)
                if text.startswith(",", j):
                    j += 1
        i = _after_ws(text, end)
        if text.startswith(",", i):
            i += 1
        elif not text.startswith("}", i):
            raise ValueError(f"expected ',' or '}}' at character {i}")
    if spans is None:
        raise ValueError('expected an object {"Records": [...]}')
    return spans


def _not_cloudtrail(raw: bytes, error: Exception) -> str:
    """Why a file is not a CloudTrail log, and what would read it: a JSON Lines export (one
    event object per line) is common, and rl.read_jsonl reads it."""
    lines = [line for line in raw.splitlines()[:3] if line.strip()]
    if len(lines) > 1:
        try:
            first = json.loads(lines[0])
        except ValueError:
            first = None
        if isinstance(first, dict):
            return ("not a CloudTrail log file: this is JSON Lines (one JSON object per line), "
                    "not CloudTrail's {\"Records\": [...]}: use rl.read_jsonl(path) instead, e.g. "
                    "rl.stream(rl.read_jsonl(path), time='eventTime')")
    return f"not a CloudTrail log file: {error}"


def read_cloudtrail(path: PathLike, on_error: str = "raise",
                    max_file_bytes: int = MAX_FILE_BYTES) -> CloudTrailFiles:
    """Replays CloudTrail log files as CloudTrail delivers them to S3
    (``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``, each
    ``{"Records": [...]}``; plain ``.json`` too). ``path`` is that folder (searched
    recursively), a glob or a list. Columns: ``eventTime`` (UTC Datetime), ``eventSource``,
    ``eventName``, ``awsRegion``, ``sourceIPAddress``, ``userAgent``, ``errorCode``,
    ``errorMessage``, ``userIdentity.arn``, ``userIdentity.type`` (and the identity's other
    ids), ``recipientAccountId``, ...; ``requestParameters``, ``responseElements``,
    ``additionalEventData`` and ``resources`` as JSON text, and every other field in ``other``
    (a JSON object). A file that is not a CloudTrail log goes to ``run.rejected``; so does a
    record that cannot be a row (not an object, a non-text ``eventTime``, a lone surrogate
    escape, nesting too deep for JSON), with ``record N:`` in its reason, while the file's
    other records are read; a record without a readable ``eventTime`` is rejected by the
    query with reason "null time".

    Given a folder or a glob, only files that resolve inside that folder (or the glob's
    leading folder) are read: a symbolic link leading out of it is not followed, and is one
    row of ``run.rejected`` naming it (a link to a file inside the folder is read). Files
    named one by one are read where they are.

    A file larger than ``max_file_bytes`` once decompressed (default 256 MiB) is rejected
    without being read whole. A file that cannot be read (a truncated ``.gz``) raises
    :class:`SourceError`, whose ``.run`` holds the run up to it; ``on_error="skip"`` records
    it in ``run.rejected`` and goes on with the next file."""
    return CloudTrailFiles(path, on_error, max_file_bytes)
