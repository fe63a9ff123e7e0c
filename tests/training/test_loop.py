"""The loop's own parts: the fast numeric path, the EMA ramp, BatchNorm recalibration, in-run
evaluation with the best step kept, and the curve plotted into the card."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gandemo.checkpoint import load_checkpoint
from training import loop
from training.cli import main
from training.faces import FacesTask
from training.loop import EMA, Amp, lr_factor, plot_evaluations, recalibrate_batchnorm, set_lr_factor

TINY = ["--ngf", "8", "--ndf", "8", "--batch-size", "8", "--no-progress", "--threads", "1"]


def test_amp_is_fp32_on_a_cpu_without_native_bf16_and_bf16_where_it_is(monkeypatch):
    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: False)
    amp = Amp(torch.device("cpu"), enabled=True)
    assert not amp.enabled and amp.description == "fp32 + channels_last"
    monkeypatch.setattr(loop, "cpu_has_fast_bf16", lambda: True)
    amp = Amp(torch.device("cpu"), enabled=True)
    assert amp.dtype == torch.bfloat16 and amp.description == "bf16 autocast + channels_last"
    with amp.autocast():
        y = nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16 and amp.fp32(y).dtype == torch.float32
    assert not Amp(torch.device("cpu"), enabled=False).enabled


def test_amp_puts_models_and_batches_in_channels_last():
    amp = Amp(torch.device("cpu"), enabled=False)
    conv = amp.prepare(nn.Conv2d(3, 4, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = amp.batch(torch.randn(2, 3, 8, 8))
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert amp.batch(torch.randn(2, 3)).shape == (2, 3)  # not an image: left alone


def test_ema_ramps_up_then_holds_its_decay():
    ema = EMA(nn.Linear(2, 2), decay=0.999, rampup=0.05)
    decays = []
    for _ in range(20_000):
        ema.updates += 1
        decays.append(ema.current_decay())
    assert decays[0] < 0.01  # the first step copies the model: no trace of the random init
    assert all(a <= b for a, b in zip(decays, decays[1:], strict=False))
    assert decays[-1] == pytest.approx(0.999)
    assert decays[1000] < 0.99  # a 50-step half-life after 1,000 steps


def test_ema_follows_the_model():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.9, rampup=0)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(200):
        ema.update(model)
    assert torch.allclose(ema.model.weight, torch.ones(2, 2), atol=1e-4)


def test_lr_factor_holds_then_falls_linearly_to_zero():
    assert [lr_factor(s, 10, 0.5) for s in range(10)] == [1, 1, 1, 1, 1, 1.0, 0.8, 0.6, 0.4, 0.2]
    assert lr_factor(10, 10, 0.5) == 0.0 and lr_factor(12, 10, 0.5) == 0.0  # past the end: never negative
    assert {lr_factor(s, 10, None) for s in range(12)} == {1.0}


def test_set_lr_factor_scales_the_base_rate_and_the_base_survives_a_resume():
    opt = torch.optim.Adam(nn.Linear(2, 2).parameters(), lr=2e-4)
    set_lr_factor([opt], 0.5)
    set_lr_factor([opt], 0.25)  # relative to the base rate, not to the last one
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    resumed = torch.optim.Adam(nn.Linear(2, 2).parameters(), lr=2e-4)
    resumed.load_state_dict(opt.state_dict())
    set_lr_factor([resumed], 1.0)
    assert resumed.param_groups[0]["lr"] == pytest.approx(2e-4)


def test_recalibration_fits_batchnorm_statistics_to_the_inputs():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    batches = [torch.randn(64, 3) * 5 + 2 for _ in range(4)]
    copy = recalibrate_batchnorm(net, batches, torch.device("cpu"))
    expected = torch.cat([net[0](b) for b in batches]).mean(0)
    assert torch.allclose(copy[1].running_mean, expected.detach(), atol=1e-4)
    assert not copy.training and net[1].running_mean.abs().max() == 0  # the original is untouched


def test_in_run_evaluation_keeps_the_best_step_and_plots_the_curve(image_folder: Path, tmp_path: Path, monkeypatch):
    scores = iter([50.0, 30.0, 40.0])
    monkeypatch.setattr(FacesTask, "evaluate", lambda self, models: {"fid": next(scores)})
    calls = []
    real = loop.recalibrate_batchnorm
    monkeypatch.setattr(loop, "recalibrate_batchnorm", lambda *a: calls.append(1) or real(*a))
    out = tmp_path / "run"
    args = ["faces", "--data", str(image_folder), "--out", str(out), *TINY, "--steps", "6"]
    assert main([*args, "--eval-every", "2", "--sample-every", "100"]) == 0
    rows = (out / "eval.csv").read_text().splitlines()
    assert rows[0] == "step,fid,seconds" and [r.split(",")[:2] for r in rows[1:]] == [
        ["2", "50.0"],
        ["4", "30.0"],
        ["6", "40.0"],
    ]
    best = load_checkpoint(out / "best")
    assert best.card["training"]["steps"] == 4
    final = load_checkpoint(out / "checkpoint").card
    assert [e["fid"] for e in final["training"]["evaluations"]] == [50.0, 30.0, 40.0]
    assert (out / "checkpoint" / loop.CURVE).is_file()
    # BN of the EMA generator is re-estimated once per evaluation (which the best export reuses)
    # and once for the final export: 3 + 1
    assert len(calls) == 4


def test_plot_evaluations_draws_a_picture():
    img = plot_evaluations(
        [{"step": 1, "fid": 9.0, "seconds": 60}, {"step": 2, "fid": 5.0, "seconds": 120}], "fid", "t"
    )
    assert img.size[0] > 300 and img.mode == "RGB"


def test_the_hours_axis_goes_on_past_the_evaluated_steps():
    # The top axis maps steps to hours; clamping at the ends (plain np.interp) put several hour
    # ticks on one place in the margins. Past the ends the end segments' rates carry on.
    from training.loop import _interp

    steps, hours = [0, 1500, 3000], [0.0, 0.5, 0.75]
    got = _interp([-1500, 0, 750, 3000, 4500], steps, hours)
    np.testing.assert_allclose(got, [-0.5, 0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(_interp(got, hours, steps), [-1500, 0, 750, 3000, 4500])


def test_inception_features_of_fixed_sets_are_cached_on_disk(tmp_path: Path, monkeypatch):
    from training import inception

    class Scripted(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    net = torch.jit.script(Scripted())
    monkeypatch.setenv("GANDEMO_CACHE", str(tmp_path))
    images = torch.rand(5, 3, 8, 8) * 2 - 1
    first = inception.inception_features(images, net=net, cache=True)
    files = list((tmp_path / "inception").glob("*.npy"))
    assert len(files) == 1 and first.shape == (5, 3)
    calls = []
    monkeypatch.setattr(inception, "_features", lambda *a: calls.append(1))
    again = inception.inception_features(images, net=net, cache=True)
    assert not calls and abs(again - first).max() < 1e-6  # read back, not recomputed
    monkeypatch.undo()
    uncached = inception.inception_features(images, net=Scripted(), cache=True)  # a stand-in: never cached
    assert uncached.shape == (5, 3) and len(list((tmp_path / "inception").glob("*.npy"))) == 1
