"""Protocols by name, for YAML campaigns.

A protocol *builder* takes the campaign's devices and the protocol's options and returns
the protocol: a callable ``protocol(point, md=...) -> plan``. Third-party builders are
registered under the entry-point group ``sdl.protocols``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bluesky.protocols import Movable, Readable

from sdl._plugins import Registry, check_options
from sdl.errors import ConfigError, ProtocolNotFoundError

from ._mix_color import mix_color
from ._set_settle_measure import set_settle_measure

__all__ = [
    "ProtocolBuilder",
    "available_protocols",
    "available_step_plans",
    "build_protocol",
    "protocols",
    "step_plans",
]

#: ``builder(devices, parameters, param_devices, **options) -> protocol``
ProtocolBuilder = Callable[..., Callable[..., Any]]

protocols: Registry[ProtocolBuilder] = Registry("protocol", "sdl.protocols", ProtocolNotFoundError)


def _device(devices: Mapping[str, Any], name: str, *, field: str) -> Any:
    try:
        return devices[name]
    except KeyError:
        raise ConfigError(
            f"{field}: no device named {name!r}; devices: {', '.join(sorted(devices))}"
        ) from None


def _build_set_settle_measure(
    devices: Mapping[str, Any],
    parameters: Sequence[str],
    param_devices: Mapping[str, str],
    *,
    movables: Mapping[str, str] | None = None,
    detectors: Sequence[str] | None = None,
    settle_time: float = 0.0,
):
    mapping = dict(param_devices)
    mapping.update(movables or {})
    for p in parameters:
        if p not in mapping and p in devices:
            mapping[p] = p
    missing = [p for p in parameters if p not in mapping]
    if missing:
        raise ConfigError(
            f"protocol.options.movables: parameters {missing} have no device to set; give each "
            f"parameter a 'device:' or map it in protocol.options.movables"
        )
    movs = {p: _device(devices, d, field=f"parameters.{p}.device") for p, d in mapping.items()}
    for p, dev in movs.items():
        if not isinstance(dev, Movable):
            raise ConfigError(f"parameters.{p}.device: device {dev.name!r} is not Movable")
    if detectors is None:
        moving = {id(d) for d in movs.values()}
        dets = [
            d
            for d in devices.values()
            if isinstance(d, Readable) and not isinstance(d, Movable) and id(d) not in moving
        ]
    else:
        dets = [_device(devices, n, field="protocol.options.detectors") for n in detectors]
    if not dets:
        raise ConfigError("protocol.options.detectors: no detector to read; list their names")
    return functools.partial(
        set_settle_measure, movables=movs, detectors=dets, settle_time=settle_time
    )


def _build_mix_color(
    devices: Mapping[str, Any],
    parameters: Sequence[str],
    param_devices: Mapping[str, str],
    *,
    station: str | None = None,
    dispensers: Mapping[str, str] | None = None,
    mixer: str | None = None,
    sensor: str | None = None,
    wait_time: float = 0.0,
):
    prefix = f"{station}_" if station else ""
    mapping = {p: f"{prefix}{p}" for p in parameters}
    mapping.update(param_devices)
    mapping.update(dispensers or {})
    disp = {p: _device(devices, d, field=f"parameters.{p}.device") for p, d in mapping.items()}
    mix = _device(devices, mixer or f"{prefix}mixer", field="protocol.options.mixer")
    sen = _device(devices, sensor or f"{prefix}sensor", field="protocol.options.sensor")
    return functools.partial(mix_color, dispensers=disp, mixer=mix, sensor=sen, wait_time=wait_time)


protocols.register("set_settle_measure", _build_set_settle_measure)
protocols.register("mix_color", _build_mix_color)


def available_protocols() -> dict[str, str]:
    """Protocol name -> where it came from."""
    return protocols.available()


def build_protocol(
    name: str,
    devices: Mapping[str, Any],
    parameters: Sequence[str],
    param_devices: Mapping[str, str] | None = None,
    **options: Any,
) -> Callable[..., Any]:
    """Build the protocol registered as ``name`` for these devices and options.

    Raises:
        ProtocolNotFoundError: no such protocol.
        ConfigError: an option is unknown, or a device it names does not exist.
    """
    builder = protocols.get(name)
    check_options(builder, options, what=f"protocol {name!r}")
    return builder(devices, list(parameters), dict(param_devices or {}), **options)


#: Step plans of lab workflows by name: ``plan(point, context, md=None) -> plan`` (see
#: :class:`sdl.lab.Step`). Third-party step plans register under ``sdl.step_plans``.
step_plans: Registry[Callable[..., Any]] = Registry(
    "step plan", "sdl.step_plans", ProtocolNotFoundError
)

for _name in ("synthesize", "transfer", "anneal", "characterize"):
    step_plans.register_reference(f"film.{_name}", f"sdl.protocols.film:{_name}")
del _name


def available_step_plans() -> dict[str, str]:
    """Step plan name -> where it came from."""
    return step_plans.available()
