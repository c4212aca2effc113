"""A trained regressor network (spiking or LSTM) as a batched user material.

One call steps all N points through the network at once (torch, CPU or CUDA, float32 or float64):

    inputs    = encode_inputs(strain_step_inputs(strain, committed strain))   (model's normalisation)
    y, state  = net.step(inputs, committed network state)                      (pure: nothing is mutated)
    stress    = decode_targets(y)

History per point (in ``history_dtype``, by default the network's): ``strain`` and ``stress`` at the end of the step (the increment input and
the secant tangent read them), then the network's ``state_spec`` (``layer{i}.membrane``, ``layer{i}.cell``,
``decoder.membrane1``, ``decoder.membrane2``). The network's time step is the load step; dt is not an
input (the model knows only the increments of its training data; science notes §4).
A network with a skip connection (``skip = true``) adds a linear map of the standardised inputs to its
vote; it has no state, and the surrogate tangent contains its (constant) derivative exactly.

``rotations = K`` > 1 makes the material objective under rotations about z by multiples of pi / K (and
closer to isotropic in between): the network steps K copies of every point, each seeing the strain history
in a frame turned by pi k / K, and the stress is the mean of their stresses turned back (likewise the
tangent). Each copy's state is history (network state shapes (K, ...)), so memory and cost grow K times.
A network is isotropic only as far as its data taught it: the cylinder's quarter model produces one sign of
in-plane shear per orientation, and its surrogate bends the cylinder's collapse into a mode that is not
axisymmetric (README, issue 4). Train such a model with rotated paths (``[training] augment =
"rotations"``) before averaging: copies in frames the data never covered are far off.

Why Newton's method struggles (science notes §4). Only the first spiking layer sees the real strain; it
passes spikes on, and the decoder reads the last layer's membrane, which sees the *current* strain only
through the spikes from below (its own recurrence reads the committed state). With two or more spiking
layers the stress is therefore piecewise constant in the current strain: d stress / d strain = 0 almost
everywhere and the stress jumps where a spike flips, so no tangent lets Newton push the residual below
the jump size. With one spiking layer (or the LSTM baseline) the decoder reads a membrane that is a
smooth function of the current strain, and the surrogate tangent is the exact derivative.

Measured (plane-strain J2 random walks of the default generator material, 50 steps, increments as
inputs, 512 training paths, 60 epochs, float32, population 8; :meth:`SpikingMaterial.stress_resolution`
on 32 validation paths, median strain increment 2.6e-4, h = perturbation / median increment):

    network                  test RMSE  jumps at h = 1e-3, 1e-2, 1e-1   jump size      |Δσ|/|Δε|     resolution
    SLSTM 3x32               95.5 MPa   0.13 %, 1.6 %, 16 %             33-36 MPa med  0 (constant)  77 MPa
    SLSTM 3x32, input also   36.2 MPa   0.06 %, 0.5 %, -                8-13 MPa       2.1e5 MPa     13 MPa
      into the last layer
    SLSTM 1x64               23.3 MPa   none                            -              2.2e5 MPa     1.1e-4 MPa

(|Δσ|/|Δε|: median smooth response, to compare with E = 2.1e5 MPa; the second row is a scratch
variant of SpikingRegressor, not in femsnn.) A spike flip moves the 3-layer network's stress by about
13 % of the median stress (271 MPa); float64 gives the same numbers. An FE residual test must accept
what a stress change of ``resolution`` at one quadrature point produces (femsnn.fem.solver turns it
into an absolute residual tolerance).

Tangent strategies (``tangent=``), compared by Newton at material points (plane-strain uniaxial stress,
s_yy = s_xy = 0 solved for e_yy, e_xy along 32 load-unload paths of 48 steps; benchmarks/
bench_spiking_material.py), as converged share and mean / max iterations per step:

* ``elastic``: the elastic stiffness of the material the model was trained for (E, nu from the model
  file). Never diverged: 1x64 at 0.01 MPa: 100 %, 5.9 / 14; 3x32: 0.5 % at 1 MPa, 54 % at 10 MPa,
  99.9 % at 50 MPa (0.7 / 9). The default.
* ``surrogate``: d stress / d strain through the network with the arctan surrogate gradient. For a
  smooth network it is the exact tangent: 1x64 at 0.01 MPa: 100 %, 2.2 / 3 (J2 with its consistent
  tangent: 1.4 / 3); its in-plane block is within 17 % of J2's (median), SPD everywhere. For 3x32 it is
  far too soft (median norm 0.15 of J2's) and Newton diverges: 6.5 % converged even at 50 MPa. With
  the input also fed to the last layer: 96.5 % at 0.01 MPa, 2.5 / 5 (elastic: 96.9 %, 6.6 / 13); the
  rest is stopped by its rare jumps.
* ``secant``: the chord over the step from the committed state (:func:`~femsnn.materials.tangents.secant_tangent`),
  elastic at a zero increment: 1x64: 100 %, 5.0 / 13; 3x32: 39 % at 10 MPa, 99.9 % at 50 MPa.
* ``bounded``: the surrogate tangent with its symmetric part bounded between min_ratio·C_e and 2 C_e,
  skew part kept (:func:`~femsnn.materials.tangents.bounded_tangent`; the measurements below were of an
  earlier version, symmetrised and bounded by C_e): 1x64: 100 %, 2.7 / 4; 3x32: 89 % at 50 MPa.
  The shipped cylinder surrogate (SLSTM 1x128 + skip) at 0.1 MPa: surrogate 1.26 / 2, bounded 1.27 / 2,
  elastic 2.17 / 5, secant 2.07 / 4 (J2 consistent: 1.14 / 2).

With plane strain, the column of d stress / d e_zz is taken from the elastic stiffness for ``surrogate``
and ``bounded``: e_zz is zero by definition, the network never saw it move, and its derivative along it
was arbitrary (it made the symmetric part indefinite at every point and sent every point through the
eigen-decomposition of ``bounded``); the FE solve never uses that column.

The surrogate tangent takes one reverse pass per stress component through one recorded step (points do
not interact, so a batch-summed gradient is every point's own row). N = 1e4, 3x64 SLSTM, float32, one
thread: step 131 ms; 4 reverse passes 454 ms; ``is_grads_batched`` 819 ms; ``vmap(jacrev)`` 1273 ms,
``vmap(jvp)`` 1092 ms (with a functorch-ready copy of the spike function). Without a derivative the
network takes its inference path (``torch.inference_mode``; femsnn.snn.networks). Cost of ``update``
(CPU ms, best of 3, benchmarks/bench_spiking_material.py; random 3x64 SLSTM, population 32, plane strain with
increments, one thread, history in the network's dtype, another job busy on the second core of the machine):

    N        float32: none / surrogate / elastic / secant / bounded    float64: the same
    1e3      6 / 31 / 6 / 6 / 34                                       12 / 59 / 12 / 12 / 63
    1e4      61 / 333 / 63 / 65 / 364                                  119 / 561 / 102 / 101 / 630
    4e4      226 / 1005 / 176 / 193 / 1076                             549 / 2655 / 455 / 506 / 2839

(A one-layer network such as the shipped surrogate takes the closed-form surrogate tangent instead of autograd.)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import TypeAdapter
from torch import Tensor

from femsnn.mandel import StressState, mandel_rotation, rotation_about_z
from femsnn.materials.base import History, Material, MaterialInputError, MaterialResponse
from femsnn.materials.elastic import elastic_stiffness
from femsnn.materials.registry import config_from_description
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
RESOLUTION_PERTURBATIONS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
#: points per network call: chunks of this size keep one step's gate arrays in cache (_update_into)
DEFAULT_CHUNK_SIZE = 4096
#: a stress change counts as a jump when it exceeds this multiple of the median (smooth) response
JUMP_FACTOR = 10.0


@dataclass(frozen=True)
class StressResolution:
    """How the stress follows small changes of the current strain, probed on material-point paths.

    Per perturbation size h (relative to the median strain increment of the probe paths):
    ``sensitivity``, the median |Δσ| / |Δε| over all probes (MPa; the smooth response, compare with E;
    0 where the stress is piecewise constant); ``moved_fraction``, the share of probes whose stress
    changed at all; ``jump_fraction``, the share whose change exceeds JUMP_FACTOR times the smooth
    response at the smallest h (where flips are rarest; any change if that is 0): spike flips;
    ``jump_median`` and ``jump_max`` of those jumps (MPa).
    ``resolution`` (MPa) is the larger of the 95th percentile of all jumps and the 95th percentile of
    the changes at the smallest h (the rounding floor of a smooth stress): Newton cannot be expected to
    bring equilibrium residuals below what such a stress change at one point produces.
    """

    perturbations: tuple[float, ...]
    typical_increment: float
    stress_scale: float
    sensitivity: tuple[float, ...]
    moved_fraction: tuple[float, ...]
    jump_fraction: tuple[float, ...]
    jump_median: tuple[float, ...]
    jump_max: tuple[float, ...]
    resolution: float


class SpikingMaterial(Material):
    """The stress of N points from one batched network step per call; the network's state is the history.

    model: a model file written by :func:`femsnn.train.artifact.save_model`, or a loaded
    ``(net, artifact)`` pair (the network is copied, never changed). stress_state: the one the caller
    works in (None: the model's); a model trained for another is refused, as are other units or strain
    conventions and inputs that are not strain features. device / dtype: where and in which precision
    the network runs (dtype None: the model's); strain, stress and tangent are float64 numpy.
    tangent: ``surrogate`` | ``elastic`` | ``secant`` | ``bounded`` (module docstring). min_ratio: the
    lower stiffness bound of ``secant`` and ``bounded`` relative to the elastic stiffness.
    history_dtype: float32 or float64 storage of the history (None: the network's dtype, in which the states
    are computed anyway; float32 halves the memory per point and lets the network read its state in place).
    chunk_size: points per network call (the batch is stepped in chunks that keep its arrays in cache).
    rotations: K copies of each point in frames turned about z by pi k / K, averaged (module docstring).
    """

    def __init__(
        self,
        model: str | Path | tuple[Regressor, Artifact],
        stress_state: str | StressState | None = None,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | str | None = None,
        tangent: TangentStrategy = "elastic",
        units: str = "MPa",
        min_ratio: float = MIN_STIFFNESS_RATIO,
        history_dtype: str | np.dtype | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        rotations: int = 1,
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
        self._history_dtype = np.dtype(str(self.dtype).removeprefix("torch.") if history_dtype is None else history_dtype)
        if self._history_dtype not in (np.float32, np.float64):
            raise MaterialInputError(f"history_dtype must be float32 or float64, got {history_dtype!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise MaterialInputError(f"chunk_size must be a positive number of points, got {chunk_size!r}")
        self.chunk_size = chunk_size
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
        self._frames = _rotation_frames(rotations, self.stress_state)
        self.rotations = rotations
        copies = () if self.rotations == 1 else (self.rotations,)
        state_spec = {k: (*copies, *shape) for k, shape in self.net.state_spec.items()}
        self._history_spec = {"strain": (n,), "stress": (n,), **state_spec}

    @property
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        """``strain`` and ``stress`` at the end of the step, then the network's state (membranes, cells)."""
        return dict(self._history_spec)

    @property
    def history_dtype(self) -> np.dtype:
        """float32 or float64 (constructor argument; by default the network's dtype)."""
        return self._history_dtype

    def describe(self) -> dict:
        """Type, stress state, model file, network, tangent strategy and the material the model learned."""
        return {
            **super().describe(),
            "model": None if self.model_path is None else str(self.model_path),
            "network": self.artifact.spec,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "history_dtype": str(self.history_dtype),
            "tangent": self.tangent,
            "rotations": self.rotations,
            "input_features": list(self.artifact.input_features),
            "trained_for": self.artifact.material,
        }

    def diagnostics(self, history: History) -> dict[str, np.ndarray]:
        """Per point, the share of each spiking layer's neurons that spiked in the step that produced history
        (``spike_rate_layer{i}``, ``spike_rate_member{k}_layer{i}`` for an ensemble; none for a network without
        spikes). Read by ``femsnn compare``."""
        if not hasattr(self.net, "spikes"):
            return {}
        with torch.inference_mode():
            spikes = self.net.spikes({k: self._to_torch(self._copies(history[k])) for k in self.net.state_spec})
        return {
            f"spike_rate_{name.replace('.', '_')}": self._to_numpy(s.mean(dim=1)).reshape(-1, self.rotations).mean(axis=1)
            for name, s in spikes.items()
        }

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        n_points, n = strain.shape
        out = MaterialResponse(
            np.empty((n_points, n)),
            np.empty((n_points, n, n)) if tangent else None,
            {k: np.empty((n_points, *shape), dtype=self.history_dtype) for k, shape in self.history_spec.items()},
        )
        return self._update_into(strain, history, dt, tangent, out)

    def _update_into(
        self, strain: np.ndarray, history: History, dt: float, tangent: bool, out: MaterialResponse
    ) -> MaterialResponse:
        """The network step of chunk_size points at a time, written straight into out.

        Chunks keep the gate arrays of one step in cache (38k points, SLSTM 1x128, one thread: 405 ms in one
        batch, 302 ms in chunks of 2048); points do not interact, so the result does not depend on the chunking.
        """
        strain = np.asarray(strain, dtype=np.float64)
        for start in range(0, strain.shape[0], self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            chunk_out = MaterialResponse(
                out.stress[rows], out.tangent[rows] if tangent else None, {k: v[rows] for k, v in out.history.items()}
            )
            self._step_into(strain[rows], {k: v[rows] for k, v in history.items()}, tangent, chunk_out)
        return MaterialResponse(stress=out.stress, tangent=out.tangent if tangent else None, history=dict(out.history))

    def _step_into(self, strain: np.ndarray, history: History, tangent: bool, out: MaterialResponse) -> None:
        """One network step of a chunk of points into out (network states cast to the history dtype in the copy)."""
        stress, new_state, tangents = self._network_step(strain, history, tangent)
        out.stress[...] = stress
        if tangent:
            out.tangent[...] = tangents
        out.history["strain"][...] = strain
        out.history["stress"][...] = stress
        for name, values in new_state.items():
            target = torch.from_numpy(out.history[name])
            target.copy_(values.reshape(target.shape))

    def _network_step(self, strain: np.ndarray, history: History, tangent: bool) -> tuple[np.ndarray, State, np.ndarray | None]:
        """Stress (N, n), the network's new state (tensors) and the tangent (N, n, n) if asked, from the committed history."""
        norm = self.artifact.normalisation
        committed = np.asarray(history["strain"], np.float64)
        inputs = norm.encode_inputs(strain_step_inputs(self._turn(strain), self._turn(committed), self.increments))
        x = self._to_torch(inputs)
        state = {k: self._to_torch(self._copies(history[k])) for k in self.net.state_spec}
        want_derivative = tangent and self.tangent in ("surrogate", "bounded")
        if want_derivative:
            y, new_state, output_jacobian = self._step_with_jacobian(x, state)
        else:
            with torch.inference_mode():  # the network's fast path, no autograd bookkeeping
                y, new_state = self.net.step(x, state)
        stress = self._turn_back(norm.decode_targets(self._to_numpy(y)))
        tangents = None
        if want_derivative:
            # d stress / d strain = diag(target std) . d y / d x_std . d x_std / d strain
            tangents = self._turn_back(norm.target_std[:, None] * (self._to_numpy(output_jacobian) @ self._input_jacobian))
            if self.elastic_tangent is not None and self.stress_state.fixed_strain:
                # the network never saw a fixed strain component (plane strain's e_zz) move: its derivative
                # along it is meaningless, so that column is the elastic one (no FE solve ever uses it)
                fixed = list(self.stress_state.fixed_strain)
                tangents[:, :, fixed] = self.elastic_tangent[:, fixed]
            if self.tangent == "bounded":
                tangents = bounded_tangent(self.elastic_tangent, tangents, self.min_ratio)
        elif tangent and self.tangent == "elastic":
            tangents = np.broadcast_to(self.elastic_tangent, (strain.shape[0], self.size, self.size))
        elif tangent:
            committed_stress = np.asarray(history["stress"], np.float64)
            tangents = secant_tangent(
                self.elastic_tangent, strain - history["strain"], stress - committed_stress, self.min_ratio
            )
        return stress, new_state, tangents

    def _turn(self, strain: np.ndarray) -> np.ndarray:
        """(N, n) strains -> (N K, n): each point's strain in the K frames (point-major; itself when K = 1)."""
        if self.rotations == 1:
            return strain
        return np.einsum("kij,pj->pki", self._frames, strain).reshape(-1, self.size)

    def _turn_back(self, values: np.ndarray) -> np.ndarray:
        """(N K, n) stresses or (N K, n, n) tangents of the frames -> their mean in the material frame (N, ...)."""
        if self.rotations == 1:
            return values
        values = values.reshape(-1, self.rotations, *values.shape[1:])
        if values.ndim == 3:
            return np.einsum("kji,pkj->pi", self._frames, values) / self.rotations
        return np.einsum("kai,pkab,kbj->pij", self._frames, values, self._frames) / self.rotations

    def _copies(self, state: np.ndarray) -> np.ndarray:
        """A network state of the history, (N, K, ...) -> (N K, ...), the batch layout of :meth:`_turn`."""
        return state if self.rotations == 1 else np.asarray(state).reshape(-1, *state.shape[2:])

    def _step_with_jacobian(self, x: Tensor, state: State) -> tuple[Tensor, State, Tensor]:
        """One step and d y / d x (B, n_outputs, n_inputs) by one reverse pass per output component.

        Points do not interact, so the gradient of an output summed over the batch is every point's own
        row; this was faster than vmap(jacrev) or forward-mode jvp over the inputs (module docstring).
        A one-layer spiking network (or an ensemble of them) has its exact Jacobian in closed form: no autograd at all.
        """
        if getattr(self.net, "exact_input_jacobian", False):
            return self.net.step_with_input_jacobian(x, state)
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
        """numpy -> the network's device and dtype; shares memory (strided views too) on the CPU when dtypes match."""
        tensor = torch.from_numpy(array) if array.flags.writeable else torch.tensor(array)
        return tensor.to(device=self.device, dtype=self.dtype)

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
        sizes = np.asarray(perturbations, dtype=np.float64)[:, None] * typical
        sensitivity = np.median(change / sizes, axis=1)
        # the smooth response is best seen at the smallest h, where spikes rarely flip
        jumps = change > JUMP_FACTOR * sensitivity[0] * sizes
        pooled = change[jumps]
        floor = float(np.percentile(change[0], 95))
        return StressResolution(
            perturbations=tuple(float(h) for h in perturbations),
            typical_increment=typical,
            stress_scale=float(np.median(np.linalg.norm(base, axis=2))),
            sensitivity=tuple(float(v) for v in sensitivity),
            moved_fraction=tuple(float(v) for v in (change > 0).mean(axis=1)),
            jump_fraction=tuple(float(v) for v in jumps.mean(axis=1)),
            jump_median=tuple(float(np.median(c[j])) if j.any() else 0.0 for c, j in zip(change, jumps)),
            jump_max=tuple(float(c[j].max()) if j.any() else 0.0 for c, j in zip(change, jumps)),
            resolution=max(float(np.percentile(pooled, 95)) if pooled.size else 0.0, floor),
        )

    def validation_paths(self, n_paths: int) -> np.ndarray:
        """The first n_paths validation strain paths (P, T, n) of the generator the model was trained with.

        A model trained on a dataset file alone (e.g. harvested FE paths) records no generator: then random
        strain walks labelled by the J2 material it was trained for, in its stress state.
        """
        settings = (self.artifact.data or {}).get("generator") or self._j2_walks()
        parsed = TypeAdapter(GeneratorSettings).validate_python({**settings, "n_train": 1, "n_val": n_paths, "n_test": 1})
        return generate(parsed).part("val").strain

    def _j2_walks(self) -> dict:
        """Generator settings of J2 random walks for the model's own J2 material (an error for any other)."""
        material = self.artifact.material or {}
        if material.get("type") != "J2Plasticity" or self.artifact.stress_state not in ("3d", "plane_strain"):
            raise MaterialInputError(
                "the model file records no data generator and no J2 material to probe its stress with; pass "
                "strain_paths (or give the FE solver a numeric stress_tolerance in MPa)"
            )
        return {"generator": "j2_random_walk", "stress_state": self.artifact.stress_state,
                "material": config_from_description(material), "increments": self.increments}


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


def _rotation_frames(rotations: int, stress_state: StressState) -> np.ndarray:
    """The (K, n, n) Mandel maps into the frames turned about z by pi k / K; MaterialInputError if K is unusable."""
    if isinstance(rotations, bool) or not isinstance(rotations, int) or rotations < 1:
        raise MaterialInputError(f"rotations must be a positive number of frames, got {rotations!r}")
    if rotations > 1 and stress_state is StressState.UNIAXIAL_STRESS:
        raise MaterialInputError("rotations > 1 turns the strain about z: a uniaxial-stress model has no such frames")
    return mandel_rotation(rotation_about_z(np.pi * np.arange(rotations) / rotations), stress_state.size)


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    """torch.float32 / torch.float64 from a dtype or its name; MaterialInputError otherwise."""
    value = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if value not in (torch.float32, torch.float64):
        raise MaterialInputError(f"dtype must be float32 or float64, got {dtype!r}")
    return value
