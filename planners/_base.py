"""The ask/tell interface every planner implements.

Planners are pure: points in, proposals out. They hold the observations they were told,
a seed and the number of asks made, and nothing else that matters for their next
proposal. So :meth:`Planner.state_dict` is small, JSON-serialisable data, and a planner
rebuilt from the campaign store (same seed, same observations told again, same ask count)
proposes exactly what the original would have.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ._objective import Objective
from ._space import Space

__all__ = ["Planner", "Observation"]


@dataclass(frozen=True)
class Observation:
    """One told experiment: its point and its outcome per objective (NaN = failed)."""

    point: dict[str, Any]
    outcome: dict[str, float] = field(default_factory=dict)

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
        objectives: what to optimize; planners use ``name`` and ``goal`` only.
        seed: seed of every random choice; the same seed, observations and ask count
            give the same proposal.
    """

    #: registry name of the planner (``"botorch"``, ``"skopt"``, ``"sobol"``, ...)
    name: ClassVar[str] = "planner"

    def __init__(
        self, space: Space, objectives: Sequence[Objective], *, seed: int | None = 0
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

    # -- public API -------------------------------------------------------------------------

    @property
    def observations(self) -> tuple[Observation, ...]:
        """Everything told so far, in order."""
        return tuple(self._observations)

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def ask(self, n: int = 1, *, pending: Sequence[Mapping[str, Any]] = ()) -> list[dict]:
        """Propose ``n`` points to measure next.

        Args:
            n: number of points (a batch).
            pending: points already proposed and still being measured; planners that
                can, avoid proposing them again.

        Returns:
            ``n`` dicts mapping parameter names to values in the user's units.
        """
        if n < 1:
            raise ValueError(f"ask(n): n must be at least 1, got {n}")
        rng_seed = self._ask_seed()
        self.n_asks += 1
        points = self._propose(int(n), [dict(p) for p in pending], rng_seed)
        if len(points) != n:
            raise RuntimeError(f"{type(self).__name__} proposed {len(points)} points, not {n}")
        for p in points:
            self.space.validate(p)
        return points

    def tell(
        self, points: Sequence[Mapping[str, Any]], outcomes: Sequence[Mapping[str, float]]
    ) -> None:
        """Record measured outcomes; a missing or non-finite value marks a failure."""
        if len(points) != len(outcomes):
            raise ValueError(f"tell: {len(points)} points but {len(outcomes)} outcomes")
        for pt, out in zip(points, outcomes):
            self.space.validate(pt)
            clean = {
                o.name: (float(out[o.name]) if _finite(out.get(o.name)) else math.nan)
                for o in self.objectives
            }
            self._observations.append(Observation(dict(pt), clean))
        self._on_tell()

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: enough to rebuild this planner exactly."""
        return {
            "planner": self.name,
            "seed": self.seed,
            "n_asks": self.n_asks,
            "observations": [
                {"point": o.point, "outcome": o.outcome} for o in self._observations
            ],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` output (of a planner of the same kind)."""
        if state.get("planner", self.name) != self.name:
            raise ValueError(
                f"state belongs to planner {state.get('planner')!r}, not {self.name!r}"
            )
        self.seed = int(state["seed"])
        self._observations = []
        obs = state.get("observations", [])
        if obs:
            self.tell([o["point"] for o in obs], [o["outcome"] for o in obs])
        self.n_asks = int(state["n_asks"])

    # -- helpers for subclasses -------------------------------------------------------------

    def _ask_seed(self) -> int:
        """Seed of the current ask: a pure function of (seed, ask count)."""
        return int(np.random.SeedSequence([self.seed, self.n_asks]).generate_state(1)[0])

    def _on_tell(self) -> None:  # noqa: B027 - optional hook
        """Called after new observations arrive (e.g. to invalidate a cached model)."""

    def _training_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``X`` (n x d unit cube), ``Y`` (n x m, maximization sense), ``ok`` (n bools)."""
        obs = self._observations
        X = self.space.to_unit([o.point for o in obs]) if obs else np.empty((0, self.space.dim))
        Y = np.array(
            [[o.sign * ob.outcome[o.name] for o in self.objectives] for ob in obs], dtype=float
        ).reshape(len(obs), len(self.objectives))
        ok = np.all(np.isfinite(Y), axis=1)
        return X, Y, ok

    @abstractmethod
    def _propose(
        self, n: int, pending: list[dict[str, Any]], seed: int
    ) -> list[dict[str, Any]]:
        """Return ``n`` points; use ``seed`` for every random choice."""
