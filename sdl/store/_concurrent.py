"""Run several zarr writes at once: one wait instead of one per array."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import zarr
from zarr.core.sync import sync

__all__ = ["concurrently", "require_arrays"]


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


def require_arrays(specs: list[tuple[zarr.Group, str, dict[str, Any]]]) -> list[zarr.Array]:
    """Open or create arrays together: ``(group, name, create_array keywords)`` each.

    A store's tables are a few dozen small arrays; creating them one by one cost about
    4 ms each (zarr checks the path, writes the metadata, each call waiting for zarr's
    event loop), which a campaign paid before its first experiment was in Zarr.
    """
    names: dict[int, set[str]] = {}
    for group, _, _ in specs:
        if id(group) not in names:
            names[id(group)] = set(group.array_keys())
    out: list[zarr.Array | None] = [None] * len(specs)
    created: dict[int, Any] = {}

    async def create(i: int, group: zarr.Group, name: str, kwargs: dict[str, Any]) -> None:
        created[i] = await group._async_group.create_array(name, **kwargs)

    coroutines = []
    for i, (group, name, kwargs) in enumerate(specs):
        if name in names[id(group)]:
            arr = group[name]
            config = kwargs.get("config")
            out[i] = arr.with_config(config) if config else arr  # type: ignore[union-attr]
        else:
            coroutines.append(create(i, group, name, kwargs))
    concurrently(coroutines)
    for i, async_array in created.items():
        out[i] = zarr.Array(async_array)
    return out  # type: ignore[return-value]
