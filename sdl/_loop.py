"""The closed loop as a bluesky plan: ask → (approve) → run the protocol → extract → tell."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from bluesky.utils import (
    FailedStatus,
    Msg,
    RequestAbort,
    RequestStop,
    RunEngineControlException,
    RunEngineInterrupted,
)

from sdl.errors import DeviceFaultError, LimitError, NotConnectedError
from sdl.planners import Objective, Planner
from sdl.protocols import Capture, as_plan, extract_objectives, not_a_message, with_md

from ._failures import FailureKind, classify_failure
from ._ledger import ApprovalLog, Ledger, PlannerLog
from ._lifecycle import Experiment, Status
from ._resume import ResumePlan
from ._statuses import StatusGuard
from ._worker import Worker

__all__ = ["closed_loop", "campaign_plan", "campaign_start_md", "LoopOptions", "CAMPAIGN_RUN_KEY"]

CAMPAIGN_RUN_KEY = "sdl-campaign"

logger = logging.getLogger(__name__)

# Exceptions that end the campaign instead of failing one experiment.
_CONTROL_FLOW = (RequestAbort, RequestStop, RunEngineInterrupted, GeneratorExit, KeyboardInterrupt)


@dataclass(frozen=True)
class LoopOptions:
    """How the loop runs, beyond what to measure.

    Attributes:
        batch_size: points asked from the planner at a time.
        plan_ahead: compute the next batch in the worker thread while the last experiment
            of the current batch is measured (its point is passed as pending), so the
            instrument does not wait for the planner.
        retries: times a failed experiment's point is measured again at once (each
            attempt is its own experiment and counts against the budget); for an
            instrument failure, only once ``instrument_reruns`` are spent.
        instrument_reruns: times the point of an experiment failed by its instrument (a
            disconnect, timeout or device fault; see :mod:`sdl._failures`) is measured
            again, after a pause on disconnect has been resumed. The failed attempt is not
            told to the planner and does not count against the budget.
        status_timeout: seconds to wait, after an experiment's protocol ended, for the
            device operations it started and left running (a motor still moving when
            another failed); a failure among them fails the experiment.
        pause_after_failures: pause the RunEngine after this many failures in a row
            (None: never); the operator resumes, stops or aborts.
        fixed: parameters fixed for every ask (dict), or ``fixed(batch) -> dict``.
        approve: ``approve(points, batch) -> decision`` (an ``ApprovalDecision``), run in
            the worker thread before a batch runs; None: no approval.
        pause_on_disconnect: pause the RunEngine when an experiment fails because a device
            lost its connection (``sdl.errors.NotConnectedError``).
        safe_state: ``safe_state() -> plan`` run when the campaign ends by an error, an
            abort or a stop.
        additions: ``additions() -> decision or None``, run in the worker thread before
            every batch: points operators added (the dashboard's "add an experiment"),
            measured first; None: no operator can add points.
    """

    batch_size: int = 1
    plan_ahead: bool = False
    retries: int = 0
    pause_after_failures: int | None = None
    fixed: Mapping[str, Any] | Callable[[int], Mapping[str, Any]] | None = None
    approve: Callable[[list[dict[str, Any]], int], Any] | None = None
    pause_on_disconnect: bool = True
    safe_state: Callable[[], Generator[Msg, Any, Any]] | None = None
    additions: Callable[[], Any] | None = None
    instrument_reruns: int = 1
    status_timeout: float = 60.0

    #: The options a campaign's author sets (``Campaign(**options)``, the YAML's top-level
    #: keys of the same names); the others are set by the campaign itself. A new loop
    #: option is a field here, in this list, and in the YAML model (sdl/config/_model.py).
    POLICY = (
        "plan_ahead",
        "retries",
        "instrument_reruns",
        "status_timeout",
        "pause_after_failures",
        "pause_on_disconnect",
        "fixed",
    )

    def __post_init__(self) -> None:
        for name in ("batch_size", "retries", "instrument_reruns", "pause_after_failures"):
            value = getattr(self, name)
            low = 0 if name in ("retries", "instrument_reruns") else 1
            if value is not None and (not isinstance(value, int) or value < low):
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.status_timeout, (int, float)) and self.status_timeout > 0):
            raise ValueError(f"status_timeout must be > 0 seconds, got {self.status_timeout!r}")

    @classmethod
    def policy(cls, **options: Any) -> dict[str, Any]:
        """Check that ``options`` are policy options by name (an unknown one is an error)."""
        unknown = sorted(set(options) - set(cls.POLICY))
        if unknown:
            raise TypeError(
                f"unknown campaign option(s) {unknown}; the loop's options are "
                f"{', '.join(cls.POLICY)} (see sdl.LoopOptions)"
            )
        return options


class StaleOperationsFailed(DeviceFaultError):
    """Device operations a protocol started and left running failed after it ended."""


def _interrupted_by(err: BaseException) -> str:
    """The cause recorded for an experiment a stop, an abort or an interrupt cut."""
    return {RequestAbort: "campaign aborted", RequestStop: "campaign stopped"}.get(
        type(err), f"campaign interrupted ({type(err).__name__})"
    )


def _root_error(err: BaseException) -> BaseException:
    """The device's own exception inside a bluesky ``FailedStatus``, else ``err``."""
    if isinstance(err, FailedStatus) and err.args:
        exc = getattr(err.args[0], "exception", lambda: None)()
        if exc is not None:
            return exc
    return err


def _describe_failure(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    inner = getattr(err, "__cause__", None) or getattr(err, "__context__", None)
    if isinstance(err, FailedStatus) and err.args:
        status = err.args[0]
        exc = getattr(status, "exception", lambda: None)()
        if exc is not None:
            text = f"FailedStatus: {type(exc).__name__}: {exc}"
    elif inner is not None and str(err) == "":
        text = f"{type(inner).__name__}: {inner}"
    return text[:1000] or type(err).__name__


class _Loop:
    """State of one campaign plan; its methods are plans (generators of messages)."""

    def __init__(self, planner, protocol, objectives, measurements, budget, options, md, resume):
        self.planner = planner
        self.protocol = protocol
        self.objectives = objectives
        self.measurements = measurements
        self.budget = budget
        self.opt = options
        self.md = md
        self.resume = resume
        self.ledger = Ledger(planner.space, objectives, measurements)
        self.planner_log = PlannerLog()
        self.approval_log = ApprovalLog()
        self.worker = Worker()
        self.guard = StatusGuard()
        self.experiments: dict[int, Experiment] = {}
        self.completed = resume.completed
        self.next_id = resume.next_id
        self.batch = resume.next_batch
        self.failures_in_row = 0
        # first experiment of a chain of measurements of one point -> instrument failures
        self.instrument_failures: dict[int, int] = dict(resume.instrument_failures)
        self.rejected_points: list[dict[str, Any]] = [dict(p) for p in resume.rejected]
        self._ahead = None  # (future, batch, t0) of a plan-ahead ask
        self._ask_began = 0.0  # when the worker began the last ask

    # -- recording ---------------------------------------------------------------------------
    def record(self, exp: Experiment):
        self.experiments[exp.id] = exp
        yield from self.ledger.record(exp)

    def _settle_cut(self):
        """Plan, when a stop or an abort ends the campaign: record again a final transition
        whose record the stop cut (``ledger.cut``: it may have reached the store or not, as
        the RunEngine can throw a stop in at a message it carried out). A cut planned or
        running one is left to the caller, which records it interrupted."""
        cut, self.ledger.cut = self.ledger.cut, None
        exp = None if cut is None else self.experiments.get(int(cut["experiment_id"]))
        if exp is not None and exp.status.final and exp.status.value == cut["status"]:
            yield from self.record(exp)

    def _new(self, points, batch, rerun_of: int = -1) -> list[Experiment]:
        exps = [
            Experiment(id=self.next_id + i, batch=batch, point=dict(p), rerun_of=rerun_of)
            for i, p in enumerate(points)
        ]
        self.next_id += len(exps)
        return exps

    def _failed_outcome(self) -> dict[str, float]:
        """What the planner is told for a failed experiment: NaN for every outcome."""
        return {o.name: math.nan for o in self.objectives + self.measurements}

    # -- asking ------------------------------------------------------------------------------
    def _fixed(self, batch: int) -> dict[str, Any] | None:
        fixed = self.opt.fixed
        return dict(fixed(batch) if callable(fixed) else fixed) if fixed else None

    def _ask_now(self, n: int, pending: list[dict[str, Any]], batch: int):
        """In the worker: ask; return the points and what the planner knew when asked."""
        # an ask's time counts from here: not the wait behind other work in the worker
        # (a lab's planner warm-up), which says nothing of how long asks take
        self._ask_began = time.perf_counter()
        # points an operator rejected: kept away from, but not learnt from (never measured)
        kwargs: dict[str, Any] = {"pending": [*pending, *self.rejected_points]}
        fixed = self._fixed(batch)
        if fixed:
            kwargs["fixed"] = fixed
        known = len(self.planner.observations)
        return self.planner.ask(n, **kwargs), known

    def _start_ask(self, n: int, pending: list[dict[str, Any]]) -> None:
        batch = self.batch
        self.batch += 1
        t0 = time.perf_counter()
        # a planner whose asks take well under a millisecond (Sobol) is asked in the
        # RunEngine's thread: handing the ask to the worker and waiting for it would cost
        # ~2 ms. Not decided by timing: BoTorch's first asks (its initial design) are as
        # quick, its later ones take seconds, which must not block the RunEngine's loop.
        if getattr(self.planner, "quick_asks", False):
            future: Future = Future()
            try:
                future.set_result(self._ask_now(n, pending, batch))
            except Exception as err:  # raised where the worker's would be: at the wait
                future.set_exception(err)
        else:
            future = self.worker.submit(self._ask_now, n, pending, batch)
        self._ahead = (future, batch, t0)

    def _finish_ask(self):
        future, batch, t0 = self._ahead
        self._ahead = None
        points, known = yield from self.worker.wait(future)
        took = time.perf_counter() - max(t0, self._ask_began)
        yield from self.planner_log.record(self.planner, batch, points, took, known)
        return points, batch

    def _next_batch(self, room: int | None = None):
        """Plan: the next batch of experiments (asked, approved, recorded as planned);
        at most ``room`` of them (default: what is left of the budget)."""
        room = self.budget - self.completed if room is None else room
        if self._ahead is None:
            self._start_ask(min(self.opt.batch_size, self.budget - self.completed), [])
        points, batch = yield from self._finish_ask()
        if self.opt.approve is not None:
            decision = yield from self.worker.call(self.opt.approve, points, batch)
            yield from self.approval_log.record(batch, decision)
            rejected = self._new(decision.rejected, batch)
            for exp in rejected:  # not measured: neither told nor counted against the budget
                yield from self.record(exp)
                yield from self.record(
                    exp.advance(Status.REJECTED, cause=f"rejected by {decision.who}")
                )
                self.rejected_points.append(dict(exp.point))
            points = [*decision.accepted, *decision.added]
        if self.opt.additions is not None:  # operators' own points run first
            added = yield from self.worker.call(self.opt.additions)
            if added is not None and added.added:
                yield from self.approval_log.record(batch, added)
                points = [*added.added, *points]
        # a plan-ahead ask made before a retry, or operators adding points, may overshoot
        points = points[: max(room, 0)]
        exps = self._new(points, batch)
        for exp in exps:
            yield from self.record(exp)
        return exps

    # -- running -----------------------------------------------------------------------------
    def _run_one(self, exp: Experiment):
        """Plan: run one experiment; return its final state (not yet told to the planner)."""
        running = exp.advance(Status.RUNNING)
        yield from self.record(running)
        sink = Capture()
        exp_md = {
            "sdl_campaign_uid": self.md.get("sdl_campaign_uid", ""),
            "sdl_experiment_id": exp.id,
            "sdl_batch": exp.batch,
            "sdl_point": dict(exp.point),
        }
        self.guard.begin(exp.id)
        try:
            plan = as_plan(self.protocol(dict(exp.point), md=exp_md))
            # capture(plan, sink, run_key), run by _campaign_run from its frame
            yield Protocol(plan, sink, run_key=f"sdl-experiment-{exp.id}", md=exp_md)
            yield from _close_left_open(sink, exp.id, "success", "")
            left = yield from self.guard.drain(self.opt.status_timeout)
            if left:  # what the protocol started and left running failed afterwards
                raise StaleOperationsFailed("; ".join(left))
            values = extract_objectives(self.objectives + self.measurements, sink.readings)
        except GeneratorExit:  # RE.halt(): no clean-up, as bluesky's own wrappers do
            raise
        except _CONTROL_FLOW as err:
            self.guard.end_protocol()
            yield from self.record(
                running.advance(
                    Status.INTERRUPTED, run_uid=sink.run_uid or "", cause=_interrupted_by(err)
                )
            )
            raise
        except Exception as err:  # a failed experiment is recorded, and the campaign goes on
            cause = _describe_failure(err)
            yield from _close_left_open(sink, exp.id, "fail", cause)
            # a motor still moving when another failed: wait for it before going on
            primary = err.args[0] if isinstance(err, FailedStatus) and err.args else None
            left = yield from self.guard.drain(self.opt.status_timeout, failed=True, cause=primary)
            if left:
                cause = f"{cause}; also: {'; '.join(left)}"[:1000]
            root = _root_error(err)
            failed = running.advance(
                Status.FAILED,
                run_uid=sink.run_uid or "",
                cause=cause,
                failure_kind=classify_failure(root).value,
            )
            return failed, root
        return running.advance(Status.DONE, run_uid=sink.run_uid or "", objectives=values), None

    def _tell(self, point: dict[str, Any], outcome: dict[str, float]) -> None:
        self.planner.tell([point], [outcome])

    def _retryable(self, final: Experiment, error: BaseException | None, attempt: int) -> bool:
        # a set-point outside the limits fails the same way every time: never retried
        return (
            final.status is Status.FAILED
            and attempt < self.opt.retries
            and not isinstance(error, LimitError)
            and self.completed + 1 < self.budget  # room for another attempt
        )

    def _settle(self, final: Experiment, error: BaseException | None, attempt: int):
        """Plan: record a finished experiment, tell the planner, apply the failure policy.

        Args:
            attempt: retries (the ``retries`` policy) already spent on this point.

        Returns:
            ``None``, or how the point is measured again: ``"rerun"`` (an instrument
            failure; free) or ``"retry"`` (the ``retries`` policy; counted).
        """
        failed = final.status is Status.FAILED
        instrument = failed and final.failure_kind == FailureKind.INSTRUMENT.value
        again = None
        if instrument:
            root = final.chain
            self.instrument_failures[root] = self.instrument_failures.get(root, 0) + 1
        if instrument and self.instrument_failures[root] <= self.opt.instrument_reruns:
            again = "rerun"
            final = replace(
                final,
                cause=f"{final.cause}; instrument failure, measured again as experiment "
                f"{self.next_id}",
            )
        elif self._retryable(final, error, attempt):
            again = "retry"
            final = replace(
                final, cause=f"{final.cause}; retried ({attempt + 1} of {self.opt.retries})"
            )
        yield from self.record(final)
        if not instrument:  # an instrument's fault says nothing about the point
            outcome = self._failed_outcome() if failed else final.objectives
            self._tell(final.point, outcome)
        if again != "rerun":
            self.completed += 1
        self.failures_in_row = self.failures_in_row + 1 if failed else 0
        limit = self.opt.pause_after_failures
        if isinstance(error, NotConnectedError) and self.opt.pause_on_disconnect:
            # the IOC or the network is down: more experiments would fail the same way
            self.failures_in_row = 0
            yield Msg("pause", None, defer=False)
        elif limit and self.failures_in_row >= limit:
            self.failures_in_row = 0
            yield Msg("pause", None, defer=False)
        return again

    def _run_batch(self, queue: list[Experiment]):
        attempts = {exp.id: 0 for exp in queue}  # retries spent on each point
        i = 0
        while i < len(queue):
            exp = queue[i]
            yield Msg("checkpoint")  # (no stub: see sdl._ledger)
            last = i == len(queue) - 1
            more = self.completed + 1 < self.budget
            if self.opt.plan_ahead and last and more and self._ahead is None:
                n = min(self.opt.batch_size, self.budget - self.completed - 1)
                self._start_ask(n, [exp.point])
            final, error = yield from self._run_one(exp)
            if self._ahead is not None and last:
                # the planner is busy in the worker: wait for it before telling it more
                yield from self.worker.wait(self._ahead[0])
            how = yield from self._settle(final, error, attempts.get(exp.id, 0))
            if how is not None:
                retries = attempts.get(exp.id, 0)
                if how == "rerun":  # the same point, in the same chain of measurements
                    (again,) = self._new([exp.point], exp.batch, rerun_of=exp.chain)
                    attempts[again.id] = retries
                else:
                    (again,) = self._new([exp.point], exp.batch)
                    attempts[again.id] = retries + 1
                yield from self.record(again)
                queue.insert(i + 1, again)
            i += 1

    # -- the campaign ------------------------------------------------------------------------
    def plan(self):
        try:
            yield from self._plan()
        except GeneratorExit:  # RE.halt(): the store is left as after a crash
            raise
        except _CONTROL_FLOW as err:
            # a stop or an abort: whatever it caught planned or running is interrupted,
            # wherever it landed (between experiments, in a record, at an ask)
            yield from self._settle_cut()
            cause = (
                "campaign stopped before it ran"
                if isinstance(err, RequestStop)
                else ("campaign ended before it ran")
            )
            for exp in list(self.experiments.values()):
                if exp.status is Status.PLANNED:
                    yield from self.record(exp.advance(Status.INTERRUPTED, cause=cause))
                elif exp.status is Status.RUNNING:  # the stop cut the record of its start
                    yield from self.record(
                        exp.advance(Status.INTERRUPTED, cause=_interrupted_by(err))
                    )
            raise

    def _plan(self):
        for cut in self.resume.to_interrupt:
            yield from self.record(cut.advance(Status.INTERRUPTED))
        queue = list(self.resume.reruns)[: max(self.budget - self.completed, 0)]
        for exp in queue:
            yield from self.record(exp)
        while self.completed < self.budget:
            if not queue:
                queue = yield from self._next_batch()
                if not queue:
                    continue
            yield from self._run_batch(queue)
            queue = []


def closed_loop(
    *,
    planner: Planner,
    protocol: Callable[..., Generator[Msg, Any, Any]],
    objectives: tuple[Objective, ...],
    budget: int,
    measurements: tuple[Objective, ...] = (),
    batch_size: int = 1,
    md: Mapping[str, Any] | None = None,
    resume: ResumePlan | None = None,
    options: LoopOptions | None = None,
) -> Generator[Msg, Any, list[Experiment]]:
    """The campaign plan: run experiments proposed by ``planner`` until ``budget`` are done.

    Opens a campaign run (run key :data:`CAMPAIGN_RUN_KEY`) whose ``experiments`` stream
    records every life-cycle transition, whose ``planner`` stream records every ask and
    whose ``approvals`` stream records operator decisions; each experiment is its own run
    opened by the protocol, whose start document carries ``sdl_campaign_uid`` and
    ``sdl_experiment_id``.

    The plan is not rewindable: a pause never replays messages (a dispensed sample cannot be
    dispensed again). A deferred pause takes effect at the checkpoint before each experiment.

    Args:
        planner: proposes points; told every outcome (NaN for a failed experiment).
        protocol: ``protocol(point, md=...) -> plan`` running one experiment.
        objectives: how to compute objective values from an experiment's readings.
        measurements: other quantities to compute from the readings and tell the planner
            (those its outcome constraints bound).
        budget: experiments (done + failed) the whole campaign runs, earlier runs included.
        batch_size: points asked from the planner at a time (overrides ``options``).
        md: metadata for the campaign run's start document.
        resume: where a resumed campaign starts (see :func:`sdl._resume.plan_resume`).
        options: see :class:`LoopOptions`.

    Returns:
        The plan (a generator; the arguments are taken at this call). It returns the
        experiments it touched, in their final states.
    """
    options = replace(options or LoopOptions(), batch_size=batch_size)
    resume = resume or ResumePlan(completed=0, next_id=0, next_batch=0)
    start_md = campaign_start_md("closed_loop", md, resume)
    loop = _Loop(
        planner, protocol, tuple(objectives), tuple(measurements), budget, options, start_md, resume
    )
    # watched: a status abandoned by an earlier experiment never reaches the loop. Returned,
    # not delegated to with ``yield from``: one generator frame fewer below every protocol
    # (see _campaign_run)
    return campaign_plan(loop, watch_statuses=True)


def campaign_start_md(
    plan_name: str, md: Mapping[str, Any] | None, resume: ResumePlan
) -> dict[str, Any]:
    """The start document's metadata of a campaign run (of the loop or a lab's)."""
    start_md = {"plan_name": plan_name, "sdl_role": "campaign", **dict(md or {})}
    if resume.previous_runs:
        start_md["sdl_resumed_from"] = list(resume.previous_runs)
    return start_md


def campaign_plan(loop: _Loop, *, watch_statuses: bool) -> Generator[Msg, Any, list[Experiment]]:
    """``loop.plan()`` as the campaign run: its worker closed at the end, its run key, the
    safe state on an error, not rewindable; with ``watch_statuses``, the status guard
    outermost. Returns the experiments it touched."""
    plan = _campaign_run(loop)
    return loop.guard.watch(plan) if watch_statuses else plan


def _campaign_run(loop: _Loop) -> Generator[Msg, Any, list[Experiment]]:
    """The campaign run around ``loop.plan()``, in one generator frame.

    It does what ``rewindable_wrapper(plan, False)`` around the safe state around
    ``set_run_key_wrapper(run_wrapper(plan, md), CAMPAIGN_RUN_KEY)`` would do (and is
    tested against them), as bluesky's wrappers do it: not rewindable, then restored
    (except at a halt); the run opened, its messages given the campaign's run key, and
    closed with ``fail`` and the reason on an error (the exit status of a stop or an
    abort); the loop's worker closed inside the run; then, on any exception but a halt,
    the safe state (outside the run). Nested, those wrappers are eight generator frames,
    and every protocol runs below them: each plan stub a protocol calls formats the
    whole call stack when it is created (``bluesky.utils.Plan``), so every frame costs
    each experiment (benchmarks/loop_overhead.py).
    """
    key = CAMPAIGN_RUN_KEY
    initial = yield Msg("rewindable", None, None)
    changed = initial is not False
    if changed:
        yield Msg("rewindable", None, False)
    restore = True
    closing = False  # closed or halted: nothing more is yielded, whatever the close raises
    try:
        try:
            yield Msg("open_run", run=key, **loop.md)
            try:
                body = loop.plan()
                try:
                    response: Any = None
                    exc: BaseException | None = None
                    protocol: Protocol | None = None  # the experiment run from this frame
                    while True:
                        if protocol is not None:  # what capture() would do, a frame higher
                            # (inline, not a method: the protocol runs right below this frame)
                            try:
                                if exc is not None:
                                    msg = protocol.plan.throw(exc)
                                else:
                                    msg = protocol.plan.send(response)
                                if not isinstance(msg, Msg):  # into it: its wrappers clean up
                                    msg = protocol.plan.throw(TypeError(not_a_message(msg)))
                                    if not isinstance(msg, Msg):
                                        raise TypeError(not_a_message(msg))
                                if msg.run is None:
                                    msg = msg._replace(run=protocol.run_key)
                                if msg.command == "open_run" and protocol.md:
                                    msg = with_md(msg, protocol.md)
                            except StopIteration as stop:  # its value, to the loop
                                protocol.sink.result = stop.value
                                protocol, exc, response = None, None, stop.value
                                continue
                            except BaseException as err:  # noqa: BLE001 - raised in the loop
                                protocol, exc, response = None, err, None
                                continue
                            exc = None
                            try:
                                response = yield msg
                            except GeneratorExit:  # closed, or halted: no clean-up
                                closing = True
                                _close_protocol_then_loop(protocol, body)
                                raise
                            except BaseException as err:  # noqa: BLE001 - into the protocol
                                exc, response = err, None
                            else:
                                protocol.sink.observe(msg, response)
                            continue
                        try:
                            msg = body.throw(exc) if exc is not None else body.send(response)
                        except StopIteration:
                            break
                        exc, response = None, None
                        if type(msg) is Protocol:  # run by the loop below: run it from here
                            protocol = msg
                            continue
                        if msg.run is None:
                            msg = msg._replace(run=key)
                        try:
                            response = yield msg
                        except GeneratorExit:  # closed, or halted (PlanHalt): no clean-up
                            closing = True
                            body.close()
                            raise
                        except BaseException as err:  # noqa: BLE001 - thrown into the loop
                            exc, response = err, None
                finally:
                    loop.worker.close()
            except GeneratorExit:
                raise
            except Exception as err:
                if closing:
                    raise
                status = err.exit_status if isinstance(err, RunEngineControlException) else "fail"
                reason = None if isinstance(err, RunEngineControlException) else str(err)
                yield Msg("close_run", run=key, exit_status=status, reason=reason)
                raise
            yield Msg("close_run", run=key, exit_status=None, reason=None)
        except GeneratorExit:
            raise
        except BaseException:
            if loop.opt.safe_state is not None and not closing:
                yield from loop.opt.safe_state()
            raise
    except GeneratorExit:
        restore = False
        raise
    finally:
        if restore and changed and not closing:
            yield Msg("rewindable", None, initial)
    return list(loop.experiments.values())


def _close_left_open(sink: Capture, exp_id: int, exit_status: str, reason: str):
    """Plan: close the run an experiment's protocol left open (a bare ``open_run`` with no
    ``close_run``, or one that raised before it), so that its stop document comes before
    the experiment settles, as with ``bpp.run_decorator``; else the RunEngine would close
    it only when the whole campaign ends."""
    if not sink.open_runs:
        return
    logger.warning(
        "sdl: experiment %d: the protocol ended with its run %s still open; closed it (open "
        "and close a protocol's run with bluesky.preprocessors.run_decorator)",
        exp_id, sink.open_runs[-1],
    )  # fmt: skip
    why = reason or "closed by sdl: the protocol ended with its run open"
    try:
        uid = yield Msg(
            "close_run", run=f"sdl-experiment-{exp_id}", exit_status=exit_status, reason=why
        )
    except Exception as err:  # noqa: BLE001 - under run keys of its own: the RE closes it
        logger.warning("sdl: experiment %d: could not close its run: %s", exp_id, err)
    else:
        sink.closed_uids.append(uid)


def _close_protocol_then_loop(protocol: Protocol, body: Generator[Msg, Any, Any]) -> None:
    """Close the protocol, then the loop, as closing the loop's ``yield from capture(...)``
    would: an error the protocol's clean-up raises (a message yielded in its ``finally``)
    reaches the loop at its ``yield``, as one raised by ``capture`` would."""
    try:
        protocol.plan.close()
    except BaseException as err:  # noqa: BLE001 - the loop's to handle, while it is closed
        body.throw(err)  # raises it, or what the loop raised instead
        # the loop yielded a message while closed, as Python's close() tells:
        raise RuntimeError("generator ignored GeneratorExit") from err
    body.close()


@dataclass
class Protocol:
    """An experiment's protocol plan, yielded by the loop to :func:`_campaign_run`, which
    runs it from its own frame as ``yield from capture(plan, sink, run_key)`` would; the
    loop gets what the plan returns, or what it raises, at its ``yield``.

    From there the protocol runs four generator frames higher than it would below the
    loop's own frames (``plan``, ``_run_batch``, ``_run_one``, ``capture``): every plan
    stub it calls formats the whole stack when it is created (``bluesky.utils.Plan``),
    so each frame costs each experiment (benchmarks/loop_overhead.py). For the same
    reason :func:`_campaign_run` steps it inline, not through a method, and
    :func:`closed_loop` returns the campaign plan instead of delegating to it: below a
    protocol are only the RunEngine, the status guard and ``_campaign_run``.
    """

    plan: Generator[Msg, Any, Any]
    sink: Capture
    run_key: Any
    md: Mapping[str, Any] = field(default_factory=dict)  # for its runs (see with_md)
