"""Run a plan under operator control: pause, then resume, stop or abort from anywhere.

:func:`run_controlled` replaces ``RE(plan)``. When the RunEngine pauses (Ctrl-C, or a
"pause"/"stop"/"abort" request through the control channel) it publishes ``paused`` and
waits for a decision: from the channel (``sdl resume|stop|abort STORE``, the dashboard) or,
when ``interactive``, from the terminal. Then it calls ``RE.resume()``, ``RE.stop()`` or
``RE.abort()`` from the thread that called it, as bluesky requires.
"""

from __future__ import annotations

import select
import sys
import threading
from collections.abc import Callable
from typing import Any

from bluesky.utils import RunEngineInterrupted

from ._channel import operator_name
from ._signals import SignalStops, handles_sigint
from ._watcher import ControlWatcher

__all__ = ["run_controlled"]

_PROMPT = "sdl: campaign paused. [r]esume, [s]top (end the campaign here, cleanly), or [a]bort? "
_CHOICES = {
    "r": "resume",
    "resume": "resume",
    "s": "stop",
    "stop": "stop",
    "a": "abort",
    "abort": "abort",
}


def _terminal_choice(timeout: float) -> str | None:
    """A line from stdin if one is ready within ``timeout`` seconds (POSIX terminals)."""
    try:
        ready, _, _ = select.select([sys.stdin], [], [], timeout)
    except (OSError, ValueError):  # not selectable (Windows, closed stdin)
        return None
    if not ready:
        return None
    line = sys.stdin.readline()
    if line == "":  # EOF
        return None
    return _CHOICES.get(line.strip().lower(), "?")


def run_controlled(
    RE: Any,
    plan: Any,
    watcher: ControlWatcher,
    *,
    interactive: bool = False,
    on_paused: Callable[[], None] | None = None,
) -> Any:
    """Run ``plan`` on ``RE``; on every pause, wait for resume, stop or abort and do it.

    Args:
        RE: the RunEngine.
        plan: the campaign plan.
        watcher: a started :class:`ControlWatcher` on the campaign's channel.
        interactive: also offer the choice in this terminal (stdin must be a terminal).
        on_paused: called once at each pause (e.g. to flush the store writer).

    Returns:
        What the last ``RE(...)``, ``RE.resume()``, ``RE.stop()`` or ``RE.abort()`` returned.

    The published state goes ``running`` → (``paused`` → ``running``)* → ``finished``, or
    ``aborted`` / ``failed``.

    Unless ``RE`` takes SIGINT itself (bluesky's handler: Ctrl-C pauses), SIGINT stops the
    campaign after the current experiment and a second one aborts it; SIGTERM and SIGHUP
    abort it (:class:`~sdl.control.SignalStops`). Each is logged as an operator action.
    """
    stops = SignalStops(
        RE, threading.Event(), threading.Event(), _on_signal(watcher), sigint=not handles_sigint(RE)
    )
    watcher.publish("running")
    call: Callable[[], Any] = lambda: RE(plan)  # noqa: E731
    try:
        with stops:
            while True:
                try:
                    result = call()
                except RunEngineInterrupted:
                    call = _decide(RE, watcher, interactive, on_paused, stops)
                    continue
                aborted = watcher.abort_requested.is_set() or stops.abort_requested.is_set()
                watcher.publish("aborted" if aborted else "finished")
                return result
    except BaseException as err:
        watcher.publish("failed", message=f"{type(err).__name__}: {err}"[:500])
        raise


def _on_signal(watcher: ControlWatcher) -> Callable[[str, str], None]:
    def on_signal(action: str, name: str) -> None:
        watcher.record(action, operator_name(None), name)
        if action == "stop":
            watcher.publish("stopping", message=f"stop requested by {name}")

    return on_signal


def _decide(
    RE: Any,
    watcher: ControlWatcher,
    interactive: bool,
    on_paused: Callable[[], None] | None,
    stops: SignalStops,
):
    if on_paused is not None:
        on_paused()
    watcher.publish("paused", message="waiting for resume, stop or abort")
    if watcher.abort_requested.is_set():
        req = watcher.next_command(timeout=0)
        if req is not None:
            watcher.acknowledge(req, "aborted: the running experiment is marked interrupted")
        return lambda: RE.abort("aborted by operator")
    if stops.abort_requested.is_set():
        return lambda: RE.abort("aborted by a signal")
    if watcher.stop_requested.is_set() or stops.stop_requested.is_set():
        return _stop(RE, watcher)
    if interactive:
        print("\n" + _PROMPT, end="", flush=True)
    while True:
        req = watcher.next_command(timeout=0.2)
        if req is None and stops.abort_requested.is_set():  # a signal while paused
            return lambda: RE.abort("aborted by a signal")
        if req is None and stops.stop_requested.is_set():
            return _stop(RE, watcher)
        if req is not None:
            if req.action == "resume":
                watcher.acknowledge(req, "resumed")
                watcher.publish("running", message=f"resumed by {req.who}")
                return RE.resume
            if req.action == "stop":
                watcher.acknowledge(req, "stopped: the campaign ends cleanly")
                return _stop(RE, watcher)
            if req.action == "abort":
                watcher.acknowledge(req, "aborted: the running experiment is marked interrupted")
                return lambda: RE.abort("aborted by operator")
        if interactive:
            choice = _terminal_choice(0.0)
            if choice in ("resume", "stop", "abort"):
                watcher.record(choice, operator_name(None), "in the terminal")
            if choice == "resume":
                watcher.publish("running", message="resumed in the terminal")
                return RE.resume
            if choice == "stop":
                return _stop(RE, watcher)
            if choice == "abort":
                watcher.abort_requested.set()
                return lambda: RE.abort("aborted by operator")
            if choice == "?":
                print(_PROMPT, end="", flush=True)


def _stop(RE: Any, watcher: ControlWatcher):
    # drain a queued stop request so the requester hears back
    while True:
        req = watcher.next_command(timeout=0)
        if req is None:
            break
        watcher.acknowledge(req, "stopped: the campaign ends cleanly", ok=req.action == "stop")
    watcher.publish("stopping")
    return RE.stop
