"""A stream's join with a table (:meth:`rillet.Stream.join`, :meth:`~rillet.Stream.join_asof`)
at run time: the core's join over the table, reading a reference file at the first batch and
again between batches when it changes."""
from __future__ import annotations

import polars as pl

from rillet import _core
from rillet._time import text_instants
from rillet.plan.joins import TableJoin
from rillet.sources.reference import Loaded, Reference


class JoinStep:
    """One run's join: the core's index of the table, made at the first batch."""

    def __init__(self, join: TableJoin) -> None:
        self.join = join
        self.core: _core.TableJoin | None = None
        self.loaded: Loaded | None = None
        self.text_time: str | None = None
        self.restored: bytes | None = None  # a checkpoint's state, taken up at the next batch
        asof = join.options()["asof"]
        self.time = None if asof is None else asof["left_time"]

    def _start(self, df: pl.DataFrame) -> _core.TableJoin:
        if self.time is not None and df.schema.get(self.time) == pl.String:
            self.text_time = self.time
        if isinstance(self.join.table, Reference):
            self.loaded = Loaded(self.join.table)
            return _core.TableJoin(self.join.spec, self.loaded.table)
        return _core.TableJoin(self.join.spec, self.join.table)

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        if not df.width:
            return df
        if self.core is None:
            self.core = self._start(df)
            if self.restored is not None:
                self.core.restore(self.restored)
                self.restored = None
        elif self.loaded is not None:
            table = self.loaded.reloaded()
            if table is not None:
                self.core.set_table(table)
        if self.text_time is not None:
            # ISO 8601 text is matched by the instants the engine reads from it (none where a
            # window would reject the row); the rows keep their text. An as-of join gives one
            # row per stream row, in order.
            out = pl.DataFrame(self.core.process(df.with_columns(text_instants(self.text_time))))
            return out.with_columns(df.get_column(self.text_time))
        out, whole = self.core.process_parts(df)
        if whole:
            return pl.DataFrame(out)
        # Every row once, in order: the table's columns are added to the rows as they are.
        return df.hstack(pl.DataFrame(out).get_columns())

    def snapshot(self) -> bytes | None:
        """The join's counters (the table is read again on resume; None before the first
        batch)."""
        return self.restored if self.core is None else self.core.snapshot()

    def restore(self, data: bytes) -> None:
        """Continues from :meth:`snapshot`'s state, from the next batch on."""
        self.restored = data

    def loads(self) -> int:
        """Times the table was read (a DataFrame counts once)."""
        return self.loaded.loads if self.loaded is not None else int(self.core is not None)

    def rows_added(self) -> int:
        """Rows the join added: a row's matches beyond its first."""
        return 0 if self.core is None else self.core.rows_added()

    def memory_bytes(self) -> int:
        return 0 if self.core is None else self.core.memory_bytes()
