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

from ._failures import FailureKind
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
        instrument_failures: id of the first experiment of a chain -> instrument failures
            recorded in that chain (so re-runs are not granted twice across a crash).
        rejected: points an operator rejected (passed to later asks as pending).
        out_of_service: a lab's stations out of service when the store was last written
            (they stay out until an operator puts them back).
        in_flight: a lab's experiments the crash left running, by id
            (:class:`sdl.lab._reconcile.InFlight`): a backend whose stations outlived the
            crash takes them up where they were instead of re-running them.
    """

    completed: int
    next_id: int
    next_batch: int
    to_interrupt: tuple[Experiment, ...] = ()
    reruns: tuple[Experiment, ...] = ()
    previous_runs: tuple[str, ...] = field(default_factory=tuple)
    instrument_failures: dict[int, int] = field(default_factory=dict)
    rejected: tuple[dict[str, Any], ...] = ()
    out_of_service: tuple[str, ...] = ()
    in_flight: dict[int, Any] = field(default_factory=dict)


def _orphan_runs(store: CampaignStore, campaign_uid: str) -> dict[int, str]:
    """experiment id -> uid of its run, for runs the crash left without a stop document."""
    found: dict[int, str] = {}
    for uid, (start, stop) in store.run_documents().items():
        if start.get("sdl_campaign_uid") == campaign_uid and "sdl_experiment_id" in start:
            if stop is None:
                found[int(start["sdl_experiment_id"])] = uid
    return found


def plan_resume(
    store: CampaignStore,
    planner: Planner,
    *,
    policy: InterruptedPolicy = "rerun",
    instrument_reruns: int = 1,
) -> ResumePlan:
    """Restore ``planner`` from ``store`` and work out how the campaign continues.

    Experiments that measure the same point again (a re-run of an interrupted experiment,
    or of one failed by its instrument) name the first of them in ``rerun_of``; together
    they form a *chain*. A chain counts once against the budget when one of its members
    is done or failed by its sample (or failed by its instrument more often than
    ``instrument_reruns`` allows), and is measured again -- by exactly one new member --
    when its last member was interrupted, cut by a crash, or failed by its instrument with
    re-runs left. So however many times the campaign is killed, a point is re-run at most
    once per original experiment.

    Args:
        store: the campaign's store.
        planner: a fresh planner built like the original (same kind, options and seed).
        policy: ``"rerun"`` measures interrupted points again; ``"skip"`` leaves them.
        instrument_reruns: the campaign's ``instrument_reruns`` option.

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
    instrument = (df["status"] == "failed") & (df["failure_kind"] == FailureKind.INSTRUMENT.value)
    outcome = (df["status"] == "done") | ((df["status"] == "failed") & ~instrument)
    told = df[outcome]  # an instrument's failure was never told to the planner
    points = [{p: _plain(row[p]) for p in params} for _, row in told.iterrows()]
    outcomes = [
        {o: (float(row[o]) if row["status"] == "done" else math.nan) for o in objs}
        for _, row in told.iterrows()
    ]
    if points:
        planner.tell(points, outcomes)
    planner.n_asks = int(df["batch"].max()) + 1 if len(df) else 0

    cut = df[df["status"].isin(["planned", "running"])]
    orphans = _orphan_runs(store, store.campaign.get("uid", "")) if len(cut) else {}
    next_id = int(df.index.max()) + 1 if len(df) else 0
    legacy = not store.has_table_column("rerun_of")  # written before re-runs were linked
    to_interrupt: list[Experiment] = []
    reruns: list[Experiment] = []
    failures: dict[int, int] = {}
    completed = 0

    roots = df["rerun_of"].where(df["rerun_of"] >= 0, df.index.to_series())
    for root, chain in df.groupby(roots, sort=True):
        root = int(root)
        last = chain.iloc[-1]
        point = {p: _plain(last[p]) for p in params}
        if last["status"] == Status.REJECTED.value:  # never measured; never re-run
            continue
        settled = int(outcome[chain.index].sum())
        failures[root] = int(instrument[chain.index].sum())
        completed += settled
        if settled:
            why = "not re-run (its point was measured)"
        elif last["status"] == "failed":  # by its instrument
            if failures[root] > instrument_reruns:
                completed += 1
                continue
            why = ""
        elif policy != "rerun":
            why = "not re-run (policy 'skip')"
        elif (
            legacy
            and last["status"] == "interrupted"
            and _measured_later(df, outcome, last, params)
        ):
            why = "not re-run (its point was measured)"
        else:
            why = ""
        if not why:
            new_id = next_id + len(reruns)
            reruns.append(
                Experiment(id=new_id, batch=int(last["batch"]), point=point, rerun_of=root)
            )
            why = f"re-run as experiment {new_id}"
        for exp_id, row in chain[chain["status"].isin(["planned", "running"])].iterrows():
            status = Status(row["status"])
            to_interrupt.append(
                Experiment(
                    id=int(exp_id),
                    batch=int(row["batch"]),
                    point={p: _plain(row[p]) for p in params},
                    status=status,
                    run_uid=orphans.get(int(exp_id), ""),
                    cause=f"the campaign process ended while this experiment was "
                    f"{status.value}; {why}",
                    rerun_of=int(row["rerun_of"]),
                )
            )
    return ResumePlan(
        out_of_service=_out_of_service(store),
        completed=completed,
        next_id=next_id + len(reruns),
        next_batch=planner.n_asks,
        to_interrupt=tuple(sorted(to_interrupt, key=lambda e: e.id)),
        reruns=tuple(reruns),
        previous_runs=tuple(store.campaign_runs),
        instrument_failures=failures,
        rejected=tuple(
            {p: _plain(row[p]) for p in params}
            for _, row in df[df["status"] == Status.REJECTED.value].iterrows()
        ),
    )


def _out_of_service(store: CampaignStore) -> tuple[str, ...]:
    """A lab's stations whose last service record says out of service."""
    if "workflow" not in store.campaign:
        return ()
    log = store.station_log()
    if log.empty:
        return ()
    last = log.sort_values("time").groupby("station")["in_service"].last()
    return tuple(sorted(str(name) for name, value in last.items() if int(value) == 0))


def _measured_later(df, outcome, row, params) -> bool:
    """Stores without ``rerun_of``: was this interrupted point measured in its batch since?"""
    later = df[outcome & (df.index > row.name) & (df["batch"] == row["batch"])]
    return any(all(r[p] == row[p] for p in params) for _, r in later.iterrows())


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v
