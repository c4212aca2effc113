"""A trained regressor network (spiking or LSTM) as a batched user material.

ANALYSIS_PLACEHOLDER
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import TypeAdapter
from torch import Tensor

from femsnn.mandel import StressState
from femsnn.materials.base import History, Material, MaterialInputError, MaterialResponse
from femsnn.materials.elastic import elastic_stiffness
from femsnn.materials.tangents import (
    MIN_STIFFNESS_RATIO,
    TANGENT_STRATEGIES,
    TangentStrategy,
    bounded_tangent,
    check_ratio,
    secant_tangent,
)
from femsnn.snn.base import Regressor, State
from femsnn.train.artifact import Artifact, load_model
from femsnn.train.data import STRAIN_FEATURES, GeneratorSettings, generate, strain_step_inputs

#: strain perturbations (relative to the median strain increment) probed by stress_resolution
RESOLUTION_PERTURBATIONS = (1e-6, 1e-5, 1e-4, 1e-3)


@dataclass(frozen=True)
class StressResolution:
    """How the stress responds to small changes of the current strain, probed on material-point paths.

    Per perturbation size h (relative to the median strain increment of the probe paths): the share of
    probes whose stress moved at all, and the median / 95th percentile / largest stress change (MPa)
    among those that moved. ``resolution`` is that 95th percentile at the smallest h that moved any
    stress: residuals of equilibrium cannot be expected to fall below what such a stress change
    produces. ``sensitivity`` is the median |Δσ| / |Δε| of the moved probes (MPa), to compare with E.
    """

    perturbations: tuple[float, ...]
    typical_increment: float
    moved_fraction: tuple[float, ...]
    change_median: tuple[float, ...]
    change_p95: tuple[float, ...]
    change_max: tuple[float, ...]
    sensitivity: tuple[float, ...]
    stress_scale: float
    resolution: float


class SpikingMaterial(Material):
    """The stress of N points from one batched network step per call; the network's state is the history.

    model: a model file written by :func:`femsnn.train.artifact.save_model`, or a loaded
    ``(net, artifact)`` pair (the network is copied, never changed). stress_state: the one the caller
    works in (None: the model's); a model trained for another is refused, as are other units or strain
    conventions and inputs that are not strain features. device / dtype: where and in which precision
    the network runs (dtype None: the model's); strain, stress, tangent and history are float64 numpy.
    tangent: ``surrogate`` | ``elastic`` | ``secant`` | ``bounded`` (module docstring). min_ratio: the
    lower stiffness bound of ``secant`` and ``bounded`` relative to the elastic stiffness.
    """

    def __init__(
        self,
        model: str | Path | tuple[Regressor, Artifact],
        stress_state: str | StressState | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        tangent: TangentStrategy = "surrogate",
        units: str = "MPa",
        min_ratio: float = MIN_STIFFNESS_RATIO,
    ) -> None:
        self.device = torch.device(device)
        if isinstance(model, tuple):
            net, self.artifact = model
            self.model_path = None
        else:
            self.model_path = Path(model)
            net, self.artifact = load_model(self.model_path, self.device)
        art = self.artifact
        self.stress_state = StressState(art.stress_state if stress_state is None else stress_state)
        art.check_stress_state(self.stress_state.value)
        check_conventions(art, units)
        self.dtype = _torch_dtype(art.dtype if dtype is None else dtype)
        self.net = copy.deepcopy(net).to(device=self.device, dtype=self.dtype).eval().requires_grad_(False)
        self.units = units
        self.increments = art.input_features == STRAIN_FEATURES
        n = self.size
        if (self.net.n_inputs, self.net.n_outputs) != (len(art.input_features) * n, n):
            raise MaterialInputError(
                f"network maps {self.net.n_inputs} -> {self.net.n_outputs} components, a {self.stress_state.value} material "
                f"with inputs {list(art.input_features)} needs {len(art.input_features) * n} -> {n}"
            )
        if tangent not in TANGENT_STRATEGIES:
            raise MaterialInputError(f"tangent must be one of {TANGENT_STRATEGIES}, got {tangent!r}")
        self.tangent = tangent
        self.min_ratio = check_ratio(min_ratio)
        self.elastic_tangent = trained_elastic_stiffness(art, n)
        if self.elastic_tangent is None and tangent != "surrogate":
            raise MaterialInputError(
                f"tangent {tangent!r} needs the elastic constants of the material the model was trained for; "
                f"the model file describes {art.material or 'no material'}"
            )
        norm = art.normalisation
        # d (standardised inputs) / d strain, exact because the inputs are linear in the strain
        unit_inputs = strain_step_inputs(np.eye(n), np.zeros(n), self.increments)
        self._input_jacobian = (unit_inputs / norm.input_std).T  # (n_inputs, n)
        self._history_spec = {"strain": (n,), "stress": (n,), **self.net.state_spec}

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        """``strain`` and ``stress`` at the end of the step, then the network's state (membranes, cells)."""
        return dict(self._history_spec)

    def describe(self) -> dict:
        """Type, stress state, model file, network, tangent strategy and the material the model learned."""
        return {
            **super().describe(),
            "model": None if self.model_path is None else str(self.model_path),
            "network": self.artifact.spec,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "tangent": self.tangent,
            "input_features": list(self.artifact.input_features),
            "trained_for": self.artifact.material,
        }

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        strain = np.asarray(strain, dtype=np.float64)
        norm = self.artifact.normalisation
        inputs = norm.encode_inputs(strain_step_inputs(strain, np.asarray(history["strain"], np.float64), self.increments))
        x = self._to_torch(inputs)
        state = {k: self._to_torch(history[k]) for k in self.net.state_spec}
        want_derivative = tangent and self.tangent in ("surrogate", "bounded")
        if want_derivative:
            y, new_state, output_jacobian = self._step_with_jacobian(x, state)
        else:
            with torch.no_grad():
                y, new_state = self.net.step(x, state)
        stress = norm.decode_targets(self._to_numpy(y))
        trial = {"strain": strain.copy(), "stress": stress, **{k: self._to_numpy(v) for k, v in new_state.items()}}
        tangents = None
        if want_derivative:
            # d stress / d strain = diag(target std) . d y / d x_std . d x_std / d strain
            tangents = norm.target_std[:, None] * (self._to_numpy(output_jacobian) @ self._input_jacobian)
            if self.tangent == "bounded":
                tangents = bounded_tangent(self.elastic_tangent, tangents, self.min_ratio)
        elif tangent and self.tangent == "elastic":
            tangents = np.broadcast_to(self.elastic_tangent, (strain.shape[0], self.size, self.size)).copy()
        elif tangent:
            committed_stress = np.asarray(history["stress"], np.float64)
            tangents = secant_tangent(
                self.elastic_tangent, strain - history["strain"], stress - committed_stress, self.min_ratio
            )
        return MaterialResponse(stress=stress, tangent=tangents, history=trial)

    def _step_with_jacobian(self, x: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """One step and d y / d x (B, n_outputs, n_inputs) by one reverse pass per output component.

        Points do not interact, so the gradient of an output summed over the batch is every point's own
        row; this was faster than vmap(jacrev) or forward-mode jvp over the inputs (module docstring).
        """
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            y, new_state = self.net.step(x, state)
            n_out = y.shape[1]
            rows = [
                torch.autograd.grad(y[:, k].sum(), x, retain_graph=k + 1 < n_out, materialize_grads=True)[0]
                for k in range(n_out)
            ]
        return y.detach(), {k: v.detach() for k, v in new_state.items()}, torch.stack(rows, dim=1)

    def _to_torch(self, array: np.ndarray) -> Tensor:
        """float64 numpy -> the network's device and dtype; shares memory when that is CPU float64."""
        array = np.asarray(array, dtype=np.float64)
        if self.dtype == torch.float64 and self.device.type == "cpu" and array.flags.writeable:
            return torch.from_numpy(array)
        return torch.tensor(array, dtype=self.dtype, device=self.device)

    def _to_numpy(self, tensor: Tensor) -> np.ndarray:
        """A network tensor as float64 numpy (no copy for CPU float64)."""
        return tensor.detach().cpu().to(torch.float64).numpy()

    def stress_resolution(
        self,
        strain_paths: np.ndarray | None = None,
        perturbations: tuple[float, ...] = RESOLUTION_PERTURBATIONS,
        n_paths: int = 32,
        seed: int = 0,
    ) -> StressResolution:
        """Probe how the stress follows small strain changes along paths (P, T, n) from rest.

        At every step, each path's strain is also evaluated moved by h times the median strain increment
        in a random direction (within the components the paths use), from the same committed state.
        Without strain_paths, the first n_paths validation paths of the model's own data generator.
        """
        paths = self.validation_paths(n_paths) if strain_paths is None else np.asarray(strain_paths, dtype=np.float64)
        if paths.ndim != 3 or paths.shape[2] != self.size:
            raise MaterialInputError(f"strain_paths must have shape (paths, steps, {self.size}), got {paths.shape}")
        n_paths, n_steps, n = paths.shape
        steps = np.linalg.norm(np.diff(paths, axis=1, prepend=0.0), axis=2)
        if not np.any(steps > 0):
            raise MaterialInputError("strain_paths never move: no increment to scale the perturbations by")
        typical = float(np.median(steps[steps > 0]))
        rng = np.random.default_rng(seed)
        used = np.any(paths != 0.0, axis=(0, 1))
        directions = rng.standard_normal((len(perturbations), n_paths, n_steps, n)) * used
        directions /= np.linalg.norm(directions, axis=3, keepdims=True)
        copies = 1 + len(perturbations)
        history = self.initial_history(n_paths)
        base = np.empty((n_paths, n_steps, n))
        moved = np.empty((len(perturbations), n_paths, n_steps, n))
        for t in range(n_steps):
            shifted = [paths[:, t] + h * typical * directions[k, :, t] for k, h in enumerate(perturbations)]
            batch = np.concatenate([paths[:, t], *shifted])
            tiled = {name: np.concatenate([v] * copies) for name, v in history.items()}
            response = self.update(batch, tiled, tangent=False)
            stress = response.stress.reshape(copies, n_paths, n)
            base[:, t], moved[:, :, t] = stress[0], stress[1:]
            history = {name: v[:n_paths] for name, v in response.history.items()}
        change = np.linalg.norm(moved - base, axis=3).reshape(len(perturbations), -1)
        stats = [_change_stats(c, h * typical) for c, h in zip(change, perturbations)]
        fraction, median, p95, largest, sensitivity = (tuple(s[i] for s in stats) for i in range(5))
        first = next((k for k, f in enumerate(fraction) if f > 0), None)
        return StressResolution(
            perturbations=tuple(float(h) for h in perturbations),
            typical_increment=typical,
            moved_fraction=fraction,
            change_median=median,
            change_p95=p95,
            change_max=largest,
            sensitivity=sensitivity,
            stress_scale=float(np.median(np.linalg.norm(base, axis=2))),
            resolution=0.0 if first is None else p95[first],
        )

    def validation_paths(self, n_paths: int) -> np.ndarray:
        """The first n_paths validation strain paths (P, T, n) of the generator the model was trained with."""
        settings = (self.artifact.data or {}).get("generator")
        if not settings:
            raise MaterialInputError("the model file records no data generator; pass strain_paths")
        parsed = TypeAdapter(GeneratorSettings).validate_python({**settings, "n_train": 1, "n_val": n_paths, "n_test": 1})
        return generate(parsed).part("val").strain


def check_conventions(artifact: Artifact, units: str) -> None:
    """Refuse a model whose units, strain convention or input features the material cannot honour."""
    if artifact.units != units:
        raise MaterialInputError(f"model was trained in units {artifact.units!r}, the caller works in {units!r}")
    if artifact.strain_convention != "mandel":
        raise MaterialInputError(
            f"model was trained on {artifact.strain_convention!r} strain, femsnn materials use 'mandel' (femsnn.mandel)"
        )
    if artifact.input_features not in (STRAIN_FEATURES[:1], STRAIN_FEATURES):
        raise MaterialInputError(
            f"model reads inputs {list(artifact.input_features)}; a material can only feed {list(STRAIN_FEATURES)}"
        )


def trained_elastic_stiffness(artifact: Artifact, size: int) -> np.ndarray | None:
    """Elastic stiffness (size, size) of the material the model was trained for, None if its E (and nu) are unknown."""
    material = artifact.material or {}
    if "E" not in material or (size > 1 and "nu" not in material):
        return None
    return elastic_stiffness(material["E"], material.get("nu", 0.0), size)


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """torch.float32 / torch.float64 from a dtype or its name; MaterialInputError otherwise."""
    value = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if value not in (torch.float32, torch.float64):
        raise MaterialInputError(f"dtype must be float32 or float64, got {dtype!r}")
    return value


def _change_stats(change: np.ndarray, size: float) -> tuple[float, float, float, float, float]:
    """Moved fraction, median, 95th percentile, max of the non-zero changes, and median change / size."""
    nonzero = change[change > 0]
    if nonzero.size == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    return (
        nonzero.size / change.size,
        float(np.median(nonzero)),
        float(np.percentile(nonzero, 95)),
        float(nonzero.max()),
        float(np.median(nonzero) / size),
    )
