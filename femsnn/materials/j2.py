"""Von Mises (J2) plasticity with linear isotropic and kinematic hardening: radial return, consistent tangent.

Per point (science notes section 2; Simo & Hughes, Box 3.2), with kappa, mu the bulk and shear moduli:

    xi = 2 mu dev(e - e_p) - beta,   f = |xi| - sqrt(2/3) (sigma_y + H_iso p)
    if f > 0:  dgamma = f / (2 mu + 2/3 (H_iso + H_kin)),  n = xi / |xi|
               e_p += dgamma n,  beta += 2/3 H_kin dgamma n,  p += sqrt(2/3) dgamma
    s = C_el (e - e_p)   (with the updated e_p; equal to kappa tr(e) 1 + beta + (1 - 2 mu dgamma / |xi|) xi)
    C = C_el - 2 mu (1 - theta) P_dev - 2 mu theta_bar n x n,
        theta = 1 - 2 mu dgamma / |xi|,  theta_bar = 1 / (1 + (H_iso + H_kin) / (3 mu)) - (1 - theta)

Mandel vectors of size 6 (3d) or 4 (plane strain: xx, yy, zz, xy; the subspace yz = xz = 0 is closed
under J2 flow) share one implementation. The batch is processed in chunks of CHUNK_POINTS points so that
the temporaries stay in cache (each input is read from memory once, each output written once), and the
small per-point matrix products go to BLAS (matmul) or einsum rather than to short broadcast loops.
Results are written straight into the output arrays, the caller's own with ``update(..., out=...)``.
The tangent is assembled in two passes over its chunk: einsum writes xi x g, then one BLAS GEMM with
beta = 1 (torch.addmm_ on the same memory; numpy's matmul cannot accumulate) adds C_el - 2 mu (1 - theta) P_dev.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from femsnn.mandel import StressState, deviatoric_projector
from femsnn.materials.base import History, Material, MaterialInputError, MaterialResponse
from femsnn.materials.elastic import elastic_stiffness, lame_moduli
from femsnn.materials.parameters import (
    YIELD_TOLERANCE,
    check_non_negative,
    check_poisson,
    check_positive,
    check_stress_state,
)

#: points per chunk: large enough to amortise numpy's per-call cost (~1 us), small enough that the
#: chunk's work arrays (~0.5 kB per point in 3d) stay in cache; 8192 was among the fastest of 1024..16384
CHUNK_POINTS = 8192

SQRT_2_3 = math.sqrt(2.0 / 3.0)


class J2Plasticity(Material):
    """Von Mises plasticity, linear isotropic (H_iso) and kinematic (H_kin) hardening, 3d or plane strain."""

    def __init__(
        self,
        E: float,
        nu: float,
        sigma_y: float,
        H_iso: float = 0.0,
        H_kin: float = 0.0,
        stress_state: str | StressState = "3d",
    ) -> None:
        allowed = (StressState.THREE_D, StressState.PLANE_STRAIN)
        self.stress_state = check_stress_state(stress_state, allowed, "J2Plasticity")
        self.E, self.nu = check_positive("E", E), check_poisson(nu)
        self.sigma_y = check_positive("sigma_y", sigma_y)
        self.H_iso, self.H_kin = check_non_negative("H_iso", H_iso), check_non_negative("H_kin", H_kin)
        self.kappa, self.mu = lame_moduli(self.E, self.nu)
        self.elastic_tangent = elastic_stiffness(self.E, self.nu, self.size)
        n, projector = self.size, deviatoric_projector(self.size)
        # constant matrices that let BLAS do the small per-point products
        self._two_mu_deviator = 2.0 * self.mu * projector
        self._ones = np.ones(n)
        self._tangent_basis = np.stack([self.elastic_tangent.ravel(), projector.ravel()])

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        n = self.size
        return {"plastic_strain": (n,), "back_stress": (n,), "equivalent_plastic_strain": ()}

    def describe(self) -> dict:
        params = {"E": self.E, "nu": self.nu, "sigma_y": self.sigma_y, "H_iso": self.H_iso, "H_kin": self.H_kin}
        return {**super().describe(), **params}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        n_points, n = strain.shape
        # one contiguous array per history variable: numpy is several times slower on strided rows
        out = MaterialResponse(
            stress=np.empty((n_points, n)),
            tangent=np.empty((n_points, n, n)) if tangent else None,
            history={k: np.empty((n_points, *shape)) for k, shape in self.history_spec.items()},
        )
        return self._update_into(strain, history, dt, tangent, out)

    def _update_into(
        self, strain: np.ndarray, history: History, dt: float, tangent: bool, out: MaterialResponse
    ) -> MaterialResponse:
        n_points, n = strain.shape
        if tangent and not out.tangent.flags.c_contiguous:
            raise MaterialInputError("out tangent must be C-contiguous (its chunks are reshaped to (points, n * n) views)")
        strain = np.asarray(strain, dtype=np.float64)
        committed = tuple(np.asarray(history[k], dtype=np.float64) for k in self.history_spec)
        trial = tuple(out.history[k] for k in self.history_spec)
        scratch = _scratch(CHUNK_POINTS, n, self.history_spec)
        for lo in range(0, n_points, CHUNK_POINTS):
            chunk = slice(lo, min(lo + CHUNK_POINTS, n_points))
            tmp = {k: v[: chunk.stop - lo] for k, v in scratch.items()}
            # strided history (e.g. views of the FE side's packed arrays) is staged through contiguous chunks:
            # one strided copy per array instead of every operation on strided rows
            inputs = tuple(_contiguous(a[chunk], tmp[f"committed {k}"]) for k, a in zip(self.history_spec, committed))
            outputs = tuple(v[chunk] if v.flags.c_contiguous else tmp[f"trial {k}"] for k, v in zip(self.history_spec, trial))
            self._return_chunk(strain[chunk], inputs, out.stress[chunk], outputs, tmp)
            for staged, target in zip(outputs, trial):
                if not target.flags.c_contiguous:
                    target[chunk] = staged
            if tangent:
                self._tangent_chunk(out.tangent[chunk], tmp)
        return MaterialResponse(stress=out.stress, tangent=out.tangent if tangent else None, history=dict(out.history))

    def _return_chunk(
        self,
        strain: np.ndarray,
        committed: tuple[np.ndarray, np.ndarray, np.ndarray],
        stress: np.ndarray,
        trial: tuple[np.ndarray, np.ndarray, np.ndarray],
        tmp: dict[str, np.ndarray],
    ) -> None:
        """Radial return of one chunk into the output slices; leaves xi, |xi| and dgamma in tmp for the tangent."""
        plastic_strain, back_stress, eq_plastic_strain = committed
        plastic_strain_out, back_stress_out, eq_plastic_strain_out = trial
        elastic, xi, flow, norm, dgamma = (tmp[k] for k in ("elastic", "xi", "flow", "norm", "dgamma"))
        # xi = 2 mu dev(e - e_p) - beta, the trial stress relative to the back stress
        np.subtract(strain, plastic_strain, out=elastic)
        np.matmul(elastic, self._two_mu_deviator, out=xi)
        xi -= back_stress
        np.multiply(xi, xi, out=flow)
        np.matmul(flow, self._ones, out=norm)
        np.sqrt(norm, out=norm)
        # trial yield function -> plastic multiplier (zero where elastic or exactly on the surface)
        np.subtract(norm, SQRT_2_3 * self.sigma_y, out=dgamma)
        if self.H_iso > 0:
            dgamma -= (SQRT_2_3 * self.H_iso) * eq_plastic_strain
        # a point counts as plastic only beyond a rounding-level band: points that ended the last
        # step on the yield surface must not flip to plastic on round-off (unloading would fail)
        np.copyto(dgamma, 0.0, where=dgamma <= YIELD_TOLERANCE * SQRT_2_3 * self.sigma_y)
        dgamma *= 1.0 / (2.0 * self.mu + (2.0 / 3.0) * (self.H_iso + self.H_kin))
        np.multiply(dgamma, SQRT_2_3, out=eq_plastic_strain_out)
        eq_plastic_strain_out += eq_plastic_strain
        # dgamma > 0 implies |xi| > sqrt(2/3) sigma_y > 0, so the guard only protects elastic points
        np.maximum(norm, np.finfo(np.float64).tiny, out=norm)
        ratio = tmp["ratio"]
        np.divide(dgamma, norm, out=ratio)
        np.multiply(xi, ratio[:, None], out=flow)  # dgamma n
        np.add(plastic_strain, flow, out=plastic_strain_out)
        if self.H_kin > 0:
            flow *= (2.0 / 3.0) * self.H_kin
            np.add(back_stress, flow, out=back_stress_out)
        else:
            back_stress_out[...] = back_stress
        # stress = C_el (e - e_p) with the updated plastic strain
        np.subtract(strain, plastic_strain_out, out=elastic)
        np.matmul(elastic, self.elastic_tangent, out=stress)

    def _tangent_chunk(self, tangent: np.ndarray, tmp: dict[str, np.ndarray]) -> None:
        """Consistent tangent of one chunk from the xi, |xi|, dgamma / |xi| that _return_chunk left in tmp."""
        xi, norm, dgamma, ratio = tmp["xi"], tmp["norm"], tmp["dgamma"], tmp["ratio"]
        if not dgamma.any():
            tangent[...] = self.elastic_tangent
            return
        mu, n = self.mu, xi.shape[1]
        # - 2 mu theta_bar n x n = xi x g with g = -(2 mu theta_bar / |xi|^2) xi, zero at elastic points
        theta_bar = tmp["theta_bar"]
        np.multiply(ratio, -2.0 * mu, out=theta_bar)
        theta_bar += 1.0 / (1.0 + (self.H_iso + self.H_kin) / (3.0 * mu))
        theta_bar *= dgamma > 0  # before dividing: elastic points may have |xi| = 0
        theta_bar *= -2.0 * mu
        theta_bar /= norm
        theta_bar /= norm
        g = tmp["flow"]
        np.multiply(xi, theta_bar[:, None], out=g)
        np.einsum("ci,cj->cij", xi, g, out=tangent)
        # += C_el - 2 mu (1 - theta) P_dev, with 2 mu (1 - theta) = 4 mu^2 dgamma / |xi|, as [1, -4 mu^2 ratio] @ basis
        coefficients = tmp["coefficients"]
        np.multiply(ratio, -4.0 * mu * mu, out=coefficients[:, 1])
        _accumulate_product(tangent.reshape(len(xi), n * n), coefficients, self._tangent_basis)


def _accumulate_product(target: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """target += a @ b in one BLAS call with beta = 1, in place on target's memory (torch.addmm_ on numpy views)."""
    import torch  # here, not at module level: importing torch takes seconds and only the tangent needs it

    torch.from_numpy(target).addmm_(torch.from_numpy(a), torch.from_numpy(b))


def _contiguous(array: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """array itself if C-contiguous, else a copy of it in buffer."""
    if array.flags.c_contiguous:
        return array
    np.copyto(buffer, array)
    return buffer


_SCRATCH = threading.local()


def _scratch(n_points: int, n: int, history_spec: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Work arrays for chunks of n_points points, kept per thread so that calls do not page them in anew."""
    cache = _SCRATCH.__dict__.setdefault("cache", {})
    if (n_points, n) not in cache:
        arrays = {k: np.empty((n_points, n)) for k in ("elastic", "xi", "flow")}
        arrays.update({k: np.empty(n_points) for k in ("norm", "dgamma", "ratio", "theta_bar")})
        for name, shape in history_spec.items():  # staging of strided history
            arrays.update({f"{role} {name}": np.empty((n_points, *shape)) for role in ("committed", "trial")})
        arrays["coefficients"] = np.ones((n_points, 2))
        cache[(n_points, n)] = arrays
    return cache[(n_points, n)]
