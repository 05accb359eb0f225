"""The ``sdl`` command's output outlives whoever reads it.

``sdl run campaign.yaml | tee run.log`` and then Ctrl-C: the terminal sends SIGINT to the
whole pipeline, ``tee`` dies, and every later write to standard output fails with
``BrokenPipeError``: bluesky's "pause requested" message (its SIGINT thread died of it, so
the campaign never paused), the resume/stop/abort prompt, the final summary. The same
happens to ``sdl run ... | head`` or a pager closed early, and (``EIO``) to a terminal that
hung up. A campaign must not end, or ignore its operator, because its reader went away.

:func:`keep_writing` wraps ``sys.stdout`` and ``sys.stderr`` for the command's life: when a
write fails so, the stream's file descriptor is pointed at the process's terminal if it
still has one (``/dev/tty``: the operator who pressed Ctrl-C sees the prompt there), else
at ``/dev/null``, and the write is done again. A standard stream closed when ``sdl`` starts
is ``/dev/null`` from the start.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["keep_writing"]

_GONE = (errno.EPIPE, errno.EIO)


def _reader_gone(err: OSError) -> bool:
    return err.errno in _GONE  # (BrokenPipeError's is EPIPE)


class _Outliving:
    """A text stream that, when its reader is gone, writes to the terminal or nowhere."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError as err:
            if not _reader_gone(err):
                raise
            self._move()
            return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError as err:
            if not _reader_gone(err):
                raise
            self._move()
            self._stream.flush()

    def _move(self) -> None:
        with self._lock:
            fd = self._stream.fileno()
            for target in ("/dev/tty", os.devnull):
                try:
                    new = os.open(target, os.O_WRONLY)
                except OSError:  # no controlling terminal, or it hung up
                    continue
                try:
                    if target == "/dev/tty" and not _writable(new):
                        continue
                    os.dup2(new, fd)
                    return
                finally:
                    os.close(new)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _writable(fd: int) -> bool:
    """Whether the terminal ``fd`` takes writes (one that hung up gives ``EIO``)."""
    try:
        os.write(fd, b"")
        return os.isatty(fd)
    except OSError:
        return False


def _open_standard_streams() -> None:
    """Put ``/dev/null`` on a standard file descriptor that is closed at start.

    ``sdl run ... >&- 2>&-``, or a supervisor that starts it so: Python then sets
    ``sys.stdout``/``sys.stderr`` to None, and the progress bar's first write failed the
    campaign before its first experiment. Worse, the next file opened takes the free
    number: a store's log could become "stderr" for the C libraries (EPICS Channel Access
    prints its warnings to fd 2) and for every process started.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))


@contextlib.contextmanager
def keep_writing() -> Iterator[None]:
    """Within: ``sys.stdout`` and ``sys.stderr`` survive their reader (see the module), and
    standard streams closed at start are ``/dev/null``."""
    _open_standard_streams()
    saved = sys.stdout, sys.stderr
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
            continue
        setattr(sys, name, _Outliving(stream))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):  # what is buffered, while it is wrapped
            with contextlib.suppress(AttributeError, OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = saved
