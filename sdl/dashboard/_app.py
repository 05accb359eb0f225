"""One browser session of the dashboard: Bokeh models fed from the shared store snapshot."""

from __future__ import annotations

import hmac
import html
import logging
from typing import Any

import numpy as np
import pandas as pd

from sdl.control import ControlChannel, operator_name, validate_point
from sdl.plots import best_so_far, pareto_mask
from sdl.report import Snapshot

__all__ = ["DashboardSession"]

logger = logging.getLogger(__name__)

STATUS_COLORS = {
    "running": "#2e7d32",
    "finished": "#1565c0",
    "paused": "#ef6c00",
    "pausing": "#ef6c00",
    "waiting-approval": "#6a1b9a",
    "stopping": "#ef6c00",
    "stopped": "#546e7a",
    "aborted": "#c62828",
    "failed": "#c62828",
    "unreadable": "#c62828",
    "not started": "#757575",
}
UPDATE_MS = 500
#: The stations panel's columns (a lab campaign's): field -> title.
STATION_COLUMNS = {
    "station": "station",
    "now": "now",
    "in_service": "in service",
    "steps": "steps",
    "utilization": "utilization",
    "idle_out_of_service": "out of service",
    "idle_waiting_lease": "waiting lease",
    "idle_waiting_robot": "waiting robot",
    "idle_waiting_planner": "waiting planner",
    "idle_no_work": "no work",
}
STATION_WIDTHS = {"station": 120, "now": 260, "in_service": 120, "steps": 140, "utilization": 80}


def _num(values: Any, spec: dict[str, Any]) -> np.ndarray:
    if spec.get("choices"):
        order = [str(c) for c in spec["choices"]]
        return np.array(
            [order.index(str(v)) if str(v) in order else np.nan for v in values], dtype=float
        )
    return pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(
        dtype=float
    )


class DashboardSession:
    """Builds the page into ``doc`` and keeps it up to date from ``poller``.

    Args:
        doc: the Bokeh document of this browser session.
        poller: the shared :class:`~sdl.dashboard.StorePoller`.
        control_token: None: read-only; else every control action must give it, and the
            requests sent to the campaign are signed with it (a campaign started with a
            control token obeys only requests signed with the same one).
    """

    def __init__(self, doc: Any, poller: Any, control_token: str | None = None):
        self.doc = doc
        self.poller = poller
        self.token = control_token
        self.channel = ControlChannel(poller.store_path, token=control_token)
        self._version = -1
        self._proposals_key: Any = None
        self._waiting: dict[str, str] = {}  # request id -> action, awaiting acknowledgement
        snap = poller.snapshot
        self.campaign = dict(snap.campaign)
        self._build(snap)
        self.update()
        doc.add_periodic_callback(self.update, UPDATE_MS)
        doc.title = f"sdl: {self.campaign.get('name', snap.path.name)}"

    # -- layout -------------------------------------------------------------------------
    def _build(self, snap: Snapshot) -> None:
        from bokeh.layouts import column, row
        from bokeh.models import (
            Button,
            ColumnDataSource,
            DataTable,
            Div,
            NumberFormatter,
            PasswordInput,
            StringFormatter,
            TableColumn,
            TextInput,
        )
        from bokeh.palettes import Viridis256
        from bokeh.plotting import figure
        from bokeh.transform import linear_cmap

        self.params = list(self.campaign.get("parameters", []))
        self.objectives = list(self.campaign.get("objectives", []))
        pnames = [p["name"] for p in self.params]
        onames = [o["name"] for o in self.objectives]
        obj0 = onames[0] if onames else "objective"

        self.title = Div(text="", name="title", css_classes=["sdl-title"])
        self.status = Div(text="", name="status", css_classes=["sdl-status"])
        self.progress = Div(text="", name="progress", css_classes=["sdl-progress"])
        self.n_experiments = Div(
            text="0", name="n_experiments", visible=False
        )  # rows in the table, for tests
        self.error = Div(text="", name="error", css_classes=["sdl-error"])

        # convergence
        self.conv_done = ColumnDataSource({"x": [], "y": []}, name="conv_done")
        self.conv_best = ColumnDataSource({"x": [], "y": []}, name="conv_best")
        self.conv_failed = ColumnDataSource({"x": [], "y": []}, name="conv_failed")
        conv = figure(
            title="Convergence",
            height=300,
            width=420,
            x_axis_label="experiment",
            y_axis_label=obj0,
            name="convergence",
        )
        conv.scatter("x", "y", source=self.conv_done, size=7, legend_label=obj0)
        conv.step(
            "x",
            "y",
            source=self.conv_best,
            mode="after",
            color="orange",
            line_width=2,
            legend_label="best so far",
        )
        conv.scatter(
            "x",
            "y",
            source=self.conv_failed,
            marker="x",
            size=10,
            color="red",
            legend_label="failed",
        )
        conv.legend.location = (
            "bottom_right"
            if self.objectives and self.objectives[0].get("goal") == "maximize"
            else "top_right"
        )
        conv.legend.label_text_font_size = "9pt"

        # parameters coloured by the first objective
        minimize0 = not self.objectives or self.objectives[0].get("goal", "minimize") == "minimize"
        self.par_done = ColumnDataSource({"x": [], "y": [], "c": []}, name="par_done")
        self.par_failed = ColumnDataSource({"x": [], "y": []}, name="par_failed")
        self.par_pending = ColumnDataSource({"x": [], "y": []}, name="par_pending")
        xlab = pnames[0] if pnames else ""
        ylab = pnames[1] if len(pnames) >= 2 else obj0
        par = figure(
            title=f"Parameters (colour: {obj0})",
            height=300,
            width=420,
            x_axis_label=xlab,
            y_axis_label=ylab,
            name="parameters",
        )
        palette = list(Viridis256)
        self.cmap = linear_cmap("c", palette[::-1] if minimize0 else palette, 0, 1)  # bright = good
        par.scatter("x", "y", source=self.par_done, size=9, color=self.cmap, legend_label="done")
        par.scatter(
            "x",
            "y",
            source=self.par_failed,
            marker="x",
            size=10,
            color="red",
            legend_label="failed",
        )
        par.scatter(
            "x",
            "y",
            source=self.par_pending,
            size=12,
            fill_alpha=0,
            line_color="black",
            line_width=2,
            legend_label="proposed",
        )
        par.legend.label_text_font_size = "9pt"
        figs = [conv, par]

        self.pareto_all = ColumnDataSource({"x": [], "y": []}, name="pareto_all")
        self.pareto_front = ColumnDataSource({"x": [], "y": []}, name="pareto_front")
        if len(onames) >= 2:
            pf = figure(
                title="Pareto front",
                height=300,
                width=420,
                x_axis_label=onames[0],
                y_axis_label=onames[1],
                name="pareto",
            )
            pf.scatter("x", "y", source=self.pareto_all, color="lightgray", size=7)
            pf.line("x", "y", source=self.pareto_front, color="crimson", line_width=2)
            pf.scatter("x", "y", source=self.pareto_front, color="crimson", size=8)
            figs.append(pf)

        # tables
        num = NumberFormatter(format="0.0000")
        cols = ["experiment_id", "batch", *pnames, *onames, "status", "cause"]
        widths = {"experiment_id": 70, "batch": 50, "status": 80, "cause": 420}
        self.table = ColumnDataSource({c: [] for c in cols}, name="experiments")
        self.table_view = DataTable(
            source=self.table,
            name="experiments_table",
            height=260,
            width=1280,
            index_position=None,
            columns=[
                TableColumn(
                    field=c,
                    title=c,
                    width=widths.get(c, 90),
                    formatter=num if c in onames or c in pnames else StringFormatter(),
                )
                for c in cols
            ],
        )
        self.failures = ColumnDataSource({"experiment_id": [], "cause": []}, name="failures")
        failures_view = DataTable(
            source=self.failures,
            height=160,
            width=620,
            index_position=None,
            name="failures_table",
            columns=[
                TableColumn(field="experiment_id", title="experiment", width=80),
                TableColumn(field="cause", title="cause", width=540),
            ],
        )
        pcols = ["experiment_id", "status", *pnames]
        self.proposals = ColumnDataSource({c: [] for c in pcols}, name="proposals")
        self.proposals_view = DataTable(
            source=self.proposals,
            height=160,
            width=620,
            index_position=None,
            name="proposals_table",
            editable=self.token is not None,
            selectable="checkbox" if self.token is not None else True,
            columns=[
                TableColumn(field=c, title=c, formatter=num if c in pnames else StringFormatter())
                for c in pcols
            ],
        )
        self.proposals_note = Div(text="", name="proposals_note")
        stations_panel = self._build_stations()

        # control
        self.control_msg = Div(text="", name="control_message", css_classes=["sdl-control-message"])
        self.token_input = PasswordInput(
            title="control token", width=200, name="token", css_classes=["sdl-token"]
        )
        self.who_input = TextInput(title="your name", value=operator_name(), width=150, name="who")
        buttons = []
        for action, label, kind in (
            ("pause", "Pause", "warning"),
            ("resume", "Resume", "success"),
            ("stop", "Stop after this experiment", "default"),
            ("abort", "Abort", "danger"),
        ):
            b = Button(
                label=label,
                button_type=kind,
                width=110 if action != "stop" else 200,
                name=f"btn_{action}",
                css_classes=[f"sdl-btn-{action}"],
            )
            b.on_click(lambda _e=None, a=action: self.on_action(a))
            buttons.append(b)
        approve = Button(
            label="Approve batch (as edited)",
            button_type="primary",
            width=200,
            name="btn_approve",
            css_classes=["sdl-btn-approve"],
        )
        approve.on_click(lambda _e=None: self.on_approve(reject_selected=False))
        reject = Button(
            label="Reject selected, approve rest",
            width=220,
            name="btn_reject",
            css_classes=["sdl-btn-reject"],
        )
        reject.on_click(lambda _e=None: self.on_approve(reject_selected=True))
        self.add_input = TextInput(
            title="add an experiment",
            width=300,
            name="add_point",
            placeholder=", ".join(f"{n}=..." for n in pnames),
        )
        add = Button(label="Add", width=80, name="btn_add", css_classes=["sdl-btn-add"])
        add.on_click(lambda _e=None: self.on_add())
        if self.token is None:
            for w in (*buttons, approve, reject, add, self.token_input, self.add_input):
                w.disabled = True
            self.control_msg.text = (
                "<i>read-only: start the dashboard with <code>--control-token</code> to control "
                "the campaign from here</i>"
            )

        header = row(self.title, self.status, self.progress, self.n_experiments)
        control = column(
            Div(text="<b>Control</b>"),
            row(self.token_input, self.who_input),
            row(*buttons),
            self.control_msg,
        )
        approval = column(
            Div(text="<b>Planner's proposals</b> (planned / running, or awaiting approval)"),
            self.proposals_note,
            self.proposals_view,
            row(approve, reject),
            row(self.add_input, add),
        )
        self.doc.add_root(
            column(
                header,
                self.error,
                row(*figs),
                row(approval, column(control, Div(text="<b>Failures</b>"), failures_view)),
                *stations_panel,
                Div(text="<b>Experiments</b>"),
                self.table_view,
                name="sdl_dashboard",
            )
        )

    def _build_stations(self) -> list[Any]:
        """A lab campaign's stations panel (what each does now, utilization, service);
        nothing for a one-instrument campaign."""
        from bokeh.models import ColumnDataSource, DataTable, Div, TableColumn

        self.stations = ColumnDataSource({c: [] for c in STATION_COLUMNS}, name="stations")
        if not self.campaign.get("lab"):
            return []
        view = DataTable(
            source=self.stations,
            name="stations_table",
            height=40 + 26 * len(self.campaign["lab"].get("stations", [])),
            width=1280,
            index_position=None,
            columns=[
                TableColumn(field=c, title=title, width=STATION_WIDTHS.get(c, 110))
                for c, title in STATION_COLUMNS.items()
            ],
        )
        from bokeh.layouts import row
        from bokeh.models import Button, Select

        names = [s["name"] for s in self.campaign["lab"].get("stations", [])]
        self.station_select = Select(
            title="station", value=names[0] if names else "", options=names, width=160,
            name="station_select",
        )  # fmt: skip
        take_out = Button(
            label="Take out of service", button_type="warning", width=170,
            name="btn_station_disable", css_classes=["sdl-btn-station-disable"],
        )  # fmt: skip
        put_back = Button(
            label="Put back in service", button_type="success", width=170,
            name="btn_station_enable", css_classes=["sdl-btn-station-enable"],
        )  # fmt: skip
        take_out.on_click(lambda _e=None: self.on_station(False))
        put_back.on_click(lambda _e=None: self.on_station(True))
        if self.token is None:
            take_out.disabled = put_back.disabled = True
        return [
            Div(text="<b>Stations</b> (idle time by cause, seconds)"),
            view,
            row(self.station_select, take_out, put_back),
        ]

    def on_station(self, enable: bool) -> None:
        """Take the selected station out of service (no new steps start there) or put it
        back, as ``sdl station disable|enable`` does."""
        if self._authorized("station"):
            self._send("station", name=self.station_select.value, enable=bool(enable))

    # -- updates ------------------------------------------------------------------------
    def update(self) -> None:
        """Periodic callback: apply a new snapshot, check acknowledgements (never raises)."""
        try:
            self._check_acks()
            if self.poller.version == self._version:
                return
            self._version = self.poller.version
            self._apply(self.poller.snapshot)
        except Exception as err:  # keep the page alive; show what went wrong
            logger.exception("dashboard update failed")
            self.error.text = f"<span style='color:#c62828'>update failed: {html.escape(repr(err))}; retrying</span>"

    def _apply(self, snap: Snapshot) -> None:
        name = snap.campaign.get("name", snap.path.name)
        self.title.text = f"<h2 style='margin:0'>{html.escape(str(name))}</h2><small>{html.escape(str(snap.path))}</small>"
        color = STATUS_COLORS.get(snap.status, "#333")
        detail = f"<br><small>{html.escape(snap.detail)}</small>" if snap.detail else ""
        self.status.text = (
            f"<span style='background:{color};color:white;padding:4px 10px;border-radius:4px;"
            f"font-weight:bold' class='sdl-status-text'>{html.escape(snap.status)}</span>{detail}"
        )
        n, budget = snap.n_finished, snap.budget
        self.progress.text = (
            f"<progress value='{n}' max='{max(budget, 1)}' style='width:220px'></progress> "
            f"{n} / {budget} experiments"
            + (f" ({snap.counts.get('failed', 0)} failed)" if snap.counts.get("failed") else "")
        )
        self.n_experiments.text = str(len(snap.table))
        if snap.error:
            self.error.text = (
                f"<span style='color:#c62828'>cannot read the store yet: {html.escape(snap.error)}; "
                "retrying every second</span>"
            )
            return
        self.error.text = ""
        if not self.objectives and snap.campaign:  # the store appeared after the page was made
            self.doc.clear()
            self.campaign = dict(snap.campaign)
            self._build(snap)
        self._apply_plots(snap)
        self._apply_tables(snap)

    def _apply_plots(self, snap: Snapshot) -> None:
        df = snap.table
        if not self.objectives or df.empty:
            return
        o0 = self.objectives[0]
        minimize = o0.get("goal", "minimize") == "minimize"
        done = df[df["status"] == "done"]
        failed = df[df["status"] == "failed"]
        pending = df[df["status"].isin(["planned", "running"])]
        finished = df[df["status"].isin(["done", "failed"])]
        y_done = done[o0["name"]].to_numpy(dtype=float)
        self.conv_done.data = {"x": done.index.to_numpy(), "y": y_done}
        y_fin = np.where(finished["status"] == "done", finished[o0["name"]].astype(float), np.nan)
        self.conv_best.data = {"x": finished.index.to_numpy(), "y": best_so_far(y_fin, minimize)}
        floor = float(np.nanmin(y_done)) if np.isfinite(y_done).any() else 0.0
        self.conv_failed.data = {"x": failed.index.to_numpy(), "y": np.full(len(failed), floor)}

        def xy(part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
            if len(self.params) >= 2:
                return _num(part[self.params[0]["name"]], self.params[0]), _num(
                    part[self.params[1]["name"]], self.params[1]
                )
            if len(self.params) == 1:
                return _num(part[self.params[0]["name"]], self.params[0]), part[
                    o0["name"]
                ].to_numpy(dtype=float)
            return part.index.to_numpy(dtype=float), np.zeros(len(part))

        x, y = xy(done)
        self.par_done.data = {"x": x, "y": y, "c": y_done}
        if np.isfinite(y_done).any():
            self.cmap["transform"].low = float(np.nanmin(y_done))
            self.cmap["transform"].high = float(np.nanmax(y_done)) + 1e-12
        fx, fy = xy(failed)
        px, py = xy(pending)
        if len(self.params) == 1:
            fy, py = np.full(len(failed), floor), np.full(len(pending), floor)
        self.par_failed.data = {"x": fx, "y": fy}
        self.par_pending.data = {"x": px, "y": py}
        if len(self.objectives) >= 2:
            names = [o["name"] for o in self.objectives[:2]]
            Y = done[names].to_numpy(dtype=float).reshape(-1, 2)
            front = Y[
                pareto_mask(
                    Y, [o.get("goal", "minimize") == "minimize" for o in self.objectives[:2]]
                )
            ]
            front = front[np.argsort(front[:, 0])]
            self.pareto_all.data = {"x": Y[:, 0], "y": Y[:, 1]}
            self.pareto_front.data = {"x": front[:, 0], "y": front[:, 1]}

    def _apply_tables(self, snap: Snapshot) -> None:
        df = snap.table
        data: dict[str, Any] = {
            "experiment_id": df.index.to_numpy(),
            "batch": df["batch"].to_numpy(),
        }
        for p in self.params:
            data[p["name"]] = (
                [str(v) for v in df[p["name"]]]
                if p.get("choices")
                else df[p["name"]].to_numpy(dtype=float)
            )
        for o in self.objectives:
            data[o["name"]] = df[o["name"]].to_numpy(dtype=float)
        data["status"] = list(df["status"])
        data["cause"] = list(df["cause"])
        self.table.data = (
            {k: data.get(k, []) for k in self.table.data}
            if len(df)
            else {k: [] for k in self.table.data}
        )
        bad = df[df["status"].isin(["failed", "interrupted"])]
        self.failures.data = {
            "experiment_id": bad.index.to_numpy(),
            "cause": [f"{s}: {c}" for s, c in zip(bad["status"], bad["cause"])],
        }
        self._apply_stations(snap)
        # proposals: refreshed only when they change, so an operator's edits are not overwritten
        awaiting = snap.status == "waiting-approval"
        key = (awaiting, repr(snap.proposals))
        if key != self._proposals_key:
            self._proposals_key = key
            rows = snap.proposals
            cols = list(self.proposals.data)
            new = {
                c: [r.get(c, i if c == "experiment_id" else "") for i, r in enumerate(rows)]
                for c in cols
            }
            if awaiting:
                new["status"] = ["awaiting approval"] * len(rows)
            self.proposals.data = new
            self.proposals.selected.indices = []
            self._published = [dict(r) for r in rows] if awaiting else []
            self.proposals_note.text = (
                "<b style='color:#6a1b9a'>A batch awaits your approval: edit cells, tick rows to "
                "reject, then approve.</b>"
                if awaiting
                else ""
            )

    def _apply_stations(self, snap: Snapshot) -> None:
        rows = snap.station_rows()

        def seconds(v: Any) -> str:
            return "" if v is None else f"{float(v):.1f}"

        data: dict[str, list[Any]] = {c: [] for c in STATION_COLUMNS}
        for r in rows:
            data["station"].append(r["station"])
            data["now"].append(r["now"])
            data["in_service"].append("yes" if r["in_service"] else "OUT OF SERVICE")
            data["steps"].append(f"{r['steps_done']} done, {r['steps_failed']} failed")
            u = r["utilization"]
            data["utilization"].append("" if u is None else f"{100 * u:.0f}%")
            for c in STATION_COLUMNS:
                if c.startswith("idle_"):
                    data[c].append(seconds(r[c]))
        self.stations.data = data

    # -- control ------------------------------------------------------------------------
    def _say(self, text: str, ok: bool = True) -> None:
        color = "#2e7d32" if ok else "#c62828"
        self.control_msg.text = (
            f"<span style='color:{color}' class='sdl-control-text'>{text}</span>"
        )

    def _authorized(self, action: str) -> bool:
        if self.token is None:
            self._say(
                f"{action} rejected: this dashboard is read-only (no control token was set)",
                ok=False,
            )
            return False
        given = self.token_input.value or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            what = "missing" if not given else "wrong"
            self._say(f"{action} rejected: {what} control token", ok=False)
            logger.warning("dashboard: %s rejected (%s token)", action, what)
            return False
        return True

    def _send(self, action: str, **args: Any) -> None:
        who = f"{self.who_input.value or operator_name()} (dashboard)"
        rid = self.channel.request(action, who, expires_in=120.0, **args)
        self._waiting[rid] = action
        self._say(f"{html.escape(action)} sent; waiting for the campaign to acknowledge…")

    def on_action(self, action: str) -> None:
        if self._authorized(action):
            self._send(action)

    def on_approve(self, reject_selected: bool) -> None:
        if not self._authorized("approve"):
            return
        published = getattr(self, "_published", [])
        if not published:
            self._say("approve: no batch is awaiting approval", ok=False)
            return
        names = [p["name"] for p in self.params]
        edited: dict[str, dict[str, Any]] = {}
        try:
            for i, orig in enumerate(published):
                row = {n: self.proposals.data[n][i] for n in names}
                checked = validate_point(row, self.params)
                if any(checked[n] != orig.get(n) for n in names):
                    edited[str(i)] = checked
        except ValueError as err:
            self._say(f"approve: {html.escape(str(err))}", ok=False)
            return
        rejected = sorted(self.proposals.selected.indices) if reject_selected else []
        self._send("approve", rejected=rejected, edited=edited)

    def on_add(self) -> None:
        if not self._authorized("add"):
            return
        try:
            values = dict(
                part.split("=", 1)
                for part in (self.add_input.value or "").replace(",", " ").split()
            )
            point = validate_point({k.strip(): v.strip() for k, v in values.items()}, self.params)
        except ValueError as err:
            self._say(
                f"add: {html.escape(str(err))} (write name=value for every parameter)", ok=False
            )
            return
        self._send("add", points=[point])

    def _check_acks(self) -> None:
        for rid, action in list(self._waiting.items()):
            ack = self.channel.response(rid)
            if ack is not None:
                del self._waiting[rid]
                self._say(f"{html.escape(action)}: {html.escape(ack.result)}", ok=ack.ok)
