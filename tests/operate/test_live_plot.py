"""The live plot follows a real RunEngine campaign and never raises into it."""

import numpy as np
import pytest

from sdl.devices import Faults
from sdl.plots import LivePlot, best_so_far, make_live_plot, pareto_mask

from .conftest import make_campaign


def test_live_plot_draws_every_experiment_of_a_real_campaign(RE, store_path, tmp_path):
    campaign = make_campaign(12, faults=Faults(exception=0.3, seed=1))
    plot = make_live_plot(campaign.describe(), backend="Agg")
    result = campaign.run(RE, store=store_path, callbacks=[plot])
    n_done, n_failed = result.n_done, result.n_failed
    # instrument failures were measured again: the budget counts each point once
    assert n_done + n_failed - result.n_rerun == 12 and n_failed >= 1 and result.n_rerun >= 1

    x, y = plot.artists["objective"].get_data()
    assert len(x) == n_done and np.isfinite(np.asarray(y, dtype=float)).all()
    assert len(plot.artists["failed"].get_xdata()) == n_failed
    bx, by = plot.artists["best"].get_data()
    assert len(bx) == n_done + n_failed  # every finished experiment, re-runs too
    assert np.nanmax(by) == pytest.approx(np.max(y))  # maximize: best so far ends at the max
    assert len(plot.artists["params"].get_offsets()) == n_done
    assert len(plot.artists["params_failed"].get_xdata()) == n_failed
    assert len(plot.artists["proposals"].get_xdata()) == 0  # nothing pending at the end
    assert len(plot.artists["pareto_all"].get_xdata()) == n_done
    assert 1 <= len(plot.artists["pareto_front"].get_xdata()) <= n_done
    assert 1 <= plot.n_draws <= n_done + n_failed  # throttled, and drawn at the stop
    plot.save(tmp_path / "live.png")
    assert (tmp_path / "live.png").stat().st_size > 10_000


def test_live_plot_learns_the_campaign_from_the_start_document(RE, store_path):
    plot = LivePlot(min_interval=0.0)  # no description: read from the campaign run
    make_campaign(4).run(RE, store=store_path, callbacks=[plot])
    assert len(plot.artists["objective"].get_xdata()) == 4
    assert plot.n_draws >= 4


def test_live_plot_never_raises_on_odd_documents():
    plot = LivePlot(["a"], ["x"])
    plot("start", {"uid": "u", "sdl_role": "campaign", "time": 0})
    plot("descriptor", {"uid": "d", "run_start": "u", "name": "experiments", "data_keys": {}})
    plot("event", {"descriptor": "d", "data": {"status": "done"}})  # no experiment_id
    plot("event", {"descriptor": "other", "data": {}})
    plot("stop", {"run_start": "u"})


def test_best_so_far_and_pareto_mask():
    assert best_so_far([3, np.nan, 1, 2]).tolist() == [3, 3, 1, 1]
    assert best_so_far([1, 3, 2], minimize=False).tolist() == [1, 3, 3]
    Y = np.array([[1, 5], [2, 2], [3, 3], [5, 1], [np.nan, 0]])
    assert pareto_mask(Y, [True, True]).tolist() == [True, True, False, True, False]
