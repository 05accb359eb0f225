import pytest

from sdl._plugins import ImportNotAllowedError, allow_import
from sdl.devices import (
    AlignmentStage,
    ColorMixingStation,
    SimDetector,
    SimMotor,
    available_devices,
    make_device,
    register_device,
)
from sdl.errors import ConfigError, DeviceNotFoundError


def constant_physics(inputs):
    return 1.0


def test_builtins_available():
    names = available_devices()
    assert {"sim_motor", "sim_detector", "color_mixing_station", "alignment_stage"} <= set(names)


def test_make_builtin_devices():
    m = make_device("sim_motor", "x", limits=(0, 5), egu="deg")
    assert isinstance(m, SimMotor) and m.name == "x" and m.limits == (0.0, 5.0)
    assert isinstance(make_device("color_mixing_station", "cs", seed=0), ColorMixingStation)
    assert isinstance(make_device("alignment_stage", "al", n_axes=3), AlignmentStage)
    with allow_import():  # a physics path is code: imported only when allowed
        det = make_device("sim_detector", "d", physics=f"{__name__}:constant_physics", inputs=[m])
    assert isinstance(det, SimDetector) and det.channels == ("d",)


def test_module_attribute_type():
    with pytest.raises(ImportNotAllowedError, match="--allow-import"):
        make_device("sdl.devices:SimMotor", "y")
    with allow_import():
        assert isinstance(make_device("sdl.devices:SimMotor", "y"), SimMotor)
        with pytest.raises(DeviceNotFoundError):
            make_device("sdl.devices:Nope", "y")


def test_unknown_type_lists_available_and_how_to_register():
    with pytest.raises(DeviceNotFoundError, match="sim_motor.*register_device.*sdl.devices"):
        make_device("laser", "l")


def test_unknown_option_names_it_and_accepted():
    with pytest.raises(ConfigError, match="'limitz'.*accepted options.*'limits'"):
        make_device("sim_motor", "x", limitz=(0, 1))
    with pytest.raises(ConfigError, match="physics"):
        make_device("sim_detector", "d")


def test_register_and_duplicates():
    register_device("test_registry_motor", SimMotor)
    assert "test_registry_motor" in available_devices()
    assert isinstance(make_device("test_registry_motor", "z"), SimMotor)
    with pytest.raises(ConfigError, match="already registered"):
        register_device("test_registry_motor", SimMotor)
    with pytest.raises(ConfigError):
        register_device("sim_motor", SimMotor)
