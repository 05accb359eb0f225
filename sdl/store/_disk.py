"""Asking the operating system to put what the store wrote on disk."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

__all__ = ["sync_filesystem"]


@cache
def _syncfs():
    """``syncfs(2)`` from the C library (Linux), or None where there is none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def sync_filesystem(path: str | os.PathLike) -> None:
    """Write the dirty pages of the filesystem holding ``path`` to disk, and wait.

    Zarr writes each file to a temporary name and renames it, which survives a crash of
    the process but leaves the data in the OS page cache; this makes it survive a crash of
    the OS or a power cut too. Uses ``syncfs`` (only that filesystem) where the C library
    has it, else ``os.sync`` (all filesystems); does nothing where neither exists.

    Raises:
        OSError: the OS reported a write error.
    """
    syncfs = _syncfs()
    if syncfs is None:
        if hasattr(os, "sync"):
            os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs failed for {path}: {os.strerror(err)}")
    finally:
        os.close(fd)
