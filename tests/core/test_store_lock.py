"""One writer per store: a real flock, refused second writers, released at any death."""

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest
import yaml
import zarr

from sdl import open_store
from sdl.store import StoreLockedError, WriterLock, ZarrWriter, lock_holder
from sdl.testing import stage_campaign_config

BUDGET = 12
# about 0.5 s an experiment: 6 s of campaign
SLOW = stage_campaign_config("lock-test", BUDGET, settle_time=0.4, exposure_time=0.1)
# three refused writers, each a fresh interpreter opening the store, must all run while the
# first campaign does: 15 s of campaign leaves room on a loaded machine (6 s did not, once)
LONG_BUDGET = 30
LONG = stage_campaign_config("lock-test", LONG_BUDGET, settle_time=0.4, exposure_time=0.1)


def _sdl(*args):
    exe = shutil.which("sdl")
    return [exe, *args] if exe else [sys.executable, "-m", "sdl.cli", *args]


def _start_slow_campaign(tmp_path, store, config=SLOW):
    cfg = tmp_path / "slow.yaml"
    cfg.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        _sdl("run", str(cfg), "--store", str(store), "--quiet", "--no-control"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and proc.poll() is None:
        try:
            if len(open_store(store).to_dataframe()) >= 1:
                return proc, cfg
        except OSError:
            pass
        time.sleep(0.05)
    out, err = proc.communicate(timeout=10)
    pytest.fail(f"the campaign did not start: {err}")


def _refused(proc, holder_pid):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"PID {holder_pid} on host {socket.gethostname()}" in proc.stderr
    assert "since" in proc.stderr


@pytest.mark.slow
def test_second_writers_are_refused_while_a_campaign_without_control_runs(tmp_path):
    store = tmp_path / "live.zarr"
    first, cfg = _start_slow_campaign(tmp_path, store, LONG)
    try:
        overwrite = subprocess.run(
            _sdl("run", str(cfg), "--store", str(store), "--overwrite", "--quiet"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        _refused(overwrite, first.pid)
        assert (store / "zarr.json").exists()  # nothing was deleted under the live writer
        resume = subprocess.run(
            _sdl("resume", str(store), "--quiet", "--no-control"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        _refused(resume, first.pid)
        repair = subprocess.run(
            _sdl("repair", str(store)), capture_output=True, text=True, timeout=120
        )
        _refused(repair, first.pid)
        assert first.poll() is None, "the refused writers ran after the first campaign ended"
    finally:
        out, err = first.communicate(timeout=180)
    assert first.returncode == 0, err
    df = open_store(store).to_dataframe()
    assert df.index.tolist() == list(range(LONG_BUDGET))
    assert (df["status"] == "done").all()
    assert lock_holder(store) is None  # released at the end


@pytest.mark.slow
def test_a_lock_left_by_kill_9_does_not_block_resume(tmp_path):
    store = tmp_path / "killed.zarr"
    first, _ = _start_slow_campaign(tmp_path, store)
    holder = lock_holder(store)
    assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert (store / ".sdl-writer" / "zarr.json").exists()  # the file stays, the lock does not
    assert lock_holder(store) is None
    resume = subprocess.run(
        _sdl("resume", str(store), "--quiet", "--no-control"),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resume.returncode == 0, resume.stderr
    df = open_store(store).to_dataframe()
    done = df[df["status"] == "done"]
    assert len(done) == BUDGET and done["run_uid"].is_unique


def test_a_second_writer_in_the_same_process_is_refused_until_the_first_closes(store_path):
    first = ZarrWriter(store_path)
    with pytest.raises(StoreLockedError, match=rf"PID {os.getpid()} on host") as info:
        ZarrWriter(store_path, overwrite=True)
    assert info.value.holder["pid"] == os.getpid()
    assert (store_path / "zarr.json").exists()  # the refused overwrite deleted nothing
    first.close()
    with ZarrWriter(store_path, overwrite=True) as second:
        assert second.lock.held
    assert lock_holder(store_path) is None


def test_overwrite_keeps_the_lock_it_holds_and_replaces_everything_else(store_path):
    with ZarrWriter(store_path) as w:
        w.root.attrs["marker"] = 1
    (store_path / "notes.txt").write_text("old")
    with ZarrWriter(store_path, overwrite=True) as w:
        inode = os.stat(store_path / ".sdl-writer" / "zarr.json").st_ino
        assert "marker" not in zarr.open_group(str(store_path), mode="r").attrs
        assert not (store_path / "notes.txt").exists()
        # the lock file survived the overwrite: a third writer is still refused
        with pytest.raises(StoreLockedError):
            WriterLock.acquire(store_path)
    assert os.stat(store_path / ".sdl-writer" / "zarr.json").st_ino == inode


def test_campaign_run_refuses_a_locked_store_before_touching_it(store_path):
    from ophyd.sim import det, motor

    from sdl import Campaign
    from sdl.planners import Real
    from sdl.protocols import set_settle_measure

    def campaign():  # a campaign object runs once
        return Campaign(
            parameters=[Real("x", -1, 1)],
            objectives=["det"],
            protocol=functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
            planner="sobol",
            budget=2,
        )

    with WriterLock.acquire(store_path, command="holder-test"):
        for kwargs in ({}, {"overwrite": True}):
            with pytest.raises(StoreLockedError, match="holder-test"):
                campaign().run(store=store_path, **kwargs)
        assert not (store_path / "zarr.json").exists()
    campaign().run(store=store_path)  # released: now it runs
    with pytest.raises(StoreLockedError, match="holder-test"):
        with WriterLock.acquire(store_path, command="holder-test"):
            campaign().resume(store=store_path)
    assert lock_holder(store_path) is None


def test_readers_ignore_the_lock(store_path):
    writer = ZarrWriter(store_path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # zarr warns about foreign files in a store
            root = zarr.open_group(str(store_path), mode="r")
            names = sorted(name for name, _ in root.members(max_depth=None))
            assert "runs" in names
            assert open_store(store_path).to_dataframe().empty
        meta = json.loads((store_path / ".sdl-writer" / "zarr.json").read_text())
        assert meta["attributes"]["sdl_writer"]["pid"] == os.getpid()
    finally:
        writer.close()
