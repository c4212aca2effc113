"""The network material: hook contract, agreement with the network's own forward pass, tangent strategies,
the piecewise-constant stress of multi-layer spiking networks, refusals, dtypes and devices."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch

from femsnn.config import ConfigError
from femsnn.mandel import mandel_rotation, rotation_about_z
from femsnn.materials import MaterialInputError, drive, elastic_stiffness, make_material, parse_material_config
from femsnn.materials.base import MaterialResponse, history_width, pack_history, unpack_history
from femsnn.materials.spiking import SpikingMaterial
from femsnn.snn import EnsembleRegressor, LSTMRegressor, SpikingRegressor
from femsnn.train.artifact import Artifact, ModelFileError, save_model
from femsnn.train.data import (
    Dataset,
    J2RandomWalkSettings,
    RambergOsgoodSettings,
    generate,
    strain_inputs,
)
from femsnn.train.normalisation import Normalisation

from .helpers import central_difference_tangent, relative_error

E, NU = 2.1e5, 0.3  # the default J2 material of the random-walk generator
ZZ, IN_PLANE = 2, [0, 1, 3]  # Mandel indices of e_zz, which plane strain holds at zero, and of the others


@functools.cache
def walks(increments: bool = True) -> Dataset:
    """A few short plane-strain J2 random walks (the generator's default material), all splits."""
    settings = J2RandomWalkSettings(
        generator="j2_random_walk", stress_state="plane_strain", n_train=8, n_val=6, n_test=2, steps=12, increments=increments
    )
    return generate(settings)


def network(kind: str, n_in: int, n_out: int, hidden: tuple[int, ...], dtype: torch.dtype, seed: int = 0):
    """A random regressor whose spiking neurons fire on standardised inputs."""
    torch.manual_seed(seed)
    if kind == "lstm":
        return LSTMRegressor(n_in, n_out, hidden=hidden[0], layers=len(hidden), population=4).to(dtype)
    if kind == "ensemble":
        return EnsembleRegressor([network("spiking", n_in, n_out, hidden, dtype, seed + k) for k in range(2)])
    net = SpikingRegressor(n_in, n_out, "slstm", hidden, population=4).to(dtype)
    with torch.no_grad():
        for layer in net.spiking_layers:
            layer.threshold.uniform_(0.0, 0.2)
    return net


def saved_model(
    folder,
    *,
    hidden: tuple[int, ...] = (16, 16),
    kind: str = "spiking",
    increments: bool = True,
    dtype: torch.dtype = torch.float64,
    meta: dict | None = None,
):
    """Save a random network with the normalisation of the J2 walks; returns (path, net, artifact)."""
    data = walks(increments)
    train = data.part("train")
    norm = Normalisation.fit(train.inputs, train.targets)
    net = network(kind, train.inputs.shape[2], train.targets.shape[2], hidden, dtype)
    artifact = Artifact.describe(net, norm, {**data.meta, **(meta or {})}, {"seed": 0})
    name = f"{kind}-{'x'.join(map(str, hidden))}-{increments}-{str(dtype)[6:]}-{len(meta or {})}.pt"
    path = save_model(folder / name, net, artifact)
    return path, net, artifact


def committed_state(material: SpikingMaterial):
    """Strain of the last step and the committed history after driving the validation walks to it."""
    paths = walks(material.increments).part("val").strain
    result = drive(material, paths[:, :-1])
    return paths[:, -1], {k: v[:, -1] for k, v in result.history.items()}


def copy_history(history: dict) -> dict:
    return {k: np.array(v, copy=True) for k, v in history.items()}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return saved_model(tmp_path_factory.mktemp("models"))


def test_history_spec_is_strain_stress_and_the_network_state(model):
    path, net, _ = model
    material = SpikingMaterial(path, "plane_strain", tangent="surrogate")
    assert material.size == 4
    assert list(material.history_spec) == ["strain", "stress", *net.state_spec]
    assert material.history_spec["strain"] == (4,) and material.history_spec["layer1.cell"] == (16,)
    strain, history = committed_state(material)
    response = material.update(strain, history)
    assert response.stress.shape == (6, 4) and response.tangent.shape == (6, 4, 4)
    assert response.stress.dtype == response.tangent.dtype == np.float64
    for name, shape in material.history_spec.items():
        assert response.history[name].shape == (6, *shape) and response.history[name].dtype == np.float64
    np.testing.assert_array_equal(response.history["strain"], strain)
    np.testing.assert_array_equal(response.history["stress"], response.stress)
    assert json.loads(json.dumps(material.describe()))["tangent"] == "surrogate"


@pytest.mark.parametrize("tangent", ["surrogate", "elastic", "secant", "bounded"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_committed_history_is_untouched_and_repeated_evaluation_is_identical(model, tangent, dtype):
    material = SpikingMaterial(model[0], tangent=tangent, dtype=dtype)
    strain, history = committed_state(material)
    before = copy_history(history)
    first = material.update(strain + 1e-4, history)
    second = material.update(strain + 1e-4, history)
    for name in history:
        np.testing.assert_array_equal(history[name], before[name])
        np.testing.assert_array_equal(first.history[name], second.history[name])
        assert not np.shares_memory(first.history[name], history[name])
    np.testing.assert_array_equal(first.stress, second.stress)
    np.testing.assert_array_equal(first.tangent, second.tangent)
    assert material.update(strain, history, tangent=False).tangent is None


def test_stress_and_history_agree_with_and_without_the_surrogate_tangent(model):
    """Without a derivative the network takes its inference path: the same numbers up to rounding."""
    material = SpikingMaterial(model[0], tangent="surrogate")
    strain, history = committed_state(material)
    plain, derived = material.update(strain, history, tangent=False), material.update(strain, history)
    for name in material.history_spec:
        scale = np.abs(derived.history[name]).max()
        np.testing.assert_allclose(plain.history[name], derived.history[name], rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("writeable", [True, False])  # torch shares writeable float64 views, copies read-only ones
def test_history_packed_as_the_fe_side_stores_it_gives_the_same_answer(model, writeable):
    material = SpikingMaterial(model[0], tangent="surrogate")
    strain, history = committed_state(material)
    packed = np.empty((strain.shape[0], history_width(material.history_spec)))
    pack_history(history, material.history_spec, packed)
    before = packed.copy()
    packed.flags.writeable = writeable
    from_views = material.update(strain, unpack_history(packed, material.history_spec))
    from_arrays = material.update(strain, history)
    np.testing.assert_array_equal(packed, before)
    np.testing.assert_array_equal(from_views.stress, from_arrays.stress)
    np.testing.assert_array_equal(from_views.tangent, from_arrays.tangent)


@pytest.mark.parametrize("tangent", ["surrogate", "elastic"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_writing_into_the_callers_packed_arrays_gives_the_same_response(model, tangent, dtype):
    material = SpikingMaterial(model[0], tangent=tangent, dtype=dtype)
    strain, history = committed_state(material)
    n_points, n = strain.shape
    trial = np.full((n_points, history_width(material.history_spec)), np.nan, dtype=material.history_dtype)
    out = MaterialResponse(np.full((n_points, n), np.nan), np.full((n_points, n, n), np.nan), unpack_history(trial, material.history_spec))
    written = material.update(strain, history, out=out)
    plain = material.update(strain, history)
    assert written.stress is out.stress and written.tangent is out.tangent
    np.testing.assert_array_equal(out.stress, plain.stress)
    np.testing.assert_array_equal(out.tangent, plain.tangent)
    for name in material.history_spec:
        np.testing.assert_array_equal(unpack_history(trial, material.history_spec)[name], plain.history[name], err_msg=name)


@pytest.mark.parametrize("tangent", ["surrogate", "bounded", "secant"])
def test_the_answer_does_not_depend_on_the_chunk_size(model, tangent):
    whole = SpikingMaterial(model[0], tangent=tangent)
    strain, history = committed_state(whole)
    expected = whole.update(strain, history)
    for chunk_size in (1, 4, 5):
        chunked = SpikingMaterial(model[0], tangent=tangent, chunk_size=chunk_size).update(strain, history)
        np.testing.assert_allclose(chunked.stress, expected.stress, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(chunked.tangent, expected.tangent, rtol=1e-10, atol=1e-9)
        for name in whole.history_spec:
            np.testing.assert_allclose(chunked.history[name], expected.history[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_history_is_stored_in_the_networks_dtype_unless_asked_otherwise(tmp_path):
    path = saved_model(tmp_path, dtype=torch.float32)[0]
    stored32, stored64 = SpikingMaterial(path), SpikingMaterial(path, history_dtype="float64")
    assert stored32.history_dtype == np.float32 and stored64.history_dtype == np.float64
    assert SpikingMaterial(path, dtype="float64").history_dtype == np.float64
    assert all(v.dtype == np.float32 for v in stored32.initial_history(3).values())
    paths = walks().part("val").strain
    narrow, wide = drive(stored32, paths), drive(stored64, paths)
    assert narrow.history["layer0.membrane"].dtype == np.float32
    # the states are float32 numbers either way; only the stored strain (the increment input) is rounded
    scale = np.abs(wide.stress).max()
    assert np.abs(narrow.stress - wide.stress).max() <= 1e-4 * scale
    packed = np.zeros((paths.shape[0], history_width(stored32.history_spec)))  # float64 arrays for float32 storage
    with pytest.raises(MaterialInputError, match="float32"):
        stored32.update(paths[:, 0], stored32.initial_history(paths.shape[0]), out=MaterialResponse(
            np.zeros((paths.shape[0], 4)), np.zeros((paths.shape[0], 4, 4)), unpack_history(packed, stored32.history_spec)))


@pytest.mark.parametrize(("option", "value"), [("history_dtype", "float16"), ("chunk_size", 0), ("chunk_size", 2.5)])
def test_refuses_bad_history_dtype_or_chunk_size(model, option, value):
    with pytest.raises(MaterialInputError, match=option):
        SpikingMaterial(model[0], **{option: value})


@pytest.mark.parametrize(
    ("kind", "hidden", "increments"),
    [("spiking", (16, 16), True), ("spiking", (12,), False), ("lstm", (8, 8), True), ("ensemble", (8, 8), True)],
)
def test_drive_equals_the_network_forward_pass_on_standardised_inputs(tmp_path, kind, hidden, increments):
    path, net, artifact = saved_model(tmp_path, kind=kind, hidden=hidden, increments=increments)
    paths = walks(increments).part("val").strain
    stress = drive(SpikingMaterial(path), paths).stress
    inputs = artifact.normalisation.encode_inputs(strain_inputs(paths, increments))
    with torch.no_grad():
        outputs = net(torch.from_numpy(inputs)).numpy()
    expected = artifact.normalisation.decode_targets(outputs)
    assert np.abs(stress - expected).max() <= 1e-6 * np.abs(expected).max()


@pytest.mark.parametrize("increments", [True, False])
def test_surrogate_tangent_equals_the_autograd_jacobian_of_each_point(tmp_path, increments):
    _, net, artifact = saved_model(tmp_path, hidden=(16, 16, 16), increments=increments)
    material = SpikingMaterial((net, artifact), tangent="surrogate")
    strain, history = committed_state(material)
    tangent = material.update(strain, history).tangent
    norm = artifact.normalisation
    for p in range(strain.shape[0]):
        state = {k: torch.from_numpy(history[k][p : p + 1]) for k in net.state_spec}
        previous = torch.from_numpy(history["strain"][p])

        def stress_of(e: torch.Tensor, state=state, previous=previous) -> torch.Tensor:
            features = torch.cat([e, e - previous]) if increments else e
            x = (features - torch.from_numpy(norm.input_mean)) / torch.from_numpy(norm.input_std)
            y, _ = net.step(x[None], state)
            return y[0] * torch.from_numpy(norm.target_std) + torch.from_numpy(norm.target_mean)

        expected = torch.autograd.functional.jacobian(stress_of, torch.from_numpy(strain[p])).numpy()
        expected[:, ZZ] = elastic_stiffness(E, NU, 4)[:, ZZ]  # plane strain holds e_zz at zero (material docstring)
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(tangent[p], expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


@pytest.mark.parametrize(("kind", "hidden"), [("spiking", (16,)), ("lstm", (8, 8)), ("ensemble", (16,))])
def test_surrogate_tangent_of_a_smooth_network_equals_central_differences(tmp_path, kind, hidden):
    """One spiking layer: the decoder reads that layer's membrane, a smooth function of the current strain."""
    path, _, _ = saved_model(tmp_path, kind=kind, hidden=hidden)
    material = SpikingMaterial(path, tangent="surrogate")
    strain, history = committed_state(material)
    tangent = material.update(strain, history).tangent
    fd = central_difference_tangent(material, strain, history, h=1e-7)
    assert relative_error(tangent[:, :, IN_PLANE], fd[:, :, IN_PLANE]).max() <= 1e-6
    np.testing.assert_array_equal(tangent[:, :, ZZ], np.broadcast_to(elastic_stiffness(E, NU, 4)[:, ZZ], tangent[:, :, ZZ].shape))


def test_multilayer_stress_is_piecewise_constant_in_the_current_strain(tmp_path):
    """Two spiking layers: the current strain reaches the stress only through spikes (module docstring)."""
    results = {}
    for hidden in [(16,), (16, 16)]:
        material = SpikingMaterial(saved_model(tmp_path, hidden=hidden)[0], tangent="surrogate")
        strain, history = committed_state(material)
        nudge = 1e-7 * np.random.default_rng(0).standard_normal(strain.shape)
        stress = material.update(strain, history, tangent=False).stress
        moved = material.update(strain + nudge, history, tangent=False).stress != stress
        results[hidden] = (moved.any(axis=1).mean(), np.abs(material.update(strain, history).tangent).max())
    assert results[(16,)][0] == 1.0  # smooth: every point's stress follows the nudge
    assert results[(16, 16)][0] == 0.0  # piecewise constant: no spike flipped, no stress moved
    assert results[(16, 16)][1] > 0  # while the surrogate tangent is not zero


def test_elastic_tangent_is_the_elastic_stiffness_of_the_trained_material(model):
    material = SpikingMaterial(model[0])  # elastic by default
    strain, history = committed_state(material)
    tangent = material.update(strain, history).tangent
    np.testing.assert_array_equal(tangent, np.broadcast_to(elastic_stiffness(E, NU, 4), tangent.shape))


def test_secant_tangent_does_the_step_work_and_is_elastic_at_zero_increment(model):
    material = SpikingMaterial(model[0], tangent="secant", min_ratio=1e-6)
    strain, history = committed_state(material)
    step = material.update(strain, history)
    increment, change = strain - history["strain"], step.stress - history["stress"]
    work = np.einsum("pi,pij,pj->p", increment, step.tangent, increment)
    elastic_work = np.einsum("pi,ij,pj->p", increment, elastic_stiffness(E, NU, 4), increment)
    inside = (np.einsum("pi,pi->p", change, increment) > 1e-6 * elastic_work) & (np.einsum("pi,pi->p", change, increment) < elastic_work)
    assert inside.any()
    np.testing.assert_allclose(work[inside], np.einsum("pi,pi->p", change, increment)[inside], rtol=1e-10)
    assert np.all(np.linalg.eigvalsh(step.tangent) > 0)
    at_rest = material.update(history["strain"], history).tangent
    np.testing.assert_array_equal(at_rest, np.broadcast_to(elastic_stiffness(E, NU, 4), at_rest.shape))


def test_bounded_tangent_keeps_the_skew_part_and_bounds_the_symmetric_one(model):
    material = SpikingMaterial(model[0], tangent="bounded", min_ratio=0.01)
    strain, history = committed_state(material)
    tangent = material.update(strain, history).tangent
    surrogate = SpikingMaterial(model[0], tangent="surrogate").update(strain, history).tangent
    np.testing.assert_allclose(tangent - np.swapaxes(tangent, 1, 2), surrogate - np.swapaxes(surrogate, 1, 2), rtol=0, atol=1e-9 * E)
    symmetric = 0.5 * (tangent + np.swapaxes(tangent, 1, 2))
    elastic = elastic_stiffness(E, NU, 4)
    assert np.linalg.eigvalsh(2.0 * elastic - symmetric).min() >= -1e-9 * E
    assert np.linalg.eigvalsh(symmetric - 0.01 * elastic).min() >= -1e-9 * E


def test_float32_network_runs_close_to_float64(model):
    path = model[0]
    paths = walks().part("val").strain
    single = drive(SpikingMaterial(path, dtype=torch.float32, tangent="surrogate"), paths, tangent=True)
    double = drive(SpikingMaterial(path, dtype="float64", tangent="surrogate"), paths, tangent=True)
    assert single.stress.dtype == np.float64 and single.tangent.dtype == np.float64
    scale = np.abs(double.stress).max()
    assert 0 < np.abs(single.stress - double.stress).max() <= 1e-3 * scale


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_network_matches_cpu(model):
    paths = walks().part("val").strain
    gpu = drive(SpikingMaterial(model[0], device="cuda", tangent="surrogate"), paths, tangent=True)
    cpu = drive(SpikingMaterial(model[0], tangent="surrogate"), paths, tangent=True)
    np.testing.assert_allclose(gpu.stress, cpu.stress, rtol=1e-9, atol=1e-9 * np.abs(cpu.stress).max())


def test_a_loaded_network_is_copied_not_changed(model):
    _, net, artifact = model
    material = SpikingMaterial((net, artifact), dtype=torch.float32)
    assert next(net.parameters()).dtype == torch.float64 and next(net.parameters()).requires_grad
    assert next(material.net.parameters()).dtype == torch.float32


def test_refuses_a_model_of_another_stress_state(model):
    with pytest.raises(ModelFileError, match="trained for stress state 'plane_strain', not '3d'"):
        SpikingMaterial(model[0], "3d")


def test_refuses_other_units_strain_convention_or_inputs(tmp_path, model):
    _, net, artifact = model
    with pytest.raises(MaterialInputError, match="units 'MPa', the caller works in 'GPa'"):
        SpikingMaterial(model[0], units="GPa")
    engineering = Artifact(**{**vars(artifact), "strain_convention": "engineering"})
    with pytest.raises(MaterialInputError, match="'engineering' strain"):
        SpikingMaterial((net, engineering))
    data = generate(RambergOsgoodSettings(generator="ramberg_osgood", n_train=4, n_val=2, n_test=2, steps=5))
    norm = Normalisation.fit(data.inputs, data.targets)
    ro_net = network("spiking", 1, 1, (4,), torch.float64)
    path = save_model(tmp_path / "ro.pt", ro_net, Artifact.describe(ro_net, norm, data.meta, {}))
    with pytest.raises(MaterialInputError, match=r"reads inputs \['yield_stress'\]"):
        SpikingMaterial(path)


def test_refuses_missing_or_corrupted_model_files(tmp_path, model):
    with pytest.raises(ModelFileError, match="not found"):
        SpikingMaterial(tmp_path / "absent.pt")
    damaged = bytearray(model[0].read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
    with pytest.raises(ModelFileError):
        SpikingMaterial(tmp_path / "damaged.pt")


def test_refuses_unknown_tangent_and_one_it_cannot_build(tmp_path, model):
    with pytest.raises(MaterialInputError, match="tangent must be one of"):
        SpikingMaterial(model[0], tangent="consistent")
    path, _, _ = saved_model(tmp_path, meta={"material": {}})
    assert SpikingMaterial(path, tangent="surrogate").elastic_tangent is None
    with pytest.raises(MaterialInputError, match="needs the elastic constants"):
        SpikingMaterial(path)  # elastic by default


def test_stress_resolution_tells_smooth_from_spiking_networks(tmp_path):
    perturbations = (1e-6, 1.0)
    smooth = SpikingMaterial(saved_model(tmp_path, hidden=(16,))[0]).stress_resolution(perturbations=perturbations, n_paths=6)
    spiking = SpikingMaterial(saved_model(tmp_path, hidden=(16, 16))[0]).stress_resolution(perturbations=perturbations, n_paths=6)
    assert smooth.moved_fraction == (1.0, 1.0) and smooth.jump_fraction == (0.0, 0.0)
    assert smooth.sensitivity[0] > 0 and smooth.sensitivity[0] == pytest.approx(smooth.sensitivity[1], rel=0.1)
    assert smooth.resolution < 1e-6 * smooth.stress_scale  # the change a 1e-6 nudge makes
    assert spiking.sensitivity[0] == 0.0  # no probe moves under a nudge: piecewise constant
    assert spiking.moved_fraction[0] == 0.0 < spiking.jump_fraction[1] == spiking.moved_fraction[1] < 1.0
    assert spiking.resolution > 1e5 * smooth.resolution
    assert spiking.jump_median[1] <= spiking.resolution <= spiking.jump_max[1]


def test_validation_paths_are_those_of_the_training_generator(model):
    material = SpikingMaterial(model[0])
    np.testing.assert_array_equal(material.validation_paths(4), walks().part("val").strain[:4])


def test_validation_paths_without_a_generator_are_walks_of_the_trained_j2_material(tmp_path):
    harvested = {"generator": None, "source": "harvest.npz"}
    path = saved_model(tmp_path, hidden=(8,))[0]
    material = SpikingMaterial(path)
    object.__setattr__(material.artifact, "data", harvested)  # as a model trained on a dataset file alone
    paths = material.validation_paths(3)
    settings = J2RandomWalkSettings(generator="j2_random_walk", stress_state="plane_strain", n_train=1, n_val=3, n_test=1,
                                    increments=True)  # the default material, which labelled the model's walks
    np.testing.assert_array_equal(paths, generate(settings).part("val").strain)
    assert material.stress_resolution(perturbations=(1e-6,), n_paths=2).resolution >= 0
    object.__setattr__(material.artifact, "material", {"type": "RambergOsgood", "E": 1.0})
    with pytest.raises(MaterialInputError, match="no data generator and no J2 material"):
        material.validation_paths(3)


def test_registry_builds_a_spiking_material(model):
    path = model[0]
    config = parse_material_config({"type": "spiking", "model": path.name, "tangent": "secant", "dtype": "float32"}, base_dir=path.parent)
    assert config.model == path
    material = make_material(config, "plane_strain")
    assert isinstance(material, SpikingMaterial) and material.tangent == "secant" and material.dtype == torch.float32
    assert material.history_dtype == np.float32
    stored = {"type": "spiking", "model": str(path), "dtype": "float32", "history_dtype": "float64", "chunk_size": 7}
    material = make_material(stored, "plane_strain")
    assert material.history_dtype == np.float64 and material.chunk_size == 7
    with pytest.raises(ConfigError, match="chunk_size"):
        parse_material_config({"type": "spiking", "model": str(path), "chunk_size": 0})
    with pytest.raises(ConfigError, match="tangent"):
        parse_material_config({"type": "spiking", "model": str(path), "tangent": "consistent"})
    with pytest.raises(ConfigError, match="device"):
        parse_material_config({"type": "spiking", "model": str(path), "device": "gpu"})
    with pytest.raises(ModelFileError):
        make_material({"type": "spiking", "model": str(path)}, "3d")


def test_a_skip_connection_reaches_stress_and_tangent(tmp_path):
    """Decoder silenced: the stress is the skip's linear map of the standardised inputs, its surrogate tangent exact."""
    _, net, artifact = saved_model(tmp_path, hidden=(8,))
    net = SpikingRegressor(net.n_inputs, net.n_outputs, "slstm", [8], population=4, skip=True).double()
    with torch.no_grad():
        net.decoder.linear2.weight.zero_()
        net.decoder.linear2.bias.zero_()
        net.skip.weight.normal_(std=0.2)
        net.skip.bias.normal_()
    artifact = Artifact.describe(net, artifact.normalisation, walks().meta, {})
    material = SpikingMaterial((net, artifact), tangent="surrogate")
    strain, history = committed_state(material)
    response = material.update(strain, history)
    norm = artifact.normalisation
    inputs = norm.encode_inputs(np.concatenate([strain, strain - history["strain"]], axis=1))
    linear = inputs @ net.skip.weight.detach().numpy().T + net.skip.bias.detach().numpy()
    np.testing.assert_allclose(response.stress, norm.decode_targets(linear), rtol=1e-12, atol=1e-9)
    fd = central_difference_tangent(material, strain, history, h=1e-6)
    assert relative_error(response.tangent[:, :, IN_PLANE], fd[:, :, IN_PLANE]).max() <= 1e-6


def test_diagnostics_are_the_spike_rates_of_each_layer_at_each_point(tmp_path, model):
    path, net, _ = model
    material = SpikingMaterial(path, "plane_strain")
    _, history = committed_state(material)
    rates = material.diagnostics(history)
    assert sorted(rates) == ["spike_rate_layer0", "spike_rate_layer1"]
    for i, layer in enumerate(net.spiking_layers):
        fired = history[f"layer{i}.membrane"] > layer.threshold.detach().numpy()
        np.testing.assert_array_equal(rates[f"spike_rate_layer{i}"], fired.mean(axis=1))
    assert 0 < rates["spike_rate_layer0"].mean() < 1  # the random network fires, not all the time
    lstm_path, _, _ = saved_model(tmp_path, kind="lstm", hidden=(8, 8))
    assert SpikingMaterial(lstm_path).diagnostics(history) == {}
    ensemble_path, _, _ = saved_model(tmp_path, kind="ensemble")
    ensemble = SpikingMaterial(ensemble_path, "plane_strain")
    rates = ensemble.diagnostics(committed_state(ensemble)[1])
    assert sorted(rates) == [f"spike_rate_member{k}_layer{i}" for k in range(2) for i in range(2)]


@pytest.mark.parametrize("tangent", ["surrogate", "bounded", "secant"])
def test_rotations_average_the_network_over_frames_and_make_it_objective_in_them(model, tangent):
    """K = 4: the mean of the one-frame material's answers to the strain turned by pi k / 4, turned back; a turn
    of the whole strain history by pi / 4 turns stress and tangent with it, which the plain network does not do."""
    path, _, _ = model
    paths = walks().part("val").strain
    frames = mandel_rotation(rotation_about_z(np.pi * np.arange(4) / 4), 4)
    plain = SpikingMaterial(path, "plane_strain", tangent="surrogate")
    averaged = SpikingMaterial(path, "plane_strain", tangent=tangent, rotations=4)
    assert averaged.history_spec["layer0.membrane"] == (4, *plain.history_spec["layer0.membrane"])
    result = drive(averaged, paths, tangent=True)
    copies = [drive(plain, paths @ F.T, tangent=True) for F in frames]
    np.testing.assert_allclose(result.stress, sum(c.stress @ F for c, F in zip(copies, frames)) / 4, atol=1e-9)
    if tangent == "surrogate":
        mean = sum(np.einsum("ai,ptab,bj->ptij", F, c.tangent, F) for c, F in zip(copies, frames)) / 4
        mean[..., ZZ] = plain.elastic_tangent[:, ZZ]  # the fixed e_zz column is the elastic one, in every frame
        np.testing.assert_allclose(result.tangent, mean, atol=1e-6)
    turn = frames[1]
    turned = drive(averaged, paths @ turn.T, tangent=True)
    np.testing.assert_allclose(turned.stress, result.stress @ turn.T, atol=1e-9)
    np.testing.assert_allclose(turned.tangent, np.einsum("ia,ptab,jb->ptij", turn, result.tangent, turn), atol=1e-6)
    alone = drive(plain, paths @ turn.T).stress
    assert np.abs(alone - copies[0].stress @ turn.T).max() > 1.0  # the network by itself is not objective
    rates = averaged.diagnostics({k: v[:, -1] for k, v in result.history.items()})
    manual = np.mean([plain.diagnostics({k: v[:, -1] for k, v in c.history.items()})["spike_rate_layer0"] for c in copies], axis=0)
    np.testing.assert_allclose(rates["spike_rate_layer0"], manual)


@pytest.mark.parametrize("value", [0, -2, 1.5, True])
def test_refuses_bad_rotations(model, value):
    with pytest.raises(MaterialInputError, match="rotations must be a positive number"):
        SpikingMaterial(model[0], "plane_strain", rotations=value)
