"""The one evaluation driver every task's `python -m training evaluate <task>` runs.

The driver owns the skeleton the tasks used to repeat: load the checkpoint and check it is this task's,
let the task measure it (`TrainTask.measure`: held-out data -> the model's and the baseline's outputs ->
metric rows, a preview picture, other card fields), write the preview where `--preview` says, write the
other card fields (unless `--dry-run`), and time it. `training/evaluate.py` parses the options and writes
the metric rows into the card. A task keeps only what is its own: its data, its baseline, its metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from gandemo.checkpoint import Checkpoint, load_checkpoint, update_card

if TYPE_CHECKING:
    from training.task import TrainTask


@dataclass
class Evaluation:
    """What a task's `measure` hands back to the driver."""

    # metric name -> {"model": ..., "baseline": ..., "real"/"held_out": ..., "method": "in words"}
    metrics: dict[str, dict[str, Any]]
    preview: Image.Image | None = None  # a picture to look at, written to --preview if given
    preview_note: str = ""  # what the preview's rows or columns are, e.g. "model | baseline | real"
    card: dict[str, Any] = field(default_factory=dict)  # other card fields (anomaly: `aims`), beside metrics
    notes: list[str] = field(default_factory=list)  # lines printed at the end (e.g. why an aim was missed)


def metric_row(values: dict[str, Any], method: str, **reference: Any) -> dict[str, Any]:
    """One row of a card's metrics: each set's value, then reference values (the floor, e.g.
    held_out=...), then how it was measured; the shape every task's `measure` writes."""
    return {**values, **reference, "method": method}


def checkpoint_of(cls: type[TrainTask], folder: str | Path) -> Checkpoint:
    """The checkpoint in `folder`, which must be one of task `cls`'s (a clear stop, not a shape error later)."""
    ckpt = load_checkpoint(folder)
    if ckpt.card.get("task") != cls.name:
        raise SystemExit(f"{folder} is a {ckpt.card.get('task')!r} checkpoint, not {cls.name}")
    return ckpt


def evaluate(cls: type[TrainTask], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Measure `args.checkpoint` with the task's `measure` and return its metric rows (the caller writes
    them into the card); the preview and the other card fields are written here."""
    t0 = time.time()
    found = cls.measure(checkpoint_of(cls, args.checkpoint), args)
    preview = getattr(args, "preview", None)
    if preview and found.preview is not None:
        found.preview.save(preview)
        print(f"{found.preview_note} -> {preview}", file=sys.stderr)
    if found.card and not getattr(args, "dry_run", False):
        update_card(args.checkpoint, **found.card)
    for line in found.notes:
        print(line, file=sys.stderr)
    print(f"evaluated in {time.time() - t0:.0f} s", file=sys.stderr)
    return found.metrics
