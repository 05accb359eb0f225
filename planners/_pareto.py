"""The Pareto front of a multi-objective campaign, and the hypervolume it dominates.

Both work in the user's units and directions (each :class:`~sdl.planners.Objective`'s
``goal``) and import neither torch nor BoTorch.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._constraints import OutcomeConstraint
from ._objective import Objective

__all__ = ["hypervolume", "pareto_front", "pareto_mask"]


def _is_dataframe(source: Any) -> bool:
    """Whether ``source`` is a pandas ``DataFrame`` (without importing pandas here)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(source, pd.DataFrame)


def _records(source: Any) -> tuple[list[tuple[dict, dict]], tuple | None, tuple]:
    """``(point, outcome)`` pairs, plus objectives and outcome constraints when known."""
    from ._base import Observation, Planner

    if isinstance(source, Planner):
        pairs = [(o.point, {**o.outcome, **o.measured}) for o in source.observations]
        return pairs, source.objectives, source.outcome_constraints
    if _is_dataframe(source):
        rows = source.to_dict("records")
        if "status" in source.columns:
            rows = [r for r in rows if r.get("status") == "done"]
        return [(r, r) for r in rows], None, ()
    pairs = []
    for item in source:
        if isinstance(item, Observation):
            pairs.append((item.point, {**item.outcome, **item.measured}))
        else:
            point, outcome = item
            pairs.append((dict(point), dict(outcome)))
    return pairs, None, ()


def _signed(outcome: Mapping[str, Any], objectives: Sequence[Objective]) -> np.ndarray | None:
    """Outcome as a maximization-sense vector, or None if any objective is not finite."""
    values = []
    for o in objectives:
        try:
            v = float(outcome[o.name])
        except (KeyError, TypeError, ValueError):
            return None
        if not math.isfinite(v):
            return None
        values.append(o.sign * v)
    return np.array(values)


def pareto_mask(Y: Any, minimize: Sequence[bool] | None = None) -> np.ndarray:
    """Which rows of ``Y`` (``n x m``) are on the Pareto front: sdl's one definition.

    A row is on the front when no other row is at least as good in every column and
    better in one. Ties are kept: rows with equal values (duplicate experiments) are
    all on the front or all off it, since neither beats the other. A row with a
    non-finite value is never on the front and beats no other row. The store's
    :meth:`~sdl.store.Store.pareto_front`, :func:`pareto_front`, the live plot, the
    dashboard and the report all use this function.

    Args:
        Y: objective values, one row per experiment.
        minimize: per column, whether smaller is better; ``None``: larger is better in
            every column.

    Returns:
        Boolean array of length ``n``.

    Example:
        >>> pareto_mask([[1, 2], [1, 2], [2, 2], [0, 3]], [True, True]).tolist()
        [True, True, False, True]
    """
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2 or Y.shape[0] == 0:
        return np.zeros(Y.shape[0] if Y.ndim else 0, dtype=bool)
    if minimize is None:
        minimize = [False] * Y.shape[1]
    sign = np.where(np.asarray(minimize, dtype=bool), 1.0, -1.0)
    Z = Y * sign  # now smaller is better in every column
    ok = np.isfinite(Z).all(axis=1)
    others = Z[ok]
    mask = np.zeros(len(Z), dtype=bool)
    for i in np.flatnonzero(ok):
        beaten = np.all(others <= Z[i], axis=1) & np.any(others < Z[i], axis=1)
        mask[i] = not beaten.any()
    return mask


def pareto_front(
    source: Any,
    objectives: Sequence[Objective | str] | None = None,
    *,
    outcome_constraints: Iterable[OutcomeConstraint | str] = (),
) -> list[tuple[dict[str, Any], dict[str, float]]]:
    """The non-dominated experiments: ``[(point, outcome), ...]``.

    Failed experiments (a non-finite objective) and experiments that break an outcome
    constraint are left out. With one objective the front is the best experiment (all
    of them, if several tie). Ties are kept, as in :func:`pareto_mask`.

    Args:
        source: a :class:`~sdl.planners.Planner` (its told observations, objectives and
            outcome constraints), a sequence of :class:`~sdl.planners.Observation` or of
            ``(point, outcome)`` pairs, or a pandas ``DataFrame`` with one row per
            experiment (only rows with ``status == "done"`` count when a ``status``
            column exists; the whole row is returned as both point and outcome).
        objectives: the objectives (needed unless ``source`` is a planner); a plain
            name means ``Objective(name)`` (minimized).
        outcome_constraints: constraints a front member must satisfy (added to the
            planner's own).

    Returns:
        ``(point, outcome)`` pairs in the order of ``source``.
    """
    pairs, own_objectives, own_constraints = _records(source)
    if objectives is None:
        if own_objectives is None:
            raise ValueError("pareto_front: give the objectives (their names and goals)")
        objectives = own_objectives
    objs = [o if isinstance(o, Objective) else Objective(o) for o in objectives]
    constraints = list(own_constraints) + [
        c if isinstance(c, OutcomeConstraint) else OutcomeConstraint.parse(c)
        for c in outcome_constraints
    ]
    rows, Y = [], []
    for point, outcome in pairs:
        y = _signed(outcome, objs)
        if y is None:
            continue
        if any(not c.satisfied(_float(outcome.get(c.name))) for c in constraints):
            continue
        rows.append((point, outcome))
        Y.append(y)
    if not rows:
        return []
    keep = pareto_mask(np.array(Y))  # Y is in the maximization sense
    return [r for r, k in zip(rows, keep) if k]


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def hypervolume(
    outcomes: Iterable[Mapping[str, float]] | Any,
    objectives: Sequence[Objective | str],
    ref_point: Mapping[str, float] | Sequence[float] | None = None,
) -> float:
    """The hypervolume dominated by ``outcomes`` and bounded by ``ref_point``.

    Args:
        outcomes: outcome dicts (objective name -> value, user units), or anything
            :func:`pareto_front` accepts.
        objectives: the objectives and their goals.
        ref_point: worst acceptable value per objective (user units), as a dict or in
            objective order; default: each objective's ``threshold``.

    Returns:
        The hypervolume (product of the objectives' units); 0 when nothing dominates
        the reference point.
    """
    objs = [o if isinstance(o, Objective) else Objective(o) for o in objectives]
    if ref_point is None:
        if any(o.threshold is None for o in objs):
            raise ValueError("hypervolume: give ref_point or a threshold on every objective")
        ref = [float(o.threshold) for o in objs]
    elif isinstance(ref_point, Mapping):
        ref = [float(ref_point[o.name]) for o in objs]
    else:
        ref = [float(v) for v in ref_point]
    r = np.array([o.sign * v for o, v in zip(objs, ref)])
    from ._base import Observation, Planner

    if isinstance(outcomes, Planner) or _is_dataframe(outcomes):
        items = [out for _, out in pareto_front(outcomes, objs)]
    else:
        items = list(outcomes)
        if items and isinstance(items[0], (tuple, Observation)):
            items = [out for _, out in pareto_front(items, objs)]
    Y = [y for y in (_signed(o, objs) for o in items) if y is not None]
    Y = np.array([y for y in Y if np.all(y > r)]).reshape(-1, len(objs))
    if len(Y) == 0:
        return 0.0
    Y = Y[pareto_mask(Y)]
    if len(objs) == 1:
        return float(Y.max() - r[0])
    if len(objs) == 2:
        Y = Y[np.argsort(-Y[:, 0])]
        volume, prev_y1 = 0.0, r[1]
        for y0, y1 in Y:
            if y1 > prev_y1:
                volume += (y0 - r[0]) * (y1 - prev_y1)
                prev_y1 = y1
        return float(volume)
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    hv = Hypervolume(ref_point=torch.as_tensor(r, dtype=torch.float64))
    return float(hv.compute(torch.as_tensor(Y, dtype=torch.float64)))
