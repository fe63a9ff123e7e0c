"""The tabbed app: one tab per task of `gandemo.tasks.TASKS`, in that order. A task's tab is
`gandemo.ui.<name>.build(spec)`; a task whose tab module has not landed yet shows how its model
will be made, and a tab whose model is missing says so (the other tabs work regardless)."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import inspect
import os
import sys
import threading
import time
from typing import Any

import gradio as gr
import torch

from gandemo.tasks import TASKS, TaskSpec
from gandemo.ui.common import unavailable
from gandemo.validation import shown

TITLE = "GAN Studio"
CSS = """
.unavailable { border: 1px dashed var(--border-color-primary); border-radius: 8px; padding: 12px; }
"""
THREADS_ENV = "GANDEMO_THREADS"
QUEUE_SIZE_ENV = "GANDEMO_QUEUE_SIZE"
# Waiting requests the queue holds over all events (running ones are not counted); one more is
# answered "the queue is full" at once. 40 = twice the 20-user crowd of benchmarks/load.py, whose
# every user has one request out at a time: on 2 vCPUs a longer queue only means longer waits.
QUEUE_SIZE_DEFAULT = 40
MAX_FILE_SIZE = "64mb"  # uploads above this are refused before they reach the disk (the pixel caps are smaller)
# Sessions whose state the server keeps (Gradio's default: 10,000). Each keeps its last outputs (a
# GAN Basics plot is a PNG of ~100 kB) and its gr.State; every API call without a session is one.
# Beyond this the least recently used are dropped: such a visitor's next Start begins a new toy game.
STATE_SESSIONS = 500
# Finished events whose timings Gradio keeps for its analytics page (its default: 10,000, ~1 kB each)
ANALYTICS_EVENTS = 500
# glibc malloc: at most this many arenas (its default is 8 per core: each request thread ends up with
# its own, and freed memory stays in it), blocks from this size up mapped on their own and given back
# when freed (glibc otherwise raises the bound up to 32 MB as blocks are freed, so that the buffers of a
# batch of 64 faces stay in the arenas), and free memory handed back to the system every few seconds.
MALLOC_ARENAS = 2
MALLOC_MMAP_BYTES = 1 << 20
MALLOC_TRIM_EVERY_S = 5.0
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt's parameter numbers (malloc.h)
_lock = threading.Lock()
# Imported in the background while the server starts (see `warm_imports`): GAN Basics' figures
# (matplotlib and its font list, ~1 s of CPU), which its first click would otherwise wait for
PAGE_CHECK_TIMEOUT_S = 60.0  # Gradio's own check of its page at launch: 3 s a try (see patient_page_check)
WARM_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.collections")


class Studio(gr.Blocks):
    """`gr.Blocks` whose requests that do not fit an endpoint's inputs (a path, a list or a number where
    a file belongs; a file on the server that was never uploaded; too few inputs) are answered in plain
    words. Gradio checks these before any handler runs and, for a non-`gr.Error`, sends only its
    generic "the upstream app has raised an exception". The handlers' own checks answer the rest."""

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        inputs = with_defaults(block_fn, inputs)
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise gr.Error(request_problem(block_fn, inputs, exc), print_exception=False) from None


def with_defaults(block_fn: Any, inputs: list[Any]) -> list[Any]:
    """`inputs` completed with the handler's defaults when a request leaves out trailing optional inputs
    (parameters with a default, e.g. Faces' truncation psi), as gradio_client already does: a REST client
    written before an input was added gets the answer it always got. Only for raw handlers
    (`preprocess=False`), which take such a default as it is; anything else is left to Gradio's check."""
    blocks = list(getattr(block_fn, "inputs", []))
    if not isinstance(inputs, list) or len(inputs) >= len(blocks) or getattr(block_fn, "preprocess", True):
        return inputs
    try:
        params = list(inspect.signature(block_fn.fn).parameters.values())
    except (TypeError, ValueError):  # no Python signature to read
        return inputs
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    missing = params[len(inputs) : len(blocks)]
    if len(params) != len(blocks) or any(p.kind not in positional or p.default is p.empty for p in missing):
        return inputs
    return [*inputs, *(p.default for p in missing)]


def _required_inputs(block_fn: Any, count: int) -> int:
    """How many of an endpoint's `count` inputs a request must send (the rest `with_defaults` fills)."""
    return next((n for n in range(count) if len(with_defaults(block_fn, [None] * n)) == count), count)


def request_problem(block_fn: Any, inputs: list[Any], exc: Exception) -> str:
    """What is wrong with a request Gradio could not even hand to its handler, in plain words."""
    name = getattr(block_fn, "api_name", None) or getattr(block_fn, "name", None) or "this endpoint"
    blocks = list(getattr(block_fn, "inputs", []))
    labels = [str(getattr(b, "label", None) or type(b).__name__) for b in blocks]
    if len(inputs) < len(blocks):
        required = _required_inputs(block_fn, len(blocks))
        takes = f"{required} to {len(blocks)}" if required < len(blocks) else str(len(blocks))
        return f"{name} takes {takes} inputs ({', '.join(labels)}); the request sent {len(inputs)}"
    for block, label, value in zip(blocks, labels, inputs, strict=False):
        model = getattr(block, "data_model", None)
        if model is None or value is None:
            continue
        if not isinstance(value, dict):
            return f"{label} must be an uploaded file (gradio_client: handle_file(path)), got {shown(value)}"
        if type(exc).__name__ == "InvalidPathError" and value.get("path"):
            return (
                f"{label}: the file must be uploaded with the request (gradio_client: handle_file(path)); "
                "files on the server cannot be named"
            )
    return f"the request to {name} does not fit its inputs ({', '.join(labels)}): {type(exc).__name__}"


def _tab(spec: TaskSpec) -> None:
    module_name = f"gandemo.ui.{spec.name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # the tab exists but something it imports is missing: a real error
        unavailable(
            spec,
            f"The {spec.title} tab arrives with its issue. Its model will be made by: {spec.train_command()}",
        )
        return
    module.build(spec)


def _whole_number_env(name: str, default: int, default_words: str) -> int:
    """A whole number >= 1 from the environment variable `name`, else `default`; a bad value is
    reported ("using <default_words>") and the default used: a typo must not stop the app."""
    raw = os.environ.get(name, str(default))
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        print(f"{name}={raw!r} is not a whole number >= 1; using {default_words}", file=sys.stderr)
        n = default
    return n


def threads_from_env() -> int:
    """Torch threads per process from GANDEMO_THREADS (default 1). Requests run side by side (GAN
    Basics streams up to 4 at once), and on 2 busy cores 2 threads per request made torch 1.5-40x
    slower than 1 (64 faces: 404 ms with 1 thread, 639 ms with 2, with one core taken). A value
    that is not a whole number >= 1 is reported and the default used: a typo must not stop the app."""
    return _whole_number_env(THREADS_ENV, 1, "1 thread")


def _libc() -> Any:
    """glibc, or None where the C library is another (musl, macOS): then the allocator is left as it is."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except OSError:
        return None


def bound_allocator() -> bool:
    """Bound what glibc malloc keeps (MALLOC_ARENAS, MALLOC_MMAP_BYTES); call it before the server's
    threads start (app.py does, first thing). Returns whether it could (glibc only). Under 20 users the
    server grew +44 % in the first 40 s and a little every round after without it (docs/hosting.md)."""
    libc = _libc()
    if libc is None:
        return False
    libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES)
    return True


def _trim_forever(libc: Any, every_s: float) -> None:
    while True:
        time.sleep(every_s)
        libc.malloc_trim(0)


_trimmer: list[threading.Thread] = []


def start_trimming(every_s: float = MALLOC_TRIM_EVERY_S) -> threading.Thread | None:
    """The daemon thread (one per process, however often this is called) that hands the allocator's
    free memory back to the system every `every_s` seconds (glibc's malloc_trim: free pages inside
    the arenas too, not only at their top); None where the C library is not glibc."""
    libc = _libc()
    if libc is None:
        return None
    with _lock:
        if not _trimmer:
            _trimmer.append(
                threading.Thread(target=_trim_forever, args=(libc, every_s), name="malloc-trim", daemon=True)
            )
            _trimmer[0].start()
    return _trimmer[0]


def warm_imports(modules: tuple[str, ...] = WARM_IMPORTS) -> None:
    """Import `modules` (what a tab imports on its first click); one that fails is left to that click."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the tab's own import reports it, where a user sees it
            return


def start_warm_imports() -> threading.Thread:
    """`warm_imports` in a daemon thread: it runs while Gradio starts its server and renders the page
    (one core is mostly idle then), instead of in the first GAN Basics request."""
    thread = threading.Thread(target=warm_imports, name="warm-imports", daemon=True)
    thread.start()
    return thread


def patient_page_check(timeout_s: float = PAGE_CHECK_TIMEOUT_S) -> bool:
    """Give Gradio's check of its own page at launch `timeout_s` per try instead of 3 s. It fails the
    launch ("When localhost is not accessible, a shareable link must be created") when the page takes
    longer, which it did on 2 cores kept busy by other processes while a client polled the page.
    Returns False, changing nothing, on a Gradio without that check."""
    from gradio import networking

    check = getattr(networking, "url_ok", None)
    if check is None:
        return False
    if getattr(check, "_gandemo_patient", False):
        return True

    def url_ok(url: str) -> bool:
        import httpx

        for _ in range(5):
            try:
                r = httpx.head(url, timeout=timeout_s, verify=False)
            except (ConnectionError, httpx.ConnectError, httpx.TimeoutException):
                return False
            if r.status_code in (200, 401, 301, 302, 303, 307, 308):
                return True
            time.sleep(0.5)
        return False

    url_ok._gandemo_patient = True  # type: ignore[attr-defined]
    networking.url_ok = url_ok
    return True


class _BlocksWithoutConfigs:
    """What Gradio's SessionState reads from the app at its start, without the blocks whose configs it
    would compute up front."""

    def __init__(self, blocks: gr.Blocks) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict[int, Any] = {}


def lighter_sessions() -> bool:
    """Make Gradio's per-session state compute its copy of the blocks' configs when it is read (only a
    deep link reads it) instead of at the session's start: ~500 kB and the get_config of all ~280
    blocks for every session, and every REST or gradio_client call is a session of its own (the
    server keeps STATE_SESSIONS of them). What the configs hold, and their order, are unchanged
    (tests/ui/test_app.py compares both). Returns False, changing nothing, on a Gradio whose
    SessionState does not look as expected."""
    from gradio import state_holder

    cls = state_holder.SessionState
    if getattr(cls, "_gandemo_lazy_configs", False):
        return True
    eager_init, components = cls.__init__, cls.__dict__.get("components")
    if not isinstance(components, property) or "config_values" not in inspect.getsource(eager_init):
        return False

    def __init__(self: Any, blocks: gr.Blocks) -> None:
        eager_init(self, _BlocksWithoutConfigs(blocks))
        self._config_ids = [k for k in self.blocks_config.blocks if k in blocks.blocks]

    def all_components(self: Any) -> Any:
        config = self.blocks_config
        for k in self._config_ids:
            if k not in self.config_values and k in config.blocks:
                self.config_values[k] = config.config_for_block(k, [], config.blocks[k])
        ids = [k for k in self._config_ids if k in self.config_values]
        ordered = {k: self.config_values[k] for k in ids} | self.config_values
        self.config_values.clear()
        self.config_values.update(ordered)
        return components.fget(self)

    cls.__init__ = __init__
    cls.components = property(all_components)
    cls._gandemo_lazy_configs = True
    return True


def build_app() -> gr.Blocks:
    """The app's Blocks; building it loads the shipped models (lazily cached) and changes no
    global settings (torch's thread count is set by `launch`)."""
    with Studio(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nFive classic GANs, each trained by this project and running on the CPU. "
            "Every output is reproducible from its seed."
        )
        with gr.Tabs():
            for spec in TASKS.values():
                with gr.Tab(spec.title, id=spec.name):
                    _tab(spec)
    return demo


def queue_size_from_env() -> int:
    """The queue's bound from GANDEMO_QUEUE_SIZE (default QUEUE_SIZE_DEFAULT); a value that is not a
    whole number >= 1 is reported and the default used."""
    return _whole_number_env(QUEUE_SIZE_ENV, QUEUE_SIZE_DEFAULT, str(QUEUE_SIZE_DEFAULT))


def configure_queue(demo: gr.Blocks) -> gr.Blocks:
    """The queue that fits a 2-vCPU Space: bounded (GANDEMO_QUEUE_SIZE waiting requests; the next is
    answered "the queue is full": gradio_client raises QueueError, the page says the app is busy),
    one request at a time per event unless the event says otherwise (faces, edges, superres,
    anomaly, GAN Basics set their own limits, and long jobs share one slot: ui.common.heavy_slot)."""
    return demo.queue(max_size=queue_size_from_env(), default_concurrency_limit=1)


def launch(demo: gr.Blocks, **kwargs: Any) -> None:
    """Set torch's threads (GANDEMO_THREADS), configure the queue and serve with the app's theme and
    CSS. It binds 127.0.0.1:7860 unless GRADIO_SERVER_NAME / GRADIO_SERVER_PORT say otherwise (a Space
    sets 0.0.0.0), and never makes a public share link unless the caller passes share=True (Gradio
    would make one on its own in a hosted notebook or with GRADIO_SHARE)."""
    torch.set_num_threads(threads_from_env())
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(ANALYTICS_EVENTS))  # read when the queue starts
    lighter_sessions()
    patient_page_check()
    options = {
        "server_name": os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
        "share": False,
        "max_file_size": MAX_FILE_SIZE,
        "state_session_capacity": STATE_SESSIONS,
        **kwargs,
    }
    block = not options.pop("prevent_thread_lock", False) and not getattr(sys, "ps1", sys.flags.interactive)
    configure_queue(demo).launch(css=CSS, theme=gr.themes.Soft(), prevent_thread_lock=True, **options)
    # once Gradio has checked its page: on a starved start these threads would only slow that check
    start_trimming()
    start_warm_imports()
    if block:  # as Gradio's launch does in a script: serve until interrupted
        demo.block_thread()
