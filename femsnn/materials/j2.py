"""Von Mises (J2) plasticity with linear isotropic and kinematic hardening: radial return, consistent tangent.

Per point (science notes section 2; Simo & Hughes, Box 3.2), with kappa, mu the bulk and shear moduli:

    xi = 2 mu dev(e - e_p) - beta,   f = |xi| - sqrt(2/3) (sigma_y + H_iso p)
    if f > 0:  dgamma = f / (2 mu + 2/3 (H_iso + H_kin)),  n = xi / |xi|
               e_p += dgamma n,  beta += 2/3 H_kin dgamma n,  p += sqrt(2/3) dgamma
    s = C_el (e - e_p)   (with the updated e_p; equal to kappa tr(e) 1 + beta + (1 - 2 mu dgamma / |xi|) xi)
    C = C_el - 2 mu (1 - theta) P_dev - 2 mu theta_bar n x n,
        theta = 1 - 2 mu dgamma / |xi|,  theta_bar = 1 / (1 + (H_iso + H_kin) / (3 mu)) - (1 - theta)

Mandel vectors of size 6 (3d) or 4 (plane strain: xx, yy, zz, xy; the subspace yz = xz = 0 is closed
under J2 flow) share one implementation: a compiled loop over points (numba) that reads each point's
strain and committed history once and writes its stress, trial history and tangent once, so the update
runs near the memory bandwidth (benchmarks/bench_return_mapping.py). Results are written straight into
the output arrays, the caller's own with ``update(..., out=...)``; strided history (views of the FE
side's packed arrays) is read and written in place.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from femsnn.mandel import StressState
from femsnn.materials.base import History, Material, MaterialResponse
from femsnn.materials.elastic import elastic_stiffness, lame_moduli
from femsnn.materials.parameters import (
    YIELD_TOLERANCE,
    check_non_negative,
    check_poisson,
    check_positive,
    check_stress_state,
)

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

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        n = self.size
        return {"plastic_strain": (n,), "back_stress": (n,), "equivalent_plastic_strain": ()}

    def describe(self) -> dict:
        params = {"E": self.E, "nu": self.nu, "sigma_y": self.sigma_y, "H_iso": self.H_iso, "H_kin": self.H_kin}
        return {**super().describe(), **params}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        n_points, n = strain.shape
        out = MaterialResponse(
            stress=np.empty((n_points, n)),
            tangent=np.empty((n_points, n, n)) if tangent else None,
            history={k: np.empty((n_points, *shape)) for k, shape in self.history_spec.items()},
        )
        return self._update_into(strain, history, dt, tangent, out)

    def _update_into(
        self, strain: np.ndarray, history: History, dt: float, tangent: bool, out: MaterialResponse
    ) -> MaterialResponse:
        n = strain.shape[1]
        committed = [np.asarray(history[k], dtype=np.float64) for k in self.history_spec]
        trial = [out.history[k] for k in self.history_spec]
        _radial_return(
            np.asarray(strain, dtype=np.float64),
            *committed,
            np.array([self.kappa, self.mu, self.sigma_y, self.H_iso, self.H_kin, YIELD_TOLERANCE * SQRT_2_3 * self.sigma_y]),
            out.stress,
            *trial,
            out.tangent if tangent else np.empty((0, n, n)),
        )
        return MaterialResponse(stress=out.stress, tangent=out.tangent if tangent else None, history=dict(out.history))


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc", "arcp"})
def _radial_return(
    strain, plastic_strain, back_stress, eq_plastic_strain, constants,
    stress, plastic_strain_out, back_stress_out, eq_plastic_strain_out, tangent,
):  # fmt: skip
    """Radial return and (if tangent has rows) consistent tangent of every point; module docstring for the maths.

    Uses the Mandel layout (normal components xx, yy, zz first) so that the deviator and C_el = kappa 1 x 1 +
    2 mu P_dev cost O(n) per point. constants: kappa, mu, sigma_y, H_iso, H_kin and the plastic threshold on f (a
    point that ended the last step on the yield surface must not flip to plastic on round-off, or unloading fails).
    """
    kappa, mu, sigma_y, h_iso, h_kin, threshold = constants[0], constants[1], constants[2], constants[3], constants[4], constants[5]
    n_points, n = strain.shape
    with_tangent = tangent.shape[0] == n_points
    plastic_modulus = 2.0 * mu + (2.0 / 3.0) * (h_iso + h_kin)
    theta_hardening = 1.0 / (1.0 + (h_iso + h_kin) / (3.0 * mu))
    xi = np.empty(n)
    for p in range(n_points):
        mean = (strain[p, 0] - plastic_strain[p, 0] + strain[p, 1] - plastic_strain[p, 1] + strain[p, 2] - plastic_strain[p, 2]) / 3.0
        norm2 = 0.0
        for i in range(n):  # xi = 2 mu dev(e - e_p) - beta
            deviator = strain[p, i] - plastic_strain[p, i] - (mean if i < 3 else 0.0)
            xi[i] = 2.0 * mu * deviator - back_stress[p, i]
            norm2 += xi[i] * xi[i]
        norm = math.sqrt(norm2)
        f = norm - SQRT_2_3 * (sigma_y + h_iso * eq_plastic_strain[p])
        dgamma = f / plastic_modulus if f > threshold else 0.0
        eq_plastic_strain_out[p] = eq_plastic_strain[p] + SQRT_2_3 * dgamma
        ratio = dgamma / norm if dgamma > 0.0 else 0.0  # dgamma > 0 implies |xi| > sqrt(2/3) sigma_y > 0
        pressure = 3.0 * kappa * mean  # e_p is deviatoric: the plastic update leaves the mean strain alone
        for i in range(n):  # s = kappa tr(e - e_p) 1 + 2 mu dev(e - e_p), with dev(e - e_p) = (xi + beta) / (2 mu) - dgamma n
            flow = ratio * xi[i]  # dgamma n
            plastic_strain_out[p, i] = plastic_strain[p, i] + flow
            back_stress_out[p, i] = back_stress[p, i] + (2.0 / 3.0) * h_kin * flow
            stress[p, i] = xi[i] + back_stress[p, i] - 2.0 * mu * flow + (pressure if i < 3 else 0.0)
        if with_tangent:
            # kappa 1 x 1 + (2 mu - 4 mu^2 dgamma / |xi|) P_dev - 2 mu theta_bar n x n
            shear = 2.0 * mu - 4.0 * mu * mu * ratio
            normal = -2.0 * mu * (theta_hardening - 2.0 * mu * ratio) / norm2 if dgamma > 0.0 else 0.0
            volumetric = kappa - shear / 3.0
            for i in range(n):
                for j in range(n):
                    value = normal * xi[i] * xi[j]
                    if i == j:
                        value += shear
                    if i < 3 and j < 3:
                        value += volumetric
                    tangent[p, i, j] = value
