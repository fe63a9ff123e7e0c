"""The trainer contract: what a task hands to the one loop (`training.loop.Trainer`).

A task is one `TrainTask` subclass in `training/<name>.py`, found by its `name` (the name of
`gandemo.tasks.TASKS`). Its presets, its own command-line options and its evaluation live on the
class, like `modify_commandline_options` in the pix2pix code base; the options every task shares
(`--batch-size`, `--lr`, `--limit`, `--threads`, `--variant`, ...) are parsed once by
`training.run`. `ImageTask` adds what every image GAN needs: the in-memory image set with its
held-out split, the resumable sampler, flips, and the card's `data` block.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from PIL import Image
from torch import nn

from gandemo.checkpoint import arch_entry, save_checkpoint
from gandemo.tasks import TASKS
from training import distributed
from training.data import EpochSampler, ImageSet

if TYPE_CHECKING:
    from gandemo.checkpoint import Checkpoint
    from training.evaluation import Evaluation

REPO_ROOT = Path(__file__).resolve().parent.parent
# The data root the README's commands use (`--data ../shared/datasets/<set>`): cards record a data
# set's folder relative to it, so a card reads the same whichever machine or checkout trained it.
DATA_ROOT = REPO_ROOT.parent / "shared" / "datasets"


def _relative_to(path: Path, root: Path) -> Path | None:
    """`path` relative to `root` when it lies inside it, as written or with links resolved; else None."""
    for p, r in ((Path(os.path.abspath(path)), Path(os.path.abspath(root))), (path.resolve(), root.resolve())):
        if p.is_relative_to(r):
            return p.relative_to(r)
    return None


def _last_parts(path: Path) -> str:
    # outside every known root: the set's own name and its parent's say what it was, the rest only
    # where one machine kept it
    return Path(*Path(os.path.abspath(path)).parts[-2:]).as_posix()


def data_path(folder: str | Path, root: str | Path = DATA_ROOT) -> str:
    """A data folder as a card records it: relative to the data root (e.g. "edges2shoes_utzap/train");
    a folder outside the root by its last two parts. Never an absolute path."""
    rel = _relative_to(Path(folder), Path(root))
    return (rel.as_posix() or ".") if rel is not None else _last_parts(Path(folder))


def repo_path(path: str | Path) -> str:
    """A path as a card's commands record it: relative to the repository, where the commands run
    (a run folder "runs/faces"; the data "../shared/datasets/faces/train"); a path outside both by its
    last two parts. A relative path is taken from the current directory. Never an absolute path."""
    path = Path(path)
    rel = _relative_to(path, REPO_ROOT)
    if rel is not None:
        return rel.as_posix() or "."
    rel = _relative_to(path, DATA_ROOT)
    if rel is not None:
        return (Path(os.path.relpath(DATA_ROOT, REPO_ROOT)) / rel).as_posix()
    return _last_parts(path)


def portable_command(command: str) -> str:
    """`command` with every absolute path in it (a word, or the value of `--opt=PATH`) made
    relative by `repo_path`, so that the card's command can be run again in any checkout."""
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: not a command this project wrote; leave it as it is
        return command
    out = []
    for word in words:
        option, eq, value = word.partition("=") if word.startswith("--") else ("", "", word)
        out.append(option + eq + repo_path(value) if os.path.isabs(value) else word)
    return shlex.join(out) if out != words else command  # unchanged: keep its own quoting


def portable_card(value: Any, key: str = "") -> Any:
    """A card (or any part of one) with no absolute path of the machine that wrote it: a `path` by
    `data_path`, a `command` by `portable_command`, any other absolute path by `repo_path`. Applied
    to every card the loop exports, so that run states written before this was so come out right."""
    if isinstance(value, dict):
        return {k: portable_card(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [portable_card(v, key) for v in value]
    if isinstance(value, str):
        if key == "command":
            return portable_command(value)
        if os.path.isabs(value):
            return data_path(value) if key == "path" else repo_path(value)
    return value


def add_options(parser: argparse.ArgumentParser | Any, kind: type, options: dict[str, str | tuple[Any, str]]) -> None:
    """Options of one type from a table, `--flag: help` or `--flag: (default, help)`: a task's options read
    as the list they are. One without a default takes the preset's value (see training.run)."""
    for flag, spec in options.items():
        default, text = spec if isinstance(spec, tuple) else (None, spec)
        parser.add_argument(flag, type=kind, default=default, help=text)


def write_tiny(
    root: Path, name: str, variant: str, models: dict[str, tuple[nn.Module, dict]], resolution: str, **fields: Any
) -> Path:
    """A tiny checkpoint (`TrainTask.tiny_checkpoints`) under `root/<name>/<variant>`: `models` as name ->
    (module, constructor kwargs), a card of the exported kind with zero steps of made-up data, and the
    task's own `fields`."""
    card = {
        "task": name,
        "variant": variant,
        "arch": {k: arch_entry(m, kw) for k, (m, kw) in models.items()},
        "data": {"name": fields.pop("data_name", "test"), "items": 0, "resolution": resolution, "held_out": "none"},
        "training": {"steps": 0, "wall_time_s": 0, "preset": "test", "device": "cpu"},
        **fields,
        "metrics": {},
    }
    return save_checkpoint(root / name / variant, {k: m for k, (m, _) in models.items()}, card)


class TrainTask(ABC):
    """What a task supplies. Subclasses set the class attributes, build `models` and
    `optimizers` in `__init__(args, device)` and implement the abstract methods.

    `args` holds the parsed command line with the preset's values filled in wherever the user
    gave none (see `training.run`), so a task reads e.g. `args.batch_size` and `args.lr` directly.
    """

    name: ClassVar[str]
    # preset -> values of generic options (steps, batch_size, lr, ema_decay, eval_every...) and of
    # the task's own options; "cpu" sized for 2 cores, "gpu" for one CUDA device
    presets: ClassVar[dict[str, dict[str, Any]]]
    # preset -> variant -> values that differ for that variant (e.g. a fine-tuning variant's steps and lr)
    variant_presets: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {}
    # variant -> the variant whose exported checkpoint it starts from, passed as `--init DIR`
    # (superres: gan fine-tunes psnr); `python -m training all` trains that one first
    starts_from: ClassVar[dict[str, str]] = {}
    # options of this task a --resume may change without --override (training.run.RESUME_FREE lists the
    # shared ones: steps, threads, ...), e.g. how long each of its stages lasts
    resume_free: ClassVar[frozenset[str]] = frozenset()
    # where `python -m training all --data-root DIR` finds this task's --data: the first of these paths
    # under DIR that exists (empty: a folder named after the task)
    data_layout: ClassVar[tuple[str, ...]] = ()
    ema_of: ClassVar[str | None] = None  # this model gets an EMA copy, exported in its place
    # A task may measure itself during the run (e.g. FID); `eval_key` names the number that
    # decides which evaluated step is exported to <out>/best (lower is better).
    eval_key: ClassVar[str | None] = None

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    variant: str = "default"
    ema_decay: float = 0.999
    ema_rampup: float = 0.05  # the EMA's warm-up ramp (training.loop.EMA); 0: none

    def __init__(self, args: argparse.Namespace, device: torch.device) -> None:
        """What every task takes from the command line: its device, its variant and the EMA's decay (a
        subclass then builds `models` and `optimizers`)."""
        self.device = device
        self.variant = args.variant
        if getattr(args, "ema_decay", None) is not None:
            self.ema_decay = float(args.ema_decay)

    # ---- command line (class level: read before any instance exists) ------------------------
    @classmethod  # noqa: B027 - optional hook
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this task's own training options (the shared ones are there already)."""

    @classmethod  # noqa: B027 - optional hook
    def add_evaluate_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this task's own `python -m training evaluate <task>` options."""

    @classmethod
    def evaluate_checkpoint(cls, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
        """Measure a checkpoint folder against its baseline: metric name -> {"model": ...,
        "baseline": ..., "method": "in words"}; written into the card by the caller. The shared driver
        (`training.evaluation.evaluate`) runs the task's `measure`; a task overrides this only to wrap the
        driver (anomaly)."""
        from training.evaluation import evaluate  # the driver imports this module

        return evaluate(cls, args)

    @classmethod
    def measure(cls, ckpt: Checkpoint, args: argparse.Namespace) -> Evaluation:
        """The task's part of the evaluation: from `ckpt` (checked to be this task's) and the parsed
        `evaluate` options, the held-out data, the model's and the baseline's outputs and the metric rows,
        with the preview picture and any other card fields (see `training.evaluation.Evaluation`)."""
        raise NotImplementedError(f"{cls.name} has no evaluation yet")

    # ---- `python -m training all` (class level) ------------------------------------------------
    @classmethod
    def find_data(cls, root: Path) -> Path | None:
        """This task's data under `root` by `data_layout` (the first path that exists), or None."""
        for rel in cls.data_layout or (cls.name,):
            if (root / rel).exists():
                return root / rel
        return None

    @classmethod
    def ordered_variants(cls) -> list[str]:
        """The catalogue's variants, each after the one it starts from (superres: psnr, then gan)."""
        out: list[str] = []

        def add(v: str) -> None:
            if v in cls.starts_from:
                add(cls.starts_from[v])
            if v not in out:
                out.append(v)

        for v in TASKS[cls.name].variants:
            add(v)
        return out

    @classmethod
    def planned_runs(cls, root: Path) -> list[tuple[str, Path | None, str]]:
        """(variant, data, note) of each run `python -m training all` makes of this task from the data
        root: by default every variant in `ordered_variants` on the data `find_data` finds (None, with a
        note saying where it looked, when there is none). A task whose data holds one run per folder
        (anomaly: one per category) overrides it."""
        data = cls.find_data(root)
        looked = ", ".join(str(root / rel) for rel in cls.data_layout or (cls.name,))
        note = "" if data else f"no data (looked for {looked})"
        return [(variant, data, note) for variant in cls.ordered_variants()]

    @classmethod
    def tiny_checkpoints(cls, root: Path, seed: int = 0) -> list[Path]:
        """Untrained but valid checkpoints of every variant under `root/<name>/<variant>`, small and quick
        to write (a card like an exported one, numbers made up): what the app's tests serve
        (tests/conftest.py finds this hook by the task's name)."""
        raise NotImplementedError(f"{cls.name} writes no tiny checkpoints: give TrainTask.tiny_checkpoints")

    # ---- the run ------------------------------------------------------------------------------
    @abstractmethod
    def next_batch(self) -> Any:
        """The next training batch (the loop moves tensors to the device in its fast layout)."""

    @abstractmethod
    def train_step(self, batch: Any, amp: Any) -> dict[str, torch.Tensor]:
        """One optimisation step of every player; returns detached scalar losses/diagnostics."""

    @abstractmethod
    def sample_grid(self, models: dict[str, nn.Module]) -> Image.Image:
        """A picture of what the models make now (fixed inputs, so grids compare across steps)."""

    @abstractmethod
    def export_modules(self, models: dict[str, nn.Module]) -> dict[str, tuple[nn.Module, dict]]:
        """name -> (module, constructor kwargs) for the checkpoint; `models` are ready for inference."""

    @abstractmethod
    def card_fields(self) -> dict[str, Any]:
        """Card fields of this task: at least `data`; task extras as docs/DESIGN.md lists them."""

    def calibration_inputs(self) -> Iterator[torch.Tensor]:
        """Input batches for the EMA model, on which the loop re-estimates its BatchNorm
        statistics before it is used (the EMA's weights are an average; the statistics copied
        from the live model do not fit them). Only needed when the EMA model has BatchNorm."""
        raise NotImplementedError(f"{self.name}: the EMA model has BatchNorm; give calibration_inputs()")

    def evaluate(self, models: dict[str, nn.Module]) -> dict[str, float]:
        """Metrics of the current models during the run (ready for inference); {} if none."""
        return {}

    def shard_batch(self, batch: Any, rank: int, world: int) -> Any:
        """This process's part of a global batch when `world` processes train together (DDP, see
        training/distributed.py): items rank*B/N .. (rank+1)*B/N - 1 along the batch axis, which is
        dim 0 of a tensor or of each tensor of a tuple/list. A task whose batch axis is elsewhere
        overrides it (music: its batch holds n_critic batches, the items are on dim 1)."""
        if isinstance(batch, torch.Tensor):
            return distributed.shard(batch, rank, world)
        if isinstance(batch, tuple | list):
            return type(batch)(self.shard_batch(x, rank, world) for x in batch)
        raise TypeError(f"{self.name}: cannot split a batch of type {type(batch).__name__}; override shard_batch")

    def extra_state(self) -> dict[str, Any]:
        """Task state to resume exactly (e.g. the data sampler)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        pass


class ImageTask(TrainTask):
    """A task trained on one folder of images: decoded once into memory at `image_size`, with a
    stable held-out split (`holdout_fraction` of the files by a hash of the name, never trained
    on), endless shuffled epochs that resume mid-epoch, optional horizontal flips."""

    image_size: ClassVar[int]
    holdout_fraction: ClassVar[float] = 0.0

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--flip", action=argparse.BooleanOptionalAction, default=True, help="random horizontal flips of the data"
        )

    def load_images(self, args: argparse.Namespace, flip: bool = False) -> None:
        self.data = ImageSet(
            args.data, self.image_size, "train", self.holdout_fraction, limit=args.limit, progress=args.progress
        )
        self.sampler = EpochSampler(len(self.data), args.batch_size, seed=args.seed)
        self.flip = flip

    def held_out(self, n: int | None = None) -> torch.Tensor:
        """The first `n` held-out images as floats in [-1, 1] (the metrics' reference)."""
        held = ImageSet(self.data.folder, self.image_size, "holdout", self.holdout_fraction, progress=False)
        return held.batch(torch.arange(min(n or len(held), len(held))))

    def next_batch(self) -> torch.Tensor:
        x = self.data.batch(self.sampler.next())
        if self.flip:  # a mirrored photo is as real as the original: twice the data for free
            mirror = torch.rand(len(x)) < 0.5
            x[mirror] = x[mirror].flip(3)
        return x

    def data_card(self) -> dict[str, Any]:
        folder = self.data.folder
        return {
            "name": folder.name if folder.name != "train" else folder.parent.name,
            "path": data_path(folder),
            "items": len(self.data),
            "resolution": f"{self.image_size}x{self.image_size}",
            "augmentation": "random horizontal flips" if self.flip else "none",
            "held_out": f"{self.holdout_fraction:.0%} of the files by a hash of the file name "
            "(training.data.is_holdout), never trained on; metrics use them"
            if self.holdout_fraction
            else "none",
        }

    def extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])


def task_class(name: str) -> type[TrainTask]:
    """The `TrainTask` subclass of task `name`, from `training/<name>.py`."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}")
    module = importlib.import_module(f"training.{name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, TrainTask) and getattr(value, "name", None) == name:
            return value
    raise KeyError(f"training/{name}.py defines no TrainTask subclass named {name!r}")


def trainable_tasks() -> list[str]:
    """Tasks whose trainer has landed (training/<name>.py exists), in the catalogue's order."""
    here = Path(__file__).resolve().parent
    return [name for name in TASKS if (here / f"{name}.py").is_file()]
