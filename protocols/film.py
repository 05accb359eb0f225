"""The film lab's step plans: synthesize, transfer, anneal, characterize.

Each is ``plan(point, context, md=None)`` for an :class:`sdl.lab.Step`: ``context.devices``
holds the devices of the station the step runs on (by role: ``coater``, ``slot0`` and
``slot1``, ``arm``, ``loader``, ``spectrometer``, ``recipe``) and of what it leased, and
``context.lane`` which of the station's places it has. Each opens one run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

__all__ = ["anneal", "characterize", "recipe_of", "synthesize", "transfer"]


def recipe_of(point: Mapping[str, Any]) -> dict[str, float]:
    """The sample's recipe: the point, with the second precursor's fraction (1 - a)."""
    recipe = {k: float(v) for k, v in point.items()}
    recipe["fraction_b"] = 1.0 - recipe["fraction_a"]
    return recipe


def _md(md: Mapping[str, Any] | None, plan_name: str, point: Mapping[str, Any]) -> dict[str, Any]:
    return {"plan_name": plan_name, "sdl_recipe": recipe_of(point), **dict(md or {})}


def synthesize(point: Mapping[str, Any], context: Any, md: Mapping[str, Any] | None = None):
    """Spin-coat the film: the coater runs at ``point["speed"]`` for its drawn duration."""
    coater = context.devices["coater"]

    @bpp.run_decorator(md=_md(md, "synthesize", point))
    def inner():
        yield from bps.mv(coater, float(point["speed"]))
        yield from bps.trigger_and_read([coater])

    return (yield from inner())


def transfer(point: Mapping[str, Any], context: Any, md: Mapping[str, Any] | None = None):
    """The robot arm carries the sample onwards (to the place numbered by the steps so far)."""
    arm = context.devices["arm"]

    @bpp.run_decorator(md=_md(md, "transfer", point))
    def inner():
        yield from bps.mv(arm, float(len(context.history)))
        yield from bps.trigger_and_read([arm])

    return (yield from inner())


def anneal(point: Mapping[str, Any], context: Any, md: Mapping[str, Any] | None = None):
    """Anneal in the furnace slot of this lane at ``point["anneal"]``."""
    slot = context.devices[f"slot{context.lane}"]

    @bpp.run_decorator(md=_md(md, "anneal", point))
    def inner():
        yield from bps.mv(slot, float(point["anneal"]))
        yield from bps.trigger_and_read([slot])

    return (yield from inner())


def characterize(point: Mapping[str, Any], context: Any, md: Mapping[str, Any] | None = None):
    """Load the sample and measure its figure of merit with the spectrometer."""
    loader, spectrometer, recipe = (
        context.devices["loader"],
        context.devices["spectrometer"],
        context.devices["recipe"],
    )

    @bpp.run_decorator(md=_md(md, "characterize", point))
    def inner():
        yield from bps.mv(loader, 1.0)
        yield from bps.mv(recipe, json.dumps(recipe_of(point)))
        yield from bps.trigger_and_read([spectrometer])

    return (yield from inner())
