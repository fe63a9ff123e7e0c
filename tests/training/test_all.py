"""`python -m training all` on tiny data of every task made here: it trains every task (superres
psnr, then gan from the shipped psnr; one anomaly run per category folder), ships each checkpoint
where the app's registry loads it, evaluates it into its card, prints the table, and resumes."""

import os
import signal
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
from training.faces import FacesTask

TINY = [
    *("--steps", "2", "--batch-size", "2", "--threads", "1", "--no-progress"),
    *("--task-args", "faces=--ngf 8 --ndf 8"),
    *("--task-args", "edges2photo=--ngf 4 --max-mult 2 --ndf 4 --eval-n 3"),
    *("--task-args", "superres=--channels 4 --blocks 1 --crop 32 --ndf 4 --eval-n 2"),
    *("--task-args", "music=--g-width 8 --d-width 8 --z-dim 4 --n-critic 2 --eval-n 4"),
    *("--task-args", "anomaly=--image-size 16 --ngf 4 --ndf 4 --nef 4 --search-iterations 2 --encoder-steps 0"),
    *("--task-args", "anomaly=--inpaint-steps 1 --inpaint-ngf 4 --inpaint-ndf 4 --inpaint-batch-size 2"),
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
    expected.append("music/harmonize")
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
    assert gan["hyperparameters"]["init"].endswith("superres/psnr")  # gan starts from the psnr shipped here
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


def test_all_stops_when_asked_and_resume_continues_the_half_finished_run(
    tmp_path: Path, stand_ins, monkeypatch, capsys
):
    root, runs, ckpts = make_data_root(tmp_path / "data"), tmp_path / "runs", tmp_path / "ckpt"
    args = ["all", "--data-root", str(root), "--out-root", str(runs), "--export-root", str(ckpts), *TINY]
    args += ["--only", "faces,music", "--no-evaluate"]
    step = FacesTask.train_step

    def stopped_after_one_step(self, batch, amp):  # as if the user sent SIGTERM (or pressed Ctrl-C)
        losses = step(self, batch, amp)
        os.kill(os.getpid(), signal.SIGTERM)
        return losses

    monkeypatch.setattr(FacesTask, "train_step", stopped_after_one_step)
    assert main(args) == 1
    assert "| faces/default | stopped: stopped at step 1 of 2; continue with --resume |" in capsys.readouterr().out
    assert not (runs / "music-default").exists() and not (ckpts / "faces").exists()  # nothing after the stop
    monkeypatch.setattr(FacesTask, "train_step", step)
    with pytest.raises(SystemExit, match="--resume"):  # an existing run is never started over
        main(args)
    assert main([*args, "--resume"]) == 0
    card = read_card(ckpts / "faces" / "default")
    assert [(s["from_step"], s["to_step"]) for s in card["training"]["sessions"]] == [(0, 1), (1, 2)]
    assert card["metrics"] == {} and torch.load(runs / "faces-default" / "state.pt", weights_only=True)["step"] == 2
    out = capsys.readouterr().out
    assert "| faces/default | done | 2 |" in out and "| music/default | done | 2 |" in out
    with pytest.raises(SystemExit, match="unknown"):
        main([*args, "--only", "cats"])
