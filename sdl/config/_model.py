"""The campaign configuration as typed, validated data (YAML → :class:`CampaignConfig`)."""

from __future__ import annotations

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
    low: float
    high: float
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


class PlannerConfig(_Strict):
    name: str = "botorch"
    options: dict[str, Any] = Field(default_factory=dict)


class ProtocolConfig(_Strict):
    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class StoreOptionsConfig(_Strict):
    """How the store writer buffers and syncs (see docs/store.md)."""

    flush_interval: PositiveFloat = Field(
        default=1.0, description="seconds of event data that may wait in memory"
    )
    flush_rows: PositiveInt = Field(default=10_000, description="events that may wait, per stream")
    flush_bytes: PositiveInt = Field(
        default=64 << 20, description="bytes that may wait, per stream"
    )
    sync_to_disk: bool = Field(
        default=True, description="wait for the disk at every run stop and pause"
    )


class CampaignConfig(_Strict):
    """A campaign as written in YAML. See ``docs/config.md`` for every field."""

    name: str = "campaign"
    budget: PositiveInt = 20
    batch_size: PositiveInt = 1
    seed: int = 0
    store: str | None = Field(default=None, description="path of the Zarr store")
    store_options: StoreOptionsConfig = Field(default_factory=StoreOptionsConfig)
    devices: dict[str, DeviceConfig] = Field(min_length=1)
    parameters: list[ParameterConfig] = Field(min_length=1)
    objectives: list[ObjectiveConfig] = Field(min_length=1)
    measurements: list[ObjectiveConfig] = Field(
        default_factory=list, description="other quantities to record (e.g. constrained ones)"
    )
    protocol: ProtocolConfig
    planner: PlannerConfig = Field(default_factory=PlannerConfig)
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
