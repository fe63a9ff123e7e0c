"""What the benchmarks share, in one module: the scripts import it, and it imports none of them.

- the app as a user meets it: `python app.py` started on a free port, its memory and CPU time;
- timing: the median of repeated calls, one training step of a trainer at the cpu preset;
- each task's part, found by the task's name in `benchmarks/tasks/<name>.py` (no per-task code here):
  its trainer's data layout, an UNTRAINED stand-in of the cpu preset's size where no checkpoint is
  shipped (an untrained network costs what a trained one does), its tab's typical request; from these
  a checkpoint root with every model and every tab's request;
- clients: a light REST client, and the crowd that `load.py` and `faces_load.py` put on the app;
- the result as a Markdown table.
"""

from __future__ import annotations

import contextlib
import importlib
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
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# ---- the app as a user meets it ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# seconds the app may take to serve its page: 6 s on 2 idle cores, minutes under `nice` beside training runs
START_TIMEOUT_S = float(os.environ.get("GANDEMO_BENCH_START_TIMEOUT", 900))


def wait_for(url: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # a long timeout, not a retry every 2 s: each retry makes a starved server render the page
            # again, and Gradio's own check of its page (3 s, at launch) then fails and stops the app
            with urllib.request.urlopen(url, timeout=60) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def start_app(threads: int, log: Path | None = None, **env: str) -> tuple[subprocess.Popen, str, float]:
    """Start the app; returns (process, url, seconds from process start to the page answering). Its
    output is discarded, or appended to `log` with Python's fault handler on (a crash's stacks)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GANDEMO_THREADS": str(threads), **env}
    if log is not None:
        env["PYTHONFAULTHANDLER"] = "1"
    out = subprocess.DEVNULL if log is None else log.open("ab")
    t0 = time.perf_counter()
    try:
        server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    finally:
        if log is not None:
            out.close()  # the server has its own copy
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url)
    except BaseException:
        server.kill()
        raise
    return server, url, time.perf_counter() - t0


@contextlib.contextmanager
def running_app(threads: int, log: Path | None = None, **env: str) -> Iterator[tuple[subprocess.Popen, str, float]]:
    """`start_app` for the block: (process, url, seconds to the page); the server is stopped after
    it, whatever happens."""
    server, url, seconds = start_app(threads, log, **env)
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


# ---- each task's part, found by its name: benchmarks/tasks/<name>.py ----------------------------------------
def task_hooks(name: str) -> ModuleType:
    """The benchmark hooks of task `name` (`benchmarks/tasks/<name>.py`; what they hold: its docstring)."""
    module_name = f"benchmarks.tasks.{name}"
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SystemExit(
            f"no benchmark hooks for task {name!r}: add benchmarks/tasks/{name}.py (see benchmarks/tasks/__init__.py)"
        ) from None


def task_data(name: str, images: Path) -> Path:
    """What task `name`'s trainer reads as --data: its hooks' `data(images)`, else the plain image
    folder `images`."""
    data = getattr(task_hooks(name), "data", None)
    return data(images) if data else images


def every_model_root(folder: Path) -> tuple[Path, list[str]]:
    """A checkpoint root with a model for every variant of every task: the shipped checkpoint where
    there is one (linked), else the task's UNTRAINED stand-in of the cpu preset's size (its hooks'
    `stand_in`: what a trained one costs to load and run). Returns (root, one note per model)."""
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
            stand_in = getattr(task_hooks(spec.name), "stand_in", None)
            if stand_in is None:
                raise SystemExit(
                    f"no stand-in for {spec.name}/{variant}: ship its checkpoint or add `stand_in` to "
                    f"benchmarks/tasks/{spec.name}.py"
                )
            notes.append(f"{spec.name}/{variant}: {stand_in(target, variant)}")
    return folder, notes


def tab_requests(root: Path, examples: Path) -> dict[str, tuple[str, tuple]]:
    """Each tab's main endpoint with a small, typical request: tab -> (api_name, inputs), every input
    given (as the REST API needs; a Path is a file to upload), from each task's hooks' `request`. The
    pictures are the app's own examples (drawn by the models under `root`), written into `examples`."""
    from gandemo.tasks import TASKS

    return {name: task_hooks(name).request(root, examples) for name in TASKS}


def seed_inputs() -> dict[str, int]:
    """api_name -> which of its inputs is a seed, from the tasks' hooks (`SEED_INPUT`)."""
    from gandemo.tasks import TASKS

    seeded = {}
    for name in TASKS:
        hooks = task_hooks(name)
        if getattr(hooks, "SEED_INPUT", None) is not None:
            seeded[hooks.API] = hooks.SEED_INPUT
    return seeded


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


@dataclass
class Tally:
    """What the users saw, per endpoint."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    queue_full: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def merge(self, other: Tally) -> None:
        """Add what `other` (a later round) saw."""
        for api, values in other.latencies.items():
            self.latencies.setdefault(api, []).extend(values)
        self.errors += other.errors
        self.queue_full += other.queue_full


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
    seeded = seed_inputs()
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
                predict(*with_seed(inputs, seeded.get(api), 1000 * i + n), api_name=api)
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


def with_seed(inputs: tuple, index: int | None, seed: int) -> tuple:
    """`inputs` with `seed` as input `index` (None: the endpoint takes no seed)."""
    if index is None:
        return inputs
    args = list(inputs)
    args[index] = seed
    return tuple(args)


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
