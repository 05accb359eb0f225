"""Noisy EI whose every evaluation costs one candidate's posterior, not the baseline's too.

BoTorch's ``qLogNoisyExpectedImprovement`` (with its cached root) computes, at every
evaluation, the GP posterior over the baseline *and* the candidates, ``cat(X_baseline,
X)``, to get the candidates' covariance with the baseline (BoTorch's own TODO, GPyTorch
issue 567). With a few dozen incumbents and pending points in the baseline that is ~45
rows of ``k(X, train) @ K^-1`` per candidate, redone at each of the ~100 evaluations of
an ask. Here the training data's solves against the baseline are made once per
acquisition function; an evaluation solves for the ``q`` candidates only and forms the
same joint posterior from cached pieces. The samples are BoTorch's own (its sampler, its
low-rank Cholesky update, its base samples); only where the posterior comes from changes.

It applies to what the planner fits for one objective without constraints: a
``SingleTaskGP`` without input transform, with ``Standardize`` or no outcome transform, a
Gaussian likelihood. The cached posterior is checked against the model's own at
construction (random points in the box): if any mean or covariance differs by more than
1e-6 relative, or the model is another kind, every evaluation is BoTorch's unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.posteriors.gpytorch import GPyTorchPosterior
from botorch.utils.transforms import match_batch_shape
from gpytorch.distributions import MultivariateNormal
from gpytorch.likelihoods import GaussianLikelihood
from linear_operator.operators import DenseLinearOperator
from linear_operator.utils.cholesky import psd_safe_cholesky

__all__ = ["FastLogNEI", "CachedPosterior"]

log = logging.getLogger(__name__)

#: Largest relative difference from the model's own posterior at the self-check.
CHECK_RTOL = 1e-6


class CachedPosterior:
    """The exact GP posterior of a fitted ``SingleTaskGP``'s latent function, from one
    Cholesky of its training covariance; :meth:`joint` gives candidates' mean and
    covariance, and their covariance with a fixed set of points solved for once."""

    def __init__(self, model: SingleTaskGP) -> None:
        self.model = model
        (train_X,) = model.train_inputs
        with torch.no_grad():
            y = model.train_targets
            noise = model.likelihood.noise.expand(y.shape[-1])
            K = self._k(train_X, train_X) + torch.diag_embed(noise)
            self.L = psd_safe_cholesky(K)
            resid = (y - model.mean_module(train_X)).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(resid, self.L).squeeze(-1)
        self.train_X = train_X
        transform = getattr(model, "outcome_transform", None)
        if transform is None:
            self.scale, self.shift = 1.0, 0.0
        else:
            self.scale = transform.stdvs.squeeze()
            self.shift = transform.means.squeeze()
        self._fixed: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def of(cls, model: Any) -> CachedPosterior | None:
        """One for ``model``, or ``None`` when it is not a kind handled here."""
        if type(model) is not SingleTaskGP or model.training:
            return None
        if getattr(model, "input_transform", None) is not None:
            return None
        transform = getattr(model, "outcome_transform", None)
        if transform is not None and type(transform) is not Standardize:
            return None
        if type(model.likelihood) is not GaussianLikelihood or model.train_targets.dim() != 1:
            return None
        return cls(model)

    def _k(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.model.covar_module(a, b).to_dense()

    def fix(self, B: torch.Tensor) -> None:
        """Solve for the points ``B`` (``r x d``) once: later :meth:`joint` calls use it."""
        with torch.no_grad():
            V = torch.linalg.solve_triangular(self.L, self._k(self.train_X, B), upper=False)
            mean = self.model.mean_module(B) + self._k(B, self.train_X) @ self.alpha
            cov = self._k(B, B) - V.transpose(-2, -1) @ V
        self._fixed = (B, V, mean * self.scale + self.shift, cov * self.scale**2)

    def joint(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (``b x (r+q)``) and covariance (``b x (r+q) x (r+q)``) of the latent
        function, in the outcome's units, over ``cat(B, X)`` for candidates ``X``
        (``b x q x d``) and the points ``B`` given to :meth:`fix`."""
        B, V_B, mean_B, cov_BB = self._fixed
        batch, (q, d) = X.shape[:-2], X.shape[-2:]
        flat = X.reshape(-1, d)  # one right-hand side per candidate: L is never copied
        k_TX = self._k(self.train_X, flat)  # n x bq
        V_X = torch.linalg.solve_triangular(self.L, k_TX, upper=False)
        mean_X = (self.model.mean_module(flat) + k_TX.transpose(-2, -1) @ self.alpha).reshape(
            *batch, q
        )
        cov_XB = (self._k(flat, B) - V_X.transpose(-2, -1) @ V_B).reshape(*batch, q, -1)
        V_X = V_X.transpose(-2, -1).reshape(*batch, q, -1)  # b x q x n
        cov_XX = self._k(X, X) - V_X @ V_X.transpose(-2, -1)
        s2 = self.scale**2
        mean_X = mean_X * self.scale + self.shift
        cov_XX, cov_XB = cov_XX * s2, cov_XB * s2
        top = torch.cat([cov_BB.expand(*batch, *cov_BB.shape), cov_XB.transpose(-2, -1)], -1)
        bottom = torch.cat([cov_XB, cov_XX], -1)
        mean = torch.cat([mean_B.expand(*batch, mean_B.shape[-1]), mean_X], -1)
        return mean, torch.cat([top, bottom], -2)

    def agrees(self, X: torch.Tensor) -> bool:
        """Whether :meth:`joint` matches the model's own posterior over ``cat(B, X)``."""
        with torch.no_grad():
            mean, cov = self.joint(X)
            full = torch.cat([match_batch_shape(self._fixed[0], X), X], dim=-2)
            post = self.model.posterior(full)
            ref_mean = post.mean.squeeze(-1)
            ref_cov = post.distribution.covariance_matrix
        scale = float(ref_cov.diagonal(dim1=-2, dim2=-1).abs().max()) + 1e-12
        mean_err = float((mean - ref_mean).abs().max()) / (float(ref_mean.abs().max()) + 1e-12)
        cov_err = float((cov - ref_cov).abs().max()) / scale
        return max(mean_err, cov_err) <= CHECK_RTOL


class FastLogNEI(qLogNoisyExpectedImprovement):
    """``qLogNoisyExpectedImprovement`` with its joint posterior formed from cached
    solves (module docstring); the same arguments, the same values."""

    def _init_baseline(self, model, X_baseline, *args: Any, **kwargs: Any) -> None:
        super()._init_baseline(model, X_baseline, *args, **kwargs)
        before = getattr(self, "_cached", None)  # set_X_pending comes here again
        self._cached = None
        if not self._cache_root or self.X_baseline.dim() != 2:
            return
        cached = before if before is not None and before.model is model else None
        cached = cached or CachedPosterior.of(model)
        if cached is None:
            return
        cached.fix(self.X_baseline)
        generator = torch.Generator().manual_seed(0)  # on the CPU, whatever the device
        probe = torch.rand(2, 2, self.X_baseline.shape[-1], generator=generator)
        probe = probe.to(self.X_baseline)
        if cached.agrees(probe):
            self._cached = cached
        else:
            log.debug("cached posterior disagrees with the model's: BoTorch's path is used")

    def _get_samples_and_objectives(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._cached is None:
            return super()._get_samples_and_objectives(X)
        q = X.shape[-2]
        mean, cov = self._cached.joint(X)
        posterior = GPyTorchPosterior(MultivariateNormal(mean, DenseLinearOperator(cov)))
        self._set_sampler(q_in=q, posterior=posterior)
        samples = self._get_f_X_samples(posterior=posterior, q_in=q)
        return samples, self.objective(samples, X=X)
