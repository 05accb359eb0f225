"""The walk-through of docs/plugins.md: examples/plugin_kit works as documented.

The plugin is "installed" the way importlib.metadata discovers distributions: a
``labhotplate-0.1.0.dist-info`` with ``entry_points.txt`` on ``sys.path`` (nothing is
installed into the environment).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
import tomllib
import yaml
from bluesky.protocols import Movable, Readable, Stoppable

from sdl import open_store
from sdl.config import load_campaign
from sdl.devices import available_devices, make_device
from sdl.devices._registry import devices as device_registry
from sdl.errors import LimitError, NotConnectedError
from sdl.testing import DeviceTests, free_port

KIT = Path(__file__).resolve().parents[2] / "examples" / "plugin_kit"


@pytest.fixture
def kit(monkeypatch):
    """The plugin's package importable (as if installed)."""
    monkeypatch.syspath_prepend(str(KIT))
    yield
    for mod in [m for m in sys.modules if m == "labhotplate" or m.startswith("labhotplate.")]:
        del sys.modules[mod]


@pytest.fixture
def plate(kit):
    from labhotplate import SimulatedHotplate

    with SimulatedHotplate(tau=0.05) as server:
        yield server


@pytest.fixture
def installed(kit, tmp_path, monkeypatch):
    """A dist-info declaring the entry point; the device registry re-scans entry points."""
    info = tmp_path / "labhotplate-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: labhotplate\nVersion: 0.1.0\n")
    project = tomllib.loads((KIT / "pyproject.toml").read_text())["project"]
    lines = [f"{k} = {v}" for k, v in project["entry-points"]["sdl.devices"].items()]
    (info / "entry_points.txt").write_text("[sdl.devices]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # the registry scans the entry points at each look-up; once the path is gone, so is
    # the plugin (keep the registry's own entries as they were too)
    monkeypatch.setattr(device_registry, "_entries", dict(device_registry._entries))
    monkeypatch.setattr(device_registry, "_sources", dict(device_registry._sources))


class TestTcpHotplate(DeviceTests):
    protocols = (Readable, Movable, Stoppable)
    position_tolerance = 0.2

    @pytest.fixture
    def device(self, plate):
        from labhotplate import TcpHotplate

        dev = TcpHotplate("plate", port=plate.port, tolerance=0.2, limits=(20, 300))
        dev.connect()
        yield dev
        dev.destroy()

    @pytest.fixture
    def valid_value(self):
        return 40.0

    @pytest.fixture
    def invalid_value(self):
        return 400.0

    @pytest.fixture
    def far_value(self):
        return 290.0


def test_errors_name_host_and_port(kit):
    from labhotplate import HotplateError, SimulatedHotplate, TcpHotplate

    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(NotConnectedError, match=f"127.0.0.1:{port}"):
        TcpHotplate("p", port=port, timeout=0.5).connect()
    assert time.monotonic() - t0 < 2
    with SimulatedHotplate() as server:
        dev = TcpHotplate("p", port=server.port, limits=(0, 1000))
        with pytest.raises(LimitError):
            dev.set(-5)
        with pytest.raises(HotplateError, match="out of range"):
            dev.set(500).wait(2)
        dev.destroy()


def test_registered_by_entry_point_with_its_distribution(installed, plate, capsys):
    source = available_devices()["tcp_hotplate"]
    assert "labhotplate 0.1.0" in source and "labhotplate.device:TcpHotplate" in source
    dev = make_device("tcp_hotplate", "hp", port=plate.port)
    assert dev.position == pytest.approx(25.0, abs=0.5)
    from sdl.cli import main

    main(["devices"])
    assert "labhotplate 0.1.0" in capsys.readouterr().out


def test_campaign_yaml_uses_the_plugin(installed, plate, RE, store_path):
    config = yaml.safe_load((KIT / "hotplate_campaign.yaml").read_text())
    config["devices"]["plate"]["options"]["port"] = plate.port
    result = load_campaign(config).run(RE, store=store_path)
    df = open_store(store_path).to_dataframe()
    assert len(df) == 4 and set(df["status"]) == {"done"}
    assert (abs(df["plate_temperature"] - df["temperature"]) <= 0.2).all()
    assert result.n_failed == 0
