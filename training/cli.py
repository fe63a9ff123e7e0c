"""`python -m training <task> | evaluate <task> | all ...`: the command's dispatcher.

A task's run is `training.run` (its shared options, parsed once, and the loop), `evaluate` is
`training.evaluate`, `all` is `training.all`; each of them imports nothing from here.
"""

from __future__ import annotations

import sys

from training import distributed
from training.run import train_main
from training.task import trainable_tasks

USAGE = (
    "usage: python -m training <task> --data DIR --out DIR [--preset cpu|gpu] [--variant V] [--steps N] [--resume]\n"
    "       python -m training evaluate <task> --checkpoint DIR --data DIR\n"
    "       python -m training all --data-root DIR [--preset cpu|gpu] [--only T,..] [--skip T,..] [--resume]\n"
    "       torchrun --nproc_per_node=N -m training <task>|all ...   (DistributedDataParallel)\n"
    "tasks: {tasks}  (add -h after a task for its options)"
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    usage = USAGE.format(tasks=", ".join(trainable_tasks()))
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in ("evaluate", "all", *trainable_tasks()):
        print(f"unknown task {name!r}\n{usage}", file=sys.stderr)
        return 2
    try:
        if name == "evaluate":
            from training.evaluate import main as evaluate_main

            return evaluate_main(rest)
        if name == "all":
            from training.all import main as all_main

            return all_main(rest)
        return train_main(name, rest)
    finally:
        # under torchrun: leave the process group that train_main / all joined, also after an error
        # (a group left to the interpreter's exit makes NCCL warn, and may hang the exit)
        distributed.shutdown()
