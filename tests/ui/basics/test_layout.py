"""The GAN Basics layout (gandemo/ui/basics/__init__.py): `build(spec)` inside a tab of a Blocks, as
the app calls it: the text that explains the game, the caps it states and the two public endpoints."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from gandemo.tasks import TASKS
from gandemo.ui import basics
from gandemo.ui.basics import session
from gandemo.ui.common import LATEX


def _built() -> gr.Blocks:
    spec = TASKS["basics"]
    with gr.Blocks() as demo, gr.Tab(spec.title, id=spec.name):
        basics.build(spec)
    return demo


def test_the_tab_comes_first_and_explains_itself(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)  # no models needed: this tab trains its own
    app = _built()
    texts = " ".join(str(getattr(b, "value", "")) for b in app.blocks.values())
    assert "Nash equilibrium" in texts and "D^*(x)" in texts and "saturates" in texts
    assert "mode collapse" in texts.lower() and "No explicit density" in texts
    # the app makes one tab per catalogue entry, in its order (the rendered order: tests/ui/test_app.py)
    assert next(iter(TASKS.values())).title == "GAN Basics"
    apis = {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}
    assert {"toy_gan", "toy_gan_2d"} <= apis
    assert f"{session.RUN_STEPS_MAX:,} steps or {session.RUN_SECONDS_MAX:.0f} s" in texts  # the caps are stated


def test_the_package_offers_the_endpoints_and_the_shared_latex_setting():
    assert basics.toy_gan is session.toy_gan and basics.toy_gan_2d is session.toy_gan_2d
    app = _built()
    formulas = [b for b in app.blocks.values() if isinstance(b, gr.Markdown) and "D^*(x)" in str(b.value)]
    assert len(formulas) == 1 and formulas[0].latex_delimiters == LATEX
