"""Run the ``sdl`` command line and SIGKILL it inside a store write (a test helper).

Usage: python _kill_inside_write.py {stream,table,resize} N sdl-arguments...

The process kills itself on the Nth time it reaches the chosen point:

* ``stream``: a stream block's data and ``seq_num`` are appended, its ``time`` (the commit
  mark) is not;
* ``table``: a table row's columns are resized or written, its ``status`` is not;
* ``resize``: a Zarr array has grown, the data meant for the new rows are not written.

Only sdl's own functions are wrapped; every write before the kill is real. With N = 0 it
kills nothing and prints how often the point was reached (to choose N).
"""

import os
import signal
import sys

import zarr.core.array

import sdl.store._stream
import sdl.store._table
from sdl.cli import main

target, nth, argv = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
calls = 0


def _count() -> None:
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)


def _after(fn):
    def wrapped(*args, **kwargs):
        result = fn(*args, **kwargs)
        _count()
        return result

    return wrapped


def _after_async(fn):
    async def wrapped(*args, **kwargs):
        result = await fn(*args, **kwargs)
        _count()
        return result

    return wrapped


if target == "stream":
    sdl.store._stream.concurrently = _after(sdl.store._stream.concurrently)
elif target == "table":
    sdl.store._table.concurrently = _after(sdl.store._table.concurrently)
elif target == "resize":
    zarr.core.array._resize = _after_async(zarr.core.array._resize)
else:
    sys.exit(f"unknown target {target!r}")
code = main(argv)
if nth == 0:
    print(f"reached {calls} times", file=sys.stderr)
sys.exit(code)
