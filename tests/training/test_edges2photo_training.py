"""The edges2photo trainer on a few A|B pairs the test draws: the loader, training steps with and
without the GAN term, in-run and offline evaluation (with a stand-in for the Inception network)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from gandemo.checkpoint import load_checkpoint, read_card
from gandemo.nets.pix2pix import UNetGenerator
from gandemo.tasks.edges2photo import photo_to_edges
from tests.training.test_evaluate import PooledColours
from training import inception
from training.cli import main
from training.data import is_holdout
from training.edges2photo import Edges2PhotoTask, load_pairs, translate

TINY = [
    *("--ngf", "4", "--max-mult", "2", "--ndf", "4", "--batch-size", "2", "--eval-n", "3"),
    *("--no-progress", "--threads", "1"),
]


def make_pair_folder(folder: Path, train: int = 6, held: int = 3, seed: int = 0) -> Path:
    """`train` + `held` JPEG pairs, 256x128: left the edges of a coloured blob-shoe on white (by the
    app's own photo_to_edges), right the photo. Names are picked so `held` of them are held out."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    want = {True: held, False: train}
    i = 0
    while want[True] or want[False]:
        name = f"{i:06d}.jpg"
        i += 1
        h = is_holdout(Path(name), Edges2PhotoTask.holdout_fraction)
        if not want[h]:
            continue
        want[h] -= 1
        photo = Image.new("RGB", (128, 128), "white")
        d = ImageDraw.Draw(photo)
        x0, y0 = rng.integers(5, 30, 2)
        x1, y1 = rng.integers(90, 123), rng.integers(70, 110)
        d.ellipse((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(c) for c in rng.integers(0, 200, 3)))
        d.line((int(x0) + 10, int(y1) - 15, int(x1) - 10, int(y1) - 15), fill=(240, 240, 240), width=3)
        pair = Image.new("RGB", (256, 128))
        pair.paste(photo_to_edges(photo), (0, 0))
        pair.paste(photo, (128, 0))
        pair.save(folder / name, quality=95)
    return folder


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    return make_pair_folder(tmp_path / "pairs")


def run(data: Path, out: Path, *extra: str) -> int:
    return main(["edges2photo", "--data", str(data), "--out", str(out), *TINY, *extra])


def test_the_loader_reads_pairs_binarises_the_edges_and_holds_pairs_out(pairs: Path):
    train = load_pairs(pairs, "train", Edges2PhotoTask.holdout_fraction, progress=False)
    held = load_pairs(pairs, "holdout", Edges2PhotoTask.holdout_fraction, progress=False)
    assert (len(train), len(held)) == (6, 3) and not {p.name for p in train.paths} & {p.name for p in held.paths}
    assert train.images.shape == (6, 6, 128, 128)
    edges, photos = train.images[:, :3], train.images[:, 3:]
    assert set(edges.unique().tolist()) == {0, 255}  # the JPEG's ringing is gone
    assert (edges == edges[:, :1]).all()  # grey: one decision for the three channels
    first = np.asarray(Image.open(train.paths[0]).convert("RGB"))
    assert np.array_equal(first[:, :128].mean(2) < 128, (edges[0, 0] == 0).numpy())
    assert np.array_equal(photos[0].permute(1, 2, 0).numpy(), first[:, 128:])  # a 128x128 half is taken as is


def test_translate_moves_edges_and_photo_together_and_fills_white():
    torch.manual_seed(0)
    half = torch.rand(5, 3, 32, 32) * 2 - 1
    x = torch.cat([half, half], dim=1)
    y = translate(x, 4)
    assert y.shape == x.shape and torch.equal(y[:, :3], y[:, 3:])
    assert not torch.equal(y, x)
    for i in range(5):  # each item is x shifted by some (dy, dx) with white where it came in
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                shifted = torch.ones_like(x[i])
                src = x[i][:, max(0, -dy) : 32 - max(0, dy), max(0, -dx) : 32 - max(0, dx)]
                shifted[:, max(0, dy) : 32 - max(0, -dy), max(0, dx) : 32 - max(0, -dx)] = src
                found |= torch.equal(shifted, y[i])
        assert found
    assert torch.equal(translate(x, 0), x)


def test_two_steps_train_both_players_and_export_a_loadable_checkpoint(pairs: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "2", "--sample-every", "1") == 0
    state = torch.load(out / "state.pt", weights_only=True)
    assert state["step"] == 2 and set(state["models"]) == {"G", "D"}
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["step", "seconds", "loss_d", "loss_g_gan", "l1"]
    ckpt = load_checkpoint(out / "checkpoint")
    G = ckpt["G"]
    assert isinstance(G, UNetGenerator) and not G.training
    card = ckpt.card
    assert card["task"] == "edges2photo" and card["arch"]["G"]["kwargs"]["ngf"] == 4
    assert card["hyperparameters"]["lambda_l1"] == 100 and card["hyperparameters"]["gan"] is True
    assert card["data"]["items"] == 6
    assert card["data"]["augmentation"].startswith(
        "random horizontal flips and random translations by up to 8 px (white fill), the same for both halves; "
        "50% of the edge maps redrawn like a sketch"
    )
    assert "dominant colour" in card["data"]["augmentation"]
    # the cpu preset's v2 model: resize-then-convolve decoder, edges + 4 colour planes in, D sees them too
    assert card["arch"]["G"]["kwargs"]["upsample"] == "bilinear" and card["arch"]["G"]["kwargs"]["in_channels"] == 7
    assert state["models"]["D"]["net.0.weight"].shape[1] == 7 + 3
    assert card["hyperparameters"]["sketch_p"] == 0.5 and card["hyperparameters"]["colour_p"] == 0.5
    assert card["hyperparameters"]["d_blur"] is True
    assert "cGAN" in card["objective"] and card["image_size"] == 128
    assert card["training"]["lr_decay_start"] == 0.5
    # samples: 6 rows (edges | output | silhouette | output | output told the colour | truth) of the
    # held-out pairs, 128 px each plus 2 px gaps
    grid = Image.open(out / "checkpoint" / "samples.png")
    assert grid.size == (3 * 130 + 2, 6 * 130 + 2)
    assert (out / "samples" / "step_000002.png").is_file()
    with torch.no_grad():
        assert G(torch.zeros(1, 7, 128, 128)).shape == (1, 3, 128, 128)


def test_the_first_version_is_still_trainable_and_loads_as_before(pairs: Path, tmp_path: Path):
    """--upsample transposed --sketch-p 0 --colour-p 0: the shipped v1 model's kind (3 planes in, the
    card's kwargs without `upsample`), so its checkpoint and the anomaly inpainter's stay as they were."""
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "1", "--upsample", "transposed", "--sketch-p", "0", "--colour-p", "0") == 0
    ckpt = load_checkpoint(out / "checkpoint")
    assert ckpt.card["arch"]["G"]["kwargs"] == {
        "in_channels": 3,
        "out_channels": 3,
        "ngf": 4,
        "depth": 7,
        "max_mult": 2,
    }
    assert Image.open(out / "checkpoint" / "samples.png").size == (3 * 130 + 2, 5 * 130 + 2)
    assert "sketch" not in ckpt.card["data"]["augmentation"]


def test_inputs_redraw_edges_and_give_colours_at_their_rates(pairs: Path, tmp_path: Path):
    from training.run import parse_train_args

    args = parse_train_args(Edges2PhotoTask, ["--data", str(pairs), "--out", str(tmp_path / "r"), *TINY])
    task = Edges2PhotoTask(args, torch.device("cpu"))
    x = task.data.batch(torch.arange(6)).repeat(20, 1, 1, 1)  # 120 pairs
    colours = task.colours[torch.arange(6)].repeat(20, 1)
    out = task.inputs(x, colours, torch.Generator().manual_seed(0))
    assert out.shape == (120, 7 + 3, 128, 128)
    assert torch.equal(out[:, 7:], x[:, 3:])  # the photo is untouched
    redrawn = (out[:, :3] != x[:, :3]).flatten(1).any(1)
    assert 0.3 < redrawn.float().mean() < 0.7  # sketch_p 0.5
    assert set(out[:, :3].unique().tolist()) == {-1.0, 1.0}  # still binary lines on white
    given = out[:, 6, 0, 0] == 1
    assert 0.3 < given.float().mean() < 0.7  # colour_p 0.5
    assert torch.equal(out[given, 3:6, 0, 0], colours[given])  # the photo's own dominant colour
    assert (out[~given, 3:7] == 0).all()  # "automatic": no hint, flag 0
    again = task.inputs(x, colours, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # the same draws give the same inputs (resume, calibration)


def test_training_changes_both_players(pairs: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "1") == 0
    before = torch.load(out / "state.pt", weights_only=True)["models"]
    assert run(pairs, out, "--steps", "2", "--resume") == 0
    after = torch.load(out / "state.pt", weights_only=True)["models"]
    for net in ("G", "D"):
        changed = [k for k, v in before[net].items() if v.is_floating_point() and not torch.equal(v, after[net][k])]
        assert changed, f"{net} did not change"


def test_resume_continues_exactly_where_it_stopped(pairs: Path, tmp_path: Path):
    """Flips and shifts come from the saved RNG, the data order from the saved sampler."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert run(pairs, straight, "--steps", "4") == 0
    assert run(pairs, split, "--steps", "2") == 0
    assert run(pairs, split, "--steps", "4", "--resume") == 0
    a = torch.load(straight / "state.pt", weights_only=True)
    b = torch.load(split / "state.pt", weights_only=True)
    for net in ("G", "D"):
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k} differs after resume"
    # the cpu preset holds lr 2e-4 for half the steps, then decays it linearly: the 4th step used half
    for state in (a, b):
        assert [g["lr"] for o in state["optimizers"].values() for g in o["param_groups"]] == pytest.approx([1e-4] * 2)


def test_diffaugment_on_ds_pairs_trains_and_is_in_the_card(pairs: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "2", "--diffaugment", "color,translation,cutout") == 0
    assert read_card(out / "checkpoint")["hyperparameters"]["diffaugment"] == "color,translation,cutout"


def test_no_gan_trains_the_l1_baseline_without_a_discriminator(pairs: Path, tmp_path: Path):
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "2", "--no-gan") == 0
    state = torch.load(out / "state.pt", weights_only=True)
    assert set(state["models"]) == {"G"} and set(state["optimizers"]) == {"G"}
    header = (out / "log.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "seconds", "l1"]
    card = load_checkpoint(out / "checkpoint").card
    assert card["hyperparameters"]["gan"] is False and "ndf" not in card["hyperparameters"]
    assert "L1 only" in card["objective"]


def test_in_run_evaluation_measures_fid_and_l1_and_keeps_the_best(pairs: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(inception, "inception_network", PooledColours)
    out = tmp_path / "run"
    assert run(pairs, out, "--steps", "2", "--eval-every", "1") == 0
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [r["step"] for r in rows] == ["1", "2"]
    assert all(float(r["fid"]) >= 0 and 0 <= float(r["l1"]) <= 1 for r in rows)
    for r in rows:  # silhouette FID, their mean (the key of <out>/best), checkerboard, colour error
        assert float(r["fid_mean"]) == pytest.approx((float(r["fid"]) + float(r["fid_sil"])) / 2, abs=0.011)
        assert float(r["checker"]) >= 0 and 0 <= float(r["delta_e"]) < 200
    assert load_checkpoint(out / "best").card["training"]["steps"] in (1, 2)


def test_evaluate_measures_model_and_both_baselines_on_held_out_pairs(pairs: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(inception, "inception_network", PooledColours)
    assert run(pairs, tmp_path / "gan", "--steps", "2") == 0
    assert run(pairs, tmp_path / "l1", "--steps", "2", "--no-gan") == 0
    folder, preview = tmp_path / "gan" / "checkpoint", tmp_path / "preview.png"
    args = ["evaluate", "edges2photo", "--checkpoint", str(folder), "--data", str(pairs)]
    args += ["--l1-baseline", str(tmp_path / "l1" / "checkpoint"), "--preview", str(preview), "--threads", "1"]
    assert run(pairs, tmp_path / "v1", "--steps", "1", "--upsample", "transposed", "--colour-p", "0") == 0
    args += ["--previous", str(tmp_path / "v1" / "checkpoint")]
    assert main(args) == 0
    m = read_card(folder)["metrics"]
    fid = next(v for k, v in m.items() if k.startswith("FID"))
    assert "(3 vs 3)" in next(k for k in m if k.startswith("FID"))
    assert {"model", "l1_only", "previous", "baseline", "real", "method"} == fid.keys()
    assert all(fid[k] >= 0 for k in ("model", "l1_only", "previous", "baseline", "real"))
    for row in ("L1 (mean absolute error, 0-1)", "PSNR (dB)", "SSIM"):
        assert {"model", "l1_only", "previous", "baseline", "method"} == m[row].keys(), row
    assert all(0 <= m["L1 (mean absolute error, 0-1)"][k] <= 1 for k in ("model", "l1_only", "baseline"))
    # what people draw, the colour (both GAN and L1-only take one; the previous model does not), the checkerboard
    sil = m["FID of silhouette-only sketches (3 vs 3)"]
    assert {"model", "l1_only", "previous", "method"} == sil.keys() and all(sil[k] >= 0 for k in sil if k != "method")
    assert {"model", "l1_only", "method"} == m["FID when told the real colour (3 vs 3)"].keys()
    colour = m["Colour ΔE to the colour asked for (CIELAB)"]
    assert {"model", "model_other_colour", "l1_only", "l1_only_other_colour", "model_automatic"} <= colour.keys()
    assert {"previous_automatic", "baseline"} <= colour.keys()
    assert all(0 <= v < 200 for k, v in colour.items() if k != "method")
    for row in (
        "Checkerboard (period-2 pattern, grey levels)",
        "Nyquist spike (power at the Nyquist frequencies / around them)",
        "Texture of the tab's example sketches (grey levels)",
    ):
        assert {"model", "l1_only", "previous", "held_out", "method"} == m[row].keys(), row
        assert all(m[row][k] >= 0 for k in ("model", "l1_only", "previous", "held_out")), row
    assert all(-1 <= m["SSIM"][k] <= 1 for k in ("model", "l1_only", "baseline"))
    # the mean-photo baseline's numbers, recomputed by hand
    train = load_pairs(pairs, "train", Edges2PhotoTask.holdout_fraction, progress=False)
    held = load_pairs(pairs, "holdout", Edges2PhotoTask.holdout_fraction, progress=False)
    mean = train.images[:, 3:].float().mean(0).round().clamp(0, 255)
    expected_l1 = float((held.images[:, 3:].float() - mean).abs().mean() / 255)
    assert m["L1 (mean absolute error, 0-1)"]["baseline"] == pytest.approx(expected_l1, abs=1e-3)
    gap = m["FID gap, L1-only minus the model (bootstrap)"]
    assert gap["model"] == pytest.approx(fid["l1_only"] - fid["model"], abs=0.11)
    assert " to " in gap["interval_95"] and gap["model_ahead"].endswith("% of draws")
    # edges | model | l1_only | previous | baseline | silhouettes | 3 x their photos | 2 x told another colour | truth
    assert Image.open(preview).size == (3 * 130 + 2, 12 * 130 + 2)
    load_checkpoint(folder)  # the card still verifies


def test_evaluate_refuses_a_baseline_of_another_task(pairs: Path, tmp_path: Path, monkeypatch):
    from tests.conftest import write_tiny_faces_checkpoint

    monkeypatch.setattr(inception, "inception_network", PooledColours)
    assert run(pairs, tmp_path / "gan", "--steps", "1") == 0
    faces = write_tiny_faces_checkpoint(tmp_path / "ck")
    args = ["evaluate", "edges2photo", "--checkpoint", str(tmp_path / "gan" / "checkpoint"), "--data", str(pairs)]
    with pytest.raises(SystemExit, match="'faces' checkpoint"):
        main([*args, "--l1-baseline", str(faces), "--dry-run"])
