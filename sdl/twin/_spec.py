"""What the twin simulates: a lab's structure and timing, read from a campaign or lab file.

No device is built (a twin of an EPICS lab must not connect to it): the stations,
resources and workflow come from the configuration; the lab's :class:`~sdl.lab.Lab` and
:class:`~sdl.lab.Workflow` are made with empty devices and placeholder plans, so the
twin checks the workflow (``Lab.check``) and schedules leases (``LeaseBook``) with the
very code the campaign uses.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sdl.errors import ConfigError

from ._timing import Distribution, TwinTiming

__all__ = ["TwinSpec", "load_spec"]


def _no_plan(*args: Any, **kwargs: Any) -> None:  # the twin never runs a plan
    return None


@dataclass
class StepSpec:
    name: str
    station: str | tuple[str, ...]
    uses: tuple[str | tuple[str, ...], ...] = ()


@dataclass
class TwinSpec:
    """A lab as the twin sees it.

    Attributes:
        name: the lab's name.
        stations: station -> capacity (in the lab's order).
        max_failures: station -> instrument failures in a row that take it out of service.
        resources: resource -> capacity.
        steps: the workflow.
        defaults: step name -> duration the lab declares itself (the film lab's), seconds.
        fault_defaults: station -> failure probability the lab declares (the film lab's).
        timing: the ``twin:`` section (with a timing file merged in).
        max_in_flight: experiments in flight at once (None: the stations' capacity).
        lookahead: experiments asked for ahead of a free first station.
        final_in_flight: experiments in flight while the budget's final ones are asked
            for (None: half of ``max_in_flight`` or of the stations' capacity, and at
            least the first step's lanes).
        budget: experiments to run (None: as many as the days allow).
        instrument_reruns: times the point of an experiment failed by its station is
            measured again, free (the campaign's ``instrument_reruns``).
        seed: the campaign's seed.
        config: the campaign's configuration (for ``planner.real``), if any.
        film: the film lab's options (``synth_stations``), when it is one.
    """

    name: str
    stations: dict[str, int]
    max_failures: dict[str, int]
    resources: dict[str, int]
    steps: list[StepSpec]
    defaults: dict[str, Distribution] = field(default_factory=dict)
    fault_defaults: dict[str, float] = field(default_factory=dict)
    timing: TwinTiming = field(default_factory=TwinTiming)
    max_in_flight: int | None = None
    lookahead: int = 1
    final_in_flight: int | None = None
    budget: int | None = None
    instrument_reruns: int = 1
    seed: int = 0
    config: Any = None
    film: dict[str, Any] | None = None

    def lab(self):
        from sdl.lab import Lab, Resource, Station

        return Lab(
            [Station(n, {}, c, self.max_failures.get(n, 3)) for n, c in self.stations.items()],
            [Resource(n, c) for n, c in self.resources.items()],
            name=self.name,
        )

    def workflow(self):
        from sdl.lab import Step, Workflow

        return Workflow([Step(s.name, _no_plan, s.station, s.uses) for s in self.steps])

    def check(self) -> list:
        """The resolved pools of every step (``Lab.check``), and every step has a duration.

        Raises:
            ConfigError: a step no station can run, a resource that does not exist, a
                step without a duration; naming the field.
        """
        try:
            pools = self.lab().check(self.workflow())
        except ValueError as err:
            raise ConfigError(str(err)) from None
        names = {*self.stations, *self.resources}
        for name in self.timing.stations:
            if name not in names:
                raise ConfigError(
                    f"twin.stations.{name}: no station or resource {name!r} in lab "
                    f"{self.name!r}; it has {', '.join([*self.stations, *self.resources])}"
                )
        steps = {s.name for s in self.steps}
        for name in self.timing.steps:
            if name not in steps:
                raise ConfigError(
                    f"twin.steps.{name}: no step {name!r} in the workflow; its steps are "
                    f"{', '.join(s.name for s in self.steps)}"
                )
        for station, st in self.timing.stations.items():
            for name in st.steps:
                if name not in steps:
                    raise ConfigError(
                        f"twin.stations.{station}.steps.{name}: no step {name!r} in the "
                        f"workflow; its steps are {', '.join(s.name for s in self.steps)}"
                    )
        for (stations, _), s in zip(pools, self.steps):
            if s.name in self.timing.steps or s.name in self.defaults:
                continue
            if all(s.name in self.timing.stations.get(n, _EMPTY).steps for n in stations):
                continue
            raise ConfigError(
                f"twin.steps.{s.name}: missing: the twin needs the duration of step "
                f"{s.name!r}; give it (twin: {{steps: {{{s.name}: [mean, sd]}}}}, seconds) or "
                f"calibrate one from a campaign's store (sdl twin calibrate STORE -o timing.yaml)"
            )
        return pools

    def duration(self, step: str, station: str) -> Distribution:
        """The duration of ``step`` on ``station``: its own, the lab-wide one, or the lab's
        default; divided by the station's speed."""
        st = self.timing.stations.get(station)
        if st is not None and step in st.steps:
            d = st.steps[step]
        elif step in self.timing.steps:
            d = self.timing.steps[step]
        else:
            d = self.defaults[step]
        speed = st.speed if st is not None else 1.0
        return d if speed == 1.0 else d.scaled(1.0 / speed)

    def failure_probability(self, station: str) -> float:
        st = self.timing.stations.get(station)
        if st is not None and "failure_probability" in st.model_fields_set:
            return st.failure_probability
        return self.fault_defaults.get(station, 0.0)

    def copy(self) -> TwinSpec:
        return copy.deepcopy(self)


_EMPTY = type("_Empty", (), {"steps": {}})()


def validate_timing(data: Mapping[str, Any] | None, where: str = "twin") -> TwinTiming:
    """The ``twin:`` section as a :class:`TwinTiming`; errors name ``twin.<field>``."""

    try:
        return TwinTiming.model_validate(dict(data or {}))
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            name = ".".join(["twin", *(str(p) for p in loc)]) if loc else "twin"
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown field; see docs/twin.md for the twin: section's fields"
            problems.append(f"  {name}: {msg}")
        raise ConfigError(
            f"{where}: the twin's timing model is invalid:\n" + "\n".join(problems)
        ) from None


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _lab_file(data: dict[str, Any]) -> bool:
    return "lab" not in data and ("stations" in data or data.get("kind") == "film")


def load_spec(
    source: str | Path | Mapping[str, Any], timing_file: str | Path | None = None
) -> TwinSpec:
    """The twin's view of a campaign file (with ``lab:``) or a lab file.

    A lab file holds a lab's fields (``kind: film`` or ``stations``, ``resources``), and may
    hold ``workflow:`` and ``twin:``. ``timing_file``: a timing model (``sdl twin
    calibrate`` output) merged over the file's ``twin:`` section.

    Raises:
        ConfigError: the file is not a lab campaign, or a field is invalid (named).
    """
    from sdl.config import load_config
    from sdl.config._yaml import read_campaign_file

    if isinstance(source, Mapping):
        data, where = dict(source), "campaign config"
    else:
        where = str(source)
        data = read_campaign_file(Path(source))
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of campaign or lab fields")
    if _lab_file(data):  # a lab file: its workflow and twin sections beside its fields
        lab = {k: v for k, v in data.items() if k not in ("workflow", "twin")}
        data = {
            "name": lab.get("name", "lab"),
            "lab": lab,
            **{k: data[k] for k in ("workflow", "twin") if k in data},
        }
    if data.get("lab") is None:
        raise ConfigError(
            f"{where}: lab: missing: the twin simulates a lab; give a campaign file with a "
            f"lab: section and its workflow:, or a lab file (stations, resources, workflow)"
        )
    twin = dict(data.get("twin") or {})
    if timing_file is not None:
        extra = read_campaign_file(Path(timing_file))
        if not isinstance(extra, dict):
            raise ConfigError(f"{timing_file}: expected a mapping of twin fields")
        extra = extra.get("twin", extra) if set(extra) == {"twin"} else extra
        twin = _merge(twin, extra)
    data["twin"] = twin
    base = Path(where).parent if not isinstance(source, Mapping) else None
    if base is not None and isinstance(data.get("lab"), str):
        from sdl.config._lab import read_lab_file

        data["lab"] = read_lab_file(data["lab"], base)
    if isinstance(data.get("lab"), dict) and "stations" in data["lab"] and "parameters" not in data:
        # the twin needs no parameters or objectives; a lab file has none
        data.setdefault("parameters", [{"name": "x", "low": 0.0, "high": 1.0}])
        data.setdefault("objectives", [{"name": "y"}])
    config = load_config(data)
    timing = validate_timing(config.twin, where)
    return spec_from_config(config, timing)


def spec_from_config(config: Any, timing: TwinTiming) -> TwinSpec:
    """A :class:`TwinSpec` of a validated :class:`~sdl.config.CampaignConfig` with a lab."""
    from sdl.config._model import FilmLabConfig

    lab = config.lab
    common = {
        "timing": timing,
        "max_in_flight": config.max_in_flight,
        "lookahead": config.lookahead,
        "final_in_flight": config.final_in_flight,
        "instrument_reruns": config.instrument_reruns,
        "seed": config.seed,
        "config": config,
    }
    if isinstance(lab, FilmLabConfig):
        spec = film_spec(
            lab.synth_stations,
            durations=lab.durations,
            time_scale=lab.time_scale,
            faults={n: f.exception + f.timeout + f.nan for n, f in lab.faults.items()},
            **common,
        )
        if config.workflow is None:
            return spec
        spec.film = None
        spec.steps = _steps(config.workflow)
        return spec
    return TwinSpec(
        name=lab.name,
        stations={s.name: s.capacity for s in lab.stations},
        max_failures={s.name: s.max_failures for s in lab.stations},
        resources={r.name: r.capacity for r in lab.resources},
        steps=_steps(config.workflow)
        if config.workflow
        else [StepSpec("measure", lab.stations[0].name)],
        **common,
    )


def _steps(workflow: list[Any]) -> list[StepSpec]:
    return [
        StepSpec(
            w.name,
            w.station if isinstance(w.station, str) else tuple(w.station),
            tuple(u if isinstance(u, str) else tuple(u) for u in w.uses),
        )
        for w in workflow
    ]


def film_spec(
    synth_stations: int,
    *,
    durations: Mapping[str, tuple[float, float]] | None = None,
    time_scale: float = 0.0,
    faults: Mapping[str, float] | None = None,
    **kw: Any,
) -> TwinSpec:
    """The film lab (:func:`sdl.lab.film_lab`) as a twin: its durations are the lab's
    simulated seconds times ``time_scale`` (what a run of it takes), or simulated seconds
    when ``time_scale`` is 0."""
    from sdl.lab import FILM_DURATIONS

    scale = time_scale if time_scale > 0 else 1.0
    merged = {**FILM_DURATIONS, **dict(durations or {})}
    defaults = {
        step: Distribution(dist="normal", mean=m * scale, sd=s * scale)
        for step, (m, s) in merged.items()
    }
    synth = [f"synth-{i + 1}" for i in range(synth_stations)]
    stations = {**dict.fromkeys(synth, 1), "furnace": 2, "robot": 1, "characterizer": 1}
    steps = [
        StepSpec("synthesize", "synth-*"),
        StepSpec("transfer", "robot"),
        StepSpec("anneal", "furnace"),
        StepSpec("unload", "robot"),
        StepSpec("characterize", "characterizer"),
    ]
    defaults["unload"] = defaults["transfer"]
    return TwinSpec(
        name="film",
        stations=stations,
        max_failures=dict.fromkeys(stations, 3),
        resources={},
        steps=steps,
        defaults=defaults,
        fault_defaults=dict(faults or {}),
        film={"synth_stations": synth_stations, "time_scale": time_scale},
        **kw,
    )
