"""Every configuration mistake gives one clear message naming the field and the fix."""

import copy

import pytest
import yaml

from sdl.config import load_campaign, load_config
from sdl.errors import ConfigError, DeviceNotFoundError, PlannerNotFoundError, ProtocolNotFoundError

GOOD = yaml.safe_load(open("examples/alignment.yaml"))


def _with(path, value, base=GOOD):
    cfg = copy.deepcopy(base)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return cfg


_DELETE = object()


def test_the_examples_are_valid():
    for name in ("alignment", "color_mixing"):
        config = load_config(f"examples/{name}.yaml")
        assert config.budget > 0 and config.objectives


@pytest.mark.parametrize(
    "path, value, error, words",
    [
        (
            ("parameters", 0, "low"),
            50,
            ConfigError,
            ["parameters[0]", "must be less than high", "swap"],
        ),
        (("parameters", 0, "log"), True, ConfigError, ["parameters[0]", "low > 0"]),
        # NaN failed the range check with a misleading 'swap them'; an infinite bound passed it
        (("parameters", 0, "high"), float("nan"), ConfigError, ["parameters[0].high", "finite"]),
        (("parameters", 0, "low"), float("-inf"), ConfigError, ["parameters[0].low", "finite"]),
        (
            ("parameters", 1, "type"),
            "complex",
            ConfigError,
            ["parameters[1]", "real, integer, categorical"],
        ),
        (("objectives",), [], ConfigError, ["objectives", "at least 1"]),
        (("objectives",), _DELETE, ConfigError, ["objectives", "missing", "add it"]),
        (("budget",), "many", ConfigError, ["budget", "whole number", "'many'"]),
        (("budget",), 0, ConfigError, ["budget", "greater than 0"]),
        (("bugdet",), 10, ConfigError, ["unknown field 'bugdet'", "did you mean 'budget'"]),
        (("objectives", 0, "goal"), "maximise", ConfigError, ["objectives[0].goal", "'maximise'"]),
        (
            ("planner", "name"),
            "gradient-descent",
            PlannerNotFoundError,
            ["planner", "gradient-descent", "botorch", "sdl.planners"],
        ),
        (
            ("planner", "options", "restarts"),
            3,
            ConfigError,
            ["planner", "restarts", "num_restarts"],
        ),
        (
            ("devices", "stage", "type"),
            "hexapod",
            DeviceNotFoundError,
            ["devices.stage", "hexapod", "alignment_stage", "sdl.devices"],
        ),
        (
            ("devices", "stage", "options", "axes"),
            3,
            ConfigError,
            ["devices.stage", "axes", "n_axes"],
        ),
        (
            ("protocol", "name"),
            "dance",
            ProtocolNotFoundError,
            ["protocol", "dance", "set_settle_measure"],
        ),
        (
            ("parameters", 0, "device"),
            "stage_m9",
            ConfigError,
            ["parameters.x.device", "stage_m9", "stage_m0"],
        ),
        (("protocol", "options", "detectors"), ["camera"], ConfigError, ["detectors", "camera"]),
        (
            ("store_options",),
            {"flush_interval": 0},
            ConfigError,
            ["store_options.flush_interval", "greater than 0"],
        ),
        (
            ("store_options",),
            {"flush_intervals": 2},
            ConfigError,
            ["store_options", "'flush_intervals'", "did you mean 'flush_interval'"],
        ),
    ],
)
def test_mistakes_name_the_field(path, value, error, words):
    with pytest.raises(error) as info:
        load_campaign(_with(path, value))
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


def test_several_mistakes_are_reported_together():
    cfg = _with(("budget",), -1, _with(("parameters", 0, "low"), 99))
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "2 problem(s)" in str(info.value)


def test_files_that_are_not_campaigns(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("budget: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_overrides_win_over_the_file():
    config = load_config("examples/alignment.yaml", budget=3, seed=9, store=None)
    assert (config.budget, config.seed) == (3, 9)
