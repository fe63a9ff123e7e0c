"""Shared fixtures. Tests never read ../shared/datasets: they make tiny data of their own."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo import registry
from gandemo.checkpoint import arch_entry, save_checkpoint
from gandemo.nets.dcgan import Generator
from gandemo.nets.pix2pix import UNetGenerator

# tiny models gain nothing from more threads, and oversubscribed cores make torch crawl
torch.set_num_threads(1)
os.environ.setdefault("GANDEMO_THREADS", "1")  # the app under test sets its own thread count

TINY_G = {"z_dim": 100, "ngf": 8, "channels": 3}
TINY_UNET = {"in_channels": 3, "out_channels": 3, "ngf": 4, "depth": 7, "max_mult": 2}
# the edges2photo model of the cpu preset's kind since v2: edges + 4 colour planes in, resize-then-convolve
TINY_EDGES_UNET = TINY_UNET | {"in_channels": 7, "upsample": "bilinear"}


def make_image_folder(folder: Path, n: int = 24, size: int = 64, seed: int = 0) -> Path:
    """`n` small JPEG "faces": coloured blobs on random backgrounds, varied enough to train on."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        bg = rng.integers(0, 255, 3)
        img = np.broadcast_to(bg, (size, size, 3)).astype(np.float64).copy()
        cx, cy, r = rng.uniform(16, 48, 2).tolist() + [rng.uniform(8, 20)]
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        img[disk] = rng.integers(0, 255, 3)
        img += rng.normal(0, 8, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def write_tiny_faces_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid faces checkpoint (ngf=8, 0.2 MB) under `root/faces/default`."""
    torch.manual_seed(seed)
    G = Generator(**TINY_G).eval()
    card = {
        "task": "faces",
        "variant": "default",
        "arch": {"G": arch_entry(G, TINY_G)},
        "data": {"name": "test", "items": 0, "resolution": "64x64", "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        "metrics": {},
    }
    return save_checkpoint(root / "faces" / "default", {"G": G}, card)


def write_tiny_edges_checkpoint(root: Path, seed: int = 0, kwargs: dict | None = None) -> Path:
    """An untrained but valid edges2photo checkpoint (U-Net ngf=4; `kwargs` default: TINY_EDGES_UNET, a
    colour model; TINY_UNET: the first version's kind) under `root/edges2photo/default`."""
    kwargs = TINY_EDGES_UNET if kwargs is None else kwargs
    torch.manual_seed(seed)
    G = UNetGenerator(**kwargs).eval()
    card = {
        "task": "edges2photo",
        "variant": "default",
        "arch": {"G": arch_entry(G, kwargs)},
        "data": {"name": "test", "items": 0, "resolution": "128x128", "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        "hyperparameters": {"lambda_l1": 100.0, "ndf": 4, "d_layers": 3, "batch_size": 2, "lr": 2e-4},
        "objective": "cGAN (softplus on PatchGAN logits) + lambda * L1",
        "metrics": {},
    }
    return save_checkpoint(root / "edges2photo" / "default", {"G": G}, card)


TINY_ANOMALY_SEARCH = 3  # latent-search iterations the tiny anomaly cards are calibrated at


def write_tiny_anomaly_checkpoint(root: Path, category: str, channels: int = 3, seed: int = 0) -> Path:
    """An untrained but valid anomaly checkpoint (16x16 G, D, E of width 4; a 32x32 inpainter I of
    width 4 with its critic C and residual statistics N; the baseline's statistics B) under
    `root/anomaly/<category>`, with thresholds calibrated by the task's own code on 4 flat "normal"
    images (greyscale when channels = 1)."""
    from gandemo.nets.anogan import Discriminator, Encoder, Generator, ResidualStats
    from gandemo.nets.pix2pix import PatchDiscriminator, UNetGenerator
    from gandemo.tasks import anomaly

    torch.manual_seed(seed)
    kw = {"channels": channels, "image_size": 16}
    i_kw = {"in_channels": channels + 1, "out_channels": channels, "ngf": 4, "depth": 4}
    c_kw = {"in_channels": 2 * channels + 1, "ndf": 4, "layers": 2}
    models = {
        "G": Generator(z_dim=8, ngf=4, **kw).eval(),
        "D": Discriminator(ndf=4, **kw).eval(),
        "E": Encoder(z_dim=8, nef=4, **kw).eval(),
        "I": UNetGenerator(**i_kw).eval(),
        "C": PatchDiscriminator(**c_kw).eval(),
        "N": ResidualStats(32),
    }
    inpaint = {"image_size": 32, "cells": [8, 16], "sets": 4, "sigma": 1.0, "top": 0.01, "normalise": True}
    rng = np.random.default_rng(seed)
    normal = torch.from_numpy(rng.uniform(-0.2, 0.2, (4, channels, 16, 16))).float()
    normal_hi = torch.from_numpy(rng.uniform(-0.2, 0.2, (4, channels, 32, 32))).float()
    raw = anomaly.inpaint(models, normal_hi, {**inpaint, "normalise": False})
    models["N"].fit(torch.from_numpy(raw.heat))
    calibration = {}
    for method in anomaly.METHODS:
        x = normal_hi if method == "inpaint" else normal
        scores, heat = anomaly.score_batches(method, models, x, TINY_ANOMALY_SEARCH, block=inpaint)
        calibration[method] = anomaly.calibrate(scores, heat)
    photos = rng.integers(100, 140, (4, 128, 128, 3), dtype=np.uint8)  # the baseline's "normal" images
    baseline = anomaly.PixelStatsBaseline.fit(photos)
    models["B"] = baseline.to_module()
    scores, pixels = baseline.score(photos)
    calibration["baseline"] = anomaly.calibrate(scores, pixels)
    calibration["latent_search"]["iterations"] = TINY_ANOMALY_SEARCH
    calibration["how"] = "test: 4 flat images"
    card = {
        "task": "anomaly",
        "variant": category,
        "arch": {
            "G": arch_entry(models["G"], {"z_dim": 8, "ngf": 4, **kw}),
            "D": arch_entry(models["D"], {"ndf": 4, **kw}),
            "E": arch_entry(models["E"], {"z_dim": 8, "nef": 4, **kw}),
            "I": arch_entry(models["I"], i_kw),
            "C": arch_entry(models["C"], c_kw),
            "N": arch_entry(models["N"], {"size": 32}),
            "B": arch_entry(models["B"], {"size": 128, "channels": 3}),
        },
        "data": {"name": category, "items": 0, "resolution": "16x16", "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        "anomaly": {"search_iterations": TINY_ANOMALY_SEARCH, "inpaint": inpaint, "calibration": calibration},
        "metrics": {},
    }
    return save_checkpoint(root / "anomaly" / category, models, card)


TINY_MUSE = {
    "n_tracks": 4,
    "n_bars": 4,
    "steps_per_bar": 16,
    "n_pitches": 48,
    "z_dim": 4,
    "width": 8,
    "temporal_width": 8,
}


def write_tiny_music_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid music checkpoint (MuseGAN G of width 8) under `root/music/default`. Its
    weights are redrawn at unit gain and its note bias set to -4 so that, untrained, it writes a few
    seed-dependent notes (~1 % of the cells on, 40-120 notes: fast to play) rather than silence or
    noise; its card has held-out reference numbers measured on two hand-made chords."""
    from gandemo.nets.musegan import MuseGenerator, TrackLinear
    from gandemo.tasks import music

    torch.manual_seed(seed)
    G = MuseGenerator(**TINY_MUSE).eval()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, TrackLinear | torch.nn.Linear):
                fan_in = m.weight.shape[-2] if isinstance(m, TrackLinear) else m.weight.shape[-1]
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
        G.semitone_bias.fill_(-4.0)
    chords = np.zeros((2, 4, music.N_STEPS, music.N_PITCHES), bool)  # held C major / G major chords, one note a voice
    for i, pitches in enumerate(((72, 67, 64, 48), (71, 67, 62, 43))):
        for track, pitch in enumerate(pitches):
            chords[i, track, :, pitch - music.LOWEST_PITCH] = True
    card = {
        "task": "music",
        "variant": "default",
        "arch": {"G": arch_entry(G, TINY_MUSE)},
        "data": {"name": "test", "items": 0, "resolution": "4 voices x 64 steps x 48 pitches", "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        "hyperparameters": {"d_width": 4, "n_critic": 5, "gp_weight": 10.0, "batch_size": 2, "lr": 1e-3},
        "held_out_metrics": {"split": "test", "pieces": 2, "values": music.piece_metrics(chords)},
        "metrics": {},
    }
    return save_checkpoint(root / "music" / "default", {"G": G}, card)


TINY_HARMONY = {**TINY_MUSE, "n_tracks": 3, "cond_width": 4}


def write_tiny_harmony_checkpoint(root: Path, seed: int = 0) -> Path:
    """An untrained but valid harmoniser checkpoint (the conditional MuseGAN G of width 8 with a
    melody encoder of 4) under `root/music/harmonize`, its weights redrawn at unit gain and its note
    bias at -2.5 so that, untrained, its voices sound a few seed-dependent notes; its card has harmony
    reference numbers measured on two hand-made chords and their mismatch."""
    from gandemo.nets.musegan import MuseGenerator, TrackLinear
    from gandemo.tasks import music

    torch.manual_seed(seed)
    G = MuseGenerator(**TINY_HARMONY).eval()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, TrackLinear | torch.nn.Linear):
                fan_in = m.weight.shape[-2] if isinstance(m, TrackLinear) else m.weight.shape[-1]
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
        G.semitone_bias.fill_(-2.5)
    chords = np.zeros((2, 4, music.N_STEPS, music.N_PITCHES), bool)
    for i, pitches in enumerate(((72, 67, 64, 48), (71, 67, 62, 43))):
        for track, pitch in enumerate(pitches):
            chords[i, track, :, pitch - music.LOWEST_PITCH] = True
    swapped = np.concatenate([chords[:, :1], chords[::-1, 1:]], 1)
    reference = {"split": "test", "pieces": 2, "chorales": music.piece_harmony(chords)}
    reference["mismatched"] = music.piece_harmony(swapped)
    card = {
        "task": "music",
        "variant": "harmonize",
        "arch": {"G": arch_entry(G, TINY_HARMONY)},
        "data": {"name": "test", "items": 0, "resolution": "4 voices x 64 steps x 48 pitches", "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        "hyperparameters": {"d_width": 4, "n_critic": 5, "gp_weight": 10.0, "batch_size": 2, "lr": 1e-3},
        "harmony_reference": reference,
        "metrics": {},
    }
    return save_checkpoint(root / "music" / "harmonize", {"G": G}, card)


TINY_SRRESNET = {"channels": 8, "blocks": 2, "batchnorm": True, "bicubic_skip": True}


def write_tiny_superres_checkpoints(root: Path, seed: int = 0) -> list[Path]:
    """Untrained but valid superres checkpoints (SRResNet of 8 channels x 2 blocks, starting as bicubic
    plus a little) under `root/superres/gan` and `root/superres/psnr`."""
    from gandemo.nets.srgan import SRResNet

    folders = []
    for i, variant in enumerate(("gan", "psnr")):
        torch.manual_seed(seed + i)
        G = SRResNet(**TINY_SRRESNET).eval()
        card = {
            "task": "superres",
            "variant": variant,
            "arch": {"G": arch_entry(G, TINY_SRRESNET)},
            "data": {"name": "test", "items": 0, "resolution": "96x96 crops", "held_out": "none"},
            "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
            "hyperparameters": {"batch_size": 2, "lr": 2e-4, "crop": 96},
            "objective": "pixel MSE (SRResNet)" if variant == "psnr" else "content + 0.001 x adversarial",
            "content_loss": "pixel MSE" if variant == "psnr" else "a stand-in",
            "metrics": {},
        }
        folders.append(save_checkpoint(root / "superres" / variant, {"G": G}, card))
    return folders


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    write_tiny_faces_checkpoint(root)
    write_tiny_edges_checkpoint(root)
    for category, channels in (("magnetic_tile", 1), ("metal_plate", 3), ("transistor", 3)):
        write_tiny_anomaly_checkpoint(root, category, channels)
    write_tiny_music_checkpoint(root)
    write_tiny_harmony_checkpoint(root)
    write_tiny_superres_checkpoints(root)
    return root


@pytest.fixture
def use_checkpoints(monkeypatch: pytest.MonkeyPatch):
    """Point the registry at a checkpoint root for one test (and forget cached models after)."""

    def _use(root: Path) -> None:
        monkeypatch.setenv(registry.ENV_ROOT, str(root))
        registry.clear()

    yield _use
    registry.clear()


@pytest.fixture(scope="session")
def app_url(checkpoint_root: Path):
    """The whole app, served once per test session on a free local port, on the tiny checkpoint,
    with the app's own queue settings."""
    from gandemo.ui.app import build_app, configure_queue

    mp = pytest.MonkeyPatch()
    mp.setenv(registry.ENV_ROOT, str(checkpoint_root))
    registry.clear()
    demo = build_app()
    configure_queue(demo).launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url
    finally:
        demo.close()
        mp.undo()
        registry.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- what a test run reports at its end (hostile-input counts, screenshot paths) --------------------
RUN_REPORT = pytest.StashKey[dict]()


@pytest.fixture(scope="session")
def run_report(request: pytest.FixtureRequest) -> dict[str, list]:
    """Lists the tests append to and the terminal summary prints: "hostile" holds (endpoint, input,
    case, outcome) per hostile-input case, "screenshots" the paths of saved screenshots."""
    return request.config.stash.setdefault(RUN_REPORT, {"hostile": [], "screenshots": []})


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(RUN_REPORT, None)
    if not report:
        return
    hostile = report["hostile"]
    if hostile:
        endpoints = {h[0] for h in hostile}
        answered = sum(h[3] == "message" for h in hostile)
        terminalreporter.write_line(
            f"hostile inputs: {len(hostile)} cases across {len(endpoints)} endpoints "
            f"({answered} answered with the app's own message, {len(hostile) - answered} with a correct result)"
        )
    for path in report["screenshots"]:
        terminalreporter.write_line(f"screenshot: {path}")
