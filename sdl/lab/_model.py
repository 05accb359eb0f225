"""What a laboratory is made of: stations, shared resources, and the workflow of an experiment.

A :class:`Lab` has named :class:`Station` objects (each runs step plans, ``capacity`` of
them at once) and named :class:`Resource` objects (a robot arm or a plate reader several
stations use; leased, never run on). A :class:`Workflow` is the ordered list of
:class:`Step` objects of one experiment: each runs its plan on one station taken from a
pool (a name, a glob such as ``"synth-*"``, or a list) while it also holds the resources
it ``uses``. See ``docs/lab.md`` for the scheduling policy.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._leases import LeaseBook, LeaseRequest

__all__ = ["Lab", "Resource", "Station", "Step", "StepContext", "Workflow"]


def _check_name(kind: str, name: Any) -> None:
    if (
        not isinstance(name, str)
        or not name
        or any(c in name for c in "*?[],")
        or name.strip() != name
    ):
        raise ValueError(
            f"{kind} name {name!r} must be a non-empty string without spaces at its ends "
            f"or the characters * ? [ ] , (they select stations in a workflow)"
        )


def _check_capacity(kind: str, name: str, capacity: Any) -> None:
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ValueError(
            f"{kind} {name!r}: capacity must be an integer >= 1 (samples it holds at "
            f"once), got {capacity!r}"
        )


@dataclass(frozen=True)
class Station:
    """A place where step plans run: one RunEngine per sample it holds at once.

    Attributes:
        name: unique in the lab (``synth-1``).
        devices: the station's ophyd devices by name (given to its steps' plans).
        capacity: samples it holds (steps it runs) at once; each has its own RunEngine.
        max_failures: instrument failures in a row (timeouts, device faults, lost
            connections) after which the station is taken out of service; a lost
            connection takes it out at once.
    """

    name: str
    devices: Mapping[str, Any] = field(default_factory=dict)
    capacity: int = 1
    max_failures: int = 3

    def __post_init__(self) -> None:
        _check_name("station", self.name)
        _check_capacity("station", self.name, self.capacity)
        if (
            isinstance(self.max_failures, bool)
            or not isinstance(self.max_failures, int)
            or self.max_failures < 1
        ):
            raise ValueError(
                f"station {self.name!r}: max_failures must be an integer >= 1, got {self.max_failures!r}"
            )
        if not isinstance(self.devices, Mapping):
            object.__setattr__(self, "devices", {d.name: d for d in self.devices})


@dataclass(frozen=True)
class Resource:
    """Something steps lease besides their station (a robot arm, a shared reader).

    Attributes:
        name: unique in the lab, among stations too.
        capacity: steps that may hold it at once.
        devices: its ophyd devices by name (given to the plans of steps that lease it).
    """

    name: str
    capacity: int = 1
    devices: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("resource", self.name)
        _check_capacity("resource", self.name, self.capacity)
        if not isinstance(self.devices, Mapping):
            object.__setattr__(self, "devices", {d.name: d for d in self.devices})


@dataclass(frozen=True)
class StepContext:
    """What a step's plan is told about where it runs.

    Attributes:
        experiment_id: the experiment the step belongs to.
        step: the step's name.
        station: the station it runs on.
        lane: which of the station's places (0 .. capacity - 1).
        devices: the station's devices and those of the resources it leased, by name.
        resources: the resources it leased (names).
        history: step name -> station of the steps of this experiment so far (where
            the sample is: a transfer plan picks it up there).
    """

    experiment_id: int
    step: str
    station: str
    lane: int
    devices: Mapping[str, Any]
    resources: tuple[str, ...] = ()
    history: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One step of an experiment's workflow.

    Attributes:
        name: unique in the workflow (``synthesize``).
        plan: ``plan(point, context, md=...) -> bluesky plan``; ``context`` is a
            :class:`StepContext`, ``md`` the metadata for the runs it opens.
        station: where it runs: a station name, a glob (``"synth-*"``: any free one) or
            a list of names.
        uses: resources (or stations) it holds while it runs, each a name, a glob or a
            list (any one of them), leased together with its station: all or none.
    """

    name: str
    plan: Callable[..., Any]
    station: str | Sequence[str]
    uses: Sequence[str | Sequence[str]] = ()

    def __post_init__(self) -> None:
        _check_name("step", self.name)
        if not callable(self.plan):
            raise TypeError(f"step {self.name!r}: plan must be callable, got {self.plan!r}")
        if isinstance(self.uses, str):
            object.__setattr__(self, "uses", (self.uses,))
        else:
            object.__setattr__(self, "uses", tuple(self.uses))


def _pattern_text(pattern: str | Sequence[str]) -> str:
    return pattern if isinstance(pattern, str) else ",".join(pattern)


def resolve(pattern: str | Sequence[str], names: Iterable[str]) -> tuple[str, ...]:
    """The names a station pattern selects (a name, a glob, or a list of names), in order."""
    names = list(names)
    if isinstance(pattern, str):
        return tuple(n for n in names if fnmatch.fnmatchcase(n, pattern))
    wanted = list(pattern)
    return tuple(n for n in names if n in wanted)


@dataclass(frozen=True)
class Workflow:
    """The ordered steps of one experiment; the last step's readings (with the earlier
    ones') give its objectives."""

    steps: tuple[Step, ...]

    def __init__(self, steps: Iterable[Step]):
        steps = tuple(steps)
        if not steps:
            raise ValueError("a workflow needs at least one step")
        names = [s.name for s in steps]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"workflow: step names must be unique; repeated: {dup}")
        object.__setattr__(self, "steps", steps)

    @classmethod
    def single(cls, protocol: Callable[..., Any], station: str = "station") -> Workflow:
        """Today's one-step campaign: ``protocol(point, md=...)`` on ``station``."""

        def plan(point, context, md=None):
            return protocol(point, md=md)

        plan.__qualname__ = getattr(protocol, "__qualname__", "protocol")
        plan.protocol = protocol  # type: ignore[attr-defined]
        return cls([Step("measure", plan, station)])

    def describe(self) -> list[dict[str, Any]]:
        """The workflow as JSON-able metadata."""
        out = []
        for s in self.steps:
            fn = getattr(s.plan, "protocol", s.plan)
            inner = getattr(fn, "func", fn)
            out.append(
                {
                    "name": s.name,
                    "station": _pattern_text(s.station),
                    "uses": [_pattern_text(u) for u in s.uses],
                    "plan": f"{getattr(inner, '__module__', '?')}:"
                    f"{getattr(inner, '__qualname__', type(inner).__qualname__)}",
                }
            )
        return out


class Lab:
    """Stations and shared resources.

    Args:
        stations: the stations (unique names).
        resources: the shared resources (names unique among stations and resources).
        name: a name for people.

    Raises:
        ValueError: a repeated name, a capacity below 1.
    """

    def __init__(
        self,
        stations: Iterable[Station],
        resources: Iterable[Resource] = (),
        *,
        name: str = "lab",
    ):
        self.name = name
        self.stations: dict[str, Station] = {}
        self.resources: dict[str, Resource] = {}
        for s in stations:
            if not isinstance(s, Station):
                raise TypeError(f"lab {name!r}: stations must be Station objects, got {s!r}")
            if s.name in self.stations:
                raise ValueError(f"lab {name!r}: station name {s.name!r} is used twice")
            self.stations[s.name] = s
        for r in resources:
            if not isinstance(r, Resource):
                raise TypeError(f"lab {name!r}: resources must be Resource objects, got {r!r}")
            if r.name in self.stations or r.name in self.resources:
                raise ValueError(f"lab {name!r}: resource name {r.name!r} is used twice")
            self.resources[r.name] = r
        if not self.stations:
            raise ValueError(f"lab {name!r} needs at least one station")

    @classmethod
    def single(cls, devices: Mapping[str, Any] | Iterable[Any] = (), name: str = "station") -> Lab:
        """A one-station lab (today's campaign) holding ``devices``."""
        return cls([Station(name, devices)], name=name)

    def capacity(self, name: str) -> int:
        """Capacity of a station or resource."""
        item = self.stations.get(name) or self.resources[name]
        return item.capacity

    @property
    def names(self) -> list[str]:
        """Stations, then resources."""
        return [*self.stations, *self.resources]

    def devices(self) -> dict[str, Any]:
        """Every device of every station and resource, by the device's own name."""
        out: dict[str, Any] = {}
        for item in [*self.stations.values(), *self.resources.values()]:
            for key, device in item.devices.items():
                out[getattr(device, "name", key)] = device
        return out

    def check(
        self, workflow: Workflow
    ) -> list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]]:
        """Resolve every step's station pool and resources; per step ``(stations, uses)``.

        Raises:
            ValueError: a step's station matches no station (naming the step, its field
                and the lab's stations), or a resource it uses matches nothing.
        """
        book = LeaseBook({n: self.capacity(n) for n in self.names}, self.stations)
        out = []
        for i, step in enumerate(workflow.steps):
            stations = resolve(step.station, self.stations)
            if not stations:
                raise ValueError(
                    f"workflow.steps[{i}] ({step.name!r}).station: "
                    f"{_pattern_text(step.station)!r} matches no station of lab {self.name!r}; "
                    f"its stations are {', '.join(self.stations)}"
                )
            uses = []
            for j, pattern in enumerate(step.uses):
                found = resolve(pattern, self.names)
                if not found:
                    known = ", ".join(self.names)
                    raise ValueError(
                        f"workflow.steps[{i}] ({step.name!r}).uses[{j}]: "
                        f"{_pattern_text(pattern)!r} matches no resource or station of lab "
                        f"{self.name!r}; it has {known}"
                    )
                uses.append(found)
            out.append((stations, tuple(uses)))
            if not book.feasible(LeaseRequest((), stations, tuple(uses))):
                raise ValueError(
                    f"workflow.steps[{i}] ({step.name!r}): its station and the resources it "
                    f"uses can never be held at once (a station used twice beyond its "
                    f"capacity?); give it a station other than those it uses"
                )
        return out

    def describe(self) -> dict[str, Any]:
        """The lab as JSON-able metadata."""
        return {
            "name": self.name,
            "stations": [
                {
                    "name": s.name,
                    "capacity": s.capacity,
                    "max_failures": s.max_failures,
                    "devices": sorted(s.devices),
                }
                for s in self.stations.values()
            ],
            "resources": [
                {"name": r.name, "capacity": r.capacity, "devices": sorted(r.devices)}
                for r in self.resources.values()
            ],
        }


def plan_accepts_context(plan: Callable[..., Any]) -> bool:
    """Whether ``plan`` can be called as ``plan(point, context, md=...)``."""
    try:
        inspect.signature(plan).bind({}, None, md={})
    except TypeError:
        return False
    except ValueError:  # no signature (a builtin): let the call tell
        return True
    return True
