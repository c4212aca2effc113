"""How well a plane-strain J2 surrogate knows the yield surface: network vs J2 von Mises stress at yielding points.

    python examples/surrogate/yield_scatter.py femsnn/models/cylinder_j2_plane_strain.pt runs/surrogate/harvest/dataset.npz

Over every harvested point where J2 is on its yield surface (von Mises >= sigma_y - 1 MPa), binned by equivalent
strain: J2's mean von Mises stress (sigma_y plus hardening) and the network's mean and RMS deviation from it. Near
a structure's limit load the curve depends on the yield stress to a fraction of 1 MPa (README, issue 4).
"""

from __future__ import annotations

import argparse

import numpy as np

from femsnn.mandel import deviatoric_projector, von_mises
from femsnn.train.harness import predict
from femsnn.train.workflow import load_model_and_data

BINS = (0.0, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2, np.inf)


def equivalent_strain(strain: np.ndarray) -> np.ndarray:
    """sqrt(2/3) |dev e| of (..., n) Mandel strains."""
    dev = strain @ deviatoric_projector(strain.shape[-1])
    return np.sqrt(2.0 / 3.0 * np.einsum("...i,...i->...", dev, dev))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("data")
    parser.add_argument("--split", default=None, help="one split only (default: all paths)")
    args = parser.parse_args()
    net, artifact, data = load_model_and_data(args.model, args.data)
    data = data.part(args.split) if args.split else data
    prediction, _ = predict(net, artifact.normalisation, data.inputs_for(artifact.input_features))
    reference, network = von_mises(data.targets), von_mises(prediction)
    strain = equivalent_strain(data.strain)
    yielding = reference >= artifact.material["sigma_y"] - 1.0
    print("equivalent strain      points   J2 von Mises   network - J2: mean    RMS  [MPa]")
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = yielding & (strain >= lo) & (strain < hi)
        if m.any():
            d = network[m] - reference[m]
            print(f"[{lo:.1e}, {hi:.1e})  {m.sum():8d}   {reference[m].mean():12.2f}   {d.mean():+17.2f}  {np.sqrt(np.mean(d**2)):6.2f}")


if __name__ == "__main__":
    main()
