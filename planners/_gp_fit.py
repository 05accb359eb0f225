"""Fitting GPs fast as data grow: hyperparameters refitted at checkpoints, reused between.

A full maximum-likelihood fit of a GP's hyperparameters costs ``O(n^3)`` per L-BFGS step
and dominated the planner's ask time beyond a few hundred observations. Between two
*checkpoints* the planner reuses the hyperparameters fitted at the last one and only
conditions the GP on the new data (one Cholesky factorization). Checkpoints are a
pure function of the number of training rows (``c -> c + max(1, ceil(growth * c))``:
every row up to ten, then every 10 % more data by default), and a checkpoint fit uses
the first ``c`` rows only (at most ``fit_subset`` of them, a subset drawn with a seed
derived from the planner's seed and ``c``). So the model, and hence the proposal, is
still a pure function of (seed, data): a planner rebuilt from its state refits the
last checkpoint once and proposes exactly what the original would have. The fit's
objective and gradient come from :mod:`sdl.planners._fast_mll` where it applies.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood

from ._fast_mll import fast_mll_closure

__all__ = ["HyperparameterCache", "checkpoint"]


def checkpoint(n: int, growth: float) -> int:
    """The largest checkpoint ``<= n`` of the sequence ``0, 1, 2, ..., c + max(1, ceil(growth c))``."""
    if growth <= 0:
        return n
    c = 0
    while True:
        step = max(1, math.ceil(growth * c))
        if c + step > n:
            return c
        c += step


def _fingerprint(X: torch.Tensor, y: torch.Tensor) -> str:
    h = hashlib.sha1(X.detach().cpu().double().numpy().tobytes())
    h.update(y.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()


def build_gp(X: torch.Tensor, y: torch.Tensor, cat_cols: list[int]) -> Model:
    """An unfitted GP on ``X`` (``n x d``) and ``y`` (``n x 1``), outcomes standardized."""
    if cat_cols:
        return MixedSingleTaskGP(X, y, cat_dims=cat_cols, outcome_transform=Standardize(m=1))
    return SingleTaskGP(X, y, outcome_transform=Standardize(m=1))


def _hyperparameters(model: Model) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not k.startswith("outcome_transform.")
    }


class HyperparameterCache:
    """Fitted hyperparameters per model role (``"objective:yield"``, ``"feasibility"``...).

    Args:
        growth: relative data growth between checkpoint fits (0: refit on every ask).
        fit_subset: most rows a checkpoint fit uses.
        seed: seed of the subsets and of the fits' random restarts.
    """

    def __init__(self, growth: float = 0.1, fit_subset: int = 1000, seed: int = 0) -> None:
        self.growth = float(growth)
        self.fit_subset = int(fit_subset)
        self.seed = int(seed)
        self._entries: dict[str, tuple[int, str, dict[str, torch.Tensor]]] = {}
        #: number of full fits done (for benchmarks and tests)
        self.n_fits = 0

    def clear(self) -> None:
        self._entries.clear()

    def fit(self, role: str, X: torch.Tensor, y: torch.Tensor, cat_cols: list[int]) -> Model:
        """A GP on all of ``X, y`` with the hyperparameters of the last checkpoint."""
        n = X.shape[0]
        c = max(1, checkpoint(n, self.growth))
        fp = _fingerprint(X[:c], y[:c])
        entry = self._entries.get(role)
        model = build_gp(X, y, cat_cols)
        if entry is not None and entry[0] == c and entry[1] == fp:
            model.load_state_dict(entry[2], strict=False)
        else:
            hyper = self._fit_prefix(role, X[:c], y[:c], cat_cols, c)
            self._entries[role] = (c, fp, hyper)
            model.load_state_dict(hyper, strict=False)
        model.eval()
        return model

    def _fit_prefix(
        self, role: str, X: torch.Tensor, y: torch.Tensor, cat_cols: list[int], c: int
    ) -> dict[str, torch.Tensor]:
        seed = int(
            np.random.SeedSequence([self.seed, c, *role.encode()]).generate_state(1)[0] % 2**31
        )
        if X.shape[0] > self.fit_subset:
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(X.shape[0], self.fit_subset, replace=False))
            index = torch.as_tensor(idx, device=X.device)
            X, y = X[index], y[index]
        devices = [X.device.index or 0] if X.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            model = build_gp(X, y, cat_cols)
            mll = ExactMarginalLogLikelihood(model.likelihood, model)
            fit_gpytorch_mll(mll, closure=fast_mll_closure(mll))
        self.n_fits += 1
        return _hyperparameters(model)


def hyperparameters_of(model: Model) -> dict[str, Any]:
    """Hyperparameters of a fitted GP (for tests and diagnostics)."""
    return _hyperparameters(model)
