"""Cold start and memory of the whole app, as a Space starts it: `python app.py` with a model for every
tab (the shipped checkpoints, and for tasks not trained yet an untrained stand-in of the cpu preset's
size, which costs the same to load and run), then the first call of every tab's main endpoint. It
prints, per run, the seconds from process start to the page being served and to each tab's first
successful answer, the resident memory (RSS) once every model is loaded and has run, and its peak.

The first calls go out together as soon as the page answers, over the light REST client (what a few
visitors opening different tabs do); with --sequential one after the other. Aim (issue 18): every tab
answered within 8 s of process start, and under 1 GB resident, on 2 cores.

    .venv/bin/python benchmarks/cold_start.py [--runs 3] [--threads 1] [--sequential]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import RestClient, every_model_root, rss_mb, start_app  # noqa: E402


def first_calls(root: Path, examples: Path) -> dict[str, tuple[str, tuple]]:
    """Each tab's main endpoint with a small, typical request: tab -> (api_name, inputs). Pictures
    are the app's own examples (the anomaly one from the model under `root`), written into `examples`."""
    from gandemo.checkpoint import load_checkpoint
    from gandemo.tasks import TASKS, music
    from gandemo.ui import anomaly, edges2photo, superres

    sketch = edges2photo.example_sketches(examples / "edges")[0]
    picture = superres.example_pictures(examples / "superres")[0]
    category = TASKS["anomaly"].variants[0]
    product = anomaly.example_images({category: load_checkpoint(root / "anomaly" / category)}, examples / "anomaly")
    return {
        "basics": ("toy_gan", ("gaussian", "normal", "non-saturating", 1e-3, 1e-3, 1, 64, 0, 200, 100)),
        "faces": ("generate_faces", (42, 16)),
        "edges2photo": ("edges_to_photo", (sketch,)),
        "superres": ("upscale", (picture, "gan", False)),
        "music": ("compose_music", (7, 80, *music.DEFAULT_PROGRAMS, False, False, False, False)),
        "anomaly": ("detect_anomaly", (product[-1][0], category, "encoder", 200)),
    }


def one_run(root: Path, calls: dict[str, tuple[str, tuple]], threads: int, sequential: bool) -> dict[str, float]:
    server, url, page_s = start_app(threads, GANDEMO_CHECKPOINTS=str(root))
    t0 = time.perf_counter() - page_s  # the process start
    done: dict[str, float] = {"page": page_s}
    errors: list[str] = []
    try:

        def call(tab: str, api: str, inputs: tuple) -> None:
            try:
                RestClient(url).predict(*inputs, api_name=api)
                done[tab] = time.perf_counter() - t0
            except Exception as exc:  # reported below; the run is not counted
                errors.append(f"{tab}: {exc}")

        workers = [threading.Thread(target=call, args=(tab, api, inputs)) for tab, (api, inputs) in calls.items()]
        for w in workers:
            w.start()
            if sequential:
                w.join()
        for w in workers:
            w.join()
        if errors:
            raise SystemExit("a first call failed: " + "; ".join(errors))
        done["every tab"] = max(done[tab] for tab in calls)
        done["rss_mb"] = rss_mb(server.pid)
        done["peak_rss_mb"] = rss_mb(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait()
    return done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS of the server")
    p.add_argument("--sequential", action="store_true", help="first calls one after the other")
    args = p.parse_args()

    import os

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root, notes = every_model_root(Path(tmp) / "checkpoints")
        calls = first_calls(root, Path(tmp) / "examples")
        runs = [one_run(root, calls, args.threads, args.sequential) for _ in range(args.runs)]

    keys = ["page", *calls, "every tab", "rss_mb", "peak_rss_mb"]
    print(
        f"\nCold start — {args.runs} run(s), {args.threads} server thread(s), first calls "
        f"{'one after the other' if args.sequential else 'together'}, {os.cpu_count()} CPU(s) visible "
        f"({len(os.sched_getaffinity(0))} usable), torch {torch.__version__}\n"
    )
    print("| from process start to ... | median | runs |\n|---|---|---|")
    for key in keys:
        values = [r[key] for r in runs]
        unit = " MB" if key.endswith("_mb") else " s"
        name = {"rss_mb": "resident memory, every model loaded", "peak_rss_mb": "peak resident memory"}.get(
            key, f"{key} answered" if key != "page" else "page served"
        )
        print(f"| {name} | {statistics.median(values):.1f}{unit} | {', '.join(f'{v:.1f}' for v in values)} |")
    print("\nModels: " + "; ".join(notes))


if __name__ == "__main__":
    main()
