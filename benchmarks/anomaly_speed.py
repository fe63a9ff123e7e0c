"""Anomaly speed, in one run: seconds per image of each method (aims: the inpainter and the encoder
<= 0.3 s per upload through the API, the latent search < 10 s at its default iterations), the latent
search with 1 and 2 torch threads, the trivial baseline, whole requests in-process and (with --api)
through the app, and the trainer's three kinds of step at the cpu preset.

The models are the shipped anomaly checkpoint of the category where there is one; otherwise untrained
networks of the cpu preset's size (an untrained network costs what a trained one does), with
thresholds calibrated here on synthetic images so a whole request can run, and the table says so.
Inputs are drawn here (a grey plate with a scratch, 128x128 PNG and 1024x768 JPEG); the training
steps run on a small synthetic tree in the MVTec layout. Prints a table.

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
from PIL import Image  # noqa: E402

from benchmarks._server import median_seconds, print_table  # noqa: E402
from benchmarks.tasks.anomaly import mvtec_tree, plate  # noqa: E402

TASK = "anomaly"
API_AIM, SEARCH_AIM = 0.3, 10.0  # seconds: Anomaly v2's aims


def model(category: str, tmp: Path) -> tuple[dict, dict, str]:
    """(modules, card, what the model is, in words)."""
    from gandemo import registry

    if registry.status(TASK, category) is None:
        ckpt = registry.get(TASK, category)
        return ckpt.modules, ckpt.card, f"the shipped checkpoint ({registry.checkpoint_dir(TASK, category)})"
    from gandemo.nets.anogan import Discriminator, Encoder, Generator, ResidualStats
    from gandemo.nets.pix2pix import UNetGenerator
    from gandemo.tasks import anomaly
    from training.task import task_class

    preset = task_class(TASK).presets["cpu"]
    c = 1 if category == "magnetic_tile" else 3
    kw = {"channels": c, "image_size": preset["image_size"]}
    torch.manual_seed(0)
    modules = {
        "G": Generator(z_dim=100, ngf=preset["ngf"], **kw).eval().requires_grad_(False),
        "D": Discriminator(ndf=preset["ndf"], **kw).eval().requires_grad_(False),
        "E": Encoder(z_dim=100, nef=preset["nef"], **kw).eval().requires_grad_(False),
        "I": UNetGenerator(c + 1, c, ngf=preset["inpaint_ngf"], depth=7).eval().requires_grad_(False),
        "N": ResidualStats(anomaly.INPAINT_SIZE),
    }
    for m in modules.values():
        m.to(memory_format=torch.channels_last)  # as the registry holds them
    photos = [plate(tmp / f"n{i}.png", (128, 128), i, False) for i in range(4)]
    baseline = anomaly.PixelStatsBaseline.fit(np.stack([anomaly.baseline_input(p) for p in photos]))
    modules["B"] = baseline.to_module()
    calibration = {}
    card: dict = {"anomaly": {"search_iterations": anomaly.SEARCH_ITERATIONS, "inpaint": {}}}
    for method in anomaly.METHODS:
        size, channels = anomaly.input_shape(modules, method, card)
        normal = torch.stack([anomaly.to_input(Image.open(p).convert("RGB"), size, channels) for p in photos])
        scores, heat = anomaly.score_batches(method, modules, normal, 20)
        calibration[method] = anomaly.calibrate(scores, heat)
    scores, pixels = baseline.score(np.stack([anomaly.baseline_input(p) for p in photos]))
    calibration["baseline"] = anomaly.calibrate(scores, pixels)
    card["anomaly"]["calibration"] = calibration
    params = sum(p.numel() for m in modules.values() for p in m.parameters()) / 1e6
    return (
        modules,
        card,
        f"NO {category} checkpoint is shipped yet: UNTRAINED networks of the cpu preset's size ({params:.2f} M "
        "parameters; the same cost)",
    )


def training_steps(tree: Path, steps: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median seconds of a step of each stage at the cpu preset (GAN, encoder, inpainter), and their batches."""
    from training.anomaly import AnomalyTask
    from training.loop import Amp
    from training.run import parse_train_args

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

    out = {"GAN (D + G)": timed(steps)}
    task.done = task.gan_steps  # the next steps are the encoder's
    out["encoder"] = timed(steps)
    task.done = task.gan_steps + task.encoder_steps  # ... the inpainter's
    out["inpainter (I + C)"] = timed(steps)
    batches = {"GAN (D + G)": args.batch_size, "encoder": args.batch_size, "inpainter (I + C)": task.inpaint_batch}
    return out, batches


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--category", default="transistor", choices=("magnetic_tile", "metal_plate", "transistor"))
    p.add_argument("--repeats", type=int, default=7, help="timed runs of the fast methods (the search runs 3 times)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for everything but the 2-thread search row")
    p.add_argument("--steps", type=int, default=5, help="timed training steps per stage (after 2 warm-up steps)")
    p.add_argument("--api", action="store_true", help="also time the endpoints through the app (starts app.py)")
    args = p.parse_args()

    from gandemo.tasks import anomaly

    torch.set_num_threads(args.threads)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        modules, card, what = model(args.category, tmp)
        small, big = plate(tmp / "plate.png", (128, 128)), plate(tmp / "plate.jpg", (1024, 768))
        n, it = args.repeats, anomaly.SEARCH_ITERATIONS
        block = anomaly.settings(card).get("inpaint")

        for method in ("inpaint", "encoder"):
            x = anomaly.prepare(small, *anomaly.input_shape(modules, method, card))[0][None]
            s = median_seconds(lambda m=method, x=x: anomaly.run_method(m, modules, x, block=block), n)
            rows.append(
                (f"{anomaly.METHOD_TITLES[method]}, method time per image (median of {n})", f"{s * 1000:.1f} ms")
            )
        G, x = modules["G"], anomaly.prepare(small, modules["G"].image_size, modules["G"].channels)[0][None]
        for threads in (1, 2) if (os.cpu_count() or 1) >= 2 else (1,):
            s = median_seconds(lambda t=threads: anomaly.latent_search(G, modules["D"], x, it, threads=t), 3)
            aim = "meets" if s < SEARCH_AIM else "MISSES"
            rows.append(
                (f"latent search (AnoGAN), {it} iterations, {threads} thread(s) (aim < 10 s: {aim})", f"{s:.2f} s")
            )
        for label, path in (("128×128 PNG", small), ("1024×768 JPEG", big)):
            for method in ("inpaint", "encoder"):
                s = median_seconds(lambda p=path, m=method: anomaly.detect(modules, card, p, m), n)
                rows.append(
                    (
                        f"whole request in-process, {method}, {label} (decode, score, heatmap, mask, plot)",
                        f"{s * 1000:.0f} ms",
                    )
                )
            s = median_seconds(lambda p=path: anomaly.detect_baseline(modules, card, p), n)
            rows.append((f"whole request in-process, trivial baseline, {label}", f"{s * 1000:.0f} ms"))

        if args.api:
            from gradio_client import Client, handle_file

            from benchmarks._server import rss_mb, start_app

            server, url, cold = start_app(args.threads)
            try:
                client = Client(url, verbose=False)
                rows.append(("app cold start (process start → page served)", f"{cold:.2f} s"))
                for method in ("inpaint", "encoder", "latent_search"):
                    reps = 3 if method == "latent_search" else n
                    s = median_seconds(
                        lambda m=method: client.predict(
                            handle_file(str(small)), args.category, m, it, api_name="/detect_anomaly"
                        ),
                        reps,
                    )
                    limit = SEARCH_AIM if method == "latent_search" else API_AIM
                    aim = f"aim {'<' if method == 'latent_search' else '<='} {limit:g} s: " + (
                        "meets" if s <= limit else "MISSES"
                    )
                    rows.append(
                        (f"detect_anomaly via API, {method}, 128×128 PNG (median of {reps}; {aim})", f"{s:.3f} s")
                    )
                s = median_seconds(
                    lambda: client.predict(handle_file(str(small)), args.category, api_name="/compare_baseline"), n
                )
                rows.append((f"compare_baseline via API, 128×128 PNG (median of {n})", f"{s:.3f} s"))
                rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))
                client.close()
            except Exception as exc:  # e.g. no checkpoint shipped: the app answers with "not trained yet"
                rows.append(("endpoints via API", f"not measured: {str(exc).splitlines()[0][:90]}"))
            finally:
                server.terminate()
                server.wait()

        times, batches = training_steps(mvtec_tree(tmp / "tree"), args.steps)
        for stage, s in times.items():
            rows.append(
                (f"training step, {stage}, cpu preset, batch {batches[stage]} (median of {args.steps})", f"{s:.3f} s")
            )

    print_table(
        f"Anomaly benchmark ({args.category}) — torch {torch.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} CPU(s)",
        rows,
        model=what,
    )


if __name__ == "__main__":
    main()
