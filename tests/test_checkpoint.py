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


class Killed(BaseException):
    """A kill: what was done stays on disk, nothing after it runs, not even the clean-up."""


def _kill_at(monkeypatch: pytest.MonkeyPatch, stage: str) -> None:
    """Make the export die the moment it reaches `stage` (the call does not happen)."""
    import pathlib
    import shutil

    from PIL import Image

    def die(*args, **kwargs):
        raise Killed(stage)

    monkeypatch.setattr(shutil, "rmtree", lambda *a, **kw: None)  # a killed process cleans nothing up
    if stage == "writing the weights":
        monkeypatch.setattr(ck, "save_file", die)
    elif stage == "hashing the weights":
        monkeypatch.setattr(ck, "sha256_of", die)
    elif stage == "writing the card":
        monkeypatch.setattr(pathlib.Path, "write_text", die)
    elif stage == "writing the samples":
        monkeypatch.setattr(Image.Image, "save", die)
    elif stage.startswith("renaming"):  # the n-th rename of the folder swap
        calls, real = [], os.replace

        def nth(*args, **kwargs):
            calls.append(args)
            if len(calls) == int(stage[-1]):
                raise Killed(stage)
            return real(*args, **kwargs)

        monkeypatch.setattr(os, "replace", nth)
    elif stage == "after the swap":
        monkeypatch.setattr(shutil, "rmtree", die)


STAGES = [
    "writing the weights",
    "hashing the weights",
    "writing the card",
    "writing the samples",
    "renaming 1",
    "renaming 2",
    "after the swap",
]


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic swap", "two renames"])
@pytest.mark.parametrize("stage", STAGES)
def test_an_export_killed_at_any_point_never_leaves_a_checkpoint_that_loads_but_is_wrong(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stage: str, exchange: bool
):
    from PIL import Image

    from gandemo import registry

    folder = write_tiny_faces_checkpoint(tmp_path, seed=0)  # the checkpoint in place before the export
    old = ck.read_card(folder)["sha256"]
    if not exchange:
        monkeypatch.setattr(ck, "_exchange", lambda a, b: False)  # a system without an atomic swap
    G = Generator(**TINY_G)
    card = {"task": "faces", "variant": "default", "arch": {"G": ck.arch_entry(G, TINY_G)}}
    killed = False
    with monkeypatch.context() as m:
        _kill_at(m, stage)
        try:
            ck.save_checkpoint(folder, {"G": G}, card, samples=Image.new("RGB", (8, 8)))
        except Killed:
            killed = True
    assert killed or (exchange and stage.startswith("renaming"))  # an atomic swap has no renames to die at
    new = ck._tensors({"G": G}, torch.float16)
    monkeypatch.setenv(registry.ENV_ROOT, str(tmp_path))
    registry.clear()
    if folder.exists():  # the old checkpoint, whole, or the new one, whole
        loaded = ck.load_checkpoint(folder)
        sha = loaded.card["sha256"]
        if sha != old:
            state = {f"G.{k}": v.half() for k, v in loaded["G"].state_dict().items() if v.is_floating_point()}
            assert all(torch.equal(state[k], new[k]) for k in state), "a checkpoint that loads but is wrong"
        assert registry.get("faces")["G"] is not None
    else:  # only where the folder is moved aside before the new one is moved in, and no swap exists
        assert not exchange and stage == "renaming 2"
        with pytest.raises(registry.ModelUnavailable, match="not trained yet"):
            registry.get("faces")
    registry.clear()
    # what a killed export leaves behind never stops the next export, which then loads
    ck.save_checkpoint(folder, {"G": G}, card)
    assert ck.load_checkpoint(folder).card["sha256"] != old


def test_a_card_update_killed_before_it_lands_keeps_the_old_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = write_tiny_faces_checkpoint(tmp_path)

    def die(*args, **kwargs):
        raise Killed("replacing the card")

    with monkeypatch.context() as m:
        m.setattr(os, "replace", die)
        with pytest.raises(Killed):
            ck.update_card(folder, metrics={"fid": {"model": 1.0}})
    assert ck.load_checkpoint(folder).card["metrics"] == {}  # the old card, whole
    ck.update_card(folder, metrics={"fid": {"model": 1.0}})
    assert ck.load_checkpoint(folder).card["metrics"] == {"fid": {"model": 1.0}}
