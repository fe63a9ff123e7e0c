import json
import os
from pathlib import Path

import pytest
import torch

from gandemo import checkpoint as ck
from gandemo.nets.dcgan import Generator
from tests.conftest import TINY_G, write_tiny_faces_checkpoint


def test_round_trip_gives_the_same_pictures(tmp_path: Path):
    folder = write_tiny_faces_checkpoint(tmp_path)
    torch.manual_seed(0)
    G = Generator(**TINY_G).eval()  # same seed as the checkpoint's generator
    loaded = ck.load_checkpoint(folder)
    z = torch.randn(4, 100)
    with torch.no_grad():
        # fp16 storage: differences far below one 8-bit grey level (2/255 in [-1, 1])
        assert (loaded["G"](z) - G(z)).abs().max() < 2 / 255
    card = loaded.card
    assert card["sha256"] == ck.sha256_of(folder / ck.WEIGHTS)
    assert card["arch"]["G"] == {"class": "gandemo.nets.dcgan:Generator", "kwargs": TINY_G}
    assert card["format_version"] == ck.FORMAT_VERSION
    assert not loaded["G"].training and not any(p.requires_grad for p in loaded["G"].parameters())


def test_corrupted_weights_are_refused(tmp_path: Path):
    folder = write_tiny_faces_checkpoint(tmp_path)
    weights = folder / ck.WEIGHTS
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match="sha256") as err:
        ck.load_checkpoint(folder)
    assert str(folder) in str(err.value)


def test_truncated_weights_with_matching_hash_give_a_clear_error(tmp_path: Path):
    folder = write_tiny_faces_checkpoint(tmp_path)
    weights = folder / ck.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    ck.update_card(folder, sha256=ck.sha256_of(weights))  # someone "fixed" the hash by hand
    with pytest.raises(ck.CheckpointError, match="cannot read"):
        ck.load_checkpoint(folder)


def test_card_that_does_not_match_the_weights_is_refused(tmp_path: Path):
    folder = write_tiny_faces_checkpoint(tmp_path)
    card = json.loads((folder / ck.CARD).read_text())
    card["arch"]["G"]["kwargs"]["ngf"] = 16  # weights were made with ngf=8
    (folder / ck.CARD).write_text(json.dumps(card))
    with pytest.raises(ck.CheckpointError, match="do not fit the card's architecture"):
        ck.load_checkpoint(folder)


def test_card_may_only_name_project_networks(tmp_path: Path):
    folder = write_tiny_faces_checkpoint(tmp_path)
    card = json.loads((folder / ck.CARD).read_text())
    card["arch"]["G"]["class"] = "os:system"
    (folder / ck.CARD).write_text(json.dumps(card))
    with pytest.raises(ck.CheckpointError, match="only gandemo.nets"):
        ck.load_checkpoint(folder)


@pytest.mark.parametrize("problem", ["no card", "bad json", "no weights", "old format"])
def test_broken_folders_name_the_folder(tmp_path: Path, problem: str):
    folder = write_tiny_faces_checkpoint(tmp_path)
    if problem == "no card":
        (folder / ck.CARD).unlink()
    elif problem == "bad json":
        (folder / ck.CARD).write_text("{not json")
    elif problem == "no weights":
        (folder / ck.WEIGHTS).unlink()
    else:
        ck.update_card(folder, format_version=0)
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_checkpoint(folder)
    assert str(folder) in str(err.value)


def test_export_replaces_the_old_folder_whole_and_a_failed_export_keeps_it(tmp_path: Path, monkeypatch):
    folder = write_tiny_faces_checkpoint(tmp_path, seed=0)
    old_sha = ck.read_card(folder)["sha256"]
    write_tiny_faces_checkpoint(tmp_path, seed=1)  # overwrite: the new weights are in place
    new_sha = ck.read_card(folder)["sha256"]
    assert new_sha != old_sha
    ck.load_checkpoint(folder)

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        write_tiny_faces_checkpoint(tmp_path, seed=2)
    assert ck.read_card(folder)["sha256"] == new_sha  # untouched
    ck.load_checkpoint(folder)
    leftovers = [p for p in os.listdir(folder.parent) if p != folder.name]
    assert leftovers == [], "no temporary folders are left behind"


def test_save_refuses_a_card_without_its_modules(tmp_path: Path):
    G = Generator(**TINY_G)
    with pytest.raises(ValueError, match="arch"):
        ck.save_checkpoint(tmp_path / "x", {"G": G}, {"task": "faces", "variant": "default", "arch": {}})
