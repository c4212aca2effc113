"""Write femsnn's gmsh meshes into this folder and print their cell and quadrature-point counts.

    python meshes/generate.py                       # the meshes kept in the repository (femsnn.fem.mesh.COMMITTED)
    python meshes/generate.py cylinder fine 0.0025  # a geometry at preset or numeric sizes
    python meshes/generate.py --all                 # every preset of every geometry

Existing files are kept unless --force is given. The geometries themselves live in femsnn/fem/mesh.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpi4py import MPI

from femsnn.fem.mesh import (
    COMMITTED,
    GEOMETRIES,
    mesh_path,
    quadrature_point_count,
    read_mesh,
    resolve_size,
    write_mesh,
)

QUADRATURE_DEGREE = 2  # the benchmark's quadrature degree (science notes, section 6)


def _requests(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(geometry, size) pairs asked for on the command line."""
    if args.all:
        return [(name, size) for name, g in GEOMETRIES.items() for size in g.sizes]
    if args.geometry is None:
        return list(COMMITTED)
    return [(args.geometry, size) for size in args.sizes or GEOMETRIES[args.geometry].sizes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("geometry", nargs="?", choices=sorted(GEOMETRIES), help="geometry (default: COMMITTED)")
    parser.add_argument("sizes", nargs="*", help="sizes h in mm or preset names (default: all presets)")
    parser.add_argument("--all", action="store_true", help="every preset of every geometry")
    parser.add_argument("--force", action="store_true", help="regenerate files that exist")
    parser.add_argument("--directory", type=Path, default=Path(__file__).resolve().parent, help="output folder")
    args = parser.parse_args()

    print(f"{'file':<28} {'h':>7} {'cells':>8} {'quad. points':>13} {'kB':>6}")
    for name, size in _requests(args):
        path = mesh_path(name, size, args.directory)
        if args.force or not path.is_file():
            write_mesh(name, size, path)
        mesh = read_mesh(path, MPI.COMM_SELF).mesh
        cells = mesh.topology.index_map(mesh.topology.dim).size_global
        points = quadrature_point_count(mesh, QUADRATURE_DEGREE)
        h = resolve_size(name, size)
        print(f"{path.name:<28} {h:>7g} {cells:>8} {points:>13} {path.stat().st_size / 1024:>6.0f}")


if __name__ == "__main__":
    main()
