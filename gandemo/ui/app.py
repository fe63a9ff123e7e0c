"""The tabbed app: one tab per task of `gandemo.tasks.TASKS`, in that order. A task's tab is
`gandemo.ui.<name>.build(spec)`; a task whose tab module has not landed yet shows how its model
will be made, and a tab whose model is missing says so (the other tabs work regardless)."""

from __future__ import annotations

import importlib
import os
import sys

import gradio as gr
import torch

from gandemo.tasks import TASKS, TaskSpec
from gandemo.ui.common import unavailable

TITLE = "GAN Studio"
CSS = """
.unavailable { border: 1px dashed var(--border-color-primary); border-radius: 8px; padding: 12px; }
"""
THREADS_ENV = "GANDEMO_THREADS"


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


def threads_from_env() -> int:
    """Torch threads per process from GANDEMO_THREADS (default 1). Requests run side by side (GAN
    Basics streams up to 4 at once), and on 2 busy cores 2 threads per request made torch 1.5-40x
    slower than 1 (64 faces: 404 ms with 1 thread, 639 ms with 2, with one core taken). A value
    that is not a whole number >= 1 is reported and the default used: a typo must not stop the app."""
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(raw)
        if n < 1:
            raise ValueError
    except ValueError:
        print(f"{THREADS_ENV}={raw!r} is not a whole number >= 1; using 1 thread", file=sys.stderr)
        n = 1
    return n


def build_app() -> gr.Blocks:
    """The app's Blocks; building it loads the shipped models (lazily cached) and changes no
    global settings (torch's thread count is set by `launch`)."""
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nFive classic GANs, each trained by this project and running on the CPU. "
            "Every output is reproducible from its seed."
        )
        with gr.Tabs():
            for spec in TASKS.values():
                with gr.Tab(spec.title, id=spec.name):
                    _tab(spec)
    return demo


def launch(demo: gr.Blocks, **kwargs) -> None:
    """Set torch's threads (GANDEMO_THREADS) and serve with the app's theme and CSS; host and port
    come from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (127.0.0.1:7860 by default; Spaces sets 0.0.0.0)."""
    torch.set_num_threads(threads_from_env())
    demo.queue(default_concurrency_limit=1).launch(css=CSS, theme=gr.themes.Soft(), **kwargs)
