"""Load a campaign from YAML: validate everything, then build devices, planner, protocol."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sdl.errors import ConfigError, SdlError
from sdl.planners import Categorical, Integer, Objective, Real

from ._errors import format_validation_error
from ._model import CampaignConfig, CategoricalConfig, IntegerConfig

__all__ = ["load_config", "build_campaign", "load_campaign", "build_devices"]


def load_config(source: str | os.PathLike | Mapping[str, Any], **overrides: Any) -> CampaignConfig:
    """Read and validate a campaign configuration.

    Args:
        source: a YAML file path or an already-parsed mapping.
        overrides: top-level fields to replace (``budget``, ``store``, ``seed``, ...);
            ``None`` values are ignored.

    Raises:
        ConfigError: the file is missing or not YAML, or a field is invalid; the message
            names every bad field and how to fix it.
    """
    if isinstance(source, Mapping):
        data, where = dict(source), "campaign config"
    else:
        path = Path(source)
        where = str(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ConfigError(f"{where}: cannot read the campaign file ({err.strerror})") from err
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"{where}: not valid YAML: {err}") from err
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of campaign fields at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(
            format_validation_error(err, source=where, model=CampaignConfig)
        ) from None


def _parameter(p: Any):
    if isinstance(p, CategoricalConfig):
        return Categorical(p.name, tuple(p.choices))
    if isinstance(p, IntegerConfig):
        return Integer(p.name, p.low, p.high)
    return Real(p.name, p.low, p.high, log=p.log)


def build_devices(config: CampaignConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build every device of ``config``.

    Returns:
        ``(entries, devices)``: config name -> what the factory made (a device or a
        station holding several), and ophyd name -> ophyd device for every device made.

    Raises:
        ConfigError: an unknown device type or option, naming ``devices.<name>``.
    """
    from sdl.devices import connect_together, make_device

    entries: dict[str, Any] = {}
    devices: dict[str, Any] = {}
    # EPICS devices connect together when the block ends: every missing PV in one error
    with connect_together():
        for name, dc in config.devices.items():
            try:
                entries[name] = make_device(dc.type, name, **dc.options)
            except SdlError as err:
                raise type(err)(f"devices.{name}: {err}") from None
            except (TypeError, ValueError) as err:
                raise ConfigError(f"devices.{name}: {err}") from None
    for name, made in entries.items():
        owned = getattr(made, "devices", None)
        if isinstance(owned, Mapping):
            devices.update(owned)
        else:
            devices[getattr(made, "name", name)] = made
    for name, made in entries.items():
        devices.setdefault(name, made)
    return entries, devices


def build_campaign(config: CampaignConfig):
    """Build a :class:`~sdl.Campaign` from a validated configuration.

    Nothing moves: devices are constructed (and, for real hardware, connected), the
    planner and protocol are built, and every reference is checked.

    Raises:
        ConfigError / DeviceNotFoundError / PlannerNotFoundError / ProtocolNotFoundError:
            naming the field at fault.
    """
    from sdl._campaign import Campaign
    from sdl.planners import make_planner
    from sdl.protocols import build_protocol

    parameters = [_parameter(p) for p in config.parameters]
    objectives = [
        Objective(o.name, o.goal, key=o.key, function=o.function, threshold=o.threshold)
        for o in config.objectives
    ]
    measurements = [Objective(m.name, key=m.key, function=m.function) for m in config.measurements]
    try:
        planner = make_planner(
            config.planner.name, parameters, objectives, seed=config.seed, **config.planner.options
        )
    except SdlError as err:
        raise type(err)(f"planner: {err}") from None
    _, devices = build_devices(config)
    param_devices = {p.name: p.device for p in config.parameters if p.device}
    for pname, dname in param_devices.items():
        if dname not in devices:
            raise ConfigError(
                f"parameters.{pname}.device: no device named {dname!r}; devices: "
                f"{', '.join(sorted(devices))}"
            )
    try:
        protocol = build_protocol(
            config.protocol.name,
            devices,
            [p.name for p in parameters],
            param_devices,
            **config.protocol.options,
        )
    except SdlError as err:
        raise type(err)(f"protocol: {err}") from None
    return Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=planner,
        devices=devices,
        budget=config.budget,
        batch_size=config.batch_size,
        name=config.name,
        metadata={"config": config.model_dump(mode="json")},
        measurements=measurements,
        plan_ahead=config.plan_ahead,
        retries=config.retries,
        pause_after_failures=config.pause_after_failures,
        pause_on_disconnect=config.pause_on_disconnect,
        fixed=config.fixed,
        approval=config.approval,
        operator=config.operator,
        safe_state="devices" if config.safe_state else None,
        warm_start=config.warm_start,
    )


def load_campaign(source: str | os.PathLike | Mapping[str, Any], **overrides: Any):
    """Validate a YAML campaign and build it: ``load_config`` then ``build_campaign``."""
    return build_campaign(load_config(source, **overrides))
