"""One training run from its command line: `python -m training <task> --data DIR --out DIR ...`.

The options every task shares are defined here, once; a task adds its own on its `TrainTask`
class (`add_arguments`) and gives the values of both kinds per preset (`presets`). An option the
user does not give takes the preset's value. `train_main` parses a command line and runs the loop:
the command's dispatcher (`training.cli`) and `python -m training all` (`training.all`) both call it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from gandemo.tasks import TASKS
from training.task import TrainTask, portable_command, repo_path, task_class


def train_parser(cls: type[TrainTask]) -> argparse.ArgumentParser:
    spec = TASKS[cls.name]
    module_doc = sys.modules[cls.__module__].__doc__
    p = argparse.ArgumentParser(
        prog=f"python -m training {cls.name}",
        description=module_doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = p.add_argument_group("run")
    run.add_argument("--data", type=Path, required=True, help=f"training data: {spec.data_hint}")
    run.add_argument("--out", type=Path, required=True, help="run folder (state, log, samples, checkpoint)")
    run.add_argument(
        "--preset",
        choices=sorted(cls.presets),
        default="cpu",
        help="cpu: sized for 2 cores; gpu: the paper-sized run on one CUDA device",
    )
    run.add_argument("--variant", choices=spec.variants, default=spec.default_variant, help="which checkpoint")
    run.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    run.add_argument("--export", type=Path, help="checkpoint folder to write at the end (default: <out>/checkpoint)")
    run.add_argument("--export-only", action="store_true", help="export the saved run state now, without training")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    run.add_argument("--amp", choices=["auto", "off"], default="auto", help=amp_help())
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bar")
    run.add_argument(
        "--override",
        type=option_names,
        action="extend",
        default=[],
        metavar="OPT[,OPT]",
        help="with --resume: let these options differ from the run's saved configuration (e.g. lr,batch_size or "
        "preset); the change is recorded in the run's sessions and card. Without it a changed option stops the "
        f"resume. Free to change on resume: {', '.join(sorted(RESUME_FREE))}",
    )
    shared = p.add_argument_group("shared training options (default: the preset's value)")
    shared.add_argument("--steps", type=int, help="total steps of the run")
    shared.add_argument("--batch-size", type=int, help="items per step")
    shared.add_argument("--lr", type=float, help="learning rate")
    shared.add_argument(
        "--lr-decay-start",
        type=float,
        help="fraction of --steps after which the learning rate falls linearly to 0 (pix2pix); default constant",
    )
    shared.add_argument("--ema-decay", type=float, help="per-step decay of the EMA copy (after its ramp)")
    shared.add_argument("--limit", type=int, help="use only the first N training items (quick trials)")
    shared.add_argument("--save-every", type=float, default=180.0, help="seconds between run-state saves")
    shared.add_argument("--sample-every", type=int, default=250, help="steps between sample grids")
    shared.add_argument(
        "--eval-every", type=int, default=0, help="steps between in-run evaluations; best -> <out>/best"
    )
    cls.add_arguments(p)
    return p


# Parsed options that steer this process, not what the run trains: never part of the run's configuration.
NOT_CONFIG = frozenset({"out", "resume", "export", "export_only", "override"})
# Options a resume may change without --override: how long and how often (steps, saves, samples, in-run
# evaluations), this machine's threads and precision (each session records its own), the progress bar, and
# the starting checkpoint (--init: read at step 0 only; a resume's weights come from its state).
RESUME_FREE = frozenset({"steps", "threads", "progress", "save_every", "sample_every", "eval_every", "amp", "init"})


def option_names(text: str) -> list[str]:
    """ "lr,batch-size" -> ["lr", "batch_size"]: option names as `--override` takes them (dashes or not)."""
    return [name.strip().lstrip("-").replace("-", "_") for name in text.split(",") if name.strip()]


def resolved_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run's one resolved configuration: every option's value after the preset and the defaults
    (`parse_train_args`), as plain JSON values (paths as `repo_path` writes them, tuples as lists). Saved
    in state.pt, checked on --resume (`training.loop.config_changes`) and shown in the card."""
    return {k: _plain(v) for k, v in sorted(vars(args).items()) if k not in NOT_CONFIG}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return repo_path(value)  # the same run from another checkout or machine reads the same
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def amp_help() -> str:
    return (
        "auto: bf16/fp16 autocast where the device computes it natively (CUDA; CPUs with AVX512-BF16 or AMX), "
        "fp32 elsewhere; channels_last always"
    )


def parse_train_args(cls: type[TrainTask], argv: list[str]) -> argparse.Namespace:
    """Parse a training command line; options left out take the chosen preset's values."""
    parser = train_parser(cls)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", choices=sorted(cls.presets), default="cpu")
    pre.add_argument("--variant", default=TASKS[cls.name].default_variant)
    chosen = pre.parse_known_args(argv)[0]
    preset_name = chosen.preset
    preset = cls.presets[preset_name] | cls.variant_presets.get(preset_name, {}).get(chosen.variant, {})
    known = {a.dest for a in parser._actions}
    unknown = set(preset) - known
    if unknown:
        raise ValueError(f"{cls.__name__}.presets[{preset_name!r}] sets unknown options {sorted(unknown)}")
    parser.set_defaults(**preset)
    return parser.parse_args(argv)


def train_main(name: str, argv: list[str]) -> int:
    from training import distributed
    from training.loop import RunConfig, Trainer, TrainingDiverged

    cls = task_class(name)
    args = parse_train_args(cls, argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.preset == "gpu" and torch.cuda.is_available()
    if args.preset == "gpu" and not cuda:
        print("preset gpu: no CUDA device found, training on the CPU", file=sys.stderr)
    # under torchrun: join the process group; this process trains on cuda:LOCAL_RANK or the CPU
    device = distributed.init(cuda)
    cfg = RunConfig(
        out=args.out,
        steps=args.steps,
        preset=args.preset,
        device=device,
        resume=args.resume or args.export_only,
        seed=args.seed,
        amp=args.amp == "auto",
        save_every_s=args.save_every,
        sample_every=args.sample_every,
        eval_every=args.eval_every,
        lr_decay_start=args.lr_decay_start,
        progress=args.progress,
        # recorded in the card: with paths relative to the repository, not where this machine keeps them
        command=portable_command("python -m training " + shlex.join([name, *argv])),
        config=resolved_config(args),
        overrides=tuple(args.override),
        resume_free=RESUME_FREE | cls.resume_free,
    )
    task = cls(args, device)
    trainer = Trainer(task, cfg)
    if args.export_only:
        trainer.prepare()
        if trainer.main:
            trainer.export(args.export)
        distributed.barrier()
        return 0
    try:
        trainer.train()
    except TrainingDiverged as exc:
        if trainer.main:
            print(f"training stopped: {exc}", file=sys.stderr)
        return 3
    if trainer.finished and trainer.main:
        trainer.export(args.export)
    distributed.barrier()  # the other processes wait for rank 0's export
    return 0
