"""The exported spiking regressor: one ``.npz`` of float64 arrays plus a JSON manifest inside it.

Written by :func:`femsnn.loihi.export.export_regressor` (main process, from torch) and read here by
the worker and by the numpy reference; numpy 1 and 2 read it with ``allow_pickle=False``. The
manifest (key ``manifest``, a unicode string array) records the format version, layer kinds and
sizes, reset modes, the normalisation formulas, the time-step semantics and the delay convention;
the arrays hold weights, biases, decay rates β (already clamped to [0, 1]) and thresholds.

The network is the paper's spiking regressor as femsnn codes it (science notes, section 3):

* constant-current input: the standardised input x_t drives the first layer at every step;
* spiking layers ``lif`` / ``rlif`` / ``slstm``; each receives a synaptic current
  ``I_t = input_weight @ in_t + bias (+ recurrent_weight @ feedback_{t-1})`` where ``in_t`` is x_t
  for the first layer and the previous layer's spikes S_t otherwise, and the feedback is the
  layer's own previous spikes (rlif) or real membrane h (slstm, the LSTM gates, order i, f, g, o);
* a decoder of non-resetting leaky integrator stages driven by the last layer's real membrane,
  and a mean over each output's ``population`` consecutive neurons of the last stage;
* optionally a skip connection (format version 2): y_std = vote + skip_weight @ x_t + skip_bias, a dense
  map of the standardised input straight to the outputs (no state).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "femsnn.loihi.network"
FORMAT_VERSION = 2
#: versions this module reads: 1 (no skip connection) and 2
READABLE_VERSIONS = (1, 2)
LAYER_KINDS = ("lif", "rlif", "slstm")
RESETS = ("subtract", "zero", "none")

TIME_STEP = (
    "one network step per input step; the standardised real input x_t = (x - input_mean) / input_std "
    "is fed as a constant current at every step (eq. 10); every state starts at rest (zero) at the "
    "first step of each sequence"
)
DELAY_CONVENTION = (
    "aligned: output y_t depends on inputs x_0..x_t, as in the torch network; a Lava graph adds one "
    "step of delay per synaptic (Dense) hop, which the worker removes before returning outputs"
)
NORMALISATION = {
    "inputs": "x_std = (x - input_mean) / input_std",
    "outputs": "y = output_mean + output_std * y_std",
}


class NetworkFormatError(ValueError):
    """An exported network file that is missing, of another format or version, or inconsistent."""


@dataclass(frozen=True)
class SpikingLayer:
    """One spiking layer: arrays in float64, sizes derived from them.

    input_weight (n_synapses, n_inputs), bias (n_synapses,), threshold (n_neurons,);
    beta (n_neurons,) for lif/rlif; recurrent_weight (n_synapses, n_neurons) for rlif/slstm.
    n_synapses is n_neurons, or 4 n_neurons for slstm (gates i, f, g, o).
    """

    kind: str
    reset: str
    input_weight: np.ndarray
    bias: np.ndarray
    threshold: np.ndarray
    beta: np.ndarray | None = None
    recurrent_weight: np.ndarray | None = None

    @property
    def n_inputs(self) -> int:
        return int(self.input_weight.shape[1])

    @property
    def n_neurons(self) -> int:
        return int(self.threshold.shape[0])

    @property
    def n_synapses(self) -> int:
        """Synaptic currents per step: n_neurons, or 4 n_neurons gate currents for slstm."""
        return 4 * self.n_neurons if self.kind == "slstm" else self.n_neurons


@dataclass(frozen=True)
class IntegratorStage:
    """A non-resetting leaky integrator stage: m_t = β m_{t-1} + weight @ in_t + bias."""

    weight: np.ndarray
    bias: np.ndarray
    beta: np.ndarray

    @property
    def n_inputs(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_neurons(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class Skip:
    """A linear input -> output map added to the vote: weight (n_outputs, n_inputs), bias (n_outputs,)."""

    weight: np.ndarray
    bias: np.ndarray

    def apply(self, x_std: np.ndarray) -> np.ndarray:
        """weight @ x + bias for standardised inputs (..., n_inputs)."""
        return x_std @ self.weight.T + self.bias


@dataclass(frozen=True)
class Network:
    """An exported spiking regressor with its normalisation (see the module docstring)."""

    layers: tuple[SpikingLayer, ...]
    decoder: tuple[IntegratorStage, ...]
    population: int
    input_mean: np.ndarray
    input_std: np.ndarray
    output_mean: np.ndarray
    output_std: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    skip: Skip | None = None

    def __post_init__(self) -> None:
        check_network(self)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.decoder[-1].n_neurons // self.population

    def standardise_inputs(self, x: np.ndarray) -> np.ndarray:
        """Physical inputs (..., n_inputs) -> the network's standardised inputs."""
        return (x - self.input_mean) / self.input_std

    def physical_outputs(self, y_std: np.ndarray) -> np.ndarray:
        """Standardised outputs (..., n_outputs) -> physical units."""
        return y_std * self.output_std + self.output_mean

    def vote(self, last_stage: np.ndarray) -> np.ndarray:
        """Mean of the last decoder stage (..., population·n_outputs) over each output's population."""
        return last_stage.reshape(*last_stage.shape[:-1], self.n_outputs, self.population).mean(axis=-1)


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise NetworkFormatError(message)


def _need(required: bool) -> str:
    return "required" if required else "not used"


def check_network(net: Network) -> None:
    """Raise NetworkFormatError unless layer kinds, resets and all array shapes chain consistently."""
    _expect(len(net.layers) >= 1 and len(net.decoder) >= 1, "a network needs a spiking layer and a decoder stage")
    n_in = net.layers[0].n_inputs
    for i, layer in enumerate(net.layers):
        where = f"layer{i}"
        _expect(layer.kind in LAYER_KINDS, f"{where}: kind must be one of {LAYER_KINDS}, got {layer.kind!r}")
        _expect(layer.reset in RESETS, f"{where}: reset must be one of {RESETS}, got {layer.reset!r}")
        n, n_syn = layer.n_neurons, layer.n_synapses
        _expect(layer.input_weight.shape == (n_syn, n_in), f"{where}: input_weight must be {(n_syn, n_in)}, got {layer.input_weight.shape}")
        _expect(layer.bias.shape == (n_syn,), f"{where}: bias must be {(n_syn,)}, got {layer.bias.shape}")
        _expect(layer.threshold.shape == (n,), f"{where}: threshold must be {(n,)}, got {layer.threshold.shape}")
        needs_beta, needs_recurrent = layer.kind != "slstm", layer.kind != "lif"
        _expect((layer.beta is not None) == needs_beta, f"{where}: beta is {_need(needs_beta)} for {layer.kind}")
        if layer.beta is not None:
            _expect(layer.beta.shape == (n,), f"{where}: beta must be {(n,)}, got {layer.beta.shape}")
            _expect(bool(np.all((layer.beta >= 0) & (layer.beta <= 1))), f"{where}: beta must lie in [0, 1]")
        _expect(
            (layer.recurrent_weight is not None) == needs_recurrent,
            f"{where}: recurrent_weight is {_need(needs_recurrent)} for {layer.kind}",
        )
        if layer.recurrent_weight is not None:
            shape = layer.recurrent_weight.shape
            _expect(shape == (n_syn, n), f"{where}: recurrent_weight must be {(n_syn, n)}, got {shape}")
        n_in = n
    for j, stage in enumerate(net.decoder):
        where, n = f"decoder{j}", stage.n_neurons
        _expect(stage.weight.shape[1] == n_in, f"{where}: weight must have {n_in} columns, got {stage.weight.shape}")
        _expect(stage.bias.shape == (n,) and stage.beta.shape == (n,), f"{where}: bias and beta must be {(n,)}")
        _expect(bool(np.all((stage.beta >= 0) & (stage.beta <= 1))), f"{where}: beta must lie in [0, 1]")
        n_in = n
    _expect(
        net.population >= 1 and n_in % net.population == 0,
        f"last decoder stage ({n_in} neurons) is not a whole number of populations of {net.population}",
    )
    n_out = n_in // net.population
    if net.skip is not None:
        shape = (n_out, net.n_inputs)
        _expect(net.skip.weight.shape == shape, f"skip: weight must be {shape}, got {net.skip.weight.shape}")
        _expect(net.skip.bias.shape == (n_out,), f"skip: bias must be {(n_out,)}, got {net.skip.bias.shape}")
    for name, size in (("input_mean", net.n_inputs), ("input_std", net.n_inputs), ("output_mean", n_out), ("output_std", n_out)):
        vec = getattr(net, name)
        _expect(vec.shape == (size,), f"{name} must have shape {(size,)}, got {vec.shape}")
    _expect(bool(np.all(net.input_std > 0) and np.all(net.output_std > 0)), "normalisation stds must be positive")
    for key, array in arrays_of(net).items():
        _expect(bool(np.all(np.isfinite(array))), f"{key} has non-finite entries")


def state_layout(net: Network) -> list[tuple[str, int]]:
    """The network's state variables in order, as (name, size): per layer ``layer{i}.membrane`` (then
    ``layer{i}.cell`` for slstm), then ``decoder.membrane{j}`` (j from 1): femsnn.snn's state names."""
    layout = []
    for i, layer in enumerate(net.layers):
        layout.append((f"layer{i}.membrane", layer.n_neurons))
        if layer.kind == "slstm":
            layout.append((f"layer{i}.cell", layer.n_neurons))
    return layout + [(f"decoder.membrane{j}", stage.n_neurons) for j, stage in enumerate(net.decoder, start=1)]


def arrays_of(net: Network) -> dict[str, np.ndarray]:
    """All arrays of net by their file key (``layer{i}.{field}``, ``decoder{j}.{field}``, normalisation)."""
    arrays: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers):
        for name in ("input_weight", "bias", "threshold", "beta", "recurrent_weight"):
            if getattr(layer, name) is not None:
                arrays[f"layer{i}.{name}"] = getattr(layer, name)
    for j, stage in enumerate(net.decoder):
        for name in ("weight", "bias", "beta"):
            arrays[f"decoder{j}.{name}"] = getattr(stage, name)
    if net.skip is not None:
        arrays["skip.weight"], arrays["skip.bias"] = net.skip.weight, net.skip.bias
    for name in ("input_mean", "input_std", "output_mean", "output_std"):
        arrays[name] = getattr(net, name)
    return arrays


def manifest_of(net: Network) -> dict[str, Any]:
    """The JSON manifest describing net (sizes, kinds, conventions; arrays are named, not inlined)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "n_inputs": net.n_inputs,
        "n_outputs": net.n_outputs,
        "time_step": TIME_STEP,
        "delay_convention": DELAY_CONVENTION,
        "normalisation": NORMALISATION,
        "layers": [
            {"kind": layer.kind, "n_inputs": layer.n_inputs, "n_neurons": layer.n_neurons, "reset": layer.reset}
            for layer in net.layers
        ],
        "decoder": {
            "input": "real membrane of the last spiking layer",
            "stages": [{"n_inputs": s.n_inputs, "n_neurons": s.n_neurons, "reset": "none"} for s in net.decoder],
            "population": net.population,
            "vote": "y_std[k] = mean of the last stage over neurons [k*population, (k+1)*population)",
        },
        "skip": None if net.skip is None else {"n_inputs": net.n_inputs, "n_outputs": net.n_outputs, "output": "y_std += skip.weight @ x_std + skip.bias"},
        "metadata": net.metadata,
    }


def save_network(path: str | os.PathLike, net: Network) -> None:
    """Write net to path (one ``.npz``: float64 arrays and the manifest string)."""
    arrays = {key: np.ascontiguousarray(a, dtype=np.float64) for key, a in arrays_of(net).items()}
    with open(path, "wb") as f:
        np.savez(f, manifest=np.array(json.dumps(manifest_of(net), indent=1)), **arrays)


def load_network(path: str | os.PathLike) -> Network:
    """Read and check a file written by :func:`save_network` (no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise NetworkFormatError(f"{path}: not a readable .npz without pickles ({exc})") from exc
    _expect("manifest" in arrays, f"{path}: no manifest: not an exported femsnn network")
    manifest = json.loads(str(arrays.pop("manifest")))
    _expect(manifest.get("format") == FORMAT, f"{path}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    _expect(
        manifest.get("format_version") in READABLE_VERSIONS,
        f"{path}: format version {manifest.get('format_version')} is not supported (this femsnn reads {READABLE_VERSIONS})",
    )

    def get(key: str) -> np.ndarray:
        _expect(key in arrays, f"{path}: array '{key}' is missing")
        return np.asarray(arrays[key], dtype=np.float64)

    def maybe(key: str) -> np.ndarray | None:
        return get(key) if key in arrays else None

    layers = tuple(
        SpikingLayer(
            kind=spec["kind"],
            reset=spec["reset"],
            input_weight=get(f"layer{i}.input_weight"),
            bias=get(f"layer{i}.bias"),
            threshold=get(f"layer{i}.threshold"),
            beta=maybe(f"layer{i}.beta"),
            recurrent_weight=maybe(f"layer{i}.recurrent_weight"),
        )
        for i, spec in enumerate(manifest["layers"])
    )
    decoder = tuple(
        IntegratorStage(get(f"decoder{j}.weight"), get(f"decoder{j}.bias"), get(f"decoder{j}.beta"))
        for j in range(len(manifest["decoder"]["stages"]))
    )
    return Network(
        layers=layers,
        decoder=decoder,
        population=int(manifest["decoder"]["population"]),
        input_mean=get("input_mean"),
        input_std=get("input_std"),
        output_mean=get("output_mean"),
        output_std=get("output_std"),
        metadata=manifest.get("metadata", {}),
        skip=Skip(get("skip.weight"), get("skip.bias")) if manifest.get("skip") else None,
    )
