"""Closed-form answers for the FE anchor: a thick-walled cylinder under internal pressure, plane strain.

For inner radius a, outer radius b and internal pressure q, Lame's elastic solution is, with
A = q a^2 / (b^2 - a^2):

    sigma_r = A (1 - b^2/r^2),   sigma_theta = A (1 + b^2/r^2),   sigma_z = 2 nu A   (plane strain)
    u_r(r)  = (1 + nu)/E * A * ((1 - 2 nu) r + b^2/r)

Von Mises stress is largest at r = a, so yield starts there at q_e = sigma_0 / sigma_vm(a; q = 1). For a
perfectly plastic wall the limit (collapse) pressure is q_lim = (2/sqrt3) sigma_0 ln(b/a) (plane strain,
incompressible plastic flow). Defaults are the benchmark of science notes section 6 (mm, MPa):
compliance u_r(a)/q = 5.6253e-5, q_e = 58.388, q_lim = 75.738.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from femsnn.mandel import von_mises


@dataclass(frozen=True)
class ThickCylinder:
    """Geometry and material of the pressurised thick-walled cylinder (plane strain)."""

    inner_radius: float = 1.0
    outer_radius: float = 1.3
    young: float = 70e3
    poisson: float = 0.3
    yield_stress: float = 250.0

    def __post_init__(self) -> None:
        if not 0 < self.inner_radius < self.outer_radius:
            raise ValueError(f"need 0 < inner_radius < outer_radius, got {self.inner_radius}, {self.outer_radius}")
        if self.young <= 0 or not -1 < self.poisson < 0.5 or self.yield_stress <= 0:
            raise ValueError(
                f"need young > 0, -1 < poisson < 0.5 and yield_stress > 0, got "
                f"{self.young}, {self.poisson}, {self.yield_stress}"
            )

    def _radius(self, r: float | np.ndarray) -> np.ndarray:
        """r as an array, checked to lie in the wall (a <= r <= b)."""
        r = np.asarray(r, dtype=float)
        a, b = self.inner_radius, self.outer_radius
        if np.any(r < a * (1 - 1e-12)) or np.any(r > b * (1 + 1e-12)):
            raise ValueError(f"radius must lie in the wall [{a}, {b}], got {r}")
        return r

    def _lame_constant(self, pressure: float | np.ndarray) -> np.ndarray:
        """A = q a^2 / (b^2 - a^2)."""
        a, b = self.inner_radius, self.outer_radius
        return np.asarray(pressure, dtype=float) * a**2 / (b**2 - a**2)

    def stresses(
        self, r: float | np.ndarray, pressure: float | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Elastic (radial, hoop, axial) stresses at radius r under internal pressure (broadcast)."""
        r, big_a = self._radius(r), self._lame_constant(pressure)
        ratio = self.outer_radius**2 / r**2
        return big_a * (1 - ratio), big_a * (1 + ratio), 2 * self.poisson * big_a * np.ones_like(ratio)

    def radial_displacement(self, r: float | np.ndarray, pressure: float | np.ndarray) -> np.ndarray:
        """Elastic radial displacement u_r at radius r under internal pressure (broadcast)."""
        r, big_a = self._radius(r), self._lame_constant(pressure)
        nu = self.poisson
        return (1 + nu) / self.young * big_a * ((1 - 2 * nu) * r + self.outer_radius**2 / r)

    def compliance(self) -> float:
        """u_r(R_i) / q: inner-wall displacement per unit pressure while elastic."""
        return float(self.radial_displacement(self.inner_radius, 1.0))

    def first_yield_pressure(self) -> float:
        """q_e: pressure at which the inner wall reaches the yield stress (von Mises)."""
        radial, hoop, axial = self.stresses(self.inner_radius, 1.0)
        unit_stress = np.array([radial, hoop, axial, 0.0])  # Mandel, plane strain, at theta = 0
        return float(self.yield_stress / von_mises(unit_stress))

    def limit_pressure(self) -> float:
        """q_lim = (2/sqrt3) sigma_0 ln(R_e/R_i): collapse pressure of the perfectly plastic wall."""
        return float(2 / np.sqrt(3) * self.yield_stress * np.log(self.outer_radius / self.inner_radius))
