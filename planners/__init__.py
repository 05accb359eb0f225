"""Planners: pure ask/tell optimizers that propose the next experiments."""

from ._base import Observation, Planner
from ._objective import Objective
from ._space import Categorical, Integer, Parameter, Real, Space

__all__ = [
    "Categorical",
    "Integer",
    "Objective",
    "Observation",
    "Parameter",
    "Planner",
    "Real",
    "Space",
]
