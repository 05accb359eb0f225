"""Read a campaign store: the experiment table as pandas, each run's streams as tables."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import zarr

from sdl.errors import StoreError

from . import _layout as L
from ._live import LiveView
from ._table import ledger_writes
from ._wal import WAL

__all__ = ["open_store", "CampaignStore", "RunView"]

_FILL = {"status": "", "cause": "", "run_uid": "", "failure_kind": "", "batch": -1, "rerun_of": -1}


def open_store(path: str | os.PathLike) -> CampaignStore:
    """Open a campaign store for reading.

    Raises:
        StoreError: nothing is there, it is not an sdl store, or its layout is newer than
            this sdl reads.

    Example:
        >>> store = sdl.open_store("runs/color.zarr")  # doctest: +SKIP
        >>> store.to_dataframe().query("status == 'done'")  # doctest: +SKIP
    """
    return CampaignStore(path)


class RunView:
    """One bluesky run in the store: its documents and its event streams."""

    def __init__(self, group: zarr.Group):
        self.group = group
        self.uid = group.basename

    @property
    def start(self) -> dict[str, Any]:
        return dict(self.group.attrs.get("start", {}))

    @property
    def stop(self) -> dict[str, Any] | None:
        stop = self.group.attrs.get("stop")
        return dict(stop) if stop is not None else None

    @property
    def descriptors(self) -> list[dict[str, Any]]:
        return list(self.group.attrs.get("descriptors", []))

    @property
    def streams(self) -> list[str]:
        return sorted(name for name, _ in self.group.groups() if name != L.ASSETS)

    def assets(self, kind: str = "datum") -> list[dict[str, Any]]:
        """The run's documents of ``kind`` (``resource``, ``datum``, ``stream_resource`` or
        ``stream_datum``) in the order they were emitted: the references to data that
        detectors wrote to their own files."""
        if kind not in L.ASSET_KINDS:
            raise ValueError(f"kind must be one of {', '.join(L.ASSET_KINDS)}; got {kind!r}")
        if L.ASSETS not in self.group or kind not in self.group[L.ASSETS]:
            return []
        # "" marks an entry cut by a crash between resize and write
        return [json.loads(text) for text in self.group[L.ASSETS][kind][:] if text]

    def data(self, stream: str = "primary") -> dict[str, np.ndarray]:
        """Data key -> array (``n x ...``) of a stream, with ``time`` and ``seq_num``."""
        if stream not in self.group:
            raise KeyError(f"run {self.uid} has no stream {stream!r}; streams: {self.streams}")
        g = self.group[stream]
        times = g[L.STREAM_TIME][:] if L.STREAM_TIME in g else np.empty(0)
        cut = np.flatnonzero(np.isnan(times))  # rows cut by a crash mid-append
        n = int(cut[0]) if len(cut) else len(times)
        out = {L.STREAM_TIME: times[:n]}
        if L.STREAM_SEQ in g:
            out[L.STREAM_SEQ] = g[L.STREAM_SEQ][:n]
        if L.STREAM_DATA in g:
            for key, arr in g[L.STREAM_DATA].arrays():
                out[key] = arr[:n]
        return out

    def to_xarray(self, stream: str = "primary"):
        """``stream`` as an ``xarray.Dataset`` with dimension ``time``; arrays keep their shape."""
        import xarray as xr

        data = self.data(stream)
        t = data.pop(L.STREAM_TIME)
        variables = {
            key: ((L.STREAM_TIME, *[f"{key}_dim_{i}" for i in range(v.ndim - 1)]), v)
            for key, v in data.items()
        }
        attrs = {"uid": self.uid, "stream": stream}
        return xr.Dataset(variables, coords={L.STREAM_TIME: t}, attrs=attrs)

    def to_dataframe(self, stream: str = "primary") -> pd.DataFrame:
        """Scalar data keys of ``stream`` as a DataFrame (arrays as one object per row)."""
        data = self.data(stream)
        cols = {k: (list(v) if v.ndim > 1 else v) for k, v in data.items()}
        return pd.DataFrame(cols)


class CampaignStore:
    """A campaign store opened for reading (see :func:`open_store`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not (self.path / "zarr.json").exists():
            raise StoreError(f"no campaign store at {self.path} (no zarr.json there)")
        try:
            self.root = zarr.open_group(str(self.path), mode="r", zarr_format=3)
            meta = self.root.attrs.get(L.ROOT_ATTR)
        except (ValueError, OSError) as err:  # e.g. a truncated zarr.json
            raise StoreError(
                f"{self.path}/zarr.json is unreadable ({type(err).__name__}: {err}): the store "
                f"is damaged"
            ) from err
        if not isinstance(meta, Mapping) or meta.get("kind") != L.STORE_KIND:
            raise StoreError(f"{self.path} is a Zarr group but not an sdl campaign store")
        self.format_version = int(meta.get("format_version", 0))
        if self.format_version > L.FORMAT_VERSION:
            raise StoreError(
                f"{self.path} has store format {self.format_version}; this sdl reads up to "
                f"{L.FORMAT_VERSION}: upgrade sdl"
            )

    def __repr__(self) -> str:
        return f"CampaignStore({str(self.path)!r})"

    @cached_property
    def campaign(self) -> dict[str, Any]:
        """The campaign's description: parameters, objectives, planner, budget, seed, config."""
        return dict(self.root.attrs.get("campaign", {}))

    @property
    def campaign_runs(self) -> list[str]:
        """Uids of the campaign runs (one per start or resume), oldest first."""
        return list(self.root.attrs.get("campaign_runs", []))

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.campaign.get("parameters", [])]

    @property
    def objective_names(self) -> list[str]:
        return [o["name"] for o in self.campaign.get("objectives", [])]

    @property
    def measurement_names(self) -> list[str]:
        """Measured quantities other than objectives (e.g. ones under outcome constraints)."""
        return [m["name"] for m in self.campaign.get("measurements", [])]

    def has_table_column(self, name: str) -> bool:
        """Whether the campaign table has the column ``name`` (older stores lack some)."""
        return L.TABLE in self.root and name in self.root[L.TABLE]

    def _live(self) -> LiveView:
        return LiveView.read(self.root, self.path)

    def runs(self) -> list[str]:
        """Uids of every run in the store (format 2: in the order they started, including
        runs a live writer has logged but not yet written to Zarr; format 1: sorted)."""
        if self.format_version >= 2:
            return self._live().uids()
        return sorted(name for name, _ in self.root[L.RUNS].groups()) if L.RUNS in self.root else []

    def run_documents(self) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
        """uid -> (start document, stop document or None) of every run: faster than
        :meth:`run` for each uid (format 2 reads each column once)."""
        if self.format_version >= 2:
            return self._live().starts_and_stops()
        out = {}
        for uid in self.runs():
            view = self.run(uid)
            out[uid] = (view.start, view.stop)
        return out

    def run(self, uid: str) -> RunView:
        """The run with this uid (a unique prefix is enough)."""
        if self.format_version >= 2:
            live = self._live()
            uids = live.uids()
            matches = [uid] if uid in uids else [u for u in uids if u.startswith(uid)]
            if len(matches) != 1:
                raise KeyError(f"no unique run {uid!r} in {self.path} ({len(matches)} match)")
            return live.run(matches[0])
        runs = self.root[L.RUNS]
        if uid in runs:
            return RunView(runs[uid])
        matches = [u for u in self.runs() if u.startswith(uid)]
        if len(matches) != 1:
            raise KeyError(f"no unique run {uid!r} in {self.path} ({len(matches)} match)")
        return RunView(runs[matches[0]])

    @property
    def provenance(self) -> list[dict[str, Any]]:
        """The provenance recorded by each campaign run (versions, git, host, devices)."""
        out = []
        for uid in self.campaign_runs:
            try:
                out.append(dict(self.run(uid).start.get("sdl_provenance", {})))
            except KeyError:
                continue
        return out

    @property
    def operator_log(self) -> list[dict[str, Any]]:
        """Operator-visible actions (pause, resume, abort, approvals) with times and who."""
        return list(self.root.attrs.get("operator_log", []))

    def pareto_front(self) -> pd.DataFrame:
        """The done experiments no other done experiment beats on every objective.

        Derived from the table on every call (the store holds the experiments; the front
        is a view of them). With one objective: the best experiment.
        """
        return self.pareto_front_of(self.to_dataframe())

    def pareto_front_of(self, df: pd.DataFrame) -> pd.DataFrame:
        """:meth:`pareto_front` of a table already read with :meth:`to_dataframe`."""
        from sdl.planners import Objective, pareto_front

        objectives = [
            Objective(o["name"], o.get("goal", "minimize"))
            for o in self.campaign.get("objectives", [])
        ]
        if df.empty or not objectives:
            return df.iloc[0:0]
        done = df[df["status"] == "done"]
        front = pareto_front(done.reset_index(), objectives)
        ids = [int(point["experiment_id"]) for point, _ in front]
        return df.loc[ids]

    def to_csv(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dataframe` as CSV; return the path."""
        path = Path(path)
        self.to_dataframe().to_csv(path)
        return path

    def _damaged(self, column: str, err: Exception) -> StoreError:
        return StoreError(
            f"{self.path}: {L.TABLE}/{column} is unreadable ({type(err).__name__}: {err}); "
            f"'sdl check {self.path}' names the damage, 'sdl repair {self.path}' rebuilds the "
            f"table from the event log"
        )

    def to_dataframe(self) -> pd.DataFrame:
        """One row per experiment: a column per parameter, objective, measured quantity, and ``status``.

        Also ``experiment_id`` (the index), ``batch``, ``cause``, ``failure_kind``
        (``instrument`` or ``sample`` for a failed experiment), ``rerun_of`` (the id of the
        experiment whose point this one measures again, or -1), ``run_uid`` and the
        times ``t_planned``, ``t_started``, ``t_finished`` (seconds since the epoch).

        A lab campaign's table (its campaign has a ``workflow``) also has, per workflow
        step, ``<step>_station``, ``<step>_queued``, ``<step>_started`` and
        ``<step>_finished``, from the last attempt of that step of that experiment.

        In format 2, the transitions a live writer has logged but not yet written to Zarr
        are applied too: the table is as current as the campaign.
        """
        if self.format_version < 2 or not (self.path / WAL).is_dir():
            df = self._stored_table()
        else:
            frames: list[pd.DataFrame] = []
            live = LiveView.read(
                self.root,
                self.path,
                between=lambda: frames.append(self._stored_table()),
                runs=False,
            )
            df = self._apply_logged(frames[-1], live.transitions())
        return self._with_step_columns(df)

    def _with_step_columns(self, df: pd.DataFrame) -> pd.DataFrame:
        workflow = self.campaign.get("workflow")
        if not workflow:
            return df
        from ._lab_views import step_attempts, step_table_columns

        names = [w["name"] for w in workflow]
        columns = step_table_columns(step_attempts(self), names, df.index)
        return pd.concat([df, columns], axis=1)

    def steps(self) -> pd.DataFrame:
        """Every step transition of a lab campaign (the ``steps`` stream of each campaign
        run), sorted by time; empty for a campaign without a lab.

        Columns: ``time``, ``experiment_id``, ``step``, ``index``, ``status``
        (``queued``, ``started``, ``done``, ``failed``, ``cancelled``; ``stalled`` with
        experiment -1 for the lab as a whole), ``station``, ``lane``, ``resources`` and
        ``run_uids`` (lists), ``cause``, ``correlation`` (on ``started``).
        """
        from ._lab_views import read_steps

        return read_steps(self)

    def station_log(self) -> pd.DataFrame:
        """Changes of a lab's stations' service (the ``stations`` streams): ``time``,
        ``station``, ``in_service`` (0 or 1), ``cause``, ``who``."""
        from ._lab_views import read_station_log

        return read_station_log(self)

    def step_intervals(self) -> pd.DataFrame:
        """One row per step that started: ``experiment_id``, ``step``, ``index``,
        ``station``, ``lane``, ``resources``, ``queued``, ``started``, ``finished`` (NaN
        while it runs) and ``status`` (``done``, ``failed``, ``cancelled`` or ``running``).
        See :func:`sdl.store.utilization` for what the stations did with their time."""
        from ._lab_views import step_intervals

        return step_intervals(self)

    def _apply_logged(self, df: pd.DataFrame, logged: list) -> pd.DataFrame:
        if not logged:
            return df
        specs = {p["name"]: p for p in self.campaign.get("parameters", [])}
        for values, timestamp in logged:
            row = int(values["experiment_id"])
            columns, params, objectives, measurements = ledger_writes(
                values,
                timestamp,
                self.parameter_names,
                self.objective_names,
                self.measurement_names,
            )
            columns.pop("experiment_id")
            new = {**params, **objectives, **measurements, **columns}
            for name in self.parameter_names:
                choices = specs[name].get("choices")
                if choices:
                    by_text = {str(c): c for c in choices}
                    new[name] = by_text.get(str(new[name]), new[name])
            if row not in df.index:
                df.loc[row] = {c: _FILL.get(c, np.nan) for c in df.columns}
            for col, value in new.items():
                if col in df.columns:
                    df.at[row, col] = value
        return df.sort_index()

    def _stored_table(self) -> pd.DataFrame:
        """One row per experiment: a column per parameter, objective, measured quantity, and ``status``.

        Also ``experiment_id`` (the index), ``batch``, ``cause``, ``failure_kind``
        (``instrument`` or ``sample`` for a failed experiment), ``rerun_of`` (the id of the
        experiment whose point this one measures again, or -1), ``run_uid`` and the
        times ``t_planned``, ``t_started``, ``t_finished`` (seconds since the epoch).
        """
        try:
            table = self.root[L.TABLE] if L.TABLE in self.root else None
            status = (
                table["status"][:]
                if table is not None and "status" in table
                else np.empty(0, dtype=object)
            )
        except Exception as err:  # a truncated zarr.json or chunk
            raise self._damaged("status", err) from err
        n = len(status)

        def column(group: str | None, name: str, fill: Any) -> Any:
            # a column being created right now reads as missing values
            try:
                arr = table[group][name] if group else table[name]
                values = arr[:n]
            except (KeyError, TypeError):  # TypeError: no table yet
                return np.full(n, fill, dtype=object if isinstance(fill, str) else float)
            except Exception as err:  # a truncated zarr.json or chunk
                raise self._damaged(f"{group}/{name}" if group else name, err) from err
            if len(values) < n:  # resized after the status column: pad (those rows are filtered)
                pad = np.full(
                    n - len(values), fill, dtype=object if isinstance(fill, str) else float
                )
                values = np.concatenate([np.asarray(values, dtype=pad.dtype), pad])
            return values

        cols: dict[str, Any] = {
            "experiment_id": column(None, "experiment_id", -1),
            "batch": column(None, "batch", -1),
        }
        specs = {p["name"]: p for p in self.campaign.get("parameters", [])}
        for name in self.parameter_names:
            values = column(L.TABLE_PARAMETERS, name, np.nan)
            choices = specs[name].get("choices")
            if choices:  # categories are stored as text; give back the declared values
                by_text = {str(c): c for c in choices}
                values = [by_text.get(str(v), v) for v in values]
            cols[name] = values
        for name in self.objective_names:
            cols[name] = column(L.TABLE_OBJECTIVES, name, np.nan)
        for name in self.measurement_names:
            cols[name] = column(L.TABLE_MEASUREMENTS, name, np.nan)
        cols["status"] = np.asarray(status, dtype=object)
        cols["cause"] = np.asarray(column(None, "cause", ""), dtype=object)
        cols["run_uid"] = np.asarray(column(None, "run_uid", ""), dtype=object)
        # added in sdl 0.1 after the first stores: absent columns read as their fill
        cols["failure_kind"] = np.asarray(column(None, "failure_kind", ""), dtype=object)
        cols["rerun_of"] = np.asarray(column(None, "rerun_of", -1), dtype="int64")
        for t in ("t_planned", "t_started", "t_finished"):
            cols[t] = column(None, t, np.nan)
        df = pd.DataFrame(cols)
        df = df[df["status"] != ""]  # rows being created right now
        return df.set_index("experiment_id")
