"""Live matplotlib plots of a running campaign (a bluesky callback)."""

from ._live import LivePlot, make_live_plot
from ._math import best_so_far, pareto_mask

__all__ = ["LivePlot", "best_so_far", "make_live_plot", "pareto_mask"]
