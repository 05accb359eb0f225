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


class ExperimentFailed(SdlError, RuntimeError):
    """An experiment could not produce valid objective values."""


class StoreError(SdlError, OSError):
    """The campaign store is missing, unreadable or of an unknown layout version."""
