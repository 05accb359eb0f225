"""sdl: a self-driving laboratory framework.

An AI planner proposes experiments, a bluesky RunEngine runs them on ophyd devices
(real or simulated), every document streams into a Zarr store, and the loop closes.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public names, imported on first use so that `import sdl.planners` (used by the
# layers below the core) does not import the whole framework.
_EXPORTS = {
    "Campaign": "sdl._campaign",
    "CampaignResult": "sdl._result",
    "LoopOptions": "sdl._loop",
    "experiment_runs": "sdl._filters",
    "open_store": "sdl.store",
    "CampaignStore": "sdl.store",
    "ZarrWriter": "sdl.store",
    "load_campaign": "sdl.config",
    "CampaignConfig": "sdl.config",
    "Objective": "sdl.planners",
    "Real": "sdl.planners",
    "Integer": "sdl.planners",
    "Categorical": "sdl.planners",
    "Space": "sdl.planners",
    "SdlError": "sdl.errors",
    "ConfigError": "sdl.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
