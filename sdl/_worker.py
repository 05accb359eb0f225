"""The planner's worker thread: slow Python work done without stalling the RunEngine.

A planner's ask (seconds for BoTorch) or an operator's approval (minutes) must not block
the RunEngine's event loop, or pause requests, Ctrl-C and the control channel would wait
for it. The loop hands such work to this single worker thread and waits for it with a
``wait_for`` message, as bluesky waits for any awaitable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from bluesky.utils import Msg

__all__ = ["Worker"]

T = TypeVar("T")


class Worker:
    """One background thread for the campaign plan (the only thread besides the RunEngine's)."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sdl-planner")

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Start ``fn(*args, **kwargs)`` in the worker; returns at once."""
        return self._pool.submit(fn, *args, **kwargs)

    def wait(self, future: Future[T]) -> Generator[Msg, Any, T]:
        """Plan: wait for ``future`` without blocking the RunEngine; return its result.

        A future already done (an ask made ahead, during the last experiment) costs no
        message: its result is returned at once."""
        if future.done():
            return future.result()
        (task,) = yield Msg("wait_for", None, [lambda: asyncio.wrap_future(future)])
        return task.result()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Generator[Msg, Any, T]:
        """Plan: run ``fn`` in the worker and return its result."""
        return (yield from self.wait(self.submit(fn, *args, **kwargs)))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
