"""The planner benchmark runs end to end (``--quick``: 1 seed, budget 8, small BoTorch)."""

from __future__ import annotations

import math

import pytest


@pytest.mark.filterwarnings("ignore")
def test_quick_benchmark_runs_through_campaigns(tmp_path, capsys):
    from benchmarks.planners import main

    table = main(["--quick", "--problems", "hartmann6", "branincurrin", "--out", str(tmp_path)])
    assert set(table) == {
        ("hartmann6", "botorch"),
        ("hartmann6", "skopt"),
        ("hartmann6", "sobol"),
        ("branincurrin", "botorch"),
        ("branincurrin", "sobol"),
    }
    for scores, latency, _finals in table.values():
        assert math.isfinite(scores[8]) and latency >= 0
    assert (tmp_path / "planners.csv").stat().st_size > 0
    assert (tmp_path / "planners.png").stat().st_size > 0
    assert "÷sobol" in capsys.readouterr().out
