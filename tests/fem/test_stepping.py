"""Load programs and cut-back logic, with a stand-in solver that fails on steps that are too large."""

from __future__ import annotations

import numpy as np
import pytest

from femsnn.fem.solver import SolveInfo
from femsnn.fem.stepping import ConvergenceFailure, follow_load_program, turning_point_program


class StepLimitedSolver:
    """Converges only when the factor moves by at most max_step from the committed one (or never past limit)."""

    def __init__(self, max_step: float, limit: float = np.inf) -> None:
        self.max_step, self.limit = max_step, limit
        self.committed, self.trial = 0.0, 0.0
        self.log: list[tuple[float, float, bool]] = []  # (factor, dt, converged)

    def solve_at(self, factor: float, dt: float) -> SolveInfo:
        ok = abs(factor - self.committed) <= self.max_step + 1e-12 and factor <= self.limit
        self.trial = factor
        self.log.append((factor, dt, ok))
        return SolveInfo(reason=2 if ok else -5, iterations=3)

    def commit(self) -> None:
        self.committed = self.trial

    def rollback(self) -> None:
        self.trial = self.committed


def test_turning_points_give_linear_segments_from_rest():
    program = turning_point_program([1.0, -1.0, 0.0], steps_per_segment=2)
    np.testing.assert_allclose(program, [0.5, 1.0, 0.0, -1.0, -0.5, 0.0])
    with pytest.raises(ValueError, match="at least 1"):
        turning_point_program([1.0], 0)


def test_failed_steps_are_halved_until_they_converge_and_land_exactly_on_targets():
    solver, attempts = StepLimitedSolver(max_step=0.3), []
    final = follow_load_program(solver, [1.0, -0.2], attempts.append, max_cutbacks=3, dt=2.0)
    assert final == -0.2 and solver.committed == -0.2
    converged = [(a.step, a.factor, a.cutbacks) for a in attempts if a.converged]
    assert [(step, cutbacks) for step, _, cutbacks in converged] == [(1, 2)] * 4 + [(2, 2)] * 4
    np.testing.assert_allclose([f for _, f, _ in converged], [0.25, 0.5, 0.75, 1.0, 0.7, 0.4, 0.1, -0.2])
    assert converged[3][1] == 1.0 and converged[7][1] == -0.2  # targets exactly, not sums of sub-steps
    assert [a.factor for a in attempts[:3]] == [1.0, 0.5, 0.25]  # two failures before the first success
    assert [dt for f, dt, ok in solver.log if ok][:1] == [0.5]  # a quarter of the step gets a quarter of dt


def test_too_many_cutbacks_raise_with_the_last_converged_factor():
    solver, attempts = StepLimitedSolver(max_step=1.0, limit=0.8), []
    with pytest.raises(ConvergenceFailure, match=r"load step 2 \(target load factor 1.2\).*last converged load factor 0.75") as err:
        follow_load_program(solver, [0.6, 1.2], attempts.append, max_cutbacks=3)
    assert err.value.last_converged == solver.committed == pytest.approx(0.75)
    failed = [a.factor for a in attempts if not a.converged]
    np.testing.assert_allclose(failed, [1.2, 0.9, 0.9, 0.825])  # the last one exhausted the 3 cut-backs
