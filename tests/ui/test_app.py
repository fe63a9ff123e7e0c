"""The app on a free local port, called through gradio_client as a user's script would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from gandemo.tasks import TASKS
from gandemo.ui.app import build_app, threads_from_env


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _pixels(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"])) for item in gallery]


def test_generate_faces_gives_a_gallery_and_a_grid(client: Client):
    gallery, grid = client.predict(7, 5, api_name="/generate_faces")
    assert len(gallery) == 5 and all(item["caption"] is None for item in gallery)  # nothing covers a face
    assert all(a.shape == (64, 64, 3) for a in _pixels(gallery))
    assert Image.open(grid).size == (5 * 64 + 6 * 2, 64 + 2 * 2)


def test_same_seed_same_faces_through_the_api(client: Client):
    a, _ = client.predict(99, 3, api_name="/generate_faces")
    b, _ = client.predict(99, 3, api_name="/generate_faces")
    c, _ = client.predict(100, 3, api_name="/generate_faces")
    assert all(np.array_equal(x, y) for x, y in zip(_pixels(a), _pixels(b), strict=True))
    assert not np.array_equal(_pixels(a)[0], _pixels(c)[0])


def test_interpolate_faces_gives_an_animation_and_frames(client: Client):
    gif, frames = client.predict(1, 2, 6, api_name="/interpolate_faces")
    assert len(frames) == 6
    anim = Image.open(gif)
    assert anim.format == "GIF" and anim.n_frames == 6 + 4


@pytest.mark.parametrize("seed", ["4.0", "1e3", 1000.0, " 12 "])
def test_whole_numbers_written_as_text_or_floats_are_accepted(client: Client, seed):
    gallery, grid = client.predict(seed, "2", api_name="/generate_faces")
    assert len(gallery) == 2 and Path(grid).name.startswith("faces_seed")


@pytest.mark.parametrize(
    "api, args, words",
    [
        ("/generate_faces", (-1, 4), "seed must be from 0 to 2147483647"),
        ("/generate_faces", (2**31, 4), "seed must be from 0 to 2147483647"),
        ("/generate_faces", (1, 0), "count must be from 1 to 64"),
        ("/generate_faces", (1, 10_000), "count must be from 1 to 64"),
        ("/generate_faces", (1.5, 4), "seed must be a whole number"),
        ("/generate_faces", (1, 2.5), "count must be a whole number"),
        ("/generate_faces", ("abc", 4), "seed must be a whole number"),
        ("/generate_faces", (None, 4), "seed must be a whole number"),
        ("/interpolate_faces", (1, 2, 1), "frames must be from 2 to 60"),
        ("/interpolate_faces", (1, 2, 500), "frames must be from 2 to 60"),
    ],
)
def test_bad_inputs_get_a_clear_error_and_the_next_request_is_served(client: Client, api, args, words):
    with pytest.raises(Exception, match=words):
        client.predict(*args, api_name=api)
    gallery, _ = client.predict(3, 1, api_name="/generate_faces")
    assert len(gallery) == 1


def test_without_a_faces_checkpoint_the_app_still_starts(tmp_path: Path, use_checkpoints):
    use_checkpoints(tmp_path)  # empty root: no task has a model
    demo = build_app()
    texts = " ".join(str(getattr(b, "value", "")) for b in demo.blocks.values())
    for spec in TASKS.values():
        if spec.has_checkpoint:
            assert f"{spec.title} is not available yet" in texts
    assert "python -m training faces" in texts
    assert "generate_faces" not in {d.api_name for d in demo.fns.values()}


def test_tabs_follow_the_catalogue_with_gan_basics_first(app_url: str):
    import gradio as gr

    demo = build_app()
    labels = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert labels == [spec.title for spec in TASKS.values()] and labels[0] == "GAN Basics"


def test_building_the_app_leaves_torch_threads_alone(app_url: str):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    try:
        build_app()
        assert torch.get_num_threads() == before + 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("raw, n", [("3", 3), ("", 1), ("zero", 1), ("0", 1), ("-2", 1), ("2.5", 1)])
def test_a_bad_thread_count_falls_back_to_one_with_a_message(monkeypatch, capsys, raw, n):
    monkeypatch.setenv("GANDEMO_THREADS", raw)
    assert threads_from_env() == n
    if n == 1:
        assert "GANDEMO_THREADS" in capsys.readouterr().err
