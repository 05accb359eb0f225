"""Registry of device factories, keyed by type name.

Built-in types are registered here; plugins add theirs through the entry-point
group ``sdl.devices`` (loaded lazily, only when their name is asked for) or by
calling :func:`register_device`. A type name of the form ``"module:attribute"``
imports that factory directly.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ophyd import Device

from sdl.errors import ConfigError, DeviceNotFoundError

from ._alignment import AlignmentStage
from ._color import ColorMixingStation
from ._detector import SimDetector
from ._motor import SimMotor

__all__ = ["register_device", "make_device", "available_devices", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "sdl.devices"

_HOW_TO_REGISTER = (
    "register one with sdl.devices.register_device(name, factory), under the "
    f"entry-point group '{ENTRY_POINT_GROUP}' in your package's pyproject.toml "
    '([project.entry-points."sdl.devices"] my_device = "my_pkg.devices:MyDevice"), '
    "or give the type as 'module:attribute'"
)


def _import_attribute(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise DeviceNotFoundError(f"{spec!r} is not of the form 'module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise DeviceNotFoundError(
            f"cannot import module {module_name!r} for {spec!r}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise DeviceNotFoundError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _make_sim_detector(name: str, *, physics: Any, **options: Any) -> SimDetector:
    """Build a :class:`SimDetector`; ``physics`` may be a ``"module:attribute"`` string."""
    if isinstance(physics, str):
        physics = _import_attribute(physics)
    return SimDetector(name, physics=physics, **options)


_make_sim_detector.__signature__ = inspect.signature(SimDetector)  # type: ignore[attr-defined]
_make_sim_detector.device_class = SimDetector  # type: ignore[attr-defined]

#: Keyword arguments every ophyd Device accepts through ``**kwargs``.
_OPHYD_OPTIONS = ("labels", "kind", "read_attrs", "configuration_attrs")
_NAMED = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class _Registry:
    def __init__(self) -> None:
        self._factories: dict[str, Callable[..., Any]] = {}
        self._sources: dict[str, str] = {}
        self._entry_points: dict[str, EntryPoint] | None = None

    def register(self, name: str, factory: Callable[..., Any], source: str) -> None:
        if not callable(factory):
            raise TypeError(f"device factory for {name!r} must be callable, got {factory!r}")
        if name in self._sources or name in self._discover():
            existing = self._sources.get(name) or f"entry point {self._discover()[name].value}"
            raise ConfigError(f"device type {name!r} is already registered (by {existing})")
        self._factories[name] = factory
        self._sources[name] = source

    def _discover(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                if ep.name in found and found[ep.name].value != ep.value:
                    raise ConfigError(
                        f"device type {ep.name!r} is registered twice under entry-point "
                        f"group {ENTRY_POINT_GROUP!r}: {found[ep.name].value} and {ep.value}"
                    )
                if ep.name in self._sources:
                    raise ConfigError(
                        f"entry point {ep.value} registers device type {ep.name!r}, "
                        f"which is already {self._sources[ep.name]}"
                    )
                found[ep.name] = ep
            self._entry_points = found
        return self._entry_points

    def available(self) -> dict[str, str]:
        out = dict(self._sources)
        for name, ep in self._discover().items():
            out.setdefault(name, f"entry point {ep.value}")
        return out

    def get(self, name: str) -> Callable[..., Any]:
        if name in self._factories:
            return self._factories[name]
        ep = self._discover().get(name)
        if ep is not None:
            factory = ep.load()
            self._factories[name] = factory
            self._sources[name] = f"entry point {ep.value}"
            return factory
        if ":" in name:
            return _import_attribute(name)
        raise DeviceNotFoundError(
            f"no device type {name!r}; available: {sorted(self.available())}. "
            f"To add one, {_HOW_TO_REGISTER}"
        )


_REGISTRY = _Registry()
_REGISTRY.register("sim_motor", SimMotor, "builtin sdl.devices.SimMotor")
_REGISTRY.register("sim_detector", _make_sim_detector, "builtin sdl.devices.SimDetector")
_REGISTRY.register(
    "color_mixing_station", ColorMixingStation, "builtin sdl.devices.ColorMixingStation"
)
_REGISTRY.register("alignment_stage", AlignmentStage, "builtin sdl.devices.AlignmentStage")


def register_device(name: str, factory: Callable[..., Any], *, source: str | None = None) -> None:
    """Register a device factory under a type name.

    Args:
        name: Type name used in configurations (``type: my_device``).
        factory: Callable ``factory(name, **options)`` returning an ophyd device or
            a container with a ``devices`` mapping.
        source: Where it comes from, shown by :func:`available_devices`.

    Raises:
        ConfigError: If ``name`` is already registered (here or by entry point).
    """
    label = getattr(factory, "__qualname__", repr(factory))
    _REGISTRY.register(name, factory, source or f"registered {label}")


def available_devices() -> dict[str, str]:
    """All known device type names.

    Returns:
        ``{type name: source}``; entry points are listed without being imported.
    """
    return _REGISTRY.available()


def make_device(type_name: str, name: str, **options: Any) -> Any:
    """Build a device from its registered type name.

    Args:
        type_name: A registered name (see :func:`available_devices`) or
            ``"module:attribute"``.
        name: The device (or container) name.
        **options: Keyword arguments of the factory.

    Returns:
        An ophyd device, or a container (e.g. :class:`ColorMixingStation`) whose
        ``devices`` maps device names to ophyd devices.

    Raises:
        DeviceNotFoundError: If ``type_name`` is unknown; the message lists the
            available types and how to register one.
        ConfigError: If an option is not accepted by the factory; the message
            names it and lists the accepted options.
    """
    factory = _REGISTRY.get(type_name)
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let them check
        sig = None
    if sig is not None:
        params = sig.parameters
        device_class = getattr(factory, "device_class", factory)
        is_ophyd = isinstance(device_class, type) and issubclass(device_class, Device)
        takes_any = not is_ophyd and any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        )
        accepted = [
            p
            for p in params
            if params[p].kind in _NAMED
            and p != "name"
        ]
        if is_ophyd:
            accepted += [o for o in _OPHYD_OPTIONS if o not in accepted]
        unknown = [k for k in options if k not in accepted]
        if unknown and not takes_any:
            raise ConfigError(
                f"device type {type_name!r} does not accept option(s) {unknown}; "
                f"accepted options: {accepted}"
            )
        missing = [
            p
            for p in accepted
            if p in params and params[p].default is inspect.Parameter.empty and p not in options
        ]
        if missing:
            raise ConfigError(f"device type {type_name!r} ({name!r}) needs option(s) {missing}")
    try:
        return factory(name, **options)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"device {name!r} of type {type_name!r}: {exc}") from exc
