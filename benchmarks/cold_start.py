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

from benchmarks._server import RestClient, cpu_seconds, every_model_root, rss_mb, running_app, tab_requests  # noqa: E402


def one_run(root: Path, calls: dict[str, tuple[str, tuple]], threads: int, sequential: bool) -> dict[str, float]:
    with running_app(threads, GANDEMO_CHECKPOINTS=str(root)) as (server, url, page_s):
        t0 = time.perf_counter() - page_s  # the process start
        done: dict[str, float] = {"page": page_s, "cpu_page_s": cpu_seconds(server.pid)}
        errors: list[str] = []

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
        done["cpu_all_s"] = cpu_seconds(server.pid)
        done["rss_mb"] = rss_mb(server.pid)
        done["peak_rss_mb"] = rss_mb(server.pid, "VmHWM")
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
        calls = tab_requests(root, Path(tmp) / "examples")
        runs = [one_run(root, calls, args.threads, args.sequential) for _ in range(args.runs)]

    keys = ["page", *calls, "every tab", "cpu_page_s", "cpu_all_s", "rss_mb", "peak_rss_mb"]
    print(
        f"\nCold start — {args.runs} run(s), {args.threads} server thread(s), first calls "
        f"{'one after the other' if args.sequential else 'together'}, {os.cpu_count()} CPU(s) visible "
        f"({len(os.sched_getaffinity(0))} usable), torch {torch.__version__}\n"
    )
    print("| from process start to ... | median | runs |\n|---|---|---|")
    for key in keys:
        values = [r[key] for r in runs]
        unit = " MB" if key.endswith("_mb") else " s"
        name = {
            "page": "page served",
            "cpu_page_s": "server CPU time until the page was served",
            "cpu_all_s": "server CPU time until every tab answered",
            "rss_mb": "resident memory, every model loaded and run",
            "peak_rss_mb": "peak resident memory",
        }.get(key, f"{key} answered")
        print(f"| {name} | {statistics.median(values):.1f}{unit} | {', '.join(f'{v:.1f}' for v in values)} |")
    print("\nModels: " + "; ".join(notes))


if __name__ == "__main__":
    main()
