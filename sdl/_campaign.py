"""A campaign: parameters, objectives, planner, protocol and devices, run as one plan."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from sdl.planners import Categorical, Integer, Objective, Planner, Real, Space, make_planner

from ._lifecycle import Status
from ._loop import LoopOptions, closed_loop
from ._provenance import collect_provenance
from ._result import CampaignResult
from ._resume import InterruptedPolicy, ResumePlan, plan_resume
from ._session import SessionOptions, run_session
from .errors import ConfigError, StoreError
from .store import ZarrWriter, open_store
from .store._check import require_intact
from .store._json import jsonable

__all__ = ["Campaign"]

logger = logging.getLogger(__name__)


def _parameter_spec(p: Any) -> dict[str, Any]:
    if isinstance(p, Categorical):
        return {"name": p.name, "kind": "categorical", "choices": list(p.choices)}
    if isinstance(p, Integer):
        return {"name": p.name, "kind": "integer", "low": p.low, "high": p.high}
    assert isinstance(p, Real)
    return {"name": p.name, "kind": "real", "low": p.low, "high": p.high, "log": p.log}


def _reference(fn: Any) -> str | None:
    """A function as ``module:qualname`` text for the metadata."""
    if fn is None or isinstance(fn, str):
        return fn
    inner = getattr(fn, "func", fn)  # a functools.partial names its function
    name = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    text = f"{getattr(inner, '__module__', '?')}:{name}"
    return f"{text} (partial)" if inner is not fn else text


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
        measurements: other quantities to compute from each experiment's readings, store
            and tell the planner, declared like objectives (their goal is ignored): the
            quantities a planner's outcome constraints bound ("viscosity <= 50").
        approval: ``None`` (autonomous), ``"terminal"`` or ``"dashboard"``: an operator
            accepts, edits or rejects each batch before it runs (decisions are stored).
        operator: the operator's name for approvals (default ``$SDL_OPERATOR`` or login).
        safe_state: ``"devices"`` (each device's ``safe_state()`` / ``go_safe()``), a
            callable returning a plan, or None; run on an error, an abort, a stop and a pause.
        warm_start: prior data for the planner: a DataFrame, a CSV path, another store's
            path, or ``(point, outcome)`` pairs.
        lab: an :class:`sdl.lab.Lab` (its stations and shared resources); with
            ``workflow``, the campaign runs its experiments on them (docs/lab.md).
        workflow: the steps of one experiment (an :class:`sdl.lab.Workflow`).
        max_in_flight, lookahead, final_in_flight: a lab campaign's asking and starting
            policy (:class:`sdl.lab.LabOptions`).
        backend: a lab's station backend factory (default: one RunEngine per station).
        **options: the loop's policy, by name (:class:`~sdl.LoopOptions`): ``plan_ahead``,
            ``retries``, ``instrument_reruns``, ``status_timeout``,
            ``pause_after_failures``, ``pause_on_disconnect``, ``fixed``.

    Raises:
        TypeError: an option that is not one of the loop's.
        ValueError: an option out of range.

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
        protocol: Callable[..., Any] | None = None,
        parameters: Space | Iterable[Any] | None = None,
        planner: Planner | str = "botorch",
        planner_options: Mapping[str, Any] | None = None,
        devices: Mapping[str, Any] | Iterable[Any] = (),
        budget: int = 20,
        batch_size: int = 1,
        seed: int = 0,
        name: str = "campaign",
        metadata: Mapping[str, Any] | None = None,
        measurements: Sequence[Objective | Mapping[str, Any] | str] = (),
        approval: str | None = None,
        operator: str | None = None,
        safe_state: str | Callable[[], Any] | None = "devices",
        warm_start: Any = None,
        lab: Any = None,
        workflow: Any = None,
        max_in_flight: int | None = None,
        lookahead: int = 1,
        final_in_flight: int | None = None,
        backend: Callable[[Any], Any] | None = None,
        **options: Any,
    ):
        self.objectives = tuple(_objective(o) for o in objectives)
        if not self.objectives:
            raise ValueError("a campaign needs at least one objective")
        self.measurements = tuple(_objective(m) for m in measurements)
        names = [o.name for o in self.objectives + self.measurements]
        if len(set(names)) != len(names):
            raise ValueError(f"objective and measurement names must be unique: {names}")
        if isinstance(planner, Planner):
            if planner_options:
                raise ValueError("planner_options apply to a planner given by name only")
            if parameters is not None:
                given = parameters if isinstance(parameters, Space) else Space(parameters)
                if list(given.names) != planner.space.names:
                    raise ValueError(
                        f"parameters {given.names} differ from the planner's "
                        f"{planner.space.names}; give them once, to the planner"
                    )
                # ranges too: the planner proposes in its own, and a campaign's declared
                # range is often what the hardware may be driven to
                differ = [
                    f"{a} (the planner's: {b})" for a, b in zip(given, planner.space) if a != b
                ]
                if differ:
                    raise ValueError(
                        f"parameters differ from the planner's space: {'; '.join(differ)}; "
                        f"give them once, to the planner"
                    )

            # what the planner optimizes must be what the campaign reports as best
            def aims(objs):
                return [(o.name, o.goal, o.threshold) for o in objs]

            if aims(planner.objectives) != aims(self.objectives):
                raise ValueError(
                    f"objectives (name, goal, threshold) {aims(self.objectives)} differ from "
                    f"the planner's {aims(planner.objectives)}: the planner would optimize "
                    f"other than what the campaign reports as best; build the planner with "
                    f"the campaign's objectives"
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
        from sdl.protocols import check_protocol

        if isinstance(devices, Mapping):
            self.devices = dict(devices)
        else:
            self.devices = {d.name: d for d in devices}
        self.lab, self.workflow, self.lab_options = _lab_parts(
            lab, workflow, protocol, max_in_flight, lookahead, final_in_flight
        )
        self.backend_factory = backend
        if self.lab is not None:
            self.devices = {**self.lab.devices(), **self.devices}
        elif protocol is None:
            raise ValueError("give the campaign a protocol (or a lab and its workflow)")
        if protocol is not None:  # (also a one-station lab's, run as a one-step workflow)
            check_protocol(protocol, self.space.names)  # before anything runs or is stored
            _check_objective_sources(protocol, self.objectives, self.measurements)
        elif self.workflow is not None:
            _check_step_plans(self.workflow)
        self.protocol = protocol
        self.budget = int(budget)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.name = name
        self.metadata = dict(metadata or {})
        self.uid = str(uuid.uuid4())
        self._used = False
        if approval not in (None, "terminal", "dashboard"):
            raise ValueError(f"approval must be None, 'terminal' or 'dashboard', got {approval!r}")
        self.approval = approval
        self.operator = operator
        self.safe_state = safe_state
        self.loop_options = LoopOptions(
            batch_size=self.batch_size,
            safe_state=self._safe_state_plan if safe_state else None,
            **LoopOptions.policy(**options),
        )
        self.warm_start_source = None
        if warm_start is not None:
            self.warm_start_source = _warm_start(self.planner, warm_start)

    def describe(self) -> dict[str, Any]:
        """The campaign as JSON-able metadata (stored in the campaign run's start document)."""
        return {
            "uid": self.uid,
            "name": self.name,
            "parameters": [_parameter_spec(p) for p in self.space],
            "objectives": [
                {
                    "name": o.name,
                    "goal": o.goal,
                    "key": o.key,
                    "threshold": o.threshold,
                    "function": _reference(o.function),
                }
                for o in self.objectives
            ],
            "measurements": [
                {"name": m.name, "key": m.key, "function": _reference(m.function)}
                for m in self.measurements
            ],
            "planner": self.planner.name,
            "planner_class": f"{type(self.planner).__module__}:{type(self.planner).__qualname__}",
            "budget": self.budget,
            "batch_size": self.batch_size,
            "seed": self.planner.seed,
            "devices": sorted(self.devices),
            "approval": self.approval,
            **{
                name: getattr(self.loop_options, name)
                for name in LoopOptions.POLICY
                if not callable(getattr(self.loop_options, name))
            },
            "warm_start": self.warm_start_source,
            **self._describe_lab(),
            **self.metadata,
        }

    def _describe_lab(self) -> dict[str, Any]:
        if self.lab is None:
            return {}
        return {
            "lab": self.lab.describe(),
            "workflow": self.workflow.describe(),
            "max_in_flight": self.lab_options.max_in_flight,
            "lookahead": self.lab_options.lookahead,
            "final_in_flight": self.lab_options.final_in_flight,
        }

    def _claim(self) -> None:
        """A campaign object runs once: its planner and uid belong to one store."""
        if self._used:
            raise RuntimeError(
                f"campaign {self.name!r} (uid {self.uid}) has already run; its planner holds "
                f"that run's observations and its uid names that store. Build a new Campaign "
                f"with the same arguments to run again, or to resume a store"
            )
        self._used = True

    def plan(
        self,
        *,
        resume: ResumePlan | None = None,
        approve: Callable | None = None,
        additions: Callable | None = None,
        backend: Any = None,
        station_requests: Callable | None = None,
    ):
        """The campaign as a bluesky plan, for ``RE(campaign.plan())``. Once per campaign.

        Args:
            resume: where to start when continuing from a store (see :meth:`resume`).
            approve: ``approve(points, batch) -> ApprovalDecision`` run before each batch.
            additions: ``additions() -> ApprovalDecision | None``: operators' added points.
            backend: a lab campaign's :class:`~sdl.lab.StepBackend`, already open (its
                engines' documents subscribed to the store); required with a lab.
            station_requests: a lab campaign's operator requests to take stations out
                of service or back (``() -> [(station, enable, who)]``).

        Raises:
            RuntimeError: this campaign has already run (a plan was made before).
        """
        self._claim()
        md = {
            "sdl_campaign_uid": self.uid,
            "sdl_campaign": self.describe(),
            "sdl_provenance": jsonable(collect_provenance(self.devices)),
            "campaign_name": self.name,
        }
        if self.lab is not None:
            from sdl.lab import lab_loop

            if backend is None:
                raise ValueError(
                    "a lab campaign's plan needs its backend: sdl.lab.InProcessBackend(lab), "
                    "opened with the RunEngine's subscribers (Campaign.run does this)"
                )
            return lab_loop(
                planner=self.planner,
                lab=self.lab,
                workflow=self.workflow,
                backend=backend,
                objectives=self.objectives,
                measurements=self.measurements,
                budget=self.budget,
                md=md,
                resume=resume,
                options=replace(self.loop_options, approve=approve, additions=additions),
                lab_options=self.lab_options,
                station_requests=station_requests,
            )
        return closed_loop(
            planner=self.planner,
            protocol=self.protocol,
            objectives=self.objectives,
            measurements=self.measurements,
            budget=self.budget,
            batch_size=self.batch_size,
            md=md,
            resume=resume,
            options=replace(self.loop_options, approve=approve, additions=additions),
        )

    def run(
        self,
        RE: RunEngine | None = None,
        *,
        store: str | os.PathLike,
        overwrite: bool = False,
        store_options: Mapping[str, Any] | None = None,
        progress: bool = False,
        plot: bool = False,
        control: bool = False,
        interactive: bool = False,
        callbacks: Sequence[Callable[[str, dict], Any]] = (),
    ) -> CampaignResult:
        """Run the campaign to the end and return its summary, read from the store.

        Args:
            RE: the RunEngine to use; if None, :func:`sdl.control.make_run_engine` makes one
                (in a terminal, with ``interactive``, Ctrl-C pauses; otherwise SIGINT stops
                the campaign cleanly and a second SIGINT aborts it).
            store: path of the Zarr store the documents stream into.
            overwrite: replace an existing store at that path.
            store_options: the writer's ``flush_interval`` (seconds of array data at
                risk in a crash, default 1), ``log_flush_interval`` (seconds plain Zarr may
                lag behind the log, default 5), ``flush_rows``, ``flush_bytes`` and ``sync_to_disk``
                (see :class:`~sdl.store.ZarrWriter`).
            progress: show a progress bar in the terminal.
            plot: show live plots (objective, best so far, parameters, Pareto front).
            control: obey ``sdl pause|stop|abort STORE`` and the dashboard's controls, and
                at a pause wait for the operator's decision (also on with ``approval``).
            interactive: at a pause, also ask in this terminal (resume, stop, abort).
            callbacks: more RunEngine subscribers.

        Raises:
            StoreError: ``store`` already holds a campaign and ``overwrite`` is False.
            StoreLockedError: another live process writes to ``store`` (checked first,
                before anything is deleted or created).
            RuntimeError: this campaign has already run (build a new one to run again).
        """
        if self._used:
            self._claim()  # refused before any store is touched
        # the writer takes the store's lock before it checks, deletes or creates anything
        writer = ZarrWriter.open(store, store_options, overwrite=overwrite, new=True)
        options = SessionOptions(progress, plot, control, interactive, tuple(callbacks))
        return self._session(RE, writer, options)

    def resume(
        self,
        RE: RunEngine | None = None,
        *,
        store: str | os.PathLike,
        policy: InterruptedPolicy = "rerun",
        budget: int | None = None,
        store_options: Mapping[str, Any] | None = None,
        progress: bool = False,
        plot: bool = False,
        control: bool = False,
        interactive: bool = False,
        callbacks: Sequence[Callable[[str, dict], Any]] = (),
    ) -> CampaignResult:
        """Continue the campaign recorded in ``store`` (after a crash, a stop or an abort).

        This campaign must be built like the one that wrote the store (same parameters,
        objectives, planner kind, options and seed). Its planner is rebuilt from the store;
        experiments the crash left planned or running, and experiments an abort or stop
        interrupted, are measured again first by the ``rerun`` policy (``skip``: not).
        The campaign keeps its uid. Other arguments as for :meth:`run`.

        Args:
            policy: ``"rerun"`` or ``"skip"`` for interrupted experiments.
            budget: a new total budget (done + failed, earlier runs included).
        """
        if budget is not None and budget < 1:
            raise ValueError(f"budget must be at least 1, got {budget}")
        if self._used:
            self._claim()  # refused before any store is touched
        reader = open_store(store)
        # the lock before the check: from here on nobody else changes the store
        writer = ZarrWriter.open(store, store_options)
        try:
            # a damaged table would read as a shorter campaign, and be written over
            require_intact(writer.root)
            stored = reader.campaign
            if not stored.get("uid"):
                raise StoreError(f"{store} holds no campaign to resume")
            if budget is not None:
                self.budget = int(budget)
            resume = plan_resume(
                reader,
                self.planner,
                policy=policy,
                instrument_reruns=self.loop_options.instrument_reruns,
            )
            if self.lab is not None and resume.to_interrupt:
                from sdl.lab._reconcile import in_flight

                running = [e.id for e in resume.to_interrupt if e.status is Status.RUNNING]
                resume = replace(resume, in_flight=in_flight(reader, running))
        except BaseException:
            writer.close()
            raise
        self.uid = stored["uid"]
        options = SessionOptions(progress, plot, control, interactive, tuple(callbacks))
        return self._session(RE, writer, options, resume)

    # -- used by the session -----------------------------------------------------------------

    def _session(
        self,
        RE: RunEngine | None,
        writer: ZarrWriter,
        options: SessionOptions,
        resume: ResumePlan | None = None,
    ) -> CampaignResult:
        """Run the plan in a session that owns ``writer`` (closed on error)."""

        backend = None
        if self.lab is not None:
            from sdl.lab import InProcessBackend

            backend = (self.backend_factory or InProcessBackend)(self.lab)

        def make_plan(approve, additions, station_requests=None):
            return self.plan(
                resume=resume,
                approve=approve,
                additions=additions,
                backend=backend,
                station_requests=station_requests,
            )

        return _closing_on_error(
            writer, lambda: run_session(self, RE, writer, make_plan, options, backend)
        )

    def station_requests(self, watcher: Any) -> Callable | None:
        """Operators' station requests for a lab campaign (the control channel's ``station``)."""
        if self.lab is None:
            return None
        from sdl.control import take_station_requests

        names = list(self.lab.stations)
        return lambda: take_station_requests(watcher, names)

    def additions(self, watcher: Any) -> Callable | None:
        """Operators' added points for the loop (from the control channel's ``add``)."""
        from sdl.control import take_additions

        parameters = [_parameter_spec(p) for p in self.space]
        return lambda: take_additions(watcher, parameters)

    def approver(self, watcher: Any) -> Callable | None:
        """The approval callable for the loop, or None when the campaign is autonomous."""
        if not self.approval:
            return None
        from sdl.control import operator_name, wait_for_approval

        parameters = [_parameter_spec(p) for p in self.space]
        who = operator_name(self.operator)

        def approve(points, batch):
            return wait_for_approval(
                points,
                watcher,
                parameters=parameters,
                terminal=self.approval == "terminal",
                who=who,
            )

        return approve

    def _safe_devices(self) -> list[Any]:
        return [
            d for d in self.devices.values() if hasattr(d, "safe_state") or hasattr(d, "go_safe")
        ]

    def _safe_state_plan(self):
        if callable(self.safe_state):
            return (yield from self.safe_state())
        from sdl.devices import safe_state_plan

        return (yield from safe_state_plan(self._safe_devices()))

    def make_safe(self) -> None:
        """Put the devices in their safe state now, outside any plan (used at a pause)."""
        if self.safe_state != "devices" or not self._safe_devices():
            return
        from sdl.devices import make_safe

        try:
            make_safe(self._safe_devices())
        except Exception:  # the pause itself must not fail; the operator sees the log
            logger.exception("safe state at pause failed")


def _closing_on_error(writer: ZarrWriter, session: Callable[[], CampaignResult]) -> CampaignResult:
    """Run ``session``; on an error close the writer (releasing the store's lock), except at a
    pause nobody handles: then the writer goes on recording until the RunEngine is idle."""
    try:
        return session()
    except RunEngineInterrupted:
        raise
    except BaseException:
        try:
            writer.close()
        except Exception:  # (a failed last block, say): the session's own error is raised
            logger.exception("%s: closing the store after an error failed", writer.path)
        raise


def _check_objective_sources(protocol, objectives, measurements) -> None:
    """Refuse objectives whose value no experiment could give, before anything runs: a
    ``"module:attribute"`` function that does not import and, for a ``functools.partial``
    of ``set_settle_measure`` (whose readings are exactly its detectors' and movables'
    data keys), a data key none of them produces. Either failed every experiment alike, a
    sample failure the planner learnt from, through the whole budget. (A campaign file's
    are checked against all its devices when it is loaded.)"""
    from sdl.config._check import data_keys, key_problems
    from sdl.protocols import devices_read

    read = devices_read(protocol)
    keys = None if read is None else data_keys({str(i): dev for i, dev in enumerate(read)})
    sections = [("objectives", objectives), ("measurements", measurements)]
    problems = key_problems(sections, keys)
    if problems:
        raise ConfigError(
            f"{len(problems)} problem(s) with the campaign's objectives:\n  "
            + "\n  ".join(problems)
        )


def _check_step_plans(workflow) -> None:
    """Refuse a step plan the lab cannot call as ``plan(point, context, md=...)``: every
    experiment would fail at that step alike (a campaign file's are checked when loaded)."""
    from sdl.lab._model import plan_accepts_context

    for step in workflow.steps:
        if not plan_accepts_context(step.plan):
            name = getattr(step.plan, "__qualname__", None) or repr(step.plan)
            raise ConfigError(
                f"workflow step {step.name!r}: its plan {name} cannot be called as "
                f"plan(point, context, md=...), as the lab calls it for every experiment; "
                f"give it those parameters (def {step.name}(point, context, md=None): ...) "
                f"and put md in its run's start document (docs/lab.md)"
            )


def _lab_parts(lab, workflow, protocol, max_in_flight, lookahead, final_in_flight=None):
    """(lab, workflow, lab options) of a campaign; (None, None, None) without a lab."""
    if lab is None:
        if workflow is not None:
            raise ValueError("a workflow runs on a lab: give the campaign its lab too")
        for name, value in (("max_in_flight", max_in_flight), ("final_in_flight", final_in_flight)):
            if value is not None:
                raise ValueError(f"{name} applies to a lab campaign: give the campaign its lab too")
        return None, None, None
    from sdl.lab import Lab, LabOptions, Workflow

    if not isinstance(lab, Lab):
        raise TypeError(f"lab must be an sdl.lab.Lab, got {type(lab).__name__}")
    if workflow is None:
        if protocol is None or len(lab.stations) != 1:
            raise ValueError(
                "give a lab campaign its workflow (sdl.lab.Workflow); only a one-station lab "
                "may run a protocol as a one-step workflow"
            )
        workflow = Workflow.single(protocol, station=next(iter(lab.stations)))
    elif protocol is not None:
        raise ValueError("give a lab campaign a workflow or a protocol, not both")
    lab.check(workflow)
    return (
        lab,
        workflow,
        LabOptions(
            max_in_flight=max_in_flight, lookahead=lookahead, final_in_flight=final_in_flight
        ),
    )


def _warm_start(planner: Planner, data: Any) -> str:
    """Give ``planner`` prior data; return a description of the source for the metadata."""
    from sdl.planners import warm_start

    if isinstance(data, (str, os.PathLike)) and (Path(data) / "zarr.json").exists():
        source = f"sdl store {data}"
        data = open_store(data).to_dataframe()
    elif isinstance(data, (str, os.PathLike)):
        source = f"CSV {data}"
    else:
        source = type(data).__name__
    n = warm_start(planner, data)
    return f"{n} rows from {source}"
