"""The faces API under load: concurrent gradio_client users on loopback, as a crowd meets a Space.

Starts `python app.py` on a free port, lets --users clients call `generate_faces(seed, --count)`
back to back for --seconds (each request a new seed; each client fetches every gallery image and
the grid file, as a browser or gradio_client does), then prints the requests served, errors,
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import cpu_seconds, rss_mb, start_app  # noqa: E402


class HttpClient:
    """generate_faces over Gradio's REST API (POST the call, read its event stream, fetch files)."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=120)

    def predict(self, *data, api_name: str):
        import json

        call = f"{self.url}/gradio_api/call{api_name}"
        event = self.http.post(call, json={"data": list(data)}).json()["event_id"]
        result = None
        with self.http.stream("GET", f"{call}/{event}") as stream:
            kind = None
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    payload = json.loads(line.split(":", 1)[1])
                    if kind == "error":
                        raise RuntimeError(payload)
                    result = payload
                    break
        gallery, grid = result
        for item in [*(g["image"] for g in gallery), grid]:  # what a page or gradio_client downloads
            self.http.get(item["url"]).raise_for_status()
        return gallery, grid


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--count", type=int, default=16, help="faces per request")
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS of the server")
    p.add_argument("--max-requests", type=int, default=5000, help="stop after this many in all")
    p.add_argument("--client", choices=["http", "gradio"], default="http")
    args = p.parse_args()

    from gradio_client import Client

    server, url, cold = start_app(args.threads)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    try:
        warm = Client(url, verbose=False)
        warm.predict(0, args.count, api_name="/generate_faces")  # the model loads on first use
        rss_before = rss_mb(server.pid)
        deadline = time.monotonic() + args.seconds

        def user(i: int) -> None:
            client = Client(url, verbose=False) if args.client == "gradio" else HttpClient(url)
            seed = i * 100_000
            while time.monotonic() < deadline:
                with lock:
                    if len(latencies) + len(errors) >= args.max_requests:
                        return
                seed += 1
                t0 = time.perf_counter()
                try:
                    gallery, _ = client.predict(seed, args.count, api_name="/generate_faces")
                    assert len(gallery) == args.count
                    with lock:
                        latencies.append(time.perf_counter() - t0)
                except Exception as exc:  # counted and shown, the run goes on
                    with lock:
                        errors.append(f"{type(exc).__name__}: {str(exc)[:80]}")

        workers = [threading.Thread(target=user, args=(i,)) for i in range(args.users)]
        t0 = time.perf_counter()
        cpu0 = cpu_seconds(server.pid)
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - t0
        server_cpu = cpu_seconds(server.pid) - cpu0
        rss_after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()

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

    q = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [float("nan")] * 19
    rows = [
        ("users × seconds", f"{args.users} × {wall:.0f} s"),
        (f"generate_faces(seed, {args.count}) served", f"{len(latencies)} ({len(latencies) / wall:.1f}/s)"),
        ("errors", f"{len(errors)}" + (f" (first: {errors[0]})" if errors else "")),
        ("latency p50 / p95", f"{statistics.median(latencies):.2f} s / {q[18]:.2f} s" if latencies else "–"),
        (
            "server CPU per request (the rest of the 2 cores runs the clients)",
            f"{server_cpu / max(1, len(latencies)) * 1000:.0f} ms",
        ),
        ("the model alone, in-process (mean of 5)", f"{model_ms:.0f} ms"),
        ("server RSS before → after the load", f"{rss_before:.0f} → {rss_after:.0f} MB"),
        ("app cold start", f"{cold:.1f} s"),
    ]
    print(
        f"\nFaces API under load — {args.client} clients, {args.threads} server thread(s), torch {torch.__version__}\n"
    )
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
