"""A campaign: parameters, objectives, planner, protocol and devices, run as one plan."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from sdl.planners import Categorical, Integer, Objective, Planner, Real, Space, make_planner

from ._loop import closed_loop
from ._progress import ProgressBar
from ._provenance import collect_provenance
from ._result import CampaignResult
from ._resume import InterruptedPolicy, ResumePlan, plan_resume
from .errors import StoreError
from .store import ZarrWriter, open_store
from .store._json import jsonable

__all__ = ["Campaign"]


def _parameter_spec(p: Any) -> dict[str, Any]:
    if isinstance(p, Categorical):
        return {"name": p.name, "kind": "categorical", "choices": list(p.choices)}
    if isinstance(p, Integer):
        return {"name": p.name, "kind": "integer", "low": p.low, "high": p.high}
    assert isinstance(p, Real)
    return {"name": p.name, "kind": "real", "low": p.low, "high": p.high, "log": p.log}


def _objective(o: Objective | Mapping[str, Any] | str) -> Objective:
    if isinstance(o, Objective):
        return o
    if isinstance(o, str):
        return Objective(o)
    return Objective(**o)


class Campaign:
    """An autonomous campaign: what to vary, what to optimize, how to measure it.

    Args:
        parameters: the parameters (a :class:`~sdl.planners.Space` or a list of
            ``Real``/``Integer``/``Categorical``); taken from ``planner`` when it is an instance.
        objectives: what to optimize (``Objective`` objects, dicts, or names to minimize).
        protocol: ``protocol(point, md=...) -> plan`` that runs one experiment (see
            :mod:`sdl.protocols`).
        planner: a :class:`~sdl.planners.Planner` instance or a registered planner name.
        planner_options: options for a planner given by name.
        devices: the ophyd devices the campaign uses (recorded in the metadata).
        budget: number of experiments (done + failed) to run.
        batch_size: points asked from the planner at a time.
        seed: seed of the planner built from a name.
        name: a name for people.
        metadata: extra metadata for the campaign run (e.g. the YAML config).

    Example:
        >>> campaign = Campaign(  # doctest: +SKIP
        ...     parameters=[Real("x", -5, 5)],
        ...     objectives=[Objective("det", goal="maximize")],
        ...     protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        ...     planner="botorch", budget=15)
        >>> campaign.run(store="runs/demo.zarr")  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        objectives: Sequence[Objective | Mapping[str, Any] | str],
        protocol: Callable[..., Any],
        parameters: Space | Iterable[Any] | None = None,
        planner: Planner | str = "botorch",
        planner_options: Mapping[str, Any] | None = None,
        devices: Mapping[str, Any] | Iterable[Any] = (),
        budget: int = 20,
        batch_size: int = 1,
        seed: int = 0,
        name: str = "campaign",
        metadata: Mapping[str, Any] | None = None,
    ):
        self.objectives = tuple(_objective(o) for o in objectives)
        if not self.objectives:
            raise ValueError("a campaign needs at least one objective")
        if isinstance(planner, Planner):
            if planner_options:
                raise ValueError("planner_options apply to a planner given by name only")
            if parameters is not None and list(Space(parameters).names) != planner.space.names:
                raise ValueError(
                    f"parameters {Space(parameters).names} differ from the planner's "
                    f"{planner.space.names}; give them once, to the planner"
                )
            self.planner = planner
            self.space = planner.space
        else:
            if parameters is None:
                raise ValueError("give the campaign its parameters (or a planner instance)")
            self.space = parameters if isinstance(parameters, Space) else Space(parameters)
            self.planner = make_planner(
                planner, self.space, self.objectives, seed=seed, **dict(planner_options or {})
            )
        if budget < 1:
            raise ValueError(f"budget must be at least 1, got {budget}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.protocol = protocol
        if isinstance(devices, Mapping):
            self.devices = dict(devices)
        else:
            self.devices = {d.name: d for d in devices}
        self.budget = int(budget)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.name = name
        self.metadata = dict(metadata or {})
        self.uid = str(uuid.uuid4())

    def describe(self) -> dict[str, Any]:
        """The campaign as JSON-able metadata (stored in the campaign run's start document)."""
        return {
            "uid": self.uid,
            "name": self.name,
            "parameters": [_parameter_spec(p) for p in self.space],
            "objectives": [
                {"name": o.name, "goal": o.goal, "key": o.key, "threshold": o.threshold,
                 "function": o.function if isinstance(o.function, str) or o.function is None
                 else f"{o.function.__module__}:{o.function.__qualname__}"}
                for o in self.objectives
            ],
            "planner": self.planner.name,
            "planner_class": f"{type(self.planner).__module__}:{type(self.planner).__qualname__}",
            "budget": self.budget,
            "batch_size": self.batch_size,
            "seed": self.planner.seed,
            "devices": sorted(self.devices),
            **self.metadata,
        }

    def plan(self, *, resume: ResumePlan | None = None):
        """The campaign as a bluesky plan, for ``RE(campaign.plan())``.

        Args:
            resume: where to start when continuing from a store (see :meth:`resume`).
        """
        md = {
            "sdl_campaign_uid": self.uid,
            "sdl_campaign": self.describe(),
            "sdl_provenance": jsonable(collect_provenance(self.devices)),
            "campaign_name": self.name,
        }
        return closed_loop(
            planner=self.planner,
            protocol=self.protocol,
            objectives=self.objectives,
            budget=self.budget,
            batch_size=self.batch_size,
            md=md,
            resume=resume,
        )

    def run(
        self,
        RE: RunEngine | None = None,
        *,
        store: str | os.PathLike,
        overwrite: bool = False,
        progress: bool = False,
        callbacks: Sequence[Callable[[str, dict], Any]] = (),
    ) -> CampaignResult:
        """Run the campaign to the end and return its summary, read from the store.

        Args:
            RE: the RunEngine to use; a new one (without SIGINT handling) if None.
            store: path of the Zarr store the documents stream into.
            overwrite: replace an existing store at that path.
            progress: show a progress bar in the terminal.
            callbacks: more RunEngine subscribers (live plots, ...).

        Raises:
            StoreError: ``store`` already holds a campaign and ``overwrite`` is False.
        """
        if not overwrite and (Path(store) / "zarr.json").exists():
            raise StoreError(
                f"store {store} already holds a campaign; choose another store path, "
                f"overwrite it (overwrite=True, or --overwrite on the command line), "
                f"or continue it (campaign.resume(store), or sdl resume)"
            )
        writer = ZarrWriter(store, overwrite=overwrite)
        return self._execute(RE, writer, self.plan(), progress, callbacks)

    def resume(
        self,
        RE: RunEngine | None = None,
        *,
        store: str | os.PathLike,
        policy: InterruptedPolicy = "rerun",
        budget: int | None = None,
        progress: bool = False,
        callbacks: Sequence[Callable[[str, dict], Any]] = (),
    ) -> CampaignResult:
        """Continue the campaign recorded in ``store`` (after a crash, a stop or an abort).

        This campaign must be built like the one that wrote the store (same parameters,
        objectives, planner kind, options and seed). Its planner is rebuilt from the store;
        experiments the crash left planned or running are marked interrupted and, by the
        ``rerun`` policy, measured again first (``skip``: not). The campaign keeps its uid.

        Args:
            RE: the RunEngine to use; a new one if None.
            store: the campaign's store.
            policy: ``"rerun"`` or ``"skip"`` for interrupted experiments.
            budget: a new total budget (done + failed, earlier runs included).
            progress: show a progress bar.
            callbacks: more RunEngine subscribers.
        """
        reader = open_store(store)
        stored = reader.campaign
        if not stored.get("uid"):
            raise StoreError(f"{store} holds no campaign to resume")
        if budget is not None:
            if budget < 1:
                raise ValueError(f"budget must be at least 1, got {budget}")
            self.budget = int(budget)
        resume = plan_resume(reader, self.planner, policy=policy)
        self.uid = stored["uid"]
        writer = ZarrWriter(store)
        return self._execute(RE, writer, self.plan(resume=resume), progress, callbacks)

    def _execute(self, RE, writer, plan, progress, callbacks) -> CampaignResult:
        if RE is None:
            RE = RunEngine({}, context_managers=[])
        subs = [writer, *callbacks]
        bar = None
        if progress:
            first = self.objectives[0]
            bar = ProgressBar(self.budget, first.name, first.minimize)
            subs.append(bar)
        tokens = [RE.subscribe(cb) for cb in subs]
        previous_hook = RE.state_hook

        def finish() -> None:
            RE.state_hook = previous_hook
            for token in tokens:
                RE.unsubscribe(token)
            writer.flush()
            if bar is not None:
                bar.close()

        def hook(new_state, old_state):
            writer.on_state_change(new_state, old_state)
            if previous_hook is not None:
                previous_hook(new_state, old_state)
            if new_state == "idle":  # the plan ended after a pause: resumed, stopped or aborted
                finish()

        RE.state_hook = hook
        t0 = time.monotonic()
        try:
            RE(plan)
        except RunEngineInterrupted:
            # Paused: keep writing; RE.resume() / RE.stop() / RE.abort() continue the plan
            # and the hook cleans up when the RunEngine is idle again.
            raise
        except BaseException:
            finish()
            raise
        finish()
        return CampaignResult.from_store(open_store(writer.path), time.monotonic() - t0)
