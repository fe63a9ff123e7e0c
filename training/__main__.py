"""`python -m training <task> --data DIR --out DIR --preset cpu|gpu [--steps N] [--resume]`
and `python -m training evaluate <task> --checkpoint DIR --data DIR`.

Each task module provides `PRESETS`, `add_arguments(parser)` and a `TrainTask` subclass; this file
only parses the command line and hands the task to the shared loop.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

import torch

# task name -> "module:TrainTask subclass"; later tasks add one line each
TASKS = {
    "faces": "training.faces:FacesTask",
}


def _task_class(name: str) -> type:
    module, _, cls = TASKS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def _train_parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(TASKS[name].partition(":")[0])
    p = argparse.ArgumentParser(prog=f"python -m training {name}", description=module.__doc__)
    p.add_argument("--data", type=Path, required=True, help="folder of training data")
    p.add_argument("--out", type=Path, required=True, help="run folder (state, log, samples, checkpoint)")
    p.add_argument(
        "--preset",
        choices=sorted(module.PRESETS),
        default="cpu",
        help="cpu: about two hours on 2 cores; gpu: the paper-sized run on CUDA with AMP",
    )
    p.add_argument("--steps", type=int, help="total steps of the run (overrides the preset)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    p.add_argument("--save-every", type=float, default=180.0, help="seconds between run-state saves")
    p.add_argument("--sample-every", type=int, default=250, help="steps between sample grids")
    p.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="steps between in-run evaluations (e.g. FID); the best goes to <out>/best",
    )
    p.add_argument(
        "--amp",
        choices=["auto", "off"],
        default="auto",
        help="auto: bf16/fp16 autocast where the device computes it natively (CUDA, AVX512-BF16/AMX CPUs), else fp32",
    )
    p.add_argument("--export", type=Path, help="checkpoint folder to write at the end (default: <out>/checkpoint)")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="export the saved run state as a checkpoint now, without training",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    module.add_arguments(p)
    return p


def train_main(name: str, argv: list[str]) -> int:
    from training.loop import RunConfig, Trainer, TrainingDiverged

    args = _train_parser(name).parse_args(argv)
    module = importlib.import_module(TASKS[name].partition(":")[0])
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.preset == "gpu" and torch.cuda.is_available()
    if args.preset == "gpu" and not cuda:
        print("preset gpu: no CUDA device found, training on the CPU", file=sys.stderr)
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or module.PRESETS[args.preset]["steps"]
    cfg = RunConfig(
        out=args.out,
        steps=steps,
        preset=args.preset,
        device=device,
        resume=args.resume or args.export_only,
        seed=args.seed,
        amp=args.amp == "auto",
        eval_every=args.eval_every,
        save_every_s=args.save_every,
        sample_every=args.sample_every,
        progress=args.progress,
        command="python -m training " + shlex.join([name, *argv]),
    )
    task = _task_class(name)(args, device)
    trainer = Trainer(task, cfg)
    if args.export_only:
        trainer.prepare()
        trainer.export(args.export)
        return 0
    try:
        trainer.train()
    except TrainingDiverged as exc:
        print(f"training stopped: {exc}", file=sys.stderr)
        return 3
    if trainer.finished:
        trainer.export(args.export)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = (
        "usage: python -m training <task> --data DIR --out DIR --preset cpu|gpu [--steps N] [--resume]\n"
        "       python -m training evaluate <task> --checkpoint DIR --data DIR\n"
        f"tasks: {', '.join(TASKS)}  (add -h after a task for its options)"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    name, rest = argv[0], argv[1:]
    if name == "evaluate":
        from training.evaluate import main as evaluate_main

        return evaluate_main(rest)
    if name not in TASKS:
        print(f"unknown task {name!r}\n{usage}", file=sys.stderr)
        return 2
    return train_main(name, rest)


if __name__ == "__main__":
    sys.exit(main())
