"""Anomaly inference: the latent search lowers its loss, both methods score the same way, heatmaps and
masks come back at the picture's own size, thresholds from normal images, and the trivial baseline on
cases worked out by hand."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo.checkpoint import load_checkpoint
from gandemo.nets.anogan import Discriminator, Encoder, Generator
from gandemo.tasks import anomaly as task
from gandemo.validation import InvalidInput
from tests.conftest import TINY_ANOMALY_SEARCH, write_tiny_anomaly_checkpoint


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    kw = {"channels": 3, "image_size": 16}
    return {
        "G": Generator(z_dim=8, ngf=8, **kw).eval().requires_grad_(False),
        "D": Discriminator(ndf=4, **kw).eval().requires_grad_(False),
        "E": Encoder(z_dim=8, nef=4, **kw).eval().requires_grad_(False),
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return load_checkpoint(write_tiny_anomaly_checkpoint(tmp_path_factory.mktemp("ck"), "transistor"))


def test_latent_search_lowers_its_loss(nets):
    G, D = nets["G"], nets["D"]
    with torch.no_grad():
        target = G(torch.randn(2, 8, generator=torch.Generator().manual_seed(5)))  # images G can make
    found = task.latent_search(G, D, target, iterations=60)
    assert len(found.history) == 61
    assert found.history[-1] < 0.5 * found.history[0]
    assert torch.allclose(found.score, (1 - task.LAMBDA) * found.residual + task.LAMBDA * found.feature)
    # the returned reconstruction is G at the returned z, and the score is measured on it
    with torch.no_grad():
        assert torch.allclose(found.reconstruction, G(found.z), atol=1e-6)
    assert found.heat.shape == (2, 16, 16) and found.z.shape == (2, 8)


def test_latent_search_is_deterministic_and_each_image_is_searched_on_its_own(nets):
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    both = task.latent_search(nets["G"], nets["D"], x, iterations=5)
    again = task.latent_search(nets["G"], nets["D"], x, iterations=5)
    alone = task.latent_search(nets["G"], nets["D"], x[1:2], iterations=5)
    assert torch.equal(both.score, again.score)
    assert both.score[1] == pytest.approx(float(alone.score[0]), rel=1e-4)


def test_latent_search_reports_progress_and_keeps_the_thread_count(nets):
    calls: list[tuple[int, int]] = []
    before = torch.get_num_threads()
    progress = lambda i, n: calls.append((i, n))  # noqa: E731
    task.latent_search(nets["G"], nets["D"], torch.zeros(1, 3, 16, 16), iterations=200, progress=progress)
    assert torch.get_num_threads() == before
    assert calls[-1] == (200, 200) and 10 <= len(calls) <= 51
    assert [i for i, _ in calls] == sorted(i for i, _ in calls)


def test_torch_threads_bounds_and_restores():
    before = torch.get_num_threads()
    with task.torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with task.torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(InvalidInput, match="threads must be from 1"):
        task.check_threads(10_000)


def test_the_encoder_scores_in_one_pass_the_same_way(nets):
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    found = task.encode(nets["G"], nets["D"], nets["E"], x)
    with torch.no_grad():
        g = nets["G"](nets["E"](x))
        residual = (x - g).abs().flatten(1).mean(1) / 2
        feature = (nets["D"].features(x) - nets["D"].features(g)).abs().flatten(1).mean(1)
    assert torch.allclose(found.reconstruction, g)
    assert torch.allclose(found.score, 0.9 * residual + 0.1 * feature, atol=1e-6)
    assert found.history == []


def test_the_heatmap_is_the_smoothed_residual_and_finds_a_painted_defect():
    x = torch.zeros(1, 3, 16, 16)
    recon = x.clone()
    x[:, :, 4:7, 9:12] = 1.0  # a bright square the "reconstruction" lacks
    raw = task.heatmap(x, recon, sigma=0)
    assert raw[0, 5, 10] == pytest.approx(0.5) and raw[0, 0, 0] == 0  # |1 - 0| / 2, 0-1 units
    smooth = task.heatmap(x, recon)
    assert np.unravel_index(smooth[0].argmax(), (16, 16)) == (5, 10)
    assert smooth.sum() == pytest.approx(raw.sum(), rel=0.02)  # smoothing spreads, keeps the mass


def test_size_mapping_puts_the_heat_back_where_it_was():
    heat = np.zeros((16, 16), np.float32)
    heat[2:4, 12:14] = 1.0  # top right
    big = task.to_original_size(heat, (160, 48))  # (W, H)
    assert big.shape == (48, 160)
    y, x = np.unravel_index(big.argmax(), big.shape)
    assert y < 48 * 4 / 16 and x > 160 * 12 / 16
    assert task.to_original_size(heat, (16, 16)) is not heat and np.array_equal(
        task.to_original_size(heat, (16, 16)), heat
    )


@pytest.mark.parametrize("method", task.METHODS)
def test_any_picture_is_scored_at_the_models_size_and_answered_at_its_own(tiny, method):
    img = Image.new("RGBA", (50, 30), (200, 120, 40, 128))  # RGBA, not square
    found = task.detect(tiny.modules, tiny.card, img, method, 2)
    assert found.overlay.size == found.mask.size == found.reconstruction.size == (50, 30)
    assert found.heat.shape == (30, 50)
    assert found.mask.mode == "L" and set(np.unique(np.asarray(found.mask))) <= {0, 255}
    t = task.thresholds(tiny.card, method)
    assert np.array_equal(np.asarray(found.mask) == 255, found.heat > t["pixel_threshold"])
    assert found.anomalous == (found.score > t["image_threshold"])
    assert "threshold" in found.verdict and found.plot.size[0] > 300


def test_a_greyscale_model_takes_colour_pictures(tmp_path):
    ckpt = load_checkpoint(write_tiny_anomaly_checkpoint(tmp_path, "magnetic_tile", channels=1))
    found = task.detect(ckpt.modules, ckpt.card, np.full((20, 20, 3), 90, np.uint8), "latent_search", 2)
    assert found.overlay.size == (20, 20) and found.reconstruction.mode == "RGB"
    assert "calibrated at 3 iterations, this search ran 2" in found.verdict


def test_the_search_verdict_says_nothing_extra_at_the_calibrated_count(tiny):
    found = task.detect(tiny.modules, tiny.card, np.zeros((16, 16, 3), np.uint8), "latent_search")
    assert "calibrated at" not in found.verdict  # the card's count is the default
    assert task.settings(tiny.card)["search_iterations"] == TINY_ANOMALY_SEARCH


def test_scoring_uses_the_cards_lambda_search_rate_and_candidates(tiny):
    """`lambda`, `search_lr` and `search_candidates` in the card are what detect scores with; a card without
    them scores with today's constants (so the shipped cards, which record those values, answer as before)."""
    image = np.full((16, 16, 3), 60, np.uint8)
    bare = {**tiny.card, "anomaly": {k: v for k, v in tiny.card["anomaly"].items() if k not in ("lambda", "search_lr")}}
    plain = {**tiny.card, "anomaly": {**tiny.card["anomaly"], "lambda": task.LAMBDA, "search_lr": task.SEARCH_LR}}
    for method in ("encoder", "latent_search"):
        before = task.detect(tiny.modules, bare, image, method, 3).score
        assert task.detect(tiny.modules, plain, image, method, 3).score == before
        changed = {**tiny.card, "anomaly": {**tiny.card["anomaly"], "lambda": 0.9, "search_lr": 0.2}}
        assert task.detect(tiny.modules, changed, image, method, 3).score != before
    # and what detect reads is what latent_search is given
    x = task.prepare(image, 16, 3)[0][None]
    direct = task.latent_search(tiny["G"], tiny["D"], x, 3, lam=0.9, lr=0.2, candidates=4).score
    card = {**tiny.card, "anomaly": {**tiny.card["anomaly"], "lambda": 0.9, "search_lr": 0.2, "search_candidates": 4}}
    assert float(direct[0]) == pytest.approx(task.detect(tiny.modules, card, image, "latent_search", 3).score)
    assert task.search_settings(None) == {
        "lambda": task.LAMBDA,
        "search_lr": task.SEARCH_LR,
        "search_candidates": task.SEARCH_CANDIDATES,
    }


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"method": "magic"}, "method must be one of inpaint, encoder, latent_search"),
        ({"iterations": 0}, "iterations must be from 1 to 1000"),
        ({"iterations": 10**6}, "iterations must be from 1 to 1000"),
        ({"iterations": 2.5}, "iterations must be a whole number"),
        ({"image": Image.new("RGB", (1, 1))}, "at least 16x16"),
        ({"image": b"not a picture"}, "not a readable image"),
    ],
)
def test_bad_inputs_are_refused_in_words(tiny, kwargs, words):
    args = {"image": Image.new("RGB", (32, 32)), "method": "encoder", "iterations": 5} | kwargs
    with pytest.raises(InvalidInput, match=words):
        task.detect(tiny.modules, tiny.card, **args)


def test_checks_of_category_and_iterations():
    assert task.check_category("transistor", ("magnetic_tile", "transistor")) == "transistor"
    with pytest.raises(InvalidInput, match="category must be one of magnetic_tile, transistor; got 'wood'"):
        task.check_category("wood", ("magnetic_tile", "transistor"))
    with pytest.raises(InvalidInput):
        task.check_category(None, ("magnetic_tile",))
    assert task.check_iterations("25") == 25 and task.check_iterations(7.0) == 7


def test_a_card_without_thresholds_is_refused(tiny):
    card = {k: v for k, v in tiny.card.items() if k != "anomaly"}
    assert task.thresholds(card, "encoder") is None
    with pytest.raises(InvalidInput, match="no calibrated thresholds"):
        task.detect(tiny.modules, card, Image.new("RGB", (32, 32)), "encoder")


def test_thresholds_are_quantiles_of_the_normal_images():
    scores = np.arange(100, dtype=float)
    heat = [np.arange(1000, dtype=np.float32).reshape(10, 100) / 1000, np.zeros((10, 100), np.float32)]
    cal = task.calibrate(scores, heat, image_fpr=0.05, pixel_fpr=0.01)
    assert cal["image_threshold"] == pytest.approx(94.05)  # 95 % quantile of 0..99 (linear)
    assert cal["pixel_threshold"] == pytest.approx(np.quantile(np.concatenate([h.ravel() for h in heat]), 0.99))
    assert cal["normal_images"] == 100 and len(cal["normal_scores"]) == 100
    assert (scores > cal["image_threshold"]).mean() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="at least two"):
        task.calibrate([1.0], [np.zeros((2, 2))])


def test_the_overlay_puts_the_threshold_mid_scale():
    img = Image.new("RGB", (4, 1), (0, 0, 0))
    heat = np.array([[0.0, 0.1, 0.2, 0.4]], np.float32)
    out = np.asarray(task.overlay(img, heat, pixel_threshold=0.1, alpha=1.0)).astype(int)
    assert out[0, 0, 2] > 100 and out[0, 0, 0] < 10  # 0 -> blue
    assert out[0, 1, 1] > 200  # the threshold -> the middle of jet (green)
    assert out[0, 2, 0] > 100 and out[0, 2, 2] < 10  # 2x the threshold -> red
    assert np.array_equal(out[0, 2], out[0, 3])  # clipped above 2x


# ---- the trivial baseline, on cases worked out by hand ---------------------------------------------
def test_baseline_z_scores_use_the_training_mean_and_std_plus_0_02():
    train = np.zeros((4, 10, 10, 3), np.uint8)
    train[:2] = 51  # pixel values 0 and 0.2: mean 0.1, std 0.1 everywhere
    b = task.PixelStatsBaseline.fit(train)
    assert np.allclose(b.mean, 0.1, atol=1e-6) and np.allclose(b.std, 0.12, atol=1e-6)
    test = np.full((1, 10, 10, 3), 51, np.uint8)  # 0.2: z = |0.2 - 0.1| / 0.12 everywhere ...
    test[0, 3, 4, 1] = 255  # ... but one green value of 1.0: z = 0.9 / 0.12 = 7.5, the max over channels
    scores, pixels = b.score(test)
    assert pixels.shape == (1, 10, 10)
    assert pixels[0, 3, 4] == pytest.approx(7.5, rel=1e-5)
    assert pixels[0, 0, 0] == pytest.approx(0.1 / 0.12, rel=1e-5)
    assert scores[0] == pytest.approx(7.5, rel=1e-5)  # top 1 % of 100 pixels = the single top pixel


def test_baseline_image_score_is_the_mean_of_the_top_one_percent():
    pixels = np.zeros((1, 20, 20), np.float32)  # 400 pixels: top 1 % = 4
    pixels[0, 0, :6] = [10, 8, 6, 4, 2, 1]
    assert task.PixelStatsBaseline.image_scores(pixels)[0] == pytest.approx((10 + 8 + 6 + 4) / 4)


def test_baseline_input_is_128_rgb_from_any_picture(tmp_path: Path):
    path = tmp_path / "grey.png"
    Image.new("L", (300, 200), 77).save(path)
    arr = task.baseline_input(path)
    assert arr.shape == (128, 128, 3) and arr.dtype == np.uint8 and (arr == 77).all()


# ---- the inpainting detector ----------------------------------------------------------------------------
def test_cell_masks_hide_every_pixel_exactly_once_per_grid_and_are_seeded():
    for cell, sets in ((8, 4), (16, 4), (32, 4), (8, 3)):
        m = task.cell_masks(128, cell, sets)
        assert m.shape == (sets, 1, 128, 128) and torch.equal(m.sum(0), torch.ones(1, 128, 128))
        counts = m.sum((1, 2, 3)) / cell**2  # cells per mask: as equal as the count allows
        assert int(counts.max() - counts.min()) <= 1
        assert torch.equal(m, task.cell_masks(128, cell, sets))
    assert not torch.equal(task.cell_masks(128, 8, 4, seed=1), task.cell_masks(128, 8, 4))
    with pytest.raises(ValueError, match="multiple of the cell"):
        task.cell_masks(100, 8, 4)


class _Flat(torch.nn.Module):
    """A stand-in inpainter that always draws the flat grey "normal" product (0), whatever it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.out_channels = 3
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), 3, *x.shape[2:]) + self.w


def test_the_inpainting_heatmap_is_what_could_not_be_redrawn_and_the_score_its_top_pixels():
    x = torch.zeros(2, 3, 128, 128)
    x[1, :, 40:50, 60:80] = 1.0  # a bright defect on the second image: 0.5 of the 0-1 range away from normal
    block = {"cells": [8, 16], "sets": 4, "sigma": 0.0, "top": 0.01, "normalise": False}
    found = task.inpaint({"I": _Flat()}, x, block)
    assert found.heat.shape == (2, 128, 128) and np.allclose(found.heat[0], 0)
    assert np.allclose(found.heat[1][40:50, 60:80], 0.5) and found.heat[1].sum() == pytest.approx(0.5 * 200)
    assert float(found.score[0]) == 0 and float(found.score[1]) == pytest.approx(0.5)  # 164 px of 200 at 0.5
    assert found.reconstruction.shape == x.shape and found.z.shape == (2, 0)
    # smoothing spreads the heat but keeps its sum; z-scoring against normal statistics re-centres it
    smooth = task.inpaint({"I": _Flat()}, x, {**block, "sigma": 2.0})
    assert smooth.heat[1].sum() == pytest.approx(100, rel=1e-3) and smooth.heat[1].max() < 0.5
    from gandemo.nets.anogan import ResidualStats

    stats = ResidualStats(128).fit(torch.full((4, 128, 128), 0.1) + torch.rand(4, 128, 128) * 0.02)
    z = task.inpaint({"I": _Flat(), "N": stats}, x, {**block, "normalise": True})
    assert float(z.score[1]) > 10 and float(z.score[0]) < 0
    assert np.allclose(z.heat, (found.heat - stats.mean[0].numpy()) / stats.std[0].numpy(), atol=1e-5)


def test_a_checkpoint_without_an_inpainter_says_to_choose_another_method(tiny):
    modules = {k: v for k, v in tiny.modules.items() if k not in ("I", "C", "N")}
    with pytest.raises(InvalidInput, match="no inpainter yet"):
        task.detect(modules, tiny.card, np.zeros((20, 20, 3), np.uint8), "inpaint")
