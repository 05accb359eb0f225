"""BoTorchPlanner: GP models, noisy (hypervolume) expected improvement, seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdl.errors import ConfigError
from sdl.planners import BoTorchPlanner, Integer, Objective, SobolPlanner, Space

FAST = {"num_restarts": 2, "raw_samples": 64, "maxiter": 25}


def _quadratic_loss(point, rng):
    """Noisy 2-D quadratic, minimum 0 at (0.3, 0.7); noise sd 0.01."""
    true = (point["x"] - 0.3) ** 2 + (point["z"] - 0.7) ** 2
    return true, true + 0.01 * rng.standard_normal()


def _best_true_loss(planner, budget, seed):
    rng = np.random.default_rng(seed)
    best = math.inf
    while len(planner.observations) < budget:
        points = planner.ask(1)
        losses = [_quadratic_loss(p, rng) for p in points]
        planner.tell(points, [{"loss": noisy} for _, noisy in losses])
        best = min(best, *(true for true, _ in losses))
    return best


def test_beats_sobol_on_a_noisy_quadratic(plane):
    objective = [Objective("loss", "minimize")]
    bo, sobol = [], []
    for seed in (0, 1):
        bo.append(_best_true_loss(BoTorchPlanner(plane, objective, seed=seed, **FAST), 15, seed))
        sobol.append(_best_true_loss(SobolPlanner(plane, objective, seed=seed), 15, seed))
    assert np.mean(bo) < np.mean(sobol)
    assert max(bo) < 0.01  # within 0.1 of the optimum


def _planner_after_design(plane, seed=0):
    planner = BoTorchPlanner(plane, [Objective("loss")], seed=seed, n_initial=4, **FAST)
    rng = np.random.default_rng(seed)
    points = planner.ask(4)
    planner.tell(points, [{"loss": _quadratic_loss(p, rng)[1]} for p in points])
    return planner


def test_pending_points_change_the_proposal(plane):
    planner = _planner_after_design(plane)
    twin = BoTorchPlanner(plane, [Objective("loss")], **FAST)
    twin.load_state_dict(planner.state_dict())

    alone = planner.ask(1)
    pending = [{"x": 0.3, "z": 0.7}, alone[0]]
    assert twin.ask(1, pending=pending) != alone


def test_the_initial_design_is_the_sobol_sequence_until_enough_successes(plane):
    bo = BoTorchPlanner(plane, [Objective("loss")], seed=3, n_initial=3, **FAST)
    sobol = SobolPlanner(plane, [Objective("loss")], seed=3)
    for planner in (bo, sobol):
        points = planner.ask(3)
        planner.tell(points, [{"loss": 1.0}, {"loss": math.nan}, {"loss": 2.0}])
    # one of three failed: still the design, continuing the same sequence
    assert bo.ask(2) == sobol.ask(2)


def test_pending_points_count_towards_the_design_once_three_succeeded(plane):
    """A lab with many experiments in flight: once three succeeded, the model proposes
    as soon as successes + pending reach n_initial; before three, the design goes on."""
    rng = np.random.default_rng(0)

    def told(n):
        bo = BoTorchPlanner(plane, [Objective("loss")], seed=3, n_initial=6, **FAST)
        sobol = SobolPlanner(plane, [Objective("loss")], seed=3)
        points = bo.ask(n)
        assert points == sobol.ask(n)
        outcomes = [{"loss": _quadratic_loss(p, rng)[1]} for p in points]
        bo.tell(points, outcomes)
        sobol.tell(points, outcomes)
        return bo, sobol

    pending = [{"x": 0.11, "z": 0.52}, {"x": 0.83, "z": 0.27}, {"x": 0.45, "z": 0.91}]
    # 3 successes + 3 pending = 6: the model
    bo, sobol = told(3)
    assert bo.ask(1, pending=pending) != sobol.ask(1, pending=pending)
    # 2 successes + 4 pending: still the design (a model of two points is not trusted)
    bo, sobol = told(2)
    more = [*pending, {"x": 0.6, "z": 0.6}]
    assert bo.ask(1, pending=more) == sobol.ask(1, pending=more)
    # sequential (nothing pending): the design until n_initial successes, as before
    bo, sobol = told(3)
    assert bo.ask(1) == sobol.ask(1)


def test_failed_points_are_never_proposed_again():
    space = Space([Integer("cycles", 0, 4)])
    objective = [Objective("yield_pct", "maximize")]
    points = [{"cycles": c} for c in range(5)]
    values = [10.0, 50.0, 90.0, 50.0, 10.0]
    failed = [v if c != 2 else math.nan for c, v in enumerate(values)]

    # premise: with cycles=2 observed as the best, the model proposes it again
    healthy = BoTorchPlanner(space, objective, seed=0, n_initial=3, **FAST)
    healthy.tell(points, [{"yield_pct": v} for v in values])
    assert {"cycles": 2} in healthy.ask(1)

    for seed in (0, 1):
        planner = BoTorchPlanner(space, objective, seed=seed, n_initial=3, **FAST)
        planner.tell(points, [{"yield_pct": v} for v in failed])
        for _ in range(2):
            assert {"cycles": 2} not in planner.ask(2)


def test_several_objectives(plane):
    objectives = [Objective("cost", "minimize", threshold=1.0), Objective("yield_pct", "maximize")]
    planner = BoTorchPlanner(plane, objectives, seed=0, n_initial=4, **FAST)
    for _ in range(2):
        points = planner.ask(2)
        for p in points:
            plane.validate(p)
        planner.tell(points, [{"cost": p["x"] ** 2, "yield_pct": p["z"] - p["x"]} for p in points])
    assert len(planner.ask(2)) == 2


def test_the_global_torch_random_state_is_untouched(plane):
    planner = _planner_after_design(plane)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    planner.ask(1)
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"num_restarts": 0}, "num_restarts"),
        ({"n_initial": 0}, "n_initial"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "no-such-device"}, "device"),
    ],
)
def test_invalid_options_are_refused(plane, options, match):
    with pytest.raises(ConfigError, match=match):
        BoTorchPlanner(plane, [Objective("loss")], **options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_says_so(plane):
    with pytest.raises(ConfigError, match="device='cpu'"):
        BoTorchPlanner(plane, [Objective("loss")], device="cuda")


def test_an_exhausted_space_repeats_successes_not_failures():
    space = Space([Integer("cycles", 0, 1), Integer("stirrers", 0, 1)])
    planner = BoTorchPlanner(space, [Objective("loss")], seed=0, n_initial=2, **FAST)
    points = [
        {"cycles": 0, "stirrers": 0},
        {"cycles": 1, "stirrers": 1},
        {"cycles": 0, "stirrers": 1},
    ]
    planner.tell(points, [{"loss": 1.0}, {"loss": math.nan}, {"loss": 2.0}])
    pending = [{"cycles": 1, "stirrers": 0}]
    for proposal in planner.ask(3, pending=pending):
        assert proposal in (points[0], points[2])
