"""The tabbed app: one tab per task, in DESIGN.md's order. A tab whose model is missing shows
what is missing and how to train it; the other tabs work regardless."""

from __future__ import annotations

import os
from collections.abc import Callable

import gradio as gr
import torch

from gandemo import registry
from gandemo.ui import basics, faces
from gandemo.ui.common import unavailable

TITLE = "GAN Studio"
CSS = """
.unavailable { border: 1px dashed var(--border-color-primary); border-radius: 8px; padding: 12px; }
"""

# task -> the function that builds its tab body; tasks whose tab has not landed yet show the
# registry's message (their model is not trained yet, and how to train it)
TAB_BUILDERS: dict[str, Callable[[], None]] = {
    "faces": faces.build,
}


def _pending(task: str) -> None:
    spec = registry.TASKS[task]
    unavailable(spec, registry.status(task) or f"The {spec.title} tab arrives with its issue; {spec.train_hint}.")


def configure_threads() -> int:
    """Bound torch's CPU threads (GANDEMO_THREADS, default 1). Requests run side by side (GAN
    Basics streams up to 4 at once), and on 2 busy cores 2 threads per request made torch 1.5-40x
    slower than 1 (64 faces: 404 ms with 1 thread, 639 ms with 2, with one core taken)."""
    n = int(os.environ.get("GANDEMO_THREADS", 1))
    torch.set_num_threads(max(1, n))
    return n


def build_app() -> gr.Blocks:
    configure_threads()
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nFive classic GANs, each trained by this project and running on the CPU. "
            "Every output is reproducible from its seed."
        )
        with gr.Tabs():
            with gr.Tab("GAN Basics", id="basics"):
                basics.build()
            for task, spec in registry.TASKS.items():
                with gr.Tab(spec.title, id=task):
                    builder = TAB_BUILDERS.get(task)
                    builder() if builder else _pending(task)
    return demo


def launch(demo: gr.Blocks, **kwargs) -> None:
    """Launch with the app's theme and CSS; host and port come from GRADIO_SERVER_NAME /
    GRADIO_SERVER_PORT (127.0.0.1:7860 by default; Spaces sets 0.0.0.0)."""
    demo.queue(default_concurrency_limit=1).launch(css=CSS, theme=gr.themes.Soft(), **kwargs)
