"""Quasi-static small-strain equilibrium with any femsnn material, solved by PETSc SNES.

    F(u; v) = int s(e(u)) . e(v) dx - external work(v),     J(du, v) = int (C e(du)) . e(v) dx

with s and C quadrature Functions filled by the material. The SNES residual callback updates the
material at the current iterate **from the committed history** before assembling, so Newton can
evaluate a step as often as it likes; the trial history is committed only after convergence, and a
failed step is rolled back to the last converged displacement.

A material whose stress is only resolved to some finite stress change (a network surrogate whose
stress is piecewise constant in the strain) can never bring the residual down to round-off. With a
``stress_tolerance`` r > 0, Newton also accepts a residual norm below what independent stress errors
of size r at every quadrature point would produce (:func:`residual_noise_scale`), and every solve
takes at least one Newton iteration (else a load increment smaller than that could be skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter
from typing import Literal

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
    "snes_stol": 0.0,  # converge on the residual only, never on a small Newton update
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
}

#: PETSc line searches of newtonls: full step, backtracking, secant (PETSc's former "l2"), critical point,
#: and the affine-covariant error-based one
LineSearch = Literal["basic", "bt", "secant", "cp", "nleqerr"]


@dataclass(frozen=True)
class NewtonSettings:
    """Convergence on the residual norm: |F| <= max(atol, stress atol, rtol |F_0|) within max_it iterations.

    stress_tolerance: stress change (MPa) the material cannot resolve; 0 for an exact material. The
    solver turns it into an absolute residual tolerance (module docstring).
    """

    rtol: float = 1e-8
    atol: float = 1e-10
    max_it: int = 25
    line_search: LineSearch = "basic"
    stress_tolerance: float = 0.0
    petsc_options: dict = field(default_factory=dict)

    def options(self, atol: float | None = None) -> dict:
        """The full SNES options: defaults, tolerances (atol: the effective one), then the caller's overrides."""
        tolerances = {
            "snes_rtol": self.rtol,
            "snes_atol": self.atol if atol is None else atol,
            "snes_max_it": self.max_it,
            "snes_linesearch_type": self.line_search,
        }
        if self.stress_tolerance > 0:
            tolerances["snes_force_iteration"] = True
        return {**DEFAULT_PETSC_OPTIONS, **tolerances, **self.petsc_options}


def material_stress_resolution(material: Material) -> float:
    """The stress resolution (MPa) a material reports, 0 if it reports none (an exact material).

    A material may offer ``stress_resolution()`` returning an object whose ``resolution`` is that
    stress change (femsnn.materials.spiking measures it on its own validation paths).
    """
    probe = getattr(material, "stress_resolution", None)
    if probe is None:
        return 0.0
    resolution = float(probe().resolution)
    if not np.isfinite(resolution) or resolution < 0:
        raise ValueError(f"{type(material).__name__} reports a stress resolution of {resolution}")
    return resolution


def residual_noise_scale(data: QuadratureData, V: fem.FunctionSpace, bcs: list[fem.DirichletBC]) -> float:
    """Expected residual norm of independent unit stress errors in random directions at every quadrature point.

    An error r e_q at point q (e_q uniform on the unit sphere of the n Mandel components, W_q its weight
    times |det J|) gives residual entries F_i = sum_q W_q r e_q . e(phi_i)(x_q), so
    E|F|^2 = r^2 / n sum_i int W |e(phi_i)|^2 dx: the trace of a stiffness matrix whose material is W,
    over the free dofs. Returns sqrt(that trace / n), the residual norm per unit r (collective).
    """
    v, du = ufl.TestFunction(V), ufl.TrialFunction(V)
    volumes = data.point_volumes()
    state = data.stress_state
    form = fem.form(volumes * ufl.dot(mandel_strain(du, state), mandel_strain(v, state)) * data.dx)
    matrix = fem_petsc.assemble_matrix(form, bcs=bcs, diag=0.0)
    matrix.assemble()
    trace = matrix.getDiagonal().sum()
    matrix.destroy()
    return float(np.sqrt(trace / state.size))


@dataclass(frozen=True)
class SolveInfo:
    """Outcome of one Newton solve: PETSc's converged reason (> 0 converged), iterations, final residual norm."""

    reason: int
    iterations: int
    residual_norm: float = float("nan")

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
        self.data = QuadratureData(u, state, material.history_spec, quadrature_degree, material.history_dtype)
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
        #: absolute residual tolerance in force: the configured one, or that of the stress tolerance if larger
        self.residual_atol = settings.atol
        if settings.stress_tolerance > 0:
            scale = residual_noise_scale(self.data, V, loading.bcs)
            self.residual_atol = max(settings.atol, settings.stress_tolerance * scale)
        self.problem = fem_petsc.NonlinearProblem(
            self.residual,
            u,
            bcs=loading.bcs,
            J=jacobian,
            petsc_options_prefix=prefix,
            petsc_options=settings.options(self.residual_atol),
        )
        snes = self.problem.solver
        self._residual_ctx = {"u": u, "residual": self.problem.F, "jacobian": self.problem.J, "bcs": loading.bcs}
        self._jacobian_ctx = {"u": u, "jacobian": self.problem.J, "preconditioner": None, "bcs": loading.bcs}
        snes.setFunction(self._assemble_residual, self.problem.b)
        snes.setJacobian(self._assemble_jacobian, self.problem.A, None)
        self._committed_u = u.x.array.copy()
        self._updated_at = np.full_like(u.x.array, np.nan)  # iterate of the last material update
        self._dt = 1.0
        self._material_error: Exception | None = None

    def _update_material(self) -> bool:
        """Update stress, tangent and trial history at the current u, from the committed history.

        Returns False (and leaves the data alone) when the iterate has non-finite strains.
        """
        tic = perf_counter()
        strain = self.data.evaluate_strain()
        if not np.all(np.isfinite(strain)):
            return False
        # written straight into the quadrature data (materials that cannot compute in place copy into it)
        self.material.update(strain, self.data.committed_history(), self._dt, tangent=True, out=self.data.response_arrays())
        self._updated_at[:] = self.u.x.array
        self.timings.material += perf_counter() - tic
        return True

    def _set_iterate(self, x: PETSc.Vec) -> None:
        """Copy the SNES iterate x into u, ghosts included."""
        _ghost_update(x, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)
        fem_petsc.assign(x, self.u)

    def _material_at_iterate(self) -> bool:
        """Material update inside a SNES callback: False on a non-finite iterate or an error of the material.

        An exception must not cross PETSc (it would leave the iterate locked and the solver unusable): it is
        kept and re-raised by :meth:`solve_at` once SNES has stopped.
        """
        try:
            return self._update_material()
        except Exception as exc:
            self._material_error = exc
            return False

    def _assemble_residual(self, snes: PETSc.SNES, x: PETSc.Vec, b: PETSc.Vec) -> None:
        """SNES residual: material update at x, then assembly; a failed update gives a NaN residual (SNES stops)."""
        self._set_iterate(x)
        if not self._material_at_iterate():
            b.set(np.nan)  # petsc4py has no domain-error call; a NaN norm makes SNES stop with DIVERGED_FNORM_NAN
            return
        tic = perf_counter()
        fem_petsc.assemble_residual(snes, x, b, **self._residual_ctx)
        self.timings.assembly += perf_counter() - tic

    def _assemble_jacobian(self, snes: PETSc.SNES, x: PETSc.Vec, J: PETSc.Mat, P: PETSc.Mat) -> None:
        """SNES Jacobian from the tangent of the material update at this same iterate."""
        self._set_iterate(x)
        if not np.array_equal(self._updated_at, self.u.x.array) and not self._material_at_iterate():
            return  # the residual at this iterate failed too, so SNES stops before using this Jacobian
        tic = perf_counter()
        fem_petsc.assemble_jacobian(snes, x, J, P, **self._jacobian_ctx)
        self.timings.assembly += perf_counter() - tic

    def solve_at(self, factor: float, dt: float = 1.0) -> SolveInfo:
        """Newton solve for the loads at the given factor, starting from the current (converged) state."""
        self.loading.set_factor(factor)
        self._dt = dt
        material, assembly = self.timings.material, self.timings.assembly
        snes = self.problem.solver
        tic = perf_counter()
        linear_failure = int(PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE)
        self._material_error = None
        try:
            self.problem.solve()
            reason = int(snes.getConvergedReason())
        except PETSc.Error:  # e.g. MUMPS on a singular tangent: a failed solve, to be cut back, not a crash
            reason = linear_failure
        if self._material_error is not None:  # an error of the material is the user's to see, not a cut-back
            raise self._material_error
        if reason == linear_failure:
            snes.getKSP().reset()  # a failed factorisation is otherwise reused by every later solve
        elapsed = perf_counter() - tic
        self.timings.total += elapsed
        self.timings.solve += elapsed - (self.timings.material - material) - (self.timings.assembly - assembly)
        return SolveInfo(reason, int(snes.getIterationNumber()), float(snes.getFunctionNorm()))

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

    def restore(self, displacement: np.ndarray, committed: np.ndarray) -> None:
        """Continue from a saved converged state: displacement (ghosts included) and packed committed history.

        Stress and tangent are left alone: the next solve evaluates the material first.
        """
        self.u.x.array[:] = displacement
        self._committed_u[:] = displacement
        self.data.committed[:] = committed
        self.data.trial[:] = committed
        self._updated_at[:] = np.nan
