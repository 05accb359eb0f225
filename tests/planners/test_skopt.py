"""SkoptPlanner: scikit-optimize's Optimizer behind the ask/tell interface."""

from __future__ import annotations

import math

import pytest

from sdl.errors import ConfigError, SdlError
from sdl.planners import Integer, Objective, Real, SkoptPlanner, Space


def test_several_objectives_are_refused_with_a_pointer_to_botorch(plane):
    with pytest.raises(ConfigError) as info:
        SkoptPlanner(plane, [Objective("yield_pct", "maximize"), Objective("cost")])
    assert "SkoptPlanner supports one objective; use BoTorchPlanner for several" in str(info.value)
    assert isinstance(info.value, SdlError) and isinstance(info.value, ValueError)


def test_invalid_initial_design_size_is_refused(plane, objective):
    with pytest.raises(ConfigError, match="n_initial_points"):
        SkoptPlanner(plane, objective, n_initial_points=0)


def test_log_scaled_reals_are_sampled_in_log_space(objective):
    space = Space([Real("concentration", 1e-4, 1.0, log=True)])
    points = SkoptPlanner(space, objective, seed=0, n_initial_points=8).ask(8)
    # uniform sampling would put a point below 1e-2 with probability 1 % each
    assert sum(p["concentration"] < 1e-2 for p in points) >= 3


@pytest.mark.parametrize("goal", ["maximize", "minimize"])
def test_the_goal_sets_the_direction(goal):
    space = Space([Real("x", 0.0, 1.0)])
    planner = SkoptPlanner(space, [Objective("f", goal)], seed=1, n_initial_points=4, acq_func="EI")
    model_proposals = []
    for round_ in range(7):
        points = planner.ask(1)
        if round_ >= 4:
            model_proposals += [p["x"] for p in points]
        planner.tell(points, [{"f": -((p["x"] - 0.8) ** 2)} for p in points])
    mean_x = sum(model_proposals) / len(model_proposals)
    # maximum at x = 0.8; the minimum of this function is at x = 0
    assert mean_x > 0.55 if goal == "maximize" else mean_x < 0.45


def test_failed_points_are_not_proposed_again(objective):
    space = Space([Integer("cycles", 0, 4)])
    planner = SkoptPlanner(space, objective, seed=0, n_initial_points=3)
    points = [{"cycles": c} for c in (0, 1, 2, 3, 4)]
    outcomes = [{"yield_pct": v} for v in (10.0, 50.0, math.nan, 50.0, 10.0)]
    planner.tell(points, outcomes)
    assert planner.observations[2].failed
    for _ in range(3):
        assert planner.ask(1) != [{"cycles": 2}]
