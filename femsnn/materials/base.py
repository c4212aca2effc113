"""The user-material hook: one batched contract that every femsnn material implements.

At the end of a load step, for N material points, a material maps

    (strain (N, n), committed history {name: (N, *shape)}, step size dt)
        -> stress (N, n), tangent d stress / d strain (N, n, n) or None, trial history

in the Mandel convention of :mod:`femsnn.mandel`. It must **never mutate** the committed history it
is given: the caller (Newton's method, the material-point driver) evaluates the same step many
times from the same committed state and commits the trial history only once a step has converged.
Materials know nothing of meshes or solvers.

A caller that keeps its own arrays for stress, tangent and trial history (the FE side's quadrature
data) may pass them as ``out=MaterialResponse(...)``: the response is written into them, which saves
allocating (and first touching) new arrays and copying them over. Materials that can write in place
override ``_update_into``; the others compute as usual and copy.

Strain, stress and tangent are float64. History is stored in the material's ``history_dtype``
(float64 unless a material says otherwise: a spiking material may keep its network state in float32,
halving the memory per point); callers allocate history arrays in that dtype.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from femsnn.mandel import StressState

History = dict[str, np.ndarray]


class MaterialInputError(ValueError):
    """Raised for input a material cannot work with (bad shape, NaN, wrong stress state)."""


@dataclass(frozen=True)
class MaterialResponse:
    """What a material returns for one step of N points."""

    stress: np.ndarray  # (N, n)
    tangent: np.ndarray | None  # (N, n, n), None when not requested
    history: History  # trial history, {name: (N, *shape)}


class Material(ABC):
    """Base class of every material: declare the stress state and history, implement update."""

    #: components the material works with (sets n)
    stress_state: StressState

    @property
    def size(self) -> int:
        """n, the number of Mandel components of strain and stress."""
        return self.stress_state.size

    @property
    @abstractmethod
    def history_spec(self) -> dict[str, tuple[int, ...]]:
        """History variables: name -> per-point shape (ordered; () for a scalar)."""

    @abstractmethod
    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        """Implementation of :meth:`update` on validated input."""

    @property
    def history_dtype(self) -> np.dtype:
        """dtype in which callers store this material's history (float64 unless a material overrides)."""
        return np.dtype(np.float64)

    def initial_history(self, n_points: int) -> History:
        """History of n_points points at rest (zeros unless a material overrides), in history_dtype."""
        return {k: np.zeros((n_points, *shape), dtype=self.history_dtype) for k, shape in self.history_spec.items()}

    def _update_into(
        self, strain: np.ndarray, history: History, dt: float, tangent: bool, out: MaterialResponse
    ) -> MaterialResponse:
        """:meth:`update` with ``out`` on validated input: here computed as usual and copied; override to write in place."""
        response = self._update(strain, history, dt, tangent)
        out.stress[...] = response.stress
        if tangent:
            out.tangent[...] = response.tangent
        for name, values in out.history.items():
            values[...] = response.history[name]
        return MaterialResponse(stress=out.stress, tangent=out.tangent if tangent else None, history=dict(out.history))

    def update(
        self,
        strain: np.ndarray,
        history: Mapping[str, np.ndarray],
        dt: float = 1.0,
        *,
        tangent: bool = True,
        out: MaterialResponse | None = None,
    ) -> MaterialResponse:
        """Stress, tangent (if asked) and trial history at the end of a step; see module docstring.

        out: arrays to write the response into (float64 stress (N, n), tangent (N, n, n) if asked, every history
        variable in history_dtype), not overlapping strain or history; the returned response holds these arrays.
        """
        strain = check_strain(strain, self.size)
        hist = check_history(history, self.history_spec, strain.shape[0])
        if not np.isfinite(dt) or dt <= 0:
            raise MaterialInputError(f"step size dt must be positive and finite, got {dt}")
        if out is None:
            return self._update(strain, hist, float(dt), tangent)
        check_output(out, self, strain.shape[0], tangent, (strain, *hist.values()))
        return self._update_into(strain, hist, float(dt), tangent, out)

    def describe(self) -> dict:
        """JSON-serialisable description (type, stress state, parameters) for reports."""
        return {"type": type(self).__name__, "stress_state": self.stress_state.value}


def check_strain(strain: np.ndarray, size: int) -> np.ndarray:
    """Validate a (N, size) strain array: right shape, finite; returns it as an array."""
    arr = np.asarray(strain)
    if arr.ndim != 2 or arr.shape[1] != size:
        raise MaterialInputError(f"strain must have shape (N, {size}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise MaterialInputError("strain contains NaN or inf")
    return arr


def check_history(history: Mapping[str, np.ndarray], spec: Mapping[str, tuple[int, ...]], n_points: int) -> History:
    """Validate history names and shapes against a material's spec."""
    if set(history) != set(spec):
        raise MaterialInputError(f"history has variables {sorted(history)}, material expects {sorted(spec)}")
    out: History = {}
    for name, shape in spec.items():
        arr = np.asarray(history[name])
        if arr.shape != (n_points, *shape):
            raise MaterialInputError(f"history '{name}' must have shape {(n_points, *shape)}, got {arr.shape}")
        out[name] = arr
    return out


def check_output(out: MaterialResponse, material: Material, n_points: int, tangent: bool, inputs: tuple[np.ndarray, ...]) -> None:
    """Validate caller-provided output arrays: writeable, right shapes and dtypes (float64; history in the
    material's history_dtype), none overlapping an input."""
    size, spec, float64 = material.size, material.history_spec, np.dtype(np.float64)
    arrays = {"stress": (out.stress, (n_points, size), float64)}
    if tangent:
        arrays["tangent"] = (out.tangent, (n_points, size, size), float64)
    if set(out.history) != set(spec):
        raise MaterialInputError(f"out.history has variables {sorted(out.history)}, material expects {sorted(spec)}")
    arrays |= {
        f"history '{name}'": (out.history[name], (n_points, *shape), material.history_dtype) for name, shape in spec.items()
    }
    for name, (array, shape, dtype) in arrays.items():
        if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
            got = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
            raise MaterialInputError(f"out {name} must be a {dtype} array of shape {shape}, got {got}")
        if not array.flags.writeable:
            raise MaterialInputError(f"out {name} is read-only")
        if any(np.may_share_memory(array, source) for source in inputs):
            raise MaterialInputError(f"out {name} overlaps the strain or the committed history")


def history_width(spec: Mapping[str, tuple[int, ...]]) -> int:
    """Number of scalars per point when all history variables are packed side by side."""
    return sum(int(np.prod(shape)) for shape in spec.values())


def pack_history(history: Mapping[str, np.ndarray], spec: Mapping[str, tuple[int, ...]], out: np.ndarray) -> None:
    """Write history {name: (N, *shape)} into a packed (N, history_width) array, in spec order."""
    col = 0
    for name, shape in spec.items():
        width = int(np.prod(shape))
        out[:, col : col + width] = np.asarray(history[name]).reshape(out.shape[0], width)
        col += width


def unpack_history(packed: np.ndarray, spec: Mapping[str, tuple[int, ...]]) -> History:
    """Views {name: (N, *shape)} into a packed (N, history_width) array (no copy)."""
    out: History = {}
    col = 0
    for name, shape in spec.items():
        width = int(np.prod(shape))
        out[name] = packed[:, col : col + width].reshape(packed.shape[0], *shape)
        col += width
    return out
