"""How far a small yield-stress error moves the cylinder's load-displacement curve (reference J2 alone).

Runs examples/cylinder/reference.toml with sigma_y shifted by each offset and prints, per load step, the curve
error that `femsnn compare` would report against the nominal run (|u - u_nominal| / max u_nominal). It measures
the precision a surrogate needs near the limit load: the hardening is only E/100 there, so the curve hangs on
the yield stress. Writes yield_sensitivity.png next to the runs.
Run: python examples/cylinder/yield_sensitivity.py [OFFSET_MPA ...]      (default 0.1 0.25 0.5 1; about 10 s a run)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from mpi4py import MPI

from femsnn.config import parse_config
from femsnn.fem.compare import curve_error_scale
from femsnn.fem.simulate import SimulationConfig, run_simulation

HERE = Path(__file__).resolve().parent
TARGET = 0.02  # issue 4: the spiking curve within 2 % of the reference at every load step


def run_with_yield_stress(base: dict, sigma_y: float, directory: Path) -> np.ndarray:
    """u_x at the inner wall per load step of reference.toml's program with the given yield stress (MPa)."""
    data = {**base, "material": {**base["material"], "sigma_y": sigma_y}, "output": {"directory": str(directory)}}
    result = run_simulation(parse_config(data, SimulationConfig, source=f"sigma_y = {sigma_y}", base_dir=HERE))
    return result.table["u_x_inner"]


def main(offsets: list[float]) -> None:
    base = tomllib.loads((HERE / "reference.toml").read_text())
    out = (HERE / base["output"]["directory"]).resolve().parent / "cylinder-yield-sensitivity"
    sigma_y = float(base["material"]["sigma_y"])
    shifts = sorted({0.0, *offsets, *(-o for o in offsets)})
    curves = {s: run_with_yield_stress(base, sigma_y + s, out / f"sigma_y_{sigma_y + s:g}") for s in shifts}
    if MPI.COMM_WORLD.rank != 0:
        return
    factors = np.asarray(base["loading"]["factors"], dtype=float)
    nominal = curves[0.0]
    errors = {s: (u - nominal) / curve_error_scale(nominal) for s, u in curves.items() if s != 0.0}
    print(f"signed curve error (u - u_nominal) / max u_nominal [%], sigma_y = {sigma_y:g} MPa + offset")
    print("q/q_lim " + " ".join(f"{s:+8.2f}" for s in errors))
    for k, factor in enumerate(factors):
        print(f"{factor:7.4f} " + " ".join(f"{100 * e[k]:+8.2f}" for e in errors.values()))
    within = [s for s, e in errors.items() if np.abs(e).max() <= TARGET]
    print(f"offsets (MPa) within {TARGET:.0%} at every step: {', '.join(f'{s:+g}' for s in within) or 'none'}")
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    for s, e in errors.items():
        ax.plot(factors, 100 * e, "o-", ms=3, label=f"sigma_y {s:+g} MPa")
    ax.axhspan(-100 * TARGET, 100 * TARGET, color="0.9", label=f"±{TARGET:.0%}")
    ax.set_xlabel("q / q_lim")
    ax.set_ylabel("curve error against sigma_y = %g MPa [%%]" % sigma_y)
    ax.legend(fontsize=8)
    path = out / "yield_sensitivity.png"
    fig.savefig(path, dpi=150)
    print(f"plot: {path}")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [0.1, 0.25, 0.5, 1.0])
