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
from importlib.metadata import EntryPoint, entry_points
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

    Entries registered in code (built-ins) are objects or lazy ``"module:attribute"``
    references (imported on first use, so listing never imports torch). Entry points of
    ``group`` are scanned at each listing and each miss, and loaded only when asked for; a
    name registered twice (two packages, or a package and a built-in) is an error.

    Args:
        kind: what the entries are, in words ("device type", "planner", "protocol").
        group: the entry-point group scanned for third-party entries.
        not_found: the :class:`SdlError` subclass raised on a miss (should also be a
            ``LookupError``).
        how_to_register: the advice given on a miss (default: the entry-point group or a
            ``'module:attribute'`` reference).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        not_found: type[SdlError],
        *,
        how_to_register: str | None = None,
    ):
        self.kind = kind
        self.group = group
        self.not_found = not_found
        self.how_to_register = how_to_register or (
            f"register it under the entry-point group {group!r} or refer to it as "
            f"'package.module:attribute'"
        )
        self._entries: dict[str, T] = {}
        self._references: dict[str, str] = {}  # name -> "module:attribute" not yet imported
        self._sources: dict[str, str] = {}

    def register(self, name: str, obj: T, *, source: str = "sdl (built-in)") -> T:
        """Add ``obj`` under ``name``; a name already taken raises :class:`ConfigError`."""
        taken = name in self._references or (
            name in self._entries and self._entries[name] is not obj
        )
        if taken:
            raise ConfigError(
                f"{self.kind} {name!r} is registered twice: by {self._sources[name]} and by "
                f"{source}; uninstall one of them or rename the entry point"
            )
        self._entries[name] = obj
        self._sources[name] = source
        return obj

    def register_reference(self, name: str, reference: str, *, source: str | None = None) -> None:
        """Add ``"module:attribute"`` under ``name``, imported when first asked for."""
        if name in self._entries or name in self._references:
            raise ConfigError(f"{self.kind} {name!r} is registered twice: by {self._sources[name]}")
        self._references[name] = reference
        self._sources[name] = source or f"built-in ({reference})"

    def _scan(self) -> dict[str, tuple[EntryPoint, str]]:
        """The group's entry points by name, with their source; raise on a name taken twice."""
        found: dict[str, tuple[EntryPoint, str]] = {}
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            where = f"{dist.name} {dist.version}" if dist is not None else "an unknown package"
            source = f"{where} (entry point {ep.value})"
            if ep.name in self._sources:
                if self._references.get(ep.name) == ep.value:
                    continue  # the package that provides the built-in, installed as a plugin too
                raise ConfigError(
                    f"{self.kind} {ep.name!r} is registered twice: by {self._sources[ep.name]} "
                    f"and by {source}; rename the entry point"
                )
            other = found.get(ep.name)
            if other is not None and other[0].value != ep.value:
                raise ConfigError(
                    f"{self.kind} {ep.name!r} is registered twice in the entry-point group "
                    f"{self.group!r}: by {other[1]} and by {source}; uninstall or rename one"
                )
            found[ep.name] = (ep, source)
        return found

    def available(self) -> dict[str, str]:
        """Registered name -> where it came from (built-in, or package and entry point)."""
        names = dict(self._sources)
        names.update({name: source for name, (_, source) in self._scan().items()})
        return dict(sorted(names.items()))

    def get(self, name: str) -> T:
        """Look ``name`` up; ``"module:attribute"`` is imported.

        Raises:
            the registry's ``not_found`` error, listing what is available and how to
            register a new entry; :class:`ConfigError` if a plugin fails to load.
        """
        if name in self._entries:
            return self._entries[name]
        if name in self._references:
            obj = import_reference(self._references.pop(name))
            self._entries[name] = obj
            return obj
        if ":" in name:
            try:
                return import_reference(name)
            except (ImportError, AttributeError) as err:
                raise self.not_found(
                    f"{self.kind} {name!r} could not be imported ({type(err).__name__}: {err}); "
                    f"check the 'module:attribute' reference"
                ) from err
        found = self._scan().get(name)
        if found is not None:
            ep, source = found
            try:
                return ep.load()
            except Exception as err:  # a broken plugin says so, naming itself
                raise ConfigError(
                    f"{self.kind} {name!r} from {source} failed to load: {type(err).__name__}: {err}"
                ) from err
        available = ", ".join(repr(n) for n in self.available()) or "none"
        raise self.not_found(
            f"unknown {self.kind} {name!r}; available: {available}. To add one, "
            f"{self.how_to_register}"
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
