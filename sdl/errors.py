"""The exceptions sdl raises.

Every error derives from :class:`SdlError` and also from the builtin it resembles,
so ``except LookupError`` keeps working for code that does not know sdl.
"""

from __future__ import annotations

__all__ = [
    "SdlError",
    "ConfigError",
    "DeviceNotFoundError",
    "PlannerNotFoundError",
    "ProtocolNotFoundError",
    "LimitError",
    "DeviceFaultError",
    "NotConnectedError",
    "ExperimentFailed",
    "StoreError",
]


class SdlError(Exception):
    """Root of every error raised by sdl."""


class ConfigError(SdlError, ValueError):
    """A campaign configuration is invalid; the message names the field and the fix."""


class DeviceNotFoundError(SdlError, LookupError):
    """No device type (or device instance) is registered under the given name."""


class PlannerNotFoundError(SdlError, LookupError):
    """No planner is registered under the given name."""


class ProtocolNotFoundError(SdlError, LookupError):
    """No protocol is registered under the given name."""


class LimitError(SdlError, ValueError):
    """A set-point lies outside a device's software limits; nothing was moved."""


class DeviceFaultError(SdlError, RuntimeError):
    """A (simulated or real) device reported a fault during an operation."""


class NotConnectedError(SdlError, ConnectionError):
    """One or more devices (or their PVs) did not connect, or lost their connection.

    The message lists every unconnected signal, grouped by device, and what to check.

    Attributes:
        failures: ``{device name: [PV name or signal name, ...]}``.
    """

    def __init__(self, message: str, failures: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.failures: dict[str, list[str]] = dict(failures or {})


class ExperimentFailed(SdlError, RuntimeError):
    """An experiment could not produce valid objective values."""


class StoreError(SdlError, OSError):
    """The campaign store is missing, unreadable or of an unknown layout version."""
