"""SobolPlanner: one scrambled Sobol sequence per campaign, continued ask after ask."""

from __future__ import annotations

from collections import Counter

import numpy as np

from sdl.planners import Categorical, Integer, Objective, SobolPlanner, Space


def _tell_zero(planner, points):
    planner.tell(points, [{"yield_pct": 0.0}] * len(points))


def test_consecutive_asks_continue_one_sequence(plane, objective):
    stepwise = SobolPlanner(plane, objective, seed=7)
    first = stepwise.ask(4)
    _tell_zero(stepwise, first)
    second = stepwise.ask(4)

    at_once = SobolPlanner(plane, objective, seed=7).ask(8)
    assert first + second == at_once


def test_pending_points_count_as_proposed(plane, objective):
    planner = SobolPlanner(plane, objective, seed=7)
    first = planner.ask(3)
    second = planner.ask(5, pending=first)
    assert first + second == SobolPlanner(plane, objective, seed=7).ask(8)


def test_every_level_gets_an_equal_share(objective):
    space = Space([Integer("cycles", 0, 3), Categorical("solvent", ("water", "ethanol"))])
    points = SobolPlanner(space, objective, seed=1).ask(8)
    assert Counter(p["cycles"] for p in points) == {0: 2, 1: 2, 2: 2, 3: 2}
    assert Counter(p["solvent"] for p in points) == {"water": 4, "ethanol": 4}


def test_a_small_discrete_space_is_covered_before_any_repeat(objective):
    space = Space([Integer("cycles", 1, 3), Categorical("solvent", ("water", "ethanol"))])
    planner = SobolPlanner(space, objective, seed=4)
    first = planner.ask(4)
    _tell_zero(planner, first)
    rest = planner.ask(2)
    combos = {(p["cycles"], p["solvent"]) for p in first + rest}
    assert len(combos) == 6


def test_global_random_state_is_untouched(plane, objective):
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    SobolPlanner(plane, objective, seed=3).ask(5)
    assert np.random.random() == expected


def test_different_seeds_scramble_differently(plane):
    objective = [Objective("loss")]
    assert SobolPlanner(plane, objective, seed=1).ask(2) != SobolPlanner(
        plane, objective, seed=2
    ).ask(2)


def test_an_exhausted_space_repeats_successes_not_failures(objective):
    space = Space([Integer("cycles", 0, 1), Categorical("solvent", ("water", "ethanol"))])
    planner = SobolPlanner(space, objective, seed=0)
    done = [{"cycles": 0, "solvent": "water"}, {"cycles": 1, "solvent": "water"}]
    planner.tell(done + [{"cycles": 0, "solvent": "ethanol"}], [{"yield_pct": 1.0}] * 2 + [{}])
    pending = [{"cycles": 1, "solvent": "ethanol"}]
    for proposal in planner.ask(2, pending=pending):
        assert proposal in done
