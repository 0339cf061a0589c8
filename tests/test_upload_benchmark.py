"""The statistics of `make bench-uploads`, in process."""

from __future__ import annotations

import numpy as np

from benchmarks.uploads import auroc


def test_upload_auroc_counts_ties_half_and_brackets_the_point_with_its_interval() -> None:
    separated = auroc(np.array([60.0, 70.0, 80.0]), np.array([-1.0, 5.0, 10.0]))
    assert separated == (1.0, 1.0, 1.0)
    tied = auroc(np.full(4, 50.0), np.full(4, 50.0))
    assert tied[0] == 0.5
    rng = np.random.default_rng(1)
    point, low, high = auroc(rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, 300))
    assert low < point < high and 0.6 < point < 0.9  # the normal-theory value is 0.76
