"""femsnn.fem.mesh: tagged geometries, on-demand generation, reading any gmsh file, clear errors, MPI loading."""

from __future__ import annotations

import gmsh
import numpy as np
import pytest
import ufl
from dolfinx import fem
from dolfinx.fem.petsc import LinearProblem
from mpi4py import MPI

from femsnn.fem.analytic import ThickCylinder
from femsnn.fem.mesh import (
    COMMITTED,
    GEOMETRIES,
    TAGS,
    MeshData,
    check_dimension,
    load_mesh,
    mesh_path,
    quadrature_point_count,
    read_mesh,
    resolve_size,
    write_mesh,
)

R, L, RHO = 5.0, 30.0, 1.0  # notched bar: radius, length, notch radius


def measure(data: MeshData, name: str | None = None) -> float:
    """Length/area of a named facet group, or area/volume of the whole mesh, summed over ranks."""
    mesh = data.mesh
    if name is None:
        form = 1.0 * ufl.dx(domain=mesh)
    else:
        form = 1.0 * ufl.ds(domain=mesh, subdomain_data=data.facet_tags, subdomain_id=data.tags[name])
    return mesh.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)


def test_cylinder_is_generated_on_demand_with_its_tags_and_measures(tmp_path):
    data = load_mesh("cylinder", "coarse", MPI.COMM_SELF, directory=tmp_path)
    assert data.source == tmp_path / "cylinder-h0.04.msh" and data.source.is_file()
    assert data.tags == {name: TAGS[name] for name in ("solid", "inner", "outer", "symmetry_x", "symmetry_y")}
    assert data.mesh.geometry.dim == 2 and data.mesh.geometry.cmaps[0].degree == 2
    assert measure(data, "inner") == pytest.approx(np.pi / 2, rel=1e-6)
    assert measure(data, "outer") == pytest.approx(1.3 * np.pi / 2, rel=1e-6)
    assert measure(data, "symmetry_x") == pytest.approx(0.3, rel=1e-12)
    assert measure(data, "symmetry_y") == pytest.approx(0.3, rel=1e-12)
    assert measure(data) == pytest.approx(np.pi / 4 * (1.3**2 - 1.0), rel=1e-6)


def test_cylinder_nodes_on_the_inner_wall_lie_on_the_arc(tmp_path):
    data = load_mesh("cylinder", 0.1, MPI.COMM_SELF, directory=tmp_path)
    V = fem.functionspace(data.mesh, ("Lagrange", 2))  # its dofs sit at the geometry's nodes
    nodes = fem.locate_dofs_topological(V, 1, data.facets("inner"))
    x = V.tabulate_dof_coordinates()[nodes]
    # vertices and mid-edge nodes alike: with straight edges the mid-edge nodes would sit inside the arc
    assert len(nodes) > 2 * len(data.facets("inner"))
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), 1.0, rtol=1e-12)


def test_plate_with_hole_tags_and_measures(tmp_path):
    data = load_mesh("plate_hole", "coarse", MPI.COMM_SELF, directory=tmp_path)
    assert set(data.tags) == {"solid", "hole", "symmetry_x", "symmetry_y", "load", "free"}
    assert measure(data, "hole") == pytest.approx(np.pi / 2, rel=1e-6)
    for name, length in (("load", 10.0), ("free", 10.0), ("symmetry_x", 9.0), ("symmetry_y", 9.0)):
        assert measure(data, name) == pytest.approx(length, rel=1e-12)
    assert measure(data) == pytest.approx(100.0 - np.pi / 4, rel=1e-6)


def test_notched_bar_tags_and_measures(tmp_path):
    data = load_mesh("notched_bar", "coarse", MPI.COMM_SELF, directory=tmp_path)
    check_dimension(data.mesh, 3)
    assert set(data.tags) == {"solid", "clamp", "load", "free"}
    assert data.mesh.topology.cell_type.name == "tetrahedron"
    assert measure(data, "clamp") == pytest.approx(np.pi * R**2, rel=1e-3)
    assert measure(data, "load") == pytest.approx(np.pi * R**2, rel=1e-3)
    # lateral surface outside the notch plus the inner half of the torus that cuts the notch
    free = 2 * np.pi * R * (L - 2 * RHO) + 2 * np.pi * RHO * (np.pi * R - 2 * RHO)
    assert measure(data, "free") == pytest.approx(free, rel=1e-3)
    notch = np.pi * RHO**2 / 2 * 2 * np.pi * (R - 4 * RHO / (3 * np.pi))
    assert measure(data) == pytest.approx(np.pi * R**2 * L - notch, rel=1e-3)


@pytest.mark.parametrize("order, tolerance", [(1, 1e-3), (2, 1e-5)])
def test_cylinder_reproduces_lame_compliance(tmp_path, order, tolerance):
    """P2 linear elasticity on the coarse cylinder; second-order geometry is ~300x closer to Lame (docstring)."""
    data = read_mesh(write_mesh("cylinder", "coarse", tmp_path / "c.msh", order=order), MPI.COMM_SELF)
    cylinder = ThickCylinder()
    lmbda = cylinder.young * cylinder.poisson / ((1 + cylinder.poisson) * (1 - 2 * cylinder.poisson))
    mu = cylinder.young / (2 * (1 + cylinder.poisson))
    V = fem.functionspace(data.mesh, ("Lagrange", 2, (2,)))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    strain = ufl.sym(ufl.grad(u))
    stress = lmbda * ufl.tr(strain) * ufl.Identity(2) + 2 * mu * strain
    ds = ufl.ds(domain=data.mesh, subdomain_data=data.facet_tags)
    pressure = -ufl.dot(ufl.FacetNormal(data.mesh), v) * ds(data.tags["inner"])  # q = 1 on the inner wall
    bcs = [
        fem.dirichletbc(0.0, fem.locate_dofs_topological(V.sub(i), 1, data.facets(name)), V.sub(i))
        for i, name in ((0, "symmetry_x"), (1, "symmetry_y"))
    ]
    stiffness = ufl.inner(stress, ufl.sym(ufl.grad(v))) * ufl.dx
    options = {"ksp_type": "preonly", "pc_type": "lu"}
    uh = LinearProblem(stiffness, pressure, bcs=bcs, petsc_options_prefix="lame_", petsc_options=options).solve()
    x = V.tabulate_dof_coordinates()
    (node,) = np.flatnonzero(np.isclose(x[:, 0], 1.0) & np.isclose(x[:, 1], 0.0))
    compliance = uh.x.array.reshape(-1, 2)[node, 0]
    assert compliance == pytest.approx(cylinder.compliance(), rel=tolerance)


def test_committed_meshes_are_small(tmp_path):
    for name, size in COMMITTED:
        assert write_mesh(name, size, tmp_path / f"{name}.msh").stat().st_size < 300_000


def test_generation_is_deterministic_even_in_a_reused_gmsh_session(tmp_path):
    first = write_mesh("cylinder", 0.1, tmp_path / "first.msh").read_bytes()
    gmsh.initialize(readConfigFiles=False, interruptible=False)
    try:
        write_mesh("plate_hole", 1.0, tmp_path / "plate.msh")  # leaves its options in the session
        second = write_mesh("cylinder", 0.1, tmp_path / "second.msh").read_bytes()
    finally:
        gmsh.finalize()
    assert first == second


def test_a_mesh_on_disk_is_read_not_regenerated(tmp_path):
    path = load_mesh("cylinder", 0.2, MPI.COMM_SELF, directory=tmp_path).source
    stamp = path.stat().st_mtime_ns
    assert load_mesh("cylinder", "0.2", MPI.COMM_SELF, directory=tmp_path).source == path
    assert path.stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p != path]  # no partial files left behind


def test_counts_of_cells_and_quadrature_points(tmp_path):
    triangles = load_mesh("cylinder", 0.2, MPI.COMM_SELF, directory=tmp_path).mesh
    tetrahedra = load_mesh("notched_bar", "coarse", MPI.COMM_SELF, directory=tmp_path).mesh
    for mesh, points_per_cell in ((triangles, 3), (tetrahedra, 4)):
        cells = mesh.topology.index_map(mesh.topology.dim).size_global
        assert quadrature_point_count(mesh, 2) == points_per_cell * cells
    assert quadrature_point_count(triangles, 1) == triangles.topology.index_map(2).size_global


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, preset, target",
    [(name, preset, target) for name in GEOMETRIES for preset, target in (("fine", 40_000), ("finest", 150_000))],
)
def test_fine_presets_give_about_40k_and_150k_quadrature_points(tmp_path, name, preset, target):
    mesh = read_mesh(write_mesh(name, preset, tmp_path / "m.msh"), MPI.COMM_SELF).mesh
    assert quadrature_point_count(mesh, 2) == pytest.approx(target, rel=0.1)


def test_unknown_geometry_and_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="known geometries: cylinder"):
        load_mesh("sphere", 0.1, MPI.COMM_SELF, directory=tmp_path)
    with pytest.raises(ValueError, match="coarse"):
        resolve_size("cylinder", "tiny")
    for bad in (0.0, -0.1, float("nan"), "inf"):
        with pytest.raises(ValueError, match="positive and finite"):
            mesh_path("cylinder", bad, tmp_path)
    with pytest.raises(ValueError, match="order"):
        write_mesh("cylinder", 0.1, tmp_path / "c.msh", order=3)


def test_too_coarse_curved_cells_are_refused(tmp_path):
    with pytest.raises(ValueError, match="inverted cells for notched_bar"):
        write_mesh("notched_bar", 2.0, tmp_path / "bar.msh")
    assert not list(tmp_path.iterdir())


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.msh"):
        read_mesh(tmp_path / "nowhere.msh", MPI.COMM_SELF)


def test_wrong_dimension_is_a_clear_error(tmp_path):
    data = load_mesh("cylinder", 0.2, MPI.COMM_SELF, directory=tmp_path)
    check_dimension(data.mesh, 2)
    with pytest.raises(ValueError, match="mesh is 2D .*needs a 3D mesh"):
        check_dimension(data.mesh, 3)
    bar = load_mesh("notched_bar", "coarse", MPI.COMM_SELF, directory=tmp_path)
    with pytest.raises(ValueError, match="mesh is 3D .*plane strain"):
        check_dimension(bar.mesh, 2)


def test_unknown_facet_group_is_a_clear_error(tmp_path):
    data = load_mesh("cylinder", 0.2, MPI.COMM_SELF, directory=tmp_path)
    with pytest.raises(KeyError, match="no facet group 'load'.*inner"):
        data.facets("load")


def _unit_square_file(path, z: float, grouped: bool) -> None:
    """A gmsh file of the unit square at height z, its cells in a physical group or not."""
    gmsh.initialize(readConfigFiles=False, interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        square = gmsh.model.occ.addRectangle(0, 0, z, 1, 1)
        gmsh.model.occ.synchronize()
        if grouped:
            gmsh.model.addPhysicalGroup(2, [square], 1, name="solid")
        else:
            gmsh.option.setNumber("Mesh.SaveAll", 1)
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()


def test_any_gmsh_file_can_be_read(tmp_path):
    _unit_square_file(tmp_path / "square.msh", 0.0, grouped=True)
    data = read_mesh(tmp_path / "square.msh", MPI.COMM_SELF)
    assert data.tags == {"solid": 1} and data.mesh.geometry.dim == 2
    assert measure(data) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("z, grouped, message", [(0.0, False, "physical group"), (1.0, True, "plane z = 0")])
def test_unusable_gmsh_files_are_refused(tmp_path, z, grouped, message):
    _unit_square_file(tmp_path / "square.msh", z, grouped)
    with pytest.raises(ValueError, match=message):
        read_mesh(tmp_path / "square.msh", MPI.COMM_SELF)


@pytest.mark.mpi
def test_mesh_is_generated_once_and_distributed(tmp_path):
    comm = MPI.COMM_WORLD
    assert comm.size > 1
    directory = comm.bcast(tmp_path if comm.rank == 0 else None, root=0)
    data = load_mesh("cylinder", "coarse", comm, directory=directory)
    serial = read_mesh(data.source, MPI.COMM_SELF).mesh
    cells = data.mesh.topology.index_map(2)
    assert cells.size_local > 0
    assert cells.size_global == serial.topology.index_map(2).size_global
    assert quadrature_point_count(data.mesh, 2) == 3 * cells.size_global
    assert measure(data, "inner") == pytest.approx(np.pi / 2, rel=1e-6)
    assert measure(data, "symmetry_x") == pytest.approx(0.3, rel=1e-12)
    assert sorted(p.name for p in directory.iterdir()) == ["cylinder-h0.04.msh"]


@pytest.mark.mpi
def test_errors_reach_every_rank(tmp_path):
    comm = MPI.COMM_WORLD
    directory = comm.bcast(tmp_path if comm.rank == 0 else None, root=0)
    with pytest.raises(FileNotFoundError, match="nowhere.msh"):
        read_mesh(directory / "nowhere.msh", comm)
    with pytest.raises(ValueError, match="inverted cells"):
        load_mesh("notched_bar", 2.0, comm, directory=directory)
