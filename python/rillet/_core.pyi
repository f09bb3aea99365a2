"""Type stub of the compiled engine module (`rillet._core`).

Checked against the built module with
``python -m mypy.stubtest rillet._core`` (no allowlist needed).
The classes are PyO3 classes: built through ``__new__`` and final (not subclassable).
"""
from typing import Any, Self, final

__all__ = [
    "RilletError",
    "SchemaError",
    "ConfigError",
    "SourceError",
    "SinkError",
    "LateDataError",
    "SqlError",
    "sql_query",
    "sql_application",
    "WindowOperator",
    "Detector",
    "Plan",
    "BoundPlan",
    "window_layout",
    "FileReader",
    "CsvRecords",
    "parse_duration",
    "set_threads",
    "threads",
    "duration_parts",
    "text_times",
    "format_instant",
    "MAX_WINDOWS_PER_ROW",
    "__version__",
]

__version__: str
MAX_WINDOWS_PER_ROW: int

class RilletError(Exception): ...
class SchemaError(RilletError): ...
class ConfigError(RilletError): ...
class SourceError(RilletError): ...
class SinkError(RilletError): ...
class LateDataError(RilletError): ...
class SqlError(ConfigError):
    line: int
    column: int

def sql_query(text: str, inputs: str) -> str:
    """One SELECT planned over named inputs (``{"name": {"columns": [...], "time": ...}}``),
    as JSON."""
def sql_application(text: str, inputs: str) -> str:
    """A Kinesis Data Analytics application planned over named inputs, as JSON."""

def parse_duration(text: str, unit: str, what: str) -> int: ...
def duration_parts(text: str, what: str) -> tuple[int, int, int, int, int, bool]: ...
def text_times(values: Any) -> Any:
    """Microseconds since the epoch of ISO 8601 texts (an Arrow string array or stream), as a
    text time column is read; null where a query would reject the row."""
def format_instant(value: int, unit: str) -> str:
    """An instant in ``unit`` as RFC 3339 text in UTC, for any instant (any year)."""

@final
class Plan:
    def __new__(cls, json: str) -> Self: ...
    def to_json(self) -> str: ...
    def bind(self, input: Any) -> BoundPlan: ...
    def explain(self, input: Any | None = None) -> str: ...

@final
class BoundPlan:
    @property
    def unit(self) -> str: ...
    @property
    def delay(self) -> int: ...
    @property
    def input_casts(self) -> Any: ...
    @property
    def output_casts(self) -> Any: ...
    def output_schema(self) -> Any: ...
    def operator(self) -> WindowOperator: ...

def window_layout(window: str, unit: str, tz: str | None) -> dict[str, Any]: ...

@final
class Detector:
    def __new__(cls, spec: str, by: list[str]) -> Self: ...
    def process(self, data: Any) -> Any: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...
    def models(self) -> int: ...
    def memory_bytes(self) -> int: ...
    def leaf_depths(self) -> list[list[int]]: ...

@final
class WindowOperator:
    def process(self, data: Any, now_ms: int | None = None) -> tuple[Any, Any, Any]: ...
    def tick(self, now_ms: int) -> Any: ...
    def advance_watermark(self, instant: int) -> Any: ...
    def finish(self) -> Any: ...
    def emitted_floor(self, column: str) -> int | None: ...
    def is_bound(self) -> bool: ...
    def metrics(self) -> dict[str, int | None]: ...

@final
class FileReader:
    def __new__(
        cls,
        kind: str,
        paths: list[str],
        batch_rows: int = 65536,
        infer_rows: int = 1000,
        delimiter: str = ",",
        schema: Any = None,
        max_line_bytes: int | None = None,
        on_error: str = "raise",
        null_values: list[str] | None = None,
    ) -> Self: ...
    def split(self) -> list[FileReader]: ...
    def next_chunk(self) -> tuple[Any, Any] | None: ...

@final
class CsvRecords:
    def __new__(
        cls,
        name: str,
        head: bytes,
        delimiter: str = ",",
        infer_rows: int = 1000,
        schema: Any = None,
        null_values: list[str] | None = None,
    ) -> Self: ...
    def decode(self, records: list[tuple[int, bytes]]) -> tuple[Any, Any]: ...

def set_threads(n: int) -> None: ...
def threads() -> int: ...
