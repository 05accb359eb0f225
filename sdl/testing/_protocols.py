"""Protocol wrappers for testing how a campaign behaves when an operator steps in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bluesky.utils import Msg

__all__ = ["pause_before"]


def pause_before(protocol: Callable[..., Any], experiment_id: int) -> Callable[..., Any]:
    """``protocol``, but the RunEngine pauses (at once) before experiment ``experiment_id``.

    Only the first time that experiment is reached, so a resumed campaign goes on. Useful to
    test pause, resume, stop and abort of a campaign deterministically.

    Example:
        >>> campaign = Campaign(..., protocol=pause_before(my_protocol, 2))  # doctest: +SKIP
        >>> RE(campaign.plan())  # raises RunEngineInterrupted before experiment 2  # doctest: +SKIP
    """
    paused = False

    def wrapped(point, md):
        nonlocal paused
        if md["sdl_experiment_id"] == experiment_id and not paused:
            paused = True
            yield Msg("pause", defer=False)
        return (yield from protocol(point, md=md))

    return wrapped
