"""Whose fault a failed experiment was: the instrument's, or the sample's.

A campaign must not teach its planner that a point is bad because a cable came loose.
Every failed experiment is given one of two kinds, recorded in the campaign table's
``failure_kind`` column:

* ``instrument`` -- the measurement did not happen as it should: a device disconnected,
  timed out or reported a fault, a status failed, the protocol itself raised an unexpected
  error. Not the point's fault: the planner is *not* told (its feasibility model learns
  nothing), and the point is measured again (``LoopOptions.instrument_reruns`` times, once
  by default) without spending the budget twice.
* ``sample`` -- the measurement happened and says the point is bad: an objective or
  measured quantity is NaN, missing or out of range, a set-point lies outside a device's
  limits (:class:`~sdl.errors.LimitError`), or the protocol raised
  :class:`~sdl.errors.ExperimentFailed` as its own verdict. The planner is told NaN, so an
  outcome-aware planner learns where the feasible region ends.

An operator's abort or stop is neither: the experiment is ``interrupted``, not failed.
"""

from __future__ import annotations

from enum import Enum

from sdl.errors import ExperimentFailed, LimitError

__all__ = ["FailureKind", "classify_failure"]


class FailureKind(str, Enum):
    """The kind of a failed experiment (the table's ``failure_kind`` column)."""

    INSTRUMENT = "instrument"
    SAMPLE = "sample"


#: Exceptions that are verdicts on the point itself, not faults of the instrument.
SAMPLE_ERRORS: tuple[type[BaseException], ...] = (ExperimentFailed, LimitError)


def classify_failure(err: BaseException) -> FailureKind:
    """The kind of failure ``err`` (the device's own exception, unwrapped) stands for."""
    return FailureKind.SAMPLE if isinstance(err, SAMPLE_ERRORS) else FailureKind.INSTRUMENT
