"""The exact marginal log likelihood of a GP, with its gradient from one Cholesky factor.

A checkpoint fit (:mod:`sdl.planners._gp_fit`) evaluates the negative exact marginal log
likelihood and its gradient some 30-70 times (L-BFGS). Through GPyTorch each evaluation
differentiates the Cholesky factorization itself with autograd: a backward pass of
``O(n^3)`` per evaluation on top of the factorization, about half of a fit's time at a
few hundred rows. The gradient with respect to the covariance matrix has a closed form,

    d log N(r; 0, K) / dK = (alpha alpha^T - K^-1) / 2,   alpha = K^-1 r,

so :class:`_GaussianLogLikelihood` computes it from the factor already computed (one
``cholesky_inverse``), and autograd carries it through the kernel and the noise, which are
cheap (``O(n^2 d)``). Priors are added as GPyTorch adds them.

:func:`fast_mll_closure` returns such a closure only where it computes GPyTorch's own
objective: a single-output :class:`~botorch.models.SingleTaskGP` without an input
transform, small enough for GPyTorch's Cholesky path, whose value and gradient at the
starting hyperparameters match BoTorch's closure to 1e-9 (relative); otherwise ``None``,
and the caller fits as BoTorch does. If a factorization fails during the fit (the matrix is
not positive definite in floating point), that evaluation is BoTorch's own, which adds
jitter as GPyTorch does.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gpytorch
import torch
from botorch.models import SingleTaskGP
from botorch.optim.closures.core import ForwardBackwardClosure
from botorch.optim.closures.model_closures import get_loss_closure
from botorch.optim.utils import get_parameters_and_bounds
from gpytorch.mlls import ExactMarginalLogLikelihood

__all__ = ["fast_mll_closure"]

#: relative tolerance of the check against BoTorch's closure
CHECK_RTOL = 1e-9


def _cholesky(K: torch.Tensor) -> torch.Tensor | None:
    """The lower Cholesky factor of ``K``, or ``None`` where the factorization fails."""
    L, info = torch.linalg.cholesky_ex(K)
    return None if info.item() else L


class _GaussianLogLikelihood(torch.autograd.Function):
    """``log N(r; 0, K)`` given ``K``, ``r`` and the Cholesky factor ``L`` of ``K``."""

    @staticmethod
    def forward(ctx, K: torch.Tensor, r: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        alpha = torch.cholesky_solve(r.unsqueeze(-1), L)
        n = r.shape[-1]
        value = (
            -0.5 * (r.unsqueeze(-1) * alpha).sum()
            - L.diagonal().log().sum()
            - 0.5 * n * math.log(2 * math.pi)
        )
        ctx.save_for_backward(L, alpha)
        return value

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        L, alpha = ctx.saved_tensors
        grad_K = 0.5 * grad * (alpha @ alpha.mT - torch.cholesky_inverse(L))
        grad_r = -grad * alpha.squeeze(-1)
        return grad_K, grad_r, None


class _DenseLoss:
    """The negative exact MLL of ``mll`` per data point, as GPyTorch computes it."""

    def __init__(self, mll: ExactMarginalLogLikelihood) -> None:
        model = mll.model
        self.model = model
        self.X = model.train_inputs[0]
        self.y = model.train_targets
        n = self.y.shape[-1]
        self.eye = torch.eye(n, dtype=self.X.dtype, device=self.X.device)
        self.priors = [
            (module, prior, closure) for _, module, prior, closure, _ in model.named_priors()
        ]
        self.standard = get_loss_closure(mll)

    def __call__(self, **kwargs) -> torch.Tensor:
        model = self.model
        K = model.covar_module.forward(self.X, self.X) + model.likelihood.noise * self.eye
        L = _cholesky(K.detach())
        if L is None:
            return self.standard(**kwargs)
        r = self.y - model.mean_module(self.X)
        value = _GaussianLogLikelihood.apply(K, r, L)
        for module, prior, closure in self.priors:
            value = value + prior.log_prob(closure(module)).sum()
        return -value / self.y.shape[-1]


def _eligible(mll: ExactMarginalLogLikelihood) -> bool:
    model = mll.model
    return (
        type(model) is SingleTaskGP
        and getattr(model, "input_transform", None) is None
        and model.num_outputs == 1
        and model.train_targets.dim() == 1
        and model.train_targets.shape[-1] <= gpytorch.settings.max_cholesky_size.value()
        and gpytorch.settings.observation_nan_policy.value() == "ignore"
        and not list(model.added_loss_terms())
    )


def fast_mll_closure(mll: ExactMarginalLogLikelihood) -> Callable | None:
    """A loss closure for ``fit_gpytorch_mll(mll, closure=...)``, or ``None`` where it
    would not compute exactly BoTorch's (see the module's docstring)."""
    if not _eligible(mll):
        return None
    mll.train()
    parameters = {
        name: p for name, p in get_parameters_and_bounds(mll)[0].items() if p.requires_grad
    }
    loss = _DenseLoss(mll)
    ours = ForwardBackwardClosure(loss, parameters)
    try:
        theirs_value, theirs_grads = ForwardBackwardClosure(loss.standard, parameters)()
        theirs_grads = [None if g is None else g.clone() for g in theirs_grads]
        our_value, our_grads = ours()
    except Exception:  # anything this path cannot compute is left to BoTorch's
        return None
    pairs = [(theirs_value, our_value), *zip(theirs_grads, our_grads)]
    for theirs, mine in pairs:
        if (theirs is None) != (mine is None):
            return None
        if theirs is not None and not torch.allclose(
            mine, theirs, rtol=CHECK_RTOL, atol=CHECK_RTOL * float(theirs.detach().abs().max())
        ):
            return None
    return ours
