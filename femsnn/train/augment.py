"""Training-path augmentation: turned and mirrored copies of strain-stress paths (isotropic materials).

An isotropic material answers a strain history seen in another frame with its stress seen in that frame:
s(Q e) = Q s(e) for every change of frame Q (femsnn.mandel.mandel_rotation). Paths from one FE model
cover only the orientations its geometry produces (the cylinder's quarter: one sign of in-plane shear
per orientation), so a network trained on them alone is not isotropic. ``augment = "rotations"`` turns
every training path of every batch by a random angle about z, mirrored (y -> -y) half of the time, and
trains on that; validation and test paths are left as they are.
"""

from __future__ import annotations

import numpy as np
import torch

from femsnn.mandel import StressState, mandel_rotation, rotation_about_z
from femsnn.train.data import STRAIN_FEATURES
from femsnn.train.normalisation import Normalisation


class PathRotations:
    """Random changes of frame of standardised (B, T, n_inputs) input and (B, T, n) target batches."""

    def __init__(self, normalisation: Normalisation, meta: dict) -> None:
        state = StressState(meta["stress_state"])
        features = tuple(meta["input_features"])
        if state is StressState.UNIAXIAL_STRESS:
            raise ValueError("augment = 'rotations' turns paths about z: uniaxial-stress data has no other frames")
        if not features or any(f not in STRAIN_FEATURES for f in features):
            raise ValueError(f"augment = 'rotations' turns strain inputs, the data has inputs {list(features)}")
        self.size, self.blocks = state.size, len(features)
        self.norm = normalisation

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch in one random frame per path (angles and mirrors drawn from generator)."""
        n_paths = x.shape[0]
        angles = torch.rand(n_paths, generator=generator, dtype=torch.float64) * np.pi
        mirrors = torch.rand(n_paths, generator=generator, dtype=torch.float64) < 0.5
        frames = mandel_rotation(rotation_about_z(angles.numpy(), mirrors.numpy()), self.size)
        Q = torch.as_tensor(frames, dtype=x.dtype, device=x.device)[:, None, None]  # (B, 1, 1, n, n)
        inputs = self.norm.decode_inputs(x).reshape(*x.shape[:2], self.blocks, self.size)
        targets = self.norm.decode_targets(y)[:, :, None]
        # Q v as a product and a sum, not einsum / matmul: torch's batched BLAS call crashed (SIGSEGV) in a
        # process that had loaded PETSc, scipy and numba (the test suite), and these matrices are 4x4 or 6x6
        inputs, targets = ((Q * v[..., None, :]).sum(dim=-1) for v in (inputs, targets))
        return self.norm.encode_inputs(inputs.reshape(x.shape)), self.norm.encode_targets(targets[:, :, 0])
