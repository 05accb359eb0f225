"""What can be checked of a campaign's protocol before anything runs or is stored."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection
from typing import Any

from sdl.errors import ConfigError

from ._set_settle_measure import check_movables, set_settle_measure

__all__ = ["check_protocol", "devices_read"]


def check_protocol(protocol: Callable[..., Any], parameters: Collection[str]) -> None:
    """Check a campaign's protocol before the campaign starts.

    * It must accept the call the loop makes for every experiment, ``protocol(point,
      md=...)``. A protocol that does not (``lambda point: ...``) would fail every
      experiment the same way, each recorded as failed and measured again.
    * A ``functools.partial`` of :func:`set_settle_measure` must map every parameter to a
      device (:func:`check_movables`).

    Other faults of a protocol show when it runs. A callable whose signature Python cannot
    read (some built-in or extension callables) is not checked for the first.

    Raises:
        ConfigError: naming the protocol, what is wrong and the fix.
    """
    try:
        signature = inspect.signature(protocol)
    except (TypeError, ValueError):  # no signature to read: the first experiment will tell
        signature = None
    if signature is not None:
        try:
            signature.bind({}, md={})
        except TypeError as err:
            name = getattr(protocol, "__qualname__", None) or repr(protocol)
            raise ConfigError(
                f"protocol {name}{signature}: the campaign calls it as protocol(point, md=...) "
                f"for every experiment, and it does not accept that ({err}); give it an md "
                f"parameter and put md in its run's start document (def protocol(point, "
                f"md=None): ... bps.open_run(md=md) or bpp.run_decorator(md=md)): resume and "
                f"'sdl check' find each experiment's run by it"
            ) from None
    kw = _settle_measure_keywords(protocol)
    if kw is not None:
        check_movables(parameters, kw.get("movables", {}), kw.get("record_only", ()))


def devices_read(protocol: Callable[..., Any]) -> list[Any] | None:
    """The devices whose readings are all a protocol reads: a ``functools.partial`` of
    :func:`set_settle_measure`'s detectors and movables; None for any other protocol,
    whose readings cannot be known before it runs."""
    kw = _settle_measure_keywords(protocol)
    if kw is None:
        return None
    return [*kw.get("detectors", ()), *dict(kw.get("movables", {})).values()]


def _settle_measure_keywords(protocol: Callable[..., Any]) -> dict[str, Any] | None:
    if isinstance(protocol, functools.partial) and protocol.func is set_settle_measure:
        return dict(protocol.keywords)
    return None
