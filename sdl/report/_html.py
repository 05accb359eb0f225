"""``write_report``: PNG figures and an ``index.html`` summary of a campaign store."""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from sdl.errors import StoreError

from ._figures import convergence_figure, failures_figure, parameters_figure, pareto_figure
from ._lab_figures import gantt_figure, utilization_figure
from ._snapshot import Snapshot, read_snapshot

__all__ = ["write_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
th { background: #f0f0f0; }
td.text { text-align: left; }
tr.failed td, tr[data-out-of-service] td { background: #fde8e8; } tr.best td { background: #e6f4e6; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 1em; }
dt { font-weight: bold; }
"""


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.5g}"
    if isinstance(v, np.generic):
        v = v.item()
    return str(v)


def _save(fig: Any, path: Path) -> str:
    fig.savefig(path, dpi=110)
    return path.name


def write_report(store_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write PNG figures and an ``index.html`` summary of a campaign into ``out_dir``.

    Figures: ``convergence.png``, ``parameters.png``, ``pareto.png`` (two or more
    objectives), ``failures.png``; for a lab campaign also ``gantt.png`` (the steps on
    each station lane over time) and ``utilization.png`` (each station's busy time and
    idle time by cause), with a table of the stations. The HTML embeds them by relative
    path, so the folder can be moved or attached to a lab notebook as a whole.

    Args:
        store_path: the campaign store (it may still be running: the report is of now).
        out_dir: folder to write into (created).

    Returns:
        The path of ``index.html``.

    Raises:
        StoreError: the store cannot be read.
    """
    snap = read_snapshot(store_path)
    if snap.error is not None:
        raise StoreError(f"cannot report on {store_path}: {snap.error}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = {"Convergence": _save(convergence_figure(snap), out / "convergence.png")}
    if snap.campaign.get("parameters") and snap.objectives:
        images["Parameters"] = _save(parameters_figure(snap), out / "parameters.png")
    if len(snap.objectives) >= 2:
        images["Pareto front"] = _save(pareto_figure(snap), out / "pareto.png")
    images["Failures"] = _save(failures_figure(snap), out / "failures.png")
    if snap.is_lab and len(snap.stations):
        images["Stations: steps over time"] = _save(gantt_figure(snap), out / "gantt.png")
        images["Stations: utilization"] = _save(utilization_figure(snap), out / "utilization.png")
    index = out / "index.html"
    index.write_text(_page(snap, images))
    return index


def _page(snap: Snapshot, images: dict[str, str]) -> str:
    c = snap.campaign
    esc = html.escape
    name = c.get("name", snap.path.name)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(snap.counts.items())) or "none"
    best = snap.best()
    rows = [
        ("store", str(snap.path.resolve())),
        ("status", f"{snap.status}" + (f" ({snap.detail})" if snap.detail else "")),
        ("experiments", f"{snap.n_finished} of {snap.budget} budgeted; {counts}"),
        (
            "planner",
            f"{c.get('planner', '')} (seed {c.get('seed', '')}, batch size {c.get('batch_size', '')})",
        ),
        ("parameters", "; ".join(_describe_param(p) for p in c.get("parameters", []))),
        (
            "objectives",
            "; ".join(f"{o['name']} ({o.get('goal', 'minimize')})" for o in snap.objectives),
        ),
        ("devices", ", ".join(c.get("devices", []))),
        ("campaign uid", str(c.get("uid", ""))),
        ("report written", time.strftime("%Y-%m-%d %H:%M:%S %Z")),
    ]
    if best is not None:
        eid, row = best
        point = ", ".join(f"{p}={_fmt(row[p])}" for p in snap.parameter_names)
        objs = ", ".join(f"{o['name']}={_fmt(row[o['name']])}" for o in snap.objectives)
        rows.insert(3, ("best", f"experiment {eid}: {objs} at {point}"))
    dl = "\n".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows)
    figs = "\n".join(
        f'<h2>{esc(title)}</h2>\n<img src="{esc(src)}" alt="{esc(title)}">'
        for title, src in images.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>sdl report: {esc(str(name))}</title>
<style>{_CSS}</style></head>
<body>
<h1>Campaign {esc(str(name))}</h1>
<dl>
{dl}
</dl>
{figs}
{_stations(snap)}
<h2>Experiments</h2>
{_table(snap, best[0] if best else None)}
<h2>Campaign description</h2>
<pre>{esc(json.dumps({k: v for k, v in c.items() if k != "config"}, indent=2, default=str))}</pre>
</body></html>
"""


def _stations(snap: Snapshot) -> str:
    """A lab campaign's stations as an HTML table ("" without a lab)."""
    if not snap.is_lab or snap.stations.empty:
        return ""
    cols = {
        "now": "now",
        "in_service": "in service",
        "steps_done": "steps done",
        "steps_failed": "steps failed",
        "utilization": "utilization",
        "busy_s": "busy (s)",
        "idle_out_of_service": "out of service (s)",
        "idle_waiting_lease": "waiting lease (s)",
        "idle_waiting_robot": "waiting robot (s)",
        "idle_waiting_planner": "waiting planner (s)",
        "idle_no_work": "no work (s)",
    }
    head = "<tr><th>station</th>" + "".join(f"<th>{html.escape(t)}</th>" for t in cols.values())
    body = []
    for name, row in snap.stations.iterrows():
        cells = []
        for c in cols:
            v = row[c]
            if c == "utilization":
                text = "" if v != v else f"{100 * float(v):.0f}%"
            elif c == "in_service":
                text = "yes" if v else "no"
            else:
                text = _fmt(v)
            cls = ' class="text"' if c == "now" else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        out = "" if row["in_service"] else " data-out-of-service"
        body.append(f'<tr{out}><td class="text">{html.escape(str(name))}</td>{"".join(cells)}</tr>')
    return (
        '<h2>Stations</h2>\n<table class="stations">\n'
        + head
        + "</tr>\n"
        + "\n".join(body)
        + "\n</table>"
    )


def _describe_param(p: dict[str, Any]) -> str:
    if p.get("choices"):
        return f"{p['name']} in {p['choices']}"
    log = ", log" if p.get("log") else ""
    return f"{p['name']} in [{p.get('low')}, {p.get('high')}] ({p.get('kind', 'real')}{log})"


def _table(snap: Snapshot, best_id: int | None) -> str:
    df = snap.table
    cols = [*snap.parameter_names, *(o["name"] for o in snap.objectives), "status", "cause"]
    head = (
        "<tr><th>experiment</th><th>batch</th>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        + "</tr>"
    )
    body = []
    for eid, row in df.iterrows():
        cls = "best" if eid == best_id else ("failed" if row["status"] == "failed" else "")
        cells = "".join(
            f'<td class="text">{html.escape(_fmt(row[c]))}</td>'
            if c in ("status", "cause")
            else f"<td>{html.escape(_fmt(row[c]))}</td>"
            for c in cols
        )
        body.append(f'<tr class="{cls}"><td>{eid}</td><td>{row["batch"]}</td>{cells}</tr>')
    return f"<table>\n{head}\n" + "\n".join(body) + "\n</table>"
