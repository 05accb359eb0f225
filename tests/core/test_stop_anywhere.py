"""A stop or an abort that lands at any message of a campaign leaves nothing planned or running.

An operator's pause (``RE.request_pause``, Ctrl-C) lands wherever the RunEngine is, and
the stop or abort that follows is thrown into the plan at that message -- sometimes at
a message the RunEngine had already carried out: the transition the loop was recording
then reached the store although the loop saw its record fail. Before this was handled, a
stop landing in one of the loop's own records left the experiment ``planned`` or
``running`` after a clean stop, or its ``done`` unrecorded (12 of 80 landing points of a
three-experiment campaign). Here a real RunEngine runs a real campaign into a real store,
and is paused from another thread at each message in turn, then stopped or aborted: once
with ``ophyd.sim`` devices that finish at once, once with sdl's simulated stage, whose
moves and exposures take real (scaled) time, so the pause also lands while a move or an
exposure is under way and halts it.
"""

from __future__ import annotations

import functools
import threading

import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import det4, motor1, motor2

from sdl import Campaign, load_campaign, open_store
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure
from sdl.testing import stage_campaign_config


def _campaign(**options) -> Campaign:
    objectives = [Objective("det4", goal="maximize")]
    space = [Real("x", -5.0, 5.0), Real("y", -5.0, 5.0)]
    protocol = functools.partial(
        set_settle_measure, movables={"x": motor1, "y": motor2}, detectors=[det4]
    )
    return Campaign(
        objectives=objectives,
        protocol=protocol,
        planner=SobolPlanner(space, objectives, seed=0),
        safe_state=None,
        **options,
    )


def _stage_campaign(**options) -> Campaign:
    """The stage campaign on sdl's simulated stage: a move takes 0.1 s, an exposure 0.03 s."""
    config = stage_campaign_config("stop-anywhere", 2, settle_time=0.1, exposure_time=0.03)
    return load_campaign({**config, **options})


def _run(path, options, pause_at=None, make=_campaign):
    """Run the campaign; pause from another thread when message ``pause_at`` comes.
    Returns (RunEngine, messages seen, whether the run was interrupted)."""
    RE = RunEngine({}, context_managers=[])
    seen: list[str] = []

    def hook(msg):
        seen.append(f"{msg.command} {msg.kwargs.get('name', '')}".strip())
        if len(seen) == pause_at:  # request_pause waits for the RunEngine's loop
            threading.Thread(target=RE.request_pause, kwargs={"defer": False}).start()

    RE.msg_hook = hook
    campaign = make(**options)
    try:
        campaign.run(RE, store=path)
    except RunEngineInterrupted:
        return RE, seen, True, campaign
    return RE, seen, False, campaign


def _cut_moves(campaign):
    """The stage's motors whose last move the pause halted before it arrived (a pause stops
    every device the plan moved; the simulated motor's readback then stays where it was)."""
    motors = [m for d in campaign.devices.values() for m in getattr(d, "motors", [])]
    return [m.name for m in motors if m.readback.get() != m.setpoint.get()]


@pytest.mark.slow
@pytest.mark.parametrize(
    "how, options, make, objective",
    [
        ("stop", {"budget": 2}, _campaign, "det4"),
        ("abort", {"budget": 2, "batch_size": 2, "plan_ahead": True}, _campaign, "det4"),
        ("stop", {"batch_size": 2, "plan_ahead": True}, _stage_campaign, "intensity"),
        ("abort", {}, _stage_campaign, "intensity"),
    ],
    ids=["stop-instant", "abort-instant-plan-ahead", "stop-timed-plan-ahead", "abort-timed"],
)
def test_a_stop_landing_at_any_message_leaves_nothing_planned_or_running(
    tmp_path, how, options, make, objective
):
    _, messages, _, _ = _run(tmp_path / "whole.zarr", options, make=make)
    n = len(messages)
    interrupted = caught_moving = 0
    step = 2 if make is _campaign else 3  # each record is three messages (create, read, save)
    for k in range(1, n, step):
        path = tmp_path / f"at-{k}.zarr"
        RE, seen, paused, campaign = _run(path, options, pause_at=k, make=make)
        if not paused:
            continue  # the pause came after the campaign's last message
        interrupted += 1
        caught_moving += bool(_cut_moves(campaign))
        ended = how
        if RE.state == "idle":  # a pause with nothing to rewind to aborts at once
            ended = "abort"
        else:
            getattr(RE, how)()
        assert RE.state == "idle"
        where = f"paused at message {k} ({seen[k - 1]!r}), then {ended}"
        table = open_store(path).to_dataframe()
        left = table[table["status"].isin(["planned", "running"])]
        assert left.empty, f"{where}: {left[['status', 'cause']]}"
        cut = table[table["status"] == "interrupted"]
        word = {"stop": "stopped", "abort": "aborted"}[ended]
        allowed = {f"campaign {word}", f"campaign {word} before it ran"}
        if ended == "abort":
            allowed.add("campaign ended before it ran")
        assert set(cut["cause"]) <= allowed, where
        done = table[table["status"] == "done"]
        if len(done):  # (an objective's column appears with its first value)
            assert done[objective].notna().all() and (done["run_uid"] != "").all(), where
    # the pause landed inside the campaign for almost every message
    assert interrupted >= 0.8 * len(range(1, n, step)), (interrupted, n)
    if make is _stage_campaign:  # and, with time passing, some while a move was under way
        assert caught_moving >= 1, (caught_moving, interrupted)
    print(f"{interrupted} landings, {caught_moving} of them halted a move")
