"""The tabbed app: one tab per task of `gandemo.tasks.TASKS`, in that order. A task's tab is
`gandemo.ui.<name>.build(spec)`; a task whose tab module has not landed yet shows how its model
will be made, and a tab whose model is missing says so (the other tabs work regardless)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any

import gradio as gr
import torch

from gandemo.tasks import TASKS, TaskSpec
from gandemo.ui.common import unavailable
from gandemo.ui.serving import (
    ANALYTICS_EVENTS,
    bounded_queue_records,
    calmer_queue,
    lighter_sessions,
    patient_page_check,
    start_trimming,
    start_warm_imports,
    whole_cached_files,
)
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
# Sessions whose state the server keeps (Gradio's default: 10,000). Each keeps its gr.State (GAN Basics'
# toy game) and a ~7 kB table of the blocks, not its calls' outputs (serving.lighter_sessions); every
# API call without a session is one. Beyond this the least recently used are dropped: such a visitor's
# next Start begins a new toy game.
STATE_SESSIONS = 500


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
    bounded_queue_records()
    calmer_queue()
    whole_cached_files()
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
