"""A sixth task is its own files plus one catalogue entry: every layer finds it by name."""

import sys
import types

import gradio as gr
import pytest

from gandemo import tasks
from gandemo.tasks import TaskSpec
from gandemo.ui.app import build_app
from training.task import TrainTask, task_class


@pytest.fixture
def sixth_task(monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "sixth", TaskSpec("sixth", "Sixth", data_hint="folder of anything"))

    def build(spec: TaskSpec) -> None:
        gr.Markdown(f"the {spec.title} tab's own body")

    ui = types.ModuleType("gandemo.ui.sixth")
    ui.build = build
    monkeypatch.setitem(sys.modules, "gandemo.ui.sixth", ui)

    class SixthTask(TrainTask):
        name = "sixth"
        presets = {"cpu": {"steps": 1}, "gpu": {"steps": 2}}

    trainer = types.ModuleType("training.sixth")
    trainer.SixthTask = SixthTask
    monkeypatch.setitem(sys.modules, "training.sixth", trainer)
    return SixthTask


def test_the_app_and_the_trainer_find_a_new_task_by_its_name(sixth_task):
    demo = build_app()
    labels = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert labels[-1] == "Sixth"
    texts = [str(getattr(b, "value", "")) for b in demo.blocks.values()]
    assert "the Sixth tab's own body" in texts
    assert task_class("sixth") is sixth_task
