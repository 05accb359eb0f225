"""Bayesian optimization with BoTorch: Gaussian-process models and (log) noisy EI / EHVI.

Importing this module imports torch and BoTorch (seconds); :mod:`sdl.planners` imports it
only when :class:`BoTorchPlanner` is first used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from gpytorch.mlls import ExactMarginalLogLikelihood

from sdl.errors import ConfigError

from ._base import Planner
from ._objective import Objective
from ._sobol import near_any, sobol_points
from ._space import Categorical, Integer, Space

__all__ = ["BoTorchPlanner"]

_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32}


class BoTorchPlanner(Planner):
    """Gaussian-process Bayesian optimization with BoTorch.

    Until ``n_initial`` experiments have succeeded the planner proposes the seeded Sobol
    design of :class:`~sdl.planners.SobolPlanner`. After that, each ask fits a GP to the
    successful observations (inputs in the unit cube, outcomes standardized) and
    maximizes an acquisition function over a batch of ``n`` points:

    * one objective: :class:`~botorch.models.SingleTaskGP` and
      ``qLogNoisyExpectedImprovement``;
    * several objectives: one GP per objective in a :class:`~botorch.models.ModelListGP`
      and ``qLogNoisyExpectedHypervolumeImprovement``. The reference point is
      ``threshold`` of each objective where set, else the worst observed value less
      10 % of the observed range;
    * categorical parameters: :class:`~botorch.models.MixedSingleTaskGP` on the choice
      index, and, with integer or categorical parameters,
      ``optimize_acqf_mixed_alternating`` searches the discrete values directly.

    Pending points enter the acquisition function as ``X_pending``. Failed experiments
    (NaN outcomes) are left out of the model; a candidate within 1e-6 (unit cube) of a
    failed or pending point, or of another point of the batch, is replaced by a Sobol
    point (in a small discrete space where every point has been measured, a repeat of a
    successful point). All randomness is drawn from torch's generator seeded with the per-ask seed
    inside ``torch.random.fork_rng()``, so the global torch random state is untouched
    and proposals are reproducible from the planner's state.

    Args:
        space: the parameters to optimize.
        objectives: one or more objectives.
        seed: seed of the initial design and of every ask.
        n_initial: number of successful experiments before the model is used (default
            ``2 * (d + 1)`` for ``d`` parameters).
        num_restarts: starting points of the acquisition optimization.
        raw_samples: random points scored to pick the starting points.
        maxiter: L-BFGS-B iterations per restart; in spaces with integer or categorical
            parameters, also the cap on alternating discrete/continuous rounds
            (at most 64).
        device: torch device of the computation, ``"cpu"`` or ``"cuda"``
            (``"cuda:1"``, ...).
        dtype: ``"float64"`` (default; GPs need it) or ``"float32"``.

    Raises:
        ConfigError: for an invalid option or an unavailable device.
    """

    name = "botorch"

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        *,
        seed: int | None = 0,
        n_initial: int | None = None,
        num_restarts: int = 10,
        raw_samples: int = 512,
        maxiter: int = 200,
        device: str = "cpu",
        dtype: str = "float64",
    ) -> None:
        super().__init__(space, objectives, seed=seed)
        self.n_initial = 2 * (self.space.dim + 1) if n_initial is None else int(n_initial)
        self.num_restarts = int(num_restarts)
        self.raw_samples = int(raw_samples)
        self.maxiter = int(maxiter)
        for option in ("n_initial", "num_restarts", "raw_samples", "maxiter"):
            if getattr(self, option) < 1:
                raise ConfigError(
                    f"BoTorchPlanner option {option} must be at least 1, "
                    f"got {getattr(self, option)}"
                )
        if dtype not in _DTYPES:
            raise ConfigError(
                f"BoTorchPlanner option dtype must be one of {sorted(_DTYPES)}, got {dtype!r}"
            )
        self.dtype = dtype
        try:
            self._device = torch.device(device)
        except RuntimeError as err:
            raise ConfigError(f"BoTorchPlanner option device: {err}") from None
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"BoTorchPlanner option device={device!r}, but torch finds no CUDA GPU "
                "(torch.cuda.is_available() is False): use device='cpu'"
            )
        self.device = device

    # -- proposing ----------------------------------------------------------------------

    def _propose(self, n: int, pending: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        space = self.space
        observed = [o.point for o in self._observations]
        ok = np.array([not o.failed for o in self._observations], dtype=bool)
        U_obs = space.to_unit(observed) if observed else np.empty((0, space.dim))
        U_pending = space.to_unit(pending) if pending else np.empty((0, space.dim))
        skip = len(observed) + len(pending)
        if ok.sum() < self.n_initial:
            U = sobol_points(
                space,
                n,
                seed=self.seed,
                skip=skip,
                exclude=np.vstack([U_obs, U_pending]),
                avoid=np.vstack([U_obs[~ok], U_pending]),
            )
            return space.from_unit(U)

        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(seed)
            candidates = self._optimize(n, observed, ok, pending)

        # never re-propose a failed or pending point, nor one point twice in a batch
        U = space.to_unit(space.from_index(candidates))
        avoid = np.vstack([U_obs[~ok], U_pending])
        keep: list[int] = []
        for i, row in enumerate(U):
            if not (near_any(row, avoid) or near_any(row, U[keep])):
                keep.append(i)
        if len(keep) < n:
            fill = sobol_points(
                space,
                n - len(keep),
                seed=self.seed,
                skip=skip,
                exclude=np.vstack([U_obs, U_pending, U[keep]]),
                avoid=np.vstack([avoid, U[keep]]),
            )
            U = np.vstack([U[keep], fill])
        return space.from_unit(U)

    def _rng_devices(self) -> list[int]:
        if self._device.type != "cuda":
            return []
        return [self._device.index if self._device.index is not None else 0]

    @property
    def _tkwargs(self) -> dict[str, Any]:
        return {"device": self._device, "dtype": _DTYPES[self.dtype]}

    def _encode(self, points: Sequence[dict[str, Any]]) -> torch.Tensor:
        """Points -> ``n x d`` tensor: unit cube, categorical columns as choice index."""
        X = self.space.to_index(list(points)) if points else np.empty((0, self.space.dim))
        return torch.as_tensor(X, **self._tkwargs)

    def _optimize(
        self,
        n: int,
        observed: list[dict[str, Any]],
        ok: np.ndarray,
        pending: list[dict[str, Any]],
    ) -> np.ndarray:
        """Fit the model(s) and maximize the acquisition; ``n x d`` index-encoded rows."""
        X = self._encode([p for p, good in zip(observed, ok) if good])
        _, Y_all, _ = self._training_data()
        Y = torch.as_tensor(Y_all[ok], **self._tkwargs)
        X_pending = self._encode(pending) if pending else None
        models = [self._fit_gp(X, Y[:, j : j + 1]) for j in range(Y.shape[-1])]

        if len(models) == 1:
            acqf = qLogNoisyExpectedImprovement(
                models[0], X_baseline=X, X_pending=X_pending, prune_baseline=True
            )
        else:
            acqf = qLogNoisyExpectedHypervolumeImprovement(
                ModelListGP(*models),
                ref_point=self._ref_point(Y),
                X_baseline=X,
                X_pending=X_pending,
                prune_baseline=True,
            )

        bounds = torch.zeros(2, self.space.dim, **self._tkwargs)
        bounds[1] = 1.0
        discrete_dims: dict[int, list[float]] = {}
        cat_dims: dict[int, list[float]] = {}
        for j, p in enumerate(self.space.parameters):
            if isinstance(p, Integer):
                span = p.high - p.low
                discrete_dims[j] = [i / span for i in range(span + 1)]
            elif isinstance(p, Categorical):
                cat_dims[j] = [float(i) for i in range(len(p.choices))]
                bounds[1, j] = len(p.choices) - 1

        if discrete_dims or cat_dims:
            candidates, _ = optimize_acqf_mixed_alternating(
                acqf,
                bounds=bounds,
                discrete_dims=discrete_dims,
                cat_dims=cat_dims,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"maxiter_alternating": min(self.maxiter, 64)},
            )
        else:
            candidates, _ = optimize_acqf(
                acqf,
                bounds=bounds,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"maxiter": self.maxiter},
            )
        return candidates.detach().cpu().double().numpy()

    def _fit_gp(self, X: torch.Tensor, y: torch.Tensor) -> Model:
        """A GP fitted to ``X`` (``n x d``) and one outcome column ``y`` (``n x 1``)."""
        cat_cols = self.space.categorical_columns
        if cat_cols:
            model: Model = MixedSingleTaskGP(
                X, y, cat_dims=cat_cols, outcome_transform=Standardize(m=1)
            )
        else:
            model = SingleTaskGP(X, y, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    def _ref_point(self, Y: torch.Tensor) -> list[float]:
        """Reference point (maximization sense) for the hypervolume, one value per objective."""
        ref = []
        for j, objective in enumerate(self.objectives):
            if objective.threshold is not None:
                ref.append(objective.sign * float(objective.threshold))
                continue
            lo, hi = float(Y[:, j].min()), float(Y[:, j].max())
            span = hi - lo if hi > lo else max(abs(lo), 1.0)
            ref.append(lo - 0.1 * span)
        return ref
