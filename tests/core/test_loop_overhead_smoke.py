"""The loop-overhead benchmark runs end to end, tiny (it is not timed here)."""

from __future__ import annotations

import re


def test_loop_overhead_benchmark_runs_every_case(tmp_path, capsys):
    from benchmarks.loop_overhead import loop_event_cost, main

    args = ["--experiments", "4", "--small", "2", "--repeats", "1", "--events", "20"]
    args += ["--long", "5"]
    main([*args, "--dir", str(tmp_path / "b")])
    out = capsys.readouterr().out
    for case in (
        "bare RunEngine ",
        "bare RunEngine + sdl writer",
        "Campaign.run (store, syncfs at stops)",
        "Campaign.run (store, no syncfs)",
        "Campaign.run (store, a block every 1 s)",
    ):
        assert re.search(re.escape(case) + r"\s+\d+\.\d", out), case
    # each case against the bare RunEngine's runs of the same repeat
    assert re.search(r"Campaign.run \(store, syncfs at stops\) +x bare \d+\.\d\d \[", out)
    assert "one event of the loop's ledger stream" in out
    assert re.search(r"a long campaign \(5 experiments.*\n.*Campaign.run +\d+\.\d", out)
    # the event section measures what it says: emitted, written, validated
    cost = loop_event_cost(20, tmp_path / "events")
    assert set(cost) == {"RunEngine", "+ writer", "validation"}
    assert all(v > 0 for v in cost.values())
    assert (tmp_path / "events" / "events.zarr").is_dir()  # the writer's store was written


def test_ratios_are_paired_by_repeat():
    """A slow moment of the machine hits the runs of one repeat alike: the paired ratios
    stay what each repeat measured, where medians taken apart would mix moments."""
    from benchmarks.loop_overhead import paired_ratios

    # seconds per whole run; repeat 1 ran on a machine twice as slow
    results = {
        ("bare", 10): [1.0, 2.0],
        ("bare", 2): [0.2, 0.4],
        ("camp", 10): [1.5, 2.6],
        ("camp", 2): [0.5, 0.6],
    }
    whole, more = paired_ratios(results, "camp", "bare", 10, 2)
    assert whole == [1.5, 1.3]
    assert more == [(1.5 - 0.5) / (1.0 - 0.2), (2.6 - 0.6) / (2.0 - 0.4)]


def test_the_long_campaign_times_the_blocks_written_while_experiments_run(tmp_path):
    from benchmarks.loop_overhead import long_campaign

    # blocks every 0.3 s, so a short campaign has several (the benchmark's has one per 5 s)
    out = long_campaign(150, tmp_path, log_flush_interval=0.3)
    assert out["blocks"] >= 2  # found from the writer's debug records of its blocks
    assert 0 < out["block s"] < 10
    assert out["ms/exp in"] > 0 and out["ms/exp out"] > 0
    assert out["ms/exp"] > 0
    assert (tmp_path / "long.zarr").is_dir()


def test_a_protocol_runs_two_generator_frames_below_the_run_engine(RE, store_path):
    """Every plan stub a protocol creates formats the whole call stack
    (``bluesky.utils.Plan``): each frame the loop puts below a protocol costs every
    experiment about a plan stub's worth per frame (17 stubs an experiment here). Only the
    status guard and the campaign run's frame may sit between the RunEngine and the
    protocol; a wrapper added there (a ``yield from`` or a method stepping the protocol)
    fails this."""
    import traceback

    from ophyd.sim import det, motor

    from sdl import Campaign
    from sdl.planners import Objective, Real, SobolPlanner
    from sdl.protocols import set_settle_measure

    stacks = []

    def protocol(point, md=None):
        stacks.append([(f.filename, f.name) for f in traceback.extract_stack()])
        return (yield from set_settle_measure(point, movables={"x": motor}, detectors=[det], md=md))

    objectives = [Objective("det", goal="maximize")]
    planner = SobolPlanner([Real("x", -1.0, 1.0)], objectives, seed=0)
    camp = Campaign(
        objectives=objectives, protocol=protocol, planner=planner, budget=2, safe_state=None
    )
    result = camp.run(RE, store=store_path)
    assert result.n_done == 2  # the protocol ran, under the loop, for each experiment
    for stack in stacks:
        names = [name for _, name in stack]
        engine = max(
            i for i, (file, name) in enumerate(stack) if name == "_run" and "run_engine" in file
        )
        assert names[-1] == "protocol"
        assert names[engine + 1 : -1] == ["watch", "_campaign_run"], names[engine:]
