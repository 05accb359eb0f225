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


def test_a_kept_sequence_gives_the_rows_a_fresh_engine_skips_to():
    """SobolSequence (read from memory across asks) against scipy's engine fast-forwarded
    to each index, as every ask did before: the same rows, bit for bit."""
    import warnings

    from scipy.stats import qmc

    from planners._design import SobolSequence

    kept = SobolSequence(3, seed=11)
    for skip, n in [(0, 1), (5, 3), (1, 70), (200, 8), (64, 64), (3, 1)]:
        engine = qmc.Sobol(d=3, scramble=True, seed=np.random.default_rng(11))
        if skip:  # (scipy refuses fast_forward(0))
            engine.fast_forward(skip)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            expected = engine.random(n)
        assert np.array_equal(kept.rows(skip, n), expected), (skip, n)
    kept.rows(0, 4)[:] = -1.0  # a copy: the caller cannot damage the sequence
    assert (kept.rows(0, 4) >= 0).all()


def test_the_unit_rows_follow_every_change_of_the_observations(plane, objective):
    """_unit_observations converts each observation once; told, warm-start data added in
    front, a state loaded: its rows and failed flags are always those of everything."""

    def fresh(planner):
        everything = planner._all_observations()
        rows = planner.space.to_unit([o.point for o in everything])
        return rows.reshape(-1, planner.space.dim), [o.failed for o in everything]

    def check(planner):
        rows, failed = planner._unit_observations()
        want_rows, want_failed = fresh(planner)
        assert np.array_equal(rows, want_rows) and list(failed) == want_failed

    planner = SobolPlanner(plane, objective, seed=2)
    check(planner)  # nothing yet
    first = planner.ask(3)
    planner.tell(first, [{"yield_pct": 1.0}, {}, {"yield_pct": 2.0}])
    check(planner)
    planner.tell(planner.ask(2), [{"yield_pct": float("nan")}, {"yield_pct": 3.0}])
    check(planner)
    planner.warm_start([(first[0], {"yield_pct": 9.0})])  # in front of what was told
    check(planner)
    other = SobolPlanner(plane, objective, seed=5)
    other.tell(other.ask(4), [{"yield_pct": 0.5}] * 4)
    other._unit_observations()
    other.load_state_dict(planner.state_dict())  # the same number of rows, other points
    check(other)
    assert other.ask(2) == planner.ask(2)  # and it proposes what the original does
