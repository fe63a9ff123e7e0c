"""Training-step and inference speed of every trainer, plain fp32 against the loop's fast path.

For each task with a trainer (training/<name>.py), builds its `TrainTask` with the CPU preset on
a small folder of synthetic images and times full training steps (every player, optimiser and
EMA update) in three numeric set-ups, all in this one run:
  fp32 NCHW            what a plain PyTorch loop does
  fp32 channels_last   the fast path on CPUs without native bf16 (e.g. AVX2-only AMD EPYC)
  bf16 + channels_last the fast path on CPUs with AVX512-BF16/AMX (timed only where native,
                       or with --try-bf16: emulated bf16 is 20-40x slower, so it is never chosen)
and the faces app's `generate_faces` (16 and 64 faces) in NCHW and channels_last. Prints a table.

    .venv/bin/python benchmarks/train_speed.py [--steps 8] [--threads 2] [--try-bf16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from benchmarks._data import synthetic_images  # noqa: E402
from benchmarks._server import step_seconds, task_data  # noqa: E402
from training import loop  # noqa: E402
from training.task import trainable_tasks  # noqa: E402


def faces_inference_ms(channels_last: bool, count: int, repeats: int = 7) -> float:
    from gandemo.checkpoint import load_checkpoint
    from gandemo.registry import checkpoint_dir
    from gandemo.tasks import faces

    G = load_checkpoint(checkpoint_dir("faces"))["G"]
    if channels_last:
        G.to(memory_format=torch.channels_last)
    faces.generate_faces(G, 0, count)
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        faces.generate_faces(G, seed, count)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8, help="timed steps per set-up (after 2 warm-up steps)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--try-bf16", action="store_true", help="also time bf16 where the CPU only emulates it")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    native = loop.cpu_has_fast_bf16()
    setups = [("fp32 NCHW", False, False), ("fp32 channels_last", True, False)]
    if native or args.try_bf16:
        setups.append(("bf16 + channels_last" + ("" if native else " (emulated)"), True, True))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = synthetic_images(Path(tmp) / "images")
        for name in trainable_tasks():
            base = None
            for label, cl, bf16 in setups:
                s, batch = step_seconds(
                    name, task_data(name, data), cl, bf16, args.steps if not (bf16 and not native) else 2
                )
                base = base or s
                rows.append(
                    (f"{name} training step ({batch} images)", label, f"{s:.3f} s", f"{batch / s:.0f}", base / s)
                )
    for count in (16, 64):
        base = None
        for label, cl in (("fp32 NCHW", False), ("fp32 channels_last", True)):
            ms = faces_inference_ms(cl, count)
            base = base or ms
            rows.append(
                (f"generate_faces, {count} faces", label, f"{ms:.0f} ms", f"{count / ms * 1000:.0f}", base / ms)
            )

    lines = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    print(f"\nTraining and inference speed — {cpu}, {args.threads} thread(s), native bf16: {native}")
    print(f"torch {torch.__version__}\n")
    print("| what | numeric path | time | images/s | speed-up vs fp32 NCHW |\n|---|---|---|---|---|")
    for what, label, t, ips, speedup in rows:
        print(f"| {what} | {label} | {t} | {ips} | {speedup:.2f}× |")
    if not native:
        print("\nbf16 is not native on this CPU (no AVX512-BF16/AMX flag): the loop trains in fp32 + channels_last.")


if __name__ == "__main__":
    main()
