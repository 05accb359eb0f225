"""Turn pydantic's validation errors into one message a lab user can act on."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import Tag, ValidationError
from typing_extensions import is_typeddict

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


#: tags of tagged unions (parameter types, lab kinds) and validator steps: not fields
_TAGS = (
    "real",
    "integer",
    "categorical",
    "film_lab",
    "station_lab",
    "function-after",
    "function-before",
)


def field_path(loc: Sequence[Any]) -> str:
    """``("parameters", 0, "high")`` -> ``"parameters[0].high"`` (tags of unions dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _TAGS:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _fields_of(tp: Any) -> dict[str, Any]:
    """Field name -> annotation of a pydantic model or a TypedDict, else ``{}``."""
    if hasattr(tp, "model_fields"):
        return {k: f.annotation for k, f in tp.model_fields.items()}
    if is_typeddict(tp):
        return get_type_hints(tp)
    return {}


def _unannotated(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _inner(tp: Any, part: Any) -> Any:
    """The type found at ``part`` inside ``tp``: a field, a mapping's value, a list item."""
    tp = _unannotated(tp)
    for arg in get_args(tp):  # a tagged union member: ``part`` is its tag (``"real"``)
        tags = (
            [m.tag for m in get_args(arg)[1:] if isinstance(m, Tag)]
            if get_origin(arg) is Annotated
            else []
        )
        if part in tags:
            return _unannotated(arg)
    fields = _fields_of(tp)
    if fields:
        return fields.get(part)
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (dict, Mapping):
        return args[-1] if args else None
    if get_origin(tp) is list:
        return args[0] if args and isinstance(part, int) else None
    for arg in args:  # Optional[...] and other unions: the first that has ``part``
        found = _inner(arg, part)
        if found is not None:
            return found
    return None


def _known_fields(model: Any, loc: Sequence[Any]) -> Iterable[str]:
    tp = model
    for part in loc[:-1]:
        tp = _inner(tp, part)
        if tp is None:
            return ()
    for candidate in (tp, *get_args(tp)):  # a model, or a model inside Optional[...]
        if _fields_of(candidate):
            return _fields_of(candidate).keys()
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
        if not e["loc"] and re.match(r"[\w.\[\]]+: ", msg):
            lines.append(f"  {msg}")  # a check across fields names its own field
        else:
            lines.append(f"  {path}: {msg}")
    return "\n".join(lines)
