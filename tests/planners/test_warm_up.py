"""``Planner.warm_up``: the first calls done ahead on a copy, nothing of the planner changed.

How much time it saves is measured in benchmarks/lab_warm_up.py (docs/lab.md), not here.
"""

from __future__ import annotations

import numpy as np
import torch

from sdl.planners import BoTorchPlanner, Objective, Real


def _planner(seed: int = 4) -> BoTorchPlanner:
    space = [Real("x", 0.0, 1.0), Real("y", 0.0, 1.0)]
    planner = BoTorchPlanner(
        space, [Objective("f", goal="maximize")], seed=seed,
        num_restarts=2, raw_samples=32, maxiter=10,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    points = [{"x": float(a), "y": float(b)} for a, b in rng.random((7, 2))]
    planner.tell(points, [{"f": float(-((p["x"] - 0.3) ** 2) - p["y"])} for p in points])
    return planner


def test_warm_up_changes_nothing_the_planner_knows_proposes_or_draws():
    cold, warm = _planner(), _planner()
    torch_state, numpy_state = torch.get_rng_state().clone(), np.random.get_state()[1].copy()
    warm.warm_up()
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert (np.random.get_state()[1] == numpy_state).all()
    assert warm.n_asks == cold.n_asks == 0
    assert warm.observations == cold.observations
    pending = [{"x": 0.5, "y": 0.5}]
    assert warm.ask(2, pending=pending) == cold.ask(2, pending=pending)
    assert warm.state_dict() == cold.state_dict()


def test_warm_up_exercises_the_model_based_ask_on_a_copy():
    """The copy asks past its initial design (the work the warm-up is for)."""
    planner = _planner()
    seen = []
    inner = BoTorchPlanner._optimize

    def spy(self, *args, **kwargs):
        seen.append(self is planner)
        return inner(self, *args, **kwargs)

    BoTorchPlanner._optimize = spy
    try:
        planner.warm_up()
    finally:
        BoTorchPlanner._optimize = inner
    assert seen == [False]
