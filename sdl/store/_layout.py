"""Names and version of the on-disk layout (documented in docs/store.md)."""

from __future__ import annotations

#: Bumped on any change a reader must know about; readers refuse newer versions.
#: 1: a group per run (``runs/<uid>/<stream>/...``); 2: tables across runs
#: (``runs/`` one row per run, ``streams/<table>/`` rows of every run) and a write-ahead log.
FORMAT_VERSION = 2

#: Root attribute holding {"format_version", "kind", "sdl_version"}.
ROOT_ATTR = "sdl"
STORE_KIND = "sdl-campaign-store"

RUNS = "runs"
TABLE = "experiments"
TABLE_PARAMETERS = "parameters"
TABLE_OBJECTIVES = "objectives"
TABLE_MEASUREMENTS = "measurements"

#: Columns of the campaign table other than parameters and objectives, with numpy dtypes.
TABLE_COLUMNS: dict[str, str] = {
    "experiment_id": "int64",
    "batch": "int64",
    "status": "str",
    "run_uid": "str",
    "cause": "str",
    "failure_kind": "str",
    "rerun_of": "int64",
    "t_planned": "float64",
    "t_started": "float64",
    "t_finished": "float64",
}

#: Within a stream group: event time, sequence number, and one array per data key.
STREAM_TIME = "time"
STREAM_SEQ = "seq_num"
STREAM_DATA = "data"

#: Within a run group: the documents pointing at externally stored data, one array of
#: JSON text per kind, in the order they are written (resources before their datums).
#: A reserved name: no event stream may be called so.
ASSETS = "_assets"
ASSET_KINDS = ("resource", "stream_resource", "datum", "stream_datum")

#: Format 2: the runs table (one row per run; JSON text, "" until known; ``uid`` last).
RUN_COLUMNS = ("start", "descriptors", "stop", "streams", "uid")
#: Format 2: one table per stream (name and data keys) across runs, and one per asset kind.
STREAMS = "streams"
ASSET_TABLES = "assets"
#: Format 2: in a stream or asset table, the row of the run (in ``runs/``) of each row.
RUN_ROW = "run"
ASSET_DOC = "doc"

TABLE_CHUNK = 1024
SCALAR_CHUNK = 8192


def param_key(name: str) -> str:
    """Data key of a parameter's value in the campaign run's ``experiments`` stream."""
    return f"param_{name}"


def objective_key(name: str) -> str:
    """Data key of an objective's value in the campaign run's ``experiments`` stream."""
    return f"objective_{name}"


def measurement_key(name: str) -> str:
    """Data key of a measured (constrained) quantity in the ``experiments`` stream."""
    return f"measurement_{name}"
