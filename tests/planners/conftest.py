"""Shared fixtures of the planner tests: spaces, objectives and fast planner options."""

from __future__ import annotations

import pytest

from sdl.planners import Categorical, Integer, Objective, Real, Space, make_planner

#: options that keep BoTorch fast on a 2-core CI machine (real runs use the defaults)
FAST_BOTORCH = {"num_restarts": 2, "raw_samples": 64, "maxiter": 25}


@pytest.fixture
def mixed_space() -> Space:
    """One parameter of every kind: linear and log reals, an integer and a categorical."""
    return Space(
        [
            Real("temperature", 20.0, 80.0),
            Real("concentration", 1e-3, 1.0, log=True),
            Integer("cycles", 1, 4),
            Categorical("solvent", ("water", "ethanol", "toluene")),
        ]
    )


@pytest.fixture
def plane() -> Space:
    """The unit square, two real parameters."""
    return Space([Real("x", 0.0, 1.0), Real("z", 0.0, 1.0)])


@pytest.fixture
def objective() -> list[Objective]:
    return [Objective("yield_pct", goal="maximize")]


@pytest.fixture
def fast_planner():
    """``fast_planner(name, space, objectives, seed=0, **options)``: a planner with
    small acquisition-optimization settings, so tests stay fast."""

    def build(name, space, objectives, seed=0, **options):
        if name == "botorch":
            options = {**FAST_BOTORCH, **options}
        return make_planner(name, space, objectives, seed=seed, **options)

    return build


def mixed_yield(point: dict) -> dict:
    """A smooth made-up yield (%) over ``mixed_space``, best near 50 degC, 0.1 M, ethanol."""
    import math

    bonus = {"water": 0.0, "ethanol": 10.0, "toluene": 4.0}[point["solvent"]]
    value = (
        80.0
        - 0.02 * (point["temperature"] - 50.0) ** 2
        - 5.0 * (math.log10(point["concentration"]) + 1.0) ** 2
        - 2.0 * (point["cycles"] - 3) ** 2
        + bonus
    )
    return {"yield_pct": value}


@pytest.fixture
def yield_of():
    return mixed_yield
