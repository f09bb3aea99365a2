"""Small helpers shared by the tests of running queries."""
from __future__ import annotations

import time
from collections.abc import Callable


def until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Polls ``predicate`` every 10 ms until it is true (True) or ``timeout`` seconds pass
    (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
