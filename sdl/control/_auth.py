"""Signed control requests: the campaign checks a MAC, not the requester's word.

Anyone who can write ``<store>/control/requests/`` can post a request, so a request proves
it comes from someone holding the campaign's control token by carrying
``mac = HMAC-SHA256(token, canonical request)``; the canonical request is the JSON of
``id`` (time-sortable and random: the nonce), ``action``, ``args``, ``who``, ``time`` and
``expires`` with sorted keys and no spaces. A campaign started with a token refuses a
request whose MAC is missing or wrong, one signed more than :data:`SIGNATURE_WINDOW_S`
seconds away from its own clock, and one it has answered before (a replay of the same id).

The token comes from the environment (:data:`TOKEN_ENV`) or a file, never from the
command line, where every local user can read it (``ps``, ``/proc/<pid>/cmdline``).
In a campaign process it is given to the control watcher with :func:`control_token`, a
scoped switch like BoTorch's settings, or as ``ControlWatcher(..., token=...)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sdl.errors import ConfigError

__all__ = [
    "SIGNATURE_WINDOW_S",
    "TOKEN_ENV",
    "active_control_token",
    "control_token",
    "read_control_token",
    "sign_request",
    "verify_request",
]

logger = logging.getLogger(__name__)

#: environment variable holding the control token
TOKEN_ENV = "SDL_CONTROL_TOKEN"

#: a signed request is accepted only this many seconds either side of the campaign's clock
SIGNATURE_WINDOW_S = 60.0

#: the request fields covered by the MAC
SIGNED_FIELDS = ("id", "action", "args", "who", "time", "expires")

_DOMAIN = b"sdl-control-request-v1\n"

_ACTIVE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sdl_control_token", default=None
)


def _canonical(fields: Mapping[str, Any]) -> bytes:
    signed = {k: fields.get(k) for k in SIGNED_FIELDS}
    signed["args"] = dict(signed.get("args") or {})
    return json.dumps(signed, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign_request(token: str, fields: Mapping[str, Any]) -> str:
    """The hex HMAC-SHA256 of the canonical request ``fields`` under ``token``."""
    # the fields as a reader will see them after a JSON round trip (tuples -> lists, ...)
    plain = json.loads(json.dumps(dict(fields), default=str))
    return hmac.new(token.encode(), _DOMAIN + _canonical(plain), hashlib.sha256).hexdigest()


def verify_request(token: str, fields: Mapping[str, Any], mac: Any) -> bool:
    """Whether ``mac`` is the MAC of ``fields`` under ``token`` (constant-time compare)."""
    if not isinstance(mac, str):
        return False
    expected = hmac.new(token.encode(), _DOMAIN + _canonical(fields), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, mac)


def read_control_token(
    path: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """The control token: from the file ``path`` if given, else ``$SDL_CONTROL_TOKEN``.

    The file holds the token on its first line (surrounding white space is ignored); a
    file other users may read is used with a warning.

    Returns:
        The token, or None when neither gives one (control is then not authenticated).

    Raises:
        ConfigError: the file cannot be read or holds no token.
    """
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
            mode = path.stat().st_mode
        except OSError as err:
            raise ConfigError(
                f"control token file {path}: cannot read it ({err.strerror or err})"
            ) from err
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ConfigError(f"control token file {path} is empty: write the token into it")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            logger.warning(
                "control token file %s can be read by other users: chmod 600 %s", path, path
            )
        return token
    env = os.environ if environ is None else environ
    return env.get(TOKEN_ENV) or None


def active_control_token() -> str | None:
    """The token set by the innermost :func:`control_token` block (None outside one)."""
    return _ACTIVE.get()


@contextlib.contextmanager
def control_token(token: str | None) -> Iterator[None]:
    """Within the block, control watchers made without ``token=`` require this token.

    Example:
        >>> with control_token(read_control_token()):  # doctest: +SKIP
        ...     campaign.run(RE, store="runs/demo.zarr", control=True)
    """
    reset = _ACTIVE.set(token or None)
    try:
        yield
    finally:
        _ACTIVE.reset(reset)
