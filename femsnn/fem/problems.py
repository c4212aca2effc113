"""The boundary-value problems femsnn knows by name: supports, loads, and what to monitor.

``thick_cylinder``   quarter cylinder (plane strain), pressure = load * factor on ``inner``;
                     u_x = 0 on ``symmetry_x``, u_y = 0 on ``symmetry_y``; monitors u_x at (R_i, 0).
``plate_with_hole``  quarter plate (plane strain), the same symmetry supports; the far edge ``load`` is
                     pulled along y by a displacement or a traction = load * factor; monitors u_y at (0, W).
``notched_bar``      3D bar clamped on ``clamp``; ``load`` pulled along z by a displacement (lateral motion
                     held, like a grip) or a traction = load * factor; monitors u_z on the axis at the end.

Loads and reactions are per unit thickness in 2D. Reactions are the forces the supports exert on the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from femsnn.fem.loads import Displacement, Load, Pressure, Traction
from femsnn.fem.mesh import BAR_LENGTH, CYLINDER_INNER_RADIUS, PLATE_HALF_WIDTH

Control = Literal["displacement", "traction"]


@dataclass(frozen=True)
class Probe:
    """A monitored displacement component at a point."""

    name: str
    point: tuple[float, ...]
    component: int


@dataclass(frozen=True)
class Reaction:
    """A monitored support force: the resultant along one axis on a boundary."""

    name: str
    boundary: str
    component: int


@dataclass(frozen=True)
class Problem:
    """A named problem: the mesh it is posed on, its loads, probes and reactions, and how to plot it."""

    name: str
    geometry: str  # named geometry of femsnn.fem.mesh
    dim: int
    loads: tuple[Load, ...]
    load_name: str  # what "load" (load * factor) is, with units
    probes: tuple[Probe, ...]
    reactions: tuple[Reaction, ...]
    force: str  # the column plotted against the first probe: "load" or a reaction name


def thick_cylinder(load: float, control: Control | None) -> Problem:
    """Quarter thick-walled cylinder under internal pressure (see module docstring)."""
    if control is not None:
        raise ValueError("thick_cylinder is loaded by its inner pressure; 'control' does not apply")
    supports = (Displacement("symmetry_x", 0), Displacement("symmetry_y", 1))
    return Problem(
        name="thick_cylinder",
        geometry="cylinder",
        dim=2,
        loads=(*supports, Pressure("inner", load)),
        load_name="pressure [MPa]",
        probes=(Probe("u_x_inner", (CYLINDER_INNER_RADIUS, 0.0), 0),),
        reactions=(Reaction("reaction_y_symmetry", "symmetry_y", 1),),
        force="load",
    )


def plate_with_hole(load: float, control: Control | None) -> Problem:
    """Quarter plate with a hole, pulled along y on its far edge (see module docstring)."""
    supports = (Displacement("symmetry_x", 0), Displacement("symmetry_y", 1))
    probe = Probe("u_y_load", (0.0, PLATE_HALF_WIDTH), 1)
    if (control or "displacement") == "displacement":
        return Problem(
            name="plate_with_hole",
            geometry="plate_hole",
            dim=2,
            loads=(*supports, Displacement("load", 1, load)),
            load_name="displacement [mm]",
            probes=(probe,),
            reactions=(Reaction("reaction_y_load", "load", 1), Reaction("reaction_y_symmetry", "symmetry_y", 1)),
            force="reaction_y_load",
        )
    return Problem(
        name="plate_with_hole",
        geometry="plate_hole",
        dim=2,
        loads=(*supports, Traction("load", (0.0, load))),
        load_name="traction [MPa]",
        probes=(probe,),
        reactions=(Reaction("reaction_y_symmetry", "symmetry_y", 1),),
        force="load",
    )


def notched_bar(load: float, control: Control | None) -> Problem:
    """3D notched bar, clamped at z = 0 and pulled along z at the other end (see module docstring)."""
    clamp = tuple(Displacement("clamp", i) for i in range(3))
    probe = Probe("u_z_load", (0.0, 0.0, BAR_LENGTH), 2)
    if (control or "displacement") == "displacement":
        grip = (Displacement("load", 0), Displacement("load", 1), Displacement("load", 2, load))
        return Problem(
            name="notched_bar",
            geometry="notched_bar",
            dim=3,
            loads=(*clamp, *grip),
            load_name="displacement [mm]",
            probes=(probe,),
            reactions=(Reaction("reaction_z_load", "load", 2), Reaction("reaction_z_clamp", "clamp", 2)),
            force="reaction_z_load",
        )
    return Problem(
        name="notched_bar",
        geometry="notched_bar",
        dim=3,
        loads=(*clamp, Traction("load", (0.0, 0.0, load))),
        load_name="traction [MPa]",
        probes=(probe,),
        reactions=(Reaction("reaction_z_clamp", "clamp", 2),),
        force="load",
    )


PROBLEMS = {"thick_cylinder": thick_cylinder, "plate_with_hole": plate_with_hole, "notched_bar": notched_bar}


def make_problem(name: str, load: float, control: Control | None = None) -> Problem:
    """The named problem with the given load per unit load factor; clear error for unknown names."""
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem '{name}'; known problems: {', '.join(PROBLEMS)}")
    return PROBLEMS[name](load, control)
