"""CloudTrail's own delivery layout: ``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``
files, each ``{"Records": [...]}``, flattened into the columns analysts use."""
from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from rillet._errors import SourceError
from rillet._files import Chunk, PathLike, expand
from rillet._source import ChunkSource

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
    **{f: pl.String for f in FIELDS},
    **{f: pl.Boolean for f in BOOLEANS},
    **{f"userIdentity.{f}": pl.String for f in IDENTITY},
    "userIdentity": pl.String,
    **{f: pl.String for f in JSON_FIELDS},
    "other": pl.String,
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


class CloudTrailFiles(ChunkSource):
    """CloudTrail log files replayed in name order (CloudTrail names files by time)."""

    pace_by = "eventTime"

    def __init__(self, path: PathLike) -> None:
        if isinstance(path, (str, os.PathLike)) and Path(path).is_dir():
            root = Path(path)
            files = sorted(str(p) for p in root.rglob("*") if p.name.endswith((".json", ".json.gz")))
            if not files:
                raise SourceError(f"read_cloudtrail: no .json or .json.gz files under {root}")
            self.files = files
        else:
            self.files = expand(path, "read_cloudtrail")

    def chunks(self) -> Iterator[Chunk]:
        for f in self.files:
            rows: list[dict] = []
            bad: list[dict] = []
            try:
                raw = gzip.decompress(Path(f).read_bytes()) if f.endswith(".gz") else Path(f).read_bytes()
            except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
                raise SourceError(
                    f"cannot read {f}: {e} (a truncated or corrupt file?); the files before it "
                    "were processed"
                ) from e
            try:
                doc = json.loads(raw)
                records = doc["Records"] if isinstance(doc, dict) else None
                if not isinstance(records, list):
                    raise ValueError('expected an object {"Records": [...]}')
            except (ValueError, KeyError) as e:
                bad.append({"file": f, "line": 1, "reason": f"not a CloudTrail log file: {e}",
                            "text": raw[:1000].decode("utf-8", "replace")})
                records = []
            for i, rec in enumerate(records):
                if isinstance(rec, dict):
                    rows.append(_flatten(rec))
                else:
                    bad.append({"file": f, "line": 1, "reason": f"record {i} is not an object",
                                "text": json.dumps(rec)[:1000]})
            frame = pl.DataFrame(rows, schema={k: (pl.String if k == "eventTime" else v)
                                               for k, v in SCHEMA.items()})
            frame = frame.with_columns(
                pl.col("eventTime").str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
            )
            bad_df = pl.DataFrame(bad, schema={"file": pl.String, "line": pl.UInt64,
                                               "reason": pl.String, "text": pl.String})
            yield Chunk(frame, bad_df)

    def __repr__(self) -> str:
        return f"rl.read_cloudtrail({len(self.files)} files)"


def read_cloudtrail(path: PathLike) -> CloudTrailFiles:
    """Replays CloudTrail log files as CloudTrail delivers them to S3
    (``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz``, each
    ``{"Records": [...]}``; plain ``.json`` too). ``path`` is that folder (searched
    recursively), a glob or a list. Columns: ``eventTime`` (UTC Datetime), ``eventSource``,
    ``eventName``, ``awsRegion``, ``sourceIPAddress``, ``userAgent``, ``errorCode``,
    ``errorMessage``, ``userIdentity.arn``, ``userIdentity.type`` (and the identity's other
    ids), ``recipientAccountId``, ...; ``requestParameters``, ``responseElements``,
    ``additionalEventData`` and ``resources`` as JSON text, and every other field in ``other``
    (a JSON object). A file that is not a CloudTrail log goes to ``run.rejected``; a record
    without a readable ``eventTime`` is rejected by the query with reason "null time"."""
    return CloudTrailFiles(path)
