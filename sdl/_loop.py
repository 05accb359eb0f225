"""The closed loop as a bluesky plan: ask → run the protocol → extract → tell, until done."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import Msg, RequestAbort, RequestStop, RunEngineInterrupted

from sdl.errors import ExperimentFailed
from sdl.planners import Objective, Planner
from sdl.protocols import Capture, capture, extract_objectives

from ._ledger import Ledger
from ._lifecycle import Experiment, Status

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
    first_id: int = 0,
    first_batch: int = 0,
) -> Generator[Msg, Any, list[Experiment]]:
    """The campaign plan: run experiments proposed by ``planner`` until ``budget`` are done.

    Opens a campaign run (run key :data:`CAMPAIGN_RUN_KEY`) whose ``experiments`` stream
    records every life-cycle transition; each experiment is its own run opened by the
    protocol, whose start document carries ``sdl_campaign_uid`` and ``sdl_experiment_id``.

    Args:
        planner: proposes points; told every outcome (NaN for a failed experiment).
        protocol: ``protocol(point, md=...) -> plan`` running one experiment.
        objectives: how to compute objective values from an experiment's readings.
        budget: number of experiments to run (done + failed) in this plan.
        batch_size: points asked from the planner at a time.
        md: metadata for the campaign run's start document.
        first_id: id of the first experiment (non-zero when resuming).
        first_batch: index of the first batch (non-zero when resuming).

    Returns:
        The experiments, in their final states.
    """
    ledger = Ledger(planner.space, objectives)
    start_md = {"plan_name": "closed_loop", "sdl_role": "campaign", **dict(md or {})}
    experiments: list[Experiment] = []

    def record(exp: Experiment):
        experiments[exp.id - first_id] = exp
        yield from ledger.record(exp)

    @bpp.set_run_key_decorator(CAMPAIGN_RUN_KEY)
    @bpp.run_decorator(md=start_md)
    def _campaign():
        next_id, batch = first_id, first_batch
        while next_id < first_id + budget:
            n = min(batch_size, first_id + budget - next_id)
            points = planner.ask(n)
            batch_exps = [Experiment(id=next_id + i, batch=batch, point=p) for i, p in enumerate(points)]
            experiments.extend(batch_exps)
            for exp in batch_exps:
                yield from record(exp)
            for exp in batch_exps:
                yield from bps.checkpoint()
                yield from _run_one(exp)
            next_id += n
            batch += 1

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
            cause = _describe_failure(err)
            if not isinstance(err, ExperimentFailed):
                cause = cause or type(err).__name__
            yield from record(running.advance(Status.FAILED, run_uid=sink.run_uid or "", cause=cause))
            planner.tell([exp.point], [{o.name: math.nan for o in objectives}])
            return
        yield from record(running.advance(Status.DONE, run_uid=sink.run_uid or "", objectives=values))
        planner.tell([exp.point], [values])

    yield from _campaign()
    return experiments
