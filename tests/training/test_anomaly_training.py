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
from training.anomaly_data import augment, load_mask, mvtec_items, parse_augment
from training.anomaly_scoring import SCORING_GRID
from training.cli import main

TINY = [
    *("--image-size", "16", "--ngf", "4", "--ndf", "4", "--nef", "4", "--batch-size", "4"),
    *("--inpaint-ngf", "4", "--inpaint-ndf", "4", "--inpaint-batch-size", "2", "--inpaint-steps", "0"),
    *("--search-iterations", "2", "--no-progress", "--threads", "1"),
]
F_ANOGAN = ("encoder", "latent_search")


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
    assert lines[0] == "step,seconds,stage,loss_d,loss_g,D(x),D(G(z)),loss_e,loss_c,loss_i_gan,l1"
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 4 and set(state["models"]) == {"G", "D", "E", "I", "C"}
    assert state["task_state"]["done"] == 4 and state["task_state"]["g_frozen"] is True
    ckpt = load_checkpoint(out / "checkpoint")
    assert set(ckpt.modules) == {"G", "D", "E", "B"}  # the inpainter has not trained: it does not ship
    card = ckpt.card
    assert card["task"] == "anomaly" and card["variant"] == "magnetic_tile"
    assert card["arch"]["G"]["kwargs"] == {"z_dim": 100, "ngf": 4, "channels": 3, "image_size": 16}
    assert card["data"]["items"] == 8 and card["data"]["resolution"].startswith("16x16 RGB")
    assert card["hyperparameters"]["gan_steps"] == 2 and card["hyperparameters"]["encoder_steps"] == 2
    assert card["hyperparameters"]["augment"] == "hflip:1,vflip:1"  # magnetic_tile's default
    block = card["anomaly"]
    assert block["lambda"] == 0.1 and block["search_iterations"] == 2
    assert task.thresholds(card, "inpaint") is None and "inpaint" not in block
    for method in F_ANOGAN:
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
    assert card["arch"]["E"]["kwargs"]["channels"] == 1 and card["data"]["resolution"].startswith("16x16 greyscale")


def test_the_data_folder_and_the_variant_must_agree(tmp_path: Path):
    data = make_mvtec_tree(tmp_path / "transistor")
    with pytest.raises(SystemExit, match="add --variant transistor"):
        run(data, tmp_path / "run", "--steps", "1", "--encoder-steps", "0")
    assert run(data, tmp_path / "run", "--steps", "1", "--encoder-steps", "0", "--variant", "transistor") == 0
    card = read_card(tmp_path / "run" / "checkpoint")
    assert card["variant"] == "transistor" and card["hyperparameters"]["augment"] == "shift:0.02"
    with pytest.raises(SystemExit, match="MVTec layout"):
        run(tmp_path / "nothing", tmp_path / "run2", "--steps", "1")
    with pytest.raises(SystemExit, match="add up to at most --steps"):
        run(
            data, tmp_path / "run3", "--steps", "10", "--variant", "transistor", "--encoder-steps", "2000"
        )  # 2,000 encoder steps do not fit


# ---- evaluation ------------------------------------------------------------------------------------
def test_evaluate_measures_both_methods_and_the_baseline_and_writes_the_aims(tree: Path, tmp_path: Path):
    assert run(tree, tmp_path / "run", "--steps", "2", "--encoder-steps", "1") == 0
    folder, preview = tmp_path / "run" / "checkpoint", tmp_path / "preview.png"
    args = ["evaluate", "anomaly", "--checkpoint", str(folder), "--data", str(tree), "--threads", "1"]
    assert main([*args, "--timing-n", "2", "--no-progress", "--preview", str(preview)]) == 0
    card = read_card(folder)
    m = card["metrics"]
    assert not any("inpaint" in k for k in m)  # no inpainter in this checkpoint: not measured
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


# ---- stage 3: the inpainter -------------------------------------------------------------------------
def test_training_masks_hide_whole_cells_of_one_grid_about_a_quarter_of_the_time():
    from training.anomaly_data import random_cell_masks

    torch.manual_seed(0)
    m = random_cell_masks(64, 32, (8, 16), 4)
    assert m.shape == (64, 1, 32, 32) and set(m.unique().tolist()) <= {0.0, 1.0}
    assert 0.15 < float(m.mean()) < 0.35  # each cell hidden with p = 1/4
    for mask in m[:, 0]:  # constant on every 8 x 8 cell (a 16-px grid is constant on 8-px cells too)
        cells = mask.reshape(4, 8, 4, 8)
        assert torch.equal(cells.amax((1, 3)), cells.amin((1, 3)))


def test_stage_three_trains_only_the_inpainter_and_ships_it_with_its_statistics(tree: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(tree, out, "--steps", "3", "--encoder-steps", "1") == 0  # stages 1 and 2
    before = torch.load(out / "state.pt", weights_only=True)["models"]
    steps = ("--steps", "5", "--encoder-steps", "1", "--inpaint-steps", "2", "--eval-every", "5", "--resume")
    assert run(tree, out, *steps) == 0
    after = torch.load(out / "state.pt", weights_only=True)["models"]
    for net in ("G", "D", "E"):  # stage 3 leaves f-AnoGAN's models as they were
        assert all(torch.equal(v, after[net][k]) for k, v in before[net].items()), net
    for net in ("I", "C"):
        assert any(not torch.equal(v, after[net][k]) for k, v in before[net].items() if v.is_floating_point()), net
    log = [line.split(",") for line in (out / "log.csv").read_text().splitlines()]
    assert log[-1][2] == "3.00000" and float(log[-1][log[0].index("l1")]) > 0
    evaluation = (out / "eval.csv").read_text().splitlines()
    assert evaluation[0] == "step,image_auroc_z,pixel_auroc_z,image_auroc_plain,pixel_auroc_plain,inpaint_miss,seconds"
    assert (out / "best" / "card.json").is_file()  # the evaluated step is the best so far
    ckpt = load_checkpoint(out / "checkpoint")
    assert set(ckpt.modules) == {"G", "D", "E", "I", "C", "N", "B"}
    # the baseline ships as the evaluation fits it (train/good at 128² RGB), with its own thresholds
    train = np.stack([task.baseline_input(p) for p in sorted((tree / "train/good").iterdir())])
    fitted = task.PixelStatsBaseline.fit(train)
    shipped = task.PixelStatsBaseline.from_module(ckpt.modules["B"])
    # (checkpoints store floats as fp16: 11 bits of mantissa, ~5e-4 of a value)
    assert np.allclose(shipped.mean, fitted.mean, atol=1e-3) and np.allclose(shipped.std, fitted.std, atol=1e-3)
    assert task.thresholds(ckpt.card, "baseline")["normal_images"] == 4
    card = ckpt.card
    block = card["anomaly"]["inpaint"]
    # the scoring chosen on val/ among the grid, and what it measured there
    assert (
        block["image_size"] == 128 and block["cells"] in SCORING_GRID["cells"] and block["top"] in SCORING_GRID["top"]
    )
    assert block["normalise"] == (block["std_floor"] is not None) and block["std_floor"] in SCORING_GRID["floor"]
    assert set(block["val_auroc"]) == {"image", "pixel"} and "highest image AUROC + pixel AUROC" in block["chosen_by"]
    assert len(block["runners_up"]) == 3 and all(
        r["image_auroc"] + r["pixel_auroc"] <= block["val_auroc"]["image"] + block["val_auroc"]["pixel"]
        for r in block["runners_up"]
    )
    assert card["arch"]["I"]["kwargs"] == {"in_channels": 4, "out_channels": 3, "ngf": 4, "depth": 7}
    entry = task.thresholds(card, "inpaint")
    assert entry["normal_images"] == 4 and entry["pixel_threshold"] > 0
    # the residual statistics are the smoothed heatmap of train/good, per pixel
    N = ckpt.modules["N"]
    assert N.mean.shape == (1, 1, 128, 128) and float(N.std.min()) >= 0.01
    # the thresholds are the app's own scoring of val/good at 128²: recomputed here, the same numbers
    good = sorted((tree / "val/good").iterdir())
    x = torch.stack([task.to_input(Image.open(p).convert("RGB"), 128, 3) for p in good])
    scores, _ = task.score_batches("inpaint", ckpt.modules, x, block=card["anomaly"]["inpaint"])
    assert np.allclose(sorted(scores), sorted(entry["normal_scores"]), rtol=2e-3, atol=1e-5)


def test_init_takes_the_f_anogan_models_of_a_checkpoint_and_trains_the_inpainter_alone(tree: Path, tmp_path: Path):
    assert run(tree, tmp_path / "first", "--steps", "2", "--encoder-steps", "1") == 0
    first = load_checkpoint(tmp_path / "first" / "checkpoint")
    out = tmp_path / "second"
    assert run(tree, out, "--steps", "2", "--init", str(tmp_path / "first" / "checkpoint"), "--ngf", "8") == 0
    second = load_checkpoint(out / "checkpoint")
    for name in ("G", "D", "E"):  # the init's weights and sizes, whatever the options say
        assert first.card["arch"][name] == second.card["arch"][name]
        for k, v in first.modules[name].state_dict().items():
            assert torch.equal(v, second.modules[name].state_dict()[k]), f"{name}.{k}"
    hp = second.card["hyperparameters"]
    assert hp["init"].endswith("first/checkpoint") and hp["inpaint_steps"] == 2 and hp["gan_steps"] == 0
    assert {"I", "N"} <= set(second.modules)
    with pytest.raises(SystemExit, match="not anomaly/transistor"):
        run(
            tree,
            tmp_path / "third",
            "--steps",
            "1",
            "--init",
            str(tmp_path / "first" / "checkpoint"),
            "--variant",
            "transistor",
        )


def test_evaluate_measures_the_inpainter_at_its_own_size_and_holds_it_to_the_category_aims(tree: Path, tmp_path: Path):
    assert run(tree, tmp_path / "run", "--steps", "3", "--encoder-steps", "1", "--inpaint-steps", "1") == 0
    folder = tmp_path / "run" / "checkpoint"
    args = ["evaluate", "anomaly", "--checkpoint", str(folder), "--data", str(tree), "--threads", "1"]
    assert main([*args, "--timing-n", "1", "--no-progress", "--methods", "inpaint,encoder"]) == 0
    card = read_card(folder)
    m, aims = card["metrics"], card["aims"]
    assert 0 <= m["image AUROC, inpaint"]["model"] <= 1 and 0 <= m["pixel AUROC, inpaint"]["model"] <= 1
    assert 0 <= m["mask IoU, inpaint"]["model"] <= 1 and 0 <= m["mask IoU, inpaint"]["baseline"] <= 1
    assert aims["aim"].startswith("inpaint: image AUROC >= 0.75")  # magnetic_tile's aim
    assert set(aims["pixel_auroc"]) == {"inpaint", "encoder"}
    assert aims["met"] == (not aims["shortfalls"]) and len(aims["why"]) <= 2
    # --rescore chooses the scoring again and rewrites the checkpoint: the app's scoring of val/good gives the
    # new thresholds, and the networks are the same
    before = load_checkpoint(folder)
    assert main([*args, "--timing-n", "1", "--no-progress", "--methods", "inpaint", "--rescore"]) == 0
    after = load_checkpoint(folder)
    for k, v in before.modules["I"].state_dict().items():
        assert torch.equal(v, after.modules["I"].state_dict()[k])
    good = sorted((tree / "val/good").iterdir())
    x = torch.stack([task.to_input(Image.open(p).convert("RGB"), 128, 3) for p in good])
    scores, _ = task.score_batches("inpaint", after.modules, x, block=after.card["anomaly"]["inpaint"])
    entry = task.thresholds(after.card, "inpaint")
    assert np.allclose(sorted(scores), sorted(entry["normal_scores"]), rtol=2e-3, atol=1e-5)
    assert task.thresholds(after.card, "baseline")["normal_images"] == 4 and "metrics" in after.card
