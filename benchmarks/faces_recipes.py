"""Seconds per faces training step of several recipes, side by side under the same load.

Each recipe is a `python -m training faces` command line (the shipped `--preset cpu`, `--preset v3`,
or any options after it); its trainer is built as that command builds it, on synthetic 64x64 images,
and the loop's own step (`Trainer.train_step` and the EMA update) is timed. The recipes take turns,
one step each per round, so that a change in the machine's load (other runs on the same cores) hits
every recipe alike; the table gives each one's median and its ratio to the first recipe. Run it under
`nice` with one thread when other jobs hold the cores, and read the ratios: a busy core inflates every
median, not the ratios.

    .venv/bin/python benchmarks/faces_recipes.py [--rounds 12] [--warmup 2] [--threads 1]
        [--recipe "shipped=--preset cpu"] [--recipe "v3=--preset v3"] ...
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks._data import synthetic_images  # noqa: E402
from training.loop import RunConfig, Trainer  # noqa: E402
from training.run import parse_train_args  # noqa: E402
from training.task import task_class  # noqa: E402

DEFAULT_RECIPES = (
    "shipped=--preset cpu",
    "v3=--preset v3",
    "cpu, D at full width=--preset cpu --ndf 64",
    "R1 alternative=--preset v3 --loss nonsaturating --d-norm none --r1 0.05 --r1-every 16",
)


def build(options: str, data: Path, out: Path, threads: int) -> Trainer:
    """The faces trainer as `python -m training faces --data DATA --out OUT <options>` builds it."""
    argv = ["--data", str(data), "--out", str(out), "--no-progress", "--threads", str(threads), *shlex.split(options)]
    args = parse_train_args(task_class("faces"), argv)
    trainer = Trainer(
        task_class("faces")(args, torch.device("cpu")),
        RunConfig(out=out, steps=args.steps, preset=args.preset, device=torch.device("cpu"), amp=args.amp == "auto"),
    )
    for m in trainer.task.models.values():
        m.train()
    return trainer


def one_step(trainer: Trainer) -> tuple[float, dict[str, float]]:
    t0 = time.perf_counter()
    losses = trainer.train_step()
    if trainer.ema:
        trainer.ema.update(trainer.task.models[trainer.task.ema_of])
    return time.perf_counter() - t0, losses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=12, help="timed steps per recipe")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per recipe first")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--recipe", action="append", help='"NAME=OPTIONS" (repeatable); default: shipped, v3 and two more')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipes = dict(r.split("=", 1) for r in (args.recipe or DEFAULT_RECIPES))
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_images(Path(tmp) / "images", n=256, size=64)
        trainers = {
            name: build(opts, data, Path(tmp) / f"run{i}", args.threads)
            for i, (name, opts) in enumerate(recipes.items())
        }
        times: dict[str, list[float]] = {name: [] for name in trainers}
        last: dict[str, dict[str, float]] = {}
        for r in range(args.warmup + args.rounds):
            for name, trainer in trainers.items():  # one step each per round: load changes hit all alike
                seconds, last[name] = one_step(trainer)
                if r >= args.warmup:
                    times[name].append(seconds)
    load = os.getloadavg()[0]
    first = statistics.median(next(iter(times.values())))
    print(
        f"faces training step, batch as each recipe sets it, {args.threads} thread(s), median of {args.rounds} "
        f"interleaved steps after {args.warmup} warm-up; load average {load:.1f} on {os.cpu_count()} cores"
    )
    print("| recipe | options | s/step | vs first | last losses |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        losses = ", ".join(f"{k} {v:.3f}" for k, v in last[name].items())
        print(f"| {name} | `{recipes[name]}` | {med:.3f} | {med / first:.2f}x | {losses} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
