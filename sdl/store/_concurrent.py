"""Run several zarr writes at once: one wait instead of one per array."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from zarr.core.sync import sync

__all__ = ["concurrently"]


def concurrently(coroutines: list[Coroutine[Any, Any, Any]]) -> None:
    """Run zarr ``AsyncArray`` operations together on zarr's event loop and wait for all.

    Zarr's synchronous API runs each call on its own event-loop thread and waits for it;
    gathering the calls of one logical write (one table row, one block of a stream)
    overlaps their file I/O.
    """
    if not coroutines:
        return

    async def gather() -> None:
        await asyncio.gather(*coroutines)

    sync(gather())
