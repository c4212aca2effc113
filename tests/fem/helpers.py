"""Shared helpers of the FE tests: tagged box meshes, small simulation configs, gathered fields."""

from __future__ import annotations

from pathlib import Path

import dolfinx_solver  # noqa: F401  (must precede dolfinx)
import numpy as np
from dolfinx import fem, mesh
from mpi4py import MPI

from femsnn.fem.mesh import MeshData

#: facet names of box_mesh_data: the two faces normal to each axis
FACES = {"left": (0, 0.0), "right": (0, 1.0), "bottom": (1, 0.0), "top": (1, 1.0), "back": (2, 0.0), "front": (2, 1.0)}

#: the reference cylinder's J2 parameters (science notes section 6): E_t = E / 100
CYLINDER_J2 = {"type": "j2", "E": 70e3, "nu": 0.3, "sigma_y": 250.0, "H_iso": 70e3 * 700 / (70e3 - 700)}
Q_LIM = 2 / np.sqrt(3) * 250.0 * np.log(1.3)


def box_mesh_data(comm: MPI.Comm, dim: int, n: int) -> MeshData:
    """Unit square (triangles) or cube (tetrahedra) with n cells per side and faces tagged by FACES names."""
    if dim == 2:
        domain = mesh.create_unit_square(comm, n, n, mesh.CellType.triangle)
    else:
        domain = mesh.create_unit_cube(comm, n, n, n, mesh.CellType.tetrahedron)
    fdim = dim - 1
    faces = {name: spec for name, spec in FACES.items() if spec[0] < dim}
    indices, values, tags = [], [], {}
    for tag, (name, (axis, where)) in enumerate(faces.items(), start=1):
        found = mesh.locate_entities_boundary(domain, fdim, lambda x, a=axis, w=where: np.isclose(x[a], w))
        indices.append(found)
        values.append(np.full(len(found), tag, dtype=np.int32))
        tags[name] = tag
    order = np.argsort(np.concatenate(indices))
    facet_tags = mesh.meshtags(domain, fdim, np.concatenate(indices)[order], np.concatenate(values)[order])
    return MeshData(domain, facet_tags, None, tags, Path(f"<unit box {dim}D, n={n}>"))


def cylinder_config(directory: Path, factors: list[float], **sections: dict) -> dict:
    """A quiet simulate config of the coarse reference cylinder; sections override or extend its parts."""
    config = {
        "problem": {"name": "thick_cylinder", "load": float(Q_LIM)},
        "mesh": {"size": "coarse"},
        "material": dict(CYLINDER_J2),
        "loading": {"factors": [float(f) for f in factors]},
        "output": {"directory": str(directory), "fields": False, "plot": False, "progress": False},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return config


def to_toml(config: dict) -> str:
    """TOML text of a config made of sections of scalars, lists and inline tables."""

    def value(v: object) -> str:
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, (str, Path)):
            return f'"{v}"'
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple, np.ndarray)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)

    return "\n".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in section.items()) for name, section in config.items())


def gathered_field(u: fem.Function) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (N, 3) and values (N, bs) of the owned dofs of u from all ranks, sorted by coordinate, on every rank."""
    V = u.function_space
    n_owned, bs = V.dofmap.index_map.size_local, V.dofmap.index_map_bs
    coords = V.tabulate_dof_coordinates()[:n_owned]
    values = u.x.array[: n_owned * bs].reshape(n_owned, bs)
    comm = V.mesh.comm
    coords = np.concatenate(comm.allgather(coords))
    values = np.concatenate(comm.allgather(values))
    order = np.lexsort(np.round(coords, 12).T[::-1])
    return coords[order], values[order]


def tiny_spiking_model(path: Path, hidden: tuple[int, ...] = (8, 8), seed: int = 0) -> Path:
    """A random plane-strain SLSTM model file normalised on a few J2 walks of the cylinder's material.

    Its stress means nothing (random weights): FE tests use it for plumbing, with a configured stress
    tolerance that accepts one Newton iteration per load step.
    """
    import torch

    from femsnn.snn import SpikingRegressor
    from femsnn.train.artifact import Artifact, save_model
    from femsnn.train.data import J2RandomWalkSettings, generate
    from femsnn.train.normalisation import Normalisation

    settings = J2RandomWalkSettings(
        generator="j2_random_walk", stress_state="plane_strain", material=CYLINDER_J2, n_train=8, n_val=4, n_test=2,
        steps=12, max_strain=0.02, increments=True,
    )  # fmt: skip
    data = generate(settings)
    train = data.part("train")
    torch.manual_seed(seed)
    net = SpikingRegressor(train.inputs.shape[2], train.targets.shape[2], "slstm", hidden, population=4).double()
    normalisation = Normalisation.fit(train.inputs, train.targets)
    return save_model(path, net, Artifact.describe(net, normalisation, data.meta, {"seed": seed}))
