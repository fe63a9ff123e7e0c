"""Anomaly speed, in one run: seconds per image of each method (aim: the encoder <= 50 ms), the
latent search with 1 and 2 torch threads, whole requests in-process and (with --api) through the
app, and the trainer's two kinds of step at the cpu preset.

The models are the shipped anomaly checkpoints where there are some; otherwise untrained G, D and E
of the cpu preset's size (an untrained network costs what a trained one does), with thresholds
calibrated here on synthetic images so a whole request can run, and the table says so. Inputs are
drawn here (a grey plate with a scratch, 128x128 PNG and 1024x768 JPEG); the training steps run on a
small synthetic tree in the MVTec layout. Prints a table.

    .venv/bin/python benchmarks/anomaly_speed.py [--category transistor] [--repeats 7] [--api]
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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from benchmarks._server import print_table  # noqa: E402
from benchmarks.faces_latency import median_seconds  # noqa: E402

TASK = "anomaly"


def plate(path: Path, size: tuple[int, int], seed: int = 0, scratch: bool = True) -> Path:
    """A grey plate with a soft gradient and noise, and a dark scratch (a stand-in product photo)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = np.linspace(90, 150, w)[None, :, None] + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if scratch:
        ImageDraw.Draw(img).line([(0.2 * w, 0.4 * h), (0.7 * w, 0.55 * h)], fill=(30, 30, 30), width=max(2, w // 60))
    img.save(path, quality=92)
    return path


def mvtec_tree(folder: Path, n: int = 64, size: int = 128) -> Path:
    for split, count in (("train/good", n), ("val/good", 8)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            plate(folder / split / f"{i:03d}.png", (size, size), seed=i, scratch=False)
    return folder


def model(category: str, tmp: Path) -> tuple[dict, dict, str]:
    """(modules, card, what the model is, in words)."""
    from gandemo import registry

    if registry.status(TASK, category) is None:
        ckpt = registry.get(TASK, category)
        return ckpt.modules, ckpt.card, f"the shipped checkpoint ({registry.checkpoint_dir(TASK, category)})"
    from gandemo.nets.anogan import Discriminator, Encoder, Generator
    from gandemo.tasks import anomaly
    from training.task import task_class

    preset = task_class(TASK).presets["cpu"]
    kw = {"channels": 1 if category == "magnetic_tile" else 3, "image_size": preset["image_size"]}
    torch.manual_seed(0)
    modules = {
        "G": Generator(z_dim=100, ngf=preset["ngf"], **kw).eval().requires_grad_(False),
        "D": Discriminator(ndf=preset["ndf"], **kw).eval().requires_grad_(False),
        "E": Encoder(z_dim=100, nef=preset["nef"], **kw).eval().requires_grad_(False),
    }
    for m in modules.values():
        m.to(memory_format=torch.channels_last)  # as the registry holds them
    size = kw["image_size"]
    normal = torch.stack(
        [
            anomaly.to_input(Image.open(plate(tmp / f"n{i}.png", (128, 128), i, False)), size, kw["channels"])
            for i in range(4)
        ]
    )
    calibration = {}
    for method in anomaly.METHODS:
        scores, heat = anomaly.score_batches(method, modules, normal, 20)
        calibration[method] = anomaly.calibrate(scores, heat)
    card = {"anomaly": {"search_iterations": anomaly.SEARCH_ITERATIONS, "calibration": calibration}}
    params = sum(p.numel() for m in modules.values() for p in m.parameters()) / 1e6
    return (
        modules,
        card,
        f"NO {category} checkpoint is shipped yet: UNTRAINED G, D, E of the cpu preset's size ({size}x{size}, "
        f"ngf/ndf/nef {preset['ngf']}/{preset['ndf']}/{preset['nef']}, {params:.2f} M parameters; the same cost)",
    )


def training_steps(tree: Path, threads: int, steps: int) -> tuple[float, float, int]:
    """Median seconds of a stage-1 (GAN) and a stage-2 (encoder) step at the cpu preset, and the batch."""
    from training.anomaly import AnomalyTask
    from training.cli import parse_train_args
    from training.loop import Amp

    args = parse_train_args(AnomalyTask, ["--data", str(tree), "--out", "unused", "--no-progress"])
    task = AnomalyTask(args, torch.device("cpu"))
    amp = Amp(torch.device("cpu"), enabled=True)
    for m in task.models.values():
        amp.prepare(m)

    def timed(n: int) -> float:
        times = []
        for i in range(n + 2):  # two warm-up steps
            t0 = time.perf_counter()
            task.train_step(amp.batch(task.next_batch()), amp)
            if i >= 2:
                times.append(time.perf_counter() - t0)
        return statistics.median(times)

    gan = timed(steps)
    task.done = task.gan_steps  # the next steps are the encoder's
    return gan, timed(steps), args.batch_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--category", default="transistor", choices=("magnetic_tile", "metal_plate", "transistor"))
    p.add_argument("--repeats", type=int, default=7, help="timed encoder runs (the search runs 3 times)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for everything but the 2-thread search row")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per stage (after 2 warm-up steps)")
    p.add_argument("--api", action="store_true", help="also time detect_anomaly through the app (starts app.py)")
    args = p.parse_args()

    from gandemo.tasks import anomaly

    torch.set_num_threads(args.threads)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        modules, card, what = model(args.category, tmp)
        G = modules["G"]
        small, big = plate(tmp / "plate.png", (128, 128)), plate(tmp / "plate.jpg", (1024, 768))
        x = anomaly.prepare(small, G.image_size, G.channels)[0][None]
        n, it = args.repeats, anomaly.SEARCH_ITERATIONS

        enc = median_seconds(lambda: anomaly.encode(G, modules["D"], modules["E"], x), n)
        aim = "meets" if enc <= 0.05 else "MISSES"
        rows.append(
            (f"encoder (f-AnoGAN), method time per image (median of {n}; aim <= 50 ms: {aim})", f"{enc * 1000:.1f} ms")
        )
        for threads in (1, 2) if (os.cpu_count() or 1) >= 2 else (1,):
            s = median_seconds(lambda t=threads: anomaly.latent_search(G, modules["D"], x, it, threads=t), 3)
            rows.append((f"latent search (AnoGAN), {it} iterations, {threads} thread(s) (median of 3)", f"{s:.2f} s"))
            rows.append((f"  … per iteration, {threads} thread(s)", f"{s / it * 1000:.1f} ms"))
        for label, path in (("128×128 PNG", small), ("1024×768 JPEG", big)):
            s = median_seconds(lambda p=path: anomaly.detect(modules, card, p, "encoder"), n)
            rows.append(
                (
                    f"whole request in-process, encoder, {label} (decode, score, heatmap, mask, plot)",
                    f"{s * 1000:.0f} ms",
                )
            )
        base_train = np.stack([anomaly.baseline_input(plate(tmp / "b.png", (128, 128), i, False)) for i in range(8)])
        baseline = anomaly.PixelStatsBaseline.fit(base_train)
        one = anomaly.baseline_input(small)[None]
        s = median_seconds(lambda: baseline.score(one), n)
        rows.append((f"trivial baseline, per image (median of {n})", f"{s * 1000:.2f} ms"))

        if args.api:
            from gradio_client import Client, handle_file

            from benchmarks._server import rss_mb, start_app

            server, url, cold = start_app(args.threads)
            try:
                client = Client(url, verbose=False)
                rows.append(("app cold start (process start → page served)", f"{cold:.2f} s"))
                s = median_seconds(
                    lambda: client.predict(
                        handle_file(str(small)), args.category, "encoder", it, api_name="/detect_anomaly"
                    ),
                    n,
                )
                rows.append((f"detect_anomaly via API, encoder, 128×128 PNG (median of {n})", f"{s * 1000:.0f} ms"))
                rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))
                client.close()
            except Exception as exc:  # e.g. no checkpoint shipped: the app answers with "not trained yet"
                rows.append(("detect_anomaly via API", f"not measured: {str(exc).splitlines()[0][:90]}"))
            finally:
                server.terminate()
                server.wait()

        gan, enc_step, batch = training_steps(mvtec_tree(tmp / "tree"), args.threads, args.steps)
        rows.append(
            (f"training step, stage 1 (D + G), cpu preset, batch {batch} (median of {args.steps})", f"{gan:.3f} s")
        )
        rows.append(
            (
                f"training step, stage 2 (encoder), cpu preset, batch {batch} (median of {args.steps})",
                f"{enc_step:.3f} s",
            )
        )

    print_table(
        f"Anomaly benchmark ({args.category}) — torch {torch.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} CPU(s)",
        rows,
        model=what,
    )


if __name__ == "__main__":
    main()
