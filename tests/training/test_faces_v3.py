"""Faces v3's trainer options: the hinge loss, spectral norm in D, lazy R1, DiffAugment's strength, the
EMA ramp and Adam's betas, each behind an option whose default is the shipped run's recipe; and the
truncation sweep of `python -m training evaluate faces --psi`."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gandemo.checkpoint import read_card
from gandemo.nets.dcgan import Discriminator, Generator
from tests.conftest import make_image_folder, write_tiny_faces_checkpoint
from training import inception
from training.augment import augment, diff_augment
from training.cli import main
from training.faces import FacesTask, betas_pair, psi_list
from training.loop import Amp
from training.run import parse_train_args
from training.steps import d_loss, dcgan_step, g_loss, gan_step, r1_penalty

CPU = Amp(torch.device("cpu"), enabled=False)
TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--sample-every", "1000", "--threads", "1"]


# ---- losses and R1 on worked cases ---------------------------------------------------------------------
def test_hinge_and_nonsaturating_losses_on_worked_logits():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    # hinge: mean(max(0, 1 - [2, 0.5])) + mean(max(0, 1 + [-2, 0.5])) = 0.25 + 0.75
    assert d_loss(real, fake, "hinge").item() == pytest.approx(1.0)
    assert g_loss(fake, "hinge").item() == pytest.approx(0.75)  # -mean([-2, 0.5])
    ns = F.softplus(-real).mean() + F.softplus(fake).mean()
    assert d_loss(real, fake).item() == pytest.approx(ns.item())
    assert g_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item())
    with pytest.raises(ValueError, match="loss must be one of"):
        d_loss(real, fake, "wasserstein")


class Quadratic(nn.Module):
    """D(x) = a * sum(x^2): its input gradient is 2 a x, so R1 = mean over items of 4 a^2 |x|^2."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * x.square().flatten(1).sum(1)


def test_r1_penalty_on_a_worked_case_and_it_trains_d():
    x = torch.tensor([[1.0, 2.0], [0.0, 3.0]], requires_grad=True)
    D = Quadratic(0.5)
    r1 = r1_penalty(D(x), x)
    # items: |2 * 0.5 * (1, 2)|^2 = 5 and |(0, 3)|^2 = 9 -> mean 7
    assert r1.item() == pytest.approx(7.0)
    r1.backward()  # kept in the graph: d R1 / d a = mean(8 a |x|^2) = 4 * (5 + 9) / 2 = 28
    assert D.a.grad.item() == pytest.approx(28.0)


# ---- the step ------------------------------------------------------------------------------------------
def _players(norm: str = "batch", seed: int = 0):
    torch.manual_seed(seed)
    G, D = Generator(z_dim=8, ngf=4), Discriminator(ndf=4, norm=norm)
    opts = {"G": torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999)), "D": torch.optim.SGD(D.parameters(), 1.0)}
    return G, D, opts


def _batch(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1, torch.randn(4, 8, generator=gen)


def test_gan_step_with_its_defaults_is_dcgan_step_exactly():
    """So the shipped run's recipe (`--preset cpu`) trains the very same weights through the new step."""
    real, z = _batch()
    policy = ("color", "translation")
    results = []
    for step in (dcgan_step, gan_step):
        G, D, opts = _players()
        torch.manual_seed(7)  # DiffAugment's draws
        if step is dcgan_step:
            out = dcgan_step(G, D, opts, real, z, CPU, policy)
        else:
            out = gan_step(G, D, opts, real, z, CPU, augment=lambda x: augment(x, policy))
        results.append((G.state_dict(), D.state_dict(), out))
    (g1, d1, o1), (g2, d2, o2) = results
    assert all(torch.equal(g1[k], g2[k]) for k in g1) and all(torch.equal(d1[k], d2[k]) for k in d1)
    assert o1.keys() == o2.keys() and all(torch.equal(o1[k], o2[k]) for k in o1)


def test_lazy_r1_runs_every_kth_step_weighted_k_times():
    real, z = _batch()
    gamma, every = 0.3, 4
    G, D, opts = _players(norm="none")
    G0, D0 = copy.deepcopy(G), copy.deepcopy(D)
    # what the regularised D step must do: SGD(lr 1) on loss_d + gamma / 2 * every * R1
    x = real.detach().requires_grad_(True)
    logit_real, logit_fake = D0(x), D0(G0(z).detach())
    expected = d_loss(logit_real, logit_fake) + gamma / 2 * every * r1_penalty(logit_real, x)
    grads = torch.autograd.grad(expected, list(D0.parameters()))
    out = gan_step(G, D, opts, real, z, CPU, r1_gamma=gamma, r1_every=every, step=8)  # 8 % 4 == 0: regularised
    assert "r1" in out and out["r1"] > 0
    for p, p0, g in zip(D.parameters(), D0.parameters(), grads, strict=True):
        assert torch.allclose(p, p0 - g, atol=1e-5)
    # a step between the lazy ones is the plain step
    a, b = _players(norm="none"), _players(norm="none")
    out_a = gan_step(*a, real, z, CPU, r1_gamma=gamma, r1_every=every, step=9)
    gan_step(*b, real, z, CPU)
    assert "r1" not in out_a
    assert all(torch.equal(p, q) for p, q in zip(a[1].parameters(), b[1].parameters(), strict=True))


def test_hinge_step_trains_both_players():
    real, z = _batch()
    G, D, opts = _players(norm="spectral")
    before = [copy.deepcopy(m.state_dict()) for m in (G, D)]
    out = gan_step(G, D, opts, real, z, CPU, loss="hinge")
    assert all(torch.isfinite(v) for v in out.values())
    for m, old in zip((G, D), before, strict=True):
        assert any(not torch.equal(v, old[k]) for k, v in m.state_dict().items() if v.is_floating_point())


# ---- D's normalisation -----------------------------------------------------------------------------------
def test_spectral_norm_is_on_every_convolution_of_d_and_bounds_it():
    D = Discriminator(ndf=8, norm="spectral")
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(hasattr(c, "parametrizations") and "weight" in c.parametrizations for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    D.train()
    with torch.no_grad():
        for _ in range(30):  # power iteration: one step per forward in training mode
            D(torch.randn(2, 3, 64, 64))
    for c in convs:
        sigma = torch.linalg.matrix_norm(c.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)
    none = Discriminator(ndf=8, norm="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in none.modules())
    assert not any(hasattr(m, "parametrizations") for m in none.modules())
    with pytest.raises(ValueError, match="norm must be one of"):
        Discriminator(norm="layer")


def test_the_default_d_is_the_shipped_runs_d():
    torch.manual_seed(3)
    a = Discriminator(ndf=8)
    torch.manual_seed(3)
    b = Discriminator(ndf=8, norm="batch")
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(isinstance(m, nn.BatchNorm2d) for m in a.modules())


# ---- DiffAugment's strength ------------------------------------------------------------------------------
def test_augment_defaults_are_diff_augment_and_strength_options_act():
    x = torch.rand(16, 3, 64, 64) * 2 - 1
    policy = ("color", "translation", "cutout")
    torch.manual_seed(0)
    a = diff_augment(x, policy)
    torch.manual_seed(0)
    assert torch.equal(a, augment(x, policy))
    assert augment(x, policy, p=0) is x
    torch.manual_seed(0)
    half = augment(x, policy, p=0.5)
    untouched = [torch.equal(half[i], x[i]) for i in range(16)]
    assert 0 < sum(untouched) < 16  # some items pass unchanged, the others are augmented
    assert torch.equal(augment(x, ("translation",), translation=0.0), x)  # no shift at all
    torch.manual_seed(0)
    holes = augment(x, ("cutout",), cutout=0.25)
    zeros = (holes == 0).all(1).flatten(1).sum(1)
    assert (zeros <= 16 * 16).all() and (zeros > 0).all()  # a 16x16 square (clipped at the border) per image


# ---- the trainer's options -------------------------------------------------------------------------------
def _args(data: Path, out: Path, *extra: str) -> argparse.Namespace:
    return parse_train_args(FacesTask, ["--data", str(data), "--out", str(out), *TINY, *extra])


def test_defaults_are_the_shipped_recipe_and_v3_sets_its_choices(image_folder: Path, tmp_path: Path):
    task = FacesTask(_args(image_folder, tmp_path / "a"), torch.device("cpu"))
    hp = task.hparams
    assert (hp["loss"], hp["d_norm"], hp["r1_gamma"], hp["augment_p"], hp["betas"]) == (
        "nonsaturating",
        "batch",
        0.0,
        1.0,
        [0.5, 0.999],
    )
    assert hp["ema_rampup"] == 0.05 and any(isinstance(m, nn.BatchNorm2d) for m in task.models["D"].modules())
    v3 = parse_train_args(FacesTask, ["--data", str(image_folder), "--out", str(tmp_path), "--preset", "v3"])
    assert (v3.loss, v3.d_norm, v3.ndf, v3.ngf, v3.eval_every) == ("hinge", "spectral", 48, 64, 2500)
    custom = FacesTask(
        _args(image_folder, tmp_path / "b", "--betas", "0,0.99", "--ema-rampup", "0", "--r1", "2", "--d-norm", "none"),
        torch.device("cpu"),
    )
    assert custom.optimizers["D"].param_groups[0]["betas"] == (0.0, 0.99)
    assert custom.hparams["r1_every"] == 16 and custom.ema_rampup == 0.0


def test_a_v3_run_with_lazy_r1_logs_it_and_resumes_exactly(image_folder: Path, tmp_path: Path):
    opts = ["--loss", "hinge", "--d-norm", "spectral", "--r1", "1", "--r1-every", "2", "--augment-p", "0.5"]
    opts += ["--ema-rampup", "0.1"]

    def run(out: Path, *extra: str) -> int:
        return main(["faces", "--data", str(image_folder), "--out", str(out), *TINY, *opts, *extra])

    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(straight, "--steps", "5") == 0
    assert run(split, "--steps", "3") == 0 and run(split, "--steps", "5", "--resume") == 0
    a, b = (torch.load(p / "state.pt", weights_only=True) for p in (straight, split))
    for net in ("G", "D"):
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k} differs after resume"
    assert b["task_state"]["steps_done"] == 5
    header, *rows = (split / "log.csv").read_text().splitlines()
    assert header.split(",")[-1] == "r1" and all(len(r.split(",")) == len(header.split(",")) for r in rows)
    card = read_card(straight / "checkpoint")
    hp = card["hyperparameters"]
    assert (hp["loss"], hp["d_norm"], hp["r1_gamma"], hp["r1_every"], hp["augment_p"]) == (
        "hinge",
        "spectral",
        1.0,
        2,
        0.5,
    )
    assert hp["ema_rampup"] == 0.1


def test_the_loop_takes_the_tasks_ema_ramp(image_folder: Path, tmp_path: Path):
    from training.loop import RunConfig, Trainer

    args = _args(image_folder, tmp_path, "--ema-rampup", "0.2")
    trainer = Trainer(
        FacesTask(args, torch.device("cpu")), RunConfig(out=tmp_path, steps=1, preset="cpu", device=torch.device("cpu"))
    )
    assert trainer.ema.rampup == 0.2


@pytest.mark.parametrize("bad", ["0.5", "a,b", "1,0.9", "0.5,0.9,0.1"])
def test_bad_betas_are_refused(bad: str):
    with pytest.raises(argparse.ArgumentTypeError):
        betas_pair(bad)


# ---- evaluate --psi ----------------------------------------------------------------------------------------
class PooledColours(torch.nn.Module):
    """Stand-in for Inception: 6 numbers per picture (mean and std of each channel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)


def test_evaluate_writes_the_truncation_sweep_beside_the_untruncated_numbers(tmp_path: Path, monkeypatch):
    from gandemo.tasks.faces import truncation_table

    data = make_image_folder(tmp_path / "faces", n=120)
    folder = write_tiny_faces_checkpoint(tmp_path / "ck")
    monkeypatch.setattr(inception, "inception_network", PooledColours)
    argv = ["evaluate", "faces", "--checkpoint", str(folder), "--data", str(data), "--n", "8"]
    assert main([*argv, "--psi", "1,0.5,0"]) == 0
    metrics = read_card(folder)["metrics"]
    fid = next(v for k, v in metrics.items() if k.startswith("FID"))
    assert {"model", "psi=0.5", "psi=0"} <= fid.keys() and "truncation" in fid["method"]
    assert (
        {"psi=0.5", "psi=0"}
        <= metrics["precision (k=3)"].keys()
        <= {"model", "baseline", "real", "psi=0.5", "psi=0", "method"}
    )
    assert [psi for psi, _ in truncation_table(read_card(folder))] == [1.0, 0.5, 0.0]
    untruncated = fid["model"]
    assert main(argv) == 0  # without --psi: today's rows, the same numbers
    fid = next(v for k, v in read_card(folder)["metrics"].items() if k.startswith("FID"))
    assert fid["model"] == untruncated and "psi=0.5" not in fid and "truncation" not in fid["method"]


@pytest.mark.parametrize("text, values", [("1,0.8,0.6", (1.0, 0.8, 0.6)), ("0.7", (0.7,))])
def test_psi_list(text: str, values: tuple):
    assert psi_list(text) == values


@pytest.mark.parametrize("bad", ["", "1.2", "x", "-0.1,1"])
def test_bad_psi_lists_are_refused(bad: str):
    with pytest.raises(argparse.ArgumentTypeError):
        psi_list(bad)


def test_evaluate_puts_an_earlier_models_grid_beside_this_ones(tmp_path: Path, monkeypatch):
    from PIL import Image

    from gandemo.checkpoint import load_checkpoint
    from gandemo.imaging import make_grid
    from gandemo.tasks.faces import generate_faces

    data = make_image_folder(tmp_path / "faces", n=120)
    folder = write_tiny_faces_checkpoint(tmp_path / "ck")
    old = tmp_path / "old.png"
    Image.new("RGB", (530, 530), "red").save(old)
    monkeypatch.setattr(inception, "inception_network", PooledColours)
    argv = ["evaluate", "faces", "--checkpoint", str(folder), "--data", str(data), "--n", "8", "--dry-run"]
    assert main([*argv, "--compare", f"0.7={old}"]) == 0
    picture = Image.open(folder / "compare_psi0.7.jpg")
    assert picture.size == (530 + 16 + 530, 18 + 530)
    left, right = picture.crop((0, 18, 530, 548)), picture.crop((546, 18, 1076, 548))
    assert abs(np.asarray(left, int)[..., 0].mean() - 255) < 3  # the earlier grid, as given
    G = load_checkpoint(folder)["G"]
    expected = np.asarray(make_grid(generate_faces(G, 0, 64, 0.7), ncol=8), int)
    assert np.abs(np.asarray(right, int) - expected).mean() < 4  # this model's seed-0 grid at psi 0.7 (JPEG)
    with pytest.raises(SystemExit):
        main([*argv, "--compare", f"1.5={old}"])
