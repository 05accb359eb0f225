"""``sdl run --check``, the dry run before the store, and a store cut during its creation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from sdl.cli import main
from sdl.config import load_campaign
from sdl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _file(tmp_path: Path, name: str = "alignment", **changes) -> Path:
    cfg = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    cfg.update(changes)
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("example", ["alignment", "color_mixing"])
def test_check_accepts_the_examples_and_creates_nothing(example, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default store would be runs/<name>-<time>.zarr here
    code = main(["run", "--check", str(ROOT / "examples" / f"{example}.yaml")])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ok: campaign ")
    assert "objective(s)" in lines[0] and "planner 'botorch'" in lines[0]
    assert "data keys" in lines[0]
    assert list(tmp_path.iterdir()) == []  # no runs/ folder, no store, no probe left behind


def test_check_reports_a_bad_key_with_exit_2(tmp_path, capsys):
    cfg = _file(tmp_path, objectives=[{"name": "intensity", "key": "stage_det_intensty"}])
    store = tmp_path / "s.zarr"
    code = main(["run", "--check", str(cfg), "--store", str(store)])
    out, err = capsys.readouterr()
    assert code == 2 and "ok" not in out
    assert "objectives.intensity.key" in err and "did you mean 'stage_det_intensity'" in err
    assert not store.exists()


def test_several_dry_run_problems_are_reported_together(tmp_path, capsys):
    cfg = _file(
        tmp_path,
        objectives=[{"name": "intensity", "key": "nope"}],
        parameters=[
            {"name": "x", "low": -30, "high": 10, "device": "stage_m0"},
            {"name": "y", "low": -10, "high": 10, "device": "stage_m1"},
        ],
    )
    assert main(["run", "--check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "2 problems found before the campaign started" in err
    assert "objectives.intensity.key" in err and "parameters.x: range [-30.0, 10.0]" in err


def test_a_range_within_the_limits_passes(tmp_path, capsys):
    """The limits check compares with the device's own limits, not with a default."""
    cfg = _file(
        tmp_path,
        devices={"stage": {"type": "alignment_stage", "options": {"limits": [-50, 50]}}},
        parameters=[
            {"name": "x", "low": -40, "high": 40, "device": "stage_m0"},
            {"name": "y", "low": -10, "high": 10, "device": "stage_m1"},
        ],
    )
    assert main(["run", "--check", str(cfg)]) == 0, capsys.readouterr().err


def test_outcome_constraint_on_a_measurement_passes(tmp_path, capsys):
    cfg = _file(
        tmp_path,
        measurements=[{"name": "position", "key": "stage_m0"}],
        planner={"name": "botorch", "options": {"outcome_constraints": ["position <= 5"]}},
    )
    assert main(["run", "--check", str(cfg)]) == 0, capsys.readouterr().err


def test_python_api_runs_the_same_dry_run():
    cfg = yaml.safe_load((ROOT / "examples" / "alignment.yaml").read_text())
    cfg["parameters"][0]["high"] = 12
    with pytest.raises(ConfigError, match=r"parameters\.x: range \[-10\.0, 12\.0\]"):
        load_campaign(cfg)


def test_duplicate_key_names_both_lines(tmp_path, capsys):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("name: a\nbudget: 3\nseed: 1\nbudget: 4\n")
    assert main(["run", "--check", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "duplicated key 'budget': given on line 2 and again on line 4" in err


def test_duplicate_key_inside_a_flow_mapping(tmp_path, capsys):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("parameters:\n  - {name: x, low: 0, low: 1, high: 2}\n")
    assert main(["run", "--check", str(cfg)]) == 2
    assert "duplicated key 'low': given on line 2 and again on line 2" in capsys.readouterr().err


# -- a store cut during its creation ---------------------------------------------------------

KILL_AFTER_INIT = textwrap.dedent(
    """
    import os, signal, sys
    import sdl.store._writer as writer
    from sdl.cli import main

    real = writer.init_store

    def init_then_die(*args, **kwargs):
        root = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # the root group is on disk, nothing else is
        return root

    writer.init_store = init_then_die
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.fixture
def cut_store(tmp_path):
    """A store whose ``sdl run`` was SIGKILLed right after the root group was written.

    Deterministic and real: the ``sdl run`` process kills itself (kill -9) the moment
    ``init_store`` returns, so the store holds exactly what creation had written then.
    """
    cfg = _file(tmp_path, planner={"name": "sobol"})
    store = tmp_path / "cut.zarr"
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_INIT, "run", str(cfg), "--store", str(store),
         "--quiet", "--no-control"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    root = json.loads((store / "zarr.json").read_text())
    assert "sdl" in root["attributes"] and "campaign" not in root["attributes"]
    return cfg, store


def _says_no_campaign_yet(err: str, store: Path) -> None:
    assert f"{store} holds no campaign yet" in err
    assert "the campaign never started" in err and "--overwrite" in err
    assert "Traceback" not in err


def test_resume_of_a_store_cut_during_creation(cut_store, capsys):
    _, store = cut_store
    assert main(["resume", str(store), "--quiet", "--no-control"]) == 2
    _says_no_campaign_yet(capsys.readouterr().err, store)


def test_run_into_a_store_cut_during_creation(cut_store, capsys):
    cfg, store = cut_store
    args = ["run", str(cfg), "--store", str(store), "--quiet", "--no-control"]
    assert main(args) == 2
    err = capsys.readouterr().err
    _says_no_campaign_yet(err, store)
    assert f"sdl run {cfg} --store {store} --overwrite" in err
    assert main(["run", "--check", str(cfg), "--store", str(store)]) == 2
    _says_no_campaign_yet(capsys.readouterr().err, store)
    # the advice works: --overwrite starts the campaign again
    assert main([*args, "--overwrite", "--budget", "2"]) == 0, capsys.readouterr().err
    assert "experiments: 2 done" in capsys.readouterr().out


def test_store_path_that_is_not_writable_as_a_user(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root may write into any folder; the corpus covers a read-only mount")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code = main(["run", "--check", str(_file(tmp_path)), "--store", str(locked / "s.zarr")])
    finally:
        locked.chmod(0o755)
    assert code == 2 and "is not writable" in capsys.readouterr().err
