"""The whole app under load: concurrent users on loopback, as a crowd meets a Space, across the tabs.

Starts `python app.py` on a free port with a model for every tab (the shipped checkpoints; an untrained
stand-in of the cpu preset's size for a task not trained yet), calls each endpoint once, lets the
crowd run unmeasured for --warmup-seconds (thread pools, caches and kept figures fill), then lets
--users clients call the tabs' main endpoints back to back for --seconds: user i starts at
tab i and goes round the tabs, each request with a new seed, fetching every file of each answer as
a page or gradio_client does. It prints the requests served, the errors (a full queue is counted on
its own: it is the app's answer to too many users, not a failure), p50/p95 latency per endpoint,
the server's CPU time per request, and its resident memory after the warm-up and after the load
(aim: at most 10 % growth). Bounded in users, time and requests; loopback only.

--client gradio (default) uses one gradio_client.Client per user; it costs the client about as much
CPU as the server, so on 2 cores it measures the clients too. --client http speaks the REST API with
httpx (benchmarks/_server.RestClient), light enough to leave the cores to the server.

    .venv/bin/python benchmarks/load.py [--users 20] [--seconds 60] [--client gradio|http] [--tabs faces,music]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import (  # noqa: E402
    QueueFull,
    RestClient,
    cpu_seconds,
    every_model_root,
    rss_mb,
    start_app,
    tab_requests,
)

SEEDED = {"generate_faces": 0, "compose_music": 0, "toy_gan": 7}  # which input is the seed


@dataclass
class Tally:
    """What the users saw, per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    queue_full: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self) -> int:
        return sum(len(v) for v in self.latencies.values())


def make_client(kind: str, url: str) -> Callable[..., object]:
    """A user's `predict(*inputs, api_name=...)`: gradio_client's (files through handle_file) or REST."""
    if kind == "http":
        return RestClient(url).predict
    from gradio_client import Client, handle_file

    # gradio_client's own HTTP timeout is httpx's 5 s: on a saturated machine a slow file download or
    # queue join would count as an error, where a page simply waits
    client = Client(url, verbose=False, httpx_kwargs={"timeout": 600})

    def predict(*inputs: object, api_name: str) -> object:
        args = [handle_file(str(a)) if isinstance(a, Path) else a for a in inputs]
        return client.predict(*args, api_name=f"/{api_name}")

    return predict


def with_seed(api: str, inputs: tuple, seed: int) -> tuple:
    if api not in SEEDED:
        return inputs
    args = list(inputs)
    args[SEEDED[api]] = seed
    return tuple(args)


def load(
    url: str,
    requests: list[tuple[str, tuple]],
    users: int,
    seconds: float,
    client: str,
    max_requests: int,
) -> tuple[Tally, float]:
    """Run the crowd; returns what it saw and the wall time."""
    tally = Tally(latencies={api: [] for api, _ in requests})
    deadline = time.monotonic() + seconds

    def user(i: int) -> None:
        from gradio_client.utils import QueueError

        predict = make_client(client, url)
        n = i
        while time.monotonic() < deadline:
            with tally.lock:
                if tally.served() + len(tally.errors) + tally.queue_full >= max_requests:
                    return
            api, inputs = requests[n % len(requests)]
            n += 1
            t0 = time.perf_counter()
            try:
                predict(*with_seed(api, inputs, 1000 * i + n), api_name=api)
                with tally.lock:
                    tally.latencies[api].append(time.perf_counter() - t0)
            except (QueueError, QueueFull):
                with tally.lock:
                    tally.queue_full += 1
            except Exception as exc:  # counted and shown, the run goes on
                with tally.lock:
                    tally.errors.append(f"{api}: {type(exc).__name__}: {str(exc)[:100]}")

    workers = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return tally, time.perf_counter() - t0


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 2 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--client", choices=["gradio", "http"], default="gradio")
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS of the server")
    p.add_argument("--max-requests", type=int, default=5000, help="stop after this many in all")
    p.add_argument(
        "--warmup-seconds", type=float, default=20, help="the same crowd first, unmeasured: caches and pools fill"
    )
    p.add_argument("--tabs", default="basics,faces,edges2photo,superres,music,anomaly", help="comma-separated")
    args = p.parse_args()

    import os

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root, notes = every_model_root(Path(tmp) / "checkpoints")
        by_tab = tab_requests(root, Path(tmp) / "examples")
        requests = [by_tab[t] for t in args.tabs.split(",")]
        server, url, cold = start_app(args.threads, GANDEMO_CHECKPOINTS=str(root))
        try:
            warm = RestClient(url)
            for api, inputs in requests:  # every model loaded and run once
                warm.predict(*inputs, api_name=api)
            rss_loaded = rss_mb(server.pid)
            if args.warmup_seconds > 0:  # then the crowd, unmeasured: per-thread pools, caches, kept figures
                load(url, requests, args.users, args.warmup_seconds, args.client, args.max_requests)
            rss_before = rss_mb(server.pid)
            cpu0 = cpu_seconds(server.pid)
            tally, wall = load(url, requests, args.users, args.seconds, args.client, args.max_requests)
            server_cpu = cpu_seconds(server.pid) - cpu0
            rss_after = rss_mb(server.pid)
            peak = rss_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait()

    served = tally.served()
    print(
        f"\nThe app under load — {args.users} {args.client} users × {wall:.0f} s on loopback, {args.threads} "
        f"server thread(s), {len(os.sched_getaffinity(0))} usable CPU(s) for server and clients together, "
        f"torch {torch.__version__}\n"
    )
    print("| endpoint | served | p50 | p95 |\n|---|---|---|---|")
    for api, values in tally.latencies.items():
        if values:
            print(f"| {api} | {len(values)} | {statistics.median(values):.2f} s | {p95(values):.2f} s |")
        else:
            print(f"| {api} | 0 | – | – |")
    growth = 100 * (rss_after - rss_before) / rss_before
    rows = [
        ("requests served", f"{served} ({served / wall:.2f}/s)"),
        (
            "errors (a full queue not counted)",
            f"{len(tally.errors)}" + (f"; first: {tally.errors[0]}" if tally.errors else ""),
        ),
        ("answered 'queue is full'", str(tally.queue_full)),
        ("server CPU per request served", f"{server_cpu / max(1, served) * 1000:.0f} ms"),
        ("server RSS, every endpoint called once", f"{rss_loaded:.0f} MB"),
        (
            f"server RSS after the {args.warmup_seconds:.0f} s warm-up → after the load",
            f"{rss_before:.0f} → {rss_after:.0f} MB ({growth:+.1f} %)",
        ),
        ("server peak RSS", f"{peak:.0f} MB"),
        ("app start to page served", f"{cold:.1f} s"),
    ]
    print("\n| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\nModels: " + "; ".join(notes))


if __name__ == "__main__":
    main()
