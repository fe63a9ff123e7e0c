from pathlib import Path

import pytest

from gandemo import registry
from gandemo.checkpoint import WEIGHTS
from gandemo.tasks import TASKS
from tests.conftest import write_tiny_faces_checkpoint


def test_missing_checkpoint_names_the_training_command(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)
    with pytest.raises(registry.ModelUnavailable) as err:
        registry.get("faces")
    msg = str(err.value)
    assert "not trained yet" in msg and "python -m training faces" in msg
    assert registry.status("faces") == msg


def test_every_task_with_a_checkpoint_has_a_tab_title_and_a_training_command():
    assert list(TASKS) == ["basics", "faces", "edges2photo", "superres", "music", "anomaly"]
    for spec in TASKS.values():
        assert spec.title
        if spec.has_checkpoint:
            assert spec.train_command().startswith(f"python -m training {spec.name} --data <")
            assert f"--export assets/checkpoints/{spec.name}/{spec.default_variant}" in spec.train_command()
    assert "--variant psnr" in TASKS["superres"].train_command("psnr")
    assert "--variant" not in TASKS["faces"].train_command()


def test_the_runtime_names_no_training_data_paths():
    """Where the data lives is training's business: gandemo never hard-codes ../shared/..."""
    root = Path(__file__).resolve().parents[1] / "gandemo"
    offenders = [p for p in root.rglob("*.py") if "shared/datasets" in p.read_text()]
    assert not offenders


def test_dependencies_point_one_way():
    """The runtime never imports the training package (training -> gandemo, never back)."""
    root = Path(__file__).resolve().parents[1]
    files = [*(root / "gandemo").rglob("*.py"), root / "app.py"]
    offenders = [
        str(p.relative_to(root))
        for p in files
        if any(ln.lstrip().startswith(("import training", "from training")) for ln in p.read_text().splitlines())
    ]
    assert not offenders


def test_a_task_without_checkpoints_is_unavailable_by_design():
    with pytest.raises(registry.ModelUnavailable, match="trained live"):
        registry.get("basics")


def test_loads_once_and_caches(tmp_path: Path, use_checkpoints):
    write_tiny_faces_checkpoint(tmp_path)
    use_checkpoints(tmp_path)
    first = registry.get("faces")
    assert registry.get("faces") is first
    assert registry.status("faces") is None
    assert registry.status("edges2photo") is not None  # another task missing does not matter


def test_broken_checkpoint_is_unavailable_with_its_reason(tmp_path: Path, use_checkpoints):
    folder = write_tiny_faces_checkpoint(tmp_path)
    (folder / WEIGHTS).write_bytes(b"garbage")
    use_checkpoints(tmp_path)
    with pytest.raises(registry.ModelUnavailable, match="cannot be used: .*sha256"):
        registry.get("faces")


def test_unknown_task_or_variant(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)
    with pytest.raises(registry.ModelUnavailable, match="unknown task"):
        registry.get("cats")
    with pytest.raises(registry.ModelUnavailable, match="unknown variant"):
        registry.get("faces", "huge")


def test_a_checkpoint_of_another_task_is_refused(tmp_path: Path, use_checkpoints):
    folder = write_tiny_faces_checkpoint(tmp_path)
    target = tmp_path / "music" / "default"
    target.parent.mkdir()
    folder.rename(target)
    use_checkpoints(tmp_path)
    with pytest.raises(registry.ModelUnavailable, match="not 'music'"):
        registry.get("music")
