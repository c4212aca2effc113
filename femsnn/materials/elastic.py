"""Isotropic linear elasticity: the Mandel stiffness every femsnn material starts from."""

from __future__ import annotations

import numpy as np

from femsnn.mandel import StressState, deviatoric_projector, identity
from femsnn.materials.base import History, Material, MaterialInputError, MaterialResponse
from femsnn.materials.parameters import check_poisson, check_positive, check_stress_state


def lame_moduli(E: float, nu: float) -> tuple[float, float]:
    """Bulk modulus kappa and shear modulus mu from Young's modulus and Poisson's ratio."""
    return E / (3.0 * (1.0 - 2.0 * nu)), E / (2.0 * (1.0 + nu))


def elastic_stiffness(E: float, nu: float, size: int) -> np.ndarray:
    """Mandel stiffness (size, size): kappa 1x1 + 2 mu P_dev for size 6 or 4, [[E]] for size 1 (uniaxial stress)."""
    E, nu = check_positive("E", E), check_poisson(nu)
    if size == 1:
        return np.array([[E]])
    if size not in (4, 6):
        raise MaterialInputError(f"Mandel size must be 1, 4 or 6, got {size}")
    kappa, mu = lame_moduli(E, nu)
    one = identity(size)
    return kappa * np.outer(one, one) + 2.0 * mu * deviatoric_projector(size)


class LinearElastic(Material):
    """Isotropic linear elasticity, s = C e, in any stress state (uniaxial stress: s = E e)."""

    def __init__(self, E: float, nu: float, stress_state: str | StressState = "3d") -> None:
        self.stress_state = check_stress_state(stress_state, tuple(StressState), "LinearElastic")
        self.E, self.nu = check_positive("E", E), check_poisson(nu)
        self.stiffness = elastic_stiffness(self.E, self.nu, self.size)

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        return {}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        stress = strain @ self.stiffness  # the stiffness is symmetric
        tangents = np.broadcast_to(self.stiffness, (strain.shape[0], self.size, self.size)).copy() if tangent else None
        return MaterialResponse(stress=stress, tangent=tangents, history={})

    def describe(self) -> dict:
        return {**super().describe(), "E": self.E, "nu": self.nu}
