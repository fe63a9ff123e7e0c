"""Training throughput (samples/s) of every trainer at the cpu preset, one process against
DistributedDataParallel with 2 CPU processes for the same global batch, in one run.

For each task/variant (faces, edges2photo, superres psnr and gan, music, anomaly stage 1) the trainer
is built exactly as `python -m training <task> --preset cpu` builds it, on small synthetic data of the
task's layout, and the loop's own step (`Trainer.train_step`: next batch, this process's slice of it,
the task's step, the losses averaged over the processes, then the EMA update) is timed after warm-up:
    1 process          with --threads torch threads
    N DDP processes    gloo, --threads / N threads each, each taking 1/N of the same global batch
                       (BatchNorm over the global batch, as training runs)
    N DDP, local BN    the same with per-process BatchNorm: what the global BatchNorm costs
samples/s = global batch x steps / seconds (music: a step also draws 4 more critic batches).
The machine should be otherwise idle: the table prints the load average when the run started.

    .venv/bin/python benchmarks/training_throughput.py [--steps 8] [--warmup 2] [--threads 2]
        [--processes 2] [--tasks faces,superres/gan] [--batch-size N] [--no-local-bn]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

from benchmarks._data import synthetic_images  # noqa: E402
from benchmarks._server import task_data  # noqa: E402
from gandemo.tasks import TASKS  # noqa: E402
from training import distributed  # noqa: E402
from training.loop import RunConfig, Trainer  # noqa: E402
from training.run import parse_train_args  # noqa: E402
from training.task import task_class, trainable_tasks  # noqa: E402


def items(selection: str) -> list[tuple[str, str]]:
    """(task, variant) to time: every trainable task's variants, anomaly once (one category)."""
    out = []
    for task in trainable_tasks():
        variants = TASKS[task].variants[:1] if task == "anomaly" else sorted(TASKS[task].variants, reverse=True)
        out += [(task, v) for v in variants]
    chosen = {s.strip() for s in selection.split(",") if s.strip()}
    return [(t, v) for t, v in out if not chosen or t in chosen or f"{t}/{v}" in chosen]


def build(task: str, variant: str, data: Path, out: Path, threads: int, batch_size: int | None) -> tuple[Trainer, int]:
    """The task's trainer as `python -m training <task> --preset cpu` builds it (no in-run evaluation),
    and its global batch."""
    cls = task_class(task)
    argv = ["--data", str(data), "--out", str(out), "--variant", variant, "--no-progress", "--threads", str(threads)]
    if batch_size:
        argv += ["--batch-size", str(batch_size)]
    args = parse_train_args(cls, argv)
    args.eval_every = 0
    torch.set_num_threads(threads)
    trainer = Trainer(
        cls(args, torch.device("cpu")),
        RunConfig(out=out, steps=args.steps, preset="cpu", device=torch.device("cpu"), amp=True, progress=False),
    )
    for m in trainer.task.models.values():
        m.train()
    return trainer, args.batch_size


def timed_steps(trainer: Trainer, warmup: int, steps: int) -> list[float]:
    """Seconds of each timed step (the loop's step and EMA update); every process steps in lockstep."""
    times = []
    for i in range(warmup + steps):
        distributed.barrier()  # start together: a step's time is the slowest process's
        t0 = time.perf_counter()
        trainer.train_step()
        if trainer.ema:
            trainer.ema.update(trainer.task.models[trainer.task.ema_of])
        distributed.barrier()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def _worker(rank: int, world: int, port: int, job: dict, result: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    if job["local_bn"]:
        distributed.make_global = lambda module: 0  # per-process BatchNorm statistics
    distributed.init(cuda=False)
    try:
        trainer, _ = build(
            job["task"],
            job["variant"],
            Path(job["data"]),
            Path(job["out"]) / f"rank{rank}",
            job["threads"],
            job["batch_size"],
        )
        times = timed_steps(trainer, job["warmup"], job["steps"])
    finally:
        distributed.shutdown()
    if rank == 0:
        torch.save(times, result)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_seconds(world: int, job: dict, tmp: Path) -> float:
    result = tmp / "ddp.pt"
    mp.spawn(_worker, args=(world, free_port(), job, str(result)), nprocs=world)
    return statistics.median(torch.load(result, weights_only=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="timed steps per set-up (after --warmup steps)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (oneDNN picks its kernels)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores in all (default: all)")
    p.add_argument("--processes", type=int, default=2, help="DDP processes (the threads are shared out)")
    p.add_argument("--tasks", default="", help="comma list of tasks or task/variant (default: every trainer)")
    p.add_argument("--batch-size", type=int, help="global batch (default: each preset's); a smoke run uses a small one")
    p.add_argument("--no-local-bn", dest="local_bn", action="store_false", help="skip the per-process-BatchNorm run")
    args = p.parse_args()
    world, threads = args.processes, args.threads
    per = max(1, threads // world)
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        images = synthetic_images(tmp / "images")
        for task, variant in items(args.tasks):
            data = task_data(task, images)
            try:
                trainer, batch = build(task, variant, data, tmp / "one", threads, args.batch_size)
            except Exception as exc:  # e.g. superres gan without the TF-Inception package
                rows.append((f"{task}/{variant}", "-", f"not timed: {exc}", "", "", ""))
                continue
            one = statistics.median(timed_steps(trainer, args.warmup, args.steps))
            del trainer
            job = {
                "task": task,
                "variant": variant,
                "data": str(data),
                "out": str(tmp / "ddp"),
                "threads": per,
                "batch_size": args.batch_size,
                "warmup": args.warmup,
                "steps": args.steps,
                "local_bn": False,
            }
            ddp = ddp_seconds(world, job, tmp)
            local = ddp_seconds(world, job | {"local_bn": True}, tmp) if args.local_bn else None
            rows.append(
                (
                    f"{task}/{variant}",
                    str(batch),
                    f"{batch / one:.1f} ({one:.3f} s/step)",
                    f"{batch / ddp:.1f} ({ddp:.3f} s/step)",
                    f"{one / ddp:.2f}×",
                    f"{batch / local:.1f}" if local else "-",
                )
            )
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    print(f"\nTraining throughput, cpu preset — {cpu}, {threads} thread(s) in all; torch {torch.__version__}")
    print(
        f"median of {args.steps} steps after {args.warmup} warm-up; load average at start {load:.2f} (should be ~0)\n"
    )
    columns = [
        "task/variant",
        "global batch",
        f"1 process × {threads} threads: samples/s",
        f"{world} DDP processes × {per} thread(s): samples/s",
        "DDP speed-up",
        f"{world} DDP, per-process BatchNorm: samples/s",
    ]
    print("| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
