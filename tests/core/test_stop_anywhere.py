"""A stop or an abort that lands at any message of a campaign leaves nothing planned or running.

An operator's pause (``RE.request_pause``, Ctrl-C) lands wherever the RunEngine is, and
the stop or abort that follows is thrown into the plan at that message -- sometimes at
a message the RunEngine had already carried out: the transition the loop was recording
then reached the store although the loop saw its record fail. Before this was handled, a
stop landing in one of the loop's own records left the experiment ``planned`` or
``running`` after a clean stop, or its ``done`` unrecorded (12 of 80 landing points of a
three-experiment campaign). Here a real RunEngine runs a real campaign into a real store,
and is paused from another thread at each message in turn, then stopped or aborted.
"""

from __future__ import annotations

import functools
import threading

import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted
from ophyd.sim import det4, motor1, motor2

from sdl import Campaign, open_store
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure


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


def _run(path, options, pause_at=None):
    """Run the campaign; pause from another thread when message ``pause_at`` comes.
    Returns (RunEngine, messages seen, whether the run was interrupted)."""
    RE = RunEngine({}, context_managers=[])
    seen: list[str] = []

    def hook(msg):
        seen.append(f"{msg.command} {msg.kwargs.get('name', '')}".strip())
        if len(seen) == pause_at:  # request_pause waits for the RunEngine's loop
            threading.Thread(target=RE.request_pause, kwargs={"defer": False}).start()

    RE.msg_hook = hook
    try:
        _campaign(**options).run(RE, store=path)
    except RunEngineInterrupted:
        return RE, seen, True
    return RE, seen, False


@pytest.mark.slow
@pytest.mark.parametrize(
    "how, options",
    [
        ("stop", {"budget": 2}),
        ("abort", {"budget": 2, "batch_size": 2, "plan_ahead": True}),
    ],
)
def test_a_stop_landing_at_any_message_leaves_nothing_planned_or_running(tmp_path, how, options):
    _, messages, _ = _run(tmp_path / "whole.zarr", options)
    n = len(messages)
    interrupted = 0
    for k in range(1, n, 2):  # every second message: each record is three (create, read, save)
        path = tmp_path / f"at-{k}.zarr"
        RE, seen, paused = _run(path, options, pause_at=k)
        if not paused:
            continue  # the pause came after the campaign's last message
        interrupted += 1
        ended = how
        if RE.state == "idle":  # a pause with nothing to rewind to aborts at once
            ended = "abort"
        else:
            getattr(RE, how)()
        assert RE.state == "idle"
        table = open_store(path).to_dataframe()
        where = f"paused at message {k} ({seen[k - 1]!r}), then {ended}"
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
            assert done["det4"].notna().all() and (done["run_uid"] != "").all(), where
    # the pause landed inside the campaign for almost every message
    assert interrupted >= 0.8 * len(range(1, n, 2)), (interrupted, n)
