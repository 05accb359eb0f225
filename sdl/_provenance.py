"""What is needed to reproduce and audit a campaign: versions, code, host, device settings."""

from __future__ import annotations

import getpass
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["collect_provenance", "PACKAGES"]

#: Distributions whose versions are recorded.
PACKAGES = (
    "sdl",
    "bluesky",
    "ophyd",
    "event-model",
    "pyepics",
    "zarr",
    "numcodecs",
    "numpy",
    "pandas",
    "torch",
    "botorch",
    "gpytorch",
    "scikit-optimize",
    "scipy",
    "pydantic",
)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _git_describe(path: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _configuration(device: Any) -> dict[str, Any] | str:
    try:
        return {k: v.get("value") for k, v in device.read_configuration().items()}
    except Exception as err:  # a device that cannot report is recorded as such
        return f"read_configuration failed: {type(err).__name__}: {err}"


def collect_provenance(
    devices: Mapping[str, Any] = (), *, cwd: Path | None = None
) -> dict[str, Any]:
    """Versions, interpreter, host, user, git describe and each device's configuration.

    Args:
        devices: name -> ophyd device; each one's ``read_configuration()`` is recorded.
        cwd: directory whose git working tree is described (default: the current one).
    """
    import sdl

    here = Path(cwd or Path.cwd())
    return {
        "time": time.time(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "argv": list(sys.argv),
        "cwd": str(here),
        "git_describe": _git_describe(here),
        "sdl_source_git_describe": _git_describe(Path(sdl.__file__).parent),
        "versions": _versions(),
        "device_configuration": {
            name: _configuration(dev)
            for name, dev in dict(devices).items()
            if hasattr(dev, "read_configuration")
        },
    }
