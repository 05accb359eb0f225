"""Name -> object registries filled by built-ins and by entry points.

One mechanism for devices, planners and protocols: built-ins are registered in code;
third-party packages add entries under the entry-point groups ``sdl.devices``,
``sdl.planners`` and ``sdl.protocols``, loaded lazily on the first look-up. A name
registered twice is an error.

A ``"module:attribute"`` name imports that module and calls what it names: it is code,
not data, and a campaign file or a store's saved configuration is data (docs/plugins.md,
"What is data, what is code"). So such a name is refused unless the caller opted in with
:func:`allow_import` (``sdl run --allow-import``, ``load_campaign(..., allow_import=True)``).

This module imports nothing else from sdl but :mod:`sdl.errors`, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from sdl.errors import ConfigError, SdlError

__all__ = [
    "ImportNotAllowedError",
    "Registry",
    "allow_import",
    "check_options",
    "checked_import",
    "check_config_imports",
    "import_allowed",
    "import_reference",
]

T = TypeVar("T")

#: whether ``"module:attribute"`` references may be imported in this context
_IMPORT_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sdl_import_allowed", default=False
)

_FIXES = (
    "register it as an entry point of an installed package (docs/plugins.md, "
    '"Register it") and use its name, or, if you trust this file, pass --allow-import '
    "(sdl run/resume) or allow_import=True (load_campaign/build_campaign): a "
    "'module:attribute' path runs that module's code"
)


class ImportNotAllowedError(ConfigError):
    """A ``"module:attribute"`` reference was given where only registered names are allowed.

    Attributes:
        references: ``(field, reference)`` pairs that were refused.
    """

    def __init__(self, message: str, references: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.references = list(references or [])


def import_allowed() -> bool:
    """Whether ``"module:attribute"`` references may be imported here (see :func:`allow_import`)."""
    return _IMPORT_ALLOWED.get()


@contextlib.contextmanager
def allow_import(allowed: bool = True) -> Iterator[None]:
    """Within the block, ``"module:attribute"`` references are imported (``allowed``) or not.

    Use it only around configurations you trust as you trust code: the reference names a
    module that is imported and a callable that is called. ``allow_import(False)`` inside
    an allowing block does not take the permission away (an outer opt-in stands).

    Example:
        >>> with allow_import():  # doctest: +SKIP
        ...     make_device("my_lab.devices:Pump", "pump")
    """
    reset = _IMPORT_ALLOWED.set(bool(allowed) or _IMPORT_ALLOWED.get())
    try:
        yield
    finally:
        _IMPORT_ALLOWED.reset(reset)


def _refusal(references: list[tuple[str, str]]) -> ImportNotAllowedError:
    listed = "; ".join(f"{field}: {ref!r}" for field, ref in references)
    return ImportNotAllowedError(
        f"{listed}: an import path ('module:attribute') is code, and this configuration is "
        f"data: refused. To use it, {_FIXES}",
        references,
    )


def checked_import(ref: str, *, field: str) -> Any:
    """:func:`import_reference` if :func:`allow_import` is in effect, else refuse.

    Raises:
        ImportNotAllowedError: outside an :func:`allow_import` block (nothing is imported).
        ImportError, AttributeError: as :func:`import_reference`.
    """
    if not import_allowed():
        raise _refusal([(field, ref)])
    return import_reference(ref)


#: fields of a campaign configuration whose value is a registered name or an import path
def _config_references(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def add(field: str, value: Any) -> None:
        if isinstance(value, str) and ":" in value:
            found.append((field, value))

    devices = data.get("devices") or {}
    if isinstance(devices, Mapping):
        for name, dev in devices.items():
            if isinstance(dev, Mapping):
                add(f"devices.{name}.type", dev.get("type"))
                options = dev.get("options")
                if isinstance(options, Mapping):  # sim_detector's physics
                    add(f"devices.{name}.options.physics", options.get("physics"))
    for key in ("planner", "protocol"):
        if isinstance(data.get(key), Mapping):
            add(f"{key}.name", data[key].get("name"))
    for key in ("objectives", "measurements"):
        for i, obj in enumerate(data.get(key) or []):
            if isinstance(obj, Mapping):
                add(f"{key}.{obj.get('name', i)}.function", obj.get("function"))
    return found


def check_config_imports(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Refuse a campaign configuration holding import paths, unless imports are allowed.

    Args:
        data: the configuration as plain data (``CampaignConfig.model_dump()``).

    Returns:
        The ``(field, reference)`` pairs found (imports being allowed).

    Raises:
        ImportNotAllowedError: naming every field holding a ``"module:attribute"`` path.
    """
    found = _config_references(data)
    if found and not import_allowed():
        raise _refusal(found)
    return found


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
            f"register it under the entry-point group {group!r} (or, in code you trust, "
            f"refer to it as 'package.module:attribute' with imports allowed)"
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
        """Look ``name`` up; ``"module:attribute"`` is imported only within :func:`allow_import`.

        Raises:
            the registry's ``not_found`` error, listing what is available and how to
            register a new entry; :class:`ConfigError` if a plugin fails to load;
            :class:`ImportNotAllowedError` for an import path outside :func:`allow_import`.
        """
        if name in self._entries:
            return self._entries[name]
        if name in self._references:
            obj = import_reference(self._references.pop(name))
            self._entries[name] = obj
            return obj
        if ":" in name:
            try:
                return checked_import(name, field=self.kind)
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
