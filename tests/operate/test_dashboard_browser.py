"""The dashboard end to end: a campaign in the background, the dashboard, headless Chromium."""

import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from sdl import open_store
from sdl.control import ControlChannel

from . import _browser as browser

# CI (CI=true) installs Chromium in .ci/run and must run this test: there a missing
# browser fails it. A developer's machine without one skips it, saying what to install.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not browser.available() and not os.environ.get("CI"),
        reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)",
    ),
]

SHADOW_INNER_JS = """
const host = arguments[0];
return host && host.shadowRoot ? host.shadowRoot.querySelector(arguments[1]) : null;
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _inner(driver, host_selector, inner_selector):
    host = browser.find(driver, host_selector)
    assert host is not None, host_selector
    return driver.execute_script(SHADOW_INNER_JS, host, inner_selector)


def _sdl(*args):
    return [sys.executable, "-m", "sdl.cli", *args]


def test_dashboard_follows_a_running_campaign_in_chromium(tmp_path):
    config = yaml.safe_load(open("examples/alignment.yaml"))
    config["planner"] = {"name": "sobol", "options": {}}
    config["budget"] = 40
    config["devices"]["stage"]["options"]["time_scale"] = 2.0  # ~0.4 s per experiment
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(config))
    store = tmp_path / "bg.zarr"
    port = _free_port()
    procs = [
        subprocess.Popen(
            _sdl("run", str(tmp_path / "campaign.yaml"), "--store", str(store), "--quiet"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        ),
        subprocess.Popen(
            _sdl("dashboard", str(store), "--port", str(port), "--interval", "0.5"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "SDL_CONTROL_TOKEN": "s3cret"},  # never on the command line
        ),
    ]
    driver = None
    try:

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(listening, 30, "the dashboard to listen")
        driver = browser.chromium(tmp_path)
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{port}/")

        def shown():
            text = browser.model_text(driver, "n_experiments")
            return int(text) if text and text.isdigit() and int(text) > 0 else 0

        first = _wait_for(shown, 30, "experiments on the page")
        later = _wait_for(lambda: shown() if shown() >= first + 3 else 0, 15, "more experiments")
        assert later > first
        assert browser.model_rows(driver, "experiments") >= first
        assert "running" in browser.model_text(driver, "status")

        # control without the token, then with a wrong one: rejected, visibly, nothing sent
        _inner(driver, ".sdl-btn-pause", "button").click()
        _wait_for(
            lambda: "rejected" in (browser.model_text(driver, "control_message") or ""),
            5,
            "the rejection message",
        )
        assert "missing control token" in browser.model_text(driver, "control_message")
        _inner(driver, ".sdl-token", "input").send_keys("wrong\n")
        time.sleep(0.5)
        _inner(driver, ".sdl-btn-stop", "button").click()
        _wait_for(
            lambda: "wrong control token" in (browser.model_text(driver, "control_message") or ""),
            5,
            "the wrong-token message",
        )
        assert ControlChannel(store).history() == []
        time.sleep(1.0)
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    finally:
        if driver is not None:
            driver.quit()
        for p in procs:
            p.kill()
            p.wait()


def _start(tmp_path, config, port, token):
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "SDL_CONTROL_TOKEN": token}  # never on the command line
    store = tmp_path / "bg.zarr"
    run = _sdl("run", str(tmp_path / "campaign.yaml"), "--store", str(store), "--quiet")
    dash = _sdl("dashboard", str(store), "--port", str(port), "--interval", "0.5")
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        for cmd in (run, dash)
    ]
    return store, procs


def _answer(driver, action, timeout=20):
    """The dashboard's message once the campaign has acknowledged ``action``."""

    def answered():
        text = browser.model_text(driver, "control_message") or ""
        return text if f"{action}:" in text and "sent" not in text else ""

    try:
        return _wait_for(answered, timeout, f"the campaign's answer to {action}")
    except AssertionError as err:
        raise AssertionError(
            f"{err}; the page says {browser.model_text(driver, 'control_message')!r}"
        ) from None


def test_an_operator_approves_a_batch_with_the_right_token_in_chromium(tmp_path):
    config = yaml.safe_load(open("examples/alignment.yaml"))
    config.update(planner={"name": "sobol", "options": {}}, budget=3, batch_size=2)
    config["approval"] = "dashboard"
    port = _free_port()
    store, procs = _start(tmp_path, config, port, "s3cret")
    driver = None
    try:

        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(listening, 30, "the dashboard to listen")
        driver = browser.chromium(tmp_path)
        driver.set_page_load_timeout(30)
        driver.get(f"http://127.0.0.1:{port}/")
        _wait_for(
            lambda: "approval" in (browser.model_text(driver, "status") or ""),
            60,
            "the batch to await approval",
        )
        _wait_for(lambda: browser.model_rows(driver, "proposals") == 2, 15, "two proposals")
        _inner(driver, ".sdl-token", "input").send_keys("s3cret\n")  # the right token
        _inner(driver, ".sdl-btn-approve", "button").click()
        assert "2 accepted, 0 rejected" in _answer(driver, "approve")
        _wait_for(
            lambda: int(browser.model_text(driver, "n_experiments") or 0) >= 2,
            60,
            "the approved experiments to run",
        )
        answered = [(req.action, ack.ok) for req, ack in ControlChannel(store).history() if ack]
        assert ("approve", True) in answered, answered
        df = open_store(store).to_dataframe()
        assert (df["status"] == "done").sum() >= 2, df[["x", "y", "status"]]
    finally:
        if driver is not None:
            driver.quit()
        for p in procs:
            p.kill()
            p.wait()
