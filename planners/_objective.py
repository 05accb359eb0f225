"""Declared objectives: what a campaign optimizes, and in which direction."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Objective"]

Goal = Literal["minimize", "maximize"]


@dataclass(frozen=True)
class Objective:
    """One measured quantity the campaign optimizes.

    Planners use only ``name`` and ``goal``. The campaign computes the value of each
    objective from the readings of an experiment's run (see
    :func:`sdl.protocols.extract_objectives`): from the data key ``key`` (default: ``name``)
    or by calling ``function(readings)`` where ``readings`` maps data keys to values.

    Args:
        name: column name of the objective in the campaign table.
        goal: ``"minimize"`` or ``"maximize"``.
        key: data key in the experiment's readings holding the value (default ``name``).
        function: callable ``readings -> float`` or a ``"module:attribute"`` reference.
        threshold: for multi-objective campaigns, the worst acceptable value (optional).
    """

    name: str
    goal: Goal = "minimize"
    key: str | None = None
    function: Callable[[Mapping[str, Any]], float] | str | None = None
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.goal not in ("minimize", "maximize"):
            raise ValueError(
                f"objective {self.name!r}: goal must be 'minimize' or 'maximize', got {self.goal!r}"
            )
        if self.key is not None and self.function is not None:
            raise ValueError(f"objective {self.name!r}: give either key or function, not both")

    @property
    def minimize(self) -> bool:
        """True when smaller values are better."""
        return self.goal == "minimize"

    @property
    def sign(self) -> float:
        """+1 for maximize, -1 for minimize: ``sign * value`` is always to be maximized."""
        return -1.0 if self.minimize else 1.0
