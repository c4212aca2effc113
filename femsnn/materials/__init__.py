"""Materials behind the femsnn user-material hook (no dolfinx in here)."""

from femsnn.materials.base import Material, MaterialInputError, MaterialResponse
from femsnn.materials.driver import DriveResult, drive
from femsnn.materials.elastic import LinearElastic, elastic_stiffness, lame_moduli
from femsnn.materials.j2 import J2Plasticity
from femsnn.materials.registry import (
    MATERIAL_SCHEMAS,
    ElasticConfig,
    J2Config,
    MaterialConfig,
    SpikingConfig,
    UniaxialConfig,
    config_from_description,
    make_material,
    material_types,
    parse_material_config,
)
from femsnn.materials.uniaxial import UniaxialPlasticity

__all__ = [
    "MATERIAL_SCHEMAS",
    "DriveResult",
    "ElasticConfig",
    "J2Config",
    "J2Plasticity",
    "LinearElastic",
    "Material",
    "MaterialConfig",
    "MaterialInputError",
    "MaterialResponse",
    "SpikingConfig",
    "UniaxialConfig",
    "UniaxialPlasticity",
    "config_from_description",
    "drive",
    "elastic_stiffness",
    "lame_moduli",
    "make_material",
    "material_types",
    "parse_material_config",
]
