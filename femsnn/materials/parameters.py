"""Validation of material parameters and stress states, shared by every material class."""

from __future__ import annotations

import math

from femsnn.mandel import StressState
from femsnn.materials.base import MaterialInputError


def check_positive(name: str, value: float) -> float:
    """A finite, strictly positive parameter (moduli, yield stress) as float; clear error otherwise."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise MaterialInputError(f"{name} must be positive and finite, got {value}")
    return value


def check_non_negative(name: str, value: float) -> float:
    """A finite, non-negative parameter (hardening moduli) as float."""
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise MaterialInputError(f"{name} must be non-negative and finite, got {value}")
    return value


def check_poisson(nu: float) -> float:
    """Poisson's ratio in the open interval (-1, 0.5), where the isotropic stiffness is positive definite."""
    nu = float(nu)
    if not (-1.0 < nu < 0.5):
        raise MaterialInputError(f"Poisson's ratio nu must lie in (-1, 0.5), got {nu}")
    return nu


def check_stress_state(stress_state: str | StressState, allowed: tuple[StressState, ...], owner: str) -> StressState:
    """Parse a stress state and reject the ones the material class cannot work in."""
    try:
        state = StressState(stress_state)
    except ValueError:
        known = ", ".join(repr(s.value) for s in StressState)
        raise MaterialInputError(f"unknown stress state {stress_state!r}; known: {known}") from None
    if state not in allowed:
        ok = " or ".join(repr(s.value) for s in allowed)
        raise MaterialInputError(f"{owner} works in stress state {ok}, not {state.value!r}")
    return state

#: trial yield functions below this fraction of the yield stress count as elastic (round-off band)
YIELD_TOLERANCE = 1e-10
