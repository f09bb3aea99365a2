"""The README's examples run and print what it shows; the command line and the demo work.

README code blocks run in order in one namespace, as a reader would paste them. When a
```python block is followed directly by a ```text block, that block is the expected output.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from helpers import fenced_examples, run_fenced_examples

import rillet as rl
from rillet.__main__ import main
from rillet.demo import INCIDENT_IP, generate, run_demo

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[tuple[int, str, str | None]]:
    """(line number, code, expected output or None) for each ```python block."""
    return fenced_examples(README)


def test_readme_examples_run_and_print_what_the_readme_shows():
    run_fenced_examples(README, "__readme__")


def test_readme_has_checked_examples():
    examples = readme_examples()
    assert len(examples) >= 3
    assert sum(expected is not None for _, _, expected in examples) >= 2


def test_readme_names_the_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "pip install . && rillet demo" in text
    assert "pip install -e '.[test]' && make test" in text


# ------------------------------------------------------------------------------ the command
def run_cli(*args: str, executable: list[str] | None = None, cwd: Path | None = None):
    cmd = (executable or [sys.executable, "-m", "rillet"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_python_m_rillet_demo(tmp_path):
    p = run_cli("demo", "--events", "20000", "--no-progress", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for key in (
        f"rillet {rl.__version__} demo: 20,000 CloudTrail-like events (seed 7)",
        "== calls and failures per service per minute",
        "== EC2 failures per minute",
        "== addresses with the most EC2 failures in 5 minutes",
        "== busiest APIs",
        "rows in 20,000: accepted",
        "late rows, kept in run.late:",
        "| watermark 2026-03-02 ",
        "done in",
    ):
        assert key in out, f"{key!r} missing from the demo's output:\n{out}"
    assert INCIDENT_IP in out
    assert "Traceback" not in p.stderr
    assert "rows/s" not in p.stderr  # --no-progress: no progress bar


def rillet_executable() -> str | None:
    beside = Path(sys.executable).with_name("rillet")
    if beside.exists():
        return str(beside)
    return shutil.which("rillet")


def test_rillet_help():
    exe = rillet_executable()
    if exe is None:
        pytest.skip("the rillet command is not installed on PATH")
    p = run_cli("--help", executable=[exe])
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: rillet")
    for key in ("streaming analytics", "demo", "--version", "rillet demo --events"):
        assert key in p.stdout
    p = run_cli("--version", executable=[exe])
    assert p.stdout.strip() == f"rillet {rl.__version__}"


def test_main_help_version_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "usage: rillet" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"rillet {rl.__version__}"
    with pytest.raises(SystemExit) as e:
        main(["demo", "--events", "0"])
    assert e.value.code == 2
    assert "--events" in capsys.readouterr().err
    assert main([]) == 0  # no command: the help
    assert "demo" in capsys.readouterr().out


def test_run_demo_writes_to_out_and_returns_the_runs():
    out = io.StringIO()
    runs = run_demo(events=5_000, seed=2, progress=False, out=out)
    assert set(runs) == {"calls_per_service", "ec2_failures", "ec2_failing_ips", "calls_per_api"}
    for run in runs.values():
        m = run.metrics
        assert m["rows_in"] == 5_000
        assert m["rows_accepted"] + m["rows_late"] + m["rows_rejected"] + m["rows_filtered"] == 5_000
    assert "== busiest APIs" in out.getvalue()


# ------------------------------------------------------------------------------ the generator
def test_generate_is_deterministic_and_has_late_rows():
    df = generate(events=50_000, seed=7)
    assert df.equals(generate(events=50_000, seed=7))
    assert not df.equals(generate(events=50_000, seed=8))
    assert df.schema == pl.Schema({
        "event_time": pl.Datetime("us", "UTC"),
        "event_source": pl.String,
        "event_name": pl.String,
        "aws_region": pl.String,
        "source_ip": pl.String,
        "user_arn": pl.String,
        "error_code": pl.String,
        "bytes": pl.Int64,
        "latency_ms": pl.Float64,
    })
    assert df.height == 50_000
    assert not df["event_time"].is_sorted()  # arrival order, not event-time order
    assert 0.02 < df["error_code"].is_not_null().mean() < 0.045
    incident = df.filter(pl.col("source_ip") == INCIDENT_IP)
    assert incident.height >= 400
    assert incident["error_code"].unique().to_list() == ["AccessDenied"]
    assert incident["event_name"].unique().to_list() == ["RunInstances"]

    run = (
        rl.stream(df, time="event_time", watermark="5s")
        .window(rl.tumbling("1m"), by="event_source", lateness="1m")
        .agg(rl.count())
        .run(progress=False)
    )
    assert run.late.height > 0
    assert run.rejected.height == 0
    assert run.output["count"].sum() + run.late.height == df.height


def test_generate_rejects_a_bad_size():
    with pytest.raises(ValueError, match="positive"):
        generate(events=0)
