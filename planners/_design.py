"""Design points: scrambled Sobol rows in a parameter space, continued across asks.

Shared by :class:`~sdl.planners.SobolPlanner`, the BoTorch planner's initial design and the
constraint module's feasible designs (``_constraints.design_points``); it imports no other
planner module, so the planners' modules form no import cycle.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._space import Categorical, Integer, Space

__all__ = ["DUPLICATE_TOL", "SobolSequence", "near_any", "sobol_points"]

#: two points whose unit-cube coordinates all differ by less than this are "the same"
DUPLICATE_TOL = 1e-6


class SobolSequence:
    """The scrambled Sobol sequence of ``(dim, seed)``, generated once and kept.

    Row ``i`` is the same whether it is drawn after ``fast_forward(i)`` or as part of a
    longer draw, so a planner that holds one of these reads the rows of each ask from
    memory instead of scrambling a new engine and skipping to its index every time
    (about 0.3 ms an ask, most of what a Sobol campaign's asks took).
    """

    def __init__(self, dim: int, seed: int):
        from scipy.stats import qmc  # imported here: scipy.stats is slow to import

        self.dim, self.seed = dim, seed
        self._engine = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed))
        self._rows = np.empty((0, dim))

    def rows(self, skip: int, n: int) -> np.ndarray:
        """Rows ``skip .. skip + n`` (a copy)."""
        end = skip + n
        if end > len(self._rows):
            more = max(end - len(self._rows), len(self._rows), 64)
            with warnings.catch_warnings():
                # balance properties need powers of two; a campaign's batches rarely are
                warnings.simplefilter("ignore", UserWarning)
                self._rows = np.concatenate([self._rows, self._engine.random(more)])
        return self._rows[skip:end].copy()


def _equal_levels(space: Space, U: np.ndarray) -> np.ndarray:
    """Snap unit-cube rows onto the space, giving each integer / choice an equal share.

    :meth:`Space.from_unit` rounds, which gives the two end levels half the share of
    the others; for a design we split ``[0, 1]`` into ``k`` equal bins instead.
    """
    U = np.array(U, dtype=float, copy=True)
    for j, p in enumerate(space.parameters):
        if isinstance(p, (Integer, Categorical)):
            k = (p.high - p.low + 1) if isinstance(p, Integer) else len(p.choices)
            level = np.minimum(np.floor(U[:, j] * k), k - 1)
            U[:, j] = level / (k - 1)
    return space.round_unit(U)


def near_any(row: np.ndarray, others: np.ndarray, tol: float = DUPLICATE_TOL) -> bool:
    """True if ``row`` (``d``) lies within ``tol`` of a row of ``others`` (``m x d``)."""
    if len(others) == 0:
        return False
    return bool(np.any(np.all(np.abs(np.asarray(others) - row) <= tol, axis=1)))


def sobol_points(
    space: Space,
    n: int,
    *,
    seed: int,
    skip: int = 0,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    max_draws: int | None = None,
    sequence: SobolSequence | None = None,
) -> np.ndarray:
    """``n`` rows of the seeded Sobol design, starting at index ``skip``, as unit-cube rows.

    Rows within :data:`DUPLICATE_TOL` of a row of ``exclude`` (or of an earlier chosen
    row) are passed over, so a small discrete space does not get the same point twice;
    when the sequence offers no new point within ``max_draws`` draws (default
    ``max(1024, 16 n)``) the passed-over rows fill the batch in sequence order, those
    near a row of ``avoid`` (failed or pending points) last.

    Args:
        space: the parameter space.
        n: number of rows.
        seed: scramble seed of the sequence.
        skip: index in the sequence of the first candidate.
        exclude: ``m x d`` unit-cube rows not to propose again (observed, pending, ...).
        avoid: rows of ``exclude`` that are worse to repeat than the others.
        max_draws: most sequence points to look at.
        sequence: the :class:`SobolSequence` of ``(space.dim, seed)`` to read rows from
            (a planner keeps one across asks); default: a new one.

    Returns:
        ``n x d`` array in the unit cube, snapped onto integers and choices.
    """
    exclude = np.empty((0, space.dim)) if exclude is None else np.asarray(exclude, float)
    exclude = exclude.reshape(-1, space.dim)
    limit = max(1024, 16 * n) if max_draws is None else max(int(max_draws), n)
    chosen: list[np.ndarray] = []
    passed_over: list[np.ndarray] = []
    drawn = 0
    chunk = max(n, 8)
    if sequence is None:
        sequence = SobolSequence(space.dim, seed)
    elif (sequence.dim, sequence.seed) != (space.dim, seed):
        raise ValueError(
            f"sobol_points: the sequence is of (dim, seed) = {(sequence.dim, sequence.seed)}, "
            f"not {(space.dim, seed)}"
        )
    while len(chosen) < n and drawn < limit:
        rows = _equal_levels(space, sequence.rows(skip + drawn, chunk))
        drawn += chunk
        for row in rows:
            taken = np.array(chosen).reshape(-1, space.dim)
            if near_any(row, exclude) or near_any(row, taken):
                passed_over.append(row)
            else:
                chosen.append(row)
                if len(chosen) == n:
                    break
        chunk = min(2 * chunk, limit)
    if len(chosen) < n and avoid is not None and len(avoid):
        avoid = np.asarray(avoid, float).reshape(-1, space.dim)
        passed_over.sort(key=lambda row: near_any(row, avoid))  # stable: sequence order
    chosen.extend(passed_over[: n - len(chosen)])
    return np.array(chosen).reshape(n, space.dim)
