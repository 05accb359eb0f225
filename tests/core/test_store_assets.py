"""Detectors that write their own files: the store keeps their references (resource, datum,
stream_resource, stream_datum) next to the events that point at them."""

import os
import uuid

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import numpy as np
import pytest
from ophyd.sim import SynSignalWithRegistry
from ophyd.status import StatusBase

from sdl.errors import StoreError
from sdl.store import ZarrWriter, open_store


def _frames():
    rng = np.random.default_rng(7)
    return lambda: rng.integers(0, 4000, (6, 5)).astype(np.uint16)


@pytest.fixture
def camera(tmp_path):
    """ophyd's simulated detector that saves every frame to an .npy file (spec NPY_SEQ)."""
    (tmp_path / "frames").mkdir()
    return SynSignalWithRegistry(_frames(), name="cam", save_path=str(tmp_path / "frames"))


def _load_npy_seq(resource, datum):
    path = os.path.join(resource["root"], resource["resource_path"])
    return np.load(f"{path}_{datum['datum_kwargs']['index']}.npy")


def test_resources_and_datums_resolve_to_the_frames(RE, store_path, camera):
    saved = []
    real_save = camera.save_func
    camera.save_func = lambda path, value: (saved.append(np.array(value)), real_save(path, value))
    RE.subscribe(ZarrWriter(store_path))
    (uid,) = RE(bp.count([camera], num=3))

    run = open_store(store_path).run(uid)
    (resource,) = run.assets("resource")
    datums = {d["datum_id"]: d for d in run.assets("datum")}
    ids = run.data("primary")["cam"]
    assert len(ids) == 3 and set(ids) == set(datums)
    for datum_id, frame in zip(ids, saved):
        np.testing.assert_array_equal(_load_npy_seq(resource, datums[datum_id]), frame)
    assert run.streams == ["primary"]  # the asset arrays are not a stream


def test_a_stored_event_never_points_at_an_unstored_datum(RE, store_path, camera):
    RE.subscribe(ZarrWriter(store_path, flush_rows=2, flush_interval=3600))
    seen = {}

    @bpp.stage_decorator([camera])
    def plan():
        uid = yield from bps.open_run()
        for _ in range(2):  # the second event fills a block of 2: it is written now
            yield from bps.trigger_and_read([camera])
        run = open_store(store_path).run(uid)
        seen["ids"] = list(run.data("primary")["cam"])
        seen["datums"] = [d["datum_id"] for d in run.assets("datum")]
        seen["resources"] = run.assets("resource")
        yield from bps.close_run()

    RE(plan())
    assert len(seen["ids"]) == 2
    assert set(seen["ids"]) <= set(seen["datums"]) and len(seen["resources"]) == 1


class StreamingCamera:
    """A detector that writes frames to its own file and emits StreamResource/StreamDatum
    (the ophyd-async pattern), written against bluesky.protocols."""

    def __init__(self, name, directory):
        self.name, self.parent = name, None
        self.path = os.path.join(directory, f"{name}-{uuid.uuid4().hex}.npy")
        self.frames, self.emitted = [], 0
        self.resource_uid = str(uuid.uuid4())
        self._next = _frames()

    def describe(self):
        return {
            f"{self.name}-image": {
                "source": "file",
                "dtype": "array",
                "shape": [6, 5],
                "dtype_numpy": "<u2",
                "external": "STREAM:",
            }
        }

    def read(self):
        return {}

    def trigger(self):
        self.frames.append(self._next())
        np.save(self.path, np.stack(self.frames))
        status = StatusBase()
        status.set_finished()
        return status

    def collect_asset_docs(self, index=None):
        if self.emitted == 0:
            yield (
                "stream_resource",
                {
                    "uid": self.resource_uid,
                    "data_key": f"{self.name}-image",
                    "mimetype": "application/x-npy",
                    "uri": f"file://localhost{self.path}",
                    "parameters": {},
                },
            )
        n = len(self.frames)
        yield (
            "stream_datum",
            {
                "uid": f"{self.resource_uid}/{self.emitted}",
                "stream_resource": self.resource_uid,
                "descriptor": "",
                "indices": {"start": self.emitted, "stop": n},
                "seq_nums": {"start": 0, "stop": 0},
            },
        )
        self.emitted = n


def test_stream_resources_and_datums_index_the_detector_file(RE, store_path, tmp_path):
    cam = StreamingCamera("scam", tmp_path)
    RE.subscribe(ZarrWriter(store_path))
    (uid,) = RE(bp.count([cam], num=3))

    run = open_store(store_path).run(uid)
    (resource,) = run.assets("stream_resource")
    datums = run.assets("stream_datum")
    assert resource["data_key"] == "scam-image" and resource["run_start"] == uid
    assert [(d["indices"]["start"], d["indices"]["stop"]) for d in datums] == [
        (0, 1),
        (1, 2),
        (2, 3),
    ]
    assert [d["seq_nums"]["start"] for d in datums] == [1, 2, 3]  # filled in by bluesky
    data = run.data("primary")
    assert len(data["time"]) == 3 and "scam-image" not in data  # the frames are in the file
    stack = np.load(resource["uri"].removeprefix("file://localhost"))
    for datum, frame in zip(datums, cam.frames):
        np.testing.assert_array_equal(stack[datum["indices"]["start"]], frame)


def test_the_assets_stream_name_is_reserved(store_path):
    writer = ZarrWriter(store_path)
    writer("start", {"uid": "r1", "time": 0.0})
    with pytest.raises(StoreError, match="'_assets' is reserved"):
        writer(
            "descriptor",
            {"uid": "d1", "run_start": "r1", "time": 0.0, "name": "_assets", "data_keys": {}},
        )
    writer.flush()
    with pytest.raises(ValueError, match="stream_datum"):
        open_store(store_path).run("r1").assets("frames")
