"""Bayesian optimization with BoTorch: GP models, (log) noisy EI / EHVI, constraints, failures.

Importing this module imports torch and BoTorch (seconds); :mod:`sdl.planners` imports it
only when :class:`BoTorchPlanner` is first used.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gpytorch
import numpy as np
import torch
from botorch.acquisition.logei import qLogExpectedImprovement
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.acquisition.objective import GenericMCObjective
from botorch.models import ModelListGP
from botorch.models.model import Model
from botorch.optim import optimize_acqf
from botorch.optim.optimize_mixed import optimize_acqf_mixed_alternating
from botorch.utils.multi_objective.hypervolume import infer_reference_point
from botorch.utils.multi_objective.pareto import is_non_dominated

from sdl.errors import ConfigError

from ._base import Planner
from ._constraints import UnitConstraints, design_points
from ._design import near_any
from ._fast_nei import FastLogNEI
from ._gp_fit import HyperparameterCache
from ._objective import Objective
from ._space import Categorical, Integer, Space

__all__ = ["BoTorchPlanner"]

logger = logging.getLogger(__name__)

_DTYPES = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32}

#: a candidate is feasible when the feasibility model predicts at least this success rate
FEASIBILITY_LEVEL = 0.5

#: below this many observations ``threads=None`` runs torch on one CPU thread (see
#: ``docs/planners.md``: on the shared 2-core development machine one thread was 5-7.6x
#: faster than two for a 1-D ask at n <= 50 under load; at n=2000 two threads were
#: 1.4-1.6x faster at load 1.4 and 1.8x slower at load 4, so large data keep torch's)
SINGLE_THREAD_BELOW = 1000

#: from this many observations the acquisition uses gpytorch's cached predictive
#: variances (``gpytorch.settings.fast_pred_var``: a root of the inverse kernel matrix,
#: computed once per ask, instead of a triangular solve per evaluation). Since issue 12
#: from the start: up to n=2000 the root is a Cholesky-based one and the variances equal
#: the exact ones to 1e-12 (relative; checked at n=50, 200, 700, 2000), and asks at
#: n=200 (d=6, q=4) were 1.65x faster (docs/planners.md)
FAST_PRED_VAR_FROM = 0

#: ``sample_around_best=None`` starts the acquisition optimization around the best points
#: too from this many parameters on (helped on Hartmann6, d = 6; hurt on Branin, d = 2;
#: 3 to 5 not measured: 256 uniform raw samples are 0.16 apart in 3-D, 0.25 in 4-D)
SAMPLE_AROUND_BEST_FROM = 4

#: noisy EI's incumbents: at most this many observed points (best means first), those
#: whose posterior mean is within ``2 * INCUMBENT_Z`` noise standard deviations of the
#: best posterior mean. Every acquisition evaluation samples the candidates jointly with
#: them, so an ask's time grows with their number: in a long film-lab campaign (noise
#: 0.01, ~40 % of the points near the optimum) 128 of them made asks at n = 300 take
#: 2.2-2.5 s, 32 took 0.7 s. 40-evaluation Hartmann6 and Branin runs never had more
#: than 24, so those benchmarks are unchanged (docs/planners.md)
MAX_INCUMBENTS = 32
INCUMBENT_Z = 3.0

#: with ``device="auto"`` and a CUDA GPU present, the GPU is used from this many
#: observations on, the CPU below (a guess from BoTorch's reports, not measured here: the
#: development machine has no GPU; ``python -m benchmarks.gpu_check`` measures it)
GPU_FROM = 1000

#: single-objective acquisition functions (``acquisition=`` option)
ACQUISITIONS = ("auto", "logei", "lognei")


class BoTorchPlanner(Planner):
    """Gaussian-process Bayesian optimization with BoTorch.

    Until ``n_initial`` experiments have succeeded the planner proposes the seeded Sobol
    design of :class:`~sdl.planners.SobolPlanner` (a feasible design when there are input
    constraints); points still pending count towards those ``n_initial`` once three (or
    ``n_initial``, if fewer) have succeeded, so a lab running many experiments at once does
    not spend most of its budget on the design while the first results are out. After that, each ask fits GPs (inputs in the unit cube, outcomes
    standardized) and maximizes an acquisition function over a batch of ``n`` points:

    * one objective: :class:`~botorch.models.SingleTaskGP` and
      ``qLogNoisyExpectedImprovement`` (one parameter, or ``acquisition="logei"``:
      ``qLogExpectedImprovement`` over the best posterior mean at an observed point);
    * several objectives: one GP per objective and
      ``qLogNoisyExpectedHypervolumeImprovement``. The reference point is each
      objective's ``threshold`` (user units and direction) where set, else inferred
      from the observed Pareto front (nadir less 10 % of its range);
    * outcome constraints (``"viscosity <= 50"``): one GP per constrained quantity, fitted
      to the values told with the objectives, enters the acquisition as a constraint on
      its posterior samples, so proposals favour points predicted to satisfy it;
    * failed experiments: once any experiment has failed, a *feasibility model* (a GP on
      the 0/1 success indicator of every experiment, failed ones included) enters as a
      constraint ``P(success) >= 0.5``, and the objective models also see each failed
      experiment at the worst value observed, so the planner stops proposing where
      experiments failed; a candidate predicted infeasible is replaced (see
      ``_enforce_constraints``); a failed point is never proposed again;
    * input constraints (``"a + b + c == 1"``): mapped onto the unit cube and passed to
      the optimizer as linear (in)equality constraints; candidates are then projected onto
      the constraints (SLSQP, tight tolerance) so every proposal satisfies them within 1e-6;
    * fixed parameters (``ask(fixed={"oven_temp": 180.0})``): BoTorch ``fixed_features``;
    * categorical parameters: :class:`~botorch.models.MixedSingleTaskGP` on the choice
      index; with integer or categorical parameters ``optimize_acqf_mixed_alternating``.

    Pending points enter the acquisition function as ``X_pending`` (for one or several
    objectives). A candidate within 1e-6 (unit cube) of a failed or pending point, or of
    another point of the batch, is replaced by a design point. All randomness is drawn
    from torch's generator seeded with the per-ask seed inside
    ``torch.random.fork_rng()``, so proposals are reproducible from the planner's state.

    Speed: GP hyperparameters are refitted only when the data have grown by
    ``refit_growth`` (10 %) since the last fit, and on at most ``fit_subset`` rows; in
    between the GP reuses them and is only conditioned on the new data (see
    :mod:`sdl.planners._gp_fit`). ``refit_growth=0`` refits on every ask. Predictive
    variances come from a root of the inverse kernel matrix cached once per ask, and noisy
    EI's incumbents are pre-selected from posterior means (``_plausible_incumbents``);
    ``docs/planners.md`` (Speed) has the measurements.

    Args:
        space: the parameters to optimize.
        objectives: one or more objectives.
        seed: seed of the initial design and of every ask.
        n_initial: number of successful experiments before the model is used (default
            ``d + 2`` for ``d`` parameters, but at least 6 and at most ``2 * (d + 1)``).
        num_restarts: starting points of the acquisition optimization.
        raw_samples: random points scored to pick the starting points (default 256;
            512 before issue 12).
        maxiter: L-BFGS-B iterations per restart (default 40; 75 before issue 12: on
            Hartmann6 data, n = 10 to 200, q = 1 and 4, the acquisition value reached
            was as close to a reference optimizer's as with 512 samples and 75
            iterations, see ``docs/planners.md``); in spaces with integer or categorical
            parameters, also the cap on alternating discrete/continuous rounds
            (at most 64).
        device: torch device of the computation, ``"cpu"`` or ``"cuda"``
            (``"cuda:1"``, ...); every tensor is created there. ``"auto"`` (default):
            the CPU below :data:`GPU_FROM` (1000) observations, a CUDA GPU from there
            on if torch finds one.
        dtype: ``"float64"`` (default; GPs need it) or ``"float32"``.
        outcome_constraints: bounds on measured quantities (see
            :class:`~sdl.planners.OutcomeConstraint`).
        input_constraints: linear constraints on Real parameters (see
            :class:`~sdl.planners.LinearConstraint`).
        feasibility: learn where experiments fail (default True).
        failure_radius: with ``feasibility``, a candidate whose neighbours within this
            distance (unit cube, Euclidean) are all failed experiments is rejected.
        refit_growth: relative data growth between hyperparameter fits (0: every ask).
        fit_subset: most observations a hyperparameter fit uses.
        acquisition: with one objective, ``"lognei"``: ``qLogNoisyExpectedImprovement``,
            which samples the posterior jointly at the candidates and the observed points
            (it needs jitter once observed points crowd together); ``"logei"``:
            ``qLogExpectedImprovement`` over the best posterior mean at an observed point
            (predicted feasible where there are constraints); ``"auto"`` (default):
            ``"logei"`` for one parameter, ``"lognei"`` otherwise.
        threads: CPU threads torch uses during an ask (``None``: one below
            :data:`SINGLE_THREAD_BELOW` (1000) observations, else torch's setting).
        sample_around_best: with one objective and one point per ask, also start the
            acquisition optimization from small perturbations of the best observed points
            (BoTorch's ``sample_around_best``; not with equality input constraints, which
            BoTorch refuses, nor with integer or categorical parameters). ``None``
            (default): from :data:`SAMPLE_AROUND_BEST_FROM` (4) parameters on. On noisy
            Hartmann6 (d = 6) it helped (uniform starts more often left the search pinned
            at a bound); on Branin (d = 2), where 256 uniform starts already cover the
            plane densely, it hurt (``docs/planners.md``).

    Raises:
        ConfigError: for an invalid option or an unavailable device.
    """

    name = "botorch"
    supports_fixed = True
    supports_outcome_constraints = True
    supports_input_constraints = True

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        *,
        seed: int | None = 0,
        n_initial: int | None = None,
        num_restarts: int = 10,
        raw_samples: int = 256,
        maxiter: int = 40,
        device: str = "auto",
        dtype: str = "float64",
        outcome_constraints: Sequence[Any] = (),
        input_constraints: Sequence[Any] = (),
        feasibility: bool = True,
        failure_radius: float = 0.15,
        refit_growth: float = 0.1,
        fit_subset: int = 300,
        acquisition: str = "auto",
        threads: int | None = None,
        sample_around_best: bool | None = None,
    ) -> None:
        super().__init__(
            space,
            objectives,
            seed=seed,
            outcome_constraints=outcome_constraints,
            input_constraints=input_constraints,
        )
        d = self.space.dim
        # d + 2 (at least 6, at most the former 2 (d + 1)): on noisy Hartmann6 (d = 6, 40
        # evaluations, 5 seeds) 8 initial points gave a median regret 0.07x that of 14
        # (benchmarks/results/planners.txt, docs/planners.md); two parameters keep 6
        default = min(2 * (d + 1), max(d + 2, 6))
        self.n_initial = default if n_initial is None else int(n_initial)
        self.num_restarts = int(num_restarts)
        self.raw_samples = int(raw_samples)
        self.maxiter = int(maxiter)
        self.fit_subset = int(fit_subset)
        for option in ("n_initial", "num_restarts", "raw_samples", "maxiter", "fit_subset"):
            if getattr(self, option) < 1:
                raise ConfigError(
                    f"BoTorchPlanner option {option} must be at least 1, "
                    f"got {getattr(self, option)}"
                )
        if not refit_growth >= 0:
            raise ConfigError(
                f"BoTorchPlanner option refit_growth must be >= 0, got {refit_growth}"
            )
        self.refit_growth = float(refit_growth)
        if acquisition not in ACQUISITIONS:
            raise ConfigError(
                f"BoTorchPlanner option acquisition must be one of {list(ACQUISITIONS)}, "
                f"got {acquisition!r}"
            )
        self.acquisition = acquisition
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"BoTorchPlanner option threads must be at least 1, got {threads}")
        self.threads = None if threads is None else int(threads)
        self.sample_around_best = (
            self.space.dim >= SAMPLE_AROUND_BEST_FROM
            if sample_around_best is None
            else bool(sample_around_best)
        )
        self.feasibility = bool(feasibility)
        self.failure_radius = float(failure_radius)
        if dtype not in _DTYPES:
            raise ConfigError(
                f"BoTorchPlanner option dtype must be one of {sorted(_DTYPES)}, got {dtype!r}"
            )
        self.dtype = dtype
        try:
            self._device = torch.device("cpu" if device == "auto" else device)
        except RuntimeError as err:
            raise ConfigError(f"BoTorchPlanner option device: {err}") from None
        #: with ``device="auto"``, the GPU used from :data:`GPU_FROM` observations on
        self._auto_gpu = (
            torch.device("cuda") if device == "auto" and torch.cuda.is_available() else None
        )
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"BoTorchPlanner option device={device!r}, but torch finds no CUDA GPU "
                "(torch.cuda.is_available() is False): use device='cpu'"
            )
        self.device = device
        self._gp_cache = HyperparameterCache(self.refit_growth, self.fit_subset, self.seed)
        #: seconds spent in the last ask: ``{"fit": ..., "acquisition": ...}``
        self.last_timings: dict[str, float] = {}

    def load_state_dict(self, state: Any) -> None:
        super().load_state_dict(state)
        self._gp_cache = HyperparameterCache(self.refit_growth, self.fit_subset, self.seed)

    def warm_up(self) -> None:
        """One model-based ask of a copy, on made-up outcomes at its own design points
        with one point pending (see :meth:`Planner.warm_up`). Its first such ask took
        0.6 s against 0.35 s for the next ones on this 2-core machine, 1.8 s beside a
        film lab's four RunEngines. Random states are restored; any error is ignored."""
        twin = copy.deepcopy(self)
        twin._observations, twin._warm, twin.n_asks = [], [], 0
        twin._gp_cache = HyperparameterCache(self.refit_growth, self.fit_subset, self.seed)
        names = self.objective_names + [c.name for c in self.outcome_constraints]
        numpy_state = np.random.get_state()
        try:
            with torch.random.fork_rng(devices=self._rng_devices()):
                rng = np.random.default_rng(self.seed)
                points = twin.ask(self.n_initial + 1)
                outcomes = [{name: float(rng.normal()) for name in names} for _ in points]
                twin.tell(points[:-1], outcomes[:-1])
                twin.ask(1, pending=points[-1:])
        except Exception as err:  # a warm-up must never stop a campaign
            logger.debug("planner warm-up failed: %s: %s", type(err).__name__, err)
        finally:
            np.random.set_state(numpy_state)

    # -- proposing ----------------------------------------------------------------------

    def _propose(
        self,
        n: int,
        pending: list[dict[str, Any]],
        seed: int,
        fixed: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        space = self.space
        fixed = dict(fixed or {})
        everything = self._all_observations()
        U_obs, failed = self._unit_observations()
        ok = ~failed
        U_pending = space.to_unit(pending) if pending else np.empty((0, space.dim))
        skip = len(everything) + len(pending)
        avoid = np.vstack([U_obs[~ok], U_pending])
        self.last_timings = {"fit": 0.0, "acquisition": 0.0}

        def design(k: int, taken: np.ndarray) -> np.ndarray:
            return design_points(
                space,
                k,
                seed=self.seed,
                skip=skip,
                exclude=np.vstack([U_obs, U_pending, taken]),
                avoid=np.vstack([avoid, taken]),
                constraints=self.input_constraints,
                fixed=fixed,
            )

        done = int(ok.sum())
        if done < min(3, self.n_initial) or done + len(pending) < self.n_initial:
            return space.from_unit(design(n, np.empty((0, space.dim))))

        if self._auto_gpu is not None:
            self._device = self._auto_gpu if len(everything) >= GPU_FROM else torch.device("cpu")
        with (
            torch.random.fork_rng(devices=self._rng_devices()),
            self._cpu_threads(len(everything)),
            gpytorch.settings.fast_pred_var(len(everything) >= FAST_PRED_VAR_FROM),
        ):
            torch.manual_seed(seed)
            candidates = self._optimize(n, everything, ok, pending, fixed, avoid)

        U = space.to_unit(space.from_index(candidates))
        if self.input_constraints:
            fixed_unit = {space.names.index(k): space[k].to_unit(v) for k, v in fixed.items()}
            U = space.round_unit(
                UnitConstraints(space, self.input_constraints, fixed_unit).project(U)
            )
        # never re-propose a failed or pending point, nor one point twice in a batch
        keep: list[int] = []
        for i, row in enumerate(U):
            if not (near_any(row, avoid) or near_any(row, U[keep])):
                keep.append(i)
        if len(keep) < n:
            U = np.vstack([U[keep], design(n - len(keep), U[keep])])
        return space.from_unit(U)

    @contextlib.contextmanager
    def _cpu_threads(self, n_data: int) -> Iterator[None]:
        """Run torch on ``threads`` CPU threads (``None``: one below
        :data:`SINGLE_THREAD_BELOW` observations, else torch's setting), restored after."""
        before = torch.get_num_threads()
        wanted = self.threads
        if wanted is None:
            wanted = 1 if n_data < SINGLE_THREAD_BELOW else before
        if wanted == before:
            yield
            return
        torch.set_num_threads(wanted)
        try:
            yield
        finally:
            torch.set_num_threads(before)

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

    def _fit(self, role: str, X: torch.Tensor, y: np.ndarray) -> Model:
        t = torch.as_tensor(np.asarray(y, dtype=float).reshape(-1, 1), **self._tkwargs)
        return self._gp_cache.fit(role, X, t, self.space.categorical_columns)

    def _models(
        self, everything: list, ok: np.ndarray
    ) -> tuple[list[Model], list[Callable], torch.Tensor, torch.Tensor]:
        """Objective GPs, then constraint GPs (with their constraint callables)."""
        X_all = self._encode([o.point for o in everything])
        _, Y_all, _ = self._training_data()
        X_ok = X_all[torch.as_tensor(ok, device=self._device)]
        if self.feasibility and not ok.all():
            # failed experiments also enter the objective models, at the worst value
            # observed: the models then stop predicting improvement where runs fail
            Y_fit = np.where(np.isfinite(Y_all), Y_all, np.nanmin(Y_all[ok], axis=0))
            models = [
                self._fit(f"objective:{o.name}", X_all, Y_fit[:, j])
                for j, o in enumerate(self.objectives)
            ]
        else:
            models = [
                self._fit(f"objective:{o.name}", X_ok, Y_all[ok, j])
                for j, o in enumerate(self.objectives)
            ]
        constraints: list[Callable] = []
        for c in self.outcome_constraints:
            values = np.array([o.measured.get(c.name, np.nan) for o in everything], dtype=float)
            finite = np.isfinite(values)
            if finite.sum() < 2:
                continue  # nothing to learn from yet
            models.append(
                self._fit(
                    f"constraint:{c.name}",
                    X_all[torch.as_tensor(finite, device=self._device)],
                    values[finite],
                )
            )
            constraints.append(_bound(len(models) - 1, c.bound, c.op))
        if self.feasibility and not ok.all():
            models.append(self._fit("feasibility", X_all, ok.astype(float)))
            constraints.append(_bound(len(models) - 1, FEASIBILITY_LEVEL, ">="))
        return models, constraints, X_ok, torch.as_tensor(Y_all[ok], **self._tkwargs)

    def _optimize(
        self,
        n: int,
        everything: list,
        ok: np.ndarray,
        pending: list[dict[str, Any]],
        fixed: dict[str, Any],
        avoid: np.ndarray,
    ) -> np.ndarray:
        """Fit the model(s) and maximize the acquisition; ``n x d`` index-encoded rows."""
        t0 = time.perf_counter()
        models, constraints, X, Y = self._models(everything, ok)
        m = len(self.objectives)
        X_pending = self._encode(pending) if pending else None
        model = models[0] if len(models) == 1 else ModelListGP(*models)
        t1 = time.perf_counter()
        if m == 1:
            objective = (
                None if len(models) == 1 else GenericMCObjective(lambda Z, X=None: Z[..., 0])
            )
            # in one dimension a few dozen points already crowd the line: noisy EI's joint
            # posterior over them is singular (jitter warnings, slow asks); elsewhere noisy
            # EI was the more sample-efficient (Branin, benchmarks/results/branin.csv)
            plug_in = self.acquisition == "logei" or (
                self.acquisition == "auto" and self.space.dim == 1
            )
            if plug_in:
                acqf: Any = qLogExpectedImprovement(
                    model,
                    best_f=_best_predicted(model, constraints, X),
                    X_pending=X_pending,
                    objective=objective,
                    constraints=constraints or None,
                )
            else:
                acqf = FastLogNEI(
                    model,
                    X_baseline=_plausible_incumbents(model, X, constraints),
                    X_pending=X_pending,
                    prune_baseline=True,
                    objective=objective,
                    constraints=constraints or None,
                )
        else:
            objective = (
                None
                if len(models) == m
                else IdentityMCMultiOutputObjective(outcomes=list(range(m)))
            )
            acqf = qLogNoisyExpectedHypervolumeImprovement(
                model,
                ref_point=self._ref_point(Y),
                X_baseline=X,
                X_pending=X_pending,
                prune_baseline=True,
                objective=objective,
                constraints=constraints or None,
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
        fixed_features = {
            self.space.names.index(k): float(
                self.space.to_index([{**_any_point(self.space), k: v}])[0][
                    self.space.names.index(k)
                ]
            )
            for k, v in fixed.items()
        } or None
        ineq, eq = UnitConstraints(self.space, self.input_constraints).botorch(**self._tkwargs)

        if discrete_dims or cat_dims:
            for j in list(fixed_features or {}):
                discrete_dims.pop(j, None)
                cat_dims.pop(j, None)
            candidates, _ = optimize_acqf_mixed_alternating(
                acqf,
                bounds=bounds,
                discrete_dims=discrete_dims,
                cat_dims=cat_dims,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"maxiter_alternating": min(self.maxiter, 64)},
                fixed_features=fixed_features,
                inequality_constraints=ineq,
                equality_constraints=eq,
            )
        else:
            candidates, _ = optimize_acqf(
                acqf,
                bounds=bounds,
                q=n,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={
                    "maxiter": self.maxiter,
                    # one point at a time only: BoTorch fills a whole q-batch with
                    # perturbations of the same few best points, near-duplicates whose
                    # joint posterior is singular (jitter) and poor starts for a batch
                    "sample_around_best": (
                        self.sample_around_best and m == 1 and n == 1 and eq is None
                    ),
                },
                fixed_features=fixed_features,
                inequality_constraints=ineq,
                equality_constraints=eq,
                # Greedy one-point-at-a-time batches keep every point out of regions the
                # constraint / feasibility models reject (a joint batch lets the later
                # points ride on the first); without such models a joint batch finds the
                # same optimum about 2-3x faster (benchmarks/latency.py).
                sequential=n > 1 and bool(constraints),
                # BoTorch retries from new starting points after an "ABNORMAL" line-search
                # stop, doubling the ask time for the same candidates; keep what it found
                retry_on_optimization_warning=False,
            )
        failed_near = None
        if self.feasibility and not ok.all():
            failed_near = (self._unit_observations()[0], ok)  # (converted once per ask)
        candidates = self._replace_bad(
            acqf, model, constraints, candidates, fixed_features, avoid, failed_near
        )
        t2 = time.perf_counter()
        self.last_timings = {"fit": t1 - t0, "acquisition": t2 - t1}
        return candidates.detach().cpu().double().numpy()

    def _replace_bad(
        self,
        acqf: Any,
        model: Model,
        constraints: list[Callable],
        candidates: torch.Tensor,
        fixed_features: dict[int, float] | None,
        avoid: np.ndarray,
        failed_near: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> torch.Tensor:
        """Replace candidates that repeat a failed / pending point or another candidate,
        or whose *predicted* constraint values (posterior mean) break an outcome
        constraint or the feasibility level.

        The acquisition weighs constraints with a fat-tailed smooth indicator, so a
        candidate the objective model finds very promising can still win in a region
        predicted infeasible; here such a candidate is replaced by the best (by the
        acquisition, given the kept candidates as pending) of ``raw_samples`` design
        points predicted feasible. If none is, the candidate stays.
        """

        def feasible(X: torch.Tensor) -> torch.Tensor:
            result = torch.ones(X.shape[0], dtype=torch.bool, device=X.device)
            if constraints:
                with torch.no_grad():
                    mean = model.posterior(X).mean
                result &= torch.stack([c(mean) <= 0 for c in constraints], dim=-1).all(dim=-1)
            if failed_near is not None:
                U_all, ok_all = failed_near
                U_x = self.space.to_unit(self.space.from_index(X.detach().cpu().double().numpy()))
                dist = np.linalg.norm(U_x[:, None, :] - U_all[None, :, :], axis=-1)
                close = dist < self.failure_radius
                only_failed = close.any(axis=1) & ~(close & ok_all[None, :]).any(axis=1)
                result &= torch.as_tensor(~only_failed, device=X.device)
            return result

        ok = feasible(candidates)
        U = self.space.to_unit(self.space.from_index(candidates.detach().cpu().double().numpy()))
        for i, row in enumerate(U):
            if near_any(row, avoid) or near_any(row, U[:i][ok[:i].cpu().numpy()]):
                ok[i] = False
        if bool(ok.all()):
            return candidates
        space = self.space
        fixed = {space.names[j]: v for j, v in (fixed_features or {}).items()}
        fixed_points = {}
        for name, v in fixed.items():
            p = space[name]
            fixed_points[name] = p.choices[int(v)] if isinstance(p, Categorical) else p.from_unit(v)
        pool_unit = design_points(
            space,
            self.raw_samples,
            seed=int(torch.randint(0, 2**31 - 1, (1,)).item()),
            constraints=self.input_constraints,
            fixed=fixed_points,
        )
        pool = self._encode(space.from_unit(pool_unit))
        good = feasible(pool)
        pool_unit = pool_unit[good.cpu().numpy()]
        pool = pool[good]
        fresh = [not near_any(r, np.vstack([avoid, U])) for r in pool_unit]
        pool = pool[torch.as_tensor(fresh, dtype=torch.bool, device=pool.device)]
        if len(pool) == 0:
            return candidates
        kept = candidates[ok]
        base_pending = acqf.X_pending
        out = candidates.clone()
        for i in torch.nonzero(~ok).flatten().tolist():
            pending = kept if base_pending is None else torch.cat([base_pending, kept])
            acqf.set_X_pending(pending if len(pending) else None)
            with torch.no_grad():
                values = acqf(pool.unsqueeze(-2))
            j = int(values.argmax())
            best = pool[j]
            out[i] = best
            kept = torch.cat([kept, best.unsqueeze(0)])
            pool = torch.cat([pool[:j], pool[j + 1 :]])
            if len(pool) == 0:
                break
        acqf.set_X_pending(base_pending)
        return out

    def _ref_point(self, Y: torch.Tensor) -> list[float]:
        """Reference point (maximization sense) for the hypervolume, one value per objective.

        An objective's ``threshold`` (user units) where set; else the nadir of the observed
        Pareto front less 10 % of its range.
        """
        inferred = infer_reference_point(Y[is_non_dominated(Y)]).tolist()
        return [
            o.sign * float(o.threshold) if o.threshold is not None else inferred[j]
            for j, o in enumerate(self.objectives)
        ]


def _best_predicted(model: Model, constraints: list[Callable], X: torch.Tensor) -> float:
    """Largest posterior mean of the objective (output 0) over the observed points ``X``
    whose predicted constraint values (posterior means) are satisfied: the "plug-in"
    incumbent of noisy expected improvement. Where no point is predicted feasible, the
    smallest posterior mean (so any feasible candidate improves on it)."""
    with torch.no_grad():
        mean = model.posterior(X).mean
    objective = mean[..., 0]
    if not constraints:
        return float(objective.max())
    ok = torch.stack([c(mean) <= 0 for c in constraints], dim=-1).all(dim=-1)
    return float(objective[ok].max()) if bool(ok.any()) else float(objective.min())


def _plausible_incumbents(
    model: Model, X: torch.Tensor, constraints: Sequence[Callable] = ()
) -> torch.Tensor:
    """The observed points ``X`` that may be the best one: noisy EI's baseline.

    ``qLogNoisyExpectedImprovement`` prunes its baseline itself, by sampling the joint
    posterior at every observed point (``n x n`` covariance, 2048 samples): 2.9 s of a
    7.8 s ask at n=2000. At an observed point the posterior standard deviation is below
    the noise's ``s``, so a point whose posterior mean is more than ``2 z s`` below the
    best posterior mean is the best with probability below ``Phi(-z)`` (``z`` =
    :data:`INCUMBENT_Z`); those are dropped first, from posterior means alone, and at most
    :data:`MAX_INCUMBENTS` (best means first) are kept. BoTorch's pruning then runs on
    those few.

    With constraint models (``model`` a ``ModelListGP``, the objective first; outcome
    constraints or the feasibility model) the best *feasible* point is the incumbent, so
    the reference is the best mean among points that are feasible with probability
    above ``1 - Phi(-2 z)`` under every constraint (each constraint callable is linear in
    its output, so checking it at the mean plus and minus ``2 z`` posterior standard
    deviations suffices); a point more than ``2 z s`` below that reference is dropped,
    whatever its feasibility, and so is a point that violates a constraint at both ends
    (it is never the best feasible one); no cap applies. Without a surely feasible point
    ``X`` is unchanged.
    """
    objective = model.models[0] if isinstance(model, ModelListGP) else model
    noise = getattr(getattr(objective, "likelihood", None), "noise", None)
    transform = getattr(objective, "outcome_transform", None)
    if noise is None or len(X) <= 1:
        return X
    s = float(noise.detach().max().sqrt())
    stdvs = getattr(transform, "stdvs", None)
    if stdvs is not None:
        s *= float(stdvs.max())
    if constraints:
        with torch.no_grad():
            posterior = model.posterior(X)
            mean_all = posterior.mean
            # 2 z: BoTorch's pruning draws 2048 samples, and a point feasible in one of
            # them with a high objective is kept (at z = 3 some were)
            spread = 2 * INCUMBENT_Z * posterior.variance.clamp_min(0).sqrt()
        mean = mean_all[..., 0]
        sure = torch.ones(len(X), dtype=torch.bool, device=X.device)
        never = torch.zeros(len(X), dtype=torch.bool, device=X.device)
        for c in constraints:
            low, high = c(mean_all - spread), c(mean_all + spread)
            sure &= (low <= 0) & (high <= 0)
            never |= (low > 0) & (high > 0)
        if not sure.any():
            return X
        floor = mean[sure].max() - 2 * INCUMBENT_Z * s
        # no cap: which of many plausible points is the best feasible one depends on
        # the joint feasibility, which BoTorch's pruning samples
        return X[torch.nonzero((mean >= floor) & ~never).flatten()]
    with torch.no_grad(), gpytorch.settings.skip_posterior_variances():
        mean = model.posterior(X).mean[..., 0]
    keep = torch.nonzero(mean >= mean.max() - 2 * INCUMBENT_Z * s).flatten()
    if len(keep) > MAX_INCUMBENTS:
        keep = keep[torch.argsort(mean[keep], descending=True)[:MAX_INCUMBENTS]]
    return X[keep.sort().values]


def _any_point(space: Space) -> dict[str, Any]:
    return space.from_unit(np.zeros((1, space.dim)))[0]


def _bound(index: int, bound: float, op: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A BoTorch constraint callable (feasible where it is <= 0) on output ``index``."""
    if op == "<=":
        return lambda Z: Z[..., index] - bound
    return lambda Z: bound - Z[..., index]
