"""Experiment protocols: bluesky plans that run one experiment, and objective extraction.

A protocol is a callable ``protocol(point, md=...)`` returning a bluesky plan that opens
one run, sets devices, waits, triggers and reads. It never touches the store.

The step plans of the simulated film lab are in :mod:`sdl.protocols.film`.
"""

from ._capture import Capture, as_plan, capture, not_a_message, with_md
from ._check import check_protocol, devices_read
from ._mix_color import mix_color
from ._objectives import extract_objectives, resolve_reference
from ._registry import available_protocols, build_protocol, protocols
from ._set_settle_measure import check_movables, set_settle_measure

__all__ = [
    "Capture",
    "as_plan",
    "available_protocols",
    "build_protocol",
    "capture",
    "check_movables",
    "check_protocol",
    "devices_read",
    "extract_objectives",
    "mix_color",
    "not_a_message",
    "protocols",
    "resolve_reference",
    "set_settle_measure",
    "with_md",
]
