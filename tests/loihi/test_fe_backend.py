"""The spiking material run by Lava: the same steps as the torch material, inside Newton's method, and when the worker dies."""

from __future__ import annotations

import functools
import os
import signal

import dolfinx_solver  # noqa: F401  (must precede dolfinx)
import numpy as np
import pytest
import torch
from dolfinx import fem
from mpi4py import MPI

from femsnn.fem.loads import BoundaryLoading, Displacement
from femsnn.fem.solver import EquilibriumSolver, NewtonSettings
from femsnn.fem.stepping import follow_load_program
from femsnn.loihi.backend import LavaSpikingMaterial
from femsnn.loihi.export import network_from_regressor
from femsnn.loihi.lava_worker.reference import simulate_fixed
from femsnn.loihi.worker import LavaWorkerError
from femsnn.materials import MaterialInputError, drive
from femsnn.materials.spiking import SpikingMaterial
from femsnn.snn.networks import SpikingRegressor
from femsnn.train.artifact import Artifact, save_model
from femsnn.train.data import J2RandomWalkSettings, generate, strain_inputs
from femsnn.train.normalisation import Normalisation
from tests.fem.helpers import box_mesh_data


@functools.cache
def walks():
    """A few short plane-strain J2 random walks (strain and increment inputs)."""
    settings = J2RandomWalkSettings(generator="j2_random_walk", stress_state="plane_strain", n_train=8, n_val=4, n_test=1, steps=6, increments=True)
    return generate(settings)


@pytest.fixture(scope="module", params=["plain", "skip"])
def model(request, tmp_path_factory):
    """A random plane-strain SLSTM model (2 x 8, population 4) whose neurons fire, with the walks' normalisation
    (and a random skip connection)."""
    data = walks()
    train = data.part("train")
    torch.manual_seed(1)
    net = SpikingRegressor(8, 4, "slstm", (8, 8), population=4, skip=request.param == "skip").double()
    with torch.no_grad():
        if net.skip is not None:
            net.skip.weight.normal_(std=0.3)
        for layer in net.spiking_layers:
            layer.threshold.uniform_(0.0, 0.2)
    artifact = Artifact.describe(net, Normalisation.fit(train.inputs, train.targets), data.meta, {})
    return save_model(tmp_path_factory.mktemp("model") / "slstm.pt", net, artifact)


def test_only_elastic_or_secant_tangents(model):
    with pytest.raises(MaterialInputError, match="elastic' or 'secant"):
        LavaSpikingMaterial(model, tangent="surrogate")


@pytest.mark.lava
@pytest.mark.usefixtures("lava_env")
def test_lava_steps_equal_the_torch_material_and_fixed_point_steps_equal_whole_paths(model):
    paths = walks().part("val").strain
    reference = drive(SpikingMaterial(model, tangent="elastic"), paths)
    with LavaSpikingMaterial(model, backend="sim-float") as lava:
        assert lava.describe()["backend"] == "lava sim-float"
        result = drive(lava, paths)
        committed = {k: v[:, 2] for k, v in result.history.items()}
        before = {k: v.copy() for k, v in committed.items()}
        first, second = (lava.update(paths[:, 3] + 1e-4, committed) for _ in range(2))
        with pytest.raises(ValueError, match="state has variables"):
            lava.worker.run(np.zeros((1, 1, 8)), state={"layer0.membrane": np.zeros((1, 8))})
    scale = np.abs(reference.stress).max()
    assert np.abs(result.stress - reference.stress).max() <= 1e-9 * scale
    for name, values in reference.history.items():
        np.testing.assert_allclose(result.history[name], values, rtol=0, atol=1e-9 * max(1.0, np.abs(values).max()), err_msg=name)
    assert sum(int(np.any(v > 0)) for k, v in result.history.items() if k.endswith("membrane")) > 0
    for name in committed:
        np.testing.assert_array_equal(committed[name], before[name])
        np.testing.assert_array_equal(first.history[name], second.history[name])

    # Loihi fixed point, one step at a time through the states, is the fixed-point network run over whole paths
    with LavaSpikingMaterial(model, backend="sim-fixed", tangent="secant") as fixed:
        stepped = drive(fixed, paths).stress
    material = SpikingMaterial(model)
    exported = network_from_regressor(material.net, material.artifact.normalisation)
    whole = exported.physical_outputs(simulate_fixed(exported, exported.standardise_inputs(strain_inputs(paths, increments=True))).outputs)
    np.testing.assert_array_equal(stepped, whole)


def tiny_solver(material, prefix: str) -> EquilibriumSolver:
    """Unit square of two P1 triangles (6 quadrature points), supported left and bottom, stretched on the right.

    Newton takes exactly 3 elastic-tangent iterations per load step (no convergence test), so that both
    backends follow the same iterates however well a random network equilibrates.
    """
    data = box_mesh_data(MPI.COMM_SELF, 2, 1)
    u = fem.Function(fem.functionspace(data.mesh, ("Lagrange", 1, (2,))))
    loads = [Displacement("left", 0), Displacement("bottom", 1), Displacement("right", 0, 0.004)]
    settings = NewtonSettings(max_it=3, petsc_options={"snes_convergence_test": "skip"})
    return EquilibriumSolver(u, material, BoundaryLoading(u.function_space, data, loads), 2, settings, prefix)


@pytest.mark.lava
@pytest.mark.usefixtures("lava_env")
def test_fe_backend_equals_the_torch_backend_on_a_tiny_mesh(model):
    factors = [0.4, 0.8, 1.0]
    runs = {}
    for name, material in (("torch", SpikingMaterial(model, tangent="elastic")), ("lava", LavaSpikingMaterial(model))):
        solver = tiny_solver(material, f"lava_fe_{name}_")
        iterations = []
        follow_load_program(solver, factors, lambda attempt: iterations.append(attempt.info.iterations), max_cutbacks=0)
        runs[name] = (solver.u.x.array.copy(), solver.data.committed_history(), iterations)
        if name == "lava":
            material.close()
    (u_torch, h_torch, it_torch), (u_lava, h_lava, it_lava) = runs["torch"], runs["lava"]
    assert it_torch == it_lava == [3, 3, 3]
    assert np.abs(u_torch).max() > 0
    np.testing.assert_allclose(u_lava, u_torch, rtol=0, atol=1e-9 * np.abs(u_torch).max())
    for name, values in h_torch.items():
        np.testing.assert_allclose(h_lava[name], values, rtol=0, atol=1e-9 * max(1.0, np.abs(values).max()), err_msg=name)


@pytest.mark.lava
@pytest.mark.usefixtures("lava_env")
def test_dead_worker_is_a_clear_error_and_the_committed_state_is_kept(model):
    material = LavaSpikingMaterial(model, timeout=20)
    solver = tiny_solver(material, "lava_fe_dead_")
    follow_load_program(solver, [0.5], lambda attempt: None, max_cutbacks=0)
    committed = {k: v.copy() for k, v in solver.data.committed_history().items()}
    committed_u = solver.u.x.array.copy()
    os.kill(material.worker.pid, signal.SIGKILL)
    with pytest.raises(LavaWorkerError, match=r"crashed|closed its output"):
        follow_load_program(solver, [1.0], lambda attempt: None, max_cutbacks=2)
    np.testing.assert_array_equal(solver.u.x.array, committed_u)
    for name, values in solver.data.committed_history().items():
        np.testing.assert_array_equal(values, committed[name], err_msg=name)
    material.close()
