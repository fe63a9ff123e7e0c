"""What the training code does on a GPU or under torchrun, checked on a CPU. No GPU was available
when these were written, so each test simulates the part that differs (a state whose tensors were
saved on CUDA, torch.cuda functions replaced, the `meta` device standing in for a GPU) and checks
the code path a GPU run takes. docs/training.md ("Before the first GPU run") lists what they cover
and what only a run on a GPU can show."""

from pathlib import Path

import pytest
import torch
from torch import nn

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


def test_a_run_saved_with_more_gpus_visible_resumes_on_fewer(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "run"
    trainer(image_folder, out).train()
    state = torch.load(out / "state.pt", weights_only=True)
    state["rng_cuda"] = [torch.full((16,), i, dtype=torch.uint8) for i in range(4)]  # saved with 4 GPUs
    save_as_if_from_cuda(state, out / "state.pt", monkeypatch)
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # resumed where 2 are visible
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.extend(states))
    resumed = trainer(image_folder, out, steps=3, resume=True)
    resumed.prepare()
    assert [int(s[0]) for s in restored] == [0, 1] and all(s.device.type == "cpu" for s in restored)


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


def test_tf32_is_on_with_autocast_and_off_with_amp_off(monkeypatch: pytest.MonkeyPatch, cuda_flags: None):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    fast = Amp(torch.device("cuda"), enabled=True)
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert fast.description == "bf16 autocast + TF32 + channels_last"
    exact = Amp(torch.device("cuda"), enabled=False)  # e.g. the next run of `all`, with --amp off
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert exact.description == "fp32 + channels_last"


def test_spectral_norm_computes_sigma_in_fp32_under_autocast(monkeypatch: pytest.MonkeyPatch):
    from torch.nn.utils.parametrizations import _SpectralNorm

    from gandemo.nets.dcgan import Discriminator
    from training import loop

    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: True)  # bf16 autocast on this CPU, as on a GPU
    amp = Amp(torch.device("cpu"), enabled=True)
    torch.manual_seed(0)
    D = Discriminator(ndf=4, norm="spectral")
    keys = list(D.state_dict())
    seen = []
    power_method = _SpectralNorm._power_method

    def recording(self: _SpectralNorm, weight_mat: torch.Tensor, n: int) -> None:
        seen.append((torch.is_autocast_enabled("cpu"), weight_mat.dtype))
        power_method(self, weight_mat, n)

    monkeypatch.setattr(_SpectralNorm, "_power_method", recording)
    amp.prepare(D)
    with amp.autocast():
        logits = D(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert logits.dtype == torch.bfloat16  # the convolutions still run in bf16
    assert len(seen) == 5 and set(seen) == {(False, torch.float32)}  # the 5 norms: fp32, autocast off
    assert list(D.state_dict()) == keys  # checkpoints and run states as before


def test_the_r1_penalty_runs_in_fp32_under_autocast(monkeypatch: pytest.MonkeyPatch):
    from gandemo.nets.dcgan import Discriminator, Generator
    from training import loop
    from training.steps import gan_step

    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: True)  # bf16 autocast on this CPU, as on a GPU
    amp = Amp(torch.device("cpu"), enabled=True)
    torch.manual_seed(0)
    G, D = Generator(z_dim=8, ngf=4), Discriminator(ndf=4, norm="none")
    opts = {"G": torch.optim.Adam(G.parameters(), 1e-3), "D": torch.optim.Adam(D.parameters(), 1e-3)}
    calls = []
    D.register_forward_hook(lambda m, args, out: calls.append((args[0].requires_grad, out.dtype)))
    real, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 8)
    out = gan_step(G, D, opts, real, z, amp, r1_gamma=1.0, r1_every=1, step=0)
    assert torch.isfinite(out["r1"]) and out["r1"] > 0
    # D on the real images R1 differentiates: fp32; on the fakes, and in G's step: bf16 as before
    assert [dtype for _, dtype in calls] == [torch.float32, torch.bfloat16, torch.bfloat16] and calls[0][0]
    calls.clear()
    gan_step(G, D, opts, real, z, amp, r1_gamma=1.0, r1_every=2, step=1)  # no R1 this step: all bf16
    assert [dtype for _, dtype in calls] == [torch.bfloat16] * 3


# ---- gradient scalers (fp16) ---------------------------------------------------------------------
def fp16_amp() -> Amp:
    """An Amp whose gradient scalers are on, as fp16 on a GPU has them (GradScaler runs on a CPU too)."""
    amp = Amp(torch.device("cpu"), enabled=False)
    amp.scale = True
    return amp


def test_each_optimiser_has_its_own_scaler():
    torch.manual_seed(0)
    x = torch.randn(4, 2)
    g, d = nn.Linear(2, 1), nn.Linear(2, 1)
    opt_g, opt_d = torch.optim.SGD(g.parameters(), 0.1), torch.optim.SGD(d.parameters(), 0.1)
    amp = fp16_amp()
    before = d.weight.detach().clone()
    amp.step(d(x).sum() * float("inf"), opt_d)  # D overflows: its step is skipped and its scale backs off
    amp.step(g(x).sum(), opt_g)
    scaler_g, scaler_d = amp.scaler_for(opt_g), amp.scaler_for(opt_d)
    assert scaler_g is not scaler_d and scaler_g.is_enabled() and torch.equal(d.weight, before)
    assert scaler_d.get_scale() == 2.0**15 and scaler_g.get_scale() == 2.0**16  # G's scale is its own
    amp.step(g(x).sum(), opt_g)
    assert scaler_g._get_growth_tracker() == 2  # one update per step of its own optimiser


def test_scaler_states_of_every_format_load():
    opts = {k: torch.optim.SGD(nn.Linear(2, 1).parameters(), 0.1) for k in "GD"}
    old = {"scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 3}
    amp = fp16_amp()
    amp.load_scaler_states(opts, {"scaler": old})  # saved before one scaler per optimiser: each starts from it
    assert [amp.scaler_for(o).get_scale() for o in opts.values()] == [1024.0, 1024.0]
    amp = fp16_amp()
    amp.load_scaler_states(opts, {"scaler": {}})  # a bf16 or fp32 run's empty state: fresh scalers, no error
    assert [amp.scaler_for(o).get_scale() for o in opts.values()] == [2.0**16, 2.0**16]
    amp = fp16_amp()
    amp.load_scaler_states(opts, {"scalers": {"G": old | {"scale": 8.0}, "D": {}}})
    assert [amp.scaler_for(o).get_scale() for o in opts.values()] == [8.0, 2.0**16]
    again = fp16_amp()
    again.load_scaler_states(opts, {"scalers": amp.scaler_states(opts)})
    assert again.scaler_states(opts) == amp.scaler_states(opts)


def test_a_state_saved_before_one_scaler_per_optimiser_resumes(image_folder: Path, tmp_path: Path):
    out = tmp_path / "run"
    trainer(image_folder, out).train()
    state = torch.load(out / "state.pt", weights_only=True)
    assert set(state["scalers"]) == {"G", "D"}
    del state["scalers"]
    state["scaler"] = {}  # what the loop saved before: one scaler, empty where fp16 was not used
    torch.save(state, out / "state.pt")
    resumed = trainer(image_folder, out, steps=3, resume=True)
    resumed.train()
    assert resumed.step == 3 and set(torch.load(out / "state.pt", weights_only=True)["scalers"]) == {"G", "D"}


# ---- torchrun: the process group -----------------------------------------------------------------
@pytest.mark.parametrize("command", ["faces", "all"])
def test_the_command_leaves_the_process_group_even_after_an_error(command: str, monkeypatch: pytest.MonkeyPatch):
    from training import all as train_all
    from training import cli, distributed

    def fails(*args: object) -> int:
        raise RuntimeError("a task failed")

    monkeypatch.setattr(cli, "train_main", fails)
    monkeypatch.setattr(train_all, "main", fails)
    calls = []
    monkeypatch.setattr(distributed, "shutdown", lambda: calls.append(1))
    with pytest.raises(RuntimeError, match="a task failed"):
        cli.main([command, "--data", "d"])
    assert calls == [1]
    monkeypatch.setattr(cli, "train_main", lambda *a: 0)
    assert cli.main(["faces"]) == 0 and calls == [1, 1]


# ---- superres on a GPU ---------------------------------------------------------------------------
def test_moving_the_content_network_leaves_the_fid_network_where_it_is(monkeypatch: pytest.MonkeyPatch):
    from training import inception, superres

    fid = nn.Module()  # stands in for TF-Inception: .net.layers.<name>, as default_1.pt has them
    fid.net = nn.Module()
    fid.net.layers = nn.Module()
    for name in superres.INCEPTION_LAYERS:
        fid.net.layers.add_module(name, nn.Conv2d(3, 3, 1))
    monkeypatch.setattr(inception, "inception_network", lambda: fid)
    phi = superres.content_network("mixed_2").to("meta")  # the meta device stands in for the GPU
    assert len(phi) == superres.INCEPTION_LAYERS.index("mixed_2") + 1
    assert all(p.device.type == "meta" for p in phi.parameters())
    assert all(p.device.type == "cpu" and p.requires_grad for p in fid.parameters())  # the FID network as it was


# ---- in-run evaluation on the run's device -------------------------------------------------------
class StandIn(nn.Module):
    """Stands in for the FID network: records where its inputs are, answers 4 features on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.seen: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device.type)
        return torch.zeros(len(x), 4)


def test_fid_features_are_computed_on_the_device_asked_for(monkeypatch: pytest.MonkeyPatch):
    from training import inception

    base = StandIn()
    monkeypatch.setattr(inception, "inception_network", lambda: base)
    monkeypatch.setattr(inception, "_copies", {})
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    with inception.running_on("meta"):  # the meta device stands in for the run's GPU
        feats = inception.inception_features(images)
    on_meta = inception.network_on(torch.device("meta"))
    assert feats.shape == (3, 4) and on_meta.seen == ["meta"] and on_meta is not base
    assert base.w.device.type == "cpu" and base.seen == []  # the shared CPU network stays where it is
    assert inception.inception_features(images, device="meta").shape == (3, 4) and on_meta.seen == ["meta"] * 2
    assert inception.inception_features(images).shape == (3, 4) and base.seen == ["cpu"]  # outside: the CPU


def test_fid_on_a_gpu_runs_in_true_fp32(cuda_flags: None):
    from training import inception

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True  # as Amp sets them
    with inception._exact_fp32(torch.device("cuda")):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_the_loop_evaluates_on_the_run_device(image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from contextlib import contextmanager

    from training import inception

    where = []

    @contextmanager
    def running_on(device: torch.device):
        where.append(("enter", device))
        yield
        where.append(("exit", device))

    monkeypatch.setattr(inception, "running_on", running_on)
    monkeypatch.setattr(FacesTask, "evaluate", lambda self, models: where.append("evaluate") or {"fid": 1.0})
    tr = trainer(image_folder, tmp_path / "run")
    tr.out.mkdir()
    tr.evaluate()
    assert where == [("enter", tr.cfg.device), "evaluate", ("exit", tr.cfg.device)]


def test_superres_calibration_leaves_every_gpu_generator_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.training.test_superres_training import TINY as SR_TINY
    from tests.training.test_superres_training import make_photo_folder
    from training.superres import CALIBRATION, SuperresTask, random_crops

    photos = make_photo_folder(tmp_path / "photos")
    argv = ["--data", str(photos), "--out", str(tmp_path / "run"), *SR_TINY, "--variant", "psnr"]
    task = SuperresTask(parse_train_args(SuperresTask, argv), torch.device("cpu"))
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    before = torch.get_rng_state()
    crops = list(task.calibration_inputs())
    assert not reseeded and torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(1234)  # the crops are those the shipped checkpoints were calibrated on
    picks = [torch.randint(0, len(task.data), (CALIBRATION[1],)) for _ in range(CALIBRATION[0])]
    expected = [random_crops(task.data, idx, task.crop, augment=False)[0] for idx in picks]
    assert all(torch.equal(a, b) for a, b in zip(crops, expected, strict=True))


# ---- export --------------------------------------------------------------------------------------
def test_export_hands_the_task_copies_so_the_live_models_stay_as_they_are(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    tr = trainer(image_folder, tmp_path / "run")
    tr.train()
    live = [*tr.task.models.values(), tr.ema.model]
    given = {}
    export_modules = FacesTask.export_modules

    def moving(self: FacesTask, models: dict[str, nn.Module]) -> dict:
        given.update(models)
        for m in models.values():
            m.to(torch.float64)  # in place, as .cpu() is: on a GPU run this took the models off the GPU
        return export_modules(self, models)

    monkeypatch.setattr(FacesTask, "export_modules", moving)
    tr.export()
    assert set(given) == {"G", "D"} and not any(m is x for m in given.values() for x in live)
    assert all(p.dtype == torch.float32 for m in live for p in m.parameters())
    tr.cfg.steps, tr.cfg.resume = 3, True
    tr.train()  # the run goes on with its own models, EMA included
    assert tr.step == 3 and all(p.dtype == torch.float32 for p in tr.ema.model.parameters())
