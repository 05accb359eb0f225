"""The three built-in planners pass the planner conformance suite."""

from __future__ import annotations

import pytest

from sdl.planners import Real, Space, make_planner
from sdl.testing import PlannerTests


class TestSobol(PlannerTests):
    @pytest.fixture
    def planner_factory(self):
        return lambda space, objectives, seed: make_planner("sobol", space, objectives, seed=seed)


class TestSkopt(PlannerTests):
    batch = 2

    @pytest.fixture
    def planner_factory(self):
        return lambda space, objectives, seed: make_planner(
            "skopt", space, objectives, seed=seed, n_initial_points=3
        )


class TestBoTorch(PlannerTests):
    """On two real parameters with tiny acquisition settings: the suite checks the
    contract, not the optimizer (tests/planners covers mixed spaces), and a 2-core CI
    machine cannot afford BoTorch's mixed-space optimization in every check."""

    batch = 2

    @pytest.fixture
    def space(self):
        return Space([Real("temperature", 20.0, 80.0), Real("concentration", 1e-3, 1.0, log=True)])

    @pytest.fixture
    def outcome(self):
        return lambda p: {"y": -((p["temperature"] - 50.0) ** 2) - p["concentration"]}

    @pytest.fixture
    def planner_factory(self):
        fast = {"num_restarts": 1, "raw_samples": 16, "maxiter": 10, "n_initial": 2}
        return lambda space, objectives, seed: make_planner(
            "botorch", space, objectives, seed=seed, **fast
        )
