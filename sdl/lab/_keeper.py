"""A station's RE worker keeps the documents of its recent steps for a coordinator that died.

The workers publish their documents through bluesky's 0MQ proxy, which buffers nothing:
what is published while the campaign's coordinator is down is gone from that channel.
Each worker therefore also keeps the documents of its last ``keep`` steps by their
correlation uid (``sdl_correlation`` in the run's start document), in memory and, given a
directory (``sdl lab up`` gives each manager one), in one JSON-lines file per step, so
they also outlive a restart of the worker. A resumed coordinator asks for them with the queue server's own ``function_execute`` of
``sdl_documents`` (:mod:`sdl.lab.qserver_worker`) and completes the store with them
(``docs/distributed.md``, "Exactly once").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from sdl.store._json import _default  # numpy values as JSON (NaN kept)

__all__ = ["DocumentKeeper"]


class DocumentKeeper:
    """A RunEngine subscriber: ``(name, doc)`` of each run that carries ``sdl_correlation``,
    grouped by that uid, for the last ``keep`` correlation uids.

    Args:
        keep: how many steps' documents to keep (the oldest are dropped first).
        directory: also write each step's documents to ``<directory>/<uid>.jsonl`` (a
            line per document, flushed as it comes), and read them back from there, so
            they outlive the worker (None: memory only).
    """

    def __init__(self, keep: int = 1000, directory: str | os.PathLike | None = None):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, list[tuple[str, dict]]] = OrderedDict()
        self._run: dict[str, str] = {}  # open run uid -> correlation
        self._descriptor: dict[str, str] = {}  # descriptor uid -> run uid
        self.directory = None if directory is None else Path(directory)
        self._files: OrderedDict[str, Path] = OrderedDict()  # oldest first
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            for path in sorted(self.directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
                self._files[path.stem] = path

    def _path(self, correlation: str) -> Path:
        assert self.directory is not None
        name = (
            correlation
            if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", correlation)
            else (hashlib.sha1(correlation.encode()).hexdigest())
        )
        return self.directory / f"{name}.jsonl"

    def _write(self, correlation: str, name: str, doc: dict) -> None:
        path = self._files.get(self._path(correlation).stem)
        if path is None:
            path = self._path(correlation)
            self._files[path.stem] = path
            while len(self._files) > self.keep:
                _, old = self._files.popitem(last=False)
                old.unlink(missing_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps([name, doc], default=_default) + "\n")

    def __call__(self, name: str, doc: dict) -> None:
        with self._lock:
            if name == "start":
                correlation = doc.get("sdl_correlation")
                if not correlation:
                    return
                self._run[doc["uid"]] = str(correlation)
                self._docs.setdefault(str(correlation), [])
                self._docs.move_to_end(str(correlation))
                while len(self._docs) > self.keep:
                    self._docs.popitem(last=False)
            else:
                run = doc.get("run_start")
                if name in ("event", "event_page"):
                    run = self._descriptor.get(doc.get("descriptor", ""))
                correlation = self._run.get(run or "")
                if correlation is None:
                    return
                if name == "descriptor":
                    self._descriptor[doc["uid"]] = run
                elif name == "stop":
                    del self._run[run]
                    for uid in [d for d, r in self._descriptor.items() if r == run]:
                        del self._descriptor[uid]
            docs = self._docs.get(correlation)
            if docs is not None:
                docs.append((name, doc))
            if self.directory is not None:
                self._write(correlation, name, doc)

    def documents(self, correlation: str) -> list[list[Any]]:
        """``[name, doc]`` of every document of the step ``correlation``, in the order
        they were emitted, made of JSON types ([] if none is kept)."""
        correlation = str(correlation)
        with self._lock:
            docs = self._docs.get(correlation)
            if docs is not None:
                return json.loads(json.dumps([[n, d] for n, d in docs], default=_default))
            if self.directory is None:
                return []
            path = self._files.get(self._path(correlation).stem)
            if path is None or not path.exists():
                return []
            lines = path.read_text(encoding="utf-8").splitlines()
        # a line cut by a crash of the worker is the last one: the rest is whole
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                break
        return out
