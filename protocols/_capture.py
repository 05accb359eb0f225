"""Run a protocol and keep what it read: the bridge from a plan to objective values.

A protocol is an ordinary bluesky plan; it does not need to return anything. The campaign
wraps it with :func:`capture` which watches the messages pass by and records the run
uids it opened and the readings returned by every ``read`` message. Nothing is copied
from the store: the values are the same objects the RunEngine put into the events.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bluesky.utils import Msg, ensure_generator
from bluesky.utils import Plan as BlueskyPlan

__all__ = ["Capture", "as_plan", "capture", "not_a_message", "with_md"]


@dataclass
class Capture:
    """What :func:`capture` saw while a protocol ran.

    Attributes:
        run_uids: uids of the runs the protocol opened, in order.
        closed_uids: uids of the runs it closed, in order.
        readings: data key -> last value read (values of ``read`` responses).
        events: one dict of data key -> value per ``save`` (one per event).
        result: what the protocol plan returned.
    """

    run_uids: list[str] = field(default_factory=list)
    closed_uids: list[str] = field(default_factory=list)
    readings: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    result: Any = None
    _bundle: dict[str, Any] = field(default_factory=dict, repr=False)

    def observe(self, msg: Msg, response: Any) -> None:
        """Note what the RunEngine answered to ``msg`` (as :func:`capture` does)."""
        _observe(msg, response, self)

    @property
    def open_runs(self) -> list[str]:
        """Runs the protocol opened and has not closed (yet)."""
        return [uid for uid in self.run_uids if uid not in self.closed_uids]

    @property
    def run_uid(self) -> str | None:
        """The (last) run uid, or None if the protocol did not open a run."""
        return self.run_uids[-1] if self.run_uids else None


def capture(
    plan: Generator[Msg, Any, Any],
    sink: Capture,
    run_key: Any = None,
    md: Mapping[str, Any] | None = None,
) -> Generator[Msg, Any, Any]:
    """Pass ``plan``'s messages through, recording run uids and readings into ``sink``.

    Exceptions thrown in by the RunEngine (a failed status, an abort) are forwarded into
    ``plan`` so its own cleanup (``run_decorator``, ``stage_decorator``) runs. With
    ``run_key``, messages without a run key get that one (as
    ``bluesky.preprocessors.set_run_key_wrapper`` would, one generator layer less). With
    ``md``, every run the plan opens carries it (see :func:`with_md`).
    """
    plan = as_plan(plan)
    response: Any = None
    exc: BaseException | None = None
    while True:
        try:
            msg = plan.throw(exc) if exc is not None else plan.send(response)
            if not isinstance(msg, Msg):  # thrown into it: its wrappers clean up
                msg = plan.throw(TypeError(not_a_message(msg)))
                if not isinstance(msg, Msg):
                    raise TypeError(not_a_message(msg))
        except StopIteration as stop:
            sink.result = stop.value
            return stop.value
        exc = None
        if run_key is not None and msg.run is None:
            msg = msg._replace(run=run_key)
        if md and msg.command == "open_run":
            msg = with_md(msg, md)
        try:
            response = yield msg
        except GeneratorExit as err:
            if type(err) is GeneratorExit:  # closed; bluesky's PlanHalt is thrown in instead
                plan.close()
                raise
            exc, response = err, None
            continue
        except BaseException as err:  # noqa: BLE001 - forwarded into the plan
            exc, response = err, None
            continue
        sink.observe(msg, response)


def as_plan(obj: Any) -> Generator[Msg, Any, Any]:
    """What a protocol (or a lab's step plan) returned, as the generator of messages that
    runs it: any iterable of messages, as a RunEngine takes (a generator as it is).

    Raises:
        TypeError: ``obj`` is not iterable (``None``: a plain function that forgot to
            return its plan), with what a protocol is.
    """
    try:
        return ensure_generator(obj)
    except TypeError:
        raise TypeError(
            f"the protocol returned {obj!r}, not a plan: a protocol is a generator function "
            f"(its body yields messages, as in 'yield from bps.mv(motor, 1)'), or a function "
            f"that returns a plan or a list of messages (as in 'return inner()')"
        ) from None


def not_a_message(obj: Any) -> str:
    """Why a protocol that yielded ``obj`` (not a ``Msg``) is wrong, and the usual fix.

    Throw a ``TypeError`` with it into the protocol, so that its wrappers close its run.
    """
    if inspect.isgenerator(obj) or isinstance(obj, BlueskyPlan):
        what = f"a plan ({obj.__name__})" if inspect.isgenerator(obj) else "a plan"
        return (
            f"the protocol yielded {what}, not a message: run a plan with 'yield from', as "
            f"in 'yield from bps.mv(motor, 1)', not 'yield bps.mv(motor, 1)'"
        )
    return f"the protocol yielded {obj!r}, not a bluesky message (bluesky.utils.Msg)"


def with_md(msg: Msg, md: Mapping[str, Any]) -> Msg:
    """An ``open_run`` message with the keys of ``md`` it lacks (its own values win), as
    ``bluesky.preprocessors.inject_md_wrapper`` adds them; warns (once per place) when a
    protocol left them out.

    The campaign passes a protocol ``md`` (campaign uid, experiment id, point) for its run's
    start document: live plots (``sdl.experiment_runs``), resume and ``sdl check`` find an
    experiment's run by it, so a protocol that drops it still gets it.
    """
    missing = [key for key in md if key not in msg.kwargs]
    if not missing:
        return msg
    warnings.warn(
        f"the protocol opened a run without the md the campaign passed it ({', '.join(missing)}"
        f"); sdl added it. Give md to the run: bpp.run_decorator(md=md) or bps.open_run(md=md)",
        UserWarning,
        stacklevel=2,
    )
    return msg._replace(kwargs={**md, **msg.kwargs})


def _observe(msg: Msg, response: Any, sink: Capture) -> None:
    if msg.command == "open_run" and isinstance(response, str):
        sink.run_uids.append(response)
    elif msg.command == "close_run" and isinstance(response, str):
        sink.closed_uids.append(response)
    elif msg.command == "read" and isinstance(response, dict):
        for key, reading in response.items():
            value = reading.get("value") if isinstance(reading, dict) else reading
            sink.readings[key] = value
            sink._bundle[key] = value
    elif msg.command == "save":
        if sink._bundle:
            sink.events.append(dict(sink._bundle))
        sink._bundle = {}
    elif msg.command in ("create", "drop"):
        sink._bundle = {}
