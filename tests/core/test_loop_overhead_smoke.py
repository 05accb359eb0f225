"""The loop-overhead benchmark runs end to end, tiny (it is not timed here)."""

from __future__ import annotations

import re


def test_loop_overhead_benchmark_runs_every_case(tmp_path, capsys):
    from benchmarks.loop_overhead import loop_event_cost, main

    args = ["--experiments", "4", "--small", "2", "--repeats", "1", "--events", "20"]
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
    assert "one event of the loop's ledger stream" in out
    # the event section measures what it says: emitted, written, validated
    cost = loop_event_cost(20, tmp_path / "events")
    assert set(cost) == {"RunEngine", "+ writer", "validation"}
    assert all(v > 0 for v in cost.values())
    assert (tmp_path / "events" / "events.zarr").is_dir()  # the writer's store was written
