"""Name -> object registries filled by built-ins and by entry points.

One mechanism for devices, planners and protocols: built-ins are registered in code;
third-party packages add entries under the entry-point groups ``sdl.devices``,
``sdl.planners`` and ``sdl.protocols``, loaded lazily on the first look-up; a
``"module:attribute"`` name is imported directly. A name registered twice is an error.

This module imports nothing else from sdl but :mod:`sdl.errors`, so every layer may use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from sdl.errors import ConfigError, SdlError

__all__ = ["Registry", "check_options", "import_reference"]

T = TypeVar("T")


def import_reference(ref: str) -> Any:
    """Import ``"package.module:attribute.path"``.

    Raises:
        ImportError: the module cannot be imported.
        AttributeError: the attribute does not exist.
    """
    module_name, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """A registry of named plugins.

    Args:
        kind: what the entries are, in words ("device type", "planner", "protocol").
        group: the entry-point group scanned for third-party entries.
        not_found: the :class:`SdlError` subclass raised on a miss (should also be a
            ``LookupError``).
    """

    def __init__(self, kind: str, group: str, not_found: type[SdlError]):
        self.kind = kind
        self.group = group
        self.not_found = not_found
        self._entries: dict[str, T] = {}
        self._sources: dict[str, str] = {}
        self._loaded_entry_points = False

    def register(self, name: str, obj: T, *, source: str = "sdl (built-in)") -> T:
        """Add ``obj`` under ``name``; a name already taken raises :class:`ConfigError`."""
        if name in self._entries and self._entries[name] is not obj:
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice: by {self._sources[name]} and by "
                f"{source}; uninstall one of them or rename the entry point"
            )
        self._entries[name] = obj
        self._sources[name] = source
        return obj

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            source = f"{dist.name} {dist.version}" if dist is not None else ep.value
            try:
                obj = ep.load()
            except Exception as err:  # a broken plugin must not hide the others
                raise ConfigError(
                    f"{self.kind} {ep.name!r} from entry point group {self.group!r} "
                    f"({ep.value}) failed to load: {type(err).__name__}: {err}"
                ) from err
            self.register(ep.name, obj, source=f"{source} (entry point {ep.value})")

    def available(self) -> dict[str, str]:
        """Registered name -> where it came from."""
        self._load_entry_points()
        return dict(sorted(self._sources.items()))

    def get(self, name: str) -> T:
        """Look ``name`` up; ``"module:attribute"`` is imported.

        Raises:
            the registry's ``not_found`` error, listing what is available and how to
            register a new entry.
        """
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            try:
                return import_reference(name)
            except (ImportError, AttributeError) as err:
                raise self.not_found(
                    f"{self.kind} {name!r} cannot be imported: {type(err).__name__}: {err}"
                ) from err
        self._load_entry_points()
        if name in self._entries:
            return self._entries[name]
        raise self.not_found(
            f"unknown {self.kind} {name!r}; available: {', '.join(self.available()) or 'none'}. "
            f"To add one, register it under the entry-point group {self.group!r} "
            f"or refer to it as 'package.module:attribute'"
        )


def check_options(factory: Callable[..., Any], options: dict[str, Any], *, what: str) -> None:
    """Raise :class:`ConfigError` if ``options`` has a keyword ``factory`` does not accept."""
    import inspect

    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    params = sig.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{what}: unknown option(s) {unknown}; accepted options: {', '.join(accepted)}"
        )
