from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gandemo.imaging import tensor_to_pils
from gandemo.nets.dcgan import Generator
from gandemo.tasks import faces
from gandemo.validation import InvalidInput
from tests.conftest import TINY_G


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return Generator(**TINY_G).eval()


def _arrays(images):
    return [np.asarray(i) for i in images]


def test_same_seed_same_faces_and_a_longer_gallery_extends_a_shorter_one(G):
    a = faces.generate_faces(G, 123, 4)
    b = faces.generate_faces(G, 123, 9)
    assert len(a) == 4 and len(b) == 9
    assert all(img.size == (64, 64) and img.mode == "RGB" for img in b)
    assert all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b[:4]), strict=True))
    c = faces.generate_faces(G, 124, 4)
    assert not np.array_equal(_arrays(a)[0], _arrays(c)[0])


def test_latents_depend_only_on_seed_and_index():
    z = faces.latents(5, 3)
    assert z.shape == (3, 100) and abs(float(z.std()) - 1) < 0.2
    assert torch.equal(faces.latents(5, 1)[0], z[0])
    assert not torch.equal(z[0], z[1])


def test_interpolation_runs_from_face_one_of_a_to_face_one_of_b(G):
    frames = faces.interpolate_faces(G, 11, 22, 5)
    assert len(frames) == 5
    start, end = faces.generate_faces(G, 11, 1)[0], faces.generate_faces(G, 22, 1)[0]
    # the endpoints of the walk are the galleries' first faces (up to float rounding of slerp)
    assert np.abs(np.asarray(frames[0], int) - np.asarray(start, int)).max() <= 1
    assert np.abs(np.asarray(frames[-1], int) - np.asarray(end, int)).max() <= 1


def test_slerp_keeps_the_latent_norm_and_hits_both_ends():
    a, b = faces.latents(1, 1)[0], faces.latents(2, 1)[0]
    path = faces.slerp(a, b, torch.linspace(0, 1, 7))
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[-1], b, atol=1e-5)
    norms = path.norm(dim=1)
    assert norms.min() > 0.9 * min(a.norm(), b.norm())  # a straight line would dip to ~0.7


@pytest.mark.parametrize(
    "seed, count, words",
    [
        (-1, 4, "seed"),
        (2**31, 4, "seed"),
        (1.5, 4, "seed"),
        (1, 0, "count"),
        (1, 10_000, "count"),
        (1, 2.5, "count"),
        (1, "many", "count"),
    ],
)
def test_bad_inputs_are_refused_before_any_work(G, seed, count, words):
    with pytest.raises(InvalidInput, match=words):
        faces.generate_faces(G, seed, count)


def test_bad_interpolation_inputs(G):
    with pytest.raises(InvalidInput, match="frames must be from 2 to 60"):
        faces.interpolate_faces(G, 1, 2, 1)
    with pytest.raises(InvalidInput, match="seed B"):
        faces.interpolate_faces(G, 1, -2, 5)


def test_grid_and_gif_files(G, tmp_path: Path):
    imgs = faces.generate_faces(G, 1, 10)
    grid = Image.open(faces.grid_png(imgs, tmp_path / "g.png"))
    assert grid.size == (8 * 64 + 9 * 2, 2 * 64 + 3 * 2)
    gif = Image.open(faces.animation_gif(imgs[:4], tmp_path / "a.gif"))
    assert gif.is_animated and gif.n_frames == 4 + 2  # forth and back
    assert gif.size == (faces.DISPLAY_SIZE, faces.DISPLAY_SIZE)


def test_render_is_the_one_drawing_function_and_batching_does_not_change_faces(G):
    z = faces.latents(3, 7)
    whole = faces.render(G, z)
    assert whole.shape == (7, 3, 64, 64) and whole.dtype == torch.float32
    assert whole.min() >= -1 and whole.max() <= 1
    assert torch.allclose(faces.render(G, z, batch=2), whole, atol=1e-5)
    G.train()
    try:
        assert torch.allclose(faces.render(G, z), whole, atol=1e-5)  # always in eval mode ...
        assert G.training  # ... and the caller's mode is given back
    finally:
        G.eval()


@pytest.mark.parametrize("raw, value", [("4.0", 4), ("1e3", 1000), (7.0, 7), (" 12 ", 12)])
def test_checks_accept_whole_numbers_in_any_spelling(raw, value):
    assert faces.check_seed(raw) == value


# ---- truncation psi --------------------------------------------------------------------------------------
def test_psi_one_gives_exactly_the_faces_of_a_call_without_psi(G):
    untruncated = tensor_to_pils(faces.render(G, faces.latents(31, 5)))  # what generate_faces drew before psi
    for images in (
        faces.generate_faces(G, 31, 5),
        faces.generate_faces(G, 31, 5, 1),
        faces.generate_faces(G, 31, 5, "1.0"),
    ):
        assert all(np.array_equal(a, b) for a, b in zip(_arrays(images), _arrays(untruncated), strict=True))
    walk = faces.interpolate_faces(G, 3, 4, 5, 1.0)
    assert all(
        np.array_equal(a, b) for a, b in zip(_arrays(walk), _arrays(faces.interpolate_faces(G, 3, 4, 5)), strict=True)
    )


def test_truncation_pulls_latents_toward_the_mean_and_keeps_seeds_exact(G):
    z = faces.latents(8, 6)
    assert faces.truncate(z, 1.0) is z
    assert torch.equal(faces.truncate(z, 0.5), z * 0.5)
    assert not faces.truncate(z, 0.0).any()
    # face i of a seed still does not depend on the count, at any psi
    a, b = faces.generate_faces(G, 8, 2, 0.6), faces.generate_faces(G, 8, 6, 0.6)
    assert all(np.array_equal(x, y) for x, y in zip(_arrays(a), _arrays(b[:2]), strict=True))
    assert not np.array_equal(_arrays(a)[0], _arrays(faces.generate_faces(G, 8, 1))[0])
    # psi = 0: every latent is the mean, so every face is the one "average" face
    same = _arrays(faces.generate_faces(G, 8, 4, 0))
    assert all(np.array_equal(same[0], x) for x in same[1:])


def test_a_truncated_walk_runs_between_the_truncated_first_faces(G):
    frames = faces.interpolate_faces(G, 11, 22, 5, 0.7)
    start, end = faces.generate_faces(G, 11, 1, 0.7)[0], faces.generate_faces(G, 22, 1, 0.7)[0]
    assert np.abs(np.asarray(frames[0], int) - np.asarray(start, int)).max() <= 1
    assert np.abs(np.asarray(frames[-1], int) - np.asarray(end, int)).max() <= 1


@pytest.mark.parametrize("psi", [-0.1, 1.01, "abc", None, float("nan"), [0.5], True])
def test_bad_psi_is_refused_in_plain_words(G, psi):
    with pytest.raises(InvalidInput, match="truncation psi must be a number from 0 to 1"):
        faces.generate_faces(G, 1, 2, psi)
    with pytest.raises(InvalidInput, match="truncation psi"):
        faces.interpolate_faces(G, 1, 2, 3, psi)


def test_truncation_table_reads_the_sweep_from_a_card():
    card = {
        "metrics": {
            "FID vs held-out (996 vs 996)": {
                "model": 59.0,
                "baseline": 90.6,
                "psi=0.8": 50.5,
                "psi=0.6": 55.1,
                "method": "x",
            },
            "precision (k=3)": {"model": 0.526, "psi=0.8": 0.6, "psi=0.6": 0.7, "method": "x"},
            "recall (k=3)": {"model": 0.05, "psi=0.8": 0.03, "psi=0.6": 0.01, "method": "x"},
            "faces found by a detector (%)": {"model": 95.7, "method": "x"},
        }
    }
    table = faces.truncation_table(card)
    assert [psi for psi, _ in table] == [1.0, 0.8, 0.6]
    assert table[0][1] == {"FID": 59.0, "precision": 0.526, "recall": 0.05}
    assert table[2][1] == {"FID": 55.1, "precision": 0.7, "recall": 0.01}
    assert faces.truncation_table({"metrics": {"precision (k=3)": {"model": 0.5}}}) == []
    assert faces.truncation_table({}) == []
    assert faces.psi_key(0.8) == "psi=0.8" and faces.psi_key(1.0) == "psi=1"
