"""Running a campaign plan: subscribers, control channel, safe state, clean-up.

:meth:`sdl.Campaign.run` and :meth:`sdl.Campaign.resume` build a plan; this module runs it
on a RunEngine with everything around it: the store writer, the progress bar and live
plot, the control channel (pause/resume/stop/abort from other terminals and the
dashboard), approval, and the safe state at a pause.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from ._progress import ProgressBar
from ._result import CampaignResult
from .store import ZarrWriter, open_store

__all__ = ["SessionOptions", "run_session"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionOptions:
    """What surrounds the plan while it runs.

    Attributes:
        progress: show a progress bar in the terminal.
        plot: show a live matplotlib plot (a bluesky callback).
        control: watch the store's control channel (``sdl pause|stop|abort``, the dashboard);
            when paused, wait for resume / stop / abort from the channel or the terminal.
        interactive: at a pause, also offer resume / stop / abort in this terminal.
        callbacks: more RunEngine subscribers.
    """

    progress: bool = False
    plot: bool = False
    control: bool = False
    interactive: bool = False
    callbacks: Sequence[Callable[[str, dict], Any]] = ()


def run_session(
    campaign: Any,
    RE: RunEngine | None,
    writer: ZarrWriter,
    make_plan: Callable[..., Any],
    options: SessionOptions,
    backend: Any = None,
) -> CampaignResult:
    """Run ``make_plan(approve)`` on ``RE`` and return the campaign's summary from the store.

    Args:
        campaign: the :class:`~sdl.Campaign` (for its description, devices and approval mode).
        RE: the RunEngine; if None, :func:`sdl.control.make_run_engine` makes one.
        writer: the store writer, subscribed for the duration.
        make_plan: builds the campaign plan, given the approval callable (or None).
        options: see :class:`SessionOptions`.
        backend: a lab campaign's step backend: opened here with the same subscribers
            as ``RE`` (the writer first), closed when the session ends.
    """
    controlled = bool(options.control or campaign.approval)
    if RE is None:  # Ctrl-C pauses only where the terminal is asked what next
        from sdl.control import make_run_engine

        RE = make_run_engine(options.interactive and controlled)
    subs = [writer, *options.callbacks]
    bar = None
    if options.progress:
        first = campaign.objectives[0]
        bar = ProgressBar(campaign.budget, first.name, first.minimize)
        subs.append(bar)
    if options.plot:
        from sdl.plots import make_live_plot

        subs.append(make_live_plot(campaign.describe()))
    tokens = [RE.subscribe(cb) for cb in subs]
    if backend is not None:
        backend.open([writer, *options.callbacks])
    previous_hook = RE.state_hook
    watcher = None
    if controlled:
        from sdl.control import ControlChannel, ControlWatcher

        watcher = ControlWatcher(
            ControlChannel(writer.path), RE, on_action=writer.log_operator_action
        ).start()

    def on_paused() -> None:
        writer.flush()
        campaign.make_safe()

    def finish() -> None:
        RE.state_hook = previous_hook
        for token in tokens:
            RE.unsubscribe(token)
        # every step runs, in this order, whatever an earlier one raised (the last error
        # is raised, the others chained to it): a failed block must not leave the store
        # locked by this process or the watcher's thread polling
        with ExitStack() as steps:
            if bar is not None:
                steps.callback(bar.close)
            # last but the bar (the watcher logs operator actions): releases the store's lock
            steps.callback(writer.close)
            if watcher is not None:
                steps.callback(watcher.stop)
            steps.callback(writer.flush)
            if backend is not None:  # its engines' last documents before the writer closes
                steps.callback(backend.close)

    def hook(new_state, old_state):
        # (bluesky calls this inside its state changes: nothing of ours may raise here, or
        # RE.stop() after a pause fails; see ZarrWriter.on_state_change)
        writer.on_state_change(new_state, old_state)
        if new_state == "paused" and watcher is None:
            campaign.make_safe()
        if previous_hook is not None:
            previous_hook(new_state, old_state)
        if new_state == "idle" and watcher is None:
            try:
                finish()  # the plan ended after a pause: resumed, stopped or aborted
            except Exception:
                logger.exception("%s: closing the campaign's session failed", writer.path)

    RE.state_hook = hook
    approve = campaign.approver(watcher) if watcher is not None else None
    additions = campaign.additions(watcher) if watcher is not None else None
    if backend is not None:
        stations = campaign.station_requests(watcher) if watcher is not None else None
        plan = make_plan(approve, additions, stations)
    else:
        plan = make_plan(approve, additions)
    t0 = time.monotonic()
    try:
        if watcher is not None:
            from sdl.control import run_controlled

            run_controlled(RE, plan, watcher, interactive=options.interactive, on_paused=on_paused)
        else:
            _run_stopping_on_signals(RE, plan, writer)
    except RunEngineInterrupted:
        # Paused, with nobody watching the channel: keep writing; RE.resume() / RE.stop() /
        # RE.abort() continue the plan and the hook cleans up when the RunEngine is idle.
        raise
    except BaseException:
        try:
            finish()
        except Exception:  # the campaign's own error is the one to raise
            logger.exception(
                "%s: closing the campaign's session after an error failed", writer.path
            )
        raise
    finish()
    return CampaignResult.from_store(open_store(writer.path), time.monotonic() - t0)


def _run_stopping_on_signals(RE: RunEngine, plan: Any, writer: ZarrWriter) -> None:
    """``RE(plan)``, where SIGINT stops the campaign cleanly (unless ``RE`` takes SIGINT
    itself: then a pause reaches the caller as before), a second SIGINT, SIGTERM or SIGHUP
    aborts it."""
    import threading

    from sdl.control import SignalStops, operator_name
    from sdl.control._signals import handles_sigint

    def on_signal(action: str, name: str) -> None:
        writer.log_operator_action(action, who=operator_name(None), detail=name)

    stops = SignalStops(
        RE, threading.Event(), threading.Event(), on_signal, sigint=not handles_sigint(RE)
    )
    call: Any = lambda: RE(plan)  # noqa: E731
    with stops:
        while True:
            try:
                call()
                return
            except RunEngineInterrupted:
                if stops.abort_requested.is_set():
                    call = lambda: RE.abort("aborted by a signal")  # noqa: E731
                elif stops.stop_requested.is_set():
                    call = RE.stop
                else:
                    raise
