import gradio as gr
import pytest

from gandemo.tasks import TASKS
from gandemo.ui.common import card_markdown, endpoint, settings_markdown, task_tab, unavailable
from gandemo.validation import InvalidInput, as_int


@endpoint
def _plain(x):
    return as_int(x, "x", 0, 9) * 2


@endpoint
def _streaming(n):
    n = as_int(n, "n", 1, 3)
    yield from range(n)
    raise InvalidInput("stopped on purpose")


def test_endpoint_turns_input_errors_into_gr_error_for_plain_handlers():
    assert _plain("4") == 8
    with pytest.raises(gr.Error, match="x must be from 0 to 9"):
        _plain(10)


def test_endpoint_works_for_streaming_handlers_too():
    gen = _streaming(2)
    assert [next(gen), next(gen)] == [0, 1]
    with pytest.raises(gr.Error, match="stopped on purpose"):
        next(gen)
    with pytest.raises(gr.Error, match="n must be from 1 to 3"):
        list(_streaming(0))


def test_not_available_panel_keeps_angle_brackets_visible():
    with gr.Blocks() as demo:
        unavailable(TASKS["anomaly"], "Train it with --variant <category>")
    md = next(b for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    assert "&lt;category&gt;" in md.value and "<category>" not in md.value


def test_task_tab_opens_with_the_first_trained_variant(tmp_path, use_checkpoints):
    from tests.conftest import write_tiny_faces_checkpoint

    spec = TASKS["faces"].__class__("faces", "Faces", ("missing", "default"))
    write_tiny_faces_checkpoint(tmp_path)
    use_checkpoints(tmp_path)
    opened = []
    with gr.Blocks():
        task_tab(spec, lambda ckpt: opened.append(ckpt.card["variant"]))
    assert opened == ["default"]

    use_checkpoints(tmp_path / "empty")
    with gr.Blocks() as demo:
        task_tab(spec, opened.append)
    md = next(b for b in demo.blocks.values() if isinstance(b, gr.Markdown))
    assert len(opened) == 1 and "missing" in md.value  # the first variant's reason is shown


def test_card_markdown_shows_data_training_notes_and_every_metric_column():
    card = {
        "task": "faces",
        "variant": "default",
        "arch": {"G": {"class": "gandemo.nets.dcgan:Generator", "kwargs": {}}},
        "data": {"name": "faces", "items": 10, "resolution": "64x64", "held_out": "7%"},
        "training": {
            "steps": 5,
            "wall_time_s": 3600,
            "preset": "cpu",
            "device": "cpu",
            "commit": "abc",
            "sessions": [{"threads": 2}, {"threads": 1}],
            "exported": {"date": "2026-01-01"},
        },
        "notes": "does not beat its baseline",
        "metrics": {
            "FID": {"model": 99.3, "baseline": 90.6, "real": 20.6, "method": "Inception"},
            "SSIM": {"model": 0.77, "l1_only": 0.8, "baseline": 0.6, "method": "skimage"},
            "L1": {"model": 0.05, "method": "mean |a - b|"},
        },
    }
    md = card_markdown(card)
    assert "| SSIM | 0.77 | 0.6 | – | – | l1_only: 0.8. skimage |" in md  # a task's own column is not lost
    assert r"| L1 | 0.05 | – | – | – | mean \|a - b\| |" in md  # a pipe in a method stays inside its cell
    assert "`Generator`" in md and "10 training images" in md and "1.00 h" in md
    assert "2, then 1 thread(s)" in md and "**Notes**: does not beat its baseline" in md
    assert "| FID | 99.3 | 90.6 | 20.6 | – | Inception |" in md


def test_card_without_metrics_says_how_to_measure():
    assert "python -m training evaluate" in card_markdown({"task": "faces", "variant": "default"})


def test_save_example_writes_a_png_atomically(tmp_path):
    from PIL import Image

    from gandemo.ui.common import save_example

    path = save_example(Image.new("RGB", (4, 3), "red"), tmp_path / "ex" / "red.png")
    assert Image.open(path).size == (4, 3) and [p.name for p in path.parent.iterdir()] == ["red.png"]


def test_long_jobs_take_turns_on_one_slot_and_a_waiting_one_says_why():
    import threading

    from gandemo.ui.common import HEAVY_SLOT, heavy_slot

    said, inside = [], threading.Event()

    def second() -> None:
        with heavy_slot(lambda *a, **kw: said.append(kw.get("desc", "")), "latent search"):
            inside.set()

    with heavy_slot():
        worker = threading.Thread(target=second)
        worker.start()
        assert not inside.wait(0.3)  # it waits for the slot...
    worker.join(10)  # ...and runs once the first job leaves it
    assert inside.is_set() and "waiting for another latent search" in said[0]
    assert HEAVY_SLOT.acquire(blocking=False)  # released again
    HEAVY_SLOT.release()


def test_settings_markdown_puts_the_tasks_own_phrases_before_the_shared_ones():
    card = {"hyperparameters": {"batch_size": 16, "lr": 2e-4, "betas": [0.5, 0.999]}, "inference": "EMA generator"}
    text = settings_markdown(card, ["U-Net depth 7"], heading="gan settings")
    assert text == (
        "**gan settings** (from its card): U-Net depth 7; batch 16; Adam, learning rate 0.0002, "
        "betas (0.5, 0.999); inference: EMA generator."
    )
    assert settings_markdown({}, []) == ""
