"""Every task, under each precision mode this CPU offers (`--amp off`: fp32; `--amp auto`: bf16 autocast
where the CPU computes bf16 natively, else fp32 again, so not run twice): two steps on tiny data made here,
stopped after the first (SIGTERM, as a kill that lets the state be saved), resumed, exported; the card
says which precision trained it and records both sessions and the run's configuration."""

import os
import shlex
import signal
from pathlib import Path

import pytest
import torch

from gandemo.checkpoint import load_checkpoint
from tests.training.test_all import make_data_root, use_stand_ins
from training.cli import main
from training.loop import Trainer, cpu_has_fast_bf16

# each task's data under make_data_root's folder, and options that make its models tiny
RUNS = {
    "faces": ("faces/train", ["--ngf", "8", "--ndf", "8"]),
    "edges2photo": ("edges2shoes_utzap/train", shlex.split("--ngf 4 --max-mult 2 --ndf 4 --eval-n 3")),
    "superres": ("sr_train", shlex.split("--channels 4 --blocks 1 --crop 32 --ndf 4 --eval-n 2")),
    "music": ("music", shlex.split("--g-width 8 --d-width 8 --z-dim 4 --n-critic 2 --eval-n 4")),
    "anomaly": (
        "anomaly/magnetic_tile",
        shlex.split(
            "--variant magnetic_tile --image-size 16 --ngf 4 --ndf 4 --nef 4 --search-iterations 2 --encoder-steps 0 "
            "--inpaint-steps 1 --inpaint-ngf 4 --inpaint-ndf 4 --inpaint-batch-size 2"
        ),
    ),
}
# the precision modes this CPU offers: --amp auto is a mode of its own only where it means bf16
MODES = {"off": "fp32", **({"auto": "bf16 autocast"} if cpu_has_fast_bf16() else {})}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data_root(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("amp", list(MODES))
@pytest.mark.parametrize("task", list(RUNS))
def test_two_steps_stopped_resumed_and_exported(task: str, amp: str, data_root: Path, tmp_path: Path, monkeypatch):
    use_stand_ins(monkeypatch.setattr)
    data, options = RUNS[task]
    out = tmp_path / "run"
    argv = [task, "--data", str(data_root / data), "--out", str(out), *options, "--amp", amp]
    argv += ["--steps", "2", "--batch-size", "2", "--threads", "1", "--no-progress"]
    step = Trainer.train_step

    def stopped_after_the_first(self: Trainer) -> dict[str, float]:
        values = step(self)
        if self.step == 0:  # the loop counts this step after it: stop at step 1
            os.kill(os.getpid(), signal.SIGTERM)
        return values

    monkeypatch.setattr(Trainer, "train_step", stopped_after_the_first)
    assert main(argv) == 0
    assert torch.load(out / "state.pt", weights_only=True)["step"] == 1 and not (out / "checkpoint").exists()
    monkeypatch.setattr(Trainer, "train_step", step)
    assert main([*argv, "--resume"]) == 0
    card = load_checkpoint(out / "checkpoint").card
    training = card["training"]
    assert training["steps"] == 2 and [(s["from_step"], s["to_step"]) for s in training["sessions"]] == [(0, 1), (1, 2)]
    assert training["precision"].startswith(MODES[amp]) and training["config"]["amp"] == amp
