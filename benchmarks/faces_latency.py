"""Faces tab speed and memory, as a Space user meets them.

Starts `python app.py` on a free port (cold start = process start until the page answers),
calls `generate_faces` through gradio_client for 1, 16 and 64 faces (median of --repeats) and
`interpolate_faces` for 16 frames, then reads the server's peak RSS. Also times the task function
in-process (no HTTP) to show what the network and Gradio add. Prints a markdown table.

    .venv/bin/python benchmarks/faces_latency.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import median_seconds, print_table, rss_mb, running_app  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="GANDEMO_THREADS for the server and in-process runs")
    args = p.parse_args()

    from gradio_client import Client

    with running_app(args.threads) as (server, url, cold):
        client = Client(url, verbose=False)
        rows = [("app cold start (process start → page served)", f"{cold:.2f} s")]
        for n in (1, 16, 64):
            s = median_seconds(lambda n=n: client.predict(1234, n, api_name="/generate_faces"), args.repeats)
            rows.append((f"generate_faces, {n} face(s), via API (median of {args.repeats})", f"{s * 1000:.0f} ms"))
        s = median_seconds(lambda: client.predict(1, 2, 16, api_name="/interpolate_faces"), args.repeats)
        rows.append((f"interpolate_faces, 16 frames, via API (median of {args.repeats})", f"{s * 1000:.0f} ms"))
        rows.append(("server peak RSS after these calls", f"{rss_mb(server.pid, 'VmHWM'):.0f} MB"))

    import torch

    from gandemo import registry
    from gandemo.tasks import faces

    torch.set_num_threads(args.threads)
    G = registry.get("faces")["G"]
    for n in (1, 16, 64):
        s = median_seconds(lambda n=n: faces.generate_faces(G, 1234, n), args.repeats)
        rows.append((f"tasks.faces.generate_faces, {n} face(s), in-process", f"{s * 1000:.0f} ms"))

    print_table(f"Faces benchmark — torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} CPU(s)", rows)


if __name__ == "__main__":
    main()
