"""Behaviour every built-in planner shares: proposals in the space, seeding, state."""

from __future__ import annotations

import json

import pytest

from sdl.planners import Categorical, Integer, Real

PLANNERS = ["sobol", "skopt", "botorch"]


def _in_space(space, points):
    for point in points:
        space.validate(point)
        for p in space.parameters:
            value = point[p.name]
            if isinstance(p, Integer):
                assert type(value) is int
            elif isinstance(p, Categorical):
                assert value in p.choices
            elif isinstance(p, Real):
                assert type(value) is float and p.low <= value <= p.high


def _run(planner, yield_of, rounds, n=3):
    """Ask/tell ``rounds`` batches of ``n``; returns every proposal."""
    proposed = []
    for _ in range(rounds):
        points = planner.ask(n)
        proposed += points
        planner.tell(points, [yield_of(p) for p in points])
    return proposed


@pytest.mark.parametrize("name", PLANNERS)
def test_proposals_lie_in_the_space(name, fast_planner, mixed_space, objective, yield_of):
    planner = fast_planner(name, mixed_space, objective, seed=3, **_small_design(name))
    proposed = _run(planner, yield_of, rounds=2)  # the initial design, then the model
    _in_space(mixed_space, proposed)
    assert len(planner.observations) == 6


@pytest.mark.parametrize("name", PLANNERS)
def test_same_seed_same_proposals_other_seed_other(
    name, fast_planner, mixed_space, objective, yield_of
):
    def run(seed, rounds):
        planner = fast_planner(name, mixed_space, objective, seed=seed, **_small_design(name))
        return _run(planner, yield_of, rounds=rounds)

    first = run(1, rounds=2)  # the initial design, then the model
    assert run(1, rounds=2) == first
    assert run(2, rounds=1) != first[:3]


@pytest.mark.parametrize("name", PLANNERS)
def test_state_dict_round_trip_proposes_the_same(
    name, fast_planner, mixed_space, objective, yield_of
):
    planner = fast_planner(name, mixed_space, objective, seed=5, **_small_design(name))
    _run(planner, yield_of, rounds=1)
    state = json.loads(json.dumps(planner.state_dict()))  # must survive JSON

    rebuilt = fast_planner(name, mixed_space, objective, seed=0, **_small_design(name))
    rebuilt.load_state_dict(state)
    assert rebuilt.n_asks == planner.n_asks == 1
    assert rebuilt.observations == planner.observations
    assert rebuilt.ask(2) == planner.ask(2)


@pytest.mark.parametrize("name", PLANNERS)
def test_pending_points_are_not_proposed_again(
    name, fast_planner, mixed_space, objective, yield_of
):
    planner = fast_planner(name, mixed_space, objective, seed=2, **_small_design(name))
    _run(planner, yield_of, rounds=1)
    first = planner.ask(2)
    second = planner.ask(2, pending=first)
    assert not any(p in first for p in second)


def _small_design(name):
    """Initial-design sizes that reach the model after the first batch of three."""
    return {"sobol": {}, "skopt": {"n_initial_points": 3}, "botorch": {"n_initial": 3}}[name]
