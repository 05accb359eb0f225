"""The Zarr writer: every document lands on disk, readable with plain zarr."""

import json
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
import pytest
import zarr
from ophyd import Component, Device, Signal
from ophyd.sim import det, motor

from sdl.errors import ConfigError, StoreError
from sdl.store import FORMAT_VERSION, ZarrWriter, open_store


class Camera(Device):
    """A real ophyd device whose reading is a 2-D image."""

    image = Component(Signal, value=np.zeros((4, 6), dtype=np.uint16), kind="hinted")

    def trigger(self):
        self.image.put(np.random.default_rng(0).integers(0, 1000, (4, 6)).astype(np.uint16))
        return super().trigger()

    def describe(self):
        d = super().describe()
        d["cam_image"].update(dtype="array", shape=[4, 6], dtype_numpy="<u2")
        return d


def test_runs_streams_and_documents(RE, store_path):
    writer = ZarrWriter(store_path, flush_rows=3)
    RE.subscribe(writer)
    cam = Camera(name="cam")

    @bpp.run_decorator(md={"sample": "A1"})
    def plan():
        for x in range(7):
            yield from bps.mv(motor, x)
            yield from bps.trigger_and_read([motor, det, cam])

    (uid,) = RE(plan())
    root = zarr.open_group(str(store_path), mode="r")  # plain zarr, no sdl
    assert root.attrs["sdl"]["format_version"] == FORMAT_VERSION == 2
    runs = root["runs"]
    (row,) = np.flatnonzero(runs["uid"][:] == uid)
    assert json.loads(str(runs["start"][row]))["sample"] == "A1"
    assert json.loads(str(runs["stop"][row]))["exit_status"] == "success"
    assert [d["name"] for d in json.loads(str(runs["descriptors"][row]))] == ["primary"]
    assert json.loads(str(runs["streams"][row])) == {"primary": "primary"}
    primary = root["streams/primary"]
    assert primary["run"][:].tolist() == [row] * 7  # the run of each row
    np.testing.assert_array_equal(primary["data/motor"][:], np.arange(7.0))
    assert primary["data/cam_image"].shape == (7, 4, 6)
    assert primary["data/cam_image"].dtype == np.uint16
    assert primary["seq_num"][:].tolist() == list(range(1, 8))
    assert (
        sorted(name for name, _ in root.members()) == ["_wal", "experiments", "runs", "streams"]
        or "experiments" not in root
    )  # plain zarr lists no stray files (the log is hidden)

    view = open_store(store_path).run(uid[:8])
    assert view.to_dataframe()["motor"].tolist() == list(range(7))


def test_buffered_rows_reach_disk_at_stop_even_below_flush_size(RE, store_path):
    writer = ZarrWriter(store_path, flush_rows=10_000, flush_interval=3600)
    RE.subscribe(writer)

    @bpp.run_decorator()
    def plan():
        for _ in range(5):
            yield from bps.trigger_and_read([det])

    (uid,) = RE(plan())
    # on disk at the stop: in the write-ahead log (a block comes later), and readers see it
    from sdl.store._wal import read_records

    logged = [doc for _, name, doc, _ in read_records(store_path / "_wal") if name == "event"]
    assert len(logged) == 5
    assert len(open_store(store_path).run(uid).data("primary")["time"]) == 5
    writer.close()
    assert _rows_on_disk(store_path, uid) == 5


def test_not_a_store_is_refused(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a Zarr store"):
        ZarrWriter(tmp_path / "junk")
    with pytest.raises(StoreError, match="no campaign store"):
        open_store(tmp_path / "nothing")


def test_newer_format_is_refused(store_path):
    ZarrWriter(store_path)
    root = zarr.open_group(str(store_path), mode="a")
    root.attrs["sdl"] = {**root.attrs["sdl"], "format_version": FORMAT_VERSION + 1}
    with pytest.raises(StoreError, match="upgrade sdl"):
        open_store(store_path)


def _rows_on_disk(store_path, uid, stream="primary"):
    """Rows of ``uid``'s ``stream`` that plain zarr reads (format 2 layout)."""
    root = zarr.open_group(str(store_path), mode="r")
    if "runs/uid" not in root or f"streams/{stream}/time" not in root:
        return 0
    rows = np.flatnonzero(root["runs/uid"][:] == uid)
    if not len(rows):
        return 0
    table = root[f"streams/{stream}"]
    n = table["time"].shape[0]
    return int(np.sum(table["run"][:n] == rows[0]))


def test_buffered_events_reach_disk_within_the_flush_interval_without_new_events(RE, store_path):
    """Plain zarr sees logged documents within ``log_flush_interval``, even when a slow
    detector stops sending events."""
    writer = ZarrWriter(store_path, log_flush_interval=0.3, flush_rows=10_000)
    RE.subscribe(writer)
    seen = {}

    @bpp.run_decorator()
    def plan():
        for _ in range(3):
            yield from bps.trigger_and_read([det])
        uid = writer._runs and next(iter(writer._runs))
        seen["before"] = _rows_on_disk(store_path, uid)
        yield from bps.sleep(0.8)  # no events: only the timer can flush
        seen["after"] = _rows_on_disk(store_path, uid)
        seen["uid"] = uid

    RE(plan())
    assert seen["before"] < 3
    assert seen["after"] == 3


def test_array_data_reach_zarr_within_flush_interval_when_logged_documents_may_wait(RE, store_path):
    """Array-valued events are not in the log: their crash window is ``flush_interval``,
    however long logged documents may wait. One arriving after logged documents brings
    the block forward, and the block writes both."""
    cam = Signal(name="cam", value=np.arange(16.0).reshape(4, 4))
    writer = ZarrWriter(store_path, flush_interval=0.3, log_flush_interval=3600)
    RE.subscribe(writer)
    seen = {}

    @bpp.run_decorator()
    def plan():
        for _ in range(3):
            yield from bps.trigger_and_read([det])
        uid = next(iter(writer._runs))
        yield from bps.sleep(0.8)
        seen["scalars, logged"] = _rows_on_disk(store_path, uid)
        yield from bps.trigger_and_read([cam], name="frames")
        seen["frame, at once"] = _rows_on_disk(store_path, uid, "frames")
        yield from bps.sleep(0.8)
        seen["frame, after"] = _rows_on_disk(store_path, uid, "frames")
        seen["scalars, after"] = _rows_on_disk(store_path, uid)

    RE(plan())
    assert seen == {
        "scalars, logged": 0,  # safe in the log, waiting for log_flush_interval
        "frame, at once": 0,
        "frame, after": 1,
        "scalars, after": 3,
    }


def test_pause_flushes_buffered_events(RE, store_path):
    writer = ZarrWriter(store_path, flush_interval=3600, flush_rows=10_000)
    RE.subscribe(writer)
    RE.state_hook = writer.on_state_change

    @bpp.run_decorator()
    def plan():
        for _ in range(4):
            yield from bps.trigger_and_read([det])
        yield from bps.checkpoint()  # resume replays nothing before this
        yield from bps.pause()
        yield from bps.trigger_and_read([det])

    from bluesky.utils import RunEngineInterrupted

    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    uid = next(iter(writer._runs))
    assert _rows_on_disk(store_path, uid) == 4  # written at the pause, not at the stop
    RE.resume()
    assert _rows_on_disk(store_path, uid) == 5
    log = zarr.open_group(str(store_path), mode="r").attrs["operator_log"]
    assert [e["action"] for e in log][:2] == ["running -> paused", "paused -> running"]


def test_stop_and_pause_wait_for_the_disk(RE, store_path, monkeypatch):
    """syncfs (real, spied on) after the data of a pause and of a stop are written."""
    import sdl.store._writer as writer_module

    synced = []
    real_sync = writer_module.sync_filesystem

    def spy(path):
        synced.append(_rows_on_disk(store_path, uid) if (uid := next(iter(w._runs), None)) else -1)
        real_sync(path)

    monkeypatch.setattr(writer_module, "sync_filesystem", spy)
    w = ZarrWriter(store_path, flush_interval=3600)
    RE.subscribe(w)
    RE.state_hook = w.on_state_change

    @bpp.run_decorator()
    def plan():
        for _ in range(3):
            yield from bps.trigger_and_read([det])
        yield from bps.checkpoint()
        yield from bps.pause()
        yield from bps.trigger_and_read([det])

    from bluesky.utils import RunEngineInterrupted

    with pytest.raises(RunEngineInterrupted):
        RE(plan())
    assert synced == [3]  # at the pause, after its rows were written
    RE.resume()
    assert synced == [3, -1]  # at the stop, after the run was closed

    synced.clear()
    quiet = ZarrWriter(store_path.with_name("quiet.zarr"), sync_to_disk=False)
    RE.subscribe(quiet)
    RE(bpp.run_wrapper(bps.trigger_and_read([det])))
    assert synced == [-1]  # only the first writer synced


def test_writer_options_are_checked_by_name(store_path):
    with pytest.raises(ConfigError, match=r"flush_intervall.*flush_interval, flush_rows"):
        ZarrWriter.open(store_path, {"flush_intervall": 0.5})
    with pytest.raises(ConfigError, match=r"store_options.flush_interval must be greater than 0"):
        ZarrWriter.open(store_path, {"flush_interval": 0})
    assert not store_path.exists()  # checked before anything was created
    writer = ZarrWriter.open(store_path, {"flush_interval": 0.25, "sync_to_disk": False})
    assert (writer.flush_interval, writer.sync_to_disk) == (0.25, False)


def test_frame_memory_is_bounded_by_flush_bytes(store_path):
    """Frames are flushed by size, not only by count: the buffer never holds more than a block."""
    writer = ZarrWriter(store_path, flush_interval=3600, flush_rows=10_000, flush_bytes=4 << 20)
    frame = np.ones((256, 256), dtype=np.uint16)  # 128 KiB
    run = {"uid": "r1", "time": 0.0}
    writer("start", run)
    writer(
        "descriptor",
        {
            "uid": "d1",
            "run_start": "r1",
            "time": 0.0,
            "name": "primary",
            "data_keys": {"img": {"source": "x", "dtype": "array", "shape": [256, 256]}},
        },
    )
    peak = 0
    for i in range(100):
        writer(
            "event",
            {
                "uid": f"e{i}",
                "descriptor": "d1",
                "seq_num": i + 1,
                "time": float(i),
                "data": {"img": frame},
                "timestamps": {"img": float(i)},
            },
        )
        peak = max(peak, writer._streams["d1"].writer.nbytes)
    assert peak <= (4 << 20)
    assert _rows_on_disk(store_path, "r1") >= 96


def test_chunks_equal_to_the_fill_value_are_written_too(store_path):
    """Zarr's check for "empty" chunks halves frame throughput, so sdl turns it off.

    Also for an array reopened by a second descriptor of the same stream: the setting is
    zarr runtime config, not stored metadata.
    """
    writer = ZarrWriter(store_path, flush_interval=3600)
    writer("start", {"uid": "r1", "time": 0.0})
    keys = {"img": {"source": "x", "dtype": "array", "shape": [8, 8]}}
    dark = np.zeros((8, 8), dtype=np.uint16)  # equal to the fill value
    seq = 0
    for desc in ("d1", "d2"):
        writer(
            "descriptor",
            {"uid": desc, "run_start": "r1", "time": 0.0, "name": "primary", "data_keys": keys},
        )
        for _ in range(3):
            seq += 1
            writer(
                "event",
                {
                    "uid": f"e{seq}",
                    "descriptor": desc,
                    "seq_num": seq,
                    "time": float(seq),
                    "data": {"img": dark},
                    "timestamps": {"img": 0.0},
                },
            )
        writer.flush()
    writer("stop", {"uid": "s1", "run_start": "r1", "time": 9.0, "exit_status": "success"})
    arr = zarr.open_group(str(store_path))["streams/primary/data/img"]
    assert arr.shape == (6, 8, 8)
    assert arr.nchunks_initialized == arr.nchunks  # chunks of zeros are on disk, not implied
    np.testing.assert_array_equal(arr[:], 0)


def test_table_rows_continue_after_columns_were_left_uneven_by_a_crash(store_path):
    """A SIGKILL between the resizes of one row leaves columns of different lengths."""
    from sdl.store._table import CampaignTable

    root = zarr.open_group(str(store_path), mode="w")
    table = CampaignTable(root, [{"name": "x", "kind": "real"}], ["y"])
    row = {"experiment_id": 0, "batch": 0, "status": "planned", "param_x": 1.0}
    table.apply(row, 1.0)
    table.columns["status"].resize((2,))  # the crash: only one column grew
    table.apply({**row, "experiment_id": 1, "param_x": 2.0}, 2.0)
    assert table.parameters["x"][:].tolist() == [1.0, 2.0]
    assert table.columns["status"][:].tolist() == ["planned", "planned"]


def test_an_array_event_fed_from_another_event_loop_brings_the_block_forward(store_path):
    """A lab's stations each have a RunEngine, on its own event loop, feeding one writer:
    the block timer armed on one loop for logged documents is replaced from another."""
    import asyncio
    import threading

    import event_model

    writer = ZarrWriter(store_path, flush_interval=0.3, log_flush_interval=3600)
    loops = [asyncio.new_event_loop() for _ in range(2)]
    threads = [threading.Thread(target=loop.run_forever, daemon=True) for loop in loops]
    for t in threads:
        t.start()

    def feed(loop, *docs):
        async def call():
            for name, doc in docs:
                writer(name, doc)

        asyncio.run_coroutine_threadsafe(call(), loop).result(timeout=10)

    run = event_model.compose_run()
    scalars = run.compose_descriptor(
        name="primary", data_keys={"x": {"source": "s", "dtype": "number", "shape": []}}
    )
    frames = run.compose_descriptor(
        name="frames", data_keys={"img": {"source": "s", "dtype": "array", "shape": [4, 4]}}
    )
    try:
        feed(
            loops[0],
            ("start", run.start_doc),
            ("descriptor", scalars.descriptor_doc),
            ("event", scalars.compose_event(data={"x": 1.0}, timestamps={"x": 0.0})),
        )
        feed(
            loops[1],
            ("descriptor", frames.descriptor_doc),
            ("event", frames.compose_event(data={"img": np.ones((4, 4))}, timestamps={"img": 0})),
        )
        uid = run.start_doc["uid"]
        time.sleep(1.0)
        assert _rows_on_disk(store_path, uid, "frames") == 1
        assert _rows_on_disk(store_path, uid) == 1  # the block writes the logged ones too
    finally:
        writer.close()
        for loop in loops:
            loop.call_soon_threadsafe(loop.stop)
        for t in threads:
            t.join(5)
