"""Safe states and connecting devices together.

A device offers a safe state by a ``safe_state()`` method returning a bluesky plan (stop
motors, heater to idle, close a shutter); sdl's EPICS devices also offer ``go_safe()``,
the same without a RunEngine, returning a status. These helpers apply them to many
devices at once and never let one device's failure keep the others from their safe state.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from typing import Any

from sdl.errors import DeviceFaultError

from ._epics_base import connect_all

__all__ = ["safe_state_plan", "make_safe", "connect_together", "connect_or_defer"]

_DEFERRED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "sdl_deferred_connections", default=None
)


def _unique(devices: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for d in devices:
        seen.setdefault(id(d), d)
    return list(seen.values())


def safe_state_plan(devices: Iterable[Any]):
    """A bluesky plan running every device's ``safe_state()`` plan, in order.

    Devices without ``safe_state`` are skipped. A failure of one device's plan is
    caught so the others still run; at the end one :class:`DeviceFaultError` names
    every device that failed.

    Args:
        devices: ophyd devices (duplicates are run once).

    Returns:
        The names of the devices put in their safe state.
    """
    done, failed = [], []
    for dev in _unique(devices):
        hook = getattr(dev, "safe_state", None)
        if hook is None:
            continue
        try:
            plan = hook()
            if plan is not None and hasattr(plan, "send"):
                yield from plan
            done.append(dev.name)
        except Exception as err:  # noqa: BLE001 - gather, then report all
            failed.append(f"{getattr(dev, 'name', dev)!r}: {type(err).__name__}: {err}")
    if failed:
        raise DeviceFaultError("safe state failed for " + "; ".join(failed))
    return done


def make_safe(devices: Iterable[Any], timeout: float = 10.0) -> list[str]:
    """Put devices in their safe state without a RunEngine (e.g. after an abort).

    Calls ``go_safe()`` of every device that has it (starting all first, then waiting),
    else ``stop()`` of those with a ``safe_state``.

    Args:
        devices: ophyd devices.
        timeout: seconds to wait for all of them together.

    Returns:
        The names of the devices handled.

    Raises:
        DeviceFaultError: naming every device whose safe state failed or timed out
            (after trying all of them).
    """
    statuses, failed, names = [], [], []
    for dev in _unique(devices):
        try:
            if hasattr(dev, "go_safe"):
                statuses.append((dev, dev.go_safe()))
            elif hasattr(dev, "safe_state") and hasattr(dev, "stop"):
                dev.stop()
            else:
                continue
            names.append(dev.name)
        except Exception as err:  # noqa: BLE001
            failed.append(f"{getattr(dev, 'name', dev)!r}: {type(err).__name__}: {err}")
    for dev, st in statuses:
        try:
            st.wait(timeout)
        except Exception as err:  # noqa: BLE001
            failed.append(f"{dev.name!r}: {type(err).__name__}: {err}")
    if failed:
        raise DeviceFaultError("safe state failed for " + "; ".join(failed))
    return names


@contextlib.contextmanager
def connect_together(timeout: float | None = None) -> Iterator[list[Any]]:
    """Build devices inside this block, connect them all at the end in one wait.

    Registry factories of EPICS devices normally connect each device as it is built
    (failing on the first device with missing PVs); inside this block they only
    collect the devices, and on leaving it :func:`connect_all` waits for all of them
    together and reports every missing PV of every device in one
    :class:`~sdl.errors.NotConnectedError`.

    Args:
        timeout: seconds for the shared wait; ``None``: the largest device
            ``connection_timeout``.

    Yields:
        The list the devices are collected in.
    """
    pending: list[Any] = []
    token = _DEFERRED.set(pending)
    try:
        yield pending
    finally:
        _DEFERRED.reset(token)
    connect_all(pending, timeout)


def connect_or_defer(device: Any) -> Any:
    """Connect ``device`` now, or collect it inside :func:`connect_together`."""
    pending = _DEFERRED.get()
    if pending is None:
        device.connect()
    else:
        pending.append(device)
    return device
