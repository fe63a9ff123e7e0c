"""Edges → Photo speed, in one run: both endpoints' median latency in-process and via the API,
live drawing's stroke-to-picture time in a real browser, and the training step's images/s at the
CPU preset.

The model is the shipped edges2photo checkpoint if it is of the cpu preset's kind (since v2: a
colour input and a resize-then-convolve decoder); otherwise an untrained U-Net of that kind (an
untrained network costs what a trained one does), and the table says so, with the shipped model's
in-process time beside it. Inputs are made here: a PIL-drawn shoe photo and the tab's own example
sketches. Via the API = `python app.py` on a free port (cold start measured), called through
gradio_client; in-process = the task functions, no HTTP. Stroke to picture = headless Chromium
(Debian's, through Playwright) on that app: strokes drawn with the mouse on the sketchpad, each
timed from the mouse's release until its new photo is shown (the live event: the canvas's PNG sent
as a data URL, the private step run, the photo fetched), no button clicked; the browser shares
this machine's cores with the server. The training step is `step_seconds` (D step + G step + EMA, the
loop's numeric path) on A|B pairs drawn here, their edges by the data's own recipe. Prints a table.

    .venv/bin/python benchmarks/edges2photo_latency.py [--repeats 7] [--threads 1] [--strokes 9] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks._data import save_stand_in  # noqa: E402
from benchmarks._server import app_model, median_seconds, print_table, rss_mb, running_app, step_seconds  # noqa: E402
from benchmarks.tasks.edges2photo import pair_folder, shoe_photo  # noqa: E402

TASK = "edges2photo"
CHROMIUM = "/usr/bin/chromium"


def on_busy_background(path: Path, out: Path, seed: int = 0) -> Path:
    """The photo at `path` with its white replaced by coloured noise: a photo `cut_out` must clean."""
    shoe = np.asarray(Image.open(path).convert("RGB"))
    noise = np.random.default_rng(seed).integers(40, 230, shoe.shape, dtype=np.uint8)
    Image.fromarray(np.where(shoe.min(axis=2, keepdims=True) < 238, shoe, noise)).save(out, quality=92)
    return out


def v2_root(tmp: Path) -> tuple[Path | None, str, bool]:
    """(checkpoint root, None = the app's own; what the model is, in words; whether a shipped model
    loads): the shipped model if it is of the cpu preset's kind, else an untrained stand-in of that kind."""
    from gandemo import registry
    from gandemo.nets.pix2pix import UNetGenerator
    from gandemo.tasks.edges2photo import COLOUR_PLANES, takes_colour
    from training.task import task_class

    preset = task_class(TASK).presets["cpu"]
    shipped = registry.status(TASK) is None
    if shipped:
        G = registry.get(TASK)["G"]
        if takes_colour(G) and getattr(G, "upsample", "transposed") == preset["upsample"]:
            return None, f"the shipped checkpoint ({registry.checkpoint_dir(TASK)})", True
    kwargs = {"in_channels": 3 + COLOUR_PLANES, "out_channels": 3, "ngf": preset["ngf"], "depth": 7}
    kwargs |= {"max_mult": preset["max_mult"], "upsample": preset["upsample"]}
    G = UNetGenerator(**kwargs).eval()
    params = save_stand_in(tmp / TASK / "default", TASK, "default", {"G": G}, {"G": kwargs})
    return (
        tmp,
        f"an UNTRAINED U-Net of the cpu preset's kind (colour input, upsample={preset['upsample']}, "
        f"ngf={preset['ngf']}, max_mult={preset['max_mult']}, {params:.2f} M parameters: the cost of the "
        "model this preset ships); the shipped checkpoint is not of that kind",
        shipped,
    )


def stroke_to_picture(url: str, strokes: int, quiet: float = 2.0) -> dict[str, list[float]]:
    """For `strokes` strokes drawn one after another on the sketchpad (a first stroke, the outline,
    warms up), no button clicked, seconds from the mouse's release to "shown": the LAST new photo
    (a stroke is done when no new photo came for `quiet` seconds: Gradio's image editor, which the
    tab used before, also announced half-drawn strokes), and to "join": the last live event sent
    before it (the browser's part). "server" = shown - join: the server's answer and the photo's
    download."""
    from playwright.sync_api import sync_playwright

    # the page's own clock: the pointer's release, each request, each photo loaded
    spy = (
        "() => { window.marks = []; const mark = n => window.marks.push([n, performance.now()]); "
        "document.addEventListener('pointerup', () => mark('up'), true); "
        "document.querySelector('#edges-photo').addEventListener('load', e => mark('photo'), true); "
        "const f = window.fetch; window.fetch = (...a) => { mark(String(a[0] && a[0].url || a[0])); "
        "return f(...a); }; }"
    )
    outline = [(0.3, 0.65), (0.7, 0.65), (0.68, 0.5), (0.5, 0.45), (0.45, 0.3), (0.32, 0.3), (0.3, 0.65)]
    times: dict[str, list[float]] = {"shown": [], "join": [], "server": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(url)
        page.get_by_role("tab", name="Edges → Photo").click()
        page.locator("#edges-sketch canvas").first.wait_for(timeout=30_000)
        page.evaluate(spy)
        box = page.locator("#edges-sketch canvas").first.bounding_box()
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        for i in range(strokes + 1):
            points = outline if i == 0 else [(0.34, 0.62 - 0.025 * i), (0.62, 0.62 - 0.025 * i)]  # seams
            page.evaluate("() => { window.marks = []; }")
            page.mouse.move(x + points[0][0] * w, y + points[0][1] * h)
            page.mouse.down()
            for px, py in points[1:]:
                page.mouse.move(x + px * w, y + py * h, steps=6)
            page.mouse.up()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                page.wait_for_timeout(100)
                marks = page.evaluate("() => window.marks.concat([['now', performance.now()]])")
                up = next((t for n, t in marks if n == "up"), None)
                photos = [t for n, t in marks if n == "photo" and up is not None and t > up]
                if photos and marks[-1][1] - photos[-1] > quiet * 1000:
                    break
            else:
                raise RuntimeError(f"stroke {i}: no photo within 60 s")
            join = max(t for n, t in marks if "/queue/join" in n and t < photos[-1])
            if i:
                times["shown"].append((photos[-1] - up) / 1000)
                times["join"].append((join - up) / 1000)
                times["server"].append((photos[-1] - join) / 1000)
        browser.close()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS for the server and in-process runs")
    p.add_argument("--strokes", type=int, default=9, help="strokes timed from release to photo in the browser")
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
        root, what, shipped = v2_root(tmp / "checkpoints")
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
            s = median_seconds(
                lambda: client.predict(handle_file(str(sketch)), "#b22222", api_name="/edges_to_photo"), n
            )
            rows.append((f"edges_to_photo, the same with a colour, via API (median of {n})", f"{s * 1000:.0f} ms"))
            client.close()
            if Path(CHROMIUM).is_file():
                times = stroke_to_picture(url, args.strokes)
                k = len(times["shown"])
                for key, label in (
                    ("shown", "live drawing: stroke released → its photo shown, headless Chromium"),
                    ("join", "… of which the browser's part: the canvas's PNG made, live event sent"),
                    ("server", "… and the server's part: live event sent → photo shown"),
                ):
                    t = times[key]
                    rows.append((f"{label} (median of {k})", f"{np.median(t) * 1000:.0f} ms (max {max(t) * 1000:.0f})"))
            else:
                rows.append(("live drawing: stroke → photo in a browser", f"not measured: no {CHROMIUM}"))
            rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))

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
        if root is not None and shipped:  # the measured model is a stand-in: the shipped one beside it
            old = app_model(TASK, None, args.threads)
            s = median_seconds(lambda: edges2photo.render(old, edges2photo.to_batch([edges])), n)
            rows.append((f"the shipped model's render, 1 photo, in-process (median of {n})", f"{s * 1000:.1f} ms"))

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
