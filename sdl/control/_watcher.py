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

Before any of this, a watcher with a control token authenticates the request (see
:mod:`._auth`): a missing or wrong MAC, a time outside the signature window, or an id
answered before is refused, and the refusal is logged ("refused: bad signature ...").
Without a token every well-formed request is obeyed: write access to the store is then
control. Malformed request files are deleted and logged; answered requests beyond the
last :data:`~._channel.KEEP_ANSWERED` are pruned.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ._auth import SIGNATURE_WINDOW_S, active_control_token, verify_request
from ._channel import KEEP_ANSWERED, ControlChannel, Request

__all__ = ["ControlWatcher"]

logger = logging.getLogger(__name__)

_MAIN_THREAD_ACTIONS = ("resume", "stop", "abort")
_LOOP_ACTIONS = ("approve", "add", "station")

#: refusals logged one by one per poll; beyond this a flood is logged as one count
_REFUSALS_LOGGED_PER_POLL = 5

_FROM_CONTEXT: Any = object()


class ControlWatcher:
    """Polls a :class:`ControlChannel` in a daemon thread and acts on the RunEngine.

    Args:
        channel: the campaign's control channel (or the store path).
        RE: the RunEngine running the campaign.
        poll: seconds between polls of the channel.
        heartbeat: seconds between refreshes of the published state's heartbeat.
        token: the control token: only requests signed with it are obeyed (None: every
            request is; by default, the token of the enclosing
            :func:`~sdl.control.control_token` block, if any).
        window: seconds either side of this clock within which a signed request's time
            must lie.
        keep: answered requests kept in the channel's folder.
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
        token: str | None = _FROM_CONTEXT,
        window: float = SIGNATURE_WINDOW_S,
        keep: int = KEEP_ANSWERED,
        on_action: Callable[..., None] | None = None,
    ):
        self.on_action = on_action
        self.channel = channel if isinstance(channel, ControlChannel) else ControlChannel(channel)
        self.RE = RE
        self.poll = float(poll)
        self.heartbeat_interval = float(heartbeat)
        self.token = active_control_token() if token is _FROM_CONTEXT else (token or None)
        self.window = float(window)
        self.keep = int(keep)
        self._answered: dict[str, float] = {}  # request id -> its time, to refuse replays
        self._refusals_this_poll = 0
        self._refusals_unlogged = 0
        self._last_prune = 0.0
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
        finally:  # after the answer is written: an id answered and back without one is a replay
            self._answered[rid] = time.time() if isinstance(request, str) else request.time

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
        self._refusals_this_poll = self._refusals_unlogged = 0
        malformed: list[tuple[str, str]] = []
        pending = self.channel.pending(malformed=malformed)
        for name, why in malformed:
            self._log_refusal(
                "malformed request", "", f"refused: malformed request {name} deleted ({why})"
            )
        handled = bool(malformed)
        for req in pending:
            if req.id in self._seen and req.id not in self._answered:
                continue  # handed to the loop or the main thread, not answered yet
            handled = True
            if req.id in self._answered:
                if self.channel.response(req.id) is not None:
                    continue  # answered by another thread since pending() looked
                # answered before and its answer pruned, yet here again: a replay
                self._refuse(req, "replayed: this request was answered before")
                continue
            self._seen.add(req.id)
            self._handle(req)
        if self._refusals_unlogged:
            self.record(
                "refused",
                "",
                f"refused: {self._refusals_unlogged} more requests in one poll "
                f"(bad signature, stale, replayed or malformed)",
            )
        if handled or time.monotonic() - self._last_prune > 10.0:
            self._last_prune = time.monotonic()
            self.channel.prune(self.keep)
            self._forget_old()

    def _forget_old(self) -> None:
        """Bound the memory of answered ids: those outside the signature window cannot
        come back (they are refused as stale), so with a token they are forgotten."""
        if self.token is not None:
            oldest = time.time() - 2 * self.window
            for rid, t in list(self._answered.items()):
                if t < oldest:
                    del self._answered[rid]
                    self._seen.discard(rid)
        excess = len(self._answered) - 10 * max(self.keep, 1)
        if excess > 0:
            for rid in sorted(self._answered)[:excess]:
                del self._answered[rid]
                self._seen.discard(rid)

    def _log_refusal(self, action: str, who: str, detail: str) -> None:
        self._refusals_this_poll += 1
        if self._refusals_this_poll <= _REFUSALS_LOGGED_PER_POLL:
            self.record(action, who, detail)
        else:
            self._refusals_unlogged += 1

    def _refuse(self, req: Request, why: str) -> None:
        """Refuse an unauthenticated request: answer it, log it (bounded), never act."""
        logger.warning("control: refused %s from %r (%s): %s", req.action, req.who, req.id, why)
        self._answered[req.id] = req.time
        self.handled.append((req, False, why))
        self._log_refusal(req.action, f"{req.who} (unverified)", f"refused: {why}")
        try:
            self.channel.acknowledge(req.id, f"{req.action} refused: {why}", ok=False)
        except Exception:
            logger.exception("could not acknowledge control request %s", req.id)

    def _authentic(self, req: Request) -> bool:
        """Whether ``req`` may be obeyed; refuses it (answers and logs) if not."""
        if self.token is None:
            return True
        fields = {
            "id": req.id,
            "action": req.action,
            "args": req.args,
            "who": req.who,
            "time": req.time,
            "expires": req.expires,
        }
        if not verify_request(self.token, fields, req.mac):
            what = "no MAC" if req.mac is None else "the MAC does not match"
            self._refuse(
                req,
                f"bad signature ({what}): the request was not signed with the campaign's "
                f"control token",
            )
            return False
        skew = time.time() - req.time
        if abs(skew) > self.window:
            self._refuse(
                req,
                f"stale: signed {abs(skew):.0f} s {'ago' if skew > 0 else 'in the future'}, "
                f"outside the {self.window:g} s window",
            )
            return False
        return True

    def _answer(self, req: Request, ok: bool, result: str) -> None:
        self.handled.append((req, ok, result))
        self.acknowledge(req, result, ok=ok)

    def _handle(self, req: Request) -> None:
        if not self._authentic(req):
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
