"""``--what-if KEY=VALUE``: one change to a twin's lab or timing, checked and named."""

from __future__ import annotations

from typing import Any

from sdl.errors import ConfigError

from ._spec import TwinSpec, validate_timing
from ._timing import parse_factor

__all__ = ["WHAT_IF_KEYS", "apply_what_if"]

#: The keys a what-if may change (NAME: a station or resource, STEP: a workflow step).
WHAT_IF_KEYS = (
    "stations.NAME.capacity",
    "stations.NAME.speed (or NAME.speed)",
    "stations.NAME.mtbf",
    "stations.NAME.mttr",
    "stations.NAME.failure_probability",
    "steps.STEP.mean",
    "steps.STEP.sd",
    "planner.batch",
    "planner.ask_seconds",
    "planner.per_observation",
    "shifts.start",
    "shifts.end",
    "shifts.days",
    "handoff",
    "max_in_flight",
    "lookahead",
    "final_in_flight",
    "synth_stations (the film lab)",
)


def _value(text: str) -> Any:
    text = text.strip()
    factor = parse_factor(text)
    if factor is not text:
        return factor
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "," in text or text.lower() in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        return [p.strip().lower() for p in text.split(",") if p.strip()]
    return text


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"--what-if {what}: must be an integer >= 1, got {value!r}")
    return value


def _set_timing(spec: TwinSpec, path: list[str], value: Any, what: str) -> None:
    data = spec.timing.model_dump(exclude_unset=True)
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    try:
        spec.timing = validate_timing(data, where="--what-if")
    except ConfigError as err:
        raise ConfigError(f"--what-if {what}: {err}") from None


def apply_what_if(spec: TwinSpec, text: str) -> TwinSpec:
    """A copy of ``spec`` with the change ``text`` (``stations.characterizer.capacity=2``).

    Raises:
        ConfigError: not ``KEY=VALUE``, an unknown key, station or step, a bad value; the
            message names the key and lists the valid ones.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ConfigError(f"--what-if {text!r}: write KEY=VALUE, e.g. stations.robot.speed=2x")
    value = _value(raw)
    out = spec.copy()
    parts = key.split(".")
    names = [*out.stations, *out.resources]
    if len(parts) == 2 and parts[0] in names:  # robot.speed=2x
        parts = ["stations", *parts]
    what = f"{key}={raw.strip()}"
    if parts[0] == "stations" and len(parts) == 3:
        name, field = parts[1], parts[2]
        if name not in names:
            raise ConfigError(
                f"--what-if {what}: no station or resource {name!r} in lab {out.name!r}; "
                f"it has {', '.join(names)}"
            )
        if field == "capacity":
            cap = _positive_int(what, value)
            if name in out.stations:
                out.stations[name] = cap
            else:
                out.resources[name] = cap
            return out
        if field in ("speed", "mtbf", "mttr", "failure_probability"):
            _set_timing(out, ["stations", name, field], value, what)
            return out
    elif parts[0] == "steps" and len(parts) == 3:
        step, field = parts[1], parts[2]
        steps = [s.name for s in out.steps]
        if step not in steps:
            raise ConfigError(
                f"--what-if {what}: no step {step!r} in the workflow; its steps are "
                f"{', '.join(steps)}"
            )
        if field in ("mean", "sd"):
            base = out.timing.steps.get(step) or out.defaults.get(step)
            dist = base.model_dump() if base is not None else {"dist": "normal"}
            dist[field] = value
            _set_timing(out, ["steps", step], dist, what)
            return out
    elif parts[0] in ("planner", "shifts") and len(parts) == 2:
        allowed = {
            "planner": ("batch", "ask_seconds", "per_observation"),
            "shifts": ("start", "end", "days"),
        }[parts[0]]
        if parts[1] in allowed:
            if parts[1] == "days" and isinstance(value, str):
                value = [value]
            _set_timing(out, parts, value, what)
            return out
    elif len(parts) == 1 and parts[0] == "handoff":
        _set_timing(out, parts, value, what)
        return out
    elif len(parts) == 1 and parts[0] in ("max_in_flight", "lookahead", "final_in_flight"):
        if parts[0] == "lookahead":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"--what-if {what}: must be an integer >= 0, got {value!r}")
        else:
            value = _positive_int(what, value)
        setattr(out, parts[0], value)
        return out
    elif len(parts) == 1 and parts[0] == "synth_stations":
        if out.film is None:
            raise ConfigError(f"--what-if {what}: synth_stations applies to the film lab only")
        n = _positive_int(what, value)
        rest = {k: v for k, v in out.stations.items() if not k.startswith("synth-")}
        out.stations = {**{f"synth-{i + 1}": 1 for i in range(n)}, **rest}
        out.max_failures = {k: out.max_failures.get(k, 3) for k in out.stations}
        out.film = {**out.film, "synth_stations": n}
        return out
    raise ConfigError(
        f"--what-if {what}: unknown key {key!r}; the keys are: {'; '.join(WHAT_IF_KEYS)}"
    )
