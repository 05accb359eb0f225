"""Read a campaign file: UTF-8 text, YAML with every mapping key given once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sdl.errors import ConfigError

__all__ = ["UniqueKeyLoader", "read_campaign_file"]


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    PyYAML keeps the last of duplicated keys silently, so ``budget: 20`` followed later by
    ``budget: 5`` would run 5 experiments with nobody noticing.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` may repeat
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise ConfigError(
                    f"duplicated key {key!r}: given on line {first} and again on line {line}; "
                    f"keep one of them"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_campaign_file(path: Path) -> Any:
    """The parsed YAML of the campaign file at ``path``.

    Raises:
        ConfigError: the file cannot be read, is not UTF-8, is empty, is not YAML, or
            gives a key twice in one mapping; the message starts with the file's path.
    """
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{where}: cannot read the campaign file ({err.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            f"{where}: the file is not UTF-8 text (byte 0x{raw[err.start]:02x} on line {line}); "
            f"save it as UTF-8"
        ) from None
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        raise ConfigError(f"{where}: the campaign file is empty; see docs/config.md for its fields")
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML: {err}") from None
