"""The faces API under load: concurrent gradio_client users on loopback, as a crowd meets a Space.

Starts `python app.py` on a free port, lets --users clients (the crowd of benchmarks/load.py, on
this one endpoint) call `generate_faces(seed, --count)` back to back for --seconds (each request a
new seed; each client fetches every gallery image and the grid file, as a browser or gradio_client
does), then prints the requests served, errors,
p50/p95 latency, the server's CPU time per request, the model's own time for the same call
in-process, and the server's RSS before and after. Bounded in users, time and requests;
loopback only.

--client http (default) speaks Gradio's REST API with httpx: light enough that the clients do not
eat the 2 cores the server needs. --client gradio uses one gradio_client.Client per user, which
costs ~1 s of client CPU per request here, so on 2 cores it measures mostly itself.

    .venv/bin/python benchmarks/faces_load.py [--users 20] [--seconds 60] [--count 16] [--client http|gradio]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import RestClient, cpu_seconds, load, p95, print_table, rss_mb, running_app  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--count", type=int, default=16, help="faces per request")
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS of the server")
    p.add_argument("--max-requests", type=int, default=5000, help="stop after this many in all")
    p.add_argument("--client", choices=["http", "gradio"], default="http")
    args = p.parse_args()

    with running_app(args.threads) as (server, url, cold):
        RestClient(url).predict(0, args.count, api_name="generate_faces")  # the model loads on first use
        rss_before = rss_mb(server.pid)
        cpu0 = cpu_seconds(server.pid)
        # the crowd of benchmarks/load.py on this one endpoint; each request a new seed
        tally, wall = load(
            url, [("generate_faces", (0, args.count))], args.users, args.seconds, args.client, args.max_requests
        )
        server_cpu = cpu_seconds(server.pid) - cpu0
        rss_after = rss_mb(server.pid)
    latencies, errors = tally.latencies["generate_faces"], tally.errors + ["queue full"] * tally.queue_full

    import torch

    from gandemo import registry
    from gandemo.tasks import faces

    torch.set_num_threads(args.threads)
    G = registry.get("faces")["G"]
    faces.generate_faces(G, 0, args.count)
    t = time.perf_counter()
    for s in range(5):
        faces.generate_faces(G, s, args.count)
    model_ms = (time.perf_counter() - t) / 5 * 1000

    rows = [
        ("users × seconds", f"{args.users} × {wall:.0f} s"),
        (f"generate_faces(seed, {args.count}) served", f"{len(latencies)} ({len(latencies) / wall:.1f}/s)"),
        ("errors", f"{len(errors)}" + (f" (first: {errors[0]})" if errors else "")),
        ("latency p50 / p95", f"{statistics.median(latencies):.2f} s / {p95(latencies):.2f} s" if latencies else "–"),
        (
            "server CPU per request (the rest of the 2 cores runs the clients)",
            f"{server_cpu / max(1, len(latencies)) * 1000:.0f} ms",
        ),
        ("the model alone, in-process (mean of 5)", f"{model_ms:.0f} ms"),
        ("server RSS before → after the load", f"{rss_before:.0f} → {rss_after:.0f} MB"),
        ("app cold start", f"{cold:.1f} s"),
    ]
    print_table(
        f"Faces API under load — {args.client} clients, {args.threads} server thread(s), torch {torch.__version__}",
        rows,
    )


if __name__ == "__main__":
    main()
