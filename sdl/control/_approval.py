"""Human in the loop: an operator accepts, edits, rejects or adds points before they run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._channel import operator_name

__all__ = [
    "ApprovalDecision",
    "approve_in_terminal",
    "decision_from_request",
    "validate_point",
    "wait_for_approval",
]


@dataclass(frozen=True)
class ApprovalDecision:
    """What an operator decided about a proposed batch.

    Attributes:
        accepted: the points to run, edited values included, in the proposed order.
        rejected: proposed points that must not run.
        added: the operator's own points, to run after the accepted ones.
        who: the operator's name.
        time: when the decision was made, seconds since the epoch.
        edited: ``(as proposed, as edited)`` for every edited point.
    """

    accepted: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    added: list[dict[str, Any]]
    who: str
    time: float
    edited: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (for the store and the control channel)."""
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "added": self.added,
            "who": self.who,
            "time": self.time,
            "edited": [[a, b] for a, b in self.edited],
        }


def validate_point(
    point: Mapping[str, Any], parameters: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Check and convert a point against the parameter space (``store.campaign["parameters"]``).

    Args:
        point: parameter name -> value (text or number).
        parameters: dicts with ``name``, ``kind`` (real/integer/categorical), ``low``/``high``
            or ``choices``.

    Returns:
        The point with every parameter, values converted to their kind.

    Raises:
        ValueError: a parameter is missing or unknown, or a value is out of range; the
            message names the parameter and its allowed values.
    """
    specs = {p["name"]: p for p in parameters}
    unknown = sorted(set(point) - set(specs))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)}; parameters: {', '.join(specs)}"
        )
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in point:
            raise ValueError(f"parameter {name!r} is missing")
        raw = point[name]
        kind = spec.get("kind", "real")
        if kind == "categorical" or spec.get("choices"):
            by_text = {str(c): c for c in spec["choices"]}
            if str(raw) not in by_text:
                raise ValueError(f"{name}={raw!r} is not one of {list(spec['choices'])}")
            out[name] = by_text[str(raw)]
            continue
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if kind == "integer":
            if not float(value).is_integer():
                raise ValueError(f"{name}={raw!r} must be an integer")
            value = int(value)
        low, high = spec.get("low"), spec.get("high")
        if (
            not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise ValueError(f"{name}={raw!r} is outside [{low}, {high}]")
        out[name] = value
    return out


def _parse_assignments(words: Sequence[str]) -> dict[str, str]:
    values = {}
    for w in words:
        if "=" not in w:
            raise ValueError(f"expected name=value, got {w!r}")
        k, v = w.split("=", 1)
        values[k.strip()] = v.strip()
    return values


def _fmt_point(p: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in p.items())


_HELP = """\
  <Enter> or 'ok'        accept the points as shown
  e N name=value ...     edit point N
  r N                    reject point N   (u N: undo)
  a name=value ...       add a point of your own (all parameters)
  x                      reject every point (and add none)"""


def approve_in_terminal(
    points: Sequence[Mapping[str, Any]],
    who: str | None = None,
    *,
    parameters: Sequence[Mapping[str, Any]] | None = None,
    input: Callable[[str], str] = input,  # noqa: A002 - injectable for tests
    print: Callable[..., None] = print,  # noqa: A002
) -> ApprovalDecision:
    """Show a proposed batch in the terminal; the operator accepts, edits, rejects or adds.

    Args:
        points: the proposed points.
        who: the operator (default: ``$SDL_OPERATOR`` or the login name).
        parameters: the parameter space (``store.campaign["parameters"]``) that edited and
            added points are checked against; unchecked if None.
        input: reads one line (tests pass a fake).
        print: writes a line.

    Returns:
        The decision. End of input accepts what is shown.
    """
    proposed = [dict(p) for p in points]
    current = [dict(p) for p in points]
    rejected: set[int] = set()
    added: list[dict[str, Any]] = []

    def check(values: Mapping[str, Any]) -> dict[str, Any]:
        return validate_point(values, parameters) if parameters is not None else dict(values)

    def show() -> None:
        print(f"sdl: {len(current)} proposed point(s) await approval:")
        for i, p in enumerate(current):
            mark = "rejected" if i in rejected else ("edited" if p != proposed[i] else "")
            print(f"  [{i}] {_fmt_point(p)}" + (f"   ({mark})" if mark else ""))
        for p in added:
            print(f"  [+] {_fmt_point(p)}   (added)")

    show()
    print(_HELP)
    while True:
        try:
            line = input("approve> ").strip()
        except EOFError:
            line = ""
        if line in ("", "ok", "y", "yes"):
            break
        words = line.split()
        cmd, rest = words[0].lower(), words[1:]
        try:
            if cmd == "x":
                rejected = set(range(len(current)))
            elif cmd in ("r", "u", "e"):
                if not rest or not rest[0].isdigit() or int(rest[0]) >= len(current):
                    raise ValueError(f"give a point number 0..{len(current) - 1}")
                i = int(rest[0])
                if cmd == "r":
                    rejected.add(i)
                elif cmd == "u":
                    rejected.discard(i)
                else:
                    current[i] = check({**current[i], **_parse_assignments(rest[1:])})
            elif cmd == "a":
                added.append(check(_parse_assignments(rest)))
            else:
                print(_HELP)
                continue
        except ValueError as err:
            print(f"  not done: {err}")
            continue
        show()
    accepted = [p for i, p in enumerate(current) if i not in rejected]
    edited = [
        (proposed[i], current[i])
        for i in range(len(current))
        if current[i] != proposed[i] and i not in rejected
    ]
    return ApprovalDecision(
        accepted=accepted,
        rejected=[proposed[i] for i in sorted(rejected)],
        added=added,
        who=operator_name(who),
        time=time.time(),
        edited=edited,
    )


def decision_from_request(
    points: Sequence[Mapping[str, Any]],
    args: Mapping[str, Any],
    who: str,
    parameters: Sequence[Mapping[str, Any]] | None = None,
) -> ApprovalDecision:
    """Turn an ``approve`` request's arguments into a decision about ``points``.

    ``args`` (from the dashboard): ``rejected`` (indices), ``edited`` ({index: {name: value}}),
    ``added`` (list of points). Indices refer to ``points``.

    Raises:
        ValueError: an index or a value is invalid.
    """
    proposed = [dict(p) for p in points]
    rejected = {int(i) for i in args.get("rejected", [])}
    edits = {int(k): v for k, v in dict(args.get("edited", {})).items()}
    for i in (*rejected, *edits):
        if not 0 <= i < len(proposed):
            raise ValueError(f"no proposed point {i} (there are {len(proposed)})")

    def check(values: Mapping[str, Any]) -> dict[str, Any]:
        return validate_point(values, parameters) if parameters is not None else dict(values)

    current = [check({**p, **edits[i]}) if i in edits else p for i, p in enumerate(proposed)]
    return ApprovalDecision(
        accepted=[p for i, p in enumerate(current) if i not in rejected],
        rejected=[proposed[i] for i in sorted(rejected)],
        added=[check(p) for p in args.get("added", [])],
        who=who,
        time=time.time(),
        edited=[
            (proposed[i], current[i])
            for i in sorted(edits)
            if i not in rejected and current[i] != proposed[i]
        ],
    )


def wait_for_approval(
    points: Sequence[Mapping[str, Any]],
    watcher: Any,
    *,
    parameters: Sequence[Mapping[str, Any]] | None = None,
    terminal: bool = False,
    who: str | None = None,
    timeout: float | None = None,
) -> ApprovalDecision | None:
    """Publish a batch as awaiting approval and wait for the operator's decision.

    Args:
        points: the proposed batch.
        watcher: the campaign's :class:`~sdl.control.ControlWatcher`.
        parameters: the parameter space, to check edited and added points.
        terminal: ask in this terminal (:func:`approve_in_terminal`) instead of waiting
            for an ``approve`` request from the dashboard.
        who: the operator at the terminal.
        timeout: seconds to wait for a dashboard decision (None: forever).

    Returns:
        The decision, or None if ``timeout`` passed without one.
    """
    proposals = [dict(p) for p in points]
    watcher.publish("waiting-approval", proposals=proposals, parameters=list(parameters or []))
    if terminal:
        decision = approve_in_terminal(proposals, who, parameters=parameters)
        watcher.publish("running", message=f"batch approved by {decision.who}")
        return decision
    deadline = None if timeout is None else time.monotonic() + timeout
    while deadline is None or time.monotonic() < deadline:
        for req in watcher.take(["approve"], timeout=0.5):
            try:
                decision = decision_from_request(proposals, req.args, req.who, parameters)
            except ValueError as err:
                watcher.acknowledge(req, f"approval refused: {err}", ok=False)
                continue
            watcher.acknowledge(
                req,
                f"{len(decision.accepted)} accepted, {len(decision.rejected)} rejected, "
                f"{len(decision.added)} added",
            )
            watcher.publish("running", message=f"batch approved by {decision.who}")
            return decision
    return None


def take_additions(
    watcher: Any, parameters: Sequence[Mapping[str, Any]] | None = None
) -> ApprovalDecision | None:
    """Operators' ``add`` requests waiting now (the dashboard's "add an experiment").

    Each request's ``points`` are checked against the parameter space; a request with a
    bad point is refused whole (and answered so). Does not wait.

    Returns:
        A decision holding only ``added`` points (to run next), or None if none came.
    """
    added: list[dict[str, Any]] = []
    who: list[str] = []
    for req in watcher.take(["add"], timeout=0.0):
        try:
            points = [
                validate_point(p, parameters) if parameters is not None else dict(p)
                for p in req.args.get("points", [])
            ]
            if not points:
                raise ValueError("no points given")
        except (ValueError, TypeError, AttributeError) as err:
            watcher.acknowledge(req, f"add refused: {err}", ok=False)
            continue
        watcher.acknowledge(req, f"{len(points)} point(s) added: they run next")
        added.extend(points)
        who.append(req.who)
    if not added:
        return None
    return ApprovalDecision(
        accepted=[], rejected=[], added=added, who=", ".join(sorted(set(who))), time=time.time()
    )
