"""Finding planners by name: built-ins, ``sdl.planners`` entry points, 'module:Class'."""

from __future__ import annotations

import textwrap

import pytest

from sdl._plugins import ImportNotAllowedError, allow_import
from sdl.errors import ConfigError, PlannerNotFoundError, SdlError
from sdl.planners import (
    BoTorchPlanner,
    Planner,
    SkoptPlanner,
    SobolPlanner,
    available_planners,
    get_planner_class,
    make_planner,
)


def test_builtins_by_name():
    assert get_planner_class("botorch") is BoTorchPlanner
    assert get_planner_class("skopt") is SkoptPlanner
    assert get_planner_class("sobol") is SobolPlanner
    assert {"botorch", "skopt", "sobol"} <= set(available_planners())
    for cls in (BoTorchPlanner, SkoptPlanner, SobolPlanner):
        assert get_planner_class(cls.name) is cls


def test_an_unknown_name_lists_the_planners_and_how_to_register():
    with pytest.raises(PlannerNotFoundError) as info:
        get_planner_class("bayes-magic")
    message = str(info.value)
    assert "'bayes-magic'" in message and "'botorch'" in message and "'sobol'" in message
    assert "sdl.planners" in message and "module:Class" in message
    assert isinstance(info.value, SdlError) and isinstance(info.value, LookupError)


def test_module_colon_class_references():
    with pytest.raises(ImportNotAllowedError, match="--allow-import"):
        get_planner_class("sdl.planners._sobol:SobolPlanner")  # code: only when allowed
    with allow_import():
        assert get_planner_class("sdl.planners._sobol:SobolPlanner") is SobolPlanner
        with pytest.raises(PlannerNotFoundError, match="could not be imported"):
            get_planner_class("sdl.planners:NoSuchPlanner")
        with pytest.raises(PlannerNotFoundError, match="could not be imported"):
            get_planner_class("no_such_module_xyz:Planner")
        with pytest.raises(ConfigError, match="not a subclass"):
            get_planner_class("math:pi")


def test_make_planner_passes_options(plane, objective):
    planner = make_planner("botorch", plane, objective, seed=4, num_restarts=3, n_initial=2)
    assert isinstance(planner, BoTorchPlanner)
    assert (planner.seed, planner.num_restarts, planner.n_initial) == (4, 3, 2)


def test_an_unknown_option_names_the_accepted_ones(plane, objective):
    with pytest.raises(ConfigError) as info:
        make_planner("botorch", plane, objective, num_restart=3)
    message = str(info.value)
    assert "'num_restart'" in message and "num_restarts" in message and "raw_samples" in message
    with pytest.raises(
        ConfigError, match="no option .raw_samples.; it accepts: .*input_constraints"
    ):
        make_planner("sobol", plane, objective, raw_samples=3)


def _install_plugin(tmp_path, monkeypatch, dist, entry_points, module_source=None):
    """Make a minimal installed distribution ``dist`` visible on ``sys.path``."""
    if module_source is not None:
        (tmp_path / f"{dist}_planners.py").write_text(textwrap.dedent(module_source))
    info = tmp_path / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {value}" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[sdl.planners]\n{lines}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


PLUGIN = """
    from sdl.planners import SobolPlanner

    class GridPlanner(SobolPlanner):
        name = "grid"
"""


def test_an_entry_point_plugin_is_found(tmp_path, monkeypatch, plane, objective):
    _install_plugin(
        tmp_path, monkeypatch, "labgrid", {"grid": "labgrid_planners:GridPlanner"}, PLUGIN
    )
    assert "labgrid" in available_planners()["grid"]
    cls = get_planner_class("grid")
    assert issubclass(cls, Planner) and cls.__name__ == "GridPlanner"
    assert make_planner("grid", plane, objective).ask(2)


def test_a_name_registered_twice_is_an_error(tmp_path, monkeypatch):
    for dist in ("one", "two"):
        (tmp_path / dist).mkdir()
        _install_plugin(tmp_path / dist, monkeypatch, dist, {"grid": f"{dist}_mod:Grid"})
    with pytest.raises(ConfigError, match="registered twice"):
        available_planners()
    with pytest.raises(ConfigError, match="registered twice"):
        get_planner_class("grid")


def test_a_plugin_may_not_take_a_builtin_name(tmp_path, monkeypatch):
    _install_plugin(
        tmp_path, monkeypatch, "shadow", {"botorch": "shadow_planners:GridPlanner"}, PLUGIN
    )
    with pytest.raises(ConfigError, match="built-in"):
        available_planners()
