"""Operator control of a running campaign: a file channel beside the store, and approval.

- :class:`ControlChannel` -- requests (pause, resume, stop, abort, approve, add) and the
  campaign's published state, as JSON files in ``<store>/control/``.
- :class:`ControlWatcher` -- the campaign process's poller; :func:`run_controlled` runs the
  plan and carries out resume/stop/abort after a pause.
- :func:`approve_in_terminal`, :func:`wait_for_approval` -- human-in-the-loop approval,
  giving an :class:`ApprovalDecision`.
- :class:`PollingDuringTask`, :class:`SignalStops`, :func:`make_run_engine` -- signals: Ctrl-C
  heard whichever thread the kernel hands it to; SIGINT with nobody at a terminal stops the
  campaign cleanly (twice: aborts); SIGTERM, and SIGHUP (the terminal closed), abort it
  cleanly.
- :func:`read_control_token`, :func:`control_token` -- the token a campaign checks
  requests' signatures with (``$SDL_CONTROL_TOKEN`` or a file), and a requester signs with.
"""

from ._approval import (
    ApprovalDecision,
    approve_in_terminal,
    decision_from_request,
    take_additions,
    validate_point,
    wait_for_approval,
)
from ._auth import (
    SIGNATURE_WINDOW_S,
    TOKEN_ENV,
    active_control_token,
    control_token,
    read_control_token,
)
from ._channel import ACTIONS, STATES, Acknowledgement, ControlChannel, Request, operator_name
from ._run import run_controlled
from ._signals import PollingDuringTask, SignalStops, make_run_engine
from ._stations import take_station_requests
from ._watcher import ControlWatcher

__all__ = [
    "ACTIONS",
    "SIGNATURE_WINDOW_S",
    "STATES",
    "TOKEN_ENV",
    "Acknowledgement",
    "ApprovalDecision",
    "ControlChannel",
    "ControlWatcher",
    "PollingDuringTask",
    "Request",
    "SignalStops",
    "active_control_token",
    "approve_in_terminal",
    "take_additions",
    "take_station_requests",
    "control_token",
    "decision_from_request",
    "make_run_engine",
    "operator_name",
    "read_control_token",
    "run_controlled",
    "validate_point",
    "wait_for_approval",
]
