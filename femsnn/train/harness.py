"""Training of regressors on stress paths: standardisation, AdamW, BPTT, checkpoints that survive a kill.

The recipe as the authors coded it is the default: standardise with the training set, MSE on the
standardised stress over all steps, AdamW (lr 1e-3, betas (0.9, 0.999), weight decay 0.01), no
schedule, backpropagation through whole paths, the network with the lowest validation MSE kept.
Options: scalar (authors) or per-component (default) standardisation, cosine / one-cycle LR
schedule (stepped per optimiser step), truncated BPTT (the state is carried over the whole path,
gradients are cut and the optimiser steps every ``truncation`` steps), gradient-norm clipping,
extra weight on the last step's MSE (the stress an FE step keeps; the paper's "last step" metric),
activity regularisation of spiking networks (weight * mean over layers of (rate - target)^2, rates
from the surrogate spikes), branch steps part-way along a step from the state at its start
(``trial_weight``, femsnn.train.trial: the strains a Newton solve asks about; ``trial_increment_weight``: their
stress change from the step's start, the slope Newton sees), paths turned into
random frames (``augment = "rotations"``, femsnn.train.augment), early stopping on the validation
MSE, float32/float64, cpu/cuda. A network with a skip connection (``skip = true`` in its spec)
starts with it fitted by least squares (:func:`fit_skip`) or set to the data material's elastic
stiffness (:func:`elastic_skip`), optionally kept fixed, so training only adds the nonlinear part.

A checkpoint (model, best model, optimiser, schedule, shuffling RNG, history) is written atomically
(temporary file, then rename) after every epoch; ``train`` resumes from it, so a killed run that is
started again ends exactly as an uninterrupted one with the same settings.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
import tqdm
from pydantic import Field, model_validator

from femsnn.config import Strict
from femsnn.materials.elastic import elastic_stiffness
from femsnn.runtime import configure_torch
from femsnn.snn.base import Regressor, State
from femsnn.train.augment import PathRotations
from femsnn.train.data import Dataset
from femsnn.train.normalisation import Normalisation
from femsnn.train.trial import TrialSteps, step_branches

CHECKPOINT_FORMAT = "femsnn-checkpoint"

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]


class TrainingSettings(Strict):
    """``[training]``: optimiser, schedule, BPTT, regularisation, stopping, numerics."""

    epochs: Count = 100
    batch_size: Count = 256
    learning_rate: PositiveFloat = 1e-3  # the peak rate of the one-cycle schedule
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    weight_decay: NonNegativeFloat = 0.01
    schedule: Literal["none", "cosine", "onecycle"] = "none"
    warmup_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3  # one-cycle: share of steps spent warming up
    truncation: Count | None = None  # truncated BPTT window in steps (None: whole paths)
    clip_grad_norm: PositiveFloat | None = None
    last_step_weight: NonNegativeFloat = 0.0  # loss = MSE(all steps) + weight * (last-step term)
    last_step_loss: Literal["mse", "relative"] = "mse"  # last-step term: MSE, or squared error / (|y|^2 + floor^2)
    relative_floor: PositiveFloat = 0.1  # standardised |y| below which "relative" stops growing its weight
    increment_weight: NonNegativeFloat = 0.0  # loss += weight * MSE of the stress increments between steps (slopes)
    spike_rate_weight: NonNegativeFloat = 0.0  # loss += weight * mean over layers of (rate - target)^2
    spike_rate_target: Annotated[float, Field(ge=0, le=1)] = 0.0
    augment: Literal["none", "rotations"] = "none"  # rotations: each training path in a random frame (isotropic data)
    trial_weight: NonNegativeFloat = 0.0  # loss += weight * MSE of branch steps part-way along a step (femsnn.train.trial)
    trial_points: Count = 4  # branch steps per path and batch, all from one random step t
    trial_reach: PositiveFloat = 1.25  # a branch step goes a = reach u^2, u ~ U(0, 1), of the way along the step
    trial_increment_weight: NonNegativeFloat = 0.0  # loss += weight * MSE of the branch steps' stress change from step t - 1
    patience: Count | None = None  # early stopping: epochs without a better validation MSE
    normalisation: Literal["component", "scalar"] = "component"
    skip_init: Literal["least_squares", "elastic"] = "least_squares"  # start of a skip connection (fit_skip / elastic_skip)
    skip_trainable: bool = True  # False: the skip connection keeps its start
    seed: int = 42  # initial weights (set by the caller) and shuffling
    dtype: Literal["float32", "float64"] = "float32"
    device: Literal["cpu", "cuda"] = "cpu"
    threads: Count | None = None  # torch intra-op threads (None: FEMSNN_TORCH_THREADS or torch's default)
    eval_batch_size: Count = 1024  # paths per forward pass in validation and prediction
    progress: bool = True  # tqdm bar over epochs

    @model_validator(mode="after")
    def _trial_steps_alone(self) -> TrainingSettings:
        if self.trial_weight > 0 and (self.truncation is not None or self.spike_rate_weight > 0):
            raise ValueError("trial_weight > 0 trains whole paths without activity regularisation: "
                             "leave truncation and spike_rate_weight unset")
        if self.trial_increment_weight > 0 and self.trial_weight == 0:
            raise ValueError("trial_increment_weight weighs the branch steps of trial_weight: set trial_weight > 0")
        return self


@dataclass
class TrainingResult:
    """The trained network (best validation weights loaded) and how it got there."""

    net: Regressor
    normalisation: Normalisation
    history: list[dict]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    train_time_s: float


class CheckpointError(ValueError):
    """A checkpoint that belongs to another run (different settings, data or network) or is damaged."""


EpochCallback = Callable[[int, dict], None]


def train(
    net: Regressor,
    data: Dataset,
    settings: TrainingSettings,
    *,
    checkpoint: str | Path | None = None,
    on_epoch: EpochCallback | None = None,
    normalisation: Normalisation | None = None,
) -> TrainingResult:
    """Train net on data's train split, validating on its val split every epoch; resume from checkpoint if it exists.

    on_epoch(epoch, record) is called after each epoch's checkpoint is written (epochs count from 1).
    normalisation: net is already trained with it (fine-tuning): it is kept, and so is net's skip connection.
    """
    configure_torch(settings.threads)
    device, dtype = _device(settings.device), getattr(torch, settings.dtype)
    train_part, val_part = data.part("train"), data.part("val")
    if train_part.inputs.shape[2] != net.n_inputs or train_part.targets.shape[2] != net.n_outputs:
        raise ValueError(
            f"network maps {net.n_inputs} -> {net.n_outputs} components, data has "
            f"{train_part.inputs.shape[2]} inputs and {train_part.targets.shape[2]} targets"
        )
    if settings.spike_rate_weight > 0 and not hasattr(net, "spikes"):
        raise ValueError(f"spike_rate_weight > 0 needs a spiking network, {type(net).__name__} has no spikes")
    warm = normalisation is not None
    norm = normalisation if warm else Normalisation.fit(train_part.inputs, train_part.targets, settings.normalisation)
    x_train, y_train = (_tensor(a, device, dtype) for a in (norm.encode_inputs(train_part.inputs), norm.encode_targets(train_part.targets)))
    x_val, y_val = (_tensor(a, device, dtype) for a in (norm.encode_inputs(val_part.inputs), norm.encode_targets(val_part.targets)))

    net.to(device=device, dtype=dtype)
    skip = getattr(net, "skip", None)
    if skip is not None and not warm:  # a network being fine-tuned keeps its own
        if settings.skip_init == "elastic":
            elastic_skip(skip, norm, data.meta)
        else:
            fit_skip(skip, x_train, y_train)
    if skip is not None:
        skip.requires_grad_(settings.skip_trainable)
    augment = PathRotations(norm, data.meta) if settings.augment == "rotations" else None
    trial = TrialSteps(train_part, norm, settings.trial_reach, settings.trial_points) if settings.trial_weight > 0 else None
    loop = _Loop(net, settings, n_paths=x_train.shape[0], n_steps=x_train.shape[1], augment=augment, trial=trial)
    path = Path(checkpoint) if checkpoint is not None else None
    fingerprint = _fingerprint(net, settings, data, with_weights=warm)
    if path is not None and path.exists():
        loop.restore(_read_checkpoint(path, fingerprint))

    remaining = 0 if loop.stopped_early else settings.epochs - loop.epoch
    bar = tqdm.tqdm(total=settings.epochs, initial=loop.epoch, disable=not settings.progress, desc="epochs")
    for _ in range(remaining):
        start = time.perf_counter()
        train_loss = loop.run_epoch(x_train, y_train)
        val = evaluate_standardised(net, x_val, y_val, settings.eval_batch_size)
        loop.elapsed += time.perf_counter() - start
        record = loop.finish_epoch(train_loss, val)
        if path is not None:
            _write_checkpoint(path, loop.state(fingerprint))
        bar.update()
        bar.set_postfix(train=f"{train_loss:.3e}", val=f"{val['loss']:.3e}", best=loop.best_epoch)
        if on_epoch is not None:
            on_epoch(loop.epoch, record)
        if loop.stopped_early:
            break
    bar.close()
    net.load_state_dict(loop.best_model)
    net.eval()
    return TrainingResult(net, norm, loop.history, loop.best_epoch, loop.epoch, loop.stopped_early, loop.elapsed)


class _Loop:
    """Mutable training state: optimiser, schedule, shuffling generator, best model, history."""

    def __init__(
        self,
        net: Regressor,
        settings: TrainingSettings,
        n_paths: int,
        n_steps: int,
        augment: PathRotations | None = None,
        trial: TrialSteps | None = None,
    ) -> None:
        self.net, self.settings, self.augment, self.trial = net, settings, augment, trial
        self.optimizer = torch.optim.AdamW(
            net.parameters(), lr=settings.learning_rate, betas=settings.betas, weight_decay=settings.weight_decay
        )
        window = settings.truncation or n_steps
        self.chunks = [slice(t, min(t + window, n_steps)) for t in range(0, n_steps, window)]
        total = settings.epochs * math.ceil(n_paths / settings.batch_size) * len(self.chunks)
        self.scheduler = _scheduler(self.optimizer, settings, total)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.epoch, self.best_epoch, self.bad_epochs = 0, 0, 0
        self.best_loss, self.elapsed, self.stopped_early = math.inf, 0.0, False
        self.trial_loss = math.nan  # mean standardised MSE of the last epoch's branch steps
        self.best_model = copy.deepcopy(net.state_dict())
        self.history: list[dict] = []

    def run_epoch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One pass over the shuffled training paths; returns the mean standardised MSE."""
        self.net.train()
        order = torch.randperm(x.shape[0], generator=self.generator).to(x.device)
        total, trial_total = 0.0, 0.0
        n_steps = x.shape[1]
        for lo in range(0, x.shape[0], self.settings.batch_size):
            idx = order[lo : lo + self.settings.batch_size]
            xb, yb = x[idx], y[idx]
            branch = None
            if self.trial is not None:  # branch steps ride along as extra steps, so augmentation turns them too
                t, bx, by = self.trial.draw(idx, self.generator, xb)
                xb, yb = torch.cat([xb, bx], dim=1), torch.cat([yb, by], dim=1)
            if self.augment is not None:
                xb, yb = self.augment(xb, yb, self.generator)
            if self.trial is not None:
                branch = (t, xb[:, n_steps:], yb[:, n_steps:])
                xb, yb = xb[:, :n_steps], yb[:, :n_steps]
            mse, trial_mse = self._batch(xb, yb, branch)
            total, trial_total = total + mse * len(idx), trial_total + trial_mse * len(idx)
        self.trial_loss = trial_total / x.shape[0] if self.trial is not None else math.nan
        return total / x.shape[0]

    def _batch(
        self, x: torch.Tensor, y: torch.Tensor, branch: tuple[int, torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[float, float]:
        """Optimiser steps on one batch (one per truncation window); returns its path-averaged MSE and the MSE of
        its branch steps (NaN without): branch = (t, inputs, targets) of steps from the state before step t."""
        s = self.settings
        state = None
        mse_sum, trial_mse = 0.0, math.nan
        want_spikes = s.spike_rate_weight > 0
        for chunk in self.chunks:
            if branch is not None:
                pred, branch_pred = branch_rollout(self.net, x, *branch[:2])
                rates = {}
            elif len(self.chunks) == 1 and not want_spikes:
                pred, rates = self.net(x), {}
            else:
                state = self.net.init_state(x.shape[0]) if state is None else {k: v.detach() for k, v in state.items()}
                pred, state, rates = rollout(self.net, x[:, chunk], state, want_spikes)
            loss = stress_loss(pred, y[:, chunk], s, ends_path=chunk.stop == y.shape[1])
            if branch is not None:
                trial_term = torch.nn.functional.mse_loss(branch_pred, branch[2])
                loss = loss + s.trial_weight * trial_term
                trial_mse = trial_term.item()
                if s.trial_increment_weight > 0:
                    loss = loss + s.trial_increment_weight * branch_change_loss(pred, y, branch[0], branch_pred, branch[2])
            if want_spikes:
                loss = loss + s.spike_rate_weight * torch.stack([(r - s.spike_rate_target) ** 2 for r in rates.values()]).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if s.clip_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), s.clip_grad_norm)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            mse_sum += torch.nn.functional.mse_loss(pred.detach(), y[:, chunk]).item() * (chunk.stop - chunk.start)
        return mse_sum / self.chunks[-1].stop, trial_mse

    def finish_epoch(self, train_loss: float, val: dict) -> dict:
        """Record the epoch, keep the best model, update early stopping; returns the record."""
        self.epoch += 1
        if val["loss"] < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = val["loss"], self.epoch, 0
            self.best_model = copy.deepcopy(self.net.state_dict())
        else:
            self.bad_epochs += 1
        patience = self.settings.patience
        self.stopped_early = patience is not None and self.bad_epochs >= patience
        record = {
            "epoch": self.epoch,
            "train_loss": train_loss,
            "val_loss": val["loss"],
            "val_code_all": val["code_all"],
            "val_code_last": val["code_last"],
            "val_spike_rates": val["spike_rates"],
            **({"train_trial_loss": self.trial_loss} if self.trial is not None else {}),
            "learning_rate": self.optimizer.param_groups[0]["lr"],
            "time_s": self.elapsed,
        }
        self.history.append(record)
        return record

    def state(self, fingerprint: str) -> dict:
        """Everything needed to continue exactly where this epoch ended."""
        return {
            "format": CHECKPOINT_FORMAT,
            "fingerprint": fingerprint,
            "epoch": self.epoch,
            "model": self.net.state_dict(),
            "best_model": self.best_model,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "best_epoch": self.best_epoch,
            "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "elapsed": self.elapsed,
            "history": json.dumps(self.history),
        }

    def restore(self, ckpt: dict) -> None:
        """Inverse of state()."""
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        self.generator.set_state(ckpt["generator"])
        self.best_model = ckpt["best_model"]
        self.epoch, self.best_epoch, self.bad_epochs = ckpt["epoch"], ckpt["best_epoch"], ckpt["bad_epochs"]
        self.best_loss, self.elapsed, self.stopped_early = ckpt["best_loss"], ckpt["elapsed"], ckpt["stopped_early"]
        self.history = json.loads(ckpt["history"])


@torch.no_grad()
def fit_skip(skip: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> None:
    """Set a skip connection to the least-squares linear map of the (standardised) targets on the inputs.

    The network then starts as the best linear (elastic-like) fit and learns only the nonlinear remainder.
    """
    inputs = x.reshape(-1, x.shape[-1]).double().cpu()
    design = torch.cat([inputs, torch.ones(inputs.shape[0], 1, dtype=torch.float64)], dim=1)
    solution = torch.linalg.lstsq(design, y.reshape(-1, y.shape[-1]).double().cpu(), driver="gelsd").solution
    skip.weight.copy_(solution[:-1].T)
    skip.bias.copy_(solution[-1])


@torch.no_grad()
def elastic_skip(skip: torch.nn.Linear, normalisation: Normalisation, meta: dict) -> None:
    """Set a skip connection to the elastic stiffness of the data's material, in standardised units.

    stress = C strain (increments weigh nothing), so the network learns only the plastic part -C strain_p,
    zero wherever the material is elastic. Needs strain as the first input feature and E (and nu) in meta.
    """
    material = meta.get("material") or {}
    n = len(meta["target_names"])
    if tuple(meta["input_features"])[:1] != ("strain",):
        raise ValueError(f"an elastic skip needs strain as the first input feature, the data has {meta['input_features']}")
    if "E" not in material or (n > 1 and "nu" not in material):
        raise ValueError(f"an elastic skip needs E (and nu) of the data's material, the data describes {material or 'none'}")
    stiffness = elastic_stiffness(material["E"], material.get("nu", 0.0), n)
    weight = np.zeros((n, normalisation.n_inputs))
    weight[:, :n] = stiffness * normalisation.input_std[:n] / normalisation.target_std[:, None]
    bias = (stiffness @ normalisation.input_mean[:n] - normalisation.target_mean) / normalisation.target_std
    skip.weight.copy_(torch.as_tensor(weight))
    skip.bias.copy_(torch.as_tensor(bias))


def stress_loss(prediction: torch.Tensor, target: torch.Tensor, settings: TrainingSettings, ends_path: bool = True) -> torch.Tensor:
    """MSE over all steps and components, plus last_step_weight x a last-step term if the window ends the path,
    plus increment_weight x the MSE of the step-to-step stress increments (unloading stiffness, hardening slope).

    The "relative" last-step term weighs each path's squared error by 1 / (|y|^2 + floor^2), the weighting of the
    code metric (errors relative to the standardised label): small labels, such as the zero stress that ends an
    elastic triangle path, count as much as large ones.
    """
    loss = torch.nn.functional.mse_loss(prediction, target)
    if settings.last_step_weight > 0 and ends_path:
        error = (prediction[:, -1] - target[:, -1]).square()
        if settings.last_step_loss == "relative":
            term = (error.sum(dim=-1) / (target[:, -1].square().sum(dim=-1) + settings.relative_floor**2)).mean()
        else:
            term = error.mean()
        loss = loss + settings.last_step_weight * term
    if settings.increment_weight > 0 and prediction.shape[1] > 1:
        loss = loss + settings.increment_weight * torch.nn.functional.mse_loss(prediction.diff(dim=1), target.diff(dim=1))
    return loss


def branch_change_loss(
    prediction: torch.Tensor, target: torch.Tensor, t: int, branch_prediction: torch.Tensor, branch_target: torch.Tensor
) -> torch.Tensor:
    """MSE of the branch steps' stress change from their path's stress after step t - 1 (network against label): the
    slope a Newton solve sees from the committed state, free of the error the network already had there. From rest
    (t = 0) both start at zero stress, so the term is the branch steps' own MSE."""
    if t == 0:
        return torch.nn.functional.mse_loss(branch_prediction, branch_target)
    committed_prediction, committed_target = prediction[:, t - 1 : t], target[:, t - 1 : t]
    return torch.nn.functional.mse_loss(branch_prediction - committed_prediction, branch_target - committed_target)


def rollout(
    net: Regressor, x: torch.Tensor, state: State, want_spikes: bool = False
) -> tuple[torch.Tensor, State, dict[str, torch.Tensor]]:
    """Step net over x (B, T, n_in) from state: outputs (B, T, n_out), final state, per-layer spike rates
    (through the network's whole-sequence path where it has one)."""
    if hasattr(net, "sequence"):
        y, state, spikes = net.sequence(x, state)
        return y, state, {k: v.mean() for k, v in spikes.items()} if want_spikes else {}
    outputs, sums = [], {}
    for t in range(x.shape[1]):
        y, state = net.step(x[:, t], state)
        outputs.append(y)
        if want_spikes:
            for name, spikes in net.spikes(state).items():
                sums[name] = sums.get(name, 0.0) + spikes.mean()
    return torch.stack(outputs, dim=1), state, {k: v / x.shape[1] for k, v in sums.items()}


def branch_rollout(net: Regressor, x: torch.Tensor, t: int, branch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs (B, T, n_out) of whole paths x from rest, and of the branch inputs (B, m, n_in) each stepped from
    its path's state before step t (B, m, n_out)."""
    state = net.init_state(x.shape[0])
    head = x[:, :0, :0].new_zeros(x.shape[0], 0, net.n_outputs)
    if t > 0:
        head, state, _ = rollout(net, x[:, :t], state)
    branch_out = step_branches(net, state, branch)
    tail, _, _ = rollout(net, x[:, t:], state)
    return torch.cat([head, tail], dim=1), branch_out


@torch.no_grad()
def evaluate_standardised(net: Regressor, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> dict:
    """Validation numbers in standardised units: MSE, code metric (all steps, last step), spike rates."""
    net.eval()
    pred, rates = predict_standardised(net, x, batch_size)
    diff = torch.linalg.vector_norm(pred - y, dim=-1)
    rel = diff / torch.linalg.vector_norm(y, dim=-1)
    return {
        "loss": torch.nn.functional.mse_loss(pred, y).item(),
        "code_all": rel[:, 1:].mean().item(),
        "code_last": rel[:, -1].mean().item(),
        "spike_rates": rates,
    }


@torch.no_grad()
def predict_standardised(net: Regressor, x: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, dict[str, float]]:
    """Outputs (P, T, n_out) for standardised inputs, and the mean spike rate of each spiking layer."""
    want_spikes = hasattr(net, "spikes")
    outs, sums = [], {}
    for lo in range(0, x.shape[0], batch_size):
        xb = x[lo : lo + batch_size]
        pred, _, rates = rollout(net, xb, net.init_state(xb.shape[0]), want_spikes) if want_spikes else (net(xb), None, {})
        outs.append(pred)
        for k, v in rates.items():
            sums[k] = sums.get(k, 0.0) + v.item() * xb.shape[0]
    return torch.cat(outs), {k: v / x.shape[0] for k, v in sums.items()}


def predict(net: Regressor, normalisation: Normalisation, inputs: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, dict[str, float]]:
    """Stress paths (P, T, n_out) in MPa (float64) for physical inputs (P, T, n_in), and per-layer spike rates."""
    p = next(net.parameters())
    x = _tensor(normalisation.encode_inputs(inputs), p.device, p.dtype)
    pred, rates = predict_standardised(net, x, batch_size)
    return normalisation.decode_targets(pred.cpu().double().numpy()), rates


def _scheduler(optimizer: torch.optim.Optimizer, s: TrainingSettings, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The LR schedule over all optimiser steps of the run (None: constant)."""
    if s.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if s.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=s.learning_rate, total_steps=total_steps, pct_start=s.warmup_fraction
        )
    return None


def _fingerprint(net: Regressor, settings: TrainingSettings, data: Dataset, with_weights: bool = False) -> str:
    """Hash of what makes a run: settings (not progress, threads, eval batch), architecture, parameter shapes, data,
    and with_weights the starting weights (a fine-tuning run starts from a given model, not from the seed)."""
    h = hashlib.sha256()
    h.update(settings.model_dump_json(exclude={"progress", "threads", "eval_batch_size"}).encode())
    h.update(repr([(k, tuple(v.shape)) for k, v in net.state_dict().items()]).encode())
    if with_weights:
        for v in net.state_dict().values():
            h.update(v.detach().cpu().double().numpy().tobytes())
    h.update(type(net).__name__.encode())
    for arr in (data.inputs, data.targets, data.split.astype("U5")):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _write_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file next to path, then rename over it (never a half-written checkpoint)."""
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    os.replace(tmp, path)


def _read_checkpoint(path: Path, fingerprint: str) -> dict:
    """Load a checkpoint of this run; CheckpointError for a damaged one or one of another run."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged files
        raise CheckpointError(f"{path}: unreadable checkpoint ({exc}); delete it to start afresh") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a femsnn training checkpoint")
    if ckpt.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: checkpoint of a different run (settings, network or data changed); delete it or use another output folder"
        )
    return ckpt


def _device(name: str) -> torch.device:
    """torch device, with a clear error when CUDA is asked for but absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA device")
    return torch.device(name)


def _tensor(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
