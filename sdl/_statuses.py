"""Statuses an experiment leaves behind, and why they must not reach the next one.

bluesky's RunEngine watches every status a plan's ``set``/``trigger``/... returns. When one
fails, at any later moment of the same ``RE(...)`` call, the RunEngine throws
``FailedStatus`` into the plan at its next message -- whether or not anything waits on
that status. So a protocol that fails on one motor while another still moves (or that does
not wait for what it started) leaves a status that can fail during the *next* experiment,
or between experiments where it would end the whole campaign.

:class:`StatusGuard` closes that gap in two steps:

1. after every experiment, :meth:`StatusGuard.drain` waits (bounded) until every status the
   protocol started has finished and run its callbacks (the RunEngine's among them: ophyd
   marks a status done before its failure handling and callbacks run), and hands back the
   failures it saw, which become part of that experiment's record;
2. a status still running when the drain gives up is *abandoned*: if it fails later,
   :meth:`StatusGuard.watch` keeps the failure away from the loop's own messages (it is
   logged) and turns it, inside a later experiment's protocol, into a
   :class:`StaleStatusError` that fails that experiment as an instrument fault.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import Any

from bluesky.utils import FailedStatus, Msg

from sdl.errors import DeviceFaultError

__all__ = ["StaleStatusError", "StatusGuard"]

logger = logging.getLogger("sdl")

#: Messages whose response the loop uses and that can be sent again without effect.
_RESEND = frozenset({"wait_for"})


class StaleStatusError(DeviceFaultError):
    """A device operation left running by an earlier experiment failed during this one."""


def _is_status(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("add_callback", "done", "success"))


def _status_of(err: FailedStatus) -> Any:
    return err.args[0] if err.args else None


def _describe(status: Any) -> str:
    try:
        exc = status.exception(timeout=0) if callable(getattr(status, "exception", None)) else None
    except Exception:  # noqa: BLE001 - description only
        exc = None
    return f"{type(exc).__name__}: {exc}" if exc is not None else repr(status)


class StatusGuard:
    """Track the statuses of the experiment in progress; keep abandoned ones harmless."""

    def __init__(self) -> None:
        self._current: list[Any] = []  # statuses of the experiment in progress
        self._swallowed: list[Any] = []  # failed at an unstage, reported by drain()
        self._abandoned: dict[int, tuple[Any, int]] = {}  # id(status) -> (status, exp id)
        self._experiment: int | None = None
        self._in_protocol = False
        # id(status) -> status, once its callbacks have run up to the guard's own, which is
        # added after the RunEngine's: the RunEngine's failure report is then queued
        self._called_back: dict[int, Any] = {}

    # -- the experiment's window ---------------------------------------------------------------
    def begin(self, experiment_id: int) -> None:
        """An experiment's protocol starts: statuses from now on are its own."""
        self._current = []
        self._experiment = experiment_id
        self._in_protocol = True

    def end_protocol(self) -> None:
        """The protocol ended without a drain (an abort or stop): the loop's own messages
        follow, where an abandoned status's failure must never be thrown."""
        self._in_protocol = False

    def drain(
        self, timeout: float, *, failed: bool = False, cause: Any = None
    ) -> Generator[Msg, Any, list[str]]:
        """Plan: wait up to ``timeout`` s for the experiment's unfinished statuses.

        The statuses themselves are inspected, not the ``FailedStatus`` thrown in: the
        RunEngine keeps one pending exception, so of two statuses failing together only one
        is thrown.

        Args:
            failed: the protocol failed; then every failed status of the experiment other
                than ``cause`` is reported (a protocol that ended normally handled the ones
                thrown into it).
            cause: the status whose failure ended the protocol, if one did.

        Returns:
            A description of every status that failed besides ``cause`` (or did not
            finish in time).
        """
        self._in_protocol = False
        statuses = list(self._current)
        # not ``s.done``: ophyd marks a status done before it runs its failure handling
        # (a motor's stop) and then its callbacks, the RunEngine's among them; a failure
        # the RunEngine learns of after the drain would be thrown at the loop's messages
        pending = [s for s in statuses if not self._finished(s)]
        report = {id(s) for s in (statuses if failed else pending) if s is not cause}
        report |= {id(s) for s in self._swallowed if s is not cause}
        self._swallowed = []
        failures: list[str] = []
        deadline = time.monotonic() + timeout
        # one message at least: a failure already scheduled on the event loop arrives now
        while True:
            try:
                yield Msg("sleep", None, 0.005 if pending else 0)  # (no stub: see _ledger)
            except FailedStatus as err:
                status = _status_of(err)
                if not self._take_stale(status) and all(status is not s for s in statuses):
                    failures.append(f"FailedStatus: {_describe(status)}")
                continue
            pending = [s for s in pending if not self._finished(s)]
            if not pending or time.monotonic() >= deadline:
                break
        for status in statuses:
            if id(status) in report and status.done and not status.success:
                failures.append(f"FailedStatus: {_describe(status)}")
        for status in pending:
            self._abandoned[id(status)] = (status, self._experiment)
            failures.append(f"{status!r} still not finished {timeout:g} s after the protocol ended")
        for status in statuses:
            if self._called_back.get(id(status)) is status:
                del self._called_back[id(status)]
        self._current = []
        self._experiment = None
        return failures

    def _track(self, status: Any) -> None:
        """A status of the experiment in progress (its RunEngine callback already added)."""
        self._current.append(status)
        try:
            status.add_callback(self._note_called_back)
        except Exception:  # noqa: BLE001 - a status of another kind: done is all there is
            self._called_back[id(status)] = status

    def _note_called_back(self, status: Any) -> None:
        self._called_back[id(status)] = status  # (in the device's thread)

    def _finished(self, status: Any) -> bool:
        return status.done and self._called_back.get(id(status)) is status

    # -- the campaign plan ---------------------------------------------------------------------
    def _take_stale(self, status: Any) -> bool:
        """If ``status`` was abandoned, log its failure and forget it; say whether it was."""
        entry = self._abandoned.pop(id(status), None)
        if entry is None or entry[0] is not status:
            return False
        self._called_back.pop(id(status), None)
        what = _describe(status)
        logger.warning(
            "sdl: a device operation abandoned by experiment %s failed later: %s", entry[1], what
        )
        return True

    def watch(self, plan: Generator[Msg, Any, Any]) -> Generator[Msg, Any, Any]:
        """Pass ``plan``'s messages through, noting statuses and catching abandoned ones."""
        response: Any = None
        exc: BaseException | None = None
        while True:
            try:
                msg = plan.throw(exc) if exc is not None else plan.send(response)
            except StopIteration as stop:
                return stop.value
            exc = None
            while True:
                try:
                    response = yield msg
                except FailedStatus as err:
                    status = _status_of(err)
                    if (
                        self._in_protocol
                        and msg.command == "unstage"
                        and status is not None
                        and any(status is c for c in self._current)
                    ):
                        # bluesky carried the unstage out and threw the failure in its
                        # place: thrown into the protocol here, it would skip the unstaging
                        # of the other devices (left staged: the next experiment fails with
                        # RedundantStaging). Unstage on; drain() reports the failure.
                        self._swallowed.append(status)
                        response = None
                        break
                    if status is None or id(status) not in self._abandoned:
                        exc, response = err, None
                        break
                    stale = self._abandoned[id(status)][1]
                    self._take_stale(status)
                    if self._in_protocol:
                        exc = StaleStatusError(
                            f"a device operation left running by experiment {stale} failed "
                            f"during this one: {_describe(status)}"
                        )
                        response = None
                        break
                    # the loop's own message was carried out, but its response was lost
                    if msg.command in _RESEND:
                        continue
                    response = None
                    break
                except GeneratorExit as err:
                    if type(err) is not GeneratorExit:  # bluesky's PlanHalt: thrown, not a close
                        exc, response = err, None
                        break
                    plan.close()
                    raise
                except BaseException as err:  # noqa: BLE001 - forwarded into the plan
                    exc, response = err, None
                    break
                else:
                    if self._in_protocol and _is_status(response):
                        self._track(response)
                    break
