"""`python -m training evaluate <task> --checkpoint DIR --data DIR [task options]`: measure a
checkpoint on held-out data against the task's simple baseline and write the numbers into its card.

What is measured, and against what, is the task's own business (`TrainTask.evaluate_checkpoint`
in training/<task>.py); this file parses the shared options and writes the card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from gandemo.checkpoint import update_card
from training.task import portable_card, task_class, trainable_tasks


def main(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("task", nargs="?", choices=trainable_tasks())
    task = pre.parse_known_args(argv)[0].task
    p = argparse.ArgumentParser(
        prog="python -m training evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("task", choices=trainable_tasks())
    p.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint folder to measure")
    p.add_argument("--data", type=Path, required=True, help="the data the model was trained from (held-out split)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    p.add_argument("--dry-run", action="store_true", help="print the metrics, leave the card alone")
    cls = task_class(task) if task else None
    if cls is not None:
        cls.add_evaluate_arguments(p)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    measured = cls.evaluate_checkpoint(args)
    table = {name: {k: v for k, v in row.items() if k != "method"} for name, row in measured.items()}
    print(json.dumps(table, indent=2))
    if not args.dry_run:
        update_card(args.checkpoint, metrics=portable_card(measured))  # no machine's absolute paths in a card
        print(f"metrics written to {args.checkpoint}/card.json", file=sys.stderr)
    return 0
