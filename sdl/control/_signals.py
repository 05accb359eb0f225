"""Signals reaching a campaign process: Ctrl-C in a terminal, SIGINT with nobody at one.

**Heard from any thread.** CPython runs a signal's Python handler only in the main thread,
and only when that thread executes bytecode. While a plan runs, the main thread sits in
``blocking_event.wait()`` inside the RunEngine's ``during_task``. The kernel hands a signal
sent to the process to any thread that does not block it; when that is not the main thread
(an sdl campaign has twenty-odd: the RunEngine's loop, EPICS Channel Access, thread pools),
nothing wakes the main thread, and the handler runs only when the plan has ended: Ctrl-C was
ignored for the whole campaign. :class:`PollingDuringTask` waits with a timeout, so the
main thread returns to the interpreter every ``poll`` seconds and runs the pending handler.
bluesky does the same on Windows, where ``Event.wait()`` cannot be interrupted at all
(bluesky/bluesky#1770).

**In a terminal** (:func:`make_run_engine` with ``interactive``), bluesky's own SIGINT
handling: the first Ctrl-C pauses at the next checkpoint, the next within 10 s at once; the
operator then chooses resume, stop or abort.

**With nobody at a terminal** (``sdl run`` under nohup, a service, a job scheduler;
:class:`SignalStops`), nobody could answer a pause: SIGINT stops the campaign cleanly after
the current experiment, a second one aborts it (the running experiment is recorded
``interrupted``), a third raises ``KeyboardInterrupt``. Before, Python's
``KeyboardInterrupt`` panicked the RunEngine, and with the control channel on the process
then waited for an operator's decision that a panicked RunEngine could not carry out.

**SIGTERM**, in a terminal or not, aborts the campaign at once (:class:`SignalStops`): the
devices the plan moved are stopped, the running experiment is recorded ``interrupted``, the
store closed. Before, the process died at once, as in a crash: nothing measured was lost,
but a motor went on moving and the store said an experiment was still running.

**SIGHUP** (the terminal closed under ``sdl run``: an SSH connection lost, a terminal window
shut) ends the campaign as SIGTERM does, cleanly. It ended it before too, as a crash. Under
``nohup`` (SIGHUP ignored when the campaign starts) it goes on as before.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from bluesky import RunEngine
from bluesky.utils import DefaultDuringTask, SigintHandler

__all__ = ["PollingDuringTask", "SignalStops", "make_run_engine"]

logger = logging.getLogger(__name__)

_SIGHUP = getattr(signal, "SIGHUP", None)  # (not on Windows)


class PollingDuringTask(DefaultDuringTask):
    """bluesky's :class:`~bluesky.utils.DefaultDuringTask`, waiting in slices of ``poll`` s.

    With a Qt backend of matplotlib loaded it drives Qt exactly as the default does.
    Give it to a RunEngine you make yourself to get the same Ctrl-C behaviour as ``sdl run``::

        RE = RunEngine({}, during_task=PollingDuringTask())
    """

    def __init__(self, poll: float = 0.1):
        super().__init__()
        self.poll = poll

    def block(self, blocking_event: threading.Event) -> None:
        # docstring inherited
        if "matplotlib" in sys.modules:
            import matplotlib

            if "qt" in matplotlib.get_backend().lower():
                super().block(blocking_event)
                return
        while not blocking_event.wait(self.poll):
            pass


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def make_run_engine(interactive: bool) -> RunEngine:
    """The RunEngine sdl makes when it is given none.

    ``interactive`` (and in the main thread, where signal handlers can be set): bluesky's
    SIGINT handling, Ctrl-C pauses. Otherwise none: SIGINT is left to :class:`SignalStops`. Either way the main thread's wait is a :class:`PollingDuringTask`.
    """
    managers: dict[str, Any] = {} if interactive and _in_main_thread() else {"context_managers": []}
    return RunEngine({}, during_task=PollingDuringTask(), **managers)


def handles_sigint(RE: Any) -> bool:
    """Whether ``RE`` takes SIGINT itself while it runs (bluesky's default)."""
    return SigintHandler in getattr(RE, "context_managers", ())


def _terminals() -> list[int]:
    """The standard streams' file descriptors that are a terminal."""
    found = []
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                found.append(fd)
        except OSError:
            pass
    return found


def _leave_the_terminal(fds: list[int]) -> None:
    """Point ``fds`` (the standard streams that were a terminal) at ``/dev/null``.

    After a hangup every write to the terminal fails (``EIO``): bluesky's "Pausing...", the
    progress bar, the final summary; and ``isatty`` is already false. The campaign's end is
    then recorded in the store and its control channel only.
    """
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            try:
                os.dup2(null, fd)
            except OSError:
                pass
    finally:
        os.close(null)


class SignalStops:
    """While active, signals end the campaign cleanly instead of killing or panicking it.

    - SIGINT (unless ``RE`` takes it itself: ``sigint=False``): the first stops the campaign
      after the current experiment, the second aborts it, a third raises
      ``KeyboardInterrupt``.
    - SIGTERM (``systemctl stop``, ``docker stop``, a scheduler's end of job): aborts at
      once: the devices the plan moved are stopped, the running experiment is recorded
      ``interrupted``, the store is closed. A second SIGTERM kills the process as before.
    - SIGHUP (the terminal closed): as SIGTERM; first the standard streams that are a
      terminal are pointed at ``/dev/null``, since writing to a closed one fails.
    - SIGHUP ignored when the campaign starts (``nohup``) stays ignored. SIGINT and SIGTERM
      are taken even then: a background job of a shell script starts with SIGINT ignored,
      and ``kill -INT`` of it should still stop it.

    The handlers only count; a thread sets ``stop_requested`` or ``abort_requested``, calls
    ``on_signal(action, signal name)`` (to log the operator action) and asks the RunEngine
    for a deferred (stop) or an immediate (abort) pause. Whoever called ``RE(...)`` sees the
    pause and calls ``RE.stop()`` or ``RE.abort()`` (:func:`sdl.control.run_controlled` does).
    Outside the main thread it does nothing: Python sets handlers only there.

    Args:
        RE: the RunEngine running the campaign.
        stop_requested: set by the first SIGINT.
        abort_requested: set by the second SIGINT, by SIGTERM or SIGHUP.
        on_signal: called with ``("stop" | "abort", "SIGINT" | "SIGTERM" | "SIGHUP")``.
        sigint: take SIGINT too (False when ``RE`` has bluesky's own SIGINT handling).
    """

    def __init__(
        self,
        RE: Any,
        stop_requested: threading.Event,
        abort_requested: threading.Event,
        on_signal: Callable[[str, str], None] | None = None,
        *,
        sigint: bool = True,
    ):
        self.RE = RE
        self.stop_requested = stop_requested
        self.abort_requested = abort_requested
        self.on_signal = on_signal
        hup = [] if _SIGHUP is None else [_SIGHUP]
        self.signals = [signal.SIGTERM, *hup, *([signal.SIGINT] if sigint else [])]
        self.counts = dict.fromkeys(self.signals, 0)
        self._original: dict[int, Any] = {}
        self._terminals: list[int] = []

    def __enter__(self) -> SignalStops:
        if threading.current_thread() is threading.main_thread():
            self._terminals = _terminals()  # (after a hangup isatty says no)
            for sig in self.signals:
                original = signal.getsignal(sig)
                if sig == _SIGHUP and original == signal.SIG_IGN:  # under nohup: as asked
                    continue
                self._original[sig] = original
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, original in self._original.items():
            signal.signal(sig, original)
        self._original.clear()

    def _handler(self, signum: int, frame: Any) -> None:
        self.counts[signum] += 1
        n = self.counts[signum]
        if signum == signal.SIGINT:
            if n > 2:
                signal.signal(signum, self._original.pop(signum))
                raise KeyboardInterrupt
            action = "stop" if n == 1 else "abort"
        else:
            if n > 1:  # the abort hangs: die as the signal's default does
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return
            action = "abort"
        if signum == _SIGHUP:
            _leave_the_terminal(self._terminals)
        name = signal.Signals(signum).name
        threading.Thread(
            target=self._act, args=(action, name), name="sdl-signal", daemon=True
        ).start()

    def _act(self, action: str, name: str) -> None:
        if action == "stop":
            self.stop_requested.set()
            what = "the campaign stops after the current experiment (SIGINT again to abort it)"
        else:
            self.abort_requested.set()
            what = "aborting the campaign"
        try:
            print(f"sdl: {name}: {what}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # the terminal is gone (SIGHUP), stderr closed
            pass
        if self.on_signal is not None:
            try:
                self.on_signal(action, name)
            except Exception:
                logger.exception("could not record the %s %s", name, action)
        if str(getattr(self.RE, "state", "")) == "running":
            try:
                self.RE.request_pause(defer=action == "stop")
            except Exception:  # the plan ended meanwhile: nothing to stop
                logger.debug("%s %s: RE.request_pause failed", name, action, exc_info=True)
