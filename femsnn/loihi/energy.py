"""Energy estimates of a spiking regressor on Loihi, GPU and CPU from spikes counted in a real run (paper Table I).

The paper's Table I came from keras-spiking's ``ModelEnergy`` (science notes §7), which prices two kinds of
operation per device: a synaptic operation (a MAC on a GPU or CPU, a synaptic event on Loihi) and a neuron
update. We use its constants (:data:`DEVICES`, each with its source) and its rules: a spiking device pays a
synaptic operation only per event that arrives (an event times its fan-out), a non-spiking device computes
every connection at every step; every device updates every neuron at every step. Counting (per inference
step = one network time step of one sample, e.g. one material point at one load step):

* synaptic connections: every ``Dense`` of the exported network (:mod:`femsnn.loihi.lava_worker.network`):
  input -> layer, layer -> layer, recurrent (RLIF spikes, SLSTM real membrane), last layer membrane ->
  decoder stage 1 -> stage 2, plus the population vote (one addition per voting neuron) and, in (S)LSTM
  units, the three gate products c·σ(f), σ(i)·tanh(g), σ(o)·tanh(c) (always computed), and a skip
  connection's input -> output Dense with one addition per output into the vote;
* events on Loihi: spikes counted per layer and step x fan-out (layer -> layer at the same step; RLIF
  recurrence from the previous step); graded messages (the real input, SLSTM membrane feedback, membranes
  into the decoder) are sent by every source neuron at every step;
* neuron updates: one per LIF/RLIF neuron, decoder integrator and skip output (a memoryless integrator
  on Loihi), five per (S)LSTM unit (σ(i), σ(f), tanh(g), σ(o), tanh(c));
* the equivalent LSTM ANN (the paper's baseline, eq. 30, with the spiking network's layer sizes, head and
  population): dense MACs 4n (n_in + n) per LSTM layer, the head Linear(n, n) + LeakyReLU (n neuron
  updates) + Linear(n, population · n_outputs) and the vote (and the same skip connection), run on GPU and CPU.

As in keras-spiking, data movement, host I/O and idle power are not counted: these are rough estimates.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from femsnn.loihi.export import export_regressor, network_from_regressor
from femsnn.loihi.offload import spiking_model_and_data
from femsnn.loihi.lava_worker.network import Network
from femsnn.loihi.worker import BACKENDS, LavaWorker

KERAS_SPIKING = "keras-spiking ModelEnergy.devices (github.com/nengo/keras-spiking, keras_spiking/model_energy.py)"


@dataclass(frozen=True)
class Device:
    """Energy per synaptic operation and per neuron update (J); spiking devices pay synaptic operations per event."""

    name: str
    spiking: bool
    energy_per_synop: float
    energy_per_neuron: float
    source: str


DEVICES: dict[str, Device] = {
    "loihi": Device(
        "loihi", True, (23.6 + 3.5) * 1e-12, 81e-12,
        f"{KERAS_SPIKING}: (23.6 + 3.5) pJ per synaptic event, 81 pJ per neuron update, from Davies et al., "
        "'Loihi: a neuromorphic manycore processor with on-chip learning', IEEE Micro 38(1):82-99, 2018",
    ),
    "gpu": Device(
        "gpu", False, 0.3e-9, 0.3e-9,
        f"{KERAS_SPIKING}: 0.3 nJ per MAC or neuron update (Nvidia GTX Titan Black), from Degnan, Marr & Hasler, "
        "'Assessing trends in performance per watt for signal processing applications', IEEE TVLSI 24(1):58-66, 2016",
    ),
    "cpu": Device(
        "cpu", False, 8.6e-9, 8.6e-9,
        f"{KERAS_SPIKING}: 8.6 nJ per MAC or neuron update (Intel i7-4960X), from Degnan, Marr & Hasler 2016 (as for gpu)",
    ),
}  # fmt: skip

#: neuron updates per unit and products per unit of each neuron kind
NEURON_UPDATES = {"lif": 1, "rlif": 1, "slstm": 5, "lstm": 5, "integrator": 1, "leaky_relu": 1}
GATE_PRODUCTS = {"slstm": 3, "lstm": 3}

ASSUMPTIONS = (
    "energy per inference step = one network time step of one sample (one material point at one load step)",
    "spiking device (loihi): synaptic energy per event x fan-out; spikes counted per layer and step in the run; "
    "graded messages (real input, SLSTM membrane feedback, membranes into the decoder) sent by every source neuron every step",
    "non-spiking devices (gpu, cpu): every connection is one MAC at every step (dense ANN execution), as keras-spiking",
    "neuron updates: every neuron every step on every device; 5 per (S)LSTM unit, 1 per LIF/RLIF neuron, integrator, LeakyReLU",
    "(S)LSTM gate products (3 per unit) and the population vote (1 addition per voting neuron) count as synaptic operations",
    "the equivalent LSTM ANN has the spiking network's layer sizes, decoder width and population (paper eq. 30)",
    "a skip connection (input -> output Dense): n_inputs x n_outputs MACs plus one addition per output on every device, "
    "its graded input sent every step on Loihi, one neuron update per output (a memoryless integrator) on Loihi",
    "not counted (as keras-spiking): data movement, host I/O, idle and static power, the spike-routing mesh",
)


@dataclass(frozen=True)
class LayerOps:
    """Operations of one layer per inference step: connections (dense MACs), Loihi events, neuron updates."""

    name: str
    kind: str
    neurons: int
    connections: float
    events: float
    neuron_updates: float
    spikes: float | None = None  # mean spikes per step (spiking layers)

    def energy(self, device: Device) -> float:
        """Joules per inference step on device."""
        synops = self.events if device.spiking else self.connections
        return device.energy_per_synop * synops + device.energy_per_neuron * self.neuron_updates


def spiking_ops(net: Network, spike_counts: np.ndarray) -> list[LayerOps]:
    """Per-layer operations per inference step of net, averaged over a run's spike counts (P, T, n_layers)."""
    counts = np.asarray(spike_counts, dtype=np.float64)
    if counts.ndim != 3 or counts.shape[2] != len(net.layers) or min(counts.shape) < 1:
        raise ValueError(f"spike_counts must have shape (paths, steps, {len(net.layers)}), got {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("spike counts must not be negative")
    mean = counts.mean(axis=(0, 1))
    # RLIF feedback: the spikes of the previous step of the same path (none before the first step)
    previous = counts[:, :-1].sum(axis=(0, 1)) / (counts.shape[0] * counts.shape[1])
    ops, source_spikes = [], None
    for i, layer in enumerate(net.layers):
        n, fan_out = layer.n_neurons, layer.n_synapses
        connections = layer.n_inputs * fan_out
        events = connections if source_spikes is None else source_spikes * fan_out
        if layer.kind == "rlif":
            connections, events = connections + n * fan_out, events + previous[i] * fan_out
        elif layer.kind == "slstm":
            products = GATE_PRODUCTS["slstm"] * n
            connections, events = connections + n * fan_out + products, events + n * fan_out + products
        ops.append(LayerOps(f"layer{i}", layer.kind, n, connections, events, NEURON_UPDATES[layer.kind] * n, float(mean[i])))
        source_spikes = mean[i]
    for j, stage in enumerate(net.decoder):
        connections = stage.n_inputs * stage.n_neurons + (stage.n_neurons if j == len(net.decoder) - 1 else 0)
        ops.append(LayerOps(f"decoder{j}", "integrator", stage.n_neurons, connections, connections, stage.n_neurons))
    if net.skip is not None:
        connections = skip_connections(net.n_inputs, net.n_outputs)
        ops.append(LayerOps("skip", "integrator", net.n_outputs, connections, connections, NEURON_UPDATES["integrator"] * net.n_outputs))
    return ops


def skip_connections(n_inputs: int, n_outputs: int) -> int:
    """Synaptic operations per step of a skip connection: its dense MACs and one addition per output into the vote."""
    return n_inputs * n_outputs + n_outputs


def lstm_ops(n_inputs: int, hidden: list[int] | tuple[int, ...], n_outputs: int, population: int, skip: bool = False) -> list[LayerOps]:
    """Per-layer dense operations per step of the paper's LSTM baseline with the given layer sizes (and skip connection)."""
    ops, n_in = [], n_inputs
    for i, n in enumerate(hidden):
        connections = 4 * n * (n_in + n) + GATE_PRODUCTS["lstm"] * n
        ops.append(LayerOps(f"lstm{i}", "lstm", n, connections, connections, NEURON_UPDATES["lstm"] * n))
        n_in = n
    n_vote = population * n_outputs
    ops.append(LayerOps("linear1", "leaky_relu", n_in, n_in * n_in, n_in * n_in, NEURON_UPDATES["leaky_relu"] * n_in))
    ops.append(LayerOps("linear2", "linear", n_vote, n_in * n_vote + n_vote, n_in * n_vote + n_vote, 0))
    if skip:
        connections = skip_connections(n_inputs, n_outputs)
        ops.append(LayerOps("skip", "linear", n_outputs, connections, connections, 0))
    return ops


def _table(ops: list[LayerOps], devices: list[Device], steps_per_path: int, total_steps: int) -> dict:
    """Layers with their counts and energy per device, and the totals per step, per path and per run."""
    layers = [asdict(o) | {"energy_per_step_j": {d.name: o.energy(d) for d in devices}} for o in ops]
    per_step = {d.name: sum(o.energy(d) for o in ops) for d in devices}
    return {
        "layers": layers,
        "energy_per_step_j": per_step,
        "energy_per_path_j": {k: v * steps_per_path for k, v in per_step.items()},
        "energy_run_j": {k: v * total_steps for k, v in per_step.items()},
    }


def energy_report(net: Network, spike_counts: np.ndarray, devices: dict[str, Device] = DEVICES) -> dict:
    """Energy of a run (spike counts (P, T, n_layers)) of net on every device, and of the equivalent LSTM ANN."""
    paths, steps = np.shape(spike_counts)[:2]
    hidden, population = [layer.n_neurons for layer in net.layers], net.population
    snn = _table(spiking_ops(net, spike_counts), list(devices.values()), steps, paths * steps)
    dense = [d for d in devices.values() if not d.spiking]
    lstm = _table(lstm_ops(net.n_inputs, hidden, net.n_outputs, net.population, net.skip is not None), dense, steps, paths * steps)
    rows = [("spiking", name, snn["energy_per_step_j"][name]) for name in devices]
    rows += [("lstm", d.name, lstm["energy_per_step_j"][d.name]) for d in dense]
    reference = [e for model, name, e in rows if model == "spiking" and devices[name].spiking]
    return {
        "constants": {name: asdict(d) for name, d in devices.items()},
        "assumptions": list(ASSUMPTIONS),
        "run": {"paths": int(paths), "steps_per_path": int(steps), "inference_steps": int(paths * steps)},
        "spiking": snn | {"architecture": {"layers": [(layer.kind, layer.n_neurons) for layer in net.layers], "population": population, "skip": net.skip is not None}},
        "lstm": lstm | {"architecture": {"layers": hidden, "head": [hidden[-1], population * net.n_outputs], "population": population, "skip": net.skip is not None}},
        "table": [
            {
                "model": model,
                "device": name,
                "energy_per_step_j": e,
                "energy_per_path_j": e * steps,
                "ratio_to_spiking_on_loihi": e / reference[0] if reference else None,
            }
            for model, name, e in rows
        ],
    }


def torch_spike_counts(net: torch.nn.Module, x_std: np.ndarray) -> np.ndarray:
    """Spikes per path, step and layer (P, T, n_layers) of a torch spiking regressor on standardised inputs."""
    p = next(net.parameters())
    x = torch.as_tensor(np.asarray(x_std), dtype=p.dtype, device=p.device)
    state = net.init_state(x.shape[0])
    counts = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = net.step(x[:, t], state)
            counts.append(torch.stack([s.sum(dim=1) for s in net.spikes(state).values()], dim=-1))
    return torch.stack(counts, dim=1).cpu().numpy().astype(np.int64)


def plot_energy(report: dict, path: str | Path) -> Path:
    """Bar chart (log scale) of the energy per inference step per layer and device, spiking network and LSTM."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    colours = {device: f"C{k}" for k, device in enumerate(report["constants"])}
    for ax, model in zip(axes, ("spiking", "lstm")):
        table = report[model]
        names = [layer["name"] for layer in table["layers"]] + ["total"]
        devices = list(table["energy_per_step_j"])
        width = 0.8 / len(devices)
        for k, device in enumerate(devices):
            values = [layer["energy_per_step_j"][device] for layer in table["layers"]] + [table["energy_per_step_j"][device]]
            ax.bar(np.arange(len(names)) + (k - (len(devices) - 1) / 2) * width, values, width, label=device, color=colours[device])
        ax.set_xticks(np.arange(len(names)), names, rotation=30)
        ax.set_yscale("log")
        ax.set_title(f"{'spiking network' if model == 'spiking' else 'equivalent LSTM ANN'}")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("energy per inference step [J]")
    fig.suptitle("Estimated energy per inference step (keras-spiking constants; see energy.json for assumptions)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(report: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """energy.json and energy.png in out_dir (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "energy.json"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    return json_path, plot_energy(report, out / "energy.png")


def estimate_model_energy(
    model_path: str | Path,
    data_path: str | Path,
    out_dir: str | Path,
    *,
    split: str = "test",
    paths: int = 64,
    spikes: str = "torch",
    timeout: float | None = None,
) -> dict:
    """``femsnn energy MODEL DATA``: count spikes on the first paths of a split, write energy.json and energy.png.

    spikes: where the spikes are counted: ``torch`` (the model as trained), or a Lava backend (``sim-float``,
    ``sim-fixed``, ``hw``, ``auto``) running the exported network.
    """
    if paths < 1:
        raise ValueError(f"paths must be at least 1, got {paths}")
    if spikes not in ("torch", *BACKENDS):
        raise ValueError(f"spikes must be 'torch' or a Lava backend {BACKENDS}, got {spikes!r}")
    net, artifact, data = spiking_model_and_data(model_path, data_path, "an energy estimate")
    inputs = data.part(split).inputs_for(artifact.input_features)[:paths]
    network = network_from_regressor(net, artifact.normalisation)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if spikes == "torch":
        counts, source = torch_spike_counts(net, network.standardise_inputs(inputs)), "torch"
    else:
        with LavaWorker(export_regressor(net, out / "network.npz", artifact.normalisation), backend=spikes, timeout=timeout) as worker:
            run = worker.run(inputs)
        counts, source = run.spike_counts, f"lava {run.backend}"
    report = {"model": str(model_path), "data": str(data_path), "split": split, "spike_source": source}
    report |= energy_report(network, counts)
    write_report(report, out)
    return report
