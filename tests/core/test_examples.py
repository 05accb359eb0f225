"""The Python examples build campaigns that run (small budget, no waiting)."""

import importlib.util
from pathlib import Path

import pytest

from sdl import open_store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["color_mixing", "alignment"])
def test_python_example_runs(RE, store_path, name):
    campaign, lab = _load(name).build(budget=3, time_scale=0.0)
    result = campaign.run(RE, store=store_path)
    assert result.n_done == 3
    df = open_store(store_path).to_dataframe()
    assert list(df.columns[: len(campaign.space.names) + 1]) == ["batch", *campaign.space.names]
    assert lab.optimum is not None
