"""What the benchmarks share, in one module: the scripts import it, and it imports none of them.

- the app as a user meets it: `python app.py` started on a free port, its memory and CPU time;
- timing: the median of repeated calls, one training step of a trainer at the cpu preset;
- synthetic data in each trainer's layout (images, edges|photo pairs, chorales, an MVTec category);
- models: an UNTRAINED stand-in of the cpu preset's size where no checkpoint is shipped (an untrained
  network costs what a trained one does), a checkpoint root with every model, each tab's typical request;
- clients: a light REST client, and the crowd that `load.py` and `faces_load.py` put on the app;
- the result as a Markdown table.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent


# ---- the app as a user meets it ---------------------------------------------------------------------


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


@contextlib.contextmanager
def running_app(threads: int, **env: str) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """`start_app` for the block: (process, url, seconds to the page); the server is stopped after
    it, whatever happens."""
    server, url, seconds = start_app(threads, **env)
    try:
        yield server, url, seconds
    finally:
        server.terminate()
        server.wait()


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


# ---- timing ---------------------------------------------------------------------------------------------
def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first call pays for lazy loading and allocator growth
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def step_seconds(name: str, data: Path, channels_last: bool, bf16: bool, steps: int) -> tuple[float, int]:
    """Median seconds of one training step of task `name` at the cpu preset, and its batch size."""
    import torch

    from training import loop
    from training.run import parse_train_args
    from training.task import task_class

    cls = task_class(name)
    args = parse_train_args(cls, ["--data", str(data), "--out", "unused", "--no-progress"])
    args.limit, args.eval_every = None, 0
    task = cls(args, torch.device("cpu"))
    original = loop.cpu_has_fast_bf16
    loop.cpu_has_fast_bf16 = lambda: bf16
    try:
        amp = loop.Amp(torch.device("cpu"), enabled=bf16, channels_last=channels_last)
    finally:
        loop.cpu_has_fast_bf16 = original
    for m in task.models.values():
        amp.prepare(m)
    ema = loop.EMA(task.models[cls.ema_of], task.ema_decay) if cls.ema_of else None
    times = []
    for i in range(steps + 2):  # two warm-up steps: oneDNN picks and caches its kernels
        t0 = time.perf_counter()
        batch = task.next_batch()
        task.train_step(amp.batch(batch) if isinstance(batch, torch.Tensor) else batch, amp)
        if ema:
            ema.update(task.models[cls.ema_of])
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), args.batch_size


# ---- synthetic data, in each trainer's layout ---------------------------------------------------------
def synthetic_images(folder: Path, n: int = 160, size: int = 96) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    return folder


def task_data(name: str, images: Path) -> Path:
    """What a trainer's --data reads: the folder of images, or the task's own layout (made here beside
    it) where a plain folder does not fit."""
    if name == "edges2photo":  # A|B pairs
        return pair_folder(images.parent / "pairs", 64)
    if name == "anomaly":  # one category in the MVTec layout
        return mvtec_tree(images.parent / "mvtec")
    if name == "music":  # chorales in the JSB JSON layout
        return chorale_folder(images.parent / "chorales")
    return images


def shoe_photo(path: Path, seed: int = 0, size: tuple[int, int] = (400, 300)) -> Path:
    """A shoe-like photo: a coloured silhouette with a sole, a stripe and lace holes, on white."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    body = tuple(int(c) for c in rng.integers(20, 200, 3))
    top = 0.15 + 0.2 * rng.random()
    d.polygon(
        [(0.05 * w, 0.85 * h), (0.95 * w, 0.85 * h), (0.92 * w, 0.6 * h), (0.5 * w, 0.45 * h), (0.4 * w, top * h)]
        + [(0.08 * w, top * h)],
        fill=body,
    )
    d.rectangle([(0.05 * w, 0.78 * h), (0.95 * w, 0.85 * h)], fill=(235, 235, 225))  # sole
    d.line([(0.15 * w, 0.65 * h), (0.85 * w, 0.7 * h)], fill=tuple(255 - c for c in body), width=max(2, h // 40))
    for i in range(4):
        x, y = 0.42 * w + i * 0.08 * w, 0.5 * h + i * 0.02 * h
        d.ellipse([(x - 4, y - 4), (x + 4, y + 4)], fill=(250, 250, 250))
    img.save(path, quality=92)
    return path


def pair_folder(folder: Path, n: int) -> Path:
    """`n` A|B pairs (256x128: edges | photo) of shoe-like photos, the edges by the data's recipe."""
    from gandemo.tasks import edges2photo

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        photo = edges2photo.prepare_photo(shoe_photo(folder / "photo.tmp.jpg", seed=i, size=(136, 102)))
        pair = Image.new("RGB", (2 * edges2photo.SIZE, edges2photo.SIZE), "white")
        pair.paste(edges2photo.photo_to_edges(photo), (0, 0))
        pair.paste(photo, (edges2photo.SIZE, 0))
        pair.save(folder / f"{i:04d}.jpg", quality=95)
    (folder / "photo.tmp.jpg").unlink()
    return folder


def chorale_folder(folder: Path, pieces: int = 60, seed: int = 0) -> Path:
    """A JSB-layout chorales folder (`Jsb16thSeparated.json`, train/valid/test) of random pieces:
    4 voices in their ranges moving by small steps, one note a quarter or a half. It costs a
    trainer what the real chorales cost (the same phrase count per piece and the same rolls)."""
    import json

    rng = np.random.default_rng(seed)
    ranges = ((60, 81), (52, 74), (46, 69), (36, 66))  # soprano, alto, tenor, bass (the data's own)

    def piece() -> list[list[int]]:
        steps = 4 * int(rng.integers(40, 70))
        voices = []
        for lo, hi in ranges:
            pitch, line = int(rng.integers(lo + 4, hi - 4)), []
            while len(line) < steps:
                pitch = int(np.clip(pitch + rng.integers(-3, 4), lo, hi))
                line += [pitch] * int(rng.choice([4, 8]))
            voices.append(line[:steps])
        return [list(step) for step in zip(*voices, strict=True)]

    folder.mkdir(parents=True, exist_ok=True)
    data = {split: [piece() for _ in range(n)] for split, n in (("train", pieces), ("valid", 8), ("test", 8))}
    (folder / "Jsb16thSeparated.json").write_text(json.dumps(data))
    return folder


def plate(path: Path, size: tuple[int, int], seed: int = 0, scratch: bool = True) -> Path:
    """A grey plate with a soft gradient and noise, and a dark scratch (a stand-in product photo)."""
    rng = np.random.default_rng(seed)
    w, h = size
    a = np.linspace(90, 150, w)[None, :, None] + rng.normal(0, 6, (h, w, 3))
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if scratch:
        ImageDraw.Draw(img).line([(0.2 * w, 0.4 * h), (0.7 * w, 0.55 * h)], fill=(30, 30, 30), width=max(2, w // 60))
    img.save(path, quality=92)
    return path


def mvtec_tree(folder: Path, n: int = 64, size: int = 128) -> Path:
    """One anomaly category in the MVTec layout: `n` normal plates to train on, 8 to calibrate on."""
    for split, count in (("train/good", n), ("val/good", 8)):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            plate(folder / split / f"{i:03d}.png", (size, size), seed=i, scratch=False)
    return folder


# ---- models: the shipped checkpoint, or an untrained stand-in of the cpu preset's size -----------------
def app_model(task: str, root: Path | None, threads: int) -> Any:
    """Task `task`'s G in this process as the app holds it (channels_last, eval mode), with `threads`
    torch threads and the registry reading `root` (None: the app's own checkpoints)."""
    import torch

    from gandemo import registry

    torch.set_num_threads(threads)
    if root:
        os.environ[registry.ENV_ROOT] = str(root)
        registry.clear()
    return registry.get(task)["G"]


def save_stand_in(
    folder: Path, task: str, variant: str, modules: dict[str, Any], kwargs: dict[str, dict], **card: Any
) -> float:
    """Write untrained `modules` (their constructor `kwargs` by name) as a checkpoint folder the app
    loads; returns their parameters in millions."""
    from gandemo.checkpoint import arch_entry, save_checkpoint

    arch = {name: arch_entry(m, kwargs[name]) for name, m in modules.items()}
    save_checkpoint(folder, modules, {"task": task, "variant": variant, "arch": arch, "metrics": {}, **card})
    return sum(p.numel() for m in modules.values() for p in m.parameters()) / 1e6


def edges2photo_root(tmp: Path) -> tuple[Path | None, str]:
    """(checkpoint root to use, None = the app's own; what the edges2photo model is, in words)."""
    from gandemo import registry

    if registry.status("edges2photo") is None:
        return None, f"the shipped checkpoint ({registry.checkpoint_dir('edges2photo')})"
    from gandemo.nets.pix2pix import UNetGenerator
    from training.task import task_class

    preset = task_class("edges2photo").presets["cpu"]
    kwargs = {"in_channels": 3, "out_channels": 3, "ngf": preset["ngf"], "depth": 7, "max_mult": preset["max_mult"]}
    G = UNetGenerator(**kwargs).eval()
    params = save_stand_in(tmp / "edges2photo" / "default", "edges2photo", "default", {"G": G}, {"G": kwargs})
    return tmp, (
        f"NO edges2photo checkpoint is shipped yet: an UNTRAINED U-Net of the cpu preset's size "
        f"(ngf={kwargs['ngf']}, max_mult={kwargs['max_mult']}, {params:.2f} M parameters; the same cost)"
    )


def music_root(tmp: Path, note_bias: float) -> tuple[Path | None, str]:
    """(checkpoint root to use, None = the app's own; what the music model is, in words). The stand-in's
    weights are redrawn at unit gain and its note bias set to `note_bias`, so that it writes about as
    many notes as a chorale phrase (an untrained G switches every note on or none)."""
    from gandemo import registry

    if registry.status("music") is None:
        return None, f"the shipped checkpoint ({registry.checkpoint_dir('music')})"
    import torch

    from gandemo.nets.musegan import MuseGenerator, TrackLinear
    from gandemo.tasks import music
    from training.task import task_class

    preset = task_class("music").presets["cpu"]
    kwargs = {
        "n_tracks": len(music.TRACKS),
        "n_bars": music.N_BARS,
        "steps_per_bar": music.STEPS_PER_BAR,
        "n_pitches": music.N_PITCHES,
        "z_dim": 32,
        "width": preset["g_width"],
        "temporal_width": 128,
    }
    torch.manual_seed(0)
    G = MuseGenerator(**kwargs).eval()
    with torch.no_grad():
        for m in G.modules():
            if isinstance(m, TrackLinear | torch.nn.Linear):
                fan_in = m.weight.shape[-2] if isinstance(m, TrackLinear) else m.weight.shape[-1]
                m.weight.normal_(0, (2 / fan_in) ** 0.5)
        G.semitone_bias.fill_(note_bias)
    params = save_stand_in(tmp / "music" / "default", "music", "default", {"G": G}, {"G": kwargs})
    return tmp, (
        f"NO music checkpoint is shipped yet: an UNTRAINED G of the cpu preset's size (width {kwargs['width']}, "
        f"{params:.2f} M parameters; the same cost), weights at unit gain and note bias {note_bias:g} for sparse notes"
    )


def superres_model(checkpoint: Path | None) -> tuple[Any, str, Path | None]:
    """(G in eval mode, NCHW; what it is, in words; its checkpoint folder or None): `checkpoint`, else
    the shipped gan one, else an untrained SRResNet of the cpu preset's size."""
    import torch

    from gandemo import registry
    from gandemo.checkpoint import load_checkpoint

    folder = checkpoint or registry.checkpoint_dir("superres", "gan")
    if (folder / "card.json").is_file():
        return load_checkpoint(folder)["G"], f"checkpoint {folder}", folder
    if checkpoint:
        raise SystemExit(f"no checkpoint at {checkpoint}")
    from gandemo.nets.srgan import SRResNet
    from training.task import task_class

    preset = task_class("superres").presets["cpu"]
    kwargs = {"channels": preset["channels"], "blocks": preset["blocks"], "batchnorm": True, "bicubic_skip": True}
    torch.manual_seed(0)
    G = SRResNet(**kwargs).eval().requires_grad_(False)
    params = sum(p.numel() for p in G.parameters()) / 1e6
    return G, f"NO trained checkpoint: an UNTRAINED SRResNet of the cpu preset's size ({kwargs}, {params:.2f} M)", None


def save_superres(G: Any, folder: Path, variant: str) -> None:
    """Write an upscaler G as a superres checkpoint folder the app loads."""
    kwargs = {"channels": G.channels, "blocks": G.blocks, "batchnorm": True, "bicubic_skip": G.bicubic_skip}
    save_stand_in(folder, "superres", variant, {"G": G}, {"G": kwargs})


def every_model_root(folder: Path) -> tuple[Path, list[str]]:
    """A checkpoint root with a model for every variant of every task: the shipped checkpoint where
    there is one (linked), else an UNTRAINED stand-in of the cpu preset's size (what a trained one
    costs to load and run). Returns (root, one note per model)."""
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
                edges2photo_root(folder)
            elif spec.name == "music":
                music_root(folder, note_bias=-3.75)
            elif spec.name == "superres":
                save_superres(superres_model(None)[0], target, variant)
            else:
                # none for anomaly: an untrained detector must also be calibrated by the task's own
                # methods, which are being rewritten (benchmarks/anomaly_speed.py builds its own)
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


# ---- clients ---------------------------------------------------------------------------------------------
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


# ---- the crowd: concurrent users on loopback -------------------------------------------------------------
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
    """Run the crowd: `users` clients calling `requests` (api_name, inputs) in turn, each request with a
    new seed, for `seconds` or `max_requests` in all; returns what it saw and the wall time."""
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


# ---- the result -------------------------------------------------------------------------------------------
def print_table(title: str, rows: list[tuple[str, str]], model: str | None = None) -> None:
    """The benchmark's result: a title line (what ran, on what), the model it measured, then a
    Markdown table of (measurement, value) rows, ready to paste into the docs (docs/<task>.md)."""
    print(f"\n{title}")
    if model:
        print(f"Model: {model}")
    print("\n| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
