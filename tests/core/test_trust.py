"""A campaign file or a store is data: import paths in it run only with --allow-import.

Each test puts a module on the path whose factory creates a marker file when it is
called, so "refused" is proved by the marker's absence, not by a message alone.
"""

import os
import subprocess
import sys
import textwrap

import pytest
import yaml
import zarr

from sdl import open_store
from sdl._plugins import ImportNotAllowedError, allow_import
from sdl.config import load_campaign
from sdl.devices import SimMotor, make_device
from sdl.planners import SobolPlanner, get_planner_class

MODULE = textwrap.dedent("""
    import os
    from pathlib import Path

    from sdl.devices import SimMotor


    def make(name, **options):
        Path(os.environ["SDL_TEST_MARKER"]).write_text("factory called")
        return SimMotor(name, **options)


    def score(readings):
        Path(os.environ["SDL_TEST_MARKER"]).write_text("function imported and called")
        return float(readings["stage_det_intensity"])
""")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A module ``trustmod`` on the path (here and in subprocesses) and its marker file."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "trustmod.py").write_text(MODULE)
    marker = tmp_path / "marker"
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("SDL_TEST_MARKER", str(marker))
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(lib), *sys.path]))
    return environ, marker


def _campaign(tmp_path, **changes):
    cfg = yaml.safe_load(open("examples/alignment.yaml"))
    cfg["planner"] = {"name": "sobol"}
    cfg["budget"] = 2
    for key, value in changes.items():
        if key == "device":
            cfg["devices"]["pwn"] = value
        else:
            cfg[key] = value
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def sdl(environ, *args):
    return subprocess.run(
        [sys.executable, "-m", "sdl.cli", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env=environ,
    )


def test_a_dotted_device_type_is_refused_and_nothing_runs(tmp_path, env):
    environ, marker = env
    store = tmp_path / "never.zarr"
    cfg = _campaign(tmp_path, device={"type": "trustmod:make"})
    proc = sdl(environ, "run", str(cfg), "--store", str(store))
    assert proc.returncode == 2, proc.stderr
    assert "devices.pwn.type" in proc.stderr and "'trustmod:make'" in proc.stderr
    assert "entry point" in proc.stderr and "--allow-import" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not marker.exists() and not store.exists()

    proc = sdl(environ, "run", str(cfg), "--store", str(store), "--allow-import", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "factory called"
    assert len(open_store(store).to_dataframe()) == 2


def test_subprocess_run_as_a_device_type_is_refused(tmp_path, env):
    environ, marker = env
    cfg = _campaign(
        tmp_path, device={"type": "subprocess:run", "options": {"args": ["touch", str(marker)]}}
    )
    proc = sdl(environ, "run", str(cfg), "--store", str(tmp_path / "s.zarr"))
    assert proc.returncode == 2 and "'subprocess:run'" in proc.stderr, proc.stderr
    assert "devices.pwn.type" in proc.stderr
    assert not marker.exists()


def test_an_objective_function_path_is_code_too(tmp_path, env):
    environ, marker = env
    objectives = [{"name": "intensity", "goal": "maximize", "function": "trustmod:score"}]
    cfg = _campaign(tmp_path, objectives=objectives)
    store = tmp_path / "f.zarr"
    proc = sdl(environ, "run", str(cfg), "--store", str(store))
    assert proc.returncode == 2, proc.stderr
    assert "objectives.intensity.function" in proc.stderr and "trustmod:score" in proc.stderr
    assert not marker.exists() and not store.exists()
    proc = sdl(environ, "run", str(cfg), "--store", str(store), "--allow-import", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert marker.read_text() == "function imported and called"


def test_resume_never_imports_a_path_from_the_store_without_the_flag(tmp_path, env):
    environ, marker = env
    store = tmp_path / "edited.zarr"
    proc = sdl(environ, "run", str(_campaign(tmp_path)), "--store", str(store), "--quiet")
    assert proc.returncode == 0, proc.stderr
    # someone with write access to the store edits its saved configuration
    root = zarr.open_group(store, mode="r+")
    campaign = dict(root.attrs["campaign"])
    campaign["config"]["devices"]["pwn"] = {"type": "trustmod:make", "options": {}}
    root.attrs["campaign"] = campaign

    proc = sdl(environ, "resume", str(store), "--budget", "3", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "devices.pwn.type" in proc.stderr and "'trustmod:make'" in proc.stderr
    assert "--allow-import" in proc.stderr
    assert not marker.exists()
    assert len(open_store(store).to_dataframe()) == 2  # nothing ran

    proc = sdl(environ, "resume", str(store), "--budget", "3", "--quiet", "--allow-import")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists() and len(open_store(store).to_dataframe()) == 3


def test_python_callers_opt_in_explicitly(tmp_path, env):
    _, marker = env
    cfg = _campaign(tmp_path, device={"type": "trustmod:make"})
    with pytest.raises(ImportNotAllowedError, match=r"devices\.pwn\.type.*trustmod:make"):
        load_campaign(cfg)
    assert not marker.exists()
    assert load_campaign(cfg, allow_import=True).budget == 2 and marker.exists()
    # the registries refuse an import path outside allow_import, whoever asks
    with pytest.raises(ImportNotAllowedError, match="sdl.devices:SimMotor"):
        make_device("sdl.devices:SimMotor", "m")
    with pytest.raises(ImportNotAllowedError):
        get_planner_class("sdl.planners._sobol:SobolPlanner")
    with allow_import():
        assert isinstance(make_device("sdl.devices:SimMotor", "m"), SimMotor)
        assert get_planner_class("sdl.planners._sobol:SobolPlanner") is SobolPlanner
    assert get_planner_class("sobol") is SobolPlanner  # registered names need no opt-in
