"""The README documents every setting the service reads."""

from __future__ import annotations

from service.settings import Settings
from tests.conftest import ROOT


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"VAE_{name.upper()}" for name in Settings.model_fields if f"`VAE_{name.upper()}`" not in readme
    ]
    assert missing == []
