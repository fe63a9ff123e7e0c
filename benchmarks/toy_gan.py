"""How live the GAN Basics tab is: training steps per second and seconds per plot update for the
1-D and 2-D toy GANs, with torch using 1 and then 2 threads. Prints a Markdown table.

    python benchmarks/toy_gan.py                 # speed table (about a minute on 2 cores)
    python benchmarks/toy_gan.py --threads 1     # one thread only
    python benchmarks/toy_gan.py --coverage      # also: modes covered on the ring, same seed, per loss

A "plot update" is what the tab does between two chunks of training: the snapshot (G's samples,
densities, D on a grid, the measures), drawing the frame and encoding it as the PNG that gr.Plot
shows. The first frame of a game also lays out the whole figure ("first frame"); later frames are
blitted. Updates per second = 1 / (steps per update / steps per second + seconds per update), at
the tab's default steps per update.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gandemo.tasks.basics import Settings1D, Settings2D, ToyGAN, ToyGAN1D, ToyGAN2D  # noqa: E402
from gandemo.ui.basics.figures import Figure1D, Figure2D  # noqa: E402

UPDATE_EVERY = {"1-D": 20, "2-D": 25}  # the tab's defaults

CASES = [
    ("1-D", "gaussian, non-saturating", lambda: ToyGAN1D(Settings1D()), Figure1D),
    ("1-D", "bimodal, minimax, k=5", lambda: ToyGAN1D(Settings1D("bimodal", loss="minimax", k=5)), Figure1D),
    ("2-D", "ring, standard", lambda: ToyGAN2D(Settings2D()), Figure2D),
    ("2-D", "ring, PacGAN", lambda: ToyGAN2D(Settings2D(loss="pacgan")), Figure2D),
    ("2-D", "ring, WGAN-GP, k=5", lambda: ToyGAN2D(Settings2D(loss="wgan-gp", k=5)), Figure2D),
]


def steps_per_second(gan: ToyGAN, steps: int, repeats: int) -> float:
    gan.train(10)  # warm-up: first-call allocations
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gan.train(steps)
        rates.append(steps / (time.perf_counter() - t0))
    return statistics.median(rates)


def seconds_per_update(gan: ToyGAN, figure_cls: type, frames: int) -> tuple[float, float]:
    """(first frame, median of the later frames), each snapshot + draw + PNG encoding."""
    fig = figure_cls(gan, gan.steps + frames)
    t0 = time.perf_counter()
    fig.draw(gan.snapshot(), gan.history)
    first = time.perf_counter() - t0
    times = []
    for _ in range(frames):
        gan.train(1)  # a new step, so the snapshot is a new history row as in the tab
        t0 = time.perf_counter()
        fig.draw(gan.snapshot(), gan.history)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def speed_table(threads: list[int], steps: int, repeats: int, frames: int) -> str:
    rows = [
        "| view | settings | torch threads | steps/s | s per plot update (median) | first frame (s) "
        "| updates/s at default steps per update |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in threads:
        torch.set_num_threads(n)
        for view, label, make, figure_cls in CASES:
            rate = steps_per_second(make(), steps, repeats)
            first, per_update = seconds_per_update(make(), figure_cls, frames)
            every = UPDATE_EVERY[view]
            live = 1 / (every / rate + per_update)
            rows.append(
                f"| {view} | {label} | {n} | {rate:.0f} | {per_update:.3f} | {first:.2f} | "
                f"{live:.1f} (every {every} steps) |"
            )
            print(rows[-1], file=sys.stderr, flush=True)  # progress while the table builds
    return "\n".join(rows)


def coverage_table(steps: int, seed: int) -> str:
    """Modes covered and high-quality share on the ring after `steps` steps, same seed per loss."""
    torch.set_num_threads(1)
    rows = [
        f"| loss (ring of 8, seed {seed}) | "
        + " | ".join(f"step {s}" for s in range(steps // 4, steps + 1, steps // 4))
        + " |",
        "|---|" + "---|" * 4,
    ]
    for loss, k in (("standard", 1), ("pacgan", 1), ("wgan-gp", 5)):
        gan = ToyGAN2D(Settings2D(loss=loss, k=k, seed=seed))
        cells = []
        for _ in range(4):
            gan.train(steps // 4)
            cov = gan.snapshot().coverage
            cells.append(f"{cov.modes}/8, {100 * cov.high_quality:.0f}% HQ")
        rows.append(f"| {loss} (k={k}) | " + " | ".join(cells) + " |")
        print(rows[-1], file=sys.stderr, flush=True)
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument("--steps", type=int, default=200, help="training steps per timing (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per case; the median is shown")
    parser.add_argument("--frames", type=int, default=15, help="plot updates per case; the median is shown")
    parser.add_argument("--coverage", action="store_true", help="also train each 2-D loss on the ring")
    parser.add_argument("--coverage-steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_interop_threads()} interop threads, CPU")
    print()
    print(speed_table(threads, args.steps, args.repeats, args.frames))
    if args.coverage:
        print()
        print(coverage_table(args.coverage_steps, args.seed))


if __name__ == "__main__":
    main()
