"""The store's write-ahead log: documents are durable when the writer's call returns,
Zarr is written in blocks, readers see the campaign table at once, and a writer that
died (or died inside a block) leaves nothing that the next writer does not redo."""

import functools
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
import zarr
from ophyd.sim import det, motor

from sdl import Campaign, open_store
from sdl.planners import Objective, Real, SobolPlanner
from sdl.protocols import set_settle_measure
from sdl.store import ZarrWriter, check_store
from sdl.store._wal import read_records, segments


def _plan(n, start=0):
    @bpp.run_decorator(md={"purpose": "wal"})
    def plan():
        for i in range(start, start + n):
            yield from bps.mv(motor, i)
            yield from bps.trigger_and_read([motor, det])

    return plan()


def _fail_fdatasync(monkeypatch, at_call):
    """``os.fdatasync`` raises EIO at its ``at_call``-th call (injected: this machine's disk
    does not fail on demand); every other call syncs."""
    import errno
    import os

    real, calls = os.fdatasync, []

    def failing(fd):
        calls.append(fd)
        if len(calls) == at_call:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing)


def _sobol_campaign(budget, protocol=None):
    """A campaign over ``x`` in [-2, 2] (Sobol, seed 1) maximizing ``det``; its protocol
    ``set_settle_measure`` on ``motor`` unless given."""
    objectives = [Objective("det", goal="maximize")]
    return Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -2, 2)], objectives, seed=1),
        protocol=protocol
        or functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det]),
        budget=budget,
    )


def _died(writer):
    """What a SIGKILL leaves: no block, no close; the kernel drops the lock."""
    writer.lock.release()


def test_readers_see_every_transition_before_any_block(RE, tmp_path):
    store = tmp_path / "live.zarr"
    seen = []

    def protocol(point, md=None):
        # a reader in the middle of the campaign: what has happened so far
        df = open_store(store).to_dataframe()
        on_disk = zarr.open_group(str(store), mode="r")["experiments/status"].shape[0]
        seen.append((df["status"].tolist(), on_disk))
        yield from set_settle_measure(point, movables={"x": motor}, detectors=[det], md=md)

    objectives = [Objective("det", goal="maximize")]
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -2, 2)], objectives, seed=1),
        protocol=protocol,
        budget=4,
    )
    campaign.run(RE, store=store, store_options={"flush_interval": 3600})
    for k, (statuses, on_disk) in enumerate(seen):
        assert statuses == ["done"] * k + ["running"]  # every transition, at once
        assert on_disk == 0  # none of it in the Zarr table yet: it came from the log
    assert open_store(store).to_dataframe()["status"].tolist() == ["done"] * 4
    assert segments(store / "_wal") == []  # all written to Zarr and trimmed at close


def _fed_all_but_the_stop(RE, writer, plan):
    docs = []
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    (uid,) = RE(plan)
    RE.unsubscribe(token)
    for name, doc in docs[:-1]:  # a stop that leaves no run open would write a block
        writer(name, doc)
    return uid


def test_a_writer_that_died_loses_nothing_the_next_one_writes_it(RE, tmp_path):
    store = tmp_path / "died.zarr"
    writer = ZarrWriter(store, flush_interval=3600)
    uid = _fed_all_but_the_stop(RE, writer, _plan(6))
    _died(writer)
    root = zarr.open_group(str(store), mode="r")
    assert "streams/primary/time" not in root and "runs/uid" in root  # no rows in Zarr yet
    assert not any(root["runs/uid"][:])
    records = list(read_records(store / "_wal"))
    assert [name for _, name, _, _ in records].count("event") == 6

    ZarrWriter(store).close()  # replays the log
    opened = open_store(store)
    assert opened.runs() == [uid]
    run = opened.run(uid)
    assert run.start["purpose"] == "wal" and run.stop is None  # the crash cut it
    data = run.data("primary")
    np.testing.assert_array_equal(data["motor"], np.arange(6.0))
    assert data["seq_num"].tolist() == list(range(1, 7))
    assert segments(store / "_wal") == []


def test_a_block_cut_by_a_crash_is_cut_back_and_written_again(RE, tmp_path):
    store = tmp_path / "cut.zarr"
    writer = ZarrWriter(store, flush_interval=3600)
    token = RE.subscribe(writer)
    (first,) = RE(_plan(5))  # its stop writes a block: 5 rows and the mark
    RE.unsubscribe(token)
    docs = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    (second,) = RE(_plan(3, start=5))
    for name, doc in docs[:-1]:  # all but the stop: in the log, not in a block
        writer(name, doc)
    # a crash inside the next block: its stream rows appended (real writes), no mark
    writer._tables["primary"].flush()
    assert zarr.open_group(str(store), mode="r")["streams/primary/time"].shape[0] == 8
    _died(writer)

    ZarrWriter(store).close()  # cuts back to the mark's 5 rows, then replays the log
    table = zarr.open_group(str(store), mode="r")["streams/primary"]
    assert table["time"].shape[0] == table["seq_num"].shape[0] == 8  # not 11
    opened = open_store(store)
    assert opened.run(first).data("primary")["seq_num"].tolist() == [1, 2, 3, 4, 5]
    cut = opened.run(second)
    assert cut.data("primary")["motor"].tolist() == [5.0, 6.0, 7.0]
    assert cut.stop is None  # the crash cut it


def test_a_record_cut_in_the_middle_is_not_a_record(RE, tmp_path):
    store = tmp_path / "torn.zarr"
    writer = ZarrWriter(store, flush_interval=3600)
    uid = _fed_all_but_the_stop(RE, writer, _plan(2))
    _died(writer)
    (segment,) = segments(store / "_wal")
    with open(segment, "ab") as f:
        f.write(b'[999, "event", {"descriptor": "x", "da')  # a write cut by the crash
    ZarrWriter(store).close()
    assert len(open_store(store).run(uid).data("primary")["time"]) == 2
    assert segments(store / "_wal") == []


def test_campaign_after_a_kill_in_the_log_only_window_resumes_exactly(RE, tmp_path):
    """A campaign whose writer died with every transition only in the log: resume sees
    them all (no experiment re-run, none lost)."""
    store = tmp_path / "camp.zarr"
    objectives = [Objective("det", goal="maximize")]
    protocol = functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det])

    def campaign(budget):
        return Campaign(
            objectives=objectives,
            planner=SobolPlanner([Real("x", -2, 2)], objectives, seed=3),
            protocol=protocol,
            budget=budget,
        )

    camp = campaign(3)
    writers = []
    real_open = ZarrWriter.open

    def spy(*args, **kwargs):
        w = real_open(*args, **kwargs)
        writers.append(w)
        w._flush_block = w.flush = lambda: None  # no block written, as if it died at once
        w.close = lambda **_: None  # the process "dies": no last block at the end
        return w

    ZarrWriter.open = spy
    try:
        camp.run(RE, store=store, store_options={"flush_interval": 3600})
    finally:
        ZarrWriter.open = real_open
    _died(writers[0])
    assert zarr.open_group(str(store), mode="r")["experiments/status"].shape[0] == 0
    assert open_store(store).to_dataframe()["status"].tolist() == ["done"] * 3
    assert check_store(store) == []  # a table behind the log's tail is not damage

    result = campaign(5).resume(RE, store=store)
    df = open_store(store).to_dataframe()
    assert result.n_done == 5
    assert df["status"].tolist() == ["done"] * 5  # nothing re-run, nothing lost
    assert df["run_uid"].is_unique
    assert check_store(store) == []


def test_a_block_between_a_streams_descriptor_and_its_first_event_is_not_damage(RE, tmp_path):
    """Blocks are taken in the writer's own thread, so one may fall between the ledger
    stream's descriptor and its first event (seen as 'streams/experiments: unreadable
    (KeyError: time)' after a SIGKILL in the random-kill test): the runs table names the
    stream's table, which has no committed row yet. Not damage: the rows are in the log."""
    store = tmp_path / "between.zarr"
    writer = ZarrWriter(store, flush_interval=3600)
    objectives = [Objective("det", goal="maximize")]
    protocol = functools.partial(set_settle_measure, movables={"x": motor}, detectors=[det])
    campaign = Campaign(
        objectives=objectives,
        planner=SobolPlanner([Real("x", -2, 2)], objectives, seed=3),
        protocol=protocol,
        budget=2,
    )
    seen = []

    def feed(name, doc):
        writer(name, doc)
        if name == "descriptor" and doc.get("name") == "experiments" and not seen:
            seen.append(doc)
            writer.flush()  # the block lands here

    RE.subscribe(feed)
    RE(campaign.plan())
    assert seen
    _died(writer)  # the process dies before any later block
    table = zarr.open_group(str(store), mode="r")["streams/experiments"]
    assert "time" not in table  # no committed row
    assert check_store(store) == []
    assert open_store(store).to_dataframe()["status"].tolist() == ["done"] * 2


def test_each_settled_experiment_is_synced_to_disk_before_the_next_starts(
    RE, tmp_path, monkeypatch
):
    """With sync_to_disk: one fdatasync of the log per experiment, right after its final
    transition (which comes after its run's stop), and one at the campaign's stop."""
    import os

    store = tmp_path / "sync.zarr"
    at_sync = []
    real = os.fdatasync

    def spy(fd):
        logged = [d["data"]["status"] for _, _, d, f in read_records(store / "_wal") if f & 1]
        at_sync.append(logged)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spy)
    _sobol_campaign(3).run(RE, store=store, store_options={"flush_interval": 3600})
    # the log as each sync saw it: right after each experiment's final transition, then at
    # the campaign run's stop (no sync at the experiments' own run stops)
    assert [logged[-1] for logged in at_sync] == ["done"] * 4
    assert [logged.count("done") for logged in at_sync] == [1, 2, 3, 3]


def test_a_log_that_cannot_reach_the_disk_ends_the_campaign_with_the_store_named(
    RE, tmp_path, monkeypatch
):
    """A disk that fails the log's fdatasync (EIO, injected: this machine's disk does not
    fail on demand) stops the campaign before the next experiment is planned, with an
    error that names the store and the call; what was measured stays in the store."""

    from sdl.errors import StoreError

    store = tmp_path / "eio.zarr"
    _fail_fdatasync(monkeypatch, at_call=1)
    campaign = _sobol_campaign(3)
    with pytest.raises(StoreError, match=r"eio\.zarr.*fdatasync.*Input/output error"):
        campaign.run(
            RE, store=store, store_options={"flush_interval": 3600, "log_flush_interval": 3600}
        )
    table = open_store(store).to_dataframe()
    assert table["status"].tolist() == ["done"]  # the next one never started
    assert table["det"].notna().all()
    ZarrWriter(store).close()  # the failed campaign's writer let go of the store


def test_a_writer_whose_last_block_fails_lets_go_of_the_store(tmp_path, monkeypatch, RE):
    """close() with a block that fails (the filesystem's sync fails: EIO, injected)
    raises, and still releases the store's writer lock: the same process opens the store
    again, and that writer writes what the failed block held, from the log."""
    import errno

    from sdl.store import _writer

    store = tmp_path / "late.zarr"
    writer = ZarrWriter(store, flush_interval=3600, log_flush_interval=3600)
    RE.subscribe(writer)
    (uid,) = RE(_plan(3))

    def failing(path):
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(_writer, "sync_filesystem", failing)
        with pytest.raises(OSError, match="Input/output error"):
            writer.close()
    ZarrWriter(store).close()  # not refused as held by this process; replays the log
    run = open_store(store).run(uid)
    assert run.data("primary")["motor"].tolist() == [0, 1, 2]
    assert check_store(store) == []


@pytest.mark.parametrize("in_zarr", [True, False], ids=["cut-after-a-block", "cut-in-the-log"])
def test_a_cut_run_sent_again_completes_its_row_without_doubling_events(RE, tmp_path, in_zarr):
    """A station's RE worker that outlived a dead coordinator sends a run's documents again
    from its start: the writer completes the run the crash cut, in its own row, and
    writes each event once (also when that writer dies before a block and the next one
    replays its log)."""
    store = tmp_path / "again.zarr"
    docs = []
    token = RE.subscribe(lambda name, doc: docs.append((name, doc)))
    (uid,) = RE(_plan(6))
    RE.unsubscribe(token)
    events = [i for i, (name, _) in enumerate(docs) if name == "event"]
    cut = events[2]  # the crash: start, descriptor and two events stored
    writer = ZarrWriter(store, flush_interval=3600)
    for name, doc in docs[:cut]:
        writer(name, doc)
    if in_zarr:
        writer.flush()
    _died(writer)
    for dies in (True, False):
        writer = ZarrWriter(store, flush_interval=3600)
        for name, doc in docs:  # the whole run again
            writer(name, doc)
        if dies:  # dies again with the run sent again only in its log
            _died(writer)
            continue
        writer.close()
    reader = open_store(store)
    assert reader.runs() == [uid]
    run = reader.run(uid)
    assert run.stop is not None and run.stop["exit_status"] == "success"
    data = run.data("primary")
    order = np.argsort(data["seq_num"])
    assert data["seq_num"][order].tolist() == [1, 2, 3, 4, 5, 6]
    assert data["motor"][order].tolist() == [0, 1, 2, 3, 4, 5]
    assert len(run.descriptors) == 1
    assert check_store(store) == []


def test_a_campaign_whose_last_block_fails_lets_go_of_the_store_and_its_channel(
    RE, tmp_path, monkeypatch
):
    """The session's end writes a last block; when that fails (the filesystem's sync fails:
    EIO, injected after the campaign's first block), ``run`` raises it, and still stops
    the control channel's watcher and releases the store: the same process opens the
    store again, and every experiment is there, from the log."""
    import errno
    import threading

    from sdl.errors import StoreError
    from sdl.store import _writer

    store = tmp_path / "end.zarr"
    real = _writer.sync_filesystem
    calls = []

    def failing_after_the_first(path):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    monkeypatch.setattr(_writer, "sync_filesystem", failing_after_the_first)
    campaign = _sobol_campaign(3)
    with pytest.raises(StoreError, match=r"end\.zarr: writing a block.*Input/output error"):
        campaign.run(
            RE,
            store=store,
            control=True,
            store_options={"flush_interval": 3600, "log_flush_interval": 3600},
        )
    assert len(calls) == 2  # the first block, then the session's last
    assert not [t for t in threading.enumerate() if t.name == "sdl-control-watcher"]
    monkeypatch.setattr(_writer, "sync_filesystem", real)
    ZarrWriter(store).close()  # not refused as held by this process; replays the log
    assert open_store(store).to_dataframe()["status"].tolist() == ["done"] * 3
    assert check_store(store) == []


@pytest.mark.timeout(120)  # the code before left the RunEngine wedged: its halt hung
def test_a_paused_campaign_stopped_with_a_failing_last_block_lets_go_of_the_store(
    RE, tmp_path, monkeypatch, caplog
):
    """A campaign paused with nobody watching its channel is ended by the caller
    (``RE.stop()``); the writer's block and the session's end then run in the RunEngine's
    state hook. When the block fails (the filesystem's sync fails: EIO, injected), the
    RunEngine still ends idle, the failure is logged with the store's path, and the store
    is released: the same process opens it again and finds the experiment done before
    the pause."""
    import errno
    import threading

    from bluesky.utils import RunEngineInterrupted

    from sdl.store import _writer

    store = tmp_path / "paused.zarr"
    asked = []

    def protocol(point, md=None):
        if not asked:  # a deferred pause: it lands at the next checkpoint
            asked.append(True)  # (request_pause waits for the RunEngine's loop: this thread)
            threading.Thread(target=RE.request_pause, kwargs={"defer": True}).start()
        yield from set_settle_measure(point, movables={"x": motor}, detectors=[det], md=md)

    campaign = _sobol_campaign(3, protocol)
    with pytest.raises(RunEngineInterrupted):
        campaign.run(
            RE, store=store, store_options={"flush_interval": 3600, "log_flush_interval": 3600}
        )
    assert RE.state == "paused"

    def failing(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_writer, "sync_filesystem", failing)
    with caplog.at_level("ERROR"):
        RE.stop()
    assert RE.state == "idle"
    assert any(str(store) in r.getMessage() and r.exc_info for r in caplog.records)
    monkeypatch.undo()
    ZarrWriter(store).close()  # not refused as held by this process; replays the log
    assert open_store(store).to_dataframe()["status"].tolist()[0] == "done"
    assert check_store(store) == []


def test_a_disk_error_mid_campaign_on_a_stage_that_moves_in_real_time(tmp_path, monkeypatch):
    """sdl's simulated stage, its moves and exposures taking real time (0.05 s each): the
    log's fdatasync fails (EIO, injected) when the third experiment settles. The campaign
    ends with a StoreError naming the store; the two experiments before it and the third's
    measurement are in the store, which the same process opens again."""

    from sdl.config import load_campaign
    from sdl.errors import StoreError
    from sdl.testing import stage_campaign_config

    store = tmp_path / "moving.zarr"
    _fail_fdatasync(monkeypatch, at_call=3)
    config = stage_campaign_config("moving", 6, settle_time=0.05, exposure_time=0.05)
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=r"moving\.zarr.*fdatasync.*Input/output error"):
        load_campaign(config).run(store=store)
    assert time.monotonic() - t0 > 3 * 0.1  # three experiments' moves and exposures
    monkeypatch.undo()
    ZarrWriter(store).close()  # not held by this process
    table = open_store(store).to_dataframe()
    assert table["status"].tolist() == ["done"] * 3  # the third's transition was logged
    assert table["intensity"].notna().all()
    assert check_store(store) == []
