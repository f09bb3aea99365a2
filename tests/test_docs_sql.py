"""docs/sql.md's examples run, in order in one namespace, and print what the page shows
(issue 15: every example of the SQL page is executed by the tests)."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import polars as pl
from helpers import fenced_examples, same_text

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sql.md"


def test_sql_page_examples_run_and_print_what_the_page_shows():
    examples = fenced_examples(PAGE)
    assert len(examples) >= 8, "docs/sql.md lost its examples"
    namespace: dict = {"__name__": "__docs_sql__"}
    with pl.Config(restore_defaults=True, tbl_width_chars=120):
        for line, code, expected in examples:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"docs/sql.md:{line}", "exec"), namespace)
            if expected is not None:
                assert same_text(printed.getvalue()) == same_text(expected), (
                    f"the example at docs/sql.md:{line} printed something else than the page "
                    f"shows:\n{printed.getvalue()}"
                )
