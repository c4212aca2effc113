"""Error measures on hand-made arrays: the code metric, eq. 14, absolute errors in MPa."""

import numpy as np
import pytest

from femsnn.train.metrics import per_path_errors, stress_metrics
from femsnn.train.normalisation import Normalisation


def identity_norm(n=1, mean=0.0, std=1.0):
    return Normalisation(np.zeros(1), np.ones(1), np.full(n, mean), np.full(n, std))


def test_code_metric_skips_step_zero_and_uses_standardised_units():
    reference = np.array([[[10.0], [20.0], [40.0]], [[10.0], [30.0], [60.0]]])
    prediction = reference.copy()
    prediction[:, 0] = 999.0  # step 0 is not counted
    prediction[0, 1] = 21.0  # standardised (mean 10, std 2): ref 5, pred 5.5 -> 0.1
    prediction[1, 2] = 64.0  # ref 25, pred 27 -> 0.08
    m = stress_metrics(prediction, reference, identity_norm(mean=10.0, std=2.0))
    assert m["code_all"] == pytest.approx((0.1 + 0.08) / 4)
    assert m["code_last"] == pytest.approx(0.08 / 2)


def test_eq14_in_physical_units_with_zero_references_left_out():
    reference = np.array([[[3.0], [4.0]], [[1.0], [0.0]]])
    prediction = np.array([[[3.0], [4.5]], [[1.0], [0.2]]])
    m = stress_metrics(prediction, reference, identity_norm())
    assert m["eq14_all"] == pytest.approx((0.5 / 5 + 0.2 / 1) / 2)
    assert m["eq14_last"] == pytest.approx(0.5 / 4)
    assert m["eq14_last_excluded"] == 1 and m["eq14_all_excluded"] == 0


def test_absolute_errors_use_the_tensor_norm_per_point():
    reference = np.zeros((2, 2, 2))
    prediction = np.zeros((2, 2, 2))
    prediction[0, 0] = [3.0, 4.0]  # error 5
    prediction[1, 1] = [0.0, 1.0]  # error 1 at the last step
    m = stress_metrics(prediction, reference + 1.0, identity_norm(2))
    errors = np.linalg.norm(prediction - 1.0, axis=-1)
    assert m["rmse_mpa_all"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert m["max_mpa_all"] == pytest.approx(errors.max())
    assert m["median_mpa_last"] == pytest.approx(np.median(errors[:, -1]))
    assert m["max_mpa_last"] == pytest.approx(errors[:, -1].max())


def test_per_path_errors_average_what_the_totals_average():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(5, 6, 1)) + 3
    prediction = reference + rng.normal(scale=0.1, size=reference.shape)
    norm = identity_norm(mean=1.0, std=2.0)
    per_path = per_path_errors(prediction, reference, norm)
    totals = stress_metrics(prediction, reference, norm)
    assert per_path["code"].mean() == pytest.approx(totals["code_all"])
    assert np.nanmean(per_path["eq14"]) == pytest.approx(totals["eq14_all"])
    assert per_path["max_abs_mpa"].max() == pytest.approx(totals["max_mpa_all"])


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="equal shape"):
        stress_metrics(np.zeros((2, 3, 1)), np.zeros((2, 4, 1)), identity_norm())
