"""Task name -> checkpoint folder -> loaded model: lazily, once, thread-safe.

The registry finds checkpoints by the layout alone (`<root>/<task>/<variant>/`, DESIGN.md), so a
newly trained folder copied into place is used on the next start without a code change. A missing
or broken checkpoint raises `ModelUnavailable`, whose message says what is missing and which
training command makes it; the UI shows that on the task's tab and the other tabs keep working.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from gandemo.checkpoint import Checkpoint, CheckpointError, load_checkpoint

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_ROOT = "GANDEMO_CHECKPOINTS"  # tests and deployments point this elsewhere


class ModelUnavailable(RuntimeError):
    """The task's checkpoint is missing or broken; the message tells the user how to make it."""


@dataclass(frozen=True)
class TaskSpec:
    name: str  # folder name under the checkpoint root and `python -m training <name>`
    title: str  # tab label
    variants: tuple[str, ...]
    data: str  # default training data, relative to the repository's parent
    train_hint: str = ""  # extra words for tasks whose trainer has not landed yet

    @property
    def default_variant(self) -> str:
        return self.variants[0]

    def train_command(self, variant: str | None = None) -> str:
        variant = variant or self.default_variant
        return (
            f"python -m training {self.name} --data {self.data} --out runs/{self.name}-{variant} "
            f"--preset cpu, then copy runs/{self.name}-{variant}/checkpoint to "
            f"assets/checkpoints/{self.name}/{variant}"
        )


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("faces", "Faces", ("default",), "../shared/datasets/faces/train"),
        TaskSpec(
            "edges2photo",
            "Edges → Photo",
            ("default",),
            "../shared/datasets/edges2shoes_utzap/train",
            "its trainer (Pix2Pix) arrives with the Edges → Photo issue",
        ),
        TaskSpec(
            "superres",
            "4× Upscale",
            ("gan", "psnr"),
            "../shared/datasets/sr_train",
            "its trainer (SRResNet / SRGAN) arrives with the 4× Upscale issue",
        ),
        TaskSpec(
            "music",
            "Music",
            ("default",),
            "../shared/datasets/music",
            "its trainer (MuseGAN-style) arrives with the Music issue",
        ),
        TaskSpec(
            "anomaly",
            "Anomaly",
            ("magnetic_tile", "metal_plate", "transistor"),
            "../shared/datasets/anomaly/<category>",
            "its trainer (AnoGAN / f-AnoGAN) arrives with the Anomaly issue",
        ),
    )
}


def checkpoint_root() -> Path:
    return Path(os.environ.get(ENV_ROOT, REPO_ROOT / "assets" / "checkpoints"))


def checkpoint_dir(task: str, variant: str | None = None) -> Path:
    spec = _spec(task)
    return checkpoint_root() / task / (variant or spec.default_variant)


def _spec(task: str) -> TaskSpec:
    try:
        return TASKS[task]
    except KeyError:
        raise ModelUnavailable(f"unknown task {task!r}; known: {', '.join(TASKS)}") from None


_lock = threading.Lock()
_cache: dict[tuple[Path, str, str], Checkpoint] = {}


def get(task: str, variant: str | None = None) -> Checkpoint:
    """The loaded checkpoint of `task`/`variant` (cached; loaded once even under concurrency)."""
    spec = _spec(task)
    variant = variant or spec.default_variant
    if variant not in spec.variants:
        raise ModelUnavailable(f"{spec.title}: unknown variant {variant!r}; choose {', '.join(spec.variants)}")
    folder = checkpoint_dir(task, variant)
    key = (checkpoint_root(), task, variant)
    with _lock:
        if key in _cache:
            return _cache[key]
        if not folder.is_dir():
            hint = f" ({spec.train_hint})" if spec.train_hint else ""
            raise ModelUnavailable(
                f"The {spec.title} model is not trained yet: there is no checkpoint at {folder}. "
                f"Train it with: {spec.train_command(variant)}{hint}."
            )
        try:
            ckpt = load_checkpoint(folder)
        except CheckpointError as exc:
            raise ModelUnavailable(
                f"The {spec.title} checkpoint cannot be used: {exc}. Retrain it with: {spec.train_command(variant)}."
            ) from None
        if ckpt.card.get("task") != task:
            raise ModelUnavailable(f"{folder} holds a {ckpt.card.get('task')!r} checkpoint, not {task!r}")
        _cache[key] = ckpt
        return ckpt


def status(task: str, variant: str | None = None) -> str | None:
    """None when the task's model loads, else the `ModelUnavailable` message."""
    try:
        get(task, variant)
    except ModelUnavailable as exc:
        return str(exc)
    return None


def clear() -> None:
    """Forget loaded models (tests; a redeploy with new checkpoints)."""
    with _lock:
        _cache.clear()
