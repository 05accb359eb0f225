"""The documents a station's RE worker keeps for a coordinator that restarts."""

import json

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from ophyd.sim import det, motor

from sdl.lab._keeper import DocumentKeeper


def _step(n, md):
    @bpp.run_decorator(md=md)
    def plan():
        for i in range(n):
            yield from bps.mv(motor, i)
            yield from bps.trigger_and_read([motor, det])

    return plan()


def test_keeps_each_steps_documents_by_correlation_and_forgets_the_oldest(RE):
    keeper = DocumentKeeper(keep=2)
    RE.subscribe(keeper)
    RE(_step(1, {"purpose": "no correlation"}))
    for k in range(3):
        RE(_step(2 + k, {"sdl_correlation": f"c{k}"}))
    assert keeper.documents("c0") == []  # the oldest, forgotten
    for k in (1, 2):
        docs = keeper.documents(f"c{k}")
        names = [name for name, _ in docs]
        assert names[0] == "start" and names[-1] == "stop"
        assert names.count("event") == 2 + k
        assert docs[0][1]["sdl_correlation"] == f"c{k}"
        json.dumps(docs, allow_nan=True)  # what the queue server sends back
    assert [d["data"]["motor"] for n, d in keeper.documents("c2") if n == "event"] == [0, 1, 2, 3]


def test_numpy_values_come_back_as_json_types(RE):
    keeper = DocumentKeeper()

    @bpp.run_decorator(md={"sdl_correlation": "np"})
    def plan():
        yield from bps.null()

    RE(plan())
    keeper(
        "start", {"uid": "r", "sdl_correlation": "x", "value": np.float64(1.5), "arr": np.arange(3)}
    )
    keeper("stop", {"uid": "s", "run_start": "r"})
    (start, stop) = keeper.documents("x")
    assert start[1]["value"] == 1.5 and start[1]["arr"] == [0, 1, 2] and stop[0] == "stop"
    with pytest.raises(ValueError, match="keep"):
        DocumentKeeper(keep=0)


def test_documents_on_disk_outlive_the_worker_and_the_oldest_are_deleted(RE, tmp_path):
    keeper = DocumentKeeper(keep=2, directory=tmp_path / "docs")
    token = RE.subscribe(keeper)
    for k in range(3):
        RE(_step(2, {"sdl_correlation": f"c{k}"}))
    RE.unsubscribe(token)
    kept = keeper.documents("c2")
    # a new worker (a restart): nothing in memory, everything from its directory
    again = DocumentKeeper(keep=2, directory=tmp_path / "docs")
    assert again.documents("c2") == kept and again.documents("c1") == keeper.documents("c1")
    assert again.documents("c0") == [] and sorted(
        p.name for p in (tmp_path / "docs").iterdir()
    ) == [
        "c1.jsonl",
        "c2.jsonl",
    ]
    # a worker killed while writing leaves a cut last line: the whole lines are kept
    path = tmp_path / "docs" / "c2.jsonl"
    path.write_text(path.read_text() + '["event", {"cut')
    assert DocumentKeeper(directory=tmp_path / "docs").documents("c2") == kept
