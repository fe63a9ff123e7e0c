"""Edges → Photo speed, in one run: both endpoints' median latency in-process and via the API,
and the training step's images/s at the CPU preset.

The model is the shipped edges2photo checkpoint if there is one; otherwise an untrained U-Net of
the CPU preset's size (same architecture and cost as the model that will ship: an untrained
network costs what a trained one does), and the table says so. Inputs are made here: a PIL-drawn
shoe photo and the tab's own example sketches. Via the API = `python app.py` on a free port (cold
start measured), called through gradio_client; in-process = the task functions, no HTTP. The
training step is `benchmarks/train_speed.py`'s `step_seconds` (D step + G step + EMA, the loop's
numeric path) on A|B pairs drawn here, their edges by the data's own recipe. Prints a table.

    .venv/bin/python benchmarks/edges2photo_latency.py [--repeats 7] [--threads 2] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from benchmarks._server import print_table, rss_mb, start_app  # noqa: E402
from benchmarks.faces_latency import median_seconds  # noqa: E402
from benchmarks.train_speed import step_seconds  # noqa: E402

TASK = "edges2photo"


def shoe_photo(path: Path, seed: int = 0, size: tuple[int, int] = (400, 300)) -> Path:
    """A shoe-like photo: a coloured silhouette with a sole, a stripe and lace holes, on white."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    body = tuple(int(c) for c in rng.integers(20, 200, 3))
    top = 0.15 + 0.2 * rng.random()
    d.polygon(
        [(0.05 * w, 0.85 * h), (0.95 * w, 0.85 * h), (0.92 * w, 0.6 * h), (0.5 * w, 0.45 * h), (0.4 * w, top * h)]
        + [(0.08 * w, top * h)],
        fill=body,
    )
    d.rectangle([(0.05 * w, 0.78 * h), (0.95 * w, 0.85 * h)], fill=(235, 235, 225))  # sole
    d.line([(0.15 * w, 0.65 * h), (0.85 * w, 0.7 * h)], fill=tuple(255 - c for c in body), width=max(2, h // 40))
    for i in range(4):
        x, y = 0.42 * w + i * 0.08 * w, 0.5 * h + i * 0.02 * h
        d.ellipse([(x - 4, y - 4), (x + 4, y + 4)], fill=(250, 250, 250))
    img.save(path, quality=92)
    return path


def on_busy_background(path: Path, out: Path, seed: int = 0) -> Path:
    """The photo at `path` with its white replaced by coloured noise: a photo `cut_out` must clean."""
    shoe = np.asarray(Image.open(path).convert("RGB"))
    noise = np.random.default_rng(seed).integers(40, 230, shoe.shape, dtype=np.uint8)
    Image.fromarray(np.where(shoe.min(axis=2, keepdims=True) < 238, shoe, noise)).save(out, quality=92)
    return out


def pair_folder(folder: Path, n: int) -> Path:
    """`n` A|B pairs (256x128: edges | photo) of shoe-like photos, the edges by the data's recipe."""
    from gandemo.tasks import edges2photo

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = edges2photo.prepare_photo(shoe_photo(folder / "photo.tmp.jpg", seed=i, size=(136, 102)))
        pair = Image.new("RGB", (2 * edges2photo.SIZE, edges2photo.SIZE), "white")
        pair.paste(edges2photo.photo_to_edges(photo), (0, 0))
        pair.paste(photo, (edges2photo.SIZE, 0))
        pair.save(folder / f"{i:04d}.jpg", quality=95)
    (folder / "photo.tmp.jpg").unlink()
    return folder


def model_root(tmp: Path) -> tuple[Path | None, str]:
    """(checkpoint root to use, None = the app's own; what the model is, in words)."""
    from gandemo import registry

    if registry.status(TASK) is None:
        return None, f"the shipped checkpoint ({registry.checkpoint_dir(TASK)})"
    from gandemo.checkpoint import arch_entry, save_checkpoint
    from gandemo.nets.pix2pix import UNetGenerator
    from training.task import task_class

    preset = task_class(TASK).presets["cpu"]
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": preset["ngf"], "depth": 7, "max_mult": preset["max_mult"]}
    G = UNetGenerator(**kwargs).eval()
    card = {"task": TASK, "variant": "default", "arch": {"G": arch_entry(G, kwargs)}, "metrics": {}}
    save_checkpoint(tmp / TASK / "default", {"G": G}, card)
    params = sum(p.numel() for p in G.parameters()) / 1e6
    return tmp, (
        f"NO edges2photo checkpoint is shipped yet: an UNTRAINED U-Net of the cpu preset's size "
        f"(ngf={kwargs['ngf']}, max_mult={kwargs['max_mult']}, {params:.2f} M parameters; the same cost)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="GANDEMO_THREADS for the server and in-process runs")
    p.add_argument("--steps", type=int, default=5, help="timed training steps (after 2 warm-up steps)")
    p.add_argument("--pairs", type=int, default=96, help="synthetic A|B pairs to train on (7%% are held out)")
    args = p.parse_args()

    import torch
    from gradio_client import Client, handle_file

    from gandemo import registry
    from gandemo.tasks import edges2photo
    from gandemo.ui.edges2photo import example_sketches
    from training import loop

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root, what = model_root(tmp / "checkpoints")
        photo = shoe_photo(tmp / "shoe.jpg")
        busy = on_busy_background(photo, tmp / "busy.jpg")
        sketch = example_sketches(tmp / "sketches")[0]
        n = args.repeats

        server, url, cold = start_app(args.threads, **({registry.ENV_ROOT: str(root)} if root else {}))
        try:
            client = Client(url, verbose=False)
            rows.append(("app cold start (process start → page served)", f"{cold:.2f} s"))
            s = median_seconds(lambda: client.predict(handle_file(str(photo)), api_name="/photo_to_edges"), n)
            rows.append((f"photo_to_edges, 400×300 JPEG, via API (median of {n})", f"{s * 1000:.0f} ms"))
            s = median_seconds(lambda: client.predict(handle_file(str(sketch)), api_name="/edges_to_photo"), n)
            rows.append((f"edges_to_photo, 256×256 sketch, via API (median of {n})", f"{s * 1000:.0f} ms"))
            rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))
            client.close()
        finally:
            server.terminate()
            server.wait()

        torch.set_num_threads(args.threads)
        if root:
            os.environ[registry.ENV_ROOT] = str(root)
            registry.clear()
        G = registry.get(TASK)["G"]  # as the app holds it (channels_last, eval mode)
        edges = edges2photo.normalise_sketch(sketch)
        for label, fn in [
            ("tasks.edges2photo.photo_to_edges (decode, recipe)", lambda: edges2photo.photo_to_edges(photo)),
            (
                "tasks.edges2photo.photo_to_edges, the same on a busy background (GrabCut first)",
                lambda: edges2photo.photo_to_edges(busy),
            ),
            ("tasks.edges2photo.normalise_sketch", lambda: edges2photo.normalise_sketch(sketch)),
            (
                "tasks.edges2photo.render, 1 photo (the U-Net)",
                lambda: edges2photo.render(G, edges2photo.to_batch([edges])),
            ),
            ("tasks.edges2photo.edges_to_photo (normalise + render)", lambda: edges2photo.edges_to_photo(G, sketch)),
        ]:
            rows.append((f"{label}, in-process (median of {n})", f"{median_seconds(fn, n) * 1000:.1f} ms"))

        fast_bf16 = loop.cpu_has_fast_bf16()
        data = pair_folder(tmp / "pairs", args.pairs)
        s, batch = step_seconds(TASK, data, channels_last=True, bf16=fast_bf16, steps=args.steps)
        path = "bf16 + channels_last" if fast_bf16 else "fp32 + channels_last"
        rows.append((f"training step, cpu preset, batch {batch}, {path} (median of {args.steps})", f"{s:.2f} s"))
        rows.append(("training throughput", f"{batch / s:.1f} images/s"))

    print_table(
        f"Edges → Photo benchmark — torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPU(s)",
        rows,
        model=what,
    )


if __name__ == "__main__":
    main()
