"""The hyperparameter fit's objective from one Cholesky factor (planners/_fast_mll.py) is
GPyTorch's exact marginal log likelihood: the same values and gradients, the same fitted
hyperparameters; models it does not handle, and factorizations that fail, get BoTorch's
own closure."""

from __future__ import annotations

import gpytorch
import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.models.transforms.outcome import Standardize
from botorch.optim.closures.core import ForwardBackwardClosure
from botorch.optim.closures.model_closures import get_loss_closure
from botorch.optim.utils import get_parameters_and_bounds
from gpytorch.mlls import ExactMarginalLogLikelihood

from sdl.planners import _fast_mll, _gp_fit
from sdl.planners._fast_mll import fast_mll_closure
from sdl.planners._gp_fit import HyperparameterCache


def _data(n: int, seed: int = 0, d: int = 6):
    from botorch.test_functions import Hartmann

    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.uniform(size=(n, d)))
    if n > 4:
        X[n // 2] = X[0]  # an exact repeat
    y = Hartmann(dim=6)(X[:, :6]) if d == 6 else X.sum(-1)
    return X, (y + 0.05 * torch.as_tensor(rng.standard_normal(n))).unsqueeze(-1)


def _mll(X, y, **kwargs):
    model = SingleTaskGP(X, y, outcome_transform=Standardize(m=1), **kwargs)
    return ExactMarginalLogLikelihood(model.likelihood, model)


def _botorch_closure(mll):
    parameters = {n: p for n, p in get_parameters_and_bounds(mll)[0].items() if p.requires_grad}
    return ForwardBackwardClosure(get_loss_closure(mll), parameters)


@pytest.mark.parametrize("n", [3, 40, 300])
def test_values_and_gradients_are_gpytorchs(n):
    X, y = _data(n, seed=n)
    mll = _mll(X, y)
    ours = fast_mll_closure(mll)
    assert ours is not None
    theirs = _botorch_closure(mll)
    bounds = get_parameters_and_bounds(mll)[1]
    rng = np.random.default_rng(n)
    for _ in range(3):  # away from the starting point, where the check was made
        with torch.no_grad():
            for name, p in theirs.parameters.items():
                step = torch.as_tensor(rng.normal(scale=0.5, size=tuple(p.shape)))
                if name in bounds:  # positive: lengthscales, noise
                    p.mul_(step.exp()).clamp_(min=2 * float(bounds[name][0]))
                else:
                    p.add_(step)
        their_value, their_grads = theirs()
        their_grads = [g.clone() for g in their_grads]
        our_value, our_grads = ours()
        torch.testing.assert_close(our_value, their_value, rtol=1e-10, atol=1e-12)
        for mine, other in zip(our_grads, their_grads, strict=True):
            torch.testing.assert_close(mine, other, rtol=1e-8, atol=1e-10)


def test_a_checkpoint_fit_reaches_the_hyperparameters_gpytorch_reaches(monkeypatch):
    X, y = _data(120, seed=3)
    used = []

    def spy(mll):
        closure = fast_mll_closure(mll)
        used.append(closure is not None)
        return closure

    monkeypatch.setattr(_gp_fit, "fast_mll_closure", spy)
    ours = HyperparameterCache(0.1, 300, seed=3).fit("objective:y", X, y, [])
    monkeypatch.setattr(_gp_fit, "fast_mll_closure", lambda mll: None)
    theirs = HyperparameterCache(0.1, 300, seed=3).fit("objective:y", X, y, [])
    assert used == [True]
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value, rtol=1e-5, atol=1e-7)


def test_models_it_does_not_compute_get_botorchs_closure():
    X, y = _data(30, seed=1)
    assert fast_mll_closure(_mll(X, y, input_transform=Normalize(d=6))) is None
    mixed = MixedSingleTaskGP(
        torch.cat([X, (X[:, :1] > 0.5).double()], -1), y, cat_dims=[6],
        outcome_transform=Standardize(m=1),
    )  # fmt: skip
    assert fast_mll_closure(ExactMarginalLogLikelihood(mixed.likelihood, mixed)) is None
    with gpytorch.settings.max_cholesky_size(20):  # GPyTorch would not factorize either
        assert fast_mll_closure(_mll(X, y)) is None
    assert fast_mll_closure(_mll(X, y)) is not None


def test_a_failed_factorization_is_evaluated_as_gpytorch_does(monkeypatch):
    # A matrix that is not positive definite in floating point cannot be built from this
    # model's constrained noise, so the failure is injected: the one mock of this file.
    X, y = _data(40, seed=2)
    mll = _mll(X, y)
    ours = fast_mll_closure(mll)
    their_value, _ = _botorch_closure(mll)()
    monkeypatch.setattr(_fast_mll, "_cholesky", lambda K: None)
    our_value, our_grads = ours()
    torch.testing.assert_close(our_value, their_value, rtol=1e-12, atol=0)
    assert all(torch.isfinite(g).all() for g in our_grads)
    fit_gpytorch_mll(mll, closure=ours)  # the whole fit on GPyTorch's path still converges
    assert torch.isfinite(mll.model.covar_module.lengthscale).all()
