"""Small numerics shared by the live plot, the dashboard and the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

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

    Args:
        Y: objective values, one row per experiment.
        minimize: per column, whether smaller is better.

    Returns:
        Boolean array of length ``n``.
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[0] == 0:
        return np.zeros(Y.shape[0] if Y.ndim else 0, dtype=bool)
    sign = np.where(np.asarray(minimize, dtype=bool), 1.0, -1.0)
    Z = Y * sign  # now smaller is better in every column
    ok = np.isfinite(Z).all(axis=1)
    mask = ok.copy()
    for i in np.flatnonzero(ok):
        others = Z[ok]
        dominated = np.any(np.all(others <= Z[i], axis=1) & np.any(others < Z[i], axis=1))
        mask[i] = not dominated
    return mask
