"""The campaign run's one-frame wrapper does what bluesky's nested wrappers did.

``sdl._loop._campaign_run`` replaces ``rewindable_wrapper(False)`` around the safe state
around ``set_run_key_wrapper(run_wrapper(...))`` (one frame instead of eight, which every
plan stub of every protocol paid for: see benchmarks/loop_overhead.py), and runs each
experiment's protocol from its own frame (the loop yields a ``Protocol``) as
``yield from capture(plan, sink, run_key)`` in the loop would. Both are driven here
message by message, with every kind of exception the RunEngine throws in (an error, a
stop, an abort, a halt, a KeyboardInterrupt) at every message, with protocols that
recover or not and clean up with or without messages, and must yield the same messages,
end the same way and leave the same trace (what the protocol and the loop saw). The loop
plans are small generators; no RunEngine is needed to compare two generators, and the
campaign tests run the real one end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bluesky.preprocessors as bpp
import pytest
from bluesky.utils import Msg, PlanHalt, RequestAbort, RequestStop

from sdl._loop import CAMPAIGN_RUN_KEY, Protocol, _campaign_run
from sdl.protocols import Capture, capture


class _Worker:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


@dataclass
class _Opt:
    safe_state: Any = None


@dataclass
class _Loop:
    """What ``_campaign_run`` uses of the loop: ``plan``, ``md``, ``worker``, ``opt``."""

    recovers: bool = False
    safe: bool = False
    delegates: bool = True  # the protocol yielded to _campaign_run (False: capture here)
    protocol_recovers: bool = False
    cleanup_yields: bool = False  # the protocol's finally yields a message
    trace: list[Any] = field(default_factory=list)
    md: dict[str, Any] = field(default_factory=lambda: {"plan_name": "t", "sdl_role": "campaign"})
    worker: _Worker = field(default_factory=_Worker)
    experiments: dict[int, str] = field(default_factory=lambda: {0: "e0", 1: "e1"})

    def __post_init__(self) -> None:
        self.opt = _Opt(self._safe_state if self.safe else None)

    @staticmethod
    def _safe_state():
        yield Msg("set", "shutter", "closed")
        yield Msg("wait")

    def plan(self):
        yield Msg("checkpoint")
        for i in range(2):
            try:
                yield Msg("create", name="experiments")
                yield Msg("read", f"ledger-{i}")
                yield Msg("save")
            except ValueError:
                if not self.recovers:
                    raise
                yield Msg("drop")
        sink = Capture()
        try:
            if self.delegates:
                value = yield Protocol(self._protocol(), sink, run_key="exp-7")
            else:
                value = yield from capture(self._protocol(), sink, run_key="exp-7")
        except ValueError as err:
            if not self.recovers:
                raise
            value = f"failed: {err}"
            yield Msg("drop")
        self.trace.append(("loop got", value, sink.run_uids, sink.readings, sink.result))
        yield Msg("open_run", run="exp-8", plan_name="other")  # keeps its own key
        yield Msg("close_run", run="exp-8")
        return "plan's value"

    def _protocol(self):
        self.trace.append("protocol started")
        try:
            yield Msg("open_run", plan_name="protocol")  # no key: the experiment's
            yield Msg("read", "det")
            yield Msg("close_run", run="mine")  # its own key
            return "measured"
        except ValueError as err:
            self.trace.append(("protocol caught", str(err)))
            if not self.protocol_recovers:
                raise
            yield Msg("null")
            return "recovered"
        finally:
            self.trace.append("protocol finally")
            if self.cleanup_yields:
                yield Msg("unstage", "det")


def _reference(loop: _Loop):
    """The wrappers ``_campaign_run`` replaces, as sdl composed them before."""

    def body():
        try:
            yield from loop.plan()
        finally:
            loop.worker.close()

    def with_safe_state(plan):
        try:
            return (yield from plan)
        except GeneratorExit:
            raise
        except BaseException:
            yield from loop.opt.safe_state()
            raise

    plan = bpp.run_wrapper(body(), md=loop.md)
    plan = bpp.set_run_key_wrapper(plan, CAMPAIGN_RUN_KEY)
    if loop.opt.safe_state is not None:
        plan = with_safe_state(plan)
    plan = bpp.rewindable_wrapper(plan, False)
    yield from plan
    return list(loop.experiments.values())


def _drive(gen, fault_at: int | None, fault: BaseException | None, rewindable: bool):
    """Answer ``gen``'s messages as a RunEngine would; throw ``fault`` in at message
    number ``fault_at``. Returns (messages, how it ended)."""
    seen: list[tuple] = []
    response: Any = None
    throw: BaseException | None = None
    try:
        while True:
            msg = gen.throw(throw) if throw is not None else gen.send(response)
            throw = None
            seen.append((msg.command, msg.obj, msg.args, dict(msg.kwargs), msg.run))
            if len(seen) - 1 == fault_at:
                if isinstance(fault, GeneratorExit) and type(fault) is GeneratorExit:
                    gen.close()
                    return seen, ("closed",)
                throw = fault
                continue
            response = {
                "rewindable": rewindable,
                "open_run": "uid-1",
                "read": {msg.obj: {"value": len(seen), "timestamp": 0.0}},
            }.get(msg.command)
    except StopIteration as stop:
        return seen, ("returned", stop.value)
    except BaseException as err:  # noqa: BLE001 - compared between the two
        return seen, ("raised", type(err), str(err))


FAULTS = [
    ValueError("a device broke"),
    RequestStop(),
    RequestAbort(),
    PlanHalt(),
    GeneratorExit(),
    KeyboardInterrupt(),
]


PROTOCOLS = {
    "protocol-raises": {},
    "protocol-recovers": {"protocol_recovers": True},
    "cleanup-message": {"cleanup_yields": True},
}


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("safe", [False, True], ids=["no-safe-state", "safe-state"])
@pytest.mark.parametrize("recovers", [False, True], ids=["raises", "recovers"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_campaign_run_behaves_as_bluesky_wrappers_at_every_message(
    fault, safe, recovers, protocol
):
    kind = PROTOCOLS[protocol]
    new, ref = _Loop(**kind), _Loop(delegates=False, **kind)
    clean_new, end_new = _drive(_campaign_run(new), None, None, True)
    clean_ref, end_ref = _drive(_reference(ref), None, None, True)
    assert clean_new == clean_ref and end_new == end_ref == ("returned", ["e0", "e1"])
    assert new.trace == ref.trace and ("loop got", "measured") == new.trace[-1][:2]
    for at in range(len(clean_ref)):
        for rewindable in (True, False):
            new = _Loop(recovers=recovers, safe=safe, **kind)
            ref = _Loop(recovers=recovers, safe=safe, delegates=False, **kind)
            got = _drive(_campaign_run(new), at, fault, rewindable)
            want = _drive(_reference(ref), at, fault, rewindable)
            assert got == want, (at, rewindable)
            assert new.trace == ref.trace, (at, rewindable)
            assert new.worker.closed == ref.worker.closed, (at, rewindable)


def test_the_loop_messages_carry_the_campaign_run_key_and_others_keep_theirs():
    seen, end = _drive(_campaign_run(_Loop()), None, None, True)
    keys = {command: run for command, _, _, _, run in seen if command != "rewindable"}
    assert keys["create"] == keys["save"] == CAMPAIGN_RUN_KEY
    assert [run for command, *_, run in seen if command == "open_run"] == [
        CAMPAIGN_RUN_KEY,
        "exp-7",  # the protocol's: the experiment's key
        "exp-8",
    ]
    assert [run for command, *_, run in seen if command == "close_run"] == [
        "mine",  # the protocol's own key stands
        "exp-8",
        CAMPAIGN_RUN_KEY,
    ]
    assert ("read", "det", (), {}, "exp-7") in seen
    assert seen[0][0] == "rewindable" and seen[1] == ("rewindable", None, (False,), {}, None)
    assert seen[-1] == ("rewindable", None, (True,), {}, None)
