from pathlib import Path

import pytest

from gandemo import registry
from gandemo.checkpoint import WEIGHTS
from tests.conftest import write_tiny_faces_checkpoint


def test_missing_checkpoint_names_the_training_command(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)
    with pytest.raises(registry.ModelUnavailable) as err:
        registry.get("faces")
    msg = str(err.value)
    assert "not trained yet" in msg and "python -m training faces" in msg
    assert registry.status("faces") == msg


def test_every_task_has_a_tab_title_and_a_training_command():
    assert list(registry.TASKS) == ["faces", "edges2photo", "superres", "music", "anomaly"]
    for spec in registry.TASKS.values():
        assert spec.title and spec.train_command().startswith(f"python -m training {spec.name} ")


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
