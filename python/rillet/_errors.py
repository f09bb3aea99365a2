"""The exception hierarchy. Every class is defined once, in the compiled core, so errors
raised in Rust and in Python are the same classes."""
from __future__ import annotations

from rillet._core import (
    ConfigError,
    LateDataError,
    RilletError,
    SchemaError,
    SinkError,
    SourceError,
    SqlError,
)

__all__ = ["RilletError", "SchemaError", "ConfigError", "SourceError", "SinkError", "LateDataError", "SqlError"]
