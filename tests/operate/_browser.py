"""Headless Chromium via selenium, and helpers to reach into Bokeh's shadow DOM."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

# Bokeh 3 renders every widget inside a shadow root: search them all.
FIND_JS = """
function find(root, sel) {
  const hit = root.querySelector(sel);
  if (hit) return hit;
  for (const n of root.querySelectorAll('*')) {
    if (n.shadowRoot) { const f = find(n.shadowRoot, sel); if (f) return f; }
  }
  return null;
}
return find(document, arguments[0]);
"""

MODEL_JS = """
const doc = (window.Bokeh && Bokeh.documents && Bokeh.documents[0]) || null;
if (!doc) return null;
const m = doc.get_model_by_name(arguments[0]);
if (!m) return null;
return arguments[1] === 'rows' ? m.data['experiment_id'].length : m.text;
"""


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


def chromium(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1300",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def find(driver, selector: str):
    """The first element matching ``selector`` in the page or any shadow root (or None)."""
    return driver.execute_script(FIND_JS, selector)


def model_text(driver, name: str):
    return driver.execute_script(MODEL_JS, name, "text")


def model_rows(driver, name: str):
    return driver.execute_script(MODEL_JS, name, "rows")
