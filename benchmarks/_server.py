"""What the benchmarks share: start `python app.py` on a free port, read its memory, print the table."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def start_app(threads: int, **env: str) -> tuple[subprocess.Popen, str, float]:
    """Start the app; returns (process, url, seconds from process start to the page answering)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GANDEMO_THREADS": str(threads), **env}
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url)
    except BaseException:
        server.kill()
        raise
    return server, url, time.perf_counter() - t0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process in MB (`VmHWM` for its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- a checkpoint root with every model, and a light client for the REST API ------------------------------
def every_model_root(folder: Path) -> tuple[Path, list[str]]:
    """A checkpoint root with a model for every variant of every task: the shipped checkpoint where
    there is one (linked), else an UNTRAINED stand-in of the cpu preset's size (what a trained one
    costs to load and run), made by the task's own benchmark. Returns (root, one note per model)."""
    from gandemo.checkpoint import arch_entry, save_checkpoint
    from gandemo.tasks import TASKS

    shipped_root = ROOT / "assets" / "checkpoints"
    notes = []
    for spec in TASKS.values():
        for variant in spec.variants:
            shipped, target = shipped_root / spec.name / variant, folder / spec.name / variant
            target.parent.mkdir(parents=True, exist_ok=True)
            if (shipped / "card.json").is_file():
                target.symlink_to(shipped.resolve(), target_is_directory=True)
                notes.append(f"{spec.name}/{variant}: shipped")
                continue
            if spec.name == "edges2photo":
                from benchmarks.edges2photo_latency import model_root

                model_root(folder)
            elif spec.name == "music":
                from benchmarks.music_latency import model_root

                model_root(folder, note_bias=-3.75)
            elif spec.name == "superres":
                from benchmarks.superres_speed import load_model

                G, _, _ = load_model(None)
                kwargs = {"channels": G.channels, "blocks": G.blocks, "batchnorm": True, "bicubic_skip": G.bicubic_skip}
                card = {"task": "superres", "variant": variant, "arch": {"G": arch_entry(G, kwargs)}, "metrics": {}}
                save_checkpoint(target, {"G": G}, card)
            elif spec.name == "anomaly":
                from benchmarks.anomaly_speed import model
                from training.task import task_class

                modules, card, _ = model(variant, folder)
                preset = task_class("anomaly").presets["cpu"]
                kw = {"channels": 1 if variant == "magnetic_tile" else 3, "image_size": preset["image_size"]}
                kwargs = {
                    "G": {"z_dim": 100, "ngf": preset["ngf"], **kw},
                    "D": {"ndf": preset["ndf"], **kw},
                    "E": {"z_dim": 100, "nef": preset["nef"], **kw},
                }
                arch = {name: arch_entry(m, kwargs[name]) for name, m in modules.items()}
                save_checkpoint(target, modules, {"task": "anomaly", "variant": variant, "arch": arch, **card})
            else:
                raise SystemExit(f"no stand-in for {spec.name}/{variant}: ship its checkpoint or add one here")
            notes.append(f"{spec.name}/{variant}: UNTRAINED stand-in of the cpu preset's size")
    return folder, notes


def tab_requests(root: Path, examples: Path) -> dict[str, tuple[str, tuple]]:
    """Each tab's main endpoint with a small, typical request: tab -> (api_name, inputs), every input
    given (as the REST API needs; a Path is a file to upload). The pictures are the app's own
    examples (the anomaly one drawn by the model under `root`), written into `examples`."""
    from gandemo.checkpoint import load_checkpoint
    from gandemo.tasks import TASKS, music
    from gandemo.ui import anomaly, edges2photo, superres

    sketch = edges2photo.example_sketches(examples / "edges")[0]
    picture = superres.example_pictures(examples / "superres")[0]  # 160x120: a small upscale
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


class QueueFull(RuntimeError):
    """The app answered that its queue is full (HTTP 503)."""


class RestClient:
    """One user of the app's REST API (httpx): uploads the files among the inputs, posts the call,
    reads its event stream and, like a page or gradio_client, fetches every file of the answer. Much
    lighter than gradio_client, so that on 2 cores the clients leave the CPU to the server."""

    def __init__(self, url: str, timeout: float = 600) -> None:
        import httpx

        self.url = url.rstrip("/")
        # idle connections are dropped after 2 s, before the server's 5 s keep-alive closes them: a
        # connection the server closed while the client reused it read as "server disconnected"
        self.http = httpx.Client(timeout=timeout, limits=httpx.Limits(keepalive_expiry=2))
        self._uploaded: dict[Path, dict] = {}

    def _file(self, path: Path) -> dict:
        if path not in self._uploaded:  # a page uploads a picture once and sends it with each click
            with open(path, "rb") as f:
                answer = self.http.post(f"{self.url}/gradio_api/upload", files=[("files", (path.name, f))])
            answer.raise_for_status()
            self._uploaded[path] = {
                "path": answer.json()[0],
                "orig_name": path.name,
                "meta": {"_type": "gradio.FileData"},
            }
        return self._uploaded[path]

    def predict(self, *data, api_name: str, fetch: bool = True) -> list:
        import json

        payload = [self._file(d) if isinstance(d, Path) else d for d in data]
        call = f"{self.url}/gradio_api/call/{api_name.lstrip('/')}"
        posted = self.http.post(call, json={"data": payload})
        if posted.status_code == 503:
            raise QueueFull(posted.text[:200])
        posted.raise_for_status()
        kind = None
        with self.http.stream("GET", f"{call}/{posted.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    result = json.loads(line.split(":", 1)[1])
                    if kind == "error":
                        raise RuntimeError(f"{api_name}: {(result or {}).get('error')}")
                    break
            else:
                raise RuntimeError(f"{api_name}: the event stream ended without an answer")
        if fetch:
            for url in _file_urls(result):
                self.http.get(url).raise_for_status()
        return result


def _file_urls(value) -> list[str]:
    if isinstance(value, dict):
        if "url" in value and isinstance(value.get("url"), str) and "path" in value:
            return [value["url"]]
        return [u for v in value.values() for u in _file_urls(v)]
    if isinstance(value, list | tuple):
        return [u for v in value for u in _file_urls(v)]
    return []


def print_table(title: str, rows: list[tuple[str, str]], model: str | None = None) -> None:
    """The benchmark's result: a title line (what ran, on what), the model it measured, then a
    Markdown table of (measurement, value) rows, ready to paste into the README."""
    print(f"\n{title}")
    if model:
        print(f"Model: {model}")
    print("\n| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
