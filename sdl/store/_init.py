"""Create or open a campaign store's root group (the first thing a writer does)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from sdl.errors import ConfigError, StoreError

from . import _layout as L
from ._lock import LOCK_DIR
from ._wal import WAL

__all__ = ["check_writer_options", "init_store", "store_version"]


def _clear_for_overwrite(path: Path) -> None:
    """Remove everything in the store folder but the writer lock (which the caller holds)."""
    for child in path.iterdir():
        if child.name == LOCK_DIR:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def init_store(path: str | os.PathLike, *, overwrite: bool = False) -> zarr.Group:
    """Open (or create) the store's root group and check its layout version.

    The caller holds the store's writer lock (:class:`~sdl.store.WriterLock`): with
    ``overwrite``, everything in the folder but that lock is deleted.

    Raises:
        StoreError: the path holds something that is not an sdl store, or a store of a
            newer layout version than this sdl reads.
    """
    path = Path(path)
    if overwrite or not (path / "zarr.json").exists():
        others = [c for c in path.iterdir() if c.name != LOCK_DIR] if path.exists() else []
        if others and not overwrite:
            raise StoreError(f"{path} exists and is not a Zarr store; choose another --store path")
        if others:
            _clear_for_overwrite(path)
        from sdl import __version__

        # one write: a reader never sees the root without its sdl attribute
        root = zarr.create_group(
            str(path),
            zarr_format=3,
            attributes={
                L.ROOT_ATTR: {
                    "format_version": L.FORMAT_VERSION,
                    "kind": L.STORE_KIND,
                    "sdl_version": __version__,
                }
            },
        )
        root.require_group(L.RUNS)
        # the write-ahead log's folder: an empty array, so Zarr never lists the files in it
        root.create_array(WAL, shape=(0,), dtype=np.uint8)
        return root
    try:
        root = zarr.open_group(str(path), mode="a", zarr_format=3)
        meta = root.attrs.get(L.ROOT_ATTR)
    except (ValueError, OSError) as err:  # e.g. a truncated zarr.json
        raise StoreError(f"{path}/zarr.json is unreadable ({err}); the store is damaged") from err
    if not isinstance(meta, dict) or meta.get("kind") != L.STORE_KIND:
        raise StoreError(f"{path} is a Zarr group but not an sdl campaign store")
    if int(meta.get("format_version", 0)) > L.FORMAT_VERSION:
        raise StoreError(
            f"{path} has store format {meta['format_version']}; this sdl reads up to "
            f"{L.FORMAT_VERSION}: upgrade sdl"
        )
    return root


def store_version(root: zarr.Group) -> int:
    """The layout version of an opened store (see :data:`~sdl.store.FORMAT_VERSION`)."""
    return int(root.attrs.get(L.ROOT_ATTR, {}).get("format_version", 0))


def check_writer_options(
    flush_interval: Any, flush_rows: Any, flush_bytes: Any, log_flush_interval: Any = 1.0
) -> None:
    """Refuse a writer limit that is not positive (naming the ``store_options`` field)."""
    for name, value in (
        ("flush_interval", flush_interval),
        ("log_flush_interval", log_flush_interval),
        ("flush_rows", flush_rows),
        ("flush_bytes", flush_bytes),
    ):
        if not value > 0:
            raise ConfigError(
                f"store_options.{name} must be greater than 0, got {value!r}; it bounds "
                f"the data held in memory (see docs/store.md)"
            )
