"""The lab campaign as one bluesky plan: keep every station busy while the planner proposes.

The coordinator runs on the campaign's RunEngine, inside the campaign run, like the
one-instrument loop (:mod:`sdl._loop`), whose recording, asking and failure policy it
shares. It never blocks on a station: steps run on their stations' engines (a
:class:`~sdl.lab.StepBackend`) and the coordinator waits, with one ``wait_for`` message,
for the first of them (or of the planner's ask) to end. Each round it

1. takes operators' station requests (out of service / back in service);
2. collects the steps that ended: the next step of their experiment is queued, or the
   experiment settles (done, or failed with the step and the cause) and is told to the
   planner;
3. asks the planner, in its worker thread, for as many points as first-step stations are
   free (plus ``lookahead``), with every experiment in flight passed as pending;
4. grants leases (:mod:`sdl.lab._leases`) and submits the steps that got them.

A pause stops new steps at the next round; steps already running go on and are collected
after the resume. A stop or an abort cancels the running steps and records their
experiments as interrupted.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from bluesky.utils import Msg, RequestAbort, RequestStop

from sdl._failures import FailureKind, classify_failure
from sdl._lifecycle import Experiment, Status
from sdl._loop import (
    _CONTROL_FLOW,
    LoopOptions,
    _describe_failure,
    _Loop,
    _root_error,
    campaign_plan,
    campaign_start_md,
)
from sdl._resume import ResumePlan
from sdl.errors import NotConnectedError
from sdl.planners import Objective, Planner
from sdl.protocols import extract_objectives

from ._asking import ASK_HORIZON, ask_size, final_in_flight, next_ask_due, until_soon
from ._backend import StepBackend, StepOutcome, StepRequest
from ._leases import Grant, LeaseBook, LeaseRequest
from ._model import Lab, StepContext, Workflow
from ._records import StationLog, StepLog

__all__ = ["LabOptions", "lab_loop"]

logger = logging.getLogger(__name__)

#: Seconds between looks at the control channel while steps run (with station control).
POLL = 0.25
#: Seconds a stop or an abort waits for cancelled steps to end.
CANCEL_WAIT = 30.0


@dataclass(frozen=True)
class LabOptions:
    """How the lab's coordinator runs.

    Attributes:
        max_in_flight: experiments started and not settled at once (None: the total
            capacity of the stations the workflow runs on).
        lookahead: experiments asked for ahead of a free first-step station, so a station
            that frees up starts its next sample at once instead of waiting for an ask
            (0: ask only when a station is free, as today's sequential campaign does).
        final_in_flight: experiments in flight at most while the budget's final ones (as
            many as the pipeline holds: ``max_in_flight + lookahead``) are asked for, so
            the points that end the campaign know more results (None: half of
            ``max_in_flight``, and at least the first step's lanes; ``max_in_flight`` or
            more: no such limit, every station busy to the end).
    """

    max_in_flight: int | None = None
    lookahead: int = 1
    final_in_flight: int | None = None

    def __post_init__(self) -> None:
        # (name, least value, None allowed)
        for name, least, optional in (
            ("max_in_flight", 1, True),
            ("lookahead", 0, False),
            ("final_in_flight", 1, True),
        ):
            value = getattr(self, name)
            if optional and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                none = " or None" if optional else ""
                raise ValueError(f"{name} must be an integer >= {least}{none}, got {value!r}")


@dataclass
class _Job:
    """An experiment in flight: which step it is at and what its steps gave."""

    exp: Experiment
    index: int = 0
    order: int | None = None  # order of its first start (None: not started)
    history: dict[str, str] = field(default_factory=dict)
    readings: dict[str, Any] = field(default_factory=dict)
    run_uids: list[str] = field(default_factory=list)
    attempts: int = 0  # retries (the ``retries`` policy) spent on its point

    @property
    def key(self) -> tuple:
        # experiments in progress first, by first start; then new ones by id
        return (0, self.order, 0) if self.order is not None else (1, 0, self.exp.id)


def _warm_up_copy(planner: Planner) -> Planner | None:
    """A copy of ``planner`` to warm up, if it has a warm-up and can be copied (a plugin
    planner holding a connection may not be: then it is not warmed up)."""
    if type(planner).warm_up is Planner.warm_up:
        return None
    try:
        return copy.deepcopy(planner)
    except Exception as err:  # noqa: BLE001 - a warm-up is never worth a failed campaign
        logger.info("planner %s not warmed up: cannot copy it (%s)", type(planner).__name__, err)
        return None


class _LabLoop(_Loop):
    def __init__(
        self,
        planner: Planner,
        lab: Lab,
        workflow: Workflow,
        backend: StepBackend,
        objectives: tuple[Objective, ...],
        measurements: tuple[Objective, ...],
        budget: int,
        options: LoopOptions,
        lab_options: LabOptions,
        md: dict[str, Any],
        resume: ResumePlan,
        station_requests: Callable[[], list[tuple[str, bool, str]]] | None,
    ):
        # a lost connection takes its station out of service instead of pausing the lab
        options = replace(options, pause_on_disconnect=False)
        super().__init__(planner, None, objectives, measurements, budget, options, md, resume)
        self.lab = lab
        self.workflow = workflow
        self.pools = lab.check(workflow)
        self.backend = backend
        self.book = LeaseBook({n: lab.capacity(n) for n in lab.names}, lab.stations)
        self.step_log = StepLog()
        self.station_log = StationLog()
        self.jobs: dict[int, _Job] = {}  # experiments planned or running
        self.waiting: list[_Job] = []  # jobs whose next step waits for its leases
        self.running: dict[Future, tuple[_Job, Grant]] = {}
        self.started_at: dict[Future, float] = {}
        self.step_seconds: dict[int, float] = {}  # step index -> running mean of its duration
        self.ask_seconds = 0.0  # recent asks' duration (a running mean, and at least the last)
        self.station_failures: Counter[str] = Counter()
        self.starts = itertools.count()
        self.untold: list[tuple[dict[str, Any], dict[str, float]]] = []
        self.station_requests = station_requests
        used = sorted({s for stations, _ in self.pools for s in stations})
        self.max_in_flight = lab_options.max_in_flight or sum(lab.capacity(s) for s in used)
        # a limit the campaign sets also limits the asks (below); the stations' own
        # capacity does not: there the limit bought nothing measurable (docs/lab.md), and
        # points asked for ahead of a settling experiment hide the ask's time
        self.ask_limit = lab_options.max_in_flight
        self.lookahead = lab_options.lookahead
        self.final_in_flight = final_in_flight(
            lab_options.final_in_flight,
            self.max_in_flight,
            sum(lab.capacity(s) for s in self.pools[0][0]),
        )
        # warmed up in the worker after the first ask, while the first experiments run: a
        # copy taken now, while nothing else touches the planner (docs/lab.md)
        self._warm_up = _warm_up_copy(planner)

    # -- the planner ------------------------------------------------------------------------
    def _tell(self, point: dict[str, Any], outcome: dict[str, float]) -> None:
        # never while an ask runs in the worker: told before the next ask starts
        self.untold.append((point, outcome))
        if self._ahead is None:
            self._flush_tells()

    def _flush_tells(self) -> None:
        if self.untold:
            points, outcomes = zip(*self.untold)
            self.untold = []
            self.planner.tell(list(points), list(outcomes))

    def _until_soon(self) -> list[float]:
        """:func:`~sdl.lab._asking.until_soon` of the running first steps, on the wall
        clock (50 ms more horizon: the coordinator's own latency)."""
        starts = [self.started_at[f] for f, (job, _) in self.running.items() if job.index == 0]
        horizon = ASK_HORIZON * self.ask_seconds + 0.05
        return until_soon(starts, self.step_seconds.get(0), horizon, time.time())

    def _next_ask_due(self) -> float | None:
        """Seconds until a first-step lane starts "freeing soon" (None: no such lane, or
        an ask already runs): the coordinator wakes up then to ask in time."""
        if self._ahead is not None:
            return None
        due = next_ask_due(self._until_soon(), self.lookahead)
        return None if due is None else due + 0.001

    def _maybe_ask(self) -> None:
        if self._ahead is not None:
            return
        first = self.book.in_service(self.pools[0][0])
        n = ask_size(
            room=self.budget - self.completed - len(self.jobs),
            free_slots=sum(self.book.free(s) for s in first),
            until=self._until_soon(),
            lookahead=self.lookahead,
            fresh=sum(1 for job in self.waiting if job.order is None),
            in_flight=len(self.jobs),
            max_in_flight=self.ask_limit,
            pipeline=self.max_in_flight,
            final=self.final_in_flight,
        )
        if n <= 0 or not first:
            return
        self._flush_tells()
        pending = [dict(job.exp.point) for job in self.jobs.values()]
        self._start_ask(n, pending)
        if self._warm_up is not None:
            self.worker.submit(self._warm_up.warm_up)
            self._warm_up = None

    def _collect_ask(self):
        if self._ahead is None or not self._ahead[0].done():
            return
        room = self.budget - self.completed - len(self.jobs)
        t0 = self._ahead[2]
        exps = yield from self._next_batch(room=room)
        took = time.perf_counter() - max(t0, self._ask_began)
        self.ask_seconds = max(took, 0.5 * (self.ask_seconds + took))
        self._flush_tells()
        for exp in exps:
            yield from self._enqueue(_Job(exp))

    # -- steps --------------------------------------------------------------------------------
    def _enqueue(self, job: _Job):
        self.jobs[job.exp.id] = job
        self.waiting.append(job)
        step = self.workflow.steps[job.index]
        yield from self.step_log.record(job.exp.id, step.name, job.index, "queued")

    def _schedule(self):
        requests = []
        started = sum(1 for job in self.jobs.values() if job.order is not None)
        for job in self.waiting:
            if job.order is None and started >= self.max_in_flight:
                continue  # a new experiment waits until one in flight settles
            stations, uses = self.pools[job.index]
            requests.append(LeaseRequest(job.key, stations, uses, token=job))
        for req, grant in self.book.schedule(requests):
            job = req.token
            self.waiting.remove(job)
            yield from self._start_step(job, grant)

    def _start_step(self, job: _Job, grant: Grant):
        step = self.workflow.steps[job.index]
        if job.order is None:
            job.order = next(self.starts)
            job.exp = job.exp.advance(Status.RUNNING)
            yield from self.record(job.exp)
        devices = dict(self.lab.stations[grant.station].devices)
        for name in grant.resources:
            item = self.lab.stations.get(name) or self.lab.resources[name]
            devices.update(item.devices)
        context = StepContext(
            experiment_id=job.exp.id,
            step=step.name,
            station=grant.station,
            lane=grant.lane,
            devices=devices,
            resources=grant.resources,
            history=dict(job.history),
        )
        md = {
            "sdl_campaign_uid": self.md.get("sdl_campaign_uid", ""),
            "sdl_experiment_id": job.exp.id,
            "sdl_batch": job.exp.batch,
            "sdl_point": dict(job.exp.point),
            "sdl_step": step.name,
            "sdl_station": grant.station,
            "sdl_lane": grant.lane,
            # the step's own uid: recorded before it is submitted, so that a campaign
            # resumed after a crash finds it where a station ran it meanwhile
            "sdl_correlation": str(uuid.uuid4()),
        }
        yield from self.step_log.record(
            job.exp.id,
            step.name,
            job.index,
            "started",
            station=grant.station,
            lane=grant.lane,
            resources=grant.resources,
            correlation=md["sdl_correlation"],
        )
        future = self.backend.submit(StepRequest(step, dict(job.exp.point), context, md))
        self.running[future] = (job, grant)
        self.started_at[future] = time.time()

    def _collect_steps(self):
        for future in [f for f in self.running if f.done()]:
            job, grant = self.running.pop(future)
            started = self.started_at.pop(future)
            self.book.release(grant)
            try:
                outcome = future.result()
            except Exception as err:  # a backend's own failure: the step's
                outcome = StepOutcome(error=err)
            if outcome.ok:
                took = time.time() - started
                mean = self.step_seconds.get(job.index, took)
                self.step_seconds[job.index] = 0.7 * mean + 0.3 * took
            yield from self._step_ended(job, grant, outcome)

    def _step_ended(self, job: _Job, grant: Grant, outcome: StepOutcome):
        step = self.workflow.steps[job.index]
        job.run_uids.extend(outcome.run_uids)
        if outcome.ok:
            self.station_failures[grant.station] = 0
            yield from self.step_log.record(
                job.exp.id, step.name, job.index, "done", station=grant.station,
                lane=grant.lane, resources=grant.resources, run_uids=outcome.run_uids,
            )  # fmt: skip
            job.readings.update(outcome.readings)
            job.history[step.name] = grant.station
            job.index += 1
            if job.index < len(self.workflow.steps):
                yield from self._enqueue(job)
                return
            yield from self._finish(job, None)
            return
        err = outcome.error or RuntimeError("step failed")
        root = _root_error(err)
        cause = f"step {step.name!r} on {grant.station}: {_describe_failure(err)}"[:1000]
        status = "cancelled" if outcome.cancelled else "failed"
        yield from self.step_log.record(
            job.exp.id, step.name, job.index, status, station=grant.station, lane=grant.lane,
            resources=grant.resources, run_uids=outcome.run_uids, cause=cause,
        )  # fmt: skip
        if outcome.cancelled:
            return  # the stop or abort that cancelled it records its experiment
        kind = classify_failure(root)
        if kind is FailureKind.INSTRUMENT:
            yield from self._station_fault(grant.station, root, cause)
        yield from self._finish(job, root, cause=cause, kind=kind)

    def _station_fault(self, station: str, root: BaseException, cause: str):
        self.station_failures[station] += 1
        limit = self.lab.stations[station].max_failures
        lost = isinstance(root, NotConnectedError)
        if station in self.book.out_of_service:
            return
        if lost or self.station_failures[station] >= limit:
            why = (
                "lost connection"
                if lost
                else f"{self.station_failures[station]} instrument failures in a row"
            )
            yield from self._set_service(station, False, f"{why}; last: {cause}", "sdl")

    def _set_service(self, station: str, in_service: bool, cause: str, who: str):
        if in_service:
            self.book.out_of_service.discard(station)
            self.station_failures[station] = 0
        else:
            self.book.out_of_service.add(station)
        yield from self.station_log.record(station, in_service, cause, who)

    def _finish(self, job: _Job, error: BaseException | None, cause: str = "", kind=None):
        """Settle ``job``'s experiment: done (objectives from its steps' readings) or failed."""
        del self.jobs[job.exp.id]
        run_uid = job.run_uids[-1] if job.run_uids else ""
        if error is None:
            try:
                values = extract_objectives(self.objectives + self.measurements, job.readings)
            except Exception as err:  # NaN or missing data: the sample's verdict
                error, cause = (
                    err,
                    f"after step {self.workflow.steps[-1].name!r}: {_describe_failure(err)}",
                )
                kind = classify_failure(err)
            else:
                final = job.exp.advance(Status.DONE, run_uid=run_uid, objectives=values)
        if error is not None:
            final = job.exp.advance(
                Status.FAILED, run_uid=run_uid, cause=cause, failure_kind=kind.value
            )
        how = yield from self._settle(final, error, job.attempts)
        if how is not None:
            if how == "rerun":
                (again,) = self._new([job.exp.point], job.exp.batch, rerun_of=job.exp.chain)
                attempts = job.attempts
            else:
                (again,) = self._new([job.exp.point], job.exp.batch)
                attempts = job.attempts + 1
            yield from self.record(again)
            yield from self._enqueue(_Job(again, attempts=attempts))

    # -- control --------------------------------------------------------------------------------
    def _control(self):
        if self.station_requests is None:
            return
        for name, enable, who in self.station_requests():
            if name not in self.lab.stations:
                continue  # refused (and answered) by the request's reader
            if enable != (name not in self.book.out_of_service):
                what = "put back in service" if enable else "taken out of service"
                yield from self._set_service(name, enable, f"{what} by an operator", who)

    def _wait(self):
        futures = list(self.running)
        if self._ahead is not None:
            futures.append(self._ahead[0])
        if not futures or any(f.done() for f in futures):
            return
        timeout = POLL if self.station_requests is not None else None
        wake = self._next_ask_due()
        if wake is not None:
            timeout = wake if timeout is None else min(timeout, wake)

        def first_done():
            return asyncio.wait(
                [asyncio.wrap_future(f) for f in futures],
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )

        yield Msg("wait_for", None, [first_done])

    def _stalled(self) -> bool:
        """Experiments wait, but nothing runs and nothing can start: every station a
        waiting step may use is out of service."""
        return bool(self.waiting) and not self.running and self._ahead is None

    def _cancel_all(self, cause: str):
        """Plan: cancel every running step, wait for them, record their experiments
        (and the planned ones) as interrupted."""
        # first, before the records below replace it: a step transition the stop cut
        cut_step, self.step_log.cut = self.step_log.cut, None
        for _, grant in self.running.values():
            self.backend.cancel(grant.station, grant.lane, cause)
        futures = list(self.running)
        if futures:

            def all_done():
                return asyncio.wait([asyncio.wrap_future(f) for f in futures], timeout=CANCEL_WAIT)

            try:
                yield Msg("wait_for", None, [all_done])
            except Exception:  # noqa: BLE001 - recording the interruption matters more
                pass
        running_steps = {(job.exp.id, job.index) for job, _ in self.running.values()}
        for future in [f for f in self.running if f.done()]:
            job, grant = self.running.pop(future)
            self.started_at.pop(future, None)
            self.book.release(grant)
            step = self.workflow.steps[job.index]
            outcome = future.result()
            yield from self.step_log.record(
                job.exp.id, step.name, job.index, "cancelled", station=grant.station,
                lane=grant.lane, resources=grant.resources, run_uids=outcome.run_uids,
                cause=cause,
            )  # fmt: skip
        yield from self._settle_cut_step(cut_step, cause, running_steps)
        yield from self._settle_cut()
        for job in sorted(self.jobs.values(), key=lambda j: j.exp.id):
            run_uid = job.run_uids[-1] if job.run_uids else ""
            yield from self.record(
                job.exp.advance(Status.INTERRUPTED, run_uid=run_uid, cause=cause)
            )
        # an ask's experiments recorded planned when the stop came, before they were queued
        for exp in sorted(self.experiments.values(), key=lambda e: e.id):
            if exp.id not in self.jobs and exp.status in (Status.PLANNED, Status.RUNNING):
                yield from self.record(exp.advance(Status.INTERRUPTED, cause=cause))
        self.jobs.clear()
        self.waiting.clear()

    def _settle_cut_step(
        self, cut: dict[str, Any] | None, cause: str, running: set[tuple[int, int]]
    ):
        """Plan: a step transition whose record the stop cut (written or not: the RunEngine
        can throw a stop in at a message it carried out) is recorded again; a step whose
        start it cut was never submitted, and is recorded cancelled."""
        if cut is None or int(cut["experiment_id"]) < 0:
            return
        if cut["status"] == "started":
            if (int(cut["experiment_id"]), int(cut["index"])) in running:
                return  # running: cancelled and recorded above
            cut = {**cut, "status": "cancelled", "cause": f"{cause} (before it was submitted)"}
        yield from self.step_log.emit(cut)

    # -- the campaign -----------------------------------------------------------------------------
    # -- a campaign resumed after a crash ----------------------------------------------------------
    def _take_up(self):
        """Plan: experiments the crash left running, on a backend whose stations outlived
        it, are taken up where they were: a step a station ran or runs (found by its
        correlation uid) is awaited and its result adopted, a step that never started
        there is submitted again, and the rest of the workflow follows; experiments asked
        for and not started start now. Returns their ids."""
        reconcile = getattr(self.backend, "reconcile", None)
        if reconcile is None:
            return set()
        rerun = {exp.rerun_of for exp in self.resume.reruns}  # chains measured again
        taken: set[int] = set()
        for cut in self.resume.to_interrupt:
            if _root(cut) not in rerun:
                continue  # (its point was measured, or the policy is "skip")
            flight = self.resume.in_flight.get(cut.id)
            if cut.status is Status.PLANNED:  # asked for, never started: it starts now
                taken.add(cut.id)
                yield from self._enqueue(_Job(cut))
                continue
            if flight is None:
                continue
            taken.add(cut.id)
            job = _Job(
                cut, index=flight.index, order=next(self.starts), history=dict(flight.history),
                readings=dict(flight.readings), run_uids=list(flight.run_uids),
            )  # fmt: skip
            self.jobs[cut.id] = job
            if flight.index >= len(self.workflow.steps):  # its last step had ended
                yield from self._finish(job, None)
                continue
            future = None
            if flight.open:
                future = yield from self._reconcile(reconcile, job, flight)
            if future is None:
                yield from self._enqueue(job)  # this step (again), then the rest
        return taken

    def _reconcile(self, reconcile, job: _Job, flight):
        step = self.workflow.steps[job.index]
        grant = Grant(flight.station, flight.lane, tuple(flight.resources))
        context = StepContext(
            experiment_id=job.exp.id, step=step.name, station=grant.station, lane=grant.lane,
            devices={}, resources=grant.resources, history=dict(job.history),
        )  # fmt: skip
        md = {"sdl_correlation": flight.correlation, "sdl_experiment_id": job.exp.id}
        try:
            future = reconcile(StepRequest(step, dict(job.exp.point), context, md))
        except NotConnectedError as err:
            cause = f"step {step.name!r} on {grant.station}: {_describe_failure(err)}"
            yield from self._station_fault(grant.station, err, cause)
            return None
        if future is None:
            return None
        self.book.hold(grant)
        # running first: a stop that cuts the record below cancels it like any other
        self.running[future] = (job, grant)
        self.started_at[future] = time.time()
        yield from self.step_log.record(
            job.exp.id, step.name, job.index, "started", station=grant.station,
            lane=grant.lane, resources=grant.resources, correlation=flight.correlation,
            cause="taken up after the campaign's process restarted: the station ran it "
            "or runs it",
        )  # fmt: skip
        return future

    def _reruns_left(self, taken: set[int]):
        """The resume's re-runs, less those of experiments taken up, numbered on; and the
        interrupted experiments' causes saying which experiment re-runs them."""
        roots = {_root(cut) for cut in self.resume.to_interrupt if cut.id in taken}
        base = self.resume.next_id - len(self.resume.reruns)
        kept, renumbered = [], {}
        for exp in self.resume.reruns:
            if exp.rerun_of in roots:
                continue
            renumbered[exp.id] = base + len(kept)
            kept.append(replace(exp, id=base + len(kept)))
        self.next_id = base + len(kept)

        def cause(text: str) -> str:
            return re.sub(
                r"re-run as experiment (\d+)",
                lambda m: f"re-run as experiment {renumbered.get(int(m[1]), int(m[1]))}",
                text,
            )

        return kept, cause

    def plan(self):
        try:
            # (a stop during the resume's own records is settled like any other)
            for name in self.resume.out_of_service:
                if name in self.lab.stations:
                    cause = "out of service when the campaign was last written; still out"
                    yield from self._set_service(name, False, cause, "sdl")
            taken = yield from self._take_up()
            reruns, cause = self._reruns_left(taken)
            for cut in self.resume.to_interrupt:
                if cut.id not in taken:
                    yield from self.record(
                        replace(cut, cause=cause(cut.cause)).advance(Status.INTERRUPTED)
                    )
            for exp in reruns[: max(self.budget - self.completed - len(taken), 0)]:
                yield from self.record(exp)
                yield from self._enqueue(_Job(exp))
            while True:
                yield Msg("checkpoint")
                yield from self._control()
                yield from self._collect_steps()
                yield from self._collect_ask()
                if not self.jobs and self._ahead is None and self.completed >= self.budget:
                    break
                self._maybe_ask()
                yield from self._collect_ask()  # a quick planner's ask is already done
                yield from self._schedule()
                if not self.jobs and self._ahead is None:
                    break  # nothing more can be asked (the budget is spoken for)
                if self._stalled():
                    names = sorted({s for j in self.waiting for s in self.pools[j.index][0]})
                    yield from self.step_log.record(
                        -1, "", -1, "stalled",
                        cause=f"no station in service for the waiting steps ({', '.join(names)}); "
                        f"put one back (sdl station enable STORE NAME) and resume",
                    )  # fmt: skip
                    yield Msg("pause", None, defer=False)
                    continue
                yield from self._wait()
        except GeneratorExit:  # RE.halt(): no clean-up, and no messages
            for _job, grant in self.running.values():
                self.backend.cancel(grant.station, grant.lane, "campaign halted")
            raise
        except _CONTROL_FLOW as err:
            cause = {RequestAbort: "campaign aborted", RequestStop: "campaign stopped"}.get(
                type(err), f"campaign interrupted ({type(err).__name__})"
            )
            yield from self._cancel_all(cause)
            raise
        except Exception as err:
            yield from self._cancel_all(f"campaign ended by an error ({_describe_failure(err)})")
            raise


def _root(exp: Experiment) -> int:
    """The first experiment of ``exp``'s chain (the measurements of one point)."""
    return exp.rerun_of if exp.rerun_of >= 0 else exp.id


def lab_loop(
    *,
    planner: Planner,
    lab: Lab,
    workflow: Workflow,
    backend: StepBackend,
    objectives: tuple[Objective, ...],
    budget: int,
    measurements: tuple[Objective, ...] = (),
    md: Mapping[str, Any] | None = None,
    resume: ResumePlan | None = None,
    options: LoopOptions | None = None,
    lab_options: LabOptions | None = None,
    station_requests: Callable[[], list[tuple[str, bool, str]]] | None = None,
) -> Generator[Msg, Any, list[Experiment]]:
    """The lab campaign plan: run ``workflow`` experiments on ``lab`` until ``budget`` are done.

    Records like :func:`sdl._loop.closed_loop` (the ``experiments``, ``planner`` and
    ``approvals`` streams of the campaign run), plus the ``steps`` and ``stations``
    streams (:mod:`sdl.lab._records`). Each step's runs carry ``sdl_campaign_uid``,
    ``sdl_experiment_id``, ``sdl_step`` and ``sdl_station`` in their start documents.

    Args:
        backend: where steps run, already open (its engines' documents go to the store).
        station_requests: ``() -> [(station, enable, who)]``, operators' requests taken
            each round (None: no operator control).
        Others as for :func:`sdl._loop.closed_loop`.
    """
    options = options or LoopOptions()
    resume = resume or ResumePlan(completed=0, next_id=0, next_batch=0)
    start_md = campaign_start_md("lab_loop", md, resume)
    loop = _LabLoop(
        planner, lab, workflow, backend, tuple(objectives), tuple(measurements), budget,
        options, lab_options or LabOptions(), start_md, resume, station_requests,
    )  # fmt: skip
    # no status guard: the coordinator's RunEngine moves no device (the stations' do)
    return (yield from campaign_plan(loop, watch_statuses=False))
