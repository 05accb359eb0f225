"""Planners by name: the built-ins, plugins from the ``sdl.planners`` entry-point group,
and ``"module:attribute"`` references (code: only within ``sdl._plugins.allow_import``).

A plugin package registers a planner class in its ``pyproject.toml``::

    [project.entry-points."sdl.planners"]
    my_planner = "my_package.planners:MyPlanner"

Nothing is imported until a planner is asked for by name, so listing the planners does
not import torch.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from sdl._plugins import Registry
from sdl.errors import ConfigError, PlannerNotFoundError

from ._base import Planner
from ._objective import Objective
from ._space import Space

__all__ = [
    "ENTRY_POINT_GROUP",
    "available_planners",
    "get_planner_class",
    "make_planner",
    "planners",
]

#: entry-point group scanned for planner plugins
ENTRY_POINT_GROUP = "sdl.planners"

# relative to this package, so the built-ins and ``Planner`` come from the same import
_BUILTINS: dict[str, str] = {
    "botorch": f"{__package__}._botorch:BoTorchPlanner",
    "skopt": f"{__package__}._skopt:SkoptPlanner",
    "sobol": f"{__package__}._sobol:SobolPlanner",
}

_HOW_TO_REGISTER = (
    f"register a planner class under the entry-point group {ENTRY_POINT_GROUP!r} "
    f'([project.entry-points."{ENTRY_POINT_GROUP}"] my_planner = "my_package:MyPlanner") '
    "or, in a file you trust as code, give it as 'module:Class' with --allow-import"
)


#: the planner registry (name -> Planner class); built-ins are imported when first used
planners: Registry[type[Planner]] = Registry(
    "planner", ENTRY_POINT_GROUP, PlannerNotFoundError, how_to_register=_HOW_TO_REGISTER
)
for _name, _reference in _BUILTINS.items():
    planners.register_reference(_name, _reference)


def available_planners() -> dict[str, str]:
    """Names of the registered planners and where each comes from.

    Returns:
        ``{name: source}``, sources being ``"built-in (module:Class)"`` or
        ``"<package> <version> (entry point module:Class)"``.

    Raises:
        ConfigError: if two installed packages register the same name.
    """
    return planners.available()


def get_planner_class(name: str) -> type[Planner]:
    """The planner class registered under ``name``, or named by ``"module:Class"``.

    Args:
        name: a built-in name (``"botorch"``, ``"skopt"``, ``"sobol"``), the name of an
            entry point of the ``sdl.planners`` group, or a ``"module:Class"`` reference.

    Raises:
        PlannerNotFoundError: if no planner has that name (the message lists those that
            do and says how to register one).
        ConfigError: if the name refers to something that is not a Planner subclass, or
            two packages register the same name.
    """
    cls = planners.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Planner)):
        raise ConfigError(
            f"planner {name!r} refers to {cls!r}, which is not a subclass of sdl.planners.Planner"
        )
    return cls


def planner_options(cls: type[Planner]) -> list[str] | None:
    """Keyword options a planner class accepts besides ``space``, ``objectives``, ``seed``.

    Returns ``None`` when the constructor takes ``**kwargs`` (anything goes).
    """
    options = []
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind is param.VAR_KEYWORD:
            return None
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.name not in ("space", "objectives", "seed"):
            options.append(param.name)
    return options


def make_planner(
    name: str,
    space: Space,
    objectives: Sequence[Objective],
    seed: int = 0,
    **options: Any,
) -> Planner:
    """Build the planner registered under ``name`` with the given options.

    Args:
        name: see :func:`get_planner_class`.
        space: the parameters to optimize.
        objectives: what to optimize.
        seed: seed of the planner.
        **options: planner options (``num_restarts=...`` for ``"botorch"``, ...).

    Raises:
        PlannerNotFoundError: for an unknown name.
        ConfigError: for an option the planner does not accept.

    Example:
        >>> from sdl.planners import Objective, Real, Space
        >>> planner = make_planner("sobol", Space([Real("x", 0, 1)]), [Objective("y")])
        >>> planner.name
        'sobol'
    """
    cls = get_planner_class(name)
    accepted = planner_options(cls)
    if accepted is not None:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"planner {name!r} ({cls.__name__}) has no option "
                f"{', '.join(repr(u) for u in unknown)}; it accepts: {accepted or 'none'}"
            )
    return cls(space, objectives, seed=seed, **options)
