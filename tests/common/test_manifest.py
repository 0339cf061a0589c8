"""The manifest's optional latent summary: refused when it cannot describe the model."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from common.manifest import Manifest
from harness import ROOT

SHIPPED = json.loads((ROOT / "models" / "mnist" / "1" / "model.json").read_text())


def _with(latents: dict) -> dict:
    return SHIPPED | {"latents": SHIPPED["latents"] | latents}


def test_the_shipped_summary_reads() -> None:
    assert Manifest.model_validate(SHIPPED).latents is not None


@pytest.mark.parametrize(
    ("latents", "message"),
    [
        ({"activity": [0.5] * 31}, "latent_dim = 32"),
        ({"points": [[0.0, 0.0]]}, "one label a point"),
        ({"points": [[0.0, 0.0]], "labels": [1, 2]}, "one label a point"),
    ],
)
def test_a_summary_that_does_not_fit_the_model_is_refused(latents: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Manifest.model_validate(_with(latents))
