"""Load a campaign from YAML: validate everything, then build devices, planner, protocol."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sdl.errors import ConfigError, SdlError
from sdl.planners import Categorical, Integer, Objective, Real

from ._check import check_campaign, check_warm_start
from ._errors import format_validation_error
from ._model import CampaignConfig, CategoricalConfig, FaultsConfig, IntegerConfig
from ._yaml import read_campaign_file

__all__ = ["load_config", "build_campaign", "load_campaign", "build_devices"]


def load_config(source: str | os.PathLike | Mapping[str, Any], **overrides: Any) -> CampaignConfig:
    """Read and validate a campaign configuration.

    Args:
        source: a YAML file path or an already-parsed mapping.
        overrides: top-level fields to replace (``budget``, ``store``, ``seed``, ...);
            ``None`` values are ignored.

    Raises:
        ConfigError: the file is missing, not UTF-8, empty or not YAML, gives a key twice
            (both lines named), leaves ``store:`` empty, names a ``lab:`` file that does not
            exist, or a field is invalid; the message names every bad field and how to fix it.

    A ``lab:`` given as a path is read from that file (relative to the campaign file's
    folder; to the working folder for a mapping) and kept inline in the returned config,
    so the store records the lab itself.
    """
    if isinstance(source, Mapping):
        data, where, base = dict(source), "campaign config", Path.cwd()
    else:
        path = Path(source)
        where, base = str(path), path.parent
        data = read_campaign_file(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of campaign fields at the top level")
        store = data.get("store", "-")
        if store is None or (isinstance(store, str) and not store.strip()):  # even with --store
            raise ConfigError(
                f"{where}: store: is empty; give the store's path, or remove the line for the "
                f"default (runs/<name>-<date>-<time>.zarr)"
            )
    data.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(data.get("lab"), str):  # a lab kept in its own file, shared by campaigns
        from ._lab import read_lab_file

        try:
            lab_file = data["lab"]
            data["lab"] = read_lab_file(lab_file, base)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        where = f"{where} (lab: {lab_file})"
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


def _device_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A device's options as its factory takes them: ``faults`` as a plain mapping."""
    out = dict(options)
    if isinstance(out.get("faults"), FaultsConfig):
        out["faults"] = out["faults"].model_dump()
    return out


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
        for name, dc in (config.devices or {}).items():
            try:
                entries[name] = make_device(dc.type, name, **_device_options(dc.options))
            except SdlError as err:
                raise type(err)(f"devices.{name}: {err}") from None
            except (TypeError, ValueError) as err:
                raise ConfigError(f"devices.{name}: {err}") from None
    devices.update(flat_devices(entries))
    return entries, devices


def flat_devices(entries: Mapping[str, Any], *, by_own_name: bool = False) -> dict[str, Any]:
    """Devices by their own names: a container's (a station type) are listed one by one;
    each entry is also reachable by the name it was configured under (``by_own_name``: by
    its own name, as a lab's roles are not names)."""
    out: dict[str, Any] = {}
    for key, made in entries.items():
        owned = getattr(made, "devices", None)
        if isinstance(owned, Mapping):
            out.update(owned)
        else:
            out[getattr(made, "name", key)] = made
    for key, made in entries.items():
        out.setdefault(getattr(made, "name", key) if by_own_name else key, made)
    return out


def build_campaign(config: CampaignConfig, *, allow_import: bool = False):
    """Build a :class:`~sdl.Campaign` from a validated configuration.

    A ``"module:attribute"`` path (device type, planner, protocol, objective function,
    physics) is code: refused with :class:`~sdl._plugins.ImportNotAllowedError`, naming
    the field, unless ``allow_import`` (docs/plugins.md, "What is data, what is code").
    """
    from sdl._plugins import allow_import as allowing
    from sdl._plugins import check_config_imports

    from ._lab import check_lab_imports

    with allowing(allow_import):
        data = config.model_dump(mode="json")
        check_config_imports(data)
        check_lab_imports(data)
        return _build_campaign(config)


def _build_campaign(config: CampaignConfig):
    """Build a :class:`~sdl.Campaign` from a validated configuration.

    Nothing moves: devices are constructed (and, for real hardware, connected), the
    planner and protocol are built, and every reference is checked; then the dry run
    (:func:`~sdl.config._check.check_campaign`) checks the objectives' data keys against
    the devices' ``describe()``, the objective functions, the parameters' ranges against
    the devices' limits and the outcome constraints' quantities.

    Raises:
        ConfigError / DeviceNotFoundError / PlannerNotFoundError / ProtocolNotFoundError:
            naming the field at fault.
    """
    from sdl._campaign import Campaign
    from sdl._loop import LoopOptions
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
    built = None
    if config.lab is not None:
        from ._lab import build_lab

        built = build_lab(config)
        devices, protocol_devices = built.devices, built.station_devices
    else:
        _, devices = build_devices(config)
        protocol_devices = devices
    param_devices = {p.name: p.device for p in config.parameters if p.device}
    for pname, dname in param_devices.items():
        if dname not in devices:
            raise ConfigError(
                f"parameters.{pname}.device: no device named {dname!r}; devices: "
                f"{', '.join(sorted(devices))}"
            )
    protocol = None
    if config.protocol is not None:
        try:
            protocol = build_protocol(
                config.protocol.name,
                protocol_devices,
                [p.name for p in parameters],
                param_devices,
                **config.protocol.options,
            )
        except SdlError as err:
            raise type(err)(f"protocol: {err}") from None
    check_campaign(config, devices=devices, protocol=protocol, planner=planner)
    check_warm_start(config)
    lab: dict[str, Any] = {}
    if built is not None:
        lab = {
            "lab": built.lab,
            "workflow": built.workflow,
            "max_in_flight": config.max_in_flight,
            "lookahead": config.lookahead,
            "final_in_flight": config.final_in_flight,
        }
    try:
        campaign = Campaign(
            objectives=objectives,
            protocol=protocol,
            planner=planner,
            devices=devices,
            budget=config.budget,
            batch_size=config.batch_size,
            name=config.name,
            metadata={"config": config.model_dump(mode="json")},
            measurements=measurements,
            approval=config.approval,
            operator=config.operator,
            safe_state="devices" if config.safe_state else None,
            warm_start=config.warm_start,
            # the loop's policy: the YAML's top-level keys of the same names
            **{name: getattr(config, name) for name in LoopOptions.POLICY},
            **lab,
        )
    except ValueError as err:
        if built is None:
            raise
        raise ConfigError(f"lab: {err}") from None  # what the validation could not foresee
    if config.qserver is not None and built is not None:
        campaign.backend_factory = _qserver_factory(config.qserver, built)
    return campaign


def _qserver_factory(qs: Any, built: Any) -> Any:
    """``qserver:``: the lab's steps on the RE Managers it names (checked against the lab)."""
    import os

    from sdl.lab import QServerBackend
    from sdl.lab._qserver_servers import used_stations

    for station in used_stations(built.lab, built.workflow):
        if station not in qs.managers:
            raise ConfigError(
                f"qserver.managers: no manager for station {station!r}, which the workflow "
                f"uses; add '{station}: [tcp://HOST:PORT]' (one address per lane)"
            )
    for station, addresses in qs.managers.items():
        capacity = built.lab.stations[station].capacity
        if len(addresses) != capacity:
            raise ConfigError(
                f"qserver.managers.{station}: {len(addresses)} address(es) for a station of "
                f"capacity {capacity}; give one manager address per lane"
            )

    def factory(lab: Any) -> Any:
        return QServerBackend(
            lab, qs.managers, qs.proxy, timeout=qs.timeout, api_key=os.environ.get(qs.api_key_env)
        )

    return factory


def load_campaign(
    source: str | os.PathLike | Mapping[str, Any], *, allow_import: bool = False, **overrides: Any
):
    """Validate a YAML campaign and build it: ``load_config`` then ``build_campaign``."""
    return build_campaign(load_config(source, **overrides), allow_import=allow_import)
