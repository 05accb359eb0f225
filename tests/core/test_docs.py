"""Every example in README.md and docs/*.md works as written.

- every fenced ``python`` block runs, in a fresh interpreter, in a folder holding small
  stores made by real campaigns (``runs/align.zarr``, ``runs/color.zarr``,
  ``runs/old.zarr``), with ``examples/plugin_kit`` importable;
- every fenced ``yaml`` block is a campaign that validates with ``load_config``; the
  full campaign of docs/config.md is also built (its dry run), as ``sdl run`` does;
- a block that cannot run or is not a whole campaign says so, with a reason, in an HTML
  comment on the line before its fence: ``<!-- no-run: REASON -->`` (python) or
  ``<!-- partial: REASON -->`` (yaml: its keys are merged over examples/alignment.yaml;
  ``<!-- partial devices: REASON -->`` for entries under ``devices:``).

``bash`` blocks are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdl.config import build_campaign, load_campaign, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)
MARK = re.compile(r"<!--\s*(no-run|partial)(?:\s+(\w+))?\s*:\s*(.*?)\s*-->")


def _blocks(language: str):
    """``(id, code, marker)`` of every block in ``language``; marker ``(kind, under, reason)``."""
    for path in DOCS:
        text = path.read_text()
        for m in FENCE.finditer(text):
            if m.group(1) != language:
                continue
            before = text[: m.start()].rstrip().splitlines()
            mark = MARK.fullmatch(before[-1].strip()) if before else None
            line = text.count("\n", 0, m.start()) + 1
            yield (
                f"{path.relative_to(ROOT)}:{line}",
                m.group(2),
                mark.groups() if mark else None,
            )


PYTHON = list(_blocks("python"))
YAML = list(_blocks("yaml"))


def _small(config_path: Path, **changes) -> dict:
    config = yaml.safe_load(config_path.read_text())
    config.update(budget=3, planner={"name": "sobol"}, **changes)
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A folder with the stores the examples read: each written by a real small campaign."""
    work = tmp_path_factory.mktemp("docs")
    old = Path.cwd()
    os.chdir(work)
    try:
        examples = ROOT / "examples"
        load_campaign(_small(examples / "alignment.yaml")).run(store="runs/align.zarr")
        color = _small(examples / "color_mixing.yaml")
        for device in color["devices"].values():
            device.setdefault("options", {})["time_scale"] = 0.0
        load_campaign(color).run(store="runs/color.zarr")
        documented = _documented_config()
        for key in ("warm_start", "approval", "store"):
            documented.pop(key)
        load_campaign(_small_dict(documented)).run(store="runs/old.zarr")
    finally:
        os.chdir(old)
    return work


def _small_dict(config: dict) -> dict:
    return {**config, "budget": 2, "planner": {"name": "sobol"}}


def _documented_config() -> dict:
    (first,) = [code for ident, code, _ in YAML if ident.startswith("docs/config.md")][:1]
    return yaml.safe_load(first)


def test_the_examples_are_found():
    assert len(PYTHON) >= 5 and len(YAML) >= 5
    assert any(ident.startswith("README.md") for ident, _, _ in PYTHON)


@pytest.mark.parametrize("ident, code, mark", [pytest.param(*b, id=b[0]) for b in PYTHON])
def test_python_example_runs(ident, code, mark, workdir):
    if mark is not None:
        kind, _, reason = mark
        assert kind == "no-run", f"{ident}: a python block is marked {kind!r}, not 'no-run'"
        assert reason, f"{ident}: <!-- no-run: ... --> must give its reason"
        pytest.skip(f"{ident}: not run: {reason}")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "examples" / "plugin_kit"), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"{ident} failed:\n{code}\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize("ident, code, mark", [pytest.param(*b, id=b[0]) for b in YAML])
def test_yaml_example_validates(ident, code, mark):
    config = yaml.safe_load(code)
    assert isinstance(config, dict), f"{ident}: not a mapping"
    if mark is not None:
        kind, under, reason = mark
        assert kind == "partial", f"{ident}: a yaml block is marked {kind!r}, not 'partial'"
        assert reason, f"{ident}: <!-- partial: ... --> must give its reason"
        base = yaml.safe_load((ROOT / "examples" / "alignment.yaml").read_text())
        if under:
            config = {under: {**base[under], **config}}
        config = {**base, **config}
    load_config(config)


def test_the_documented_campaign_builds(workdir, monkeypatch):
    """docs/config.md's full example: validated, then built (the dry run of ``sdl run``)."""
    monkeypatch.chdir(workdir)  # its warm_start: runs/old.zarr, a store of the same campaign
    config = load_config(_documented_config())
    assert config.approval == "dashboard" and config.measurements[0].name == "viscosity"
    assert config.planner.options["outcome_constraints"] == ["viscosity <= 50"]
    campaign = build_campaign(config)
    assert campaign.budget == 20
    assert {"stage_m0", "stage_m1", "stage_m2", "rheometer_det"} <= set(campaign.devices)


def test_ci_runs_the_readme_test_command_with_the_browser_test_mandatory():
    bash = re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M)
    command = bash[1].strip()  # quick start, command 2
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines[-1] == command
    assert "export CI=true" in lines[: lines.index(command)]
