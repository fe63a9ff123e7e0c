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


def test_training_all_and_the_test_fixtures_find_a_new_task_by_its_name(sixth_task, tmp_path, monkeypatch):
    """`python -m training all` asks the task where its data is and which runs it makes; the tests' tiny
    checkpoints come from the task's own hook: no table to extend in training/all.py or tests/conftest.py."""
    from tests.conftest import write_tiny_checkpoints
    from training import all as train_all

    (tmp_path / "sixth").mkdir()
    assert train_all.find_data(tmp_path, "sixth") == tmp_path / "sixth"  # by default a folder named after it
    assert sixth_task.planned_runs(tmp_path) == [("default", tmp_path / "sixth", "")]
    monkeypatch.setattr(sixth_task, "data_layout", ("elsewhere/train",), raising=False)
    assert sixth_task.planned_runs(tmp_path)[0][2].startswith("no data (looked for")
    with pytest.raises(NotImplementedError, match="tiny_checkpoints"):
        write_tiny_checkpoints("sixth", tmp_path)
    monkeypatch.setattr(sixth_task, "tiny_checkpoints", classmethod(lambda cls, root, seed=0: [root / "sixth"]))
    assert write_tiny_checkpoints("sixth", tmp_path) == [tmp_path / "sixth"]
