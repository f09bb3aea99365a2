"""Showing queries, runs and running queries: in Jupyter as HTML that refreshes itself while a
query runs, elsewhere as text."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def in_notebook() -> bool:
    """True inside a Jupyter kernel (an IPython shell with a kernel attached)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def live(running: Callable[[], bool], render: Callable[[], Any], every: float = 1.0) -> Any:
    """Displays ``render()`` in the notebook and re-renders it in place every ``every``
    seconds from a daemon thread while ``running()`` is true, then once more when it ends,
    so the last view shows the final state. Returns the IPython display handle.

    ``render`` returns anything IPython can display (an object with ``_repr_html_``, a
    plotly figure, ...). It is called from the refresh thread, so it must take its own locks.
    """
    from IPython.display import display

    handle = display(render(), display_id=True)

    def refresh() -> None:
        while running():
            time.sleep(every)
            handle.update(render())
        handle.update(render())

    threading.Thread(target=refresh, name="rillet live view", daemon=True).start()
    return handle
