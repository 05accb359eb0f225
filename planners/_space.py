"""The parameter space and its mapping to the unit cube, shared by every planner.

A point is a ``dict`` mapping parameter names to values in the user's units. Planners
work on an ``n x d`` array in the unit cube ``[0, 1]^d`` with one column per parameter:

* :class:`Real` maps linearly (or in log10 when ``log=True``) onto ``[0, 1]``;
* :class:`Integer` maps ``low..high`` linearly onto ``[0, 1]`` and rounds back;
* :class:`Categorical` maps choice ``i`` of ``k`` to ``i / (k - 1)`` and rounds back
  (planners that model categories properly use :attr:`Space.categorical_columns` and the
  index encoding :meth:`Space.to_index` instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

__all__ = ["Real", "Integer", "Categorical", "Parameter", "Space"]


@dataclass(frozen=True)
class Real:
    """A continuous parameter in ``[low, high]`` (user units), optionally log-scaled."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(
                f"parameter {self.name!r}: low and high must be finite numbers "
                f"(got low={self.low}, high={self.high})"
            )
        if not self.low < self.high:
            raise ValueError(
                f"parameter {self.name!r}: low ({self.low}) must be less than high ({self.high})"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log-scaled range needs low > 0")

    def to_unit(self, value: Any) -> float:
        v = float(value)
        if self.log:
            return (math.log10(v) - math.log10(self.low)) / (
                math.log10(self.high) - math.log10(self.low)
            )
        return (v - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            lo, hi = math.log10(self.low), math.log10(self.high)
            return float(min(max(10 ** (lo + u * (hi - lo)), self.low), self.high))
        return float(self.low + u * (self.high - self.low))

    def contains(self, value: Any) -> bool:
        try:
            v = float(value)
        except (TypeError, ValueError):
            return False
        return self.low <= v <= self.high


@dataclass(frozen=True)
class Integer:
    """An integer parameter in ``low..high`` inclusive."""

    name: str
    low: int
    high: int

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(
                f"parameter {self.name!r}: low ({self.low}) must be less than high ({self.high})"
            )

    def to_unit(self, value: Any) -> float:
        return (float(value) - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> int:
        u = min(max(float(u), 0.0), 1.0)
        return int(round(self.low + u * (self.high - self.low)))

    def contains(self, value: Any) -> bool:
        try:
            return float(value) == int(value) and self.low <= int(value) <= self.high
        except (TypeError, ValueError):
            return False


@dataclass(frozen=True)
class Categorical:
    """A parameter taking one of a fixed set of ``choices`` (strings or numbers)."""

    name: str
    choices: tuple

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if len(self.choices) < 2:
            raise ValueError(f"parameter {self.name!r}: a categorical needs at least two choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"parameter {self.name!r}: choices must be distinct")

    def index(self, value: Any) -> int:
        try:
            return self.choices.index(value)
        except ValueError:
            raise ValueError(
                f"parameter {self.name!r}: {value!r} is not one of {list(self.choices)}"
            ) from None

    def to_unit(self, value: Any) -> float:
        return self.index(value) / (len(self.choices) - 1)

    def from_unit(self, u: float) -> Any:
        u = min(max(float(u), 0.0), 1.0)
        return self.choices[int(round(u * (len(self.choices) - 1)))]

    def contains(self, value: Any) -> bool:
        return value in self.choices


Parameter = Union[Real, Integer, Categorical]  # noqa: UP007 - a runtime alias on Python 3.10


class Space:
    """An ordered set of parameters.

    Args:
        parameters: the parameters, in column order.

    Example:
        >>> space = Space([Real("x", 0, 1), Categorical("solvent", ("water", "ethanol"))])
        >>> space.to_unit([{"x": 0.5, "solvent": "ethanol"}])
        array([[0.5, 1. ]])
    """

    def __init__(self, parameters: Iterable[Parameter]):
        self.parameters: tuple[Parameter, ...] = tuple(parameters)
        if not self.parameters:
            raise ValueError("a parameter space needs at least one parameter")
        names = [p.name for p in self.parameters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate parameter names: {dupes}")
        self._by_name = {p.name: p for p in self.parameters}

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self):
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        return self._by_name[name]

    def __repr__(self) -> str:
        return f"Space({list(self.parameters)!r})"

    @property
    def names(self) -> list[str]:
        """Parameter names in column order."""
        return [p.name for p in self.parameters]

    @property
    def dim(self) -> int:
        """Number of columns of the unit-cube representation."""
        return len(self.parameters)

    @property
    def integer_columns(self) -> list[int]:
        return [i for i, p in enumerate(self.parameters) if isinstance(p, Integer)]

    @property
    def categorical_columns(self) -> list[int]:
        return [i for i, p in enumerate(self.parameters) if isinstance(p, Categorical)]

    def validate(self, point: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` naming the parameter if ``point`` is not in the space."""
        missing = [n for n in self.names if n not in point]
        if missing:
            raise ValueError(f"point {dict(point)!r} lacks parameters {missing}")
        for p in self.parameters:
            if not p.contains(point[p.name]):
                raise ValueError(f"parameter {p.name!r}: value {point[p.name]!r} is outside {p}")

    def to_unit(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """``n`` points -> ``n x d`` array in the unit cube."""
        X = np.empty((len(points), self.dim), dtype=float)
        for i, pt in enumerate(points):
            for j, p in enumerate(self.parameters):
                X[i, j] = p.to_unit(pt[p.name])
        return X

    def from_unit(self, X: np.ndarray) -> list[dict[str, Any]]:
        """``n x d`` unit-cube array -> ``n`` points (integers and categories rounded)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        return [{p.name: p.from_unit(row[j]) for j, p in enumerate(self.parameters)} for row in X]

    def round_unit(self, X: np.ndarray) -> np.ndarray:
        """Snap unit-cube rows onto the values the space can take (integers, categories)."""
        return self.to_unit(self.from_unit(X))

    def to_index(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Like :meth:`to_unit` but categorical columns hold the choice index ``0..k-1``."""
        X = self.to_unit(points)
        for j in self.categorical_columns:
            p = self.parameters[j]
            X[:, j] = [p.index(pt[p.name]) for pt in points]
        return X

    def from_index(self, X: np.ndarray) -> list[dict[str, Any]]:
        """Inverse of :meth:`to_index`."""
        X = np.array(np.atleast_2d(X), dtype=float)
        for j in self.categorical_columns:
            k = len(self.parameters[j].choices)
            X[:, j] = np.clip(np.round(X[:, j]), 0, k - 1) / (k - 1)
        return self.from_unit(X)
