"""Warm start: seed a planner with prior data (a DataFrame, a CSV file, or point/outcome pairs).

Warm-start rows are kept apart from the observations told during the campaign
(:attr:`~sdl.planners.Planner.warm_start_observations`): models learn from both, the
campaign's experiment count is unchanged, and :meth:`~sdl.planners.Planner.state_dict`
carries them, so a restored planner proposes the same.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sdl.errors import ConfigError

from ._space import Categorical, Integer, Real

if TYPE_CHECKING:
    from ._base import Planner

__all__ = ["warm_start"]

#: a ``status`` column value that marks a failed experiment (as in ``sdl`` stores)
FAILED = "failed"
#: rows with these statuses carry no outcome and are skipped
_SKIPPED = ("planned", "running", "interrupted")


def warm_start(
    planner: Planner, data: Any, outcomes: Sequence[Mapping[str, float]] | None = None
) -> int:
    """Give ``planner`` prior experiments to learn from before its first ask.

    Args:
        planner: the planner to seed.
        data: one of

            * a pandas ``DataFrame`` whose columns include every parameter and every
              objective (and constrained quantity); other columns are ignored, except
              ``status``: rows with ``status == "failed"`` are failures (NaN outcome) and
              rows ``planned`` / ``running`` / ``interrupted`` are skipped — so
              ``sdl.open_store(path).to_dataframe()`` can be passed as it is;
            * a path (``str`` or ``os.PathLike``) of a CSV file with such columns;
            * a sequence of ``(point, outcome)`` pairs;
            * a sequence of points, with ``outcomes`` the matching outcome dicts.
        outcomes: outcome dicts, when ``data`` is a sequence of points.

    Returns:
        The number of rows added.

    Raises:
        ConfigError: naming the row, for a row with a parameter missing or outside the
            space, or a table lacking a parameter or objective column.
    """
    if outcomes is not None:
        pairs = list(zip(list(data), list(outcomes), strict=True))
        labels = [f"row {i}" for i in range(len(pairs))]
    elif isinstance(data, (str, os.PathLike)):
        import pandas as pd

        pairs, labels = _from_frame(planner, pd.read_csv(data), source=str(data))
    elif _is_dataframe(data):
        pairs, labels = _from_frame(planner, data, source="DataFrame")
    else:
        pairs = [(dict(p), dict(o)) for p, o in data]
        labels = [f"row {i}" for i in range(len(pairs))]

    points, outs = [], []
    for (point, outcome), label in zip(pairs, labels):
        try:
            point = _coerce_point(planner, point)
            planner.space.validate(point)
        except (ValueError, TypeError) as err:
            raise ConfigError(f"warm start, {label}: {err}; fix or drop that row") from None
        points.append(point)
        outs.append(outcome)
    planner._add_warm(points, outs)
    return len(points)


def _is_dataframe(obj: Any) -> bool:
    pandas = sys.modules.get("pandas")  # not imported here: a DataFrame means it is loaded
    return pandas is not None and isinstance(obj, pandas.DataFrame)


def _from_frame(planner: Planner, df: Any, source: str) -> tuple[list, list[str]]:
    columns = [str(c) for c in df.columns]
    missing = [n for n in planner.space.names if n not in columns]
    if missing:
        raise ConfigError(
            f"warm start from {source}: no column for parameters {missing} (columns: {columns})"
        )
    wanted = planner.objective_names + [c.name for c in planner.outcome_constraints]
    status = df["status"] if "status" in columns else None
    missing = [n for n in planner.objective_names if n not in columns]
    if missing and (status is None or any(str(s) != FAILED for s in status)):
        raise ConfigError(
            f"warm start from {source}: no column for objectives {missing} (columns: {columns})"
        )
    pairs, labels = [], []
    for i, (index, row) in enumerate(df.iterrows()):
        state = str(row["status"]) if status is not None else "done"
        if state in _SKIPPED:
            continue
        point = {n: _plain(row[n]) for n in planner.space.names}
        if state == FAILED:
            outcome = dict.fromkeys(wanted, math.nan)
        else:
            outcome = {n: _plain(row[n]) for n in wanted if n in columns}
        pairs.append((point, outcome))
        labels.append(f"row {i} (index {index!r})")
    return pairs, labels


def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> Python scalars."""
    return value.item() if hasattr(value, "item") else value


def _coerce_point(planner: Planner, point: Mapping[str, Any]) -> dict[str, Any]:
    """Values as read from a table -> the space's types (3.0 -> 3, "1" -> choice 1)."""
    out = dict(point)
    for p in planner.space.parameters:
        if p.name not in out:
            continue
        v = out[p.name]
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(f"parameter {p.name!r} is missing (NaN)")
        if isinstance(p, Real):
            out[p.name] = float(v)
        elif isinstance(p, Integer) and isinstance(v, float) and v == int(v):
            out[p.name] = int(v)
        elif isinstance(p, Categorical) and v not in p.choices:
            matches = [c for c in p.choices if str(c) == str(v)]
            if matches:
                out[p.name] = matches[0]
    return out
