"""Quasi-random space filling: a scrambled Sobol sequence over the parameter space.

:class:`SobolPlanner` is a planner of its own (a baseline, and a design for screening
campaigns) and :func:`sobol_points` is the initial design of the model-based planners.

One campaign walks along one sequence: the sequence is scrambled with the planner's
``seed`` and each ask starts where the previous proposals ended, at index
``len(observations) + len(pending)``. That index is a function of the planner's state only,
so a planner rebuilt from :meth:`~sdl.planners.Planner.state_dict` continues the same
sequence, and consecutive batches together keep the low-discrepancy property of one
Sobol sequence instead of being independent random draws.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Planner
from ._objective import Objective
from ._space import Categorical, Integer, Space

__all__ = ["SobolPlanner", "design_points", "sobol_points", "near_any"]

#: two points whose unit-cube coordinates all differ by less than this are "the same"
DUPLICATE_TOL = 1e-6


def _sobol_unit(dim: int, n: int, *, seed: int, skip: int) -> np.ndarray:
    """``n x dim`` scrambled Sobol points, starting at index ``skip`` of the sequence."""
    from scipy.stats import qmc  # imported here: scipy.stats is slow to import

    engine = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed))
    if skip:
        engine.fast_forward(skip)
    with warnings.catch_warnings():
        # balance properties need powers of two; a campaign's batches rarely are
        warnings.simplefilter("ignore", UserWarning)
        return engine.random(n)


def _equal_levels(space: Space, U: np.ndarray) -> np.ndarray:
    """Snap unit-cube rows onto the space, giving each integer / choice an equal share.

    :meth:`Space.from_unit` rounds, which gives the two end levels half the share of
    the others; for a design we split ``[0, 1]`` into ``k`` equal bins instead.
    """
    U = np.array(U, dtype=float, copy=True)
    for j, p in enumerate(space.parameters):
        if isinstance(p, (Integer, Categorical)):
            k = (p.high - p.low + 1) if isinstance(p, Integer) else len(p.choices)
            level = np.minimum(np.floor(U[:, j] * k), k - 1)
            U[:, j] = level / (k - 1)
    return space.round_unit(U)


def near_any(row: np.ndarray, others: np.ndarray, tol: float = DUPLICATE_TOL) -> bool:
    """True if ``row`` (``d``) lies within ``tol`` of a row of ``others`` (``m x d``)."""
    if len(others) == 0:
        return False
    return bool(np.any(np.all(np.abs(np.asarray(others) - row) <= tol, axis=1)))


def sobol_points(
    space: Space,
    n: int,
    *,
    seed: int,
    skip: int = 0,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    max_draws: int | None = None,
) -> np.ndarray:
    """``n`` rows of the seeded Sobol design, starting at index ``skip``, as unit-cube rows.

    Rows within :data:`DUPLICATE_TOL` of a row of ``exclude`` (or of an earlier chosen
    row) are passed over, so a small discrete space does not get the same point twice;
    when the sequence offers no new point within ``max_draws`` draws (default
    ``max(1024, 16 n)``) the passed-over rows fill the batch in sequence order, those
    near a row of ``avoid`` (failed or pending points) last.

    Args:
        space: the parameter space.
        n: number of rows.
        seed: scramble seed of the sequence.
        skip: index in the sequence of the first candidate.
        exclude: ``m x d`` unit-cube rows not to propose again (observed, pending, ...).
        avoid: rows of ``exclude`` that are worse to repeat than the others.
        max_draws: most sequence points to look at.

    Returns:
        ``n x d`` array in the unit cube, snapped onto integers and choices.
    """
    exclude = np.empty((0, space.dim)) if exclude is None else np.asarray(exclude, float)
    exclude = exclude.reshape(-1, space.dim)
    limit = max(1024, 16 * n) if max_draws is None else max(int(max_draws), n)
    chosen: list[np.ndarray] = []
    passed_over: list[np.ndarray] = []
    drawn = 0
    chunk = max(n, 8)
    while len(chosen) < n and drawn < limit:
        rows = _equal_levels(space, _sobol_unit(space.dim, chunk, seed=seed, skip=skip + drawn))
        drawn += chunk
        for row in rows:
            taken = np.array(chosen).reshape(-1, space.dim)
            if near_any(row, exclude) or near_any(row, taken):
                passed_over.append(row)
            else:
                chosen.append(row)
                if len(chosen) == n:
                    break
        chunk = min(2 * chunk, limit)
    if len(chosen) < n and avoid is not None and len(avoid):
        avoid = np.asarray(avoid, float).reshape(-1, space.dim)
        passed_over.sort(key=lambda row: near_any(row, avoid))  # stable: sequence order
    chosen.extend(passed_over[: n - len(chosen)])
    return np.array(chosen).reshape(n, space.dim)


def design_points(
    space: Space,
    n: int,
    *,
    seed: int,
    skip: int = 0,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    constraints: Sequence[Any] = (),
    fixed: dict[str, Any] | None = None,
) -> np.ndarray:
    """The space-filling design, honouring input constraints and fixed parameters.

    Without constraints: :func:`sobol_points` with the fixed columns set. With linear
    input constraints: rows ``skip .. skip + n`` of the seeded feasible design of
    :meth:`~sdl.planners._constraints.UnitConstraints.sample` (fixed parameters become
    equalities), rows near ``exclude`` passed over.

    Returns:
        ``n x d`` unit-cube rows.
    """
    from ._constraints import UnitConstraints

    fixed = dict(fixed or {})
    fixed_unit = {space.names.index(k): space[k].to_unit(v) for k, v in fixed.items()}
    if not constraints:
        U = sobol_points(space, n, seed=seed, skip=skip, exclude=exclude, avoid=avoid)
        for j, u in fixed_unit.items():
            U[:, j] = u
        return U
    uc = UnitConstraints(space, constraints, fixed_unit)
    exclude = np.empty((0, space.dim)) if exclude is None else np.asarray(exclude, float)
    chosen: list[np.ndarray] = []
    start, extra = skip, 0
    while len(chosen) < n and extra <= 4 * n + 16:
        rows = uc.sample(n - len(chosen), seed=seed, skip=start)
        start += len(rows)
        for row in rows:
            row = (
                space.round_unit(row[None])[0]
                if space.integer_columns or space.categorical_columns
                else row
            )
            if near_any(row, exclude.reshape(-1, space.dim)) or near_any(
                row, np.array(chosen).reshape(-1, space.dim)
            ):
                extra += 1
                continue
            chosen.append(row)
    if len(chosen) < n:
        chosen.extend(uc.sample(n - len(chosen), seed=seed, skip=skip))
    return np.array(chosen[:n]).reshape(n, space.dim)


class SobolPlanner(Planner):
    """Space filling with a scrambled Sobol sequence; ignores the outcomes.

    Proposals are a pure function of ``seed`` and of how many points were observed or
    are pending: the batch starts at index ``len(observations) + len(pending)`` of the
    sequence scrambled with ``seed``. So pass still-running points as ``pending`` (as
    :meth:`~sdl.planners.Planner.ask` asks every caller to): two asks with nothing told
    or pending in between propose the same points. Integer and categorical parameters
    get an equal share of the points per value.

    Input constraints (linear, over Real parameters) are honoured: the design is then
    the Sobol sequence with infeasible points passed over, or, with equalities such as
    ``"a + b + c == 1"``, a seeded hit-and-run sample of the feasible polytope. Fixed
    parameters (``ask(fixed=...)``) are supported. Outcome constraints are not (the
    planner ignores outcomes): use BoTorchPlanner.

    Args:
        space: the parameters to explore.
        objectives: what the campaign optimizes (not used in proposing).
        seed: scramble seed of the sequence.
        input_constraints: linear constraints (see :class:`~sdl.planners.LinearConstraint`).

    Example:
        >>> from sdl.planners import Objective, Real, Space
        >>> planner = SobolPlanner(Space([Real("T", 20.0, 80.0)]), [Objective("y")], seed=1)
        >>> len(planner.ask(4))
        4
    """

    name = "sobol"
    supports_fixed = True
    supports_input_constraints = True

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        *,
        seed: int | None = 0,
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

    def _propose(
        self,
        n: int,
        pending: list[dict[str, Any]],
        seed: int,
        fixed: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        # ``seed`` (the per-ask seed) is deliberately unused: see the class docstring.
        everything = self._all_observations()
        observed = [o.point for o in everything]
        failed = [o.point for o in everything if o.failed]
        to_unit = self.space.to_unit
        U = design_points(
            self.space,
            n,
            seed=self.seed,
            skip=len(observed) + len(pending),
            exclude=to_unit(observed + pending) if observed or pending else None,
            avoid=to_unit(failed + pending) if failed or pending else None,
            constraints=self.input_constraints,
            fixed=fixed,
        )
        return self.space.from_unit(U)
