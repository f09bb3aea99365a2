"""Small helpers shared by the tests of running queries."""
from __future__ import annotations

import contextlib
import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def until(predicate: Callable[[], object], timeout: float = 5.0) -> bool:
    """Polls ``predicate`` every 10 ms until it is true (True) or ``timeout`` seconds pass
    (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.M | re.S)


def fenced_examples(path: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, expected output or None) for each ```python block of a Markdown
    file; a ```text block right after a ```python block is its expected output."""
    text = path.read_text(encoding="utf-8")
    blocks = list(FENCE.finditer(text))
    examples = []
    for i, block in enumerate(blocks):
        if block.group(1) != "python":
            continue
        expected = None
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        if (following is not None and following.group(1) == "text"
                and not text[block.end():following.start()].strip()):
            expected = following.group(2)
        examples.append((text.count("\n", 0, block.start()) + 1, block.group(2), expected))
    return examples


def same_text(a: str) -> str:
    """Text compared line by line, trailing spaces and blank edges aside."""
    return "\n".join(line.rstrip() for line in a.strip("\n").splitlines())


def run_fenced_examples(path: Path, name: str) -> None:
    """Runs a Markdown file's ```python blocks in order in one namespace (polars' default
    table format, 120 characters wide), each checked against the ```text block after it."""
    import polars as pl

    namespace: dict = {"__name__": name}
    with pl.Config(restore_defaults=True, tbl_width_chars=120):
        for line, code, expected in fenced_examples(path):
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
            if expected is not None:
                assert same_text(printed.getvalue()) == same_text(expected), (
                    f"the example at {path.name}:{line} printed something else than the file "
                    f"shows:\n{printed.getvalue()}"
                )


def bench_module(name: str) -> Any:
    """``bench/<name>.py`` imported as a module (its helpers, such as the rank AUC, are used
    by tests too)."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
