"""Small helpers shared by the tests of running queries."""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path


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
