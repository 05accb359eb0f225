"""The twin's timing model: how long steps take, how stations fail, when the lab is
attended, how long the planner thinks. Read from a campaign's ``twin:`` section or a
timing file (``sdl twin calibrate`` writes one); see ``docs/twin.md``.

Every duration is in seconds of the lab being modelled.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    field_validator,
    model_validator,
)

__all__ = ["Distribution", "PlannerTiming", "Shifts", "StationTiming", "TwinTiming", "WEEKDAYS"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A duration's distribution, in seconds.

    ``normal`` (clipped at 0), ``lognormal`` (by its mean and sd, not its log's),
    ``gamma`` (by its mean and sd), ``exponential`` (mean), ``uniform`` (``low``, ``high``)
    or ``fixed`` (mean). In YAML also ``[mean, sd]`` (normal) or a number (fixed).
    """

    dist: Literal["normal", "lognormal", "gamma", "exponential", "uniform", "fixed"] = "normal"
    mean: float = 0.0
    sd: float = 0.0
    low: float | None = None
    high: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)):
            return {"dist": "fixed", "mean": v}
        if isinstance(v, (list, tuple)):
            if len(v) != 2:
                raise ValueError(f"give [mean, sd] in seconds, got {list(v)!r}")
            return {"dist": "normal", "mean": v[0], "sd": v[1]}
        return v

    @model_validator(mode="after")
    def _check(self) -> Distribution:
        if self.dist == "uniform":
            if self.low is None or self.high is None:
                raise ValueError("uniform: give low and high (seconds)")
            if self.low < 0 or self.high < self.low:
                raise ValueError(
                    f"uniform: need 0 <= low <= high (a duration cannot be negative), "
                    f"got low={self.low}, high={self.high}"
                )
            return self
        if not math.isfinite(self.mean) or self.mean < 0:
            raise ValueError(
                f"mean must be a finite number of seconds >= 0 (a duration cannot be "
                f"negative), got {self.mean}"
            )
        if not math.isfinite(self.sd) or self.sd < 0:
            raise ValueError(f"sd must be a finite number >= 0, got {self.sd}")
        if self.dist in ("lognormal", "gamma") and self.mean == 0 and self.sd > 0:
            raise ValueError(f"{self.dist}: a mean of 0 needs sd 0")
        return self

    @property
    def expected(self) -> float:
        """The mean duration (what a normal clipped at 0 gives is close to ``mean``)."""
        if self.dist == "uniform":
            return 0.5 * (float(self.low) + float(self.high))
        return self.mean

    def scaled(self, factor: float) -> Distribution:
        """The same shape, every duration multiplied by ``factor``."""
        data = self.model_dump()
        for key in ("mean", "sd", "low", "high"):
            if data[key] is not None:
                data[key] *= factor
        return Distribution.model_validate(data)

    def sample(self, rng: np.random.Generator) -> float:
        """One duration, >= 0."""
        m, s = self.mean, self.sd
        if self.dist == "fixed" or (s == 0 and self.dist not in ("uniform", "exponential")):
            return m
        if self.dist == "normal":
            return max(0.0, rng.normal(m, s))
        if self.dist == "lognormal":
            sigma2 = math.log1p((s / m) ** 2)
            return float(rng.lognormal(math.log(m) - 0.5 * sigma2, math.sqrt(sigma2)))
        if self.dist == "gamma":
            shape = (m / s) ** 2
            return float(rng.gamma(shape, m / shape))
        if self.dist == "exponential":
            return float(rng.exponential(m)) if m > 0 else 0.0
        return float(rng.uniform(self.low, self.high))


class StationTiming(_Strict):
    """One station's (or resource's) timing.

    Attributes:
        speed: its steps take ``1 / speed`` of their declared duration (``2`` or ``"2x"``:
            twice as fast).
        steps: step name -> this station's own duration of that step (overrides the
            lab-wide ``steps``).
        mtbf: mean time between breakdowns, seconds of calendar time (None: it never
            breaks down). A breakdown fails the step it runs and takes it out of service.
        mttr: mean time to repair, seconds of attended time (exponential; repairs
            progress only during the lab's shifts).
        failure_probability: chance that a step on it fails (an instrument fault); after
            ``max_failures`` in a row it is taken out of service and repaired (``mttr``).
    """

    speed: float = Field(default=1.0, gt=0)
    steps: dict[str, Distribution] = Field(default_factory=dict)
    mtbf: float | None = Field(default=None, gt=0)
    mttr: NonNegativeFloat = 3600.0
    failure_probability: float = Field(default=0.0, ge=0, le=1)

    @field_validator("speed", mode="before")
    @classmethod
    def _times(cls, v: Any) -> Any:
        return parse_factor(v)


def parse_factor(v: Any) -> Any:
    """``"2x"`` -> 2.0; anything else unchanged (validated by the field)."""
    if isinstance(v, str) and v.strip().lower().endswith("x"):
        try:
            return float(v.strip()[:-1])
        except ValueError:
            return v
    return v


class Shifts(_Strict):
    """When people are in the lab (repairs happen only then).

    Attributes:
        start: hour the shift starts (0-24).
        end: hour it ends (after ``start``).
        days: weekdays with a shift (``mon`` .. ``sun``).
    """

    start: float = Field(default=0.0, ge=0, le=24)
    end: float = Field(default=24.0, ge=0, le=24)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: list(WEEKDAYS)
    )

    @model_validator(mode="after")
    def _order(self) -> Shifts:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    @property
    def always(self) -> bool:
        return self.start == 0 and self.end == 24 and len(set(self.days)) == 7

    def next_change(self, t: float) -> tuple[bool, float]:
        """At ``t`` (seconds since Monday 00:00): whether the lab is attended, and the
        time of the next change (inf: never changes)."""
        if self.always:
            return True, math.inf
        if not self.days:
            return False, math.inf
        days = {WEEKDAYS.index(d) for d in self.days}
        day = int(t // 86400)
        for k in range(0, 9):
            d = day + k
            on = d % 7 in days
            a, b = d * 86400 + self.start * 3600, d * 86400 + self.end * 3600
            if on and a <= t < b:
                return True, b
            if on and t < a:
                return False, a
        return False, math.inf


class PlannerTiming(_Strict):
    """How long an ask takes: ``ask_seconds + per_observation * results told``, spread
    by ``spread``.

    Attributes:
        ask_seconds: seconds of one ask.
        per_observation: seconds more per result the planner holds.
        spread: coefficient of variation of an ask's time around that line (0: every ask
            takes exactly it; asks are then drawn from a lognormal with this spread).
        batch: points an ask proposes at least (the rest wait, asked for ahead).
        real: run the campaign's own planner in the twin and charge each ask's measured
            wall time to the virtual clock (slow for long forecasts).
    """

    ask_seconds: NonNegativeFloat = 0.0
    per_observation: NonNegativeFloat = 0.0
    spread: NonNegativeFloat = 0.0
    batch: int = Field(default=1, ge=1)
    real: bool = False

    def seconds(self, observations: int, rng: np.random.Generator | None = None) -> float:
        mean = self.ask_seconds + self.per_observation * observations
        if self.spread == 0 or rng is None or mean == 0:
            return mean
        return Distribution(dist="lognormal", mean=mean, sd=self.spread * mean).sample(rng)


class TwinTiming(_Strict):
    """The ``twin:`` section: everything the twin needs besides the lab and workflow.

    Attributes:
        steps: step name -> its duration (any station; see ``stations.*.steps``).
        stations: station or resource name -> its :class:`StationTiming`.
        shifts: when the lab is attended.
        planner: the planner's time.
        handoff: seconds between a step's end and its next step being queued (the
            coordinator's own latency).
        days: days to forecast (``--days``).
        replications: independent runs (``--replications``).
    """

    steps: dict[str, Distribution] = Field(default_factory=dict)
    stations: dict[str, StationTiming] = Field(default_factory=dict)
    shifts: Shifts = Field(default_factory=Shifts)
    planner: PlannerTiming = Field(default_factory=PlannerTiming)
    handoff: NonNegativeFloat = 0.0
    days: float = Field(default=7.0, gt=0)
    replications: int = Field(default=10, ge=1)
