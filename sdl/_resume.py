"""Continue a campaign from its store: what was done, what was cut, what to re-run.

The store is the single source of truth. Resuming reads the campaign table, tells the
planner every recorded result again in the order they were told (experiment id order),
sets its ask count to the number of asks recorded, and marks every experiment left
``planned`` or ``running`` by the crash as ``interrupted``. By the ``rerun`` policy (the
default) those points are then measured again, as new experiments, before the planner
is asked for more; by ``skip`` they are not. Either way the planner proposes next what an
uninterrupted campaign would have, for a deterministic planner and seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from sdl.errors import StoreError
from sdl.planners import Planner

from ._lifecycle import Experiment, Status
from .store import CampaignStore

__all__ = ["ResumePlan", "plan_resume", "InterruptedPolicy"]

InterruptedPolicy = Literal["rerun", "skip"]


@dataclass(frozen=True)
class ResumePlan:
    """How a resumed campaign starts.

    Attributes:
        completed: experiments already done or failed (they count against the budget).
        next_id: id of the next new experiment.
        next_batch: index of the next planner ask.
        to_interrupt: experiments left planned/running, to be marked interrupted first.
        reruns: points to measure again before asking the planner (``rerun`` policy).
        previous_runs: uids of the earlier campaign runs.
    """

    completed: int
    next_id: int
    next_batch: int
    to_interrupt: tuple[Experiment, ...] = ()
    reruns: tuple[Experiment, ...] = ()
    previous_runs: tuple[str, ...] = field(default_factory=tuple)


def _orphan_runs(store: CampaignStore, campaign_uid: str) -> dict[int, str]:
    """experiment id -> uid of its run, for runs the crash left without a stop document."""
    found: dict[int, str] = {}
    for uid in store.runs():
        run = store.run(uid)
        start = run.start
        if start.get("sdl_campaign_uid") == campaign_uid and "sdl_experiment_id" in start:
            if run.stop is None:
                found[int(start["sdl_experiment_id"])] = uid
    return found


def plan_resume(
    store: CampaignStore, planner: Planner, *, policy: InterruptedPolicy = "rerun"
) -> ResumePlan:
    """Restore ``planner`` from ``store`` and work out how the campaign continues.

    Args:
        store: the campaign's store.
        planner: a fresh planner built like the original (same kind, options and seed).
        policy: ``"rerun"`` measures interrupted points again; ``"skip"`` leaves them.

    Raises:
        StoreError: the store and the planner disagree on parameters or objectives, or the
            planner has already been told something.
    """
    if policy not in ("rerun", "skip"):
        raise ValueError(f"policy must be 'rerun' or 'skip', got {policy!r}")
    if planner.observations or planner.n_asks:
        raise StoreError("resume needs a fresh planner; this one has already been used")
    if store.parameter_names != planner.space.names:
        raise StoreError(
            f"the store's parameters {store.parameter_names} differ from the campaign's "
            f"{planner.space.names}; resume with the campaign that wrote the store"
        )
    if store.objective_names != planner.objective_names:
        raise StoreError(
            f"the store's objectives {store.objective_names} differ from the campaign's "
            f"{planner.objective_names}"
        )
    df = store.to_dataframe().sort_index()
    params, objs = store.parameter_names, [*store.objective_names, *store.measurement_names]
    completed = df[df["status"].isin(["done", "failed"])]
    points = [{p: _plain(row[p]) for p in params} for _, row in completed.iterrows()]
    outcomes = [
        {o: (float(row[o]) if row["status"] == "done" else math.nan) for o in objs}
        for _, row in completed.iterrows()
    ]
    if points:
        planner.tell(points, outcomes)
    planner.n_asks = int(df["batch"].max()) + 1 if len(df) else 0

    cut = df[df["status"].isin(["planned", "running"])]
    orphans = _orphan_runs(store, store.campaign.get("uid", "")) if len(cut) else {}
    next_id = int(df.index.max()) + 1 if len(df) else 0
    to_interrupt, reruns = [], []

    def rerun(exp_id: int, point: dict[str, Any], batch: int) -> str:
        if policy != "rerun":
            return "not re-run (policy 'skip')"
        new_id = next_id + len(reruns)
        reruns.append(Experiment(id=new_id, batch=batch, point=point))
        return f"re-run as experiment {new_id}"

    # interrupted earlier (abort, stop) and not measured again since
    for exp_id, row in df[df["status"] == "interrupted"].iterrows():
        point = {p: _plain(row[p]) for p in params}
        later = completed[(completed.index > exp_id) & (completed["batch"] == row["batch"])]
        if not any(all(r[p] == point[p] for p in params) for _, r in later.iterrows()):
            rerun(int(exp_id), point, int(row["batch"]))
    # left planned or running by a crash: interrupt them now
    for exp_id, row in cut.iterrows():
        point = {p: _plain(row[p]) for p in params}
        status = Status(row["status"])
        what = rerun(int(exp_id), point, int(row["batch"]))
        cause = f"the campaign process ended while this experiment was {status.value}; {what}"
        to_interrupt.append(
            Experiment(
                id=int(exp_id),
                batch=int(row["batch"]),
                point=point,
                status=status,
                run_uid=orphans.get(int(exp_id), ""),
                cause=cause,
            )
        )
    reruns.sort(key=lambda e: e.id)
    return ResumePlan(
        completed=len(completed),
        next_id=next_id + len(reruns),
        next_batch=planner.n_asks,
        to_interrupt=tuple(to_interrupt),
        reruns=tuple(reruns),
        previous_runs=tuple(store.campaign_runs),
    )


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
