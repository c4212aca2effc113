"""The spiking material with its network run by Lava (Loihi 2 or its simulation): the FE backend of the offload.

:class:`LavaSpikingMaterial` is :class:`~femsnn.materials.spiking.SpikingMaterial` whose network step runs in a
:class:`~femsnn.loihi.worker.LavaWorker` built with state input/output. At every call, the N points' network
inputs (from the strain and the committed strain) and their committed network states go to the worker as N
one-step sequences; the Lava graph starts each from its state, and returns the stress and the new states.
The material holds no network state: the history (strain, stress, then the network's state under femsnn.snn's
names and in its units) belongs to the caller, so Newton's repeated evaluations from the committed state,
commit and rollback behave as with the torch backend, and the histories of both backends are interchangeable.

Backends: ``sim-float`` (Lava's float simulation; equals the torch network to round-off), ``sim-fixed`` (Loihi 2
fixed point; states are multiples of 2^-12, which float64 histories hold exactly), ``hw`` and ``auto`` as in
:mod:`femsnn.loihi.worker`. No derivative crosses the Lava boundary, so the tangent is ``elastic`` or
``secant`` (:mod:`femsnn.materials.tangents`). A worker that dies or hangs makes :meth:`update` raise
:class:`~femsnn.loihi.worker.LavaWorkerError`; the committed history is untouched (the material never writes
into it), so the caller's state is intact; the material is then closed (make a new one to go on).
Cost: one Lava step per point and call, plus the pipeline depth (number of layers + decoder stages).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from femsnn.loihi.export import export_regressor
from femsnn.loihi.worker import Backend, LavaWorker
from femsnn.mandel import StressState
from femsnn.materials.base import History, Material, MaterialInputError, MaterialResponse
from femsnn.materials.spiking import SpikingMaterial
from femsnn.materials.tangents import MIN_STIFFNESS_RATIO, secant_tangent
from femsnn.snn.base import Regressor
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.artifact import Artifact
from femsnn.train.data import strain_step_inputs

LavaTangent = Literal["elastic", "secant"]


class LavaSpikingMaterial(SpikingMaterial):
    """A spiking model evaluated by a Lava worker; see the module docstring. Close it (or use ``with``) when done."""

    def __init__(
        self,
        model: str | Path | tuple[Regressor, Artifact],
        stress_state: str | StressState | None = None,
        *,
        backend: Backend = "sim-float",
        tangent: LavaTangent = "elastic",
        units: str = "MPa",
        min_ratio: float = MIN_STIFFNESS_RATIO,
        timeout: float | None = None,
    ) -> None:
        if tangent not in ("elastic", "secant"):
            raise MaterialInputError(f"a Lava-run network gives no derivative: tangent must be 'elastic' or 'secant', got {tangent!r}")
        super().__init__(model, stress_state, dtype=torch.float64, tangent=tangent, units=units, min_ratio=min_ratio)
        if not isinstance(self.net, SpikingRegressor):
            raise MaterialInputError(f"only single spiking networks run on Lava, the model is a {type(self.net).__name__} "
                                     "(an ensemble: run its members, listed in its training.ensemble_of)")
        self._folder = tempfile.TemporaryDirectory(prefix="femsnn-lava-")
        network = export_regressor(self.net, Path(self._folder.name) / "network.npz", self.artifact.normalisation)
        self.worker = LavaWorker(network, backend=backend, timeout=timeout, state_io=True)

    @property
    def backend(self) -> str:
        """The Lava backend that runs the network (``auto`` resolved)."""
        return self.worker.backend

    def describe(self) -> dict:
        """As the torch material, plus the Lava backend."""
        return {**super().describe(), "backend": f"lava {self.backend}"}

    def _update(self, strain: np.ndarray, history: History, dt: float, tangent: bool) -> MaterialResponse:
        strain = np.asarray(strain, dtype=np.float64)
        n_points, n = strain.shape
        committed_strain = np.asarray(history["strain"], dtype=np.float64)
        if n_points == 0:  # e.g. an MPI rank without points
            empty = {k: np.zeros((0, *shape)) for k, shape in self.history_spec.items()}
            return MaterialResponse(np.zeros((0, n)), np.zeros((0, n, n)) if tangent else None, empty)
        inputs = strain_step_inputs(strain, committed_strain, self.increments)
        result = self.worker.run(inputs[:, None, :], state={k: history[k] for k in self.net.state_spec})
        stress = result.outputs[:, 0]
        trial = {"strain": strain.copy(), "stress": stress, **result.final_state}
        tangents = None
        if tangent and self.tangent == "elastic":
            tangents = np.broadcast_to(self.elastic_tangent, (n_points, n, n)).copy()
        elif tangent:
            committed_stress = np.asarray(history["stress"], dtype=np.float64)
            tangents = secant_tangent(self.elastic_tangent, strain - committed_strain, stress - committed_stress, self.min_ratio)
        return MaterialResponse(stress=stress, tangent=tangents, history=trial)

    # the network step must go through _update (the worker), whatever the torch material does in place
    _update_into = Material._update_into

    def close(self) -> None:
        """Stop the Lava worker and remove the exported network."""
        self.worker.close()
        self._folder.cleanup()

    def __enter__(self) -> LavaSpikingMaterial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
