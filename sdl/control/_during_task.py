"""The RunEngine's wait in the main thread, woken often enough to hear Ctrl-C.

CPython runs a signal's Python handler only in the main thread, and only when that thread
executes bytecode. While a plan runs, the main thread sits in ``blocking_event.wait()``
inside the RunEngine's ``during_task``. The kernel hands a signal sent to the process to
any thread that does not block it; when that is not the main thread (an sdl campaign has
twenty-odd: the RunEngine's loop, EPICS Channel Access, thread pools), nothing wakes the
main thread, and bluesky's SIGINT handler runs only when the plan has ended: Ctrl-C is
ignored for the whole campaign. A wait with a timeout returns to the interpreter every
``poll`` seconds, which runs the pending handler. bluesky does the same on Windows, where
``Event.wait()`` cannot be interrupted at all (bluesky/bluesky#1770).
"""

from __future__ import annotations

import sys
import threading

from bluesky.utils import DefaultDuringTask

__all__ = ["PollingDuringTask"]


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
