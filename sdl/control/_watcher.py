"""The campaign process's side of the control channel: a polling thread beside the RunEngine.

The watcher is the channel's only consumer in the campaign process. What it can do from its
own thread, it does at once (``RE.request_pause`` is thread-safe); what only the thread that
called ``RE(...)`` may do (resume, stop, abort a paused RunEngine) it hands over through
:meth:`ControlWatcher.next_command`, which :func:`sdl.control.run_controlled` waits on;
``approve`` and ``add`` requests wait in a queue for the loop (:meth:`ControlWatcher.take`).

What each action does, by RunEngine state::

    action   RE running                               RE paused
    pause    request_pause(defer=True), ack           ack "already paused"
    stop     stop_requested; request_pause(defer)     queued: main thread calls RE.stop()
    abort    abort_requested; request_pause()         queued: main thread calls RE.abort()
    resume   ack not ok ("not paused")                queued: main thread calls RE.resume()
    approve  queued for the loop (take)               queued for the loop
    add      queued for the loop (take)               queued for the loop

A deferred pause takes effect at the next checkpoint, which the loop yields before every
experiment: so "pause" and "stop" let the current experiment finish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._channel import ControlChannel, Request

__all__ = ["ControlWatcher"]

logger = logging.getLogger(__name__)

_MAIN_THREAD_ACTIONS = ("resume", "stop", "abort")
_LOOP_ACTIONS = ("approve", "add")


class ControlWatcher:
    """Polls a :class:`ControlChannel` in a daemon thread and acts on the RunEngine.

    Args:
        channel: the campaign's control channel (or the store path).
        RE: the RunEngine running the campaign.
        poll: seconds between polls of the channel.
        heartbeat: seconds between refreshes of the published state's heartbeat.
        require_token: refuse requests whose ``token_ok`` is False.
        on_action: called as ``on_action(action, who=..., detail=...)`` for every request answered
            (refusals too, with ``detail`` starting "refused") and every decision taken
            in the terminal; the campaign session passes the store writer's
            ``log_operator_action``.

    Attributes:
        stop_requested: set by a "stop" request (stop after the current experiment).
        abort_requested: set by an "abort" request.

    Example:
        >>> with ControlWatcher(ControlChannel(store), RE) as watcher:  # doctest: +SKIP
        ...     run_controlled(RE, campaign.plan(), watcher)
    """

    def __init__(
        self,
        channel: ControlChannel | Any,
        RE: Any,
        *,
        poll: float = 0.2,
        heartbeat: float = 2.0,
        require_token: bool = True,
        on_action: Callable[..., None] | None = None,
    ):
        self.on_action = on_action
        self.channel = channel if isinstance(channel, ControlChannel) else ControlChannel(channel)
        self.RE = RE
        self.poll = float(poll)
        self.heartbeat_interval = float(heartbeat)
        self.require_token = require_token
        self.stop_requested = threading.Event()
        self.abort_requested = threading.Event()
        self._commands: queue.Queue[Request] = queue.Queue()
        self._for_loop: list[Request] = []
        self._for_loop_lock = threading.Condition()
        self._seen: set[str] = set()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.handled: list[tuple[Request, bool, str]] = []  # (request, ok, result), for tests

    # -- life --------------------------------------------------------------------------
    def start(self) -> ControlWatcher:
        """Start polling (idempotent); acknowledges nothing that arrives before this."""
        if self._thread is None or not self._thread.is_alive():
            self._halt.clear()
            self._thread = threading.Thread(
                target=self._run, name="sdl-control-watcher", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop polling and join the thread."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> ControlWatcher:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def publish(self, state: str, **kwargs: Any) -> None:
        """Publish the campaign's state on the channel (never raises: logs instead)."""
        try:
            self.channel.set_state(state, **kwargs)
        except Exception:  # a full disk must not stop the campaign
            logger.exception("could not publish campaign state %r", state)

    # -- for the main thread and the loop ---------------------------------------------------
    def next_command(self, timeout: float | None = None) -> Request | None:
        """The next resume/stop/abort request for the thread that called ``RE(...)``."""
        try:
            return self._commands.get(timeout=timeout)
        except queue.Empty:
            return None

    def take(
        self, actions: Iterable[str] = _LOOP_ACTIONS, timeout: float | None = 0.0
    ) -> list[Request]:
        """Remove and return queued requests of these actions (``approve``, ``add``).

        Args:
            actions: which actions to take.
            timeout: seconds to wait for at least one (0: do not wait; None: forever).
        """
        wanted = set(actions)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._for_loop_lock:
            while True:
                got = [r for r in self._for_loop if r.action in wanted]
                if got or (deadline is not None and time.monotonic() >= deadline):
                    self._for_loop = [r for r in self._for_loop if r.action not in wanted]
                    return got
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                self._for_loop_lock.wait(left if left is not None else 0.5)

    def acknowledge(self, request: Request | str, result: str, ok: bool = True) -> bool:
        """Answer a request handed out by :meth:`next_command` or :meth:`take`."""
        rid = request if isinstance(request, str) else request.id
        if not isinstance(request, str):
            self.record(request.action, request.who, result if ok else f"refused: {result}")
        try:
            return self.channel.acknowledge(rid, result, ok=ok)
        except Exception:
            logger.exception("could not acknowledge control request %s", rid)
            return False

    def record(self, action: str, who: str, detail: str = "") -> None:
        """Hand an operator's action to ``on_action`` (never raises: it is a record)."""
        if self.on_action is None:
            return
        try:
            self.on_action(action, who=who, detail=detail)
        except Exception:
            logger.exception("could not record the operator action %r", action)

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        last_beat = 0.0
        while not self._halt.is_set():
            try:
                self.poll_once()
                if time.monotonic() - last_beat > self.heartbeat_interval:
                    self.channel.heartbeat()
                    last_beat = time.monotonic()
            except Exception:  # never let a bad file kill the watcher
                logger.exception("control watcher: polling %s failed", self.channel)
            self._halt.wait(self.poll)

    def poll_once(self) -> None:
        """Handle every new pending request once (the thread calls this every ``poll`` s)."""
        for req in self.channel.pending():
            if req.id in self._seen:
                continue
            self._seen.add(req.id)
            self._handle(req)

    def _answer(self, req: Request, ok: bool, result: str) -> None:
        self.handled.append((req, ok, result))
        self.acknowledge(req, result, ok=ok)

    def _handle(self, req: Request) -> None:
        if self.require_token and not req.token_ok:
            self._answer(
                req, False, f"{req.action} refused: the control token was wrong or missing"
            )
            return
        state = str(getattr(self.RE, "state", "idle"))
        if req.action in _LOOP_ACTIONS:
            with self._for_loop_lock:
                self._for_loop.append(req)
                self._for_loop_lock.notify_all()
            return
        if req.action == "pause":
            if state == "running":
                self._request_pause(defer=True)
                self.publish("pausing", message=f"pause requested by {req.who}")
                self._answer(
                    req, True, "pause requested: the campaign pauses before its next experiment"
                )
            elif state == "paused":
                self._answer(req, True, "already paused")
            else:
                self._answer(req, False, f"the RunEngine is {state}, not running: nothing to pause")
            return
        if req.action == "resume":
            if state == "paused":
                self._commands.put(req)
            else:
                self._answer(req, False, f"not paused (the RunEngine is {state})")
            return
        if req.action == "stop":
            self.stop_requested.set()
            if state == "running":
                self._request_pause(defer=True)
                self.publish("stopping", message=f"stop requested by {req.who}")
                self._answer(
                    req, True, "stop requested: the campaign ends after the current experiment"
                )
            else:
                self._commands.put(req)
            return
        if req.action == "abort":
            self.abort_requested.set()
            if state == "running":
                self._request_pause(defer=False)
            self._commands.put(req)
            return

    def _request_pause(self, defer: bool) -> None:
        try:
            self.RE.request_pause(defer=defer)
        except Exception:
            logger.exception("control watcher: RE.request_pause(defer=%s) failed", defer)
