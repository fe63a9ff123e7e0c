"""The superres trainer on a few photos the test draws: loading and held-out split, crops, the psnr
and gan variants (with a stand-in for the Inception feature network, which CI does not install),
resume, in-run evaluation, the registry loading an export, and the protocol evaluation."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gandemo import metrics, registry
from gandemo.checkpoint import load_checkpoint, read_card
from gandemo.nets.srgan import SRResNet
from gandemo.tasks import superres as sr
from training import superres
from training.cli import main
from training.data import is_holdout
from training.superres import HRPhotos, SuperresTask, random_crops

TINY = [
    *("--channels", "4", "--blocks", "1", "--crop", "32", "--ndf", "4", "--batch-size", "2", "--eval-n", "2"),
    *("--no-progress", "--threads", "1"),
]


def draw_photo(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """A photo-like picture: a colour gradient, a few ellipses and lines, a little noise."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 1 - xx / w], axis=2) * rng.uniform(80, 200, 3) + rng.uniform(0, 50, 3)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        d.ellipse((x0, y0, x0 + int(rng.integers(6, 30)), y0 + int(rng.integers(6, 30))), fill=colour)
        d.line((0, int(rng.integers(0, h)), w, int(rng.integers(0, h))), fill=colour, width=2)
    arr = np.asarray(img, dtype=np.float64) + rng.normal(0, 2, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_photo_folder(folder: Path, train: int = 5, held: int = 2, seed: int = 0) -> Path:
    """`train` + `held` PNG photos of 48..80 px a side (names picked so `held` are held out), and one
    20x20 photo that is too small for a 32-px crop."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    want = {True: held, False: train}
    i = 0
    while want[True] or want[False]:
        name = f"photo_{i:04d}.png"
        i += 1
        h = is_holdout(Path(name), SuperresTask.holdout_fraction)
        if not want[h]:
            continue
        want[h] -= 1
        draw_photo(rng, int(rng.integers(48, 81)), int(rng.integers(48, 81))).save(folder / name)
    draw_photo(rng, 20, 20).save(folder / "tiny.png")
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return make_photo_folder(tmp_path / "photos")


class TinyFeatures(torch.nn.Module):
    """Stand-in for the TF-Inception layers: a fixed random conv, ReLU, 2x2 pooling."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(torch.relu(self.conv(x)), 2)


@pytest.fixture
def features(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(superres, "content_network", lambda layer="mixed_2": TinyFeatures())


def run(data: Path, out: Path, *extra: str) -> int:
    return main(["superres", "--data", str(data), "--out", str(out), *TINY, *extra])


def psnr_run(data: Path, out: Path, *extra: str) -> Path:
    assert run(data, out, "--variant", "psnr", "--steps", "2", *extra) == 0
    return out / "checkpoint"


def test_photos_load_at_full_size_with_a_stable_held_out_split(photos: Path):
    train = HRPhotos(photos, "train", SuperresTask.holdout_fraction, min_side=32, progress=False)
    held = HRPhotos(photos, "holdout", SuperresTask.holdout_fraction, progress=False)
    assert (len(train), len(held)) == (5, 2) and not {p.name for p in train.paths} & {p.name for p in held.paths}
    assert train.skipped == ["tiny.png (20x20)"]
    first = np.asarray(Image.open(train.paths[0]).convert("RGB"))
    assert np.array_equal(train.images[0], first)  # full size, untouched


def test_a_held_out_photo_that_copies_a_training_photo_is_left_out(photos: Path, tmp_path: Path):
    train = HRPhotos(photos, "train", SuperresTask.holdout_fraction, progress=False)
    name = next(f"copy_{i}.png" for i in range(1000) if is_holdout(Path(f"copy_{i}.png"), 0.1))
    Image.fromarray(train.images[0]).save(photos / name)  # like T91's t36 and t65: one picture, two names
    held = HRPhotos(photos, "holdout", SuperresTask.holdout_fraction, progress=False)
    assert len(held) == 3 and held.drop_copies_of(train) == [name] and len(held) == 2
    out = tmp_path / "run"
    assert run(photos, out, "--variant", "psnr", "--steps", "1") == 0
    assert f"left out as pixel copies of training photos: {name}" in read_card(out / "checkpoint")["data"]["held_out"]


def test_crops_pair_each_original_with_its_bicubic_quarter(photos: Path):
    data = HRPhotos(photos, "train", SuperresTask.holdout_fraction, min_side=32, progress=False)
    torch.manual_seed(0)
    lr, hr = random_crops(data, torch.tensor([0, 1, 2]), 32)
    assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32)
    assert lr.min() >= -1 and hr.max() <= 1
    hr_u8 = ((hr + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i in range(3):
        expected = metrics.bicubic_downscale(hr_u8[i])
        assert np.array_equal(((lr[i] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy(), expected)
    # without augmentation a crop is a window of the photo itself
    torch.manual_seed(1)
    _, plain = random_crops(data, torch.tensor([3]), 32, augment=False)
    img, crop = data.images[3], ((plain[0] + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    windows = np.lib.stride_tricks.sliding_window_view(img, (32, 32, 3))[..., 0, :, :, :]
    assert (windows == crop).all(axis=(2, 3, 4)).any()


def test_psnr_steps_train_g_alone_export_a_checkpoint_the_registry_loads(photos: Path, tmp_path: Path, use_checkpoints):
    folder = psnr_run(photos, tmp_path / "psnr", "--sample-every", "1")
    state = torch.load(tmp_path / "psnr" / "state.pt", weights_only=True)
    assert state["step"] == 2 and set(state["models"]) == {"G"}
    header = (tmp_path / "psnr" / "log.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "seconds", "mse", "psnr_rgb"]
    card = read_card(folder)
    assert card["task"] == "superres" and card["variant"] == "psnr" and card["objective"] == "pixel MSE (SRResNet)"
    assert card["arch"]["G"]["kwargs"] == {"channels": 4, "blocks": 1, "batchnorm": True, "bicubic_skip": True}
    assert card["data"]["items"] == 5 and card["data"]["skipped"] == ["tiny.png (20x20)"]
    assert "2 photos" in card["data"]["held_out"] and card["scale"] == 4
    # samples: one row per held-out photo (2), 4 pictures each, 48 px (the smallest photo's side, to x4)
    grid = Image.open(folder / "samples.png")
    side = min(min(a.shape[:2]) for a in HRPhotos(photos, "holdout", 0.1, progress=False).images) // 4 * 4
    assert grid.size == (4 * (side + 2) + 2, 2 * (side + 2) + 2)
    # the export is what the app loads
    root = tmp_path / "root"
    shutil.copytree(folder, root / "superres" / "psnr")
    use_checkpoints(root)
    G = registry.get("superres", "psnr")["G"]
    assert isinstance(G, SRResNet) and not G.training
    assert sr.upscale(G, Image.new("RGB", (9, 11), "red")).image.size == (36, 44)


def test_resume_continues_exactly_where_it_stopped(photos: Path, tmp_path: Path):
    """Crops and turns come from the saved RNG, the photo order from the saved sampler."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(photos, straight, "--variant", "psnr", "--steps", "4") == 0
    assert run(photos, split, "--variant", "psnr", "--steps", "2") == 0
    assert run(photos, split, "--variant", "psnr", "--steps", "4", "--resume") == 0
    a = torch.load(straight / "state.pt", weights_only=True)
    b = torch.load(split / "state.pt", weights_only=True)
    for k, v in a["models"]["G"].items():
        assert torch.equal(v, b["models"]["G"][k]), f"G.{k} differs after resume"


def test_in_run_evaluation_measures_the_held_out_photos_and_keeps_the_best(photos: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(photos, out, "--variant", "psnr", "--steps", "2", "--eval-every", "1") == 0
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(
        float(r["mse_y"]) > 0
        and 10 < float(r["psnr_y"]) < 60
        and 0 < float(r["ssim_y"]) <= 1
        and float(r["detail"]) > 0
        for r in rows
    )
    best = load_checkpoint(out / "best").card["training"]["steps"]
    assert float(rows[best - 1]["mse_y"]) == min(float(r["mse_y"]) for r in rows)
    # the number is the protocol's, on the photos the app's upscaler makes
    G = load_checkpoint(out / "best")["G"]
    held = HRPhotos(photos, "holdout", SuperresTask.holdout_fraction, progress=False).images[:2]
    expected = np.mean(
        [metrics.psnr_y(sr.upscale_array(G, metrics.bicubic_downscale(h)), metrics.modcrop(h)) for h in held]
    )
    assert float(rows[best - 1]["psnr_y"]) == pytest.approx(expected, abs=0.01)


def test_gan_starts_from_the_psnr_checkpoint_and_trains_both_players(photos: Path, tmp_path: Path, features):
    init = psnr_run(photos, tmp_path / "psnr")
    out = tmp_path / "gan"
    # --channels 8 is overruled: G takes the psnr checkpoint's architecture
    assert run(photos, out, "--variant", "gan", "--init", str(init), "--steps", "1", "--channels", "8") == 0
    first = torch.load(out / "state.pt", weights_only=True)["models"]
    start = load_checkpoint(init)["G"].state_dict()
    assert first["G"]["head.0.weight"].shape == start["head.0.weight"].shape  # 4 channels, not 8
    # a resume keeps the run's own architecture and starting point, whatever the options say now
    assert run(photos, out, "--variant", "gan", "--steps", "2", "--resume", "--channels", "8") == 0
    state = torch.load(out / "state.pt", weights_only=True)
    assert set(state["models"]) == {"G", "D"}
    for net in ("G", "D"):
        changed = [
            k for k, v in first[net].items() if v.is_floating_point() and not torch.equal(v, state["models"][net][k])
        ]
        assert changed, f"{net} did not change"
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert header[2:] == ["loss_d", "mse", "feature_mse", "loss_g_adv", "D(real)", "D(fake)"]
    card = read_card(out / "checkpoint")
    # the starting checkpoint as the card records it: never this machine's absolute path (tmp: its last two parts)
    assert card["variant"] == "gan" and card["hyperparameters"]["init"] == f"{init.parent.name}/{init.name}"
    assert "0.001 x softplus(-D(G(x)))" in card["objective"] and "mixed_2 features" in card["objective"]
    assert "TF-Inception" in card["content_loss"] and "VGG19" in card["content_loss"]
    assert "D" not in load_checkpoint(out / "checkpoint").modules  # G alone ships


def test_gan_refuses_a_missing_or_wrong_init(photos: Path, tmp_path: Path, features):
    with pytest.raises(SystemExit, match="train it first|Train it first"):
        run(photos, tmp_path / "gan", "--variant", "gan", "--init", str(tmp_path / "nothing"), "--steps", "1")
    from tests.conftest import write_tiny_faces_checkpoint

    faces = write_tiny_faces_checkpoint(tmp_path / "ck")
    with pytest.raises(SystemExit, match="not superres/psnr"):
        run(photos, tmp_path / "gan2", "--variant", "gan", "--init", str(faces), "--steps", "1")


def test_gan_keeps_no_best_step_by_psnr(photos: Path, tmp_path: Path, features):
    init = psnr_run(photos, tmp_path / "psnr")
    out = tmp_path / "gan"
    assert run(photos, out, "--variant", "gan", "--init", str(init), "--steps", "2", "--eval-every", "1") == 0
    assert len(list(csv.DictReader((out / "eval.csv").open()))) == 2
    assert not (out / "best").exists() and (out / "checkpoint").is_dir()


def test_evaluate_measures_model_and_bicubic_by_the_protocol_on_every_set(photos: Path, tmp_path: Path):
    folder = psnr_run(photos, tmp_path / "psnr")
    bench = tmp_path / "Set2"
    bench.mkdir()
    rng = np.random.default_rng(5)
    for i in range(2):
        draw_photo(rng, 41 + i, 38).save(bench / f"b{i}.png")
    preview = tmp_path / "preview.png"
    args = ["evaluate", "superres", "--checkpoint", str(folder), "--data", str(photos), "--hr", str(bench)]
    assert main([*args, "--preview", str(preview), "--threads", "1"]) == 0
    m = read_card(folder)["metrics"]
    assert set(m) == {
        f"{row.format(where)}"
        for row in ("PSNR-Y {} (dB)", "SSIM-Y {}", "detail ratio {}")
        for where in ("held-out", "Set2")
    }
    assert all({"model", "baseline", "method"} <= row.keys() for row in m.values())
    # the bicubic baseline, recomputed by hand
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(bench.iterdir())]
    expected = np.mean(
        [metrics.psnr_y(sr.bicubic_array(metrics.bicubic_downscale(x)), metrics.modcrop(x)) for x in images]
    )
    assert m["PSNR-Y Set2 (dB)"]["baseline"] == pytest.approx(expected, abs=0.01)
    assert "4-px border shaved" in m["PSNR-Y Set2 (dB)"]["method"]
    assert Image.open(preview).size[0] > 0
    load_checkpoint(folder)  # the card still verifies
