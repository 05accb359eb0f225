"""How fast the store takes bluesky documents, against plain-Zarr and raw-file baselines.

Run:  python benchmarks/store_throughput.py [--events N] [--frames N] [--dir DIR] [--repeats N]

Measured in one process, on the same disk, one after another:

* scalar events through :class:`sdl.store.ZarrWriter` (3 data keys per event) against
  a naive one-row-per-event Zarr append, batched Zarr appends, and a raw file with an
  ``fsync`` per row;
* 512 x 512 uint16 frames through the writer against batched plain-Zarr appends with the
  same codec and chunks (with zarr's default array config, and with sdl's) and sequential
  raw writes with ``fsync`` (the store itself does not fsync: see docs/store.md);
* the same frames from an ophyd camera under a bluesky RunEngine, with the writer
  subscribed and without any subscriber (the RunEngine's own ceiling);
* peak RSS while streaming.

Prints a table with ratios to the baselines; the numbers are not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import zarr


def _spread(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:,.0f}" for v in values) + "]"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _docs(n: int, keys: dict[str, object], rng: np.random.Generator, frames: bool = False):
    """start, descriptor, n events (generated lazily), stop."""
    run_uid, desc_uid = str(uuid.uuid4()), str(uuid.uuid4())
    t = time.time()
    start = {"uid": run_uid, "time": t, "plan_name": "benchmark"}
    data_keys = {}
    for k, sample in keys.items():
        arr = np.asarray(sample)
        data_keys[k] = {
            "source": "bench",
            "dtype": "array" if arr.ndim else "number",
            "shape": list(arr.shape),
            "dtype_numpy": arr.dtype.str,
        }
    descriptor = {
        "uid": desc_uid,
        "run_start": run_uid,
        "time": t,
        "name": "primary",
        "data_keys": data_keys,
        "configuration": {},
        "object_keys": {},
    }
    yield "start", start
    yield "descriptor", descriptor
    for i in range(n):
        if frames:
            data = dict(keys)
        else:
            data = {k: float(rng.random()) for k in keys}
        yield (
            "event",
            {
                "uid": str(i),
                "descriptor": desc_uid,
                "seq_num": i + 1,
                "time": t + i * 1e-4,
                "data": data,
                "timestamps": dict.fromkeys(data, t),
                "filled": {},
            },
        )
    yield (
        "stop",
        {
            "uid": str(uuid.uuid4()),
            "run_start": run_uid,
            "time": time.time(),
            "exit_status": "success",
            "num_events": {"primary": n},
        },
    )


def bench_writer(
    path: Path, n: int, keys: dict[str, object], frames: bool = False, sync: bool = True
) -> float:
    """Documents of one run through the writer, from start to stop (its flush and syncfs)."""
    from sdl.store import ZarrWriter

    writer = ZarrWriter(path, flush_interval=1.0, sync_to_disk=sync)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for name, doc in _docs(n, keys, rng, frames):
        writer(name, doc)
    return time.perf_counter() - t0


def bench_naive_zarr(path: Path, n: int) -> float:
    root = zarr.open_group(str(path), mode="w")
    arrays = [root.create_array(k, shape=(0,), chunks=(8192,), dtype="f8") for k in ("a", "b", "c")]
    t0 = time.perf_counter()
    for i in range(n):
        for a in arrays:
            a.append(np.array([float(i)]))
    return time.perf_counter() - t0


def bench_batched_zarr(path: Path, n: int, batch: int = 10_000) -> float:
    root = zarr.open_group(str(path), mode="w")
    arrays = [root.create_array(k, shape=(0,), chunks=(8192,), dtype="f8") for k in ("a", "b", "c")]
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        block = np.arange(i, min(n, i + batch), dtype="f8")
        for a in arrays:
            a.append(block)
    return time.perf_counter() - t0


def bench_fsync_rows(path: Path, n: int) -> float:
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        row = np.zeros(3).tobytes()
        for _ in range(n):
            f.write(row)
            f.flush()
            os.fsync(f.fileno())
    return time.perf_counter() - t0


def bench_sequential_fsync(path: Path, n_frames: int, frame: np.ndarray) -> float:
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(n_frames):
            f.write(frame.tobytes())
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t0


def bench_batched_zarr_frames(
    path: Path, n_frames: int, frame: np.ndarray, *, sdl_config: bool
) -> float:
    """128-frame blocks appended to one Zarr array with sdl's codec and chunks.

    ``sdl_config``: also with sdl's array config (every chunk written without first
    comparing it with the fill value); otherwise zarr's default config.
    """
    from sdl.store._stream import _ARRAY_COMPRESSORS, _ARRAY_CONFIG

    root = zarr.open_group(str(path), mode="w")
    arr = root.create_array(
        "f",
        shape=(0, *frame.shape),
        chunks=(8, *frame.shape),
        dtype=frame.dtype,
        compressors=_ARRAY_COMPRESSORS,
        config=_ARRAY_CONFIG if sdl_config else None,
    )
    block = np.stack([frame] * 128)
    t0 = time.perf_counter()
    for i in range(0, n_frames, 128):
        arr.append(block[: min(128, n_frames - i)])
    return time.perf_counter() - t0


def bench_run_engine_frames(path: Path | None, n_frames: int, frame: np.ndarray) -> float:
    """``count`` of a camera (a real ophyd device) under a RunEngine: one event per frame.

    ``path=None``: the RunEngine alone, no subscriber; otherwise with sdl's writer.
    """
    from bluesky import RunEngine
    from bluesky.plans import count
    from ophyd import Component, Device, Signal

    from sdl.store import ZarrWriter

    class Camera(Device):
        image = Component(Signal, value=frame, kind="hinted")

        def describe(self):
            d = super().describe()
            d["cam_image"].update(dtype="array", shape=list(frame.shape), dtype_numpy="<u2")
            return d

    RE = RunEngine({}, call_returns_result=False)
    if path is not None:
        RE.subscribe(ZarrWriter(path))
    t0 = time.perf_counter()
    RE(count([Camera(name="cam")], num=n_frames))
    return time.perf_counter() - t0


def _frame(rng: np.random.Generator) -> np.ndarray:
    # a detector-like frame: a smooth peak with Poisson noise (compresses like real data)
    y, x = np.mgrid[0:512, 0:512]
    peak = 2000 * np.exp(-((x - 250) ** 2 + (y - 270) ** 2) / (2 * 60**2)) + 100
    return rng.poisson(peak).astype(np.uint16)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000, help="scalar events for the writer")
    parser.add_argument(
        "--naive-events", type=int, default=2_000, help="events for the naive baseline"
    )
    parser.add_argument(
        "--fsync-rows", type=int, default=2_000, help="rows for the fsync-per-row baseline"
    )
    parser.add_argument("--frames", type=int, default=1_000, help="512x512 uint16 frames")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each sdl measurement (median shown)"
    )
    args = parser.parse_args()

    base = Path(args.dir or tempfile.mkdtemp(prefix="sdl-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        keys = {"motor": 0.0, "det": 0.0, "det2": 0.0}
        scalar_rates = [
            args.events / bench_writer(base / f"writer-scalar-{i}.zarr", args.events, keys)
            for i in range(args.repeats)
        ]
        writer_rate = statistics.median(scalar_rates)
        naive_rate = args.naive_events / bench_naive_zarr(base / "naive.zarr", args.naive_events)
        batched_rate = args.events / bench_batched_zarr(base / "batched.zarr", args.events)
        fsync_rate = args.fsync_rows / bench_fsync_rows(base / "rows.bin", args.fsync_rows)
        rows += [
            (
                "scalar events: sdl ZarrWriter",
                f"{writer_rate:,.0f} events/s",
                f"median of {_spread(scalar_rates)}",
            ),
            (
                "  naive Zarr append per event",
                f"{naive_rate:,.0f} rows/s",
                f"sdl = {writer_rate / naive_rate:,.0f}x",
            ),
            (
                "  batched Zarr appends (10k rows)",
                f"{batched_rate:,.0f} rows/s",
                f"sdl = {writer_rate / batched_rate:.2f}x",
            ),
            (
                "  raw file, fsync per row",
                f"{fsync_rate:,.0f} rows/s",
                f"sdl = {writer_rate / fsync_rate:,.1f}x",
            ),
        ]
        rss_after_scalar = _rss_mb()

        frame = _frame(np.random.default_rng(1))
        mb = args.frames * frame.nbytes / 1e6
        frame_rates = []
        for i in range(args.repeats):
            path = base / f"writer-frames-{i}.zarr"
            frame_rates.append(
                mb / bench_writer(path, args.frames, {"cam_image": frame}, frames=True)
            )
        frame_rate = statistics.median(frame_rates)
        nosync_rates = [
            mb
            / bench_writer(
                base / f"writer-nosync-{i}.zarr",
                args.frames,
                {"cam_image": frame},
                frames=True,
                sync=False,
            )
            for i in range(args.repeats)
        ]
        nosync_rate = statistics.median(nosync_rates)
        seq_rate = mb / bench_sequential_fsync(base / "frames.bin", args.frames, frame)
        zarr_rate = mb / bench_batched_zarr_frames(
            base / "frames.zarr", args.frames, frame, sdl_config=False
        )
        ceiling_rate = mb / bench_batched_zarr_frames(
            base / "frames-sdl-config.zarr", args.frames, frame, sdl_config=True
        )
        re_alone = mb / bench_run_engine_frames(None, args.frames, frame)
        re_store = mb / bench_run_engine_frames(base / "re-frames.zarr", args.frames, frame)
        stored = (
            sum(f.stat().st_size for f in (base / "writer-frames-0.zarr").rglob("*") if f.is_file())
            / 1e6
        )
        rows += [
            (
                "frames 512x512 u16: sdl ZarrWriter",
                f"{frame_rate:,.0f} MB/s",
                f"median of {_spread(frame_rates)}; compressed to {stored / mb:.0%}; "
                "syncfs at the stop (default)",
            ),
            (
                "  the same, sync_to_disk=False",
                f"{nosync_rate:,.0f} MB/s",
                f"median of {_spread(nosync_rates)}; sdl = {frame_rate / nosync_rate:.2f}x",
            ),
            (
                "  batched Zarr appends, same codec (no sync)",
                f"{zarr_rate:,.0f} MB/s",
                f"sdl = {frame_rate / zarr_rate:.2f}x",
            ),
            (
                "  the same, with sdl's array config (no sync)",
                f"{ceiling_rate:,.0f} MB/s",
                f"sdl = {frame_rate / ceiling_rate:.2f}x",
            ),
            (
                "  sequential raw write + fsync",
                f"{seq_rate:,.0f} MB/s",
                f"sdl = {frame_rate / seq_rate:.2f}x",
            ),
            (
                "frames through a RunEngine: with sdl",
                f"{re_store:,.0f} MB/s",
                f"{re_store * 1e6 / frame.nbytes:,.0f} frames/s, one event per frame",
            ),
            (
                "  the RunEngine alone, no subscriber",
                f"{re_alone:,.0f} MB/s",
                f"sdl = {re_store / re_alone:.2f}x",
            ),
            (
                "peak RSS (after scalars / after frames)",
                f"{rss_after_scalar:,.0f} / {_rss_mb():,.0f} MB",
                "",
            ),
        ]
    finally:
        shutil.rmtree(base, ignore_errors=True)

    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':{width}}  {'rate':>22}  comparison")
    for name, rate, note in rows:
        print(f"{name:{width}}  {rate:>22}  {note}")


if __name__ == "__main__":
    main()
