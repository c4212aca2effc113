"""Where the Lava worker runs: a separate Python 3.10 interpreter with lava-nc (numpy < 2).

femsnn itself (Python 3.12, torch, dolfinx) never imports Lava: lava-nc 0.10 needs Python 3.10
and numpy 1, and forces the ``fork`` start method at import (science notes, section 7).
The interpreter is ``$FEMSNN_LAVA_PYTHON`` if set, else ``<repo>/.venv-lava/bin/python`` as made by
``make lava-venv``.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "FEMSNN_LAVA_PYTHON"
#: the folder holding the ``lava_worker`` package, put on the worker's PYTHONPATH
WORKER_ROOT = Path(__file__).resolve().parent
REPO_ROOT = WORKER_ROOT.parents[1]
DEFAULT_PYTHON = REPO_ROOT / ".venv-lava" / "bin" / "python"


class LavaEnvironmentError(RuntimeError):
    """The Lava worker's interpreter is missing or unusable."""


def lava_python() -> Path:
    """The worker interpreter; LavaEnvironmentError with instructions when it does not exist."""
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else DEFAULT_PYTHON
    if not (path.is_file() and os.access(path, os.X_OK)):
        origin = f"{ENV_VAR}={configured}" if configured else f"the default {DEFAULT_PYTHON}"
        raise LavaEnvironmentError(
            f"Lava worker interpreter not found ({origin}): run `make lava-venv` in {REPO_ROOT} to create "
            f".venv-lava (Python 3.10 with lava-nc), or set {ENV_VAR} to such an interpreter"
        )
    return path


def worker_command() -> list[str]:
    """Command line that starts the worker."""
    return [str(lava_python()), "-m", "lava_worker"]


def worker_environment() -> dict[str, str]:
    """Environment of the worker: only femsnn's worker package on PYTHONPATH, no bytecode written, one thread."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(WORKER_ROOT), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env
