"""What the training code does on a GPU or under torchrun, checked on a CPU. No GPU was available
when these were written, so each test simulates the part that differs (a state whose tensors were
saved on CUDA, torch.cuda functions replaced, the `meta` device standing in for a GPU) and checks
the code path a GPU run takes. docs/training.md ("Before the first GPU run") lists what they cover
and what only a run on a GPU can show."""

from pathlib import Path

import pytest
import torch

from training.faces import FacesTask
from training.loop import Amp, RunConfig, Trainer
from training.run import parse_train_args

TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--threads", "1"]


def trainer(data: Path, out: Path, steps: int = 2, resume: bool = False) -> Trainer:
    """A tiny faces run's Trainer on the CPU (steps, no sample grids, no evaluations)."""
    args = parse_train_args(FacesTask, ["--data", str(data), "--out", str(out), *TINY, "--steps", str(steps)])
    cfg = RunConfig(
        out=out, steps=steps, preset="cpu", device=torch.device("cpu"), resume=resume, progress=False, sample_every=999
    )
    return Trainer(FacesTask(args, cfg.device), cfg)


def save_as_if_from_cuda(state: dict, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.save `state` with every tensor recorded as stored on cuda:0, as a run on a GPU saves it."""
    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(state, path)


# ---- resume: a state saved on CUDA ---------------------------------------------------------------
def test_a_state_saved_on_cuda_resumes_with_the_hand_restored_tensors_on_the_cpu(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "run"
    trainer(image_folder, out).train()
    state = torch.load(out / "state.pt", weights_only=True)
    save_as_if_from_cuda(state, out / "state.pt", monkeypatch)
    with pytest.raises(RuntimeError, match="CUDA"):  # the file says cuda:0: loaded where saved, it needs a GPU
        torch.load(out / "state.pt", weights_only=True)

    resumed = trainer(image_folder, out, steps=3, resume=True)
    resumed.cfg.device = torch.device("cuda", 0)  # the device the run recorded: the loop must not load onto it
    restored = []
    set_rng_state = torch.set_rng_state
    monkeypatch.setattr(torch, "set_rng_state", lambda t: restored.append(t) or set_rng_state(t))
    resumed.prepare()
    resumed.cfg.device = torch.device("cpu")
    sampler = resumed.task.sampler
    assert resumed.step == 2 and restored and all(t.device.type == "cpu" for t in restored)
    assert sampler.perm.device.type == "cpu" and sampler.generator.get_state().device.type == "cpu"
    assert torch.equal(sampler.perm, state["task_state"]["sampler"]["perm"])
    resumed.train()  # loads the state again, on the CPU this time, and goes on
    assert resumed.step == 3


# ---- the numeric path on CUDA --------------------------------------------------------------------
@pytest.fixture
def cuda_flags():
    """Amp on "cuda" sets torch's global backend flags: they are put back after the test."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_bf16_on_cuda_only_where_the_gpu_computes_it_natively(monkeypatch: pytest.MonkeyPatch, cuda_flags: None):
    asked = []

    def emulating_gpu(including_emulation: bool = True) -> bool:  # a pre-Ampere GPU: bf16 only emulated
        asked.append(including_emulation)
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulating_gpu)
    assert Amp(torch.device("cuda"), enabled=True).dtype == torch.float16 and asked == [False]
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert Amp(torch.device("cuda"), enabled=True).dtype == torch.bfloat16
