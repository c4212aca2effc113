"""Training data: strain (or parameter) paths and the stress paths a reference model gives for them.

Generators (``generate(settings)``), the paper's three benchmarks as the authors coded them
(GitHub ahenkes1/HENKES_SNN, ``src/dataset.py``; science notes §3) and random 3D / plane-strain walks:

* ``elasticity``: strain = linspace(0, e_max, T) with e_max ~ U(0, max_strain) (the code draws
  U(0, 0.01); the text says [0, 0.001]); stress = E strain.
* ``ramberg_osgood``: input sigma_y ~ U(100, 500) (the only input, repeated at every step); strain a
  fixed ramp linspace(0, 0.01, 20); stress solves e = s/E + 0.002 (s/sigma_y)^n by Newton from s = E e.
* ``isotropic_hardening``: e_max ~ U(0, 0.01); strain = linspace(0, e_max, T/2) then the same reversed
  (a triangle back to zero, the peak repeated), T = 100; stress from the 1D model (eq. 28,
  :class:`~femsnn.materials.UniaxialPlasticity`) with E = 2.1e5, sigma_y = 300, K = 2.1e3 (as coded).
* ``j2_random_walk``: Mandel strain walks (3d or plane strain) made of straight legs of random
  length in steps towards random targets: new random directions (non-proportional loading),
  partial unloading towards zero, and reversal through zero; labelled by
  :func:`~femsnn.materials.drive` with a material config (reference J2 by default).

Each split (train / val / test) draws from its own child of ``SeedSequence(seed)``, so the test paths
do not change when n_train does.

Network inputs: the Ramberg-Osgood input is sigma_y; strain-driven data give the strain (Mandel) and,
with ``increments = true``, the strain increment from the previous step as well
(:func:`strain_inputs`). Both are functions of the strain path alone, so the spiking material can
rebuild them from its history (the previous strain) at every load step.

File format (``Dataset.save`` / ``Dataset.load``): one ``.npz`` without pickles holding ``inputs``
(P, T, n_in) in physical units, ``targets`` (P, T, n_out) stress in MPa, ``strain`` (P, T, n) Mandel,
``split`` (P,) names, and ``meta``, a JSON string: format and version, generator settings, material
description, stress state, input feature kinds and names, target names, units.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, model_validator

import femsnn
from femsnn.config import Strict
from femsnn.mandel import StressState, identity
from femsnn.materials import J2Config, MaterialConfig, UniaxialPlasticity, drive, make_material

DATASET_FORMAT = "femsnn-dataset"
DATASET_VERSION = 1
SPLITS = ("train", "val", "test")
STRAIN_FEATURES = ("strain", "strain_increment")

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


class DatasetFileError(ValueError):
    """A dataset file that cannot be used, with a message that says why."""


class _Splits(Strict):
    """Seed and number of paths per split, common to all generators."""

    seed: int = 42
    n_train: Count = 1024
    n_val: Count = 1024
    n_test: Count = 1024

    def counts(self) -> dict[str, int]:
        return {"train": self.n_train, "val": self.n_val, "test": self.n_test}


class ElasticitySettings(_Splits):
    """``generator = "elasticity"``: 1D linear elastic ramps (paper section II-B, as coded)."""

    generator: Literal["elasticity"]
    E: PositiveFloat = 2.1e5
    max_strain: PositiveFloat = 0.01
    steps: Annotated[int, Field(ge=2)] = 100
    increments: bool = False


class RambergOsgoodSettings(_Splits):
    """``generator = "ramberg_osgood"``: sigma_y as the only input, fixed strain ramp (paper III-B)."""

    generator: Literal["ramberg_osgood"]
    E: PositiveFloat = 2.1e5
    exponent: PositiveFloat = 10.0
    offset: PositiveFloat = 0.002
    yield_stress_min: PositiveFloat = 100.0
    yield_stress_max: PositiveFloat = 500.0
    max_strain: PositiveFloat = 0.01
    steps: Annotated[int, Field(ge=2)] = 20

    @model_validator(mode="after")
    def _range(self) -> RambergOsgoodSettings:
        if self.yield_stress_max < self.yield_stress_min:
            raise ValueError("yield_stress_max must not be below yield_stress_min")
        return self


class IsotropicHardeningSettings(_Splits):
    """``generator = "isotropic_hardening"``: load/unload triangles through the 1D model (paper IV-B)."""

    generator: Literal["isotropic_hardening"]
    n_train: Count = 10240
    E: PositiveFloat = 2.1e5
    sigma_y: PositiveFloat = 300.0
    hardening_modulus: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 2.1e3
    max_strain: PositiveFloat = 0.01
    steps: Annotated[int, Field(ge=2, multiple_of=2)] = 100
    increments: bool = False


class J2RandomWalkSettings(_Splits):
    """``generator = "j2_random_walk"``: random non-proportional strain walks labelled by a material."""

    generator: Literal["j2_random_walk"]
    stress_state: Literal["3d", "plane_strain"] = "3d"
    material: MaterialConfig = Field(
        default_factory=lambda: J2Config(type="j2", E=2.1e5, nu=0.3, sigma_y=300.0, H_iso=2.1e3)
    )
    steps: Annotated[int, Field(ge=2)] = 100
    max_strain: PositiveFloat = 0.01
    leg_steps_min: Count = 5
    leg_steps_max: Count = 40
    unload_probability: Annotated[float, Field(ge=0, le=1)] = 0.2
    reverse_probability: Annotated[float, Field(ge=0, le=1)] = 0.3
    volumetric_scale: Annotated[float, Field(ge=0, le=1)] = 0.25
    increments: bool = False

    @model_validator(mode="after")
    def _ranges(self) -> J2RandomWalkSettings:
        if self.leg_steps_max < self.leg_steps_min:
            raise ValueError("leg_steps_max must not be below leg_steps_min")
        if self.unload_probability + self.reverse_probability > 1:
            raise ValueError("unload_probability + reverse_probability must not exceed 1")
        return self


GeneratorSettings = Annotated[
    Union[ElasticitySettings, RambergOsgoodSettings, IsotropicHardeningSettings, J2RandomWalkSettings],
    Field(discriminator="generator"),
]


@dataclass(frozen=True)
class Dataset:
    """Paths of all splits: inputs (P, T, n_in), stress targets (P, T, n_out) MPa, strain (P, T, n), split (P,)."""

    inputs: np.ndarray
    targets: np.ndarray
    strain: np.ndarray
    split: np.ndarray
    meta: dict

    def __post_init__(self) -> None:
        check_arrays(self.inputs, self.targets, self.strain, self.split, self.meta)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def input_features(self) -> tuple[str, ...]:
        return tuple(self.meta["input_features"])

    @property
    def stress_state(self) -> str:
        return self.meta["stress_state"]

    def part(self, name: str) -> Dataset:
        """The paths of one split (an error if there are none)."""
        mask = self.split == name
        if not mask.any():
            raise DatasetFileError(f"dataset has no paths in split {name!r} (has: {sorted(set(self.split.tolist()))})")
        return Dataset(self.inputs[mask], self.targets[mask], self.strain[mask], self.split[mask], self.meta)

    def inputs_for(self, features: tuple[str, ...] | list[str]) -> np.ndarray:
        """Inputs with the given feature kinds: stored ones, or rebuilt from the strain if strain-derived."""
        features = tuple(features)
        if features == self.input_features:
            return self.inputs
        if features in (STRAIN_FEATURES[:1], STRAIN_FEATURES):
            return strain_inputs(self.strain, increments=len(features) == 2)
        raise DatasetFileError(f"dataset provides inputs {list(self.input_features)}, the model needs {list(features)}")

    def save(self, path: str | Path) -> Path:
        """Write the dataset as one compressed .npz (no pickles)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez_compressed(
                f,
                inputs=self.inputs,
                targets=self.targets,
                strain=self.strain,
                split=self.split.astype("U5"),
                meta=np.array(json.dumps(self.meta)),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Read a dataset file; DatasetFileError says what is wrong with a foreign or damaged file."""
        path = Path(path)
        if not path.is_file():
            raise DatasetFileError(f"dataset file not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in ("inputs", "targets", "strain", "split", "meta") if k in npz.files}
        except Exception as exc:  # numpy raises many types for damaged zips
            raise DatasetFileError(f"{path}: not a readable .npz dataset ({exc})") from exc
        missing = {"inputs", "targets", "strain", "split", "meta"} - set(arrays)
        if missing:
            raise DatasetFileError(f"{path}: not a femsnn dataset (missing {sorted(missing)})")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise DatasetFileError(f"{path}: dataset metadata is not valid JSON ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != DATASET_FORMAT:
            raise DatasetFileError(f"{path}: not a femsnn dataset (format marker missing)")
        if meta.get("version") != DATASET_VERSION:
            raise DatasetFileError(f"{path}: dataset format version {meta.get('version')}, this femsnn reads {DATASET_VERSION}")
        try:
            return cls(arrays["inputs"], arrays["targets"], arrays["strain"], arrays["split"], meta)
        except ValueError as exc:
            raise DatasetFileError(f"{path}: {exc}") from exc


def check_arrays(inputs: np.ndarray, targets: np.ndarray, strain: np.ndarray, split: np.ndarray, meta: dict) -> None:
    """Consistent shapes, finite values, known split names and matching metadata, else DatasetFileError."""
    for name, arr in (("inputs", inputs), ("targets", targets), ("strain", strain)):
        if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.floating):
            raise DatasetFileError(f"dataset '{name}' must be a float array (paths, steps, components), got {arr.dtype} {arr.shape}")
        if arr.shape[:2] != inputs.shape[:2]:
            raise DatasetFileError(f"dataset '{name}' has {arr.shape[:2]} paths x steps, inputs have {inputs.shape[:2]}")
        if not np.all(np.isfinite(arr)):
            raise DatasetFileError(f"dataset '{name}' contains NaN or inf")
    if split.shape != (inputs.shape[0],) or not set(split.tolist()) <= set(SPLITS):
        raise DatasetFileError(f"dataset 'split' must name one of {SPLITS} per path")
    for key, n in (("input_names", inputs.shape[2]), ("target_names", targets.shape[2])):
        if len(meta.get(key, ())) != n:
            raise DatasetFileError(f"dataset metadata '{key}' must name {n} components")
    if "input_features" not in meta or "stress_state" not in meta:
        raise DatasetFileError("dataset metadata lacks 'input_features' or 'stress_state'")


def strain_step_inputs(strain: np.ndarray, previous_strain: np.ndarray, increments: bool) -> np.ndarray:
    """Network inputs of one step, (..., n) strain -> (..., n) or (..., 2n) [strain, strain - previous]."""
    if not increments:
        return np.asarray(strain)
    return np.concatenate([strain, np.asarray(strain) - previous_strain], axis=-1)


def previous_strain(strain: np.ndarray) -> np.ndarray:
    """The strain before each step of whole paths (P, T, n): zero (rest) before step 0."""
    return np.concatenate([np.zeros_like(strain[:, :1]), strain[:, :-1]], axis=1)


def strain_inputs(strain: np.ndarray, increments: bool) -> np.ndarray:
    """Network inputs of whole paths (P, T, n); the strain before step 0 is zero (rest)."""
    return strain_step_inputs(strain, previous_strain(strain), increments)


def hold_to_length(data: Dataset, steps: int) -> Dataset:
    """Paths extended to ``steps`` steps by holding their last strain, stress and (non-strain) inputs.

    Only valid for rate-independent materials, whose stress stays put while the strain does (J2, elastic);
    strain-derived inputs are rebuilt, so a held step has a zero strain increment.
    """
    extra = steps - data.inputs.shape[1]
    if extra < 0:
        raise ValueError(f"cannot hold paths of {data.inputs.shape[1]} steps to a shorter length {steps}")
    if extra == 0:
        return data
    strain, targets, inputs = (np.pad(a, ((0, 0), (0, extra), (0, 0)), mode="edge") for a in (data.strain, data.targets, data.inputs))
    if data.input_features in (STRAIN_FEATURES[:1], STRAIN_FEATURES):
        inputs = strain_inputs(strain, increments=len(data.input_features) == 2)
    return Dataset(inputs, targets, strain, data.split, data.meta)


def concatenate(parts: list[Dataset], meta: dict) -> Dataset:
    """The paths of several datasets of the same material and features, shorter paths held (hold_to_length)."""
    keys = ("stress_state", "input_features", "input_names", "target_names", "material")
    for part in parts[1:]:
        differing = [k for k in keys if part.meta.get(k) != parts[0].meta.get(k)]
        if differing:
            raise DatasetFileError(f"cannot mix datasets that differ in {differing}: {[part.meta.get(k) for k in differing]} "
                                   f"vs {[parts[0].meta.get(k) for k in differing]}")
    steps = max(part.inputs.shape[1] for part in parts)
    held = [hold_to_length(part, steps) for part in parts]
    inputs, targets, strain, split = (np.concatenate([getattr(h, k) for h in held]) for k in ("inputs", "targets", "strain", "split"))
    return Dataset(inputs, targets, strain, split, meta)


def generate(settings: GeneratorSettings) -> Dataset:
    """Generate all splits of a dataset from its settings (deterministic in settings.seed)."""
    rngs = dict(zip(SPLITS, (np.random.default_rng(s) for s in np.random.SeedSequence(settings.seed).spawn(3))))
    parts = [_GENERATORS[settings.generator](settings, rngs[name], n) for name, n in settings.counts().items()]
    inputs, targets, strain = (np.concatenate([p[i] for p in parts]) for i in range(3))
    split = np.concatenate([np.full(n, name, dtype="U5") for name, n in settings.counts().items()])
    return Dataset(inputs, targets, strain, split, _meta(settings))


def _elasticity(s: ElasticitySettings, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    max_strain = rng.uniform(0.0, s.max_strain, n)
    strain = (max_strain[:, None] * np.linspace(0.0, 1.0, s.steps))[..., None]
    return strain_inputs(strain, s.increments), s.E * strain, strain


def _ramberg_osgood(s: RambergOsgoodSettings, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    yield_stress = rng.uniform(s.yield_stress_min, s.yield_stress_max, n)
    strain = np.broadcast_to(np.linspace(0.0, s.max_strain, s.steps), (n, s.steps))
    stress = ramberg_osgood_stress(strain, yield_stress[:, None], s.E, s.exponent, s.offset)
    inputs = np.broadcast_to(yield_stress[:, None, None], (n, s.steps, 1)).copy()
    return inputs, stress[..., None], strain[..., None].copy()


def _isotropic_hardening(s: IsotropicHardeningSettings, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    max_strain = rng.uniform(0.0, s.max_strain, n)
    load = max_strain[:, None] * np.linspace(0.0, 1.0, s.steps // 2)
    strain = np.concatenate([load, load[:, ::-1]], axis=1)[..., None]
    stress = drive(_uniaxial_material(s), strain, keep_history=False).stress
    return strain_inputs(strain, s.increments), stress, strain


def _j2_random_walk(s: J2RandomWalkSettings, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    size = StressState(s.stress_state).size
    free = np.array([0, 1, 2, 3, 4, 5] if size == 6 else [0, 1, 3])
    iso = identity(size)[free] / np.linalg.norm(identity(size)[free])
    strain = np.zeros((n, s.steps, size))
    for path in strain:
        path[:, free] = _walk(s, rng, len(free), iso)
    stress = drive(make_material(s.material, s.stress_state), strain, keep_history=False).stress
    return strain_inputs(strain, s.increments), stress, strain


def _walk(s: J2RandomWalkSettings, rng: np.random.Generator, dim: int, iso: np.ndarray) -> np.ndarray:
    """One path (steps, dim) of straight legs: random targets, partial unloading, or reversal."""
    out = np.empty((s.steps, dim))
    current = np.zeros(dim)
    t = 0
    while t < s.steps:
        u = rng.random()
        norm = np.linalg.norm(current)
        if t > 0 and norm > 0 and u < s.unload_probability:
            target = current * rng.random()
        elif t > 0 and norm > 0 and u < s.unload_probability + s.reverse_probability:
            target = -current / norm * s.max_strain * rng.random()
        else:
            direction = rng.standard_normal(dim)
            direction -= (1.0 - s.volumetric_scale) * (direction @ iso) * iso
            target = direction / np.linalg.norm(direction) * s.max_strain * rng.random()
        k = int(rng.integers(s.leg_steps_min, s.leg_steps_max + 1))
        steps = min(k, s.steps - t)
        out[t : t + steps] = current + np.outer(np.arange(1, steps + 1) / k, target - current)
        current = out[t + steps - 1]
        t += steps
    return out


def ramberg_osgood_stress(
    strain: np.ndarray, yield_stress: np.ndarray, E: float, exponent: float, offset: float = 0.002, tol: float = 1e-12
) -> np.ndarray:
    """Solve e = s/E + offset (s/sigma_y)^n for s >= 0 by Newton from s = E e (the authors' start), vectorised."""
    strain, yield_stress = np.broadcast_arrays(np.asarray(strain, float), np.asarray(yield_stress, float))
    if np.any(strain < 0):
        raise ValueError("the Ramberg-Osgood generator needs non-negative strain")
    stress = E * strain
    for _ in range(200):
        ratio = stress / yield_stress
        residual = strain - stress / E - offset * ratio**exponent
        if np.all(np.abs(residual) <= tol * np.maximum(strain, 1e-300)):
            return stress
        slope = -1.0 / E - offset * exponent / yield_stress * ratio ** (exponent - 1)
        stress = stress - residual / slope
    raise RuntimeError("Ramberg-Osgood Newton iteration did not converge in 200 iterations")


def _uniaxial_material(s: IsotropicHardeningSettings) -> UniaxialPlasticity:
    return UniaxialPlasticity(E=s.E, sigma_y=s.sigma_y, K_iso=s.hardening_modulus)


def _material_description(settings: GeneratorSettings) -> dict:
    """What labelled the data, for provenance."""
    if isinstance(settings, IsotropicHardeningSettings):
        return _uniaxial_material(settings).describe()
    if isinstance(settings, J2RandomWalkSettings):
        return make_material(settings.material, settings.stress_state).describe()
    if isinstance(settings, RambergOsgoodSettings):
        return {"type": "RambergOsgood", "stress_state": "uniaxial_stress", "E": settings.E,
                "exponent": settings.exponent, "offset": settings.offset}
    return {"type": "LinearElastic1D", "stress_state": "uniaxial_stress", "E": settings.E}


def _meta(settings: GeneratorSettings) -> dict:
    """Dataset metadata: provenance and the names of every input and target component."""
    state = StressState(getattr(settings, "stress_state", "uniaxial_stress"))
    comps = state.component_names
    if isinstance(settings, RambergOsgoodSettings):
        features, names = ["yield_stress"], ["yield_stress"]
    else:
        features = list(STRAIN_FEATURES[: 2 if settings.increments else 1])
        names = [f"{f}_{c}" for f in features for c in comps]
    return {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "generator": settings.model_dump(mode="json"),
        "material": _material_description(settings),
        "stress_state": state.value,
        "input_features": features,
        "input_names": names,
        "target_names": [f"stress_{c}" for c in comps],
        "units": {"stress": "MPa", "strain": "mandel"},
        "femsnn_version": femsnn.__version__,
    }


_GENERATORS = {
    "elasticity": _elasticity,
    "ramberg_osgood": _ramberg_osgood,
    "isotropic_hardening": _isotropic_hardening,
    "j2_random_walk": _j2_random_walk,
}
