"""A film-lab campaign in a child process, for the SIGKILL tests: ``run`` or ``resume`` a store.

usage: python _lab_child.py run|resume STORE BUDGET TIME_SCALE [PLANNER]

PLANNER: ``sobol`` (default) or ``botorch`` (small options; it warms up a copy of itself in
the planner's worker while the first experiments run, docs/lab.md).
"""

from __future__ import annotations

import sys

from sdl import Campaign
from sdl.lab import film_lab


def main() -> int:
    mode, store, budget, time_scale = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    planner = sys.argv[5] if len(sys.argv) > 5 else "sobol"
    options = {"num_restarts": 2, "raw_samples": 64, "n_initial": 4} if planner == "botorch" else {}
    lab, workflow, space, objectives = film_lab(synth_stations=3, time_scale=time_scale, seed=5)
    campaign = Campaign(
        parameters=space, objectives=objectives, lab=lab, workflow=workflow,
        planner=planner, planner_options=options, budget=budget, seed=5,
    )  # fmt: skip
    if mode == "run":
        campaign.run(store=store, overwrite=True)
    else:
        campaign.resume(store=store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
