"""Objective values from the readings of one experiment."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from sdl.errors import ConfigError, ExperimentFailed
from sdl.planners import Objective

__all__ = ["extract_objectives", "resolve_reference"]


def resolve_reference(ref: str | Callable, *, what: str) -> Callable:
    """Import ``"module:attribute"`` (or return a callable unchanged).

    Raises:
        ConfigError: the reference is malformed or cannot be imported.
    """
    if callable(ref):
        return ref
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(f"{what}: expected 'module:attribute', got {ref!r}")
    module_name, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"{what}: cannot import {ref!r} ({err})") from err
    if not callable(obj):
        raise ConfigError(f"{what}: {ref!r} is not callable")
    return obj


def extract_objectives(
    objectives: Sequence[Objective], readings: Mapping[str, Any]
) -> dict[str, float]:
    """Compute each objective's value from an experiment's readings.

    Args:
        objectives: the declared objectives.
        readings: data key -> value, as read during the experiment's run.

    Returns:
        objective name -> float.

    Raises:
        ExperimentFailed: a data key is missing, a value is not a finite scalar, or an
            objective function raised; the message says which objective and why.
    """
    values: dict[str, float] = {}
    for obj in objectives:
        if obj.function is not None:
            fn = resolve_reference(obj.function, what=f"objective {obj.name!r} function")
            try:
                raw = fn(readings)
            except Exception as err:
                raise ExperimentFailed(
                    f"objective {obj.name!r}: function raised {type(err).__name__}: {err}"
                ) from err
            source = "its function"
        else:
            key = obj.key or obj.name
            if key not in readings:
                raise ExperimentFailed(
                    f"objective {obj.name!r}: data key {key!r} was not read; "
                    f"keys read: {sorted(readings)}"
                )
            raw = readings[key]
            source = f"data key {key!r}"
        try:
            value = float(np.asarray(raw, dtype=float).item())
        except (TypeError, ValueError) as err:
            raise ExperimentFailed(
                f"objective {obj.name!r}: {source} gave {raw!r}, not a scalar number"
            ) from err
        if not math.isfinite(value):
            raise ExperimentFailed(f"objective {obj.name!r}: {source} gave {value}")
        values[obj.name] = value
    return values
