"""What the live sources (tails, Kinesis, Kafka) share: JSON records decoded into rows with a
schema fixed by the first good ones, the bad-row table, heartbeats, and durations in seconds."""
from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import polars as pl

from rillet._time import wall_ms
from rillet.sources.base import Chunk

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

BAD_SCHEMA = {"file": pl.String, "line": pl.UInt64, "reason": pl.String, "text": pl.String}


def heartbeat(schema: dict | None) -> Chunk:
    """An empty batch a live source yields while quiet: time passes (``idle_timeout``), and a
    query can be stopped, even before the first row has fixed the columns."""
    return Chunk(pl.DataFrame(schema=schema) if schema else pl.DataFrame(), pl.DataFrame(schema=BAD_SCHEMA))


def seconds(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return wall_ms(value, what) / 1000


class JsonDecoder:
    """JSON objects -> rows; the schema is fixed by the first good ones. Shared by the live
    JSON Lines sources (``decode``: numbered lines) and ``rl.read_kinesis`` (``parse``:
    records)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema: dict[str, pl.DataType] | None = None

    def parse(self, records: list[bytes]) -> tuple[pl.DataFrame, list[int], list[tuple[int, str]]]:
        """Decodes each record as one JSON object. Returns the rows that fit the schema, the
        positions in ``records`` they came from, and ``(position, reason)`` for the others,
        in position order. A record that is not a JSON object, or has a value that does not
        fit the schema, is one of the others, never dropped."""
        good: list[int] = []
        values: list[dict] = []
        lines: list[bytes] = []  # each good record on one line, as read_ndjson needs
        failed: list[tuple[int, str]] = []
        too_deep = (f"nested more than {MAX_DEPTH} levels deep (arrays and objects inside one "
                    "another); such a row cannot be a table row")
        for i, raw in enumerate(records):
            try:
                value = json.loads(raw)
            except RecursionError:
                failed.append((i, too_deep))
                continue
            except ValueError as e:
                failed.append((i, str(e)))
                continue
            if not isinstance(value, dict):
                failed.append((i, "not a JSON object"))
                continue
            if _too_deep(raw, value):
                failed.append((i, too_deep))
                continue
            good.append(i)
            values.append(value)
            # A JSON object may span lines (a Kinesis record); its compact form does not.
            lines.append(json.dumps(value).encode() if b"\n" in raw or b"\r" in raw else raw)
        if not good:
            return (pl.DataFrame() if self.schema is None else pl.DataFrame(schema=self.schema)), [], failed
        if self.schema is None:
            self.schema = infer_schema(values, lines)
        kept: list[pl.DataFrame] = []
        kept_at: list[int] = []
        self._fit(lines, good, kept, kept_at, failed)
        failed.sort()
        return (pl.concat(kept) if kept else pl.DataFrame(schema=self.schema)), kept_at, failed

    def _fit(self, lines: list[bytes], at: list[int], kept: list[pl.DataFrame], kept_at: list[int],
             failed: list[tuple[int, str]]) -> None:
        """Reads lines with the schema; when some value does not fit, halves the lines until
        the rows that do not fit are found alone (a few reads per bad row, rows kept in order)."""
        try:
            kept.append(pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=self.schema))
            kept_at.extend(at)
            return
        except pl.exceptions.PolarsError as e:
            if len(lines) == 1:
                why = str(e).splitlines()[0]
                failed.append((at[0], why if len(why) <= 300 else why[:300] + "..."))
                return
        mid = len(lines) // 2
        self._fit(lines[:mid], at[:mid], kept, kept_at, failed)
        self._fit(lines[mid:], at[mid:], kept, kept_at, failed)

    def decode(self, lines: list[tuple[int, bytes]]) -> Chunk:
        """Numbered lines -> a chunk; blank lines are not rows, unreadable ones are bad rows
        with this decoder's name as their file."""
        lines = [(number, raw) for number, raw in lines if raw.strip()]
        frame, _, failed = self.parse([raw for _, raw in lines])
        bad = [{"file": self.name, "line": lines[i][0], "reason": f"unreadable JSON row: {why}",
                "text": excerpt(lines[i][1])} for i, why in failed]
        return Chunk(frame, pl.DataFrame(bad, schema=BAD_SCHEMA))


#: Rows nested deeper than this are rejected (as ``read_jsonl`` does): polars' schema of such a
#: row is deeper than Python recurses.
MAX_DEPTH = 128


def _too_deep(raw: bytes, value: Any) -> bool:
    """True when ``value`` (parsed from ``raw``) nests arrays and objects more than
    ``MAX_DEPTH`` levels deep; counted without recursion, and only when ``raw`` has enough
    brackets to be."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def infer_schema(values: list[dict], lines: list[bytes]) -> dict[str, pl.DataType]:
    """The columns of the first good rows. A field polars cannot read as one type (an object
    here, a number there, or such a conflict deeper inside) is kept as its JSON text, as
    ``read_jsonl`` does; so is a field that is null in every one of them (its type is not
    known yet, and a Null column would refuse every later value), or that holds such a null
    deeper inside (an empty list)."""
    try:
        inferred = dict(pl.read_ndjson(io.BytesIO(b"\n".join(lines)), infer_schema_length=None).schema)
        return {k: pl.String() if _has_null(t) else t for k, t in inferred.items()}
    except pl.exceptions.PolarsError:
        pass
    schema: dict[str, pl.DataType] = {}
    for key in dict.fromkeys(k for value in values for k in value):
        column = b"\n".join(json.dumps({key: value[key]}).encode() for value in values if key in value)
        try:
            (dtype,) = pl.read_ndjson(io.BytesIO(column), infer_schema_length=None).schema.values()
            schema[key] = pl.String() if _has_null(dtype) else dtype
        except pl.exceptions.PolarsError:
            schema[key] = pl.String()
    return schema


def _has_null(dtype: PolarsDataType) -> bool:
    """True when the type is Null or holds a Null inside (a list's items, a struct's field)."""
    if dtype == pl.Null:
        return True
    if isinstance(dtype, (pl.List, pl.Array)):
        return _has_null(dtype.inner)
    if isinstance(dtype, pl.Struct):
        return any(_has_null(f.dtype) for f in dtype.fields)
    return False


def excerpt(raw: bytes) -> str:
    """The start of an unreadable row or record, as text for ``run.rejected``."""
    return raw[:1000].decode("utf-8", "replace")


def schema_text(schema: dict | None) -> Any:
    """Columns as a checkpoint keeps them (each source's columns are made once: cached)."""
    from rillet._codec import encode_position, schema_bytes

    if schema is None:
        return None
    key = tuple(schema.items())
    text = _SCHEMA_TEXTS.get(key)
    if text is None:
        text = _SCHEMA_TEXTS[key] = encode_position(schema_bytes(pl.DataFrame(schema=schema)))
    return text


_SCHEMA_TEXTS: dict[tuple, Any] = {}


def schema_from_text(text: Any) -> dict:
    from rillet._codec import decode_position, schema_frame

    frame = schema_frame(decode_position(text))
    assert frame is not None
    return dict(frame.schema)
