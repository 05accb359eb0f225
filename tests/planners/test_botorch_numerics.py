"""BoTorchPlanner on crowded data (no jitter warnings), on a GPU, and its device choice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from linear_operator.utils.warnings import NumericalWarning

from sdl.planners import BoTorchPlanner, Objective, Real, Space

FAST = {"num_restarts": 2, "raw_samples": 64, "maxiter": 25}


def _crowded_line(planner: BoTorchPlanner, seed: int = 0) -> None:
    """Tell a 1-D planner 30 points: a spread of 10, then 20 piled up around the optimum
    of ``sin(6 x)`` (x = 0.2618) within 1e-9 to 1e-4 of each other, exact repeats too."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(size=10)
    crowd = 0.2618 + np.concatenate(
        [np.zeros(4), 1e-9 * rng.standard_normal(4), 1e-6 * rng.standard_normal(6)]
    )
    crowd = np.concatenate([crowd, 0.2618 + 1e-4 * rng.standard_normal(6)])
    xs = np.clip(np.concatenate([spread, crowd]), 0.0, 1.0)
    ys = np.sin(6 * xs) + 0.01 * rng.standard_normal(len(xs))
    planner.tell([{"x": float(x)} for x in xs], [{"y": float(y)} for y in ys])


def _line_planner(**options) -> BoTorchPlanner:
    space = Space([Real("x", 0.0, 1.0)])
    return BoTorchPlanner(space, [Objective("y", "maximize")], seed=0, **{**FAST, **options})


def test_near_duplicate_points_on_a_line_need_no_jitter():
    planner = _line_planner(refit_growth=0.0)  # fit on every ask, so every fit is checked
    _crowded_line(planner)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)
        for n in (1, 2, 1, 4):
            points = planner.ask(n)
            planner.tell(points, [{"y": float(np.sin(6 * p["x"]))} for p in points])


def test_premise_noisy_ei_needs_jitter_on_the_same_data():
    """The data above do make ``qLogNoisyExpectedImprovement`` add jitter (so the test
    above would catch a return of the warning)."""
    planner = _line_planner(refit_growth=0.0, acquisition="lognei")
    _crowded_line(planner)
    with pytest.warns(NumericalWarning, match="not p.d."):  # noqa: PT031
        for n in (1, 2, 1, 4):
            points = planner.ask(n)
            planner.tell(points, [{"y": float(np.sin(6 * p["x"]))} for p in points])


def _planner_with_data(device: str, n: int = 12, **options) -> BoTorchPlanner:
    space = Space([Real("x", 0.0, 1.0), Real("z", 0.0, 1.0)])
    planner = BoTorchPlanner(
        space, [Objective("loss")], seed=0, n_initial=4, device=device, **{**FAST, **options}
    )
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(n, 2))
    planner.tell(
        [{"x": float(a), "z": float(b)} for a, b in X],
        [{"loss": float((a - 0.3) ** 2 + (b - 0.7) ** 2)} for a, b in X],
    )
    return planner


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none found)")
@pytest.mark.parametrize("acquisition", ["logei", "lognei"])
def test_asks_on_a_gpu(acquisition):
    planner = _planner_with_data("cuda", acquisition=acquisition)
    points = planner.ask(2)
    assert planner._device.type == "cuda"
    assert len(points) == 2
    for p in points:
        planner.space.validate(p)
    assert planner.last_timings["acquisition"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none found)")
def test_auto_device_uses_the_gpu_from_the_threshold_on(monkeypatch):
    from sdl.planners import _botorch

    planner = _planner_with_data("auto", n=12)
    planner.ask(1)
    assert planner._device.type == "cpu"  # 12 observations: below GPU_FROM
    monkeypatch.setattr(_botorch, "GPU_FROM", 10)
    planner.ask(1)
    assert planner._device.type == "cuda"


def test_auto_device_is_the_cpu_without_a_gpu_or_below_the_threshold(monkeypatch):
    from sdl.planners import _botorch

    monkeypatch.setattr(_botorch, "GPU_FROM", 5)
    planner = _planner_with_data("auto")
    planner.ask(1)
    assert planner.device == "auto"
    if not torch.cuda.is_available():
        assert planner._device.type == "cpu"


def test_torch_threads_are_restored_after_an_ask():
    before = torch.get_num_threads()
    seen = []
    planner = _planner_with_data("cpu")
    fit = planner._fit

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return fit(*args, **kwargs)

    planner._fit = spy
    planner.ask(1)
    assert seen and set(seen) == {1}  # 12 observations: one thread
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("options", "match"),
    [({"acquisition": "ei"}, "acquisition"), ({"threads": 0}, "threads")],
)
def test_invalid_new_options_are_refused(options, match):
    from sdl.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        BoTorchPlanner(Space([Real("x", 0.0, 1.0)]), [Objective("y")], **options)
