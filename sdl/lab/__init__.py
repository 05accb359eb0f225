"""A laboratory: several stations, multi-step experiments, shared resources, one campaign.

Public names:
    :class:`Lab`, :class:`Station`, :class:`Resource`, :class:`Workflow`, :class:`Step`,
    :class:`StepContext` (what a lab is made of); :class:`LabOptions`;
    :class:`StepBackend` with :class:`StepRequest` and :class:`StepOutcome` (where steps
    run) and :class:`InProcessBackend` (a RunEngine per station lane in this process);
    :class:`LeaseBook` (the scheduling policy). See ``docs/lab.md``.
"""

from ._backend import StepBackend, StepOutcome, StepRequest
from ._coordinator import LabOptions, lab_loop
from ._film import FILM_DURATIONS, film_lab
from ._inprocess import InProcessBackend
from ._leases import Grant, LeaseBook, LeaseRequest
from ._model import Lab, Resource, Station, Step, StepContext, Workflow

__all__ = [
    "FILM_DURATIONS",
    "film_lab",
    "Grant",
    "InProcessBackend",
    "Lab",
    "LabOptions",
    "LeaseBook",
    "LeaseRequest",
    "Resource",
    "Station",
    "Step",
    "StepBackend",
    "StepContext",
    "StepOutcome",
    "StepRequest",
    "Workflow",
    "lab_loop",
]
