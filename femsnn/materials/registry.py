"""Material sections of the TOML configs: one strict schema per material type, and the factory.

A config names its material by ``type``; adding a material type means writing its schema (with a
``build`` method) and appending it to ``MATERIAL_SCHEMAS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Union, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from femsnn.config import ConfigError, Strict, parse_config
from femsnn.mandel import StressState
from femsnn.materials.base import Material
from femsnn.materials.elastic import LinearElastic
from femsnn.materials.j2 import J2Plasticity
from femsnn.materials.tangents import MIN_STIFFNESS_RATIO, TangentStrategy
from femsnn.materials.uniaxial import UniaxialPlasticity

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Modulus = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PoissonRatio = Annotated[float, Field(gt=-1, lt=0.5)]


class J2Config(Strict):
    """``type = "j2"``: von Mises plasticity with linear isotropic and kinematic hardening (MPa)."""

    type: Literal["j2"] = "j2"
    E: PositiveFloat
    nu: PoissonRatio
    sigma_y: PositiveFloat
    H_iso: Modulus = 0.0
    H_kin: Modulus = 0.0

    def build(self, stress_state: str | StressState) -> Material:
        return J2Plasticity(self.E, self.nu, self.sigma_y, self.H_iso, self.H_kin, stress_state=stress_state)


class UniaxialConfig(Strict):
    """``type = "uniaxial"``: the paper's 1D model (eq. 28) with isotropic and kinematic hardening."""

    type: Literal["uniaxial"] = "uniaxial"
    E: PositiveFloat
    sigma_y: PositiveFloat
    K_iso: Modulus = 0.0
    K_kin: Modulus = 0.0

    def build(self, stress_state: str | StressState) -> Material:
        return UniaxialPlasticity(self.E, self.sigma_y, self.K_iso, self.K_kin, stress_state=stress_state)


class ElasticConfig(Strict):
    """``type = "elastic"``: isotropic linear elasticity."""

    type: Literal["elastic"] = "elastic"
    E: PositiveFloat
    nu: PoissonRatio

    def build(self, stress_state: str | StressState) -> Material:
        return LinearElastic(self.E, self.nu, stress_state=stress_state)


#: who runs the network of a spiking material: torch, or Lava (femsnn.loihi.backend) in one of its backends
SpikingBackend = Literal["torch", "lava-sim-float", "lava-sim-fixed", "lava-hw", "lava-auto"]


class SpikingConfig(Strict):
    """``type = "spiking"``: a trained network from its model file (a relative path is relative to the config file).

    ``backend = "lava-..."`` runs the network in a Lava worker (CPU, float64 history, no derivative, so the
    tangent must be ``elastic`` or ``secant``). ``history_dtype`` (default: the network's dtype) and
    ``chunk_size`` (points per network call) and ``rotations`` (the mean over K frames turned about z) as
    :class:`~femsnn.materials.spiking.SpikingMaterial`.
    """

    type: Literal["spiking"] = "spiking"
    model: Path
    device: Annotated[str, Field(pattern=r"^(cpu|cuda(:[0-9]+)?)$")] = "cpu"
    dtype: Literal["float32", "float64"] | None = None
    tangent: TangentStrategy = "elastic"
    min_ratio: Annotated[float, Field(gt=0, le=1)] = MIN_STIFFNESS_RATIO
    backend: SpikingBackend = "torch"
    history_dtype: Literal["float32", "float64"] | None = None
    chunk_size: Annotated[int, Field(ge=1)] | None = None  # None: the material's default
    rotations: Annotated[int, Field(ge=1, strict=True)] = 1

    @model_validator(mode="after")
    def _lava_options(self) -> SpikingConfig:
        if self.backend != "torch" and self.tangent not in ("elastic", "secant"):
            raise ValueError(f"backend {self.backend!r} gives no derivative: tangent must be 'elastic' or 'secant', got {self.tangent!r}")
        if self.backend != "torch" and (
            self.device != "cpu" or self.dtype not in (None, "float64") or self.history_dtype not in (None, "float64")
        ):
            raise ValueError(f"backend {self.backend!r} runs on the CPU in float64: leave device, dtype and history_dtype unset")
        if self.backend != "torch" and self.rotations != 1:
            raise ValueError(f"backend {self.backend!r} runs one network per point: rotations must be 1, got {self.rotations}")
        return self

    @field_validator("model")
    @classmethod
    def _relative_to_config(cls, path: Path, info: ValidationInfo) -> Path:
        base = (info.context or {}).get("base_dir")
        return path if path.is_absolute() or base is None else Path(base) / path

    def build(self, stress_state: str | StressState) -> Material:
        if self.backend != "torch":
            from femsnn.loihi.backend import LavaSpikingMaterial  # the Lava worker starts only when asked for

            backend = self.backend.removeprefix("lava-")
            return LavaSpikingMaterial(self.model, stress_state, backend=backend, tangent=self.tangent, min_ratio=self.min_ratio)
        from femsnn.materials.spiking import SpikingMaterial  # torch and the model code load only when used

        return SpikingMaterial(
            self.model,
            stress_state,
            device=self.device,
            dtype=self.dtype,
            tangent=self.tangent,
            min_ratio=self.min_ratio,
            history_dtype=self.history_dtype,
            rotations=self.rotations,
            **({} if self.chunk_size is None else {"chunk_size": self.chunk_size}),
        )


#: every material type a config may name; append a schema here to add one
MATERIAL_SCHEMAS = (J2Config, UniaxialConfig, ElasticConfig, SpikingConfig)

#: field type for a material section inside a bigger config (pydantic picks the schema by ``type``)
MaterialConfig = Annotated[Union[MATERIAL_SCHEMAS], Field(discriminator="type")]


def material_types() -> dict[str, type[Strict]]:
    """The ``type`` names a material config may use, with their schemas."""
    return {get_args(schema.model_fields["type"].annotation)[0]: schema for schema in MATERIAL_SCHEMAS}


def parse_material_config(data: Mapping, base_dir: Path | None = None) -> MaterialConfig:
    """Validate a material section (a dict with ``type``); ConfigError names the bad keys or the known types.

    base_dir: the folder relative file names (a spiking material's model) are taken from (default: cwd).
    """
    types = material_types()
    kind = data.get("type")
    if kind not in types:
        known = ", ".join(repr(t) for t in types)
        what = "no material type given" if kind is None else f"unknown material type {kind!r}"
        raise ConfigError(f"material: {what}; known types: {known}")
    return parse_config(dict(data), types[kind], source="material", base_dir=base_dir)


#: the class names Material.describe() records, with the config schema that builds each again
_DESCRIBED = {"J2Plasticity": J2Config, "UniaxialPlasticity": UniaxialConfig, "LinearElastic": ElasticConfig}


def config_from_description(description: Mapping) -> dict:
    """The config section (a dict with ``type``) of a material from its :meth:`Material.describe` record, e.g. the
    material a dataset's meta names; ConfigError for a material that cannot be rebuilt from its record."""
    schema = _DESCRIBED.get(description.get("type"))
    if schema is None:
        raise ConfigError(f"material {description.get('type')!r} cannot be rebuilt from its description; "
                          f"these can: {', '.join(_DESCRIBED)}")
    kind = schema.model_fields["type"].default
    return {"type": kind, **{k: description[k] for k in schema.model_fields if k != "type" and k in description}}


def make_material(config: MaterialConfig | Mapping, stress_state: str | StressState) -> Material:
    """Build the material a config describes, for the given stress state (a dict is validated first)."""
    if isinstance(config, Mapping):
        config = parse_material_config(config)
    return config.build(stress_state)
