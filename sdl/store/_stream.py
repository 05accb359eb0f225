"""Buffered appends of one event stream into Zarr arrays."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from sdl.errors import StoreError

from . import _layout as L
from ._concurrent import concurrently, require_arrays

__all__ = ["StreamWriter", "cut_back"]

_TARGET_CHUNK_BYTES = 4 << 20
# Images and spectra: Blosc LZ4 with byte shuffle keeps up with fast detectors (measured
# in benchmarks/store_throughput.py); scalars keep zarr's default (Zstd).
_ARRAY_COMPRESSORS = (BloscCodec(cname="lz4", clevel=1, shuffle="shuffle"),)
# Every chunk is written, even one equal to the fill value: zarr's default test for
# "empty" chunks compares each chunk with the fill value and halved frame throughput
# (benchmarks/store_throughput.py). Runtime config, so it is set again on reopening.
_ARRAY_CONFIG = {"write_empty_chunks": True}


def _dtype_for(desc: Mapping[str, Any], sample: Any) -> np.dtype | str:
    kind = desc.get("dtype")
    if kind == "string":
        return "str"
    if kind == "boolean":
        return "bool"
    if kind == "integer":
        return "int64"
    if kind == "number":
        return "float64"
    arr = np.asarray(sample)
    if arr.dtype.kind in "OUS":
        return "str"
    return arr.dtype


class StreamWriter:
    """Holds the events of one stream in memory and appends them to Zarr in blocks.

    Args:
        group: the stream's group (``runs/<uid>/<stream>``, or in format 2 the table
            ``streams/<name>`` shared by the runs of that stream).
        data_keys: the descriptor's ``data_keys``.
        run_column: keep, for each row, the row of its run in ``runs/`` (format 2).
    """

    def __init__(
        self,
        group: zarr.Group,
        data_keys: Mapping[str, Mapping[str, Any]],
        *,
        run_column: bool = False,
    ):
        self.group = group
        self._run: list[int] | None = [] if run_column else None
        self.data_keys = dict(data_keys)
        self.data_group = group.require_group(L.STREAM_DATA)
        self._time: list[float] = []
        self._seq: list[int] = []
        # keys whose data a detector streams to its own files (StreamDatum) are in no event
        self._rows: dict[str, list[Any]] = {
            k: [] for k, d in self.data_keys.items() if d.get("external") != "STREAM:"
        }
        self._arrays: dict[str, zarr.Array] = {}
        self.last_flush = time.monotonic()
        self.nbytes = 0  # approximate size of what is buffered

    def __len__(self) -> int:
        return len(self._time)

    def add(self, doc: Mapping[str, Any], run: int = -1) -> None:
        """Buffer one event document (of the run in row ``run`` of ``runs/``, format 2)."""
        if self._run is not None:
            self._run.append(run)
        self._time.append(doc["time"])
        self._seq.append(doc["seq_num"])
        data = doc["data"]
        for key, rows in self._rows.items():
            value = data.get(key)
            rows.append(value)
            self.nbytes += getattr(value, "nbytes", 8)

    def _data_spec(self, key: str, block: np.ndarray, dtype: Any) -> dict[str, Any]:
        """How the array of data key ``key`` is created, from its first block."""
        shape = block.shape[1:]
        row_bytes = max(1, int(np.prod(shape, dtype=np.int64)) * max(block.dtype.itemsize, 1))
        rows_per_chunk = L.SCALAR_CHUNK if not shape else max(1, _TARGET_CHUNK_BYTES // row_bytes)
        fill = "" if dtype == "str" else (np.nan if np.dtype(dtype).kind == "f" else 0)
        return {
            "shape": (0, *shape),
            "chunks": (rows_per_chunk, *shape),
            "dtype": dtype,
            "fill_value": fill,
            "compressors": _ARRAY_COMPRESSORS if shape and dtype != "str" else "auto",
            "attributes": {"data_key": dict(self.data_keys[key])},
            "config": _ARRAY_CONFIG,
        }

    def _open_arrays(self, blocks: Mapping[str, tuple[np.ndarray, Any]]) -> None:
        """Open or create, together, the arrays this block needs and has not opened yet."""
        specs: list[tuple[zarr.Group, str, dict[str, Any]]] = []
        names: list[str] = []
        for key, (block, dtype) in blocks.items():
            if key not in self._arrays:
                specs.append((self.data_group, key, self._data_spec(key, block, dtype)))
                names.append(key)
        columns = [(L.STREAM_SEQ, "int64", 0), (L.STREAM_TIME, "float64", np.nan)]
        if self._run is not None:
            columns.append((L.RUN_ROW, "int64", -1))
        for name, dtype, fill in columns:
            if "/" + name not in self._arrays:  # "/": never a data key's name
                spec = {
                    "shape": (0,),
                    "chunks": (L.SCALAR_CHUNK,),
                    "dtype": dtype,
                    "fill_value": fill,
                    "config": _ARRAY_CONFIG,
                }
                specs.append((self.group, name, spec))
                names.append("/" + name)
        if not specs:
            return
        try:
            arrays = require_arrays(specs)
        except (ValueError, TypeError) as err:
            raise StoreError(
                f"cannot store data keys {sorted(blocks)} of stream {self.group.path!r}: {err}"
            ) from err
        self._arrays.update(zip(names, arrays, strict=True))

    def flush(self) -> int:
        """Append everything buffered; return the number of rows written."""
        return self.take()()

    def take(self) -> Callable[[], int]:
        """Hand over what is buffered: returns the call that appends it (the rows it
        writes); events added meanwhile wait for the next block."""
        time_, seq, run = self._time, self._seq, self._run
        rows = self._rows
        self._time, self._seq = [], []
        if self._run is not None:
            self._run = []
        self._rows = {k: [] for k in rows}
        self.nbytes = 0
        return lambda: self._append(time_, seq, run, rows)

    def _append(
        self,
        time_: list[float],
        seq: list[int],
        run: list[int] | None,
        rows_by_key: dict[str, list[Any]],
    ) -> int:
        n = len(time_)
        self.last_flush = time.monotonic()
        if n == 0:
            return 0
        blocks: dict[str, tuple[np.ndarray, Any]] = {}
        for key, rows in rows_by_key.items():
            desc = self.data_keys[key]
            dtype = _dtype_for(desc, rows[0])
            try:
                if dtype == "str":
                    block = np.array(["" if v is None else str(v) for v in rows], dtype=object)
                elif (
                    isinstance(rows[0], np.ndarray)
                    and rows[0].ndim
                    and all(isinstance(v, np.ndarray) for v in rows)
                ):
                    block = np.stack(rows).astype(dtype, copy=False)  # frames: one fast copy
                else:
                    block = np.asarray([np.nan if v is None else v for v in rows], dtype=dtype)
            except (ValueError, TypeError) as err:
                raise StoreError(
                    f"cannot store data key {key!r} of stream {self.group.path!r}: {err}"
                ) from err
            blocks[key] = (block, dtype)
        self._open_arrays(blocks)
        appends = [self._arrays[key]._async_array.append(b) for key, (b, _) in blocks.items()]
        appends.append(
            self._arrays["/" + L.STREAM_SEQ]._async_array.append(np.asarray(seq, dtype="int64"))
        )
        if run is not None:
            runs = self._arrays["/" + L.RUN_ROW]
            appends.append(runs._async_array.append(np.asarray(run, dtype="int64")))
        concurrently(appends)
        # last: the commit mark (NaN fill marks a row cut between resize and write)
        self._arrays["/" + L.STREAM_TIME].append(np.asarray(time_, dtype="float64"))
        return n

    @property
    def n_rows(self) -> int:
        """Rows committed to Zarr (the length of ``time``, the commit mark)."""
        arr = self._arrays.get("/" + L.STREAM_TIME)
        if arr is None:
            if L.STREAM_TIME not in self.group:
                return 0
            arr = self.group[L.STREAM_TIME].with_config(_ARRAY_CONFIG)
            self._arrays["/" + L.STREAM_TIME] = arr
        return arr.shape[0]


def cut_back(group: zarr.Group, n: int) -> None:
    """Shorten every array of a table (a stream's or an asset kind's) to ``n`` rows: what a
    block cut by a crash appended after the last recorded mark goes."""
    arrays = [arr for _, arr in group.arrays()]
    if L.STREAM_DATA in group:
        arrays += [arr for _, arr in group[L.STREAM_DATA].arrays()]
    long = [arr for arr in arrays if arr.shape[0] > n]
    concurrently([arr._async_array.resize((n, *arr.shape[1:])) for arr in long])
