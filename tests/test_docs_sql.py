"""docs/sql.md's examples run, in order in one namespace, and print what the page shows
(issue 15: every example of the SQL page is executed by the tests)."""
from __future__ import annotations

from pathlib import Path

from helpers import fenced_examples, run_fenced_examples

PAGE = Path(__file__).resolve().parents[1] / "docs" / "sql.md"


def test_sql_page_examples_run_and_print_what_the_page_shows():
    assert len(fenced_examples(PAGE)) >= 8, "docs/sql.md lost its examples"
    run_fenced_examples(PAGE, "__docs_sql__")
