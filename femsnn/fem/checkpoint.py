"""Checkpoints of a simulation after every converged load step, so that a stopped run can be resumed.

A checkpoint holds what the next load step starts from: the displacement (ghosts included) and the
packed committed history of every rank, the number of completed load steps and their load factor,
plus the run's record so far (table rows, every Newton solve, timings). Nothing random is involved,
so a resumed run ends exactly as an uninterrupted one.

Layout in ``<output>/checkpoint/``: one ``step-<k>.rank<r>.npz`` per rank and ``state.json`` (rank 0),
which names the step whose rank files are complete. Each file is written to a temporary name and
renamed, the state only after every rank's file is in place, and the previous step's files are
removed only after that: a run killed at any moment leaves a usable checkpoint. Resuming needs the
same number of ranks and the same mesh partition (checked with a fingerprint of each rank's layout).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dolfinx import fem
from mpi4py import MPI

CHECKPOINT_DIR, STATE_NAME = "checkpoint", "state.json"
CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "femsnn-fe-checkpoint", 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from (missing, damaged, another config, rank count or partition)."""


@dataclass(frozen=True)
class Resumed:
    """A converged state read back: this rank's arrays and the run's record up to it."""

    step: int  # load steps of the program completed (the next one to solve is step + 1)
    load_factor: float
    displacement: np.ndarray  # u.x.array of this rank
    history: np.ndarray  # packed committed history (owned points, width) of this rank
    record: dict  # what the run passed to save (rows, increments, timings, ...)


def layout_fingerprint(u: fem.Function, history: np.ndarray) -> str:
    """SHA-256 of this rank's dof coordinates and array shapes: equal only for the same mesh partition."""
    h = hashlib.sha256(np.ascontiguousarray(u.function_space.tabulate_dof_coordinates()).tobytes())
    h.update(f"{u.x.array.shape}|{history.shape}".encode())
    return h.hexdigest()


class Checkpoint:
    """The checkpoint folder of one run (collective: every rank takes part in save and load)."""

    def __init__(self, output_directory: Path, comm: MPI.Comm, config: dict) -> None:
        self.directory = Path(output_directory) / CHECKPOINT_DIR
        self.comm, self.config = comm, config
        self._saved_step: int | None = None

    def _rank_file(self, step: int) -> Path:
        return self.directory / f"step-{step:06d}.rank{self.comm.rank}.npz"

    def save(self, step: int, load_factor: float, u: fem.Function, history: np.ndarray, record: dict) -> None:
        """Write the converged state after load step ``step`` atomically, then drop the previous one."""
        comm = self.comm
        if comm.rank == 0:
            self.directory.mkdir(parents=True, exist_ok=True)
        comm.barrier()
        path = self._rank_file(step)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(f, displacement=u.x.array, history=history, fingerprint=np.array(layout_fingerprint(u, history)))
        os.replace(tmp, path)
        comm.barrier()  # every rank's file is complete before the state names it
        if comm.rank == 0:
            state = {
                "format": CHECKPOINT_FORMAT,
                "version": CHECKPOINT_VERSION,
                "step": step,
                "load_factor": load_factor,
                "mpi_size": comm.size,
                "config": self.config,
                "record": record,
            }
            state_path = self.directory / STATE_NAME
            tmp_state = state_path.with_name(STATE_NAME + ".tmp")
            tmp_state.write_text(json.dumps(state))
            os.replace(tmp_state, state_path)
        comm.barrier()
        if self._saved_step is not None and self._saved_step != step:
            self._rank_file(self._saved_step).unlink(missing_ok=True)
        self._saved_step = step

    def load(self, u: fem.Function, history_like: np.ndarray) -> Resumed:
        """Read the last complete checkpoint for this rank; CheckpointError (on every rank) if unusable."""
        state, error = None, None
        if self.comm.rank == 0:
            try:
                state = self._read_state()
            except CheckpointError as exc:
                error = str(exc)
        state, error = self.comm.bcast((state, error), root=0)
        if error is not None:
            raise CheckpointError(error)
        arrays, error = None, None
        try:
            arrays = self._read_rank(state["step"], u, history_like)
        except CheckpointError as exc:
            error = f"rank {self.comm.rank}: {exc}"
        errors = [e for e in self.comm.allgather(error) if e is not None]
        if errors:
            raise CheckpointError("; ".join(errors))
        self._saved_step = state["step"]
        return Resumed(state["step"], state["load_factor"], arrays[0], arrays[1], state["record"])

    def _read_state(self) -> dict:
        """state.json, checked against this run's format, rank count and configuration."""
        path = self.directory / STATE_NAME
        if not path.is_file():
            raise CheckpointError(f"no checkpoint to resume from: {path} does not exist")
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint state ({exc})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or state.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{path}: not a femsnn FE checkpoint of version {CHECKPOINT_VERSION}")
        if state["mpi_size"] != self.comm.size:
            raise CheckpointError(
                f"{path}: the checkpoint was written by {state['mpi_size']} MPI ranks, this run has {self.comm.size}"
            )
        changed = sorted(k for k in set(state["config"]) | set(self.config) if state["config"].get(k) != self.config.get(k))
        if changed:
            raise CheckpointError(f"{path}: the checkpoint was written with a different configuration (sections {changed})")
        return state

    def _read_rank(self, step: int, u: fem.Function, history_like: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This rank's displacement and history of a step, checked against the current layout and history dtype."""
        path = self._rank_file(step)
        try:
            with np.load(path, allow_pickle=False) as npz:
                displacement, history, fingerprint = npz["displacement"], npz["history"], str(npz["fingerprint"])
        except (OSError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint file ({exc})") from exc
        if displacement.shape != u.x.array.shape or history.shape != history_like.shape:
            raise CheckpointError(f"{path}: arrays of shape {displacement.shape}, {history.shape} do not fit this run")
        if history.dtype != history_like.dtype:  # a cast would change the resumed run's numbers
            raise CheckpointError(f"{path}: history stored as {history.dtype}, this run stores {history_like.dtype}")
        if fingerprint != layout_fingerprint(u, history):
            raise CheckpointError(f"{path}: written for another mesh or partition")
        return displacement, history
