"""Registry of device factories, keyed by type name.

One mechanism for every plugin kind: this is a :class:`sdl._plugins.Registry` (as the
planner and protocol registries are). Built-in types are registered here; plugins add
theirs through the entry-point group ``sdl.devices`` (loaded on the first look-up of a
name that is not built in, or when listing) or by calling :func:`register_device`. A
type name of the form ``"module:attribute"`` imports that factory directly, but only
within :func:`sdl._plugins.allow_import` (``sdl run --allow-import``): it is code.

A factory is called as ``factory(name, **options)`` and returns an ophyd device, or a
container whose ``devices`` attribute maps device names to ophyd devices. EPICS
factories also connect what they build (all together inside
:func:`~sdl.devices.connect_together`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from ophyd import Device

from sdl._plugins import ImportNotAllowedError, Registry, check_options, checked_import
from sdl.errors import ConfigError, DeviceNotFoundError

from ._alignment import AlignmentStage
from ._color import ColorMixingStation
from ._detector import SimDetector
from ._epics_controller import EpicsSetpointController
from ._epics_detector import EpicsDetector
from ._epics_positioner import EpicsPositioner
from ._epics_reactor import EpicsReactor
from ._epics_safety import connect_or_defer
from ._motor import SimMotor

__all__ = ["register_device", "make_device", "available_devices", "devices", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "sdl.devices"

#: the device-type registry (name -> factory)
devices: Registry[Callable[..., Any]] = Registry(
    "device type", ENTRY_POINT_GROUP, DeviceNotFoundError
)

_HOW_TO_REGISTER = (
    "call sdl.devices.register_device(name, factory), register it under the "
    f"entry-point group '{ENTRY_POINT_GROUP}' in your package's pyproject.toml "
    '([project.entry-points."sdl.devices"] my_device = "my_pkg.devices:MyDevice"), '
    "or, in a file you trust as code, give the type as 'module:attribute' with "
    "--allow-import"
)

#: Keyword arguments every ophyd Device accepts through ``**kwargs``.
_OPHYD_OPTIONS = ("labels", "kind", "read_attrs", "configuration_attrs")


def _make_sim_detector(name: str, *, physics: Any, **options: Any) -> SimDetector:
    """Build a :class:`SimDetector`; ``physics`` may be a ``"module:attribute"`` string
    (imported only within :func:`sdl._plugins.allow_import`)."""
    if isinstance(physics, str):
        try:
            physics = checked_import(physics, field=f"device {name!r} option physics")
        except ImportNotAllowedError:
            raise
        except (ImportError, AttributeError, ValueError) as err:
            raise ConfigError(f"physics {physics!r} cannot be imported: {err}") from err
    return SimDetector(name, physics=physics, **options)


_make_sim_detector.__signature__ = inspect.signature(SimDetector)  # type: ignore[attr-defined]
_make_sim_detector.device_class = SimDetector  # type: ignore[attr-defined]


def _connecting(cls: type) -> Callable[..., Any]:
    """A factory building ``cls`` and connecting it (or deferring, see connect_together)."""

    @functools.wraps(cls, assigned=("__doc__",), updated=())
    def factory(name: str, **options: Any) -> Any:
        return connect_or_defer(cls(name, **options))

    factory.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]
    factory.device_class = cls  # type: ignore[attr-defined]
    factory.__qualname__ = factory.__name__ = f"connected {cls.__name__}"
    return factory


for _name, _factory, _label in (
    ("sim_motor", SimMotor, "SimMotor"),
    ("sim_detector", _make_sim_detector, "SimDetector"),
    ("color_mixing_station", ColorMixingStation, "ColorMixingStation"),
    ("alignment_stage", AlignmentStage, "AlignmentStage"),
    ("epics_positioner", _connecting(EpicsPositioner), "EpicsPositioner"),
    ("epics_controller", _connecting(EpicsSetpointController), "EpicsSetpointController"),
    ("epics_detector", _connecting(EpicsDetector), "EpicsDetector"),
    ("epics_reactor", _connecting(EpicsReactor), "EpicsReactor"),
):
    devices.register(_name, _factory, source=f"sdl (built-in) sdl.devices.{_label}")


def register_device(name: str, factory: Callable[..., Any], *, source: str | None = None) -> None:
    """Register a device factory under a type name.

    Args:
        name: Type name used in configurations (``type: my_device``).
        factory: Callable ``factory(name, **options)`` returning an ophyd device or
            a container with a ``devices`` mapping.
        source: Where it comes from, shown by :func:`available_devices`.

    Raises:
        ConfigError: If ``name`` is already registered (here or by entry point).
        TypeError: If ``factory`` is not callable.
    """
    if not callable(factory):
        raise TypeError(f"device factory for {name!r} must be callable, got {factory!r}")
    known = devices.available()
    if name in known:
        raise ConfigError(f"device type {name!r} is already registered (by {known[name]})")
    label = getattr(factory, "__qualname__", repr(factory))
    devices.register(name, factory, source=source or f"registered {label}")


def available_devices() -> dict[str, str]:
    """All known device type names.

    Returns:
        ``{type name: source}``; an entry point's source names its distribution and
        version, e.g. ``"labpumps 0.1 (entry point labpumps.pump:SyringePump)"``.
    """
    return devices.available()


def _options_stub(factory: Callable[..., Any]) -> tuple[Callable[..., Any], list[str], list[str]]:
    """A stand-in with the options ``factory`` accepts: ``(stub, accepted, required)``.

    An ophyd Device class takes ``**kwargs`` for ophyd's own options only, so for those
    the ``**kwargs`` is replaced by ophyd's option names; any other ``**kwargs`` accepts
    everything.
    """
    sig = inspect.signature(factory)
    device_class = getattr(factory, "device_class", factory)
    is_ophyd = isinstance(device_class, type) and issubclass(device_class, Device)
    params = [p for p in sig.parameters.values() if p.name != "name"]
    if is_ophyd:
        params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        have = {p.name for p in params}
        params += [
            inspect.Parameter(o, inspect.Parameter.KEYWORD_ONLY, default=None)
            for o in _OPHYD_OPTIONS
            if o not in have
        ]
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    accepted = [p.name for p in params if p.kind in named]
    required = [p.name for p in params if p.kind in named and p.default is inspect.Parameter.empty]

    def stub(**_: Any) -> None: ...

    stub.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return stub, accepted, required


def make_device(type_name: str, name: str, **options: Any) -> Any:
    """Build a device from its registered type name.

    Args:
        type_name: A registered name (see :func:`available_devices`) or
            ``"module:attribute"``.
        name: The device (or container) name.
        **options: Keyword arguments of the factory.

    Returns:
        An ophyd device, or a container (e.g. :class:`ColorMixingStation`,
        :class:`EpicsReactor`) whose ``devices`` maps device names to ophyd devices.

    Raises:
        DeviceNotFoundError: If ``type_name`` is unknown; the message lists the
            available types and how to register one.
        ConfigError: If an option is not accepted by the factory; the message
            names it and lists the accepted options.
        NotConnectedError: An EPICS device whose PVs did not connect.
    """
    try:
        factory = devices.get(type_name)
    except DeviceNotFoundError as err:
        if ":" in type_name:
            raise
        raise DeviceNotFoundError(
            f"no device type {type_name!r}; available: {sorted(devices.available())}. "
            f"To add one, {_HOW_TO_REGISTER}"
        ) from err
    try:
        stub, accepted, required = _options_stub(factory)
    except (TypeError, ValueError):  # no signature: let the factory check its options
        stub = None
    if stub is not None:
        try:
            check_options(stub, options, what=f"device type {type_name!r} ({name!r})")
        except ConfigError:
            unknown = [k for k in options if k not in accepted]
            raise ConfigError(
                f"device type {type_name!r} does not accept option(s) {unknown}; "
                f"accepted options: {accepted}"
            ) from None
        missing = [p for p in required if p not in options]
        if missing:
            raise ConfigError(f"device type {type_name!r} ({name!r}) needs option(s) {missing}")
    try:
        return factory(name, **options)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"device {name!r} of type {type_name!r}: {exc}") from exc
