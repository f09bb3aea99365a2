"""A stream's detector step (:meth:`rillet.Stream.detect`) at run time: the core's detector
with its models, fed each micro-batch in order, adding its columns to every row."""
from __future__ import annotations

import polars as pl

from rillet import _core
from rillet._errors import SchemaError
from rillet.plan.detectors import DetectorSpec


class DetectStep:
    """One run's detector: made at the first batch (when the columns are known), then
    carried from batch to batch."""

    def __init__(self, spec: DetectorSpec, by: tuple[str, ...], time: str) -> None:
        self.spec = spec
        self.by = by
        self.time = time
        self.columns: list[str] | None = None
        self.detector: _core.Detector | None = None
        self.restored: bytes | None = None  # a checkpoint's models, taken up at the next batch

    def _bind(self, df: pl.DataFrame) -> _core.Detector:
        taken = [c for c in self.spec.outputs() if c in df.columns]
        if taken:
            raise SchemaError(
                f"the stream already has a column {taken[0]!r}, which {self.spec.kind} adds; rename it "
                f"first, e.g. .with_columns(pl.col({taken[0]!r}).alias('{taken[0]}_in'))"
            )
        missing = [c for c in (*self.spec.columns, *self.by) if c not in df.columns]
        if missing:
            raise SchemaError(f"{self.spec.kind} reads column {missing[0]!r}, which is not in the stream; "
                              f"it has columns {df.columns}")
        if self.spec.columns:
            columns = list(self.spec.columns)
        else:
            skip = {self.time, *self.by}
            columns = [c for c, t in df.schema.items() if t.is_numeric() and c not in skip]
            if not columns:
                raise SchemaError(
                    f"{self.spec.kind} looks at numeric columns and the stream has none besides its time "
                    f"and keys (columns {dict(df.schema)}); name them, e.g. rl.{self.spec.kind}('calls')"
                )
        self.columns = columns
        return _core.Detector(self.spec.spec(columns), list(self.by))

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        if not df.width:
            return df
        if self.detector is None:
            self.detector = self._bind(df)
            if self.restored is not None:
                self.detector.restore(self.restored)
                self.restored = None
        assert self.columns is not None
        added = pl.DataFrame(self.detector.process(df.select(*self.columns, *self.by)))
        return df.hstack(added.get_columns())

    def snapshot(self) -> bytes | None:
        """The models so far (None before the first batch)."""
        return self.restored if self.detector is None else self.detector.snapshot()

    def restore(self, data: bytes) -> None:
        """Continues from :meth:`snapshot`'s models (from the next batch on, which fixes the
        columns they read)."""
        self.restored = data

    def models(self) -> int:
        """Models kept (one per key)."""
        return 0 if self.detector is None else self.detector.models()

    def memory_bytes(self) -> int:
        """Bytes the models hold."""
        return 0 if self.detector is None else self.detector.memory_bytes()
