"""Shipped cards say where their data came from (its name, its folder relative to the data root) and
how the run was started (paths relative to the repository), never where one machine kept them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CARDS = sorted((ROOT / "assets" / "checkpoints").glob("**/card.json"))
# an absolute path on its own or as a word of a longer text (a command, a method): "/x/y..." at the
# start or after a space, "=", a quote or a bracket (so "1/4" or "G/D" do not count), or "C:\"
ABSOLUTE = re.compile(r"(?:^|[\s=(\"'])(/[\w.-]+/[^\s\"')]*|/[\w.-]+$)|(?:^|[\s=(\"'])([A-Za-z]:[\\/])")


def _strings(value: object, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def test_every_shipped_checkpoint_has_a_card():
    assert len(CARDS) >= 5, CARDS


@pytest.mark.parametrize("card", CARDS, ids=lambda p: str(p.parent.relative_to(ROOT / "assets" / "checkpoints")))
def test_no_shipped_card_holds_an_absolute_path(card: Path):
    found = [
        f"{where}: {m.group(0).strip()}"
        for where, text in _strings(json.loads(card.read_text()))
        for m in ABSOLUTE.finditer(text)
    ]
    assert not found, f"{card.relative_to(ROOT)} records machine paths:\n" + "\n".join(found)
    data = json.loads(card.read_text()).get("data", {})
    assert data.get("name"), "the card names its data set"


@pytest.mark.parametrize(
    "text, absolute",
    [
        ("/work/shared/datasets/faces/train", True),
        ("python -m training faces --data /work/x/y --out runs/f", True),
        ("--out=/runs", True),
        ("C:\\data\\faces", True),
        ("faces/train", False),
        ("python -m training faces --data ../shared/datasets/faces/train --out runs/faces", False),
        ("1/4 of the steps, G/D alternating, 128x128 / 64x64", False),
    ],
)
def test_the_check_tells_absolute_paths_from_relative_ones(text: str, absolute: bool):
    assert bool(ABSOLUTE.search(text)) is absolute
