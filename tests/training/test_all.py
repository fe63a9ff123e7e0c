"""`python -m training all` on tiny data of every task made here: it trains every task (superres
psnr, then gan from the shipped psnr; one anomaly run per category folder), ships each checkpoint
where the app's registry loads it, evaluates it into its card, prints the table, and resumes."""

from pathlib import Path

import pytest
import torch

from gandemo import registry
from gandemo.checkpoint import read_card
from tests.conftest import make_image_folder
from tests.training.test_anomaly_training import make_mvtec_tree
from tests.training.test_edges2photo_training import make_pair_folder
from tests.training.test_evaluate import PooledColours
from tests.training.test_music_training import write_chorales
from tests.training.test_superres_training import TinyFeatures, make_photo_folder
from training import all as train_all
from training import inception, superres
from training.cli import main

TINY = [
    *("--steps", "2", "--batch-size", "2", "--threads", "1", "--no-progress"),
    *("--task-args", "faces=--ngf 8 --ndf 8"),
    *("--task-args", "edges2photo=--ngf 4 --max-mult 2 --ndf 4 --eval-n 3"),
    *("--task-args", "superres=--channels 4 --blocks 1 --crop 32 --ndf 4 --eval-n 2"),
    *("--task-args", "music=--g-width 8 --d-width 8 --z-dim 4 --n-critic 2 --eval-n 4"),
    *("--task-args", "anomaly=--image-size 16 --ngf 4 --ndf 4 --nef 4 --search-iterations 2 --encoder-steps 1"),
    *("--eval-args", "faces=--n 8", "--eval-args", "edges2photo=--n 3", "--eval-args", "music=--n 8"),
    *("--eval-args", "anomaly=--iterations 2 --timing-n 1 --no-progress"),
]


def make_data_root(root: Path) -> Path:
    """Every task's data in the documented layout, tiny; the edge pairs under the shared datasets'
    own name, and one anomaly folder that is not a catalogue category."""
    make_image_folder(root / "faces" / "train", n=120)  # 7% held out: enough for the evaluation
    make_pair_folder(root / "edges2shoes_utzap" / "train")
    make_photo_folder(root / "sr_train")
    write_chorales(root / "music")
    make_mvtec_tree(root / "anomaly" / "magnetic_tile")
    (root / "anomaly" / "screws" / "train" / "good").mkdir(parents=True)
    return root


def use_stand_ins(set_attr) -> None:
    """Small stand-ins for TF-Inception (FID features, superres' content loss): CI does not install it."""
    set_attr(inception, "inception_network", PooledColours)
    set_attr(superres, "content_network", lambda layer="mixed_2": TinyFeatures())


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    use_stand_ins(monkeypatch.setattr)


def test_the_plan_finds_each_tasks_data_and_orders_the_variants(tmp_path: Path):
    root = make_data_root(tmp_path / "data")
    items = {i.key: i for i in train_all.plan(root)}
    assert [k for k in items if k.startswith("superres")] == ["superres/psnr", "superres/gan"]
    assert items["faces/default"].data == root / "faces" / "train"
    assert items["edges2photo/default"].data == root / "edges2shoes_utzap" / "train"
    assert items["anomaly/magnetic_tile"].data == root / "anomaly" / "magnetic_tile"
    assert items["anomaly/screws"].data is None and "not a catalogue category" in items["anomaly/screws"].note
    (root / "music" / "Jsb16thSeparated.json").unlink()
    (root / "music").rmdir()
    assert "no data" in {i.key: i for i in train_all.plan(root)}["music/default"].note


def test_all_trains_ships_and_evaluates_every_task_and_the_app_loads_them(
    tmp_path: Path, stand_ins, use_checkpoints, capsys
):
    root, runs, ckpts = make_data_root(tmp_path / "data"), tmp_path / "runs", tmp_path / "ckpt"
    args = ["all", "--data-root", str(root), "--out-root", str(runs), "--export-root", str(ckpts), *TINY]
    assert main(args) == 0
    out = capsys.readouterr().out
    expected = ["faces/default", "edges2photo/default", "superres/psnr", "superres/gan", "music/default"]
    expected.append("anomaly/magnetic_tile")
    use_checkpoints(ckpts)
    for key in expected:
        task, variant = key.split("/")
        ckpt = registry.get(task, variant)  # the app's own loader
        card = ckpt.card
        assert card["training"]["steps"] == 2 and card["metrics"], key
        assert f"| {key} | done | 2 |" in out
        first_metric = next(iter(card["metrics"]))
        assert first_metric in out
    gan = read_card(ckpts / "superres" / "gan")
    assert gan["hyperparameters"]["init"] == str(ckpts / "superres" / "psnr")  # gan starts from the shipped psnr
    assert "--variant gan" in gan["training"]["command"]
    assert "| anomaly/screws | skipped: not a catalogue category" in out
    assert (runs / "all.md").read_text().strip() in out  # the table is kept beside the runs
    manifest = train_all.read_manifest(runs)
    assert {k: v["status"] for k, v in manifest["items"].items()} == {k: "done" for k in expected}

    # again with --resume: every finished item is skipped, the table is the same
    weights = (ckpts / "faces" / "default" / "model.safetensors").read_bytes()
    assert main([*args, "--resume"]) == 0
    assert capsys.readouterr().out.count("| done |") == len(expected)
    assert (ckpts / "faces" / "default" / "model.safetensors").read_bytes() == weights


def test_all_refuses_existing_runs_without_resume_and_continues_a_half_finished_one(tmp_path: Path, stand_ins, capsys):
    root, runs, ckpts = make_data_root(tmp_path / "data"), tmp_path / "runs", tmp_path / "ckpt"
    half = runs / "faces-default"  # a run stopped at step 1 of 2 (as if killed)
    tiny = ["--ngf", "8", "--ndf", "8", "--batch-size", "2", "--threads", "1", "--no-progress"]
    assert main(["faces", "--data", str(root / "faces" / "train"), "--out", str(half), *tiny, "--steps", "1"]) == 0
    args = ["all", "--data-root", str(root), "--out-root", str(runs), "--export-root", str(ckpts), "--only", "faces"]
    with pytest.raises(SystemExit, match="--resume"):
        main([*args, *TINY])
    assert main([*args, *TINY, "--resume", "--no-evaluate"]) == 0
    card = read_card(ckpts / "faces" / "default")
    assert [(s["from_step"], s["to_step"]) for s in card["training"]["sessions"]] == [(0, 1), (1, 2)]
    assert card["metrics"] == {} and torch.load(half / "state.pt", weights_only=True)["step"] == 2
    assert "| faces/default | done | 2 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="unknown"):
        main([*args, "--only", "cats", *TINY])
