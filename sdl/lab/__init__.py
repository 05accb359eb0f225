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


def __getattr__(name: str):
    # the queue-server backend needs the optional bluesky-queueserver (sdl[qserver])
    if name in ("QServerBackend", "StepFailedInWorker", "qserver_backend"):
        from . import _qserver

        return getattr(_qserver, name)
    if name in ("LabServers", "export_qserver"):
        from . import _qserver_servers

        return getattr(_qserver_servers, name)
    raise AttributeError(name)


__all__ = [
    "FILM_DURATIONS",
    "film_lab",
    "Grant",
    "InProcessBackend",
    "Lab",
    "LabOptions",
    "LeaseBook",
    "LabServers",
    "LeaseRequest",
    "QServerBackend",
    "Resource",
    "Station",
    "Step",
    "StepBackend",
    "StepContext",
    "StepOutcome",
    "StepFailedInWorker",
    "StepRequest",
    "Workflow",
    "export_qserver",
    "lab_loop",
    "qserver_backend",
]
