"""Turn pydantic's validation errors into one message a lab user can act on."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

__all__ = ["format_validation_error", "field_path"]

_HINTS = {
    "missing": "this field is required; add it",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "dict_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list (lines starting with '-')",
    "greater_than": "must be greater",
}


def field_path(loc: Sequence[Any]) -> str:
    """``("parameters", 0, "high")`` -> ``"parameters[0].high"`` (tags of unions dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("real", "integer", "categorical", "function-after", "function-before"):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _known_fields(model: Any, loc: Sequence[Any]) -> Iterable[str]:
    try:
        fields = model.model_fields
        for part in loc[:-1]:
            if isinstance(part, int):
                continue
            ann = fields[part].annotation
            fields = getattr(ann, "model_fields", {})
        return fields.keys()
    except (KeyError, AttributeError):
        return ()


def format_validation_error(err: ValidationError, *, source: str, model: Any) -> str:
    """One line per problem: where it is, what is wrong, and how to fix it."""
    lines = [f"{source}: {err.error_count()} problem(s) in the campaign configuration:"]
    for e in err.errors():
        path = field_path(e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            name = str(e["loc"][-1])
            close = difflib.get_close_matches(name, list(_known_fields(model, e["loc"])), n=1)
            msg = f"unknown field {name!r}" + (
                f"; did you mean {close[0]!r}?" if close else "; remove it"
            )
        elif e["type"] in _HINTS and e["type"] != "missing":
            msg = f"{msg} ({_HINTS[e['type']]}; got {e.get('input')!r})"
        elif e["type"] == "missing":
            msg = f"missing: {_HINTS['missing']}"
        elif e["type"] == "literal_error":
            msg = f"{msg}; got {e.get('input')!r}"
        lines.append(f"  {path}: {msg}")
    return "\n".join(lines)
