"""The closed loop as a bluesky plan: ask → run the protocol → extract → tell, until done."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import Msg, RequestAbort, RequestStop, RunEngineInterrupted

from sdl.errors import ExperimentFailed
from sdl.planners import Objective, Planner
from sdl.protocols import Capture, capture, extract_objectives

from ._ledger import Ledger, PlannerLog
from ._lifecycle import Experiment, Status
from ._resume import ResumePlan

__all__ = ["closed_loop", "CAMPAIGN_RUN_KEY"]

CAMPAIGN_RUN_KEY = "sdl-campaign"

# Exceptions that end the campaign instead of failing one experiment.
_CONTROL_FLOW = (RequestAbort, RequestStop, RunEngineInterrupted, GeneratorExit, KeyboardInterrupt)


def _describe_failure(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    inner = getattr(err, "__cause__", None) or getattr(err, "__context__", None)
    if type(err).__name__ == "FailedStatus" and err.args:
        status = err.args[0]
        exc = getattr(status, "exception", lambda: None)()
        if exc is not None:
            text = f"FailedStatus: {type(exc).__name__}: {exc}"
    elif inner is not None and str(err) == "":
        text = f"{type(inner).__name__}: {inner}"
    return text[:1000]


def closed_loop(
    *,
    planner: Planner,
    protocol: Callable[..., Generator[Msg, Any, Any]],
    objectives: tuple[Objective, ...],
    budget: int,
    batch_size: int = 1,
    md: Mapping[str, Any] | None = None,
    resume: ResumePlan | None = None,
) -> Generator[Msg, Any, list[Experiment]]:
    """The campaign plan: run experiments proposed by ``planner`` until ``budget`` are done.

    Opens a campaign run (run key :data:`CAMPAIGN_RUN_KEY`) whose ``experiments`` stream
    records every life-cycle transition and whose ``planner`` stream records every ask;
    each experiment is its own run opened by the protocol, whose start document carries
    ``sdl_campaign_uid`` and ``sdl_experiment_id``.

    Args:
        planner: proposes points; told every outcome (NaN for a failed experiment).
        protocol: ``protocol(point, md=...) -> plan`` running one experiment.
        objectives: how to compute objective values from an experiment's readings.
        budget: experiments (done + failed) the whole campaign runs, earlier runs included.
        batch_size: points asked from the planner at a time.
        md: metadata for the campaign run's start document.
        resume: where a resumed campaign starts (see :func:`sdl._resume.plan_resume`).

    Returns:
        The experiments this plan touched, in their final states.
    """
    resume = resume or ResumePlan(completed=0, next_id=0, next_batch=0)
    ledger = Ledger(planner.space, objectives)
    planner_log = PlannerLog()
    start_md = {"plan_name": "closed_loop", "sdl_role": "campaign", **dict(md or {})}
    if resume.previous_runs:
        start_md["sdl_resumed_from"] = list(resume.previous_runs)
    experiments: dict[int, Experiment] = {}

    def record(exp: Experiment):
        experiments[exp.id] = exp
        yield from ledger.record(exp)

    @bpp.set_run_key_decorator(CAMPAIGN_RUN_KEY)
    @bpp.run_decorator(md=start_md)
    def _campaign():
        for cut in resume.to_interrupt:
            yield from record(cut.advance(Status.INTERRUPTED))
        completed, next_id, batch = resume.completed, resume.next_id, resume.next_batch
        queue = list(resume.reruns)[: max(budget - completed, 0)]
        while completed < budget:
            if not queue:
                n = min(batch_size, budget - completed)
                t0 = time.perf_counter()
                points = planner.ask(n)
                yield from planner_log.record(planner, batch, points, time.perf_counter() - t0)
                queue = [Experiment(id=next_id + i, batch=batch, point=p) for i, p in enumerate(points)]
                next_id += n
                batch += 1
            for exp in queue:
                yield from record(exp)
            for exp in queue:
                yield from bps.checkpoint()
                yield from _run_one(exp)
                completed += 1
            queue = []

    def _run_one(exp: Experiment):
        running = exp.advance(Status.RUNNING)
        yield from record(running)
        sink = Capture()
        exp_md = {
            "sdl_campaign_uid": start_md.get("sdl_campaign_uid", ""),
            "sdl_experiment_id": exp.id,
            "sdl_batch": exp.batch,
            "sdl_point": dict(exp.point),
        }
        try:
            plan = protocol(dict(exp.point), md=exp_md)
            yield from bpp.set_run_key_wrapper(capture(plan, sink), f"sdl-experiment-{exp.id}")
            values = extract_objectives(objectives, sink.readings)
        except _CONTROL_FLOW as err:
            cause = {RequestAbort: "campaign aborted", RequestStop: "campaign stopped"}.get(
                type(err), f"campaign interrupted ({type(err).__name__})"
            )
            yield from record(running.advance(Status.INTERRUPTED, run_uid=sink.run_uid or "", cause=cause))
            raise
        except Exception as err:  # a failed experiment is recorded, and the campaign goes on
            cause = _describe_failure(err) or type(err).__name__
            yield from record(running.advance(Status.FAILED, run_uid=sink.run_uid or "", cause=cause))
            planner.tell([exp.point], [{o.name: math.nan for o in objectives}])
            return
        yield from record(running.advance(Status.DONE, run_uid=sink.run_uid or "", objectives=values))
        planner.tell([exp.point], [values])

    yield from _campaign()
    return list(experiments.values())
