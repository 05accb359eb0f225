"""``faults:`` in a campaign file, as docs/config.md documents it (issue 10, item 5)."""

import shutil
import subprocess
import sys

import pytest
import yaml

from sdl import open_store
from sdl.config import load_campaign, load_config
from sdl.errors import ConfigError

FAULTS = {"timeout": 0.1, "exception": 0.2, "nan": 0.2, "timeout_s": 1.0}


def _config(faults=FAULTS, **changes):
    cfg = yaml.safe_load(open("examples/alignment.yaml"))
    cfg["planner"] = {"name": "sobol"}
    cfg["budget"] = 12
    cfg["devices"]["stage"]["options"]["faults"] = faults
    cfg.update(changes)
    return cfg


def _sdl(*args):
    exe = shutil.which("sdl") or sys.executable
    cmd = [exe, *args] if exe != sys.executable else [exe, "-m", "sdl.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def test_sdl_run_with_faults_as_documented(tmp_path):
    path = tmp_path / "faulty.yaml"
    path.write_text(yaml.safe_dump(_config()))
    store = tmp_path / "out.zarr"
    proc = _sdl("run", str(path), "--store", str(store))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    df = open_store(store).to_dataframe()
    assert len(df) >= 12 and set(df["status"]) <= {"done", "failed"}
    assert (df["status"] == "failed").sum() >= 1  # 50 % per operation: faults did happen
    assert "simulated" in " ".join(df.loc[df["status"] == "failed", "cause"]) or any(
        "gave nan" in c for c in df["cause"]
    )
    # the store's copy of the configuration keeps the faults as plain data
    stored = open_store(store).campaign["config"]["devices"]["stage"]["options"]["faults"]
    assert stored["timeout"] == 0.1 and stored["nan"] == 0.2


def test_python_loader_builds_devices_that_inject_the_configured_faults():
    campaign = load_campaign(_config({"exception": 1.0}))
    motor = campaign.devices["stage_m0"]
    status = motor.set(1.0)
    with pytest.raises(Exception, match="simulated fault during set"):
        status.wait(1)
    (fault,) = motor.injected_faults
    assert (fault.device, fault.operation, fault.kind) == ("stage_m0", "set", "exception")


@pytest.mark.parametrize(
    "faults, expected",
    [
        ({"timeout": 1.5}, "devices.stage.options.faults.timeout: must be a probability"),
        ({"nan": -0.1}, "devices.stage.options.faults.nan: must be a probability"),
        ({"exception": "often"}, "devices.stage.options.faults.exception:"),
        ({"timeout": 0.6, "exception": 0.6}, "devices.stage.options.faults: timeout + exception"),
        ({"timout": 0.1}, "unknown field 'timout'; did you mean 'timeout'?"),
        ({"timeout_s": -1}, "devices.stage.options.faults.timeout_s:"),
        ([0.1], "devices.stage.options.faults:"),
    ],
)
def test_bad_faults_name_the_field(faults, expected):
    with pytest.raises(ConfigError) as info:
        load_config(_config(faults))
    assert expected in str(info.value)


def test_bad_faults_exit_2_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config({"timeout": 2})))
    proc = _sdl("run", str(path), "--store", str(tmp_path / "never.zarr"))
    assert proc.returncode == 2
    assert "devices.stage.options.faults.timeout: must be a probability" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "never.zarr").exists()


def test_faults_null_means_none():
    campaign = load_campaign(_config(None))
    assert campaign.devices["stage_m0"].set(1.0).wait(1) is None
    assert campaign.devices["stage_m0"].injected_faults == ()


def test_the_documented_faults_block_validates():
    text = open("docs/config.md").read()
    block = text[text.index("### Simulated faults") :]
    block = block[block.index("```yaml\n") + 8 : block.index("```\n", block.index("```yaml"))]
    documented = yaml.safe_load(block)["devices"]["stage"]["options"]["faults"]
    config = load_config(_config(documented))
    faults = config.devices["stage"].options["faults"]
    assert (faults.timeout, faults.exception, faults.nan) == (0.02, 0.02, 0.01)
    assert (faults.timeout_s, faults.seed) == (10, 7)
