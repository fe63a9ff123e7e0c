"""The one helper every trainer writes paths into a card with: data folders relative to the data root,
run folders and commands relative to the repository, nothing absolute."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from training.task import DATA_ROOT, REPO_ROOT, data_path, portable_card, portable_command, repo_path


def test_data_folders_are_recorded_relative_to_the_data_root(tmp_path: Path):
    assert data_path(DATA_ROOT / "edges2shoes_utzap" / "train") == "edges2shoes_utzap/train"
    assert data_path(DATA_ROOT / "music") == "music"
    assert data_path(tmp_path / "sets" / "faces" / "train", root=tmp_path / "sets") == "faces/train"
    # elsewhere: the folder's own name and its parent's, never the machine's absolute path
    assert data_path(tmp_path / "x" / "faces") == "x/faces"


def test_a_relative_data_folder_is_taken_from_the_current_directory(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert data_path(Path("..") / "shared" / "datasets" / "faces" / "train") == "faces/train"


def test_a_data_folder_reached_through_a_link_is_still_under_the_root(tmp_path: Path):
    root = tmp_path / "datasets"
    (root / "sr_train").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    assert data_path(tmp_path / "link" / "sr_train", root=root) == "sr_train"


def test_repository_paths_are_relative_to_the_repository(tmp_path: Path):
    assert repo_path(REPO_ROOT / "runs" / "faces-v2") == "runs/faces-v2"
    assert repo_path(REPO_ROOT / "assets" / "checkpoints" / "superres" / "psnr") == "assets/checkpoints/superres/psnr"
    assert (
        repo_path(DATA_ROOT / "faces" / "train")
        == Path(os.path.relpath(DATA_ROOT, REPO_ROOT), "faces/train").as_posix()
    )
    assert repo_path(tmp_path / "runs" / "faces") == "runs/faces"
    assert not Path(repo_path(tmp_path / "a" / "b")).is_absolute()


def test_commands_keep_their_words_and_lose_their_absolute_paths():
    command = shlex.join(
        ["python", "-m", "training", "faces", "--data", str(DATA_ROOT / "faces" / "train"),
         f"--out={REPO_ROOT / 'runs' / 'faces v2'}", "--preset", "cpu", "--task-args", "faces=--ngf 32"]
    )  # fmt: skip
    words = shlex.split(portable_command(command))
    assert words[5] == Path(os.path.relpath(DATA_ROOT, REPO_ROOT), "faces/train").as_posix()
    assert words[6] == "--out=runs/faces v2"
    assert words[:5] == ["python", "-m", "training", "faces", "--data"] and words[7:] == shlex.split(command)[7:]
    assert portable_command("python -m training faces --out runs/f") == "python -m training faces --out runs/f"


@pytest.mark.parametrize("text", ["it's unbalanced /abs/path", "", "no  'paths' here"])
def test_a_command_that_does_not_parse_is_left_alone(text: str):
    assert portable_command(text) == text


def test_a_whole_card_comes_out_without_absolute_paths():
    card = {
        "data": {"name": "faces", "path": str(DATA_ROOT / "faces" / "train"), "items": 3},
        "training": {
            "command": f"python -m training faces --out {REPO_ROOT / 'runs' / 'f'}",
            "sessions": [{"command": f"python -m training faces --data {DATA_ROOT / 'faces'}", "threads": 1}],
        },
        "hyperparameters": {"init": str(REPO_ROOT / "assets" / "checkpoints" / "superres" / "psnr"), "lr": 2e-4},
        "notes": "G/D at 1/2 width",
    }
    out = portable_card(card)
    assert out["data"] == {"name": "faces", "path": "faces/train", "items": 3}
    assert out["training"]["command"] == "python -m training faces --out runs/f"
    assert out["training"]["sessions"][0]["command"].endswith("--data ../shared/datasets/faces")
    assert out["hyperparameters"] == {"init": "assets/checkpoints/superres/psnr", "lr": 2e-4}
    assert out["notes"] == card["notes"]
