"""The ask/tell interface every planner implements.

Planners are pure: points in, proposals out. They hold the observations they were told,
a seed and the number of asks made, and nothing else that matters for their next
proposal. So :meth:`Planner.state_dict` is small, JSON-serialisable data, and a planner
rebuilt from the campaign store (same seed, same observations told again, same ask count)
proposes exactly what the original would have.
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sdl.errors import ConfigError

from ._constraints import (
    INPUT_TOLERANCE,
    LinearConstraint,
    OutcomeConstraint,
    max_violation,
    parse_input_constraints,
    parse_outcome_constraints,
)
from ._objective import Objective
from ._space import Space

__all__ = ["Planner", "Observation"]


@dataclass(frozen=True)
class Observation:
    """One told experiment: its point, its outcome per objective (NaN = failed), and the
    measured values of constrained quantities (``measured``; NaN or absent = unknown)."""

    point: dict[str, Any]
    outcome: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(not _finite(v) for v in self.outcome.values()) or not self.outcome


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


class Planner(ABC):
    """Base class of sdl planners: a small ask/tell core.

    Subclasses implement :meth:`_propose`; everything else (validation, bookkeeping,
    seeding, state) lives here.

    Args:
        space: the parameters to optimize.
        objectives: what to optimize; planners use ``name``, ``goal`` and ``threshold``.
        seed: seed of every random choice; the same seed, observations and ask count
            give the same proposal.
        outcome_constraints: bounds on measured quantities that are not objectives
            (:class:`~sdl.planners.OutcomeConstraint` or strings such as
            ``"viscosity <= 50"``); their values are told with the objectives.
        input_constraints: linear constraints over Real parameters in user units
            (:class:`~sdl.planners.LinearConstraint` or strings such as
            ``"a + b + c == 1"``); every proposal satisfies them within 1e-6.

    Raises:
        ConfigError: for constraints the planner does not support (the message names
            the planner that does).
    """

    #: registry name of the planner (``"botorch"``, ``"skopt"``, ``"sobol"``, ...)
    name: ClassVar[str] = "planner"
    #: capabilities; a planner that lacks one raises :class:`ConfigError` when it is used
    supports_fixed: ClassVar[bool] = False
    supports_outcome_constraints: ClassVar[bool] = False
    supports_input_constraints: ClassVar[bool] = False
    #: every ask takes well under a millisecond (no model): a caller may ask in its own
    #: thread rather than hand the ask to a worker thread (the closed loop does: the hop
    #: costs ~2 ms)
    quick_asks: ClassVar[bool] = False

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        *,
        seed: int | None = 0,
        outcome_constraints: Sequence[OutcomeConstraint | str] = (),
        input_constraints: Sequence[LinearConstraint | str] = (),
    ) -> None:
        if not isinstance(space, Space):
            space = Space(space)
        if not objectives:
            raise ValueError(f"{type(self).__name__} needs at least one objective")
        self.space = space
        self.objectives: tuple[Objective, ...] = tuple(objectives)
        self.seed = 0 if seed is None else int(seed)
        self.n_asks = 0
        self._observations: list[Observation] = []
        self._warm: list[Observation] = []
        # _unit_observations' memo: the observations it has converted, their rows, failed
        self._unit_memo: tuple[list[Observation], np.ndarray, np.ndarray] = (
            [],
            np.empty((0, space.dim)),
            np.empty(0, dtype=bool),
        )
        self._set_constraints(outcome_constraints, input_constraints)

    def _set_constraints(self, outcome_constraints: Any, input_constraints: Any) -> None:
        cls = type(self).__name__
        self.outcome_constraints = parse_outcome_constraints(
            outcome_constraints, self.objective_names
        )
        self.input_constraints = parse_input_constraints(input_constraints, self.space)
        if self.outcome_constraints and not self.supports_outcome_constraints:
            raise ConfigError(
                f"{cls} does not support outcome constraints "
                f"({[str(c) for c in self.outcome_constraints]}); use BoTorchPlanner"
            )
        if self.input_constraints and not self.supports_input_constraints:
            raise ConfigError(
                f"{cls} does not support input constraints "
                f"({[str(c) for c in self.input_constraints]}); use BoTorchPlanner or SobolPlanner"
            )

    # -- public API -------------------------------------------------------------------------

    @property
    def observations(self) -> tuple[Observation, ...]:
        """Everything told so far, in order."""
        return tuple(self._observations)

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def warm_start_observations(self) -> tuple[Observation, ...]:
        """Prior data given with :meth:`warm_start` (used by the model, not counted as told)."""
        return tuple(self._warm)

    def ask(
        self,
        n: int = 1,
        *,
        pending: Sequence[Mapping[str, Any]] = (),
        fixed: Mapping[str, Any] | None = None,
    ) -> list[dict]:
        """Propose ``n`` points to measure next.

        Args:
            n: number of points (a batch).
            pending: points already proposed and still being measured; planners that
                can, avoid proposing them again.
            fixed: parameter name -> value (user units) every point of this batch takes,
                e.g. ``{"oven_temp": 180.0}``; the other parameters are optimized.

        Returns:
            ``n`` dicts mapping parameter names to values in the user's units.

        Raises:
            ConfigError: for ``fixed`` on a planner that does not support it, or a fixed
                value outside the space.
        """
        if n < 1:
            raise ValueError(f"ask(n): n must be at least 1, got {n}")
        fixed = self._check_fixed(fixed)
        rng_seed = self._ask_seed()
        self.n_asks += 1
        extra = {"fixed": fixed} if fixed else {}
        points = self._propose(int(n), [dict(p) for p in pending], rng_seed, **extra)
        if len(points) != n:
            raise RuntimeError(f"{type(self).__name__} proposed {len(points)} points, not {n}")
        for p in points:
            p.update(fixed)
            self.space.validate(p)
            worst = max_violation(self.input_constraints, p)
            if worst > INPUT_TOLERANCE:
                raise RuntimeError(
                    f"{type(self).__name__} proposed {p}, which violates an input constraint "
                    f"by {worst:.3g} (a bug: please report it)"
                )
        return points

    def _check_fixed(self, fixed: Mapping[str, Any] | None) -> dict[str, Any]:
        fixed = dict(fixed or {})
        if not fixed:
            return fixed
        if not self.supports_fixed:
            raise ConfigError(
                f"{type(self).__name__} does not support fixed parameters "
                f"(ask(fixed={fixed})); use BoTorchPlanner or SobolPlanner"
            )
        for name, value in fixed.items():
            if name not in self.space.names:
                raise ConfigError(
                    f"ask(fixed=...): {name!r} is not a parameter (parameters: {self.space.names})"
                )
            if not self.space[name].contains(value):
                raise ConfigError(f"ask(fixed=...): {name}={value!r} is outside {self.space[name]}")
        return fixed

    def tell(
        self, points: Sequence[Mapping[str, Any]], outcomes: Sequence[Mapping[str, float]]
    ) -> None:
        """Record measured outcomes; a missing or non-finite objective marks a failure.

        ``outcomes`` may hold more keys than the objectives: the values of quantities
        named by ``outcome_constraints`` are kept (in :attr:`Observation.measured`),
        other keys are ignored.
        """
        self._observations.extend(self._clean(points, outcomes, "tell"))
        self._on_tell()

    def warm_start(self, data: Any, outcomes: Sequence[Mapping[str, float]] | None = None) -> int:
        """Add prior data (a DataFrame, a CSV path, ``(point, outcome)`` pairs, or
        ``points`` and ``outcomes``); see :func:`sdl.planners.warm_start`.

        Returns:
            The number of rows added.
        """
        from ._warm_start import warm_start

        return warm_start(self, data, outcomes)

    def _add_warm(
        self, points: Sequence[Mapping[str, Any]], outcomes: Sequence[Mapping[str, float]]
    ) -> None:
        self._warm.extend(self._clean(points, outcomes, "warm_start"))
        self._on_tell()

    def _clean(
        self,
        points: Sequence[Mapping[str, Any]],
        outcomes: Sequence[Mapping[str, float]],
        what: str,
    ) -> list[Observation]:
        if len(points) != len(outcomes):
            raise ValueError(f"{what}: {len(points)} points but {len(outcomes)} outcomes")
        constrained = [c.name for c in self.outcome_constraints]
        out_obs = []
        for pt, out in zip(points, outcomes):
            self.space.validate(pt)
            clean = {
                o.name: (float(out[o.name]) if _finite(out.get(o.name)) else math.nan)
                for o in self.objectives
            }
            measured = {
                name: (float(out[name]) if _finite(out.get(name)) else math.nan)
                for name in constrained
            }
            out_obs.append(Observation(dict(pt), clean, measured))
        return out_obs

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: enough to rebuild this planner exactly (observations,
        warm-start data and the constraints configuration included)."""

        def rows(observations: list[Observation]) -> list[dict[str, Any]]:
            return [
                {"point": o.point, "outcome": {**o.outcome, **o.measured}} for o in observations
            ]

        return {
            "planner": self.name,
            "seed": self.seed,
            "n_asks": self.n_asks,
            "observations": rows(self._observations),
            "warm_start": rows(self._warm),
            "outcome_constraints": [
                {"name": c.name, "op": c.op, "bound": c.bound} for c in self.outcome_constraints
            ],
            "input_constraints": [
                {"coefficients": dict(c.coefficients), "op": c.op, "bound": c.bound}
                for c in self.input_constraints
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` output (of a planner of the same kind).

        The constraints configuration in ``state`` (when present) replaces this planner's.
        """
        if state.get("planner", self.name) != self.name:
            raise ValueError(
                f"state belongs to planner {state.get('planner')!r}, not {self.name!r}"
            )
        self.seed = int(state["seed"])
        if "outcome_constraints" in state or "input_constraints" in state:
            self._set_constraints(
                state.get("outcome_constraints", ()), state.get("input_constraints", ())
            )
        self._observations = []
        self._warm = []
        warm = state.get("warm_start", [])
        if warm:
            self._add_warm([o["point"] for o in warm], [o["outcome"] for o in warm])
        obs = state.get("observations", [])
        if obs:
            self.tell([o["point"] for o in obs], [o["outcome"] for o in obs])
        self._on_tell()
        self.n_asks = int(state["n_asks"])

    def warm_up(self) -> None:  # noqa: B027 - optional hook
        """Do ahead of time the work this planner's first model-based ask would do for the
        first time in the process (lazy imports, first calls of its libraries), on
        made-up data in a copy: nothing this planner knows, proposes or draws changes.

        A lab calls it in the planner's worker while the first experiments run, so the
        stations do not wait for it later (docs/lab.md). This default does nothing.
        """

    # -- helpers for subclasses -------------------------------------------------------------

    def _ask_seed(self) -> int:
        """Seed of the current ask: a pure function of (seed, ask count)."""
        return int(np.random.SeedSequence([self.seed, self.n_asks]).generate_state(1)[0])

    def _on_tell(self) -> None:  # noqa: B027 - optional hook
        """Called after new observations arrive (e.g. to invalidate a cached model)."""

    def _all_observations(self) -> list[Observation]:
        """Warm-start data, then everything told: what a model learns from."""
        return self._warm + self._observations

    def _unit_observations(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit-cube rows (``n x d``) and failed flags (``n``) of :meth:`_all_observations`.

        Each observation is converted once: a campaign's asks would otherwise convert
        everything told at every ask, which made a Sobol ask grow from 0.8 ms (nothing
        told) to 4 ms (2000 told). The memo is extended while the observations only
        grow at the end, and rebuilt when anything before that changed (warm-start data
        added in front, a state loaded).
        """
        everything = self._all_observations()
        done, U, failed = self._unit_memo
        k = len(done)
        if k > len(everything) or not all(map(operator.is_, done, everything[:k])):
            k, U, failed = 0, U[:0], failed[:0]
        new = everything[k:]
        if new:
            U = np.concatenate([U, self.space.to_unit([o.point for o in new])])
            failed = np.concatenate([failed, [o.failed for o in new]])
            self._unit_memo = (everything, U, failed)
        return U, failed

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X`` (n x d unit cube), ``Y`` (n x m, maximization sense), ``ok`` (n bools),
        over warm-start data and told observations."""
        obs = self._all_observations()
        X = self.space.to_unit([o.point for o in obs]) if obs else np.empty((0, self.space.dim))
        Y = np.array(
            [[o.sign * ob.outcome[o.name] for o in self.objectives] for ob in obs], dtype=float
        ).reshape(len(obs), len(self.objectives))
        ok = np.all(np.isfinite(Y), axis=1)
        return X, Y, ok

    @abstractmethod
    def _propose(self, n: int, pending: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        """Return ``n`` points; use ``seed`` for every random choice.

        Planners with ``supports_fixed = True`` also take ``fixed`` (a dict of parameter
        values every point must take); it is passed only when non-empty.
        """
