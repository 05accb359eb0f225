"""The sdl command line, run as a user runs it: a subprocess of the installed script."""

import shutil
import subprocess
import sys

import pytest
import yaml

from sdl import open_store


def sdl(*args, cwd=None):
    exe = shutil.which("sdl") or sys.executable
    cmd = [exe, *args] if exe != sys.executable else [exe, "-m", "sdl.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=cwd)


def _campaign_file(tmp_path, **changes):
    cfg = yaml.safe_load(open("examples/alignment.yaml"))
    cfg["planner"] = {"name": "sobol"}
    cfg.update(changes)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_run_writes_the_store_and_prints_a_summary(tmp_path):
    store = tmp_path / "out.zarr"
    cfg = _campaign_file(tmp_path, store_options={"flush_interval": 0.5})
    proc = sdl("run", str(cfg), "--budget", "4", "--store", str(store), "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    assert "experiments: 4 done, 0 failed" in proc.stdout
    assert "best: intensity=" in proc.stdout and f"store: {store}" in proc.stdout
    assert "wall time:" in proc.stdout
    df = open_store(store).to_dataframe()
    assert len(df) == 4
    config = open_store(store).campaign["config"]
    assert config["seed"] == 3 and config["store_options"]["flush_interval"] == 0.5

    again = sdl("run", str(_campaign_file(tmp_path)), "--store", str(store))
    assert again.returncode == 2 and "already holds a campaign" in again.stderr
    assert "Traceback" not in again.stderr

    show = sdl("show", str(store))
    assert show.returncode == 0 and "intensity" in show.stdout and "4 done" in show.stdout


def test_config_errors_exit_2_without_traceback(tmp_path):
    cfg = _campaign_file(
        tmp_path,
        parameters=[{"name": "x", "low": 5, "high": -5, "device": "stage_m0"}],
    )
    proc = sdl("run", str(cfg), "--store", str(tmp_path / "never.zarr"))
    assert proc.returncode == 2
    assert "parameters[0]" in proc.stderr and "swap" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "never.zarr").exists()  # validated before anything was created


def test_lists_of_plugins():
    for kind, name in (
        ("planners", "botorch"),
        ("devices", "alignment_stage"),
        ("protocols", "mix_color"),
    ):
        proc = sdl(kind)
        assert proc.returncode == 0 and name in proc.stdout, proc.stderr


@pytest.mark.parametrize("configured", [True, False])
def test_the_cli_shows_gpytorchs_jitter_warning_once_per_process(configured):
    """``sdl`` shows "A not p.d., added jitter" once, even though BoTorch's
    ``catch_warnings`` blocks reset Python's per-location memory between asks (without
    the filter: every time, the premise)."""
    code = f"""
import warnings
from linear_operator.utils.warnings import NumericalWarning
from sdl.cli._main import _configure_warnings
if {configured}:
    _configure_warnings()
for _ in range(5):
    with warnings.catch_warnings():
        pass
    warnings.warn("A not p.d., added jitter of 1.0e-08 to the diagonal", NumericalWarning)
"""
    err = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stderr
    assert err.count("A not p.d.") == (1 if configured else 5)
