"""The wall clock, in one place so tests can replace it (``monkeypatch.setattr``)."""
from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the epoch, by the wall clock."""
    return time.time_ns() // 1_000_000


def now_us() -> int:
    """Microseconds since the epoch, by the wall clock."""
    return time.time_ns() // 1_000
