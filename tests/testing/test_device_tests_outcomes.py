"""``DeviceTests`` itself: a missing fixture is reported skipped, a short move fails.

Each case writes a small suite subclass to a file and runs pytest on it in a
subprocess, reading every test's outcome from the JUnit XML report.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

HEADER = """
import pytest
from bluesky.protocols import Movable, Readable, Stoppable

from sdl.devices import SimMotor
from sdl.testing import DeviceTests


class ShortMotor(SimMotor):
    # reports success but stops 0.3 short of every target
    def set(self, value):
        return super().set(value - 0.3)
"""


def _outcomes(tmp_path, body: str) -> dict[str, tuple[str, str]]:
    """Run the suite in ``body``: ``{test name: (outcome, message)}``."""
    (tmp_path / "test_suite.py").write_text(HEADER + textwrap.dedent(body))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(tmp_path / "pytest.ini"),
            f"--junitxml={report}",
            str(tmp_path / "test_suite.py"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.exists(), proc.stdout + proc.stderr
    out = {}
    for case in ET.parse(report).iter("testcase"):
        kind, message = "passed", ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                kind, message = child.tag, (child.get("message") or "") + (child.text or "")
        out[case.get("name")] = (kind, message)
    return out


def test_a_missing_fixture_skips_naming_it(tmp_path):
    out = _outcomes(
        tmp_path,
        """
        class TestMotorWithoutValues(DeviceTests):
            protocols = (Readable, Movable, Stoppable)
            position_tolerance = 1e-9

            @pytest.fixture
            def device(self):
                return SimMotor("m", limits=(-5, 5))
        """,
    )
    for name in ("test_set_finishes_within_timeout", "test_set_reaches_its_target"):
        assert out[name][0] == "skipped", out[name]
        assert "'valid_value' not provided" in out[name][1]
    assert out["test_limits_raise_before_motion"][0] == "skipped"
    assert "'invalid_value' not provided" in out["test_limits_raise_before_motion"][1]
    assert out["test_stop_interrupts_a_move"][0] == "skipped"
    assert "'far_value' not provided" in out["test_stop_interrupts_a_move"][1]
    assert out["test_read_matches_describe"][0] == "passed"


def test_a_missing_device_skips_every_check(tmp_path):
    out = _outcomes(tmp_path, "class TestNothing(DeviceTests):\n    pass\n")
    assert out and {kind for kind, _ in out.values()} == {"skipped"}, out
    assert all("'device' not provided" in message for _, message in out.values())


@pytest.mark.parametrize("tolerance, expected", [(0.01, "failure"), (0.5, "passed")])
def test_a_move_that_falls_short_fails_the_position_check(tmp_path, tolerance, expected):
    out = _outcomes(
        tmp_path,
        f"""
        class TestShortMotor(DeviceTests):
            protocols = (Readable, Movable, Stoppable)
            position_tolerance = {tolerance}

            @pytest.fixture
            def device(self):
                return ShortMotor("m", limits=(-5, 5))

            @pytest.fixture
            def valid_value(self):
                return 1.0
        """,
    )
    assert out["test_set_reaches_its_target"][0] == expected, out["test_set_reaches_its_target"]
    if expected == "failure":
        assert "more than position_tolerance=0.01 away" in out["test_set_reaches_its_target"][1]
    assert out["test_set_finishes_within_timeout"][0] == "passed"
