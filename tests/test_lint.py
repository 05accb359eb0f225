"""The code passes the project's ruff rules and formatting (configured in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ["sdl", "devices", "planners", "protocols", "benchmarks", "examples", "tests"]


def _ruff(*args):
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, *FOLDERS], cwd=ROOT, capture_output=True, text=True
    )


def test_ruff_check():
    proc = _ruff("check", "--output-format", "concise")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format():
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
