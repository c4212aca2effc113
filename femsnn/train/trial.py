"""Trial steps: the stress for a strain part-way along a step, answered from the state at the step's start.

A finite-element Newton solve asks a material for the stress at trial strains between and beyond the converged
ones, always from the last committed state. Whole training paths show a network only the converged increments, so
in between its stress is whatever it makes of them: measured on the cylinder past the limit load, 5 % of the way
along a step the network already carried more than the step's end load, a spurious equilibrium that Newton found
(README, issue 4). With ``trial_weight > 0`` every batch also trains branch steps: from the network's state after
step t - 1, the strain e(t-1) + a (e(t) - e(t-1)) with a = trial_reach u^2, u ~ U(0, 1) (dense near the
step's start, where each Newton solve begins and the spurious equilibrium was), labelled by the data's reference
material from its own history after step t - 1 (replayed once along every training path).
"""

from __future__ import annotations

import numpy as np
import torch

from femsnn.materials import config_from_description, drive, make_material
from femsnn.snn.base import Regressor
from femsnn.train.data import STRAIN_FEATURES, Dataset, previous_strain, strain_inputs, strain_step_inputs
from femsnn.train.normalisation import Normalisation

#: largest difference between the data's stress and the replayed material's, relative to the largest stress,
#: below which the data counts as that material's answer (FE data is converged to a residual, not exactly)
REPLAY_TOLERANCE = 1e-4


class TrialSteps:
    """Branch steps of training paths: standardised inputs and reference stresses at random points of a step."""

    def __init__(
        self,
        data: Dataset,
        normalisation: Normalisation,
        reach: float = 1.25,
        points: int = 1,
        features: tuple[str, ...] | None = None,
    ) -> None:
        """features: the network's input features (default: the data's)."""
        strain, targets, meta = data.strain, data.targets, data.meta
        features = tuple(meta["input_features"] if features is None else features)
        if features not in (STRAIN_FEATURES[:1], STRAIN_FEATURES):
            raise ValueError(f"trial steps rebuild strain inputs, the data has inputs {list(features)}")
        if not meta.get("material"):
            raise ValueError("trial steps need the data's reference material, and the data names none")
        self.material = make_material(config_from_description(meta["material"]), meta["stress_state"])
        replay = drive(self.material, strain)
        mismatch = np.abs(replay.stress - targets).max() / max(np.abs(targets).max(), 1e-300)
        if mismatch > REPLAY_TOLERANCE:
            raise ValueError(
                f"trial steps need data that is its material's answer to its strain paths; {meta['material']['type']} "
                f"replayed along them differs by {mismatch:.2e} of the largest stress (tolerance {REPLAY_TOLERANCE})"
            )
        rest = self.material.initial_history(strain.shape[0])
        # history before step t, t = 0 .. T-1: rest, then the replayed history after steps 0 .. T-2
        self.history = {k: np.concatenate([rest[k][:, None], v[:, :-1]], axis=1) for k, v in replay.history.items()}
        self.strain, self.targets = strain, targets
        self.previous = previous_strain(strain)
        self.increments, self.reach, self.points, self.norm = len(features) == 2, reach, points, normalisation

    def draw(self, paths: torch.Tensor, generator: torch.Generator, like: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
        """One step t for the batch of training paths, ``points`` fractions a = reach u^2 per path: t and standardised
        inputs (B, points, n_in) and stresses (B, points, n), with like's dtype and device."""
        t = int(torch.randint(self.strain.shape[1], (1,), generator=generator))
        uniform = torch.rand(len(paths), self.points, 1, generator=generator, dtype=torch.float64)
        x, y = self.branch(paths.cpu().numpy(), t, (uniform.square() * self.reach).numpy())  # dense near the start
        return t, *(torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in (x, y))

    def branch(self, paths: np.ndarray, t: int, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised inputs (B, m, n_in) and reference stresses (B, m, n) at fractions (B, m, 1) of step t of paths."""
        start, end = self.previous[paths, t][:, None], self.strain[paths, t][:, None]
        strain = start + fractions * (end - start)  # (B, m, n)
        flat = strain.reshape(-1, strain.shape[-1])
        history = {k: np.repeat(v[paths, t], fractions.shape[1], axis=0) for k, v in self.history.items()}
        stress = self.material.update(flat, history, tangent=False).stress.reshape(strain.shape)
        inputs = strain_step_inputs(strain, np.broadcast_to(start, strain.shape), self.increments)
        return self.norm.encode_inputs(inputs), self.norm.encode_targets(stress)


def step_branches(net: Regressor, state: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
    """Outputs (B, m, n_out) of m branch inputs per path (B, m, n_in), each stepped from its path's state (B, ...)."""
    n_paths, m = inputs.shape[:2]
    repeated = {k: v.repeat_interleave(m, dim=0) for k, v in state.items()}
    out, _ = net.step(inputs.reshape(n_paths * m, -1), repeated)
    return out.reshape(n_paths, m, -1)


#: fractions of a step at which femsnn evaluate reports the branch-step error (0: a step without strain change)
EVALUATED_FRACTIONS = (0.0, 0.05, 0.25, 0.5, 1.0)
#: share of the steps, those with the largest strain increments, reported on their own (the steps past a limit load)
LARGE_STEP_SHARE = 0.1


@torch.no_grad()
def branch_step_errors(
    net: Regressor, steps: TrialSteps, fractions: tuple[float, ...] = EVALUATED_FRACTIONS
) -> dict[str, dict[str, float]]:
    """RMS of the stress error's norm (MPa, as femsnn.train.metrics) at each fraction of a step, stepped from the
    network's state before the step: how well it answers the trial strains of a Newton solve. Over every step of
    steps' paths ("all") and over the LARGE_STEP_SHARE of them with the largest strain increments ("large"); and
    the same for the error of the stress change from the path's stress before the step ("all_change",
    "large_change": network against label, so the error the network already had there drops out; the slope Newton
    sees). At fraction 1 "all" is the error of the paths themselves."""
    p = next(net.parameters())
    n_paths, n_steps = steps.strain.shape[:2]
    everyone, m = np.arange(n_paths), len(fractions)
    at = np.broadcast_to(np.asarray(fractions, dtype=np.float64)[None, :, None], (n_paths, m, 1))
    inputs = steps.norm.encode_inputs(strain_inputs(steps.strain, steps.increments))
    increments = np.linalg.norm(steps.strain - steps.previous, axis=-1)
    large = increments >= np.quantile(increments, 1.0 - LARGE_STEP_SHARE)  # (P, T)
    state = net.init_state(n_paths)
    committed_error = np.zeros((n_paths, 1, steps.strain.shape[-1]))  # network minus label before the step: 0 at rest
    squared, squared_change = np.zeros((n_paths, n_steps, m)), np.zeros((n_paths, n_steps, m))
    for t in range(n_steps):
        x, y = steps.branch(everyone, t, at)
        out = step_branches(net, state, torch.as_tensor(x, dtype=p.dtype, device=p.device))
        error = steps.norm.decode_targets(out.double().cpu().numpy()) - steps.norm.decode_targets(y)
        squared[:, t] = np.square(error).sum(axis=2)
        squared_change[:, t] = np.square(error - committed_error).sum(axis=2)
        out, state = net.step(torch.as_tensor(inputs[:, t], dtype=p.dtype, device=p.device), state)
        committed_error = (steps.norm.decode_targets(out.double().cpu().numpy()) - steps.targets[:, t])[:, None]
    rms = {
        "all": np.sqrt(squared.mean(axis=(0, 1))),
        "large": np.sqrt(squared[large].mean(axis=0)),
        "all_change": np.sqrt(squared_change.mean(axis=(0, 1))),
        "large_change": np.sqrt(squared_change[large].mean(axis=0)),
    }
    return {where: {f"{f:g}": float(v) for f, v in zip(fractions, values, strict=True)} for where, values in rms.items()}
