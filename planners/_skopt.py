"""Bayesian optimization of one objective with scikit-optimize (``skopt.Optimizer``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sdl.errors import ConfigError

from ._base import Planner
from ._objective import Objective
from ._space import Categorical, Integer, Real, Space

__all__ = ["SkoptPlanner"]


class SkoptPlanner(Planner):
    """A wrapper of :class:`skopt.Optimizer` for one objective.

    The optimizer is rebuilt from the observations on every ask (a fresh
    ``skopt.Optimizer`` with ``random_state`` derived from ``seed``, told every
    observation at once), so proposals depend on the planner's state only and a planner
    restored with :meth:`~sdl.planners.Planner.load_state_dict` proposes the same points.
    The first ``n_initial_points`` proposals come from skopt's Sobol initial design.

    Real parameters map to ``skopt.space.Real`` (``prior="log-uniform"`` when
    ``log=True``), integers to ``Integer`` and categoricals to ``Categorical`` over the
    choice indices. skopt minimizes, so maximized objectives are told negated.

    Failed experiments (NaN outcome) are told with a penalty: the worst finite value
    observed so far, which steers the search away from them (until a finite value
    exists, every told point gets the value 0.0). Pending points are told with the best
    value observed (the "constant liar" of skopt's own batch strategy ``cl_min``), so
    they are not proposed again.

    Args:
        space: the parameters to optimize.
        objectives: exactly one objective.
        seed: seed of skopt's ``random_state``.
        base_estimator: skopt surrogate, ``"GP"`` (default), ``"RF"``, ``"ET"``,
            ``"GBRT"`` or a scikit-learn regressor.
        acq_func: skopt acquisition function: ``"gp_hedge"`` (default), ``"EI"``,
            ``"PI"``, ``"LCB"``, ...
        n_initial_points: number of points of the initial design before the surrogate
            is used (default ``2 * (d + 1)`` for ``d`` parameters).

    Outcome constraints, input constraints and fixed parameters are not supported
    (``skopt.Optimizer`` has no way to express them): each raises
    :class:`~sdl.errors.ConfigError` naming the planner that supports it. Warm-start data
    (:meth:`~sdl.planners.Planner.warm_start`) is told to skopt with the observations.

    Raises:
        ConfigError: with more than one objective, constraints, or an invalid option.
    """

    name = "skopt"

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        *,
        seed: int | None = 0,
        base_estimator: Any = "GP",
        acq_func: str = "gp_hedge",
        n_initial_points: int | None = None,
        outcome_constraints: Sequence[Any] = (),
        input_constraints: Sequence[Any] = (),
    ) -> None:
        super().__init__(
            space,
            objectives,
            seed=seed,
            outcome_constraints=outcome_constraints,
            input_constraints=input_constraints,
        )
        if len(self.objectives) != 1:
            raise ConfigError(
                f"SkoptPlanner supports one objective; use BoTorchPlanner for several "
                f"(multi-objective, hypervolume) "
                f"(got {len(self.objectives)}: {self.objective_names})"
            )
        if n_initial_points is None:
            n_initial_points = 2 * (self.space.dim + 1)
        if int(n_initial_points) < 1:
            raise ConfigError(
                f"SkoptPlanner option n_initial_points must be at least 1, got {n_initial_points}"
            )
        self.base_estimator = base_estimator
        self.acq_func = acq_func
        self.n_initial_points = int(n_initial_points)

    def _dimensions(self) -> list[Any]:
        from skopt import space as sk

        dims: list[Any] = []
        for p in self.space.parameters:
            if isinstance(p, Real):
                prior = "log-uniform" if p.log else "uniform"
                dims.append(sk.Real(p.low, p.high, prior=prior, name=p.name))
            elif isinstance(p, Integer):
                dims.append(sk.Integer(p.low, p.high, name=p.name))
            else:
                dims.append(sk.Categorical(list(range(len(p.choices))), name=p.name))
        return dims

    def _to_skopt(self, point: dict[str, Any]) -> list[Any]:
        row: list[Any] = []
        for p in self.space.parameters:
            v = point[p.name]
            if isinstance(p, Real):
                row.append(min(max(float(v), p.low), p.high))
            elif isinstance(p, Integer):
                row.append(int(v))
            else:
                row.append(p.index(v))
        return row

    def _from_skopt(self, row: Sequence[Any]) -> dict[str, Any]:
        point: dict[str, Any] = {}
        for p, v in zip(self.space.parameters, row):
            if isinstance(p, Real):
                point[p.name] = min(max(float(v), p.low), p.high)
            elif isinstance(p, Integer):
                point[p.name] = int(v)
            elif isinstance(p, Categorical):
                point[p.name] = p.choices[int(v)]
        return point

    def _told(self, pending: list[dict[str, Any]]) -> tuple[list[list[Any]], list[float]]:
        """Points and minimization-sense values to tell skopt (penalties and lies included)."""
        objective = self.objectives[0]
        values = [-objective.sign * o.outcome[objective.name] for o in self._all_observations()]
        finite = [v for v in values if np.isfinite(v)]
        # with no finite value yet, every point is told 0.0: it still counts as told,
        # so the initial design moves on past failed and pending points
        worst, best = (max(finite), min(finite)) if finite else (0.0, 0.0)
        X = [self._to_skopt(o.point) for o in self._all_observations()]
        y = [v if np.isfinite(v) else worst for v in values]
        X += [self._to_skopt(p) for p in pending]
        y += [best] * len(pending)
        return X, [float(v) for v in y]

    def _propose(self, n: int, pending: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        from skopt import Optimizer

        # The same random_state on every ask: skopt's initial design is then one Sobol
        # sequence, continued at index len(told); after it, the data differ per ask.
        X, y = self._told(pending)
        with warnings.catch_warnings():
            # Sobol "balance properties" and "The objective has been evaluated at point
            # ... before" are expected here, not news to the user
            warnings.simplefilter("ignore", UserWarning)
            optimizer = Optimizer(
                self._dimensions(),
                base_estimator=self.base_estimator,
                n_initial_points=self.n_initial_points,
                initial_point_generator="sobol",
                acq_func=self.acq_func,
                random_state=self.seed % 2**32,
            )
            if X:
                optimizer.tell(X, y)
            rows = optimizer.ask(n_points=n)
        return [self._from_skopt(r) for r in rows]
