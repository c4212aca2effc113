"""Process-wide settings: torch threads (FEMSNN_TORCH_THREADS) and the torch device/dtype choice."""

from __future__ import annotations

import os


def configure_torch(threads: int | None = None) -> None:
    """Set torch's intra-op thread count from the argument or FEMSNN_TORCH_THREADS (unset: torch default)."""
    import torch

    value = threads if threads is not None else os.environ.get("FEMSNN_TORCH_THREADS")
    if value is not None and int(value) > 0:
        torch.set_num_threads(int(value))
