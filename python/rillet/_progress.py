"""A progress bar for long replays (tqdm, notebook-aware), showing event-time position."""
from __future__ import annotations

import warnings
from typing import Any


class Progress:
    """Rows processed, event-time position, watermark and late rows.

    ``enabled=None`` shows the bar only once a replay has run for over a second.
    """

    def __init__(self, enabled: bool | None, total: int | None, desc: str = "rillet") -> None:
        self._bar: Any = None
        if enabled is False:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=" rows",
                unit_scale=True,
                delay=0 if enabled else 1.0,
                leave=bool(enabled),
                dynamic_ncols=True,
            )

    def update(self, rows: int, event_time: object, watermark: object, late: int) -> None:
        if self._bar is None:
            return
        self._bar.update(rows)
        self._bar.set_postfix_str(f"event time {event_time} | watermark {watermark} | late {late}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
