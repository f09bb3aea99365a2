"""``rl.Application``: a Kinesis Data Analytics SQL application as written: in-application
streams, pumps inserting into them, pumps reading them, over one input read once."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rillet import _core
from rillet._errors import ConfigError
from rillet.query.live import RunningQuery
from rillet.query.live import start as _start
from rillet.query.stream import Query, Run
from rillet.query.stream import run as _run
from rillet.sql.build import Builder, sql_dtype, sql_error
from rillet.sql.query import inputs_info

#: The input's name in a Kinesis Data Analytics application.
SOURCE = "SOURCE_SQL_STREAM_001"


@dataclass
class ApplicationRun:
    """What an application's run produced: each in-application stream's rows (``streams``,
    the rows of every pump inserting into it, each with its ``ROWTIME``, in ``ROWTIME``
    order), and each pump's :class:`rillet.Run` (``runs``: its late and rejected rows and
    metrics)."""

    streams: dict[str, pl.DataFrame]
    runs: dict[str, Run] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {v.height} rows" for k, v in self.streams.items())
        return f"ApplicationRun({parts})"


class Application:
    """A Kinesis Data Analytics SQL application: ``CREATE [OR REPLACE] STREAM`` declares an
    in-application stream and its columns; ``CREATE [OR REPLACE] PUMP ... AS INSERT INTO
    stream SELECT STREAM ...`` is a continuous query filling it; pumps may read the streams
    other pumps fill. The input is ``SOURCE_SQL_STREAM_001``: give it as the second argument
    or by that name (a source, or a :class:`rillet.Stream` declaring its event time); other
    inputs by their names::

        app = rl.Application(open("app.sql").read(),
                             rl.stream(rl.read_cloudtrail("logs/"), time="eventTime", watermark="1m"))
        out = app.run()
        out.streams["CALLS_PER_MINUTE"]

    Every pump reads the input once, together (``rl.run``). ``ROWTIME`` is the input's event
    time when a stream declares one, else the arrival time; a pump's rows carry the end of
    their window as their ``ROWTIME``. docs/sql.md has the migration notes."""

    def __init__(self, text: str, source: Any = None, /, **inputs: Any) -> None:
        if not isinstance(text, str):
            raise ConfigError(f"rl.Application() takes the application's SQL as a string, got {type(text).__name__}")
        if source is not None:
            if SOURCE in inputs:
                raise ConfigError(f"the input is given twice: as the second argument and as {SOURCE}=")
            inputs[SOURCE] = source
        self.text = text
        self._inputs = inputs
        self._program = json.loads(_core.sql_application(text, json.dumps(inputs_info(inputs))))
        self._queries: dict[str, Query] = {}
        self._building: list[str] = []  # the pumps being built, innermost last
        self._builder = Builder(text, inputs, self._stream_query)
        for pump in self._program["pumps"]:
            self._pump_query(pump["name"])

    # -- the parts ----------------------------------------------------------------------
    @property
    def streams(self) -> list[str]:
        """The in-application streams, as declared."""
        return [s["name"] for s in self._program["streams"]]

    @property
    def pumps(self) -> dict[str, str]:
        """Each pump and the stream it inserts into."""
        return {p["name"]: p["into"] for p in self._program["pumps"]}

    def pump(self, name: str) -> Query:
        """The query of pump ``name`` (its output is what it inserts)."""
        if name not in self.pumps:
            raise ConfigError(f"no pump {name!r}; the application's pumps are {list(self.pumps)}")
        return self._queries[name]

    def stream(self, name: str) -> Query:
        """The query filling in-application stream ``name``, to run or attach a sink to::

            app.stream("DESTINATION_SQL_STREAM").to_parquet("out/")
        """
        feeding = [p for p, s in self.pumps.items() if s == name]
        if not feeding:
            declared = [s for s in self.streams if s.upper() == name.upper()]
            if declared and declared[0] != name:
                return self.stream(declared[0])
            raise ConfigError(f"no pump inserts into {name!r}; the application fills {sorted(set(self.pumps.values()))}")
        if len(feeding) > 1:
            raise ConfigError(
                f"{len(feeding)} pumps insert into {name!r} ({feeding}); take each with "
                f"app.pump(name), or run the application, whose streams[{name!r}] has them all"
            )
        return self._queries[feeding[0]]

    def _stream_query(self, name: str) -> Query:
        """The query a pump reading stream ``name`` takes its rows from."""
        feeding = [p for p, s in self.pumps.items() if s == name]
        if len(feeding) != 1:
            raise sql_error(
                f"a pump reads {name!r}, which {'no pump fills' if not feeding else f'{len(feeding)} pumps fill'}; "
                "reading a stream needs exactly one pump inserting into it",
                *self._pump_place(self._building[-1]))
        return self._pump_query(feeding[0])

    def _pump_query(self, name: str) -> Query:
        if name not in self._queries:
            pump = next(p for p in self._program["pumps"] if p["name"] == name)
            self._queries[name] = None  # type: ignore[assignment]  # marks it in progress
            self._building.append(name)
            self._queries[name] = self._builder.query(pump["query"])
            self._building.pop()
        elif self._queries[name] is None:
            raise sql_error(f"pump {name!r} reads its own output (through the streams it reads)",
                            *self._pump_place(name))
        return self._queries[name]

    def _pump_place(self, name: str) -> tuple[int, int, str]:
        """Where pump ``name`` is created in the text (its CREATE, or its INSERT), for errors
        about the pump as a whole."""
        found = re.search(r'\bCREATE\s+(?:OR\s+REPLACE\s+)?PUMP\s+"?' + re.escape(name) + r'(?![\w$])',
                          self.text, re.IGNORECASE)
        if found is None:  # an INSERT INTO without a pump: its first line
            pump = next(p for p in self._program["pumps"] if p["name"] == name)
            at = self.text.find(pump["query"]["text"].split("\n", 1)[0])
            if at < 0:
                return 0, 0, self.text
        else:
            at = found.start()
        return self.text.count("\n", 0, at) + 1, at - (self.text.rfind("\n", 0, at) + 1) + 1, self.text

    # -- running ------------------------------------------------------------------------
    def _ordered(self) -> list[tuple[str, Query]]:
        return [(p, self._queries[p]) for p in self.pumps]

    def run(self, progress: bool | None = None, checkpoint: Any = None,
            checkpoint_every: Any = None) -> ApplicationRun:
        """Runs every pump to the end of the input (one read) and returns each stream's rows
        and each pump's run. ``checkpoint=`` saves the run there and resumes it after a crash
        (as :meth:`rillet.Query.run`; docs/durability.md)."""
        pumps = self._ordered()
        runs = _run(*[q for _, q in pumps], progress=progress, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every)
        by_pump = {name: r for (name, _), r in zip(pumps, runs)}
        return ApplicationRun(self._gather(by_pump), by_pump)

    def _gather(self, by_pump: dict[str, Any]) -> dict[str, pl.DataFrame]:
        """Each stream's rows: its pumps' outputs. A stream several pumps fill has their rows
        in ROWTIME order, as a Kinesis in-application stream (at the same ROWTIME, in the
        order the pumps are written; each pump's rows keep their own order)."""
        outputs: dict[str, list[pl.DataFrame]] = {}
        for pump, into in self.pumps.items():
            outputs.setdefault(into, []).append(by_pump[pump].output)
        streams: dict[str, pl.DataFrame] = {}
        for into, outs in outputs.items():
            filled = [o for o in outs if o.width]
            if len(filled) > 1:
                rows = pl.concat(filled, how="diagonal_relaxed")
                streams[into] = rows.sort("ROWTIME", maintain_order=True) if "ROWTIME" in rows.columns else rows
            else:
                streams[into] = filled[0] if filled else outs[0]
        for decl in self._program["streams"]:  # a declared stream no pump fills: no rows
            if decl["name"] not in streams:
                schema: dict[str, pl.DataType] = {"ROWTIME": pl.Datetime("us", "UTC")}
                for column, sql_type in decl["columns"]:
                    schema[column] = sql_dtype(sql_type) or pl.String()
                streams[decl["name"]] = pl.DataFrame(schema=schema)
        return streams

    def start(self, progress: bool | None = False, checkpoint: Any = None,
              checkpoint_every: Any = None) -> ApplicationHandle:
        """Runs every pump in a background thread (for live inputs); the handle's ``streams``
        show each stream's rows so far, ``stop()`` ends the run (with ``checkpoint=``, saving
        it so the next start goes on: see :meth:`rillet.Query.start`)."""
        pumps = self._ordered()
        handles = _start(*[q for _, q in pumps], progress=progress, checkpoint=checkpoint,
                         checkpoint_every=checkpoint_every)
        return ApplicationHandle(self, {name: h for (name, _), h in zip(pumps, handles)})

    def explain(self) -> str:
        """Each pump's plan (see :meth:`rillet.Query.explain`)."""
        return "\n\n".join(f"pump {name} -> {self.pumps[name]}:\n{q.explain()}" for name, q in self._ordered())

    def __repr__(self) -> str:
        return f"rl.Application(streams={self.streams}, pumps={self.pumps})"


class ApplicationHandle:
    """A running application: each pump's :class:`rillet.RunningQuery` (``pumps``), each
    stream's rows so far (``streams``), ``stop()`` and ``wait()``."""

    def __init__(self, app: Application, pumps: dict[str, RunningQuery]) -> None:
        self.app = app
        self.pumps = pumps

    @property
    def streams(self) -> dict[str, pl.DataFrame]:
        """Each in-application stream's rows so far."""
        return self.app._gather({name: h for name, h in self.pumps.items()})

    def stop(self) -> None:
        next(iter(self.pumps.values())).stop()

    def wait(self, timeout: float | None = None) -> ApplicationRun:
        """Waits for the end of the run; each stream's rows and each pump's run."""
        runs = {name: h.wait(timeout) for name, h in self.pumps.items()}
        return ApplicationRun(self.app._gather(runs), runs)
