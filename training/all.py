"""`python -m training all --data-root DIR`: train every model of the app in turn, ship each checkpoint
folder where the app finds it, measure it, and end with a table of what was trained and how it scored.

Each task finds its data under DIR by its own layout (`TrainTask.data_layout`: the first path that exists,
else a folder named after the task; the shared datasets' own names are accepted, so
`--data-root ../shared/datasets` works as it is):

    faces/            face photos (or faces/train/)                           -> faces
    edges2shoes/      edges|photo pairs (or edges2shoes_utzap/, or a train/   -> edges2photo
                      folder inside either)
    sr_train/         high-resolution photos                                  -> superres psnr, then gan
    music/            the JSB chorales (Jsb16thSeparated.json)                -> music
    anomaly/<category>/  one MVTec-style folder per category                  -> anomaly, one run each

Every item is one ordinary run of `python -m training <task>` (the same trainer, options and presets)
in `<out-root>/<task>-<variant>/`; its best evaluated step (or its last, `--ship last`, or where the
run keeps no best) is written to `<export-root>/<task>/<variant>/`, the folder the app loads, and
`python -m training evaluate <task>` writes its metrics into that card. A variant that starts from
another's checkpoint (`TrainTask.starts_from`: superres gan from psnr) is trained after it, from its
shipped folder. `<out-root>/all.json` records each item; with `--resume` a finished item is skipped
and a half-finished run continues from its state.pt. Under `torchrun` every run is data-parallel
(training/distributed.py); rank 0 alone ships and evaluates.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from gandemo.checkpoint import CheckpointError, load_checkpoint, read_card, save_checkpoint
from gandemo.tasks import TASKS
from training import distributed
from training.run import parse_train_args, train_main
from training.task import portable_card, task_class, trainable_tasks

MANIFEST = "all.json"
SUMMARY = "all.md"


@dataclass
class Item:
    task: str
    variant: str
    data: Path | None  # None: nothing to train it on (`note` says why)
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.task}/{self.variant}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m training all", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-root", type=Path, required=True, help="the folder holding every task's data (see above)")
    p.add_argument("--preset", choices=["cpu", "gpu"], default="cpu", help="every task's preset")
    p.add_argument("--only", default="", help="comma list of tasks or task/variant to train (default: all)")
    p.add_argument("--skip", default="", help="comma list of tasks or task/variant to leave out")
    p.add_argument("--resume", action="store_true", help="skip finished items, continue half-finished runs")
    p.add_argument("--out-root", type=Path, default=Path("runs"), help="run folders: <out-root>/<task>-<variant>")
    p.add_argument(
        "--export-root",
        type=Path,
        default=Path("assets/checkpoints"),
        help="checkpoint folders: <export-root>/<task>/<variant> (the app's, by default)",
    )
    p.add_argument(
        "--ship",
        choices=["best", "last"],
        default="best",
        help="best: the best evaluated step where the run kept one (<out>/best), else the last; last: the last",
    )
    p.add_argument("--no-evaluate", dest="evaluate", action="store_false", help="ship without measuring")
    p.add_argument("--steps", type=int, help="steps of every run (default: each preset's; small for a smoke run)")
    p.add_argument("--limit", type=int, help="train on the first N items of each data set (quick trials)")
    p.add_argument("--batch-size", type=int, help="every run's global batch (default: each preset's)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm bars")
    p.add_argument(
        "--task-args",
        action="append",
        default=[],
        metavar="TASK=OPTIONS",
        help='more options for one task\'s trainer, e.g. "faces=--ngf 32" or "superres/gan=--steps 500" (repeatable)',
    )
    p.add_argument(
        "--eval-args",
        action="append",
        default=[],
        metavar="TASK=OPTIONS",
        help='more options for one task\'s evaluation, e.g. "faces=--n 500" (repeatable)',
    )
    return p


# ---- what to train -----------------------------------------------------------------------------------
# Each task says where its data is and which runs it makes of it (`TrainTask.data_layout`, `find_data`,
# `planned_runs`): a new task needs no line here.
def find_data(root: Path, task: str) -> Path | None:
    return task_class(task).find_data(root)


def ordered_variants(task: str) -> list[str]:
    """The catalogue's variants, each after the one it starts from (superres: psnr, then gan)."""
    return task_class(task).ordered_variants()


def plan(root: Path) -> list[Item]:
    """Every trainable task's runs, in the catalogue's order, with their data (or why not)."""
    return [
        Item(task, variant, data, note)
        for task in trainable_tasks()
        for variant, data, note in task_class(task).planned_runs(root)
    ]


def selected(item: Item, only: set[str], skip: set[str]) -> bool:
    names = {item.task, item.key}
    return (not only or bool(names & only)) and not names & skip


def options_for(item: Item, pairs: list[str]) -> list[str]:
    """The options of `--task-args` / `--eval-args` that apply to the item (task, then task/variant)."""
    out: list[str] = []
    for scope in (item.task, item.key):
        for pair in pairs:
            name, sep, options = pair.partition("=")
            if not sep:
                raise SystemExit(f"{pair!r}: expected TASK=OPTIONS, e.g. 'faces=--ngf 32'")
            if name.strip() == scope:
                out += shlex.split(options)
    return out


# ---- the manifest (rank 0 writes, everyone reads) -----------------------------------------------
def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {"items": {}}


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, root / MANIFEST)


def saved_step(run: Path) -> int | None:
    """The step a run folder's state.pt holds (None: no state)."""
    path = run / "state.pt"
    if not path.is_file():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def install(src: Path, dst: Path) -> None:
    """Write the checkpoint folder `src` to `dst` through the one atomic writer (save_checkpoint): a
    kill at any moment leaves the old folder or the new one. The weights are stored back in the
    dtype they were stored in, so they are the same bytes."""
    ckpt = load_checkpoint(src)
    card = {k: v for k, v in ckpt.card.items() if k not in ("format_version", "storage_dtype", "sha256")}
    card = portable_card(card)  # a run exported by older code may hold absolute paths
    stored = ckpt.card.get("storage_dtype", "float16")
    pictures = {p.name: Image.open(p) for p in sorted(src.glob("*.png")) if p.name != "samples.png"}
    samples = Image.open(src / "samples.png") if (src / "samples.png").is_file() else None
    save_checkpoint(
        dst,
        ckpt.modules,
        card,
        samples=samples,
        pictures=pictures,
        storage_dtype=None if stored == "native" else getattr(torch, stored),
    )


# ---- one item ----------------------------------------------------------------------------------
def train_argv(item: Item, args: argparse.Namespace, run: Path) -> list[str]:
    argv = ["--data", str(item.data), "--out", str(run), "--preset", args.preset, "--variant", item.variant]
    for flag, value in (("--steps", args.steps), ("--limit", args.limit), ("--batch-size", args.batch_size)):
        if value is not None:
            argv += [flag, str(value)]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    if not args.progress:
        argv.append("--no-progress")
    base = task_class(item.task).starts_from.get(item.variant)
    if base:
        argv += ["--init", str(args.export_root / item.task / base)]
    return argv + options_for(item, args.task_args)


def run_item(item: Item, args: argparse.Namespace, record: dict[str, Any]) -> bool:
    """Train (or continue), ship and evaluate one item; `record` (the manifest's entry) says how it
    went. True when the run was stopped before its last step (SIGTERM, Ctrl-C): then `all` stops too."""
    run = args.out_root / f"{item.task}-{item.variant}"
    export = args.export_root / item.task / item.variant
    argv = train_argv(item, args, run)
    started = saved_step(run)
    if started is not None:
        argv.append("--resume")
    record.update(status="training", run=str(run), checkpoint=str(export), command=_command(item.task, argv))
    t0 = time.monotonic()
    try:
        code = train_main(item.task, argv)
    except (SystemExit, Exception) as exc:  # a task that cannot train must not stop the others
        distributed.barrier()  # the one train_main ends with, which this process skipped
        code, record["error"] = 1, str(exc) or type(exc).__name__
    else:
        record.pop("error", None)
        if code == 3:
            record["error"] = "diverged (a NaN/inf loss): see the run's log; the last good state is kept"
    if code != 0:
        record.update(status="failed", seconds=record.get("seconds", 0) + time.monotonic() - t0)
        return False
    target = parse_train_args(task_class(item.task), argv).steps
    reached = distributed.broadcast(saved_step(run) if distributed.is_main() else None)
    if reached is None or reached < target:  # asked to stop: the state is saved, --resume continues
        record.update(status="stopped", seconds=record.get("seconds", 0) + time.monotonic() - t0)
        record["error"] = f"stopped at step {reached} of {target}; continue with --resume"
        return True
    if distributed.is_main():
        ship_and_evaluate(item, args, record, run, export)
        record["target_steps"] = target
    record["seconds"] = record.get("seconds", 0) + time.monotonic() - t0
    return False


def ship_and_evaluate(item: Item, args: argparse.Namespace, record: dict[str, Any], run: Path, export: Path) -> None:
    """Rank 0's part: the chosen step to the export root, then its metrics into the card. A failure
    is recorded, not raised: the other processes are waiting, and the other tasks still train."""
    from training.evaluate import main as evaluate_main

    source = run / "best" if args.ship == "best" and (run / "best").is_dir() else run / "checkpoint"
    try:
        install(source, export)
    except (CheckpointError, OSError) as exc:
        record.update(status="failed", error=f"shipping {source}: {exc}")
        return
    record.update(status="shipped", shipped=f"{source.name} (step {read_card(source)['training']['steps']})")
    if not args.evaluate:
        record.update(status="done", evaluated=False)
        return
    eval_argv = [item.task, "--checkpoint", str(export), "--data", str(item.data)]
    eval_argv += (["--threads", str(args.threads)] if args.threads else []) + options_for(item, args.eval_args)
    try:
        evaluate_main(eval_argv)
        record.update(status="done", evaluated=True)
    except (SystemExit, Exception) as exc:
        record.update(status="failed", error=f"evaluation: {exc or type(exc).__name__}")


def _command(task: str, argv: list[str]) -> str:
    return "python -m training " + shlex.join([task, *argv])


def finished(item: Item, args: argparse.Namespace, record: dict[str, Any] | None) -> bool:
    """Done earlier with as many steps as this command asks for, and its checkpoint still there."""
    if not record or record.get("status") != "done" or (args.evaluate and not record.get("evaluated")):
        return False
    run = args.out_root / f"{item.task}-{item.variant}"
    target = parse_train_args(task_class(item.task), train_argv(item, args, run)).steps
    try:
        read_card(args.export_root / item.task / item.variant)
    except CheckpointError:
        return False
    return (saved_step(run) or 0) >= target


# ---- the table ---------------------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def table(items: list[Item], manifest: dict[str, Any], export_root: Path) -> str:
    """One row per metric of each card: what was trained, its steps, its training time (the card's)
    and this command's wall time (training, export and evaluation), then the metric."""
    rows = ["| task/variant | status | steps | training | wall | metric | model | baseline |", "|" + "---|" * 8]
    for item in items:
        record = manifest["items"].get(item.key, {})
        status = record.get("status") or ("skipped: " + item.note if item.note else "not run")
        if record.get("error"):
            status += f": {record['error']}"
        card: dict[str, Any] = {}
        if record.get("status") in ("shipped", "done", "failed"):
            try:
                card = read_card(export_root / item.task / item.variant)
            except CheckpointError:
                card = {}
        training = card.get("training", {})
        steps = f"{training['steps']:,}" if "steps" in training else "-"
        head = [
            item.key,
            status.replace("|", "/"),
            steps,
            duration(training.get("wall_time_s")),
            duration(record.get("seconds")),
        ]
        metrics = [(k, v) for k, v in card.get("metrics", {}).items() if isinstance(v, dict)]
        if not metrics:
            rows.append("| " + " | ".join([*head, "-", "-", "-"]) + " |")
        for i, (name, value) in enumerate(metrics):
            cells = head if i == 0 else [""] * len(head)
            rows.append(
                "| " + " | ".join([*cells, name, _cell(value.get("model")), _cell(value.get("baseline"))]) + " |"
            )
    return "\n".join(rows)


def _cell(value: Any) -> str:
    return "-" if value is None else str(value).replace("|", "/")


# ---- the command -------------------------------------------------------------------------------
def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not args.data_root.is_dir():
        raise SystemExit(f"--data-root {args.data_root} is not a folder")
    cuda = args.preset == "gpu" and torch.cuda.is_available()
    distributed.init(cuda)  # under torchrun: one process group for every run below
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    known = {*trainable_tasks(), *(f"{t}/{v}" for t in trainable_tasks() for v in TASKS[t].variants)}
    unknown = sorted((only | skip) - known)
    if unknown:
        raise SystemExit(f"--only/--skip: unknown {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    items = [i for i in plan(args.data_root) if selected(i, only, skip)]
    todo = [i for i in items if i.data is not None]
    if not args.resume:
        taken = [str(run) for i in todo if ((run := args.out_root / f"{i.task}-{i.variant}") / "state.pt").is_file()]
        if taken:
            raise SystemExit(
                f"these runs exist already: {', '.join(taken)}; pass --resume to continue them, or another --out-root"
            )
    main_rank = distributed.is_main()
    manifest = read_manifest(args.out_root)
    manifest.update(
        data_root=str(args.data_root), preset=args.preset, command="python -m training all " + shlex.join(argv)
    )
    for item in todo:
        record = manifest["items"].setdefault(item.key, {})
        # rank 0 decides for everyone (a node without the shared run folder would decide otherwise)
        skip_it = distributed.broadcast(args.resume and finished(item, args, record))
        if skip_it:
            if main_rank:
                print(f"== {item.key}: finished earlier, skipped", file=sys.stderr, flush=True)
            continue
        if main_rank:
            print(f"== {item.key}: training on {item.data}", file=sys.stderr, flush=True)
        stopped = run_item(item, args, record)
        if main_rank:
            write_manifest(args.out_root, manifest)
        distributed.barrier()
        if stopped:
            break
    if not main_rank:
        return 0
    write_manifest(args.out_root, manifest)
    summary = table(items, manifest, args.export_root)
    (args.out_root / SUMMARY).write_text(summary + "\n")
    print(summary)
    failed = [i.key for i in todo if manifest["items"].get(i.key, {}).get("status") != "done"]
    if failed:
        print(f"not finished: {', '.join(failed)} (see {args.out_root / MANIFEST})", file=sys.stderr)
    return 1 if failed else 0
