"""Tensor conventions of femsnn, stated once and enforced everywhere.

Units: any consistent set; the examples use MPa and mm.

Symmetric second-order tensors (strain, stress) are stored as **Mandel vectors** in the Voigt
order ``(xx, yy, zz, xy, yz, xz)``, with the shear components scaled by sqrt(2):

    strain  e = (e_xx, e_yy, e_zz, sqrt2 e_xy, sqrt2 e_yz, sqrt2 e_xz)
    stress  s = (s_xx, s_yy, s_zz, sqrt2 s_xy, sqrt2 s_yz, sqrt2 s_xz)

so that ``s . e == sigma : epsilon``, Euclidean norms are tensor norms and the tangent
d s / d e is a symmetric matrix whenever the material is. Every stress state uses a prefix
of that order:

===================  ===  ================================================================
stress state          n   components
===================  ===  ================================================================
``3d``                6   xx, yy, zz, xy, yz, xz
``plane_strain``      4   xx, yy, zz, xy   (e_zz = 0 imposed by the FE side; s_zz is output)
``uniaxial_stress``   1   xx               (the paper's 1D model, eq. 28)
===================  ===  ================================================================
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

SQRT2 = float(np.sqrt(2.0))


class StressState(StrEnum):
    """Which components a material works with (see module docstring)."""

    THREE_D = "3d"
    PLANE_STRAIN = "plane_strain"
    UNIAXIAL_STRESS = "uniaxial_stress"

    @property
    def size(self) -> int:
        """Number of Mandel components."""
        return {"3d": 6, "plane_strain": 4, "uniaxial_stress": 1}[self.value]

    @property
    def component_names(self) -> tuple[str, ...]:
        return ("xx", "yy", "zz", "xy", "yz", "xz")[: self.size]

    @property
    def fixed_strain(self) -> tuple[int, ...]:
        """Indices of the strain components this stress state holds at zero (plane strain: e_zz)."""
        return (2,) if self is StressState.PLANE_STRAIN else ()


# (i, j) index pairs of each Mandel component, in the order above.
_PAIRS = ((0, 0), (1, 1), (2, 2), (0, 1), (1, 2), (0, 2))


def mandel_scale(size: int) -> np.ndarray:
    """Per-component factors (1 for normal, sqrt 2 for shear) of a Mandel vector of length size."""
    return np.array([1.0, 1.0, 1.0, SQRT2, SQRT2, SQRT2][:size])


def to_mandel(tensor: np.ndarray, size: int = 6) -> np.ndarray:
    """Symmetric (..., 3, 3) tensors -> (..., size) Mandel vectors."""
    t = np.asarray(tensor)
    comps = [t[..., i, j] for i, j in _PAIRS[:size]]
    return np.stack(comps, axis=-1) * mandel_scale(size)


def from_mandel(vector: np.ndarray) -> np.ndarray:
    """(..., n) Mandel vectors (n = 1, 4 or 6) -> symmetric (..., 3, 3) tensors (missing = 0)."""
    v = np.asarray(vector)
    n = v.shape[-1]
    plain = v / mandel_scale(n)
    out = np.zeros(v.shape[:-1] + (3, 3), dtype=v.dtype)
    for k, (i, j) in enumerate(_PAIRS[:n]):
        out[..., i, j] = plain[..., k]
        out[..., j, i] = plain[..., k]
    return out


def mandel_rotation(rotation: np.ndarray, size: int) -> np.ndarray:
    """(..., size, size) orthogonal matrices Q with Q to_mandel(t) = to_mandel(R t R^T) for (..., 3, 3) orthogonal R.

    The map of symmetric tensors under a change of frame, in Mandel form (proper rotations and reflections
    alike). It keeps a stress state's components among themselves only when R keeps the z axis (plane strain:
    rotations about z and mirrors of the x-y plane; uniaxial stress: none but the identity) -- ValueError otherwise.
    """
    R = np.asarray(rotation, dtype=float)
    basis = from_mandel(np.eye(size))  # (size, 3, 3)
    rotated = np.einsum("...ij,njk,...lk->...nil", R, basis, R)
    Q = np.swapaxes(to_mandel(rotated, 6), -1, -2)  # column n: the image of basis tensor n, all 6 components
    if np.any(np.abs(Q[..., size:, :]) > 1e-12):
        raise ValueError(f"this change of frame mixes the {size} components with others")
    return Q[..., :size, :]


def rotation_about_z(angle: np.ndarray | float, mirror: np.ndarray | bool = False) -> np.ndarray:
    """(..., 3, 3) rotations by angle (radians) about the z axis, after a mirror y -> -y where mirror is true."""
    c, s = np.cos(angle), np.sin(angle)
    c, s = np.broadcast_arrays(c, s)
    R = np.zeros(c.shape + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    flip = np.where(np.asarray(mirror), -1.0, 1.0)
    R[..., :, 1] *= flip[..., None] if flip.ndim else flip
    return R


def engineering_to_mandel(vector: np.ndarray) -> np.ndarray:
    """Voigt strain with engineering shears (gamma = 2 e) -> Mandel strain."""
    v = np.asarray(vector, dtype=float)
    n = v.shape[-1]
    return v * np.array([1.0, 1.0, 1.0, 1 / SQRT2, 1 / SQRT2, 1 / SQRT2][:n])


def identity(size: int) -> np.ndarray:
    """Mandel vector of the second-order identity tensor."""
    return np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0][:size])


def deviatoric_projector(size: int) -> np.ndarray:
    """Mandel matrix of P_dev = I - (1/3) 1 x 1, restricted to size components (size >= 3)."""
    one = identity(size)
    return np.eye(size) - np.outer(one, one) / 3.0


def von_mises(stress: np.ndarray) -> np.ndarray:
    """Von Mises equivalent stress sqrt(3/2) |dev s| of (..., n) Mandel stresses (n >= 4)."""
    s = np.asarray(stress)
    n = s.shape[-1]
    dev = s - (s[..., :3].sum(-1, keepdims=True) / 3.0) * identity(n)
    return np.sqrt(1.5 * np.einsum("...i,...i->...", dev, dev))
