"""A damaged table is named, refused by resume, and rebuilt from the event log by repair."""

import os
import shutil

import numpy as np
import pandas as pd
import pytest
import zarr

from sdl import open_store
from sdl.cli import main
from sdl.config import load_campaign
from sdl.store import StoreDamagedError, ZarrWriter, check_store, repair_store
from sdl.store import _table as table_module
from sdl.testing import stage_campaign_config

BUDGET = 6
CONFIG = stage_campaign_config("repair-test", BUDGET, settle_time=0.01, exposure_time=0.01)
COMPARED = [
    "batch",
    "status",
    "x",
    "y",
    "intensity",
    "run_uid",
    "cause",
    "failure_kind",
    "rerun_of",
    "t_planned",
    "t_started",
    "t_finished",
]


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """A real campaign's store and its table, saved before any damage."""
    store = tmp_path_factory.mktemp("intact") / "intact.zarr"
    load_campaign(CONFIG).run(store=store)
    return store, open_store(store).to_dataframe().sort_index()


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    # name: (how, what the check must name)
    "status chunk deleted": (
        lambda s: os.remove(s / "experiments/status/c/0"),
        "experiments/status/c/0",
    ),
    "table zarr.json deleted": (
        lambda s: os.remove(s / "experiments/zarr.json"),
        "experiments/zarr.json",
    ),
    "objective chunk truncated": (
        lambda s: _truncate(s / "experiments/objectives/intensity/c/0"),
        "experiments/objectives/intensity/c/0",
    ),
    "status zarr.json truncated": (
        lambda s: _truncate(s / "experiments/status/zarr.json"),
        "experiments/status/zarr.json",
    ),
    "table zarr.json truncated": (
        lambda s: _truncate(s / "experiments/zarr.json"),
        "experiments/zarr.json",
    ),
    "parameter array deleted": (
        lambda s: shutil.rmtree(s / "experiments/parameters/x"),
        "experiments/parameters/x",
    ),
    "status array short": (
        lambda s: zarr.open_array(str(s / "experiments/status"), mode="a").resize((2,)),
        "experiments/status",
    ),
    "stale status": (
        lambda s: zarr.open_array(str(s / "experiments/status"), mode="a").__setitem__(
            3, "running"
        ),
        "experiment 3: 'running' in the table, 'done' in the log",
    ),
}


def _damaged_copy(intact, tmp_path, kind):
    store = tmp_path / "damaged.zarr"
    shutil.copytree(intact[0], store)
    DAMAGE[kind][0](store)
    return store


def _same_table(store, reference):
    df = open_store(store).to_dataframe().sort_index()
    assert df.index.tolist() == reference.index.tolist()
    pd.testing.assert_frame_equal(df[COMPARED], reference[COMPARED])


def test_an_intact_store_passes(intact):
    assert check_store(intact[0]) == []


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_named_refused_by_resume_and_show_and_repaired(intact, tmp_path, capsys, kind):
    store = _damaged_copy(intact, tmp_path, kind)
    problems = check_store(store)
    assert problems, f"{kind} was not detected"
    assert any(DAMAGE[kind][1] in str(p) for p in problems), problems

    for command in (["resume", str(store), "--quiet", "--no-control"], ["show", str(store)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "is damaged" in err and f"sdl repair {store}" in err, err
        assert DAMAGE[kind][1].split(":")[0] in err
    assert main(["check", str(store)]) == 1
    capsys.readouterr()

    assert main(["repair", str(store)]) == 0
    out = capsys.readouterr().out
    assert "rebuilt the table from the event log" in out
    assert check_store(store) == []
    _same_table(store, intact[1])
    kept = [p.name for p in store.iterdir() if p.name.startswith("experiments.damaged-")]
    assert len(kept) == 1 and kept[0] in out  # the damaged table is kept, not deleted


def test_resume_after_repair_completes_the_budget_without_rerunning(intact, tmp_path, capsys):
    store = _damaged_copy(intact, tmp_path, "status chunk deleted")
    report = repair_store(store)
    assert report.experiments == BUDGET and report.remaining == []
    assert main(["resume", str(store), "--quiet", "--no-control", "--budget", "9"]) == 0
    df = open_store(store).to_dataframe().sort_index()
    assert df.index.tolist() == list(range(9))
    assert (df["status"] == "done").all()
    # the first experiments kept their runs and values: nothing was measured again
    pd.testing.assert_frame_equal(df.loc[: BUDGET - 1, COMPARED], intact[1][COMPARED])
    assert df["run_uid"].is_unique


def test_python_resume_refuses_a_damaged_store(intact, tmp_path):
    store = _damaged_copy(intact, tmp_path, "table zarr.json deleted")
    with pytest.raises(StoreDamagedError, match=r"experiments/zarr.json.*sdl repair"):
        load_campaign(CONFIG).resume(store=store)
    assert not any(p.name.startswith("experiments.damaged") for p in store.iterdir())


def test_every_transition_is_logged_before_the_call_returns_and_in_zarr_before_the_table(
    tmp_path, monkeypatch
):
    """The log is the source of truth. Each transition is in the write-ahead log when it
    is staged for the table; each block appends the transitions to the ``experiments``
    stream table before it writes the table."""
    from sdl.store._wal import read_records

    store = tmp_path / "order.zarr"
    staged, committed = [], []
    stage, write = table_module.CampaignTable.stage, table_module.CampaignTable._write

    def spy_stage(self, values, timestamp):
        logged = [d["time"] for _, name, d, f in read_records(store / "_wal") if f & 1]
        staged.append(timestamp in logged)
        stage(self, values, timestamp)

    def spy_write(self, block):  # what a block writes into the table
        root = zarr.open_group(str(store), mode="r")
        times = root["streams/experiments/time"][:] if "streams/experiments" in root else []
        want = {
            v
            for per_row in block.values()
            for v in per_row.values()
            if isinstance(v, float) and v > 1e9
        }
        if block:
            committed.append(want <= set(np.asarray(times).tolist()))
        write(self, block)

    monkeypatch.setattr(table_module.CampaignTable, "stage", spy_stage)
    monkeypatch.setattr(table_module.CampaignTable, "_write", spy_write)
    load_campaign({**CONFIG, "budget": 2}).run(store=store, store_options={"flush_interval": 3600})
    assert len(staged) == 6 and all(staged)
    assert committed and all(committed)


def test_repair_refuses_a_locked_store(intact, tmp_path):
    store = _damaged_copy(intact, tmp_path, "status chunk deleted")
    with ZarrWriter(store):
        with pytest.raises(OSError, match=f"PID {os.getpid()}"):
            repair_store(store)
