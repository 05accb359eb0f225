"""BoTorchPlanner's speed-ups (issue 12) change no result: exact cached variances, a
noisy-EI baseline that keeps every point BoTorch's own pruning keeps."""

from __future__ import annotations

import gpytorch
import numpy as np
import torch
from botorch.acquisition.utils import prune_inferior_points

from sdl.planners import BoTorchPlanner, Objective, Real, Space, _botorch
from sdl.planners._gp_fit import HyperparameterCache


def _hartmann_gp(n: int, seed: int = 0, noise: float = 0.05):
    from botorch.test_functions import Hartmann

    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.uniform(size=(n, 6)))
    y = Hartmann(dim=6)(X) + noise * torch.as_tensor(rng.standard_normal(n))
    model = HyperparameterCache(0.1, 300, seed).fit("objective:y", X, -y.reshape(-1, 1), [])
    return model, X


def test_cached_predictive_variances_are_exact():
    model, X = _hartmann_gp(200)
    test = torch.rand(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        K = model.covar_module(X).to_dense() + model.likelihood.noise * torch.eye(len(X))
        Ks = model.covar_module(test, X).to_dense()
        exact = model.covar_module(test).to_dense() - Ks @ torch.linalg.solve(K, Ks.T)
        exact = exact * model.outcome_transform.stdvs**2
        with gpytorch.settings.fast_pred_var():
            fast = model.posterior(test).mvn.covariance_matrix
    assert torch.allclose(fast, exact, rtol=0, atol=1e-9 * float(exact.diag().min()))


def test_plausible_incumbents_keep_what_botorch_pruning_keeps():
    for seed in (0, 1, 2):
        model, X = _hartmann_gp(150, seed=seed)
        kept = _botorch._plausible_incumbents(model, X)
        assert 1 <= len(kept) < len(X)
        with torch.no_grad():
            best = X[model.posterior(X).mean[..., 0].argmax()]
        assert (kept == best).all(dim=-1).any()
        torch.manual_seed(seed)
        pruned = prune_inferior_points(model, X)
        for row in pruned:
            assert (kept == row).all(dim=-1).any()


def test_plausible_incumbents_with_a_constraint_keep_what_botorch_pruning_keeps():
    """With a constraint model the incumbent is the best *feasible* point: the points
    BoTorch's constrained pruning keeps all survive, and the best observed point, made
    infeasible, does not hide the feasible ones below it."""
    from botorch.acquisition.objective import GenericMCObjective
    from botorch.models import ModelListGP

    reduced = 0
    for seed in (0, 1, 2):
        objective, X = _hartmann_gp(150, seed=seed)
        with torch.no_grad():
            mean = objective.posterior(X).mean[..., 0]
        # the constraint output is low (feasible, bound 0.5) everywhere but around the
        # best third of the points by objective mean
        top = mean >= mean.quantile(0.66)
        c = torch.where(top, 1.0, 0.0).to(X) + 0.01 * torch.randn(len(X), dtype=X.dtype)
        constraint = HyperparameterCache(0.1, 300, seed).fit("c", X, c.reshape(-1, 1), [])
        model = ModelListGP(objective, constraint)
        constraints = [_botorch._bound(1, 0.5, "<=")]
        kept = _botorch._plausible_incumbents(model, X, constraints)
        assert len(kept) >= 1
        if len(kept) < len(X):  # a constraint model sure enough of some point
            reduced += 1
            # a surely feasible point below the top third is kept: the top is infeasible
            assert not bool(top[[int((X == row).all(dim=-1).nonzero()) for row in kept]].all())
        torch.manual_seed(seed)
        pruned = prune_inferior_points(
            model,
            X,
            objective=GenericMCObjective(lambda Z, X=None: Z[..., 0]),
            constraints=constraints,
        )
        for row in pruned:
            assert (kept == row).all(dim=-1).any()
    assert reduced >= 2


def test_plausible_incumbents_without_a_surely_feasible_point_keep_all():
    from botorch.models import ModelListGP

    objective, X = _hartmann_gp(40)
    constraint = HyperparameterCache(0.1, 300, 0).fit(
        "c", X, torch.ones(len(X), 1, dtype=X.dtype) + 0.01 * torch.rand(len(X), 1), []
    )
    model = ModelListGP(objective, constraint)
    kept = _botorch._plausible_incumbents(model, X, [_botorch._bound(1, 0.5, "<=")])
    assert len(kept) == len(X)


def test_plausible_incumbents_are_capped(monkeypatch):
    model, X = _hartmann_gp(60, noise=2.0)  # noise swamps the signal: all are plausible
    monkeypatch.setattr(_botorch, "MAX_INCUMBENTS", 5)
    kept = _botorch._plausible_incumbents(model, X)
    assert len(kept) == 5
    with torch.no_grad():
        mean = model.posterior(X).mean[..., 0]
        lowest_kept = float(model.posterior(kept).mean[..., 0].min())
    assert lowest_kept >= float(mean.sort().values[-5]) - 1e-12


def test_defaults_are_the_faster_optimizer_budget():
    space = Space([Real("x", 0.0, 1.0), Real("z", 0.0, 1.0)])
    planner = BoTorchPlanner(space, [Objective("y")])
    assert (planner.raw_samples, planner.num_restarts, planner.maxiter) == (256, 10, 40)
    assert _botorch.FAST_PRED_VAR_FROM == 0


def _captured_options(monkeypatch, batch=1, **options):
    seen = []
    real = _botorch.optimize_acqf

    def spy(acq_function, **kwargs):
        seen.append(kwargs["options"])
        return real(acq_function, **kwargs)

    monkeypatch.setattr(_botorch, "optimize_acqf", spy)
    space = Space([Real("a", 0.0, 1.0), Real("b", 0.0, 1.0), Real("c", 0.0, 1.0)])
    planner = BoTorchPlanner(
        space,
        [Objective("y")],
        n_initial=4,
        num_restarts=2,
        raw_samples=32,
        maxiter=10,
        **options,
    )
    rng = np.random.default_rng(0)
    points = [dict(zip("abc", r / r.sum())) for r in rng.uniform(size=(6, 3))]
    planner.tell(points, [{"y": float(p["a"] - p["b"] ** 2)} for p in points])
    planner.ask(batch)
    return seen[0]


def test_starting_points_around_the_best(monkeypatch):
    # three parameters: off by default (below SAMPLE_AROUND_BEST_FROM), on when asked for
    assert _captured_options(monkeypatch)["sample_around_best"] is False
    on = _captured_options(monkeypatch, sample_around_best=True)
    assert on["sample_around_best"] is True
    monkeypatch.setattr(_botorch, "SAMPLE_AROUND_BEST_FROM", 3)
    assert _captured_options(monkeypatch)["sample_around_best"] is True
    # BoTorch refuses it with equality constraints: then it is off
    eq = _captured_options(monkeypatch, input_constraints=["a + b + c == 1"])
    assert eq["sample_around_best"] is False
    # nor for a batch: BoTorch would fill it with near-duplicates of the best points
    assert _captured_options(monkeypatch, batch=2)["sample_around_best"] is False


def test_starts_around_the_best_keep_proposals_reproducible():
    space = Space([Real(f"x{i}", 0.0, 1.0) for i in range(4)])
    options = {"n_initial": 4, "num_restarts": 2, "raw_samples": 32, "maxiter": 10}
    planner = BoTorchPlanner(space, [Objective("y")], seed=3, **options)
    assert planner.sample_around_best
    rng = np.random.default_rng(0)
    points = [dict(zip(space.names, r)) for r in rng.uniform(size=(8, 4))]
    planner.tell(points, [{"y": float(sum((v - 0.4) ** 2 for v in p.values()))} for p in points])
    twin = BoTorchPlanner(space, [Objective("y")], seed=3, **options)
    twin.load_state_dict(planner.state_dict())
    assert planner.ask(1) == twin.ask(1)
