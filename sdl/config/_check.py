"""The dry run: a built campaign checked against its devices before anything moves.

Validation (``_model``) checks each field on its own; these checks need the built devices
and planner: the data keys the devices' ``describe()`` produce, their limits, the objective
functions' modules, the quantities outcome constraints bound, and the files and folders the
campaign will read or create. Each problem names its field and the fix; all are reported
in one :class:`~sdl.errors.ConfigError`.
"""

from __future__ import annotations

import difflib
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sdl.errors import ConfigError, StoreError

from ._model import CampaignConfig, CategoricalConfig

__all__ = [
    "check_campaign",
    "check_store_path",
    "check_warm_start",
    "data_keys",
    "key_problems",
    "no_campaign_yet",
    "summary",
    "what_runs",
]

#: how many of the devices' data keys a message lists
_LIST_KEYS = 30


def data_keys(devices: Mapping[str, Any]) -> set[str] | None:
    """Every data key the devices' ``describe()`` produce; None if one cannot say."""
    keys: set[str] = set()
    for dev in devices.values():
        describe = getattr(dev, "describe", None)
        if describe is None:
            if isinstance(getattr(dev, "devices", None), Mapping):
                continue  # a station: its devices are listed on their own
            return None  # a readable we cannot ask: do not guess
        try:
            keys.update(describe())
        except Exception:  # a device that cannot describe itself now: do not guess
            return None
    return keys


def _key_problems(config: CampaignConfig, keys: set[str] | None) -> list[str]:
    return key_problems(
        [("objectives", config.objectives), ("measurements", config.measurements)], keys
    )


def key_problems(sections: Iterable[tuple[str, Iterable[Any]]], keys: set[str] | None) -> list[str]:
    """What is wrong with the objectives' sources: ``(section, objectives)`` pairs, each
    objective with ``name``, ``key`` and ``function`` (a campaign file's or a
    :class:`~sdl.planners.Objective`); ``keys``: the devices' data keys (None: unknown)."""
    from sdl.protocols import resolve_reference

    problems = []
    for section, items in sections:
        for o in items:
            field = f"{section}.{o.name}"
            if o.function is not None:
                try:
                    resolve_reference(o.function, what=f"{field}.function")
                except ConfigError as err:
                    problems.append(
                        f"{err}; check the spelling and that the module is installed in this "
                        f"environment"
                    )
                continue
            if keys is None:
                continue
            key = o.key or o.name
            if key in keys:
                continue
            listed = sorted(keys)
            shown = ", ".join(listed[:_LIST_KEYS]) + (" ..." if len(listed) > _LIST_KEYS else "")
            close = difflib.get_close_matches(key, listed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            where = f"{field}.key" if o.key else f"{field} (no key: its name is the data key)"
            problems.append(
                f"{where}: no device produces data key {key!r}; {hint}the devices produce: "
                f"{shown or '(none)'}"
            )
    return problems


def _set_devices(config: CampaignConfig, protocol: Any, devices: Mapping[str, Any]) -> dict:
    """Parameter name -> the device it sets: as the protocol was built, else ``device:``."""
    names = {p.name for p in config.parameters}
    out: dict[str, Any] = {}
    # a protocol built by name is a functools.partial holding ``{parameter: device}``
    for value in (getattr(protocol, "keywords", None) or {}).values():
        if isinstance(value, Mapping) and value and set(value) <= names:
            for p, dev in value.items():
                out.setdefault(p, dev)
    for p in config.parameters:
        if p.device and p.device in devices:
            out.setdefault(p.name, devices[p.device])
    return out


def _limits(dev: Any) -> tuple[float, float] | None:
    """A device's software limits ``(low, high)``, or None when it has none."""
    lim = getattr(dev, "limits", None)
    if lim is None and hasattr(dev, "low_limit") and hasattr(dev, "high_limit"):
        lim = (dev.low_limit, dev.high_limit)
    try:
        low, high = (float(v) for v in lim)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    # ophyd's convention: equal (or reversed) limits mean none
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        return None
    return low, high


def _limit_problems(config: CampaignConfig, protocol: Any, devices: Mapping[str, Any]) -> list:
    problems = []
    moved = _set_devices(config, protocol, devices)
    for p in config.parameters:
        dev = moved.get(p.name)
        if dev is None or isinstance(p, CategoricalConfig):
            continue
        name = getattr(dev, "name", repr(dev))
        lim = _limits(dev)
        if lim is not None:
            if lim[0] <= p.low and p.high <= lim[1]:
                continue
            egu = f" {dev.egu}" if getattr(dev, "egu", "") else ""
            problems.append(
                f"parameters.{p.name}: range [{p.low}, {p.high}] goes beyond the limits "
                f"[{lim[0]}, {lim[1]}]{egu} of {name}, the device it sets; keep low >= {lim[0]} "
                f"and high <= {lim[1]}"
            )
            continue
        check = getattr(dev, "check_value", None)  # bluesky Checkable, without limits to show
        for bound in ("low", "high") if callable(check) else ():
            try:
                check(getattr(p, bound))
            except Exception as err:
                problems.append(
                    f"parameters.{p.name}.{bound}: {name}, the device it sets, refuses "
                    f"{getattr(p, bound)} ({err}); narrow the range"
                )
    return problems


def _constraint_problems(config: CampaignConfig, planner: Any) -> list[str]:
    measured = [m.name for m in config.measurements]
    known = measured + [o.name for o in config.objectives]
    problems = []
    for c in getattr(planner, "outcome_constraints", ()) or ():
        if c.name in known:
            continue
        close = difflib.get_close_matches(c.name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        problems.append(
            f"planner.options.outcome_constraints: '{c}' bounds {c.name!r}, which is neither an "
            f"objective nor a measurement; {hint}declare it under measurements "
            f"(- {{name: {c.name}, key: DATA_KEY}}) so that it is measured"
            + (f" (measurements: {', '.join(measured)})" if measured else "")
        )
    return problems


def check_warm_start(config: CampaignConfig) -> None:
    """Refuse a ``warm_start`` that names nothing readable (before the planner reads it)."""
    if config.warm_start is None:
        return
    path = Path(config.warm_start)
    fix = "give the path of a CSV file or of an sdl store, or remove warm_start"
    if not path.exists():
        raise ConfigError(
            f"warm_start: no file or store at {config.warm_start!r} (relative paths start in "
            f"{os.getcwd()}); {fix}"
        )
    if path.is_dir() and not (path / "zarr.json").exists():
        raise ConfigError(
            f"warm_start: {config.warm_start!r} is a folder but not an sdl store; {fix}"
        )


def check_campaign(
    config: CampaignConfig, *, devices: Mapping[str, Any], protocol: Any, planner: Any
) -> None:
    """The dry run of a built campaign: nothing is moved, read from hardware or created.

    Checks that every objective and measurement ``key`` is produced by a device (their
    ``describe()``), that every objective ``function`` imports, that every parameter's range
    lies within the limits of the device it sets, and that outcome constraints bound a
    declared quantity.

    Raises:
        ConfigError: one message listing every problem, each naming its field and the fix.
    """
    problems = [
        *_key_problems(config, data_keys(devices)),
        *_limit_problems(config, protocol, devices),
        *_constraint_problems(config, planner),
    ]
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(
            f"{len(problems)} problems found before the campaign started:\n  "
            + "\n  ".join(problems)
        )


def no_campaign_yet(store: Path, campaign_file: str = "CAMPAIGN.yaml") -> StoreError:
    """The error for a store whose creation was cut before its campaign started."""
    return StoreError(
        f"{store} holds no campaign yet: it was created but the campaign never started (e.g. "
        f"killed during creation); start it again with `sdl run {campaign_file} --store "
        f"{store} --overwrite`"
    )


def check_store_path(store: Path, *, overwrite: bool = False, campaign_file: str = "") -> None:
    """Refuse a store path that cannot become a new store, before anything is created.

    Raises:
        StoreError: the path is a file, lies under a file, is in a folder this process
            cannot write, holds a store whose creation never finished (without
            ``overwrite``), or already holds a campaign (without ``overwrite``).
    """
    if store.is_file():
        raise StoreError(f"store: {store} is a file, not a store folder; choose another path")
    parent = store
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise StoreError(
            f"store: {store} lies under {parent}, which is a file; choose a path in a folder"
        )
    from sdl.store import lock_holder

    if lock_holder(store) is not None:
        return  # a live process writes there: the writer names it, before touching anything
    if (store / "zarr.json").exists() and not overwrite:
        from sdl import open_store

        if not open_store(store).campaign:
            raise no_campaign_yet(store, campaign_file or "CAMPAIGN.yaml")
        raise StoreError(
            f"store: {store} already holds a campaign; choose another store path, overwrite it "
            f"(--overwrite), or continue it (sdl resume {store})"
        )
    if store.exists():  # an existing store is written in place: never probe inside it
        if not os.access(store, os.W_OK | os.X_OK):
            raise StoreError(
                f"store: {store} is not writable; choose a path in a folder you can write"
            )
        return
    try:  # permission bits do not tell root (or a read-only mount) apart: try it
        os.rmdir(tempfile.mkdtemp(prefix=".sdl-check-", dir=parent))
    except OSError as err:
        raise StoreError(
            f"store: cannot create {store}: {parent} is not writable ({err.strerror}); choose "
            f"a path in a folder you can write"
        ) from None


def summary(config: CampaignConfig, campaign: Any, store: Path | None = None) -> str:
    """One line: what the checked campaign is made of."""
    keys = data_keys(campaign.devices)
    n_dev = sum(1 for d in campaign.devices.values() if hasattr(d, "describe"))
    parts = [
        f"campaign {config.name!r}: {len(config.parameters)} parameter(s) "
        f"({', '.join(p.name for p in config.parameters)})",
        f"{len(config.objectives)} objective(s) ({', '.join(o.name for o in config.objectives)})",
        f"{len(config.measurements)} measurement(s)",
        f"{n_dev} device(s)" + (f" giving {len(keys)} data keys" if keys is not None else ""),
        f"planner {config.planner.name!r}",
        what_runs(config, campaign),
        f"budget {config.budget}",
    ]
    if store is not None:
        parts.append(f"store {store}")
    return ", ".join(parts)


def what_runs(config: CampaignConfig, campaign: Any = None) -> str:
    """What runs each experiment, in words: ``protocol 'mix_color'`` or a lab's workflow."""
    if config.lab is None:
        return f"protocol {config.protocol.name!r}" if config.protocol else "no protocol"
    lab = getattr(campaign, "lab", None)
    stations = len(lab.stations) if lab is not None else len(config.lab.station_names)
    text = f"lab {config.lab.name!r} ({stations} station(s))"
    if config.protocol is not None:
        return f"{text}, protocol {config.protocol.name!r}"
    workflow = getattr(campaign, "workflow", None)
    steps = [s.name for s in workflow.steps] if workflow is not None else []
    steps = steps or [s.name for s in config.workflow or ()]
    return f"{text}, workflow {' -> '.join(steps)}"
