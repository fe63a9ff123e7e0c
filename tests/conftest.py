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
from training import anomaly as anomaly_trainer
from training import edges2photo as edges_trainer
from training import faces as faces_trainer
from training import music as music_trainer
from training import superres as superres_trainer
from training.task import task_class, trainable_tasks

# tiny models gain nothing from more threads, and oversubscribed cores make torch crawl
torch.set_num_threads(1)
os.environ.setdefault("GANDEMO_THREADS", "1")  # the app under test sets its own thread count

# Each task's tiny checkpoints are written by its trainer (`TrainTask.tiny_checkpoints`, found by the
# task's name); the names below are the ones tests import.
TINY_G = faces_trainer.TINY_G
TINY_UNET = edges_trainer.TINY_UNET
# the edges2photo model of the cpu preset's kind since v2: edges + 4 colour planes in, resize-then-convolve
TINY_EDGES_UNET = edges_trainer.TINY_EDGES_UNET
TINY_ANOMALY_SEARCH = anomaly_trainer.TINY_SEARCH  # latent-search iterations the tiny anomaly cards are calibrated at
TINY_SRRESNET = superres_trainer.TINY_SRRESNET
write_tiny_faces_checkpoint = faces_trainer.write_tiny_checkpoint
write_tiny_edges_checkpoint = edges_trainer.write_tiny_checkpoint
write_tiny_anomaly_checkpoint = anomaly_trainer.write_tiny_checkpoint
write_tiny_superres_checkpoints = superres_trainer.write_tiny_checkpoints
TINY_MUSE = music_trainer.TINY_MUSE
TINY_HARMONY = music_trainer.TINY_HARMONY
write_tiny_music_checkpoint = music_trainer.write_tiny_music_checkpoint
write_tiny_harmony_checkpoint = music_trainer.write_tiny_harmony_checkpoint


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


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    for name in trainable_tasks():
        write_tiny_checkpoints(name, root)
    return root


def write_tiny_checkpoints(name: str, root: Path, seed: int = 0) -> list[Path]:
    """Task `name`'s tiny checkpoints, by its trainer's hook (`TrainTask.tiny_checkpoints`)."""
    return task_class(name).tiny_checkpoints(root, seed)


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
