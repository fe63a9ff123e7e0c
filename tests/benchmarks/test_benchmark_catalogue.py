"""The benchmarks find each task's part by the task's name (`benchmarks/tasks/<name>.py`), so a new
task edits nothing in `benchmarks/`, and their modules import each other without a cycle."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from gandemo.tasks import TASKS, TaskSpec

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _module_name(path: Path) -> str:
    parts = path.relative_to(BENCHMARKS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """benchmarks module -> the benchmarks modules it imports (anywhere in it, also inside functions)."""
    graph = {}
    for path in BENCHMARKS.rglob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmarks"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("benchmarks")}
        graph[_module_name(path)] = found
    return graph


def test_no_benchmark_module_imports_a_script_and_there_is_no_cycle():
    graph = _imports()
    scripts = {m for m in graph if m.count(".") == 1 and not m.split(".")[1].startswith("_")}
    assert {"benchmarks.load", "benchmarks.cold_start"} <= scripts
    for module, imported in graph.items():
        assert not imported & scripts, f"{module} imports a script: {imported & scripts}"
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        assert state.get(m) != "open", f"import cycle: {' -> '.join([*path, m])}"
        if state.get(m) == "done":
            return
        state[m] = "open"
        for n in graph.get(m, ()):
            visit(n, [*path, m])
        state[m] = "done"

    for m in graph:
        visit(m, [])
    # the per-task hooks are found by name at run time: they must not import _server back either
    assert all("benchmarks._server" not in graph[m] for m in graph if m.startswith("benchmarks.tasks"))


def test_every_task_has_its_hooks_with_a_request():
    from benchmarks._server import seed_inputs, task_hooks

    for name in TASKS:
        hooks = task_hooks(name)
        assert callable(hooks.request) and isinstance(hooks.API, str), name
    assert seed_inputs() == {"toy_gan": 7, "generate_faces": 0, "compose_music": 0}


def test_a_sixth_task_is_found_by_its_name_with_no_edit_in_the_benchmarks(tmp_path: Path, monkeypatch):
    from benchmarks import _server

    hooks = types.ModuleType("benchmarks.tasks.sixth")
    hooks.API, hooks.SEED_INPUT = "sixth_api", 1

    def stand_in(folder: Path, variant: str) -> str:
        folder.mkdir(parents=True)
        return f"a stand-in for {variant}"

    hooks.request = lambda root, examples: (hooks.API, ("x", 3))
    hooks.stand_in = stand_in
    hooks.data = lambda images: images.parent / "sixth-layout"
    monkeypatch.setitem(sys.modules, "benchmarks.tasks.sixth", hooks)
    monkeypatch.setattr("gandemo.tasks.TASKS", {"basics": TASKS["basics"], "sixth": TaskSpec("sixth", "Sixth")})

    assert _server.tab_requests(tmp_path, tmp_path / "examples")["sixth"] == ("sixth_api", ("x", 3))
    root, notes = _server.every_model_root(tmp_path / "root")
    assert (root / "sixth" / "default").is_dir() and notes == ["sixth/default: a stand-in for default"]
    assert _server.task_data("sixth", tmp_path / "images") == tmp_path / "sixth-layout"
    assert _server.task_data("basics", tmp_path / "images") == tmp_path / "images"  # no `data`: the images
    assert _server.seed_inputs()["sixth_api"] == 1
    assert _server.with_seed(("x", 3), 1, 99) == ("x", 99) and _server.with_seed(("x", 3), None, 99) == ("x", 3)


def test_a_task_without_hooks_is_named_in_the_message(monkeypatch):
    from benchmarks._server import task_hooks

    with pytest.raises(SystemExit, match="benchmarks/tasks/seventh.py"):
        task_hooks("seventh")


def test_load_reports_each_rounds_growth():
    from benchmarks.load import round_growth

    assert round_growth([100.0, 125.0, 125.0, 126.25]) == pytest.approx([25.0, 0.0, 1.0])
