"""Issue 3 capabilities: constraints, fixed parameters, failures, pending, warm start, state."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sdl.errors import ConfigError
from sdl.planners import (
    BoTorchPlanner,
    Categorical,
    LinearConstraint,
    Objective,
    OutcomeConstraint,
    Real,
    SkoptPlanner,
    SobolPlanner,
    Space,
    hypervolume,
    pareto_front,
)

FAST = {"num_restarts": 2, "raw_samples": 64, "maxiter": 50}
MIXTURE = Space([Real("a", 0, 1), Real("b", 0, 1), Real("c", 0, 1), Real("T", 20.0, 80.0)])


def _mixture_yield(p):
    return {"y": -((p["a"] - 0.6) ** 2) - (p["b"] - 0.3) ** 2 - ((p["T"] - 50) / 60) ** 2}


# -- parsing ------------------------------------------------------------------------------


def test_constraint_strings_parse():
    c = LinearConstraint.parse("2*a - b + 0.5 c <= 1 + 0.5")
    assert c.coefficients == {"a": 2.0, "b": -1.0, "c": 0.5} and c.op == "<=" and c.bound == 1.5
    assert LinearConstraint.parse("a + b + c == 1") == LinearConstraint(
        {"a": 1, "b": 1, "c": 1}, "==", 1
    )
    assert OutcomeConstraint.parse("viscosity < 50") == OutcomeConstraint("viscosity", "<=", 50.0)
    with pytest.raises(ConfigError, match="linear Real"):
        SobolPlanner(
            Space([Real("x", 1e-3, 1, log=True), Real("y", 0, 1)]),
            [Objective("f")],
            input_constraints=["x + y <= 1"],
        )
    with pytest.raises(ConfigError, match="not a parameter"):
        SobolPlanner(MIXTURE, [Objective("f")], input_constraints=["a + q <= 1"])


def test_unsupported_capabilities_name_the_planner_that_has_them():
    with pytest.raises(ConfigError, match="BoTorchPlanner"):
        SkoptPlanner(MIXTURE, [Objective("y")], input_constraints=["a + b + c == 1"])
    with pytest.raises(ConfigError, match="BoTorchPlanner"):
        SobolPlanner(MIXTURE, [Objective("y")], outcome_constraints=["viscosity <= 50"])
    with pytest.raises(ConfigError, match="BoTorchPlanner"):
        SkoptPlanner(MIXTURE, [Objective("y")]).ask(1, fixed={"T": 30.0})


# -- input constraints --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["botorch", "sobol"])
def test_every_proposal_sums_to_one_including_the_initial_design(name):
    kwargs = {"input_constraints": ["a + b + c == 1", "2*a - b <= 1.5"], "seed": 1}
    if name == "botorch":
        planner = BoTorchPlanner(
            MIXTURE, [Objective("y", "maximize")], n_initial=4, **kwargs, **FAST
        )
    else:
        planner = SobolPlanner(MIXTURE, [Objective("y", "maximize")], **kwargs)
    proposed = []
    for _ in range(4):  # the design (2 asks), then the model (2 asks)
        points = planner.ask(2)
        proposed += points
        planner.tell(points, [_mixture_yield(p) for p in points])
    for p in proposed:
        assert abs(p["a"] + p["b"] + p["c"] - 1.0) <= 1e-6
        assert 2 * p["a"] - p["b"] <= 1.5 + 1e-6
        MIXTURE.validate(p)
    assert len({tuple(p.values()) for p in proposed}) == len(proposed)


# -- fixed parameters ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["botorch", "sobol"])
def test_fixed_parameters_are_honoured(name):
    space = Space([Real("x", 0, 1), Real("oven_temp", 100.0, 250.0), Categorical("s", ("w", "e"))])
    cls = BoTorchPlanner if name == "botorch" else SobolPlanner
    options = {"n_initial": 3, **FAST} if name == "botorch" else {}
    planner = cls(space, [Objective("y")], seed=0, **options)
    for _ in range(3):
        points = planner.ask(2, fixed={"oven_temp": 180.0, "s": "e"})
        assert all(p["oven_temp"] == 180.0 and p["s"] == "e" for p in points)
        planner.tell(points, [{"y": (p["x"] - 0.3) ** 2} for p in points])
    with pytest.raises(ConfigError, match="outside"):
        planner.ask(1, fixed={"oven_temp": 400.0})


# -- failures -----------------------------------------------------------------------------


def test_no_proposal_lands_where_every_experiment_failed(plane):
    """y grows with x, but every experiment with x > 0.6 fails (e.g. the sample boils).

    A "failed region" is the 0.15-neighbourhood of a failed experiment holding no
    successful one; after 6 rounds (12 experiments) no proposal may land in one.
    """

    def in_failed_region(point, observations):
        def near(o):
            return math.dist((o.point["x"], o.point["z"]), (point["x"], point["z"])) < 0.15

        close = [o for o in observations if near(o)]
        return bool(close) and all(o.failed for o in close)

    def run(planner):
        bad = 0
        for i in range(10):
            points = planner.ask(2)
            if i >= 6:
                bad += sum(in_failed_region(p, planner.observations) for p in points)
            planner.tell(
                points,
                [{"y": p["x"] + 0.2 * p["z"] if p["x"] <= 0.6 else math.nan} for p in points],
            )
        return bad

    planner = BoTorchPlanner(plane, [Objective("y", "maximize")], seed=0, n_initial=4, **FAST)
    assert run(planner) == 0
    assert sum(o.failed for o in planner.observations) <= 8
    # without the feasibility model the planner chases the trend into the failed region
    blind = BoTorchPlanner(
        plane, [Objective("y", "maximize")], seed=0, n_initial=4, feasibility=False, **FAST
    )
    assert run(blind) >= 2


# -- outcome constraints ------------------------------------------------------------------


def test_outcome_constraint_is_respected_after_learning(plane):
    """Maximize x + z subject to viscosity = 100 * x <= 50: the optimum is x = 0.5, z = 1."""

    def measure(p):
        return {"y": p["x"] + p["z"], "viscosity": 100 * p["x"], "unrelated": 1.0}

    def run(planner):
        late = []
        for i in range(8):
            points = planner.ask(2)
            if i >= 5:
                late += points
            planner.tell(points, [measure(p) for p in points])
        return late

    planner = BoTorchPlanner(
        plane,
        [Objective("y", "maximize")],
        seed=0,
        n_initial=4,
        outcome_constraints=["viscosity <= 50"],
        **FAST,
    )
    late = run(planner)
    assert planner.observations[0].measured == {
        "viscosity": pytest.approx(100 * planner.observations[0].point["x"])
    }
    assert all(100 * p["x"] <= 55 for p in late), late
    free = BoTorchPlanner(plane, [Objective("y", "maximize")], seed=0, n_initial=4, **FAST)
    assert sum(100 * p["x"] > 55 for p in run(free)) >= 3


# -- multi-objective ----------------------------------------------------------------------


def test_pareto_front_and_hypervolume():
    objs = [Objective("cost", "minimize"), Objective("yield", "maximize")]
    data = [
        ({"x": 0}, {"cost": 1.0, "yield": 1.0}),
        ({"x": 1}, {"cost": 2.0, "yield": 3.0}),
        ({"x": 2}, {"cost": 2.5, "yield": 2.0}),  # dominated by x=1
        ({"x": 3}, {"cost": math.nan, "yield": 9.0}),  # failed
    ]
    front = pareto_front(data, objs)
    assert [p["x"] for p, _ in front] == [0, 1]
    assert hypervolume([o for _, o in data], objs, {"cost": 3.0, "yield": 0.0}) == pytest.approx(
        2 * 1 + 1 * 2
    )


def test_multi_objective_with_thresholds_and_pending(plane):
    objs = [Objective("f1", "minimize", threshold=2.0), Objective("f2", "maximize", threshold=-1.0)]
    planner = BoTorchPlanner(plane, objs, seed=0, n_initial=4, **FAST)
    points = planner.ask(4)
    planner.tell(points, [{"f1": p["x"] + p["z"], "f2": p["x"] - p["z"] ** 2} for p in points])
    twin = BoTorchPlanner(plane, objs, seed=0, n_initial=4, **FAST)
    twin.load_state_dict(planner.state_dict())
    assert twin._ref_point(torch_tensor([[0.0, 0.0]])) == [-2.0, -1.0]
    alone = planner.ask(1)
    assert twin.ask(1, pending=[alone[0], {"x": 0.9, "z": 0.1}]) != alone
    assert len(pareto_front(planner)) >= 1


def torch_tensor(rows):
    import torch

    return torch.tensor(rows, dtype=torch.float64)


# -- warm start and state -----------------------------------------------------------------


def _prior_frame():
    import pandas as pd

    rng = np.random.default_rng(0)
    x, z = rng.uniform(size=8), rng.uniform(size=8)
    return pd.DataFrame(
        {
            "x": x,
            "z": z,
            "loss": (x - 0.3) ** 2 + (z - 0.7) ** 2,
            "status": ["done"] * 7 + ["failed"],
            "cause": [""] * 7 + ["boom"],
        }
    )


def test_warm_start_changes_the_first_proposals(plane, tmp_path):
    objs = [Objective("loss")]
    cold = BoTorchPlanner(plane, objs, seed=0, n_initial=4, **FAST)
    warm = BoTorchPlanner(plane, objs, seed=0, n_initial=4, **FAST)
    assert warm.warm_start(_prior_frame()) == 8
    assert len(warm.observations) == 0 and len(warm.warm_start_observations) == 8
    assert warm.warm_start_observations[-1].failed
    assert warm.ask(2) != cold.ask(2)
    # a CSV path works the same; a row outside the space is named
    path = tmp_path / "prior.csv"
    frame = _prior_frame()
    frame.to_csv(path, index=False)
    other = SobolPlanner(plane, objs)
    assert other.warm_start(path) == 8
    frame.loc[3, "x"] = 1.5
    with pytest.raises(ConfigError, match="row 3"):
        SobolPlanner(plane, objs).warm_start(frame)


def test_state_dict_keeps_warm_start_and_constraints():
    objs = [Objective("y", "maximize")]
    options = dict(
        seed=4,
        n_initial=3,
        input_constraints=["a + b + c == 1"],
        outcome_constraints=["viscosity <= 0.5"],
        **FAST,
    )
    planner = BoTorchPlanner(MIXTURE, objs, **options)
    prior = [
        ({"a": 0.2, "b": 0.3, "c": 0.5, "T": 40.0}, {"y": 0.1, "viscosity": 0.2}),
        ({"a": 0.6, "b": 0.2, "c": 0.2, "T": 60.0}, {"y": 0.5, "viscosity": 0.6}),
    ]
    planner.warm_start(prior)
    points = planner.ask(2)
    planner.tell(points, [{**_mixture_yield(p), "viscosity": p["a"]} for p in points])
    state = json.loads(json.dumps(planner.state_dict()))
    rebuilt = BoTorchPlanner(MIXTURE, objs, n_initial=3, **FAST)  # constraints: from the state
    rebuilt.load_state_dict(state)
    assert rebuilt.input_constraints == planner.input_constraints
    assert rebuilt.outcome_constraints == planner.outcome_constraints
    assert rebuilt.warm_start_observations == planner.warm_start_observations
    assert rebuilt.ask(2) == planner.ask(2)
