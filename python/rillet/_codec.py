"""How a checkpoint keeps what is not plain JSON: bytes (a reader's position, a snapshot) as
base64 text, and frames or their columns as Arrow IPC (shared by the sources, which describe
their positions, and the runtime, which saves them)."""
from __future__ import annotations

import base64
import io
from typing import Any

import polars as pl


def encode_position(value: Any) -> Any:
    """A value for JSON: bytes become ``{"b64": ...}``."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode()}
    return value


def decode_position(value: Any) -> Any:
    """The value :func:`encode_position` was given."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def ipc(df: pl.DataFrame) -> bytes:
    """A frame as Arrow IPC bytes (uncompressed: written and read once, soon)."""
    buf = io.BytesIO()
    df.write_ipc(buf, compression="uncompressed")
    return buf.getvalue()


def frame(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(data))


def schema_bytes(df: pl.DataFrame | None) -> bytes | None:
    """A frame's columns and types, without its rows."""
    return None if df is None else ipc(df.head(0))


def schema_frame(data: bytes | None) -> pl.DataFrame | None:
    return None if data is None else frame(data)
