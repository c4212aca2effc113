"""Export a trained spiking regressor (torch) to the portable file the Lava worker reads.

The file (``.npz`` of float64 arrays with a JSON manifest inside, no pickles) is described in
:mod:`femsnn.loihi.lava_worker.network`; this module only maps torch parameters onto it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import femsnn
from femsnn.loihi.lava_worker.network import IntegratorStage, Network, Skip, SpikingLayer, save_network
from femsnn.snn.networks import SpikingRegressor
from femsnn.snn.neurons import LIF, RLIF, SLSTM
from femsnn.train.normalisation import Normalisation


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _layer(layer: torch.nn.Module, convert: Callable[[torch.Tensor], Any]) -> SpikingLayer:
    """One torch spiking layer -> its exported parameters (β clamped to [0, 1] as the forward pass does)."""
    if isinstance(layer, SLSTM):
        cell = layer.lstm_cell
        return SpikingLayer(
            kind="slstm",
            reset=layer.reset,
            input_weight=convert(cell.weight_ih),
            bias=convert(cell.bias_ih) + convert(cell.bias_hh),
            threshold=convert(layer.threshold),
            recurrent_weight=convert(cell.weight_hh),
        )
    if isinstance(layer, (LIF, RLIF)):
        return SpikingLayer(
            kind="rlif" if isinstance(layer, RLIF) else "lif",
            reset=layer.reset,
            input_weight=convert(layer.linear.weight),
            bias=convert(layer.linear.bias),
            threshold=convert(layer.threshold),
            beta=convert(layer.beta.clamp(0, 1)),
            recurrent_weight=convert(layer.recurrent.weight) if isinstance(layer, RLIF) else None,
        )
    raise TypeError(f"cannot export a layer of type {type(layer).__name__}")


def parameters_of(
    net: SpikingRegressor, convert: Callable[[torch.Tensor], Any] = _array
) -> tuple[tuple[SpikingLayer, ...], tuple[IntegratorStage, ...]]:
    """The spiking layers and decoder stages of net in the exported layout, each parameter passed through convert.

    convert = float64 numpy copies (the default) for a file; the identity keeps torch tensors with their gradients
    (quantisation-aware fine-tuning, :mod:`femsnn.loihi.qat`).
    """
    if not isinstance(net, SpikingRegressor):
        raise TypeError(f"only spiking regressors can be offloaded to Loihi, got {type(net).__name__}")
    decoder = net.decoder
    stages = (
        IntegratorStage(convert(decoder.linear1.weight), convert(decoder.linear1.bias), convert(decoder.beta1.clamp(0, 1))),
        IntegratorStage(convert(decoder.linear2.weight), convert(decoder.linear2.bias), convert(decoder.beta2.clamp(0, 1))),
    )
    return tuple(_layer(layer, convert) for layer in net.spiking_layers), stages


def network_from_regressor(net: SpikingRegressor, normalisation: Normalisation | None = None) -> Network:
    """The exportable description of net; without normalisation the network's units are used as they are."""
    layers, stages = parameters_of(net)
    if normalisation is None:
        normalisation = Normalisation(np.zeros(net.n_inputs), np.ones(net.n_inputs), np.zeros(net.n_outputs), np.ones(net.n_outputs))
    if (normalisation.n_inputs, normalisation.n_outputs) != (net.n_inputs, net.n_outputs):
        raise ValueError(
            f"normalisation is for {normalisation.n_inputs} inputs / {normalisation.n_outputs} outputs, "
            f"the network has {net.n_inputs} / {net.n_outputs}"
        )
    return Network(
        layers=layers,
        decoder=stages,
        population=net.decoder.population,
        input_mean=np.asarray(normalisation.input_mean, dtype=np.float64),
        input_std=np.asarray(normalisation.input_std, dtype=np.float64),
        output_mean=np.asarray(normalisation.target_mean, dtype=np.float64),
        output_std=np.asarray(normalisation.target_std, dtype=np.float64),
        skip=None if net.skip is None else Skip(_array(net.skip.weight), _array(net.skip.bias)),
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
