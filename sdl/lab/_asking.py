"""When a lab campaign asks its planner, and for how many points.

One rule, shared by the campaign's coordinator (:mod:`sdl.lab._coordinator`, on the
wall clock) and the digital twin (:mod:`sdl.twin._sim`, on a simulated clock), so that
the twin forecasts the policy the campaign runs. Pure functions of the coordinator's
state; the callers supply the clock.

Asks are just in time: as many points as first-step lanes are free, or will be within
``ASK_HORIZON`` ask durations ("freeing soon"), plus ``lookahead``, less the new
experiments already waiting; a ``max_in_flight`` that the campaign sets caps the points
at what may start. The last experiments of a budget (as many as the pipeline holds:
``max_in_flight + lookahead``) are asked for with at most ``final_in_flight`` in flight,
so that the points that end a campaign are chosen knowing more results. See
``docs/lab.md`` for the measurements behind each part.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ASK_HORIZON", "ask_size", "final_in_flight", "next_ask_due", "until_soon"]

#: A first-step lane "frees soon" when its step should end within this many ask durations:
#: its point is asked for now, so the next ask (as long as this one) finds it taken care of.
ASK_HORIZON = 2.5


def until_soon(
    starts: Iterable[float], step_mean: float | None, horizon: float, now: float
) -> list[float]:
    """For each running first step (its start time in ``starts``): the time until it
    should end within ``horizon``; <= 0: it does now. Empty while the first step's mean
    duration is unknown (``None``: none has ended yet)."""
    if step_mean is None:
        return []
    return [start + step_mean - horizon - now for start in starts]


def ask_size(
    *,
    room: int,
    free_slots: int,
    until: list[float],
    lookahead: int,
    fresh: int,
    in_flight: int,
    max_in_flight: int | None,
    pipeline: int = 0,
    final: int | None = None,
) -> int:
    """How many points to ask for now (<= 0: none).

    Args:
        room: points the budget still allows (budget - settled - in flight).
        free_slots: free first-step lanes in service.
        until: :func:`until_soon` of the running first steps.
        lookahead: points asked for beyond the lanes. 0: only for free lanes, never
            ahead of a lane about to free (every point then knows every result before it,
            as in the one-instrument loop).
        fresh: new experiments already waiting for their first step.
        in_flight: experiments planned or running.
        max_in_flight: the campaign's own limit (``None``: the stations' capacity, which
            does not limit the asks; there a limit bought nothing measurable).
        pipeline: the experiments in flight at most (``max_in_flight`` or the stations'
            capacity): the last ``pipeline + lookahead`` of the budget are the final ones.
        final: experiments in flight at most while the final ones are asked for
            (:func:`final_in_flight`; ``None``: no such limit).
    """
    soon = sum(1 for d in until if d <= 0) if lookahead else 0
    n = min(room, free_slots + soon + lookahead - fresh)
    if max_in_flight is not None:
        # no more than may start: a point that must wait is chosen without the results
        # that come in meanwhile
        n = min(n, max_in_flight + lookahead - in_flight)
    if final is not None and room <= pipeline + lookahead:
        # the points that end the campaign: each waits for more results (issue 13: with
        # 4 coaters and 9 in flight, the best film after 30 experiments, docs/lab.md)
        n = min(n, final + lookahead - in_flight)
    return n


def final_in_flight(option: int | None, pipeline: int, lanes: int = 1) -> int:
    """Experiments in flight at most while a budget's final ones are asked for: the
    campaign's ``final_in_flight``, or by default half the pipeline and at least one per
    first-step lane (``lanes``), so that no first station is left without a sample."""
    return max(1, lanes, pipeline // 2) if option is None else int(option)


def next_ask_due(until: list[float], lookahead: int) -> float | None:
    """Time until the next lane starts freeing soon, when a coordinator should wake to
    ask in time (``None``: none will, or ``lookahead`` 0 never asks ahead)."""
    if not lookahead:
        return None
    due = [d for d in until if d > 0]
    return min(due) if due else None
