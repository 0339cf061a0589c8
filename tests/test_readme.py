"""The configuration page documents every setting the service reads; the README links every doc."""

from __future__ import annotations

import re

from harness import ROOT
from service.settings import Settings


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f"VAE_{name.upper()}" for name in Settings.model_fields if f"`VAE_{name.upper()}`" not in readme
    ]
    assert missing == []


def test_the_readme_is_short_and_its_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\(([^)#]+)\)", readme)
    assert targets and all((ROOT / t).exists() for t in targets), [
        t for t in targets if not (ROOT / t).exists()
    ]
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in readme, page.name
        for target in re.findall(r"\]\(([^)#:]+)\)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)
