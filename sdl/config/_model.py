"""The campaign configuration as typed, validated data (YAML → :class:`CampaignConfig`)."""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PositiveFloat,
    PositiveInt,
    Tag,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

__all__ = [
    "CampaignConfig",
    "DeviceConfig",
    "FaultsConfig",
    "FilmLabConfig",
    "LabConfig",
    "LabDeviceConfig",
    "ResourceConfig",
    "StationConfig",
    "StationLabConfig",
    "StepConfig",
    "ObjectiveConfig",
    "ParameterConfig",
    "PlannerConfig",
    "ProtocolConfig",
    "StoreOptionsConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: names that become Zarr paths (table columns, stream arrays): letters, digits, ``_ . -``
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def _zarr_safe(name: str) -> str:
    if not _SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} cannot name a column of the store: use only letters, digits and "
            f"'_', '.', '-' (A-Z, a-z, 0-9, _ . -), not starting with '.'"
        )
    return name


class _ParameterBase(_Strict):
    name: str = Field(min_length=1)
    device: str | None = Field(
        default=None, description="name of the device this parameter sets (protocol-dependent)"
    )

    _safe_name = field_validator("name")(_zarr_safe)


class RealConfig(_ParameterBase):
    type: Literal["real"] = "real"
    low: float = Field(allow_inf_nan=False)  # (NaN would pass no check below: refused here)
    high: float = Field(allow_inf_nan=False)
    log: bool = False

    @model_validator(mode="after")
    def _check_range(self) -> RealConfig:
        if not self.low < self.high:
            raise ValueError(
                f"low ({self.low}) must be less than high ({self.high}): swap them or widen the range"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got low={self.low}); raise low or drop log")
        return self


class IntegerConfig(_ParameterBase):
    type: Literal["integer"]
    low: int
    high: int

    @model_validator(mode="after")
    def _check_range(self) -> IntegerConfig:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be less than high ({self.high}): swap them")
        return self


class CategoricalConfig(_ParameterBase):
    type: Literal["categorical"]
    choices: list[str | int | float] = Field(min_length=2)

    @field_validator("choices")
    @classmethod
    def _distinct(cls, v: list[Any]) -> list[Any]:
        if len({str(c) for c in v}) != len(v):
            raise ValueError("choices must be distinct")
        return v


def _parameter_type(v: Any) -> str:
    # ``type`` may be left out for a real parameter
    return v.get("type", "real") if isinstance(v, dict) else getattr(v, "type", "real")


ParameterConfig = Annotated[
    Annotated[RealConfig, Tag("real")]
    | Annotated[IntegerConfig, Tag("integer")]
    | Annotated[CategoricalConfig, Tag("categorical")],
    Discriminator(
        _parameter_type,
        custom_error_type="parameter_type",
        custom_error_message="type must be one of: real, integer, categorical",
    ),
]


class ObjectiveConfig(_Strict):
    name: str = Field(min_length=1)
    goal: Literal["minimize", "maximize"] = "minimize"
    key: str | None = Field(default=None, description="data key holding the value (default: name)")
    function: str | None = Field(default=None, description="'module:attribute' computing the value")
    threshold: float | None = None

    _safe_name = field_validator("name")(_zarr_safe)

    @model_validator(mode="after")
    def _one_source(self) -> ObjectiveConfig:
        if self.key is not None and self.function is not None:
            raise ValueError("give either key or function, not both")
        if self.function is not None and ":" not in self.function:
            raise ValueError(f"function must be 'module:attribute', got {self.function!r}")
        return self


class FaultsConfig(_Strict):
    """``faults:`` of a simulated device: chances per operation (``sdl.devices.Faults``)."""

    timeout: float = Field(default=0.0, description="chance that a set/trigger times out")
    exception: float = Field(default=0.0, description="chance that a set/trigger fails")
    nan: float = Field(default=0.0, description="chance that a detector reads NaN")
    seed: int | None = Field(default=None, description="seed of the faults (default: device's)")
    timeout_s: float = Field(
        default=10.0, ge=0, description="simulated seconds before a timeout is reported"
    )

    @field_validator("timeout", "exception", "nan")
    @classmethod
    def _probability(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"must be a probability in [0, 1] (the chance per operation); got {v}")
        return v

    @model_validator(mode="after")
    def _at_most_one(self) -> FaultsConfig:
        total = self.timeout + self.exception + self.nan
        if total > 1.0 + 1e-12:
            raise ValueError(
                f"timeout + exception + nan = {total:g} is more than 1 (at most one fault "
                "happens per operation); lower them"
            )
        return self


@with_config(ConfigDict(extra="allow"))
class DeviceOptions(TypedDict, total=False):
    """A device type's options: free, except ``faults`` (validated here, by field)."""

    faults: FaultsConfig | None


class DeviceConfig(_Strict):
    type: str = Field(min_length=1, description="registered device type or 'module:attribute'")
    options: DeviceOptions = Field(default_factory=dict)  # type: ignore[arg-type]


def _capacity(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(
            f"must be a whole number >= 1 (how many samples it holds at once), got {v!r}; "
            f"give 1 or more"
        )
    return v


def _lab_name(v: str) -> str:
    if not v or v.strip() != v or any(c in v for c in "*?[],"):
        raise ValueError(
            f"{v!r} is not a usable name: give a non-empty name without spaces at its ends "
            f"or the characters * ? [ ] , (they select stations in a workflow)"
        )
    return v


class LabDeviceConfig(DeviceConfig):
    """A device of a station or resource: its role there (the key) and how to build it."""

    name: str | None = Field(
        default=None,
        min_length=1,
        description="the device's own name (its data keys start with it); default: its role",
    )


class StationConfig(_Strict):
    """``lab.stations[i]``: a place where step plans run (:class:`sdl.lab.Station`)."""

    name: str
    capacity: int = Field(default=1, description="samples (steps) it holds at once")
    max_failures: int = Field(
        default=3, description="instrument failures in a row that take it out of service"
    )
    devices: dict[str, LabDeviceConfig] = Field(
        default_factory=dict, description="role -> device, given to its steps' plans"
    )

    _name = field_validator("name")(_lab_name)
    _cap = field_validator("capacity", mode="before")(_capacity)

    @field_validator("max_failures", mode="before")
    @classmethod
    def _failures(cls, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"must be a whole number >= 1, got {v!r}")
        return v


class ResourceConfig(_Strict):
    """``lab.resources[i]``: something steps lease besides their station (a robot arm)."""

    name: str
    capacity: int = Field(default=1, description="steps that may hold it at once")
    devices: dict[str, LabDeviceConfig] = Field(default_factory=dict)

    _name = field_validator("name")(_lab_name)
    _cap = field_validator("capacity", mode="before")(_capacity)


class StationLabConfig(_Strict):
    """A lab described station by station (:class:`sdl.lab.Lab`)."""

    kind: Literal["stations"] = "stations"
    name: str = "lab"
    stations: list[StationConfig] = Field(min_length=1)
    resources: list[ResourceConfig] = Field(default_factory=list)

    @property
    def station_names(self) -> list[str]:
        return [s.name for s in self.stations]

    @property
    def names(self) -> list[str]:
        return [*self.station_names, *(r.name for r in self.resources)]


#: The film lab's step names, with their default ``(mean, sd)`` durations (sdl.lab.FILM_DURATIONS)
FILM_STEPS = ("synthesize", "transfer", "anneal", "characterize")


class FilmLabConfig(_Strict):
    """``lab: {kind: film}``: the shipped simulated film lab (:func:`sdl.lab.film_lab`)."""

    kind: Literal["film"]
    synth_stations: PositiveInt = Field(default=3, description="number of spin coaters")
    time_scale: float = Field(
        default=0.0, ge=0, description="real seconds per simulated second (0: no waiting)"
    )
    noise: float = Field(default=0.01, ge=0, description="sd of the spectrometer's noise")
    durations: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="step -> [mean, sd] simulated seconds"
    )
    faults: dict[str, FaultsConfig] = Field(
        default_factory=dict, description="station -> fault chances of its devices"
    )
    seed: int | None = Field(default=None, description="seed of durations, faults, noise")

    @property
    def name(self) -> str:
        return "film"

    @property
    def station_names(self) -> list[str]:
        synth = [f"synth-{i + 1}" for i in range(self.synth_stations)]
        return [*synth, "furnace", "robot", "characterizer"]

    @property
    def names(self) -> list[str]:
        return self.station_names

    @field_validator("durations")
    @classmethod
    def _known_steps(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        unknown = sorted(set(v) - set(FILM_STEPS))
        if unknown:
            raise ValueError(
                f"no step {unknown} in the film lab; its steps: {', '.join(FILM_STEPS)}"
            )
        for step, (mean, sd) in v.items():
            if mean < 0 or sd < 0:
                raise ValueError(f"{step}: mean and sd must be >= 0 seconds, got [{mean}, {sd}]")
        return v


def _lab_kind(v: Any) -> str:
    kind = v.get("kind", "stations") if isinstance(v, dict) else getattr(v, "kind", "stations")
    return {"film": "film_lab", "stations": "station_lab"}.get(kind, str(kind))


LabConfig = Annotated[
    Annotated[FilmLabConfig, Tag("film_lab")] | Annotated[StationLabConfig, Tag("station_lab")],
    Discriminator(
        _lab_kind,
        custom_error_type="lab_kind",
        custom_error_message=(
            "kind must be 'film' (the simulated film lab), or be left out for a lab of "
            "stations (name, stations, resources)"
        ),
    ),
]


class StepConfig(_Strict):
    """``workflow[i]``: one step of an experiment (:class:`sdl.lab.Step`)."""

    name: str
    station: str | list[str] = Field(description="a station name, a glob ('synth-*') or a list")
    uses: list[str | list[str]] = Field(
        default_factory=list, description="resources (or stations) it holds while it runs"
    )
    plan: str = Field(min_length=1, description="registered step plan or 'module:attribute'")
    options: dict[str, Any] = Field(default_factory=dict, description="the plan's keywords")

    _name = field_validator("name")(_lab_name)


class PlannerConfig(_Strict):
    name: str = "botorch"
    options: dict[str, Any] = Field(default_factory=dict)


class ProtocolConfig(_Strict):
    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class StoreOptionsConfig(_Strict):
    """How the store writer buffers and syncs (see docs/store.md)."""

    flush_interval: PositiveFloat = Field(
        default=1.0, description="seconds of array data (not in the log) that may wait in memory"
    )
    log_flush_interval: PositiveFloat = Field(
        default=5.0,
        description="seconds a document already in the write-ahead log may wait before "
        "it is written into Zarr (how far plain zarr may lag)",
    )
    flush_rows: PositiveInt = Field(default=10_000, description="events that may wait, per stream")
    flush_bytes: PositiveInt = Field(
        default=64 << 20, description="bytes that may wait, per stream"
    )
    sync_to_disk: bool = Field(
        default=True, description="wait for the disk at every run stop and pause"
    )


class QServerConfig(_Strict):
    """``qserver:``: a lab's stations on RE Managers the lab already runs (docs/distributed.md)."""

    managers: dict[str, list[str]] = Field(
        description="station -> one manager address per lane: tcp://HOST:PORT (0MQ control) "
        "or http(s)://HOST:PORT (a bluesky-httpserver in front of it)"
    )
    proxy: str = Field(description="HOST:PORT of the 0MQ proxy's output (the workers' documents)")
    timeout: PositiveFloat = Field(default=5.0, description="seconds a manager may take to answer")
    api_key_env: str = Field(
        default="SDL_QSERVER_API_KEY",
        description="environment variable holding the bluesky-httpservers' API key",
    )

    @field_validator("managers")
    @classmethod
    def _addresses(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for station, addresses in v.items():
            if not addresses:
                raise ValueError(f"{station}: no address; give one manager address per lane")
            for address in addresses:
                scheme, _, rest = str(address).partition("://")
                if scheme not in ("tcp", "http", "https") or ":" not in rest:
                    raise ValueError(
                        f"{station}: {address!r} is not a manager address; write "
                        f"tcp://HOST:PORT (0MQ control) or http://HOST:PORT (bluesky-httpserver)"
                    )
        return v

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(
                f"{v!r} is not HOST:PORT (the 0MQ proxy's output, e.g. 127.0.0.1:5578)"
            )
        return v


class CampaignConfig(_Strict):
    """A campaign as written in YAML. See ``docs/config.md`` for every field."""

    name: str = "campaign"
    budget: PositiveInt = 20
    batch_size: PositiveInt = 1
    seed: int = 0
    store: str | None = Field(default=None, description="path of the Zarr store")
    store_options: StoreOptionsConfig = Field(default_factory=StoreOptionsConfig)
    devices: dict[str, DeviceConfig] | None = Field(
        default=None, description="the devices (without a lab; a lab's are its stations')"
    )
    parameters: list[ParameterConfig] = Field(min_length=1)
    objectives: list[ObjectiveConfig] = Field(min_length=1)
    measurements: list[ObjectiveConfig] = Field(
        default_factory=list, description="other quantities to record (e.g. constrained ones)"
    )
    protocol: ProtocolConfig | None = Field(
        default=None, description="the experiment (required without a workflow)"
    )
    lab: LabConfig | None = Field(
        default=None, description="the lab: {kind: film, ...} or {name, stations, resources}"
    )
    workflow: list[StepConfig] | None = Field(
        default=None, description="the steps of one experiment on the lab's stations"
    )
    max_in_flight: PositiveInt | None = Field(
        default=None, description="lab: experiments in flight at once (default: capacity)"
    )
    lookahead: int = Field(
        default=1, ge=0, description="lab: experiments asked for ahead of a free station"
    )
    final_in_flight: PositiveInt | None = Field(
        default=None,
        description="lab: experiments in flight while the budget's final ones are asked for "
        "(default: half of max_in_flight, at least the first step's lanes)",
    )
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
    qserver: QServerConfig | None = Field(
        default=None, description="lab: its stations on existing bluesky-queueserver managers"
    )
    twin: dict[str, Any] | None = Field(
        default=None, description="lab: the digital twin's timing model (sdl twin; docs/twin.md)"
    )
    plan_ahead: bool = Field(default=False, description="propose the next point while measuring")
    retries: int = Field(default=0, ge=0, description="re-measure a failed point this many times")
    instrument_reruns: int = Field(
        default=1,
        ge=0,
        description="re-measure a point failed by its instrument this many times, for free",
    )
    status_timeout: float = Field(
        default=60.0, gt=0, description="seconds to wait for operations a protocol left running"
    )
    pause_after_failures: PositiveInt | None = Field(
        default=None, description="pause after this many failures in a row"
    )
    pause_on_disconnect: bool = True
    fixed: dict[str, float | int | str] | None = Field(
        default=None, description="parameters fixed for every batch"
    )
    approval: Literal["terminal", "dashboard"] | None = None
    operator: str | None = Field(default=None, description="name recorded with approvals")
    safe_state: bool = Field(
        default=True, description="devices' safe state on stop/abort/error/pause"
    )
    warm_start: str | None = Field(
        default=None, description="CSV file or sdl store with prior experiments"
    )

    @field_validator("store")
    @classmethod
    def _store_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("is empty; give the store's path, or remove the line for the default")
        return v

    @model_validator(mode="before")
    @classmethod
    def _film_defaults(cls, data: Any) -> Any:
        """The film lab brings its parameters and objective unless the file gives them."""
        lab = data.get("lab") if isinstance(data, dict) else None
        if not (isinstance(lab, dict) and lab.get("kind") == "film"):
            return data
        parameters, objectives = film_defaults()
        data = dict(data)
        data.setdefault("parameters", parameters)
        data.setdefault("objectives", objectives)
        return data

    @model_validator(mode="after")
    def _lab_rules(self) -> CampaignConfig:
        if self.lab is None:
            return self._no_lab_rules()
        if self.devices is not None:
            raise ValueError(
                "devices: with a lab the devices belong to its stations and resources "
                "(lab.stations[i].devices); move them there and remove devices:"
            )
        if isinstance(self.lab, FilmLabConfig):
            self._film_rules()
        else:
            self._station_rules(self.lab)
        if self.workflow is not None:
            self._workflow_rules(self.lab, self.workflow)
        if self.qserver is not None:
            names = self.lab.station_names
            for station in self.qserver.managers:
                if station not in names:
                    raise ValueError(
                        f"qserver.managers.{station}: no station {station!r} in the lab; its "
                        f"stations: {', '.join(names)}"
                    )
        return self

    def _no_lab_rules(self) -> CampaignConfig:
        if self.workflow is not None:
            raise ValueError(
                "workflow: a workflow runs on a lab's stations, and there is no lab: add a "
                "lab: section (or remove workflow: and give a protocol:)"
            )
        for name, default in (
            ("max_in_flight", None),
            ("lookahead", 1),
            ("final_in_flight", None),
            ("qserver", None),
        ):
            if getattr(self, name) != default:
                raise ValueError(
                    f"{name}: applies to a lab campaign only; add a lab: section or remove it"
                )
        if self.protocol is None:
            raise ValueError(
                "protocol: missing: this field is required; add it (or a lab: and its workflow:)"
            )
        if self.devices is None:
            raise ValueError("devices: missing: this field is required; add it (or a lab:)")
        if not self.devices:
            raise ValueError("devices: is empty; list the campaign's devices (or give a lab:)")
        return self

    def _film_rules(self) -> None:
        assert isinstance(self.lab, FilmLabConfig)
        names = self.lab.station_names
        for station in self.lab.faults:
            if station not in names:
                raise ValueError(
                    f"lab.faults.{station}: no station {station!r} in the film lab "
                    f"(synth_stations: {self.lab.synth_stations}); its stations: "
                    f"{', '.join(names)}"
                )
        if self.protocol is not None:
            raise ValueError(
                "protocol: the film lab runs its own workflow (synthesize, transfer, anneal, "
                "unload, characterize); remove protocol:, or give a workflow: of its stations"
            )
        film, _ = film_defaults()
        expected = [p["name"] for p in film]
        given = [p.name for p in self.parameters]
        if sorted(given) != sorted(expected):
            raise ValueError(
                f"parameters: the film lab's step plans read the parameters "
                f"{', '.join(expected)}; got {', '.join(given)}. Remove parameters: for the "
                f"film lab's own, or give exactly these (with ranges of your choice)"
            )

    def _station_rules(self, lab: StationLabConfig) -> None:
        seen: dict[str, str] = {}
        items = [("stations", i, s) for i, s in enumerate(lab.stations)]
        items += [("resources", i, r) for i, r in enumerate(lab.resources)]
        for section, i, item in items:
            where = f"lab.{section}[{i}]"
            if item.name in seen:
                raise ValueError(
                    f"{where}.name: {item.name!r} is already the name of {seen[item.name]}; "
                    f"give each station and resource a unique name"
                )
            seen[item.name] = where
        owners: dict[str, str] = {}
        for section, i, item in items:
            for role, dev in item.devices.items():
                where = f"lab.{section}[{i}].devices.{role}"
                name = dev.name or role
                if name in owners:
                    raise ValueError(
                        f"{where}: the device name {name!r} is taken by {owners[name]}; device "
                        f"names are unique in a lab (they start its data keys): give one of "
                        f"them a name: (e.g. name: {item.name.replace('-', '_')}_{role})"
                    )
                owners[name] = where
        if self.workflow is None:
            if self.protocol is None:
                raise ValueError(
                    "workflow: missing: a lab campaign needs a workflow: (its steps); a "
                    "one-station lab may give a protocol: instead"
                )
            if len(lab.stations) != 1:
                raise ValueError(
                    f"protocol: runs as a one-step workflow on a one-station lab only, and lab "
                    f"{lab.name!r} has {len(lab.stations)} stations; give a workflow: of steps "
                    f"instead of protocol:"
                )
        elif self.protocol is not None:
            raise ValueError(
                "protocol: a lab campaign runs a workflow: or a protocol:, not both; remove "
                "one (a protocol: runs as a one-step workflow on a one-station lab)"
            )

    @staticmethod
    def _workflow_rules(lab: Any, workflow: list[StepConfig]) -> None:
        if not workflow:
            raise ValueError("workflow: is empty; give at least one step")
        seen: dict[str, int] = {}
        for i, step in enumerate(workflow):
            if step.name in seen:
                raise ValueError(
                    f"workflow[{i}].name: {step.name!r} is already the name of "
                    f"workflow[{seen[step.name]}]; give each step a unique name"
                )
            seen[step.name] = i
            if not _select(step.station, lab.station_names):
                raise ValueError(
                    f"workflow[{i}].station: {_text(step.station)!r} matches no station of lab "
                    f"{lab.name!r}; its stations: {', '.join(lab.station_names)}. Fix the name "
                    f"or add the station to the lab"
                )
            for j, pattern in enumerate(step.uses):
                if not _select(pattern, lab.names):
                    raise ValueError(
                        f"workflow[{i}].uses[{j}]: {_text(pattern)!r} matches no resource or "
                        f"station of lab {lab.name!r}; it has: {', '.join(lab.names)}. Fix the "
                        f"name or add it under lab.resources"
                    )

    @model_validator(mode="after")
    def _unique_names(self) -> CampaignConfig:
        for what, names in (
            ("parameters", [p.name for p in self.parameters]),
            ("objectives", [o.name for o in self.objectives + self.measurements]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate names {dupes}; give each a unique name")
        unknown = sorted(set(self.fixed or {}) - {p.name for p in self.parameters})
        if unknown:
            raise ValueError(f"fixed: {unknown} are not parameters; fix only declared parameters")
        spaces = {p.name: p for p in self.parameters}
        for name, value in (self.fixed or {}).items():
            problem = _outside(spaces[name], value)
            if problem:
                raise ValueError(f"fixed.{name}: {value!r} {problem}")
        return self


def _outside(p: Any, value: Any) -> str | None:
    """Why ``value`` lies outside parameter ``p``'s space, or None when it is inside."""
    if isinstance(p, CategoricalConfig):
        if value in p.choices:
            return None
        return f"is not one of the choices {', '.join(map(repr, p.choices))}; fix one of them"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"is not a number; fix {p.name} at a number in [{p.low}, {p.high}]"
    if isinstance(p, IntegerConfig) and value != int(value):
        return f"is not a whole number; {p.name} is an integer parameter"
    if not p.low <= value <= p.high:
        return f"is outside the parameter's range [{p.low}, {p.high}]; fix it inside the range"
    return None


def _text(pattern: str | list[str]) -> str:
    return pattern if isinstance(pattern, str) else ",".join(pattern)


def _select(pattern: str | list[str], names: list[str]) -> list[str]:
    """The names a workflow's station pattern selects (as :func:`sdl.lab._model.resolve`)."""
    if isinstance(pattern, str):
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return [n for n in names if n in pattern]


def film_defaults() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The film lab's parameters and objectives, as a campaign file writes them."""
    from sdl.lab import film_lab

    _, _, space, objectives = film_lab(synth_stations=1)
    parameters = [{"name": p.name, "type": "real", "low": p.low, "high": p.high} for p in space]
    return parameters, [{"name": o.name, "goal": o.goal, "key": o.key} for o in objectives]
