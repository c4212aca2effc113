"""Quasi-static small-strain equilibrium with any femsnn material, solved by PETSc SNES.

    F(u; v) = int s(e(u)) . e(v) dx - external work(v),     J(du, v) = int (C e(du)) . e(v) dx

with s and C quadrature Functions filled by the material. The SNES residual callback updates the
material at the current iterate **from the committed history** before assembling, so Newton can
evaluate a step as often as it likes; the trial history is committed only after convergence, and a
failed step is rolled back to the last converged displacement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

import dolfinx.fem.petsc as fem_petsc
import numpy as np
import ufl
from dolfinx import fem
from dolfinx.la.petsc import _ghost_update
from petsc4py import PETSc

from femsnn.fem.loads import BoundaryLoading
from femsnn.fem.quadrature import QuadratureData, mandel_strain, stress_state_of
from femsnn.materials.base import Material

#: PETSc options used unless the caller overrides them: Newton with a full step, MUMPS LU.
DEFAULT_PETSC_OPTIONS: dict[str, str | int | float] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_stol": 0.0,  # converge on the residual only, never on a small Newton update
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}


@dataclass(frozen=True)
class NewtonSettings:
    """Convergence on the residual norm: |F| <= max(atol, rtol |F_0|) within max_it iterations."""

    rtol: float = 1e-8
    atol: float = 1e-10
    max_it: int = 25
    petsc_options: dict = field(default_factory=dict)

    def options(self) -> dict:
        """The full SNES options: defaults, tolerances, then the caller's overrides."""
        tolerances = {"snes_rtol": self.rtol, "snes_atol": self.atol, "snes_max_it": self.max_it}
        return {**DEFAULT_PETSC_OPTIONS, **tolerances, **self.petsc_options}


@dataclass(frozen=True)
class SolveInfo:
    """Outcome of one Newton solve: PETSc's converged reason (> 0 converged) and the iterations it took."""

    reason: int
    iterations: int

    @property
    def converged(self) -> bool:
        return self.reason > 0


@dataclass
class Timings:
    """Wall-clock seconds on this rank: material updates, assembly, the rest of SNES (linear solves), total."""

    material: float = 0.0
    assembly: float = 0.0
    solve: float = 0.0
    total: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"material": self.material, "assembly": self.assembly, "solve": self.solve, "total": self.total}


class EquilibriumSolver:
    """Newton solver for one displacement field u with a material at quadrature points and proportional loads."""

    def __init__(
        self,
        u: fem.Function,
        material: Material,
        loading: BoundaryLoading,
        quadrature_degree: int,
        settings: NewtonSettings = NewtonSettings(),
        prefix: str = "femsnn_",
    ) -> None:
        state = stress_state_of(u.function_space.mesh)
        if material.stress_state != state:
            raise ValueError(
                f"the mesh needs a {state.value!r} material, but {type(material).__name__} works in "
                f"{material.stress_state.value!r}"
            )
        self.u, self.material, self.loading = u, material, loading
        self.data = QuadratureData(u, state, material.history_spec, quadrature_degree)
        self.data.set_committed(material.initial_history(self.data.n_points))
        self.timings = Timings()
        V = u.function_space
        v, du = ufl.TestFunction(V), ufl.TrialFunction(V)
        dx = self.data.dx
        e_v = mandel_strain(v, state)
        self.residual = ufl.dot(self.data.stress, e_v) * dx
        work = loading.external_work()
        if work is not None:
            self.residual = self.residual - work
        jacobian = ufl.dot(ufl.dot(self.data.tangent, mandel_strain(du, state)), e_v) * dx
        self.problem = fem_petsc.NonlinearProblem(
            self.residual,
            u,
            bcs=loading.bcs,
            J=jacobian,
            petsc_options_prefix=prefix,
            petsc_options=settings.options(),
        )
        snes = self.problem.solver
        self._residual_ctx = {"u": u, "residual": self.problem.F, "jacobian": self.problem.J, "bcs": loading.bcs}
        self._jacobian_ctx = {"u": u, "jacobian": self.problem.J, "preconditioner": None, "bcs": loading.bcs}
        snes.setFunction(self._assemble_residual, self.problem.b)
        snes.setJacobian(self._assemble_jacobian, self.problem.A, None)
        self._committed_u = u.x.array.copy()
        self._updated_at = np.full_like(u.x.array, np.nan)  # iterate of the last material update
        self._dt = 1.0

    def _update_material(self) -> bool:
        """Update stress, tangent and trial history at the current u, from the committed history.

        Returns False (and leaves the data alone) when the iterate has non-finite strains.
        """
        tic = perf_counter()
        strain = self.data.evaluate_strain()
        if not np.all(np.isfinite(strain)):
            return False
        response = self.material.update(strain, self.data.committed_history(), self._dt, tangent=True)
        self.data.store(response)
        self._updated_at[:] = self.u.x.array
        self.timings.material += perf_counter() - tic
        return True

    def _set_iterate(self, x: PETSc.Vec) -> None:
        """Copy the SNES iterate x into u, ghosts included."""
        _ghost_update(x, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        fem_petsc.assign(x, self.u)

    def _assemble_residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """SNES residual: material update at x, then assembly (a non-finite iterate is a domain error)."""
        self._set_iterate(x)
        if not self._update_material():
            snes.setFunctionDomainError()
            return
        tic = perf_counter()
        fem_petsc.assemble_residual(snes, x, b, **self._residual_ctx)
        self.timings.assembly += perf_counter() - tic

    def _assemble_jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        """SNES Jacobian from the tangent of the material update at this same iterate."""
        self._set_iterate(x)
        if not np.array_equal(self._updated_at, self.u.x.array) and not self._update_material():
            raise FloatingPointError("Jacobian requested at an iterate with non-finite strains")
        tic = perf_counter()
        fem_petsc.assemble_jacobian(snes, x, J, P, **self._jacobian_ctx)
        self.timings.assembly += perf_counter() - tic

    def solve_at(self, factor: float, dt: float = 1.0) -> SolveInfo:
        """Newton solve for the loads at the given factor, starting from the current (converged) state."""
        self.loading.set_factor(factor)
        self._dt = dt
        material, assembly = self.timings.material, self.timings.assembly
        tic = perf_counter()
        self.problem.solve()
        elapsed = perf_counter() - tic
        self.timings.total += elapsed
        self.timings.solve += elapsed - (self.timings.material - material) - (self.timings.assembly - assembly)
        snes = self.problem.solver
        return SolveInfo(reason=int(snes.getConvergedReason()), iterations=int(snes.getIterationNumber()))

    def commit(self) -> None:
        """Accept the converged state: its trial history becomes the committed history."""
        if not np.array_equal(self._updated_at, self.u.x.array):
            self._update_material()
        self.data.commit()
        self._committed_u[:] = self.u.x.array

    def rollback(self) -> None:
        """Return to the last committed state after a failed solve (stress and tangent included)."""
        self.u.x.array[:] = self._committed_u
        self._update_material()
