"""What a finished campaign reports, derived from its store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .store import CampaignStore

__all__ = ["CampaignResult"]


@dataclass(frozen=True)
class CampaignResult:
    """Summary of a campaign, read back from its store (the single source of truth).

    Attributes:
        store_path: where the store is.
        n_done: experiments that produced objective values.
        n_failed: experiments recorded as failed.
        n_interrupted: experiments interrupted by a stop or a crash.
        n_rerun: failed experiments whose point was measured again (an instrument failure
            re-run; it does not count against the budget): the budget counts
            ``n_done + n_failed - n_rerun``.
        n_rejected: proposals an operator rejected (never measured).
        best_point: parameters of the best experiment (first objective), or None.
        best_objectives: objective values of that experiment.
        wall_time: seconds the run took (NaN when unknown).
        pareto_front: with several objectives, the non-dominated done experiments as
            ``(point, objective values)`` pairs; with one, the best experiment.
    """

    store_path: Path
    n_done: int
    n_failed: int
    n_interrupted: int
    best_point: dict[str, Any] | None
    best_objectives: dict[str, float] = field(default_factory=dict)
    wall_time: float = float("nan")
    pareto_front: tuple[tuple[dict[str, Any], dict[str, float]], ...] = ()
    n_rerun: int = 0
    n_rejected: int = 0

    @classmethod
    def from_store(cls, store: CampaignStore, wall_time: float = float("nan")) -> CampaignResult:
        df = store.to_dataframe()
        done = df[df["status"] == "done"]
        best_point, best_obj = None, {}
        objectives = store.campaign.get("objectives", [])
        if len(done) and objectives:
            first = objectives[0]
            values = done[first["name"]].to_numpy(dtype=float)
            i = int(
                np.nanargmin(values) if first.get("goal") == "minimize" else np.nanargmax(values)
            )
            row = done.iloc[i]
            best_point = {p: _plain(row[p]) for p in store.parameter_names}
            best_obj = {o: float(row[o]) for o in store.objective_names}
        front = store.pareto_front_of(df)
        pareto = tuple(
            (
                {p: _plain(row[p]) for p in store.parameter_names},
                {o: float(row[o]) for o in store.objective_names},
            )
            for _, row in front.iterrows()
        )
        return cls(
            pareto_front=pareto,
            store_path=store.path,
            n_done=int((df["status"] == "done").sum()),
            n_failed=int((df["status"] == "failed").sum()),
            n_interrupted=int((df["status"] == "interrupted").sum()),
            n_rerun=int((df["status"] == "failed").sum()) - _failed_spent(df),
            n_rejected=int((df["status"] == "rejected").sum()),
            best_point=best_point,
            best_objectives=best_obj,
            wall_time=float(wall_time),
        )

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"experiments: {self.n_done} done, {self.n_failed} failed"
            + (f" ({self.n_rerun} of them measured again)" if self.n_rerun else "")
            + (f", {self.n_interrupted} interrupted" if self.n_interrupted else "")
            + (f", {self.n_rejected} rejected" if self.n_rejected else ""),
        ]
        if self.best_point is not None:
            point = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_point.items())
            objs = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_objectives.items())
            lines.append(f"best: {objs} at {point}")
        else:
            lines.append("best: none (no experiment finished)")
        if len(self.best_objectives) > 1:
            lines.append(f"Pareto front: {len(self.pareto_front)} experiment(s)")
        if np.isfinite(self.wall_time):
            lines.append(f"wall time: {self.wall_time:.1f} s")
        lines.append(f"store: {self.store_path}")
        return "\n".join(lines)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _failed_spent(df) -> int:
    from ._lifecycle import budget_spent

    return budget_spent(df) - int((df["status"] == "done").sum())
