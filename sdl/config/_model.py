"""The campaign configuration as typed, validated data (YAML → :class:`CampaignConfig`)."""

from __future__ import annotations

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
)

__all__ = [
    "CampaignConfig",
    "DeviceConfig",
    "ObjectiveConfig",
    "ParameterConfig",
    "PlannerConfig",
    "ProtocolConfig",
    "StoreOptionsConfig",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ParameterBase(_Strict):
    name: str = Field(min_length=1)
    device: str | None = Field(
        default=None, description="name of the device this parameter sets (protocol-dependent)"
    )


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

    @model_validator(mode="after")
    def _one_source(self) -> ObjectiveConfig:
        if self.key is not None and self.function is not None:
            raise ValueError("give either key or function, not both")
        if self.function is not None and ":" not in self.function:
            raise ValueError(f"function must be 'module:attribute', got {self.function!r}")
        return self


class DeviceConfig(_Strict):
    type: str = Field(min_length=1, description="registered device type or 'module:attribute'")
    options: dict[str, Any] = Field(default_factory=dict)


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
        return self
