"""The repository is a Hugging Face Space: the README's card parses with huggingface_hub's Space card
parser and holds what Spaces accept (https://huggingface.co/docs/hub/spaces-config-reference);
requirements.txt, packages.txt and pyproject.toml agree; `python app.py` is the entry point."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import gradio
import pytest
from huggingface_hub import SpaceCard
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}  # the thumbnail gradients


@pytest.fixture(scope="module")
def card() -> SpaceCard:
    return SpaceCard.load(ROOT / "README.md")  # raises on a missing or malformed YAML block


def _requirements() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_readme_card_is_a_valid_gradio_space_card(card: SpaceCard):
    data = card.data
    assert data.title and data.sdk == "gradio"
    assert (ROOT / data.app_file).is_file() and data.app_file == "app.py"
    assert data.colorFrom in COLOURS and data.colorTo in COLOURS
    assert data.emoji and not re.search(r"[\w\s]", data.emoji), "emoji: one emoji only"
    assert len(data.short_description) <= 60, "Spaces cut short descriptions at 60 characters"
    assert isinstance(data.pinned, bool)
    assert card.text.lstrip().startswith("# "), "the README's body follows the card"


def test_the_card_names_the_gradio_and_python_the_app_is_tested_with(card: SpaceCard):
    assert Version(card.data.sdk_version) == Version(gradio.__version__)
    gradio_req = next(Requirement(r) for r in _requirements() if r.startswith("gradio"))
    assert gradio_req.specifier.contains(card.data.sdk_version)
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = str(card.data.python_version)
    assert re.fullmatch(r"3\.\d+", python) and SpecifierSet(requires).contains(f"{python}.0")


def test_requirements_name_the_cpu_build_of_torch_and_agree_with_pyproject():
    reqs = _requirements()
    options = [r for r in reqs if r.startswith("-")]
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    pinned = {Requirement(r).name.lower(): Requirement(r) for r in reqs if not r.startswith("-")}
    assert str(pinned["torch"].specifier) == "==2.14.1" and pinned["torch"].specifier.contains("2.14.1+cpu")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    assert set(pinned) == set(declared), "requirements.txt (the Space) and pyproject.toml (pip install .) differ"
    assert all(pinned[n].specifier == declared[n].specifier for n in pinned)


def test_packages_txt_lists_debian_packages_one_a_line():
    names = [line.strip() for line in (ROOT / "packages.txt").read_text().splitlines() if line.strip()]
    assert names and all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", n) for n in names)
