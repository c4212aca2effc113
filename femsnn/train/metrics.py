"""Error measures of predicted stress paths, side by side (paper section II and science notes §3).

For predictions and references of shape (P paths, T steps, n components):

* **code metric** (what produced the paper's numbers): pointwise ||y_hat - y|| / ||y|| over the
  components in *standardised* units, averaged over steps 1..T-1 and paths (``code_all``), and the
  same at the last step (``code_last``). References near the stress mean make it explode.
* **eq. 14** (the paper's text) in physical units: per path ||y_hat - y|| / ||y|| with all steps and
  components as one vector (``eq14_all``) or the last step only (``eq14_last``), averaged over
  paths. Paths whose reference norm is zero (e.g. a purely elastic triangle ends at zero stress)
  have no relative error: they are left out and counted in ``eq14_*_excluded``.
* **absolute errors in MPa**: the error magnitude ||y_hat - y|| per point (the Mandel norm is the
  tensor norm; for one component it is |y_hat - y|): RMSE, max and median over all points
  (``*_all``) and over the last step (``*_last``).
"""

from __future__ import annotations

import numpy as np

from femsnn.train.normalisation import Normalisation


def code_pointwise_error(prediction_std: np.ndarray, reference_std: np.ndarray) -> np.ndarray:
    """(P, T) pointwise relative errors ||y_hat - y|| / ||y|| in standardised units (inf where y = 0)."""
    diff = np.linalg.norm(prediction_std - reference_std, axis=-1)
    ref = np.linalg.norm(reference_std, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ref > 0, diff / np.where(ref > 0, ref, 1.0), np.where(diff > 0, np.inf, 0.0))


def eq14_per_path(prediction: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 14 terms per path (P,) for all steps and for the last step (NaN where the reference is zero)."""
    def ratio(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
        p, r = pred.reshape(len(pred), -1), ref.reshape(len(ref), -1)
        num, den = np.linalg.norm(p - r, axis=1), np.linalg.norm(r, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)

    return ratio(prediction, reference), ratio(prediction[:, -1], reference[:, -1])


def per_path_errors(prediction: np.ndarray, reference: np.ndarray, normalisation: Normalisation) -> dict[str, np.ndarray]:
    """Per-path errors (P,) for plots: code metric over steps 1..T-1, eq. 14, max error in MPa."""
    check_paths(prediction, reference)
    code = code_pointwise_error(normalisation.encode_targets(prediction), normalisation.encode_targets(reference))
    eq14_all, eq14_last = eq14_per_path(prediction, reference)
    return {
        "code": code[:, 1:].mean(axis=1),
        "code_last": code[:, -1],
        "eq14": eq14_all,
        "eq14_last": eq14_last,
        "max_abs_mpa": np.linalg.norm(prediction - reference, axis=-1).max(axis=1),
    }


def stress_metrics(prediction: np.ndarray, reference: np.ndarray, normalisation: Normalisation) -> dict[str, float]:
    """All error measures of the module docstring for stress paths in MPa (P, T, n)."""
    check_paths(prediction, reference)
    code = code_pointwise_error(normalisation.encode_targets(prediction), normalisation.encode_targets(reference))
    eq14_all, eq14_last = eq14_per_path(prediction, reference)
    abs_err = np.linalg.norm(prediction - reference, axis=-1)
    out = {
        "code_all": float(code[:, 1:].mean()),
        "code_last": float(code[:, -1].mean()),
        "eq14_all": _mean_defined(eq14_all),
        "eq14_last": _mean_defined(eq14_last),
        "eq14_all_excluded": int(np.isnan(eq14_all).sum()),
        "eq14_last_excluded": int(np.isnan(eq14_last).sum()),
    }
    for where, err in (("all", abs_err), ("last", abs_err[:, -1])):
        out[f"rmse_mpa_{where}"] = float(np.sqrt(np.mean(err**2)))
        out[f"max_mpa_{where}"] = float(err.max())
        out[f"median_mpa_{where}"] = float(np.median(err))
    return out


def check_paths(prediction: np.ndarray, reference: np.ndarray) -> None:
    """Prediction and reference must be finite-shaped (P, T, n) arrays of equal shape with T >= 2."""
    if prediction.shape != reference.shape or prediction.ndim != 3 or prediction.shape[1] < 2:
        raise ValueError(f"need (paths, steps >= 2, components) arrays of equal shape, got {prediction.shape} and {reference.shape}")


def _mean_defined(values: np.ndarray) -> float:
    """Mean over the non-NaN entries (NaN if there are none)."""
    kept = values[~np.isnan(values)]
    return float(kept.mean()) if kept.size else float("nan")
