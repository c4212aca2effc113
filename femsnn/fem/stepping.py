"""Load programs (sequences of target load factors) and load stepping with automatic cut-back.

A program starts from rest (factor 0) and visits its target factors in order: monotonic ramps,
cycles with unloading and reversal, or any explicit table. A step whose Newton solve fails is rolled
back and retried in halves (then quarters, ...), up to a bounded number of cut-backs per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

import numpy as np

from femsnn.fem.solver import SolveInfo


def turning_point_program(turning_points: Sequence[float], steps_per_segment: int) -> np.ndarray:
    """Factors going linearly from 0 through each turning point, steps_per_segment steps per segment."""
    if steps_per_segment < 1:
        raise ValueError(f"steps_per_segment must be at least 1, got {steps_per_segment}")
    if len(turning_points) == 0:
        raise ValueError("a load program needs at least one turning point")
    ends = np.concatenate([[0.0], np.asarray(turning_points, dtype=float)])
    fractions = np.arange(1, steps_per_segment + 1) / steps_per_segment
    return np.concatenate([a + (b - a) * fractions for a, b in zip(ends[:-1], ends[1:])])


class SteppedSolver(Protocol):
    """What load stepping needs from a solver (EquilibriumSolver implements it)."""

    def solve_at(self, factor: float, dt: float) -> SolveInfo: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


@dataclass(frozen=True)
class Attempt:
    """One Newton solve of a load step (a cut-back sub-step included), converged or not."""

    step: int  # 1-based index of the program's target factor
    target: float  # that step's target factor
    factor: float  # the factor this solve aimed at
    info: SolveInfo
    cutbacks: int  # cut-backs of this step before this solve

    @property
    def converged(self) -> bool:
        return self.info.converged


class ConvergenceFailure(RuntimeError):
    """A load step that did not converge within the allowed cut-backs; everything before it was kept."""

    def __init__(self, attempt: Attempt, last_converged: float, max_cutbacks: int) -> None:
        self.attempt, self.last_converged = attempt, last_converged
        super().__init__(
            f"load step {attempt.step} (target load factor {attempt.target:.6g}) did not converge at load factor "
            f"{attempt.factor:.6g} (PETSc reason {attempt.info.reason}) after {max_cutbacks} cut-backs; "
            f"last converged load factor {last_converged:.6g}"
        )


def follow_load_program(
    solver: SteppedSolver,
    factors: Sequence[float],
    record: Callable[[Attempt], None],
    *,
    max_cutbacks: int,
    dt: float = 1.0,
    completed: int = 0,
) -> float:
    """Solve each target factor in turn from rest, halving failed steps; returns the final factor.

    Every solve is passed to record (converged ones after commit). A cut-back sub-step gets its
    share of dt. Raises ConvergenceFailure after max_cutbacks halvings of one step. completed: steps
    already done (a resumed run), the solver being at the converged state of the last of them.
    """
    if not 0 <= completed <= len(factors):
        raise ValueError(f"completed must lie in 0..{len(factors)}, got {completed}")
    current = float(factors[completed - 1]) if completed else 0.0
    for step, target in enumerate(factors[completed:], start=completed + 1):
        start, done, size, cutbacks = current, Fraction(0), Fraction(1), 0
        while done < 1:
            reach = min(done + size, Fraction(1))
            factor = target if reach == 1 else start + (target - start) * float(reach)
            info = solver.solve_at(factor, dt * float(reach - done))
            attempt = Attempt(step, float(target), float(factor), info, cutbacks)
            if info.converged:
                solver.commit()
                done, current = reach, factor
                record(attempt)
                continue
            solver.rollback()
            record(attempt)
            if cutbacks == max_cutbacks:
                raise ConvergenceFailure(attempt, current, max_cutbacks)
            cutbacks += 1
            size /= 2
    return current
