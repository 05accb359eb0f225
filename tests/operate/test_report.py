"""Reports and the store snapshot, from a real finished campaign."""

import re

from sdl.cli import main
from sdl.report import read_snapshot, write_report


def test_snapshot_of_a_finished_campaign(finished_store):
    snap = read_snapshot(finished_store)
    assert snap.status == "finished" and snap.error is None
    assert snap.n_finished == snap.budget == 16
    assert snap.counts.get("failed", 0) >= 1 and snap.proposals == []
    eid, row = snap.best()
    assert row["intensity"] == snap.table.loc[snap.table["status"] == "done", "intensity"].max()


def test_snapshot_of_a_missing_store_says_why(tmp_path):
    snap = read_snapshot(tmp_path / "nothing.zarr")
    assert snap.status == "unreadable" and "no campaign store" in snap.error


def test_report_writes_pngs_and_an_html_page_that_references_them(finished_store, tmp_path):
    index = write_report(finished_store, tmp_path / "report")
    out = index.parent
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {"convergence.png", "parameters.png", "pareto.png", "failures.png"}
    page = index.read_text()
    assert set(re.findall(r'<img src="([^"]+)"', page)) == pngs  # relative paths
    from sdl import open_store

    assert page.count("<tr class=") == len(open_store(finished_store).to_dataframe())  # re-runs too
    assert "operate-test" in page and "best" in page and "failed" in page
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sdl_report_command(finished_store, tmp_path, capsys):
    assert main(["report", str(finished_store), "--out", str(tmp_path / "r")]) == 0
    assert "index.html" in capsys.readouterr().out
