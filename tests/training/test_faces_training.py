"""The shared loop, driven through the faces trainer on a tiny image folder the test makes."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gandemo.checkpoint import load_checkpoint
from training.cli import main
from training.faces import FacesTask

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--sample-every", "2", "--threads", "1"]


def run(data: Path, out: Path, *extra: str) -> int:
    return main(["faces", "--data", str(data), "--out", str(out), *TINY, *extra])


def state(out: Path) -> dict:
    return torch.load(out / "state.pt", weights_only=True)


def test_a_few_steps_train_log_sample_and_export(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "3") == 0
    s = state(out)
    assert s["step"] == 3
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["step", "seconds", "loss_d", "loss_g"]
    losses = [float(x) for x in lines[-1].split(",")[2:]]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert (out / "samples" / "step_000002.png").is_file()
    ckpt = load_checkpoint(out / "checkpoint")
    card = ckpt.card
    assert card["training"]["steps"] == 3 and card["training"]["preset"] == "cpu"
    assert card["data"]["items"] > 0 and card["arch"]["G"]["kwargs"]["ngf"] == 8
    assert (out / "checkpoint" / "samples.png").is_file()
    # where the data and the run were, without this machine's absolute paths (tmp is outside every root)
    assert card["data"]["path"] == f"{image_folder.parent.name}/{image_folder.name}"
    assert (
        str(tmp_path) not in card["training"]["command"]
        and f"--out {out.parent.name}/run" in card["training"]["command"]
    )


def test_training_changes_both_players(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "1") == 0
    before = state(out)["models"]
    assert run(image_folder, out, "--steps", "3", "--resume") == 0
    after = state(out)["models"]
    for net in ("G", "D"):
        changed = [k for k, v in before[net].items() if v.is_floating_point() and not torch.equal(v, after[net][k])]
        assert changed, f"{net} did not change"


def test_resume_continues_exactly_where_it_stopped(image_folder: Path, tmp_path: Path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(image_folder, straight, "--steps", "4") == 0
    assert run(image_folder, split, "--steps", "2") == 0
    assert state(split)["step"] == 2
    assert run(image_folder, split, "--steps", "4", "--resume") == 0
    a, b = state(straight), state(split)
    assert b["step"] == 4
    for net in ("G", "D"):
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k} differs after resume"
    assert torch.equal(a["ema"]["model"]["net.0.weight"], b["ema"]["model"]["net.0.weight"])
    # each process that trained the run is on record (the card shows them)
    assert [(x["from_step"], x["to_step"]) for x in b["sessions"]] == [(0, 2), (2, 4)]
    assert all(x["threads"] >= 1 and x["device"] == "cpu" for x in b["sessions"])


def test_an_existing_run_is_not_overwritten_without_resume(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "1") == 0
    with pytest.raises(SystemExit, match="--resume"):
        run(image_folder, out, "--steps", "2")


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_state(
    image_folder: Path, tmp_path: Path, monkeypatch, capsys
):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "2") == 0
    saved = (out / "state.pt").read_bytes()
    original = FacesTask.train_step

    def poisoned(self, batch, amp):
        losses = original(self, batch, amp)
        return {**losses, "loss_g": torch.tensor(float("nan"))}

    monkeypatch.setattr(FacesTask, "train_step", poisoned)
    assert run(image_folder, out, "--steps", "5", "--resume") == 3
    err = capsys.readouterr().err
    assert "loss_g=nan at step 3" in err
    assert (out / "state.pt").read_bytes() == saved
    assert not (out / "checkpoint").exists() or load_checkpoint(out / "checkpoint").card["training"]["steps"] == 2


def test_a_run_killed_with_sigkill_mid_way_resumes_with_the_same_command_and_finishes(
    image_folder: Path, tmp_path: Path
):
    """A hard kill mid-run leaves a loadable state (atomic saves): the same command with --resume
    finishes the run and exports it, and the result is exactly that of a run never killed."""
    out, export = tmp_path / "run", tmp_path / "checkpoint"
    args = [*TINY, "--sample-every", "1000", "--steps", "40", "--save-every", "0", "--export", str(export)]
    cmd = [sys.executable, "-m", "training", "faces", "--data", str(image_folder), "--out", str(out), *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "state.pt").exists() or state(out)["step"] < 3:
            assert time.monotonic() < deadline, "the run never saved its state"
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = state(out)["step"]
    assert 3 <= killed_at < 40 and not export.exists()
    resumed = subprocess.run([*cmd, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed faces from step {killed_at}" in resumed.stdout + resumed.stderr
    assert state(out)["step"] == 40
    card = load_checkpoint(export).card
    assert card["training"]["steps"] == 40 and card["training"]["sessions"][-1]["from_step"] == killed_at
    assert run(image_folder, tmp_path / "straight", *args[len(TINY) : -2]) == 0  # the same run, never killed
    a, b = state(tmp_path / "straight"), state(out)
    for net in ("G", "D"):
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k} differs from the run never killed"


def test_export_only_writes_a_checkpoint_from_the_saved_state(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(image_folder, out, "--steps", "2", "--export", str(tmp_path / "a")) == 0
    assert run(image_folder, out, "--steps", "9", "--export-only", "--export", str(tmp_path / "b")) == 0
    train = load_checkpoint(tmp_path / "b").card["training"]
    assert train["steps"] == 2
    # the card names the command that trained the run, and separately the one that exported it
    assert "--steps 2" in train["command"] and "--export-only" not in train["command"]
    assert "--export-only" in train["exported"]["command"]
    assert [x["to_step"] for x in train["sessions"]] == [2]
    assert state(out)["step"] == 2  # nothing was trained
