"""The anomaly trainer on a tiny MVTec tree the test paints: the reader, the augmentations, both
stages in one run (G and D frozen in stage 2), resume, calibration at export, and the evaluation
against the trivial baseline."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gandemo import metrics
from gandemo.checkpoint import load_checkpoint, read_card
from gandemo.tasks import anomaly as task
from training.anomaly import augment, load_mask, mvtec_items, parse_augment
from training.cli import main

TINY = [
    *("--image-size", "16", "--ngf", "4", "--ndf", "4", "--nef", "4", "--batch-size", "4"),
    *("--search-iterations", "2", "--no-progress", "--threads", "1"),
]


def make_mvtec_tree(
    folder: Path, train: int = 8, good: int = 4, bad: int = 3, size: int = 40, grey: bool = False, seed: int = 0
) -> Path:
    """A category in the MVTec layout: a left-to-right ramp with noise as the normal product; defects
    are a dark horizontal scratch, with its mask in ground_truth/scratch/<stem>_mask.png."""
    rng = np.random.default_rng(seed)
    channels = 1 if grey else 3

    def normal() -> Image.Image:
        a = rng.normal(120, 6, (size, size, channels)) + np.linspace(0, 30, size)[None, :, None]
        a = np.clip(a, 0, 255).astype(np.uint8)
        return Image.fromarray(a[..., 0] if grey else a)

    for split, n in (("train/good", train), ("val/good", good)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            normal().save(folder / split / f"{i:03d}.png")
    (folder / "val" / "scratch").mkdir(parents=True)
    (folder / "ground_truth" / "scratch").mkdir(parents=True)
    for i in range(bad):
        img, mask = normal(), Image.new("L", (size, size), 0)
        y = int(rng.integers(5, size - 5))
        ImageDraw.Draw(img).line([(4, y), (size - 4, y)], fill=0 if grey else (0, 0, 0), width=3)
        ImageDraw.Draw(mask).line([(4, y), (size - 4, y)], fill=255, width=3)
        img.save(folder / "val" / "scratch" / f"{i:03d}.png")
        mask.save(folder / "ground_truth" / "scratch" / f"{i:03d}_mask.png")
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_mvtec_tree(tmp_path / "tiles")


def run(data: Path, out: Path, *extra: str) -> int:
    return main(["anomaly", "--data", str(data), "--out", str(out), *TINY, *extra])


# ---- the MVTec layout -------------------------------------------------------------------------------
def test_the_reader_labels_images_and_finds_their_masks(tree: Path):
    items = mvtec_items(tree, "val")
    assert [i.defect for i in items] == ["good"] * 4 + ["scratch"] * 3
    assert [i.anomalous for i in items] == [False] * 4 + [True] * 3
    assert items[0].mask is None and items[4].mask == tree / "ground_truth" / "scratch" / "000_mask.png"
    mask = load_mask(items[4], (40, 40))
    assert mask.dtype == bool and mask.shape == (40, 40) and 0 < mask.mean() < 0.2
    assert not load_mask(items[0], (40, 40)).any()
    big = load_mask(items[4], (80, 60))  # another image size: nearest-neighbour resize, still binary
    assert big.shape == (60, 80) and big.mean() == pytest.approx(mask.mean(), rel=0.2)
    assert len(mvtec_items(tree, "train")) == 8


def test_the_reader_says_what_is_missing(tree: Path, tmp_path: Path):
    (tree / "ground_truth" / "scratch" / "001_mask.png").unlink()
    with pytest.raises(FileNotFoundError, match="001.png has no mask"):
        mvtec_items(tree, "val")
    with pytest.raises(FileNotFoundError, match="MVTec layout"):
        mvtec_items(tmp_path / "nothing", "val")


# ---- augmentation -----------------------------------------------------------------------------------
def test_parse_augment_reads_names_and_values():
    assert parse_augment("hflip,rotate:15,shift:0.04") == {"hflip": 1.0, "rotate": 15.0, "shift": 0.04}
    assert parse_augment("none") == {} and parse_augment("") == {}
    with pytest.raises(ValueError, match="unknown augmentation 'spin'"):
        parse_augment("spin")
    with pytest.raises(ValueError, match="must be a number"):
        parse_augment("rotate:lots")
    with pytest.raises(ValueError, match=">= 0"):
        parse_augment("shift:-1")


def test_flips_give_each_item_itself_or_its_mirror():
    torch.manual_seed(0)
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    y = augment(x, {"hflip": 1.0, "vflip": 1.0})
    for a, b in zip(x, y, strict=True):
        assert any(torch.equal(b, c) for c in (a, a.flip(2), a.flip(1), a.flip(1).flip(2)))
    assert not torch.equal(x, y)
    assert torch.equal(augment(x, {}), x)


def test_turns_shifts_and_brightness_keep_half_the_items_crisp_and_stay_in_range():
    torch.manual_seed(0)
    x = torch.rand(32, 3, 16, 16) * 2 - 1
    y = augment(x, {"rotate": 15.0, "shift": 0.05})
    untouched = sum(torch.equal(a, b) for a, b in zip(x, y, strict=True))
    assert 6 <= untouched <= 26 and y.shape == x.shape
    z = augment(torch.zeros(8, 1, 4, 4), {"brightness": 0.1})  # grey 0 -> 0.5 * b in 0-1 units
    assert ((z + 1) / 2).min() >= 0.45 - 1e-6 and ((z + 1) / 2).max() <= 0.55 + 1e-6


# ---- training --------------------------------------------------------------------------------------
def test_one_run_trains_the_gan_then_the_encoder_and_exports_a_calibrated_checkpoint(tree: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(tree, out, "--steps", "4", "--encoder-steps", "2", "--sample-every", "2") == 0
    lines = (out / "log.csv").read_text().splitlines()
    assert lines[0] == "step,seconds,stage,loss_d,loss_g,D(x),D(G(z)),loss_e"
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 4 and set(state["models"]) == {"G", "D", "E"}
    assert state["task_state"]["done"] == 4 and state["task_state"]["g_frozen"] is True
    ckpt = load_checkpoint(out / "checkpoint")
    assert set(ckpt.modules) == {"G", "D", "E"}
    card = ckpt.card
    assert card["task"] == "anomaly" and card["variant"] == "magnetic_tile"
    assert card["arch"]["G"]["kwargs"] == {"z_dim": 100, "ngf": 4, "channels": 3, "image_size": 16}
    assert card["data"]["items"] == 8 and card["data"]["resolution"] == "16x16 RGB"
    assert card["hyperparameters"]["gan_steps"] == 2 and card["hyperparameters"]["encoder_steps"] == 2
    assert card["hyperparameters"]["augment"] == "hflip:1,vflip:1"  # magnetic_tile's default
    block = card["anomaly"]
    assert block["lambda"] == 0.1 and block["search_iterations"] == 2
    for method in task.METHODS:
        entry = task.thresholds(card, method)
        assert entry["normal_images"] == 4 and len(entry["normal_scores"]) == 4
        assert entry["image_threshold"] > 0 and entry["pixel_threshold"] > 0
    assert block["calibration"]["latent_search"]["iterations"] == 2
    # the thresholds are the app's own scoring of val/good: recomputed here, the same numbers
    x = torch.stack([task.to_input(Image.open(p).convert("RGB"), 16, 3) for p in sorted((tree / "val/good").iterdir())])
    scores, _ = task.score_batches("encoder", ckpt.modules, x)
    assert np.allclose(sorted(scores), sorted(block["calibration"]["encoder"]["normal_scores"]), rtol=2e-3)
    # samples: three rows (G's images | val/good | G(E(x))) of 4 items at 16 px
    assert Image.open(out / "checkpoint" / "samples.png").size == (4 * 18 + 2, 3 * 18 + 2)
    assert (out / "samples" / "step_000002.png").is_file()


def test_stage_two_changes_only_the_encoder_and_resume_continues_exactly(tree: Path, tmp_path: Path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(tree, straight, "--steps", "4", "--encoder-steps", "2") == 0
    assert run(tree, split, "--steps", "2", "--encoder-steps", "0") == 0  # stage 1 only
    before = torch.load(split / "state.pt", weights_only=True)["models"]
    assert run(tree, split, "--steps", "4", "--encoder-steps", "2", "--resume") == 0
    after = torch.load(split / "state.pt", weights_only=True)["models"]
    for net in ("G", "D"):  # weights frozen in stage 2 (G's BatchNorm statistics are re-estimated)
        for k, v in before[net].items():
            if "running_" not in k and "num_batches" not in k:
                assert torch.equal(v, after[net][k]), f"{net}.{k} changed in stage 2"
    assert any(not torch.equal(v, after["E"][k]) for k, v in before["E"].items() if v.is_floating_point())
    a = torch.load(straight / "state.pt", weights_only=True)["models"]
    for net in ("G", "D", "E"):
        for k, v in a[net].items():
            assert torch.equal(v, after[net][k]), f"{net}.{k} differs after resume"


def test_a_greyscale_category_gets_a_one_channel_model(tmp_path: Path):
    grey = make_mvtec_tree(tmp_path / "grey", grey=True)
    assert run(grey, tmp_path / "run", "--steps", "2", "--encoder-steps", "1") == 0
    card = read_card(tmp_path / "run" / "checkpoint")
    assert card["arch"]["E"]["kwargs"]["channels"] == 1 and card["data"]["resolution"] == "16x16 greyscale"


def test_the_data_folder_and_the_variant_must_agree(tmp_path: Path):
    data = make_mvtec_tree(tmp_path / "transistor")
    with pytest.raises(SystemExit, match="add --variant transistor"):
        run(data, tmp_path / "run", "--steps", "1", "--encoder-steps", "0")
    assert run(data, tmp_path / "run", "--steps", "1", "--encoder-steps", "0", "--variant", "transistor") == 0
    card = read_card(tmp_path / "run" / "checkpoint")
    assert card["variant"] == "transistor" and card["hyperparameters"]["augment"] == "shift:0.02"
    with pytest.raises(SystemExit, match="MVTec layout"):
        run(tmp_path / "nothing", tmp_path / "run2", "--steps", "1")
    with pytest.raises(SystemExit, match="the last --encoder-steps steps train the encoder"):
        run(
            data, tmp_path / "run3", "--steps", "10", "--variant", "transistor"
        )  # the cpu preset's 2,000 encoder steps do not fit


# ---- evaluation ------------------------------------------------------------------------------------
def test_evaluate_measures_both_methods_and_the_baseline_and_writes_the_aims(tree: Path, tmp_path: Path):
    assert run(tree, tmp_path / "run", "--steps", "2", "--encoder-steps", "1") == 0
    folder, preview = tmp_path / "run" / "checkpoint", tmp_path / "preview.png"
    args = ["evaluate", "anomaly", "--checkpoint", str(folder), "--data", str(tree), "--threads", "1"]
    assert main([*args, "--timing-n", "2", "--no-progress", "--preview", str(preview)]) == 0
    card = read_card(folder)
    m = card["metrics"]
    for method in ("encoder", "latent_search (2 iterations)"):
        for row in ("image AUROC", "pixel AUROC", "seconds per image", "flagged at the card's threshold"):
            assert f"{row}, {method}" in m, (row, method)
        assert 0 <= m[f"image AUROC, {method}"]["model"] <= 1
        assert 0 <= m[f"pixel AUROC, {method}"]["model"] <= 1
        assert m[f"seconds per image, {method}"]["model"] > 0
    # the baseline's image AUROC, recomputed by hand from the recipe
    train = (
        np.stack(
            [
                np.asarray(Image.open(p).convert("RGB").resize((128, 128), Image.Resampling.LANCZOS))
                for p in sorted((tree / "train/good").iterdir())
            ]
        )
        / 255
    )
    val = sorted((tree / "val").glob("*/*.png"))
    x = (
        np.stack([np.asarray(Image.open(p).convert("RGB").resize((128, 128), Image.Resampling.LANCZOS)) for p in val])
        / 255
    )
    z = (np.abs(x - train.mean(0)) / (train.std(0) + 0.02)).max(-1).reshape(len(x), -1)
    scores = np.sort(z, 1)[:, -164:].mean(1)
    expected = metrics.auroc(["good" not in str(p) for p in val], scores)
    assert m["image AUROC, encoder"]["baseline"] == pytest.approx(expected, abs=1e-4)
    aims = card["aims"]
    assert set(aims) >= {"aim", "met", "shortfalls", "why", "baseline_image_auroc", "image_auroc"}
    assert aims["met"] == (not aims["shortfalls"])
    assert Image.open(preview).size[1] == 4 * 40 + 5 * 2  # image | truth | encoder | latent search
    load_checkpoint(folder)  # the card still verifies


def test_evaluate_dry_run_leaves_the_card_alone(tree: Path, tmp_path: Path):
    assert run(tree, tmp_path / "run", "--steps", "1", "--encoder-steps", "0") == 0
    folder = tmp_path / "run" / "checkpoint"
    before = (folder / "card.json").read_text()
    args = ["evaluate", "anomaly", "--checkpoint", str(folder), "--data", str(tree), "--threads", "1"]
    assert main([*args, "--methods", "encoder", "--timing-n", "1", "--no-progress", "--dry-run"]) == 0
    assert (folder / "card.json").read_text() == before
