"""A YAML campaign drives the caproto reactor IOC end to end: pyepics, ophyd, RunEngine, Zarr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from bluesky.utils import RunEngineInterrupted

from sdl import open_store
from sdl.config import load_campaign
from sdl.devices import make_safe
from sdl.devices._iocs.reactor import reactor_yield
from sdl.testing import IocProcess, loopback_ca, pause_before

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "epics_reactor.yaml"


def test_yaml_campaign_on_the_reactor_ioc(RE, store_path):
    loopback_ca()
    with IocProcess(args=["--tau", "0.05", "--noise", "0.05", "--seed", "3"]) as ioc:
        config = yaml.safe_load(EXAMPLE.read_text())
        options = config["devices"]["reactor"]["options"]
        options.update(prefix=ioc.prefix, dwell=0.05, settle_timeout=20.0)
        campaign = load_campaign(config, budget=5, store=str(store_path))
        result = campaign.run(RE, store=store_path)
        make_safe(campaign.devices.values())

    df = open_store(store_path).to_dataframe()
    assert len(df) == 5 and set(df["status"]) == {"done"}, df[["status", "cause"]]
    assert result.n_failed == 0
    for _, row in df.iterrows():
        assert 30 <= row["temperature"] <= 110 and 50 <= row["stir_rate"] <= 1200
        truth = reactor_yield(row["temperature"], row["stir_rate"])
        # temperature within the 0.1 degC tolerance (slope <= 4 %/degC) plus noise
        assert abs(row["yield"] - truth) < 0.8, (row["yield"], truth)
    assert result.best_objectives["yield"] == np.max(df["yield"])
    # each experiment's run holds the spectrum read through the waveform PV
    store = open_store(store_path)
    data = store.run(df["run_uid"].iloc[0]).data()
    assert np.shape(data["reactor_spectrometer_spectrum"]) == (1, 64)


def test_safe_state_at_pause_and_abort_of_a_campaign(RE, store_path):
    """The heater goes to its safe temperature when the campaign pauses and when it aborts."""
    loopback_ca()
    with IocProcess(args=["--tau", "0.05", "--seed", "4"]) as ioc:
        config = yaml.safe_load(EXAMPLE.read_text())
        options = config["devices"]["reactor"]["options"]
        options.update(prefix=ioc.prefix, dwell=0.05, settle_timeout=20.0)
        campaign = load_campaign(config, budget=4, store=str(store_path))
        campaign.protocol = pause_before(campaign.protocol, 2)
        heater = campaign.devices["reactor_temperature"]
        try:
            with pytest.raises(RunEngineInterrupted):
                campaign.run(RE, store=store_path)
            # paused after two experiments at 30..110 degC: the heater was set to idle
            assert heater.setpoint.get() == options["safe_temperature"]
            heater.setpoint.put(60.0)  # an operator heats by hand while paused
            RE.abort("operator")
            assert heater.setpoint.get() == options["safe_temperature"]  # the abort's clean-up
        finally:
            make_safe(campaign.devices.values())
    df = open_store(store_path).to_dataframe()
    assert df["status"].tolist() == ["done", "done", "interrupted"]
