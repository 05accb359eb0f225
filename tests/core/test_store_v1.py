"""Stores of format 1 (a group per run, written by sdl before the write-ahead log) stay
readable, checkable and resumable. ``tests/data/v1_store.zarr`` was written by sdl at
commit 437787a (format 1): a 6-experiment simulated stage campaign."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from sdl import open_store
from sdl.config import load_campaign
from sdl.store import ZarrWriter, check_store
from sdl.store._writer_v1 import ZarrWriterV1
from sdl.testing import stage_campaign_config

V1 = Path(__file__).parent.parent / "data" / "v1_store.zarr"
CONFIG = stage_campaign_config("v1-store", 6, settle_time=0.01, exposure_time=0.01)


@pytest.fixture
def v1(tmp_path):
    store = tmp_path / "v1.zarr"
    shutil.copytree(V1, store)
    return store


def test_a_format_1_store_reads_as_before(v1):
    store = open_store(v1)
    assert store.format_version == 1
    df = store.to_dataframe()
    assert df["status"].tolist() == ["done"] * 6
    assert np.isfinite(df["intensity"]).all()
    run = store.run(df["run_uid"].iloc[0])
    assert run.start["sdl_experiment_id"] == 0
    assert run.stop["exit_status"] == "success"
    assert len(run.data("primary")["time"]) == 1
    assert len(store.runs()) == 7  # six experiments and the campaign run
    assert store.provenance and "versions" in store.provenance[0]
    assert check_store(v1) == []


def test_a_format_1_store_is_continued_in_format_1(v1):
    writer = ZarrWriter.open(v1)
    assert isinstance(writer, ZarrWriterV1)
    writer.close()
    result = load_campaign({**CONFIG, "budget": 8}).resume(store=v1)
    assert result.n_done == 8
    store = open_store(v1)
    assert store.format_version == 1
    assert store.to_dataframe()["status"].tolist() == ["done"] * 8
    assert len(store.campaign_runs) == 2
    assert check_store(v1) == []


def test_a_transition_logged_but_not_yet_in_the_table_is_not_damage(v1):
    """Format 1: a crash between the log's append and the table's update; resume
    completes the row."""
    before = open_store(v1).to_dataframe()
    # the last transition (experiment 5: running -> done) is logged; the table's commit
    # mark (status, written last) still says running
    zarr.open_array(str(v1 / "experiments/status"), mode="a")[5] = "running"
    assert check_store(v1) == []
    load_campaign(CONFIG).resume(store=v1)
    after = open_store(v1).to_dataframe()
    assert after["status"].tolist() == ["done"] * 6
    assert after["t_finished"].tolist() == before["t_finished"].tolist()


def test_a_format_1_writer_whose_last_write_fails_lets_go_of_the_store(v1, RE, monkeypatch):
    """close() with a run still open whose buffered rows fail to write (EIO, injected)
    raises, and still releases the store's writer lock: the same process can open the
    store again."""
    import errno

    import bluesky.plans as bp
    from ophyd.sim import det, motor

    from sdl.store import _writer_v1

    docs = []
    RE(bp.scan([det], motor, 0, 1, 3), lambda name, doc: docs.append((name, doc)))
    writer = ZarrWriter.open(v1)
    for name, doc in docs[:-1]:  # the run is still open at close
        writer(name, doc)

    def failing(self):
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(_writer_v1._Run, "flush", failing)
        with pytest.raises(OSError, match="Input/output error"):
            writer.close()
    ZarrWriter.open(v1).close()  # not refused as held by this process
    assert check_store(v1) == []
