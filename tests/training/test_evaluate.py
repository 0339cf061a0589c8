"""Evaluation of a trained run: the bounds are ordered and the figures are consistent."""

from __future__ import annotations

from pathlib import Path

import torch

from training.checkpoint import Checkpoint
from training.data import load_digits
from training.evaluate import evaluate, prepare_inputs


def test_nll_is_below_the_negative_elbo_and_units_are_counted(trained_run: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    x = prepare_inputs(load_digits().test.images, binarize=True)
    result = evaluate(model, x, k=200, progress=False)
    assert result.n_images == len(x) and result.nll_importance_samples == 200
    assert -result.test_elbo_nats >= result.test_nll_nats > 0  # ELBO <= IW bound <= log p(x)
    assert abs(result.test_elbo_nats + result.reconstruction_nats + result.kl_nats) < 1e-3
    assert len(result.kl_per_dim) == 4 and abs(sum(result.kl_per_dim) - result.kl_nats) < 1e-2
    assert 0 <= result.active_units <= 4
    mu = model.encode(x)[0]
    assert result.active_units == int((mu.var(dim=0) > 0.01).sum())


def test_more_importance_samples_tighten_the_bound(trained_run: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    x = prepare_inputs(load_digits().test.images[:60], binarize=True)
    loose = evaluate(model, x, k=1, progress=False, seed=1)
    tight = evaluate(model, x, k=500, progress=False, seed=1)
    assert tight.test_nll_nats < loose.test_nll_nats


def test_evaluation_is_repeatable(trained_run: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    x = prepare_inputs(load_digits().test.images[:20], binarize=True)
    first = evaluate(model, x, k=50, progress=False).to_dict()
    torch.manual_seed(123)  # the global generator's state does not change the result
    second = evaluate(model, x, k=50, progress=False).to_dict()
    first.pop("seconds"), second.pop("seconds")
    assert first == second
