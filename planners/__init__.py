"""Planners: pure ask/tell optimizers that propose the next experiments.

:class:`BoTorchPlanner` and :class:`SkoptPlanner` are imported on first use, so that
``import sdl.planners`` does not pay for importing torch, BoTorch or scikit-optimize.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import Observation, Planner
from ._constraints import LinearConstraint, OutcomeConstraint
from ._objective import Objective
from ._pareto import hypervolume, pareto_front
from ._registry import available_planners, get_planner_class, make_planner
from ._sobol import SobolPlanner
from ._space import Categorical, Integer, Parameter, Real, Space
from ._warm_start import warm_start

if TYPE_CHECKING:
    from ._botorch import BoTorchPlanner
    from ._skopt import SkoptPlanner

__all__ = [
    "BoTorchPlanner",
    "Categorical",
    "Integer",
    "LinearConstraint",
    "Objective",
    "Observation",
    "OutcomeConstraint",
    "Parameter",
    "Planner",
    "Real",
    "SkoptPlanner",
    "SobolPlanner",
    "Space",
    "available_planners",
    "get_planner_class",
    "hypervolume",
    "make_planner",
    "pareto_front",
    "warm_start",
]

_LAZY = {"BoTorchPlanner": "._botorch", "SkoptPlanner": "._skopt"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
