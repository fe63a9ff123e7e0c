"""The app on a free local port, called through gradio_client as a user's script would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from PIL import Image

from gandemo import registry
from gandemo.ui.app import build_app


@pytest.fixture(scope="module")
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def _pixels(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"])) for item in gallery]


def test_generate_faces_gives_a_gallery_and_a_grid(client: Client):
    gallery, grid = client.predict(7, 5, api_name="/generate_faces")
    assert len(gallery) == 5 and gallery[0]["caption"] == "seed 7 #1"
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
    for spec in registry.TASKS.values():
        assert f"{spec.title} is not available yet" in texts
    assert "python -m training faces" in texts
    assert "generate_faces" not in {d.api_name for d in demo.fns.values()}
