"""The digital twin of a lab: forecast experiments per day, utilization and bottlenecks.

The lab's stations, resources and workflow (the campaign's ``lab:`` and ``workflow:``)
and a timing model (``twin:``, or ``sdl twin calibrate STORE``) are simulated on a SimPy
clock with the campaign's own lease policy and asking rule. See ``docs/twin.md``.

Public names:
    :func:`load_spec` (a campaign or lab file as a :class:`TwinSpec`), :func:`forecast`
    and :func:`forecast_what_ifs` (replications summed up as a :class:`Forecast`),
    :func:`apply_what_if`, :func:`calibrate` and :func:`write_timing` (a timing model from
    a store), :class:`TwinTiming` (the ``twin:`` section), :func:`write_report`.
"""

from ._calibrate import calibrate, write_timing
from ._figures import write_report
from ._forecast import Forecast, TwinDeadlock, forecast, forecast_what_ifs, format_table
from ._sim import Replication, simulate
from ._spec import TwinSpec, film_spec, load_spec
from ._timing import Distribution, PlannerTiming, Shifts, StationTiming, TwinTiming
from ._validate import predicted_vs_measured
from ._whatif import WHAT_IF_KEYS, apply_what_if

__all__ = [
    "WHAT_IF_KEYS",
    "Distribution",
    "Forecast",
    "PlannerTiming",
    "Replication",
    "Shifts",
    "StationTiming",
    "TwinDeadlock",
    "TwinSpec",
    "TwinTiming",
    "apply_what_if",
    "calibrate",
    "film_spec",
    "forecast",
    "forecast_what_ifs",
    "format_table",
    "load_spec",
    "predicted_vs_measured",
    "simulate",
    "write_report",
    "write_timing",
]
