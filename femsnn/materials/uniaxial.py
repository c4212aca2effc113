"""The paper's one-dimensional elastoplastic model (Henkes et al. 2022, eq. 28), with kinematic hardening added.

Uniaxial stress, return mapping (Simo & Hughes, Box 1.5): with back stress q and
equivalent plastic strain alpha,

    sigma_tr = E (e - e_p),  xi = sigma_tr - q,  f = |xi| - (sigma_y + K_iso alpha)
    if f > 0:  dgamma = f / (E + K_iso + K_kin),  e_p += dgamma sign(xi),  q += K_kin dgamma sign(xi),
               alpha += dgamma,  sigma = sigma_tr - E dgamma sign(xi)
    tangent = E (elastic) or E (K_iso + K_kin) / (E + K_iso + K_kin) (plastic).

It is the uniaxial-stress special case of :class:`femsnn.materials.j2.J2Plasticity` with K_iso = H_iso and
K_kin = H_kin.
"""

from __future__ import annotations

import numpy as np

from femsnn.mandel import StressState
from femsnn.materials.base import History, Material, MaterialResponse
from femsnn.materials.parameters import YIELD_TOLERANCE, check_non_negative, check_positive, check_stress_state


class UniaxialPlasticity(Material):
    """1D elastoplasticity with linear isotropic (K_iso) and kinematic (K_kin) hardening, uniaxial stress."""

    def __init__(
        self,
        E: float,
        sigma_y: float,
        K_iso: float = 0.0,
        K_kin: float = 0.0,
        stress_state: str | StressState = "uniaxial_stress",
    ) -> None:
        allowed = (StressState.UNIAXIAL_STRESS,)
        self.stress_state = check_stress_state(stress_state, allowed, "UniaxialPlasticity")
        self.E, self.sigma_y = check_positive("E", E), check_positive("sigma_y", sigma_y)
        self.K_iso, self.K_kin = check_non_negative("K_iso", K_iso), check_non_negative("K_kin", K_kin)

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        return {"plastic_strain": (), "back_stress": (), "equivalent_plastic_strain": ()}

    def describe(self) -> dict:
        params = {"E": self.E, "sigma_y": self.sigma_y, "K_iso": self.K_iso, "K_kin": self.K_kin}
        return {**super().describe(), **params}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        E = self.E
        plastic_strain = np.asarray(history["plastic_strain"], dtype=np.float64)
        back_stress = np.asarray(history["back_stress"], dtype=np.float64)
        alpha = np.asarray(history["equivalent_plastic_strain"], dtype=np.float64)
        trial_stress = E * (strain[:, 0] - plastic_strain)
        xi = trial_stress - back_stress
        f = np.abs(xi) - (self.sigma_y + self.K_iso * alpha)
        dgamma = np.where(f > YIELD_TOLERANCE * self.sigma_y, f, 0.0) / (E + self.K_iso + self.K_kin)
        flow = dgamma * np.sign(xi)
        stress = (trial_stress - E * flow)[:, None]
        trial = {
            "plastic_strain": plastic_strain + flow,
            "back_stress": back_stress + self.K_kin * flow,
            "equivalent_plastic_strain": alpha + dgamma,
        }
        tangents = None
        if tangent:
            plastic_modulus = E * (self.K_iso + self.K_kin) / (E + self.K_iso + self.K_kin)
            tangents = np.where(dgamma > 0, plastic_modulus, E)[:, None, None]
        return MaterialResponse(stress=stress, tangent=tangents, history=trial)
