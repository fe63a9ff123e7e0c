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
from PIL import Image  # noqa: E402

from benchmarks._server import (  # noqa: E402
    app_model,
    edges2photo_root,
    median_seconds,
    pair_folder,
    print_table,
    rss_mb,
    running_app,
    shoe_photo,
    step_seconds,
)

TASK = "edges2photo"


def on_busy_background(path: Path, out: Path, seed: int = 0) -> Path:
    """The photo at `path` with its white replaced by coloured noise: a photo `cut_out` must clean."""
    shoe = np.asarray(Image.open(path).convert("RGB"))
    noise = np.random.default_rng(seed).integers(40, 230, shoe.shape, dtype=np.uint8)
    Image.fromarray(np.where(shoe.min(axis=2, keepdims=True) < 238, shoe, noise)).save(out, quality=92)
    return out


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
        root, what = edges2photo_root(tmp / "checkpoints")
        photo = shoe_photo(tmp / "shoe.jpg")
        busy = on_busy_background(photo, tmp / "busy.jpg")
        sketch = example_sketches(tmp / "sketches")[0]
        n = args.repeats

        with running_app(args.threads, **({registry.ENV_ROOT: str(root)} if root else {})) as (server, url, cold):
            client = Client(url, verbose=False)
            rows.append(("app cold start (process start → page served)", f"{cold:.2f} s"))
            s = median_seconds(lambda: client.predict(handle_file(str(photo)), api_name="/photo_to_edges"), n)
            rows.append((f"photo_to_edges, 400×300 JPEG, via API (median of {n})", f"{s * 1000:.0f} ms"))
            s = median_seconds(lambda: client.predict(handle_file(str(sketch)), api_name="/edges_to_photo"), n)
            rows.append((f"edges_to_photo, 256×256 sketch, via API (median of {n})", f"{s * 1000:.0f} ms"))
            rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))
            client.close()

        G = app_model(TASK, root, args.threads)
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
