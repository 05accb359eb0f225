"""A station's RE worker keeps the documents of its recent steps for a coordinator that died.

The workers publish their documents through bluesky's 0MQ proxy, which buffers nothing:
what is published while the campaign's coordinator is down is gone from that channel.
Each worker therefore also keeps, in memory, the documents of its last ``keep`` steps by
their correlation uid (``sdl_correlation`` in the run's start document). A resumed
coordinator asks for them with the queue server's own ``function_execute`` of
``sdl_documents`` (:mod:`sdl.lab.qserver_worker`) and completes the store with them
(``docs/distributed.md``, "Exactly once").
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = ["DocumentKeeper"]


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return repr(obj)


class DocumentKeeper:
    """A RunEngine subscriber: ``(name, doc)`` of each run that carries ``sdl_correlation``,
    grouped by that uid, for the last ``keep`` correlation uids.

    Args:
        keep: how many steps' documents to keep (the oldest are dropped first).
    """

    def __init__(self, keep: int = 1000):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self._lock = threading.Lock()
        self._docs: OrderedDict[str, list[tuple[str, dict]]] = OrderedDict()
        self._run: dict[str, str] = {}  # open run uid -> correlation
        self._descriptor: dict[str, str] = {}  # descriptor uid -> run uid

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

    def documents(self, correlation: str) -> list[list[Any]]:
        """``[name, doc]`` of every document of the step ``correlation``, in the order
        they were emitted, made of JSON types ([] if none is kept)."""
        with self._lock:
            docs = list(self._docs.get(str(correlation), ()))
        return json.loads(json.dumps([[n, d] for n, d in docs], default=_default))
