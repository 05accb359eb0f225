"""A campaign file's lab: read a ``lab:`` file, refuse import paths, build stations and steps.

Validation (``_model``) has already checked the names: stations and resources unique, every
workflow step's station and resources present. Here the devices are built (one
:func:`~sdl.devices.connect_together` block for the whole lab), the step plans looked up,
and the :class:`~sdl.lab.Lab` and :class:`~sdl.lab.Workflow` made.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdl.errors import ConfigError, SdlError

from ._model import CampaignConfig, FilmLabConfig, LabDeviceConfig, StationLabConfig
from ._yaml import read_campaign_file

__all__ = ["BuiltLab", "build_lab", "check_lab_imports", "lab_references", "read_lab_file"]


def read_lab_file(value: str, base: Path) -> dict[str, Any]:
    """The lab section kept in another file: ``lab: labs/film.yaml``.

    Args:
        value: the path as written, relative to ``base`` unless absolute.
        base: the campaign file's folder (the working folder for a mapping).

    Raises:
        ConfigError: no such file, not YAML, or not a mapping of lab fields; the message
            names ``lab`` and the path it looked at.
    """
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if not value.strip() or not path.is_file():
        raise ConfigError(
            f"lab: no lab file at {str(path)!r} (from {value!r}, relative to the campaign "
            f"file's folder {str(base)!r}); fix the path, or write the lab's fields here "
            f"(lab: {{kind: film}} or lab: {{stations: [...]}})"
        )
    data = read_campaign_file(path)
    if isinstance(data, dict) and set(data) == {"lab"}:  # a file that wraps it in ``lab:``
        data = data["lab"]
    if not isinstance(data, dict):
        raise ConfigError(
            f"lab: {path}: expected a mapping of lab fields (kind, or name, stations and "
            f"resources), got {type(data).__name__}"
        )
    return data


def lab_references(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, "module:attribute")`` of every import path in a campaign's lab and workflow.

    ``sdl._plugins.check_config_imports`` looks at the top-level sections; a lab's device
    types (and their ``physics``) and the workflow's step plans are listed here.
    """
    found: list[tuple[str, str]] = []

    def add(field: str, value: Any) -> None:
        if isinstance(value, str) and ":" in value:
            found.append((field, value))

    lab = data.get("lab")
    if isinstance(lab, Mapping):
        for section in ("stations", "resources"):
            for i, item in enumerate(lab.get(section) or []):
                devices = item.get("devices") if isinstance(item, Mapping) else None
                for role, dev in (devices or {}).items():
                    if not isinstance(dev, Mapping):
                        continue
                    where = f"lab.{section}[{i}].devices.{role}"
                    add(f"{where}.type", dev.get("type"))
                    options = dev.get("options")
                    if isinstance(options, Mapping):
                        add(f"{where}.options.physics", options.get("physics"))
    for i, step in enumerate(data.get("workflow") or []):
        if isinstance(step, Mapping):
            add(f"workflow[{i}].plan", step.get("plan"))
    return found


def check_lab_imports(data: Mapping[str, Any]) -> None:
    """Refuse the lab's import paths unless imports are allowed (as the other sections')."""
    from sdl._plugins import _refusal, import_allowed

    found = lab_references(data)
    if found and not import_allowed():
        raise _refusal(found)


@dataclass
class BuiltLab:
    """What a campaign file's lab became.

    Attributes:
        lab: the :class:`~sdl.lab.Lab`.
        workflow: its :class:`~sdl.lab.Workflow`, or None (a one-station lab's protocol).
        devices: every device made, by its own name (containers' devices too), for the
            dry run and the campaign's metadata.
        station_devices: the devices of the only station, flat, for its protocol.
    """

    lab: Any
    workflow: Any
    devices: dict[str, Any]
    station_devices: dict[str, Any]


def _make(where: str, role: str, dc: LabDeviceConfig) -> Any:
    from sdl.devices import make_device

    from ._load import _device_options

    try:
        return make_device(dc.type, dc.name or role, **_device_options(dc.options))
    except SdlError as err:
        raise type(err)(f"{where}.devices.{role}: {err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}.devices.{role}: {err}") from None


def _station_lab(lab: StationLabConfig) -> tuple[Any, dict[str, Any]]:
    from sdl.devices import connect_together
    from sdl.lab import Lab, Resource, Station

    from ._load import flat_devices

    made: dict[str, dict[str, Any]] = {}
    with connect_together():  # EPICS devices: every missing PV of the lab in one error
        for section, items in (("stations", lab.stations), ("resources", lab.resources)):
            for i, item in enumerate(items):
                where = f"lab.{section}[{i}]"
                made[where] = {r: _make(where, r, dc) for r, dc in item.devices.items()}
    try:
        stations = [
            Station(s.name, made[f"lab.stations[{i}]"], s.capacity, s.max_failures)
            for i, s in enumerate(lab.stations)
        ]
        resources = [
            Resource(r.name, r.capacity, made[f"lab.resources[{i}]"])
            for i, r in enumerate(lab.resources)
        ]
        built = Lab(stations, resources, name=lab.name)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lab: {err}") from None
    devices: dict[str, Any] = {}
    for entries in made.values():
        devices.update(flat_devices(entries, by_own_name=True))
    return built, devices


def _film_lab(lab: FilmLabConfig, seed: int) -> tuple[Any, Any, dict[str, Any]]:
    from sdl.lab import film_lab

    try:
        built, workflow, _, _ = film_lab(
            synth_stations=lab.synth_stations,
            time_scale=lab.time_scale,
            durations=lab.durations,
            faults={name: f.model_dump() for name, f in lab.faults.items()},
            noise=lab.noise,
            seed=seed if lab.seed is None else lab.seed,
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"lab: {err}") from None
    return built, workflow, built.devices()


def _workflow(config: CampaignConfig) -> Any:
    from sdl._plugins import check_options
    from sdl.lab import Step, Workflow
    from sdl.lab._model import plan_accepts_context
    from sdl.protocols._registry import step_plans

    steps = []
    for i, sc in enumerate(config.workflow or ()):
        where = f"workflow[{i}].plan"
        try:
            plan = step_plans.get(sc.plan)
        except SdlError as err:
            raise type(err)(f"{where}: {err}") from None
        if not callable(plan):
            raise ConfigError(f"{where}: {sc.plan!r} is not callable; name a step plan")
        if sc.options:
            check_options(plan, sc.options, what=f"workflow[{i}].options: step plan {sc.plan!r}")
            plan = functools.partial(plan, **sc.options)
        if not plan_accepts_context(plan):
            raise ConfigError(
                f"{where}: {sc.plan!r} cannot be called as plan(point, context, md=...); a "
                f"step plan takes the point and its StepContext (docs/lab.md)"
            )
        station = sc.station if isinstance(sc.station, str) else tuple(sc.station)
        uses = [u if isinstance(u, str) else tuple(u) for u in sc.uses]
        steps.append(Step(sc.name, plan, station, uses))
    return Workflow(steps)


def build_lab(config: CampaignConfig) -> BuiltLab:
    """Build the lab of ``config`` (which has one) and its workflow, if it gives one.

    Raises:
        ConfigError / DeviceNotFoundError / ProtocolNotFoundError: naming the field at
            fault (``lab.stations[0].devices.coater``, ``workflow[2].plan``).
    """
    assert config.lab is not None
    if isinstance(config.lab, FilmLabConfig):
        lab, workflow, devices = _film_lab(config.lab, config.seed)
        station_devices: dict[str, Any] = {}
    else:
        lab, devices = _station_lab(config.lab)
        workflow = None
        only = next(iter(lab.stations.values()))
        from ._load import flat_devices

        station_devices = flat_devices(only.devices, by_own_name=True)
    if config.workflow is not None:
        workflow = _workflow(config)
    if workflow is not None:
        try:
            lab.check(workflow)
        except ValueError as err:  # the validation saw the names; kept for a custom glob
            raise ConfigError(str(err)) from None
    return BuiltLab(lab, workflow, devices, station_devices)
