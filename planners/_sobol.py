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

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._base import Planner
from ._constraints import design_points
from ._design import DUPLICATE_TOL, SobolSequence, near_any, sobol_points
from ._objective import Objective
from ._space import Space

__all__ = ["SobolPlanner", "design_points", "sobol_points", "near_any", "DUPLICATE_TOL"]


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
    quick_asks = True
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
        self._sequence: SobolSequence | None = None  # made at the first ask

    def _propose(
        self,
        n: int,
        pending: list[dict[str, Any]],
        seed: int,
        fixed: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        # ``seed`` (the per-ask seed) is deliberately unused: see the class docstring.
        observed, failed = self._unit_observations()
        waiting = self.space.to_unit(pending) if pending else np.empty((0, self.space.dim))
        if self._sequence is None or self._sequence.seed != self.seed:  # (a loaded state)
            self._sequence = SobolSequence(self.space.dim, self.seed)
        U = design_points(
            self.space,
            n,
            seed=self.seed,
            skip=len(observed) + len(pending),
            exclude=np.concatenate([observed, waiting]) if len(observed) or pending else None,
            avoid=np.concatenate([observed[failed], waiting]) if failed.any() or pending else None,
            constraints=self.input_constraints,
            fixed=fixed,
            sequence=self._sequence,
        )
        return self.space.from_unit(U)
