"""Small numerics shared by the live plot, the dashboard and the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sdl.planners._pareto import pareto_mask as _pareto_mask

__all__ = ["best_so_far", "pareto_mask"]


def best_so_far(values: Sequence[float], minimize: bool = True) -> np.ndarray:
    """Running best of ``values`` (NaNs skipped; NaN until the first finite value).

    Example:
        >>> best_so_far([3.0, float("nan"), 1.0, 2.0]).tolist()
        [3.0, 3.0, 1.0, 1.0]
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    filled = np.where(np.isfinite(v), v, np.inf if minimize else -np.inf)
    run = np.minimum.accumulate(filled) if minimize else np.maximum.accumulate(filled)
    return np.where(np.isfinite(run), run, np.nan)


def pareto_mask(Y: np.ndarray, minimize: Sequence[bool]) -> np.ndarray:
    """Which rows of ``Y`` (``n x m``) are not dominated; rows with NaN never are.

    The one definition is :func:`sdl.planners._pareto.pareto_mask` (ties kept); the
    live plot, the dashboard and the report call it through this name.

    Args:
        Y: objective values, one row per experiment.
        minimize: per column, whether smaller is better.

    Returns:
        Boolean array of length ``n``.
    """
    return _pareto_mask(Y, minimize)
