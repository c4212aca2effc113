"""Model artefact: round trip, provenance, and refusal of damaged, truncated, foreign or inconsistent files."""

import json

import numpy as np
import pytest
import torch

from femsnn.snn.networks import EnsembleRegressor, LSTMRegressor, SpikingRegressor
from femsnn.train.artifact import ARTIFACT_FORMAT, Artifact, ModelFileError, _checksum, combine_models, load_model, save_model
from femsnn.train.normalisation import Normalisation

META = {
    "stress_state": "plane_strain",
    "input_features": ["strain"],
    "input_names": ["strain_xx", "strain_yy", "strain_zz", "strain_xy"],
    "target_names": ["stress_xx", "stress_yy", "stress_zz", "stress_xy"],
    "material": {"type": "J2Plasticity", "E": 2.1e5},
    "generator": {"generator": "j2_random_walk"},
}


def normalisation():
    rng = np.random.default_rng(0)
    return Normalisation(rng.normal(size=4), rng.uniform(1, 2, 4), rng.normal(size=4) * 100, rng.uniform(50, 60, 4))


@pytest.fixture(params=["slstm", "lstm", "slstm-skip"])
def saved(request, tmp_path):
    torch.manual_seed(0)
    if request.param == "lstm":
        net = LSTMRegressor(4, 4, 5, 2, 3)
    else:
        net = SpikingRegressor(4, 4, "slstm", [6, 5], population=3, skip=request.param.endswith("skip"))
    if net.skip is not None:
        torch.nn.init.normal_(net.skip.weight)
    artifact = Artifact.describe(net, normalisation(), META, {"seed": 42, "metrics": {"test": {"code_all": 0.1}}})
    return net, artifact, save_model(tmp_path / "model.pt", net, artifact)


def test_round_trip_reproduces_outputs_and_description(saved):
    net, artifact, path = saved
    loaded, back = load_model(path)
    x = torch.randn(3, 7, 4)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    assert not loaded.training
    assert back.spec == artifact.spec and back.stress_state == "plane_strain"
    assert back.units == "MPa" and back.strain_convention == "mandel"
    assert back.training["seed"] == 42 and back.material["E"] == 2.1e5
    for name, value in artifact.normalisation.to_arrays().items():
        np.testing.assert_array_equal(back.normalisation.to_arrays()[name], value)
    back.check_stress_state("plane_strain")
    with pytest.raises(ModelFileError, match="plane_strain"):
        back.check_stress_state("3d")


def test_float64_networks_load_as_float64(tmp_path):
    net = SpikingRegressor(4, 4, "lif", [3], population=2).double()
    save_model(tmp_path / "m.pt", net, Artifact.describe(net, normalisation(), META, {}))
    loaded, artifact = load_model(tmp_path / "m.pt")
    assert artifact.dtype == "float64" and next(loaded.parameters()).dtype == torch.float64


def test_flipped_bytes_in_weights_metadata_or_normalisation_are_detected(saved, tmp_path):
    net, artifact, path = saved
    raw = path.read_bytes()
    weight = next(iter(net.state_dict().values())).detach().numpy().tobytes()
    targets = [
        raw.index(weight) + len(weight) // 2,  # a weight's stored bytes
        raw.index(b'"stress_state"') + 3,  # the metadata JSON
        raw.index(artifact.normalisation.target_std.tobytes()) + 5,  # the normalisation vectors
    ]
    for offset in targets:
        damaged = bytearray(raw)
        damaged[offset] ^= 0x01
        bad = tmp_path / f"flipped{offset}.pt"
        bad.write_bytes(bytes(damaged))
        with pytest.raises(ModelFileError, match="checksum mismatch|not a readable"):
            load_model(bad)


def test_truncated_file_is_refused(saved, tmp_path):
    _, _, path = saved
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        load_model(bad)


def test_foreign_files_are_refused(saved, tmp_path):
    net, _, _ = saved
    torch.save(net.state_dict(), tmp_path / "state_dict.pt")
    with pytest.raises(ModelFileError, match="not a femsnn model file"):
        load_model(tmp_path / "state_dict.pt")
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "missing.pt")


def rewrite(path, out, edit):
    """Re-save a model file after edit(raw dict), with a valid checksum (a consistent-looking file)."""
    raw = torch.load(path, weights_only=True)
    edit(raw)
    raw["sha256"] = _checksum({k: raw[k] for k in ("metadata", "weights", "normalisation")})
    torch.save(raw, out)
    return out


def test_mismatched_contents_are_refused(saved, tmp_path):
    _, _, path = saved

    def wrong_width(raw):
        meta = json.loads(raw["metadata"])
        meta["spec"]["population"] += 1
        raw["metadata"] = json.dumps(meta)

    with pytest.raises(ModelFileError, match="inconsistent"):
        load_model(rewrite(path, tmp_path / "spec.pt", wrong_width))

    def newer(raw):
        raw["version"] = 99

    with pytest.raises(ModelFileError, match="version 99"):
        load_model(rewrite(path, tmp_path / "v99.pt", newer))

    def fewer_names(raw):
        meta = json.loads(raw["metadata"])
        meta["input_names"] = meta["input_names"][:2]
        raw["metadata"] = json.dumps(meta)

    with pytest.raises(ModelFileError, match="inconsistent"):
        load_model(rewrite(path, tmp_path / "names.pt", fewer_names))

    def stale_checksum(raw):
        raw["normalisation"]["target_std"] = raw["normalisation"]["target_std"] * 2

    edited = torch.load(path, weights_only=True)
    stale_checksum(edited)
    torch.save(edited, tmp_path / "stale.pt")
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(tmp_path / "stale.pt")
    assert edited["format"] == ARTIFACT_FORMAT


def test_save_refuses_a_description_of_another_network(tmp_path):
    net = SpikingRegressor(4, 4, "lif", [3], population=2)
    other = SpikingRegressor(4, 4, "lif", [5], population=2)
    with pytest.raises(ValueError, match="does not describe"):
        save_model(tmp_path / "m.pt", net, Artifact.describe(other, normalisation(), META, {}))


def test_a_file_written_before_skip_connections_existed_loads_and_saves_again(tmp_path):
    net = SpikingRegressor(4, 4, "slstm", [6], population=3)
    path = save_model(tmp_path / "m.pt", net, Artifact.describe(net, normalisation(), META, {}))
    raw = torch.load(path, weights_only=True)
    meta = json.loads(raw["metadata"])
    del meta["spec"]["skip"]
    raw["metadata"] = json.dumps(meta, sort_keys=True)
    raw["sha256"] = _checksum({k: raw[k] for k in ("metadata", "weights", "normalisation")})
    torch.save(raw, path)
    loaded, artifact = load_model(path)
    assert loaded.skip is None and artifact.spec["skip"] is False
    save_model(tmp_path / "again.pt", loaded, artifact)


def saved_spiking(tmp_path, seed: int, name: str, meta: dict = META, norm: Normalisation | None = None):
    torch.manual_seed(seed)
    net = SpikingRegressor(4, 4, "slstm", [6, 5], population=3).double()
    artifact = Artifact.describe(net, norm or normalisation(), meta, {"seed": seed, "train_time_s": 10.0 * seed})
    return net, save_model(tmp_path / name, net, artifact)


def test_an_ensemble_file_runs_the_mean_of_its_members(tmp_path):
    norm = normalisation()
    rounded = Normalisation(norm.input_mean + 1e-14 * norm.input_std, norm.input_std, norm.target_mean, norm.target_std * (1 + 1e-14))
    members = [saved_spiking(tmp_path, 1, "m1.pt", norm=norm), saved_spiking(tmp_path, 2, "m2.pt", norm=rounded)]  # rounding: same data
    net, artifact = combine_models([path for _, path in members])
    path = save_model(tmp_path / "ensemble.pt", net, artifact)
    loaded, loaded_artifact = load_model(path)
    assert isinstance(loaded, EnsembleRegressor) and loaded_artifact.spec["kind"] == "ensemble"
    assert loaded_artifact.stress_state == "plane_strain" and loaded_artifact.dtype == "float64"
    assert [m["seed"] for m in loaded_artifact.training["ensemble_of"]] == [1, 2]
    assert [m["train_time_s"] for m in loaded_artifact.training["ensemble_of"]] == [10.0, 20.0]
    assert loaded_artifact.training["train_time_s"] == 30.0
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), (members[0][0](x) + members[1][0](x)) / 2, rtol=0, atol=1e-12)


def test_an_ensemble_of_models_trained_on_other_data_is_refused(tmp_path):
    _, first = saved_spiking(tmp_path, 1, "a.pt")
    norm = normalisation()
    close = Normalisation(norm.input_mean, norm.input_std, norm.target_mean + 1e-6 * norm.target_std, norm.target_std)
    _, moved = saved_spiking(tmp_path, 2, "b.pt", norm=close)  # 1e-6 of a std: other data, not rounding
    _, plane_stress = saved_spiking(tmp_path, 3, "c.pt", meta={**META, "stress_state": "plane_stress"})
    torch.manual_seed(0)
    lstm = LSTMRegressor(4, 4, 5, 2, 3)
    lstm_path = save_model(tmp_path / "lstm.pt", lstm, Artifact.describe(lstm, normalisation(), META, {}))
    with pytest.raises(ModelFileError, match="normalisation"):
        combine_models([first, moved])
    with pytest.raises(ModelFileError, match="stress_state"):
        combine_models([first, plane_stress])
    with pytest.raises(ModelFileError, match="only spiking"):
        combine_models([first, lstm_path])
    with pytest.raises(ModelFileError, match="at least 2"):
        combine_models([first])
    with pytest.raises(ModelFileError, match="named twice"):
        combine_models([first, tmp_path / "." / "a.pt"])
    with pytest.raises(ModelFileError, match="not found"):
        combine_models([first, tmp_path / "missing.pt"])
