"""The campaign run's one-frame wrapper does what bluesky's nested wrappers did.

``sdl._loop._campaign_run`` replaces ``rewindable_wrapper(False)`` around the safe state
around ``set_run_key_wrapper(run_wrapper(...))`` (one frame instead of eight, which every
plan stub of every protocol paid for: see benchmarks/loop_overhead.py). Both are driven
here message by message, with every kind of exception the RunEngine throws in (an error,
a stop, an abort, a halt, a KeyboardInterrupt) at every message, and must yield the same
messages and end the same way. The loop plans are small generators; no RunEngine is
needed to compare two generators, and the campaign tests run the real one end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bluesky.preprocessors as bpp
import pytest
from bluesky.utils import Msg, PlanHalt, RequestAbort, RequestStop

from sdl._loop import CAMPAIGN_RUN_KEY, _campaign_run


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
        yield Msg("open_run", run="exp-7", plan_name="protocol")  # keeps its own key
        yield Msg("close_run", run="exp-7")
        return "plan's value"


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
            response = {"rewindable": rewindable, "open_run": "uid-1"}.get(msg.command)
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


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__)
@pytest.mark.parametrize("safe", [False, True], ids=["no-safe-state", "safe-state"])
@pytest.mark.parametrize("recovers", [False, True], ids=["raises", "recovers"])
def test_the_campaign_run_behaves_as_bluesky_wrappers_at_every_message(fault, safe, recovers):
    clean_new, end_new = _drive(_campaign_run(_Loop()), None, None, True)
    clean_ref, end_ref = _drive(_reference(_Loop()), None, None, True)
    assert clean_new == clean_ref and end_new == end_ref == ("returned", ["e0", "e1"])
    for at in range(len(clean_ref)):
        for rewindable in (True, False):
            new, ref = _Loop(recovers=recovers, safe=safe), _Loop(recovers=recovers, safe=safe)
            got = _drive(_campaign_run(new), at, fault, rewindable)
            want = _drive(_reference(ref), at, fault, rewindable)
            assert got == want, (at, rewindable)
            assert new.worker.closed == ref.worker.closed, (at, rewindable)


def test_the_loop_messages_carry_the_campaign_run_key_and_others_keep_theirs():
    seen, end = _drive(_campaign_run(_Loop()), None, None, True)
    keys = {command: run for command, _, _, _, run in seen if command != "rewindable"}
    assert keys["create"] == keys["save"] == CAMPAIGN_RUN_KEY
    assert [run for command, *_, run in seen if command == "open_run"] == [
        CAMPAIGN_RUN_KEY,
        "exp-7",
    ]
    assert seen[0][0] == "rewindable" and seen[1] == ("rewindable", None, (False,), {}, None)
    assert seen[-1] == ("rewindable", None, (True,), {}, None)
