"""The whole app under load: concurrent users on loopback, as a crowd meets a Space, across the tabs.

Starts `python app.py` on a free port with a model for every tab (the shipped checkpoints; an untrained
stand-in of the cpu preset's size for a task not trained yet), calls each endpoint once, lets the
crowd run unmeasured for --warmup-seconds (thread pools, caches and kept figures fill), then lets
--users clients call the tabs' main endpoints back to back for --rounds rounds of --seconds each:
user i starts at tab i and goes round the tabs, each request with a new seed, fetching every file of
each answer as a page or gradio_client does. It prints the requests served, the errors (a full queue
is counted on its own: it is the app's answer to too many users, not a failure), p50/p95 latency per
endpoint, the server's CPU time per request, and its resident memory (RSS) with every endpoint called
once, after the warm-up and after each round, with the growth of each round (issue 32's aim: the first
round at most +25 % over the memory with every endpoint called once, then at most +1 % a round). Each
reading is taken after --settle-seconds without requests (two of the app's malloc_trim periods), so
that it shows what the server holds rather than what its last requests had just freed; the reading at
once, as the last request ends, is printed beside it.
Bounded in users, time and requests; loopback only.

--client gradio (default) uses one gradio_client.Client per user; it costs the client about as much
CPU as the server, so on 2 cores it measures the clients too. --client http speaks the REST API with
httpx (benchmarks/_server.RestClient), light enough to leave the cores to the server.

    .venv/bin/python benchmarks/load.py [--users 20] [--rounds 5] [--seconds 40] [--client gradio|http]
                                        [--warmup-seconds 0] [--tabs faces,music]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._server import (  # noqa: E402
    RestClient,
    Tally,
    cpu_seconds,
    every_model_root,
    load,
    p95,
    rss_mb,
    running_app,
    tab_requests,
)
from gandemo.ui.serving import MALLOC_TRIM_EVERY_S  # noqa: E402


def round_growth(rss: list[float]) -> list[float]:
    """Growth in % of each round over the one before: rss[0] is the memory before the first round."""
    return [100 * (after - before) / before for before, after in zip(rss, rss[1:], strict=False)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5, help="rounds of --seconds; RSS is read after each")
    p.add_argument("--seconds", type=float, default=40, help="length of one round")
    p.add_argument("--client", choices=["gradio", "http"], default="gradio")
    p.add_argument("--threads", type=int, default=1, help="GANDEMO_THREADS of the server")
    p.add_argument("--max-requests", type=int, default=5000, help="stop a round after this many in all")
    p.add_argument(
        "--warmup-seconds",
        type=float,
        default=0,
        help="the same crowd first, unmeasured (0: none, as a Space meets it)",
    )
    p.add_argument("--tabs", default="basics,faces,edges2photo,superres,music,anomaly", help="comma-separated")
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=2 * MALLOC_TRIM_EVERY_S,
        help="idle time before each RSS reading: the app's allocator trimming has run since the last "
        "request, so the reading is what the server holds, not what it has just freed",
    )
    p.add_argument("--server-log", type=Path, help="append the server's output here (default: discarded)")
    args = p.parse_args()

    def held_mb(pid: int) -> tuple[float, float, float, float]:
        """(RSS at once, RSS after --settle-seconds idle, its anonymous part, its file-backed part) of the
        server: the file-backed part is library code and data paged in as new code paths first run."""
        at_once = rss_mb(pid)
        time.sleep(args.settle_seconds)
        return at_once, rss_mb(pid), rss_mb(pid, "RssAnon"), rss_mb(pid, "RssFile")

    import os

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root, notes = every_model_root(Path(tmp) / "checkpoints")
        by_tab = tab_requests(root, Path(tmp) / "examples")
        requests = [by_tab[t] for t in args.tabs.split(",")]
        with running_app(args.threads, args.server_log, GANDEMO_CHECKPOINTS=str(root)) as (server, url, cold):
            warm = RestClient(url)
            for api, inputs in requests:  # every model loaded and run once
                warm.predict(*inputs, api_name=api)
            readings = [held_mb(server.pid)]
            if args.warmup_seconds > 0:  # then the crowd, unmeasured: per-thread pools, caches, kept figures
                load(url, requests, args.users, args.warmup_seconds, args.client, args.max_requests)
                readings.append(held_mb(server.pid))
            cpu0 = cpu_seconds(server.pid)
            tally, wall = Tally(latencies={api: [] for api, _ in requests}), 0.0
            for i in range(args.rounds):
                t, w = load(url, requests, args.users, args.seconds, args.client, args.max_requests)
                tally.merge(t)
                wall += w
                readings.append(held_mb(server.pid))
                _, mb, anon, file = readings[-1]
                print(
                    f"round {i + 1}: {t.served()} served, RSS {mb:.0f} MB (anon {anon:.0f}, file {file:.0f})",
                    flush=True,
                )
            server_cpu = cpu_seconds(server.pid) - cpu0
            peak = rss_mb(server.pid, "VmHWM")

    served = tally.served()
    print(
        f"\nThe app under load — {args.users} {args.client} users × {args.rounds} rounds of {args.seconds:.0f} s "
        f"on loopback, {args.threads} server thread(s), {len(os.sched_getaffinity(0))} usable CPU(s) for server "
        f"and clients together, torch {torch.__version__}\n"
    )
    print("| endpoint | served | p50 | p95 |\n|---|---|---|---|")
    for api, values in tally.latencies.items():
        if values:
            print(f"| {api} | {len(values)} | {statistics.median(values):.2f} s | {p95(values):.2f} s |")
        else:
            print(f"| {api} | 0 | – | – |")
    labels = ["every endpoint called once"]
    if args.warmup_seconds > 0:
        labels.append(f"after the {args.warmup_seconds:.0f} s warm-up")
    labels += [f"after round {i + 1}" for i in range(args.rounds)]
    rss = [settled for _, settled, _, _ in readings]
    growth = ["", *(f"{g:+.1f} %" for g in round_growth(rss))]
    print(
        f"\n| server RSS | MB, after {args.settle_seconds:.0f} s idle | growth | of it anonymous / file-backed "
        "| MB, at once |\n|---|---|---|---|---|"
    )
    for label, (at_once, mb, anon, file), g in zip(labels, readings, growth, strict=True):
        print(f"| {label} | {mb:.0f} | {g} | {anon:.0f} / {file:.0f} | {at_once:.0f} |")
    rows = [
        ("requests served", f"{served} ({served / max(wall, 1e-9):.2f}/s)"),
        (
            "errors (a full queue not counted)",
            f"{len(tally.errors)}" + (f"; first: {tally.errors[0]}" if tally.errors else ""),
        ),
        ("answered 'queue is full'", str(tally.queue_full)),
        ("server CPU per request served", f"{server_cpu / max(1, served) * 1000:.0f} ms"),
        ("server peak RSS", f"{peak:.0f} MB"),
        ("app start to page served", f"{cold:.1f} s"),
    ]
    print("\n| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print("\nModels: " + "; ".join(notes))


if __name__ == "__main__":
    main()
