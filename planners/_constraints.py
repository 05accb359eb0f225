"""Constraints a campaign declares: on measured outcomes and, linearly, on parameters.

* :class:`OutcomeConstraint` — ``viscosity <= 50``: a measured quantity (not an objective)
  that an acceptable experiment must keep within a bound. Planners that support it learn
  the quantity from the values told with :meth:`~sdl.planners.Planner.tell`.
* :class:`LinearConstraint` — ``a + b + c == 1``, ``2*a - b <= 0.5``: a linear
  (in)equality over :class:`~sdl.planners.Real` parameters in the user's units, which
  every proposal satisfies within :data:`INPUT_TOLERANCE`.

Both accept a string form; the parser reads numbers, names, ``+ - *`` and one comparison
operator, and never evaluates the text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from sdl.errors import ConfigError

from ._design import SobolSequence, near_any, sobol_points
from ._space import Real, Space

__all__ = [
    "INPUT_TOLERANCE",
    "LinearConstraint",
    "OutcomeConstraint",
    "UnitConstraints",
    "parse_input_constraints",
    "parse_outcome_constraints",
]

#: every proposal satisfies each input constraint within this (user units)
INPUT_TOLERANCE = 1e-6

Op = Literal["<=", ">=", "=="]
_OPS = ("<=", ">=", "==")
_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
_NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


@dataclass(frozen=True)
class OutcomeConstraint:
    """A bound on a measured quantity: ``name op bound`` (user units).

    Args:
        name: the measured quantity (a key told in the outcomes; not an objective).
        op: ``"<="`` or ``">="`` (``"<"`` and ``">"`` are read as these).
        bound: the bound, in the quantity's units.

    Example:
        >>> OutcomeConstraint.parse("viscosity < 50")
        OutcomeConstraint(name='viscosity', op='<=', bound=50.0)
    """

    name: str
    op: Literal["<=", ">="]
    bound: float

    def __post_init__(self) -> None:
        op = {"<": "<=", ">": ">="}.get(self.op, self.op)
        if op not in ("<=", ">="):
            raise ConfigError(
                f"outcome constraint on {self.name!r}: op must be '<=' or '>=', got {self.op!r}"
            )
        object.__setattr__(self, "op", op)
        bound = float(self.bound)
        if not math.isfinite(bound):
            raise ConfigError(f"outcome constraint on {self.name!r}: bound must be finite")
        object.__setattr__(self, "bound", bound)

    @classmethod
    def parse(cls, text: str) -> OutcomeConstraint:
        """Read ``"name <= bound"`` / ``"name >= bound"`` (also ``<``, ``>``, ``≤``, ``≥``)."""
        clean = text.replace("≤", "<=").replace("≥", ">=")
        m = re.fullmatch(rf"\s*({_NAME})\s*(<=|>=|<|>)\s*([+-]?{_NUMBER})\s*", clean)
        if m is None:
            raise ConfigError(
                f"outcome constraint {text!r}: write it as 'name <= bound' or 'name >= bound', "
                "e.g. 'viscosity <= 50'"
            )
        return cls(m.group(1), m.group(2), float(m.group(3)))

    def satisfied(self, value: float) -> bool:
        """True if ``value`` keeps the bound (NaN never does)."""
        if not math.isfinite(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


@dataclass(frozen=True)
class LinearConstraint:
    """``sum(coefficients[name] * point[name]) op bound`` over Real parameters (user units).

    Args:
        coefficients: parameter name -> coefficient.
        op: ``"<="``, ``">="`` or ``"=="``.
        bound: right-hand side.

    Example:
        >>> LinearConstraint.parse("a + b + c == 1")
        LinearConstraint(coefficients={'a': 1.0, 'b': 1.0, 'c': 1.0}, op='==', bound=1.0)
        >>> LinearConstraint.parse("2*a - b <= 0.5").coefficients
        {'a': 2.0, 'b': -1.0}
    """

    coefficients: Mapping[str, float] = field(hash=False)
    op: Op = "<="
    bound: float = 0.0

    def __post_init__(self) -> None:
        op = {"<": "<=", ">": ">=", "=": "=="}.get(self.op, self.op)
        if op not in _OPS:
            raise ConfigError(f"linear constraint: op must be one of {_OPS}, got {self.op!r}")
        coefficients = {str(k): float(v) for k, v in dict(self.coefficients).items()}
        if not coefficients or all(v == 0 for v in coefficients.values()):
            raise ConfigError("linear constraint: give at least one non-zero coefficient")
        object.__setattr__(self, "coefficients", coefficients)
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "bound", float(self.bound))

    @classmethod
    def parse(cls, text: str) -> LinearConstraint:
        """Read ``"2*a - b + 0.5 c <= 1"``; constants may appear on either side."""
        clean = text.replace("≤", "<=").replace("≥", ">=")
        m = re.fullmatch(r"(.*?)(<=|>=|==|<|>|=)(.*)", clean)
        if m is None:
            raise ConfigError(
                f"linear constraint {text!r}: needs one of <=, >=, == (e.g. 'a + b + c == 1')"
            )
        left, op, right = m.groups()
        coefficients: dict[str, float] = {}
        constant = 0.0
        for side, sign in ((left, 1.0), (right, -1.0)):
            for coef, name in _linear_terms(side, text):
                if name is None:
                    constant += sign * coef
                else:
                    coefficients[name] = coefficients.get(name, 0.0) + sign * coef
        return cls(coefficients, op, -constant)

    def value(self, point: Mapping[str, Any]) -> float:
        """The left-hand side at ``point``."""
        return float(sum(c * float(point[k]) for k, c in self.coefficients.items()))

    def violation(self, point: Mapping[str, Any]) -> float:
        """How far ``point`` is from satisfying the constraint (0 when it does)."""
        lhs = self.value(point)
        if self.op == "<=":
            return max(0.0, lhs - self.bound)
        if self.op == ">=":
            return max(0.0, self.bound - lhs)
        return abs(lhs - self.bound)

    def __str__(self) -> str:
        terms = " ".join(
            f"{'+' if c >= 0 else '-'} {abs(c):g}*{k}" for k, c in self.coefficients.items()
        )
        return f"{terms.lstrip('+ ')} {self.op} {self.bound:g}"


def _linear_terms(side: str, text: str) -> list[tuple[float, str | None]]:
    """``"2*a - b + 3"`` -> ``[(2, 'a'), (-1, 'b'), (3, None)]``."""
    side = side.strip()
    if not side:
        return []
    terms = []
    pattern = rf"\s*([+-]?)\s*(?:({_NUMBER})\s*\*?\s*)?({_NAME})?\s*"
    pos = 0
    first = True
    while pos < len(side):
        m = re.match(pattern, side[pos:])
        if m is None or m.end() == 0 or (m.group(2) is None and m.group(3) is None):
            raise ConfigError(f"linear constraint {text!r}: cannot read {side[pos:]!r}")
        if not first and not m.group(1):
            raise ConfigError(f"linear constraint {text!r}: expected + or - before {side[pos:]!r}")
        sign = -1.0 if m.group(1) == "-" else 1.0
        coef = float(m.group(2)) if m.group(2) is not None else 1.0
        terms.append((sign * coef, m.group(3)))
        pos += m.end()
        first = False
    return terms


def _coerce(item: Any, cls: type, what: str) -> Any:
    """``item`` as ``cls``: parsed from a string, built from a dict, or as given."""
    if isinstance(item, str):
        return cls.parse(item)
    if isinstance(item, Mapping):
        return cls(**item)
    if not isinstance(item, cls):
        raise ConfigError(f"{what} {item!r}: give a {cls.__name__} or a string")
    return item


def parse_outcome_constraints(
    items: Iterable[OutcomeConstraint | str | Mapping[str, Any]], objective_names: Iterable[str]
) -> tuple[OutcomeConstraint, ...]:
    """Outcome constraints from objects, strings or dicts; reject objectives and duplicates."""
    out = [_coerce(item, OutcomeConstraint, "outcome constraint") for item in items or ()]
    objectives = set(objective_names)
    for c in out:
        if c.name in objectives:
            raise ConfigError(
                f"outcome constraint {c}: {c.name!r} is an objective; constrain a measured "
                "quantity that is not optimized, or give the objective a threshold"
            )
    return tuple(out)


def parse_input_constraints(
    items: Iterable[LinearConstraint | str | Mapping[str, Any]], space: Space
) -> tuple[LinearConstraint, ...]:
    """Linear constraints from objects, strings or dicts, checked against ``space``."""
    out = []
    for item in items or ():
        item = _coerce(item, LinearConstraint, "input constraint")
        for name in item.coefficients:
            if name not in space.names:
                raise ConfigError(
                    f"input constraint '{item}': {name!r} is not a parameter "
                    f"(parameters: {space.names})"
                )
            p = space[name]
            if not isinstance(p, Real) or p.log:
                raise ConfigError(
                    f"input constraint '{item}': parameter {name!r} is {p}; linear constraints "
                    "apply to linear Real parameters only (not log-scaled, integer or categorical)"
                )
        out.append(item)
    return tuple(out)


class UnitConstraints:
    """Input constraints mapped onto the unit cube: ``A_ineq u >= b_ineq``, ``A_eq u == b_eq``.

    With ``x_j = low_j + u_j (high_j - low_j)``, the constraint ``sum c_j x_j op b`` becomes
    ``sum c_j (high_j - low_j) u_j op b - sum c_j low_j``. Fixed parameters add equalities.

    Args:
        space: the parameter space.
        constraints: the (parsed) linear constraints.
        fixed: column index -> unit-cube value of fixed parameters.
    """

    def __init__(
        self,
        space: Space,
        constraints: Iterable[LinearConstraint],
        fixed: Mapping[int, float] | None = None,
    ) -> None:
        self.space = space
        self.constraints = tuple(constraints)
        d = space.dim
        ineq_A, ineq_b, eq_A, eq_b = [], [], [], []
        for c in self.constraints:
            row = np.zeros(d)
            rhs = c.bound
            for name, coef in c.coefficients.items():
                j = space.names.index(name)
                p = space.parameters[j]
                row[j] += coef * (p.high - p.low)
                rhs -= coef * p.low
            if c.op == "==":
                eq_A.append(row)
                eq_b.append(rhs)
            elif c.op == ">=":
                ineq_A.append(row)
                ineq_b.append(rhs)
            else:
                ineq_A.append(-row)
                ineq_b.append(-rhs)
        for j, u in (fixed or {}).items():
            row = np.zeros(d)
            row[j] = 1.0
            eq_A.append(row)
            eq_b.append(float(u))
        self.A_ineq = np.array(ineq_A).reshape(-1, d)
        self.b_ineq = np.array(ineq_b, dtype=float)
        self.A_eq = np.array(eq_A).reshape(-1, d)
        self.b_eq = np.array(eq_b, dtype=float)

    def __bool__(self) -> bool:
        return bool(len(self.A_ineq) or len(self.A_eq))

    @property
    def has_linear(self) -> bool:
        """True when user constraints (not only fixed parameters) are present."""
        return bool(self.constraints)

    def feasible(self, U: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """Row mask of ``U`` (``n x d``) satisfying every constraint within ``tol``."""
        U = np.atleast_2d(U)
        ok = np.ones(len(U), dtype=bool)
        if len(self.A_ineq):
            ok &= np.all(U @ self.A_ineq.T >= self.b_ineq - tol, axis=1)
        if len(self.A_eq):
            ok &= np.all(np.abs(U @ self.A_eq.T - self.b_eq) <= tol, axis=1)
        return ok

    def botorch(self, **tkwargs: Any) -> tuple[list | None, list | None]:
        """``(inequality_constraints, equality_constraints)`` in BoTorch's sparse format.

        Equalities for fixed parameters are left out (BoTorch takes ``fixed_features``).
        """
        import torch

        def sparse(A: np.ndarray, b: np.ndarray) -> list:
            out = []
            for row, rhs in zip(A, b):
                idx = np.flatnonzero(row)
                if len(idx) == 0:
                    continue
                out.append(
                    (
                        torch.as_tensor(idx, dtype=torch.long, device=tkwargs.get("device")),
                        torch.as_tensor(row[idx], **tkwargs),
                        float(rhs),
                    )
                )
            return out

        n_user_eq = sum(c.op == "==" for c in self.constraints)
        ineq = sparse(self.A_ineq, self.b_ineq)
        eq = sparse(self.A_eq[:n_user_eq], self.b_eq[:n_user_eq])
        return (ineq or None), (eq or None)

    def project(self, U: np.ndarray) -> np.ndarray:
        """The nearest points of the constrained box to the rows of ``U`` (SLSQP, tight)."""
        from scipy.optimize import minimize

        U = np.atleast_2d(np.asarray(U, dtype=float))
        out = U.copy()
        cons = []
        if len(self.A_ineq):
            cons.append(
                {
                    "type": "ineq",
                    "fun": lambda u: self.A_ineq @ u - self.b_ineq,
                    "jac": lambda u: self.A_ineq,
                }
            )
        if len(self.A_eq):
            cons.append(
                {
                    "type": "eq",
                    "fun": lambda u: self.A_eq @ u - self.b_eq,
                    "jac": lambda u: self.A_eq,
                }
            )
        for i, u0 in enumerate(U):
            if self.feasible(u0[None], tol=1e-12)[0]:
                continue
            res = minimize(
                lambda u, u0=u0: 0.5 * float(np.sum((u - u0) ** 2)),
                np.clip(u0, 0, 1),
                jac=lambda u, u0=u0: u - u0,
                bounds=[(0.0, 1.0)] * len(u0),
                constraints=cons,
                method="SLSQP",
                options={"ftol": 1e-14, "maxiter": 200},
            )
            out[i] = np.clip(res.x, 0.0, 1.0)
        return out

    def sample(self, n: int, *, seed: int, skip: int = 0) -> np.ndarray:
        """Rows ``skip .. skip + n`` of a seeded space-filling design of the feasible set.

        With inequalities only, the scrambled Sobol sequence with infeasible rows passed
        over (rejection); with equalities (or when rejection accepts too few), a seeded
        hit-and-run chain (``botorch.utils.sampling.get_polytope_samples``). Either way
        row ``i`` is a pure function of ``(seed, i)``, so a design continues across asks.
        """
        d = self.space.dim
        total = skip + n
        if not len(self.A_eq):
            drawn, accepted = 0, []
            sequence = SobolSequence(d, seed)
            while drawn < 64 * max(total, 16):
                chunk = max(256, 2 * total)
                U = sequence.rows(drawn, chunk)
                drawn += chunk
                accepted.extend(U[self.feasible(U)])
                if len(accepted) >= total:
                    return np.array(accepted[skip:total])
        return self._hit_and_run(total, seed)[skip:total]

    def _hit_and_run(self, total: int, seed: int) -> np.ndarray:
        import torch
        from botorch.utils.sampling import get_polytope_samples

        bounds = torch.zeros(2, self.space.dim, dtype=torch.float64)
        bounds[1] = 1.0

        def sparse(A: np.ndarray, b: np.ndarray) -> list | None:
            rows = []
            for row, rhs in zip(A, b):
                idx = np.flatnonzero(row)
                rows.append((torch.as_tensor(idx), torch.as_tensor(row[idx]), float(rhs)))
            return rows or None

        with torch.random.fork_rng():
            X = get_polytope_samples(
                total,
                bounds,
                inequality_constraints=sparse(self.A_ineq, self.b_ineq),
                equality_constraints=sparse(self.A_eq, self.b_eq),
                seed=int(seed % 2**31),
                n_burnin=200,
                n_thinning=8,
            )
        return self.project(X.numpy())


def max_violation(constraints: Iterable[LinearConstraint], point: Mapping[str, Any]) -> float:
    """The largest violation of any constraint at ``point`` (0 when all hold)."""
    return max((c.violation(point) for c in constraints), default=0.0)


def design_points(
    space: Space,
    n: int,
    *,
    seed: int,
    skip: int = 0,
    exclude: np.ndarray | None = None,
    avoid: np.ndarray | None = None,
    constraints: Sequence[Any] = (),
    fixed: dict[str, Any] | None = None,
    sequence: SobolSequence | None = None,
) -> np.ndarray:
    """The space-filling design, honouring input constraints and fixed parameters.

    Without constraints: :func:`sobol_points` with the fixed columns set. With linear
    input constraints: rows ``skip .. skip + n`` of the seeded feasible design of
    :meth:`~sdl.planners._constraints.UnitConstraints.sample` (fixed parameters become
    equalities), rows near ``exclude`` passed over. ``sequence``: the Sobol sequence of
    ``(space.dim, seed)`` to read the unconstrained design from (see :func:`sobol_points`).

    Returns:
        ``n x d`` unit-cube rows.
    """
    fixed = dict(fixed or {})
    fixed_unit = {space.names.index(k): space[k].to_unit(v) for k, v in fixed.items()}
    if not constraints:
        U = sobol_points(
            space, n, seed=seed, skip=skip, exclude=exclude, avoid=avoid, sequence=sequence
        )
        for j, u in fixed_unit.items():
            U[:, j] = u
        return U
    uc = UnitConstraints(space, constraints, fixed_unit)
    exclude = np.empty((0, space.dim)) if exclude is None else np.asarray(exclude, float)
    chosen: list[np.ndarray] = []
    start, extra = skip, 0
    while len(chosen) < n and extra <= 4 * n + 16:
        rows = uc.sample(n - len(chosen), seed=seed, skip=start)
        start += len(rows)
        for row in rows:
            row = (
                space.round_unit(row[None])[0]
                if space.integer_columns or space.categorical_columns
                else row
            )
            if near_any(row, exclude.reshape(-1, space.dim)) or near_any(
                row, np.array(chosen).reshape(-1, space.dim)
            ):
                extra += 1
                continue
            chosen.append(row)
    if len(chosen) < n:
        chosen.extend(uc.sample(n - len(chosen), seed=seed, skip=skip))
    return np.array(chosen[:n]).reshape(n, space.dim)
