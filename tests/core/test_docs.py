"""The configuration documented in docs/config.md is valid."""

import re
from pathlib import Path

import yaml

from sdl.config import load_config

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_documented_campaign_validates():
    text = (DOCS / "config.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    config = load_config(yaml.safe_load(block))
    assert config.approval == "dashboard" and config.measurements[0].name == "viscosity"
    assert config.planner.options["outcome_constraints"] == ["viscosity <= 50"]
