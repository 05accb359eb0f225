"""Noisy EI from cached solves (planners/_fast_nei.py) is BoTorch's noisy EI: the same
values and gradients, with pending points, for one and several candidates; models it does
not handle get BoTorch's own path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Normalize
from botorch.sampling import SobolQMCNormalSampler

from sdl.planners import BoTorchPlanner, Objective, Real, Space, _botorch
from sdl.planners._fast_nei import FastLogNEI
from sdl.planners._gp_fit import HyperparameterCache


def _gp(n: int, seed: int = 0):
    from botorch.test_functions import Hartmann

    rng = np.random.default_rng(seed)
    X = torch.as_tensor(rng.uniform(size=(n, 6)))
    y = Hartmann(dim=6)(X) + 0.05 * torch.as_tensor(rng.standard_normal(n))
    return HyperparameterCache(0.1, 300, seed).fit("objective:y", X, -y.reshape(-1, 1), []), X


def _pair(model, X, pending):
    def make(cls):
        return cls(
            model, X_baseline=X[:30], X_pending=pending, prune_baseline=False,
            sampler=SobolQMCNormalSampler(torch.Size([256]), seed=0),
        )  # fmt: skip

    return make(qLogNoisyExpectedImprovement), make(FastLogNEI)


@pytest.mark.parametrize("q", [1, 3])
def test_values_and_gradients_are_botorchs(q):
    model, X = _gp(120)
    pending = torch.rand(5, 6, dtype=X.dtype, generator=torch.Generator().manual_seed(3))
    reference, fast = _pair(model, X, pending)
    assert fast._cached is not None  # the premise: the cached path is the one taken
    cand = torch.rand(8, q, 6, dtype=X.dtype, generator=torch.Generator().manual_seed(10 + q))
    a = cand.clone().requires_grad_(True)
    b = cand.clone().requires_grad_(True)
    va, vb = reference(a), fast(b)
    va.sum().backward()
    vb.sum().backward()
    assert torch.allclose(va, vb, rtol=1e-9, atol=1e-9)
    assert torch.allclose(a.grad, b.grad, rtol=1e-6, atol=1e-9)
    assert float(va.detach().std()) > 1e-3  # distinct candidates, distinct values: not a constant


def test_pending_points_set_later_are_used_too():
    model, X = _gp(80, seed=1)
    reference, fast = _pair(model, X, None)
    pending = X[40:44] + 0.01
    reference.set_X_pending(pending)
    fast.set_X_pending(pending)
    assert fast._cached is not None and fast.X_baseline.shape[0] == 34
    cand = torch.rand(6, 1, 6, dtype=X.dtype, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(reference(cand), fast(cand), rtol=1e-9, atol=1e-9)


def test_a_model_it_does_not_handle_gets_botorchs_path():
    model, X = _gp(60)
    y = model.train_targets.reshape(-1, 1)
    other = SingleTaskGP(X, y, input_transform=Normalize(d=6))
    other.eval()
    reference, fast = _pair(other, X, None)
    assert fast._cached is None
    cand = torch.rand(4, 1, 6, dtype=X.dtype, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(reference(cand), fast(cand), rtol=1e-9, atol=1e-9)


def test_the_planner_uses_it_for_noisy_ei(monkeypatch):
    built = []
    original = _botorch.FastLogNEI

    def spy(*args, **kwargs):
        acqf = original(*args, **kwargs)
        built.append(acqf)
        return acqf

    monkeypatch.setattr(_botorch, "FastLogNEI", spy)
    space = Space([Real("a", 0.0, 1.0), Real("b", 0.0, 1.0)])
    planner = BoTorchPlanner(space, [Objective("y")], seed=0, num_restarts=2, raw_samples=32)
    rng = np.random.default_rng(0)
    points = [{"a": float(a), "b": float(b)} for a, b in rng.uniform(size=(8, 2))]
    planner.tell(points, [{"y": -((p["a"] - 0.3) ** 2) - (p["b"] - 0.6) ** 2} for p in points])
    (point,) = planner.ask(1, pending=[{"a": 0.5, "b": 0.5}])
    assert built and built[0]._cached is not None
    assert 0.0 <= point["a"] <= 1.0
