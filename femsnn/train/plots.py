"""Figures of training runs and evaluations (matplotlib Figure objects written as PNG: no pyplot, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def plot_learning_curve(history: list[dict], path: Path, best_epoch: int) -> Path:
    """Training and validation MSE (standardised) per epoch, log scale, best epoch marked."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.semilogy(epochs, [h["train_loss"] for h in history], label="train")
    ax.semilogy(epochs, [h["val_loss"] for h in history], label="validation")
    ax.axvline(best_epoch, color="grey", ls=":", label=f"best (epoch {best_epoch})")
    ax.set(xlabel="epoch", ylabel="MSE (standardised stress)")
    ax.legend()
    return _save(fig, path)


def plot_stress_paths(
    strain: np.ndarray, reference: np.ndarray, prediction: np.ndarray, target_names: list[str], path: Path, samples: int
) -> Path:
    """A few paths: stress vs strain for one component (paper figs. 13, 17), else each component vs step."""
    picks = np.linspace(0, len(reference) - 1, min(samples, len(reference))).astype(int)
    n = reference.shape[2]
    fig = Figure(figsize=(5 * n, 4))
    axes = fig.subplots(1, n, squeeze=False)
    for k, ax in enumerate(axes[0]):
        for j, i in enumerate(picks):
            color = f"C{j % 10}"
            x = strain[i, :, 0] if n == 1 else np.arange(reference.shape[1])
            ax.plot(x, reference[i, :, k], color=color, lw=1.5, label="reference" if j == 0 else None)
            ax.plot(x, prediction[i, :, k], color=color, ls="--", lw=1.5, label="network" if j == 0 else None)
        ax.set(xlabel="strain" if n == 1 else "step", ylabel=f"{target_names[k]} (MPa)")
    axes[0][0].legend()
    return _save(fig, path)


def plot_path_errors(errors: dict[str, np.ndarray], path: Path) -> Path:
    """Per-path errors (paper fig. 12): code metric over all steps and eq. 14, per test path."""
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, key, label in ((axes[0], "code", "code metric, all steps"), (axes[1], "eq14", "eq. 14, all steps")):
        values = errors[key]
        ax.semilogy(np.arange(len(values)), values, ".", ms=3)
        ax.set(xlabel="path", ylabel=label)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
