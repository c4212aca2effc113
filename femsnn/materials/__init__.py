"""Materials behind the femsnn user-material hook (no dolfinx in here)."""

from femsnn.materials.base import Material, MaterialInputError, MaterialResponse
from femsnn.materials.driver import DriveResult, drive

__all__ = ["DriveResult", "Material", "MaterialInputError", "MaterialResponse", "drive"]
