"""Export a trained spiking regressor (torch) to the portable file the Lava worker reads.

The file (``.npz`` of float64 arrays with a JSON manifest inside, no pickles) is described in
:mod:`femsnn.loihi.lava_worker.network`; this module only maps torch parameters onto it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import femsnn
from femsnn.loihi.lava_worker.network import IntegratorStage, Network, SpikingLayer, save_network
from femsnn.snn.networks import SpikingRegressor
from femsnn.snn.neurons import LIF, RLIF, SLSTM
from femsnn.train.normalisation import Normalisation


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _layer(layer: torch.nn.Module) -> SpikingLayer:
    """One torch spiking layer -> its exported arrays (β clamped to [0, 1] as the forward pass does)."""
    if isinstance(layer, SLSTM):
        cell = layer.lstm_cell
        return SpikingLayer(
            kind="slstm",
            reset=layer.reset,
            input_weight=_array(cell.weight_ih),
            bias=_array(cell.bias_ih) + _array(cell.bias_hh),
            threshold=_array(layer.threshold),
            recurrent_weight=_array(cell.weight_hh),
        )
    if isinstance(layer, (LIF, RLIF)):
        return SpikingLayer(
            kind="rlif" if isinstance(layer, RLIF) else "lif",
            reset=layer.reset,
            input_weight=_array(layer.linear.weight),
            bias=_array(layer.linear.bias),
            threshold=_array(layer.threshold),
            beta=_array(layer.beta.clamp(0, 1)),
            recurrent_weight=_array(layer.recurrent.weight) if isinstance(layer, RLIF) else None,
        )
    raise TypeError(f"cannot export a layer of type {type(layer).__name__}")


def network_from_regressor(net: SpikingRegressor, normalisation: Normalisation | None = None) -> Network:
    """The exportable description of net; without normalisation the network's units are used as they are."""
    if not isinstance(net, SpikingRegressor):
        raise TypeError(f"only spiking regressors can be offloaded to Loihi, got {type(net).__name__}")
    if normalisation is None:
        normalisation = Normalisation(np.zeros(net.n_inputs), np.ones(net.n_inputs), np.zeros(net.n_outputs), np.ones(net.n_outputs))
    if (normalisation.n_inputs, normalisation.n_outputs) != (net.n_inputs, net.n_outputs):
        raise ValueError(
            f"normalisation is for {normalisation.n_inputs} inputs / {normalisation.n_outputs} outputs, "
            f"the network has {net.n_inputs} / {net.n_outputs}"
        )
    decoder = net.decoder
    return Network(
        layers=tuple(_layer(layer) for layer in net.spiking_layers),
        decoder=(
            IntegratorStage(_array(decoder.linear1.weight), _array(decoder.linear1.bias), _array(decoder.beta1.clamp(0, 1))),
            IntegratorStage(_array(decoder.linear2.weight), _array(decoder.linear2.bias), _array(decoder.beta2.clamp(0, 1))),
        ),
        population=decoder.population,
        input_mean=np.asarray(normalisation.input_mean, dtype=np.float64),
        input_std=np.asarray(normalisation.input_std, dtype=np.float64),
        output_mean=np.asarray(normalisation.target_mean, dtype=np.float64),
        output_std=np.asarray(normalisation.target_std, dtype=np.float64),
        metadata={
            "source": type(net).__name__,
            "neuron": net.neuron,
            "hidden": list(net.hidden),
            "normalisation_mode": normalisation.mode,
            "femsnn_version": femsnn.__version__,
        },
    )


def export_regressor(net: SpikingRegressor, path: str | Path, normalisation: Normalisation | None = None) -> Path:
    """Write net (and the normalisation of its inputs and outputs) to path for the Lava worker; returns path."""
    path = Path(path)
    save_network(path, network_from_regressor(net, normalisation))
    return path
